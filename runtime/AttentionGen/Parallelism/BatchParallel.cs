using System;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;

namespace AttentionGen;

/// <summary>The spans of one parallel call, rebuilt on each worker: up to six inputs, four outputs and a mask.</summary>
/// <typeparam name="T">The element type.</typeparam>
public readonly ref struct ChunkSpans<T> where T : unmanaged
{
    /// <summary>Inputs 0–5, in the order the caller passed them (empty when not passed).</summary>
    public ReadOnlySpan<T> R0 { get; init; }
    /// <inheritdoc cref="R0"/>
    public ReadOnlySpan<T> R1 { get; init; }
    /// <inheritdoc cref="R0"/>
    public ReadOnlySpan<T> R2 { get; init; }
    /// <inheritdoc cref="R0"/>
    public ReadOnlySpan<T> R3 { get; init; }
    /// <inheritdoc cref="R0"/>
    public ReadOnlySpan<T> R4 { get; init; }
    /// <inheritdoc cref="R0"/>
    public ReadOnlySpan<T> R5 { get; init; }
    /// <summary>Outputs 0–3, in the order the caller passed them (empty when not passed).</summary>
    public Span<T> W0 { get; init; }
    /// <inheritdoc cref="W0"/>
    public Span<T> W1 { get; init; }
    /// <inheritdoc cref="W0"/>
    public Span<T> W2 { get; init; }
    /// <inheritdoc cref="W0"/>
    public Span<T> W3 { get; init; }
    /// <summary>The caller's mask.</summary>
    public AttentionMask Mask { get; init; }

    /// <summary>The call's batch size B.</summary>
    public int Batch { get; init; }

    /// <summary>The call's query length Tq.</summary>
    public int QueryLength { get; init; }

    /// <summary>The call's key length Tk.</summary>
    public int KeyLength { get; init; }
}

/// <summary>The work of one chunk: <paramref name="chunk"/> of the call, the caller's state, and its spans.</summary>
public delegate void ChunkBody<T>(int chunk, object state, in ChunkSpans<T> spans) where T : unmanaged;

/// <summary>
/// Runs the chunks of a layer call (for example its batch rows) on several threads. Spans cannot be captured by the
/// closures that threads run, so this pins them for the duration of the call and rebuilds them on each worker; the
/// caller blocks until every chunk is done, so the memory stays valid. Chunks must write disjoint parts of the
/// outputs; then the result does not depend on the number of threads.
/// </summary>
public static class BatchParallel
{
    /// <summary>
    /// The degree of parallelism a layer uses when its <c>MaxDegreeOfParallelism</c> is −1 (the default):
    /// every core the process may use.
    /// </summary>
    public static int DefaultDegree => Environment.ProcessorCount;

    /// <summary>
    /// Whether a call should be spread over threads: more than one chunk, a degree other than 1, more than one core,
    /// and at least <paramref name="threshold"/> units of work (below that, starting threads costs more than it saves).
    /// </summary>
    public static bool ShouldSplit(int chunks, int maxDegree, long work, long threshold)
        => chunks > 1 && maxDegree != 1 && work >= threshold && (maxDegree > 1 || DefaultDegree > 1);

    /// <summary>
    /// How many calls of <see cref="For{T}"/> made on the current thread have handed chunks to other threads (a layer call
    /// that splits makes one or more): for tests and tuning, which can then tell a split call from a serial one.
    /// </summary>
    public static long SplitCallsOnThisThread => t_splitCalls;

    [ThreadStatic]
    private static long t_splitCalls;

    /// <summary>
    /// Runs <paramref name="body"/> for every chunk in [0, <paramref name="chunks"/>), on up to
    /// <paramref name="maxDegree"/> threads (−1: <see cref="DefaultDegree"/>; 1: on the calling thread). Allocates nothing
    /// on one thread or on the runtime's worker team; a call that finds the team in use (another thread's call, or one
    /// from inside a chunk) runs on the thread pool, which allocates.
    /// </summary>
    public static unsafe void For<T>(int chunks, int maxDegree, object state, ChunkBody<T> body, (int Batch, int QueryLength, int KeyLength) lengths, AttentionMask mask = default,
        ReadOnlySpan<T> r0 = default, ReadOnlySpan<T> r1 = default, ReadOnlySpan<T> r2 = default,
        ReadOnlySpan<T> r3 = default, ReadOnlySpan<T> r4 = default, ReadOnlySpan<T> r5 = default,
        Span<T> w0 = default, Span<T> w1 = default, Span<T> w2 = default, Span<T> w3 = default)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(body);
        int degree = maxDegree < 0 ? DefaultDegree : Math.Max(1, maxDegree);
        if (degree == 1 || chunks <= 1)
        {
            var spans = new ChunkSpans<T> { R0 = r0, R1 = r1, R2 = r2, R3 = r3, R4 = r4, R5 = r5, W0 = w0, W1 = w1, W2 = w2, W3 = w3, Mask = mask, Batch = lengths.Batch, QueryLength = lengths.QueryLength, KeyLength = lengths.KeyLength };
            for (int chunk = 0; chunk < chunks; chunk++)
            {
                body(chunk, state, in spans);
            }
            return;
        }

