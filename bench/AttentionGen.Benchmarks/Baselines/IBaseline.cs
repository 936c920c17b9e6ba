using System.Collections.Generic;

namespace AttentionGen.Benchmarks;

/// <summary>
/// A hand-written runtime-dimension implementation of a workload (the peer without the generator): runtime-sized
/// loops over System.Numerics.Tensors.TensorPrimitives, single-threaded.
/// </summary>
public interface IBaseline
{
    /// <summary>The output of the last <see cref="Forward"/>.</summary>
    float[] Context { get; }

    /// <summary>Whether <see cref="Backward"/> exists (every baseline has one now; a forward-only baseline would say false).</summary>
    bool HasBackward { get; }

    /// <summary>
    /// Gradients of the last <see cref="Backward"/> by name: the inputs ("query", "keys", "values", or "input" for
    /// the layers of one input sequence: pooling, key-value, structured) and the parameters under the generated layers' parameter names.
    /// </summary>
    IReadOnlyDictionary<string, float[]> Gradients { get; }

    /// <summary>Computes <see cref="Context"/>, keeping what backward needs.</summary>
    void Forward();

    /// <summary>With the upstream gradient WorkloadData.DContext, overwrites every gradient (call after Forward).</summary>
    void Backward();
}

/// <summary>
/// A baseline that can also run as a decoder step does (local concat): the keys projected once per source sequence, then
/// per call only the query side, the scores and the context.
/// </summary>
public interface IDecoderStepBaseline : IBaseline
{
    /// <summary>Projects the keys (once per source sequence).</summary>
    void ProjectKeys();

    /// <summary>Computes <see cref="IBaseline.Context"/> from the projection of the last <see cref="ProjectKeys"/> (or <see cref="IBaseline.Forward"/>).</summary>
    void Step();
}

/// <summary>Makes the baseline of a workload.</summary>
public static class Baseline
{
    /// <summary>
    /// Whether <see cref="For"/> gives this workload an <see cref="IDecoderStepBaseline"/>: local-p (with the general score,
    /// which projects no keys, its step is the whole forward).
    /// </summary>
    public static bool HasDecoderStep(Workload w) => w.Layer is "local" or "local-concat";

    public static IBaseline For(WorkloadData data) => data.Workload.Layer switch
    {
        "additive" => new AdditiveBaseline(data),
        "luong" => new LuongBaseline(data),
        "pooling" => new PoolingBaseline(data),
        "local" or "local-concat" => new LocalBaseline(data),
        "keyvalue" => new KeyValueBaseline(data),
        "structured" => new StructuredBaseline(data),
        "monotonic" => new MonotonicBaseline(data),
        _ => new ScaledDotBaseline(data),
    };
}
