using System;
using System.Collections.Generic;

namespace AttentionGen.Benchmarks;

/// <summary>
/// A benchmark workload of ../shared/bench/workloads.md: its layer, its shape and its nominal FLOP count.
/// <paramref name="Layer"/> is "additive", "luong" (general score, values = keys), "pooling" (HAN: QueryLength is
/// the sequence length T, no keys) or "sdpa" (scaled dot-product over <paramref name="Heads"/> heads, no
/// projections, Dim = head dim, QueryLength = KeyLength = T) or "local" (Luong local-p with the general score, values = keys,
/// half-width <paramref name="Window"/>, <paramref name="Units"/> the position predictor's hidden size) or "local-concat"
/// (the same with Luong's concat score, <paramref name="Units"/> both its hidden size and the predictor's) or "monotonic"
/// (Raffel et al.: the additive energy plus r, choose probabilities and the expected alignment by its recursion, values = keys)
/// or "keyvalue" (Daniluk et al.: each input step [key; value] of 2·Dim attends over the previous <paramref name="Window"/>
/// steps; QueryLength is T, no keys, no Units) or "structured" (Lin et al.: <paramref name="Hops"/> attention
/// distributions over a sequence of QueryLength steps, <paramref name="Units"/> = dₐ, no keys). "monotonic" with
/// <paramref name="Chunk"/> = w ≥ 1 is MoChA (Chiu &amp; Raffel 2018): a second additive energy of its own (the chunk energy)
/// and the expected chunkwise weights over the w keys ending at each position.
/// </summary>
public sealed record Workload(string Id, string Layer, int Batch, int QueryLength, int KeyLength, int Dim, int Units, int Heads = 1, bool Causal = false, int Window = 0, int Hops = 0, int Chunk = 0)
{
    /// <summary>Independent attention problems: batch rows times heads.</summary>
    public int Rows => Batch * Heads;

    /// <summary>The nominal forward FLOPs of workloads.md (tanh, exp and softmax not counted).</summary>
    public double ForwardFlops => Layer switch
    {
        "pooling" => 2.0 * Batch * QueryLength * Dim * Units + 2.0 * Batch * QueryLength * Units + 2.0 * Batch * QueryLength * Dim,
        "luong" => 2.0 * Batch * QueryLength * Dim * Dim + 4.0 * Batch * QueryLength * KeyLength * Dim,
        "sdpa" => 4.0 * Batch * Heads * QueryLength * KeyLength * Dim / (Causal ? 2 : 1),
        // W_a q and W_p q per query, then 2D + 1 scores and 2D + 1 context updates (edge windows counted full).
        "local" => 2.0 * Batch * QueryLength * Dim * Dim + 2.0 * Batch * QueryLength * Dim * Units + 2.0 * Batch * QueryLength * Units
                   + 4.0 * Batch * QueryLength * (2 * Window + 1) * Dim,
        // The predictor (W_p q, v_p·z), QP = W_a,q q per query and KP = W_a,k k per key, then per window pair the additive
        // score's 4·U (add, v_a·tanh) and the context's 2·D (edge windows counted full).
        "local-concat" => 2.0 * Batch * QueryLength * Dim * Units + 2.0 * Batch * QueryLength * Units
                          + 2.0 * Batch * (QueryLength + KeyLength) * Dim * Units + Batch * QueryLength * (2 * Window + 1) * (4.0 * Units + 2.0 * Dim),
        // W^Y k and W^h k per step, the additive score's 4·D and the read's 2·D per window step (the first L steps counted
        // full), then W^r r and W^x v per step.
        "keyvalue" => 8.0 * Batch * QueryLength * Dim * Dim + 6.0 * Batch * QueryLength * Window * Dim,
        // Hid = tanh(H W_s1ᵀ), E = W_s2 Hidᵀ, M = A H (the penalty is off).
        "structured" => 2.0 * Batch * QueryLength * Dim * Units + 2.0 * Batch * QueryLength * Units * Hops + 2.0 * Batch * Hops * QueryLength * Dim,
        // MoChA: the additive formula plus the chunk energy's projections and scores (its moving sums, like exp, not counted).
        "monotonic" when Chunk > 0 => 4.0 * Batch * (QueryLength + KeyLength) * Dim * Units + 8.0 * Batch * QueryLength * KeyLength * Units + 2.0 * Batch * QueryLength * KeyLength * Dim,
        _ => 2.0 * Batch * (QueryLength + KeyLength) * Dim * Units + 4.0 * Batch * QueryLength * KeyLength * Units + 2.0 * Batch * QueryLength * KeyLength * Dim,
    };

