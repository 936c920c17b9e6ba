using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace AttentionGen.Benchmarks;

/// <summary>
/// The peer a .NET user would pick: TorchSharp (libtorch CPU) running each workload as plain tensor code, as
/// ../shared/bench/workloads.md describes: additive = tanh(q·W_qᵀ ⊕ k·W_kᵀ + b)·v, softmax, weights·keys;
/// Luong general = (q·Wᵀ)·kᵀ, softmax, ·keys; pooling = HAN; W5/W6 = scaled_dot_product_attention; W7 = Luong local-p
/// with the keys of each window gathered (2D + 1 per query, so it also scores only the window); W8 = monotonic: the
/// additive energy + r, sigmoid, and the expected alignment the way PyTorch ports of TF-Addons compute it: one decoder
/// step at a time in the parallel form (exclusive cumprod, clipped divisor, cumsum), then ·keys.
/// </summary>
public sealed class TorchPeer : IDisposable
{
    private readonly Workload _workload;
    private readonly Tensor _query, _keys, _values, _queryWeight, _keyWeight, _bias, _scoreVector, _energyBias;
    private readonly Tensor? _stepKeyProjection; // additive: keys·W_kᵀ + b, computed once per sentence for DecoderStep

    public TorchPeer(WorkloadData data, int threads)
    {
        // Process-wide in libtorch; BenchmarkDotNet's global setup makes each peer set its own count.
        torch.set_num_threads(threads);
        Workload w = _workload = data.Workload;
        long[] Shape(int length) => w.Layer == "sdpa" ? new long[] { w.Batch, w.Heads, length, w.Dim } : new long[] { w.Batch, length, w.Dim };
        _query = tensor(data.Query, Shape(w.QueryLength));
        _keys = tensor(data.Keys, Shape(w.KeyLength));
        _values = tensor(data.Values, data.Values.Length == 0 ? new long[] { 0 } : Shape(w.KeyLength));
        _queryWeight = tensor(data.QueryWeight, w.Layer == "local" ? new long[] { w.Dim, w.Dim } : new long[] { w.Units, w.Dim });
        _keyWeight = tensor(data.KeyWeight, data.KeyWeight.Length == 0 ? new long[] { 0 } : new long[] { w.Units, w.Dim });
        _bias = tensor(data.Bias, new long[] { data.Bias.Length });
        _scoreVector = tensor(data.ScoreVector, new long[] { data.ScoreVector.Length });
        _energyBias = tensor(data.EnergyBias, new long[] { data.EnergyBias.Length });
        if (w.Layer == "additive")
        {
            using var noGrad = no_grad();
            _stepKeyProjection = _keys.matmul(_keyWeight.t()) + _bias;
        }
    }

    /// <summary>Whether libtorch loads here; <paramref name="reason"/> says why not.</summary>
    public static bool IsAvailable(out string reason)
    {
        try
        {
            using Tensor probe = ones(2, 2).matmul(ones(2, 2));
            reason = "";
            return probe.sum().item<float>() == 8f;
        }
        catch (Exception exception)
        {
            // TypeInitializationException / DllNotFoundException and friends: the innermost message's first line (TorchSharp
            // appends a long loader trace to it).
            Exception inner = exception;
            while (inner.InnerException is not null) inner = inner.InnerException;
            reason = exception.GetType().Name + ": " + inner.Message.Split('\n')[0].Trim();
            return false;
        }
    }

    private Tensor Context(Tensor query, Tensor keys, Tensor values, Tensor queryWeight, Tensor keyWeight, Tensor bias, Tensor scoreVector, Tensor energyBias)
        => _workload.Layer switch
        {
            "monotonic" => MonotonicContext(query, keys, queryWeight, keyWeight, bias, scoreVector, energyBias),
            "pooling" => PoolingContext(query, queryWeight, bias, scoreVector),
            "luong" => LuongContext(query, keys, queryWeight),
            "sdpa" => nn.functional.scaled_dot_product_attention(query, keys, values, is_casual: _workload.Causal),
            "local" => LocalContext(query, keys, queryWeight, keyWeight, scoreVector, _workload.Window),
            _ => AdditiveContext(query, keys, queryWeight, keyWeight, bias, scoreVector),
        };

