using System;
using System.Linq;
using System.Numerics;
using Xunit;

namespace AttentionGen.Layers.Tests.KeyValue;

/// <summary>
/// Failure modes and extremes of [KeyValueAttention]: concurrent inference (whole sequences and rolling-window steps) on one
/// instance, NaN confined to its batch row and to the steps whose window sees it, logits of ±1e4, denormals, T = 1 and T = 0,
/// a hundred thousand steps without steady-state allocation, tape reuse across lengths, overlapping outputs.
/// </summary>
public sealed class KeyValueHardeningTests
{
    private const int Dim = KeyValueF9W3.Dim, InputDim = KeyValueF9W3.InputDim, Window = KeyValueF9W3.Window;

    private static double[] P<T>(IAttentionLayer<T> layer, string name) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => TestData.ToDouble(layer.Parameters.Single(p => p.Name == name).Value);

    private static double[] Reference<T>(IAttentionLayer<T> layer, int batch, int length, int k, int window, T[] input) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => KeyValueReference.Forward(batch, length, k, window, 2, P(layer, "memory_weight"), P(layer, "query_weight"), P(layer, "score_vector"), P(layer, "context_weight"), P(layer, "input_weight"), TestData.ToDouble(input));

    [Fact]
    public void One_instance_serves_many_threads_with_the_serial_results()
    {
        var layer = new KeyValueF9W3(seed: 3) { MaxDegreeOfParallelism = 1 };
        const int batch = 2, length = 8;
        var inputs = Enumerable.Range(0, 24).Select(i => TestData.Random<float>(new Random(100 + i), batch * length * InputDim)).ToArray();
        Hardening.ConcurrentRunsMatchSerial<float>(inputs.Length, batch * length * Dim, (i, output) => layer.Forward(batch, length, inputs[i], output));
        // Rolling-window steps: each thread its own WindowState, the layer shared; the steps give the whole-sequence numbers.
        Hardening.ConcurrentRunsMatchSerial<float>(inputs.Length, batch * length * Dim, (i, output) =>
        {
            var state = new KeyValueF9W3.WindowState();
            state.Reset(batch);
            var stepInput = new float[batch * InputDim];
            var stepOutput = new float[batch * Dim];
            for (int t = 0; t < length; t++)
            {
                for (int b = 0; b < batch; b++) inputs[i].AsSpan((b * length + t) * InputDim, InputDim).CopyTo(stepInput.AsSpan(b * InputDim));
                layer.Step(state, stepInput, stepOutput);
                for (int b = 0; b < batch; b++) stepOutput.AsSpan(b * Dim, Dim).CopyTo(output.AsSpan((b * length + t) * Dim));
            }
        });
    }

    [Fact]
    public void NaN_stays_in_its_batch_row_and_in_the_steps_whose_window_sees_it()
    {
        var layer = new KeyValueF9W3(seed: 5);
        const int batch = 3, length = 10, poisonedStep = 3;
        float[] input = TestData.Random<float>(new Random(7), batch * length * InputDim);
        var clean = new float[batch * length * Dim];
        layer.Forward(batch, length, input, clean);
        float[] poisoned = (float[])input.Clone();
        poisoned[(1 * length + poisonedStep) * InputDim + 0] = float.NaN; // batch row 1, the key part of step 3
        var output = new float[clean.Length];
        layer.Forward(batch, length, poisoned, output);
        float[] Row(float[] x, int b, int from, int to) => x.AsSpan((b * length + from) * Dim, (to - from) * Dim).ToArray();
        Assert.Equal(Row(clean, 0, 0, length), Row(output, 0, 0, length));
        Assert.Equal(Row(clean, 2, 0, length), Row(output, 2, 0, length));
        Assert.Equal(Row(clean, 1, 0, poisonedStep), Row(output, 1, 0, poisonedStep));            // earlier steps: causal, untouched
        Assert.All(Row(output, 1, poisonedStep, poisonedStep + Window + 1), x => Assert.True(float.IsNaN(x))); // itself and the steps that see it
        Assert.Equal(Row(clean, 1, poisonedStep + Window + 1, length), Row(output, 1, poisonedStep + Window + 1, length)); // out of every later window
    }

