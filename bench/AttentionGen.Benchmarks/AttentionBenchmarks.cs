using BenchmarkDotNet.Attributes;

namespace AttentionGen.Benchmarks;

/// <summary>
/// The generated layers against TorchSharp on W0–W11, at 1 and 2 threads. Method names are
/// "{implementation}_{pass}": Program's summary table splits them.
/// </summary>
[MemoryDiagnoser]
public class AttentionBenchmarks
{
    private GeneratedLayer _generated = null!;
    private TorchPeer? _torch;

    [Params("W0", "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9", "W10", "W11")]
    public string Workload { get; set; } = "W0";

    [Params(1, 2)]
    public int Threads { get; set; } = 1;

    [GlobalSetup]
    public void Setup()
    {
        var data = new WorkloadData(Benchmarks.Workload.Get(Workload));
        _generated = new GeneratedLayer(data, Threads);
        if (TorchPeer.IsAvailable(out _))
        {
            _torch = new TorchPeer(data, Threads);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _torch?.Dispose();

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

    [Params("W0", "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9", "W10", "W11")]
    public string Workload { get; set; } = "W0";

    [GlobalSetup]
    public void Setup() => _baseline = Baseline.For(new WorkloadData(Benchmarks.Workload.Get(Workload)));

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
/// W0 and W1 as a decoder calls them at every step: the keys projected once per sentence at setup (the generated layer's
/// <c>ProjectKeys</c>; TorchSharp keeps keys·W_kᵀ + b), then per call only the query side, the scores, the softmax and
/// the context (<c>ForwardWithKeyProjection</c>). One thread: a step has one batch row, nothing to split.
/// </summary>
[MemoryDiagnoser]
public class DecoderStepBenchmarks
{
    private GeneratedLayer _generated = null!;
    private TorchPeer? _torch;

    [Params("W0", "W1")]
    public string Workload { get; set; } = "W0";

    [GlobalSetup]
    public void Setup()
    {
        var data = new WorkloadData(Benchmarks.Workload.Get(Workload));
        _generated = new GeneratedLayer(data, threads: 1);
        if (TorchPeer.IsAvailable(out _))
        {
            _torch = new TorchPeer(data, threads: 1);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _torch?.Dispose();

    [Benchmark]
    public void Generated_Step() => _generated.DecoderStep!();

    [Benchmark]
    public void TorchSharp_Step() => _torch!.DecoderStep();
}
