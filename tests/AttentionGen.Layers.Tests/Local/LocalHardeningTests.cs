using System;
using System.Linq;
using System.Numerics;
using Xunit;

namespace AttentionGen.Layers.Tests.Local;

/// <summary>
/// Failure modes and extremes of [LocalAttention]: concurrent inference on one instance, NaN confined to its batch row (and, for
/// local-m, to the queries whose window holds it; a NaN query in local-p gives a NaN position, not a crash), logits of ±1e4,
/// denormals, Tk = 1 and Tk = 0, a hundred thousand keys without steady-state allocation, tape reuse across lengths,
/// overlapping outputs.
/// </summary>
public sealed class LocalHardeningTests
{
    private static double[]? Named<T>(IAttentionLayer<T> layer, string name) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => layer.Parameters.FirstOrDefault(p => p.Name == name) is { } p ? TestData.ToDouble(p.Value) : null;

    private static (double[] Context, double[] Weights, double[] Positions) Reference<TLayer, T>(TLayer layer, int batch, int tq, int tk, T[] query, T[] keys, T[] values)
        where TLayer : IAttentionLayer<T> where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => LocalReference.Forward(LocalConfig.Of<TLayer>(), batch, tq, tk, Named(layer, "score_weight"), Named(layer, "predictor_weight"), Named(layer, "predictor_vector"),
            TestData.ToDouble(query), TestData.ToDouble(keys), TestData.ToDouble(values), (_, _, _) => true, Named(layer, "score_vector"));

    [Fact]
    public void One_instance_serves_many_threads_with_the_serial_results()
    {
        var layer = new LocalPGeneralF37W3(seed: 3) { MaxDegreeOfParallelism = 1 };
        const int batch = 2, tq = 5, tk = 13, dim = 37;
        var inputs = Enumerable.Range(0, 24).Select(i =>
        {
            var random = new Random(100 + i);
            return (Q: TestData.Random<float>(random, batch * tq * dim), K: TestData.Random<float>(random, batch * tk * dim));
        }).ToArray();
        // The context and the positions pₜ (appended) both equal the serial ones.
        Hardening.ConcurrentRunsMatchSerial<float>(inputs.Length, batch * tq * dim + batch * tq, (i, result) =>
            layer.Forward(batch, tq, tk, inputs[i].Q, inputs[i].K, default, result.AsSpan(0, batch * tq * dim), default, default, result.AsSpan(batch * tq * dim)));
    }

