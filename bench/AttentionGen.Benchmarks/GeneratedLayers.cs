using System;
using System.Collections.Generic;

namespace AttentionGen.Benchmarks;

// The generated layers of the workloads. Extension point: a new generated layer for a workload is one declaration
// here and one case in GeneratedLayer's constructor; the benchmarks, the quick mode and the summary table pick it up.
[AdditiveAttention(Dim = 32)] public partial class AdditiveW0;
[AdditiveAttention(Dim = 256)] public partial class AdditiveW1;
[AdditiveAttention(Dim = 128)] public partial class AdditiveW2;
[MultiplicativeAttention(Dim = 256, Score = AttentionScore.General)] public partial class LuongW3;
[StaticAttention(Dim = 100, Units = 100)] public partial class PoolingW4;

// W5/W6: the attention core of multi-head layers with 8 heads of 64 (no projections), as scaled_dot_product_attention
// on [B, H, T, d]: the layers' ScaledDotProductAttention entry points (the tiled online-softmax kernel).
[MultiHeadAttention(ModelDim = 512, Heads = 8, Causal = true)] public partial class MultiHeadCausalW5;
[MultiHeadAttention(ModelDim = 512, Heads = 8)] public partial class MultiHeadW6;

// W7: Luong local-p, general score, D = 5 (PredictorUnits defaults to Dim = the workload's Units).
[LocalAttention(Dim = 256, Window = 5)] public partial class LocalW7;

// W8: monotonic attention, the additive energy, the recursive (default) form.
[MonotonicAttention(Dim = 128)] public partial class MonotonicW8;

// W13: MoChA, monotonic chunkwise attention with chunks of w = 2 keys (the additive energies, the recursive form).
[MonotonicAttention(Dim = 128, ChunkSize = 2)] public partial class MochaW13;

// W9: key-value attention over the previous 5 steps, whole sequences (Split = KeyValue, the default).
[KeyValueAttention(Dim = 128, Window = 5)] public partial class KeyValueW9;

// W10: structured self-attention, dₐ = 128, 4 hops; PenaltyCoefficient stays 0 (the default), so no penalty is computed.
[StructuredSelfAttention(Dim = 256, Units = 128, Hops = 4)] public partial class StructuredW10;

// W11: W7's local-p with the concat score (Units = 256; PredictorUnits defaults to Dim = 256 = the workload's Units).
// W12 runs this layer too, as a decoder step (one query per call, the keys projected once).
[LocalAttention(Dim = 256, Window = 5, Score = AttentionScore.Concat, Units = 256)] public partial class LocalConcatW11;

/// <summary>The generated layer of a workload, with the workload's parameters, behind plain delegates.</summary>
public sealed class GeneratedLayer
{
    private readonly Dictionary<string, float[]> _gradients = new();

