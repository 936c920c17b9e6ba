using System;
using System.Linq;
using System.Numerics;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace AttentionGen.Layers.Tests;

/// <summary>Shared steps of the per-kind hardening tests: concurrent runs against serial ones, steady-state allocation, relative checks.</summary>
internal static class Hardening
{
    /// <summary>
    /// Runs <paramref name="run"/>(input index, output) once per input serially, then on <paramref name="threads"/> threads over
    /// the same instance for a bounded time (at most 200 rounds each, at most half a second); asserts every concurrent result
    /// equals the serial one bit for bit and that every thread ran.
    /// </summary>
    public static void ConcurrentRunsMatchSerial<T>(int inputs, int outputLength, Action<int, T[]> run, int threads = 4)
    {
        T[][] serial = Enumerable.Range(0, inputs).Select(i =>
        {
            var output = new T[outputLength];
            run(i, output);
            return output;
        }).ToArray();
        int mismatches = 0, runs = 0;
        var deadline = DateTime.UtcNow.AddMilliseconds(500);
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var output = new T[outputLength];
            for (int round = 0; round < 200 && (round == 0 || DateTime.UtcNow < deadline); round++)
            {
                int index = (t + round * threads) % inputs;
                run(index, output);
                if (!output.AsSpan().SequenceEqual(serial[index])) Interlocked.Increment(ref mismatches);
                Interlocked.Increment(ref runs);
            }
        });
        Assert.Equal(0, mismatches);
        Assert.True(runs >= threads, $"only {runs} runs");
    }

    /// <summary>
    /// A query-key layer's Backward, called as <paramref name="backward"/>(dQuery, dKeys, dValues) after a training forward on
    /// these inputs, refuses a gradient output that overlaps an input (dQuery over the queries, dKeys over the keys, dValues
    /// over the values) with an ArgumentException naming it, before anything is written: the inputs, ∂L/∂c and the
    /// parameter gradients stay as they were.
    /// </summary>
    public static void GradientOutputsOverlappingInputsAreRejected<T>(T[] query, T[] keys, T[] values, T[] dContext,
        Action<T[]?, T[]?, T[]?> backward, System.Collections.Generic.IEnumerable<Parameter<T>> parameters)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        T[] queryBefore = query.ToArray(), keysBefore = keys.ToArray(), valuesBefore = values.ToArray(), dContextBefore = dContext.ToArray();
        Assert.Equal("dQuery", Assert.Throws<ArgumentException>(() => backward(query, null, null)).ParamName);
        Assert.Equal("dKeys", Assert.Throws<ArgumentException>(() => backward(null, keys, null)).ParamName);
        Assert.Equal("dValues", Assert.Throws<ArgumentException>(() => backward(null, null, values)).ParamName);
        Assert.Equal(queryBefore, query);
        Assert.Equal(keysBefore, keys);
        Assert.Equal(valuesBefore, values);
        Assert.Equal(dContextBefore, dContext);
        Assert.All(parameters, p => Assert.All(p.Gradient, g => Assert.Equal(T.Zero, g)));
    }

    /// <summary>
    /// Bytes allocated on this thread by one call in steady state: after three warm-up calls (the array pool fills, tiered
    /// compilation promotes the loops), the least of three measured calls. A one-off allocation (a method recompiled
    /// during a call, the pool refilled after a GC trimmed it) shows in one call at most; a per-call allocation in all three.
    /// </summary>
    public static long SteadyStateAllocation(Action run)
    {
        for (int i = 0; i < 3; i++) run();
        long least = long.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            run();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return least;
    }

    /// <summary>
    /// Runs <paramref name="run"/>(MaxDegreeOfParallelism) on one, two and three threads and asserts that every named result
    /// (outputs, weights, input and parameter gradients) of two and three threads equals the one-thread result bit for bit.
    /// Returns the one-thread results.
    /// </summary>
    public static (string Name, T[] Values)[] ResultsAgreeAcrossThreadCounts<T>(Func<int, (string Name, T[] Values)[]> run) where T : IEquatable<T>
    {
        var serial = run(1);
        foreach (int degree in new[] { 2, 3 })
        {
            var parallel = run(degree);
            Assert.Equal(serial.Length, parallel.Length);
            for (int i = 0; i < serial.Length; i++)
            {
                Assert.True(serial[i].Values.AsSpan().SequenceEqual(parallel[i].Values), $"{serial[i].Name} on {degree} threads differs from one thread");
            }
        }
        return serial;
    }

    /// <summary>
    /// Asserts that <paramref name="run"/> hands its chunks to other threads (BatchParallel counts the calls that do, per
    /// calling thread; a layer that never splits fails), and that such a call allocates nothing on the calling thread in
    /// steady state once it finds the worker team free. Another test's call may hold the team, and a call that finds it
    /// busy runs on the thread pool, which allocates; so calls are repeated, for up to twenty seconds, until one allocates nothing
    /// (two seconds were once not enough in the CI leg that emulates Vector512 on an AVX2 host, where other tests' calls hold
    /// the team several times longer).
    /// </summary>
    public static void AssertSplits(Action run, string what)
    {
        for (int i = 0; i < 3; i++) run();
        long splitBefore = BatchParallel.SplitCallsOnThisThread;
        run();
        Assert.True(BatchParallel.SplitCallsOnThisThread > splitBefore, $"{what} stayed on the calling thread: the shape is too small to split, or the call does not split");
        long least = long.MaxValue;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (least > 0 && clock.Elapsed < TimeSpan.FromSeconds(20))
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            run();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.True(least == 0, $"{what} split over threads allocated {least} B per call in steady state");
    }

    /// <summary>|actual − expected| ≤ relative · |expected| element-wise (for denormal results, where an absolute floor would hide a flush to zero).</summary>
    public static void AssertRelative<T>(double[] expected, ReadOnlySpan<T> actual, double relative, string what) where T : INumberBase<T>
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double a = double.CreateTruncating(actual[i]);
            if (!(Math.Abs(a - expected[i]) <= relative * Math.Abs(expected[i])))
            {
                throw new Xunit.Sdk.XunitException($"{what}[{i}]: expected {expected[i]:R}, got {a:R} (relative tolerance {relative:g3})");
            }
        }
    }

    /// <summary>Every element of each output row lies within the smallest and largest value of that column over the rows it averages.</summary>
    public static void AssertConvexCombination(ReadOnlySpan<float> output, ReadOnlySpan<float> rows, int dim)
    {
        int count = rows.Length / dim;
        for (int d = 0; d < dim; d++)
        {
            float min = float.PositiveInfinity, max = float.NegativeInfinity;
            for (int r = 0; r < count; r++) { min = Math.Min(min, rows[r * dim + d]); max = Math.Max(max, rows[r * dim + d]); }
            for (int o = 0; o < output.Length / dim; o++)
            {
                float x = output[o * dim + d];
                Assert.True(x >= min - 1e-4f && x <= max + 1e-4f, $"output[{o}, {d}] = {x} outside [{min}, {max}]");
            }
        }
    }
}
