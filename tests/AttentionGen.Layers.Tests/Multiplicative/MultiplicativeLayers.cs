using System;
using System.Numerics;

namespace AttentionGen.Layers.Tests.Multiplicative;

/// <summary>The generated multiplicative layers' API, implemented implicitly by each declared layer.</summary>
public interface IMultiplicativeLayer<T, TTape> : IAttentionLayer<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    int MaxDegreeOfParallelism { get; set; }
    void Forward(int batch, int queryLength, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> context, Span<T> weights, AttentionMask mask);
    void Forward(TTape tape, int batch, int queryLength, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> context, Span<T> weights, AttentionMask mask);
    void Backward(TTape tape, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, ReadOnlySpan<T> dContext, Span<T> dQuery, Span<T> dKeys, Span<T> dValues, ReadOnlySpan<T> dWeights);
}

[MultiplicativeAttention(Dim = 37)] public partial class GeneralF37 : IMultiplicativeLayer<float, GeneralF37.Tape>;
[MultiplicativeAttention(Dim = 12, KeyDim = 9, ValueDim = 5)] public partial class GeneralF12K9V5 : IMultiplicativeLayer<float, GeneralF12K9V5.Tape>;
[MultiplicativeAttention(Dim = 129, Causal = true)] public partial class GeneralF129Causal : IMultiplicativeLayer<float, GeneralF129Causal.Tape>;
[MultiplicativeAttention(Dim = 16, Score = AttentionScore.Dot)] public partial class DotF16 : IMultiplicativeLayer<float, DotF16.Tape>;
[MultiplicativeAttention(Dim = 33, Score = AttentionScore.Dot, ValueDim = 3)] public partial class DotF33V3 : IMultiplicativeLayer<float, DotF33V3.Tape>;
[MultiplicativeAttention(Dim = 64, Score = AttentionScore.ScaledDot)] public partial class ScaledF64 : IMultiplicativeLayer<float, ScaledF64.Tape>;
[MultiplicativeAttention(Dim = 7, Score = AttentionScore.ScaledDot, LearnedScale = true)] public partial class ScaledF7Learned : IMultiplicativeLayer<float, ScaledF7Learned.Tape>;

[MultiplicativeAttention(Dim = 9, KeyDim = 7, ValueDim = 5, ElementType = typeof(double))] public partial class GeneralD9K7V5 : IMultiplicativeLayer<double, GeneralD9K7V5.Tape>;
[MultiplicativeAttention(Dim = 17, Score = AttentionScore.Dot, ElementType = typeof(double))] public partial class DotD17 : IMultiplicativeLayer<double, DotD17.Tape>;
[MultiplicativeAttention(Dim = 8, Score = AttentionScore.ScaledDot, LearnedScale = true, ElementType = typeof(double))] public partial class ScaledD8Learned : IMultiplicativeLayer<double, ScaledD8Learned.Tape>;
[MultiplicativeAttention(Dim = 3, LearnedScale = true, Causal = true, ElementType = typeof(double))] public partial class GeneralD3LearnedCausal : IMultiplicativeLayer<double, GeneralD3LearnedCausal.Tape>;
