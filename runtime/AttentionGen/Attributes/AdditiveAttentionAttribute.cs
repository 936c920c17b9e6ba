using System;

namespace AttentionGen;

/// <summary>
/// Generates Bahdanau's additive attention (Bahdanau et al. 2015) into the attributed partial class:
/// eᵢⱼ = vᵀ tanh(W_q qᵢ + W_k kⱼ + b), aᵢ = softmax over j of eᵢⱼ (masked), cᵢ = Σⱼ aᵢⱼ valueⱼ.
/// </summary>
/// <example>
/// <code>
/// [AdditiveAttention(Dim = 128)]
/// public partial class Aligner;
/// </code>
/// </example>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class AdditiveAttentionAttribute : AttentionLayerAttribute
{
    /// <summary>The dimension of queries and keys (Dq = Dk). Required, 1 to 65536.</summary>
    public int Dim { get; set; }

    /// <summary>The hidden size U of the score network (rows of W_q and W_k). Defaults to <see cref="Dim"/>.</summary>
    public int Units { get; set; }

    /// <summary>
    /// The dimension of values (Dv). Defaults to <see cref="Dim"/>; when the values are not passed the keys
    /// serve as values, which needs <c>ValueDim == Dim</c>.
    /// </summary>
    public int ValueDim { get; set; }

    /// <summary>Whether the score network has the bias b inside the tanh. Default true.</summary>
    public bool UseBias { get; set; } = true;
}