        fixed (T* p0 = r0, p1 = r1, p2 = r2, p3 = r3, p4 = r4, p5 = r5, q0 = w0, q1 = w1, q2 = w2, q3 = w3)
        fixed (bool* keyPadding = mask.KeyPadding, perQuery = mask.PerQuery)
        {
            var pinned = new Pinned<T>
            {
                R0 = p0, R1 = p1, R2 = p2, R3 = p3, R4 = p4, R5 = p5, W0 = q0, W1 = q1, W2 = q2, W3 = q3,
                LengthR0 = r0.Length, LengthR1 = r1.Length, LengthR2 = r2.Length, LengthR3 = r3.Length, LengthR4 = r4.Length, LengthR5 = r5.Length,
                LengthW0 = w0.Length, LengthW1 = w1.Length, LengthW2 = w2.Length, LengthW3 = w3.Length,
                KeyPadding = keyPadding, KeyPaddingLength = mask.KeyPadding.Length, PerQuery = perQuery, PerQueryLength = mask.PerQuery.Length, Causal = mask.Causal,
                Batch = lengths.Batch, QueryLength = lengths.QueryLength, KeyLength = lengths.KeyLength,
            };
            // Each participant owns a fixed share of the chunks (see ParallelCall).
            int participants = Math.Min(degree, chunks);
            t_splitCalls++;
            // The runtime's worker team with its reusable call state (nothing allocated), or, when the team is in use
            // (another call, or a nested one) or the degree exceeds it, the thread pool with a call state of its own.
            WorkerTeam team = WorkerTeam.Shared;
            if (participants - 1 <= WorkerTeam.MaxWorkers && team.TryAcquire())
            {
                ParallelCall<T> call = ParallelCall<T>.ForTeam;
                try
                {
                    call.Start(pinned, body, state, chunks, participants);
                    team.Run(call.Job, participants - 1);
                }
                finally
                {
                    call.Clear();
                    team.Release();
                }
            }
            else
            {
                var call = new ParallelCall<T>();
                call.Start(pinned, body, state, chunks, participants);
                Parallel.For(0, participants, new ParallelOptions { MaxDegreeOfParallelism = degree }, call.Job);
            }
        }
    }

    /// <summary>
    /// The chunk to run at <paramref name="position"/> of a phase of <paramref name="products"/> products, each cut into
    /// <paramref name="parts"/> row ranges (chunk = product · parts + part): every product's first part, then every
    /// product's second part, and so on. Threads own consecutive positions (see <see cref="For{T}"/>), so each takes the
    /// same fraction of the rows of every product, rows whose data it wrote in the phase before. Positions from
    /// products · parts on (chunks of other work) map to themselves.
    /// </summary>
    public static int Interleaved(int position, int products, int parts)
        => position < products * parts ? position % products * parts + position / products : position;

    // One parallel call: its spans, body and state, and each participant's range of chunks still to run.
    // Participant p (the caller is 0, team worker i is i + 1) owns the chunks [p·n/P, (p+1)·n/P) and runs them in order;
    // one that runs out of its own takes the last chunks left in the others' ranges. The same thread thus gets the same
    // batch rows in the forward, in the backward and in the next step, whose tape rows, scratch and gradients are in its
    // own caches: read by the other core they came at half the bandwidth, and a W4 training step spent half again as much
    // CPU time on two threads as on one when each thread took whichever chunk was next. (A plain static split waits for a
    // late thread; taking from the back of another's range does not.) Which thread runs a chunk never changes a result:
    // chunks write disjoint outputs.
    // The team's instance for T is reused by every call that holds the team (one at a time), so a call on the team
    // allocates nothing; a call on the thread pool makes its own.
    private sealed class ParallelCall<T> where T : unmanaged
    {
        public static readonly ParallelCall<T> ForTeam = new();

        // A range [next, end) packed in one long, so that its owner (taking `next`) and another participant (taking
        // `end − 1`) claim chunks with one compare-exchange each and never the same one. Ranges sit a cache line apart.
        private const int Stride = 8; // longs per 64-byte line
        private long[] _ranges = [];
        private Pinned<T> _spans;
        private ChunkBody<T>? _body;
        private object? _state;
        private int _participants;

        public ParallelCall() => Job = Run;

        /// <summary>Runs one participant's chunks (its argument is the participant's index).</summary>
        public Action<int> Job { get; }

        public void Start(in Pinned<T> spans, ChunkBody<T> body, object state, int chunks, int participants)
        {
            if (_ranges.Length < participants * Stride)
            {
                _ranges = new long[participants * Stride];
            }
            for (int p = 0; p < participants; p++)
            {
                int first = (int)((long)chunks * p / participants), end = (int)((long)chunks * (p + 1) / participants);
                _ranges[p * Stride] = Pack(first, end);
            }
            _spans = spans;
            _body = body;
            _state = state;
            _participants = participants;
        }

        // Drops the references and pointers of the call that ended.
        public void Clear()
        {
            _spans = default;
            _body = null;
            _state = null;
        }

        private void Run(int participant)
        {
            ChunkSpans<T> spans = _spans.Rebuild();
            ChunkBody<T> body = _body!;
            object state = _state!;
            int chunk;
            while (TryTake(participant, fromEnd: false, out chunk))
            {
                body(chunk, state, in spans);
            }
            for (int other = 1; other < _participants; other++)
            {
                int owner = (participant + other) % _participants;
                while (TryTake(owner, fromEnd: true, out chunk))
                {
                    body(chunk, state, in spans);
                }
            }
        }

        // Claims the next chunk of `owner`'s range (its owner's turn) or the last (another participant's turn).
        private bool TryTake(int owner, bool fromEnd, out int chunk)
        {
            ref long range = ref _ranges[owner * Stride];
            while (true)
            {
                long seen = Volatile.Read(ref range);
                (int next, int end) = Unpack(seen);
                if (next >= end)
                {
                    chunk = -1;
                    return false;
                }
                long taken = fromEnd ? Pack(next, end - 1) : Pack(next + 1, end);
                if (Interlocked.CompareExchange(ref range, taken, seen) == seen)
                {
                    chunk = fromEnd ? end - 1 : next;
                    return true;
                }
            }
        }

        private static long Pack(int next, int end) => ((long)end << 32) | (uint)next;

        private static (int Next, int End) Unpack(long range) => ((int)range, (int)(range >> 32));
    }

    // The pinned spans as plain pointers, which the call state may hold.
    private unsafe struct Pinned<T> where T : unmanaged
    {
        public T* R0, R1, R2, R3, R4, R5, W0, W1, W2, W3;
        public int LengthR0, LengthR1, LengthR2, LengthR3, LengthR4, LengthR5, LengthW0, LengthW1, LengthW2, LengthW3;
        public bool* KeyPadding, PerQuery;
        public int KeyPaddingLength, PerQueryLength;
        public bool Causal;
        public int Batch, QueryLength, KeyLength;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly ChunkSpans<T> Rebuild() => new()
        {
            R0 = new ReadOnlySpan<T>(R0, LengthR0), R1 = new ReadOnlySpan<T>(R1, LengthR1), R2 = new ReadOnlySpan<T>(R2, LengthR2),
            R3 = new ReadOnlySpan<T>(R3, LengthR3), R4 = new ReadOnlySpan<T>(R4, LengthR4), R5 = new ReadOnlySpan<T>(R5, LengthR5),
            W0 = new Span<T>(W0, LengthW0), W1 = new Span<T>(W1, LengthW1), W2 = new Span<T>(W2, LengthW2), W3 = new Span<T>(W3, LengthW3),
            Mask = new AttentionMask
            {
                KeyPadding = new ReadOnlySpan<bool>(KeyPadding, KeyPaddingLength),
                PerQuery = new ReadOnlySpan<bool>(PerQuery, PerQueryLength),
                Causal = Causal,
            },
            Batch = Batch, QueryLength = QueryLength, KeyLength = KeyLength,
        };
    }
}
