using System;

namespace AttentionGen;

/// <summary>The energy function of monotonic attention (Raffel et al. 2017, §2.3 and Appendix).</summary>
public enum MonotonicScore
{
    /// <summary>
    /// Bahdanau's energy, eᵢⱼ = vᵀ tanh(W_q qᵢ + W_k kⱼ + b) (TF-Addons <c>BahdanauMonotonicAttention</c>).
    /// </summary>
    Additive = 0,

    /// <summary>
    /// Luong's "general" energy, eᵢⱼ = qᵢᵀ W kⱼ (TF-Addons <c>LuongMonotonicAttention</c>, without its scale).
    /// </summary>
    Multiplicative = 1,
}

/// <summary>
/// How the soft (expected) alignment αᵢ is computed from the choose probabilities pᵢ and the previous
/// alignment αᵢ₋₁ (TF-Addons <c>monotonic_attention(mode=...)</c>). Both give the same numbers where the
/// parallel form is stable; hard decoding has its own methods (<c>ForwardHard</c>, <c>StepHard</c>).
/// </summary>
public enum MonotonicMode
{
    /// <summary>
    /// The recurrence qᵢⱼ = (1 − pᵢ,ⱼ₋₁) qᵢ,ⱼ₋₁ + αᵢ₋₁,ⱼ, αᵢⱼ = pᵢⱼ qᵢⱼ: products of probabilities only, never a
    /// division, so it is numerically safe. The default.
    /// </summary>
    Recursive = 0,

    /// <summary>
    /// The closed form αᵢ = pᵢ ⊙ cumprod(1 − pᵢ) ⊙ cumsum(αᵢ₋₁ / cumprod(1 − pᵢ)) with an exclusive cumulative
    /// product and the divisor clipped to [1e-10, 1], as TF-Addons does; loses mass once the product falls
    /// below the clip. For parity with models trained that way.
    /// </summary>
    Parallel = 1,
}

/// <summary>
/// Generates monotonic ("forced-forward") attention (Raffel et al. 2017, "Online and Linear-Time Attention by
/// Enforcing Monotonic Alignments") into the attributed partial class: choose probabilities
/// pᵢⱼ = σ(eᵢⱼ + r + noise), the expected alignment αᵢⱼ = pᵢⱼ Σₖ αᵢ₋₁,ₖ Πₗ₌ₖ^{j−1} (1 − pᵢₗ) with α₀ = one-hot(0),
/// context cᵢ = Σⱼ αᵢⱼ valueⱼ (a row sums to at most 1; the rest means "attend nothing"). Hard decoding scans
/// forward from the previously attended key and stops at the first pᵢⱼ ≥ 0.5, in time linear in Tq + Tk.
/// </summary>
/// <example>
/// <code>
/// [MonotonicAttention(Dim = 256, Score = MonotonicScore.Additive)]
/// public partial class StreamingAligner;
/// </code>
/// </example>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class MonotonicAttentionAttribute : AttentionLayerAttribute
{
    /// <summary>The dimension of queries and keys (Dq = Dk). Required, 1 to 65536.</summary>
    public int Dim { get; set; }

    /// <summary>
    /// The hidden size U of the additive energy (rows of W_q and W_k). Defaults to <see cref="Dim"/>; only for
    /// <see cref="MonotonicScore.Additive"/> (with the multiplicative energy it has no effect: warning ATTN0020).
    /// </summary>
    public int Units { get; set; }

    /// <summary>
    /// The dimension of values (Dv). Defaults to <see cref="Dim"/>; when the values are not passed the keys serve
    /// as values, which needs <c>ValueDim == Dim</c>.
    /// </summary>
    public int ValueDim { get; set; }

    /// <summary>
    /// Weight-normalises the additive energy as the paper does: eᵢⱼ = g vᵀ/‖v‖ tanh(W_q qᵢ + W_k kⱼ + b) + r, with a learned
    /// scalar g initialised to √(1/Units) (TF-Addons <c>BahdanauMonotonicAttention(normalize=True)</c>). Default false (plain
    /// v, TF-Addons' default); only with <see cref="MonotonicScore.Additive"/> (ATTN0042 otherwise).
    /// </summary>
    public bool Normalize { get; set; }

    /// <summary>The energy function. Default <see cref="MonotonicScore.Additive"/>.</summary>
    public MonotonicScore Score { get; set; } = MonotonicScore.Additive;

    /// <summary>How the soft alignment is computed. Default <see cref="MonotonicMode.Recursive"/>.</summary>
    public MonotonicMode Mode { get; set; } = MonotonicMode.Recursive;

    /// <summary>
    /// The initial value of the learned energy bias r. Default −4, as the paper recommends (it starts every
    /// pᵢⱼ small, so early training spreads the alignment instead of stopping at the first key); TF-Addons
    /// defaults its <c>score_bias_init</c> to 0. Must be finite (ATTN0040).
    /// </summary>
    public double InitialEnergyBias { get; set; } = -4.0;

    /// <summary>
    /// The standard deviation σ of the Gaussian noise added before the sigmoid in training, when the training
    /// forward is given a random source (the paper uses 1; TF-Addons calls it <c>sigmoid_noise</c>). Default 1.
    /// Must be finite and ≥ 0 (ATTN0041).
    /// </summary>
    public double NoiseStdDev { get; set; } = 1.0;

    /// <summary>
    /// MoChA (Chiu &amp; Raffel 2018): the width w of the chunk that ends at the monotonic position, over which a softmax of a
    /// second, chunk energy uᵢⱼ attends. 0 (the default) is plain monotonic attention; w ≥ 1 turns MoChA on, and the
    /// weights the layer returns are then the chunkwise β instead of α. Must not be negative (ATTN0043).
    /// </summary>
    public int ChunkSize { get; set; }
}
