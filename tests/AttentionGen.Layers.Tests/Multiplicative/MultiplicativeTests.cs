using System;
using System.Collections.Generic;
using System.Linq;
using System.Numerics;
using System.Reflection;
using Xunit;

namespace AttentionGen.Layers.Tests.Multiplicative;

/// <summary>Forward against the reference (masks, causal, learned scale), thread invariance and bad input, per declared layer.</summary>
public abstract class MultiplicativeTests<TLayer, T, TTape>
    where TLayer : IMultiplicativeLayer<T, TTape>, new()
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    protected static readonly int Dim = Constant("Dim"), KeyDim = Constant("KeyDim"), ValueDim = Constant("ValueDim");
    protected static readonly double Tolerance = typeof(T) == typeof(float) ? 1e-5 : 1e-12;
    protected abstract string Score { get; }
    protected abstract bool Causal { get; }

    private static int Constant(string name) => (int)typeof(TLayer).GetField(name)!.GetRawConstantValue()!;

    protected static TLayer CreateLayer(int seed)
    {
        var layer = new TLayer();
        layer.ResetParameters(seed);
        foreach (Parameter<T> scale in layer.Parameters.Where(p => p.Name == "scale"))
        {
            scale.Value[0] = T.CreateTruncating(1.7); // away from its initial 1, so the scale's path shows
        }
        return layer;
    }

    protected (double[] Context, double[] Weights) Reference(TLayer layer, int batch, int tq, int tk, T[] query, T[] keys, T[] values, bool[]? keyMask)
    {
        double[]? w = layer.Parameters.FirstOrDefault(p => p.Name == "score_weight") is { } weight ? TestData.ToDouble(weight.Value) : null;
        double scale = layer.Parameters.FirstOrDefault(p => p.Name == "scale") is { } g ? double.CreateTruncating(g.Value[0]) : 1;
        return MultiplicativeReference.Forward(batch, tq, tk, Dim, KeyDim, ValueDim, Score, w, scale, Causal,
            TestData.ToDouble(query), TestData.ToDouble(keys), TestData.ToDouble(values), (b, i, j) => keyMask is null || keyMask[b * tk + j]);
    }

    // 8 × 8 = 64 query rows is the fewest for which the general score packs Wᵀ for its projection; 9 × 7 = 63 is one short.
    public static TheoryData<int, int, int, int> Shapes => new() { { 1, 1, 1, 1 }, { 2, 2, 3, 5 }, { 3, 3, 4, 4 }, { 4, 2, 7, 33 }, { 5, 8, 8, 6 }, { 6, 9, 7, 3 } };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_matches_the_reference_with_and_without_a_mask(int seed, int batch, int tq, int tk)
    {
        var random = new Random(seed);
        TLayer layer = CreateLayer(seed);
        T[] query = TestData.Random<T>(random, batch * tq * Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        foreach (bool[]? keyMask in new[] { null, TestData.Mask(random, batch * tk, 0.6) })
        {
            var context = new T[batch * tq * ValueDim];
            var weights = new T[batch * tq * tk];
            layer.Forward(batch, tq, tk, query, keys, values, context, weights, keyMask is null ? default : AttentionMask.FromKeyPadding(keyMask));
            var (expectedContext, expectedWeights) = Reference(layer, batch, tq, tk, query, keys, values, keyMask);
            TestData.AssertClose<T>(expectedWeights, weights, Tolerance, "weights");
            TestData.AssertClose<T>(expectedContext, context, Tolerance, "context");

            var training = new T[context.Length];
            layer.Forward(new TTape(), batch, tq, tk, query, keys, values, training, default, keyMask is null ? default : AttentionMask.FromKeyPadding(keyMask));
            Assert.Equal(context, training);
        }
    }

    // The generated layer's private ParallelWorkThreshold: calls with less work stay on the calling thread.
    private static readonly long ParallelWorkThreshold = (long)typeof(TLayer).GetField("ParallelWorkThreshold", BindingFlags.NonPublic | BindingFlags.Static)!.GetRawConstantValue()!;

    // Enough batch rows that every split of forward and backward happens: the batch rows of both passes
    // (B·Tq·Tk·(Dk + Dv) multiply-adds) and, for the general score, ∂W and ∂Q cut by their output rows (B·Tq·Dk·Dq).
    private int BatchThatSplits(int tq, int tk)
    {
        long perRow = Math.Min((long)tq * tk * (KeyDim + ValueDim), Score == "General" ? (long)tq * KeyDim * Dim : long.MaxValue);
        return (int)Math.Max(8, 2 * ParallelWorkThreshold / perRow + 1);
    }

    [Fact]
    public void Results_do_not_depend_on_the_thread_count()
    {
        const int tq = 24, tk = 40;
        int batch = BatchThatSplits(tq, tk);
        var random = new Random(8);
        T[] query = TestData.Random<T>(random, batch * tq * Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        T[] dContext = TestData.Random<T>(random, batch * tq * ValueDim);
        T[] dWeights = TestData.Random<T>(random, batch * tq * tk);
        bool[] keyMask = TestData.Mask(random, batch * tk, 0.8);
        (T[] Context, T[] DQuery, T[] DKeys, T[] DValues, T[] Gradients) Run(int degree)
        {
            TLayer layer = CreateLayer(3);
            layer.MaxDegreeOfParallelism = degree;
            var tape = new TTape();
            var context = new T[batch * tq * ValueDim];
            layer.Forward(tape, batch, tq, tk, query, keys, values, context, default, AttentionMask.FromKeyPadding(keyMask));
            var dQuery = new T[query.Length];
            var dKeys = new T[keys.Length];
            var dValues = new T[values.Length];
            layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues, dWeights);
            return (context, dQuery, dKeys, dValues, layer.Parameters.SelectMany(p => p.Gradient).ToArray());
        }
        var serial = Run(1);
        Assert.Contains(serial.DQuery, x => x != T.Zero);
        if (serial.Gradients.Length > 0) Assert.Contains(serial.Gradients, x => x != T.Zero); // the dot scores have no parameters
        foreach (int degree in new[] { 2, 3 })
        {
            var parallel = Run(degree);
            Assert.Equal(serial.Context, parallel.Context);
            Assert.Equal(serial.DQuery, parallel.DQuery);
            Assert.Equal(serial.DKeys, parallel.DKeys);
            Assert.Equal(serial.DValues, parallel.DValues);
            Assert.Equal(serial.Gradients, parallel.Gradients);
        }

        // On two threads inference and the training step really split, and in steady state allocate nothing on the calling thread.
        TLayer split = CreateLayer(3);
        split.MaxDegreeOfParallelism = 2;
        var splitTape = new TTape();
        var splitContext = new T[batch * tq * ValueDim];
        var (splitDQuery, splitDKeys, splitDValues) = (new T[query.Length], new T[keys.Length], new T[values.Length]);
        Hardening.AssertSplits(() => split.Forward(batch, tq, tk, query, keys, values, splitContext, default, AttentionMask.FromKeyPadding(keyMask)), "inference");
        Hardening.AssertSplits(() =>
        {
            split.Forward(splitTape, batch, tq, tk, query, keys, values, splitContext, default, AttentionMask.FromKeyPadding(keyMask));
            split.Backward(splitTape, query, keys, values, dContext, splitDQuery, splitDKeys, splitDValues, dWeights);
        }, "training step");
    }

    // A call split over threads packs the general score's Wᵀ on each thread and keeps it for that call's other rows only:
    // after the parameters change, the next split call must use the new ones (a thread reusing its copy would not).
    [Fact]
    public void Split_calls_follow_parameter_changes_between_calls()
    {
        const int tq = 24, tk = 40;
        int batch = BatchThatSplits(tq, tk);
        var random = new Random(9);
        T[] query = TestData.Random<T>(random, batch * tq * Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        TLayer parallel = CreateLayer(4), serial = CreateLayer(4);
        parallel.MaxDegreeOfParallelism = 2;
        serial.MaxDegreeOfParallelism = 1;
        var before = new T[batch * tq * ValueDim];
        for (int call = 0; call < 3; call++)
        {
            var expected = new T[batch * tq * ValueDim];
            var actual = new T[batch * tq * ValueDim];
            serial.Forward(batch, tq, tk, query, keys, values, expected, default, default);
            parallel.Forward(batch, tq, tk, query, keys, values, actual, default, default);
            Assert.Equal(expected, actual);
            if (call > 0 && serial.Parameters.Count > 0) Assert.NotEqual(before, actual); // the change reached the output
            before = actual;
            // an optimiser's step: every parameter changes in place, on both layers alike
            foreach (var layer in new[] { parallel, serial })
            {
                foreach (var parameter in layer.Parameters)
                {
                    for (int i = 0; i < parameter.Value.Length; i++) parameter.Value[i] += T.CreateTruncating(0.01 * ((i % 7) - 3));
                }
            }
        }
    }

    [Fact]
    public void Wrong_lengths_throw_naming_the_argument_before_writing_output()
    {
        TLayer layer = CreateLayer(1);
        T sentinel = T.CreateTruncating(42);
        var context = Enumerable.Repeat(sentinel, 2 * 3 * ValueDim).ToArray();
        var error = Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, 4, new T[2 * 3 * Dim], new T[2 * 4 * KeyDim + 1], new T[2 * 4 * ValueDim], context, default, default));
        Assert.Equal("keys", error.ParamName);
        error = Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, 4, new T[2 * 3 * Dim], new T[2 * 4 * KeyDim], new T[2 * 4 * ValueDim], context, new T[3], default));
        Assert.Equal("weights", error.ParamName);
        Assert.All(context, c => Assert.Equal(sentinel, c));
    }
}

