using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;

namespace AttentionGen.Benchmarks;

/// <summary>
/// The targets' ratios timed side by side. BenchmarkDotNet runs one benchmark after another, so the two sides of a ratio
/// in its table are measured a minute or more apart, and on this VM a vCPU's speed drifts by up to 25 % within minutes
/// (a full run on 2026-12-07 had W3's one-thread forward at 598 µs against 523 µs the run before, with the FMA peak
/// steady). Here each ratio comes from rounds of two short batches, one per side, back to back (the order alternating
/// from round to round): a drift slower than a round moves both sides of that round alike. Reported per comparison: the
/// median of the rounds' ratios, the middle half of them (quartiles), and each side's median time per call.
/// Comparisons: generated against TorchSharp for every workload, pass and thread count, and the decoder steps; generated
/// on two threads against one. One-thread sides run pinned like BenchmarkDotNet's (see <see cref="OneThreadPin"/>),
/// two-thread sides unpinned.
/// </summary>
internal static class Paired
{
    // The decoder steps DecoderStepBenchmarks measures (W2's layer has one too, but a batch of 32 is not a decoder's step).
    private static readonly string[] DecoderStepWorkloads = { "W0", "W1", "W12" };

    // One side of a comparison: the call, and whether its thread is pinned while it runs.
    private sealed record Side(Action Call, bool Pinned);

    public static IReadOnlyList<PairedComparison> Run(IReadOnlyList<Workload> workloads, IReadOnlySet<int> threadCounts, bool torch, PinChoice pin, int rounds, double batchMilliseconds)
    {
        var results = new List<PairedComparison>();
        foreach (Workload w in workloads)
        {
            var data = new WorkloadData(w);
            foreach (int threads in new[] { 1, 2 }.Where(threadCounts.Contains))
            {
                var generated = new GeneratedLayer(data, threads);
                if (threads == 2 && threadCounts.Contains(1))
                {
                    // Before TorchSharp's peer exists, whose idle worker threads would share the two vCPUs.
                    var single = new GeneratedLayer(data, threads: 1);
                    const string label = "generated, 1 thread / 2 threads";
                    results.Add(Compare(w, label, "Forward", new Side(single.Forward, true), new Side(generated.Forward, false), pin, rounds, batchMilliseconds));
                    results.Add(Compare(w, label, "ForwardBackward", new Side(single.Training, true), new Side(generated.Training, false), pin, rounds, batchMilliseconds));
                }
                if (torch)
                {
                    using var peer = new TorchPeer(data, threads); // sets libtorch's thread count for this workload's pairs
                    string label = $"{threads} thread{(threads == 1 ? "" : "s")}: TorchSharp / generated";
                    bool pinned = threads == 1;
                    results.Add(Compare(w, label, "Forward", new Side(() => peer.Forward(), pinned), new Side(generated.Forward, pinned), pin, rounds, batchMilliseconds));
                    results.Add(Compare(w, label, "ForwardBackward", new Side(peer.ForwardBackward, pinned), new Side(generated.Training, pinned), pin, rounds, batchMilliseconds));
                    if (threads == 1 && DecoderStepWorkloads.Contains(w.Id) && peer.HasDecoderStep && generated.DecoderStep is { } step)
                    {
                        results.Add(Compare(w, label, "Step", new Side(() => peer.DecoderStep(), true), new Side(step, true), pin, rounds, batchMilliseconds));
                    }
                }
            }
        }
        return results;
    }

    private static PairedComparison Compare(Workload w, string label, string pass, Side first, Side second, PinChoice pin, int rounds, double batchMilliseconds)
    {
        // Warm-up: both sides for 100 ms (the JIT's tier-up and libtorch's first-call setup; ten batches' time when a batch is
        // shorter than 10 ms, as in the quick run's smoke test).
        foreach (Side side in new[] { first, second })
        {
            Batch(side, pin, Math.Min(100, 10 * batchMilliseconds));
        }
        var ratios = new double[rounds];
        var firstTimes = new double[rounds];
        var secondTimes = new double[rounds];
        for (int r = 0; r < rounds; r++)
        {
            if (r % 2 == 0)
            {
                firstTimes[r] = Batch(first, pin, batchMilliseconds);
                secondTimes[r] = Batch(second, pin, batchMilliseconds);
            }
            else
            {
                secondTimes[r] = Batch(second, pin, batchMilliseconds);
                firstTimes[r] = Batch(first, pin, batchMilliseconds);
            }
            ratios[r] = firstTimes[r] / secondTimes[r];
        }
        return new PairedComparison(w.Id, label, pass, ratios, PairedTable.Quantile(firstTimes, 0.5), PairedTable.Quantile(secondTimes, 0.5));
    }

    // Nanoseconds per call over a batch of at least two calls and the given time, on the pinned vCPU if the side asks.
    private static double Batch(Side side, PinChoice pin, double milliseconds)
    {
        bool pinned = side.Pinned && pin.Cpu is int cpu && CpuAffinity.TryPinCurrentThread(cpu, out _);
        try
        {
            var clock = Stopwatch.StartNew();
            int calls = 0;
            while (calls < 2 || clock.Elapsed.TotalMilliseconds < milliseconds)
            {
                side.Call();
                calls++;
            }
            return clock.Elapsed.TotalMilliseconds * 1e6 / calls;
        }
        finally
        {
            if (pinned) CpuAffinity.TryUnpinCurrentThread(out _);
        }
    }
}
