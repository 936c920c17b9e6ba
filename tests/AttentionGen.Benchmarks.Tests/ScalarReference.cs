using System;
using System.Collections.Generic;
using AttentionGen.Benchmarks;

namespace AttentionGen.Benchmarks.Tests;

/// <summary>
/// The workloads' math written out as plain scalar double loops, straight from ../shared/bench/workloads.md,
/// independent of the baselines under test. Inputs and parameters by the baselines' gradient names.
/// </summary>
internal static class ScalarReference
{
    /// <summary>The workload's inputs and parameters in double, by name.</summary>
    public static Dictionary<string, double[]> Inputs(WorkloadData data)
    {
        static double[] D(float[] x) => Array.ConvertAll(x, v => (double)v);
        return data.Workload.Layer switch
        {
            "additive" => new()
            {
                ["query"] = D(data.Query), ["keys"] = D(data.Keys), ["query_weight"] = D(data.QueryWeight),
                ["key_weight"] = D(data.KeyWeight), ["score_bias"] = D(data.Bias), ["score_vector"] = D(data.ScoreVector),
            },
            "monotonic" when data.Workload.Chunk > 0 => new()
            {
                ["query"] = D(data.Query), ["keys"] = D(data.Keys), ["query_weight"] = D(data.QueryWeight),
                ["key_weight"] = D(data.KeyWeight), ["score_bias"] = D(data.Bias), ["score_vector"] = D(data.ScoreVector),
                ["energy_bias"] = D(data.EnergyBias), ["chunk_query_weight"] = D(data.ChunkQueryWeight), ["chunk_key_weight"] = D(data.ChunkKeyWeight),
                ["chunk_score_bias"] = D(data.ChunkBias), ["chunk_score_vector"] = D(data.ChunkScoreVector),
            },
            "monotonic" => new()
            {
                ["query"] = D(data.Query), ["keys"] = D(data.Keys), ["query_weight"] = D(data.QueryWeight),
                ["key_weight"] = D(data.KeyWeight), ["score_bias"] = D(data.Bias), ["score_vector"] = D(data.ScoreVector),
                ["energy_bias"] = D(data.EnergyBias),
            },
            "luong" => new() { ["query"] = D(data.Query), ["keys"] = D(data.Keys), ["score_weight"] = D(data.QueryWeight) },
            "pooling" => new() { ["input"] = D(data.Query), ["weight"] = D(data.QueryWeight), ["bias"] = D(data.Bias), ["context_vector"] = D(data.ScoreVector) },
            "local" => new()
            {
                ["query"] = D(data.Query), ["keys"] = D(data.Keys), ["score_weight"] = D(data.QueryWeight),
                ["predictor_weight"] = D(data.KeyWeight), ["predictor_vector"] = D(data.ScoreVector),
            },
            "local-concat" => new()
            {
                ["query"] = D(data.Query), ["keys"] = D(data.Keys), ["score_weight"] = D(data.QueryWeight), ["score_vector"] = D(data.ConcatVector),
                ["predictor_weight"] = D(data.KeyWeight), ["predictor_vector"] = D(data.ScoreVector),
            },
            "keyvalue" => new()
            {
                ["input"] = D(data.Query), ["memory_weight"] = D(data.KeyWeight), ["query_weight"] = D(data.QueryWeight),
                ["score_vector"] = D(data.ScoreVector), ["context_weight"] = D(data.ContextWeight), ["input_weight"] = D(data.InputWeight),
            },
            "structured" => new() { ["input"] = D(data.Query), ["ws1"] = D(data.QueryWeight), ["ws2"] = D(data.HopWeight) },
            _ => new() { ["query"] = D(data.Query), ["keys"] = D(data.Keys), ["values"] = D(data.Values) },
        };
    }

    public static double[] Context(Workload w, IReadOnlyDictionary<string, double[]> x) => w.Layer switch
    {
        "additive" => Additive(w, x),
        "monotonic" => Monotonic(w, x),
        "luong" => Luong(w, x),
        "pooling" => Pooling(w, x),
        "local" or "local-concat" => Local(w, x),
        "keyvalue" => KeyValue(w, x),
        "structured" => Structured(w, x),
        _ => ScaledDot(w, x),
    };

