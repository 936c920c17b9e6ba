using System;
using System.Collections.Generic;
using System.Numerics.Tensors;

namespace AttentionGen.Benchmarks;

/// <summary>
/// Key-value attention (Daniluk et al. 2017) by hand over <see cref="TensorPrimitives"/>, runtime-sized, whole sequences:
/// each step's input is [kₜ; vₜ]; over the previous L steps s (those before the start left out),
/// eₜ(s) = w·tanh(W^Y kₛ + W^h kₜ), αₜ = softmax(eₜ), rₜ = Σₛ αₜ(s) vₛ (rₜ = 0 at step 0), h*ₜ = tanh(W^r rₜ + W^x vₜ).
/// Forward and a hand-written backward.
/// </summary>
public sealed class KeyValueBaseline : IBaseline
{
    private readonly WorkloadData _data;
    private readonly int _b, _t, _d, _window;
    private readonly float[] _memory, _current, _alphas, _reads, _hidden;
    private readonly float[] _dMemory, _dCurrent, _dRead, _dPre, _dAlpha;
    private readonly float[] _dInput, _dMemoryWeight, _dQueryWeight, _dScoreVector, _dContextWeight, _dInputWeight;

    public KeyValueBaseline(WorkloadData data)
    {
        _data = data;
        Workload w = data.Workload;
        (_b, _t, _d, _window) = (w.Batch, w.QueryLength, w.Dim, w.Window);
        int steps = _b * _t;
        _memory = new float[steps * _d];
        _current = new float[steps * _d];
        _alphas = new float[steps * _window];
        _reads = new float[steps * _d];
        _hidden = new float[_d];
        Context = new float[steps * _d];
        _dMemory = new float[steps * _d];
        _dCurrent = new float[steps * _d];
        _dRead = new float[_d];
        _dPre = new float[_d];
        _dAlpha = new float[_window];
        _dInput = new float[data.Query.Length];
        _dMemoryWeight = new float[_d * _d];
        _dQueryWeight = new float[_d * _d];
        _dScoreVector = new float[_d];
        _dContextWeight = new float[_d * _d];
        _dInputWeight = new float[_d * _d];
        Gradients = new Dictionary<string, float[]>
        {
            ["input"] = _dInput, ["memory_weight"] = _dMemoryWeight, ["query_weight"] = _dQueryWeight,
            ["score_vector"] = _dScoreVector, ["context_weight"] = _dContextWeight, ["input_weight"] = _dInputWeight,
        };
    }

    public float[] Context { get; }

    public bool HasBackward => true;

    public IReadOnlyDictionary<string, float[]> Gradients { get; }

    private ReadOnlySpan<float> Key(int step) => _data.Query.AsSpan(step * 2 * _d, _d);

    private ReadOnlySpan<float> Value(int step) => _data.Query.AsSpan(step * 2 * _d + _d, _d);

    // The first step of step t's window, and how many steps it holds (t of them near the start).
    private (int First, int Count) WindowOf(int t) => (Math.Max(0, t - _window), Math.Min(t, _window));

    public void Forward()
    {
        WorkloadData x = _data;
        int steps = _b * _t;
        // W^Y kₛ and W^h kₜ once per step.
        for (int step = 0; step < steps; step++)
        {
            MatrixVector(x.KeyWeight, Key(step), _memory.AsSpan(step * _d, _d));
            MatrixVector(x.QueryWeight, Key(step), _current.AsSpan(step * _d, _d));
        }
        for (int b = 0; b < _b; b++)
        {
            for (int t = 0; t < _t; t++)
            {
                int step = b * _t + t;
                (int first, int count) = WindowOf(t);
                Span<float> alpha = _alphas.AsSpan(step * _window, count);
                for (int s = 0; s < count; s++) alpha[s] = Score(b * _t + first + s, step);
                Span<float> read = _reads.AsSpan(step * _d, _d);
                read.Clear();
                if (count > 0)
                {
                    // Softmax with the maximum subtracted (TensorPrimitives.SoftMax does not subtract it).
                    TensorPrimitives.Subtract(alpha, TensorPrimitives.Max(alpha), alpha);
                    TensorPrimitives.Exp(alpha, alpha);
                    TensorPrimitives.Divide(alpha, TensorPrimitives.Sum(alpha), alpha);
                    for (int s = 0; s < count; s++) TensorPrimitives.MultiplyAdd(Value(b * _t + first + s), alpha[s], read, read);
                }
                Span<float> output = Context.AsSpan(step * _d, _d);
                for (int k = 0; k < _d; k++)
                {
                    output[k] = TensorPrimitives.Dot(x.ContextWeight.AsSpan(k * _d, _d), read) + TensorPrimitives.Dot(x.InputWeight.AsSpan(k * _d, _d), Value(step));
                }
                TensorPrimitives.Tanh(output, output);
            }
        }
    }

    // eₜ(s) = w·tanh(W^Y kₛ + W^h kₜ), the hidden vector left in _hidden for the backward.
    private float Score(int remembered, int step)
    {
        TensorPrimitives.Add(_memory.AsSpan(remembered * _d, _d), _current.AsSpan(step * _d, _d), _hidden);
        TensorPrimitives.Tanh(_hidden, _hidden);
        return TensorPrimitives.Dot(_data.ScoreVector, _hidden);
    }

