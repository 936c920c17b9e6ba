using System;
using System.Collections.Generic;
using System.Linq;
using System.Numerics;
using Xunit;

namespace AttentionGen.Layers.Tests.Monotonic;

/// <summary>The generated MoChA layers' API (Step and StepHard take the chunk energy's key projection too).</summary>
public interface IMochaLayer<T, TTape> : IAttentionLayer<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    void Forward(int batch, int queryLength, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> context, Span<T> weights, AttentionMask mask);
    void Forward(TTape tape, int batch, int queryLength, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> context, Span<T> weights, AttentionMask mask, Random? noise);
    void Backward(TTape tape, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, ReadOnlySpan<T> dContext, Span<T> dQuery, Span<T> dKeys, Span<T> dValues, ReadOnlySpan<T> dWeights);
    void ProjectKeys(int batch, int keyLength, ReadOnlySpan<T> keys, Span<T> keyProjection);
    void ProjectChunkKeys(int batch, int keyLength, ReadOnlySpan<T> keys, Span<T> chunkKeyProjection);
    void Step(int batch, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keyProjection, ReadOnlySpan<T> chunkKeyProjection, ReadOnlySpan<T> values, ReadOnlySpan<T> previousAlignment, Span<T> alignment, Span<T> context, Span<T> chunkWeights, ReadOnlySpan<bool> keyPadding);
    void ForwardHard(int batch, int queryLength, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> context, Span<int> positions, AttentionMask mask);
    void StepHard(int batch, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keyProjection, ReadOnlySpan<T> chunkKeyProjection, ReadOnlySpan<T> values, Span<int> position, Span<T> context, ReadOnlySpan<bool> keyPadding);
}

[MonotonicAttention(Dim = 5, Units = 9, ValueDim = 3, ElementType = typeof(double), InitialEnergyBias = 0, ChunkSize = 1)] public partial class MochaW1D5U9V3 : IMochaLayer<double, MochaW1D5U9V3.Tape>;
[MonotonicAttention(Dim = 5, Units = 9, ValueDim = 3, ElementType = typeof(double), InitialEnergyBias = 0, ChunkSize = 2)] public partial class MochaW2D5U9V3 : IMochaLayer<double, MochaW2D5U9V3.Tape>;
[MonotonicAttention(Dim = 5, Units = 9, ValueDim = 3, ElementType = typeof(double), InitialEnergyBias = 0, ChunkSize = 3)] public partial class MochaW3D5U9V3 : IMochaLayer<double, MochaW3D5U9V3.Tape>;
[MonotonicAttention(Dim = 4, ElementType = typeof(double), ChunkSize = 12)] public partial class MochaW12D4 : IMochaLayer<double, MochaW12D4.Tape>;
[MonotonicAttention(Dim = 6, ValueDim = 4, Score = MonotonicScore.Multiplicative, Mode = MonotonicMode.Parallel, ElementType = typeof(double), InitialEnergyBias = 0.5, ChunkSize = 2)] public partial class MochaMulParallelW2D6V4 : IMochaLayer<double, MochaMulParallelW2D6V4.Tape>;
[MonotonicAttention(Dim = 5, Units = 9, ValueDim = 3, Normalize = true, ElementType = typeof(double), InitialEnergyBias = 0, ChunkSize = 3)] public partial class MochaNormW3D5U9V3 : IMochaLayer<double, MochaNormW3D5U9V3.Tape>;
[MonotonicAttention(Dim = 16, Units = 37, ValueDim = 5, ChunkSize = 3)] public partial class MochaW3F16U37V5 : IMochaLayer<float, MochaW3F16U37V5.Tape>;

/// <summary>
/// MoChA (Chiu &amp; Raffel 2018) in plain double, from the paper's equations: α from <see cref="MonotonicReference"/> (the
/// closed form), the chunk energy uᵢⱼ from the chunk parameters, βᵢⱼ = Σₖ₌ⱼ^{j+w−1} αᵢₖ exp(uᵢⱼ) / Σₗ₌ₖ₋w₊₁^{k} exp(uᵢₗ)
/// term by term (masked keys left out of every sum, no max subtraction), cᵢ = Σⱼ βᵢⱼ valueⱼ; hard decoding: the paper's
/// monotonic position, then a softmax of u over the chunk ending there.
/// </summary>
internal sealed class MochaReference
{
    public required MonotonicReference Monotonic { get; init; }
    public required int ChunkSize { get; init; }
    public double[] ChunkQueryWeight { get; init; } = Array.Empty<double>();
    public required double[] ChunkKeyWeight { get; init; }
    public double[] ChunkScoreBias { get; init; } = Array.Empty<double>();
    public double[] ChunkScoreVector { get; init; } = Array.Empty<double>();

