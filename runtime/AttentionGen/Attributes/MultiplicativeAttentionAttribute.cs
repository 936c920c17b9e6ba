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

    /// <summary>The score function. Default <see cref="AttentionScore.General"/>.</summary>
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
