using System;
using System.Linq;
using Xunit;

namespace AttentionGen.Layers.Tests.Static;

/// <summary>
/// Failure modes and extremes of [StaticAttention] (HAN pooling): concurrent inference on one instance, NaN and infinity
/// confined to their sequence, logits of ±1e4, denormals, T = 1 and T = 0, a hundred thousand steps without steady-state
/// allocation, a one-thread training step of a size that would split over threads without steady-state allocation, tape
/// reuse across lengths, overlapping outputs.
/// </summary>
public sealed class StaticHardeningTests
{
    private const int Dim = 37;

    private static double[] P(IAttentionLayer<double> layer, string name) => TestData.ToDouble(layer.Parameters.Single(p => p.Name == name).Value);

    [Fact]
    public void One_instance_serves_many_threads_with_the_serial_results()
    {
        var layer = new PoolingF37U9(seed: 3) { MaxDegreeOfParallelism = 1 };
        const int batch = 3, length = 11;
        var inputs = Enumerable.Range(0, 24).Select(i => TestData.Random<float>(new Random(100 + i), batch * length * Dim)).ToArray();
        Hardening.ConcurrentRunsMatchSerial<float>(inputs.Length, batch * Dim, (i, output) => layer.Forward(batch, length, inputs[i], output, default, default));
    }

    [Fact]
    public void NaN_and_infinity_stay_in_their_sequence()
    {
        var layer = new PoolingF37U9(seed: 5);
        const int batch = 3, length = 4;
        float[] input = TestData.Random<float>(new Random(7), batch * length * Dim);
        var clean = new float[batch * Dim];
        layer.Forward(batch, length, input, clean, default, default);
        float[] poisoned = (float[])input.Clone();
        poisoned[(0 * length + 2) * Dim + 4] = float.NaN;               // sequence 0, step 2
        poisoned[(2 * length + 1) * Dim + 0] = float.NegativeInfinity;  // sequence 2, step 1
        var output = new float[clean.Length];
        var weights = new float[batch * length];
        layer.Forward(batch, length, poisoned, output, weights, default);
        Assert.All(output.AsSpan(0, Dim).ToArray(), x => Assert.True(float.IsNaN(x)));      // its score is NaN: the whole sequence
        Assert.Equal(clean.AsSpan(Dim, Dim).ToArray(), output.AsSpan(Dim, Dim).ToArray());   // sequence 1: untouched
        // Sequence 2: the infinite component saturates tanh, so the weights stay finite, and the pooled component is ±∞ (or NaN).
        Assert.All(weights.AsSpan(2 * length, length).ToArray(), a => Assert.True(float.IsFinite(a)));
        Assert.False(float.IsFinite(output[2 * Dim]));
        Assert.Equal(clean.AsSpan(2 * Dim + 1, Dim - 1).ToArray().Select(float.IsFinite), output.AsSpan(2 * Dim + 1, Dim - 1).ToArray().Select(float.IsFinite));
    }

    [Fact]
    public void Logits_of_ten_thousand_give_finite_weights_equal_to_the_reference()
    {
        // u_w scaled so that |uₜᵀ u_w| reaches ~1e4 (tanh is bounded, so the context vector sets the logit range).
        foreach (bool isFloat in new[] { true, false })
        {
            const int length = 6, dim = 7, units = 5;
            var random = new Random(11);
            double[] input = TestData.Random<double>(random, 2 * length * dim);
            if (isFloat)
            {
                var layer = new PoolingF37U9(seed: 2);
                foreach (var p in layer.Parameters.Where(p => p.Name == "context_vector")) for (int i = 0; i < p.Length; i++) p.Value[i] *= 2e4f;
                float[] x = TestData.Random<float>(random, 2 * length * Dim);
                var output = new float[2 * Dim];
                var weights = new float[2 * length];
                layer.Forward(2, length, x, output, weights, default);
                Assert.All(output, o => Assert.True(float.IsFinite(o)));
                Assert.All(weights, a => Assert.True(float.IsFinite(a) && a >= 0 && a <= 1));
                for (int b = 0; b < 2; b++) Assert.Equal(1.0, weights.AsSpan(b * length, length).ToArray().Sum(), 5);
                Hardening.AssertConvexCombination(output.AsSpan(0, Dim), x.AsSpan(0, length * Dim), Dim);
            }
            else
            {
                var layer = new PoolingD7U5(seed: 2);
                foreach (var p in layer.Parameters.Where(p => p.Name == "context_vector")) for (int i = 0; i < p.Length; i++) p.Value[i] *= 2e4;
                Assert.Contains(layer.Parameters.Single(p => p.Name == "context_vector").Value, v => Math.Abs(v) > 2000);
                var output = new double[2 * dim];
                var weights = new double[2 * length];
                layer.Forward(2, length, input, output, weights, default);
                var expected = PoolingReference.Forward(2, length, dim, units, P(layer, "weight"), P(layer, "bias"), P(layer, "context_vector"), input, null);
                TestData.AssertClose<double>(expected.Weights, weights, 1e-9, "weights");
                TestData.AssertClose<double>(expected.Output, output, 1e-9, "output");
            }
        }
    }