    public static MochaReference From<T>(IAttentionLayer<T> layer) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        double[] P(string name) => layer.Parameters.FirstOrDefault(p => p.Name == name) is { } p ? TestData.ToDouble(p.Value) : Array.Empty<double>();
        return new MochaReference
        {
            Monotonic = MonotonicReference.From(layer),
            ChunkSize = (int)layer.GetType().GetField("ChunkSize")!.GetRawConstantValue()!,
            ChunkQueryWeight = P("chunk_query_weight"), ChunkKeyWeight = P("chunk_key_weight"),
            ChunkScoreBias = P("chunk_score_bias"), ChunkScoreVector = P("chunk_score_vector"),
        };
    }

    private int Dim => Monotonic.Dim;

    public double ChunkEnergy(ReadOnlySpan<double> q, ReadOnlySpan<double> k)
    {
        double u = 0;
        if (Monotonic.Additive)
        {
            for (int h = 0; h < Monotonic.Units; h++)
            {
                double pre = ChunkScoreBias[h];
                for (int d = 0; d < Dim; d++) pre += ChunkQueryWeight[h * Dim + d] * q[d] + ChunkKeyWeight[h * Dim + d] * k[d];
                u += ChunkScoreVector[h] * Math.Tanh(pre);
            }
        }
        else
        {
            for (int o = 0; o < Dim; o++)
                for (int c = 0; c < Dim; c++) u += q[o] * ChunkKeyWeight[o * Dim + c] * k[c];
        }
        return u;
    }

    public (double[] Alignment, double[] Weights, double[] Context) Soft(int batch, int tq, int tk, double[] query, double[] keys, double[] values, Func<int, int, int, bool>? allowed = null)
    {
        var (alignment, _) = Monotonic.Soft(batch, tq, tk, query, keys, values, allowed);
        int dv = Monotonic.ValueDim, w = ChunkSize;
        var beta = new double[alignment.Length];
        var context = new double[batch * tq * dv];
        for (int b = 0; b < batch; b++)
        {
            for (int i = 0; i < tq; i++)
            {
                bool Allowed(int j) => allowed is null || allowed(b, i, j);
                double U(int j) => ChunkEnergy(query.AsSpan((b * tq + i) * Dim, Dim), keys.AsSpan((b * tk + j) * Dim, Dim));
                int row = (b * tq + i) * tk;
                for (int j = 0; j < tk; j++)
                {
                    if (!Allowed(j)) continue;
                    for (int k = j; k <= j + w - 1 && k < tk; k++)
                    {
                        double denominator = 0;
                        for (int l = k - w + 1; l <= k; l++)
                        {
                            if (l >= 0 && Allowed(l)) denominator += Math.Exp(U(l));
                        }
                        beta[row + j] += alignment[row + k] * Math.Exp(U(j)) / denominator;
                    }
                    for (int v = 0; v < dv; v++) context[(b * tq + i) * dv + v] += beta[row + j] * values[(b * tk + j) * dv + v];
                }
            }
        }
        return (alignment, beta, context);
    }

    public (int[] Positions, double[] Context) Hard(int batch, int tq, int tk, double[] query, double[] keys, double[] values, Func<int, int, int, bool>? allowed = null)
    {
        var (positions, _) = Monotonic.Hard(batch, tq, tk, query, keys, values, allowed);
        int dv = Monotonic.ValueDim;
        var context = new double[batch * tq * dv];
        for (int b = 0; b < batch; b++)
        {
            for (int i = 0; i < tq; i++)
            {
                int t = positions[b * tq + i];
                if (t < 0) continue;
                var weights = new Dictionary<int, double>();
                for (int j = Math.Max(0, t - ChunkSize + 1); j <= t; j++)
                {
                    if (allowed is null || allowed(b, i, j)) weights[j] = Math.Exp(ChunkEnergy(query.AsSpan((b * tq + i) * Dim, Dim), keys.AsSpan((b * tk + j) * Dim, Dim)));
                }
                double sum = weights.Values.Sum();
                foreach (var (j, e) in weights)
                {
                    for (int v = 0; v < dv; v++) context[(b * tq + i) * dv + v] += e / sum * values[(b * tk + j) * dv + v];
                }
            }
        }
        return (positions, context);
    }
}

