namespace AttentionGen.Generator.Model;

/// <summary>
/// An <c>[AdditiveAttention]</c> layer as plain data: everything the emitter needs, nothing from the compilation.
/// </summary>
/// <param name="Target">The partial class to complete.</param>
/// <param name="Element">float or double.</param>
/// <param name="Dim">Dq = Dk.</param>
/// <param name="Units">U, the hidden size of the score network.</param>
/// <param name="ValueDim">Dv.</param>
/// <param name="UseBias">Whether b is inside the tanh.</param>
internal sealed record AdditiveModel(LayerTarget Target, ElementType Element, int Dim, int Units, int ValueDim, bool UseBias);
