using System;
using System.Linq;
using Xunit;

namespace AttentionGen.Layers.Tests.Multiplicative;

/// <summary>
/// Failure modes and extremes of [MultiplicativeAttention]: concurrent inference on one instance, NaN and infinity confined to
/// their batch rows, logits of ±1e4, denormals, Tk = 1 and Tk = 0, a hundred thousand keys without steady-state allocation,
/// a one-thread training step of a size that would split over threads without steady-state allocation, tape reuse across
/// lengths, overlapping outputs.
/// </summary>
public sealed class MultiplicativeHardeningTests
{
    private const int Dim = GeneralF37.Dim;

    private static (float[] Query, float[] Keys, float[] Values) Inputs(int seed, int batch, int tq, int tk, int dim = Dim)
    {
        var random = new Random(seed);
        return (TestData.Random<float>(random, batch * tq * dim), TestData.Random<float>(random, batch * tk * dim), TestData.Random<float>(random, batch * tk * dim));
    }

    [Fact]
    public void One_instance_serves_many_threads_with_the_serial_results()
    {
        var layer = new GeneralF37(seed: 3) { MaxDegreeOfParallelism = 1 };
        const int batch = 2, tq = 3, tk = 7;
        var inputs = Enumerable.Range(0, 24).Select(i => Inputs(100 + i, batch, tq, tk)).ToArray();
        Hardening.ConcurrentRunsMatchSerial<float>(inputs.Length, batch * tq * Dim,
            (i, context) => layer.Forward(batch, tq, tk, inputs[i].Query, inputs[i].Keys, inputs[i].Values, context, default, default));
    }

    [Fact]
    public void NaN_and_infinity_stay_in_their_batch_row()
    {
        var layer = new GeneralF37(seed: 5);
        const int batch = 3, tq = 2, tk = 4;
        var (query, keys, values) = Inputs(7, batch, tq, tk);
        var clean = new float[batch * tq * Dim];
        layer.Forward(batch, tq, tk, query, keys, values, clean, default, default);

        float[] poisonedQuery = (float[])query.Clone();
        poisonedQuery[0] = float.NaN;                                   // batch row 0, query 0
        float[] poisonedKeys = (float[])keys.Clone();
        poisonedKeys[2 * tk * Dim + 5] = float.PositiveInfinity;         // batch row 2, key 0
        var context = new float[batch * tq * Dim];
        var weights = new float[batch * tq * tk];
        layer.Forward(batch, tq, tk, poisonedQuery, poisonedKeys, values, context, weights, default);

        Assert.All(context.AsSpan(0, Dim).ToArray(), c => Assert.True(float.IsNaN(c)));                           // its own query: NaN
        Assert.Equal(clean.AsSpan(Dim, Dim).ToArray(), context.AsSpan(Dim, Dim).ToArray());                        // the other query of row 0
        Assert.Equal(clean.AsSpan(tq * Dim, tq * Dim).ToArray(), context.AsSpan(tq * Dim, tq * Dim).ToArray());    // batch row 1
        // Row 2: an infinite key component makes that key's score ±∞ (or NaN): the row's context is not finite, and stays in its row.
        Assert.Contains(context.AsSpan(2 * tq * Dim).ToArray(), c => !float.IsFinite(c));
    }