    [Fact]
    public void Logits_of_ten_thousand_give_finite_outputs_equal_to_the_reference()
    {
        const int length = 12;
        var floatLayer = new KeyValueF9W3(seed: 2);
        var w = floatLayer.Parameters.Single(p => p.Name == "score_vector");
        for (int i = 0; i < w.Length; i++) w.Value[i] *= 3e4f; // wᵀ tanh(·) is bounded by ‖w‖₁: this sets the logit range
        float[] x = TestData.Random<float>(new Random(11), 2 * length * InputDim);
        var output = new float[2 * length * Dim];
        var weights = new float[2 * length * Window];
        floatLayer.Forward(2, length, x, output, weights);
        Assert.All(output, o => Assert.True(float.IsFinite(o) && Math.Abs(o) <= 1));
        Assert.All(weights, a => Assert.True(float.IsFinite(a) && a >= 0 && a <= 1));
        for (int t = 1; t < 2 * length; t++)
            if (t % length != 0) Assert.Equal(1.0, weights.AsSpan(t * Window, Window).ToArray().Sum(), 5);

        var layer = new KeyValueD5W2(seed: 2);
        var v = layer.Parameters.Single(p => p.Name == "score_vector");
        for (int i = 0; i < v.Length; i++) v.Value[i] *= 3e4;
        Assert.Contains(v.Value, e => Math.Abs(e) > 1000);
        double[] input = TestData.Random<double>(new Random(12), 2 * length * KeyValueD5W2.InputDim);
        var result = new double[2 * length * 5];
        layer.Forward(2, length, input, result);
        TestData.AssertClose<double>(Reference(layer, 2, length, 5, 2, input), result, 1e-9, "output");
    }

    [Fact]
    public void Denormal_inputs_give_the_reference_result()
    {
        var layer = new KeyValueD5W2(seed: 4);
        const int length = 4;
        double[] input = Enumerable.Range(0, 2 * length * KeyValueD5W2.InputDim).Select(i => (i % 5 - 2) * 1e-310 + (i % 2 == 0 ? 5e-320 : 0)).ToArray();
        var output = new double[2 * length * 5];
        layer.Forward(2, length, input, output);
        Hardening.AssertRelative<double>(Reference(layer, 2, length, 5, 2, input), output, 1e-9, "output");
        Assert.Contains(output, double.IsSubnormal);
    }

    [Fact]
    public void One_step_attends_nothing_and_no_steps_is_an_argument_exception()
    {
        var layer = new KeyValueF9W3(seed: 8);
        float[] input = TestData.Random<float>(new Random(9), 3 * InputDim);
        var output = new float[3 * Dim];
        var weights = Enumerable.Repeat(5f, 3 * Window).ToArray();
        layer.Forward(3, 1, input, output, weights);
        Assert.All(weights, a => Assert.Equal(0f, a));
        TestData.AssertClose<float>(Reference(layer, 3, 1, Dim, Window, input), output, 1e-5, "output"); // h* = tanh(W^x v), r = 0
        var untouched = Enumerable.Repeat(7f, 3 * Dim).ToArray();
        Assert.Equal("length", Assert.Throws<ArgumentException>(() => layer.Forward(3, 0, default, untouched)).ParamName);
        Assert.All(untouched, x => Assert.Equal(7f, x));
    }

    [Fact]
    public void A_hundred_thousand_steps_run_in_bounded_memory_without_steady_state_allocation()
    {
        var layer = new KeyValueF9W3(seed: 1) { MaxDegreeOfParallelism = 1 };
        const int length = 100_000;
        float[] input = TestData.Random<float>(new Random(4), length * InputDim);
        var output = new float[length * Dim];
        long allocated = Hardening.SteadyStateAllocation(() => layer.Forward(1, length, input, output));
        Assert.Equal(0, allocated);
        Assert.All(output, o => Assert.True(float.IsFinite(o) && Math.Abs(o) <= 1));
        // The last steps against the reference run on their own window (the output of step t depends only on steps t − Window … t).
        const int tail = 8;
        float[] last = input.AsSpan((length - tail) * InputDim).ToArray();
        double[] expected = Reference(layer, 1, tail, Dim, Window, last);
        TestData.AssertClose<float>(expected.AsSpan(Window * Dim), output.AsSpan((length - tail + Window) * Dim), 1e-5, "tail");
    }

    [Fact]
    public void A_call_large_enough_to_split_allocates_nothing_on_one_thread()
    {
        // A shape that splits on two threads (checked below); on one, inference, the training forward and the backward run on
        // the calling thread with pooled scratch only.
        const int batch = 64, length = 30;
        var random = new Random(14);
        float[] input = TestData.Random<float>(random, batch * length * InputDim), dOutput = TestData.Random<float>(random, batch * length * Dim);
        var output = new float[batch * length * Dim];
        var weights = new float[batch * length * Window];
        var dInput = new float[input.Length];
        var tape = new KeyValueF9W3.Tape();
        var layer = new KeyValueF9W3(seed: 2) { MaxDegreeOfParallelism = 1 };
        Assert.Equal(0, Hardening.SteadyStateAllocation(() => layer.Forward(batch, length, input, output, weights)));
        Assert.Equal(0, Hardening.SteadyStateAllocation(() => layer.Forward(tape, batch, length, input, output, weights)));
        Assert.Equal(0, Hardening.SteadyStateAllocation(() => layer.Backward(tape, input, dOutput, dInput)));
        layer.MaxDegreeOfParallelism = 2;
        Hardening.AssertSplits(() => layer.Forward(batch, length, input, output, weights), "inference");
        Hardening.AssertSplits(() => layer.Backward(tape, input, dOutput, dInput), "backward");
    }

