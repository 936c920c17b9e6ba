using System;

namespace AttentionGen;

/// <summary>
/// Generates multi-head attention (Vaswani et al. 2017) into the attributed partial class, with the semantics of
/// PyTorch's <c>nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)</c>: Q = X_q W_Qᵀ + b_Q,
/// K = X_k W_Kᵀ + b_K, V = X_v W_Vᵀ + b_V; per head h (d = ModelDim / Heads dimensions)
/// Oₕ = softmax(Qₕ Kₕᵀ / √d + mask) Vₕ; output = concat(O₁ … O_H) W_Oᵀ + b_O.
/// The attention core is tiled with an online softmax (FlashAttention-2): the Tq × Tk score matrix is never held.
/// </summary>
/// <example>
/// <code>
/// [MultiHeadAttention(ModelDim = 512, Heads = 8, Causal = true)]
/// public partial class SelfAttention;
/// </code>
/// </example>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class MultiHeadAttentionAttribute : AttentionLayerAttribute
{
    /// <summary>E, the model (embedding) dimension: the size of each query and of each output. Required, 1 to 65536.</summary>
    public int ModelDim { get; set; }

    /// <summary>H, the number of heads; must divide <see cref="ModelDim"/> (ATTN0007). Required.</summary>
    public int Heads { get; set; }

    /// <summary>The dimension of each key as given (PyTorch <c>kdim</c>). Defaults to <see cref="ModelDim"/>.</summary>
    public int KeyDim { get; set; }

    /// <summary>The dimension of each value as given (PyTorch <c>vdim</c>). Defaults to <see cref="ModelDim"/>.</summary>
    public int ValueDim { get; set; }

    /// <summary>Biases on the input and output projections (PyTorch <c>bias</c>). Default true.</summary>
    public bool Bias { get; set; } = true;

    /// <summary>
    /// Always apply a causal mask, for self-attention: query i sees keys j ≤ i + Tk − Tq (the diagonal aligned to the end,
    /// so a query appended to a key cache sees every earlier key). Combines with the call's own mask. Default false.
    /// </summary>
    public bool Causal { get; set; }

    /// <summary>
    /// PyTorch's <c>add_bias_kv</c>: one more key and value, the learned <c>bias_k</c> and <c>bias_v</c> ([1, 1, ModelDim], split
    /// by heads), appended after the projected keys and values of every sequence. Every query may attend to it whatever the
    /// masks say; the weights then have Tk + 1 columns (Tk + 2 with <see cref="AddZeroAttention"/>). Default false.
    /// </summary>
    public bool AddBiasKeyValue { get; set; }

    /// <summary>
    /// PyTorch's <c>add_zero_attn</c>: one more key and value of zeros in every head, after the others (and after
    /// <see cref="AddBiasKeyValue"/>'s): its score is 0, so a query whose every key is masked still has a softmax, and its
    /// head output is zero. Every query may attend to it; the weights get one more column. Default false.
    /// </summary>
    public bool AddZeroAttention { get; set; }
}
