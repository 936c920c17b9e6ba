using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace AttentionGen.Layers.Tests.Additive;

/// <summary>
/// Failure modes and extremes: concurrent inference on one instance, NaN and infinity confined to their rows,
/// denormals, Tk = 1, a very long key sequence in bounded memory, tape reuse across lengths, steady-state
/// allocation, overlapping outputs.
/// </summary>
public sealed class AdditiveHardeningTests
{
    private const int Dim = 37;

    private static (float[] Query, float[] Keys, float[] Values) Inputs(int seed, int batch, int tq, int tk)
    {
        var random = new Random(seed);
        return (TestData.Random<float>(random, batch * tq * Dim), TestData.Random<float>(random, batch * tk * Dim), TestData.Random<float>(random, batch * tk * Dim));
    }

    [Fact]
    public void One_instance_serves_many_threads_with_the_serial_results()
    {
        var layer = new AdditiveF37(seed: 3);
        const int threads = 4, inputsPerThread = 6, batch = 2, tq = 3, tk = 7;
        var inputs = Enumerable.Range(0, threads * inputsPerThread).Select(i => Inputs(100 + i, batch, tq, tk)).ToArray();
        float[][] serial = inputs.Select(input =>
        {
            var context = new float[batch * tq * Dim];
            layer.Forward(batch, tq, tk, input.Query, input.Keys, input.Values, context, default, default);
            return context;
        }).ToArray();

        int mismatches = 0, runs = 0;
        var deadline = DateTime.UtcNow.AddMilliseconds(500);
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var context = new float[batch * tq * Dim];
            for (int round = 0; round < 200 && DateTime.UtcNow < deadline; round++)
            {
                int index = t * inputsPerThread + round % inputsPerThread;
                var (query, keys, values) = inputs[index];
                layer.Forward(batch, tq, tk, query, keys, values, context, default, default);
                if (!context.AsSpan().SequenceEqual(serial[index]))
                {
                    Interlocked.Increment(ref mismatches);
                }
                Interlocked.Increment(ref runs);
            }
        });
        Assert.Equal(0, mismatches);
        Assert.True(runs >= threads, $"only {runs} runs");
    }

    [Fact]
    public void NaN_and_infinity_stay_in_their_batch_row()
    {
        var layer = new AdditiveF37(seed: 5);
        const int batch = 3, tq = 2, tk = 4;
        var (query, keys, values) = Inputs(7, batch, tq, tk);
        var clean = new float[batch * tq * Dim];
        layer.Forward(batch, tq, tk, query, keys, values, clean, default, default);

        float[] poisonedQuery = (float[])query.Clone();
        poisonedQuery[0] = float.NaN;                      // batch row 0, query 0
        float[] poisonedKeys = (float[])keys.Clone();
        poisonedKeys[2 * tk * Dim + 5] = float.PositiveInfinity;   // batch row 2, key 0
        var context = new float[batch * tq * Dim];
        layer.Forward(batch, tq, tk, poisonedQuery, poisonedKeys, values, context, default, default);

        Assert.All(context.AsSpan(0, Dim).ToArray(), c => Assert.True(float.IsNaN(c)));            // its own query row: NaN
        Assert.Equal(clean.AsSpan(Dim, Dim).ToArray(), context.AsSpan(Dim, Dim).ToArray());         // the other query of row 0: untouched
        Assert.Equal(clean.AsSpan(tq * Dim, tq * Dim).ToArray(), context.AsSpan(tq * Dim, tq * Dim).ToArray()); // batch row 1: untouched
        // Row 2: a key with an infinite component still has a finite tanh (±1), so the row stays finite.
        Assert.All(context.AsSpan(2 * tq * Dim).ToArray(), c => Assert.True(float.IsFinite(c)));
    }

    [Fact]
    public void Denormal_inputs_give_the_reference_result()
    {
        var layer = new AdditiveD37(seed: 2);
        const int tk = 3;
        var query = Enumerable.Repeat(1e-310, Dim).ToArray();
        var keys = Enumerable.Range(0, tk * Dim).Select(i => i % 2 == 0 ? 5e-320 : -3e-315).ToArray();
        var context = new double[Dim];
        var weights = new double[tk];
        layer.Forward(1, 1, tk, query, keys, default, context, weights, default);
        var expected = AdditiveReference.Forward(1, 1, tk, Dim, Dim, Dim, layer.QueryWeight.Value, layer.KeyWeight.Value, layer.ScoreBias.Value,
            layer.ScoreVector.Value, query, keys, keys, (_, _, _) => true);
        TestData.AssertClose<double>(expected.Weights, weights, 1e-12, "weights");
        TestData.AssertClose<double>(expected.Context, context, 1e-12, "context");
    }

    [Fact]
    public void A_single_key_gets_all_the_weight()
    {
        var layer = new AdditiveF37(seed: 8);
        var (query, keys, values) = Inputs(9, 2, 3, 1);
        var context = new float[2 * 3 * Dim];
        var weights = new float[2 * 3];
        layer.Forward(2, 3, 1, query, keys, values, context, weights, default);
        Assert.All(weights, a => Assert.Equal(1f, a));
        for (int b = 0; b < 2; b++)
        {
            for (int i = 0; i < 3; i++)
            {
                Assert.Equal(values.AsSpan(b * Dim, Dim).ToArray(), context.AsSpan((b * 3 + i) * Dim, Dim).ToArray());
            }
        }
    }

    [Fact]
    public void A_hundred_thousand_keys_run_in_bounded_memory_without_steady_state_allocation()
    {
        var layer = new AdditiveF8(seed: 1);
        const int tk = 100_000, dim = 8;
        var random = new Random(4);
        float[] query = TestData.Random<float>(random, dim);
        float[] keys = TestData.Random<float>(random, tk * dim);
        var context = new float[dim];
        // After warm-up calls (the pool rents its buffer) no call allocates.
        long allocated = Hardening.SteadyStateAllocation(() => layer.Forward(1, 1, tk, query, keys, default, context, default, default));
        Assert.Equal(0, allocated);
        Assert.All(context, c => Assert.True(float.IsFinite(c)));
        double mean = 0;
        for (int j = 0; j < tk; j++) mean += keys[j * dim];
        // With 1e5 nearly uniform weights the context is close to the mean key (weights differ but average out).
        Assert.InRange(context[0], mean / tk - 0.1, mean / tk + 0.1);
    }

    [Fact]
    public void Inference_forward_allocates_nothing_in_steady_state()
    {
        var layer = new AdditiveF37(seed: 1);
        var (query, keys, values) = Inputs(3, 2, 3, 5);
        var context = new float[2 * 3 * Dim];
        var weights = new float[2 * 3 * 5];
        var mask = AttentionMask.FromKeyPadding(new[] { true, true, false, true, true, true, true, true, true, false });
        for (int i = 0; i < 3; i++) layer.Forward(2, 3, 5, query, keys, values, context, weights, mask);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) layer.Forward(2, 3, 5, query, keys, values, context, weights, mask);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void A_tape_reused_across_lengths_gives_what_a_fresh_tape_gives()
    {
        var layer = new AdditiveF37(seed: 6);
        var reused = new AdditiveF37.Tape();
        foreach (var (batch, tq, tk) in new[] { (3, 4, 9), (1, 1, 2), (2, 5, 3), (3, 4, 9) })
        {
            var (query, keys, values) = Inputs(batch * 100 + tq * 10 + tk, batch, tq, tk);
            float[] dContext = TestData.Random<float>(new Random(tk), batch * tq * Dim);

            var (contextA, dQueryA, dKeysA, gradientsA) = Step(reused);
            var (contextB, dQueryB, dKeysB, gradientsB) = Step(new AdditiveF37.Tape());
            Assert.Equal(contextB, contextA);
            Assert.Equal(dQueryB, dQueryA);
            Assert.Equal(dKeysB, dKeysA);
            Assert.Equal(gradientsB, gradientsA);

            (float[], float[], float[], float[]) Step(AdditiveF37.Tape tape)
            {
                layer.ZeroGradients();
                var context = new float[batch * tq * Dim];
                layer.Forward(tape, batch, tq, tk, query, keys, values, context);
                var dQuery = new float[query.Length];
                var dKeys = new float[keys.Length];
                layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, new float[values.Length]);
                return (context, dQuery, dKeys, layer.Parameters.SelectMany(p => p.Gradient).ToArray());
            }
        }
    }

    // Backward clears and adds into its gradient outputs while it still reads its inputs: an output that overlaps an input
    // is refused before anything is written (the inputs and the parameter gradients stay as they were).
    [Fact]
    public void Gradient_outputs_that_overlap_inputs_are_rejected_before_anything_is_written()
    {
        var layer = new AdditiveF37();
        var (query, keys, values) = Inputs(1, 1, 2, 3);
        var tape = new AdditiveF37.Tape();
        layer.Forward(tape, 1, 2, 3, query, keys, values, new float[2 * Dim]);
        float[] dContext = TestData.Random<float>(new Random(2), 2 * Dim);
        Hardening.GradientOutputsOverlappingInputsAreRejected(query, keys, values, dContext,
            (dQuery, dKeys, dValues) => layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues), layer.Parameters);
    }

    [Fact]
    public void Outputs_that_overlap_inputs_or_each_other_are_rejected()
    {
        var layer = new AdditiveF37(seed: 1);
        var (query, keys, values) = Inputs(1, 1, 2, 3);
        float[] shared = new float[2 * Dim + 6];
        var error = Assert.Throws<ArgumentException>(() => layer.Forward(1, 2, 3, query, keys, values, shared.AsSpan(0, 2 * Dim), shared.AsSpan(2 * Dim - 1, 6), default));
        Assert.Equal("weights", error.ParamName);
        error = Assert.Throws<ArgumentException>(() => layer.Forward(1, 2, 3, query, keys, values, values.AsSpan(0, 2 * Dim), default, default));
        Assert.Equal("context", error.ParamName);
        Assert.Contains("overlaps 'values'", error.Message);
    }

    [Fact]
    public void Results_do_not_depend_on_the_thread_count()
    {
        // Large enough (B·Tq·Tk·U ≥ 2¹⁸) that the layer spreads batch rows and gradient products over threads.
        const int batch = 8, tq = 20, tk = 48;
        var (query, keys, values) = Inputs(77, batch, tq, tk);
        float[] dContext = TestData.Random<float>(new Random(78), batch * tq * Dim);
        bool[] keyPadding = TestData.Mask(new Random(79), batch * tk, 0.9);
        (float[], float[], float[], float[], float[]) Run(int degree)
        {
            var mask = AttentionMask.FromKeyPadding(keyPadding);
            var layer = new AdditiveF37(seed: 12) { MaxDegreeOfParallelism = degree };
            var inference = new float[batch * tq * Dim];
            layer.Forward(batch, tq, tk, query, keys, values, inference, default, mask);
            var tape = new AdditiveF37.Tape();
            var context = new float[inference.Length];
            layer.Forward(tape, batch, tq, tk, query, keys, values, context, default, mask);
            var dQuery = new float[query.Length];
            var dKeys = new float[keys.Length];
            var dValues = new float[values.Length];
            layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues);
            Assert.Equal(inference, context);
            return (context, dQuery, dKeys, dValues, layer.Parameters.SelectMany(p => p.Gradient).ToArray());
        }

        var serial = Run(1);
        foreach (int degree in new[] { 2, 3, -1 })
        {
            var parallel = Run(degree);
            Assert.Equal(serial.Item1, parallel.Item1);
            Assert.Equal(serial.Item2, parallel.Item2);
            Assert.Equal(serial.Item3, parallel.Item3);
            Assert.Equal(serial.Item4, parallel.Item4);
            Assert.Equal(serial.Item5, parallel.Item5);
        }
        Assert.True(batch * tq * tk * Dim >= 1 << 18);

        // On two threads inference and the training step really split, and in steady state allocate nothing on the calling thread.
        var split = new AdditiveF37(seed: 12) { MaxDegreeOfParallelism = 2 };
        var splitTape = new AdditiveF37.Tape();
        var splitContext = new float[batch * tq * Dim];
        var (splitDQuery, splitDKeys, splitDValues) = (new float[query.Length], new float[keys.Length], new float[values.Length]);
        Hardening.AssertSplits(() => split.Forward(batch, tq, tk, query, keys, values, splitContext, default, AttentionMask.FromKeyPadding(keyPadding)), "inference");
        Hardening.AssertSplits(() =>
        {
            split.Forward(splitTape, batch, tq, tk, query, keys, values, splitContext, default, AttentionMask.FromKeyPadding(keyPadding));
            split.Backward(splitTape, query, keys, values, dContext, splitDQuery, splitDKeys, splitDValues);
        }, "training step");
    }
}