    [Fact]
    public void Denormal_inputs_give_the_reference_result()
    {
        var layer = new PoolingD7U5(seed: 4);
        const int length = 3;
        double[] input = Enumerable.Range(0, 2 * length * 7).Select(i => (i % 5 - 2) * 1e-310 + (i % 2 == 0 ? 5e-320 : 0)).ToArray();
        var output = new double[2 * 7];
        var weights = new double[2 * length];
        layer.Forward(2, length, input, output, weights, default);
        var expected = PoolingReference.Forward(2, length, 7, 5, P(layer, "weight"), P(layer, "bias"), P(layer, "context_vector"), input, null);
        TestData.AssertClose<double>(expected.Weights, weights, 1e-12, "weights");
        Hardening.AssertRelative<double>(expected.Output, output, 1e-9, "output");
        Assert.Contains(output, double.IsSubnormal);
    }

    [Fact]
    public void One_step_pools_to_itself_and_no_steps_is_an_argument_exception()
    {
        var layer = new PoolingF37U9(seed: 8);
        float[] input = TestData.Random<float>(new Random(9), 3 * Dim);
        var output = new float[3 * Dim];
        var weights = new float[3];
        layer.Forward(3, 1, input, output, weights, default);
        Assert.All(weights, a => Assert.Equal(1f, a));
        Assert.Equal(input, output);
        var untouched = Enumerable.Repeat(7f, 3 * Dim).ToArray();
        Assert.Equal("length", Assert.Throws<ArgumentException>(() => layer.Forward(3, 0, default, untouched, default, default)).ParamName);
        Assert.All(untouched, x => Assert.Equal(7f, x));
    }

    [Fact]
    public void A_one_thread_training_step_large_enough_to_split_allocates_nothing_in_steady_state()
    {
        // B·T·U·D above the layers' parallel work threshold (2¹⁸): with more threads forward and backward would split,
        // so this is the path a one-thread trainer of a real-sized model takes.
        var layer = new PoolingF37U9(seed: 2) { MaxDegreeOfParallelism = 1 };
        const int batch = 32, length = 40;
        var random = new Random(5);
        float[] input = TestData.Random<float>(random, batch * length * Dim), dOutput = TestData.Random<float>(random, batch * Dim);
        var tape = new PoolingF37U9.Tape();
        var output = new float[batch * Dim];
        var dInput = new float[input.Length];
        long allocated = Hardening.SteadyStateAllocation(() =>
        {
            layer.Forward(tape, batch, length, input, output, default, default);
            layer.Backward(tape, input, dOutput, dInput, default);
        });
        Assert.Equal(0, allocated);
        Assert.Contains(dInput, x => x != 0);
    }

    [Fact]
    public void A_hundred_thousand_steps_run_in_bounded_memory_without_steady_state_allocation()
    {
        var layer = new PoolingF37U9(seed: 1) { MaxDegreeOfParallelism = 1 };
        const int length = 100_000;
        float[] input = TestData.Random<float>(new Random(4), length * Dim);
        var output = new float[Dim];
        long allocated = Hardening.SteadyStateAllocation(() => layer.Forward(1, length, input, output, default, default));
        Assert.Equal(0, allocated);
        Assert.All(output, o => Assert.True(float.IsFinite(o)));
        Hardening.AssertConvexCombination(output, input, Dim);
    }

    [Fact]
    public void A_tape_reused_across_lengths_gives_what_a_fresh_tape_gives()
    {
        var layer = new PoolingF37U9(seed: 6);
        var reused = new PoolingF37U9.Tape();
        foreach (var (batch, length) in new[] { (3, 9), (1, 1), (2, 30), (3, 9) })
        {
            var random = new Random(batch * 100 + length);
            float[] input = TestData.Random<float>(random, batch * length * Dim), dOutput = TestData.Random<float>(random, batch * Dim);
            bool[] padding = TestData.Mask(random, batch * length, 0.8);
            float[] Step(PoolingF37U9.Tape tape)
            {
                layer.ZeroGradients();
                var output = new float[batch * Dim];
                layer.Forward(tape, batch, length, input, output, default, padding);
                var dInput = new float[input.Length];
                layer.Backward(tape, input, dOutput, dInput, default);
                return output.Concat(dInput).Concat(layer.Parameters.SelectMany(p => p.Gradient)).ToArray();
            }
            Assert.Equal(Step(new PoolingF37U9.Tape()), Step(reused));
        }
    }

    [Fact]
    public void Outputs_that_overlap_inputs_or_each_other_are_rejected()
    {
        var layer = new PoolingF37U9(seed: 1);
        float[] input = TestData.Random<float>(new Random(1), 2 * 3 * Dim);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, input, input.AsSpan(5, 2 * Dim), default, default)).ParamName);
        Assert.Equal("weights", Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, input, new float[2 * Dim], input.AsSpan(0, 6), default)).ParamName);
        float[] shared = new float[2 * Dim + 6];
        Assert.Equal("weights", Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, input, shared.AsSpan(0, 2 * Dim), shared.AsSpan(2 * Dim - 2, 6), default)).ParamName);
    }
}
