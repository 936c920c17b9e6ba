using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;

namespace AttentionGen.Benchmarks;

/// <summary>
/// The CI smoke run: on every workload's benchmark inputs, the generated layer's forward and gradients against the
/// hand-written baseline, and TorchSharp's against the baseline (against the generated layer for gradients the
/// baseline does not compute: W5/W6); then rough timings and the bytes a forward allocates. No statistics.
/// </summary>
internal static class Quick
{
    // Norm-wise relative tolerances: float sums in different orders over up to 1024 terms.
    private const double ForwardTolerance = 1e-4, GradientTolerance = 1e-3;

    public static int Run(IReadOnlyList<Workload> workloads, bool torch)
    {
        var total = Stopwatch.StartNew();
        var failures = new List<string>();
        bool tiered = Environment.GetEnvironmentVariable("DOTNET_TieredCompilation") != "0";
        Console.WriteLine("Smoke timings (1 thread, a few iterations after a short warm-up; the figures to quote come from the full run"
            + (tiered ? "; tiered compilation is on, so early calls may run unoptimised code: bench/run.sh turns it off for --quick" : "; tiered compilation off") + "):");
        Console.WriteLine("| workload | implementation | forward | fwd+bwd | forward allocates | checked against the baseline |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- |");
        foreach (Workload w in workloads)
        {
            var data = new WorkloadData(w);
            IBaseline baseline = Baseline.For(data);
            baseline.Forward();
            if (baseline.HasBackward) baseline.Backward();

            var generated = new GeneratedLayer(data, threads: 1);
            generated.ZeroGradients();
            generated.Forward();
            var checks = new List<string> { Check(failures, w, "generated forward", baseline.Context, generated.Context, ForwardTolerance) };
            generated.ZeroGradients();
            generated.Training();
            if (baseline.HasBackward)
            {
                checks.Add(CheckGradients(failures, w, "generated", baseline.Gradients, generated.Gradients));
            }
            Console.WriteLine($"| {w.Id} | generated | {Time(generated.Forward)} | {Time(generated.Training)} | {Allocated(generated.Forward)} | {string.Join("; ", checks)} |");
            Console.WriteLine($"| {w.Id} | baseline | {Time(baseline.Forward)} | {(baseline.HasBackward ? Time(() => { baseline.Forward(); baseline.Backward(); }) : "—")} | {Allocated(baseline.Forward)} | (reference) |");
            if (baseline is IDecoderStepBaseline stepper)
            {
                // Keys projected once, then the step alone: the same context as the whole forward (which the tests check
                // against the scalar reference).
                float[] whole = baseline.Context.ToArray();
                stepper.ProjectKeys();
                Array.Clear(baseline.Context);
                stepper.Step();
                string stepCheck = Check(failures, w, "baseline decoder step", whole, baseline.Context, 0);
                Console.WriteLine($"| {w.Id} | baseline, decoder step | {Time(stepper.Step)} | — | {Allocated(stepper.Step)} | {stepCheck} (against its forward) |");
            }
            if (generated.DecoderStep is { } step)
            {
                // The decoder-step call (keys projected once at setup) computes the same context as the whole forward.
                Array.Clear(generated.Context);
                step();
                string stepCheck = Check(failures, w, "generated decoder step", baseline.Context, generated.Context, ForwardTolerance);
                Console.WriteLine($"| {w.Id} | generated, decoder step | {Time(step)} | — | {Allocated(step)} | {stepCheck} |");
            }
            if (torch)
            {
                using var peer = new TorchPeer(data, threads: 1);
                if (peer.HasDecoderStep)
                {
                    string stepCheck = Check(failures, w, "TorchSharp decoder step", baseline.Context, peer.DecoderStep(), ForwardTolerance);
                    Console.WriteLine($"| {w.Id} | TorchSharp, decoder step | {Time(() => peer.DecoderStep())} | — | {Allocated(() => peer.DecoderStep())} | {stepCheck} |");
                }
                var torchChecks = new List<string> { Check(failures, w, "TorchSharp forward", baseline.Context, peer.Forward(), ForwardTolerance) };
                // W5/W6: the baseline has no backward, so TorchSharp's gradients check the generated layer's instead.
                IReadOnlyDictionary<string, float[]> reference = baseline.HasBackward ? baseline.Gradients : generated.Gradients;
                torchChecks.Add(CheckGradients(failures, w, "TorchSharp", reference, peer.Gradients()) + (baseline.HasBackward ? "" : " (against generated)"));
                Console.WriteLine($"| {w.Id} | TorchSharp | {Time(() => peer.Forward())} | {Time(peer.ForwardBackward)} | {Allocated(() => peer.Forward())} | {string.Join("; ", torchChecks)} |");
            }
        }
        if (torch)
        {
            Console.WriteLine(MultiHeadParity.Check(failures));
        }
        if (workloads.Count > 0)
        {
            // The full run's paired comparisons (see Paired) on the first workload, two short rounds each: that they run and
            // give a finite ratio. Unpinned, like the rest of the quick run.
            const int Rounds = 2;
            const double BatchMilliseconds = 2;
            var paired = Paired.Run(workloads.Take(1).ToList(), new HashSet<int> { 1, 2 }, torch, new PinChoice(null, "unpinned"), Rounds, BatchMilliseconds);
            Console.WriteLine(PairedTable.Format(paired, Rounds, BatchMilliseconds));
            foreach (PairedComparison c in paired.Where(c => !(double.IsFinite(c.Median) && c.Median > 0)))
            {
                failures.Add($"{c.Workload} paired {c.Pass} ({c.Label}): ratio {c.Median}");
            }
        }
        Console.WriteLine($"quick run took {total.Elapsed.TotalSeconds:F0} s");
        if (failures.Count == 0)
        {
            Console.WriteLine("quick benchmark run: every kernel matches the baseline");
            return 0;
        }
        Console.WriteLine($"quick benchmark run: {failures.Count} mismatch(es): {string.Join(", ", failures)}");
        return 1;
    }

