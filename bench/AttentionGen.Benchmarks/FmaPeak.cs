using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Threading;

namespace AttentionGen.Benchmarks;

/// <summary>The machine's FP32 FMA peak in GFLOP/s, measured at start-up on one thread and on two.</summary>
/// <param name="Vector256OneThread">12 independent chains of 256-bit FMAs on one thread.</param>
/// <param name="Vector512OneThread">The same with 512-bit FMAs; 0 where Vector512 is not accelerated.</param>
/// <param name="OneThread">The better of the two widths on one thread: the peak the tables divide by.</param>
/// <param name="TwoThreads">That width on two threads at once.</param>
public sealed record FmaPeak(double Vector256OneThread, double Vector512OneThread, double OneThread, double TwoThreads)
{
    // 12 chains cover the FMA latency (4 cycles) times the FMA ports (2) with room to spare; 20 M iterations take
    // about 0.1 s on one Zen 4 core.
    private const int Iterations = 20_000_000;

    public static FmaPeak Measure()
    {
        Chains256(1000);
        double v256 = Time(() => Chains256(Iterations), Iterations * 12.0 * Vector256<float>.Count * 2);
        double v512 = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Chains512(1000);
            v512 = Time(() => Chains512(Iterations), Iterations * 12.0 * Vector512<float>.Count * 2);
        }
        bool wide = v512 > v256;
        double flopsPerThread = Iterations * 12.0 * (wide ? Vector512<float>.Count : Vector256<float>.Count) * 2;
        // Best of three: at start-up the runtime's background work (tier-1 compilation of the suite's own code) can take
        // the second core for a while, which once halved a single two-thread measurement.
        double two = 0;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            two = Math.Max(two, Time(() => RunOnTwoThreads(() => { if (wide) Chains512(Iterations); else Chains256(Iterations); }), 2 * flopsPerThread));
        }
        return new FmaPeak(v256, v512, Math.Max(v256, v512), two);
    }

    /// <summary>
    /// The one-thread peak on each vCPU the process may run on, measured on a thread pinned to it (Linux only), three
    /// rounds interleaved (vCPU 0, 1, then 1, 0, …) and the median of each vCPU's three kept: on this VM one vCPU is at times
    /// about 30 % slower than the other (a neighbour on the host), and which one changes over time. Null, with
    /// <paramref name="failure"/> saying why, where affinity cannot be set.
    /// </summary>
    public IReadOnlyList<CpuPeak>? MeasurePerCpu(out string? failure)
    {
        int[]? cpus = CpuAffinity.AllowedCpus(out failure);
        if (cpus is null) return null;
        if (cpus.Length > MaximumMeasuredCpus)
        {
            // About 0.15 s per vCPU: on a large machine the measurement would take long, and one slow vCPU matters less there.
            failure = $"{cpus.Length} vCPUs; the per-vCPU peaks are measured on at most {MaximumMeasuredCpus}";
            return null;
        }
        if (cpus.Length < 2) return cpus.Select(c => new CpuPeak(c, OneThread)).ToList(); // nothing to choose between
        bool wide = Vector512OneThread > Vector256OneThread;
        double flops = Iterations * 12.0 * (wide ? Vector512<float>.Count : Vector256<float>.Count) * 2;
        var medians = CpuAffinity.MedianOnEachCpu(cpus, 3, () =>
        {
            if (wide) Chains512(1000); else Chains256(1000);
            return Time(() => { if (wide) Chains512(Iterations); else Chains256(Iterations); }, flops);
        }, out failure);
        return medians?.Select(m => new CpuPeak(m.Cpu, m.Median)).ToList();
    }

    private const int MaximumMeasuredCpus = 8;

    /// <summary>The peak for a thread count (1 or 2).</summary>
    public double For(int threads) => threads >= 2 ? TwoThreads : OneThread;

    /// <summary>The better of two measurements, figure by figure.</summary>
    public static FmaPeak Best(FmaPeak a, FmaPeak b)
        => new(Math.Max(a.Vector256OneThread, b.Vector256OneThread), Math.Max(a.Vector512OneThread, b.Vector512OneThread),
            Math.Max(a.OneThread, b.OneThread), Math.Max(a.TwoThreads, b.TwoThreads));

    /// <summary>
    /// Why a run measured between <paramref name="start"/> and <paramref name="end"/> should be repeated before it is quoted,
    /// or null: on this VM a neighbour sometimes takes part of a core (the two-thread peak then read 116–179 GFLOP/s against
    /// 220–232 idle), and the run's figures, the two-thread ones most, drift with it.
    /// </summary>
    public static string? Disturbance(FmaPeak start, FmaPeak end)
    {
        var reasons = new System.Collections.Generic.List<string>();
        foreach ((string when, FmaPeak peak) in new[] { ("at start", start), ("after the run", end) })
        {
            double scaling = peak.TwoThreads / peak.OneThread;
            if (scaling < MinimumTwoThreadScaling)
            {
                reasons.Add($"two threads reached {scaling:F2}× one thread's peak {when} (an idle machine gives 1.9–2.0×)");
            }
        }
        double drift = Math.Abs(start.OneThread - end.OneThread) / Math.Max(start.OneThread, end.OneThread);
        if (drift > MaximumOneThreadDrift)
        {
            reasons.Add($"the one-thread peak moved by {drift:P0} between start and end ({start.OneThread:F1} → {end.OneThread:F1} GFLOP/s)");
        }
        return reasons.Count == 0 ? null : "The machine was shared during this run: " + string.Join("; ", reasons) + ". Repeat it before quoting these figures.";
    }

    private const double MinimumTwoThreadScaling = 1.8;
    private const double MaximumOneThreadDrift = 0.10;

    // Two dedicated threads released together: Parallel.For's second worker may start late (the pool injects it), which
    // made the two-thread figure 1.5× the one-thread one on an idle machine where two started threads reach 2.0×.
    private static void RunOnTwoThreads(Action work)
    {
        using var start = new Barrier(2);
        var threads = new Thread[2];
        for (int t = 0; t < 2; t++)
        {
            threads[t] = new Thread(() => { start.SignalAndWait(); work(); });
            threads[t].Start();
        }
        foreach (Thread thread in threads) thread.Join();
    }

    public override string ToString()
        => $"FMA peak (FP32, measured now): {OneThread:F1} GFLOP/s on 1 thread (Vector256 {Vector256OneThread:F1}"
            + (Vector512OneThread > 0 ? $", Vector512 {Vector512OneThread:F1}" : ", Vector512 not accelerated") + $"), {TwoThreads:F1} GFLOP/s on 2 threads";

    private static double Time(Action action, double flops)
    {
        var watch = Stopwatch.StartNew();
        action();
        return flops / watch.Elapsed.TotalSeconds / 1e9;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Chains256(int iterations)
    {
        Vector256<float> a = Vector256.Create(0.999f), b = Vector256.Create(1e-6f);
        Vector256<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a;
        for (int i = 0; i < iterations; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, a, b); c1 = Vector256.FusedMultiplyAdd(c1, a, b); c2 = Vector256.FusedMultiplyAdd(c2, a, b);
            c3 = Vector256.FusedMultiplyAdd(c3, a, b); c4 = Vector256.FusedMultiplyAdd(c4, a, b); c5 = Vector256.FusedMultiplyAdd(c5, a, b);
            c6 = Vector256.FusedMultiplyAdd(c6, a, b); c7 = Vector256.FusedMultiplyAdd(c7, a, b); c8 = Vector256.FusedMultiplyAdd(c8, a, b);
            c9 = Vector256.FusedMultiplyAdd(c9, a, b); c10 = Vector256.FusedMultiplyAdd(c10, a, b); c11 = Vector256.FusedMultiplyAdd(c11, a, b);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Chains512(int iterations)
    {
        Vector512<float> a = Vector512.Create(0.999f), b = Vector512.Create(1e-6f);
        Vector512<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a;
        for (int i = 0; i < iterations; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, a, b); c1 = Vector512.FusedMultiplyAdd(c1, a, b); c2 = Vector512.FusedMultiplyAdd(c2, a, b);
            c3 = Vector512.FusedMultiplyAdd(c3, a, b); c4 = Vector512.FusedMultiplyAdd(c4, a, b); c5 = Vector512.FusedMultiplyAdd(c5, a, b);
            c6 = Vector512.FusedMultiplyAdd(c6, a, b); c7 = Vector512.FusedMultiplyAdd(c7, a, b); c8 = Vector512.FusedMultiplyAdd(c8, a, b);
            c9 = Vector512.FusedMultiplyAdd(c9, a, b); c10 = Vector512.FusedMultiplyAdd(c10, a, b); c11 = Vector512.FusedMultiplyAdd(c11, a, b);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }
}

/// <summary>The one-thread FMA peak measured on one vCPU.</summary>
public sealed record CpuPeak(int Cpu, double Peak);

/// <summary>
/// A one-thread training step's time per call on one vCPU (W3's, see StepProbe): the side of a vCPU's speed that its FMA
/// peak misses. On 2026-12-07 two full runs pinned to a vCPU whose FMA peak was as high as the other's ran W3's step at
/// 1.84–1.93 ms there against 1.55–1.62 ms on the other vCPU.
/// </summary>
public sealed record CpuStepTime(int Cpu, double Milliseconds);

/// <summary>
/// Where the one-thread benchmarks run: <paramref name="Cpu"/> (null = not pinned), and a sentence saying why, for the
/// console and the summary.
/// </summary>
public sealed record PinChoice(int? Cpu, string Description)
{
    /// <summary>The better of a vCPU's peaks at start-up and after the run (null when it was not measured).</summary>
    public static double? PeakOf(int cpu, IReadOnlyList<CpuPeak>? start, IReadOnlyList<CpuPeak>? after)
    {
        double? best = null;
        foreach (CpuPeak peak in (start ?? []).Concat(after ?? []))
        {
            if (peak.Cpu == cpu && peak.Peak > (best ?? 0)) best = peak.Peak;
        }
        return best;
    }

    /// <summary>
    /// The vCPU with the shortest training step (<paramref name="steps"/>, when every vCPU of <paramref name="peaks"/> has
    /// a positive finite one), else the one with the highest one-thread peak (the lowest number on a tie either way), or
    /// no pinning: when <paramref name="pin"/> is false (<c>--no-pin</c>), when the peaks could not be measured
    /// (<paramref name="failure"/>), on one vCPU, or when a peak is not a positive finite number. Never throws.
    /// </summary>
    public static PinChoice Choose(IReadOnlyList<CpuPeak>? peaks, bool pin, string? failure, IReadOnlyList<CpuStepTime>? steps = null)
    {
        if (!pin) return new(null, "one-thread benchmarks not pinned (--no-pin)");
        if (peaks is null) return new(null, $"one-thread benchmarks not pinned: {failure ?? "the per-vCPU peaks were not measured"}");
        if (peaks.Count < 2) return new(null, $"one-thread benchmarks not pinned: the process may run on {peaks.Count} vCPU{(peaks.Count == 1 ? "" : "s")} only");
        if (peaks.Any(p => !double.IsFinite(p.Peak) || p.Peak <= 0)) return new(null, "one-thread benchmarks not pinned: a per-vCPU peak could not be measured");
        if (steps is not null && peaks.All(p => steps.Any(s => s.Cpu == p.Cpu && double.IsFinite(s.Milliseconds) && s.Milliseconds > 0)))
        {
            var measured = steps.Where(s => peaks.Any(p => p.Cpu == s.Cpu)).ToList();
            CpuStepTime fastest = measured.OrderBy(s => s.Milliseconds).ThenBy(s => s.Cpu).First();
            CpuStepTime slowestStep = measured.OrderByDescending(s => s.Milliseconds).ThenBy(s => s.Cpu).First();
            return new(fastest.Cpu, $"one-thread benchmarks pinned to vCPU {fastest.Cpu}, the faster at start-up on a one-thread training step"
                + (slowestStep.Cpu == fastest.Cpu ? "" : $" (vCPU {slowestStep.Cpu} {slowestStep.Milliseconds / fastest.Milliseconds - 1:P0} slower)"));
        }
        CpuPeak best = peaks.OrderByDescending(p => p.Peak).ThenBy(p => p.Cpu).First();
        CpuPeak slowest = peaks.OrderBy(p => p.Peak).ThenBy(p => p.Cpu).First();
        return new(best.Cpu, $"one-thread benchmarks pinned to vCPU {best.Cpu}, the faster at start-up"
            + (slowest.Cpu == best.Cpu ? "" : $" (vCPU {slowest.Cpu} {1 - slowest.Peak / best.Peak:P0} slower)"));
    }

    /// <summary>"training step (W3, 1 thread): vCPU 0 1.62, vCPU 1 1.93 ms", or an empty string when not measured.</summary>
    public static string Format(IReadOnlyList<CpuStepTime>? steps)
        => steps is null ? "" : "training step (W3, 1 thread): " + string.Join(", ", steps.Select(s => $"vCPU {s.Cpu} {s.Milliseconds:F2}")) + " ms";

    /// <summary>
    /// A warning when the chosen vCPU's training step was more than a tenth slower than another's after the run, else null.
    /// </summary>
    public string? StepDrift(IReadOnlyList<CpuStepTime>? after)
    {
        if (Cpu is not int cpu || after is null || after.Count < 2) return null;
        CpuStepTime? chosen = after.FirstOrDefault(s => s.Cpu == cpu);
        CpuStepTime fastest = after.OrderBy(s => s.Milliseconds).First();
        if (chosen is null || fastest.Cpu == cpu || chosen.Milliseconds <= 1.1 * fastest.Milliseconds) return null;
        return $"after the run the pinned vCPU {cpu} took {chosen.Milliseconds / fastest.Milliseconds - 1:P0} longer than vCPU {fastest.Cpu} for a training step: the one-thread figures may be slow";
    }

    /// <summary>"vCPU 0 150.2, vCPU 1 210.3 GFLOP/s", or why there are no figures.</summary>
    public static string Format(IReadOnlyList<CpuPeak>? peaks, string? failure)
        => peaks is null ? $"per-vCPU FMA peaks not measured ({failure})"
            : "per-vCPU FMA peaks (1 thread): " + string.Join(", ", peaks.Select(p => $"vCPU {p.Cpu} {p.Peak:F1}")) + " GFLOP/s";

    /// <summary>
    /// A warning when the chosen vCPU was more than a tenth slower than another after the run (the roles had swapped
    /// during it), else null.
    /// </summary>
    public string? Drift(IReadOnlyList<CpuPeak>? after)
    {
        if (Cpu is not int cpu || after is null || after.Count < 2) return null;
        CpuPeak? chosen = after.FirstOrDefault(p => p.Cpu == cpu);
        CpuPeak best = after.OrderByDescending(p => p.Peak).First();
        if (chosen is null || best.Cpu == cpu || chosen.Peak >= 0.9 * best.Peak) return null;
        return $"after the run the pinned vCPU {cpu} was {1 - chosen.Peak / best.Peak:P0} slower than vCPU {best.Cpu}: the one-thread figures may be slow";
    }
}

/// <summary>
/// Thread affinity on Linux through sched_getaffinity / sched_setaffinity with pid 0 (the calling thread only: other
/// threads keep theirs; threads it starts inherit it). Elsewhere, or when the calls fail, every method says why and
/// changes nothing.
/// </summary>
public static class CpuAffinity
{
    private const int MaskWords = 16; // 1024 CPUs, glibc's cpu_set_t

    private static ulong[]? s_original;

    /// <summary>
    /// <paramref name="measure"/> run on a thread pinned to each of <paramref name="cpus"/> in turn, for
    /// <paramref name="rounds"/> rounds interleaved (the order reversed every other round, so no vCPU always goes first),
    /// and each vCPU's median; null, with <paramref name="failure"/> saying why, when a thread cannot be pinned.
    /// </summary>
    public static IReadOnlyList<(int Cpu, double Median)>? MedianOnEachCpu(IReadOnlyList<int> cpus, int rounds, Func<double> measure, out string? failure)
    {
        var samples = cpus.ToDictionary(c => c, _ => new List<double>());
        string? error = null;
        for (int round = 0; round < rounds && error is null; round++)
        {
            foreach (int cpu in round % 2 == 0 ? cpus : cpus.Reverse())
            {
                double sample = double.NaN;
                var thread = new Thread(() =>
                {
                    if (!TryPinCurrentThread(cpu, out string? reason)) { error = reason ?? "pinning failed"; return; }
                    sample = measure();
                });
                thread.Start();
                thread.Join();
                if (error is not null) break;
                samples[cpu].Add(sample);
            }
        }
        failure = error;
        return error is null ? cpus.Select(c => (c, samples[c].Order().ElementAt(samples[c].Count / 2))).ToList() : null;
    }

    /// <summary>The CPUs the calling thread may run on, in order, or null with the reason.</summary>
    public static int[]? AllowedCpus(out string? failure)
    {
        ulong[]? mask = GetMask(out failure);
        if (mask is null) return null;
        s_original ??= mask;
        var cpus = new List<int>();
        for (int cpu = 0; cpu < MaskWords * 64; cpu++)
        {
            if ((mask[cpu / 64] & (1UL << (cpu % 64))) != 0) cpus.Add(cpu);
        }
        return cpus.ToArray();
    }

    /// <summary>Pins the calling thread to <paramref name="cpu"/>; false with the reason when it cannot.</summary>
    public static bool TryPinCurrentThread(int cpu, out string? failure)
    {
        if (cpu < 0 || cpu >= MaskWords * 64) { failure = $"no vCPU {cpu}"; return false; }
        var mask = new ulong[MaskWords];
        mask[cpu / 64] = 1UL << (cpu % 64);
        return SetMask(mask, out failure);
    }

    /// <summary>Gives the calling thread back the CPUs the process started with (those <see cref="AllowedCpus"/> saw first).</summary>
    public static bool TryUnpinCurrentThread(out string? failure)
    {
        if (s_original is null) { failure = "the original affinity was never read"; return false; }
        return SetMask(s_original, out failure);
    }

    private static ulong[]? GetMask(out string? failure)
    {
        failure = null;
        if (!OperatingSystem.IsLinux()) { failure = "thread affinity is only set on Linux"; return null; }
        try
        {
            var mask = new ulong[MaskWords];
            if (sched_getaffinity(0, MaskWords * sizeof(ulong), mask) == 0) return mask;
            failure = $"sched_getaffinity failed (errno {Marshal.GetLastPInvokeError()})";
        }
        catch (Exception exception) when (exception is DllNotFoundException or EntryPointNotFoundException)
        {
            failure = $"sched_getaffinity is not available ({exception.GetType().Name})";
        }
        return null;
    }

    private static bool SetMask(ulong[] mask, out string? failure)
    {
        failure = null;
        if (!OperatingSystem.IsLinux()) { failure = "thread affinity is only set on Linux"; return false; }
        try
        {
            if (sched_setaffinity(0, MaskWords * sizeof(ulong), mask) == 0) return true;
            failure = $"sched_setaffinity failed (errno {Marshal.GetLastPInvokeError()})";
        }
        catch (Exception exception) when (exception is DllNotFoundException or EntryPointNotFoundException)
        {
            failure = $"sched_setaffinity is not available ({exception.GetType().Name})";
        }
        return false;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int sched_getaffinity(int pid, nint cpusetsize, [Out] ulong[] mask);

    [DllImport("libc", SetLastError = true)]
    private static extern int sched_setaffinity(int pid, nint cpusetsize, [In] ulong[] mask);
}
