using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace AttentionGen.Runtime.Tests;

/// <summary>
/// BatchParallel on the runtime's worker team: every chunk once at any degree (more threads than cores too), several
/// callers at once and calls from inside a chunk (both find the team busy and take the thread pool), an exception from a
/// chunk on either thread surfacing as AggregateException, and the team usable again afterwards.
/// </summary>
public sealed class ParallelDriverTests
{
    private static void Doubling(int chunks, int degree, float[] input, float[] output, int[] runs)
    {
        BatchParallel.For<float>(chunks, degree, runs, (int chunk, object state, in ChunkSpans<float> s) =>
        {
            Interlocked.Increment(ref ((int[])state)[chunk]);
            for (int i = chunk * 16; i < chunk * 16 + 16; i++) s.W0[i] = s.R0[i] * 2;
        }, (chunks, 1, 1), r0: input, w0: output);
    }

    [Theory]
    [InlineData(2, 2)]
    [InlineData(8, 2)]
    [InlineData(8, 3)]
    [InlineData(37, 8)]
    [InlineData(3, 64)]
    public void Every_chunk_runs_exactly_once(int chunks, int degree)
    {
        for (int repeat = 0; repeat < 50; repeat++)
        {
            float[] input = Enumerable.Range(0, chunks * 16).Select(i => (float)i + repeat).ToArray();
            var output = new float[input.Length];
            var runs = new int[chunks];
            Doubling(chunks, degree, input, output, runs);
            Assert.All(runs, n => Assert.Equal(1, n));
            Assert.Equal(input.Select(x => x * 2), output);
        }
    }

    [Fact]
    public void Concurrent_callers_and_nested_calls_all_complete_with_their_own_results()
    {
        Parallel.For(0, 6, new ParallelOptions { MaxDegreeOfParallelism = 3 }, caller =>
        {
            for (int repeat = 0; repeat < 40; repeat++)
            {
                float[] input = Enumerable.Range(0, 8 * 16).Select(i => (float)(i * (caller + 1))).ToArray();
                var output = new float[input.Length];
                var outerRuns = new int[4];
                // Each outer chunk runs a parallel call of its own over its quarter of the data.
                BatchParallel.For<float>(4, 2, outerRuns, (int quarter, object state, in ChunkSpans<float> s) =>
                {
                    Interlocked.Increment(ref ((int[])state)[quarter]);
                    float[] part = s.R0.Slice(quarter * 32, 32).ToArray();
                    var doubled = new float[32];
                    Doubling(2, 2, part, doubled, new int[2]);
                    doubled.CopyTo(s.W0.Slice(quarter * 32, 32));
                }, (4, 1, 1), r0: input, w0: output);
                Assert.All(outerRuns, n => Assert.Equal(1, n));
                Assert.Equal(input.Select(x => x * 2), output);
            }
        });
    }

    [Fact]
    public void An_exception_in_any_chunk_surfaces_and_the_driver_still_works_afterwards()
    {
        foreach (int failing in new[] { 0, 7 })
        {
            int ran = 0;
            var error = Assert.Throws<AggregateException>(() =>
                BatchParallel.For<float>(8, 2, new object(), (int chunk, object _, in ChunkSpans<float> s) =>
                {
                    Interlocked.Increment(ref ran);
                    Thread.Sleep(1); // let the second thread take chunks too
                    if (chunk == failing) throw new InvalidOperationException($"chunk {chunk}");
                }, (8, 1, 1)));
            Assert.Contains(error.Flatten().InnerExceptions, e => e is InvalidOperationException && e.Message == $"chunk {failing}");
            Assert.InRange(ran, 1, 8);
        }
        float[] input = Enumerable.Range(0, 8 * 16).Select(i => (float)i).ToArray();
        var output = new float[input.Length];
        var runs = new int[8];
        Doubling(8, 2, input, output, runs);
        Assert.Equal(input.Select(x => x * 2), output);
    }

    // Each thread owns a range of the chunks and runs it in order; one that runs out takes the last chunks of the others'
    // ranges. Here the first chunk holds its thread until every other chunk has run, so the chunks of that thread's range
    // can only be run by the others taking them: without that, this waits out its timeout and fails.
    [Theory]
    [InlineData(8, 2)]
    [InlineData(9, 3)]
    public void A_held_thread_s_chunks_are_taken_by_the_others(int chunks, int degree)
    {
        for (int repeat = 0; repeat < 5; repeat++)
        {
            var runs = new int[chunks];
            var runners = new int[chunks];
            int heldChunk = -1, others = 0;
            bool allOthersRan = true;
            BatchParallel.For<float>(chunks, degree, runs, (int chunk, object state, in ChunkSpans<float> _) =>
            {
                Interlocked.Increment(ref ((int[])state)[chunk]);
                runners[chunk] = Environment.CurrentManagedThreadId;
                if (Interlocked.CompareExchange(ref heldChunk, chunk, -1) == -1)
                {
                    // the first chunk to start: hold this thread until the rest are done (or 20 s pass)
                    allOthersRan = SpinWait.SpinUntil(() => Volatile.Read(ref others) == chunks - 1, TimeSpan.FromSeconds(20));
                    return;
                }
                Interlocked.Increment(ref others);
            }, (chunks, 1, 1));
            Assert.True(allOthersRan, $"the other threads left chunks of the held thread's range unrun ({others} of {chunks - 1} ran)");
            Assert.All(runs, n => Assert.Equal(1, n));
            Assert.Contains(runners, id => id != runners[heldChunk]);
        }
    }

