using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;

namespace AttentionGen.Benchmarks;

/// <summary>
/// A one-thread W3 training step timed on each vCPU, for <see cref="PinChoice.Choose"/>: the FMA peak measures the
/// arithmetic of a vCPU, not the caches and memory a training step also waits on, and on this VM one vCPU at times runs
/// such steps 15–20 % slower than the other at the same FMA peak (the host's neighbours). After 200 ms of calls on the
/// calling thread (so that tiered compilation has optimised the runtime's helpers: a first round on cold code read
/// 2.1–2.3 ms against 1.6–1.8 ms warm), three rounds interleaved, the order reversed each round (vCPU 0, 1, then 1, 0, …),
/// each the median of 15 calls after 3 warm-up calls on a thread pinned to the vCPU; each vCPU keeps the median of its
/// three rounds. About 0.5 s for two vCPUs.
/// </summary>
internal static class StepProbe
{
    private const int Rounds = 3, Calls = 15, WarmUpCalls = 3;

    /// <summary>The step time on each vCPU of <paramref name="cpus"/>, or null with fewer than two or when pinning fails.</summary>
    public static IReadOnlyList<CpuStepTime>? MeasurePerCpu(IReadOnlyList<CpuPeak>? cpus)
    {
        if (cpus is null || cpus.Count < 2) return null;
        var layer = new GeneratedLayer(new WorkloadData(Workload.W3), threads: 1);
        var warmUp = Stopwatch.StartNew();
        while (warmUp.ElapsedMilliseconds < 200) layer.Training();
        var medians = CpuAffinity.MedianOnEachCpu(cpus.Select(c => c.Cpu).ToList(), Rounds, () =>
        {
            for (int i = 0; i < WarmUpCalls; i++) layer.Training();
            var times = new double[Calls];
            for (int i = 0; i < Calls; i++)
            {
                long start = Stopwatch.GetTimestamp();
                layer.Training();
                times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
            return PairedTable.Quantile(times, 0.5);
        }, out _);
        return medians?.Select(m => new CpuStepTime(m.Cpu, m.Median)).ToList();
    }
}
