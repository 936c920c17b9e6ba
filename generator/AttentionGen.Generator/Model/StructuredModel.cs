namespace AttentionGen.Generator.Model;

/// <summary>A <c>[StructuredSelfAttention]</c> layer as plain data; <paramref name="Penalty"/> is the PenaltyNorm member name.</summary>
internal sealed record StructuredModel(LayerTarget Target, ElementType Element, int Dim, int Units, int Hops, string Penalty);