    public GeneratedLayer(WorkloadData data, int threads)
    {
        Workload w = data.Workload;
        int b = w.Rows, tq = w.QueryLength, tk = w.KeyLength;
        Context = new float[w.ContextLength];
        var dQuery = new float[data.Query.Length];
        var dKeys = new float[data.Keys.Length];
        var dValues = new float[data.Values.Length];
        _gradients[w.SingleInput ? "input" : "query"] = dQuery;
        if (!w.SingleInput) _gradients["keys"] = dKeys;
        if (w.Layer == "sdpa") _gradients["values"] = dValues;
        if (w.Layer == "local" && (w.Dim != LocalW7.Dim || w.Units != LocalW7.PredictorUnits || w.Window != LocalW7.Window))
        {
            throw new ArgumentException($"workload {w.Id} does not have LocalW7's dimensions", nameof(data));
        }
        switch (w.Id)
        {
            case "W0":
            {
                var layer = SetAdditive(new AdditiveW0 { MaxDegreeOfParallelism = threads }, data);
                var tape = new AdditiveW0.Tape();
                Forward = () => layer.Forward(b, tq, tk, data.Query, data.Keys, default, Context);
                var keyProjection = new float[b * tk * AdditiveW0.Units];
                layer.ProjectKeys(b, tk, data.Keys, keyProjection); // once per sentence
                DecoderStep = () => layer.ForwardWithKeyProjection(b, tq, tk, data.Query, keyProjection, data.Keys, Context);
                Training = () => { layer.Forward(tape, b, tq, tk, data.Query, data.Keys, default, Context); layer.Backward(tape, data.Query, data.Keys, default, data.DContext, dQuery, dKeys); };
                Layer = layer;
                break;
            }
            case "W1":
            {
                var layer = SetAdditive(new AdditiveW1 { MaxDegreeOfParallelism = threads }, data);
                var tape = new AdditiveW1.Tape();
                Forward = () => layer.Forward(b, tq, tk, data.Query, data.Keys, default, Context);
                var keyProjection = new float[b * tk * AdditiveW1.Units];
                layer.ProjectKeys(b, tk, data.Keys, keyProjection); // once per sentence
                DecoderStep = () => layer.ForwardWithKeyProjection(b, tq, tk, data.Query, keyProjection, data.Keys, Context);
                Training = () => { layer.Forward(tape, b, tq, tk, data.Query, data.Keys, default, Context); layer.Backward(tape, data.Query, data.Keys, default, data.DContext, dQuery, dKeys); };
                Layer = layer;
                break;
            }
            case "W2":
            {
                var layer = SetAdditive(new AdditiveW2 { MaxDegreeOfParallelism = threads }, data);
                var tape = new AdditiveW2.Tape();
                Forward = () => layer.Forward(b, tq, tk, data.Query, data.Keys, default, Context);
                var keyProjection = new float[b * tk * AdditiveW2.Units];
                layer.ProjectKeys(b, tk, data.Keys, keyProjection); // once per sentence
                DecoderStep = () => layer.ForwardWithKeyProjection(b, tq, tk, data.Query, keyProjection, data.Keys, Context);
                Training = () => { layer.Forward(tape, b, tq, tk, data.Query, data.Keys, default, Context); layer.Backward(tape, data.Query, data.Keys, default, data.DContext, dQuery, dKeys); };
                Layer = layer;
                break;
            }
            case "W3":
            {
                var layer = new LuongW3 { MaxDegreeOfParallelism = threads };
                data.QueryWeight.CopyTo(layer.ScoreWeight.Value, 0); // W [KeyDim, Dim]
                var tape = new LuongW3.Tape();
                Forward = () => layer.Forward(b, tq, tk, data.Query, data.Keys, default, Context);
                Training = () => { layer.Forward(tape, b, tq, tk, data.Query, data.Keys, default, Context); layer.Backward(tape, data.Query, data.Keys, default, data.DContext, dQuery, dKeys); };
                Layer = layer;
                break;
            }
            case "W4":
            {
                var layer = new PoolingW4 { MaxDegreeOfParallelism = threads };
                data.QueryWeight.CopyTo(layer.Weight.Value, 0);
                data.Bias.CopyTo(layer.Bias.Value, 0);
                data.ScoreVector.CopyTo(layer.ContextVector.Value, 0);
                var tape = new PoolingW4.Tape();
                Forward = () => layer.Forward(w.Batch, tq, data.Query, Context);
                Training = () => { layer.Forward(tape, w.Batch, tq, data.Query, Context); layer.Backward(tape, data.Query, data.DContext, dQuery); };
                Layer = layer;
                break;
            }
            case "W5":
            {
                var layer = new MultiHeadCausalW5 { MaxDegreeOfParallelism = threads };
                var tape = new MultiHeadCausalW5.Tape();
                Forward = () => layer.ScaledDotProductAttention(w.Batch, tq, tk, data.Query, data.Keys, data.Values, Context);
                Training = () => { layer.ScaledDotProductAttention(tape, w.Batch, tq, tk, data.Query, data.Keys, data.Values, Context); layer.ScaledDotProductAttentionBackward(tape, data.DContext, dQuery, dKeys, dValues); };
                Layer = layer;
                break;
            }
            case "W6":
            {
                var layer = new MultiHeadW6 { MaxDegreeOfParallelism = threads };
                var tape = new MultiHeadW6.Tape();
                Forward = () => layer.ScaledDotProductAttention(w.Batch, tq, tk, data.Query, data.Keys, data.Values, Context);
                Training = () => { layer.ScaledDotProductAttention(tape, w.Batch, tq, tk, data.Query, data.Keys, data.Values, Context); layer.ScaledDotProductAttentionBackward(tape, data.DContext, dQuery, dKeys, dValues); };
                Layer = layer;
                break;
            }
            case "W7":
            {
                var layer = new LocalW7 { MaxDegreeOfParallelism = threads };
                data.QueryWeight.CopyTo(layer.ScoreWeight.Value, 0);    // W_a [KeyDim, Dim]
                data.KeyWeight.CopyTo(layer.PredictorWeight.Value, 0);  // W_p [PredictorUnits, Dim]
                data.ScoreVector.CopyTo(layer.PredictorVector.Value, 0); // v_p [PredictorUnits]
                var tape = new LocalW7.Tape();
                Forward = () => layer.Forward(b, tq, tk, data.Query, data.Keys, default, Context);
                Training = () => { layer.Forward(tape, b, tq, tk, data.Query, data.Keys, default, Context); layer.Backward(tape, data.Query, data.Keys, default, data.DContext, dQuery, dKeys); };
                Layer = layer;
                break;
            }
            case "W8":
            {
                var layer = SetAdditive(new MonotonicW8 { MaxDegreeOfParallelism = threads }, data);
                var tape = new MonotonicW8.Tape();
                Forward = () => layer.Forward(b, tq, tk, data.Query, data.Keys, default, Context);
                Training = () => { layer.Forward(tape, b, tq, tk, data.Query, data.Keys, default, Context); layer.Backward(tape, data.Query, data.Keys, default, data.DContext, dQuery, dKeys); };
                Layer = layer;
                break;
            }
            case "W13":
            {
                var layer = SetAdditive(new MochaW13 { MaxDegreeOfParallelism = threads }, data);
                var tape = new MochaW13.Tape();
                Forward = () => layer.Forward(b, tq, tk, data.Query, data.Keys, default, Context);
                Training = () => { layer.Forward(tape, b, tq, tk, data.Query, data.Keys, default, Context); layer.Backward(tape, data.Query, data.Keys, default, data.DContext, dQuery, dKeys); };
                Layer = layer;
                break;
            }
            case "W9":
            {
                var layer = SetParameters(new KeyValueW9 { MaxDegreeOfParallelism = threads }, new()
                {
                    ["memory_weight"] = data.KeyWeight, ["query_weight"] = data.QueryWeight, ["score_vector"] = data.ScoreVector,
                    ["context_weight"] = data.ContextWeight, ["input_weight"] = data.InputWeight,
                });
                var tape = new KeyValueW9.Tape();
                Forward = () => layer.Forward(w.Batch, tq, data.Query, Context);
                Training = () => { layer.Forward(tape, w.Batch, tq, data.Query, Context); layer.Backward(tape, data.Query, data.DContext, dQuery); };
                Layer = layer;
                break;
            }
            case "W10":
            {
                var layer = SetParameters(new StructuredW10 { MaxDegreeOfParallelism = threads }, new() { ["ws1"] = data.QueryWeight, ["ws2"] = data.HopWeight });
                var tape = new StructuredW10.Tape();
                Forward = () => layer.Forward(w.Batch, tq, data.Query, Context);
                Training = () => { layer.Forward(tape, w.Batch, tq, data.Query, Context); layer.Backward(tape, data.Query, data.DContext, dQuery); };
                Layer = layer;
                break;
            }
            case "W11":
            case "W12": // W11's layer as a decoder step: one query per call (Tq = 1)
            {
                var layer = SetParameters(new LocalConcatW11 { MaxDegreeOfParallelism = threads }, new()
                {
                    ["score_weight"] = data.QueryWeight, ["score_vector"] = data.ConcatVector,
                    ["predictor_weight"] = data.KeyWeight, ["predictor_vector"] = data.ScoreVector,
                });
                var tape = new LocalConcatW11.Tape();
                Forward = () => layer.Forward(b, tq, tk, data.Query, data.Keys, default, Context);
                var keyProjection = new float[b * tk * LocalConcatW11.Units];
                layer.ProjectKeys(b, tk, data.Keys, keyProjection); // once per source sequence
                DecoderStep = () => layer.ForwardWithKeyProjection(b, tq, tk, data.Query, keyProjection, data.Keys, Context); // the keys are the values
                Training = () => { layer.Forward(tape, b, tq, tk, data.Query, data.Keys, default, Context); layer.Backward(tape, data.Query, data.Keys, default, data.DContext, dQuery, dKeys); };
                Layer = layer;
                break;
            }
            default:
                throw new ArgumentException($"no generated layer for workload {w.Id}", nameof(data));
        }
        // The sdpa workloads run the multi-head layers' core alone: their projection parameters take no part.
        foreach (Parameter<float> parameter in w.Layer == "sdpa" ? Array.Empty<Parameter<float>>() : Layer.Parameters)
        {
            _gradients[parameter.Name] = parameter.Gradient;
        }
    }