    // HAN pooling: u = tanh(h·Wᵀ + b), α = softmax(u·u_w) over t, s = Σₜ αₜ hₜ.
    private static Tensor PoolingContext(Tensor input, Tensor weight, Tensor bias, Tensor context)
    {
        Tensor alpha = (input.matmul(weight.t()) + bias).tanh().matmul(context).softmax(-1); // [B, T]
        return alpha.unsqueeze(1).bmm(input).squeeze(1);                                    // [B, D]
    }

    // Luong general: (q·Wᵀ)·kᵀ, softmax, ·keys (W [KeyDim, Dim] as the generated layer's ScoreWeight).
    private static Tensor LuongContext(Tensor query, Tensor keys, Tensor weight)
        => query.matmul(weight.t()).bmm(keys.transpose(1, 2)).softmax(-1).bmm(keys);

    // Luong local-p, general score: pₜ = S·sigmoid(v_p·tanh(W_p q)), the 2D + 1 keys around ⌊pₜ + ½⌋ gathered (positions
    // outside [0, S − 1] masked), α = softmax of (W_a q)·kₛ over them, a = α·exp(−(s − pₜ)²/(2σ²)), σ = D/2, context = Σ a kₛ.
    private static Tensor LocalContext(Tensor query, Tensor keys, Tensor scoreWeight, Tensor predictorWeight, Tensor predictorVector, int window)
    {
        long batch = query.shape[0], queries = query.shape[1], length = keys.shape[1], dim = keys.shape[2], size = 2 * window + 1;
        Tensor projected = query.matmul(scoreWeight.t());                                             // [B, Tq, D]
        Tensor positions = query.matmul(predictorWeight.t()).tanh().matmul(predictorVector).sigmoid() * length; // [B, Tq]
        Tensor centers = (positions.detach() + 0.5).floor().to_type(ScalarType.Int64).clamp(0, length);
        Tensor offsets = arange(-window, window + 1, dtype: ScalarType.Int64);                       // [2D+1]
        Tensor index = centers.unsqueeze(-1) + offsets;                                               // [B, Tq, 2D+1]
        Tensor inside = index.ge(0).logical_and(index.lt(length));
        Tensor gathered = keys.gather(1, index.clamp(0, length - 1).reshape(batch, queries * size, 1).expand(batch, queries * size, dim))
            .reshape(batch, queries, size, dim);                                                      // [B, Tq, 2D+1, D]
        Tensor scores = gathered.matmul(projected.unsqueeze(-1)).squeeze(-1).masked_fill(inside.logical_not(), double.NegativeInfinity);
        Tensor distance = index.to_type(ScalarType.Float32) - positions.unsqueeze(-1);
        Tensor weights = scores.softmax(-1) * (distance * distance * (-2.0 / (window * window))).exp(); // σ = D/2
        return weights.unsqueeze(-2).matmul(gathered).squeeze(-2);                                    // [B, Tq, D]
    }

    private static Tensor AdditiveContext(Tensor query, Tensor keys, Tensor queryWeight, Tensor keyWeight, Tensor bias, Tensor scoreVector)
        => AdditiveFromKeyProjection(query, keys.matmul(keyWeight.t()) + bias, keys, queryWeight, scoreVector); // key projection [B, Tk, U]

    // The additive context from a key projection kp = keys·W_kᵀ + b: what a decoder step computes when kp is kept per sentence.
    private static Tensor AdditiveFromKeyProjection(Tensor query, Tensor keyProjection, Tensor keys, Tensor queryWeight, Tensor scoreVector)
    {
        Tensor queryProjection = query.matmul(queryWeight.t());                             // [B, Tq, U]
        Tensor hidden = (queryProjection.unsqueeze(2) + keyProjection.unsqueeze(1)).tanh(); // [B, Tq, Tk, U]
        Tensor scores = hidden.matmul(scoreVector);                                         // [B, Tq, Tk]
        return scores.softmax(-1).bmm(keys);                                                // [B, Tq, D]
    }

