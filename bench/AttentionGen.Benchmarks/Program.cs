using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace AttentionGen.Benchmarks;

/// <summary>
/// The benchmark suite; run it through bench/run.sh, which makes TorchSharp's native library load on Debian 12.
/// <c>--quick</c>: the CI smoke run (every kernel against the baseline, rough timings, no statistics; exit code 1
/// on a numeric mismatch). Otherwise BenchmarkDotNet over the workloads, then a table of GFLOP/s, fraction of the
/// FMA peak measured at start-up, ratio to TorchSharp measured in the same run, and allocated bytes per call.
/// <c>--workloads W0,W3</c> and <c>--threads 1</c> narrow either mode; other arguments go to BenchmarkDotNet
/// (<c>--filter '*'</c> is the default). One-thread benchmarks run pinned to the vCPU with the shorter one-thread W3
/// training step at start-up, or the higher FMA peak where the step cannot be timed (Linux; <c>--no-pin</c> leaves them unpinned); two-thread ones are never pinned. <c>--profile W3:forward</c> loops one implementation for a profiler and prints
/// its CPU time per call (see <see cref="Profile"/>); <c>--accuracy [tanh|exp|Vector256…]</c> measures the float tanh's and
/// exponential's maximum error over every float (see <see cref="Accuracy"/>). After BenchmarkDotNet's table the full run times each ratio of the
/// targets again with both sides side by side (<see cref="Paired"/>; <c>--no-paired</c> skips it, <c>--paired</c> runs it
/// alone, about 3 minutes for W0–W13).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        var arguments = new List<string>(args);
        if (arguments.Remove("--accuracy"))
        {
            return Accuracy.Run(arguments.Count > 0 ? string.Join(' ', arguments) : null);
        }
        bool quick = arguments.Remove("--quick");
        bool pin = !arguments.Remove("--no-pin");
        bool pairedOnly = arguments.Remove("--paired");
        bool paired = !arguments.Remove("--no-paired");
        HashSet<string> workloads = TakeList(arguments, "--workloads") ?? Workload.All.Select(w => w.Id).ToHashSet();
        HashSet<int> threads = (TakeList(arguments, "--threads") ?? new HashSet<string> { "1", "2" }).Select(int.Parse).ToHashSet();
        foreach (string id in workloads) Workload.Get(id); // unknown ids fail here, with the list of known ones

        FmaPeak start = FmaPeak.Measure();
        Console.WriteLine(start);
        // One vCPU of this VM is at times about 30 % slower than the other, and BenchmarkDotNet keeps a benchmark on one
        // thread: the one-thread benchmarks run pinned to the vCPU that was faster at start-up (two-thread ones unpinned).
        IReadOnlyList<CpuPeak>? cpuPeaks = start.MeasurePerCpu(out string? cpuFailure);
        string? profile = TakeList(arguments, "--profile")?.Single();
        // The vCPU is chosen by a training step's time where it can be measured (its memory side differs between vCPUs
        // more than the FMA peak shows), else by the FMA peak. The quick run times the step too (it does not pin), so that
        // CI runs the probe.
        IReadOnlyList<CpuStepTime>? cpuSteps = pin && profile is null ? StepProbe.MeasurePerCpu(cpuPeaks) : null;
        PinChoice choice = PinChoice.Choose(cpuPeaks, pin, cpuFailure, cpuSteps);
        string stepsText = PinChoice.Format(cpuSteps);
        Console.WriteLine($"{PinChoice.Format(cpuPeaks, cpuFailure)}; {(stepsText.Length > 0 ? stepsText + "; " : "")}"
            + (quick || profile is not null ? "the quick and profile modes run unpinned" : choice.Description));
        bool torch = TorchPeer.IsAvailable(out string reason);
        Console.WriteLine(torch ? "TorchSharp: available" : $"TorchSharp: not available here ({reason}); its results stay empty");

        if (profile is not null)
        {
            return Profile.Run(profile, torch);
        }
        if (quick)
        {
            return Quick.Run(Workload.All.Where(w => workloads.Contains(w.Id)).ToList(), torch);
        }
        OneThreadPin.Choice = choice;
        if (pairedOnly)
        {
            string pairedTable = RunPaired(workloads, threads, torch, choice);
            Directory.CreateDirectory("BenchmarkDotNet.Artifacts");
            File.WriteAllText(Path.Combine("BenchmarkDotNet.Artifacts", "attention-paired.md"), pairedTable);
            return 0;
        }

        // In-process: BenchmarkDotNet's default toolchain would rebuild this project per benchmark and run it in a child
        // process. LD_PRELOAD would reach that child (it inherits the environment), but the rebuild copies a fresh,
        // unpatched libLibTorchSharp.so from the NuGet cache next to it, which enable.sh has not patched. In-process
        // runs measure the very binaries bench/run.sh prepared, and start faster.
        IConfig config = DefaultConfig.Instance
            .AddJob(Job.Default.WithWarmupCount(8).WithIterationCount(10).WithLaunchCount(1)
                .WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(150)).WithToolchain(InProcessEmitToolchain.Instance))
            .AddFilter(new SimpleFilter(benchmark =>
            {
                var parameters = benchmark.Parameters;
                bool workloadOk = workloads.Contains((string)parameters["Workload"]);
                bool threadsOk = !parameters.Items.Any(p => p.Name == "Threads") || threads.Contains((int)parameters["Threads"]);
                string method = benchmark.Descriptor.WorkloadMethod.Name;
                bool torchOk = torch || !method.StartsWith("TorchSharp", StringComparison.Ordinal);
                bool baselineStepOk = method != "Baseline_Step" || Baseline.HasDecoderStep(Workload.Get((string)parameters["Workload"]));
                return workloadOk && threadsOk && torchOk && baselineStepOk;
            }))
            .WithOptions(ConfigOptions.JoinSummary);
        if (!arguments.Any(a => a is "--filter" or "-f"))
        {
            arguments.AddRange(new[] { "--filter", "*" });
        }
        Summary[] summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(arguments.ToArray(), config).ToArray();
        // The peak again after the run, and the better of the two: a measurement at start-up can lose the second core
        // to the runtime's or the build's background work (once 117 instead of 226 GFLOP/s on two threads).
        FmaPeak after = FmaPeak.Measure();
        Console.WriteLine($"After the run: {after}. The table uses the better of the two.");
        string? disturbance = FmaPeak.Disturbance(start, after);
        if (disturbance is not null) Console.WriteLine(disturbance);
        IReadOnlyList<CpuPeak>? cpuPeaksAfter = choice.Cpu is null ? null : after.MeasurePerCpu(out _);
        IReadOnlyList<CpuStepTime>? cpuStepsAfter = choice.Cpu is null || cpuSteps is null ? null : StepProbe.MeasurePerCpu(cpuPeaksAfter);
        string stepsAfterText = PinChoice.Format(cpuStepsAfter);
        string pinningText = $"At start-up: {PinChoice.Format(cpuPeaks, cpuFailure)}{(stepsText.Length > 0 ? "; " + stepsText : "")}; {choice.Description}."
            + (cpuPeaksAfter is null ? "" : $" After the run: {PinChoice.Format(cpuPeaksAfter, null)}{(stepsAfterText.Length > 0 ? "; " + stepsAfterText : "")}.")
            + (choice.Drift(cpuPeaksAfter) is { } drift ? $" **Note: {drift}.**" : "")
            + (choice.StepDrift(cpuStepsAfter) is { } stepDrift ? $" **Note: {stepDrift}.**" : "");
        Console.WriteLine(pinningText);
        // One-thread rows ran on the chosen vCPU: their "of peak" divides by that vCPU's peak (the better of start-up and
        // after the run), not by the unpinned measurement, which may have landed on the other one.
        FmaPeak peak = FmaPeak.Best(start, after);
        if (choice.Cpu is int pinned && PinChoice.PeakOf(pinned, cpuPeaks, cpuPeaksAfter) is double pinnedPeak)
        {
            peak = peak with { OneThread = pinnedPeak };
            Console.WriteLine($"One-thread rows: of peak against vCPU {pinned}'s {pinnedPeak:F1} GFLOP/s.");
        }
        string table = SummaryTable.Format(summaries, peak, disturbance, pinningText);
        Console.WriteLine(table);
        if (paired)
        {
            table += Environment.NewLine + Environment.NewLine + RunPaired(workloads, threads, torch, choice);
        }
        Directory.CreateDirectory("BenchmarkDotNet.Artifacts");
        File.WriteAllText(Path.Combine("BenchmarkDotNet.Artifacts", "attention-summary.md"), table);
        return 0;
    }

    // The paired comparisons (see Paired) over the selected workloads, printed and returned as a table.
    private static string RunPaired(HashSet<string> workloads, HashSet<int> threads, bool torch, PinChoice choice)
    {
        const int Rounds = 11;
        const double BatchMilliseconds = 60;
        Console.WriteLine($"Paired comparisons ({Rounds} rounds of two {BatchMilliseconds:F0} ms batches each; {choice.Description}) ...");
        var results = Paired.Run(Workload.All.Where(w => workloads.Contains(w.Id)).ToList(), threads, torch, choice, Rounds, BatchMilliseconds);
        string table = PairedTable.Format(results, Rounds, BatchMilliseconds);
        Console.WriteLine(table);
        return table;
    }

    // "--name a,b" → {a, b}, removed from the argument list.
    private static HashSet<string>? TakeList(List<string> arguments, string name)
    {
        int at = arguments.IndexOf(name);
        if (at < 0) return null;
        if (at + 1 >= arguments.Count) throw new ArgumentException($"{name} needs a comma-separated list", nameof(arguments));
        var values = arguments[at + 1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();
        arguments.RemoveRange(at, 2);
        return values;
    }
}

