using System;
using System.Threading;

namespace AttentionGen;

/// <summary>
/// The threads a parallel layer call runs on besides the caller: background threads owned by the runtime (as OpenMP or
/// libtorch keep theirs), each waiting for a job, spinning briefly before it blocks. One call uses the team at a time; a
/// call that finds it busy (another thread's call, or a call from inside a chunk) runs on the thread pool instead.
/// </summary>
/// <remarks>
/// Why not the thread pool for every call: a layer call of a few hundred microseconds on two cores is split into one
/// chunk per head or batch row, and the pool's workers arrive late (a sleeping worker takes tens of microseconds to
/// wake) while its idle workers spin on the same two cores; BenchmarkDotNet's medians of two-thread calls then ran
/// 1.5–1.7× one-thread time where the best calls reached 1.95–2.0×. A fixed team with exactly one thread per extra
/// degree, started by an event it is already spinning on, leaves the cores to the work.
/// </remarks>
internal sealed class WorkerTeam
{
    // How long a worker spins for its next job before blocking (layer calls in a training loop follow each other within
    // microseconds), and the most workers a team holds.
    private const int SpinCount = 2000;
    internal const int MaxWorkers = 63;

    private static readonly WorkerTeam s_shared = new();

    private readonly object _growLock = new();
    private ManualResetEventSlim[] _start = Array.Empty<ManualResetEventSlim>();
    private readonly ManualResetEventSlim _finished = new(false, SpinCount);
    private Action<int>? _job;
    private int _running;
    private int _busy;
    private Exception? _error;

    /// <summary>The process's team.</summary>
    public static WorkerTeam Shared => s_shared;

    /// <summary>Takes the team for one call; false when it is in use. The holder runs jobs with <see cref="Run"/>, then <see cref="Release"/>s it.</summary>
    public bool TryAcquire() => Interlocked.CompareExchange(ref _busy, 1, 0) == 0;

    /// <summary>Gives the team back after <see cref="TryAcquire"/>.</summary>
    public void Release() => Volatile.Write(ref _busy, 0);

    /// <summary>
    /// Runs <paramref name="job"/> on the calling thread and on <paramref name="helpers"/> workers (1 to
    /// <see cref="MaxWorkers"/>) at once, and returns when all are done; the caller holds the team. Each gets its
    /// participant index: 0 on the caller, i + 1 on worker i, the same thread for the same index in every call (so a call
    /// can give each thread the same share of its work as the call before, whose data that thread's caches hold). An
    /// exception from any of them is rethrown as an <see cref="AggregateException"/>, as <c>Parallel.For</c> does.
    /// </summary>
    public void Run(Action<int> job, int helpers)
    {
        if (helpers < 1 || helpers > MaxWorkers || Volatile.Read(ref _busy) != 1)
        {
            throw new InvalidOperationException($"Run needs the team held and 1 to {MaxWorkers} helpers (got {helpers}).");
        }
        EnsureWorkers(helpers);
        _job = job;
        _error = null;
        _finished.Reset();
        Volatile.Write(ref _running, helpers);
        for (int i = 0; i < helpers; i++)
        {
            _start[i].Set();
        }
        Exception? own = null;
        try
        {
            job(0);
        }
        catch (Exception e)
        {
            own = e;
        }
        _finished.Wait();
        _job = null;
        Exception? error = own ?? Volatile.Read(ref _error);
        if (error is not null)
        {
            throw new AggregateException(error);
        }
    }

    // Starts workers up to `count` (only while the team is held, so no job is running).
    private void EnsureWorkers(int count)
    {
        if (_start.Length >= count)
        {
            return;
        }
        lock (_growLock)
        {
            var start = new ManualResetEventSlim[count];
            Array.Copy(_start, start, _start.Length);
            for (int i = _start.Length; i < count; i++)
            {
                start[i] = new ManualResetEventSlim(false, SpinCount);
                var thread = new Thread(Work) { IsBackground = true, Name = $"AttentionGen worker {i + 1}" };
                thread.Start((start[i], i + 1));
            }
            _start = start;
        }
    }

    private void Work(object? signal)
    {
        var (start, participant) = ((ManualResetEventSlim, int))signal!;
        while (true)
        {
            start.Wait();
            start.Reset();
            try
            {
                _job!(participant);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _error, e, null);
            }
            if (Interlocked.Decrement(ref _running) == 0)
            {
                _finished.Set();
            }
        }
    }
}
