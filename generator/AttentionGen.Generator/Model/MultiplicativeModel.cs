namespace AttentionGen.Generator.Model;

/// <summary>A <c>[MultiplicativeAttention]</c> layer as plain data.</summary>
/// <param name="Score">The <c>AttentionScore</c> member name: Dot, General or ScaledDot.</param>
internal sealed record MultiplicativeModel(
    LayerTarget Target, ElementType Element, int Dim, int KeyDim, int ValueDim, string Score, bool LearnedScale, bool Causal)
{
    public bool General => Score == "General";
}