    /// <summary>Inference forward into <see cref="Context"/>.</summary>
    public Action Forward { get; }

    /// <summary>A training step: forward with a tape, backward with ones as the upstream gradient.</summary>
    public Action Training { get; }

    /// <summary>
    /// Additive and local-concat workloads only (else null): the inference forward as a decoder step makes it, from the key
    /// projection computed once per sentence at setup (<c>ProjectKeys</c>, then <c>ForwardWithKeyProjection</c> per step).
    /// </summary>
    public Action? DecoderStep { get; }

    public IAttentionLayer<float> Layer { get; }

    public float[] Context { get; }

    /// <summary>Input gradients of the last training step and the parameters' gradients, by the baselines' names.</summary>
    public IReadOnlyDictionary<string, float[]> Gradients => _gradients;

    /// <summary>Parameter gradients accumulate across steps (as in the runtime); a check starts from zero.</summary>
    public void ZeroGradients()
    {
        foreach (Parameter<float> parameter in Layer.Parameters) parameter.ZeroGradient();
    }

    // The additive parameters by name: QueryWeight [U, D], KeyWeight [U, D], ScoreBias [U], ScoreVector [U] (and r for monotonic,
    // and MoChA's chunk energy: W_cq, W_ck, b_c, v_c).
    private static TLayer SetAdditive<TLayer>(TLayer layer, WorkloadData data) where TLayer : IAttentionLayer<float>
        => SetParameters(layer, new()
        {
            ["query_weight"] = data.QueryWeight, ["key_weight"] = data.KeyWeight, ["score_bias"] = data.Bias,
            ["score_vector"] = data.ScoreVector, ["energy_bias"] = data.EnergyBias,
            ["chunk_query_weight"] = data.ChunkQueryWeight, ["chunk_key_weight"] = data.ChunkKeyWeight,
            ["chunk_score_bias"] = data.ChunkBias, ["chunk_score_vector"] = data.ChunkScoreVector,
        });

    // Copies each of the layer's parameters from the workload's array under its saved name; a name not in the map is a mistake here.
    private static TLayer SetParameters<TLayer>(TLayer layer, Dictionary<string, float[]> sources) where TLayer : IAttentionLayer<float>
    {
        foreach (Parameter<float> parameter in layer.Parameters)
        {
            if (!sources.TryGetValue(parameter.Name, out float[]? source) || source.Length != parameter.Value.Length)
            {
                throw new InvalidOperationException($"{typeof(TLayer).Name}: no workload array of {parameter.Value.Length} elements for parameter {parameter.Name}");
            }
            source.CopyTo(parameter.Value, 0);
        }
        return layer;
    }
}
