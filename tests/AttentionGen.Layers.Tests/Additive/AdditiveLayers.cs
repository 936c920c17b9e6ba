using System;
using System.Numerics;

namespace AttentionGen.Layers.Tests.Additive;

/// <summary>
/// The generated additive layers' API as an interface, so one generic test body drives every declared
/// layer: the generated public methods implement it implicitly.
/// </summary>
public interface IAdditiveLayer<T, TTape> : IAttentionLayer<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    void Forward(int batch, int queryLength, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> context, Span<T> weights, AttentionMask mask);
    void Forward(TTape tape, int batch, int queryLength, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> context, Span<T> weights, AttentionMask mask);
    void Backward(TTape tape, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, ReadOnlySpan<T> dContext, Span<T> dQuery, Span<T> dKeys, Span<T> dValues, ReadOnlySpan<T> dWeights);
    void ProjectKeys(int batch, int keyLength, ReadOnlySpan<T> keys, Span<T> keyProjection);
    void ForwardWithKeyProjection(int batch, int queryLength, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keyProjection, ReadOnlySpan<T> values, Span<T> context, Span<T> weights, AttentionMask mask);
}

// Dimensions chosen to hit every tail of every vector width: for float 16/8/4 lanes, for double 8/4/2.
[AdditiveAttention(Dim = 1)] public partial class AdditiveF1 : IAdditiveLayer<float, AdditiveF1.Tape>;
[AdditiveAttention(Dim = 3)] public partial class AdditiveF3 : IAdditiveLayer<float, AdditiveF3.Tape>;
[AdditiveAttention(Dim = 7)] public partial class AdditiveF7 : IAdditiveLayer<float, AdditiveF7.Tape>;
[AdditiveAttention(Dim = 8)] public partial class AdditiveF8 : IAdditiveLayer<float, AdditiveF8.Tape>;
[AdditiveAttention(Dim = 9)] public partial class AdditiveF9 : IAdditiveLayer<float, AdditiveF9.Tape>;
[AdditiveAttention(Dim = 15)] public partial class AdditiveF15 : IAdditiveLayer<float, AdditiveF15.Tape>;
[AdditiveAttention(Dim = 16)] public partial class AdditiveF16 : IAdditiveLayer<float, AdditiveF16.Tape>;
[AdditiveAttention(Dim = 17)] public partial class AdditiveF17 : IAdditiveLayer<float, AdditiveF17.Tape>;
[AdditiveAttention(Dim = 31)] public partial class AdditiveF31 : IAdditiveLayer<float, AdditiveF31.Tape>;
[AdditiveAttention(Dim = 33)] public partial class AdditiveF33 : IAdditiveLayer<float, AdditiveF33.Tape>;
[AdditiveAttention(Dim = 37)] public partial class AdditiveF37 : IAdditiveLayer<float, AdditiveF37.Tape>;
[AdditiveAttention(Dim = 64)] public partial class AdditiveF64 : IAdditiveLayer<float, AdditiveF64.Tape>;
[AdditiveAttention(Dim = 100)] public partial class AdditiveF100 : IAdditiveLayer<float, AdditiveF100.Tape>;
[AdditiveAttention(Dim = 129)] public partial class AdditiveF129 : IAdditiveLayer<float, AdditiveF129.Tape>;
[AdditiveAttention(Dim = 128)] public partial class AdditiveF128 : IAdditiveLayer<float, AdditiveF128.Tape>;
// Units, ValueDim and the bias set apart from Dim.
[AdditiveAttention(Dim = 12, Units = 37, ValueDim = 5)] public partial class AdditiveF12U37V5 : IAdditiveLayer<float, AdditiveF12U37V5.Tape>;
[AdditiveAttention(Dim = 33, Units = 8, UseBias = false)] public partial class AdditiveF33U8NoBias : IAdditiveLayer<float, AdditiveF33U8NoBias.Tape>;

[AdditiveAttention(Dim = 1, ElementType = typeof(double))] public partial class AdditiveD1 : IAdditiveLayer<double, AdditiveD1.Tape>;
[AdditiveAttention(Dim = 3, ElementType = typeof(double))] public partial class AdditiveD3 : IAdditiveLayer<double, AdditiveD3.Tape>;
[AdditiveAttention(Dim = 7, ElementType = typeof(double))] public partial class AdditiveD7 : IAdditiveLayer<double, AdditiveD7.Tape>;
[AdditiveAttention(Dim = 9, ElementType = typeof(double))] public partial class AdditiveD9 : IAdditiveLayer<double, AdditiveD9.Tape>;
[AdditiveAttention(Dim = 17, ElementType = typeof(double))] public partial class AdditiveD17 : IAdditiveLayer<double, AdditiveD17.Tape>;
[AdditiveAttention(Dim = 37, ElementType = typeof(double), UseBias = false)] public partial class AdditiveD37NoBias : IAdditiveLayer<double, AdditiveD37NoBias.Tape>;
[AdditiveAttention(Dim = 12, Units = 37, ValueDim = 5, ElementType = typeof(double))] public partial class AdditiveD12U37V5 : IAdditiveLayer<double, AdditiveD12U37V5.Tape>;
[AdditiveAttention(Dim = 33, Units = 8, ElementType = typeof(double))] public partial class AdditiveD33U8 : IAdditiveLayer<double, AdditiveD33U8.Tape>;
// Same shape as a float layer, for the float-vs-double backward comparison.
[AdditiveAttention(Dim = 37, ElementType = typeof(double))] public partial class AdditiveD37 : IAdditiveLayer<double, AdditiveD37.Tape>;
