using System;

namespace AttentionGen;

/// <summary>The score function of multiplicative attention (Luong et al. 2015; Vaswani et al. 2017).</summary>
public enum AttentionScore
{
    /// <summary>eᵢⱼ = qᵢᵀ kⱼ; needs <c>Dim == KeyDim</c>.</summary>
    Dot = 0,

    /// <summary>eᵢⱼ = (W qᵢ)ᵀ kⱼ with a learned W of <c>[KeyDim, Dim]</c> (Luong's "general", qᵀ Wᵀ k).</summary>
    General = 1,

    /// <summary>eᵢⱼ = qᵢᵀ kⱼ / √KeyDim (the Transformer's scaled dot product); needs <c>Dim == KeyDim</c>.</summary>
    ScaledDot = 2,

    /// <summary>
    /// eₜ(s) = v_aᵀ tanh(W_a [hₜ; h̄ₛ]) (Luong's "concat"), with a learned W_a of <c>[Units, Dim + KeyDim]</c> and v_a of
    /// <c>[Units]</c>. Offered by <see cref="LocalAttentionAttribute"/>; for global attention use
    /// <see cref="AdditiveAttentionAttribute"/> (Bahdanau's vᵀ tanh(W_q q + W_k k + b), the same score with a bias), so
    /// <see cref="MultiplicativeAttentionAttribute"/> and <see cref="HardAttentionAttribute"/> report ATTN0010 for it.
    /// </summary>
    Concat = 3,
}

/// <summary>
/// Generates Luong's multiplicative attention into the attributed partial class:
/// eᵢⱼ = score(qᵢ, kⱼ) (times a learned scale g when <see cref="LearnedScale"/>), aᵢ = softmax over j (masked),
/// cᵢ = Σⱼ aᵢⱼ valueⱼ.
/// </summary>
/// <example>
/// <code>
/// [MultiplicativeAttention(Dim = 256, Score = AttentionScore.General)]
/// public partial class LuongAligner;
/// </code>
/// </example>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class MultiplicativeAttentionAttribute : AttentionLayerAttribute
{
    /// <summary>The query dimension Dq. Required, 1 to 65536.</summary>
    public int Dim { get; set; }

    /// <summary>The key dimension Dk. Defaults to <see cref="Dim"/>; may differ only for <see cref="AttentionScore.General"/>.</summary>
    public int KeyDim { get; set; }

    /// <summary>The value dimension Dv. Defaults to <see cref="KeyDim"/>; empty values mean the keys are the values.</summary>
    public int ValueDim { get; set; }

    /// <summary>
    /// The score function. Default <see cref="AttentionScore.General"/>. <see cref="AttentionScore.Concat"/> is ATTN0010 here:
    /// Luong's concat score over every key is <see cref="AdditiveAttentionAttribute"/>.
    /// </summary>
    public AttentionScore Score { get; set; } = AttentionScore.General;

    /// <summary>
    /// Multiplies every score by one learned scalar g, initialised to 1 (Keras <c>Attention(use_scale=True)</c>,
    /// TF-Addons <c>LuongAttention(scale=True)</c>). Default false.
    /// </summary>
    public bool LearnedScale { get; set; }

    /// <summary>
    /// Always apply a causal mask (query i sees keys j ≤ i + Tk − Tq), for self-attention where the queries are the keys.
    /// Combines with the call's own mask. Default false.
    /// </summary>
    public bool Causal { get; set; }
}