    public void Backward()
    {
        WorkloadData x = _data;
        Array.Clear(_dInput); Array.Clear(_dMemoryWeight); Array.Clear(_dQueryWeight); Array.Clear(_dScoreVector);
        Array.Clear(_dContextWeight); Array.Clear(_dInputWeight); Array.Clear(_dMemory); Array.Clear(_dCurrent);
        for (int b = 0; b < _b; b++)
        {
            for (int t = 0; t < _t; t++)
            {
                int step = b * _t + t;
                // h* = tanh(pre): ∂pre = ∂h* ⊙ (1 − h*²).
                ReadOnlySpan<float> output = Context.AsSpan(step * _d, _d);
                TensorPrimitives.Multiply(output, output, _dPre);
                TensorPrimitives.Subtract(1f, _dPre, _dPre);
                TensorPrimitives.Multiply(_dPre, x.DContext.AsSpan(step * _d, _d), _dPre);
                // pre = W^r r + W^x v: ∂W^r[k, :] += ∂preₖ r, ∂r += ∂preₖ W^r[k, :]; the same for W^x and v.
                ReadOnlySpan<float> read = _reads.AsSpan(step * _d, _d);
                Span<float> dValue = _dInput.AsSpan(step * 2 * _d + _d, _d);
                _dRead.AsSpan().Clear();
                for (int k = 0; k < _d; k++)
                {
                    AddOuterRow(_dContextWeight, x.ContextWeight, k, _dPre[k], read, _dRead);
                    AddOuterRow(_dInputWeight, x.InputWeight, k, _dPre[k], Value(step), dValue);
                }
                (int first, int count) = WindowOf(t);
                if (count == 0) continue;
                // r = Σ α vₛ: ∂αₛ = ∂r·vₛ, ∂vₛ += αₛ ∂r; then the softmax: ∂e = α ⊙ (∂α − α·∂α).
                ReadOnlySpan<float> alpha = _alphas.AsSpan(step * _window, count);
                Span<float> g = _dAlpha.AsSpan(0, count);
                for (int s = 0; s < count; s++)
                {
                    int remembered = b * _t + first + s;
                    g[s] = TensorPrimitives.Dot(_dRead, Value(remembered));
                    Span<float> dRemembered = _dInput.AsSpan(remembered * 2 * _d + _d, _d);
                    TensorPrimitives.MultiplyAdd(_dRead, alpha[s], dRemembered, dRemembered);
                }
                TensorPrimitives.Subtract(g, TensorPrimitives.Dot(alpha, g), g);
                TensorPrimitives.Multiply(g, alpha, g);
                // e = w·m, m = tanh(W^Y kₛ + W^h kₜ): ∂w += ∂e m, ∂(W^Y kₛ) and ∂(W^h kₜ) += ∂e w ⊙ (1 − m²).
                for (int s = 0; s < count; s++)
                {
                    int remembered = b * _t + first + s;
                    Score(remembered, step);
                    TensorPrimitives.MultiplyAdd(_hidden, g[s], _dScoreVector, _dScoreVector);
                    TensorPrimitives.Multiply(_hidden, _hidden, _hidden);
                    TensorPrimitives.Subtract(1f, _hidden, _hidden);
                    TensorPrimitives.Multiply(_hidden, x.ScoreVector, _hidden);
                    Span<float> dMemory = _dMemory.AsSpan(remembered * _d, _d), dCurrent = _dCurrent.AsSpan(step * _d, _d);
                    TensorPrimitives.MultiplyAdd(_hidden, g[s], dMemory, dMemory);
                    TensorPrimitives.MultiplyAdd(_hidden, g[s], dCurrent, dCurrent);
                }
            }
        }
        // W^Y kₛ and W^h kₜ: the same outer products into the weights and back into each key.
        for (int step = 0; step < _b * _t; step++)
        {
            Span<float> dKey = _dInput.AsSpan(step * 2 * _d, _d);
            for (int k = 0; k < _d; k++)
            {
                AddOuterRow(_dMemoryWeight, x.KeyWeight, k, _dMemory[step * _d + k], Key(step), dKey);
                AddOuterRow(_dQueryWeight, x.QueryWeight, k, _dCurrent[step * _d + k], Key(step), dKey);
            }
        }
    }

    // y = W x for a square W [D, D].
    private void MatrixVector(float[] weight, ReadOnlySpan<float> input, Span<float> output)
    {
        for (int k = 0; k < _d; k++) output[k] = TensorPrimitives.Dot(weight.AsSpan(k * _d, _d), input);
    }

    // For y = W x and one row k with ∂yₖ = gradient: ∂W[k, :] += gradient · x, ∂x += gradient · W[k, :].
    private void AddOuterRow(float[] dWeight, float[] weight, int k, float gradient, ReadOnlySpan<float> input, Span<float> dInput)
    {
        Span<float> dRow = dWeight.AsSpan(k * _d, _d);
        TensorPrimitives.MultiplyAdd(input, gradient, dRow, dRow);
        TensorPrimitives.MultiplyAdd(weight.AsSpan(k * _d, _d), gradient, dInput, dInput);
    }
}