    // Luong et al. 2015 §3.2, local-p with the general score: pₜ = S·sigmoid(v_p·tanh(W_p qₜ)), S = Tk; over
    // s ∈ [c − D, c + D] ∩ [0, Tk − 1], c = ⌊pₜ + ½⌋: aₜ(s) = softmax(eₜ)(s) · exp(−(s − pₜ)²/(2σ²)), σ = D/2,
    // eₜ(s) = (W_a qₜ)·kₛ, or with the concat score v_a·tanh(W_a [qₜ; kₛ]) (W_a [U, 2D]); cₜ = Σₛ aₜ(s) kₛ (keys are the values).
    // The predictor has U hidden units, and so does the concat score.
    private static double[] Local(Workload w, IReadOnlyDictionary<string, double[]> x)
    {
        int B = w.Batch, Tq = w.QueryLength, Tk = w.KeyLength, D = w.Dim, U = w.Units, half = w.Window;
        double[] q = x["query"], k = x["keys"], Wa = x["score_weight"], Wp = x["predictor_weight"], vp = x["predictor_vector"];
        double sigma = half / 2.0;
        var context = new double[B * Tq * D];
        for (int b = 0; b < B; b++)
        for (int t = 0; t < Tq; t++)
        {
            double u = 0;
            for (int r = 0; r < U; r++)
            {
                double pre = 0;
                for (int d = 0; d < D; d++) pre += Wp[r * D + d] * q[(b * Tq + t) * D + d];
                u += vp[r] * Math.Tanh(pre);
            }
            double p = Tk / (1 + Math.Exp(-u));
            int c = (int)Math.Floor(p + 0.5);
            int first = Math.Max(0, c - half), last = Math.Min(Tk - 1, c + half);
            var scores = new double[last - first + 1];
            for (int s = first; s <= last; s++)
            {
                if (w.Layer == "local-concat")
                {
                    double[] va = x["score_vector"];
                    for (int r = 0; r < U; r++)
                    {
                        double pre = 0;
                        for (int col = 0; col < D; col++) pre += Wa[r * 2 * D + col] * q[(b * Tq + t) * D + col] + Wa[r * 2 * D + D + col] * k[(b * Tk + s) * D + col];
                        scores[s - first] += va[r] * Math.Tanh(pre);
                    }
                    continue;
                }
                for (int r = 0; r < D; r++)
                for (int col = 0; col < D; col++)
                    scores[s - first] += Wa[r * D + col] * q[(b * Tq + t) * D + col] * k[(b * Tk + s) * D + r];
            }
            double[] a = Softmax(scores);
            for (int s = first; s <= last; s++) a[s - first] *= Math.Exp(-(s - p) * (s - p) / (2 * sigma * sigma));
            Mix(a, k, b * Tk + first, D, context, (b * Tq + t) * D);
        }
        return context;
    }

    // Daniluk et al. 2017, each step xₜ = [kₜ; vₜ]: over the L steps s before t (none before the start),
    // eₜ(s) = w·tanh(W^Y kₛ + W^h kₜ), rₜ = Σₛ softmax(eₜ)(s) vₛ (0 at t = 0), h*ₜ = tanh(W^r rₜ + W^x vₜ).
    private static double[] KeyValue(Workload w, IReadOnlyDictionary<string, double[]> x)
    {
        int B = w.Batch, T = w.QueryLength, D = w.Dim, L = w.Window;
        double[] input = x["input"], WY = x["memory_weight"], Wh = x["query_weight"], ws = x["score_vector"], Wr = x["context_weight"], Wx = x["input_weight"];
        double KeyAt(int b, int t, int d) => input[(b * T + t) * 2 * D + d];
        double ValueAt(int b, int t, int d) => input[(b * T + t) * 2 * D + D + d];
        var output = new double[B * T * D];
        for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
        {
            int first = Math.Max(0, t - L);
            var scores = new double[t - first];
            for (int s = first; s < t; s++)
            for (int r = 0; r < D; r++)
            {
                double pre = 0;
                for (int d = 0; d < D; d++) pre += WY[r * D + d] * KeyAt(b, s, d) + Wh[r * D + d] * KeyAt(b, t, d);
                scores[s - first] += ws[r] * Math.Tanh(pre);
            }
            double[] a = Softmax(scores);
            var read = new double[D];
            for (int s = first; s < t; s++)
            for (int d = 0; d < D; d++)
                read[d] += a[s - first] * ValueAt(b, s, d);
            for (int r = 0; r < D; r++)
            {
                double pre = 0;
                for (int d = 0; d < D; d++) pre += Wr[r * D + d] * read[d] + Wx[r * D + d] * ValueAt(b, t, d);
                output[(b * T + t) * D + r] = Math.Tanh(pre);
            }
        }
        return output;
    }