/// <summary>The post-run table: one row per workload, thread count, pass and implementation.</summary>
internal static class SummaryTable
{
    // Median and minimum of the measured iterations: on this shared VM a neighbour's burst slows some iterations of one
    // benchmark and not of another, so ratios are given for both (the minimum is the run least disturbed).
    private sealed record Row(string Workload, int Threads, string Implementation, string Pass, double Nanoseconds, double Minimum, long Bytes);

    public static string Format(IEnumerable<Summary> summaries, FmaPeak peak, string? disturbance, string pinning)
    {
        var rows = new List<Row>();
        foreach (Summary summary in summaries)
        {
            foreach (BenchmarkReport report in summary.Reports.Where(r => r.ResultStatistics is not null))
            {
                var parameters = report.BenchmarkCase.Parameters;
                string[] parts = report.BenchmarkCase.Descriptor.WorkloadMethod.Name.Split('_');
                int threads = parameters.Items.Any(p => p.Name == "Threads") ? (int)parameters["Threads"] : 1;
                rows.Add(new Row((string)parameters["Workload"], threads, parts[0], parts[1], report.ResultStatistics!.Median,
                    report.ResultStatistics.Min, report.GcStats.GetBytesAllocatedPerOperation(report.BenchmarkCase) ?? -1));
            }
        }
        var lines = new List<string>
        {
            $"Measured {DateTime.UtcNow:yyyy-MM-dd}. {peak}.",
            "",
            disturbance is null ? "The FMA peak was steady through the run (two threads ≥ 1.8× one, one thread within 10 %)." : $"**{disturbance}**",
            "",
            pinning,
            "",
            "| workload | threads | pass | implementation | median | minimum | GFLOP/s | of peak | TorchSharp / this | 1 thread / this | allocated |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        };
        // Workloads in Workload.All's order (by name, W10 and W11 would come before W2).
        foreach (Row row in rows.OrderBy(r => Workload.All.ToList().FindIndex(w => w.Id == r.Workload)).ThenBy(r => r.Threads).ThenBy(r => r.Pass).ThenBy(r => r.Implementation))
        {
            Workload w = Workload.Get(row.Workload);
            double gflops = row.Pass switch { "Forward" => w.ForwardFlops, "Step" => w.StepFlops, _ => w.TrainingFlops } / row.Nanoseconds;
            Row? torch = rows.FirstOrDefault(r => r.Workload == row.Workload && r.Threads == row.Threads && r.Pass == row.Pass && r.Implementation == "TorchSharp");
            Row? single = row.Threads == 1 ? null : rows.FirstOrDefault(r => r.Workload == row.Workload && r.Threads == 1 && r.Pass == row.Pass && r.Implementation == row.Implementation);
            // Ratio of the medians, then in parentheses the ratio of the minimums.
            string ratio = torch is null ? "" : $"{torch.Nanoseconds / row.Nanoseconds:F2}× ({torch.Minimum / row.Minimum:F2}×)";
            string scaling = single is null ? "" : $"{single.Nanoseconds / row.Nanoseconds:F2}× ({single.Minimum / row.Minimum:F2}×)";
            string bytes = row.Bytes < 0 ? "?" : $"{row.Bytes} B";
            lines.Add($"| {row.Workload} | {row.Threads} | {row.Pass} | {row.Implementation} | {Duration.Format(row.Nanoseconds)} | {Duration.Format(row.Minimum)} | {gflops:F1} | {gflops / peak.For(row.Threads):P0} | {ratio} | {scaling} | {bytes} |");
        }
        return string.Join(Environment.NewLine, lines);
    }
}
