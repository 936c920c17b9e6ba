using System;
using System.Collections.Generic;
using System.Numerics.Tensors;

namespace AttentionGen.Benchmarks;

/// <summary>
/// The peer without the generator: Bahdanau attention as a .NET developer writes it by hand, with runtime-sized
/// loops over <see cref="TensorPrimitives"/> (keys are the values). Forward and a hand-written backward.
/// </summary>
public sealed class AdditiveBaseline : IBaseline
{
    private readonly WorkloadData _data;
    private readonly int _b, _tq, _tk, _d, _u;
    private readonly float[] _queryProjection, _keyProjection, _weights, _scratch, _dScores, _dWeights, _dKeyProjection, _dQueryProjection;
    private readonly float[] DQuery, DKeys, DQueryWeight, DKeyWeight, DBias, DScoreVector;

    public AdditiveBaseline(WorkloadData data)
    {
        _data = data;
        Workload w = data.Workload;
        (_b, _tq, _tk, _d, _u) = (w.Batch, w.QueryLength, w.KeyLength, w.Dim, w.Units);
        _queryProjection = new float[_b * _tq * _u];
        _keyProjection = new float[_b * _tk * _u];
        _weights = new float[_b * _tq * _tk];
        _scratch = new float[_u];
        _dScores = new float[_tk];
        _dWeights = new float[_tk];
        Context = new float[_b * _tq * _d];
        DQuery = new float[data.Query.Length];
        DKeys = new float[data.Keys.Length];
        DQueryWeight = new float[_u * _d];
        DKeyWeight = new float[_u * _d];
        DBias = new float[_u];
        DScoreVector = new float[_u];
        _dKeyProjection = new float[_tk * _u];
        _dQueryProjection = new float[_u];
        Gradients = new Dictionary<string, float[]>
        {
            ["query"] = DQuery, ["keys"] = DKeys, ["query_weight"] = DQueryWeight, ["key_weight"] = DKeyWeight,
            ["score_bias"] = DBias, ["score_vector"] = DScoreVector,
        };
    }

    public float[] Context { get; }

    public bool HasBackward => true;

    public IReadOnlyDictionary<string, float[]> Gradients { get; }

    /// <summary>The attention weights of the last forward, [B, Tq, Tk].</summary>
    public ReadOnlySpan<float> Weights => _weights;

    public void Forward()
    {
        WorkloadData x = _data;
        Project(x.Query, x.QueryWeight, null, _queryProjection, _b * _tq);
        Project(x.Keys, x.KeyWeight, x.Bias, _keyProjection, _b * _tk);
        Array.Clear(Context);
        for (int b = 0; b < _b; b++)
        {
            for (int i = 0; i < _tq; i++)
            {
                Span<float> scores = _weights.AsSpan((b * _tq + i) * _tk, _tk);
                ReadOnlySpan<float> qp = _queryProjection.AsSpan((b * _tq + i) * _u, _u);
                for (int j = 0; j < _tk; j++)
                {
                    TensorPrimitives.Add(qp, _keyProjection.AsSpan((b * _tk + j) * _u, _u), _scratch);
                    TensorPrimitives.Tanh(_scratch, _scratch);
                    scores[j] = TensorPrimitives.Dot(x.ScoreVector, _scratch);
                }
                TensorPrimitives.SoftMax(scores, scores);
                Span<float> context = Context.AsSpan((b * _tq + i) * _d, _d);
                for (int j = 0; j < _tk; j++)
                {
                    TensorPrimitives.MultiplyAdd(x.Keys.AsSpan((b * _tk + j) * _d, _d), scores[j], context, context);
                }
            }
        }
    }

