using System;
using System.Linq;
using Xunit;

namespace AttentionGen.Layers.Tests.Multiplicative;

[HardAttention(Dim = 16, Score = AttentionScore.Dot, Selection = HardSelection.Sample)] public partial class HardSampleF16;

/// <summary>
/// Failure modes and extremes of [HardAttention]: concurrent inference on one instance (argmax, and sampling with each call's
/// own seeded Random), NaN confined to its batch row (and a NaN query gets a NaN context, not a silent choice), logits of ±1e4,
/// denormal values, Tk = 1 and Tk = 0, a hundred thousand keys without steady-state allocation, tape reuse across lengths,
/// overlapping outputs.
/// </summary>
public sealed class HardHardeningTests
{
    private const int Dim = 12;

    private static (float[] Query, float[] Keys, float[] Values) Inputs(int seed, int batch, int tq, int tk, int dim = Dim)
    {
        var random = new Random(seed);
        return (TestData.Random<float>(random, batch * tq * dim), TestData.Random<float>(random, batch * tk * dim), TestData.Random<float>(random, batch * tk * dim));
    }

    [Fact]
    public void One_instance_serves_many_threads_with_the_serial_results()
    {
        var argmax = new HardArgmaxF12();
        var sample = new HardSampleF16();
        const int batch = 2, tq = 3, tk = 7;
        var inputs = Enumerable.Range(0, 24).Select(i => Inputs(100 + i, batch, tq, tk, 16)).ToArray();
        Hardening.ConcurrentRunsMatchSerial<float>(inputs.Length, batch * tq * Dim, (i, context) =>
            argmax.Forward(batch, tq, tk, inputs[i].Query.AsSpan(0, batch * tq * Dim), inputs[i].Keys.AsSpan(0, batch * tk * Dim), inputs[i].Values.AsSpan(0, batch * tk * Dim), context));
        Hardening.ConcurrentRunsMatchSerial<float>(inputs.Length, batch * tq * 16, (i, context) =>
            sample.Forward(batch, tq, tk, inputs[i].Query, inputs[i].Keys, inputs[i].Values, context, random: new Random(i)));
    }

    [Fact]
    public void NaN_stays_in_its_batch_row_and_gives_a_NaN_context_with_no_choice()
    {
        var layer = new HardArgmaxF12();
        const int batch = 3, tq = 2, tk = 4;
        var (query, keys, values) = Inputs(7, batch, tq, tk);
        var clean = new float[batch * tq * Dim];
        var cleanChoices = new int[batch * tq];
        layer.Forward(batch, tq, tk, query, keys, values, clean, default, default, cleanChoices);

        float[] poisoned = (float[])query.Clone();
        poisoned[3] = float.NaN; // batch row 0, query 0
        var context = new float[clean.Length];
        var choices = new int[batch * tq];
        layer.Forward(batch, tq, tk, poisoned, keys, values, context, default, default, choices);
        Assert.Equal(-1, choices[0]);
        Assert.All(context.AsSpan(0, Dim).ToArray(), c => Assert.True(float.IsNaN(c)));   // propagated, not a zero "nothing allowed" context
        Assert.Equal(clean.AsSpan(Dim).ToArray(), context.AsSpan(Dim).ToArray());
        Assert.Equal(cleanChoices.Skip(1), choices.Skip(1));
    }

    [Fact]
    public void A_NaN_row_does_not_shift_the_samples_of_later_rows()
    {
        // Sampling draws once per query, in row order, from the caller's Random: a NaN row must still take its draw.
        var layer = new HardSampleF16();
        const int batch = 3, tq = 2, tk = 6;
        var (query, keys, values) = Inputs(9, batch, tq, tk, 16);
        var clean = new float[batch * tq * 16];
        var cleanChoices = new int[batch * tq];
        layer.Forward(batch, tq, tk, query, keys, values, clean, default, default, cleanChoices, new Random(5));
        float[] poisoned = (float[])keys.Clone();
        poisoned[2] = float.NaN; // batch row 0, key 0: both queries of row 0 see it
        var context = new float[clean.Length];
        var choices = new int[batch * tq];
        layer.Forward(batch, tq, tk, query, poisoned, values, context, default, default, choices, new Random(5));
        Assert.Equal(new[] { -1, -1 }, choices.Take(tq));
        Assert.All(context.AsSpan(0, tq * 16).ToArray(), c => Assert.True(float.IsNaN(c)));
        Assert.Equal(cleanChoices.Skip(tq), choices.Skip(tq));
        Assert.Equal(clean.AsSpan(tq * 16).ToArray(), context.AsSpan(tq * 16).ToArray());
    }