    private static string CheckGradients(List<string> failures, Workload w, string what, IReadOnlyDictionary<string, float[]> expected, IReadOnlyDictionary<string, float[]> actual)
    {
        var bad = new List<string>();
        foreach (var (name, reference) in expected)
        {
            if (!actual.TryGetValue(name, out float[]? gradient) || RelativeDifference(reference, gradient) > GradientTolerance)
            {
                bad.Add(name);
                failures.Add($"{w.Id} {what} ∂{name}" + (gradient is null ? " (missing)" : $" (relative difference {RelativeDifference(reference, gradient):g3})"));
            }
        }
        return bad.Count == 0 ? $"{what} gradients ✓ ({expected.Count})" : $"{what} gradients ✗ ({string.Join(", ", bad)})";
    }

    private static string Check(List<string> failures, Workload w, string what, float[] expected, float[] actual, double tolerance)
    {
        double difference = RelativeDifference(expected, actual);
        if (difference <= tolerance) return $"{what} ✓";
        failures.Add($"{w.Id} {what} (relative difference {difference:g3})");
        return $"{what} ✗";
    }

    // ‖expected − actual‖ / ‖expected‖; infinite when the lengths differ.
    internal static double RelativeDifference(float[] expected, float[] actual)
    {
        if (expected.Length != actual.Length) return double.PositiveInfinity;
        double difference = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            difference += Math.Pow(expected[i] - (double)actual[i], 2);
            norm += Math.Pow(expected[i], 2);
        }
        double result = Math.Sqrt(difference) / Math.Max(Math.Sqrt(norm), 1e-12);
        return double.IsNaN(result) ? double.PositiveInfinity : result;
    }

    // Rough smoke timings, not benchmark figures: a short warm-up lets tiered compilation reach optimised code.
    private static string Time(Action action)
    {
        var warmUp = Stopwatch.StartNew();
        while (warmUp.ElapsedMilliseconds < 100) action();
        // Wall time, and the process's CPU time over the same calls: on a machine shared with other work the CPU time of a
        // one-thread call stays close to its idle wall time while the wall time drifts (see docs/benchmarks.md).
        var process = Process.GetCurrentProcess();
        TimeSpan cpuBefore = process.TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        int n = 0;
        while (watch.ElapsedMilliseconds < 30 || n < 3)
        {
            action();
            n++;
        }
        double wall = watch.Elapsed.TotalMilliseconds;
        process.Refresh();
        double cpu = (process.TotalProcessorTime - cpuBefore).TotalMilliseconds;
        return $"{Duration.Format(wall * 1e6 / n)} (CPU {Duration.Format(cpu * 1e6 / n)})";
    }

    // Bytes allocated on this thread per call, over a few warm calls (managed allocations only: libtorch's are not seen).
    private static string Allocated(Action action)
    {
        action();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 4; i++) action();
        return $"{(GC.GetAllocatedBytesForCurrentThread() - before) / 4} B";
    }
}
