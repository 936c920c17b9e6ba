using System;
using System.Collections.Generic;
using System.Numerics.Tensors;

namespace AttentionGen.Benchmarks;

/// <summary>
/// The peer without the generator for monotonic attention (Raffel et al. 2017), written by hand with runtime-sized loops
/// over <see cref="TensorPrimitives"/> (keys are the values): eᵢⱼ = v·tanh(W_q qᵢ + W_k kⱼ + b) + r, pᵢⱼ = σ(eᵢⱼ), the
/// expected alignment by its recursion qⱼ = (1 − pⱼ₋₁) qⱼ₋₁ + αᵢ₋₁,ⱼ, αᵢⱼ = pⱼ qⱼ from α₀ = one-hot(0), cᵢ = Σⱼ αᵢⱼ kⱼ;
/// and a hand-written backward through the recursion.
/// </summary>
public sealed class MonotonicBaseline : IBaseline
{
    private readonly WorkloadData _data;
    private readonly int _b, _tq, _tk, _d, _u;
    private readonly float[] _queryProjection, _keyProjection, _choose, _weights, _scratch, _q, _g, _carry, _dEnergy, _dKeyProjection, _dQueryProjection;
    private readonly float[] DQuery, DKeys, DQueryWeight, DKeyWeight, DBias, DScoreVector, DEnergyBias;

    public MonotonicBaseline(WorkloadData data)
    {
        _data = data;
        Workload w = data.Workload;
        (_b, _tq, _tk, _d, _u) = (w.Batch, w.QueryLength, w.KeyLength, w.Dim, w.Units);
        _queryProjection = new float[_b * _tq * _u];
        _keyProjection = new float[_b * _tk * _u];
        _choose = new float[_b * _tq * _tk];
        _weights = new float[_b * _tq * _tk];
        _scratch = new float[_u];
        _q = new float[_tk];
        _g = new float[_tk];
        _carry = new float[_tk];
        _dEnergy = new float[_tk];
        Context = new float[_b * _tq * _d];
        DQuery = new float[data.Query.Length];
        DKeys = new float[data.Keys.Length];
        DQueryWeight = new float[_u * _d];
        DKeyWeight = new float[_u * _d];
        DBias = new float[_u];
        DScoreVector = new float[_u];
        DEnergyBias = new float[1];
        _dKeyProjection = new float[_tk * _u];
        _dQueryProjection = new float[_u];
        Gradients = new Dictionary<string, float[]>
        {
            ["query"] = DQuery, ["keys"] = DKeys, ["query_weight"] = DQueryWeight, ["key_weight"] = DKeyWeight,
            ["score_bias"] = DBias, ["score_vector"] = DScoreVector, ["energy_bias"] = DEnergyBias,
        };
    }

    public float[] Context { get; }

    public bool HasBackward => true;

    public IReadOnlyDictionary<string, float[]> Gradients { get; }

    public void Forward()
    {
        WorkloadData x = _data;
        float r = x.EnergyBias[0];
        Project(x.Query, x.QueryWeight, null, _queryProjection, _b * _tq);
        Project(x.Keys, x.KeyWeight, x.Bias, _keyProjection, _b * _tk);
        Array.Clear(Context);
        for (int b = 0; b < _b; b++)
        {
            for (int i = 0; i < _tq; i++)
            {
                int row = b * _tq + i;
                Span<float> p = _choose.AsSpan(row * _tk, _tk);
                ReadOnlySpan<float> qp = _queryProjection.AsSpan(row * _u, _u);
                for (int j = 0; j < _tk; j++)
                {
                    TensorPrimitives.Add(qp, _keyProjection.AsSpan((b * _tk + j) * _u, _u), _scratch);
                    TensorPrimitives.Tanh(_scratch, _scratch);
                    p[j] = TensorPrimitives.Dot(x.ScoreVector, _scratch) + r;
                }
                TensorPrimitives.Sigmoid(p, p);
                Span<float> alignment = _weights.AsSpan(row * _tk, _tk);
                float q = 0;
                for (int j = 0; j < _tk; j++)
                {
                    float previous = i == 0 ? (j == 0 ? 1 : 0) : _weights[(row - 1) * _tk + j];
                    q = j == 0 ? previous : (1 - p[j - 1]) * q + previous;
                    alignment[j] = p[j] * q;
                }
                Span<float> context = Context.AsSpan(row * _d, _d);
                for (int j = 0; j < _tk; j++)
                {
                    TensorPrimitives.MultiplyAdd(x.Keys.AsSpan((b * _tk + j) * _d, _d), alignment[j], context, context);
                }
            }
        }
    }

