using System;

namespace AttentionGen;

/// <summary>
/// Generates static attention — attention pooling as in Hierarchical Attention Networks (Yang et al. 2016) — into the
/// attributed partial class: uₜ = tanh(W hₜ + b), αₜ = softmax over t of uₜᵀ u_w (u_w a learned context vector),
/// s = Σₜ αₜ hₜ. One vector per sequence.
/// </summary>
/// <remarks>
/// This is the paper's form. A widely copied Keras layer (<c>AttentionWithContext</c>) instead takes exp of
/// tanh(x W + b) element-wise and normalises over time without any context vector, which weights each feature
/// separately rather than each step; that is not what the paper describes, and not what this generates.
/// </remarks>
/// <example>
/// <code>
/// [StaticAttention(Dim = 100, Units = 100)]
/// public partial class SentencePooling;
/// </code>
/// </example>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class StaticAttentionAttribute : AttentionLayerAttribute
{
    /// <summary>The dimension of each input vector hₜ (and of the pooled output). Required, 1 to 65536.</summary>
    public int Dim { get; set; }

    /// <summary>The hidden size U of uₜ and of the context vector u_w. Defaults to <see cref="Dim"/>.</summary>
    public int Units { get; set; }
}
