using System;

namespace AttentionGen;

/// <summary>How hard attention picks its key.</summary>
public enum HardSelection
{
    /// <summary>The key of largest weight (deterministic; the first one on a tie).</summary>
    Argmax = 0,

    /// <summary>A key drawn from the soft weights with the caller's seeded <see cref="Random"/> (Xu et al.'s stochastic hard attention).</summary>
    Sample = 1,
}

/// <summary>
/// Generates hard attention (Xu et al. 2015, "Show, Attend and Tell"; Luong et al.'s "hard" notion) into the attributed
/// partial class: the soft weights aᵢ = softmax over j of a Luong score, then one key per query — the argmax or a sample —
/// and the context is that key's value. Backward: straight-through (the soft weights' gradient) with <c>Backward</c>, or
/// REINFORCE with a caller-supplied reward and baseline with <c>BackwardReinforce</c>.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class HardAttentionAttribute : AttentionLayerAttribute
{
    /// <summary>The query dimension Dq. Required, 1 to 65536.</summary>
    public int Dim { get; set; }

    /// <summary>The key dimension Dk. Defaults to <see cref="Dim"/>.</summary>
    public int KeyDim { get; set; }

    /// <summary>The value dimension Dv. Defaults to <see cref="KeyDim"/>.</summary>
    public int ValueDim { get; set; }

    /// <summary>The score (as for <see cref="MultiplicativeAttentionAttribute"/>). Default <see cref="AttentionScore.General"/>.</summary>
    public AttentionScore Score { get; set; } = AttentionScore.General;

    /// <summary>Argmax (default) or Sample.</summary>
    public HardSelection Selection { get; set; } = HardSelection.Argmax;
}
