using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
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
