using System;

namespace AttentionGen.Benchmarks;

[AdditiveAttention(Dim = 32)] public partial class AdditiveW0;
[AdditiveAttention(Dim = 256)] public partial class AdditiveW1;
[AdditiveAttention(Dim = 128)] public partial class AdditiveW2;
[MultiplicativeAttention(Dim = 256, Score = AttentionScore.General)] public partial class LuongW3;
[StaticAttention(Dim = 100, Units = 100)] public partial class PoolingW4;

/// <summary>The generated layer of a workload, with the workload's parameters, behind plain delegates.</summary>
public sealed class GeneratedAdditive
{
    public GeneratedAdditive(AdditiveData data, int threads)
    {
        Workload w = data.Workload;
        int b = w.Batch, tq = w.QueryLength, tk = w.KeyLength;
        Context = new float[w.Layer == "pooling" ? b * w.Dim : b * tq * w.Dim];
        DQuery = new float[data.Query.Length];
        DKeys = new float[data.Keys.Length];
        switch (w.Id)
        {
            case "W0":
            {
                var layer = Setup(new AdditiveW0(), data, threads);
                var tape = new AdditiveW0.Tape();
                Forward = () => layer.Forward(b, tq, tk, data.Query, data.Keys, default, Context);
                Training = () => { layer.Forward(tape, b, tq, tk, data.Query, data.Keys, default, Context); layer.Backward(tape, data.Query, data.Keys, default, data.DContext, DQuery, DKeys); };
                Layer = layer;
                break;
            }
            case "W1":
            {
                var layer = Setup(new AdditiveW1(), data, threads);
                var tape = new AdditiveW1.Tape();
                Forward = () => layer.Forward(b, tq, tk, data.Query, data.Keys, default, Context);
                Training = () => { layer.Forward(tape, b, tq, tk, data.Query, data.Keys, default, Context); layer.Backward(tape, data.Query, data.Keys, default, data.DContext, DQuery, DKeys); };
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
                Forward = () => layer.Forward(b, tq, data.Query, Context);
                Training = () => { layer.Forward(tape, b, tq, data.Query, Context); layer.Backward(tape, data.Query, data.DContext, DQuery); };
                Layer = layer;
                break;
            }
            case "W3":
            {
                var layer = new LuongW3 { MaxDegreeOfParallelism = threads };
                data.QueryWeight.CopyTo(layer.ScoreWeight.Value, 0); // W [KeyDim, Dim]
                var tape = new LuongW3.Tape();
                Forward = () => layer.Forward(b, tq, tk, data.Query, data.Keys, default, Context);
                Training = () => { layer.Forward(tape, b, tq, tk, data.Query, data.Keys, default, Context); layer.Backward(tape, data.Query, data.Keys, default, data.DContext, DQuery, DKeys); };
                Layer = layer;
                break;
            }
            default:
            {
                var layer = Setup(new AdditiveW2(), data, threads);
                var tape = new AdditiveW2.Tape();
                Forward = () => layer.Forward(b, tq, tk, data.Query, data.Keys, default, Context);
                Training = () => { layer.Forward(tape, b, tq, tk, data.Query, data.Keys, default, Context); layer.Backward(tape, data.Query, data.Keys, default, data.DContext, DQuery, DKeys); };
                Layer = layer;
                break;
            }
        }
    }

    public Action Forward { get; }
    public Action Training { get; }
    public IAttentionLayer<float> Layer { get; }
    public float[] Context { get; }
    public float[] DQuery { get; }
    public float[] DKeys { get; }

    private static TLayer Setup<TLayer>(TLayer layer, AdditiveData data, int threads) where TLayer : IAttentionLayer<float>
    {
        foreach (Parameter<float> parameter in layer.Parameters)
        {
            float[] source = parameter.Name switch
            {
                "query_weight" => data.QueryWeight,
                "key_weight" => data.KeyWeight,
                "score_bias" => data.Bias,
                _ => data.ScoreVector,
            };
            source.CopyTo(parameter.Value, 0);
        }
        switch (layer)
        {
            case AdditiveW0 l: l.MaxDegreeOfParallelism = threads; break;
            case AdditiveW1 l: l.MaxDegreeOfParallelism = threads; break;
            case AdditiveW2 l: l.MaxDegreeOfParallelism = threads; break;
        }
        return layer;
    }
}