    /// <summary>
    /// The nominal FLOPs of a decoder step from a key projection computed once per sentence: the forward formula without
    /// the keys' projection, 2·B·Tk·D·U. Additive: 2·B·Tq·D·U + 4·B·Tq·Tk·U + 2·B·Tq·Tk·D; local concat:
    /// 2·B·Tq·D·U + 2·B·Tq·U (predictor) + 2·B·Tq·D·U (W_a,q q) + B·Tq·(2D + 1)·(4·U + 2·Dim) (window).
    /// </summary>
    public double StepFlops => Layer is "additive" or "local-concat"
        ? ForwardFlops - 2.0 * Batch * KeyLength * Dim * Units
        : throw new InvalidOperationException($"{Id} ({Layer}) has no decoder step");

    /// <summary>A training step counts three times the forward.</summary>
    public double TrainingFlops => 3 * ForwardFlops;

    /// <summary>Elements of the context (the output): one row per query, one per sequence for pooling, one per hop for structured.</summary>
    public int ContextLength => Layer switch
    {
        "pooling" => Batch * Dim,
        "structured" => Batch * Hops * Dim,
        _ => Rows * QueryLength * Dim,
    };

    /// <summary>Whether the layer reads one input sequence and no keys (its input gradient is named "input").</summary>
    public bool SingleInput => Layer is "pooling" or "keyvalue" or "structured";

    /// <summary>Elements of one input step: [key; value] for key-value, else Dim.</summary>
    public int InputDim => Layer == "keyvalue" ? 2 * Dim : Dim;

    public static readonly Workload W0 = new("W0", "additive", 1, 1, 16, 32, 32);
    public static readonly Workload W1 = new("W1", "additive", 1, 1, 50, 256, 256);
    public static readonly Workload W2 = new("W2", "additive", 32, 20, 30, 128, 128);
    public static readonly Workload W3 = new("W3", "luong", 32, 20, 30, 256, 256);
    public static readonly Workload W4 = new("W4", "pooling", 64, 100, 0, 100, 100);
    public static readonly Workload W5 = new("W5", "sdpa", 1, 1024, 1024, 64, 0, Heads: 8, Causal: true);
    public static readonly Workload W6 = new("W6", "sdpa", 1, 64, 64, 64, 0, Heads: 8);

    /// <summary>Not in workloads.md yet: Luong local-p attention (general score) over a window of D = 5 either side.</summary>
    public static readonly Workload W7 = new("W7", "local", 32, 64, 64, 256, 256, Window: 5);

    /// <summary>
    /// Not in workloads.md: monotonic attention at W2's shape (a training batch of short sentences), so its cost sits beside
    /// the softmax additive layer's. Its nominal FLOPs are the additive formula's (the alignment recursion is O(B·Tq·Tk)).
    /// </summary>
    public static readonly Workload W8 = new("W8", "monotonic", 32, 20, 30, 128, 128);

    /// <summary>
    /// Not in workloads.md: key-value attention (Daniluk et al. 2017) as a language model's training call makes it, whole
    /// sequences of T = 50 steps, each [key; value] of 2 × 128, attending over the previous L = 5 steps.
    /// </summary>
    public static readonly Workload W9 = new("W9", "keyvalue", 32, 50, 0, 128, 0, Window: 5);

    /// <summary>
    /// Not in workloads.md: structured self-attention (Lin et al. 2017) over sentences of 50 states of 256, dₐ = 128
    /// (the paper: 350 for 600-dimensional states), r = 4 hops, the penalty off.
    /// </summary>
    public static readonly Workload W10 = new("W10", "structured", 32, 50, 0, 256, 128, Hops: 4);

    /// <summary>Not in workloads.md: W7 with Luong's concat score vₐᵀ tanh(Wₐ[hₜ; h̄ₛ]) (Units = 256, the predictor's too).</summary>
    public static readonly Workload W11 = new("W11", "local-concat", 32, 64, 64, 256, 256, Window: 5);

