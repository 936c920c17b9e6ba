using System;
using System.Collections.Generic;
using System.Linq;
using System.Numerics;
using Xunit;

namespace AttentionGen.Layers.Tests.Local;

/// <summary>Reads a declared layer's configuration from its generated constants (and the attribute it carries).</summary>
internal static class LocalConfig
{
    public static LocalReference.Config Of<TLayer>()
    {
        int Constant(string name) => typeof(TLayer).GetField(name) is { } f ? (int)f.GetRawConstantValue()! : 0;
        var attribute = (LocalAttentionAttribute)Attribute.GetCustomAttribute(typeof(TLayer), typeof(LocalAttentionAttribute))!;
        return new LocalReference.Config(Constant("Dim"), Constant("KeyDim"), Constant("ValueDim"), Constant("Window"),
            attribute.Score.ToString(), attribute.Alignment == LocalAlignment.Predictive, Constant("PredictorUnits"), Constant("Units"));
    }

    /// <summary>A layer from <paramref name="seed"/>, with local-p's positions spread over the whole source (a freshly initialised predictor keeps pₜ near S/2).</summary>
    public static TLayer CreateLayer<TLayer, T>(int seed)
        where TLayer : IAttentionLayer<T>, new()
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var layer = new TLayer();
        layer.ResetParameters(seed);
        foreach (Parameter<T> v in layer.Parameters.Where(p => p.Name == "predictor_vector"))
        {
            for (int i = 0; i < v.Length; i++) v.Value[i] *= T.CreateTruncating(6);
        }
        return layer;
    }
}