    [Fact]
    public void Logits_of_ten_thousand_choose_the_largest_with_finite_weights()
    {
        var layer = new HardArgmaxF12();
        const int tk = 5;
        float[] query = Enumerable.Repeat(29f, Dim).ToArray();     // 12 · 29² ≈ 1.0e4
        float[] scales = { -1f, 0.999f, 1f, -0.5f, 0.9995f };
        float[] keys = Enumerable.Range(0, tk * Dim).Select(i => 29f * scales[i / Dim]).ToArray();
        float[] values = TestData.Random<float>(new Random(3), tk * Dim);
        var context = new float[Dim];
        var weights = new float[tk];
        var choices = new int[1];
        layer.Forward(1, 1, tk, query, keys, values, context, weights, default, choices);
        Assert.Equal(2, choices[0]);
        Assert.Equal(values.AsSpan(2 * Dim, Dim).ToArray(), context);
        Assert.All(weights, a => Assert.True(float.IsFinite(a) && a >= 0 && a <= 1));
        Assert.Equal(0f, weights[0]);
        Assert.Equal(1.0, weights.Sum(), 5);
    }

    [Fact]
    public void Denormal_values_are_chosen_exactly_and_denormal_scores_tie_to_the_first_key()
    {
        var layer = new HardArgmaxD4(seed: 2);
        const int tk = 3;
        double[] values = Enumerable.Range(0, tk * 3).Select(i => (i + 1) * -3e-312).ToArray();
        // Denormal queries and keys: every score underflows to 0, so the weights are uniform and the first key is chosen.
        double[] query = Enumerable.Repeat(1e-310, 4).ToArray();
        double[] keys = Enumerable.Range(0, tk * 4).Select(i => i % 2 == 0 ? 5e-320 : -3e-315).ToArray();
        var context = new double[3];
        var weights = new double[tk];
        var choices = new int[1];
        layer.Forward(1, 1, tk, query, keys, values, context, weights, default, choices);
        Assert.All(weights, a => Assert.Equal(1.0 / 3, a, 15));
        Assert.Equal(0, choices[0]);
        Assert.Equal(values.AsSpan(0, 3).ToArray(), context);
        // Normal queries and keys with denormal values: the chosen value is copied bit for bit.
        double[] q = { 1, 0, 0, 0 };
        double[] k = { 0, 0, 0, 0, 1, 0, 0, 0, -1, 0, 0, 0 };
        layer.Forward(1, 1, tk, q, k, values, context, weights, default, choices);
        Assert.Equal(values.AsSpan(choices[0] * 3, 3).ToArray(), context);
        Assert.All(context, c => Assert.True(double.IsSubnormal(c)));
    }