    // Lin et al. 2017, per sequence H [T, D]: A[i, t] = softmax over t of W_s2[i]·tanh(W_s1 hₜ), M[i] = Σₜ A[i, t] hₜ.
    private static double[] Structured(Workload w, IReadOnlyDictionary<string, double[]> x)
    {
        int B = w.Batch, T = w.QueryLength, D = w.Dim, U = w.Units, R = w.Hops;
        double[] h = x["input"], Ws1 = x["ws1"], Ws2 = x["ws2"];
        var embedding = new double[B * R * D];
        for (int b = 0; b < B; b++)
        {
            var hidden = new double[T * U];
            for (int t = 0; t < T; t++)
            for (int u = 0; u < U; u++)
            {
                double pre = 0;
                for (int d = 0; d < D; d++) pre += Ws1[u * D + d] * h[(b * T + t) * D + d];
                hidden[t * U + u] = Math.Tanh(pre);
            }
            for (int i = 0; i < R; i++)
            {
                var scores = new double[T];
                for (int t = 0; t < T; t++)
                for (int u = 0; u < U; u++)
                    scores[t] += Ws2[i * U + u] * hidden[t * U + u];
                Mix(Softmax(scores), h, b * T, D, embedding, (b * R + i) * D);
            }
        }
        return embedding;
    }

    // eᵢⱼ = v·tanh(Wq qᵢ + Wk kⱼ + b); keys are the values.
    private static double[] Additive(Workload w, IReadOnlyDictionary<string, double[]> x)
    {
        int B = w.Batch, Tq = w.QueryLength, Tk = w.KeyLength, D = w.Dim;
        double[] k = x["keys"];
        var context = new double[B * Tq * D];
        for (int b = 0; b < B; b++)
        for (int i = 0; i < Tq; i++)
        {
            var scores = new double[Tk];
            for (int j = 0; j < Tk; j++) scores[j] = AdditiveEnergy(w, x, "", b, i, j);
            Mix(Softmax(scores), k, b * Tk, D, context, (b * Tq + i) * D);
        }
        return context;
    }

    // Raffel et al.: pᵢⱼ = σ(v·tanh(Wq qᵢ + Wk kⱼ + b) + r), αᵢⱼ = pᵢⱼ Σₖ≤ⱼ αᵢ₋₁,ₖ Πₗ₌ₖ^{j−1}(1 − pᵢₗ) in its closed form,
    // α₀ = one-hot(0); keys are the values.
    private static double[] Monotonic(Workload w, IReadOnlyDictionary<string, double[]> x)
    {
        int B = w.Batch, Tq = w.QueryLength, Tk = w.KeyLength, D = w.Dim;
        double[] k = x["keys"];
        double r = x["energy_bias"][0];
        var context = new double[B * Tq * D];
        for (int b = 0; b < B; b++)
        {
            var previous = new double[Tk];
            previous[0] = 1;
            for (int i = 0; i < Tq; i++)
            {
                var p = new double[Tk];
                for (int j = 0; j < Tk; j++) p[j] = 1 / (1 + Math.Exp(-(r + AdditiveEnergy(w, x, "", b, i, j))));
                var alignment = new double[Tk];
                for (int j = 0; j < Tk; j++)
                {
                    double sum = 0;
                    for (int m = 0; m <= j; m++)
                    {
                        double product = 1;
                        for (int l = m; l < j; l++) product *= 1 - p[l];
                        sum += previous[m] * product;
                    }
                    alignment[j] = p[j] * sum;
                }
                Mix(w.Chunk > 0 ? ChunkWeights(w, x, b, i, alignment) : alignment, k, b * Tk, D, context, (b * Tq + i) * D);
                previous = alignment;
            }
        }
        return context;
    }

    // MoChA (Chiu & Raffel 2018, the expected chunkwise weights): uᵢⱼ = v_c·tanh(W_cq qᵢ + W_ck kⱼ + b_c), and
    // βᵢⱼ = Σₖ₌ⱼ^{j+w−1} αᵢₖ exp(uᵢⱼ) / Σₗ₌ₖ₋w₊₁^{k} exp(uᵢₗ), with k < Tk and l ≥ 0 (no shift: the test energies are small).
    private static double[] ChunkWeights(Workload w, IReadOnlyDictionary<string, double[]> x, int b, int i, double[] alignment)
    {
        int Tk = w.KeyLength;
        var expU = new double[Tk];
        for (int j = 0; j < Tk; j++) expU[j] = Math.Exp(AdditiveEnergy(w, x, "chunk_", b, i, j));
        var beta = new double[Tk];
        for (int j = 0; j < Tk; j++)
        {
            for (int c = j; c <= Math.Min(j + w.Chunk - 1, Tk - 1); c++)
            {
                double denominator = 0;
                for (int l = Math.Max(0, c - w.Chunk + 1); l <= c; l++) denominator += expU[l];
                beta[j] += alignment[c] * expU[j] / denominator;
            }
        }
        return beta;
    }