/// <summary>Forward against the reference (masks, Tq ≠ Tk, windows at the edges), window-only reads, thread invariance and bad input, per declared layer.</summary>
public abstract class LocalTests<TLayer, T, TTape>
    where TLayer : ILocalLayer<T, TTape>, new()
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    private static readonly LocalReference.Config Config = LocalConfig.Of<TLayer>();
    private static readonly double Tolerance = typeof(T) == typeof(float) ? 2e-5 : 1e-12;

    private static TLayer CreateLayer(int seed) => LocalConfig.CreateLayer<TLayer, T>(seed);

    private static double[]? Named(TLayer layer, string name)
        => layer.Parameters.FirstOrDefault(p => p.Name == name) is { } p ? TestData.ToDouble(p.Value) : null;

    private static (double[] Context, double[] Weights, double[] Positions) Reference(TLayer layer, int batch, int tq, int tk, T[] query, T[] keys, T[] values, bool[]? keyMask)
        => LocalReference.Forward(Config, batch, tq, tk, Named(layer, "score_weight"), Named(layer, "predictor_weight"), Named(layer, "predictor_vector"),
            TestData.ToDouble(query), TestData.ToDouble(keys), TestData.ToDouble(values), (b, t, s) => keyMask is null || keyMask[b * tk + s], Named(layer, "score_vector"));

    public static TheoryData<int, int, int, int> Shapes => new() { { 1, 1, 1, 1 }, { 2, 2, 3, 5 }, { 3, 3, 6, 6 }, { 4, 2, 7, 33 }, { 5, 2, 9, 4 }, { 6, 1, 40, 40 } };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_matches_the_reference_with_and_without_a_mask(int seed, int batch, int tq, int tk)
    {
        var random = new Random(seed);
        TLayer layer = CreateLayer(seed);
        T[] query = TestData.Random<T>(random, batch * tq * Config.Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * Config.KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * Config.ValueDim);
        foreach (bool[]? keyMask in new[] { null, TestData.Mask(random, batch * tk, 0.6) })
        {
            AttentionMask mask = keyMask is null ? default : AttentionMask.FromKeyPadding(keyMask);
            var context = new T[batch * tq * Config.ValueDim];
            var weights = Enumerable.Repeat(T.CreateTruncating(9), batch * tq * tk).ToArray(); // every entry must be written
            var positions = new T[batch * tq];
            layer.Forward(batch, tq, tk, query, keys, values, context, weights, mask, positions);
            var expected = Reference(layer, batch, tq, tk, query, keys, values, keyMask);
            TestData.AssertClose<T>(expected.Positions, positions, Tolerance * 10, "positions");
            TestData.AssertClose<T>(expected.Weights, weights, Tolerance, "weights");
            TestData.AssertClose<T>(expected.Context, context, Tolerance, "context");

            var training = new T[context.Length];
            var trainingWeights = new T[weights.Length];
            layer.Forward(new TTape(), batch, tq, tk, query, keys, values, training, trainingWeights, mask, default);
            Assert.Equal(context, training);
            Assert.Equal(weights, trainingWeights);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Per_query_and_causal_masks_combine_with_the_window(bool causal)
    {
        const int batch = 2, tq = 7, tk = 11;
        var random = new Random(causal ? 21 : 20);
        TLayer layer = CreateLayer(2);
        T[] query = TestData.Random<T>(random, batch * tq * Config.Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * Config.KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * Config.ValueDim);
        bool[] perQuery = TestData.Mask(random, batch * tq * tk, 0.7);
        bool[] padding = TestData.Mask(random, batch * tk, 0.9);
        var context = new T[batch * tq * Config.ValueDim];
        var weights = new T[batch * tq * tk];
        layer.Forward(batch, tq, tk, query, keys, values, context, weights, new AttentionMask { PerQuery = perQuery, KeyPadding = padding, Causal = causal }, default);
        var expected = LocalReference.Forward(Config, batch, tq, tk, Named(layer, "score_weight"), Named(layer, "predictor_weight"), Named(layer, "predictor_vector"),
            TestData.ToDouble(query), TestData.ToDouble(keys), TestData.ToDouble(values),
            (b, t, s) => perQuery[(b * tq + t) * tk + s] && padding[b * tk + s] && (!causal || s <= t + tk - tq), Named(layer, "score_vector"));
        TestData.AssertClose<T>(expected.Weights, weights, Tolerance, "weights");
        TestData.AssertClose<T>(expected.Context, context, Tolerance, "context");
    }

    [Fact]
    public void Keys_and_values_outside_every_window_are_never_read()
    {
        // NaN everywhere no window reaches: any read of it would poison the context. local-m's windows are known in advance;
        // for local-p they are read back from the positions the layer reports. (local-p with the concat score projects every key, kpₛ =
        // W_a,k h̄ₛ, so for it the test shows that no projection of an unreached key enters a score.)
        const int batch = 2, tq = 3, tk = 30;
        var random = new Random(11);
        TLayer layer = CreateLayer(11);
        T[] query = TestData.Random<T>(random, batch * tq * Config.Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * Config.KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * Config.ValueDim);
        var positions = new T[batch * tq];
        layer.Forward(batch, tq, tk, query, keys, values, new T[batch * tq * Config.ValueDim], default, default, positions);
        var reached = new bool[batch * tk];
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < tq; t++)
            {
                int center = Config.Predictive ? (int)Math.Floor(double.CreateTruncating(positions[b * tq + t]) + 0.5) : t + tk - tq;
                for (int s = Math.Max(0, center - Config.Window); s <= Math.Min(tk - 1, center + Config.Window); s++) reached[b * tk + s] = true;
            }
        }
        Assert.Contains(false, reached);
        T[] poisonedKeys = (T[])keys.Clone(), poisonedValues = (T[])values.Clone();
        for (int i = 0; i < reached.Length; i++)
        {
            if (reached[i]) continue;
            Array.Fill(poisonedKeys, T.NaN, i * Config.KeyDim, Config.KeyDim);
            Array.Fill(poisonedValues, T.NaN, i * Config.ValueDim, Config.ValueDim);
        }
        var clean = new T[batch * tq * Config.ValueDim];
        var poisoned = new T[clean.Length];
        layer.Forward(batch, tq, tk, query, keys, values, clean, default, default, default);
        layer.Forward(batch, tq, tk, query, poisonedKeys, poisonedValues, poisoned, default, default, default);
        Assert.Equal(clean, poisoned);
    }

    [Fact]
    public void A_window_with_every_key_masked_gives_zeros_and_no_NaN()
    {
        const int batch = 1, tq = 4, tk = 12;
        var random = new Random(5);
        TLayer layer = CreateLayer(5);
        T[] query = TestData.Random<T>(random, batch * tq * Config.Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * Config.KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * Config.ValueDim);
        var none = new bool[batch * tk];
        var context = Enumerable.Repeat(T.One, batch * tq * Config.ValueDim).ToArray();
        var weights = Enumerable.Repeat(T.One, batch * tq * tk).ToArray();
        var tape = new TTape();
        layer.Forward(tape, batch, tq, tk, query, keys, values, context, weights, AttentionMask.FromKeyPadding(none), default);
        Assert.All(context, c => Assert.Equal(T.Zero, c));
        Assert.All(weights, a => Assert.Equal(T.Zero, a));
        var dQuery = new T[query.Length];
        var dKeys = new T[keys.Length];
        var dValues = new T[values.Length];
        layer.ZeroGradients();
        layer.Backward(tape, query, keys, values, TestData.Random<T>(random, context.Length), dQuery, dKeys, dValues, default);
        Assert.All(dQuery.Concat(dKeys).Concat(dValues).Concat(layer.Parameters.SelectMany(p => p.Gradient)), g => Assert.Equal(T.Zero, g));
    }

    [Theory]
    [InlineData(37, 1, 9)] // decoder steps: the queries are projected 32 batch rows at a time, then the last 5
    [InlineData(9, 5, 6)]  // 6 batch rows (30 queries) a group, then 3
    [InlineData(2, 40, 3)] // more than 32 queries a row: a group is one row
    public void A_batch_gives_the_same_bits_as_its_rows_one_at_a_time(int batch, int tq, int tk)
    {
        var random = new Random(batch * 100 + tq);
        TLayer layer = CreateLayer(5);
        T[] query = TestData.Random<T>(random, batch * tq * Config.Dim), keys = TestData.Random<T>(random, batch * tk * Config.KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * Config.ValueDim);
        var (context, weights, positions) = (new T[batch * tq * Config.ValueDim], new T[batch * tq * tk], new T[batch * tq]);
        layer.Forward(batch, tq, tk, query, keys, values, context, weights, default, positions);
        for (int b = 0; b < batch; b++)
        {
            var (rowContext, rowWeights, rowPositions) = (new T[tq * Config.ValueDim], new T[tq * tk], new T[tq]);
            layer.Forward(1, tq, tk, query.AsSpan(b * tq * Config.Dim, tq * Config.Dim), keys.AsSpan(b * tk * Config.KeyDim, tk * Config.KeyDim),
                values.AsSpan(b * tk * Config.ValueDim, tk * Config.ValueDim), rowContext, rowWeights, default, rowPositions);
            Assert.Equal(rowContext, context.AsSpan(b * tq * Config.ValueDim, tq * Config.ValueDim).ToArray());
            Assert.Equal(rowWeights, weights.AsSpan(b * tq * tk, tq * tk).ToArray());
            Assert.Equal(rowPositions, positions.AsSpan(b * tq, tq).ToArray());
        }
    }

    [Fact]
    public void Results_do_not_depend_on_the_thread_count()
    {
        const int batch = 8, tq = 24, tk = 40;
        var random = new Random(8);
        T[] query = TestData.Random<T>(random, batch * tq * Config.Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * Config.KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * Config.ValueDim);
        T[] dContext = TestData.Random<T>(random, batch * tq * Config.ValueDim);
        (T[], T[], T[], T[], T[]) Run(int degree)
        {
            TLayer layer = CreateLayer(3);
            layer.MaxDegreeOfParallelism = degree;
            var tape = new TTape();
            var context = new T[batch * tq * Config.ValueDim];
            layer.Forward(tape, batch, tq, tk, query, keys, values, context, default, default, default);
            var dQuery = new T[query.Length];
            var dKeys = new T[keys.Length];
            var dValues = new T[values.Length];
            layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues, default);
            return (context, dQuery, dKeys, dValues, layer.Parameters.SelectMany(p => p.Gradient).ToArray());
        }
        var serial = Run(1);
        var parallel = Run(2);
        Assert.Equal(serial.Item1, parallel.Item1);
        Assert.Equal(serial.Item2, parallel.Item2);
        Assert.Equal(serial.Item3, parallel.Item3);
        Assert.Equal(serial.Item4, parallel.Item4);
        Assert.Equal(serial.Item5, parallel.Item5);
    }

    [Fact]
    public void Calls_split_over_threads_allocate_nothing_in_steady_state()
    {
        // Large enough for the forward rows, the backward rows and the projection products of every layer declared here to
        // pass the 2¹⁸ threshold (the smallest, Dim = 3 with a window of 9, does at 8 × 640 queries).
        const int batch = 8, tq = 640, tk = 650;
        var random = new Random(18);
        T[] query = TestData.Random<T>(random, batch * tq * Config.Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * Config.KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * Config.ValueDim);
        T[] dContext = TestData.Random<T>(random, batch * tq * Config.ValueDim);
        TLayer layer = CreateLayer(18);
        layer.MaxDegreeOfParallelism = 2;
        var tape = new TTape();
        var (context, positions) = (new T[batch * tq * Config.ValueDim], new T[batch * tq]);
        var (dQuery, dKeys, dValues) = (new T[query.Length], new T[keys.Length], new T[values.Length]);
        Hardening.AssertSplits(() => layer.Forward(batch, tq, tk, query, keys, values, context, default, default, positions), "inference");
        Hardening.AssertSplits(() =>
        {
            layer.Forward(tape, batch, tq, tk, query, keys, values, context, default, default, positions);
            layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues, default);
        }, "training step");
    }

    [Fact]
    public void Wrong_lengths_throw_naming_the_argument_and_sizes_before_writing_output()
    {
        TLayer layer = CreateLayer(1);
        T sentinel = T.CreateTruncating(42);
        var context = Enumerable.Repeat(sentinel, 2 * 3 * Config.ValueDim).ToArray();
        T[] query = new T[2 * 3 * Config.Dim], keys = new T[2 * 4 * Config.KeyDim], values = new T[2 * 4 * Config.ValueDim];

        var error = Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, 4, query, new T[keys.Length + 1], values, context, default, default, default));
        Assert.Equal("keys", error.ParamName);
        Assert.Contains($"must have {keys.Length} elements", error.Message);
        Assert.Contains($"but has {keys.Length + 1}", error.Message);
        error = Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, 4, new T[1], keys, values, context, default, default, default));
        Assert.Equal("query", error.ParamName);
        error = Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, 4, query, keys, values, context, new T[3], default, default));
        Assert.Equal("weights", error.ParamName);
        error = Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, 4, query, keys, values, context, default, default, new T[5]));
        Assert.Equal("positions", error.ParamName);
        Assert.Contains("[B=2, Tq=3]", error.Message);
        error = Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, 4, query, keys, values, context, default, AttentionMask.FromKeyPadding(new bool[7]), default));
        Assert.Equal("mask.KeyPadding", error.ParamName);
        error = Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, 0, query, new T[0], new T[0], context, default, default, default));
        Assert.Equal("keyLength", error.ParamName);
        error = Assert.Throws<ArgumentException>(() => layer.Forward(new TTape(), 2, 3, 4, query, keys, new T[values.Length - 1], context, default, default, default));
        Assert.Equal("values", error.ParamName);
        Assert.All(context, c => Assert.Equal(sentinel, c));

        var tape = new TTape();
        layer.Forward(tape, 2, 3, 4, query, keys, values, new T[context.Length], default, default, default);
        var dQuery = Enumerable.Repeat(sentinel, query.Length).ToArray();
        error = Assert.Throws<ArgumentException>(() => layer.Backward(tape, query, keys, values, new T[context.Length - 1], dQuery, default, default, default));
        Assert.Equal("dContext", error.ParamName);
        error = Assert.Throws<ArgumentException>(() => layer.Backward(tape, query, keys, values, new T[context.Length], dQuery, new T[2], default, default));
        Assert.Equal("dKeys", error.ParamName);
        Assert.All(dQuery, c => Assert.Equal(sentinel, c));
        error = Assert.Throws<ArgumentException>(() => layer.Backward(new TTape(), query, keys, values, new T[context.Length], default, default, default, default));
        Assert.Equal("tape", error.ParamName);
    }
}