    [Fact]
    public void Logits_of_ten_thousand_give_finite_weights_equal_to_the_reference()
    {
        // Dot score, Dim = 16: a query of 25s against keys of ±25 gives scores of exactly ±1e4; the others are near them.
        var layer = new DotF16();
        const int tk = 5;
        float[] query = Enumerable.Repeat(25f, 2 * 16).ToArray();
        float[] scales = { 1f, -1f, 0.999f, -0.5f, 0.9995f };
        float[] keys = Enumerable.Range(0, tk * 16).Select(i => 25f * scales[i / 16]).ToArray();
        float[] values = TestData.Random<float>(new Random(3), tk * 16);
        var context = new float[2 * 16];
        var weights = new float[2 * tk];
        layer.Forward(1, 2, tk, query, keys, values, context, weights, default);
        Assert.All(context, c => Assert.True(float.IsFinite(c)));
        var expected = MultiplicativeReference.Forward(1, 2, tk, 16, 16, 16, "Dot", null, 1, false,
            TestData.ToDouble(query), TestData.ToDouble(keys), TestData.ToDouble(values), (_, _, _) => true);
        // float rounding of scores near 1e4 is ~1e-3, which moves a weight of e^(−5) by ~1e-5
        TestData.AssertClose<float>(expected.Weights, weights, 1e-4, "weights");
        TestData.AssertClose<float>(expected.Context, context, 1e-4, "context");
        Assert.True(weights[0] > 0.99f, $"weight of the 1e4 key: {weights[0]}");
        Assert.Equal(0f, weights[1]); // e^(−2e4) underflows to exactly 0
    }

    [Fact]
    public void Denormal_inputs_give_the_reference_result()
    {
        var layer = new GeneralD9K7V5(seed: 2);
        const int tk = 3;
        double[] query = Enumerable.Range(0, 2 * 9).Select(i => (i % 3 - 1) * 1e-310).ToArray();
        double[] keys = Enumerable.Range(0, tk * 7).Select(i => i % 2 == 0 ? 5e-320 : -3e-315).ToArray();
        double[] values = Enumerable.Range(0, tk * 5).Select(i => (i + 1) * 1e-311).ToArray();
        var context = new double[2 * 5];
        var weights = new double[2 * tk];
        layer.Forward(1, 2, tk, query, keys, values, context, weights, default);
        var expected = MultiplicativeReference.Forward(1, 2, tk, 9, 7, 5, "General", TestData.ToDouble(layer.Parameters.Single(p => p.Name == "score_weight").Value), 1, false,
            query, keys, values, (_, _, _) => true);
        TestData.AssertClose<double>(expected.Weights, weights, 1e-12, "weights");
        Hardening.AssertRelative<double>(expected.Context, context, 1e-9, "context"); // denormal contexts, not flushed to zero
    }

    [Fact]
    public void A_single_key_gets_all_the_weight_and_no_keys_is_an_argument_exception()
    {
        var layer = new GeneralF37(seed: 8);
        var (query, keys, values) = Inputs(9, 2, 3, 1);
        var context = new float[2 * 3 * Dim];
        var weights = new float[2 * 3];
        layer.Forward(2, 3, 1, query, keys, values, context, weights, default);
        Assert.All(weights, a => Assert.Equal(1f, a));
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < 3; i++)
                Assert.Equal(values.AsSpan(b * Dim, Dim).ToArray(), context.AsSpan((b * 3 + i) * Dim, Dim).ToArray());

