using System;
using System.Linq;

namespace AttentionGen.Layers.Tests.Monotonic;

/// <summary>
/// Raffel et al. 2017 in plain double, written from the paper's equations and not from the generated code: energies
/// from the parameters, pᵢⱼ = σ(eᵢⱼ + r), and the expected alignment from its closed form
/// αᵢⱼ = pᵢⱼ Σₖ₍ₖ≤ⱼ₎ αᵢ₋₁,ₖ Πₗ₌ₖ^{j−1} (1 − pᵢₗ) (quadratic in Tk, no recursion), α₀ = one-hot(0); hard decoding by the
/// paper's rule, scanning from the previous position to the first pᵢⱼ ≥ 0.5.
/// </summary>
internal sealed class MonotonicReference
{
    public required int Dim { get; init; }
    public required int Units { get; init; }
    public required int ValueDim { get; init; }
    public required bool Additive { get; init; }
    public double[] QueryWeight { get; init; } = Array.Empty<double>();
    public required double[] KeyWeight { get; init; }
    public double[] ScoreBias { get; init; } = Array.Empty<double>();
    public double[] ScoreVector { get; init; } = Array.Empty<double>();
    public required double EnergyBias { get; init; }

    /// <summary>g of the weight-normalised energy, or null for the plain one.</summary>
    public double? ScoreScale { get; init; }

    public static MonotonicReference From<T>(IAttentionLayer<T> layer) where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        double[] P(string name)
        {
            foreach (Parameter<T> p in layer.Parameters)
            {
                if (p.Name == name) return TestData.ToDouble(p.Value);
            }
            return Array.Empty<double>();
        }
        Type type = layer.GetType();
        int Constant(string name) => (int)type.GetField(name)!.GetRawConstantValue()!;
        bool additive = P("score_vector").Length > 0;
        return new MonotonicReference
        {
            Dim = Constant("Dim"), Units = Constant("Units"), ValueDim = Constant("ValueDim"), Additive = additive,
            QueryWeight = P("query_weight"), KeyWeight = P("key_weight"), ScoreBias = P("score_bias"), ScoreVector = P("score_vector"),
            EnergyBias = P("energy_bias")[0],
            ScoreScale = P("score_scale") is { Length: 1 } g ? g[0] : null,
        };
    }

    /// <summary>eᵢⱼ + r for one query vector and one key vector.</summary>
    public double Energy(ReadOnlySpan<double> q, ReadOnlySpan<double> k)
    {
        double e = 0;
        if (Additive)
        {
            double norm = Math.Sqrt(ScoreVector.Sum(x => x * x));
            double factor = ScoreScale is double g ? g / norm : 1; // the paper's g vᵀ/‖v‖
            for (int u = 0; u < Units; u++)
            {
                double pre = ScoreBias[u];
                for (int d = 0; d < Dim; d++) pre += QueryWeight[u * Dim + d] * q[d] + KeyWeight[u * Dim + d] * k[d];
                e += factor * ScoreVector[u] * Math.Tanh(pre);
            }
        }
        else
        {
            for (int o = 0; o < Dim; o++)
                for (int c = 0; c < Dim; c++) e += q[o] * KeyWeight[o * Dim + c] * k[c];
        }
        return e + EnergyBias;
    }

    public static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    /// <summary>The soft forward: α [B, Tq, Tk] and c [B, Tq, Dv]; <paramref name="allowed"/>(b, i, j) false gives pᵢⱼ = 0.</summary>
    public (double[] Weights, double[] Context) Soft(int batch, int tq, int tk, double[] query, double[] keys, double[] values, Func<int, int, int, bool>? allowed = null)
    {
        var weights = new double[batch * tq * tk];
        var context = new double[batch * tq * ValueDim];
        for (int b = 0; b < batch; b++)
        {
            var previous = new double[tk];
            previous[0] = 1;
            for (int i = 0; i < tq; i++)
            {
                var p = new double[tk];
                for (int j = 0; j < tk; j++)
                {
                    p[j] = allowed is null || allowed(b, i, j)
                        ? Sigmoid(Energy(query.AsSpan((b * tq + i) * Dim, Dim), keys.AsSpan((b * tk + j) * Dim, Dim)))
                        : 0;
                }
                var alignment = new double[tk];
                for (int j = 0; j < tk; j++)
                {
                    double sum = 0;
                    for (int k = 0; k <= j; k++)
                    {
                        double product = 1;
                        for (int l = k; l < j; l++) product *= 1 - p[l];
                        sum += previous[k] * product;
                    }
                    alignment[j] = p[j] * sum;
                    weights[(b * tq + i) * tk + j] = alignment[j];
                    for (int v = 0; v < ValueDim; v++) context[(b * tq + i) * ValueDim + v] += alignment[j] * values[(b * tk + j) * ValueDim + v];
                }
                previous = alignment;
            }
        }
        return (weights, context);
    }

    /// <summary>Hard decoding by the paper's rule: positions [B, Tq] (−1 = none) and c [B, Tq, Dv].</summary>
    public (int[] Positions, double[] Context) Hard(int batch, int tq, int tk, double[] query, double[] keys, double[] values, Func<int, int, int, bool>? allowed = null)
    {
        var positions = new int[batch * tq];
        var context = new double[batch * tq * ValueDim];
        for (int b = 0; b < batch; b++)
        {
            int t = 0;
            for (int i = 0; i < tq; i++)
            {
                int chosen = -1;
                if (t >= 0)
                {
                    for (int j = t; j < tk; j++)
                    {
                        if ((allowed is null || allowed(b, i, j)) && Sigmoid(Energy(query.AsSpan((b * tq + i) * Dim, Dim), keys.AsSpan((b * tk + j) * Dim, Dim))) >= 0.5)
                        {
                            chosen = j;
                            break;
                        }
                    }
                }
                t = chosen;
                positions[b * tq + i] = chosen;
                if (chosen >= 0)
                {
                    for (int v = 0; v < ValueDim; v++) context[(b * tq + i) * ValueDim + v] = values[(b * tk + chosen) * ValueDim + v];
                }
            }
        }
        return (positions, context);
    }
}