    public void Backward()
    {
        WorkloadData x = _data;
        Array.Clear(DQuery); Array.Clear(DKeys); Array.Clear(DQueryWeight); Array.Clear(DKeyWeight); Array.Clear(DBias); Array.Clear(DScoreVector);
        float[] dKeyProjection = _dKeyProjection, dQueryProjection = _dQueryProjection;
        for (int b = 0; b < _b; b++)
        {
            Array.Clear(dKeyProjection);
            for (int i = 0; i < _tq; i++)
            {
                int row = b * _tq + i;
                ReadOnlySpan<float> a = _weights.AsSpan(row * _tk, _tk);
                ReadOnlySpan<float> dc = x.DContext.AsSpan(row * _d, _d);
                for (int j = 0; j < _tk; j++)
                {
                    ReadOnlySpan<float> value = x.Keys.AsSpan((b * _tk + j) * _d, _d);
                    _dWeights[j] = TensorPrimitives.Dot(dc, value);
                    Span<float> dValue = DKeys.AsSpan((b * _tk + j) * _d, _d);
                    TensorPrimitives.MultiplyAdd(dc, a[j], dValue, dValue);
                }
                float centre = TensorPrimitives.Dot(a, _dWeights);
                TensorPrimitives.Subtract(_dWeights, centre, _dScores);
                TensorPrimitives.Multiply(_dScores, a, _dScores);
                Array.Clear(dQueryProjection);
                ReadOnlySpan<float> qp = _queryProjection.AsSpan(row * _u, _u);
                for (int j = 0; j < _tk; j++)
                {
                    TensorPrimitives.Add(qp, _keyProjection.AsSpan((b * _tk + j) * _u, _u), _scratch);
                    TensorPrimitives.Tanh(_scratch, _scratch);                         // z
                    TensorPrimitives.MultiplyAdd(_scratch, _dScores[j], DScoreVector, DScoreVector);
                    TensorPrimitives.Multiply(_scratch, _scratch, _scratch);           // z²
                    TensorPrimitives.Subtract(1f, _scratch, _scratch);                 // 1 − z²
                    TensorPrimitives.Multiply(_scratch, x.ScoreVector, _scratch);
                    TensorPrimitives.Multiply(_scratch, _dScores[j], _scratch);        // ∂pre
                    TensorPrimitives.Add(dQueryProjection, _scratch, dQueryProjection);
                    Span<float> dkp = dKeyProjection.AsSpan(j * _u, _u);
                    TensorPrimitives.Add(dkp, _scratch, dkp);
                }
                ReadOnlySpan<float> q = x.Query.AsSpan(row * _d, _d);
                Span<float> dq = DQuery.AsSpan(row * _d, _d);
                for (int u = 0; u < _u; u++)
                {
                    Span<float> gradientRow = DQueryWeight.AsSpan(u * _d, _d);
                    TensorPrimitives.MultiplyAdd(q, dQueryProjection[u], gradientRow, gradientRow);
                    TensorPrimitives.MultiplyAdd(x.QueryWeight.AsSpan(u * _d, _d), dQueryProjection[u], dq, dq);
                }
            }
            for (int j = 0; j < _tk; j++)
            {
                ReadOnlySpan<float> k = x.Keys.AsSpan((b * _tk + j) * _d, _d);
                Span<float> dk = DKeys.AsSpan((b * _tk + j) * _d, _d);
                ReadOnlySpan<float> dkp = dKeyProjection.AsSpan(j * _u, _u);
                TensorPrimitives.Add(DBias, dkp, DBias);
                for (int u = 0; u < _u; u++)
                {
                    Span<float> gradientRow = DKeyWeight.AsSpan(u * _d, _d);
                    TensorPrimitives.MultiplyAdd(k, dkp[u], gradientRow, gradientRow);
                    TensorPrimitives.MultiplyAdd(x.KeyWeight.AsSpan(u * _d, _d), dkp[u], dk, dk);
                }
            }
        }
    }

    // y[r, u] = W[u, :] · x[r, :] (+ bias[u])
    private void Project(float[] inputs, float[] weight, float[]? bias, float[] outputs, int rows)
    {
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> input = inputs.AsSpan(r * _d, _d);
            for (int u = 0; u < _u; u++)
            {
                outputs[r * _u + u] = TensorPrimitives.Dot(weight.AsSpan(u * _d, _d), input) + (bias is null ? 0 : bias[u]);
            }
        }
    }
}
