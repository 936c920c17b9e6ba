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
        layer.Forward(1, tq, tk, query, keys, keys, output); // warm-up: the array pool fills
        long before = GC.GetAllocatedBytesForCurrentThread();
        layer.Forward(1, tq, tk, query, keys, keys, output);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.All(output, o => Assert.True(float.IsFinite(o)));
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
}