    /// <summary>
    /// Not in workloads.md: W11's layer as a decoder calls it, one query per step (Tq = 1) at W11's batch (32) and source
    /// length (64): the keys projected once per source sequence (<c>ProjectKeys</c>), then <c>ForwardWithKeyProjection</c>.
    /// </summary>
    public static readonly Workload W12 = new("W12", "local-concat", 32, 1, 64, 256, 256, Window: 5);

    /// <summary>
    /// Not in workloads.md: MoChA (Chiu &amp; Raffel 2018) training as in the paper's speech recognition use: a batch of 8
    /// short utterances of Tk = 120 encoder states (about 5 s of audio after a 4× time reduction), Tq = 40 output steps,
    /// D = U = 128, chunks of w = 2 keys (the chunk size the paper found best for speech), r = −1 (see
    /// <see cref="WorkloadData.MochaEnergyBias"/>).
    /// </summary>
    public static readonly Workload W13 = new("W13", "monotonic", 8, 40, 120, 128, 128, Chunk: 2);

    /// <summary>W0–W13 in order.</summary>
    public static IReadOnlyList<Workload> All { get; } = new[] { W0, W1, W2, W3, W4, W5, W6, W7, W8, W9, W10, W11, W12, W13 };

    public static Workload Get(string id)
    {
        foreach (Workload w in All)
        {
            if (w.Id == id) return w;
        }
        throw new ArgumentException($"unknown workload '{id}'; expected one of W0–W13", nameof(id));
    }
}

/// <summary>
/// The seeded inputs and parameters every implementation of a workload shares, row-major, batch first.
/// Additive (and monotonic, plus EnergyBias r, and for MoChA the Chunk* arrays): QueryWeight [U, D], KeyWeight [U, D], Bias [U], ScoreVector [U]. Luong: QueryWeight is W [D, D].
/// Pooling: Query is the input h [B, T, D]; QueryWeight, Bias, ScoreVector are W, b and u_w.
/// Scaled dot-product: Query, Keys, Values are [B, H, T, d]; no parameters.
/// Local: QueryWeight is W_a [D, D], KeyWeight is the predictor's W_p [U, D], ScoreVector its v_p [U].
/// Local concat: as local, but QueryWeight is the concat score's W_a [U, 2D] (query columns first) and ConcatVector its v_a [U].
/// Key-value: Query is the input [B, T, 2D] ([key; value] per step); QueryWeight is W^h [D, D], KeyWeight W^Y [D, D],
/// ScoreVector w [D], ContextWeight W^r [D, D], InputWeight W^x [D, D].
/// Structured: Query is H [B, T, D]; QueryWeight is W_s1 [U, D], HopWeight W_s2 [Hops, U].
/// </summary>
public sealed class WorkloadData
{
    public WorkloadData(Workload w, int seed = 1)
    {
        Workload = w;
        var random = new Random(seed);
        float[] Fill(int n, double scale) { var x = new float[n]; for (int i = 0; i < n; i++) x[i] = (float)((random.NextDouble() * 2 - 1) * scale); return x; }
        float[] Glorot(int rows, int columns) => Fill(rows * columns, Math.Sqrt(6.0 / (rows + columns)));
        string layer = w.Layer;
        int d = w.Dim, u = w.Units;
        Query = Fill(w.Rows * w.QueryLength * w.InputDim, 1);
        Keys = Fill(w.Rows * w.KeyLength * d, 1);
        double limit = Math.Sqrt(6.0 / (d + Math.Max(u, 1)));
        QueryWeight = layer switch
        {
            "local" => Fill(d * d, limit),
            "local-concat" => Glorot(u, 2 * d),
            "keyvalue" => Glorot(d, d),
            _ => Fill(u * d, limit),
        };
        KeyWeight = layer switch
        {
            "additive" or "local" or "local-concat" or "monotonic" => Fill(u * d, limit),
            "keyvalue" => Glorot(d, d),
            _ => Array.Empty<float>(),
        };
        Bias = Fill(layer is "additive" or "pooling" or "monotonic" ? u : 0, 0.1);
        int scoreLength = layer switch
        {
            "additive" or "pooling" or "local" or "local-concat" or "monotonic" => u,
            "keyvalue" => d,
            _ => 0,
        };
        ScoreVector = Fill(scoreLength, Math.Sqrt(6.0 / (scoreLength + 1)));
        EnergyBias = layer == "monotonic" ? new[] { w.Chunk > 0 ? MochaEnergyBias : MonotonicEnergyBias } : Array.Empty<float>();
        Values = Fill(layer == "sdpa" ? w.Rows * w.KeyLength * d : 0, 1);
        // Drawn after the arrays above, so that W0–W8's inputs stay what they were before these existed.
        ContextWeight = layer == "keyvalue" ? Glorot(d, d) : Array.Empty<float>();
        InputWeight = layer == "keyvalue" ? Glorot(d, d) : Array.Empty<float>();
        HopWeight = layer == "structured" ? Glorot(w.Hops, u) : Array.Empty<float>();
        ConcatVector = layer == "local-concat" ? Fill(u, Math.Sqrt(6.0 / (u + 1))) : Array.Empty<float>();
        // MoChA's chunk energy, the same form as the monotonic one: W_cq, W_ck [U, D], b_c, v_c [U] (nothing drawn otherwise).
        bool chunk = layer == "monotonic" && w.Chunk > 0;
        ChunkQueryWeight = chunk ? Fill(u * d, limit) : Array.Empty<float>();
        ChunkKeyWeight = chunk ? Fill(u * d, limit) : Array.Empty<float>();
        ChunkBias = chunk ? Fill(u, 0.1) : Array.Empty<float>();
        ChunkScoreVector = chunk ? Fill(u, Math.Sqrt(6.0 / (u + 1))) : Array.Empty<float>();
        DContext = new float[w.ContextLength];
        Array.Fill(DContext, 1f); // context.sum().backward(), as the TorchSharp peer does
    }

