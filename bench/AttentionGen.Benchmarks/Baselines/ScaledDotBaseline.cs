using System;
using System.Collections.Generic;
using System.Numerics.Tensors;

namespace AttentionGen.Benchmarks;

/// <summary>
/// Scaled dot-product attention per (batch, head) by hand over <see cref="TensorPrimitives"/>:
/// eᵢⱼ = qᵢ·kⱼ / √d, causal rows see keys j ≤ i, a = softmax(e), cᵢ = Σⱼ aᵢⱼ vⱼ. Forward (keeping every weight row,
/// as a hand-written layer would for its backward) and a hand-written backward.
/// </summary>
public sealed class ScaledDotBaseline : IBaseline
{
    private readonly WorkloadData _data;
    private readonly int _rows, _tq, _tk, _d;
    private readonly bool _causal;
    private readonly float[] _weights, _dWeights, _dScores;
    private readonly float[] _dQuery, _dKeys, _dValues;

    public ScaledDotBaseline(WorkloadData data)
    {
        _data = data;
        Workload w = data.Workload;
        (_rows, _tq, _tk, _d, _causal) = (w.Rows, w.QueryLength, w.KeyLength, w.Dim, w.Causal);
        _weights = new float[_rows * _tq * _tk];
        _dWeights = new float[_tk];
        _dScores = new float[_tk];
        Context = new float[_rows * _tq * _d];
        _dQuery = new float[data.Query.Length];
        _dKeys = new float[data.Keys.Length];
        _dValues = new float[data.Values.Length];
        Gradients = new Dictionary<string, float[]> { ["query"] = _dQuery, ["keys"] = _dKeys, ["values"] = _dValues };
    }

    public float[] Context { get; }

    public bool HasBackward => true;

    public IReadOnlyDictionary<string, float[]> Gradients { get; }

    // Causal as PyTorch's is_causal: query i sees keys j ≤ i (top-left aligned).
    private int Visible(int i) => _causal ? Math.Min(i + 1, _tk) : _tk;

    public void Forward()
    {
        WorkloadData x = _data;
        float scale = 1f / MathF.Sqrt(_d);
        Array.Clear(Context);
        for (int r = 0; r < _rows; r++)
        {
            for (int i = 0; i < _tq; i++)
            {
                int visible = Visible(i);
                ReadOnlySpan<float> q = x.Query.AsSpan((r * _tq + i) * _d, _d);
                Span<float> scores = _weights.AsSpan((r * _tq + i) * _tk, visible);
                for (int j = 0; j < visible; j++)
                {
                    scores[j] = TensorPrimitives.Dot(q, x.Keys.AsSpan((r * _tk + j) * _d, _d)) * scale;
                }
                TensorPrimitives.SoftMax(scores, scores);
                Span<float> context = Context.AsSpan((r * _tq + i) * _d, _d);
                for (int j = 0; j < visible; j++)
                {
                    TensorPrimitives.MultiplyAdd(x.Values.AsSpan((r * _tk + j) * _d, _d), scores[j], context, context);
                }
            }
        }
    }

    public void Backward()
    {
        WorkloadData x = _data;
        float scale = 1f / MathF.Sqrt(_d);
        Array.Clear(_dQuery); Array.Clear(_dKeys); Array.Clear(_dValues);
        for (int r = 0; r < _rows; r++)
        {
            for (int i = 0; i < _tq; i++)
            {
                int visible = Visible(i), row = r * _tq + i;
                ReadOnlySpan<float> a = _weights.AsSpan(row * _tk, visible);
                ReadOnlySpan<float> dc = x.DContext.AsSpan(row * _d, _d);
                Span<float> dWeights = _dWeights.AsSpan(0, visible), dScores = _dScores.AsSpan(0, visible);
                // c = Σⱼ aⱼ vⱼ: ∂aⱼ = ∂c·vⱼ and ∂vⱼ += aⱼ ∂c.
                for (int j = 0; j < visible; j++)
                {
                    dWeights[j] = TensorPrimitives.Dot(dc, x.Values.AsSpan((r * _tk + j) * _d, _d));
                    Span<float> dValue = _dValues.AsSpan((r * _tk + j) * _d, _d);
                    TensorPrimitives.MultiplyAdd(dc, a[j], dValue, dValue);
                }
                // Softmax: ∂e = a ⊙ (∂a − a·∂a); then e = q·k/√d: ∂q += Σⱼ ∂eⱼ kⱼ/√d and ∂kⱼ += ∂eⱼ q/√d.
                float centre = TensorPrimitives.Dot(a, dWeights);
                TensorPrimitives.Subtract(dWeights, centre, dScores);
                TensorPrimitives.Multiply(dScores, a, dScores);
                TensorPrimitives.Multiply(dScores, scale, dScores);
                ReadOnlySpan<float> q = x.Query.AsSpan(row * _d, _d);
                Span<float> dq = _dQuery.AsSpan(row * _d, _d);
                for (int j = 0; j < visible; j++)
                {
                    TensorPrimitives.MultiplyAdd(x.Keys.AsSpan((r * _tk + j) * _d, _d), dScores[j], dq, dq);
                    Span<float> dKey = _dKeys.AsSpan((r * _tk + j) * _d, _d);
                    TensorPrimitives.MultiplyAdd(q, dScores[j], dKey, dKey);
                }
            }
        }
    }
}
