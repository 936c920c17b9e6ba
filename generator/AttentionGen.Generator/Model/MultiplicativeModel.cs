namespace AttentionGen.Generator.Model;

/// <summary>A <c>[MultiplicativeAttention]</c> layer as plain data.</summary>
/// <param name="Score">The <c>AttentionScore</c> member name: Dot, General or ScaledDot.</param>
/// <param name="Hard">Hard attention (Xu et al. 2015): the context is the one chosen value.</param>
/// <param name="Sample">For hard attention: sample the choice from the weights (else take the argmax).</param>
internal sealed record MultiplicativeModel(
    LayerTarget Target, ElementType Element, int Dim, int KeyDim, int ValueDim, string Score, bool LearnedScale, bool Causal,
    bool Hard = false, bool Sample = false)
{
    public bool General => Score == "General";
}