    public Workload Workload { get; }
    public float[] Query { get; }
    public float[] Keys { get; }

    /// <summary>Separate values (scaled dot-product only); empty where the keys are the values.</summary>
    public float[] Values { get; }
    public float[] QueryWeight { get; }
    public float[] KeyWeight { get; }
    public float[] Bias { get; }
    public float[] ScoreVector { get; }

    /// <summary>Key-value only: W^r [D, D], which maps the read rₜ into h*ₜ.</summary>
    public float[] ContextWeight { get; }

    /// <summary>Key-value only: W^x [D, D], which maps the current value vₜ into h*ₜ.</summary>
    public float[] InputWeight { get; }

    /// <summary>Structured only: W_s2 [Hops, U].</summary>
    public float[] HopWeight { get; }

    /// <summary>Local concat only: the concat score's v_a [U].</summary>
    public float[] ConcatVector { get; }

    /// <summary>MoChA only (monotonic with Chunk ≥ 1): the chunk energy's W_cq [U, D].</summary>
    public float[] ChunkQueryWeight { get; }

    /// <summary>MoChA only: the chunk energy's W_ck [U, D].</summary>
    public float[] ChunkKeyWeight { get; }

    /// <summary>MoChA only: the chunk energy's b_c [U].</summary>
    public float[] ChunkBias { get; }

    /// <summary>MoChA only: the chunk energy's v_c [U].</summary>
    public float[] ChunkScoreVector { get; }

    /// <summary>Monotonic only: r, [1].</summary>
    public float[] EnergyBias { get; }

    /// <summary>
    /// r of the monotonic workload: with these energies (|vᵀ tanh(·)| about 1) the choose probabilities lie around 0.05–0.3,
    /// where the peer's parallel form (cumulative product over 30 keys) stays far above its 1e-10 clip.
    /// </summary>
    public const float MonotonicEnergyBias = -2f;

    /// <summary>
    /// r of the MoChA workload: with these untrained energies the alignment then moves about 2.7 keys per output step, as a
    /// trained speech model's does over Tk / Tq = 3 (mass 0.82 still inside the source at the 36th step). The paper's
    /// initial −4 ran it past the end of the source within a few steps (in a trial at Tk = 60 the row mass was 0.05 at the
    /// fourth step): the later steps' contexts would be zero and check nothing.
    /// </summary>
    public const float MochaEnergyBias = -1f;
    public float[] DContext { get; }
}
