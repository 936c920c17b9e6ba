using System;
using System.Collections.Generic;
using System.Numerics.Tensors;

namespace AttentionGen.Benchmarks;

/// <summary>
/// The peer without the generator for monotonic attention (Raffel et al. 2017), written by hand with runtime-sized loops
/// over <see cref="TensorPrimitives"/> (keys are the values): eᵢⱼ = v·tanh(W_q qᵢ + W_k kⱼ + b) + r, pᵢⱼ = σ(eᵢⱼ), the
/// expected alignment by its recursion qⱼ = (1 − pⱼ₋₁) qⱼ₋₁ + αᵢ₋₁,ⱼ, αᵢⱼ = pⱼ qⱼ from α₀ = one-hot(0), cᵢ = Σⱼ αᵢⱼ kⱼ;
/// and a hand-written backward through the recursion.
/// With Chunk = w ≥ 1, MoChA (Chiu &amp; Raffel 2018): a chunk energy uᵢⱼ = v_c·tanh(W_cq qᵢ + W_ck kⱼ + b_c) and the expected
/// chunkwise weights βᵢⱼ = Σₖ₌ⱼ^{j+w−1} αᵢₖ exp(uᵢⱼ) / Σₗ₌ₖ₋w₊₁^{k} exp(uᵢₗ) (chunks clipped at key 0), cᵢ = Σⱼ βᵢⱼ kⱼ.
/// </summary>
public sealed class MonotonicBaseline : IBaseline
{
    private readonly WorkloadData _data;
    private readonly int _b, _tq, _tk, _d, _u, _w;
    private readonly AdditiveEnergy _energy;
    private readonly AdditiveEnergy? _chunkEnergy;
    // α [B, Tq, Tk]; for MoChA also u and β [B, Tq, Tk] and one row of chunk softmax normalisers (maximum, denominator).
    private readonly float[] _choose, _alignment, _chunkScores, _beta, _maxima, _denominators, _q, _g, _carry, _dEnergy, _dChunk, _dChunkEnergy;
    private readonly float[] DQuery, DKeys, DEnergyBias;

    public MonotonicBaseline(WorkloadData data)
    {
        _data = data;
        Workload w = data.Workload;
        (_b, _tq, _tk, _d, _u, _w) = (w.Batch, w.QueryLength, w.KeyLength, w.Dim, w.Units, w.Chunk);
        DQuery = new float[data.Query.Length];
        DKeys = new float[data.Keys.Length];
        DEnergyBias = new float[1];
        var gradients = new Dictionary<string, float[]> { ["query"] = DQuery, ["keys"] = DKeys, ["energy_bias"] = DEnergyBias };
        _energy = new AdditiveEnergy(this, data.QueryWeight, data.KeyWeight, data.Bias, data.ScoreVector, gradients, "");
        if (_w > 0)
        {
            _chunkEnergy = new AdditiveEnergy(this, data.ChunkQueryWeight, data.ChunkKeyWeight, data.ChunkBias, data.ChunkScoreVector, gradients, "chunk_");
        }
        int pairs = _b * _tq * _tk;
        _choose = new float[pairs];
        _alignment = new float[pairs];
        _chunkScores = new float[_w > 0 ? pairs : 0];
        _beta = _w > 0 ? new float[pairs] : _alignment; // without chunks the context mixes α itself
        _maxima = new float[_tk];
        _denominators = new float[_tk];
        _q = new float[_tk];
        _g = new float[_tk];
        _carry = new float[_tk];
        _dEnergy = new float[_tk];
        _dChunk = new float[_tk];
        _dChunkEnergy = new float[_tk];
        Context = new float[_b * _tq * _d];
        Gradients = gradients;
    }

    public float[] Context { get; }

    public bool HasBackward => true;

    public IReadOnlyDictionary<string, float[]> Gradients { get; }

    private ReadOnlySpan<float> Key(int b, int j) => _data.Keys.AsSpan((b * _tk + j) * _d, _d);

