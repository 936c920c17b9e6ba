using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace AttentionGen.Benchmarks;

/// <summary>
/// The benchmark suite. <c>--quick</c>: a smoke run for CI (every kernel once against the baseline, a few timed
/// iterations, no statistics; exits 1 on a numeric mismatch). Otherwise BenchmarkDotNet over the workloads, then a
/// table of GFLOP/s, fraction of the measured FMA peak, and the ratio to TorchSharp measured in the same run.
/// Run through bench/run.sh, which makes TorchSharp's native library load on Debian 12.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        var (peak1, peak2) = FmaPeak.Measure();
        Console.WriteLine($"FMA peak (FP32, measured now): {peak1:F1} GFLOP/s on 1 thread, {peak2:F1} GFLOP/s on 2 threads");
        bool torch = TorchPeer.IsAvailable(out string reason);
        Console.WriteLine(torch ? "TorchSharp: available" : $"TorchSharp: not available here ({reason}); its columns stay empty");

        if (args.Contains("--quick"))
        {
            return Quick.Run(torch, peak1);
        }

        IConfig config = DefaultConfig.Instance
            // In-process: BenchmarkDotNet's usual per-benchmark rebuild would copy an unpatched libtorch shim next to it
            // (see bench/run.sh), and in-process runs start faster.
            .AddJob(Job.Default.WithWarmupCount(2).WithIterationCount(10).WithLaunchCount(1)
                .WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(150)).WithToolchain(InProcessEmitToolchain.Instance))
            .WithOptions(ConfigOptions.JoinSummary);
        if (!torch)
        {
            config = config.AddFilter(new BenchmarkDotNet.Filters.NameFilter(name => !name.Contains("TorchSharp")));
        }
        Summary[] summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args.Where(a => a != "--quick").ToArray(), config).ToArray();
        string table = Table(summaries, peak1, peak2);
        Console.WriteLine(table);
        Directory.CreateDirectory("BenchmarkDotNet.Artifacts");
        File.WriteAllText(Path.Combine("BenchmarkDotNet.Artifacts", "attention-summary.md"), table);
        return 0;
    }

    private static string Table(IEnumerable<Summary> summaries, double peak1, double peak2)
    {
        var rows = new List<(string W, int Threads, string Impl, string Pass, double Ns, long Bytes)>();
        foreach (Summary summary in summaries)
        {
            foreach (BenchmarkReport report in summary.Reports.Where(r => r.ResultStatistics is not null))
            {
                string method = report.BenchmarkCase.Descriptor.WorkloadMethod.Name;
                string w = (string)report.BenchmarkCase.Parameters["Workload"];
                int threads = report.BenchmarkCase.Parameters.Items.Any(p => p.Name == "Threads") ? (int)report.BenchmarkCase.Parameters["Threads"] : 1;
                string[] parts = method.Split('_');
                rows.Add((w, threads, parts[0], parts[1], report.ResultStatistics!.Median, report.GcStats.GetBytesAllocatedPerOperation(report.BenchmarkCase) ?? -1));
            }
        }
        var lines = new List<string>
        {
            $"Measured {DateTime.UtcNow:yyyy-MM-dd}; FMA peak {peak1:F1} GFLOP/s (1 thread), {peak2:F1} GFLOP/s (2 threads).",
            "",
            "| workload | threads | pass | implementation | median | GFLOP/s | of peak | TorchSharp / this | allocated |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        };
        foreach (var row in rows.OrderBy(r => r.W).ThenBy(r => r.Threads).ThenBy(r => r.Pass).ThenBy(r => r.Impl))
        {
            Workload w = Workload.Get(row.W);
            double flops = row.Pass == "Forward" ? w.ForwardFlops : w.TrainingFlops;
            double gflops = flops / row.Ns;
            double peak = row.Threads == 1 ? peak1 : peak2;
            var torch = rows.FirstOrDefault(r => r.W == row.W && r.Threads == row.Threads && r.Pass == row.Pass && r.Impl == "TorchSharp");
            string ratio = torch.Ns > 0 ? $"{torch.Ns / row.Ns:F2}×" : "";
            lines.Add($"| {row.W} | {row.Threads} | {row.Pass} | {row.Impl} | {Format(row.Ns)} | {gflops:F1} | {gflops / peak:P0} | {ratio} | {row.Bytes} B |");
        }
        return string.Join(Environment.NewLine, lines);
    }

    internal static string Format(double ns) => ns >= 1e6 ? $"{ns / 1e6:F2} ms" : ns >= 1e3 ? $"{ns / 1e3:F2} µs" : $"{ns:F0} ns";
}

