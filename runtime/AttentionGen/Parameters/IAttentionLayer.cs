using System.Collections.Generic;
using System.Numerics;

namespace AttentionGen;

/// <summary>What every generated attention layer offers beyond its kind-specific forward and backward.</summary>
/// <typeparam name="T">The layer's element type.</typeparam>
public interface IAttentionLayer<T> where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>The layer's trainable parameters, in a fixed order, each with a unique name.</summary>
    IReadOnlyList<Parameter<T>> Parameters { get; }

    /// <summary>Clears the accumulated gradient of every parameter.</summary>
    void ZeroGradients();

    /// <summary>Re-initialises every parameter from <paramref name="seed"/> (same seed, same values).</summary>
    void ResetParameters(int seed);
}
