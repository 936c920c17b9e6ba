using System;

namespace AttentionGen.Layers.Tests.Local;

/// <summary>
/// Luong et al. (2015) §3.2 local attention in plain double, written from the paper's equations, one (query, key) pair at a
/// time. Aligned position: local-m pₜ = t (aligned to the end: t + Tk − Tq), local-p pₜ = S · sigmoid(v_pᵀ tanh(W_p hₜ)),
/// S = Tk. Window: s ∈ [c − D, c + D] ∩ [0, Tk − 1] with c = pₜ (local-m) or the nearest integer ⌊pₜ + ½⌋ (local-p).
/// score(hₜ, h̄ₛ) is Luong's general (W_a hₜ)ᵀ h̄ₛ, dot hₜᵀ h̄ₛ, scaled dot hₜᵀ h̄ₛ / √Dk, or concat v_aᵀ tanh(W_a [hₜ; h̄ₛ]) with
/// W_a of [Units, Dim + KeyDim] applied to the concatenated vector as one matrix (its query columns first).
/// aₜ(s) = softmax over the allowed s of the window of score(hₜ, h̄ₛ), times exp(−(s − pₜ)² / (2σ²)), σ = D/2, for local-p;
/// cₜ = Σₛ aₜ(s) valueₛ. Weights are returned dense [B, Tq, Tk], zero outside the window.
/// </summary>
internal static class LocalReference
{
    public sealed record Config(int Dim, int KeyDim, int ValueDim, int Window, string Score, bool Predictive, int PredictorUnits, int Units = 0);

    public static (double[] Context, double[] Weights, double[] Positions) Forward(
        Config config, int batch, int tq, int tk, double[]? scoreWeight, double[]? predictorWeight, double[]? predictorVector,
        double[] query, double[] keys, double[] values, Func<int, int, int, bool> allowed, double[]? scoreVector = null)
    {
        var (dim, keyDim, valueDim, window, score, predictive, units, scoreUnits) = config;
        var context = new double[batch * tq * valueDim];
        var weights = new double[batch * tq * tk];
        var positions = new double[batch * tq];
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < tq; t++)
            {
                double[] h = new double[dim];
                Array.Copy(query, (b * tq + t) * dim, h, 0, dim);

                double p;
                int center;
                if (predictive)
                {
                    double u = 0;
                    for (int r = 0; r < units; r++)
                    {
                        double pre = 0;
                        for (int d = 0; d < dim; d++) pre += predictorWeight![r * dim + d] * h[d];
                        u += predictorVector![r] * Math.Tanh(pre);
                    }
                    p = tk / (1 + Math.Exp(-u));
                    center = (int)Math.Floor(p + 0.5);
                }
                else
                {
                    center = t + tk - tq;
                    p = center;
                }
                positions[b * tq + t] = p;
                int lo = Math.Max(0, center - window), hi = Math.Min(tk - 1, center + window);

                var e = new double[tk];
                var inside = new bool[tk];
                double max = double.NegativeInfinity;
                for (int s = lo; s <= hi; s++)
                {
                    if (!allowed(b, t, s)) continue;
                    inside[s] = true;
                    if (score == "Concat")
                    {
                        // v_aᵀ tanh(W_a [hₜ; h̄ₛ]): the concatenation built explicitly, one row of W_a at a time.
                        double[] joined = new double[dim + keyDim];
                        Array.Copy(h, joined, dim);
                        Array.Copy(keys, (b * tk + s) * keyDim, joined, dim, keyDim);
                        double concat = 0;
                        for (int u = 0; u < scoreUnits; u++)
                        {
                            double pre = 0;
                            for (int d = 0; d < dim + keyDim; d++) pre += scoreWeight![u * (dim + keyDim) + d] * joined[d];
                            concat += scoreVector![u] * Math.Tanh(pre);
                        }
                        e[s] = concat;
                        max = Math.Max(max, e[s]);
                        continue;
                    }
                    double sum = 0;
                    for (int k = 0; k < keyDim; k++)
                    {
                        double key = keys[(b * tk + s) * keyDim + k];
                        double qk;
                        if (score == "General")
                        {
                            qk = 0;
                            for (int d = 0; d < dim; d++) qk += scoreWeight![k * dim + d] * h[d];
                        }
                        else
                        {
                            qk = h[k];
                        }
                        sum += qk * key;
                    }
                    e[s] = score == "ScaledDot" ? sum / Math.Sqrt(keyDim) : sum;
                    max = Math.Max(max, e[s]);
                }
                if (double.IsNegativeInfinity(max)) continue; // nothing allowed in the window: zero weights and context

                double total = 0;
                for (int s = lo; s <= hi; s++) if (inside[s]) total += Math.Exp(e[s] - max);
                double sigma = window / 2.0;
                for (int s = lo; s <= hi; s++)
                {
                    if (!inside[s]) continue;
                    double a = Math.Exp(e[s] - max) / total;
                    if (predictive) a *= Math.Exp(-(s - p) * (s - p) / (2 * sigma * sigma));
                    weights[(b * tq + t) * tk + s] = a;
                    for (int d = 0; d < valueDim; d++) context[(b * tq + t) * valueDim + d] += a * values[(b * tk + s) * valueDim + d];
                }
            }
        }
        return (context, weights, positions);
    }
}
