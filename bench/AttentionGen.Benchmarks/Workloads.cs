using System;
using System.Collections.Generic;

namespace AttentionGen.Benchmarks;

/// <summary>
/// A benchmark workload of ../shared/bench/workloads.md: its layer, its shape and its nominal FLOP count.
/// <paramref name="Layer"/> is "additive", "luong" (general score, values = keys), "pooling" (HAN: QueryLength is
/// the sequence length T, no keys) or "sdpa" (scaled dot-product over <paramref name="Heads"/> heads, no
/// projections, Dim = head dim, QueryLength = KeyLength = T) or "local" (Luong local-p with the general score, values = keys,
/// half-width <paramref name="Window"/>, <paramref name="Units"/> the position predictor's hidden size) or "monotonic"
/// (Raffel et al.: the additive energy plus r, choose probabilities and the expected alignment by its recursion, values = keys).
/// </summary>
public sealed record Workload(string Id, string Layer, int Batch, int QueryLength, int KeyLength, int Dim, int Units, int Heads = 1, bool Causal = false, int Window = 0)
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
        _ => 2.0 * Batch * (QueryLength + KeyLength) * Dim * Units + 4.0 * Batch * QueryLength * KeyLength * Units + 2.0 * Batch * QueryLength * KeyLength * Dim,
    };

    /// <summary>
    /// The nominal FLOPs of a decoder step from a key projection computed once per sentence (additive only): the
    /// additive formula without the keys' projection, 2·B·Tq·D·U + 4·B·Tq·Tk·U + 2·B·Tq·Tk·D.
    /// </summary>
    public double StepFlops => 2.0 * Batch * QueryLength * Dim * Units + 4.0 * Batch * QueryLength * KeyLength * Units + 2.0 * Batch * QueryLength * KeyLength * Dim;

    /// <summary>A training step counts three times the forward.</summary>
    public double TrainingFlops => 3 * ForwardFlops;

    /// <summary>Elements of the context (the output): one row per query, or one per sequence for pooling.</summary>
    public int ContextLength => Layer == "pooling" ? Batch * Dim : Rows * QueryLength * Dim;

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

    /// <summary>W0–W8 in order.</summary>
    public static IReadOnlyList<Workload> All { get; } = new[] { W0, W1, W2, W3, W4, W5, W6, W7, W8 };

    public static Workload Get(string id)
    {
        foreach (Workload w in All)
        {
            if (w.Id == id) return w;
        }
        throw new ArgumentException($"unknown workload '{id}'; expected one of W0–W8", nameof(id));
    }
}

/// <summary>
/// The seeded inputs and parameters every implementation of a workload shares, row-major, batch first.
/// Additive (and monotonic, plus EnergyBias r): QueryWeight [U, D], KeyWeight [U, D], Bias [U], ScoreVector [U]. Luong: QueryWeight is W [D, D].
/// Pooling: Query is the input h [B, T, D]; QueryWeight, Bias, ScoreVector are W, b and u_w.
/// Scaled dot-product: Query, Keys, Values are [B, H, T, d]; no parameters.
/// Local: QueryWeight is W_a [D, D], KeyWeight is the predictor's W_p [U, D], ScoreVector its v_p [U].
/// </summary>
public sealed class WorkloadData
{
    public WorkloadData(Workload w, int seed = 1)
    {
        Workload = w;
        var random = new Random(seed);
        float[] Fill(int n, double scale) { var x = new float[n]; for (int i = 0; i < n; i++) x[i] = (float)((random.NextDouble() * 2 - 1) * scale); return x; }
        Query = Fill(w.Rows * w.QueryLength * w.Dim, 1);
        Keys = Fill(w.Rows * w.KeyLength * w.Dim, 1);
        double limit = Math.Sqrt(6.0 / (w.Dim + Math.Max(w.Units, 1)));
        QueryWeight = Fill(w.Layer == "local" ? w.Dim * w.Dim : w.Units * w.Dim, limit);
        KeyWeight = Fill(w.Layer is "additive" or "local" or "monotonic" ? w.Units * w.Dim : 0, limit);
        Bias = Fill(w.Layer is "additive" or "pooling" or "monotonic" ? w.Units : 0, 0.1);
        ScoreVector = Fill(w.Layer is "additive" or "pooling" or "local" or "monotonic" ? w.Units : 0, Math.Sqrt(6.0 / (w.Units + 1)));
        EnergyBias = w.Layer == "monotonic" ? new[] { MonotonicEnergyBias } : Array.Empty<float>();
        Values = Fill(w.Layer == "sdpa" ? w.Rows * w.KeyLength * w.Dim : 0, 1);
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

    /// <summary>Monotonic only: r, [1].</summary>
    public float[] EnergyBias { get; }

    /// <summary>
    /// r of the monotonic workload: with these energies (|vᵀ tanh(·)| about 1) the choose probabilities lie around 0.05–0.3,
    /// where the peer's parallel form (cumulative product over 30 keys) stays far above its 1e-10 clip.
    /// </summary>
    public const float MonotonicEnergyBias = -2f;
    public float[] DContext { get; }
}
