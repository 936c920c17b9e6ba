using System;
using TorchSharp;
using static TorchSharp.torch;

namespace AttentionGen.Benchmarks;

/// <summary>
/// The peer a .NET user would pick: TorchSharp (libtorch CPU) running the same math as plain tensor code, as
/// ../shared/bench/workloads.md describes: additive = tanh(q·W_qᵀ ⊕ k·W_kᵀ + b)·v, softmax, weights·keys.
/// </summary>
public sealed class TorchPeer : IDisposable
{
    private readonly Tensor _query, _keys, _queryWeight, _keyWeight, _bias, _scoreVector;

    private readonly bool _luong, _pooling;

    public TorchPeer(AdditiveData data, int threads)
    {
        _luong = data.Workload.Layer == "luong";
        _pooling = data.Workload.Layer == "pooling";
        torch.set_num_threads(threads);
        Workload w = data.Workload;
        _query = tensor(data.Query, new long[] { w.Batch, w.QueryLength, w.Dim });
        _keys = tensor(data.Keys, new long[] { w.Batch, w.KeyLength, w.Dim });
        _queryWeight = tensor(data.QueryWeight, new long[] { w.Units, w.Dim });
        _keyWeight = tensor(data.KeyWeight, new long[] { w.Units, w.Dim });
        _bias = tensor(data.Bias, new long[] { w.Units });
        _scoreVector = tensor(data.ScoreVector, new long[] { w.Units });
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
            reason = exception.GetType().Name + ": " + (exception.InnerException?.Message ?? exception.Message);
            return false;
        }
    }

    private Tensor Context(Tensor query, Tensor keys, Tensor queryWeight, Tensor keyWeight, Tensor bias, Tensor scoreVector)
        => _pooling ? PoolingContext(query, queryWeight, bias, scoreVector)
            : _luong ? LuongContext(query, keys, queryWeight) : AdditiveContext(query, keys, queryWeight, keyWeight, bias, scoreVector);

    // HAN pooling: u = tanh(h·Wᵀ + b), α = softmax(u·u_w) over t, s = Σₜ αₜ hₜ.
    private static Tensor PoolingContext(Tensor input, Tensor weight, Tensor bias, Tensor context)
    {
        Tensor alpha = (input.matmul(weight.t()) + bias).tanh().matmul(context).softmax(-1); // [B, T]
        return alpha.unsqueeze(1).bmm(input).squeeze(1);                                    // [B, D]
    }

    // Luong general: (q·Wᵀ)·kᵀ, softmax, ·keys (W [KeyDim, Dim] as the generated layer's ScoreWeight).
    private static Tensor LuongContext(Tensor query, Tensor keys, Tensor weight)
        => query.matmul(weight.t()).bmm(keys.transpose(1, 2)).softmax(-1).bmm(keys);

    private Tensor AdditiveContext(Tensor query, Tensor keys, Tensor queryWeight, Tensor keyWeight, Tensor bias, Tensor scoreVector)
    {
        Tensor queryProjection = query.matmul(queryWeight.t());                       // [B, Tq, U]
        Tensor keyProjection = keys.matmul(keyWeight.t()) + bias;                     // [B, Tk, U]
        Tensor hidden = (queryProjection.unsqueeze(2) + keyProjection.unsqueeze(1)).tanh(); // [B, Tq, Tk, U]
        Tensor scores = hidden.matmul(scoreVector);                                  // [B, Tq, Tk]
        Tensor weights = scores.softmax(-1);
        return weights.bmm(keys);                                                    // [B, Tq, D]
    }

    public float[] Forward()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return Context(_query, _keys, _queryWeight, _keyWeight, _bias, _scoreVector).data<float>().ToArray();
    }

    /// <summary>A training step: forward keeping the graph, then context.sum().backward() into every input and parameter.</summary>
    public void ForwardBackward()
    {
        using var scope = NewDisposeScope();
        Tensor q = _query.detach().requires_grad_(), k = _keys.detach().requires_grad_();
        Tensor wq = _queryWeight.detach().requires_grad_(), wk = _keyWeight.detach().requires_grad_();
        Tensor b = _bias.detach().requires_grad_(), v = _scoreVector.detach().requires_grad_();
        Context(q, k, wq, wk, b, v).sum().backward();
    }

    public void Dispose()
    {
        _query.Dispose(); _keys.Dispose(); _queryWeight.Dispose(); _keyWeight.Dispose(); _bias.Dispose(); _scoreVector.Dispose();
    }
}