    public void Backward()
    {
        WorkloadData x = _data;
        Array.Clear(DQuery); Array.Clear(DKeys); Array.Clear(DQueryWeight); Array.Clear(DKeyWeight); Array.Clear(DBias); Array.Clear(DScoreVector);
        DEnergyBias[0] = 0;
        float[] dKeyProjection = _dKeyProjection, dQueryProjection = _dQueryProjection;
        for (int b = 0; b < _b; b++)
        {
            Array.Clear(dKeyProjection);
            Array.Clear(_carry);
            for (int i = _tq - 1; i >= 0; i--)
            {
                int row = b * _tq + i;
                ReadOnlySpan<float> a = _weights.AsSpan(row * _tk, _tk);
                ReadOnlySpan<float> p = _choose.AsSpan(row * _tk, _tk);
                ReadOnlySpan<float> dc = x.DContext.AsSpan(row * _d, _d);
                // g = ∂L/∂αᵢ: the value path plus what step i + 1 sent back; keys get αᵢⱼ ∂L/∂cᵢ.
                for (int j = 0; j < _tk; j++)
                {
                    _g[j] = TensorPrimitives.Dot(dc, x.Keys.AsSpan((b * _tk + j) * _d, _d)) + _carry[j];
                    Span<float> dValue = DKeys.AsSpan((b * _tk + j) * _d, _d);
                    TensorPrimitives.MultiplyAdd(dc, a[j], dValue, dValue);
                }
                // Recompute q, then reverse the recursion: Gⱼ = gⱼ pⱼ + Gⱼ₊₁ (1 − pⱼ), ∂pⱼ = qⱼ (gⱼ − Gⱼ₊₁), ∂αᵢ₋₁,ⱼ = Gⱼ.
                float q = 0;
                for (int j = 0; j < _tk; j++)
                {
                    float previous = i == 0 ? (j == 0 ? 1 : 0) : _weights[(row - 1) * _tk + j];
                    q = j == 0 ? previous : (1 - p[j - 1]) * q + previous;
                    _q[j] = q;
                }
                float next = 0;
                for (int j = _tk - 1; j >= 0; j--)
                {
                    float dp = _q[j] * (_g[j] - next);
                    next = _g[j] * p[j] + next * (1 - p[j]);
                    _carry[j] = next;
                    _dEnergy[j] = dp * p[j] * (1 - p[j]);
                    DEnergyBias[0] += _dEnergy[j];
                }
                // Through the additive energy, as the additive baseline does with ∂L/∂e.
                Array.Clear(dQueryProjection);
                ReadOnlySpan<float> qp = _queryProjection.AsSpan(row * _u, _u);
                for (int j = 0; j < _tk; j++)
                {
                    TensorPrimitives.Add(qp, _keyProjection.AsSpan((b * _tk + j) * _u, _u), _scratch);
                    TensorPrimitives.Tanh(_scratch, _scratch);                         // z
                    TensorPrimitives.MultiplyAdd(_scratch, _dEnergy[j], DScoreVector, DScoreVector);
                    TensorPrimitives.Multiply(_scratch, _scratch, _scratch);           // z²
                    TensorPrimitives.Subtract(1f, _scratch, _scratch);                 // 1 − z²
                    TensorPrimitives.Multiply(_scratch, x.ScoreVector, _scratch);
                    TensorPrimitives.Multiply(_scratch, _dEnergy[j], _scratch);        // ∂pre
                    TensorPrimitives.Add(dQueryProjection, _scratch, dQueryProjection);
                    Span<float> dkp = dKeyProjection.AsSpan(j * _u, _u);
                    TensorPrimitives.Add(dkp, _scratch, dkp);
                }
                ReadOnlySpan<float> query = x.Query.AsSpan(row * _d, _d);
                Span<float> dq = DQuery.AsSpan(row * _d, _d);
                for (int u = 0; u < _u; u++)
                {
                    Span<float> gradientRow = DQueryWeight.AsSpan(u * _d, _d);
                    TensorPrimitives.MultiplyAdd(query, dQueryProjection[u], gradientRow, gradientRow);
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