/// <summary>The CI smoke run: every kernel against the baseline on the benchmark inputs, and rough timings.</summary>
internal static class Quick
{
    public static int Run(bool torch, double peak)
    {
        int failures = 0;
        Console.WriteLine("Smoke timings (a few iterations after a short warm-up; the figures to quote come from the full run):");
        Console.WriteLine("| workload | implementation | forward | fwd+bwd | matches the baseline |");
        Console.WriteLine("| --- | --- | --- | --- | --- |");
        foreach (Workload w in new[] { Workload.W0, Workload.W1, Workload.W2 })
        {
            var data = new AdditiveData(w);
            var baseline = new AdditiveBaseline(data);
            baseline.Forward();
            baseline.Backward();
            var generated = new GeneratedAdditive(data, threads: 1);
            generated.Forward();
            bool forwardOk = Close(baseline.Context, generated.Context, 1e-4);
            generated.Training();
            bool backwardOk = Close(baseline.DQuery, generated.DQuery, 1e-3) && Close(baseline.DKeys, generated.DKeys, 1e-3)
                && generated.Layer.Parameters.All(p => Close(p.Name switch
                {
                    "query_weight" => baseline.DQueryWeight,
                    "key_weight" => baseline.DKeyWeight,
                    "score_bias" => baseline.DBias,
                    _ => baseline.DScoreVector,
                }, p.Gradient, 1e-3));
            failures += forwardOk && backwardOk ? 0 : 1;
            Console.WriteLine($"| {w.Id} | generated | {Time(generated.Forward)} | {Time(generated.Training)} | {(forwardOk ? "forward ✓" : "forward ✗")} {(backwardOk ? "backward ✓" : "backward ✗")} |");
            Console.WriteLine($"| {w.Id} | baseline | {Time(baseline.Forward)} | {Time(() => { baseline.Forward(); baseline.Backward(); })} | (reference) |");
            if (torch)
            {
                using var peer = new TorchPeer(data, threads: 1);
                bool torchOk = Close(baseline.Context, peer.Forward(), 1e-4);
                failures += torchOk ? 0 : 1;
                Console.WriteLine($"| {w.Id} | TorchSharp | {Time(() => peer.Forward())} | {Time(peer.ForwardBackward)} | {(torchOk ? "forward ✓" : "forward ✗")} |");
            }
        }
        foreach (Workload other in new[] { Workload.W3, Workload.W4 })
        {
            // W3 (Luong general) and W4 (pooling): checked against TorchSharp when it loads (there is no hand-written baseline for it yet).
            var data = new AdditiveData(other);
            var generated = new GeneratedAdditive(data, threads: 1);
            generated.Forward();
            string check = "(no TorchSharp: not checked)";
            if (torch)
            {
                using var peer = new TorchPeer(data, threads: 1);
                bool ok = Close(peer.Forward(), generated.Context, 1e-4);
                failures += ok ? 0 : 1;
                check = ok ? "forward ✓ (against TorchSharp)" : "forward ✗ (against TorchSharp)";
                Console.WriteLine($"| {other.Id} | TorchSharp | {Time(() => peer.Forward())} | {Time(peer.ForwardBackward)} | (reference) |");
            }
            Console.WriteLine($"| {other.Id} | generated | {Time(generated.Forward)} | {Time(generated.Training)} | {check} |");
        }
        Console.WriteLine(failures == 0 ? "quick benchmark run: every kernel matches the baseline" : $"quick benchmark run: {failures} mismatch(es)");
        return failures == 0 ? 0 : 1;
    }

    // Rough smoke timings, not benchmark figures: a short warm-up lets tiered compilation reach optimised code.
    private static string Time(Action action)
    {
        var warmUp = Stopwatch.StartNew();
        while (warmUp.ElapsedMilliseconds < 150)
        {
            action();
        }
        var watch = Stopwatch.StartNew();
        int n = 0;
        while (watch.ElapsedMilliseconds < 50 || n < 3)
        {
            action();
            n++;
        }
        return Program.Format(watch.Elapsed.TotalMilliseconds * 1e6 / n);
    }

    // Norm-wise relative difference.
    private static bool Close(float[] expected, float[] actual, double tolerance)
    {
        double difference = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            difference += Math.Pow(expected[i] - actual[i], 2);
            norm += Math.Pow(expected[i], 2);
        }
        bool ok = expected.Length == actual.Length && Math.Sqrt(difference) <= tolerance * Math.Max(Math.Sqrt(norm), 1e-6);
        if (!ok) Console.Error.WriteLine($"mismatch: relative difference {Math.Sqrt(difference) / Math.Max(Math.Sqrt(norm), 1e-6):g3}");
        return ok;
    }
}
