using System;

namespace AttentionGen;

/// <summary>How local attention chooses the aligned source position pₜ of each query (Luong et al. 2015, §3.2).</summary>
public enum LocalAlignment
{
    /// <summary>
    /// local-m: pₜ = t, the source and target assumed monotonically aligned. When Tq ≠ Tk the diagonal is aligned to the end,
    /// like the causal mask: pₜ = t + Tk − Tq. The weights are the window's softmax, with no Gaussian.
    /// </summary>
    Monotonic = 0,

    /// <summary>
    /// local-p: pₜ = S · sigmoid(v_pᵀ tanh(W_p hₜ)) with S = Tk, learned; the window's softmax is multiplied by
    /// exp(−(s − pₜ)² / (2σ²)), σ = D / 2, so the weights favour positions near pₜ (and no longer sum to 1).
    /// </summary>
    Predictive = 1,
}

/// <summary>
/// Generates Luong's local attention (Luong et al. 2015, §3.2) into the attributed partial class: each query t attends only
/// to the 2D + 1 keys s ∈ [pₜ − D, pₜ + D] around an aligned position pₜ (clipped to the sequence), with any of Luong's
/// scores inside the window (the multiplicative ones or "concat"): aₜ(s) = softmax over the window of score(hₜ, h̄ₛ) (times the Gaussian
/// exp(−(s − pₜ)² / (2σ²)) for local-p), cₜ = Σₛ aₜ(s) valueₛ. Only the window is scored: O(Tq · D · d) work.
/// </summary>
/// <example>
/// <code>
/// [LocalAttention(Dim = 256, Window = 5)]   // local-p with the general score
/// public partial class LocalAligner;
/// </code>
/// </example>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class LocalAttentionAttribute : AttentionLayerAttribute
{
    /// <summary>The query dimension Dq (the decoder state hₜ). Required, 1 to 65536.</summary>
    public int Dim { get; set; }

    /// <summary>
    /// The key dimension Dk (the encoder states h̄ₛ). Defaults to <see cref="Dim"/>; may differ only for
    /// <see cref="AttentionScore.General"/> and <see cref="AttentionScore.Concat"/>.
    /// </summary>
    public int KeyDim { get; set; }

    /// <summary>The value dimension Dv. Defaults to <see cref="KeyDim"/>; empty values mean the keys are the values.</summary>
    public int ValueDim { get; set; }

    /// <summary>D, the half-width of the window: each query sees at most 2D + 1 keys. Required, 1 to 65536 (ATTN0004 otherwise). Luong et al. use 10.</summary>
    public int Window { get; set; }

    /// <summary>How pₜ is chosen. Default <see cref="LocalAlignment.Predictive"/> (local-p).</summary>
    public LocalAlignment Alignment { get; set; } = LocalAlignment.Predictive;

    /// <summary>The score inside the window. Default <see cref="AttentionScore.General"/>.</summary>
    public AttentionScore Score { get; set; } = AttentionScore.General;

    /// <summary>
    /// The hidden size of local-p's position predictor (the rows of W_p and the length of v_p). Defaults to <see cref="Dim"/>.
    /// Setting it with <see cref="LocalAlignment.Monotonic"/> is warning ATTN0020 (there is no predictor).
    /// </summary>
    public int PredictorUnits { get; set; }

    /// <summary>
    /// The hidden size of the <see cref="AttentionScore.Concat"/> score v_aᵀ tanh(W_a [hₜ; h̄ₛ]) (the rows of W_a and the length
    /// of v_a). Defaults to <see cref="Dim"/>, 1 to 65536. Setting it with another score is warning ATTN0020 (no hidden layer).
    /// </summary>
    public int Units { get; set; }
}