/// <summary>Backward against central finite differences in double, for every double layer.</summary>
public abstract class MultiplicativeGradientTests<TLayer, TTape>
    where TLayer : IMultiplicativeLayer<double, TTape>, new()
    where TTape : AttentionTape, new()
{
    private static readonly int Dim = (int)typeof(TLayer).GetField("Dim")!.GetRawConstantValue()!;
    private static readonly int KeyDim = (int)typeof(TLayer).GetField("KeyDim")!.GetRawConstantValue()!;
    private static readonly int ValueDim = (int)typeof(TLayer).GetField("ValueDim")!.GetRawConstantValue()!;

    [Theory]
    [InlineData(1, 1, 1, 1, false)]
    [InlineData(2, 2, 3, 4, false)]
    [InlineData(3, 2, 4, 4, true)]
    [InlineData(4, 4, 16, 3, false)] // 64 query rows: the general score's forward packs Wᵀ
    public void Backward_matches_central_finite_differences(int seed, int batch, int tq, int tk, bool keysAsValues)
    {
        if (keysAsValues && ValueDim != KeyDim) keysAsValues = false;
        var random = new Random(seed);
        var layer = new TLayer();
        layer.ResetParameters(seed);
        foreach (Parameter<double> p in layer.Parameters) for (int i = 0; i < p.Length; i++) p.Value[i] += (random.NextDouble() - 0.5) * 0.4;
        double[] query = TestData.Random<double>(random, batch * tq * Dim);
        double[] keys = TestData.Random<double>(random, batch * tk * KeyDim);
        double[] values = keysAsValues ? Array.Empty<double>() : TestData.Random<double>(random, batch * tk * ValueDim);
        bool[] keyMask = TestData.Mask(random, batch * tk, 0.75);
        keyMask[0] = true;
        double[] dContext = TestData.Random<double>(random, batch * tq * ValueDim);
        double[] dWeights = TestData.Random<double>(random, batch * tq * tk);

        double Loss()
        {
            var context = new double[batch * tq * ValueDim];
            var weights = new double[batch * tq * tk];
            layer.Forward(batch, tq, tk, query, keys, values, context, weights, AttentionMask.FromKeyPadding(keyMask));
            return context.Zip(dContext, (c, g) => c * g).Sum() + weights.Zip(dWeights, (a, g) => a * g).Sum();
        }

        var tape = new TTape();
        layer.Forward(tape, batch, tq, tk, query, keys, values, new double[batch * tq * ValueDim], default, AttentionMask.FromKeyPadding(keyMask));
        layer.ZeroGradients();
        var dQuery = new double[query.Length];
        var dKeys = new double[keys.Length];
        var dValues = new double[values.Length];
        layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues, dWeights);

        var failures = new List<string>();

        void Compare(string name, double[] target, double[] analytic) => failures.AddRange(TestData.GradientFailures(name, Loss, target, analytic));
        Compare("dQuery", query, dQuery);
        Compare("dKeys", keys, dKeys);
        if (!keysAsValues) Compare("dValues", values, dValues);
        foreach (Parameter<double> p in layer.Parameters) Compare(p.Name, p.Value, (double[])p.Gradient.Clone());
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }
}

