using System;
using System.Collections.Generic;
using System.Numerics.Tensors;

namespace AttentionGen.Benchmarks;

/// <summary>
/// Structured self-attention (Lin et al. 2017) by hand over <see cref="TensorPrimitives"/>, runtime-sized: per sequence
/// H [T, D], hidₜ = tanh(W_s1 hₜ), A[i, :] = softmax over t of W_s2[i, :]·hidₜ for each of the r hops, M = A H [r, D].
/// No penalty (the workload's coefficient is 0). Forward and a hand-written backward.
/// </summary>
public sealed class StructuredBaseline : IBaseline
{
    private readonly WorkloadData _data;
    private readonly int _b, _t, _d, _u, _hops;
    private readonly float[] _hidden, _weights, _dScores, _dHidden;
    private readonly float[] _dInput, _dFirstWeight, _dSecondWeight;

    public StructuredBaseline(WorkloadData data)
    {
        _data = data;
        Workload w = data.Workload;
        (_b, _t, _d, _u, _hops) = (w.Batch, w.QueryLength, w.Dim, w.Units, w.Hops);
        _hidden = new float[_b * _t * _u];
        _weights = new float[_b * _hops * _t];
        _dScores = new float[_hops * _t];
        _dHidden = new float[_u];
        Context = new float[_b * _hops * _d];
        _dInput = new float[data.Query.Length];
        _dFirstWeight = new float[_u * _d];
        _dSecondWeight = new float[_hops * _u];
        Gradients = new Dictionary<string, float[]> { ["input"] = _dInput, ["ws1"] = _dFirstWeight, ["ws2"] = _dSecondWeight };
    }

    public float[] Context { get; }

    public bool HasBackward => true;

    public IReadOnlyDictionary<string, float[]> Gradients { get; }

    private ReadOnlySpan<float> State(int b, int t) => _data.Query.AsSpan((b * _t + t) * _d, _d);

    public void Forward()
    {
        WorkloadData x = _data;
        Array.Clear(Context);
        for (int b = 0; b < _b; b++)
        {
            for (int t = 0; t < _t; t++)
            {
                Span<float> hidden = _hidden.AsSpan((b * _t + t) * _u, _u);
                for (int r = 0; r < _u; r++) hidden[r] = TensorPrimitives.Dot(x.QueryWeight.AsSpan(r * _d, _d), State(b, t));
                TensorPrimitives.Tanh(hidden, hidden);
            }
            for (int i = 0; i < _hops; i++)
            {
                Span<float> a = _weights.AsSpan((b * _hops + i) * _t, _t);
                ReadOnlySpan<float> hop = x.HopWeight.AsSpan(i * _u, _u);
                for (int t = 0; t < _t; t++) a[t] = TensorPrimitives.Dot(hop, _hidden.AsSpan((b * _t + t) * _u, _u));
                // Softmax with the maximum subtracted (TensorPrimitives.SoftMax does not subtract it).
                TensorPrimitives.Subtract(a, TensorPrimitives.Max(a), a);
                TensorPrimitives.Exp(a, a);
                TensorPrimitives.Divide(a, TensorPrimitives.Sum(a), a);
                Span<float> m = Context.AsSpan((b * _hops + i) * _d, _d);
                for (int t = 0; t < _t; t++) TensorPrimitives.MultiplyAdd(State(b, t), a[t], m, m);
            }
        }
    }

    public void Backward()
    {
        WorkloadData x = _data;
        Array.Clear(_dInput); Array.Clear(_dFirstWeight); Array.Clear(_dSecondWeight);
        for (int b = 0; b < _b; b++)
        {
            // M = A H: ∂A[i, t] = ∂M[i]·hₜ, ∂hₜ += A[i, t] ∂M[i]; then each hop's softmax: ∂E = A ⊙ (∂A − A·∂A).
            for (int i = 0; i < _hops; i++)
            {
                ReadOnlySpan<float> a = _weights.AsSpan((b * _hops + i) * _t, _t);
                ReadOnlySpan<float> dm = x.DContext.AsSpan((b * _hops + i) * _d, _d);
                Span<float> g = _dScores.AsSpan(i * _t, _t);
                for (int t = 0; t < _t; t++)
                {
                    g[t] = TensorPrimitives.Dot(dm, State(b, t));
                    Span<float> dState = _dInput.AsSpan((b * _t + t) * _d, _d);
                    TensorPrimitives.MultiplyAdd(dm, a[t], dState, dState);
                }
                TensorPrimitives.Subtract(g, TensorPrimitives.Dot(a, g), g);
                TensorPrimitives.Multiply(g, a, g);
            }
            for (int t = 0; t < _t; t++)
            {
                // E[i, t] = W_s2[i]·hidₜ: ∂W_s2[i] += ∂E[i, t] hidₜ, ∂hidₜ = Σᵢ ∂E[i, t] W_s2[i]; through the tanh.
                ReadOnlySpan<float> hidden = _hidden.AsSpan((b * _t + t) * _u, _u);
                _dHidden.AsSpan().Clear();
                for (int i = 0; i < _hops; i++)
                {
                    float de = _dScores[i * _t + t];
                    Span<float> dHop = _dSecondWeight.AsSpan(i * _u, _u);
                    TensorPrimitives.MultiplyAdd(hidden, de, dHop, dHop);
                    TensorPrimitives.MultiplyAdd(x.HopWeight.AsSpan(i * _u, _u), de, _dHidden, _dHidden);
                }
                for (int r = 0; r < _u; r++) _dHidden[r] *= 1 - hidden[r] * hidden[r];
                // hidₜ = tanh(W_s1 hₜ): ∂W_s1[r] += ∂preᵣ hₜ, ∂hₜ += ∂preᵣ W_s1[r].
                Span<float> dState = _dInput.AsSpan((b * _t + t) * _d, _d);
                for (int r = 0; r < _u; r++)
                {
                    Span<float> dRow = _dFirstWeight.AsSpan(r * _d, _d);
                    TensorPrimitives.MultiplyAdd(State(b, t), _dHidden[r], dRow, dRow);
                    TensorPrimitives.MultiplyAdd(x.QueryWeight.AsSpan(r * _d, _d), _dHidden[r], dState, dState);
                }
            }
        }
    }
}
