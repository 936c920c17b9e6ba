using System;
using System.Diagnostics;

namespace AttentionGen.Benchmarks;

/// <summary>
/// <c>--profile W3:forward|training|step[:generated|baseline|torch][:seconds][:t2]</c> (step: the decoder step of the additive and local-concat workloads; baseline: local-p only): runs one implementation of one workload's pass
/// in a loop (on one thread, or on n with <c>tn</c>), for a profiler to sample (perf record, callgrind), and prints its
/// CPU time and wall time per call, each the best of batches of about 50 ms, and the bytes allocated per call (on the
/// calling thread, and in the whole process: pool threads and the JIT's background work included). CPU time of one thread is what to quote from a machine shared with other work: the
/// wall time drifts with the load, the CPU time of a one-thread call stays close to its idle wall time. (Not for
/// TorchSharp: libtorch keeps helper threads whose CPU time is counted too; compare its wall time on an idle machine.)
/// </summary>
internal static class Profile
{
    public static int Run(string specification, bool torch)
    {
        string[] parts = specification.Split(':');
        if (parts.Length < 2 || parts[1] is not ("forward" or "training" or "step"))
        {
            Console.Error.WriteLine("--profile needs WORKLOAD:forward|training|step[:generated|baseline|torch][:seconds][:tTHREADS], for example W3:forward:generated:10:t2");
            return 2;
        }
        Workload workload = Workload.Get(parts[0]);
        bool training = parts[1] == "training", step = parts[1] == "step";
        string implementation = "generated";
        double seconds = 5;
        int threads = 1;
        foreach (string part in parts[2..])
        {
            if (part.Length > 1 && part[0] == 't' && int.TryParse(part[1..], out int t)) threads = t;
            else if (double.TryParse(part, out double s)) seconds = s;
            else implementation = part;
        }
        var data = new WorkloadData(workload);
        Action call;
        IDisposable? owned = null;
        switch (implementation)
        {
            case "generated":
                var generated = new GeneratedLayer(data, threads);
                call = step ? generated.DecoderStep ?? throw new ArgumentException($"{workload.Id} has no decoder step (additive and local-concat workloads only)")
                    : training ? generated.Training : generated.Forward;
                break;
            case "baseline" when threads == 1:
                IBaseline baseline = Baseline.For(data);
                if (step)
                {
                    var stepper = baseline as IDecoderStepBaseline ?? throw new ArgumentException($"{workload.Id}'s baseline has no decoder step (local-p only)");
                    stepper.ProjectKeys(); // once, as DecoderStepBenchmarks does
                    call = stepper.Step;
                    break;
                }
                call = training ? () => { baseline.Forward(); baseline.Backward(); } : baseline.Forward;
                break;
            case "torch" when torch:
                var peer = new TorchPeer(data, threads);
                owned = peer;
                call = step ? () => peer.DecoderStep() : training ? peer.ForwardBackward : () => peer.Forward();
                break;
            default:
                Console.Error.WriteLine($"--profile: unknown or unavailable implementation '{implementation}' (generated, baseline, torch)");
                return 2;
        }
        using (owned)
        {
            for (int i = 0; i < 3; i++) call();
            long threadBefore = GC.GetAllocatedBytesForCurrentThread(), allBefore = GC.GetTotalAllocatedBytes(precise: true);
            for (int i = 0; i < 10; i++) call();
            long threadBytes = (GC.GetAllocatedBytesForCurrentThread() - threadBefore) / 10, allBytes = (GC.GetTotalAllocatedBytes(precise: true) - allBefore) / 10;
            var process = Process.GetCurrentProcess();
            var total = Stopwatch.StartNew();
            double best = double.PositiveInfinity, bestWall = double.PositiveInfinity;
            long calls = 0;
            while (total.Elapsed.TotalSeconds < seconds)
            {
                process.Refresh();
                TimeSpan before = process.TotalProcessorTime;
                var batch = Stopwatch.StartNew();
                int n = 0;
                while (batch.ElapsedMilliseconds < 50 || n < 2)
                {
                    call();
                    n++;
                }
                process.Refresh();
                best = Math.Min(best, (process.TotalProcessorTime - before).TotalMilliseconds * 1e6 / n);
                bestWall = Math.Min(bestWall, batch.Elapsed.TotalMilliseconds * 1e6 / n);
                calls += n;
            }
            double flops = step ? workload.StepFlops : training ? workload.TrainingFlops : workload.ForwardFlops;
            Console.WriteLine($"{workload.Id} {parts[1]} {implementation} ({threads} thread{(threads == 1 ? "" : "s")}): {calls} calls in {total.Elapsed.TotalSeconds:F1} s; best per call: CPU time {Duration.Format(best)} = {flops / best:F1} GFLOP/s, wall {Duration.Format(bestWall)} = {flops / bestWall:F1} GFLOP/s; allocated per call {threadBytes} B on this thread, {allBytes} B in the process");
        }
        return 0;
    }
}
