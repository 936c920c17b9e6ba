using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace AttentionGen.Layers.Tests.MultiHead;

/// <summary>
/// Failure modes and extremes of the multi-head layer: concurrent inference on one instance, NaN confined to its rows,
/// huge logits, a hundred thousand keys in bounded memory without steady-state allocation, tape reuse across lengths.
/// </summary>
public sealed class MultiHeadHardeningTests
{
    private const int E = HeadsF16x2.ModelDim;

    private static float[] Random(int seed, int length, double scale = 1) => TestData.Random<float>(new Random(seed), length, scale);

    [Fact]
    public void One_instance_serves_many_threads_with_the_serial_results()
    {
        var layer = new HeadsF16x2(seed: 3) { MaxDegreeOfParallelism = 1 };
        const int threads = 4, inputsPerThread = 5, batch = 2, tq = 9, tk = 61;
        var inputs = Enumerable.Range(0, threads * inputsPerThread).Select(i => (Q: Random(100 + i, batch * tq * E), K: Random(200 + i, batch * tk * E))).ToArray();
        float[][] serial = inputs.Select(input =>
        {
            var output = new float[batch * tq * E];
            layer.Forward(batch, tq, tk, input.Q, input.K, input.K, output);
            return output;
        }).ToArray();
        int mismatches = 0, runs = 0;
        var deadline = DateTime.UtcNow.AddMilliseconds(500);
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var output = new float[batch * tq * E];
            for (int round = 0; round < 200 && DateTime.UtcNow < deadline; round++)
            {
                int index = t * inputsPerThread + round % inputsPerThread;
                layer.Forward(batch, tq, tk, inputs[index].Q, inputs[index].K, inputs[index].K, output);
                if (!output.AsSpan().SequenceEqual(serial[index])) Interlocked.Increment(ref mismatches);
                Interlocked.Increment(ref runs);
            }
        });
        Assert.Equal(0, mismatches);
        Assert.True(runs >= threads, $"only {runs} runs");
    }

    [Fact]
    public void NaN_stays_in_its_batch_row()
    {
        var layer = new HeadsF16x2(seed: 5);
        const int batch = 3, tq = 2, tk = 50;
        float[] query = Random(1, batch * tq * E), keys = Random(2, batch * tk * E);
        var clean = new float[batch * tq * E];
        layer.Forward(batch, tq, tk, query, keys, keys, clean);
        float[] poisoned = (float[])keys.Clone();
        poisoned[(1 * tk + 7) * E + 3] = float.NaN; // batch row 1, key 7
        var output = new float[clean.Length];
        layer.Forward(batch, tq, tk, query, poisoned, poisoned, output);
        Assert.Equal(clean.AsSpan(0, tq * E).ToArray(), output.AsSpan(0, tq * E).ToArray());
        Assert.Equal(clean.AsSpan(2 * tq * E).ToArray(), output.AsSpan(2 * tq * E).ToArray());
        Assert.Contains(output.AsSpan(tq * E, tq * E).ToArray(), float.IsNaN);
    }

    [Fact]
    public void Logits_of_ten_thousand_give_finite_one_hot_weights()
    {
        // Queries and keys scaled so that the scores reach ±1e4: the online softmax subtracts the running maximum.
        var layer = new HeadsF16x2(seed: 7);
        const int tq = 3, tk = 100;
        float[] query = Random(3, tq * E, 60), keys = Random(4, tk * E, 60);
        var output = new float[tq * E];
        var weights = new float[HeadsF16x2.Heads * tq * tk];
        layer.Forward(1, tq, tk, query, keys, keys, output, weights, averageWeights: false);
        Assert.All(output, o => Assert.True(float.IsFinite(o)));
        Assert.All(weights, w => Assert.True(float.IsFinite(w) && w >= 0 && w <= 1 + 1e-6f));
        for (int i = 0; i < HeadsF16x2.Heads * tq; i++) Assert.Equal(1.0, weights.AsSpan(i * tk, tk).ToArray().Sum(), 3);
        for (int i = 0; i < HeadsF16x2.Heads * tq; i++) Assert.True(weights.AsSpan(i * tk, tk).ToArray().Max() > 0.99f, $"row {i}: largest weight {weights.AsSpan(i * tk, tk).ToArray().Max()}");
    }

    [Fact]
    public void A_hundred_thousand_keys_run_in_bounded_memory_without_steady_state_allocation()
    {
        var layer = new HeadsF16x2(seed: 9) { MaxDegreeOfParallelism = 1 };
        const int tq = 2, tk = 100_000;
        float[] query = Random(5, tq * E), keys = Random(6, tk * E);
        var output = new float[tq * E];
        long allocated = Hardening.SteadyStateAllocation(() => layer.Forward(1, tq, tk, query, keys, keys, output));
        Assert.Equal(0, allocated);
        Assert.All(output, o => Assert.True(float.IsFinite(o)));
    }

    // A training step on one thread (forward with a tape, then the backward into caller-owned gradients) allocates nothing
    // once the tape has grown: the parallel driver's state is created only when the call is split.
    [Fact]
    public void A_training_step_on_one_thread_allocates_nothing_in_steady_state()
    {
        var layer = new HeadsF16x2(seed: 4) { MaxDegreeOfParallelism = 1 };
        var tape = new HeadsF16x2.Tape();
        const int batch = 2, tq = 5, tk = 70;
        float[] query = Random(7, batch * tq * E), keys = Random(8, batch * tk * E), dOutput = Random(9, batch * tq * E);
        var output = new float[batch * tq * E];
        float[] dQuery = new float[query.Length], dKeys = new float[keys.Length], dValues = new float[keys.Length];
        long allocated = Hardening.SteadyStateAllocation(() =>
        {
            layer.Forward(tape, batch, tq, tk, query, keys, keys, output);
            layer.Backward(tape, query, keys, keys, dOutput, dQuery, dKeys, dValues);
        });
        Assert.Equal(0, allocated);
        Assert.Contains(dKeys, g => g != 0);
    }

    [Fact]
    public void A_tape_reused_across_lengths_gives_what_a_fresh_tape_gives()
    {
        var layer = new HeadsF64x4Causal(seed: 2);
        const int e = HeadsF64x4Causal.ModelDim;
        var reused = new HeadsF64x4Causal.Tape();
        foreach (var (batch, t) in new[] { (2, 70), (1, 5), (3, 49) })
        {
            float[] x = Random(t, batch * t * e), upstream = Random(t + 1, batch * t * e);
            float[] Run(HeadsF64x4Causal.Tape tape)
            {
                layer.ZeroGradients();
                var output = new float[x.Length];
                layer.Forward(tape, batch, t, t, x, x, x, output);
                var dx = new float[x.Length];
                layer.Backward(tape, x, x, x, upstream, dx, default, default);
                return output.Concat(dx).Concat(layer.Parameters.SelectMany(p => p.Gradient)).ToArray();
            }
            Assert.Equal(Run(new HeadsF64x4Causal.Tape()), Run(reused));
        }
    }

    [Fact]
    public void Denormal_inputs_give_the_reference_result()
    {
        var layer = new HeadsD6x3NoBias(seed: 4);
        const int e = HeadsD6x3NoBias.ModelDim, tq = 2, tk = 3;
        double[] query = Enumerable.Range(0, tq * e).Select(i => (i % 3 - 1) * 1e-310).ToArray();
        double[] keys = Enumerable.Range(0, tk * e).Select(i => i % 2 == 0 ? 5e-320 : -3e-315).ToArray();
        double[] values = Enumerable.Range(0, tk * e).Select(i => (i % 4 + 1) * 1e-311).ToArray();
        var output = new double[tq * e];
        var weights = new double[HeadsD6x3NoBias.Heads * tq * tk];
        layer.Forward(1, tq, tk, query, keys, values, output, weights, default, averageWeights: false);
        var expected = MultiHeadReference.From(layer, e, HeadsD6x3NoBias.Heads, e, e).Forward(1, tq, tk, query, keys, values, (_, _, _) => true);
        TestData.AssertClose<double>(expected.HeadWeights, weights, 1e-12, "weights");
        Hardening.AssertRelative<double>(expected.Output, output, 1e-9, "output");
        Assert.Contains(output, double.IsSubnormal);
    }

    [Fact]
    public void A_single_key_gets_all_the_weight_and_no_keys_is_an_argument_exception()
    {
        var layer = new HeadsF16x2(seed: 8);
        float[] query = Random(9, 2 * 3 * E), keys = Random(10, 2 * E), values = Random(11, 2 * E);
        var output = new float[2 * 3 * E];
        var weights = new float[2 * HeadsF16x2.Heads * 3];
        layer.Forward(2, 3, 1, query, keys, values, output, weights, averageWeights: false);
        // Within an ulp of 1, not exactly 1: the weights are exp(s − logsumexp) through .NET's vectorised Exp (docs/numerics.md).
        Assert.All(weights, a => Assert.InRange(a, 1f - 1.2e-7f, 1f));
        var expected = MultiHeadReference.From(layer, E, HeadsF16x2.Heads, E, E).Forward(2, 3, 1, TestData.ToDouble(query), TestData.ToDouble(keys), TestData.ToDouble(values), (_, _, _) => true);
        TestData.AssertClose<float>(expected.Output, output, 1e-5, "output");
        var untouched = Enumerable.Repeat(7f, 2 * 3 * E).ToArray();
        Assert.Equal("keyLength", Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, 0, query, default, default, untouched)).ParamName);
        Assert.All(untouched, x => Assert.Equal(7f, x));
    }

    [Fact]
    public void Outputs_that_overlap_inputs_or_each_other_are_rejected()
    {
        var layer = new HeadsF16x2(seed: 1);
        float[] query = Random(1, 2 * E), keys = Random(2, 3 * E);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => layer.Forward(1, 2, 3, query, keys, keys, keys.AsSpan(1, 2 * E))).ParamName);
        float[] shared = new float[2 * E + 6];
        Assert.Equal("weights", Assert.Throws<ArgumentException>(() => layer.Forward(1, 2, 3, query, keys, keys, shared.AsSpan(0, 2 * E), shared.AsSpan(2 * E - 1, 6))).ParamName);
    }
}
