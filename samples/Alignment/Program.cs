using System;
using System.Linq;
using AttentionGen;

namespace Alignment;

/// <summary>
/// A decoder loop over a key sequence, the way a seq2seq translator calls attention: the keys (encoder states)
/// are projected once, then every decoder step attends with its own query and prints where it looked.
/// The encoder states are synthetic: key j carries a one-hot "position code" in its first dimensions, and the
/// query of step t asks for position t, so a trained aligner would look at the diagonal. Here the layer's
/// query and key projections are set so that the score rewards a matching position code; the printout shows
/// the alignment that results.
/// </summary>
public static class Program
{
    public static void Main()
    {
        const int sourceLength = 8;
        var aligner = new Aligner(seed: 1);
        int dim = Aligner.Dim, units = Aligner.Units;

        // W_q = W_k = 3·I on the position code, b = −4.5, v = 3: tanh(3qᵤ + 3kᵤ − 4.5) is only positive where both codes are
        // set, so eₜⱼ is largest where the query asks for position j.
        Array.Clear(aligner.QueryWeight.Value);
        Array.Clear(aligner.KeyWeight.Value);
        for (int u = 0; u < Math.Min(units, dim); u++)
        {
            aligner.QueryWeight.Value[u * dim + u] = 3f;
            aligner.KeyWeight.Value[u * dim + u] = 3f;
        }
        Array.Fill(aligner.ScoreVector.Value, 3f);
        Array.Fill(aligner.ScoreBias.Value, -4.5f);

        var random = new Random(7);
        float[] keys = new float[sourceLength * dim];
        for (int j = 0; j < sourceLength; j++)
        {
            for (int d = 0; d < dim; d++)
            {
                keys[j * dim + d] = (float)(random.NextDouble() - 0.5) * 0.1f;
            }
            keys[j * dim + j] += 1f;
        }

        float[] keyProjection = new float[sourceLength * units];
        aligner.ProjectKeys(batch: 1, keyLength: sourceLength, keys, keyProjection);

        float[] query = new float[dim];
        float[] context = new float[dim];
        float[] weights = new float[sourceLength];
        Console.WriteLine($"AdditiveAttention(Dim = {dim}) decoder loop over {sourceLength} keys; row t shows aₜⱼ (×100):");
        Console.WriteLine("step " + string.Concat(System.Linq.Enumerable.Range(0, sourceLength).Select(j => $"{"k" + j,5}")));
        for (int step = 0; step < sourceLength; step++)
        {
            Array.Clear(query);
            query[step] = 1f;
            aligner.ForwardWithKeyProjection(1, 1, sourceLength, query, keyProjection, keys, context, weights);
            Console.Write($"{step,4} ");
            for (int j = 0; j < sourceLength; j++)
            {
                Console.Write($"{weights[j] * 100,5:0}");
            }
            int best = Array.IndexOf(weights, weights.Max());
            Console.WriteLine(best == step ? "   ✓ on the diagonal" : $"   looked at k{best}");
        }

        // The same loop with scaled dot-product attention: the query asks for position t by its code (scaled so the
        // match stands out after the 1/√d).
        var dot = new DotAligner();
        Console.WriteLine();
        Console.WriteLine($"MultiplicativeAttention(Dim = {DotAligner.Dim}, Score = ScaledDot), all steps in one call; row t shows aₜⱼ (×100):");
        float[] queries = new float[sourceLength * dim];
        for (int step = 0; step < sourceLength; step++)
        {
            queries[step * dim + step] = 24f;
        }
        float[] contexts = new float[sourceLength * dim];
        float[] allWeights = new float[sourceLength * sourceLength];
        dot.Forward(1, sourceLength, sourceLength, queries, keys, default, contexts, allWeights);
        for (int step = 0; step < sourceLength; step++)
        {
            Console.Write($"{step,4} ");
            ReadOnlySpan<float> row = allWeights.AsSpan(step * sourceLength, sourceLength);
            for (int j = 0; j < sourceLength; j++)
            {
                Console.Write($"{row[j] * 100,5:0}");
            }
            int best = row.IndexOf(row.ToArray().Max());
            Console.WriteLine(best == step ? "   ✓ on the diagonal" : $"   looked at k{best}");
        }

        // Hard attention picks one source position per step: the same scores, one choice each.
        var hard = new HardAligner();
        int[] picks = new int[sourceLength];
        hard.Forward(1, sourceLength, sourceLength, queries, keys, default, contexts, default, default, picks);
        Console.WriteLine();
        Console.WriteLine("HardAttention(Score = ScaledDot, Argmax) picks, one per step: " + string.Join(" ", picks.Select(p => $"k{p}"))
            + (picks.Select((p, t) => p == t).All(x => x) ? "   ✓ on the diagonal" : "   looked at other keys"));

        // Static attention pools the whole source into one vector, weighting each position by uₜᵀ u_w.
        var pooling = new SourcePooling(seed: 3);
        float[] summary = new float[dim];
        float[] poolWeights = new float[sourceLength];
        pooling.Forward(1, sourceLength, keys, summary, poolWeights);
        Console.WriteLine();
        Console.WriteLine($"StaticAttention(Dim = {SourcePooling.Dim}, Units = {SourcePooling.Units}) pooling weights over the source (×100, untrained): "
            + string.Join(" ", poolWeights.Select(a => $"{a * 100:0}")) + $"  (sum {poolWeights.Sum():0.000})");

        // Structured self-attention: r = 3 hops, each its own distribution over the source; the penalty ‖AAᵀ − I‖²
        // measures how much they overlap (0 would be three disjoint one-hot rows).
        var embedding = new SourceEmbedding(seed: 5) { PenaltyCoefficient = 1f };
        float[] hops = new float[SourceEmbedding.Hops * dim];
        float[] hopWeights = new float[SourceEmbedding.Hops * sourceLength];
        float penalty = embedding.Forward(1, sourceLength, keys, hops, hopWeights);
        Console.WriteLine($"StructuredSelfAttention(Hops = {SourceEmbedding.Hops}) untrained, penalty ‖AAᵀ − I‖² = {penalty:0.000}:");
        for (int h = 0; h < SourceEmbedding.Hops; h++)
        {
            Console.WriteLine($"  hop {h}: " + string.Join(" ", hopWeights.Skip(h * sourceLength).Take(sourceLength).Select(a => $"{a * 100,3:0}")));
        }

        // Key-value attention reads the 32-dimensional keys as [key (16); value (16)] and attends over the previous
        // 3 steps only (the row shows weights for steps t−3, t−2, t−1; steps before the start get 0).
        var memory = new ShortMemory(seed: 2);
        float[] memoryOutput = new float[sourceLength * ShortMemory.Dim];
        float[] memoryWeights = new float[sourceLength * ShortMemory.Window];
        memory.Forward(1, sourceLength, keys, memoryOutput, memoryWeights);
        Console.WriteLine($"KeyValueAttention(Window = {ShortMemory.Window}) weights of steps t−3, t−2, t−1 (×100, untrained):");
        for (int t = 0; t < sourceLength; t++)
        {
            Console.WriteLine($"  t = {t}: " + string.Join(" ", memoryWeights.Skip(t * ShortMemory.Window).Take(ShortMemory.Window).Select(a => $"{a * 100,3:0}")));
        }

        // Local attention (Luong et al. 2015): each step scores only the 2D + 1 = 5 keys around its aligned position pₜ.
        // local-m takes pₜ = t; local-p predicts pₜ = S · sigmoid(v_pᵀ tanh(W_p hₜ)) (untrained here, so its guesses are
        // arbitrary) and multiplies the window's weights by a Gaussian around pₜ. Luong's concat score vₐᵀ tanh(Wₐ [hₜ; h̄ₛ]) works
        // inside the same window. A dot in the rows is a key outside the window.
        var monotonic = new MonotonicAligner();
        var predictive = new LocalAligner(seed: 4);
        var concat = new ConcatAligner(seed: 4);
        foreach ((string title, Action<float[], float[]> forward) in new (string, Action<float[], float[]>)[]
        {
            ($"LocalAttention(Window = {MonotonicAligner.Window}, Monotonic, ScaledDot)", (w, p) => monotonic.Forward(1, sourceLength, sourceLength, queries, keys, default, contexts, w, default, p)),
            ($"LocalAttention(Window = {LocalAligner.Window}, Predictive, ScaledDot), untrained predictor", (w, p) => predictive.Forward(1, sourceLength, sourceLength, queries, keys, default, contexts, w, default, p)),
            ($"LocalAttention(Window = {ConcatAligner.Window}, Monotonic, Concat, Units = {ConcatAligner.Units}), untrained", (w, p) => concat.Forward(1, sourceLength, sourceLength, queries, keys, default, contexts, w, default, p)),
        })
        {
            float[] localWeights = new float[sourceLength * sourceLength];
            float[] positions = new float[sourceLength];
            forward(localWeights, positions);
            Console.WriteLine();
            Console.WriteLine(title + "; row t shows pₜ and aₜⱼ (×100):");
            for (int t = 0; t < sourceLength; t++)
            {
                int center = (int)MathF.Floor(positions[t] + 0.5f);
                Console.Write($"{t,4}  p = {positions[t],4:0.0} ");
                for (int j = 0; j < sourceLength; j++)
                {
                    Console.Write(Math.Abs(j - center) <= MonotonicAligner.Window ? $"{localWeights[t * sourceLength + j] * 100,5:0}" : "    ·");
                }
                Console.WriteLine();
            }
        }

        // Multi-head causal self-attention over the source (query = keys = values), all positions in one call: each row
        // shows the weights averaged over the 4 heads, zero above the diagonal. Then the same sequence decoded token by token
        // through a key-value cache, which gives the same outputs.
        var selfAttention = new CausalSelfAttention(seed: 4);
        float[] selfOutput = new float[sourceLength * CausalSelfAttention.ModelDim];
        float[] selfWeights = new float[sourceLength * sourceLength];
        selfAttention.Forward(1, sourceLength, sourceLength, keys, keys, keys, selfOutput, selfWeights);
        Console.WriteLine();
        Console.WriteLine($"MultiHeadAttention(ModelDim = {CausalSelfAttention.ModelDim}, Heads = {CausalSelfAttention.Heads}, Causal) weights averaged over heads (×100, untrained):");
        for (int t = 0; t < sourceLength; t++)
        {
            Console.WriteLine($"  t = {t}: " + string.Join(" ", selfWeights.Skip(t * sourceLength).Take(sourceLength).Select(a => $"{a * 100,3:0}")));
        }
        var cache = new CausalSelfAttention.KeyValueCache(batch: 1);
        float[] stepOutput = new float[CausalSelfAttention.ModelDim];
        bool same = true;
        for (int t = 0; t < sourceLength; t++)
        {
            ReadOnlySpan<float> token = keys.AsSpan(t * dim, dim);
            selfAttention.Append(cache, 1, token, token);
            selfAttention.Forward(cache, 1, token, stepOutput);
            same &= stepOutput.AsSpan().SequenceEqual(selfOutput.AsSpan(t * dim, dim));
        }
        Console.WriteLine($"  decoding token by token through a KeyValueCache gives the same outputs: {same}");

        // Monotonic attention with the bilinear energy eₜⱼ = qₜᵀ W kⱼ + r, W = 12·I and r = −6: about +6 where the query asks
        // for key j's position code, −6 elsewhere. Step t asks for position t, but step 5 asks for position 2, behind the
        // pointer: the alignment cannot move back, no key ahead qualifies, and step 5 attends nothing — as does every later
        // step, since the alignment mass has run past the last key (the paper's and TF-Addons' semantics; soft rows show it
        // as mass that sums to far less than 1).
        var streaming = new StreamingAligner(seed: 3);
        Array.Clear(streaming.KeyWeight.Value);
        for (int d = 0; d < StreamingAligner.Dim; d++)
        {
            streaming.KeyWeight.Value[d * StreamingAligner.Dim + d] = 12f;
        }
        streaming.EnergyBias.Value[0] = -6f;
        float[] monotonicQueries = new float[sourceLength * dim];
        for (int step = 0; step < sourceLength; step++)
        {
            monotonicQueries[step * dim + (step == 5 ? 2 : step)] = 1f;
        }
        float[] monotonicContext = new float[sourceLength * dim];
        float[] alignment = new float[sourceLength * sourceLength];
        streaming.Forward(1, sourceLength, sourceLength, monotonicQueries, keys, default, monotonicContext, alignment);
        int[] hardPositions = new int[sourceLength];
        streaming.ForwardHard(1, sourceLength, sourceLength, monotonicQueries, keys, default, monotonicContext, hardPositions);
        Console.WriteLine();
        Console.WriteLine($"MonotonicAttention(Dim = {StreamingAligner.Dim}, Score = Multiplicative) soft alignment αₜⱼ (×100; rows sum to ≤ 100) and hard decoding:");
        for (int step = 0; step < sourceLength; step++)
        {
            float[] row = alignment.Skip(step * sourceLength).Take(sourceLength).ToArray();
            Console.WriteLine($"{step,4} " + string.Concat(row.Select(a => $"{a * 100,5:0}")) + $"   sum {row.Sum() * 100,3:0}   hard: {(hardPositions[step] < 0 ? "none" : $"k{hardPositions[step]}")}");
        }

        // The same decoding one step at a time, as a streaming decoder runs it: the pointer only moves forward.
        float[] streamingProjection = new float[sourceLength * StreamingAligner.Units];
        streaming.ProjectKeys(1, sourceLength, keys, streamingProjection);
        int[] pointer = { 0 };
        float[] stepContext = new float[dim];
        var trail = new System.Collections.Generic.List<int>();
        for (int step = 0; step < sourceLength; step++)
        {
            streaming.StepHard(1, sourceLength, monotonicQueries.AsSpan(step * dim, dim), streamingProjection, keys, pointer, stepContext);
            trail.Add(pointer[0]);
        }
        Console.WriteLine("  StepHard pointer, one step at a time: " + string.Join(" → ", trail.Select(p => p < 0 ? "none" : $"k{p}")));
    }
}

