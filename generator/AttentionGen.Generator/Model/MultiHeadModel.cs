namespace AttentionGen.Generator.Model;

/// <summary>A <c>[MultiHeadAttention]</c> layer as plain data.</summary>
/// <param name="ModelDim">E: the query and output dimension.</param>
/// <param name="Heads">H; divides E.</param>
/// <param name="KeyDim">The keys' dimension as given (PyTorch <c>kdim</c>).</param>
/// <param name="ValueDim">The values' dimension as given (PyTorch <c>vdim</c>).</param>
/// <param name="Bias">Biases on the input and output projections.</param>
/// <param name="Causal">A causal mask on every call.</param>
/// <param name="AddBiasKeyValue">PyTorch's <c>add_bias_kv</c>: a learned key and value appended to every sequence.</param>
/// <param name="AddZeroAttention">PyTorch's <c>add_zero_attn</c>: a zero key and value appended in every head.</param>
internal sealed record MultiHeadModel(
    LayerTarget Target, ElementType Element, int ModelDim, int Heads, int KeyDim, int ValueDim, bool Bias, bool Causal,
    bool AddBiasKeyValue = false, bool AddZeroAttention = false)
{
    /// <summary>The keys every query sees besides the given ones, appended after them: bias_k, then the zero key.</summary>
    public int ExtraKeys => (AddBiasKeyValue ? 1 : 0) + (AddZeroAttention ? 1 : 0);

    /// <summary>d = E / H, each head's dimension.</summary>
    public int HeadDim => ModelDim / Heads;

    /// <summary>Whether W_Q, W_K, W_V are packed in one <c>in_proj_weight</c> (PyTorch does so when kdim = vdim = E).</summary>
    public bool PackedProjection => KeyDim == ModelDim && ValueDim == ModelDim;
}
