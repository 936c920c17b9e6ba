namespace AttentionGen.Generator.Model;

/// <summary>A <c>[KeyValueAttention]</c> layer as plain data.</summary>
internal sealed record KeyValueModel(LayerTarget Target, ElementType Element, int Dim, int Window, bool Predict)
{
    /// <summary>How many parts each hidden state has: 2 (key, value) or 3 (key, value, predict).</summary>
    public int Parts => Predict ? 3 : 2;
}