/// <summary>The attention layer: Bahdanau's additive attention over 32-dimensional states.</summary>
[AdditiveAttention(Dim = 32)]
public partial class Aligner;

/// <summary>Structured self-attention: several attention distributions (hops) over the same sequence, kept apart by a penalty.</summary>
[StructuredSelfAttention(Dim = 32, Units = 16, Hops = 3)]
public partial class SourceEmbedding;

/// <summary>Hard attention: the context is the single key chosen by argmax of the scaled dot-product weights.</summary>
[HardAttention(Dim = 32, Score = AttentionScore.ScaledDot)]
public partial class HardAligner;

/// <summary>Key-value attention: each state is [key; value]; each step looks back over the previous 3 steps.</summary>
[KeyValueAttention(Dim = 16, Window = 3)]
public partial class ShortMemory;

/// <summary>HAN attention pooling: one vector per sequence (used below to summarise the source).</summary>
[StaticAttention(Dim = 32, Units = 16)]
public partial class SourcePooling;

/// <summary>Multi-head causal self-attention (PyTorch nn.MultiheadAttention semantics), tiled with an online softmax.</summary>
[MultiHeadAttention(ModelDim = 32, Heads = 4, Causal = true)]
public partial class CausalSelfAttention;

/// <summary>The Transformer's scaled dot product over the same states (no parameters: eₜⱼ = qₜ·kⱼ/√32).</summary>
[MultiplicativeAttention(Dim = 32, Score = AttentionScore.ScaledDot)]
public partial class DotAligner;

