using System;
using System.Collections.Generic;
using System.Linq;
using Xunit;

namespace AttentionGen.Layers.Tests.MultiHead;

/// <summary>
/// Backward against central finite differences in double, for every input and every parameter: L = Σ output ⊙ R for a random R,
/// on shapes inside one tile (where the backward reads the weights the forward stored) and across tile and block boundaries
/// (where it recomputes them), with padding, per-query and causal masks.
/// </summary>
public abstract class MultiHeadGradientTests<TLayer, TTape, TCache>
    where TLayer : IMultiHeadLayer<double, TTape, TCache>, new()
    where TTape : AttentionTape, new()
{
    private static int Constant(string name) => (int)typeof(TLayer).GetField(name)!.GetRawConstantValue()!;

    public static TheoryData<int, int, int, int, string> Cases => new()
    {
        { 1, 2, 3, 5, "none" },
        { 2, 2, 4, 6, "padding" },
        { 3, 1, 50, 70, "per-query" },
        { 4, 1, 37, 80, "causal" },
        { 5, 1, 40, 5, "causal" }, // one tile (the backward reads the stored weights); the first query block sees no key
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Backward_matches_finite_differences(int seed, int batch, int tq, int tk, string maskKind)
    {
        int modelDim = Constant("ModelDim"), keyDim = Constant("KeyDim"), valueDim = Constant("ValueDim");
        var random = new Random(seed);
        var layer = new TLayer();
        layer.ResetParameters(seed);
        foreach (Parameter<double> p in layer.Parameters.Where(p => p.Name.Contains("bias")))
        {
            TestData.Random<double>(random, p.Value.Length, 0.5).CopyTo(p.Value, 0);
        }
        double[] query = TestData.Random<double>(random, batch * tq * modelDim);
        double[] keys = TestData.Random<double>(random, batch * tk * keyDim);
        double[] values = TestData.Random<double>(random, batch * tk * valueDim);
        double[] upstream = TestData.Random<double>(random, batch * tq * modelDim);
        bool[]? padding = maskKind == "padding" ? TestData.Mask(random, batch * tk, 0.6) : null;
        bool[]? perQuery = maskKind == "per-query" ? TestData.Mask(random, batch * tq * tk, 0.5) : null;
        bool causal = maskKind == "causal";
        if (padding is not null) padding[0] = padding[1] = padding[2] = padding[3] = padding[4] = false; // one batch row fully masked on the first keys

        var output = new double[batch * tq * modelDim];
        double Loss()
        {
            layer.Forward(batch, tq, tk, query, keys, values, output, default, new AttentionMask { KeyPadding = padding, PerQuery = perQuery, Causal = causal }, true);
            double sum = 0;
            for (int i = 0; i < output.Length; i++) sum += output[i] * upstream[i];
            return sum;
        }

        var tape = new TTape();
        layer.ZeroGradients();
        layer.Forward(tape, batch, tq, tk, query, keys, values, output, default, new AttentionMask { KeyPadding = padding, PerQuery = perQuery, Causal = causal }, true);
        var dQuery = new double[query.Length];
        var dKeys = new double[keys.Length];
        var dValues = new double[values.Length];
        layer.Backward(tape, query, keys, values, upstream, dQuery, dKeys, dValues);

        var failures = new List<string>();
        failures.AddRange(TestData.GradientFailures("query", Loss, query, dQuery));
        failures.AddRange(TestData.GradientFailures("keys", Loss, keys, dKeys));
        failures.AddRange(TestData.GradientFailures("values", Loss, values, dValues));
        foreach (Parameter<double> p in layer.Parameters)
        {
            failures.AddRange(TestData.GradientFailures(p.Name, Loss, p.Value, (double[])p.Gradient.Clone()));
        }
        Assert.Empty(failures);
    }

    [Theory]
    [InlineData(5, 2, 3, 4, false)]
    [InlineData(6, 1, 50, 70, true)]
    [InlineData(7, 2, 40, 5, true)] // one tile: stored weights, and a first query block that sees no key
    [InlineData(8, 1, 0, 70, false)] // no queries: the keys' and values' gradients are zero
    public void The_core_backward_matches_finite_differences(int seed, int batch, int tq, int tk, bool causal)
    {
        int heads = Constant("Heads"), headDim = Constant("HeadDim");
        var random = new Random(seed);
        var layer = new TLayer();
        double[] q = TestData.Random<double>(random, batch * heads * tq * headDim);
        double[] k = TestData.Random<double>(random, batch * heads * tk * headDim);
        double[] v = TestData.Random<double>(random, batch * heads * tk * headDim);
        double[] upstream = TestData.Random<double>(random, q.Length);
        bool[] padding = TestData.Mask(random, batch * tk, 0.7);
        var output = new double[q.Length];
        double Loss()
        {
            layer.ScaledDotProductAttention(batch, tq, tk, q, k, v, output, new AttentionMask { KeyPadding = padding, Causal = causal });
            return output.Select((o, i) => o * upstream[i]).Sum();
        }
        var tape = new TTape();
        layer.ScaledDotProductAttention(tape, batch, tq, tk, q, k, v, output, new AttentionMask { KeyPadding = padding, Causal = causal });
        // The backward writes the gradients, whatever the spans held: rows nothing reaches (queries that see no key, keys of no
        // query) are written too, as zeros.
        double[] dq = Enumerable.Repeat(double.NaN, q.Length).ToArray(), dk = Enumerable.Repeat(double.NaN, k.Length).ToArray(), dv = Enumerable.Repeat(double.NaN, v.Length).ToArray();
        layer.ScaledDotProductAttentionBackward(tape, upstream, dq, dk, dv);
        var failures = new List<string>();
        failures.AddRange(TestData.GradientFailures("q", Loss, q, dq));
        failures.AddRange(TestData.GradientFailures("k", Loss, k, dk));
        failures.AddRange(TestData.GradientFailures("v", Loss, v, dv));
        Assert.Empty(failures);
    }

    public static TheoryData<int, int, int, int, string, bool> BiasCases => new()
    {
        { 11, 2, 3, 5, "none", true },
        { 12, 2, 4, 6, "padding", false },
        { 13, 1, 50, 70, "causal", true },   // across tiles: the backward recomputes S = QKᵀ/√d + bias from the tape's copy
        { 14, 2, 33, 70, "none", false },
        { 15, 1, 40, 5, "causal", false },   // one tile: the stored weights
    };

    // L = Σ output ⊙ R with an additive bias ([Tq, Tk] when shared, else [B, H, Tq, Tk]) holding a few −∞ entries: the gradients of the
    // inputs, of every parameter and of the bias itself against central differences.
    [Theory]
    [MemberData(nameof(BiasCases))]
    public void Backward_with_a_bias_matches_finite_differences_including_the_bias_gradient(int seed, int batch, int tq, int tk, string maskKind, bool shared)
    {
        int modelDim = Constant("ModelDim"), keyDim = Constant("KeyDim"), valueDim = Constant("ValueDim"), heads = Constant("Heads");
        var random = new Random(seed);
        var layer = new TLayer();
        layer.ResetParameters(seed);
        foreach (Parameter<double> p in layer.Parameters.Where(p => p.Name.Contains("bias")))
        {
            TestData.Random<double>(random, p.Value.Length, 0.5).CopyTo(p.Value, 0);
        }
        double[] query = TestData.Random<double>(random, batch * tq * modelDim);
        double[] keys = TestData.Random<double>(random, batch * tk * keyDim);
        double[] values = TestData.Random<double>(random, batch * tk * valueDim);
        double[] upstream = TestData.Random<double>(random, batch * tq * modelDim);
        double[] bias = TestData.Random<double>(random, (shared ? 1 : batch * heads) * tq * tk, 2);
        for (int x = 0; x < bias.Length; x += 7) bias[x] = double.NegativeInfinity;
        bool[]? padding = maskKind == "padding" ? TestData.Mask(random, batch * tk, 0.6) : null;
        bool causal = maskKind == "causal";

        var output = new double[batch * tq * modelDim];
        double Loss()
        {
            layer.Forward(batch, tq, tk, query, keys, values, output, default, new AttentionMask { KeyPadding = padding, Causal = causal }, true, bias);
            double sum = 0;
            for (int i = 0; i < output.Length; i++) sum += output[i] * upstream[i];
            return sum;
        }

        var tape = new TTape();
        layer.ZeroGradients();
        layer.Forward(tape, batch, tq, tk, query, keys, values, output, default, new AttentionMask { KeyPadding = padding, Causal = causal }, true, bias);
        var dQuery = new double[query.Length];
        var dKeys = new double[keys.Length];
        var dValues = new double[values.Length];
        var dBias = new double[bias.Length];
        layer.Backward(tape, query, keys, values, upstream, dQuery, dKeys, dValues, dBias);

        var failures = new List<string>();
        failures.AddRange(TestData.GradientFailures("query", Loss, query, dQuery));
        failures.AddRange(TestData.GradientFailures("keys", Loss, keys, dKeys));
        failures.AddRange(TestData.GradientFailures("values", Loss, values, dValues));
        failures.AddRange(TestData.SampledGradientFailures("attentionBias", Loss, bias, dBias, sample: 600));
        foreach (Parameter<double> p in layer.Parameters)
        {
            failures.AddRange(TestData.GradientFailures(p.Name, Loss, p.Value, (double[])p.Gradient.Clone()));
        }
        Assert.Empty(failures);
        Assert.Contains(dBias, g => g != 0);
        for (int x = 0; x < bias.Length; x += 7) Assert.Equal(0.0, dBias[x]); // a −∞ entry has zero weight and zero gradient

        // The other shape's gradient from the same tape: [Tq, Tk] is the sum of [B, H, Tq, Tk] over batch rows and heads (in head order).
        var perHead = new double[batch * heads * tq * tk];
        var summed = new double[tq * tk];
        layer.Backward(tape, query, keys, values, upstream, default, default, default, perHead);
        layer.Backward(tape, query, keys, values, upstream, default, default, default, summed);
        var expected = new double[tq * tk];
        for (int head = 0; head < batch * heads; head++)
        for (int x = 0; x < tq * tk; x++)
            expected[x] += perHead[head * tq * tk + x];
        Assert.Equal(expected, summed);
    }

    [Theory]
    [InlineData(16, 2, 3, 4, false, true)]
    [InlineData(17, 1, 50, 70, true, false)]
    [InlineData(18, 2, 40, 5, true, true)]
    public void The_core_backward_with_a_bias_matches_finite_differences(int seed, int batch, int tq, int tk, bool causal, bool shared)
    {
        int heads = Constant("Heads"), headDim = Constant("HeadDim");
        var random = new Random(seed);
        var layer = new TLayer();
        double[] q = TestData.Random<double>(random, batch * heads * tq * headDim);
        double[] k = TestData.Random<double>(random, batch * heads * tk * headDim);
        double[] v = TestData.Random<double>(random, batch * heads * tk * headDim);
        double[] upstream = TestData.Random<double>(random, q.Length);
        double[] bias = TestData.Random<double>(random, (shared ? 1 : batch * heads) * tq * tk, 2);
        for (int x = 3; x < bias.Length; x += 11) bias[x] = double.NegativeInfinity;
        var output = new double[q.Length];
        double Loss()
        {
            layer.ScaledDotProductAttention(batch, tq, tk, q, k, v, output, new AttentionMask { Causal = causal }, bias);
            return output.Select((o, i) => o * upstream[i]).Sum();
        }
        var tape = new TTape();
        layer.ScaledDotProductAttention(tape, batch, tq, tk, q, k, v, output, new AttentionMask { Causal = causal }, bias);
        double[] dq = new double[q.Length], dk = new double[k.Length], dv = new double[v.Length], dBias = new double[bias.Length];
        layer.ScaledDotProductAttentionBackward(tape, upstream, dq, dk, dv, dBias);
        var failures = new List<string>();
        failures.AddRange(TestData.GradientFailures("q", Loss, q, dq));
        failures.AddRange(TestData.GradientFailures("k", Loss, k, dk));
        failures.AddRange(TestData.GradientFailures("v", Loss, v, dv));
        failures.AddRange(TestData.SampledGradientFailures("attentionBias", Loss, bias, dBias, sample: 600));
        Assert.Empty(failures);
        Assert.Contains(dBias, g => g != 0);
    }

    [Fact]
    public void Gradients_accumulate_over_calls_and_ZeroGradients_clears_them()
    {
        int modelDim = Constant("ModelDim"), keyDim = Constant("KeyDim"), valueDim = Constant("ValueDim");
        var random = new Random(3);
        var layer = new TLayer();
        double[] query = TestData.Random<double>(random, 2 * modelDim), keys = TestData.Random<double>(random, 3 * keyDim);
        double[] values = TestData.Random<double>(random, 3 * valueDim), upstream = TestData.Random<double>(random, 2 * modelDim);
        double[][] Step()
        {
            var tape = new TTape();
            layer.Forward(tape, 1, 2, 3, query, keys, values, new double[2 * modelDim], default, default, true);
            layer.Backward(tape, query, keys, values, upstream, default, default, default);
            return layer.Parameters.Select(p => (double[])p.Gradient.Clone()).ToArray();
        }
        layer.ZeroGradients();
        double[][] once = Step();
        double[][] twice = Step();
        for (int p = 0; p < once.Length; p++)
        for (int i = 0; i < once[p].Length; i++)
            Assert.Equal(2 * once[p][i], twice[p][i], 12);
        layer.ZeroGradients();
        Assert.All(layer.Parameters, p => Assert.All(p.Gradient, g => Assert.Equal(0.0, g)));
    }
}

public sealed class HeadsD6x2GradientTests : MultiHeadGradientTests<HeadsD6x2, HeadsD6x2.Tape, HeadsD6x2.KeyValueCache>;
public sealed class HeadsD8x4K5V3CausalGradientTests : MultiHeadGradientTests<HeadsD8x4K5V3Causal, HeadsD8x4K5V3Causal.Tape, HeadsD8x4K5V3Causal.KeyValueCache>;
public sealed class HeadsD6x3NoBiasGradientTests : MultiHeadGradientTests<HeadsD6x3NoBias, HeadsD6x3NoBias.Tape, HeadsD6x3NoBias.KeyValueCache>;