    [Fact]
    public void NaN_in_a_key_stays_in_its_batch_row_and_in_the_windows_that_hold_it()
    {
        // local-m, Tq = Tk, D = 2: key 7 lies in the windows of queries 5 … 9 only.
        var layer = new LocalMGeneralF12K9V5W2(seed: 5);
        const int batch = 3, t = 12, poisonedKey = 7, d = LocalMGeneralF12K9V5W2.Window;
        var random = new Random(7);
        float[] query = TestData.Random<float>(random, batch * t * 12), keys = TestData.Random<float>(random, batch * t * 9), values = TestData.Random<float>(random, batch * t * 5);
        var clean = new float[batch * t * 5];
        layer.Forward(batch, t, t, query, keys, values, clean, default, default, default);
        float[] poisoned = (float[])keys.Clone();
        poisoned[(1 * t + poisonedKey) * 9 + 4] = float.NaN;
        var context = new float[clean.Length];
        layer.Forward(batch, t, t, query, poisoned, values, context, default, default, default);
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < t; i++)
            {
                float[] expected = clean.AsSpan((b * t + i) * 5, 5).ToArray(), actual = context.AsSpan((b * t + i) * 5, 5).ToArray();
                if (b == 1 && Math.Abs(i - poisonedKey) <= d) Assert.All(actual, c => Assert.True(float.IsNaN(c)));
                else Assert.Equal(expected, actual);
            }
    }

    [Fact]
    public void NaN_in_a_local_p_query_gives_a_NaN_position_and_context_in_its_row_only()
    {
        var layer = new LocalPGeneralF37W3(seed: 5);
        const int batch = 3, tq = 4, tk = 20, dim = 37;
        var random = new Random(8);
        float[] query = TestData.Random<float>(random, batch * tq * dim), keys = TestData.Random<float>(random, batch * tk * dim);
        var clean = new float[batch * tq * dim];
        var cleanPositions = new float[batch * tq];
        layer.Forward(batch, tq, tk, query, keys, default, clean, default, default, cleanPositions);
        float[] poisoned = (float[])query.Clone();
        poisoned[(2 * tq + 1) * dim] = float.NaN; // batch row 2, query 1
        var context = new float[clean.Length];
        var positions = new float[batch * tq];
        var weights = new float[batch * tq * tk];
        layer.Forward(batch, tq, tk, poisoned, keys, default, context, weights, default, positions);
        int row = 2 * tq + 1;
        Assert.True(float.IsNaN(positions[row]));
        Assert.All(context.AsSpan(row * dim, dim).ToArray(), c => Assert.True(float.IsNaN(c)));
        Assert.Equal(cleanPositions.Where((_, i) => i != row), positions.Where((_, i) => i != row));
        Assert.Equal(clean.Where((_, i) => i / dim != row), context.Where((_, i) => i / dim != row));
    }

    [Fact]
    public void Logits_of_ten_thousand_give_finite_weights_equal_to_the_reference()
    {
        // local-p, dot score, D = 1, double: queries and keys of 35 give scores of ±9800 inside every window.
        var layer = new LocalPDotD8W1(seed: 3);
        const int tq = 3, tk = 6;
        double[] signs = { 1, -1, 0.999, -0.5, 1, 0.9995 };
        double[] query = Enumerable.Repeat(35.0, tq * 8).ToArray();
        double[] keys = Enumerable.Range(0, tk * 8).Select(i => 35 * signs[i / 8]).ToArray();
        double[] values = TestData.Random<double>(new Random(4), tk * 8);
        var context = new double[tq * 8];
        var weights = new double[tq * tk];
        var positions = new double[tq];
        layer.Forward(1, tq, tk, query, keys, values, context, weights, default, positions);
        var expected = Reference<LocalPDotD8W1, double>(layer, 1, tq, tk, query, keys, values);
        Assert.All(context, c => Assert.True(double.IsFinite(c)));
        TestData.AssertClose<double>(expected.Weights, weights, 1e-9, "weights");
        TestData.AssertClose<double>(expected.Context, context, 1e-9, "context");

        var floatLayer = new LocalMScaledF64W4(seed: 3);
        float[] q = Enumerable.Repeat(100f, 2 * 64).ToArray(); // scaled dot: 64 · 100² / 8 = 8e4 … scores of ±1e4 and beyond
        float[] k = Enumerable.Range(0, 9 * 64).Select(i => (i / 64 % 3 - 1) * 12.5f).ToArray();
        var c = new float[2 * 64];
        var a = new float[2 * 9];
        floatLayer.Forward(1, 2, 9, q, k, default, c, a, default, default);
        Assert.All(c, x => Assert.True(float.IsFinite(x)));
        Assert.All(a, x => Assert.True(float.IsFinite(x) && x >= 0 && x <= 1));
        for (int i = 0; i < 2; i++) Assert.Equal(1.0, a.AsSpan(i * 9, 9).ToArray().Sum(), 5);
    }

    [Fact]
    public void Denormal_inputs_give_the_reference_result()
    {
        var layer = new LocalMGeneralD5W2(seed: 4);
        const int tq = 4, tk = 6;
        double[] query = Enumerable.Range(0, tq * 5).Select(i => (i % 3 - 1) * 1e-310).ToArray();
        double[] keys = Enumerable.Range(0, tk * 5).Select(i => i % 2 == 0 ? 5e-320 : -3e-315).ToArray();
        double[] values = Enumerable.Range(0, tk * 5).Select(i => (i + 1) * 1e-311).ToArray();
        var context = new double[tq * 5];
        var weights = new double[tq * tk];
        layer.Forward(1, tq, tk, query, keys, values, context, weights, default, default);
        var expected = Reference<LocalMGeneralD5W2, double>(layer, 1, tq, tk, query, keys, values);
        TestData.AssertClose<double>(expected.Weights, weights, 1e-12, "weights");
        Hardening.AssertRelative<double>(expected.Context, context, 1e-9, "context");
        Assert.Contains(context, double.IsSubnormal);
    }

    [Fact]
    public void A_single_key_matches_the_reference_and_no_keys_is_an_argument_exception()
    {
        var monotonic = new LocalMGeneralF12K9V5W2(seed: 8);
        var random = new Random(9);
        float[] query = TestData.Random<float>(random, 2 * 3 * 12), keys = TestData.Random<float>(random, 2 * 9), values = TestData.Random<float>(random, 2 * 5);
        var context = new float[2 * 3 * 5];
        var weights = new float[2 * 3];
        monotonic.Forward(2, 3, 1, query, keys, values, context, weights, default, default);
        Assert.All(weights, a => Assert.Equal(1f, a)); // local-m: the one key is in every window, and there is no Gaussian
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < 3; i++)
                Assert.Equal(values.AsSpan(b * 5, 5).ToArray(), context.AsSpan((b * 3 + i) * 5, 5).ToArray());

        var predictive = new LocalPGeneralD9K7V5W2U6(seed: 8);
        double[] q = TestData.Random<double>(random, 2 * 3 * 9), k = TestData.Random<double>(random, 2 * 7), v = TestData.Random<double>(random, 2 * 5);
        var c = new double[2 * 3 * 5];
        var a = new double[2 * 3];
        var p = new double[2 * 3];
        predictive.Forward(2, 3, 1, q, k, v, c, a, default, p);
        var expected = Reference<LocalPGeneralD9K7V5W2U6, double>(predictive, 2, 3, 1, q, k, v);
        TestData.AssertClose<double>(expected.Positions, p, 1e-12, "positions");
        TestData.AssertClose<double>(expected.Weights, a, 1e-12, "weights");
        TestData.AssertClose<double>(expected.Context, c, 1e-12, "context");

        Assert.Equal("keyLength", Assert.Throws<ArgumentException>(() => monotonic.Forward(2, 3, 0, query, default, default, context, default, default, default)).ParamName);
        Assert.Equal("keyLength", Assert.Throws<ArgumentException>(() => predictive.Forward(2, 3, 0, q, default, default, c, default, default, default)).ParamName);
    }

    [Fact]
    public void A_hundred_thousand_keys_run_in_bounded_memory_without_steady_state_allocation()
    {
        // Double: in float, pₜ ≈ 5e4 carries an absolute rounding of ~4e-3, which moves the Gaussian weights by ~1 % (docs/numerics.md).
        var layer = new LocalPGeneralD9K7V5W2U6(seed: 1) { MaxDegreeOfParallelism = 1 };
        const int tq = 4, tk = 100_000;
        var random = new Random(4);
        double[] query = TestData.Random<double>(random, tq * 9), keys = TestData.Random<double>(random, tk * 7), values = TestData.Random<double>(random, tk * 5);
        foreach (var v in layer.Parameters.Where(p => p.Name == "predictor_vector")) for (int i = 0; i < v.Length; i++) v.Value[i] *= 6;
        var context = new double[tq * 5];
        var positions = new double[tq];
        long allocated = Hardening.SteadyStateAllocation(() => layer.Forward(1, tq, tk, query, keys, values, context, default, default, positions));
        Assert.Equal(0, allocated);
        var expected = Reference<LocalPGeneralD9K7V5W2U6, double>(layer, 1, tq, tk, query, keys, values);
        TestData.AssertClose<double>(expected.Positions, positions, 1e-12, "positions");
        TestData.AssertClose<double>(expected.Context, context, 1e-9, "context");
        Assert.True(positions.Max() - positions.Min() > 1000, "the queries' windows are spread over the source");
    }

    [Fact]
    public void A_tape_reused_across_lengths_gives_what_a_fresh_tape_gives()
    {
        var layer = new LocalPGeneralF37W3(seed: 6);
        var reused = new LocalPGeneralF37W3.Tape();
        const int dim = 37;
        foreach (var (batch, tq, tk) in new[] { (3, 4, 9), (1, 1, 2), (2, 5, 30), (3, 4, 9) })
        {
            var random = new Random(batch * 100 + tq * 10 + tk);
            float[] query = TestData.Random<float>(random, batch * tq * dim), keys = TestData.Random<float>(random, batch * tk * dim), values = TestData.Random<float>(random, batch * tk * dim);
            float[] dContext = TestData.Random<float>(random, batch * tq * dim);
            float[] Step(LocalPGeneralF37W3.Tape tape)
            {
                layer.ZeroGradients();
                var context = new float[batch * tq * dim];
                var positions = new float[batch * tq];
                layer.Forward(tape, batch, tq, tk, query, keys, values, context, default, default, positions);
                var (dQuery, dKeys, dValues) = (new float[query.Length], new float[keys.Length], new float[values.Length]);
                layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues, default);
                return context.Concat(positions).Concat(dQuery).Concat(dKeys).Concat(dValues).Concat(layer.Parameters.SelectMany(p => p.Gradient)).ToArray();
            }
            Assert.Equal(Step(new LocalPGeneralF37W3.Tape()), Step(reused));
        }
    }

    [Fact]
    public void Outputs_that_overlap_inputs_or_each_other_are_rejected()
    {
        var layer = new LocalPGeneralF37W3(seed: 1);
        const int dim = 37;
        var random = new Random(1);
        float[] query = TestData.Random<float>(random, 2 * dim), keys = TestData.Random<float>(random, 3 * dim);
        Assert.Equal("context", Assert.Throws<ArgumentException>(() => layer.Forward(1, 2, 3, query, keys, default, keys.AsSpan(0, 2 * dim), default, default, default)).ParamName);
        Assert.Equal("positions", Assert.Throws<ArgumentException>(() => layer.Forward(1, 2, 3, query, keys, default, new float[2 * dim], default, default, query.AsSpan(1, 2))).ParamName);
        float[] shared = new float[2 * dim + 6];
        Assert.Equal("weights", Assert.Throws<ArgumentException>(() => layer.Forward(1, 2, 3, query, keys, default, shared.AsSpan(0, 2 * dim), shared.AsSpan(2 * dim - 1, 6), default, default)).ParamName);
    }
}
