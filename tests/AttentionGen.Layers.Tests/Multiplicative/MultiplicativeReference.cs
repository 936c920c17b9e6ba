using System;

namespace AttentionGen.Layers.Tests.Multiplicative;

/// <summary>
/// Luong's multiplicative attention in plain double, from the equations: eᵢⱼ = g·(W qᵢ)ᵀ kⱼ (general), g·qᵢᵀ kⱼ (dot) or
/// g·qᵢᵀ kⱼ/√Dk (scaled); softmax over the allowed j (causal: j ≤ i + Tk − Tq); cᵢ = Σⱼ aᵢⱼ valueⱼ.
/// </summary>
internal static class MultiplicativeReference
{
    public static (double[] Context, double[] Weights) Forward(
        int batch, int tq, int tk, int dim, int keyDim, int valueDim, string score, double[]? w, double scale, bool causal,
        double[] query, double[] keys, double[] values, Func<int, int, int, bool> allowed)
    {
        var context = new double[batch * tq * valueDim];
        var weights = new double[batch * tq * tk];
        for (int b = 0; b < batch; b++)
        {
            for (int i = 0; i < tq; i++)
            {
                var q = new double[keyDim];
                for (int k = 0; k < keyDim; k++)
                {
                    if (score == "General")
                    {
                        for (int d = 0; d < dim; d++) q[k] += w![k * dim + d] * query[(b * tq + i) * dim + d];
                    }
                    else
                    {
                        q[k] = query[(b * tq + i) * dim + k];
                    }
                }
                var e = new double[tk];
                double max = double.NegativeInfinity;
                for (int j = 0; j < tk; j++)
                {
                    if (!allowed(b, i, j) || (causal && j > i + tk - tq))
                    {
                        e[j] = double.NegativeInfinity;
                        continue;
                    }
                    double dot = 0;
                    for (int k = 0; k < keyDim; k++) dot += q[k] * keys[(b * tk + j) * keyDim + k];
                    e[j] = scale * dot * (score == "ScaledDot" ? 1 / Math.Sqrt(keyDim) : 1);
                    max = Math.Max(max, e[j]);
                }
                if (double.IsNegativeInfinity(max)) continue;
                double sum = 0;
                for (int j = 0; j < tk; j++) sum += e[j] = double.IsNegativeInfinity(e[j]) ? 0 : Math.Exp(e[j] - max);
                for (int j = 0; j < tk; j++)
                {
                    double a = e[j] / sum;
                    weights[(b * tq + i) * tk + j] = a;
                    for (int d = 0; d < valueDim; d++) context[(b * tq + i) * valueDim + d] += a * values[(b * tk + j) * valueDim + d];
                }
            }
        }
        return (context, weights);
    }
}