    public void Forward()
    {
        WorkloadData x = _data;
        float r = x.EnergyBias[0];
        _energy.Project();
        _chunkEnergy?.Project();
        Array.Clear(Context);
        for (int b = 0; b < _b; b++)
        {
            for (int i = 0; i < _tq; i++)
            {
                int row = b * _tq + i;
                Span<float> p = _choose.AsSpan(row * _tk, _tk);
                _energy.Scores(b, row, p);
                TensorPrimitives.Add(p, r, p);
                TensorPrimitives.Sigmoid(p, p);
                Span<float> alignment = _alignment.AsSpan(row * _tk, _tk);
                float q = 0;
                for (int j = 0; j < _tk; j++)
                {
                    float previous = i == 0 ? (j == 0 ? 1 : 0) : _alignment[(row - 1) * _tk + j];
                    q = j == 0 ? previous : (1 - p[j - 1]) * q + previous;
                    alignment[j] = p[j] * q;
                }
                if (_chunkEnergy is not null)
                {
                    Span<float> u = _chunkScores.AsSpan(row * _tk, _tk);
                    _chunkEnergy.Scores(b, row, u);
                    ChunkWeights(alignment, u, _beta.AsSpan(row * _tk, _tk));
                }
                ReadOnlySpan<float> beta = _beta.AsSpan(row * _tk, _tk);
                Span<float> context = Context.AsSpan(row * _d, _d);
                for (int j = 0; j < _tk; j++)
                {
                    TensorPrimitives.MultiplyAdd(Key(b, j), beta[j], context, context);
                }
            }
        }
    }

    // Chunk k = [max(0, k − w + 1), k]: Mₖ its maximum of u and Dₖ = Σ exp(uₗ − Mₖ) over it.
    private void ChunkNormalizers(ReadOnlySpan<float> u)
    {
        for (int k = 0; k < _tk; k++)
        {
            int start = Math.Max(0, k - _w + 1);
            ReadOnlySpan<float> chunk = u.Slice(start, k - start + 1);
            _maxima[k] = TensorPrimitives.Max(chunk);
            float sum = 0;
            foreach (float e in chunk) sum += MathF.Exp(e - _maxima[k]);
            _denominators[k] = sum;
        }
    }

    // sₖₗ = exp(uₗ − Mₖ) / Dₖ, the softmax of chunk k at key l.
    private float Share(ReadOnlySpan<float> u, int k, int l) => MathF.Exp(u[l] - _maxima[k]) / _denominators[k];

    // βⱼ = Σₖ₌ⱼ^{j+w−1} αₖ sₖⱼ (k < Tk): chunk k spreads the mass αₖ over its keys.
    private void ChunkWeights(ReadOnlySpan<float> alignment, ReadOnlySpan<float> u, Span<float> beta)
    {
        ChunkNormalizers(u);
        beta.Clear();
        for (int k = 0; k < _tk; k++)
        {
            for (int l = Math.Max(0, k - _w + 1); l <= k; l++) beta[l] += alignment[k] * Share(u, k, l);
        }
    }

