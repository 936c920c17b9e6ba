using System;
using System.Linq;
using Xunit;

namespace AttentionGen.Layers.Tests.Structured;

/// <summary>
/// Failure modes and extremes of [StructuredSelfAttention]: concurrent inference on one instance, NaN confined to its
/// sequence, logits of ±1e4, denormals, T = 1 and T = 0, a hundred thousand steps without steady-state allocation, tape
/// reuse across lengths, overlapping outputs.
/// </summary>
public sealed class StructuredHardeningTests
{
    private const int Dim = 37, Hops = 4;

    [Fact]
    public void One_instance_serves_many_threads_with_the_serial_results()
    {
        var layer = new StructuredF37(seed: 3) { PenaltyCoefficient = 0.5f };
        const int batch = 2, length = 9;
        var inputs = Enumerable.Range(0, 24).Select(i => TestData.Random<float>(new Random(100 + i), batch * length * Dim)).ToArray();
        float[] penalties = inputs.Select(x => layer.Forward(batch, length, x, new float[batch * Hops * Dim], default, default)).ToArray();
        // The output and the returned penalty (appended as the last element) both equal the serial ones.
        Hardening.ConcurrentRunsMatchSerial<float>(inputs.Length, batch * Hops * Dim + 1, (i, result) =>
            result[^1] = layer.Forward(batch, length, inputs[i], result.AsSpan(0, batch * Hops * Dim), default, default));
        Assert.All(penalties, p => Assert.True(p > 0));
    }

    [Fact]
    public void NaN_stays_in_its_sequence()
    {
        var layer = new StructuredF37(seed: 5);
        const int batch = 3, length = 4;
        float[] input = TestData.Random<float>(new Random(7), batch * length * Dim);
        var clean = new float[batch * Hops * Dim];
        layer.Forward(batch, length, input, clean, default, default);
        float[] poisoned = (float[])input.Clone();
        poisoned[(1 * length + 3) * Dim + 10] = float.NaN; // sequence 1, step 3
        var output = new float[clean.Length];
        var weights = new float[batch * Hops * length];
        Assert.Equal(0f, layer.Forward(batch, length, poisoned, output, weights, default)); // coefficient 0: no penalty, not NaN
        Assert.Equal(clean.AsSpan(0, Hops * Dim).ToArray(), output.AsSpan(0, Hops * Dim).ToArray());
        Assert.Equal(clean.AsSpan(2 * Hops * Dim).ToArray(), output.AsSpan(2 * Hops * Dim).ToArray());
        Assert.All(output.AsSpan(Hops * Dim, Hops * Dim).ToArray(), x => Assert.True(float.IsNaN(x)));
        Assert.All(weights.AsSpan(Hops * length, Hops * length).ToArray(), a => Assert.True(float.IsNaN(a)));
        // With a penalty, the returned sum over the batch is NaN: the caller sees it.
        layer.PenaltyCoefficient = 1f;
        Assert.True(float.IsNaN(layer.Forward(batch, length, poisoned, output, default, default)));
    }

    [Fact]
    public void Logits_of_ten_thousand_give_finite_weights_equal_to_the_reference()
    {
        const int length = 6;
        var floatLayer = new StructuredF37(seed: 2) { PenaltyCoefficient = 1f };
        for (int i = 0; i < floatLayer.SecondWeight.Length; i++) floatLayer.SecondWeight.Value[i] *= 3e4f; // W_s2 sets the logit range: tanh is bounded
        float[] x = TestData.Random<float>(new Random(11), 2 * length * Dim);
        var output = new float[2 * Hops * Dim];
        var weights = new float[2 * Hops * length];
        float penalty = floatLayer.Forward(2, length, x, output, weights, default);
        Assert.True(float.IsFinite(penalty));
        Assert.All(output, o => Assert.True(float.IsFinite(o)));
        Assert.All(weights, a => Assert.True(float.IsFinite(a) && a >= 0 && a <= 1));
        for (int r = 0; r < 2 * Hops; r++) Assert.Equal(1.0, weights.AsSpan(r * length, length).ToArray().Sum(), 5);

        var layer = new StructuredD7(seed: 2) { PenaltyCoefficient = 1 };
        for (int i = 0; i < layer.SecondWeight.Length; i++) layer.SecondWeight.Value[i] *= 3e4;
        Assert.Contains(layer.SecondWeight.Value, v => Math.Abs(v) > 1000);
        double[] input = TestData.Random<double>(new Random(12), 2 * length * 7);
        var m = new double[2 * 3 * 7];
        var a = new double[2 * 3 * length];
        double p = layer.Forward(2, length, input, m, a, default);
        var expected = StructuredReference.Forward(2, length, 7, 5, 3, TestData.ToDouble(layer.FirstWeight.Value), TestData.ToDouble(layer.SecondWeight.Value), input, null, squared: true);
        TestData.AssertClose<double>(expected.A, a, 1e-9, "A");
        TestData.AssertClose<double>(expected.M, m, 1e-9, "M");
        Assert.Equal(expected.Penalty, p, 8);
    }

