using System;
using System.Collections.Generic;
using System.Numerics.Tensors;

namespace AttentionGen.Benchmarks;

/// <summary>
/// Luong's local-p attention with the general score by hand over <see cref="TensorPrimitives"/>, runtime-sized:
/// q' = W_a q, z = tanh(W_p q), pₜ = S·sigmoid(v_p·z) (S = Tk), the window s ∈ [c − D, c + D] ∩ [0, Tk − 1] around
/// c = ⌊pₜ + ½⌋, α = softmax over the window of q'·kₛ, aₜ(s) = α(s)·exp(−(s − pₜ)²/(2σ²)) with σ = D/2, cₜ = Σₛ aₜ(s) kₛ
/// (keys are the values). Forward and a hand-written backward (through pₜ as well).
/// With the concat score ("local-concat"), eₜ(s) = v_a·tanh(W_a [q; kₛ]) = v_a·tanh(qp + kpₛ) instead, W_a [U, 2D] split
/// into its query columns (qp = W_a,q q per query) and key columns (kpₛ = W_a,k kₛ, every key projected once per call).
/// As a decoder step (W12): <see cref="ProjectKeys"/> once per source sequence, then <see cref="Step"/> per query.
/// </summary>
public sealed class LocalBaseline : IDecoderStepBaseline
{
    private readonly WorkloadData _data;
    private readonly int _b, _tq, _tk, _d, _u, _window, _size;
    private readonly bool _concat;
    // The score's query projection: q' [D] (rows of W_a [D, D]) or qp [U] (the first D columns of W_a [U, 2D]).
    private readonly int _scoreRows, _scoreStride;
    private readonly float[] _projectedQuery, _projectedKeys, _hidden, _positions, _alphas, _weights, _scoreHidden;
    private readonly int[] _starts, _counts;
    private readonly float[] _dWeights, _dProjectedQuery, _dProjectedKeys, _dPre;
    private readonly float[] _dQuery, _dKeys, _dScoreWeight, _dScoreVector, _dPredictorWeight, _dPredictorVector;

    public LocalBaseline(WorkloadData data)
    {
        _data = data;
        Workload w = data.Workload;
        (_b, _tq, _tk, _d, _u, _window) = (w.Batch, w.QueryLength, w.KeyLength, w.Dim, w.Units, w.Window);
        _size = 2 * _window + 1;
        _concat = w.Layer == "local-concat";
        (_scoreRows, _scoreStride) = _concat ? (_u, 2 * _d) : (_d, _d);
        int rows = _b * _tq;
        _projectedQuery = new float[rows * _scoreRows];
        _projectedKeys = new float[_concat ? _b * _tk * _u : 0];
        _scoreHidden = new float[_concat ? _u : 0];
        _hidden = new float[rows * _u];
        _positions = new float[rows];
        _alphas = new float[rows * _size];
        _weights = new float[rows * _size];
        _starts = new int[rows];
        _counts = new int[rows];
        _dWeights = new float[_size];
        _dProjectedQuery = new float[_scoreRows];
        _dProjectedKeys = new float[_projectedKeys.Length];
        _dPre = new float[_u];
        Context = new float[rows * _d];
        _dQuery = new float[data.Query.Length];
        _dKeys = new float[data.Keys.Length];
        _dScoreWeight = new float[data.QueryWeight.Length];
        _dScoreVector = new float[data.ConcatVector.Length];
        _dPredictorWeight = new float[_u * _d];
        _dPredictorVector = new float[_u];
        var gradients = new Dictionary<string, float[]>
        {
            ["query"] = _dQuery, ["keys"] = _dKeys, ["score_weight"] = _dScoreWeight,
            ["predictor_weight"] = _dPredictorWeight, ["predictor_vector"] = _dPredictorVector,
        };
        if (_concat) gradients["score_vector"] = _dScoreVector; // v_a
        Gradients = gradients;
    }

    public float[] Context { get; }

    public bool HasBackward => true;

    public IReadOnlyDictionary<string, float[]> Gradients { get; }

    private ReadOnlySpan<float> Key(int b, int s) => _data.Keys.AsSpan((b * _tk + s) * _d, _d);