/// <summary>
/// Every MoChA layer against <see cref="MochaReference"/>: soft forward (β and context, masks, keys as values), β rows
/// summing to the α rows (so ≤ 1), the step API against the whole-sequence API, hard decoding, gradients against central
/// finite differences (double layers), and bad input.
/// </summary>
public abstract class MochaTests<T, TLayer, TTape>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TLayer : IMochaLayer<T, TTape>, new()
    where TTape : AttentionTape, new()
{
    private static readonly int Dim = (int)typeof(TLayer).GetField("Dim")!.GetRawConstantValue()!;
    private static readonly int Units = (int)typeof(TLayer).GetField("Units")!.GetRawConstantValue()!;
    private static readonly int ValueDim = (int)typeof(TLayer).GetField("ValueDim")!.GetRawConstantValue()!;
    private static readonly double Tolerance = typeof(T) == typeof(float) ? 3e-5 : 1e-12;

    private static TLayer Layer(int seed, double energyBias = 0.3, double spread = 0.6)
    {
        var random = new Random(seed + 200);
        var layer = new TLayer();
        layer.ResetParameters(seed);
        foreach (Parameter<T> parameter in layer.Parameters)
        {
            for (int i = 0; i < parameter.Length; i++) parameter.Value[i] += T.CreateTruncating((random.NextDouble() - 0.5) * spread);
        }
        layer.Parameters.Single(p => p.Name == "energy_bias").Value[0] = T.CreateTruncating(energyBias);
        return layer;
    }

    private static T[] Of(double[] values) => Array.ConvertAll(values, v => T.CreateTruncating(v));

    public static TheoryData<int, int, int, int, bool, bool> Cases => new()
    {
        // seed, batch, Tq, Tk, keys as values, masks
        { 1, 1, 1, 1, false, false },
        { 2, 2, 4, 6, false, false },
        { 3, 1, 5, 3, true, false },
        { 4, 3, 3, 7, false, true },
        { 5, 2, 6, 9, true, true },
    };

    private static (bool[] KeyPadding, bool[] PerQuery, Func<int, int, int, bool>? Allowed) Masks(Random random, int batch, int tq, int tk, bool masks)
    {
        if (!masks) return (Array.Empty<bool>(), Array.Empty<bool>(), null);
        bool[] keyPadding = TestData.Mask(random, batch * tk, 0.8);
        bool[] perQuery = TestData.Mask(random, batch * tq * tk, 0.85);
        for (int j = 0; j < tk; j++) perQuery[(tq - 1) * tk + j] = false; // the last query of row 0 attends nothing
        return (keyPadding, perQuery, (b, i, j) => keyPadding[b * tk + j] && perQuery[(b * tq + i) * tk + j]);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Soft_forward_matches_the_papers_equations_and_beta_keeps_alphas_mass(int seed, int batch, int tq, int tk, bool keysAsValues, bool masks)
    {
        keysAsValues &= ValueDim == Dim;
        var random = new Random(seed);
        TLayer layer = Layer(seed);
        T[] q = Of(TestData.Random<double>(random, batch * tq * Dim)), k = Of(TestData.Random<double>(random, batch * tk * Dim));
        T[] v = keysAsValues ? k : Of(TestData.Random<double>(random, batch * tk * ValueDim));
        var (keyPadding, perQuery, allowed) = Masks(random, batch, tq, tk, masks);
        var mask = new AttentionMask { KeyPadding = keyPadding, PerQuery = perQuery };
        MochaReference reference = MochaReference.From(layer);
        var (alignment, beta, expectedContext) = reference.Soft(batch, tq, tk, TestData.ToDouble(q), TestData.ToDouble(k), TestData.ToDouble(v), allowed);

        var context = new T[batch * tq * ValueDim];
        var weights = new T[batch * tq * tk];
        layer.Forward(batch, tq, tk, q, k, keysAsValues ? default : v, context, weights, mask);
        TestData.AssertClose<T>(beta, weights, Tolerance, "weights");
        TestData.AssertClose<T>(expectedContext, context, Tolerance, "context");
        var contextOnly = new T[context.Length];
        layer.Forward(batch, tq, tk, q, k, keysAsValues ? default : v, contextOnly, default, mask);
        Assert.Equal(context, contextOnly);

        var trained = new T[context.Length];
        var trainedWeights = new T[weights.Length];
        layer.Forward(new TTape(), batch, tq, tk, q, k, keysAsValues ? default : v, trained, trainedWeights, mask, null);
        Assert.Equal(context, trained);
        Assert.Equal(weights, trainedWeights);

        for (int row = 0; row < batch * tq; row++)
        {
            double betaSum = 0, alphaSum = 0;
            for (int j = 0; j < tk; j++)
            {
                betaSum += double.CreateTruncating(weights[row * tk + j]);
                alphaSum += alignment[row * tk + j];
                if (allowed is not null && !allowed(row / tq, row % tq, j)) Assert.Equal(T.Zero, weights[row * tk + j]); // masked keys: no chunk weight
            }
            Assert.True(betaSum <= 1 + 1e-6, $"row {row} sums to {betaSum}");
            Assert.Equal(alphaSum, betaSum, typeof(T) == typeof(float) ? 1e-5 : 1e-12);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Step_equals_the_whole_sequence_API_and_StepHard_equals_ForwardHard(int seed, int batch, int tq, int tk, bool keysAsValues, bool masks)
    {
        var random = new Random(seed + 50);
        TLayer layer = Layer(seed, energyBias: 0.5);
        T[] q = Of(TestData.Random<double>(random, batch * tq * Dim)), k = Of(TestData.Random<double>(random, batch * tk * Dim));
        keysAsValues &= ValueDim == Dim;
        T[] v = keysAsValues ? k : Of(TestData.Random<double>(random, batch * tk * ValueDim));
        bool[] keyPadding = masks ? TestData.Mask(random, batch * tk, 0.75) : Array.Empty<bool>();
        var mask = new AttentionMask { KeyPadding = keyPadding };
        var context = new T[batch * tq * ValueDim];
        var weights = new T[batch * tq * tk];
        layer.Forward(batch, tq, tk, q, k, keysAsValues ? default : v, context, weights, mask);
        var hardContext = new T[context.Length];
        var positions = new int[batch * tq];
        layer.ForwardHard(batch, tq, tk, q, k, keysAsValues ? default : v, hardContext, positions, mask);

        var keyProjection = new T[batch * tk * Units];
        var chunkKeyProjection = new T[batch * tk * Units];
        layer.ProjectKeys(batch, tk, k, keyProjection);
        layer.ProjectChunkKeys(batch, tk, k, chunkKeyProjection);
        var alignment = new T[batch * tk];
        for (int b = 0; b < batch; b++) alignment[b * tk] = T.One;
        var position = new int[batch];
        var stepQuery = new T[batch * Dim];
        var stepContext = new T[batch * ValueDim];
        var stepWeights = new T[batch * tk];
        for (int i = 0; i < tq; i++)
        {
            for (int b = 0; b < batch; b++) q.AsSpan((b * tq + i) * Dim, Dim).CopyTo(stepQuery.AsSpan(b * Dim));
            layer.Step(batch, tk, stepQuery, keyProjection, chunkKeyProjection, v, alignment, alignment, stepContext, stepWeights, keyPadding);
            for (int b = 0; b < batch; b++)
            {
                Assert.Equal(context.AsSpan((b * tq + i) * ValueDim, ValueDim).ToArray(), stepContext.AsSpan(b * ValueDim, ValueDim).ToArray());
                Assert.Equal(weights.AsSpan((b * tq + i) * tk, tk).ToArray(), stepWeights.AsSpan(b * tk, tk).ToArray());
            }
            layer.StepHard(batch, tk, stepQuery, keyProjection, chunkKeyProjection, v, position, stepContext, keyPadding);
            for (int b = 0; b < batch; b++)
            {
                Assert.Equal(positions[b * tq + i], position[b]);
                Assert.Equal(hardContext.AsSpan((b * tq + i) * ValueDim, ValueDim).ToArray(), stepContext.AsSpan(b * ValueDim, ValueDim).ToArray());
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Hard_decoding_attends_a_softmax_over_the_chunk_ending_at_the_monotonic_position(int seed, int batch, int tq, int tk, bool keysAsValues, bool masks)
    {
        keysAsValues &= ValueDim == Dim;
        var random = new Random(seed + 70);
        TLayer layer = Layer(seed, energyBias: 0.1, spread: 1.5);
        T[] q = Of(TestData.Random<double>(random, batch * tq * Dim)), k = Of(TestData.Random<double>(random, batch * tk * Dim));
        T[] v = keysAsValues ? k : Of(TestData.Random<double>(random, batch * tk * ValueDim));
        var (keyPadding, perQuery, allowed) = Masks(random, batch, tq, tk, masks);
        var (expectedPositions, expectedContext) = MochaReference.From(layer).Hard(batch, tq, tk, TestData.ToDouble(q), TestData.ToDouble(k), TestData.ToDouble(v), allowed);
        var context = new T[batch * tq * ValueDim];
        var positions = new int[batch * tq];
        layer.ForwardHard(batch, tq, tk, q, k, keysAsValues ? default : v, context, positions, new AttentionMask { KeyPadding = keyPadding, PerQuery = perQuery });
        Assert.Equal(expectedPositions, positions);
        TestData.AssertClose<T>(expectedContext, context, Tolerance, "context");
    }

    [Fact]
    public void Bad_input_is_refused_before_anything_is_written()
    {
        TLayer layer = Layer(1);
        int tk = 3;
        var keyProjection = new T[tk * Units];
        var context = new T[ValueDim];
        context[0] = T.One;
        var alignment = new T[tk];
        Assert.Throws<ArgumentException>(() => layer.Step(1, tk, new T[Dim], keyProjection, new T[tk * Units - 1], new T[tk * ValueDim], alignment, alignment, context, default, default));
        Assert.Throws<ArgumentException>(() => layer.Step(1, tk, new T[Dim], keyProjection, new T[tk * Units], new T[tk * ValueDim], alignment, alignment, context, new T[tk + 1], default));
        Assert.Throws<ArgumentException>(() => layer.StepHard(1, tk, new T[Dim], keyProjection, new T[tk * Units + 1], new T[tk * ValueDim], new int[1], context, default));
        Assert.Throws<ArgumentException>(() => layer.ProjectChunkKeys(1, tk, new T[tk * Dim], new T[tk * Units - 1]));
        Assert.Throws<ArgumentException>(() => layer.ProjectChunkKeys(1, 0, default, default));
        Assert.Throws<ArgumentException>(() => layer.Forward(1, 1, 0, new T[Dim], default, default, context, default, default));
        Assert.Equal(T.One, context[0]);
    }
}

public sealed class MochaW1D5U9V3Tests : MochaTests<double, MochaW1D5U9V3, MochaW1D5U9V3.Tape>;
public sealed class MochaW2D5U9V3Tests : MochaTests<double, MochaW2D5U9V3, MochaW2D5U9V3.Tape>;
public sealed class MochaW3D5U9V3Tests : MochaTests<double, MochaW3D5U9V3, MochaW3D5U9V3.Tape>;
public sealed class MochaW12D4Tests : MochaTests<double, MochaW12D4, MochaW12D4.Tape>;
public sealed class MochaMulParallelW2D6V4Tests : MochaTests<double, MochaMulParallelW2D6V4, MochaMulParallelW2D6V4.Tape>;
public sealed class MochaNormW3D5U9V3Tests : MochaTests<double, MochaNormW3D5U9V3, MochaNormW3D5U9V3.Tape>;
public sealed class MochaW3F16U37V5Tests : MochaTests<float, MochaW3F16U37V5, MochaW3F16U37V5.Tape>;