    // v·tanh(W_q qᵢ + W_k kⱼ + b) for query i and key j of batch row b, with the parameters named prefix + "query_weight", …
    private static double AdditiveEnergy(Workload w, IReadOnlyDictionary<string, double[]> x, string prefix, int b, int i, int j)
    {
        int Tq = w.QueryLength, Tk = w.KeyLength, D = w.Dim, U = w.Units;
        double[] q = x["query"], k = x["keys"], wq = x[prefix + "query_weight"], wk = x[prefix + "key_weight"], bias = x[prefix + "score_bias"], v = x[prefix + "score_vector"];
        double e = 0;
        for (int u = 0; u < U; u++)
        {
            double pre = bias[u];
            for (int d = 0; d < D; d++) pre += wq[u * D + d] * q[(b * Tq + i) * D + d] + wk[u * D + d] * k[(b * Tk + j) * D + d];
            e += v[u] * Math.Tanh(pre);
        }
        return e;
    }

    // eᵢⱼ = (W qᵢ)·kⱼ, W [D, D]; keys are the values.
    private static double[] Luong(Workload w, IReadOnlyDictionary<string, double[]> x)
    {
        int B = w.Batch, Tq = w.QueryLength, Tk = w.KeyLength, D = w.Dim;
        double[] q = x["query"], k = x["keys"], W = x["score_weight"];
        var context = new double[B * Tq * D];
        for (int b = 0; b < B; b++)
        for (int i = 0; i < Tq; i++)
        {
            var scores = new double[Tk];
            for (int j = 0; j < Tk; j++)
            for (int r = 0; r < D; r++)
            for (int c = 0; c < D; c++)
                scores[j] += W[r * D + c] * q[(b * Tq + i) * D + c] * k[(b * Tk + j) * D + r];
            Mix(Softmax(scores), k, b * Tk, D, context, (b * Tq + i) * D);
        }
        return context;
    }

    // HAN: αₜ = softmax over t of u_w·tanh(W hₜ + b), s = Σₜ αₜ hₜ.
    private static double[] Pooling(Workload w, IReadOnlyDictionary<string, double[]> x)
    {
        int B = w.Batch, T = w.QueryLength, D = w.Dim, U = w.Units;
        double[] h = x["input"], W = x["weight"], bias = x["bias"], uw = x["context_vector"];
        var context = new double[B * D];
        for (int b = 0; b < B; b++)
        {
            var scores = new double[T];
            for (int t = 0; t < T; t++)
            for (int u = 0; u < U; u++)
            {
                double pre = bias[u];
                for (int d = 0; d < D; d++) pre += W[u * D + d] * h[(b * T + t) * D + d];
                scores[t] += uw[u] * Math.Tanh(pre);
            }
            Mix(Softmax(scores), h, b * T, D, context, b * D);
        }
        return context;
    }

    // Per (batch, head): eᵢⱼ = qᵢ·kⱼ/√d over j ≤ i when causal, cᵢ = Σⱼ aᵢⱼ vⱼ.
    private static double[] ScaledDot(Workload w, IReadOnlyDictionary<string, double[]> x)
    {
        int R = w.Rows, Tq = w.QueryLength, Tk = w.KeyLength, D = w.Dim;
        double[] q = x["query"], k = x["keys"], v = x["values"];
        var context = new double[R * Tq * D];
        for (int r = 0; r < R; r++)
        for (int i = 0; i < Tq; i++)
        {
            int visible = w.Causal ? i + 1 : Tk;
            var scores = new double[visible];
            for (int j = 0; j < visible; j++)
            {
                for (int d = 0; d < D; d++) scores[j] += q[(r * Tq + i) * D + d] * k[(r * Tk + j) * D + d];
                scores[j] /= Math.Sqrt(D);
            }
            Mix(Softmax(scores), v, r * Tk, D, context, (r * Tq + i) * D);
        }
        return context;
    }

    private static double[] Softmax(double[] scores)
    {
        double max = double.NegativeInfinity, sum = 0;
        foreach (double s in scores) max = Math.Max(max, s);
        var a = new double[scores.Length];
        for (int j = 0; j < a.Length; j++) sum += a[j] = Math.Exp(scores[j] - max);
        for (int j = 0; j < a.Length; j++) a[j] /= sum;
        return a;
    }

    // context[at..at+D] = Σⱼ aⱼ rows[first + j]
    private static void Mix(double[] a, double[] rows, int first, int D, double[] context, int at)
    {
        for (int j = 0; j < a.Length; j++)
        for (int d = 0; d < D; d++)
            context[at + d] += a[j] * rows[(first + j) * D + d];
    }
}
