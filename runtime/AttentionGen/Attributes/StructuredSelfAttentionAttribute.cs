using System;

namespace AttentionGen;

/// <summary>Which norm the structured self-attention penalty uses.</summary>
public enum PenaltyNorm
{
    /// <summary>P = ‖A Aᵀ − I‖²_F, as the paper writes it; ∂P/∂A = 4 (A Aᵀ − I) A.</summary>
    SquaredFrobenius = 0,

    /// <summary>P = √(‖A Aᵀ − I‖²_F + 1e-10), as the paper's reference code computes it; ∂P/∂A = 2 (A Aᵀ − I) A / P.</summary>
    Frobenius = 1,
}

/// <summary>
/// Generates structured self-attention (Lin et al. 2017, "A Structured Self-attentive Sentence Embedding") into the
/// attributed partial class: A = softmax over t of W_s2 tanh(W_s1 Hᵀ) ([Hops, T] per sequence), M = A H
/// ([Hops, Dim]): r = <see cref="Hops"/> attention distributions over the same sequence, kept apart by the penalty
/// P = ‖A Aᵀ − I‖²_F (times the layer's <c>PenaltyCoefficient</c>, which Forward returns and Backward differentiates).
/// </summary>
/// <example>
/// <code>
/// [StructuredSelfAttention(Dim = 600, Units = 350, Hops = 30)]
/// public partial class SentenceEmbedding;
/// </code>
/// </example>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class StructuredSelfAttentionAttribute : AttentionLayerAttribute
{
    /// <summary>The dimension of each hidden state hₜ (2u for a BiLSTM in the paper). Required, 1 to 65536.</summary>
    public int Dim { get; set; }

    /// <summary>dₐ, the rows of W_s1. Defaults to <see cref="Dim"/>.</summary>
    public int Units { get; set; }

    /// <summary>r, the number of attention hops (rows of A and of M). Default 1.</summary>
    public int Hops { get; set; } = 1;

    /// <summary>The penalty's norm. Default <see cref="PenaltyNorm.SquaredFrobenius"/> (the paper's).</summary>
    public PenaltyNorm Penalty { get; set; } = PenaltyNorm.SquaredFrobenius;
}