    private float HalfInverseVariance => 2f / (_window * _window); // 1 / (2σ²), σ = D/2

    public void Forward()
    {
        ProjectKeys();
        Step();
    }

    /// <summary>Concat score: kpₛ = W_a,k kₛ for every key (nothing for the general score, which projects no keys).</summary>
    public void ProjectKeys()
    {
        if (!_concat) return;
        WorkloadData x = _data;
        for (int key = 0; key < _b * _tk; key++)
        {
            Span<float> kp = _projectedKeys.AsSpan(key * _u, _u);
            for (int r = 0; r < _u; r++) kp[r] = TensorPrimitives.Dot(x.QueryWeight.AsSpan(r * _scoreStride + _d, _d), x.Keys.AsSpan(key * _d, _d));
        }
    }

    /// <summary>The forward from the key projection of the last <see cref="ProjectKeys"/>: query side, window, context.</summary>
    public void Step()
    {
        WorkloadData x = _data;
        Array.Clear(Context);
        for (int b = 0; b < _b; b++)
        {
            for (int t = 0; t < _tq; t++)
            {
                int row = b * _tq + t;
                ReadOnlySpan<float> q = x.Query.AsSpan(row * _d, _d);
                Span<float> qp = _projectedQuery.AsSpan(row * _scoreRows, _scoreRows);
                for (int k = 0; k < _scoreRows; k++) qp[k] = TensorPrimitives.Dot(x.QueryWeight.AsSpan(k * _scoreStride, _d), q);
                Span<float> z = _hidden.AsSpan(row * _u, _u);
                for (int r = 0; r < _u; r++) z[r] = TensorPrimitives.Dot(x.KeyWeight.AsSpan(r * _d, _d), q);
                TensorPrimitives.Tanh(z, z);
                float p = _tk / (1f + MathF.Exp(-TensorPrimitives.Dot(x.ScoreVector, z)));
                int center = Math.Clamp((int)MathF.Floor(p + 0.5f), 0, _tk);
                int start = Math.Max(0, center - _window);
                int count = Math.Max(0, Math.Min(_tk - 1, center + _window) - start + 1);
                (_positions[row], _starts[row], _counts[row]) = (p, start, count);

                Span<float> alpha = _alphas.AsSpan(row * _size, count);
                for (int s = 0; s < count; s++) alpha[s] = Score(qp, b, start + s);
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

    // general: q'·kₛ; concat: v_a·tanh(qp + kpₛ), the tanh left in _scoreHidden for the backward.
    private float Score(ReadOnlySpan<float> projectedQuery, int b, int s)
    {
        if (!_concat) return TensorPrimitives.Dot(projectedQuery, Key(b, s));
        TensorPrimitives.Add(projectedQuery, _projectedKeys.AsSpan((b * _tk + s) * _u, _u), _scoreHidden);
        TensorPrimitives.Tanh(_scoreHidden, _scoreHidden);
        return TensorPrimitives.Dot(_data.ConcatVector, _scoreHidden);
    }

    public void Backward()
    {
        WorkloadData x = _data;
        Array.Clear(_dQuery); Array.Clear(_dKeys); Array.Clear(_dScoreWeight); Array.Clear(_dPredictorWeight); Array.Clear(_dPredictorVector);
        Array.Clear(_dScoreVector); Array.Clear(_dProjectedKeys);
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
                ReadOnlySpan<float> qp = _projectedQuery.AsSpan(row * _scoreRows, _scoreRows);
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
                Array.Clear(_dProjectedQuery);
                for (int s = 0; s < count; s++) ScoreBackward(qp, b, start + s, g[s]);
                ReadOnlySpan<float> q = x.Query.AsSpan(row * _d, _d);
                Span<float> dq = _dQuery.AsSpan(row * _d, _d);
                // q' = W_a q (general) or qp = W_a,q q (concat): ∂W_a[k, :D] += ∂q'ₖ q and ∂q += ∂q'ₖ W_a[k, :D].
                for (int k = 0; k < _scoreRows; k++) AddOuterRow(_dScoreWeight, x.QueryWeight, k * _scoreStride, _dProjectedQuery[k], q, dq);
                // p = S·σ(u), u = v_p·z, z = tanh(W_p q): ∂u = ∂p·p(1 − p/S), ∂v_p += ∂u z, ∂pre = ∂u v_p ⊙ (1 − z²).
                float du = dp * p * (1 - p / _tk);
                ReadOnlySpan<float> z = _hidden.AsSpan(row * _u, _u);
                TensorPrimitives.MultiplyAdd(z, du, _dPredictorVector, _dPredictorVector);
                TensorPrimitives.Multiply(z, z, _dPre);
                TensorPrimitives.Subtract(1f, _dPre, _dPre);
                TensorPrimitives.Multiply(_dPre, x.ScoreVector, _dPre);
                TensorPrimitives.Multiply(_dPre, du, _dPre);
                // pre = W_p q: ∂W_p[r, :] += ∂preᵣ q and ∂q += ∂preᵣ W_p[r, :].
                for (int r = 0; r < _u; r++) AddOuterRow(_dPredictorWeight, x.KeyWeight, r * _d, _dPre[r], q, dq);
            }
        }
        if (!_concat) return;
        // kpₛ = W_a,k kₛ for every key: ∂W_a[r, D:] += ∂kpᵣ kₛ and ∂kₛ += ∂kpᵣ W_a[r, D:].
        for (int key = 0; key < _b * _tk; key++)
        {
            Span<float> dKey = _dKeys.AsSpan(key * _d, _d);
            for (int r = 0; r < _u; r++) AddOuterRow(_dScoreWeight, x.QueryWeight, r * _scoreStride + _d, _dProjectedKeys[key * _u + r], x.Keys.AsSpan(key * _d, _d), dKey);
        }
    }

    // The score's backward from ∂eₛ. General: ∂q' += ∂eₛ kₛ and ∂kₛ += ∂eₛ q'. Concat, z = tanh(qp + kpₛ): ∂v_a += ∂eₛ z and
    // ∂qp, ∂kpₛ += ∂eₛ v_a ⊙ (1 − z²).
    private void ScoreBackward(ReadOnlySpan<float> projectedQuery, int b, int s, float dScore)
    {
        if (!_concat)
        {
            TensorPrimitives.MultiplyAdd(Key(b, s), dScore, _dProjectedQuery, _dProjectedQuery);
            Span<float> dKey = _dKeys.AsSpan((b * _tk + s) * _d, _d);
            TensorPrimitives.MultiplyAdd(projectedQuery, dScore, dKey, dKey);
            return;
        }
        Score(projectedQuery, b, s);
        TensorPrimitives.MultiplyAdd(_scoreHidden, dScore, _dScoreVector, _dScoreVector);
        TensorPrimitives.Multiply(_scoreHidden, _scoreHidden, _scoreHidden);
        TensorPrimitives.Subtract(1f, _scoreHidden, _scoreHidden);
        TensorPrimitives.Multiply(_scoreHidden, _data.ConcatVector, _scoreHidden);
        TensorPrimitives.MultiplyAdd(_scoreHidden, dScore, _dProjectedQuery, _dProjectedQuery);
        Span<float> dProjectedKey = _dProjectedKeys.AsSpan((b * _tk + s) * _u, _u);
        TensorPrimitives.MultiplyAdd(_scoreHidden, dScore, dProjectedKey, dProjectedKey);
    }

    // For y = W x and the D columns of W from offset (one row, or the key half of a concat row) with ∂yₖ = gradient:
    // ∂W[offset..] += gradient · x, ∂x += gradient · W[offset..].
    private void AddOuterRow(float[] dWeight, float[] weight, int offset, float gradient, ReadOnlySpan<float> input, Span<float> dInput)
    {
        Span<float> dRow = dWeight.AsSpan(offset, _d);
        TensorPrimitives.MultiplyAdd(input, gradient, dRow, dRow);
        TensorPrimitives.MultiplyAdd(weight.AsSpan(offset, _d), gradient, dInput, dInput);
    }
}
