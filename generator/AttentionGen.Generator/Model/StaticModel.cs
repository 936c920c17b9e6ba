namespace AttentionGen.Generator.Model;

/// <summary>A <c>[StaticAttention]</c> (attention pooling) layer as plain data.</summary>
internal sealed record StaticModel(LayerTarget Target, ElementType Element, int Dim, int Units);
