using System;
using System.Collections.Generic;
using System.Numerics.Tensors;

namespace AttentionGen.Benchmarks;

/// <summary>
/// Luong's local-p attention with the general score by hand over <see cref="TensorPrimitives"/>, runtime-sized:
/// q' = W_a q, z = tanh(W_p q), pₜ = S·sigmoid(v_p·z) (S = Tk), the window s ∈ [c − D, c + D] ∩ [0, Tk − 1] around
/// c = ⌊pₜ + ½⌋, α = softmax over the window of q'·kₛ, aₜ(s) = α(s)·exp(−(s − pₜ)²/(2σ²)) with σ = D/2, cₜ = Σₛ aₜ(s) kₛ
/// (keys are the values). Forward and a hand-written backward (through pₜ as well).
/// </summary>
public sealed class LocalBaseline : IBaseline
{
    private readonly WorkloadData _data;
    private readonly int _b, _tq, _tk, _d, _u, _window, _size;
    private readonly float[] _projectedQuery, _hidden, _positions, _alphas, _weights;
    private readonly int[] _starts, _counts;
    private readonly float[] _dWeights, _dProjectedQuery, _dPre;
    private readonly float[] _dQuery, _dKeys, _dScoreWeight, _dPredictorWeight, _dPredictorVector;

    public LocalBaseline(WorkloadData data)
    {
        _data = data;
        Workload w = data.Workload;
        (_b, _tq, _tk, _d, _u, _window) = (w.Batch, w.QueryLength, w.KeyLength, w.Dim, w.Units, w.Window);
        _size = 2 * _window + 1;
        int rows = _b * _tq;
        _projectedQuery = new float[rows * _d];
        _hidden = new float[rows * _u];
        _positions = new float[rows];
        _alphas = new float[rows * _size];
        _weights = new float[rows * _size];
        _starts = new int[rows];
        _counts = new int[rows];
        _dWeights = new float[_size];
        _dProjectedQuery = new float[_d];
        _dPre = new float[_u];
        Context = new float[rows * _d];
        _dQuery = new float[data.Query.Length];
        _dKeys = new float[data.Keys.Length];
        _dScoreWeight = new float[_d * _d];
        _dPredictorWeight = new float[_u * _d];
        _dPredictorVector = new float[_u];
        Gradients = new Dictionary<string, float[]>
        {
            ["query"] = _dQuery, ["keys"] = _dKeys, ["score_weight"] = _dScoreWeight,
            ["predictor_weight"] = _dPredictorWeight, ["predictor_vector"] = _dPredictorVector,
        };
    }

    public float[] Context { get; }

    public bool HasBackward => true;

    public IReadOnlyDictionary<string, float[]> Gradients { get; }

    private float HalfInverseVariance => 2f / (_window * _window); // 1 / (2σ²), σ = D/2

    public void Forward()
    {
        WorkloadData x = _data;
        Array.Clear(Context);
        for (int b = 0; b < _b; b++)
        {
            for (int t = 0; t < _tq; t++)
            {
                int row = b * _tq + t;
                ReadOnlySpan<float> q = x.Query.AsSpan(row * _d, _d);
                Span<float> qp = _projectedQuery.AsSpan(row * _d, _d);
                for (int k = 0; k < _d; k++) qp[k] = TensorPrimitives.Dot(x.QueryWeight.AsSpan(k * _d, _d), q);
                Span<float> z = _hidden.AsSpan(row * _u, _u);
                for (int r = 0; r < _u; r++) z[r] = TensorPrimitives.Dot(x.KeyWeight.AsSpan(r * _d, _d), q);
                TensorPrimitives.Tanh(z, z);
                float p = _tk / (1f + MathF.Exp(-TensorPrimitives.Dot(x.ScoreVector, z)));
                int center = Math.Clamp((int)MathF.Floor(p + 0.5f), 0, _tk);
                int start = Math.Max(0, center - _window);
                int count = Math.Max(0, Math.Min(_tk - 1, center + _window) - start + 1);
                (_positions[row], _starts[row], _counts[row]) = (p, start, count);

                Span<float> alpha = _alphas.AsSpan(row * _size, count);
                for (int s = 0; s < count; s++) alpha[s] = TensorPrimitives.Dot(qp, x.Keys.AsSpan((b * _tk + start + s) * _d, _d));
                // Softmax with the maximum subtracted (TensorPrimitives.SoftMax does not subtract it).
                float max = TensorPrimitives.Max(alpha);
                TensorPrimitives.Subtract(alpha, max, alpha);
                TensorPrimitives.Exp(alpha, alpha);
                TensorPrimitives.Divide(alpha, TensorPrimitives.Sum(alpha), alpha);

                Span<float> a = _weights.AsSpan(row * _size, count);
                Span<float> context = Context.AsSpan(row * _d, _d);
                for (int s = 0; s < count; s++)
                {
                    float offset = start + s - p;
                    a[s] = alpha[s] * MathF.Exp(-offset * offset * HalfInverseVariance);
                    TensorPrimitives.MultiplyAdd(x.Keys.AsSpan((b * _tk + start + s) * _d, _d), a[s], context, context);
                }
            }
        }
    }

