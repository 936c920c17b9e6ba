using System;

namespace AttentionGen.Benchmarks;

/// <summary>A benchmark workload of ../shared/bench/workloads.md: its shape and its nominal FLOP count.</summary>
public sealed record Workload(string Id, string Layer, int Batch, int QueryLength, int KeyLength, int Dim, int Units)
{
    /// <summary>Additive attention, the nominal count: 2·B·(Tq+Tk)·D·U + 4·B·Tq·Tk·U + 2·B·Tq·Tk·D (tanh, exp not counted).</summary>
    public double ForwardFlops => Layer == "pooling"
        ? 2.0 * Batch * QueryLength * Dim * Units + 2.0 * Batch * QueryLength * Units + 2.0 * Batch * QueryLength * Dim
        : Layer == "luong"
        ? 2.0 * Batch * QueryLength * Dim * Dim + 4.0 * Batch * QueryLength * KeyLength * Dim
        : 2.0 * Batch * (QueryLength + KeyLength) * Dim * Units + 4.0 * Batch * QueryLength * KeyLength * Units + 2.0 * Batch * QueryLength * KeyLength * Dim;

    /// <summary>A training step counts three times the forward.</summary>
    public double TrainingFlops => 3 * ForwardFlops;

    public static readonly Workload W0 = new("W0", "additive", 1, 1, 16, 32, 32);
    public static readonly Workload W1 = new("W1", "additive", 1, 1, 50, 256, 256);
    public static readonly Workload W2 = new("W2", "additive", 32, 20, 30, 128, 128);
    public static readonly Workload W3 = new("W3", "luong", 32, 20, 30, 256, 256);

    /// <summary>HAN pooling: QueryLength is the sequence length T; there are no separate keys.</summary>
    public static readonly Workload W4 = new("W4", "pooling", 64, 100, 0, 100, 100);

    public static Workload Get(string id) => id switch { "W0" => W0, "W1" => W1, "W2" => W2, "W3" => W3, "W4" => W4, _ => throw new ArgumentException($"unknown workload {id}", nameof(id)) };
}

/// <summary>The seeded inputs and parameters every implementation of a workload shares.</summary>
public sealed class AdditiveData
{
    public AdditiveData(Workload w, int seed = 1)
    {
        Workload = w;
        var random = new Random(seed);
        float[] Fill(int n, double scale) { var x = new float[n]; for (int i = 0; i < n; i++) x[i] = (float)((random.NextDouble() * 2 - 1) * scale); return x; }
        Query = Fill(w.Batch * w.QueryLength * w.Dim, 1);
        Keys = Fill(w.Batch * w.KeyLength * w.Dim, 1);
        double limit = Math.Sqrt(6.0 / (w.Dim + w.Units));
        QueryWeight = Fill(w.Units * w.Dim, limit);
        KeyWeight = Fill(w.Units * w.Dim, limit);
        Bias = Fill(w.Units, 0.1);
        ScoreVector = Fill(w.Units, Math.Sqrt(6.0 / (w.Units + 1)));
        DContext = new float[w.Layer == "pooling" ? w.Batch * w.Dim : w.Batch * w.QueryLength * w.Dim];
        Array.Fill(DContext, 1f); // context.sum().backward(), as the TorchSharp peer does
    }

    public Workload Workload { get; }
    public float[] Query { get; }
    public float[] Keys { get; }
    public float[] QueryWeight { get; }
    public float[] KeyWeight { get; }
    public float[] Bias { get; }
    public float[] ScoreVector { get; }
    public float[] DContext { get; }
}