/// <summary>Backward against central finite differences in double, for every double layer: inputs, W_a, and local-p's path through pₜ.</summary>
public abstract class LocalGradientTests<TLayer, TTape>
    where TLayer : ILocalLayer<double, TTape>, new()
    where TTape : AttentionTape, new()
{
    private static readonly LocalReference.Config Config = LocalConfig.Of<TLayer>();

    [Theory]
    [InlineData(1, 1, 1, 1, false)]
    [InlineData(2, 2, 3, 4, false)]
    [InlineData(3, 2, 5, 9, true)]
    [InlineData(4, 1, 9, 4, false)]
    [InlineData(5, 2, 6, 13, false)]
    public void Backward_matches_central_finite_differences(int seed, int batch, int tq, int tk, bool keysAsValues)
    {
        if (keysAsValues && Config.ValueDim != Config.KeyDim) keysAsValues = false;
        var random = new Random(seed);
        var layer = new TLayer();
        layer.ResetParameters(seed);
        foreach (Parameter<double> p in layer.Parameters) for (int i = 0; i < p.Length; i++) p.Value[i] += (random.NextDouble() - 0.5) * 0.8;
        double[] query = TestData.Random<double>(random, batch * tq * Config.Dim);
        double[] keys = TestData.Random<double>(random, batch * tk * Config.KeyDim);
        double[] values = keysAsValues ? Array.Empty<double>() : TestData.Random<double>(random, batch * tk * Config.ValueDim);
        bool[] keyMask = TestData.Mask(random, batch * tk, 0.75);
        keyMask[0] = true;
        double[] dContext = TestData.Random<double>(random, batch * tq * Config.ValueDim);
        double[] dWeights = TestData.Random<double>(random, batch * tq * tk);

        double Loss()
        {
            var context = new double[batch * tq * Config.ValueDim];
            var weights = new double[batch * tq * tk];
            layer.Forward(batch, tq, tk, query, keys, values, context, weights, AttentionMask.FromKeyPadding(keyMask), default);
            return context.Zip(dContext, (c, g) => c * g).Sum() + weights.Zip(dWeights, (a, g) => a * g).Sum();
        }

        var tape = new TTape();
        layer.Forward(tape, batch, tq, tk, query, keys, values, new double[batch * tq * Config.ValueDim], default, AttentionMask.FromKeyPadding(keyMask), default);
        layer.ZeroGradients();
        // ∂L/∂Q, ∂L/∂K and ∂L/∂V are written, not added to: they start as NaN, so an element the backward does not write shows.
        double[] dQuery = Enumerable.Repeat(double.NaN, query.Length).ToArray();
        double[] dKeys = Enumerable.Repeat(double.NaN, keys.Length).ToArray();
        double[] dValues = Enumerable.Repeat(double.NaN, values.Length).ToArray();
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

/// <summary>local-p only: the predictor (W_p, v_p) learns, through the Gaussian and the sigmoid.</summary>
public abstract class LocalPredictorTests<TLayer, TTape>
    where TLayer : ILocalLayer<double, TTape>, new()
    where TTape : AttentionTape, new()
{
    private static readonly LocalReference.Config Config = LocalConfig.Of<TLayer>();

    [Fact]
    public void The_position_predictor_receives_a_gradient_through_the_Gaussian()
    {
        const int batch = 1, tq = 3, tk = 20;
        var random = new Random(17);
        var layer = new TLayer();
        layer.ResetParameters(17);
        double[] query = TestData.Random<double>(random, batch * tq * Config.Dim);
        double[] keys = TestData.Random<double>(random, batch * tk * Config.KeyDim);
        double[] values = TestData.Random<double>(random, batch * tk * Config.ValueDim);
        var tape = new TTape();
        layer.Forward(tape, batch, tq, tk, query, keys, values, new double[batch * tq * Config.ValueDim], default, default, default);
        layer.ZeroGradients();
        layer.Backward(tape, query, keys, values, TestData.Random<double>(random, batch * tq * Config.ValueDim), default, default, default, default);
        Assert.Contains(layer.Parameters.Single(p => p.Name == "predictor_vector").Gradient, g => g != 0);
        Assert.Contains(layer.Parameters.Single(p => p.Name == "predictor_weight").Gradient, g => g != 0);
    }
}

public sealed class LocalPGeneralF37W3Tests : LocalTests<LocalPGeneralF37W3, float, LocalPGeneralF37W3.Tape>;
public sealed class LocalPDotF16W2U5Tests : LocalTests<LocalPDotF16W2U5, float, LocalPDotF16W2U5.Tape>;
public sealed class LocalPScaledF129W5U33Tests : LocalTests<LocalPScaledF129W5U33, float, LocalPScaledF129W5U33.Tape>;
public sealed class LocalMGeneralF12K9V5W2Tests : LocalTests<LocalMGeneralF12K9V5W2, float, LocalMGeneralF12K9V5W2.Tape>;
public sealed class LocalMScaledF64W4Tests : LocalTests<LocalMScaledF64W4, float, LocalMScaledF64W4.Tape>;
public sealed class LocalPGeneralD9K7V5W2U6Tests : LocalTests<LocalPGeneralD9K7V5W2U6, double, LocalPGeneralD9K7V5W2U6.Tape>;
public sealed class LocalPDotD8W1Tests : LocalTests<LocalPDotD8W1, double, LocalPDotD8W1.Tape>;
public sealed class LocalPScaledD3W4U1Tests : LocalTests<LocalPScaledD3W4U1, double, LocalPScaledD3W4U1.Tape>;
public sealed class LocalMGeneralD5W2Tests : LocalTests<LocalMGeneralD5W2, double, LocalMGeneralD5W2.Tape>;
public sealed class LocalMScaledD17W3Tests : LocalTests<LocalMScaledD17W3, double, LocalMScaledD17W3.Tape>;

public sealed class LocalPGeneralD9K7V5W2U6GradientTests : LocalGradientTests<LocalPGeneralD9K7V5W2U6, LocalPGeneralD9K7V5W2U6.Tape>;
public sealed class LocalPDotD8W1GradientTests : LocalGradientTests<LocalPDotD8W1, LocalPDotD8W1.Tape>;
public sealed class LocalPScaledD3W4U1GradientTests : LocalGradientTests<LocalPScaledD3W4U1, LocalPScaledD3W4U1.Tape>;
public sealed class LocalMGeneralD5W2GradientTests : LocalGradientTests<LocalMGeneralD5W2, LocalMGeneralD5W2.Tape>;
public sealed class LocalMScaledD17W3GradientTests : LocalGradientTests<LocalMScaledD17W3, LocalMScaledD17W3.Tape>;

public sealed class LocalPGeneralD9K7V5W2U6PredictorTests : LocalPredictorTests<LocalPGeneralD9K7V5W2U6, LocalPGeneralD9K7V5W2U6.Tape>;
public sealed class LocalPDotD8W1PredictorTests : LocalPredictorTests<LocalPDotD8W1, LocalPDotD8W1.Tape>;
public sealed class LocalPScaledD3W4U1PredictorTests : LocalPredictorTests<LocalPScaledD3W4U1, LocalPScaledD3W4U1.Tape>;

public sealed class LocalPConcatF37K20U33W3Tests : LocalTests<LocalPConcatF37K20U33W3, float, LocalPConcatF37K20U33W3.Tape>;
public sealed class LocalMConcatF16K24V7W2Tests : LocalTests<LocalMConcatF16K24V7W2, float, LocalMConcatF16K24V7W2.Tape>;
public sealed class LocalPConcatD9K7V5W2U6Tests : LocalTests<LocalPConcatD9K7V5W2U6, double, LocalPConcatD9K7V5W2U6.Tape>;
public sealed class LocalMConcatD9K7W3U6Tests : LocalTests<LocalMConcatD9K7W3U6, double, LocalMConcatD9K7W3U6.Tape>;
public sealed class LocalPConcatD9K7V5W2U6GradientTests : LocalGradientTests<LocalPConcatD9K7V5W2U6, LocalPConcatD9K7V5W2U6.Tape>;
public sealed class LocalMConcatD9K7W3U6GradientTests : LocalGradientTests<LocalMConcatD9K7W3U6, LocalMConcatD9K7W3U6.Tape>;
public sealed class LocalPConcatD9K7V5W2U6PredictorTests : LocalPredictorTests<LocalPConcatD9K7V5W2U6, LocalPConcatD9K7V5W2U6.Tape>;
