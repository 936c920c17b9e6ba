using System;
using System.Collections.Generic;
using System.Linq;
using System.Numerics;
using Xunit;

namespace AttentionGen.Layers.Tests.Monotonic;

/// <summary>
/// Every monotonic layer against the double reference written from the paper: soft forward (with masks, Tk = 1,
/// keys as values), row sums ≤ 1, the step API against the whole-sequence API, hard decoding against the paper's rule
/// (never moving back), soft = hard when the probabilities saturate, and bad input rejected before any output is written.
/// </summary>
public abstract class MonotonicLayerTests<T, TLayer, TTape>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TLayer : IMonotonicLayer<T, TTape>, new()
    where TTape : AttentionTape, new()
{
    protected static readonly int Dim = (int)typeof(TLayer).GetField("Dim")!.GetRawConstantValue()!;
    protected static readonly int Units = (int)typeof(TLayer).GetField("Units")!.GetRawConstantValue()!;
    protected static readonly int ValueDim = (int)typeof(TLayer).GetField("ValueDim")!.GetRawConstantValue()!;
    private static readonly double Tolerance = typeof(T) == typeof(float) ? 2e-5 : 1e-12;

    /// <summary>A layer with every parameter spread (b starts at zero) and r moved to <paramref name="energyBias"/>, so p covers (0, 1).</summary>
    internal static TLayer Layer(int seed, double energyBias = 0.3, double spread = 0.4)
    {
        var random = new Random(seed + 100);
        var layer = new TLayer();
        layer.ResetParameters(seed);
        foreach (Parameter<T> parameter in layer.Parameters)
        {
            for (int i = 0; i < parameter.Length; i++)
            {
                parameter.Value[i] += T.CreateTruncating((random.NextDouble() - 0.5) * spread);
            }
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

    [Theory]
    [MemberData(nameof(Cases))]
    public void Soft_forward_matches_the_closed_form_of_the_paper_and_rows_sum_to_at_most_one(int seed, int batch, int tq, int tk, bool keysAsValues, bool masks)
    {
        keysAsValues &= ValueDim == Dim;
        var random = new Random(seed);
        TLayer layer = Layer(seed);
        double[] query = TestData.Random<double>(random, batch * tq * Dim);
        double[] keys = TestData.Random<double>(random, batch * tk * Dim);
        double[] values = keysAsValues ? keys : TestData.Random<double>(random, batch * tk * ValueDim);
        bool[] keyPadding = masks ? TestData.Mask(random, batch * tk, 0.8) : Array.Empty<bool>();
        bool[] perQuery = masks ? TestData.Mask(random, batch * tq * tk, 0.85) : Array.Empty<bool>();
        if (masks)
        {
            for (int j = 0; j < tk; j++) perQuery[(tq - 1) * tk + j] = false; // the last query of row 0 may attend nothing
        }
        Func<int, int, int, bool>? allowed = masks ? (b, i, j) => keyPadding[b * tk + j] && perQuery[(b * tq + i) * tk + j] : null;
        var mask = new AttentionMask { KeyPadding = keyPadding, PerQuery = perQuery };

        MonotonicReference reference = MonotonicReference.From(layer);
        // The reference reads the parameters as doubles; round the inputs the same way for a float layer.
        T[] q = Of(query), k = Of(keys), v = Of(values);
        var (expectedWeights, expectedContext) = reference.Soft(batch, tq, tk, TestData.ToDouble(q), TestData.ToDouble(k), TestData.ToDouble(v), allowed);

        var context = new T[batch * tq * ValueDim];
        var weights = new T[batch * tq * tk];
        layer.Forward(batch, tq, tk, q, k, keysAsValues ? default : v, context, weights, mask);
        TestData.AssertClose<T>(expectedWeights, weights, Tolerance, "weights");
        TestData.AssertClose<T>(expectedContext, context, Tolerance, "context");

        // Every row of α is non-negative and sums to at most 1 (never renormalised).
        for (int row = 0; row < batch * tq; row++)
        {
            double sum = 0;
            for (int j = 0; j < tk; j++)
            {
                double a = double.CreateTruncating(weights[row * tk + j]);
                Assert.True(a >= 0 && !double.IsNaN(a), $"α[{row}, {j}] = {a}");
                sum += a;
            }
            Assert.True(sum <= 1 + 1e-6, $"row {row} sums to {sum}");
        }
        if (masks)
        {
            // A query with every key masked attends nothing: zero weights and a zero context, not NaN.
            Assert.All(weights.AsSpan((tq - 1) * tk, tk).ToArray(), a => Assert.Equal(T.Zero, a));
            Assert.All(context.AsSpan((tq - 1) * ValueDim, ValueDim).ToArray(), c => Assert.Equal(T.Zero, c));
        }

        // The training forward without noise gives the same numbers.
        var trainedContext = new T[context.Length];
        var trainedWeights = new T[weights.Length];
        layer.Forward(new TTape(), batch, tq, tk, q, k, keysAsValues ? default : v, trainedContext, trainedWeights, mask, null);
        Assert.Equal(context, trainedContext);
        Assert.Equal(weights, trainedWeights);
    }

    [Theory]
    [InlineData(6, 2, 7, 8)]
    [InlineData(7, 3, 9, 5)]
    public void Step_by_step_decoding_equals_the_whole_sequence(int seed, int batch, int tq, int tk)
    {
        var random = new Random(seed);
        TLayer layer = Layer(seed);
        T[] query = TestData.Random<T>(random, batch * tq * Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * Dim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        bool[] keyPadding = TestData.Mask(random, batch * tk, 0.8);
        var context = new T[batch * tq * ValueDim];
        var weights = new T[batch * tq * tk];
        layer.Forward(batch, tq, tk, query, keys, values, context, weights, AttentionMask.FromKeyPadding(keyPadding));
        var hardContext = new T[context.Length];
        var positions = new int[batch * tq];
        layer.ForwardHard(batch, tq, tk, query, keys, values, hardContext, positions, AttentionMask.FromKeyPadding(keyPadding));

        var keyProjection = new T[batch * tk * Units];
        layer.ProjectKeys(batch, tk, keys, keyProjection);
        var alignment = new T[batch * tk];
        MonotonicAlignmentInit(batch, tk, alignment);
        var position = new int[batch];
        var stepQuery = new T[batch * Dim];
        var stepContext = new T[batch * ValueDim];
        var stepHardContext = new T[batch * ValueDim];
        for (int i = 0; i < tq; i++)
        {
            for (int b = 0; b < batch; b++) query.AsSpan((b * tq + i) * Dim, Dim).CopyTo(stepQuery.AsSpan(b * Dim));
            layer.Step(batch, tk, stepQuery, keyProjection, values, alignment, alignment, stepContext, keyPadding); // in place
            layer.StepHard(batch, tk, stepQuery, keyProjection, values, position, stepHardContext, keyPadding);
            for (int b = 0; b < batch; b++)
            {
                Assert.Equal(weights.AsSpan((b * tq + i) * tk, tk).ToArray(), alignment.AsSpan(b * tk, tk).ToArray());
                Assert.Equal(context.AsSpan((b * tq + i) * ValueDim, ValueDim).ToArray(), stepContext.AsSpan(b * ValueDim, ValueDim).ToArray());
                Assert.Equal(positions[b * tq + i], position[b]);
                Assert.Equal(hardContext.AsSpan((b * tq + i) * ValueDim, ValueDim).ToArray(), stepHardContext.AsSpan(b * ValueDim, ValueDim).ToArray());
            }
        }
    }

    private static void MonotonicAlignmentInit(int batch, int tk, T[] alignment)
    {
        for (int b = 0; b < batch; b++)
        {
            alignment.AsSpan(b * tk, tk).Clear();
            alignment[b * tk] = T.One;
        }
    }

    [Theory]
    [InlineData(8, 3, 12, 15, 0.0)]
    [InlineData(9, 2, 20, 10, 1.0)]
    [InlineData(10, 2, 6, 30, -0.2)]
    public void Hard_decoding_follows_the_paper_and_never_moves_back(int seed, int batch, int tq, int tk, double energyBias)
    {
        var random = new Random(seed);
        TLayer layer = Layer(seed, energyBias, spread: 1.0);
        T[] query = TestData.Random<T>(random, batch * tq * Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * Dim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        bool[] perQuery = TestData.Mask(random, batch * tq * tk, 0.7);
        var context = new T[batch * tq * ValueDim];
        var positions = new int[batch * tq];
        layer.ForwardHard(batch, tq, tk, query, keys, values, context, positions, new AttentionMask { PerQuery = perQuery });

        var (expectedPositions, expectedContext) = MonotonicReference.From(layer).Hard(batch, tq, tk, TestData.ToDouble(query), TestData.ToDouble(keys), TestData.ToDouble(values),
            (b, i, j) => perQuery[(b * tq + i) * tk + j]);
        Assert.Equal(expectedPositions, positions);
        Assert.Contains(positions, p => p > 0); // the pointer does move
        TestData.AssertClose<T>(expectedContext, context, 0, "context");
        for (int b = 0; b < batch; b++)
        {
            int last = 0;
            for (int i = 0; i < tq; i++)
            {
                int position = positions[b * tq + i];
                if (position < 0)
                {
                    last = -1;
                    continue;
                }
                Assert.True(last >= 0 && position >= last, $"row {b}: query {i} moved from {last} back to {position}, or resumed after attending nothing");
                last = position;
            }
        }
    }

    [Fact]
    public void Bad_input_is_rejected_naming_the_argument_before_any_output_is_written()
    {
        var layer = new TLayer();
        const int batch = 2, tq = 3, tk = 4;
        var query = new T[batch * tq * Dim];
        var keys = new T[batch * tk * Dim];
        var values = new T[batch * tk * ValueDim];
        T five = T.CreateTruncating(5);
        T[] context = Enumerable.Repeat(five, batch * tq * ValueDim).ToArray();
        T[] weights = Enumerable.Repeat(five, batch * tq * tk).ToArray();

        var error = Assert.Throws<ArgumentException>(() => layer.Forward(batch, tq, tk, query.AsSpan(1), keys, values, context, weights, default));
        Assert.Equal("query", error.ParamName);
        Assert.Contains($"{query.Length}", error.Message);
        Assert.Contains($"{query.Length - 1}", error.Message);
        Assert.Equal("keys", Assert.Throws<ArgumentException>(() => layer.Forward(batch, tq, tk, query, keys.AsSpan(2), values, context, weights, default)).ParamName);
        Assert.Equal("values", Assert.Throws<ArgumentException>(() => layer.Forward(batch, tq, tk, query, keys, values.AsSpan(1), context, weights, default)).ParamName);
        Assert.Equal("context", Assert.Throws<ArgumentException>(() => layer.Forward(batch, tq, tk, query, keys, values, context.AsSpan(1), weights, default)).ParamName);
        Assert.Equal("weights", Assert.Throws<ArgumentException>(() => layer.Forward(batch, tq, tk, query, keys, values, context, weights.AsSpan(1), default)).ParamName);
        Assert.Equal("keyLength", Assert.Throws<ArgumentException>(() => layer.Forward(batch, tq, 0, query, default, values, context, weights, default)).ParamName);
        Assert.Equal("batch", Assert.Throws<ArgumentException>(() => layer.Forward(-1, tq, tk, query, keys, values, context, weights, default)).ParamName);
        Assert.Equal("mask.KeyPadding", Assert.Throws<ArgumentException>(() => layer.Forward(batch, tq, tk, query, keys, values, context, weights, AttentionMask.FromKeyPadding(new bool[3]))).ParamName);
        Assert.Equal("weights", Assert.Throws<ArgumentException>(() => layer.Forward(batch, tq, tk, query, keys, values, context, MemoryMarshalCast(keys, weights.Length), default)).ParamName);
        var tape = new TTape();
        Assert.Equal("query", Assert.Throws<ArgumentException>(() => layer.Forward(tape, batch, tq, tk, query.AsSpan(1), keys, values, context, weights, default, null)).ParamName);
        Assert.False(tape.IsRecorded);
        Assert.Equal("tape", Assert.Throws<ArgumentException>(() => layer.Backward(tape, query, keys, values, context, default, default, default, default)).ParamName);

        var positions = Enumerable.Repeat(9, batch * tq).ToArray();
        Assert.Equal("positions", Assert.Throws<ArgumentException>(() => layer.ForwardHard(batch, tq, tk, query, keys, values, context, positions.AsSpan(1), default)).ParamName);
        Assert.Equal("context", Assert.Throws<ArgumentException>(() => layer.ForwardHard(batch, tq, tk, query, keys, values, context.AsSpan(1), positions, default)).ParamName);

        var keyProjection = new T[batch * tk * Units];
        var alignment = Enumerable.Repeat(five, batch * tk).ToArray();
        var stepContext = Enumerable.Repeat(five, batch * ValueDim).ToArray();
        Assert.Equal("keyProjection", Assert.Throws<ArgumentException>(() => layer.Step(batch, tk, new T[batch * Dim], keyProjection.AsSpan(1), values, alignment, alignment, stepContext, default)).ParamName);
        Assert.Equal("previousAlignment", Assert.Throws<ArgumentException>(() => layer.Step(batch, tk, new T[batch * Dim], keyProjection, values, alignment.AsSpan(1), alignment, stepContext, default)).ParamName);
        Assert.Equal("keyPadding", Assert.Throws<ArgumentException>(() => layer.Step(batch, tk, new T[batch * Dim], keyProjection, values, new T[batch * tk], alignment, stepContext, new bool[1])).ParamName);
        Assert.Equal("alignment", Assert.Throws<ArgumentException>(() => layer.Step(batch, tk, new T[batch * Dim], keyProjection, values, new T[batch * tk], alignment.AsSpan(0, 3), stepContext, default)).ParamName);
        var position = new[] { 0, tk };
        Assert.Equal("position", Assert.Throws<ArgumentException>(() => layer.StepHard(batch, tk, new T[batch * Dim], keyProjection, values, position, stepContext, default)).ParamName);
        Assert.Equal("query", Assert.Throws<ArgumentException>(() => layer.StepHard(batch, tk, new T[Dim], keyProjection, values, new int[batch], stepContext, default)).ParamName);
        Assert.Equal("keyProjection", Assert.Throws<ArgumentException>(() => layer.ProjectKeys(batch, tk, keys, keyProjection.AsSpan(1))).ParamName);

        Assert.All(context, c => Assert.Equal(five, c));
        Assert.All(weights, a => Assert.Equal(five, a));
        Assert.All(positions, p => Assert.Equal(9, p));
        Assert.All(alignment, a => Assert.Equal(five, a));
        Assert.All(stepContext, c => Assert.Equal(five, c));
        Assert.Equal(new[] { 0, tk }, position);
    }

    // The weights output aliasing the keys: an output that overlaps an input.
    private static Span<T> MemoryMarshalCast(T[] keys, int length) => keys.AsSpan(0, Math.Min(length, keys.Length));
}

public sealed class MonotonicF7Tests : MonotonicLayerTests<float, MonotonicF7, MonotonicF7.Tape>;
public sealed class MonotonicF16U37V5Tests : MonotonicLayerTests<float, MonotonicF16U37V5, MonotonicF16U37V5.Tape>;
public sealed class MonotonicMulF33Tests : MonotonicLayerTests<float, MonotonicMulF33, MonotonicMulF33.Tape>;
public sealed class MonotonicD7Tests : MonotonicLayerTests<double, MonotonicD7, MonotonicD7.Tape>;
public sealed class MonotonicD5U9V3Tests : MonotonicLayerTests<double, MonotonicD5U9V3, MonotonicD5U9V3.Tape>;
public sealed class MonotonicMulD6V4Tests : MonotonicLayerTests<double, MonotonicMulD6V4, MonotonicMulD6V4.Tape>;
public sealed class MonotonicNormF8U12V3Tests : MonotonicLayerTests<float, MonotonicNormF8U12V3, MonotonicNormF8U12V3.Tape>;
public sealed class MonotonicNormD5U9V3Tests : MonotonicLayerTests<double, MonotonicNormD5U9V3, MonotonicNormD5U9V3.Tape>;
