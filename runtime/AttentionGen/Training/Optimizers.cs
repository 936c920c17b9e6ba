using System;
using System.Collections.Generic;
using System.Linq;
using System.Numerics;

namespace AttentionGen;

/// <summary>Updates parameters from their accumulated gradients.</summary>
/// <typeparam name="T">The element type.</typeparam>
public interface IOptimizer<T> where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>One update of every parameter from its <c>Gradient</c> (which it leaves as it is).</summary>
    void Step();

    /// <summary>Clears every parameter's gradient.</summary>
    void ZeroGradients();
}

/// <summary>Stochastic gradient descent with optional momentum and (coupled, L2) weight decay, as PyTorch's <c>SGD</c>.</summary>
public sealed class Sgd<T> : IOptimizer<T> where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private readonly Parameter<T>[] _parameters;
    private readonly T[][] _velocity;

    /// <summary>Creates the optimiser over <paramref name="parameters"/> (for example a layer's <c>Parameters</c>, or several layers' concatenated).</summary>
    public Sgd(IEnumerable<Parameter<T>> parameters, double learningRate, double momentum = 0, double weightDecay = 0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(learningRate);
        ArgumentOutOfRangeException.ThrowIfNegative(momentum);
        ArgumentOutOfRangeException.ThrowIfNegative(weightDecay);
        _parameters = parameters.ToArray();
        _velocity = _parameters.Select(p => momentum > 0 ? new T[p.Length] : Array.Empty<T>()).ToArray();
        (LearningRate, Momentum, WeightDecay) = (learningRate, momentum, weightDecay);
    }

    /// <summary>The step size; may be changed between steps (learning-rate schedules).</summary>
    public double LearningRate { get; set; }

    /// <summary>The momentum factor μ: v ← μ v + g, θ ← θ − lr v.</summary>
    public double Momentum { get; }

    /// <summary>L2 weight decay λ added to the gradient: g ← g + λ θ.</summary>
    public double WeightDecay { get; }

    /// <inheritdoc/>
    public void Step()
    {
        T rate = T.CreateTruncating(LearningRate), momentum = T.CreateTruncating(Momentum), decay = T.CreateTruncating(WeightDecay);
        for (int p = 0; p < _parameters.Length; p++)
        {
            T[] value = _parameters[p].Value, gradient = _parameters[p].Gradient, velocity = _velocity[p];
            for (int i = 0; i < value.Length; i++)
            {
                T g = gradient[i] + decay * value[i];
                if (velocity.Length > 0)
                {
                    g = velocity[i] = momentum * velocity[i] + g;
                }
                value[i] -= rate * g;
            }
        }
    }

    /// <inheritdoc/>
    public void ZeroGradients()
    {
        foreach (Parameter<T> parameter in _parameters) parameter.ZeroGradient();
    }
}

/// <summary>
/// Adam (Kingma &amp; Ba 2015) with bias correction; <see cref="DecoupledWeightDecay"/> makes it AdamW
/// (Loshchilov &amp; Hutter 2019). Defaults as PyTorch's: β₁ = 0.9, β₂ = 0.999, ε = 1e-8. State is allocated once.
/// </summary>
public sealed class Adam<T> : IOptimizer<T> where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private readonly Parameter<T>[] _parameters;
    private readonly T[][] _first, _second;

    /// <summary>Creates the optimiser over <paramref name="parameters"/>.</summary>
    public Adam(IEnumerable<Parameter<T>> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double epsilon = 1e-8, double weightDecay = 0, bool decoupledWeightDecay = false)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(learningRate);
        if (beta1 is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "β₁ must be in [0, 1).");
        if (beta2 is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "β₂ must be in [0, 1).");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(epsilon);
        ArgumentOutOfRangeException.ThrowIfNegative(weightDecay);
        _parameters = parameters.ToArray();
        _first = _parameters.Select(p => new T[p.Length]).ToArray();
        _second = _parameters.Select(p => new T[p.Length]).ToArray();
        (LearningRate, Beta1, Beta2, Epsilon, WeightDecay, DecoupledWeightDecay) = (learningRate, beta1, beta2, epsilon, weightDecay, decoupledWeightDecay);
    }

    /// <summary>The step size α; may be changed between steps.</summary>
    public double LearningRate { get; set; }

    /// <summary>β₁, the decay of the first-moment estimate.</summary>
    public double Beta1 { get; }

    /// <summary>β₂, the decay of the second-moment estimate.</summary>
    public double Beta2 { get; }

    /// <summary>ε, added to √v̂ in the denominator.</summary>
    public double Epsilon { get; }

    /// <summary>Weight decay λ: added to the gradient (Adam) or applied as θ ← θ − αλθ (AdamW).</summary>
    public double WeightDecay { get; }

    /// <summary>Whether the weight decay is decoupled from the gradient (AdamW).</summary>
    public bool DecoupledWeightDecay { get; }

    /// <summary>How many steps have been taken (t in the bias corrections).</summary>
    public int Steps { get; private set; }

    /// <inheritdoc/>
    public void Step()
    {
        Steps++;
        double correction1 = 1 - Math.Pow(Beta1, Steps), correction2 = 1 - Math.Pow(Beta2, Steps);
        // α_t = α √(1 − β₂ᵗ) / (1 − β₁ᵗ), the paper's efficient form of the bias-corrected update (with ε scaled to match).
        T rate = T.CreateTruncating(LearningRate / correction1);
        T root2 = T.CreateTruncating(Math.Sqrt(correction2));
        T beta1 = T.CreateTruncating(Beta1), beta2 = T.CreateTruncating(Beta2), epsilon = T.CreateTruncating(Epsilon);
        T decay = T.CreateTruncating(WeightDecay), decoupled = T.CreateTruncating(LearningRate * WeightDecay);
        for (int p = 0; p < _parameters.Length; p++)
        {
            T[] value = _parameters[p].Value, gradient = _parameters[p].Gradient, m = _first[p], v = _second[p];
            for (int i = 0; i < value.Length; i++)
            {
                T g = gradient[i];
                if (DecoupledWeightDecay) value[i] -= decoupled * value[i];
                else g += decay * value[i];
                m[i] = beta1 * m[i] + (T.One - beta1) * g;
                v[i] = beta2 * v[i] + (T.One - beta2) * g * g;
                // m̂ / (√v̂ + ε) with m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ)
                value[i] -= rate * m[i] / (T.Sqrt(v[i]) / root2 + epsilon);
            }
        }
    }

    /// <inheritdoc/>
    public void ZeroGradients()
    {
        foreach (Parameter<T> parameter in _parameters) parameter.ZeroGradient();
    }
}
