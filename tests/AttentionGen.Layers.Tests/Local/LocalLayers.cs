using System;
using System.Numerics;

namespace AttentionGen.Layers.Tests.Local;

/// <summary>The generated local-attention layers' API, implemented implicitly by each declared layer.</summary>
public interface ILocalLayer<T, TTape> : IAttentionLayer<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    int MaxDegreeOfParallelism { get; set; }
    void Forward(int batch, int queryLength, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> context, Span<T> weights, AttentionMask mask, Span<T> positions);
    void Forward(TTape tape, int batch, int queryLength, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> context, Span<T> weights, AttentionMask mask, Span<T> positions);
    void Backward(TTape tape, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, ReadOnlySpan<T> dContext, Span<T> dQuery, Span<T> dKeys, Span<T> dValues, ReadOnlySpan<T> dWeights);
}

// local-p (the default alignment) and local-m, every score, odd and even dimensions around the vector widths.
[LocalAttention(Dim = 37, Window = 3)] public partial class LocalPGeneralF37W3 : ILocalLayer<float, LocalPGeneralF37W3.Tape>;
[LocalAttention(Dim = 16, Window = 2, Score = AttentionScore.Dot, PredictorUnits = 5)] public partial class LocalPDotF16W2U5 : ILocalLayer<float, LocalPDotF16W2U5.Tape>;
[LocalAttention(Dim = 129, Window = 5, Score = AttentionScore.ScaledDot, PredictorUnits = 33)] public partial class LocalPScaledF129W5U33 : ILocalLayer<float, LocalPScaledF129W5U33.Tape>;
[LocalAttention(Dim = 12, KeyDim = 9, ValueDim = 5, Window = 2, Alignment = LocalAlignment.Monotonic)] public partial class LocalMGeneralF12K9V5W2 : ILocalLayer<float, LocalMGeneralF12K9V5W2.Tape>;
[LocalAttention(Dim = 64, Window = 4, Alignment = LocalAlignment.Monotonic, Score = AttentionScore.ScaledDot)] public partial class LocalMScaledF64W4 : ILocalLayer<float, LocalMScaledF64W4.Tape>;

[LocalAttention(Dim = 9, KeyDim = 7, ValueDim = 5, Window = 2, PredictorUnits = 6, ElementType = typeof(double))] public partial class LocalPGeneralD9K7V5W2U6 : ILocalLayer<double, LocalPGeneralD9K7V5W2U6.Tape>;
[LocalAttention(Dim = 8, Window = 1, Score = AttentionScore.Dot, ElementType = typeof(double))] public partial class LocalPDotD8W1 : ILocalLayer<double, LocalPDotD8W1.Tape>;
[LocalAttention(Dim = 3, Window = 4, Score = AttentionScore.ScaledDot, PredictorUnits = 1, ElementType = typeof(double))] public partial class LocalPScaledD3W4U1 : ILocalLayer<double, LocalPScaledD3W4U1.Tape>;
[LocalAttention(Dim = 5, Window = 2, Alignment = LocalAlignment.Monotonic, ElementType = typeof(double))] public partial class LocalMGeneralD5W2 : ILocalLayer<double, LocalMGeneralD5W2.Tape>;
[LocalAttention(Dim = 17, Window = 3, Alignment = LocalAlignment.Monotonic, Score = AttentionScore.ScaledDot, ElementType = typeof(double))] public partial class LocalMScaledD17W3 : ILocalLayer<double, LocalMScaledD17W3.Tape>;

/// <summary>The concat score's decoding pair, which only concat layers have.</summary>
public interface IConcatLocalLayer<T, TTape> : ILocalLayer<T, TTape>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    void ProjectKeys(int batch, int keyLength, ReadOnlySpan<T> keys, Span<T> keyProjection);
    void ForwardWithKeyProjection(int batch, int queryLength, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keyProjection, ReadOnlySpan<T> values, Span<T> context, Span<T> weights, AttentionMask mask, Span<T> positions);
}

// Luong's concat score v_aᵀ tanh(W_a [hₜ; h̄ₛ]) inside the window: KeyDim ≠ Dim, Units around the vector widths (tails on every path).
[LocalAttention(Dim = 37, KeyDim = 20, Window = 3, Score = AttentionScore.Concat, Units = 33)] public partial class LocalPConcatF37K20U33W3 : IConcatLocalLayer<float, LocalPConcatF37K20U33W3.Tape>;
[LocalAttention(Dim = 16, KeyDim = 24, ValueDim = 7, Window = 2, Alignment = LocalAlignment.Monotonic, Score = AttentionScore.Concat)] public partial class LocalMConcatF16K24V7W2 : IConcatLocalLayer<float, LocalMConcatF16K24V7W2.Tape>;
[LocalAttention(Dim = 9, KeyDim = 7, ValueDim = 5, Window = 2, PredictorUnits = 4, Score = AttentionScore.Concat, Units = 6, ElementType = typeof(double))] public partial class LocalPConcatD9K7V5W2U6 : IConcatLocalLayer<double, LocalPConcatD9K7V5W2U6.Tape>;
[LocalAttention(Dim = 9, KeyDim = 7, Window = 3, Alignment = LocalAlignment.Monotonic, Score = AttentionScore.Concat, Units = 6, ElementType = typeof(double))] public partial class LocalMConcatD9K7W3U6 : IConcatLocalLayer<double, LocalMConcatD9K7W3U6.Tape>;
