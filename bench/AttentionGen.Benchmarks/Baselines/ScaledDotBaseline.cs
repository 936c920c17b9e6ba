using System;
using System.Collections.Generic;
using System.Numerics.Tensors;

namespace AttentionGen.Benchmarks;

/// <summary>
/// Scaled dot-product attention per (batch, head) by hand over <see cref="TensorPrimitives"/>:
/// eᵢⱼ = qᵢ·kⱼ / √d, causal rows see keys j ≤ i, a = softmax(e), cᵢ = Σⱼ aᵢⱼ vⱼ. Forward only.
/// </summary>
public sealed class ScaledDotBaseline : IBaseline
{
    private readonly WorkloadData _data;
    private readonly int _rows, _tq, _tk, _d;
    private readonly bool _causal;
    private readonly float[] _scores;

    public ScaledDotBaseline(WorkloadData data)
    {
        _data = data;
        Workload w = data.Workload;
        (_rows, _tq, _tk, _d, _causal) = (w.Rows, w.QueryLength, w.KeyLength, w.Dim, w.Causal);
        _scores = new float[_tk];
        Context = new float[_rows * _tq * _d];
    }

    public float[] Context { get; }

    public bool HasBackward => false;

    public IReadOnlyDictionary<string, float[]> Gradients { get; } = new Dictionary<string, float[]>();

    public void Forward()
    {
        WorkloadData x = _data;
        float scale = 1f / MathF.Sqrt(_d);
        Array.Clear(Context);
        for (int r = 0; r < _rows; r++)
        {
            for (int i = 0; i < _tq; i++)
            {
                // Causal as PyTorch's is_causal: query i sees keys j ≤ i (top-left aligned).
                int visible = _causal ? Math.Min(i + 1, _tk) : _tk;
                ReadOnlySpan<float> q = x.Query.AsSpan((r * _tq + i) * _d, _d);
                Span<float> scores = _scores.AsSpan(0, visible);
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

    public void Backward() => throw new NotSupportedException("the scaled dot-product baseline is forward only");
}