public sealed class GeneralF37Tests : MultiplicativeTests<GeneralF37, float, GeneralF37.Tape> { protected override string Score => "General"; protected override bool Causal => false; }
public sealed class GeneralF12K9V5Tests : MultiplicativeTests<GeneralF12K9V5, float, GeneralF12K9V5.Tape> { protected override string Score => "General"; protected override bool Causal => false; }
public sealed class GeneralF129CausalTests : MultiplicativeTests<GeneralF129Causal, float, GeneralF129Causal.Tape> { protected override string Score => "General"; protected override bool Causal => true; }
public sealed class DotF16Tests : MultiplicativeTests<DotF16, float, DotF16.Tape> { protected override string Score => "Dot"; protected override bool Causal => false; }
public sealed class DotF33V3Tests : MultiplicativeTests<DotF33V3, float, DotF33V3.Tape> { protected override string Score => "Dot"; protected override bool Causal => false; }
public sealed class ScaledF64Tests : MultiplicativeTests<ScaledF64, float, ScaledF64.Tape> { protected override string Score => "ScaledDot"; protected override bool Causal => false; }
public sealed class ScaledF7LearnedTests : MultiplicativeTests<ScaledF7Learned, float, ScaledF7Learned.Tape> { protected override string Score => "ScaledDot"; protected override bool Causal => false; }
public sealed class GeneralD9K7V5Tests : MultiplicativeTests<GeneralD9K7V5, double, GeneralD9K7V5.Tape> { protected override string Score => "General"; protected override bool Causal => false; }
public sealed class DotD17Tests : MultiplicativeTests<DotD17, double, DotD17.Tape> { protected override string Score => "Dot"; protected override bool Causal => false; }
public sealed class ScaledD8LearnedTests : MultiplicativeTests<ScaledD8Learned, double, ScaledD8Learned.Tape> { protected override string Score => "ScaledDot"; protected override bool Causal => false; }
public sealed class GeneralD3LearnedCausalTests : MultiplicativeTests<GeneralD3LearnedCausal, double, GeneralD3LearnedCausal.Tape> { protected override string Score => "General"; protected override bool Causal => true; }

public sealed class GeneralD9K7V5GradientTests : MultiplicativeGradientTests<GeneralD9K7V5, GeneralD9K7V5.Tape>;
public sealed class DotD17GradientTests : MultiplicativeGradientTests<DotD17, DotD17.Tape>;
public sealed class ScaledD8LearnedGradientTests : MultiplicativeGradientTests<ScaledD8Learned, ScaledD8Learned.Tape>;
public sealed class GeneralD3LearnedCausalGradientTests : MultiplicativeGradientTests<GeneralD3LearnedCausal, GeneralD3LearnedCausal.Tape>;