    [Fact]
    public void Denormal_inputs_give_the_reference_result()
    {
        var layer = new StructuredD7(seed: 4);
        const int length = 3;
        double[] input = Enumerable.Range(0, 2 * length * 7).Select(i => (i % 5 - 2) * 1e-310 + (i % 2 == 0 ? 5e-320 : 0)).ToArray();
        var m = new double[2 * 3 * 7];
        var a = new double[2 * 3 * length];
        layer.Forward(2, length, input, m, a, default);
        var expected = StructuredReference.Forward(2, length, 7, 5, 3, TestData.ToDouble(layer.FirstWeight.Value), TestData.ToDouble(layer.SecondWeight.Value), input, null, squared: true);
        TestData.AssertClose<double>(expected.A, a, 1e-12, "A");
        Hardening.AssertRelative<double>(expected.M, m, 1e-9, "M");
        Assert.Contains(m, double.IsSubnormal);
    }

    [Fact]
    public void One_step_is_every_hop_and_no_steps_is_an_argument_exception()
    {
        var layer = new StructuredF37(seed: 8);
        float[] input = TestData.Random<float>(new Random(9), 2 * Dim);
        var output = new float[2 * Hops * Dim];
        var weights = new float[2 * Hops];
        layer.Forward(2, 1, input, output, weights, default);
        Assert.All(weights, a => Assert.Equal(1f, a));
        for (int b = 0; b < 2; b++)
            for (int h = 0; h < Hops; h++)
                Assert.Equal(input.AsSpan(b * Dim, Dim).ToArray(), output.AsSpan((b * Hops + h) * Dim, Dim).ToArray());
        var untouched = Enumerable.Repeat(7f, 2 * Hops * Dim).ToArray();
        Assert.Equal("length", Assert.Throws<ArgumentException>(() => layer.Forward(2, 0, default, untouched, default, default)).ParamName);
        Assert.All(untouched, x => Assert.Equal(7f, x));
    }

    [Fact]
    public void A_hundred_thousand_steps_run_in_bounded_memory_without_steady_state_allocation()
    {
        var layer = new StructuredF37(seed: 1);
        const int length = 100_000;
        float[] input = TestData.Random<float>(new Random(4), length * Dim);
        var output = new float[Hops * Dim];
        long allocated = Hardening.SteadyStateAllocation(() => layer.Forward(1, length, input, output, default, default));
        Assert.Equal(0, allocated);
        Assert.All(output, o => Assert.True(float.IsFinite(o)));
        Hardening.AssertConvexCombination(output, input, Dim);
    }

    [Fact]
    public void A_call_large_enough_to_split_allocates_nothing_on_one_thread()
    {
        // A shape that splits on two threads (checked below); on one, inference, the training forward and the backward run on
        // the calling thread with pooled scratch only. With padding, the penalty and the caller's ∂L/∂A.
        const int batch = 24, length = 30;
        var random = new Random(14);
        float[] input = TestData.Random<float>(random, batch * length * Dim), dOutput = TestData.Random<float>(random, batch * Hops * Dim);
        float[] dWeights = TestData.Random<float>(random, batch * Hops * length);
        bool[] padding = TestData.Mask(random, batch * length, 0.8);
        var output = new float[batch * Hops * Dim];
        var weights = new float[batch * Hops * length];
        var dInput = new float[input.Length];
        var tape = new StructuredF37.Tape();
        var layer = new StructuredF37(seed: 2) { MaxDegreeOfParallelism = 1, PenaltyCoefficient = 0.2f };
        Assert.Equal(0, Hardening.SteadyStateAllocation(() => layer.Forward(batch, length, input, output, weights, padding)));
        Assert.Equal(0, Hardening.SteadyStateAllocation(() => layer.Forward(tape, batch, length, input, output, weights, padding)));
        Assert.Equal(0, Hardening.SteadyStateAllocation(() => layer.Backward(tape, input, dOutput, dInput, dWeights)));
        layer.MaxDegreeOfParallelism = 2;
        Hardening.AssertSplits(() => layer.Forward(batch, length, input, output, weights, padding), "inference");
        Hardening.AssertSplits(() => layer.Backward(tape, input, dOutput, dInput, dWeights), "backward");
    }

