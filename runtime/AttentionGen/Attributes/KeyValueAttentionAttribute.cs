using System;

namespace AttentionGen;

/// <summary>How each hidden state is split (Daniluk et al. 2017).</summary>
public enum KeyValueSplit
{
    /// <summary>hₜ = [kₜ; vₜ]: 2·Dim values; the output step uses vₜ.</summary>
    KeyValue = 0,

    /// <summary>hₜ = [kₜ; vₜ; pₜ]: 3·Dim values; the output step uses the "predict" part pₜ.</summary>
    KeyValuePredict = 1,
}

/// <summary>
/// Generates key-value attention (Daniluk et al. 2017, "Frustratingly Short Attention Spans in Neural Language
/// Modeling") into the attributed partial class. Each hidden state is split into a key and a value (and a predict part);
/// at step t the layer attends over the previous <see cref="Window"/> keys with additive scoring:
/// Mₜ = tanh(W_Y [k_{t−L} … k_{t−1}] + (W_h kₜ) 1ᵀ), αₜ = softmax(wᵀ Mₜ), rₜ = [v_{t−L} … v_{t−1}] αₜᵀ,
/// h*ₜ = tanh(W_r rₜ + W_x vₜ) (or W_x pₜ). Positions before the start of the sequence are masked.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class KeyValueAttentionAttribute : AttentionLayerAttribute
{
    /// <summary>k, the size of each part (key, value, predict) and of the output. Required, 1 to 65536.</summary>
    public int Dim { get; set; }

    /// <summary>L, how many previous steps each step attends to. Required, 1 to 65536 (ATTN0004 otherwise).</summary>
    public int Window { get; set; }

    /// <summary>How each hidden state is split. Default <see cref="KeyValueSplit.KeyValue"/>.</summary>
    public KeyValueSplit Split { get; set; } = KeyValueSplit.KeyValue;
}
