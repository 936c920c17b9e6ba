using System;
using System.Threading;
using BenchmarkDotNet.Attributes;

namespace AttentionGen.Benchmarks;

/// <summary>
/// The generated layers against TorchSharp on W0–W13, at 1 and 2 threads. Method names are
/// "{implementation}_{pass}": Program's summary table splits them.
/// </summary>
[MemoryDiagnoser]
public class AttentionBenchmarks
{
    private GeneratedLayer _generated = null!;
    private TorchPeer? _torch;

    [Params("W0", "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9", "W10", "W11", "W12", "W13")]
    public string Workload { get; set; } = "W0";

    [Params(1, 2)]
    public int Threads { get; set; } = 1;

    [GlobalSetup]
    public void Setup()
    {
        OneThreadPin.Enter(Threads);
        var data = new WorkloadData(Benchmarks.Workload.Get(Workload));
        _generated = new GeneratedLayer(data, Threads);
        if (TorchPeer.IsAvailable(out _))
        {
            _torch = new TorchPeer(data, Threads);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _torch?.Dispose();
        OneThreadPin.Exit();
    }

    [Benchmark]
    public void Generated_Forward() => _generated.Forward();

    [Benchmark]
    public void Generated_ForwardBackward() => _generated.Training();

    [Benchmark]
    public void TorchSharp_Forward() => _torch!.Forward();

    [Benchmark]
    public void TorchSharp_ForwardBackward() => _torch!.ForwardBackward();
}

/// <summary>The hand-written runtime-dimension baseline on TensorPrimitives (single thread), forward and training step.</summary>
[MemoryDiagnoser]
public class BaselineBenchmarks
{
    private IBaseline _baseline = null!;

    [Params("W0", "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9", "W10", "W11", "W12", "W13")]
    public string Workload { get; set; } = "W0";

    [GlobalSetup]
    public void Setup()
    {
        OneThreadPin.Enter(threads: 1);
        _baseline = Baseline.For(new WorkloadData(Benchmarks.Workload.Get(Workload)));
    }

    [GlobalCleanup]
    public void Cleanup() => OneThreadPin.Exit();

    [Benchmark]
    public void Baseline_Forward() => _baseline.Forward();

    [Benchmark]
    public void Baseline_ForwardBackward()
    {
        _baseline.Forward();
        _baseline.Backward();
    }
}

/// <summary>
/// W0, W1 and W12 as a decoder calls them at every step: the keys projected once per sentence at setup (the generated
/// layer's <c>ProjectKeys</c>; TorchSharp keeps keys·W_kᵀ + b, for W12 keys·W_a,kᵀ; W12's baseline its kpₛ), then per
/// call only the query side, the scores, the softmax and the context (<c>ForwardWithKeyProjection</c>). One thread: W0's
/// and W1's step has one batch row, nothing to split (W12's 32 rows could be, not measured yet).
/// </summary>
[MemoryDiagnoser]
public class DecoderStepBenchmarks
{
    private GeneratedLayer _generated = null!;
    private IDecoderStepBaseline? _baseline;
    private TorchPeer? _torch;

    [Params("W0", "W1", "W12")]
    public string Workload { get; set; } = "W0";

    [GlobalSetup]
    public void Setup()
    {
        OneThreadPin.Enter(threads: 1);
        var data = new WorkloadData(Benchmarks.Workload.Get(Workload));
        _generated = new GeneratedLayer(data, threads: 1);
        _baseline = Baseline.For(data) as IDecoderStepBaseline; // W12 (local concat); Program filters Baseline_Step out for the others
        _baseline?.ProjectKeys(); // once per source sequence
        if (TorchPeer.IsAvailable(out _))
        {
            _torch = new TorchPeer(data, threads: 1);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _torch?.Dispose();
        OneThreadPin.Exit();
    }

    [Benchmark]
    public void Generated_Step() => _generated.DecoderStep!();

    [Benchmark]
    public void Baseline_Step() => _baseline!.Step();

    [Benchmark]
    public void TorchSharp_Step() => _torch!.DecoderStep();
}

/// <summary>
/// Pins a one-thread benchmark to the vCPU Program chose (<see cref="PinChoice"/>) from its global setup to its global
/// cleanup. In-process, BenchmarkDotNet runs a benchmark's setup, iterations and cleanup on one thread it starts for that
/// benchmark (from the unpinned main thread, so nothing carries over to the next benchmark); only that thread is pinned.
/// Two-thread benchmarks are left alone, and so are the worker threads they start.
/// </summary>
internal static class OneThreadPin
{
    /// <summary>Set by Program before BenchmarkDotNet runs; unpinned until then (quick and profile modes).</summary>
    public static PinChoice Choice { get; set; } = new(null, "one-thread benchmarks not pinned");

    private static int s_pinnedThread = -1;

    public static void Enter(int threads)
    {
        if (threads != 1 || Choice.Cpu is not int cpu) return;
        if (CpuAffinity.TryPinCurrentThread(cpu, out string? failure))
        {
            s_pinnedThread = Environment.CurrentManagedThreadId;
        }
        else
        {
            Console.WriteLine($"// pinning to vCPU {cpu} failed ({failure}); this benchmark runs unpinned");
        }
    }

    public static void Exit()
    {
        if (s_pinnedThread < 0) return;
        if (s_pinnedThread != Environment.CurrentManagedThreadId)
        {
            Console.WriteLine("// the global cleanup ran on another thread than the setup: this benchmark's pinning may not have held");
        }
        else if (!CpuAffinity.TryUnpinCurrentThread(out string? failure))
        {
            Console.WriteLine($"// unpinning failed ({failure})");
        }
        s_pinnedThread = -1;
    }
}