    public void Backward()
    {
        WorkloadData x = _data;
        Array.Clear(_dQuery); Array.Clear(_dKeys); Array.Clear(_dScoreWeight); Array.Clear(_dPredictorWeight); Array.Clear(_dPredictorVector);
        float inverseVariance = 2 * HalfInverseVariance;
        for (int b = 0; b < _b; b++)
        {
            for (int t = 0; t < _tq; t++)
            {
                int row = b * _tq + t;
                int start = _starts[row], count = _counts[row];
                float p = _positions[row];
                ReadOnlySpan<float> a = _weights.AsSpan(row * _size, count);
                ReadOnlySpan<float> alpha = _alphas.AsSpan(row * _size, count);
                ReadOnlySpan<float> dc = x.DContext.AsSpan(row * _d, _d);
                ReadOnlySpan<float> qp = _projectedQuery.AsSpan(row * _d, _d);
                Span<float> g = _dWeights.AsSpan(0, count);

                // The keys as values: ∂aₛ = ∂c·kₛ and ∂kₛ += aₛ ∂c. Then the Gaussian: ∂p and ∂α.
                float dp = 0;
                for (int s = 0; s < count; s++)
                {
                    ReadOnlySpan<float> key = x.Keys.AsSpan((b * _tk + start + s) * _d, _d);
                    g[s] = TensorPrimitives.Dot(dc, key);
                    Span<float> dKey = _dKeys.AsSpan((b * _tk + start + s) * _d, _d);
                    TensorPrimitives.MultiplyAdd(dc, a[s], dKey, dKey);
                    float offset = start + s - p;
                    dp += g[s] * a[s] * offset * inverseVariance;
                    g[s] *= MathF.Exp(-offset * offset * HalfInverseVariance);
                }
                // Softmax: ∂e = α ⊙ (∂α − α·∂α).
                float centre = TensorPrimitives.Dot(alpha, g);
                TensorPrimitives.Subtract(g, centre, g);
                TensorPrimitives.Multiply(g, alpha, g);
                // The keys as keys: ∂q' = Σₛ ∂eₛ kₛ and ∂kₛ += ∂eₛ q'.
                Array.Clear(_dProjectedQuery);
                for (int s = 0; s < count; s++)
                {
                    ReadOnlySpan<float> key = x.Keys.AsSpan((b * _tk + start + s) * _d, _d);
                    TensorPrimitives.MultiplyAdd(key, g[s], _dProjectedQuery, _dProjectedQuery);
                    Span<float> dKey = _dKeys.AsSpan((b * _tk + start + s) * _d, _d);
                    TensorPrimitives.MultiplyAdd(qp, g[s], dKey, dKey);
                }
                ReadOnlySpan<float> q = x.Query.AsSpan(row * _d, _d);
                Span<float> dq = _dQuery.AsSpan(row * _d, _d);
                // q' = W_a q: ∂W_a[k, :] += ∂q'ₖ q and ∂q += ∂q'ₖ W_a[k, :].
                for (int k = 0; k < _d; k++)
                {
                    Span<float> gradientRow = _dScoreWeight.AsSpan(k * _d, _d);
                    TensorPrimitives.MultiplyAdd(q, _dProjectedQuery[k], gradientRow, gradientRow);
                    TensorPrimitives.MultiplyAdd(x.QueryWeight.AsSpan(k * _d, _d), _dProjectedQuery[k], dq, dq);
                }
                // p = S·σ(u), u = v_p·z, z = tanh(W_p q): ∂u = ∂p·p(1 − p/S), ∂v_p += ∂u z, ∂pre = ∂u v_p ⊙ (1 − z²).
                float du = dp * p * (1 - p / _tk);
                ReadOnlySpan<float> z = _hidden.AsSpan(row * _u, _u);
                TensorPrimitives.MultiplyAdd(z, du, _dPredictorVector, _dPredictorVector);
                TensorPrimitives.Multiply(z, z, _dPre);
                TensorPrimitives.Subtract(1f, _dPre, _dPre);
                TensorPrimitives.Multiply(_dPre, x.ScoreVector, _dPre);
                TensorPrimitives.Multiply(_dPre, du, _dPre);
                // pre = W_p q: ∂W_p[r, :] += ∂preᵣ q and ∂q += ∂preᵣ W_p[r, :].
                for (int r = 0; r < _u; r++)
                {
                    Span<float> gradientRow = _dPredictorWeight.AsSpan(r * _d, _d);
                    TensorPrimitives.MultiplyAdd(q, _dPre[r], gradientRow, gradientRow);
                    TensorPrimitives.MultiplyAdd(x.KeyWeight.AsSpan(r * _d, _d), _dPre[r], dq, dq);
                }
            }
        }
    }
}
