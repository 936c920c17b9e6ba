using System;
using System.Linq;
using System.Numerics;
using Xunit;

namespace AttentionGen.Layers.Tests.Local;

/// <summary>
/// What only Luong's concat score v_aᵀ tanh(W_a [hₜ; h̄ₛ]) inside the window adds to the shared local tests (LocalTests,
/// LocalGradientTests, LocalPredictorTests run on the concat layers too): the W_a layout, bit-identical results on a call large
/// enough that every phase (forward rows, backward rows, projection products) is split over threads, one instance serving
/// concurrent inference, no steady-state allocation in inference and training, NaN confined to the windows that hold it, saturated scores, a reused tape,
/// and the decoding pair ProjectKeys / ForwardWithKeyProjection (bit-identical to Forward, checked before it writes, no allocation).
/// </summary>
public abstract class LocalConcatTests<TLayer, T, TTape>
    where TLayer : IConcatLocalLayer<T, TTape>, new()
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    private static readonly LocalReference.Config Config = LocalConfig.Of<TLayer>();

    private static TLayer CreateLayer(int seed) => LocalConfig.CreateLayer<TLayer, T>(seed);

    private static Parameter<T> Named(TLayer layer, string name) => layer.Parameters.Single(p => p.Name == name);

    [Fact]
    public void W_a_is_one_Units_by_Dim_plus_KeyDim_matrix_with_the_query_columns_first()
    {
        TLayer layer = CreateLayer(1);
        Parameter<T> weight = Named(layer, "score_weight");
        Assert.Equal(new[] { Config.Units, Config.Dim + Config.KeyDim }, weight.Shape.ToArray());
        Assert.Equal(new[] { Config.Units }, Named(layer, "score_vector").Shape.ToArray());

        // Zeroing the query columns of every row leaves the score independent of hₜ: with equal windows, two different queries
        // then weigh the window the same (local-m; for local-p the predictor still moves pₜ, so compare local-m only).
        if (Config.Predictive) return;
        for (int u = 0; u < Config.Units; u++) Array.Clear(weight.Value, u * (Config.Dim + Config.KeyDim), Config.Dim);
        var random = new Random(2);
        const int tq = 2, tk = 2;
        T[] keys = TestData.Random<T>(random, tk * Config.KeyDim), values = TestData.Random<T>(random, tk * Config.ValueDim);
        T[] query = TestData.Random<T>(random, tq * Config.Dim, scale: 3);
        var weights = new T[tq * tk];
        layer.Forward(1, tq, tk, query, keys, values, new T[tq * Config.ValueDim], weights, default, default);
        Assert.Equal(weights[0], weights[2]); // both queries see keys 0 and 1 (D ≥ 1) and score them alike
        Assert.Equal(weights[1], weights[3]);
    }

    [Fact]
    public void A_decoder_step_over_a_long_key_cache_gives_the_last_row_of_the_full_call()
    {
        // One query against Tk keys sees the window a full Tq = Tk call gives its last query (local-m: pₜ = Tk − 1; local-p:
        // the same predicted pₜ, S = Tk either way). local-m projects only the keys its windows can hold, from Tk − Tq − D on.
        const int tk = 60;
        var random = new Random(14);
        TLayer layer = CreateLayer(14);
        T[] query = TestData.Random<T>(random, tk * Config.Dim), keys = TestData.Random<T>(random, tk * Config.KeyDim);
        T[] values = TestData.Random<T>(random, tk * Config.ValueDim);
        var full = new T[tk * Config.ValueDim];
        layer.Forward(1, tk, tk, query, keys, values, full, default, default, default);
        var step = new T[Config.ValueDim];
        layer.Forward(1, 1, tk, query.AsSpan((tk - 1) * Config.Dim), keys, values, step, default, default, default);
        var expected = LocalReference.Forward(Config, 1, 1, tk, TestData.ToDouble(Named(layer, "score_weight").Value),
            layer.Parameters.FirstOrDefault(p => p.Name == "predictor_weight") is { } w ? TestData.ToDouble(w.Value) : null,
            layer.Parameters.FirstOrDefault(p => p.Name == "predictor_vector") is { } v ? TestData.ToDouble(v.Value) : null,
            TestData.ToDouble(query.AsSpan((tk - 1) * Config.Dim).ToArray()), TestData.ToDouble(keys), TestData.ToDouble(values), (_, _, _) => true,
            TestData.ToDouble(Named(layer, "score_vector").Value));
        double tolerance = typeof(T) == typeof(float) ? 2e-5 : 1e-12;
        TestData.AssertClose<T>(expected.Context, step, tolerance, "step context");
        TestData.AssertClose<T>(TestData.ToDouble(full.AsSpan((tk - 1) * Config.ValueDim).ToArray()), step, tolerance, "step against the full call's last row");
    }

    [Fact]
    public void A_key_projection_computed_once_gives_bit_identical_results_to_Forward()
    {
        // B = 3 and Tk = 7 put rows outside whole 4-row tiles of the projection kernel; ProjectKeys projects all B·Tk keys in one
        // product while Forward projects each batch row's (local-m: from Tk − Tq − D on), so every key must come out the same.
        const int batch = 3, tq = 5, tk = 7;
        var random = new Random(21);
        TLayer layer = CreateLayer(21);
        T[] query = TestData.Random<T>(random, batch * tq * Config.Dim), keys = TestData.Random<T>(random, batch * tk * Config.KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * Config.ValueDim);
        var mask = AttentionMask.FromKeyPadding(TestData.Mask(random, batch * tk, 0.8));
        var (context, weights, positions) = (new T[batch * tq * Config.ValueDim], new T[batch * tq * tk], new T[batch * tq]);
        layer.Forward(batch, tq, tk, query, keys, values, context, weights, mask, positions);

        var keyProjection = new T[batch * tk * Config.Units];
        layer.ProjectKeys(batch, tk, keys, keyProjection);
        var (stepContext, stepWeights, stepPositions) = (new T[context.Length], new T[weights.Length], new T[positions.Length]);
        layer.ForwardWithKeyProjection(batch, tq, tk, query, keyProjection, values, stepContext, stepWeights, mask, stepPositions);
        Assert.Equal(context, stepContext);
        Assert.Equal(weights, stepWeights);
        Assert.Equal(positions, stepPositions);

        // The projection itself is K W_a,kᵀ, W_a,k being the last KeyDim columns of each row of score_weight.
        T[] scoreWeight = Named(layer, "score_weight").Value;
        for (int r = 0; r < batch * tk; r += 4)
        {
            for (int u = 0; u < Config.Units; u++)
            {
                double expected = 0;
                for (int d = 0; d < Config.KeyDim; d++)
                {
                    expected += double.CreateTruncating(keys[r * Config.KeyDim + d]) * double.CreateTruncating(scoreWeight[u * (Config.Dim + Config.KeyDim) + Config.Dim + d]);
                }
                Assert.Equal(expected, double.CreateTruncating(keyProjection[r * Config.Units + u]), typeof(T) == typeof(float) ? 1e-5 : 1e-12);
            }
        }

        // Running the keys' projection through the step again, with other queries, reuses it unchanged.
        T[] otherQuery = TestData.Random<T>(random, batch * tq * Config.Dim);
        layer.Forward(batch, tq, tk, otherQuery, keys, values, context, default, default, default);
        layer.ForwardWithKeyProjection(batch, tq, tk, otherQuery, keyProjection, values, stepContext, default, default, default);
        Assert.Equal(context, stepContext);
    }

    [Fact]
    public void The_key_projection_calls_check_every_argument_before_writing_and_allocate_nothing()
    {
        const int batch = 2, tq = 3, tk = 4;
        var random = new Random(22);
        TLayer layer = CreateLayer(22);
        layer.MaxDegreeOfParallelism = 1;
        T[] query = TestData.Random<T>(random, batch * tq * Config.Dim), keys = TestData.Random<T>(random, batch * tk * Config.KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * Config.ValueDim);
        var keyProjection = new T[batch * tk * Config.Units];

        // ProjectKeys: wrong lengths name the argument; nothing is written.
        var untouched = Enumerable.Repeat(T.CreateTruncating(7), keyProjection.Length).ToArray();
        var exception = Assert.Throws<ArgumentException>(() => layer.ProjectKeys(batch, tk, keys.AsSpan(1), untouched));
        Assert.Equal("keys", exception.ParamName);
        Assert.Equal("keyProjection", Assert.Throws<ArgumentException>(() => layer.ProjectKeys(batch, tk, keys, untouched.AsSpan(1))).ParamName);
        Assert.All(untouched, x => Assert.Equal(T.CreateTruncating(7), x));
        Assert.Equal("keyLength", Assert.Throws<ArgumentException>(() => layer.ProjectKeys(batch, 0, default, default)).ParamName);

        // ForwardWithKeyProjection: a projection of the wrong width is named (with the expected shape), values are required,
        // and an output overlapping the projection is refused; the context keeps its contents.
        layer.ProjectKeys(batch, tk, keys, keyProjection);
        var context = Enumerable.Repeat(T.CreateTruncating(7), batch * tq * Config.ValueDim).ToArray();
        exception = Assert.Throws<ArgumentException>(() => layer.ForwardWithKeyProjection(batch, tq, tk, query, keys, values, context, default, default, default));
        Assert.Equal("keyProjection", exception.ParamName);
        Assert.Contains($"Units={Config.Units}", exception.Message);
        Assert.Equal("values", Assert.Throws<ArgumentException>(() => layer.ForwardWithKeyProjection(batch, tq, tk, query, keyProjection, default, context, default, default, default)).ParamName);
        Assert.Equal("context", Assert.Throws<ArgumentException>(() => layer.ForwardWithKeyProjection(batch, tq, tk, query, keyProjection, values, keyProjection.AsSpan(0, context.Length), default, default, default)).ParamName);
        Assert.All(context, x => Assert.Equal(T.CreateTruncating(7), x));

        Assert.Equal(0, Hardening.SteadyStateAllocation(() => layer.ForwardWithKeyProjection(batch, tq, tk, query, keyProjection, values, context, default, default, default)));
        Assert.Equal(0, Hardening.SteadyStateAllocation(() => layer.ProjectKeys(batch, tk, keys, keyProjection)));
    }

    [Fact]
    public void Every_phase_split_over_threads_gives_bit_identical_results()
    {
        // B·Tq·window·(Units + ValueDim) and the forward's work pass the 2¹⁸ threshold for every concat layer declared here, so
        // the forward rows, the backward rows and the projection products are all really shared by two threads.
        const int batch = 8, tq = 640, tk = 650;
        long backwardRows = (long)batch * tq * Math.Min(2 * Config.Window + 1, tk) * (Config.Units + Config.ValueDim);
        Assert.True(backwardRows >= 1L << 18, $"backward rows work {backwardRows} does not split");
        var random = new Random(8);
        T[] query = TestData.Random<T>(random, batch * tq * Config.Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * Config.KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * Config.ValueDim);
        T[] dContext = TestData.Random<T>(random, batch * tq * Config.ValueDim);
        bool[] padding = TestData.Mask(random, batch * tk, 0.8);
        T[] Run(int degree)
        {
            TLayer layer = CreateLayer(3);
            layer.MaxDegreeOfParallelism = degree;
            var tape = new TTape();
            var context = new T[batch * tq * Config.ValueDim];
            var positions = new T[batch * tq];
            layer.Forward(tape, batch, tq, tk, query, keys, values, context, default, AttentionMask.FromKeyPadding(padding), positions);
            var inference = new T[context.Length];
            layer.Forward(batch, tq, tk, query, keys, values, inference, default, AttentionMask.FromKeyPadding(padding), default);
            Assert.Equal(context, inference);
            var (dQuery, dKeys, dValues) = (new T[query.Length], new T[keys.Length], new T[values.Length]);
            layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues, default);
            return context.Concat(positions).Concat(dQuery).Concat(dKeys).Concat(dValues).Concat(layer.Parameters.SelectMany(p => p.Gradient)).ToArray();
        }
        T[] serial = Run(1);
        Assert.Equal(serial, Run(2));
        Assert.Equal(serial, Run(4));

        // The decoding call from a kept key projection splits over two threads too, and then allocates nothing in steady state.
        TLayer split = CreateLayer(3);
        split.MaxDegreeOfParallelism = 2;
        var keyProjection = new T[batch * tk * Config.Units];
        split.ProjectKeys(batch, tk, keys, keyProjection);
        var stepContext = new T[batch * tq * Config.ValueDim];
        Hardening.AssertSplits(() => split.ForwardWithKeyProjection(batch, tq, tk, query, keyProjection, values, stepContext, default, AttentionMask.FromKeyPadding(padding), default), "ForwardWithKeyProjection");
    }

    [Fact]
    public void One_instance_serves_many_threads_with_the_serial_results()
    {
        // W_a's halves are packed into each call's own scratch, never into the instance.
        TLayer layer = CreateLayer(3);
        layer.MaxDegreeOfParallelism = 1;
        const int batch = 2, tq = 5, tk = 13;
        var inputs = Enumerable.Range(0, 16).Select(i =>
        {
            var random = new Random(100 + i);
            return (Q: TestData.Random<T>(random, batch * tq * Config.Dim), K: TestData.Random<T>(random, batch * tk * Config.KeyDim), V: TestData.Random<T>(random, batch * tk * Config.ValueDim));
        }).ToArray();
        int contextLength = batch * tq * Config.ValueDim;
        Hardening.ConcurrentRunsMatchSerial<T>(inputs.Length, contextLength + batch * tq, (i, result) =>
            layer.Forward(batch, tq, tk, inputs[i].Q, inputs[i].K, inputs[i].V, result.AsSpan(0, contextLength), default, default, result.AsSpan(contextLength)));
    }

    [Fact]
    public void Inference_and_training_allocate_nothing_in_steady_state_on_one_thread()
    {
        const int batch = 2, tq = 6, tk = 3000; // the key projections [Tk, Units] are rented, not allocated
        TLayer layer = CreateLayer(4);
        layer.MaxDegreeOfParallelism = 1;
        var random = new Random(4);
        T[] query = TestData.Random<T>(random, batch * tq * Config.Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * Config.KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * Config.ValueDim);
        T[] dContext = TestData.Random<T>(random, batch * tq * Config.ValueDim);
        var context = new T[batch * tq * Config.ValueDim];
        var positions = new T[batch * tq];
        Assert.Equal(0, Hardening.SteadyStateAllocation(() => layer.Forward(batch, tq, tk, query, keys, values, context, default, default, positions)));
        var tape = new TTape();
        var (dQuery, dKeys, dValues) = (new T[query.Length], new T[keys.Length], new T[values.Length]);
        Assert.Equal(0, Hardening.SteadyStateAllocation(() =>
        {
            layer.Forward(tape, batch, tq, tk, query, keys, values, context, default, default, default);
            layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues, default);
        }));
    }

    [Fact]
    public void NaN_in_a_key_stays_in_its_batch_row_and_in_the_windows_that_hold_it()
    {
        // Every key is projected (kpₛ = W_a,k h̄ₛ), but a key's projection enters only the scores of the windows that hold it.
        const int batch = 3, tq = 14, tk = 14, poisonedKey = 6;
        var random = new Random(7);
        TLayer layer = CreateLayer(5);
        T[] query = TestData.Random<T>(random, batch * tq * Config.Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * Config.KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * Config.ValueDim);
        var clean = new T[batch * tq * Config.ValueDim];
        var positions = new T[batch * tq];
        layer.Forward(batch, tq, tk, query, keys, values, clean, default, default, positions);
        T[] poisoned = (T[])keys.Clone();
        poisoned[(1 * tk + poisonedKey) * Config.KeyDim + Config.KeyDim / 2] = T.NaN;
        var context = new T[clean.Length];
        layer.Forward(batch, tq, tk, query, poisoned, values, context, default, default, default);
        int touched = 0;
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < tq; t++)
            {
                int center = Config.Predictive ? (int)Math.Floor(double.CreateTruncating(positions[b * tq + t]) + 0.5) : t;
                T[] expected = clean.AsSpan((b * tq + t) * Config.ValueDim, Config.ValueDim).ToArray();
                T[] actual = context.AsSpan((b * tq + t) * Config.ValueDim, Config.ValueDim).ToArray();
                if (b == 1 && Math.Abs(center - poisonedKey) <= Config.Window)
                {
                    touched++;
                    Assert.All(actual, c => Assert.True(T.IsNaN(c)));
                }
                else Assert.Equal(expected, actual);
            }
        if (!Config.Predictive) Assert.Equal(2 * Config.Window + 1, touched);
    }

    [Fact]
    public void Saturated_scores_give_finite_weights_equal_to_the_reference()
    {
        // Inputs of ±300 put every tanh deep in saturation (±1): the scores stay within ±‖v_a‖₁ and the weights finite.
        const int batch = 1, tq = 5, tk = 9;
        var random = new Random(9);
        TLayer layer = CreateLayer(9);
        T[] query = TestData.Random<T>(random, batch * tq * Config.Dim, scale: 300);
        T[] keys = TestData.Random<T>(random, batch * tk * Config.KeyDim, scale: 300);
        T[] values = TestData.Random<T>(random, batch * tk * Config.ValueDim);
        var context = new T[batch * tq * Config.ValueDim];
        var weights = new T[batch * tq * tk];
        layer.Forward(batch, tq, tk, query, keys, values, context, weights, default, default);
        var expected = LocalReference.Forward(Config, batch, tq, tk, TestData.ToDouble(Named(layer, "score_weight").Value),
            layer.Parameters.FirstOrDefault(p => p.Name == "predictor_weight") is { } w ? TestData.ToDouble(w.Value) : null,
            layer.Parameters.FirstOrDefault(p => p.Name == "predictor_vector") is { } v ? TestData.ToDouble(v.Value) : null,
            TestData.ToDouble(query), TestData.ToDouble(keys), TestData.ToDouble(values), (_, _, _) => true, TestData.ToDouble(Named(layer, "score_vector").Value));
        Assert.All(context, c => Assert.True(T.IsFinite(c)));
        double tolerance = typeof(T) == typeof(float) ? 1e-4 : 1e-12;
        TestData.AssertClose<T>(expected.Weights, weights, tolerance, "weights");
        TestData.AssertClose<T>(expected.Context, context, tolerance, "context");
    }

    [Fact]
    public void A_tape_reused_across_lengths_gives_what_a_fresh_tape_gives()
    {
        TLayer layer = CreateLayer(6);
        var reused = new TTape();
        foreach (var (batch, tq, tk) in new[] { (3, 4, 9), (1, 1, 2), (2, 5, 30), (3, 4, 9) })
        {
            var random = new Random(batch * 100 + tq * 10 + tk);
            T[] query = TestData.Random<T>(random, batch * tq * Config.Dim), keys = TestData.Random<T>(random, batch * tk * Config.KeyDim);
            T[] values = TestData.Random<T>(random, batch * tk * Config.ValueDim), dContext = TestData.Random<T>(random, batch * tq * Config.ValueDim);
            T[] Step(TTape tape)
            {
                layer.ZeroGradients();
                var context = new T[batch * tq * Config.ValueDim];
                layer.Forward(tape, batch, tq, tk, query, keys, values, context, default, default, default);
                var (dQuery, dKeys, dValues) = (new T[query.Length], new T[keys.Length], new T[values.Length]);
                layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues, default);
                return context.Concat(dQuery).Concat(dKeys).Concat(dValues).Concat(layer.Parameters.SelectMany(p => p.Gradient)).ToArray();
            }
            Assert.Equal(Step(new TTape()), Step(reused));
        }
    }

    [Fact]
    public void Backward_accumulates_into_the_parameter_gradients()
    {
        // Two backward passes of one forward give twice one pass's ∂W_a and ∂v_a (the split halves are copied out and back in).
        const int batch = 2, tq = 4, tk = 7;
        var random = new Random(12);
        TLayer layer = CreateLayer(12);
        T[] query = TestData.Random<T>(random, batch * tq * Config.Dim), keys = TestData.Random<T>(random, batch * tk * Config.KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * Config.ValueDim), dContext = TestData.Random<T>(random, batch * tq * Config.ValueDim);
        var tape = new TTape();
        layer.Forward(tape, batch, tq, tk, query, keys, values, new T[batch * tq * Config.ValueDim], default, default, default);
        layer.ZeroGradients();
        layer.Backward(tape, query, keys, values, dContext, default, default, default, default);
        T[] once = layer.Parameters.SelectMany(p => p.Gradient).ToArray();
        layer.Backward(tape, query, keys, values, dContext, default, default, default, default);
        T[] twice = layer.Parameters.SelectMany(p => p.Gradient).ToArray();
        Assert.Contains(once, g => g != T.Zero);
        TestData.AssertClose<T>(once.Select(g => 2 * double.CreateTruncating(g)).ToArray(), twice, typeof(T) == typeof(float) ? 1e-5 : 1e-13, "gradients after two passes");
    }
}

public sealed class LocalPConcatF37K20U33W3ConcatTests : LocalConcatTests<LocalPConcatF37K20U33W3, float, LocalPConcatF37K20U33W3.Tape>;
public sealed class LocalMConcatF16K24V7W2ConcatTests : LocalConcatTests<LocalMConcatF16K24V7W2, float, LocalMConcatF16K24V7W2.Tape>;
public sealed class LocalPConcatD9K7V5W2U6ConcatTests : LocalConcatTests<LocalPConcatD9K7V5W2U6, double, LocalPConcatD9K7V5W2U6.Tape>;
public sealed class LocalMConcatD9K7W3U6ConcatTests : LocalConcatTests<LocalMConcatD9K7W3U6, double, LocalMConcatD9K7W3U6.Tape>;