    [Fact]
    public void Concurrent_calls_that_split_give_the_serial_results()
    {
        // Calls large enough to split, from several threads at once: one takes the worker team, the others find it busy and
        // spread their sequences over the thread pool; every result equals the one-thread result.
        const int batch = 64, length = 30;
        var inputs = Enumerable.Range(0, 4).Select(i => TestData.Random<float>(new Random(200 + i), batch * length * InputDim)).ToArray();
        var serial = new KeyValueF9W3(seed: 3) { MaxDegreeOfParallelism = 1 };
        var layer = new KeyValueF9W3(seed: 3) { MaxDegreeOfParallelism = 2 };
        var splitOutput = new float[batch * length * Dim];
        Hardening.AssertSplits(() => layer.Forward(batch, length, inputs[0], splitOutput), "inference");
        var expected = inputs.Select(x => { var o = new float[batch * length * Dim]; serial.Forward(batch, length, x, o); return o; }).ToArray();
        Hardening.ConcurrentRunsMatchSerial<float>(inputs.Length, batch * length * Dim, (i, output) => layer.Forward(batch, length, inputs[i], output));
        var check = new float[batch * length * Dim];
        for (int i = 0; i < inputs.Length; i++)
        {
            layer.Forward(batch, length, inputs[i], check);
            Assert.Equal(expected[i], check);
        }
    }

    [Fact]
    public void A_tape_reused_across_lengths_gives_what_a_fresh_tape_gives()
    {
        var layer = new KeyValueF9W3(seed: 6);
        var reused = new KeyValueF9W3.Tape();
        foreach (var (batch, length) in new[] { (3, 9), (1, 1), (2, 30), (3, 9) })
        {
            var random = new Random(batch * 100 + length);
            float[] input = TestData.Random<float>(random, batch * length * InputDim), dOutput = TestData.Random<float>(random, batch * length * Dim);
            float[] Step(KeyValueF9W3.Tape tape)
            {
                layer.ZeroGradients();
                var output = new float[batch * length * Dim];
                layer.Forward(tape, batch, length, input, output);
                var dInput = new float[input.Length];
                layer.Backward(tape, input, dOutput, dInput);
                return output.Concat(dInput).Concat(layer.Parameters.SelectMany(p => p.Gradient)).ToArray();
            }
            Assert.Equal(Step(new KeyValueF9W3.Tape()), Step(reused));
        }
    }

    [Fact]
    public void Outputs_that_overlap_inputs_or_each_other_are_rejected()
    {
        var layer = new KeyValueF9W3(seed: 1);
        float[] input = TestData.Random<float>(new Random(1), 2 * 4 * InputDim);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => layer.Forward(2, 4, input, input.AsSpan(1, 2 * 4 * Dim))).ParamName);
        Assert.Equal("weights", Assert.Throws<ArgumentException>(() => layer.Forward(2, 4, input, new float[2 * 4 * Dim], input.AsSpan(0, 2 * 4 * Window))).ParamName);
        float[] shared = new float[2 * 4 * Dim + 2 * 4 * Window];
        Assert.Equal("weights", Assert.Throws<ArgumentException>(() => layer.Forward(2, 4, input, shared.AsSpan(0, 2 * 4 * Dim), shared.AsSpan(2 * 4 * Dim - 1, 2 * 4 * Window))).ParamName);

        var state = new KeyValueF9W3.WindowState();
        state.Reset(2);
        float[] step = TestData.Random<float>(new Random(2), 2 * InputDim);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => layer.Step(state, step, step.AsSpan(0, 2 * Dim))).ParamName);
        float[] both = new float[2 * Dim + 2 * Window];
        Assert.Equal("weights", Assert.Throws<ArgumentException>(() => layer.Step(state, step, both.AsSpan(0, 2 * Dim), both.AsSpan(2 * Dim - 1, 2 * Window))).ParamName);
        Assert.Equal(0, state.Steps); // rejected before the window moved
    }
}
