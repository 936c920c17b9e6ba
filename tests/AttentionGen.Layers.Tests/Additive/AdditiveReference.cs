using System;

namespace AttentionGen.Layers.Tests.Additive;

/// <summary>
/// Bahdanau's additive attention written plainly in double from the paper's equations, independently of the
/// generator: eᵢⱼ = vᵀ tanh(W_q qᵢ + W_k kⱼ + b), aᵢ = softmax over the allowed j, cᵢ = Σⱼ aᵢⱼ valueⱼ.
/// A query with no allowed key gets zero weights and a zero context.
/// </summary>
internal static class AdditiveReference
{
    public static (double[] Context, double[] Weights) Forward(
        int batch, int tq, int tk, int dim, int units, int valueDim,
        double[] wq, double[] wk, double[]? bias, double[] v,
        double[] query, double[] keys, double[] values, Func<int, int, int, bool> allowed)
    {
        var context = new double[batch * tq * valueDim];
        var weights = new double[batch * tq * tk];
        for (int b = 0; b < batch; b++)
        {
            for (int i = 0; i < tq; i++)
            {
                var scores = new double[tk];
                double max = double.NegativeInfinity;
                for (int j = 0; j < tk; j++)
                {
                    if (!allowed(b, i, j))
                    {
                        scores[j] = double.NegativeInfinity;
                        continue;
                    }
                    double e = 0;
                    for (int u = 0; u < units; u++)
                    {
                        double pre = bias is null ? 0 : bias[u];
                        for (int d = 0; d < dim; d++)
                        {
                            pre += wq[u * dim + d] * query[(b * tq + i) * dim + d];
                            pre += wk[u * dim + d] * keys[(b * tk + j) * dim + d];
                        }
                        e += v[u] * Math.Tanh(pre);
                    }
                    scores[j] = e;
                    max = Math.Max(max, e);
                }
                if (double.IsNegativeInfinity(max))
                {
                    continue; // fully masked: zeros
                }
                double sum = 0;
                for (int j = 0; j < tk; j++)
                {
                    scores[j] = double.IsNegativeInfinity(scores[j]) ? 0 : Math.Exp(scores[j] - max);
                    sum += scores[j];
                }
                for (int j = 0; j < tk; j++)
                {
                    double a = scores[j] / sum;
                    weights[(b * tq + i) * tk + j] = a;
                    for (int d = 0; d < valueDim; d++)
                    {
                        context[(b * tq + i) * valueDim + d] += a * values[(b * tk + j) * valueDim + d];
                    }
                }
            }
        }
        return (context, weights);
    }
}