    [Fact]
    public void A_single_key_is_always_chosen_and_no_keys_is_an_argument_exception()
    {
        var layer = new HardArgmaxF12();
        var (query, keys, values) = Inputs(9, 2, 3, 1);
        var context = new float[2 * 3 * Dim];
        var weights = new float[2 * 3];
        var choices = new int[2 * 3];
        layer.Forward(2, 3, 1, query, keys, values, context, weights, default, choices);
        Assert.All(weights, a => Assert.Equal(1f, a));
        Assert.All(choices, c => Assert.Equal(0, c));
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < 3; i++)
                Assert.Equal(values.AsSpan(b * Dim, Dim).ToArray(), context.AsSpan((b * 3 + i) * Dim, Dim).ToArray());
        Assert.Equal("keyLength", Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, 0, query, default, default, context)).ParamName);
    }

    [Fact]
    public void A_hundred_thousand_keys_run_in_bounded_memory_without_steady_state_allocation()
    {
        var layer = new HardArgmaxF12 { MaxDegreeOfParallelism = 1 };
        const int tk = 100_000;
        var random = new Random(4);
        float[] query = TestData.Random<float>(random, 2 * Dim), keys = TestData.Random<float>(random, tk * Dim);
        var context = new float[2 * Dim];
        var choices = new int[2];
        long allocated = Hardening.SteadyStateAllocation(() => layer.Forward(1, 2, tk, query, keys, default, context, default, default, choices));
        Assert.Equal(0, allocated);
        for (int i = 0; i < 2; i++)
        {
            // The choice is the key of largest dot product (a unique maximum on random data), and the context is that key.
            double best = double.NegativeInfinity;
            int expected = -1;
            for (int j = 0; j < tk; j++)
            {
                double dot = 0;
                for (int d = 0; d < Dim; d++) dot += (double)query[i * Dim + d] * keys[j * Dim + d];
                if (dot > best) (best, expected) = (dot, j);
            }
            Assert.Equal(expected, choices[i]);
            Assert.Equal(keys.AsSpan(expected * Dim, Dim).ToArray(), context.AsSpan(i * Dim, Dim).ToArray());
        }
    }

    [Fact]
    public void A_tape_reused_across_lengths_gives_what_a_fresh_tape_gives()
    {
        var layer = new HardArgmaxD4(seed: 6);
        var reused = new HardArgmaxD4.Tape();
        foreach (var (batch, tq, tk) in new[] { (3, 4, 9), (1, 1, 2), (2, 5, 3), (3, 4, 9) })
        {
            var random = new Random(batch * 100 + tq * 10 + tk);
            double[] query = TestData.Random<double>(random, batch * tq * 4), keys = TestData.Random<double>(random, batch * tk * 4), values = TestData.Random<double>(random, batch * tk * 3);
            double[] dContext = TestData.Random<double>(random, batch * tq * 3);
            double[] Step(HardArgmaxD4.Tape tape)
            {
                layer.ZeroGradients();
                var context = new double[batch * tq * 3];
                layer.Forward(tape, batch, tq, tk, query, keys, values, context);
                var (dQuery, dKeys, dValues) = (new double[query.Length], new double[keys.Length], new double[values.Length]);
                layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues);
                return context.Concat(dQuery).Concat(dKeys).Concat(dValues).Concat(layer.Parameters.SelectMany(p => p.Gradient)).ToArray();
            }
            Assert.Equal(Step(new HardArgmaxD4.Tape()), Step(reused));
        }
    }

    // Backward clears and adds into its gradient outputs while it still reads its inputs: an output that overlaps an input
    // is refused before anything is written (the inputs and the parameter gradients stay as they were).
    [Fact]
    public void Gradient_outputs_that_overlap_inputs_are_rejected_before_anything_is_written()
    {
        var layer = new HardArgmaxF12();
        var (query, keys, values) = Inputs(1, 1, 2, 3);
        var tape = new HardArgmaxF12.Tape();
        layer.Forward(tape, 1, 2, 3, query, keys, values, new float[2 * Dim]);
        float[] dContext = TestData.Random<float>(new Random(2), 2 * Dim);
        Hardening.GradientOutputsOverlappingInputsAreRejected(query, keys, values, dContext,
            (dQuery, dKeys, dValues) => layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues), layer.Parameters);
    }

    [Fact]
    public void Outputs_that_overlap_inputs_or_each_other_are_rejected()
    {
        var layer = new HardArgmaxF12();
        var (query, keys, values) = Inputs(1, 1, 2, 3);
        float[] shared = new float[2 * Dim + 6];
        Assert.Equal("weights", Assert.Throws<ArgumentException>(() => layer.Forward(1, 2, 3, query, keys, values, shared.AsSpan(0, 2 * Dim), shared.AsSpan(2 * Dim - 1, 6))).ParamName);
        Assert.Equal("context", Assert.Throws<ArgumentException>(() => layer.Forward(1, 2, 3, query, keys, values, values.AsSpan(0, 2 * Dim))).ParamName);
        Assert.Equal("context", Assert.Throws<ArgumentException>(() => layer.Forward(1, 2, 3, query, keys, values, keys.AsSpan(1, 2 * Dim))).ParamName);
    }
}
