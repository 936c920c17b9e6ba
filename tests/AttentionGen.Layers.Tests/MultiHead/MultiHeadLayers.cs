using System;
using System.Numerics;

namespace AttentionGen.Layers.Tests.MultiHead;

/// <summary>The generated multi-head layers' API, implemented implicitly by each declared layer.</summary>
public interface IMultiHeadLayer<T, TTape, TCache> : IAttentionLayer<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    int MaxDegreeOfParallelism { get; set; }
    void Forward(int batch, int queryLength, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> output, Span<T> weights, AttentionMask mask, bool averageWeights, ReadOnlySpan<T> attentionBias = default);
    void Forward(TTape tape, int batch, int queryLength, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> output, Span<T> weights, AttentionMask mask, bool averageWeights, ReadOnlySpan<T> attentionBias = default);
    void Backward(TTape tape, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, ReadOnlySpan<T> dOutput, Span<T> dQuery, Span<T> dKeys, Span<T> dValues, Span<T> dAttentionBias = default);
    void Append(TCache cache, int length, ReadOnlySpan<T> keys, ReadOnlySpan<T> values);
    void Forward(TCache cache, int queryLength, ReadOnlySpan<T> query, Span<T> output, Span<T> weights, AttentionMask mask, bool averageWeights, ReadOnlySpan<T> attentionBias = default);
    void ScaledDotProductAttention(int batch, int queryLength, int keyLength, ReadOnlySpan<T> queries, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> output, AttentionMask mask, ReadOnlySpan<T> attentionBias = default);
    void ScaledDotProductAttention(TTape tape, int batch, int queryLength, int keyLength, ReadOnlySpan<T> queries, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> output, AttentionMask mask, ReadOnlySpan<T> attentionBias = default);
    void ScaledDotProductAttentionBackward(TTape tape, ReadOnlySpan<T> dOutput, Span<T> dQueries, Span<T> dKeys, Span<T> dValues, Span<T> dAttentionBias = default);
}

[MultiHeadAttention(ModelDim = 16, Heads = 2)] public partial class HeadsF16x2 : IMultiHeadLayer<float, HeadsF16x2.Tape, HeadsF16x2.KeyValueCache>;
[MultiHeadAttention(ModelDim = 120, Heads = 6)] public partial class HeadsF120x6 : IMultiHeadLayer<float, HeadsF120x6.Tape, HeadsF120x6.KeyValueCache>;
[MultiHeadAttention(ModelDim = 64, Heads = 4, Causal = true)] public partial class HeadsF64x4Causal : IMultiHeadLayer<float, HeadsF64x4Causal.Tape, HeadsF64x4Causal.KeyValueCache>;
[MultiHeadAttention(ModelDim = 12, Heads = 3, KeyDim = 7, ValueDim = 5)] public partial class HeadsF12x3K7V5 : IMultiHeadLayer<float, HeadsF12x3K7V5.Tape, HeadsF12x3K7V5.KeyValueCache>;
[MultiHeadAttention(ModelDim = 9, Heads = 9, Bias = false)] public partial class HeadsF9x9NoBias : IMultiHeadLayer<float, HeadsF9x9NoBias.Tape, HeadsF9x9NoBias.KeyValueCache>;

[MultiHeadAttention(ModelDim = 6, Heads = 2, ElementType = typeof(double))] public partial class HeadsD6x2 : IMultiHeadLayer<double, HeadsD6x2.Tape, HeadsD6x2.KeyValueCache>;
[MultiHeadAttention(ModelDim = 8, Heads = 4, KeyDim = 5, ValueDim = 3, Causal = true, ElementType = typeof(double))] public partial class HeadsD8x4K5V3Causal : IMultiHeadLayer<double, HeadsD8x4K5V3Causal.Tape, HeadsD8x4K5V3Causal.KeyValueCache>;
[MultiHeadAttention(ModelDim = 6, Heads = 3, Bias = false, ElementType = typeof(double))] public partial class HeadsD6x3NoBias : IMultiHeadLayer<double, HeadsD6x3NoBias.Tape, HeadsD6x3NoBias.KeyValueCache>;

// PyTorch's add_bias_kv and add_zero_attn (the extra keys): both, each alone, with kdim/vdim, causal, without biases.
[MultiHeadAttention(ModelDim = 16, Heads = 2, AddBiasKeyValue = true, AddZeroAttention = true)] public partial class ExtraF16x2KvZero : IMultiHeadLayer<float, ExtraF16x2KvZero.Tape, ExtraF16x2KvZero.KeyValueCache>;
[MultiHeadAttention(ModelDim = 64, Heads = 4, Causal = true, AddBiasKeyValue = true)] public partial class ExtraF64x4CausalKv : IMultiHeadLayer<float, ExtraF64x4CausalKv.Tape, ExtraF64x4CausalKv.KeyValueCache>;
[MultiHeadAttention(ModelDim = 6, Heads = 2, AddBiasKeyValue = true, AddZeroAttention = true, ElementType = typeof(double))] public partial class ExtraD6x2KvZero : IMultiHeadLayer<double, ExtraD6x2KvZero.Tape, ExtraD6x2KvZero.KeyValueCache>;
[MultiHeadAttention(ModelDim = 8, Heads = 4, KeyDim = 5, ValueDim = 3, Causal = true, AddBiasKeyValue = true, ElementType = typeof(double))] public partial class ExtraD8x4K5V3CausalKv : IMultiHeadLayer<double, ExtraD8x4K5V3CausalKv.Tape, ExtraD8x4K5V3CausalKv.KeyValueCache>;
[MultiHeadAttention(ModelDim = 6, Heads = 3, Bias = false, AddZeroAttention = true, ElementType = typeof(double))] public partial class ExtraD6x3NoBiasZero : IMultiHeadLayer<double, ExtraD6x3NoBiasZero.Tape, ExtraD6x3NoBiasZero.KeyValueCache>;