        var untouched = Enumerable.Repeat(7f, 2 * 3 * Dim).ToArray();
        var error = Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, 0, query, default, default, untouched, default, default));
        Assert.Equal("keyLength", error.ParamName);
        Assert.All(untouched, c => Assert.Equal(7f, c));
    }

    [Fact]
    public void A_one_thread_training_step_large_enough_to_split_allocates_nothing_in_steady_state()
    {
        // B·Tq·Tk·(Dk + Dv) and B·Tq·Dk·Dq both above the layers' parallel work threshold (2¹⁸): with more threads every
        // split would happen, so this is the path a one-thread trainer of a real-sized model takes.
        var layer = new GeneralF37(seed: 2) { MaxDegreeOfParallelism = 1 };
        const int batch = 16, tq = 24, tk = 40;
        var (query, keys, values) = Inputs(5, batch, tq, tk);
        float[] dContext = TestData.Random<float>(new Random(6), batch * tq * Dim);
        var tape = new GeneralF37.Tape();
        var context = new float[batch * tq * Dim];
        float[] dQuery = new float[query.Length], dKeys = new float[keys.Length], dValues = new float[values.Length];
        long allocated = Hardening.SteadyStateAllocation(() =>
        {
            layer.Forward(tape, batch, tq, tk, query, keys, values, context, default, default);
            layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues, default);
        });
        Assert.Equal(0, allocated);
        Assert.Contains(dQuery, x => x != 0);
    }

    [Fact]
    public void A_hundred_thousand_keys_run_in_bounded_memory_without_steady_state_allocation()
    {
        var layer = new DotF16 { MaxDegreeOfParallelism = 1 };
        const int tk = 100_000, dim = 16;
        var random = new Random(4);
        float[] query = TestData.Random<float>(random, 2 * dim);
        float[] keys = TestData.Random<float>(random, tk * dim);
        var context = new float[2 * dim];
        long allocated = Hardening.SteadyStateAllocation(() => layer.Forward(1, 2, tk, query, keys, default, context, default, default));
        Assert.Equal(0, allocated);
        Assert.All(context, c => Assert.True(float.IsFinite(c)));
        Hardening.AssertConvexCombination(context, keys, dim);
    }

    [Fact]
    public void A_tape_reused_across_lengths_gives_what_a_fresh_tape_gives()
    {
        var layer = new GeneralF12K9V5(seed: 6);
        var reused = new GeneralF12K9V5.Tape();
        foreach (var (batch, tq, tk) in new[] { (3, 4, 9), (1, 1, 2), (2, 5, 3), (3, 4, 9) })
        {
            var random = new Random(batch * 100 + tq * 10 + tk);
            float[] query = TestData.Random<float>(random, batch * tq * 12), keys = TestData.Random<float>(random, batch * tk * 9), values = TestData.Random<float>(random, batch * tk * 5);
            float[] dContext = TestData.Random<float>(random, batch * tq * 5);
            float[] Step(GeneralF12K9V5.Tape tape)
            {
                layer.ZeroGradients();
                var context = new float[batch * tq * 5];
                layer.Forward(tape, batch, tq, tk, query, keys, values, context);
                var (dQuery, dKeys, dValues) = (new float[query.Length], new float[keys.Length], new float[values.Length]);
                layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues);
                return context.Concat(dQuery).Concat(dKeys).Concat(dValues).Concat(layer.Parameters.SelectMany(p => p.Gradient)).ToArray();
            }
            Assert.Equal(Step(new GeneralF12K9V5.Tape()), Step(reused));
        }
    }

    // Backward clears and adds into its gradient outputs while it still reads its inputs: an output that overlaps an input
    // is refused before anything is written (the inputs and the parameter gradients stay as they were).
    [Fact]
    public void Gradient_outputs_that_overlap_inputs_are_rejected_before_anything_is_written()
    {
        var layer = new GeneralF37();
        var (query, keys, values) = Inputs(1, 1, 2, 3);
        var tape = new GeneralF37.Tape();
        layer.Forward(tape, 1, 2, 3, query, keys, values, new float[2 * Dim]);
        float[] dContext = TestData.Random<float>(new Random(2), 2 * Dim);
        Hardening.GradientOutputsOverlappingInputsAreRejected(query, keys, values, dContext,
            (dQuery, dKeys, dValues) => layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues), layer.Parameters);
    }

    [Fact]
    public void Outputs_that_overlap_inputs_or_each_other_are_rejected()
    {
        var layer = new GeneralF37(seed: 1);
        var (query, keys, values) = Inputs(1, 1, 2, 3);
        float[] shared = new float[2 * Dim + 6];
        var error = Assert.Throws<ArgumentException>(() => layer.Forward(1, 2, 3, query, keys, values, shared.AsSpan(0, 2 * Dim), shared.AsSpan(2 * Dim - 1, 6), default));
        Assert.Equal("weights", error.ParamName);
        error = Assert.Throws<ArgumentException>(() => layer.Forward(1, 2, 3, query, keys, values, values.AsSpan(0, 2 * Dim), default, default));
        Assert.Equal("context", error.ParamName);
        error = Assert.Throws<ArgumentException>(() => layer.Forward(1, 2, 3, query, keys, values, query.AsSpan(), default, default));
        Assert.Equal("context", error.ParamName);
    }
}