/// <summary>Luong's local-m attention: each step t attends to the keys t − 2 … t + 2 with the scaled dot-product score.</summary>
[LocalAttention(Dim = 32, Window = 2, Alignment = LocalAlignment.Monotonic, Score = AttentionScore.ScaledDot)]
public partial class MonotonicAligner;

/// <summary>Luong's local-p attention: a learned aligned position pₜ per step, a window of 2 either side, and a Gaussian around pₜ.</summary>
[LocalAttention(Dim = 32, Window = 2, Score = AttentionScore.ScaledDot, PredictorUnits = 16)]
public partial class LocalAligner;

/// <summary>Luong's local-m attention with his concat score vₐᵀ tanh(Wₐ [hₜ; h̄ₛ]), Wₐ of [16, 32 + 32], inside the window.</summary>
[LocalAttention(Dim = 32, Window = 2, Alignment = LocalAlignment.Monotonic, Score = AttentionScore.Concat, Units = 16)]
public partial class ConcatAligner;

/// <summary>
/// Monotonic (forced-forward) attention: the alignment only moves forward over the source, so a streaming decoder can
/// attend in linear time (Raffel et al. 2017).
/// </summary>
[MonotonicAttention(Dim = 32, Score = MonotonicScore.Multiplicative)]
public partial class StreamingAligner;
