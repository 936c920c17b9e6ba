namespace AttentionGen.Generator.Model;

/// <summary>
/// A <c>[MonotonicAttention]</c> layer as plain data: everything the emitter needs, nothing from the compilation.
/// </summary>
/// <param name="Target">The partial class to complete.</param>
/// <param name="Element">float or double.</param>
/// <param name="Dim">Dq = Dk.</param>
/// <param name="Units">U, the hidden size of the additive energy (equal to Dim for the multiplicative one).</param>
/// <param name="ValueDim">Dv.</param>
/// <param name="Additive">The additive energy (true) or the multiplicative one (false).</param>
/// <param name="Parallel">The soft alignment in the parallel (cumulative product) form instead of the recursive one.</param>
/// <param name="InitialEnergyBias">r's initial value.</param>
/// <param name="NoiseStdDev">σ of the pre-sigmoid training noise.</param>
/// <param name="Normalize">The additive energy weight-normalised, g vᵀ/‖v‖ tanh(·).</param>
/// <param name="ChunkSize">MoChA's chunk width w; 0 for plain monotonic attention.</param>
internal sealed record MonotonicModel(LayerTarget Target, ElementType Element, int Dim, int Units, int ValueDim, bool Additive, bool Parallel, double InitialEnergyBias, double NoiseStdDev, bool Normalize, int ChunkSize)
{
    /// <summary>MoChA (Chiu &amp; Raffel 2018) is on.</summary>
    public bool Chunkwise => ChunkSize > 0;
}