    [Fact]
    public void Concurrent_calls_that_split_give_the_serial_results()
    {
        // Calls large enough to split, from several threads at once: one takes the worker team, the others find it busy and
        // spread their sequences over the thread pool; every output and penalty equals the one-thread result.
        const int batch = 24, length = 30;
        var inputs = Enumerable.Range(0, 4).Select(i => TestData.Random<float>(new Random(200 + i), batch * length * Dim)).ToArray();
        var serial = new StructuredF37(seed: 3) { MaxDegreeOfParallelism = 1, PenaltyCoefficient = 0.5f };
        var layer = new StructuredF37(seed: 3) { MaxDegreeOfParallelism = 2, PenaltyCoefficient = 0.5f };
        var splitOutput = new float[batch * Hops * Dim];
        Hardening.AssertSplits(() => layer.Forward(batch, length, inputs[0], splitOutput, default, default), "inference");
        // The output and the returned penalty (appended as the last element).
        float[] Run(StructuredF37 l, float[] x, float[] result)
        {
            result[^1] = l.Forward(batch, length, x, result.AsSpan(0, batch * Hops * Dim), default, default);
            return result;
        }
        var expected = inputs.Select(x => Run(serial, x, new float[batch * Hops * Dim + 1])).ToArray();
        Hardening.ConcurrentRunsMatchSerial<float>(inputs.Length, batch * Hops * Dim + 1, (i, result) => Run(layer, inputs[i], result));
        for (int i = 0; i < inputs.Length; i++) Assert.Equal(expected[i], Run(layer, inputs[i], new float[batch * Hops * Dim + 1]));
    }

    [Fact]
    public void A_tape_reused_across_lengths_gives_what_a_fresh_tape_gives()
    {
        var layer = new StructuredF37(seed: 6) { PenaltyCoefficient = 0.3f };
        var reused = new StructuredF37.Tape();
        foreach (var (batch, length) in new[] { (3, 9), (1, 1), (2, 30), (3, 9) })
        {
            var random = new Random(batch * 100 + length);
            float[] input = TestData.Random<float>(random, batch * length * Dim), dOutput = TestData.Random<float>(random, batch * Hops * Dim);
            bool[] padding = TestData.Mask(random, batch * length, 0.8);
            float[] Step(StructuredF37.Tape tape)
            {
                layer.ZeroGradients();
                var output = new float[batch * Hops * Dim];
                float penalty = layer.Forward(tape, batch, length, input, output, default, padding);
                var dInput = new float[input.Length];
                layer.Backward(tape, input, dOutput, dInput, default);
                return output.Append(penalty).Concat(dInput).Concat(layer.Parameters.SelectMany(p => p.Gradient)).ToArray();
            }
            Assert.Equal(Step(new StructuredF37.Tape()), Step(reused));
        }
    }

    [Fact]
    public void Outputs_that_overlap_inputs_or_each_other_are_rejected()
    {
        var layer = new StructuredF37(seed: 1);
        float[] input = TestData.Random<float>(new Random(1), 2 * 5 * Dim);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => layer.Forward(2, 5, input, input.AsSpan(3, 2 * Hops * Dim), default, default)).ParamName);
        Assert.Equal("weights", Assert.Throws<ArgumentException>(() => layer.Forward(2, 5, input, new float[2 * Hops * Dim], input.AsSpan(0, 2 * Hops * 5), default)).ParamName);
        float[] shared = new float[2 * Hops * Dim + 2 * Hops * 5];
        Assert.Equal("weights", Assert.Throws<ArgumentException>(() => layer.Forward(2, 5, input, shared.AsSpan(0, 2 * Hops * Dim), shared.AsSpan(2 * Hops * Dim - 1, 2 * Hops * 5), default)).ParamName);
    }
}