    // A phase of products, each cut into parts (chunk = product · parts + part), runs every product's part 0 first, then
    // every product's part 1, so that threads owning consecutive positions take the same rows of every product.
    [Fact]
    public void A_call_on_the_worker_team_allocates_nothing_on_the_calling_thread()
    {
        float[] input = Enumerable.Range(0, 8 * 16).Select(i => (float)i).ToArray();
        var output = new float[input.Length];
        var state = new object();
        ChunkBody<float> body = static (int chunk, object state, in ChunkSpans<float> s) =>
        {
            for (int i = chunk * 16; i < chunk * 16 + 16; i++) s.W0[i] = s.R0[i] * 2;
        };
        for (int warm = 0; warm < 5; warm++)
        {
            BatchParallel.For<float>(8, 2, state, body, (8, 1, 1), r0: input, w0: output);
        }
        // The fewest bytes over several calls: a call that found the team busy (another test's) takes the thread pool,
        // which allocates; one on the team must not.
        long fewest = long.MaxValue;
        for (int call = 0; call < 20; call++)
        {
            Array.Clear(output);
            long before = GC.GetAllocatedBytesForCurrentThread();
            BatchParallel.For<float>(8, 2, state, body, (8, 1, 1), r0: input, w0: output);
            fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
            Assert.Equal(input.Select(x => x * 2), output);
        }
        Assert.Equal(0, fewest);
    }

    [Fact]
    public void Interleaved_runs_every_product_s_part_in_turn_and_each_chunk_once()
    {
        Assert.Equal(new[] { 0, 4, 1, 5, 2, 6, 3, 7, 8 }, Enumerable.Range(0, 9).Select(p => BatchParallel.Interleaved(p, 2, 4)));
        Assert.Equal(new[] { 0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11 }, Enumerable.Range(0, 12).Select(p => BatchParallel.Interleaved(p, 3, 4)));
        foreach ((int products, int parts) in new[] { (1, 4), (4, 4), (5, 3), (2, 1) })
        {
            int[] order = Enumerable.Range(0, products * parts + 1).Select(p => BatchParallel.Interleaved(p, products, parts)).ToArray();
            Assert.Equal(Enumerable.Range(0, products * parts + 1), order.OrderBy(c => c));
        }
    }

    // The scratch that threads share starts on a 64-byte line whatever the buffer's own offset, keeps the asked length,
    // and a buffer without the slack is refused.
    [Fact]
    public unsafe void Aligned_scratch_starts_on_a_cache_line_and_keeps_its_length()
    {
        float* raw = stackalloc float[256 + 64];
        for (int offset = 0; offset < 20; offset++)
        {
            var buffer = new Span<float>(raw + offset, 256 + CacheLines.Slack<float>());
            Span<float> aligned = CacheLines.Aligned(buffer, 256);
            Assert.Equal(256, aligned.Length);
            Assert.Equal(0, (long)(nint)System.Runtime.CompilerServices.Unsafe.AsPointer(ref aligned[0]) % 64);
            Assert.True(aligned[0..1].Overlaps(buffer) && aligned[^1..].Overlaps(buffer), "the aligned span lies inside the buffer");
        }
        Assert.Equal(8, CacheLines.Slack<double>());
        Assert.Throws<ArgumentException>(() => CacheLines.Aligned(new float[256 + 15], 256));
    }

    // A tape's arrays start on a 64-byte line (so their rows of whole lines do too), are zeroed when new, and keep their
    // elements when asked for no more than they hold.
    [Fact]
    public unsafe void AlignedBuffer_starts_on_a_cache_line_and_grows_keeping_its_contents()
    {
        var buffer = default(AlignedBuffer<float>);
        Assert.Equal(0, buffer.Length);
        Assert.True(buffer.AsSpan().IsEmpty);
        Assert.True(buffer.AsSpan(0, 0).IsEmpty);
        // Many sizes, so that the heap hands out starts at every offset it uses: each must come back aligned and zeroed.
        for (int length = 1; length < 200; length += 7)
        {
            var grown = default(AlignedBuffer<double>);
            grown.EnsureLength(length);
            Assert.Equal(length, grown.Length);
            Assert.Equal(0, (long)(nint)System.Runtime.CompilerServices.Unsafe.AsPointer(ref grown[0]) % 64);
            Assert.All(grown.AsSpan().ToArray(), v => Assert.Equal(0.0, v));
        }
        buffer.EnsureLength(100);
        for (int i = 0; i < 100; i++) buffer[i] = i + 1;
        ref float first = ref buffer[0];
        buffer.EnsureLength(60); // long enough already: the same elements, contents kept
        Assert.Equal(100, buffer.Length);
        Assert.True(System.Runtime.CompilerServices.Unsafe.AreSame(ref first, ref buffer[0]));
        Assert.Equal(7f, buffer.AsSpan(3, 5)[3]);
        Assert.Equal(100f, buffer.AsSpan(99)[0]);
        Span<float> all = buffer;
        Assert.Equal(100, all.Length);
        buffer.EnsureLength(1000); // a new zeroed array, aligned
        Assert.Equal(1000, buffer.Length);
        Assert.Equal(0f, buffer[0]);
        Assert.Equal(0, (long)(nint)System.Runtime.CompilerServices.Unsafe.AsPointer(ref buffer[0]) % 64);
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.AsSpan(990, 11));
        Assert.Throws<IndexOutOfRangeException>(() => buffer[1000]);
        Assert.Throws<IndexOutOfRangeException>(() => buffer[-1]);
        Assert.Throws<IndexOutOfRangeException>(() => default(AlignedBuffer<float>)[0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.EnsureLength(-1));
    }
}
