namespace AttentionGen.Generator.Model;

/// <summary>A <c>[LocalAttention]</c> layer (Luong et al. 2015, §3.2) as plain data.</summary>
/// <param name="Window">D, the half-width: each query sees the keys s ∈ [pₜ − D, pₜ + D].</param>
/// <param name="Score">The <c>AttentionScore</c> member name inside the window: Dot, General, ScaledDot or Concat.</param>
/// <param name="Predictive">local-p (a learned pₜ and the Gaussian) rather than local-m (pₜ = t).</param>
/// <param name="PredictorUnits">The hidden size of local-p's predictor (rows of W_p); unused for local-m.</param>
/// <param name="Units">The hidden size of the concat score (rows of W_a, length of v_a); unused for the other scores.</param>
internal sealed record LocalModel(
    LayerTarget Target, ElementType Element, int Dim, int KeyDim, int ValueDim, int Window, string Score, bool Predictive, int PredictorUnits, int Units)
{
    public bool General => Score == "General";

    /// <summary>Luong's concat score vₐᵀ tanh(Wₐ [hₜ; h̄ₛ]).</summary>
    public bool Concat => Score == "Concat";

    /// <summary>2D + 1: the most keys one query's window holds.</summary>
    public int WindowSize => 2 * Window + 1;
}