    public void Backward()
    {
        WorkloadData x = _data;
        Array.Clear(DQuery); Array.Clear(DKeys);
        DEnergyBias[0] = 0;
        _energy.ClearGradients();
        _chunkEnergy?.ClearGradients();
        for (int b = 0; b < _b; b++)
        {
            _energy.StartBatchRow();
            _chunkEnergy?.StartBatchRow();
            Array.Clear(_carry);
            for (int i = _tq - 1; i >= 0; i--)
            {
                int row = b * _tq + i;
                ReadOnlySpan<float> a = _alignment.AsSpan(row * _tk, _tk);
                ReadOnlySpan<float> beta = _beta.AsSpan(row * _tk, _tk);
                ReadOnlySpan<float> p = _choose.AsSpan(row * _tk, _tk);
                ReadOnlySpan<float> dc = x.DContext.AsSpan(row * _d, _d);
                // ∂L/∂βᵢ (= ∂L/∂αᵢ without chunks) from the value path; keys get βᵢⱼ ∂L/∂cᵢ.
                for (int j = 0; j < _tk; j++)
                {
                    _g[j] = TensorPrimitives.Dot(dc, Key(b, j));
                    Span<float> dValue = DKeys.AsSpan((b * _tk + j) * _d, _d);
                    TensorPrimitives.MultiplyAdd(dc, beta[j], dValue, dValue);
                }
                if (_chunkEnergy is not null)
                {
                    // ḡₖ = Σₗ sₖₗ gₗ over chunk k is ∂L/∂αₖ through β; ∂L/∂uₗ = Σₖ αₖ sₖₗ (gₗ − ḡₖ) over the chunks holding l.
                    ReadOnlySpan<float> u = _chunkScores.AsSpan(row * _tk, _tk);
                    ChunkNormalizers(u);
                    Array.Clear(_dChunkEnergy);
                    for (int k = 0; k < _tk; k++)
                    {
                        int start = Math.Max(0, k - _w + 1);
                        float mean = 0;
                        for (int l = start; l <= k; l++) mean += Share(u, k, l) * _g[l];
                        _dChunk[k] = mean;
                        for (int l = start; l <= k; l++) _dChunkEnergy[l] += a[k] * Share(u, k, l) * (_g[l] - mean);
                    }
                    _dChunk.AsSpan().CopyTo(_g);
                    _chunkEnergy.Backward(b, row, _dChunkEnergy);
                }
                // g = ∂L/∂αᵢ: the value path plus what step i + 1 sent back.
                TensorPrimitives.Add(_g, _carry, _g);
                // Recompute q, then reverse the recursion: Gⱼ = gⱼ pⱼ + Gⱼ₊₁ (1 − pⱼ), ∂pⱼ = qⱼ (gⱼ − Gⱼ₊₁), ∂αᵢ₋₁,ⱼ = Gⱼ.
                float q = 0;
                for (int j = 0; j < _tk; j++)
                {
                    float previous = i == 0 ? (j == 0 ? 1 : 0) : _alignment[(row - 1) * _tk + j];
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
                _energy.Backward(b, row, _dEnergy);
            }
            _energy.FinishBatchRow(b);
            _chunkEnergy?.FinishBatchRow(b);
        }
    }

    /// <summary>
    /// One additive energy v·tanh(W_q qᵢ + W_k kⱼ + b) with its projections and gradients (named prefix + "query_weight",
    /// "key_weight", "score_bias", "score_vector"): the monotonic energy, and MoChA's chunk energy.
    /// </summary>
    private sealed class AdditiveEnergy
    {
        private readonly MonotonicBaseline _owner;
        private readonly float[] _queryWeight, _keyWeight, _bias, _scoreVector;
        private readonly float[] _queryProjection, _keyProjection, _scratch, _dQueryProjection, _dKeyProjection;
        private readonly float[] _dQueryWeight, _dKeyWeight, _dBias, _dScoreVector;

        public AdditiveEnergy(MonotonicBaseline owner, float[] queryWeight, float[] keyWeight, float[] bias, float[] scoreVector, Dictionary<string, float[]> gradients, string prefix)
        {
            _owner = owner;
            (_queryWeight, _keyWeight, _bias, _scoreVector) = (queryWeight, keyWeight, bias, scoreVector);
            int u = owner._u, d = owner._d;
            _queryProjection = new float[owner._b * owner._tq * u];
            _keyProjection = new float[owner._b * owner._tk * u];
            _scratch = new float[u];
            _dQueryProjection = new float[u];
            _dKeyProjection = new float[owner._tk * u];
            gradients[prefix + "query_weight"] = _dQueryWeight = new float[u * d];
            gradients[prefix + "key_weight"] = _dKeyWeight = new float[u * d];
            gradients[prefix + "score_bias"] = _dBias = new float[u];
            gradients[prefix + "score_vector"] = _dScoreVector = new float[u];
        }

        public void Project()
        {
            Project(_owner._data.Query, _queryWeight, null, _queryProjection, _owner._b * _owner._tq);
            Project(_owner._data.Keys, _keyWeight, _bias, _keyProjection, _owner._b * _owner._tk);
        }

        // y[r, u] = W[u, :] · x[r, :] (+ bias[u])
        private void Project(float[] inputs, float[] weight, float[]? bias, float[] outputs, int rows)
        {
            int d = _owner._d, units = _owner._u;
            for (int r = 0; r < rows; r++)
            {
                ReadOnlySpan<float> input = inputs.AsSpan(r * d, d);
                for (int u = 0; u < units; u++) outputs[r * units + u] = TensorPrimitives.Dot(weight.AsSpan(u * d, d), input) + (bias is null ? 0 : bias[u]);
            }
        }

        // The energies of query row `row` (of batch row b) against every key.
        public void Scores(int b, int row, Span<float> energies)
        {
            int units = _owner._u, tk = _owner._tk;
            ReadOnlySpan<float> qp = _queryProjection.AsSpan(row * units, units);
            for (int j = 0; j < tk; j++)
            {
                TensorPrimitives.Add(qp, _keyProjection.AsSpan((b * tk + j) * units, units), _scratch);
                TensorPrimitives.Tanh(_scratch, _scratch);
                energies[j] = TensorPrimitives.Dot(_scoreVector, _scratch);
            }
        }

        public void ClearGradients()
        {
            Array.Clear(_dQueryWeight); Array.Clear(_dKeyWeight); Array.Clear(_dBias); Array.Clear(_dScoreVector);
        }

        public void StartBatchRow() => Array.Clear(_dKeyProjection);

        // From ∂L/∂e of one query row: ∂v, ∂W_q and ∂q now; ∂kp gathered for FinishBatchRow.
        public void Backward(int b, int row, ReadOnlySpan<float> dEnergy)
        {
            WorkloadData x = _owner._data;
            int units = _owner._u, tk = _owner._tk, d = _owner._d;
            Array.Clear(_dQueryProjection);
            ReadOnlySpan<float> qp = _queryProjection.AsSpan(row * units, units);
            for (int j = 0; j < tk; j++)
            {
                TensorPrimitives.Add(qp, _keyProjection.AsSpan((b * tk + j) * units, units), _scratch);
                TensorPrimitives.Tanh(_scratch, _scratch);                         // z
                TensorPrimitives.MultiplyAdd(_scratch, dEnergy[j], _dScoreVector, _dScoreVector);
                TensorPrimitives.Multiply(_scratch, _scratch, _scratch);           // z²
                TensorPrimitives.Subtract(1f, _scratch, _scratch);                 // 1 − z²
                TensorPrimitives.Multiply(_scratch, _scoreVector, _scratch);
                TensorPrimitives.Multiply(_scratch, dEnergy[j], _scratch);         // ∂pre
                TensorPrimitives.Add(_dQueryProjection, _scratch, _dQueryProjection);
                Span<float> dkp = _dKeyProjection.AsSpan(j * units, units);
                TensorPrimitives.Add(dkp, _scratch, dkp);
            }
            ReadOnlySpan<float> query = x.Query.AsSpan(row * d, d);
            Span<float> dq = _owner.DQuery.AsSpan(row * d, d);
            for (int u = 0; u < units; u++)
            {
                Span<float> gradientRow = _dQueryWeight.AsSpan(u * d, d);
                TensorPrimitives.MultiplyAdd(query, _dQueryProjection[u], gradientRow, gradientRow);
                TensorPrimitives.MultiplyAdd(_queryWeight.AsSpan(u * d, d), _dQueryProjection[u], dq, dq);
            }
        }

        // The key side of batch row b: ∂b, ∂W_k and ∂k from the gathered ∂kp.
        public void FinishBatchRow(int b)
        {
            int units = _owner._u, tk = _owner._tk, d = _owner._d;
            for (int j = 0; j < tk; j++)
            {
                ReadOnlySpan<float> k = _owner.Key(b, j);
                Span<float> dk = _owner.DKeys.AsSpan((b * tk + j) * d, d);
                ReadOnlySpan<float> dkp = _dKeyProjection.AsSpan(j * units, units);
                TensorPrimitives.Add(_dBias, dkp, _dBias);
                for (int u = 0; u < units; u++)
                {
                    Span<float> gradientRow = _dKeyWeight.AsSpan(u * d, d);
                    TensorPrimitives.MultiplyAdd(k, dkp[u], gradientRow, gradientRow);
                    TensorPrimitives.MultiplyAdd(_keyWeight.AsSpan(u * d, d), dkp[u], dk, dk);
                }
            }
        }
    }
}
