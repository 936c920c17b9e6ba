using System;
using System.Collections.Generic;
using System.Numerics.Tensors;

namespace AttentionGen.Benchmarks;

/// <summary>
/// HAN attention pooling by hand over <see cref="TensorPrimitives"/>: uₜ = tanh(W hₜ + b), αₜ = softmax over t of
/// uₜ·u_w, s = Σₜ αₜ hₜ, with W [U, D]. Forward (keeping u and α) and a hand-written backward.
/// </summary>
public sealed class PoolingBaseline : IBaseline
{
    private readonly WorkloadData _data;
    private readonly int _b, _t, _d, _u;
    private readonly float[] _hidden, _alpha, _dAlpha, _dScores, _dPre;
    private readonly float[] _dInput, _dWeight, _dBias, _dContextVector;

    public PoolingBaseline(WorkloadData data)
    {
        _data = data;
        Workload w = data.Workload;
        (_b, _t, _d, _u) = (w.Batch, w.QueryLength, w.Dim, w.Units);
        _hidden = new float[_b * _t * _u];
        _alpha = new float[_b * _t];
        _dAlpha = new float[_t];
        _dScores = new float[_t];
        _dPre = new float[_u];
        Context = new float[_b * _d];
        _dInput = new float[data.Query.Length];
        _dWeight = new float[_u * _d];
        _dBias = new float[_u];
        _dContextVector = new float[_u];
        Gradients = new Dictionary<string, float[]>
        {
            ["input"] = _dInput, ["weight"] = _dWeight, ["bias"] = _dBias, ["context_vector"] = _dContextVector,
        };
    }

    public float[] Context { get; }

    public bool HasBackward => true;

    public IReadOnlyDictionary<string, float[]> Gradients { get; }

    public void Forward()
    {
        WorkloadData x = _data;
        Array.Clear(Context);
        for (int b = 0; b < _b; b++)
        {
            Span<float> scores = _alpha.AsSpan(b * _t, _t);
            for (int t = 0; t < _t; t++)
            {
                ReadOnlySpan<float> h = x.Query.AsSpan((b * _t + t) * _d, _d);
                Span<float> hidden = _hidden.AsSpan((b * _t + t) * _u, _u);
                for (int u = 0; u < _u; u++)
                {
                    hidden[u] = TensorPrimitives.Dot(x.QueryWeight.AsSpan(u * _d, _d), h);
                }
                TensorPrimitives.Add(hidden, x.Bias, hidden);
                TensorPrimitives.Tanh(hidden, hidden);
                scores[t] = TensorPrimitives.Dot(hidden, x.ScoreVector);
            }
            TensorPrimitives.SoftMax(scores, scores);
            Span<float> context = Context.AsSpan(b * _d, _d);
            for (int t = 0; t < _t; t++)
            {
                TensorPrimitives.MultiplyAdd(x.Query.AsSpan((b * _t + t) * _d, _d), scores[t], context, context);
            }
        }
    }

    public void Backward()
    {
        WorkloadData x = _data;
        Array.Clear(_dInput); Array.Clear(_dWeight); Array.Clear(_dBias); Array.Clear(_dContextVector);
        for (int b = 0; b < _b; b++)
        {
            ReadOnlySpan<float> a = _alpha.AsSpan(b * _t, _t);
            ReadOnlySpan<float> ds = x.DContext.AsSpan(b * _d, _d);
            // s = Σₜ αₜ hₜ: ∂αₜ = ∂s·hₜ and ∂hₜ += αₜ ∂s.
            for (int t = 0; t < _t; t++)
            {
                _dAlpha[t] = TensorPrimitives.Dot(ds, x.Query.AsSpan((b * _t + t) * _d, _d));
                Span<float> dh = _dInput.AsSpan((b * _t + t) * _d, _d);
                TensorPrimitives.MultiplyAdd(ds, a[t], dh, dh);
            }
            float centre = TensorPrimitives.Dot(a, _dAlpha);
            TensorPrimitives.Subtract(_dAlpha, centre, _dScores);
            TensorPrimitives.Multiply(_dScores, a, _dScores);
            for (int t = 0; t < _t; t++)
            {
                ReadOnlySpan<float> hidden = _hidden.AsSpan((b * _t + t) * _u, _u);
                // eₜ = uₜ·u_w: ∂u_w += ∂eₜ uₜ; ∂pre = ∂eₜ u_w ⊙ (1 − uₜ²).
                TensorPrimitives.MultiplyAdd(hidden, _dScores[t], _dContextVector, _dContextVector);
                TensorPrimitives.Multiply(hidden, hidden, _dPre);
                TensorPrimitives.Subtract(1f, _dPre, _dPre);
                TensorPrimitives.Multiply(_dPre, x.ScoreVector, _dPre);
                TensorPrimitives.Multiply(_dPre, _dScores[t], _dPre);
                TensorPrimitives.Add(_dBias, _dPre, _dBias);
                ReadOnlySpan<float> h = x.Query.AsSpan((b * _t + t) * _d, _d);
                Span<float> dh = _dInput.AsSpan((b * _t + t) * _d, _d);
                for (int u = 0; u < _u; u++)
                {
                    Span<float> gradientRow = _dWeight.AsSpan(u * _d, _d);
                    TensorPrimitives.MultiplyAdd(h, _dPre[u], gradientRow, gradientRow);
                    TensorPrimitives.MultiplyAdd(x.QueryWeight.AsSpan(u * _d, _d), _dPre[u], dh, dh);
                }
            }
        }
    }
}
