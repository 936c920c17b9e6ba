using System;
using System.Numerics;

namespace AttentionGen;

/// <summary>
/// Seeded parameter initialisers. The same seed gives the same values on every machine and every run
/// (<see cref="Random(int)"/> with a seed is a fixed algorithm).
/// </summary>
public static class Initializers
{
    /// <summary>
    /// Glorot (Xavier) uniform: U(−l, l) with l = √(6 / (fanIn + fanOut)), as Keras' <c>glorot_uniform</c>
    /// and PyTorch's <c>xavier_uniform_</c>.
    /// </summary>
    public static void GlorotUniform<T>(Span<T> values, int fanIn, int fanOut, Random random)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(random);
        ArgumentOutOfRangeException.ThrowIfLessThan(fanIn, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(fanOut, 1);
        double limit = Math.Sqrt(6.0 / (fanIn + fanOut));
        Uniform(values, -limit, limit, random);
    }

    /// <summary>
    /// Glorot (Xavier) normal: N(0, σ²) with σ = √(2 / (fanIn + fanOut)), as PyTorch's <c>xavier_normal_</c> (which
    /// multi-head attention's <c>bias_k</c> and <c>bias_v</c> start from). Normal draws by the Box–Muller transform.
    /// </summary>
    public static void GlorotNormal<T>(Span<T> values, int fanIn, int fanOut, Random random)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(random);
        ArgumentOutOfRangeException.ThrowIfLessThan(fanIn, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(fanOut, 1);
        double sigma = Math.Sqrt(2.0 / (fanIn + fanOut));
        for (int i = 0; i < values.Length; i++)
        {
            // 1 − U in (0, 1], so the logarithm is finite.
            double radius = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())), angle = 2 * Math.PI * random.NextDouble();
            values[i] = T.CreateTruncating(sigma * radius * Math.Cos(angle));
        }
    }

    /// <summary>U(low, high) for every element.</summary>
    public static void Uniform<T>(Span<T> values, double low, double high, Random random)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(random);
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = T.CreateTruncating(low + (high - low) * random.NextDouble());
        }
    }

    /// <summary>Fills with a constant (zeros for biases, as Keras and PyTorch's attention layers do).</summary>
    public static void Constant<T>(Span<T> values, T value) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => values.Fill(value);

    /// <summary>Fills with zeros.</summary>
    public static void Zeros<T>(Span<T> values) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => values.Clear();
}