    // Monotonic: p = σ(v·tanh(q·W_qᵀ ⊕ k·W_kᵀ + b) + r); per step αᵢ = pᵢ ⊙ c ⊙ cumsum(αᵢ₋₁ / clamp(c, 1e-10, 1)) with
    // c = exclusive cumprod(1 − pᵢ), α₀ = one-hot(0); context = α·keys.
    private static Tensor MonotonicContext(Tensor query, Tensor keys, Tensor queryWeight, Tensor keyWeight, Tensor bias, Tensor scoreVector, Tensor energyBias)
    {
        Tensor queryProjection = query.matmul(queryWeight.t());                             // [B, Tq, U]
        Tensor keyProjection = keys.matmul(keyWeight.t()) + bias;                           // [B, Tk, U]
        Tensor hidden = (queryProjection.unsqueeze(2) + keyProjection.unsqueeze(1)).tanh(); // [B, Tq, Tk, U]
        Tensor p = (hidden.matmul(scoreVector) + energyBias).sigmoid();                     // [B, Tq, Tk]
        long batch = p.shape[0], tq = p.shape[1], tk = p.shape[2];
        Tensor previous = cat(new[] { ones(batch, 1), zeros(batch, tk - 1) }, 1);        // α₀ = one-hot(0)
        var rows = new Tensor[tq];
        for (long i = 0; i < tq; i++)
        {
            Tensor pi = p.select(1, i);                                                      // [B, Tk]
            Tensor product = cat(new[] { ones(batch, 1), (1 - pi).cumprod(1).narrow(1, 0, tk - 1) }, 1);
            previous = rows[i] = pi * product * (previous / product.clamp(1e-10, 1)).cumsum(1);
        }
        return stack(rows, 1).bmm(keys);                                                     // [B, Tq, D]
    }

    /// <summary>Inference: the context under no_grad, copied out.</summary>
    public float[] Forward()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return Context(_query, _keys, _values, _queryWeight, _keyWeight, _bias, _scoreVector, _energyBias).data<float>().ToArray();
    }

    /// <summary>
    /// Additive workloads: the inference forward as a decoder step makes it, from the key projection kept since the
    /// constructor (keys·W_kᵀ + b): q·W_qᵀ, tanh of the broadcast sum, ·v, softmax, ·keys. The context, copied out.
    /// </summary>
    public float[] DecoderStep()
    {
        if (_stepKeyProjection is null) throw new InvalidOperationException($"{_workload.Id} is not an additive workload");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return AdditiveFromKeyProjection(_query, _stepKeyProjection, _keys, _queryWeight, _scoreVector).data<float>().ToArray();
    }

    /// <summary>
    /// A training step: forward keeping the graph, then context.sum().backward() into every input and parameter.
    /// Fresh leaves each call (detach().requires_grad_()), so gradients never accumulate across calls.
    /// </summary>
    public void ForwardBackward() => Step(null);

    /// <summary>One training step, returning the gradients under the names the baselines use.</summary>
    public IReadOnlyDictionary<string, float[]> Gradients()
    {
        var gradients = new Dictionary<string, float[]>();
        Step(gradients);
        return gradients;
    }

    private void Step(Dictionary<string, float[]>? gradients)
    {
        using var scope = NewDisposeScope();
        Tensor Leaf(Tensor t) => t.numel() == 0 ? t : t.detach().requires_grad_();
        Tensor q = Leaf(_query), k = Leaf(_keys), v = Leaf(_values);
        Tensor wq = Leaf(_queryWeight), wk = Leaf(_keyWeight), b = Leaf(_bias), u = Leaf(_scoreVector), r = Leaf(_energyBias);
        Context(q, k, v, wq, wk, b, u, r).sum().backward();
        if (gradients is null) return;
        void Add(string name, Tensor t) { if (t.numel() > 0 && t.grad is not null) gradients[name] = t.grad.data<float>().ToArray(); }
        switch (_workload.Layer)
        {
            case "pooling": Add("input", q); Add("weight", wq); Add("bias", b); Add("context_vector", u); break;
            case "luong": Add("query", q); Add("keys", k); Add("score_weight", wq); break;
            case "sdpa": Add("query", q); Add("keys", k); Add("values", v); break;
            case "local": Add("query", q); Add("keys", k); Add("score_weight", wq); Add("predictor_weight", wk); Add("predictor_vector", u); break;
            case "monotonic": Add("query", q); Add("keys", k); Add("query_weight", wq); Add("key_weight", wk); Add("score_bias", b); Add("score_vector", u); Add("energy_bias", r); break;
            default: Add("query", q); Add("keys", k); Add("query_weight", wq); Add("key_weight", wk); Add("score_bias", b); Add("score_vector", u); break;
        }
    }

    public void Dispose()
    {
        _query.Dispose(); _keys.Dispose(); _values.Dispose(); _queryWeight.Dispose(); _keyWeight.Dispose(); _bias.Dispose(); _scoreVector.Dispose(); _energyBias.Dispose(); _stepKeyProjection?.Dispose();
    }
}
