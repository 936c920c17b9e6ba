using System;
using System.Collections.Generic;
using System.Numerics.Tensors;

namespace AttentionGen.Benchmarks;

/// <summary>
/// Luong's general score by hand over <see cref="TensorPrimitives"/>: q' = W q, eᵢⱼ = q'ᵢ·kⱼ, a = softmax(e),
/// cᵢ = Σⱼ aᵢⱼ kⱼ (keys are the values), W of [D, D]. Forward and a hand-written backward.
/// </summary>
public sealed class LuongBaseline : IBaseline
{
    private readonly WorkloadData _data;
    private readonly int _b, _tq, _tk, _d;
    private readonly float[] _projectedQuery, _weights, _dWeights, _dScores, _dProjectedQuery;
    private readonly float[] _dQuery, _dKeys, _dWeight;

    public LuongBaseline(WorkloadData data)
    {
        _data = data;
        Workload w = data.Workload;
        (_b, _tq, _tk, _d) = (w.Batch, w.QueryLength, w.KeyLength, w.Dim);
        _projectedQuery = new float[_b * _tq * _d];
        _weights = new float[_b * _tq * _tk];
        _dWeights = new float[_tk];
        _dScores = new float[_tk];
        _dProjectedQuery = new float[_d];
        Context = new float[_b * _tq * _d];
        _dQuery = new float[data.Query.Length];
        _dKeys = new float[data.Keys.Length];
        _dWeight = new float[_d * _d];
        Gradients = new Dictionary<string, float[]> { ["query"] = _dQuery, ["keys"] = _dKeys, ["score_weight"] = _dWeight };
    }

    public float[] Context { get; }

    public bool HasBackward => true;

    public IReadOnlyDictionary<string, float[]> Gradients { get; }

    public void Forward()
    {
        WorkloadData x = _data;
        for (int r = 0; r < _b * _tq; r++)
        {
            ReadOnlySpan<float> q = x.Query.AsSpan(r * _d, _d);
            for (int k = 0; k < _d; k++)
            {
                _projectedQuery[r * _d + k] = TensorPrimitives.Dot(x.QueryWeight.AsSpan(k * _d, _d), q);
            }
        }
        Array.Clear(Context);
        for (int b = 0; b < _b; b++)
        {
            for (int i = 0; i < _tq; i++)
            {
                int row = b * _tq + i;
                ReadOnlySpan<float> qp = _projectedQuery.AsSpan(row * _d, _d);
                Span<float> scores = _weights.AsSpan(row * _tk, _tk);
                for (int j = 0; j < _tk; j++)
                {
                    scores[j] = TensorPrimitives.Dot(qp, x.Keys.AsSpan((b * _tk + j) * _d, _d));
                }
                TensorPrimitives.SoftMax(scores, scores);
                Span<float> context = Context.AsSpan(row * _d, _d);
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
        Array.Clear(_dQuery); Array.Clear(_dKeys); Array.Clear(_dWeight);
        for (int b = 0; b < _b; b++)
        {
            for (int i = 0; i < _tq; i++)
            {
                int row = b * _tq + i;
                ReadOnlySpan<float> a = _weights.AsSpan(row * _tk, _tk);
                ReadOnlySpan<float> dc = x.DContext.AsSpan(row * _d, _d);
                ReadOnlySpan<float> qp = _projectedQuery.AsSpan(row * _d, _d);
                // The keys as values: ∂aⱼ = ∂c·kⱼ and ∂kⱼ += aⱼ ∂c.
                for (int j = 0; j < _tk; j++)
                {
                    ReadOnlySpan<float> key = x.Keys.AsSpan((b * _tk + j) * _d, _d);
                    _dWeights[j] = TensorPrimitives.Dot(dc, key);
                    Span<float> dKey = _dKeys.AsSpan((b * _tk + j) * _d, _d);
                    TensorPrimitives.MultiplyAdd(dc, a[j], dKey, dKey);
                }
                // Softmax: ∂e = a ⊙ (∂a − a·∂a).
                float centre = TensorPrimitives.Dot(a, _dWeights);
                TensorPrimitives.Subtract(_dWeights, centre, _dScores);
                TensorPrimitives.Multiply(_dScores, a, _dScores);
                // The keys as keys: ∂q' = Σⱼ ∂eⱼ kⱼ and ∂kⱼ += ∂eⱼ q'.
                Array.Clear(_dProjectedQuery);
                for (int j = 0; j < _tk; j++)
                {
                    ReadOnlySpan<float> key = x.Keys.AsSpan((b * _tk + j) * _d, _d);
                    TensorPrimitives.MultiplyAdd(key, _dScores[j], _dProjectedQuery, _dProjectedQuery);
                    Span<float> dKey = _dKeys.AsSpan((b * _tk + j) * _d, _d);
                    TensorPrimitives.MultiplyAdd(qp, _dScores[j], dKey, dKey);
                }
                // q' = W q: ∂W[k, :] += ∂q'ₖ q and ∂q += ∂q'ₖ W[k, :].
                ReadOnlySpan<float> q = x.Query.AsSpan(row * _d, _d);
                Span<float> dq = _dQuery.AsSpan(row * _d, _d);
                for (int k = 0; k < _d; k++)
                {
                    Span<float> gradientRow = _dWeight.AsSpan(k * _d, _d);
                    TensorPrimitives.MultiplyAdd(q, _dProjectedQuery[k], gradientRow, gradientRow);
                    TensorPrimitives.MultiplyAdd(x.QueryWeight.AsSpan(k * _d, _d), _dProjectedQuery[k], dq, dq);
                }
            }
        }
    }
}
