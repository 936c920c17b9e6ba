using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace AttentionGen.Numerics;

/// <summary>
/// Span-level numerics that do not depend on a layer's compile-time dimensions: the softmax over a
/// runtime-length row of scores (with the row maximum subtracted, masked entries at −∞), its backward,
/// and element-wise tanh / exp / sigmoid. Generated layers call these for their runtime-length axes.
/// </summary>
public static class AttentionMath
{
    /// <summary>
    /// Replaces <paramref name="scores"/> with softmax(scores), in place. Entries equal to −∞ are masked:
    /// they get weight 0. The row maximum is subtracted first, so large logits (±1e4) do not overflow.
    /// A row whose every entry is −∞ (a fully masked query) becomes all zeros, never NaN.
    /// </summary>
    /// <returns>False when every entry was masked (the row is then all zeros); true otherwise.</returns>
    public static bool Softmax<T>(Span<T> scores) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (scores.IsEmpty)
        {
            return false;
        }
        if (typeof(T) == typeof(float) && SimdPaths.Vector512 && scores.Length > Vector512<float>.Count && scores.Length <= 2 * Vector512<float>.Count)
        {
            return FlashSoftmax.SoftmaxTwoVectors(MemoryMarshal.Cast<T, float>(scores));
        }
        T max = Max(scores);
        if (T.IsNegativeInfinity(max))
        {
            scores.Clear();
            return false;
        }
        T sum = ExpShiftedInPlace(scores, max);
        Scale(scores, T.One / sum);
        return true;
    }

    /// <summary>
    /// The softmax backward: with a = softmax(e) and g = ∂L/∂a, writes ∂L/∂e = a ⊙ (g − Σⱼ aⱼ gⱼ).
    /// Masked entries (aⱼ = 0) get 0. <paramref name="dScores"/> may be the same span as <paramref name="dWeights"/>.
    /// </summary>
    public static void SoftmaxBackward<T>(ReadOnlySpan<T> weights, ReadOnlySpan<T> dWeights, Span<T> dScores)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (dWeights.Length != weights.Length)
        {
            throw new ArgumentException($"Expected {weights.Length} elements, got {dWeights.Length}.", nameof(dWeights));
        }
        if (dScores.Length != weights.Length)
        {
            throw new ArgumentException($"Expected {weights.Length} elements, got {dScores.Length}.", nameof(dScores));
        }
        T dot = Dot(weights, dWeights);
        FlashSoftmax.WeightedDifference(weights, dWeights, dot, dScores);
    }

    /// <summary>Σᵢ xᵢ yᵢ, vectorised.</summary>
    public static T Dot<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> y) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (y.Length != x.Length)
        {
            throw new ArgumentException($"Expected {x.Length} elements, got {y.Length}.", nameof(y));
        }
        ref T xr = ref MemoryMarshal.GetReference(x);
        ref T yr = ref MemoryMarshal.GetReference(y);
        int n = x.Length;
        int i = 0;
        T sum = T.Zero;
        if (SimdPaths.Vector512 && n >= Vector512<T>.Count)
        {
            Vector512<T> acc = Vector512<T>.Zero;
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
            {
                acc = VectorMath.MultiplyAdd(Vector512.LoadUnsafe(ref xr, (nuint)i), Vector512.LoadUnsafe(ref yr, (nuint)i), acc);
            }
            if (i < n)
            {
                // The tail as the last whole vector, the lanes already summed zeroed in both factors (so that an infinity
                // among them adds no NaN).
                nuint last = (nuint)(n - Vector512<T>.Count);
                Vector512<T> fresh = TailLanes.From512<T>(i - (int)last);
                acc = VectorMath.MultiplyAdd(Vector512.LoadUnsafe(ref xr, last) & fresh, Vector512.LoadUnsafe(ref yr, last) & fresh, acc);
                i = n;
            }
            sum = Vector512.Sum(acc);
        }
        else if (SimdPaths.Vector256 && n >= Vector256<T>.Count)
        {
            Vector256<T> acc = Vector256<T>.Zero;
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                acc = VectorMath.MultiplyAdd(Vector256.LoadUnsafe(ref xr, (nuint)i), Vector256.LoadUnsafe(ref yr, (nuint)i), acc);
            }
            if (i < n)
            {
                // The tail as the last whole vector, the lanes already summed zeroed in both factors (so that an infinity
                // among them adds no NaN).
                nuint last = (nuint)(n - Vector256<T>.Count);
                Vector256<T> fresh = TailLanes.From256<T>(i - (int)last);
                acc = VectorMath.MultiplyAdd(Vector256.LoadUnsafe(ref xr, last) & fresh, Vector256.LoadUnsafe(ref yr, last) & fresh, acc);
                i = n;
            }
            sum = Vector256.Sum(acc);
        }
        else if (SimdPaths.Vector128 && n >= Vector128<T>.Count)
        {
            Vector128<T> acc = Vector128<T>.Zero;
            for (; i <= n - Vector128<T>.Count; i += Vector128<T>.Count)
            {
                acc = VectorMath.MultiplyAdd(Vector128.LoadUnsafe(ref xr, (nuint)i), Vector128.LoadUnsafe(ref yr, (nuint)i), acc);
            }
            if (i < n)
            {
                // The tail as the last whole vector, the lanes already summed zeroed in both factors (so that an infinity
                // among them adds no NaN).
                nuint last = (nuint)(n - Vector128<T>.Count);
                Vector128<T> fresh = TailLanes.From128<T>(i - (int)last);
                acc = VectorMath.MultiplyAdd(Vector128.LoadUnsafe(ref xr, last) & fresh, Vector128.LoadUnsafe(ref yr, last) & fresh, acc);
                i = n;
            }
            sum = Vector128.Sum(acc);
        }
        for (; i < n; i++)
        {
            sum = T.MultiplyAddEstimate(Unsafe.Add(ref xr, i), Unsafe.Add(ref yr, i), sum);
        }
        return sum;
    }

    /// <summary>The largest element (−∞ for an empty or all −∞ span; NaN if any element is NaN), vectorised: see <see cref="FlashSoftmax.Max{T}"/>.</summary>
    public static T Max<T>(ReadOnlySpan<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T> => FlashSoftmax.Max(x);

    /// <summary>xᵢ ← e^{xᵢ − shift}; returns Σ of the results. Float uses <see cref="FlashSoftmax.Exp(Vector512{float})"/> (≤ 2 ulp), double the runtime's <c>Exp</c>.</summary>
    public static T ExpShiftedInPlace<T>(Span<T> x, T shift) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float))
        {
            // Float: the runtime's own exponential (≤ 2 ulp, exact 0 far below the shift), see FlashSoftmax.Exp.
            return T.CreateTruncating(FlashSoftmax.ExpShiftedInPlace(MemoryMarshal.Cast<T, float>(x), float.CreateTruncating(shift)));
        }
        ref T xr = ref MemoryMarshal.GetReference(x);
        int n = x.Length;
        int i = 0;
        T sum = T.Zero;
        if (SimdPaths.Vector512 && n >= Vector512<T>.Count)
        {
            Vector512<T> s = Vector512.Create(shift);
            Vector512<T> acc = Vector512<T>.Zero;
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
            {
                Vector512<T> e = VectorMath.Exp(Vector512.LoadUnsafe(ref xr, (nuint)i) - s);
                e.StoreUnsafe(ref xr, (nuint)i);
                acc += e;
            }
            sum = Vector512.Sum(acc);
        }
        else if (SimdPaths.Vector256 && n >= Vector256<T>.Count)
        {
            Vector256<T> s = Vector256.Create(shift);
            Vector256<T> acc = Vector256<T>.Zero;
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                Vector256<T> e = VectorMath.Exp(Vector256.LoadUnsafe(ref xr, (nuint)i) - s);
                e.StoreUnsafe(ref xr, (nuint)i);
                acc += e;
            }
            sum = Vector256.Sum(acc);
        }
        else if (SimdPaths.Vector128 && n >= Vector128<T>.Count)
        {
            Vector128<T> s = Vector128.Create(shift);
            Vector128<T> acc = Vector128<T>.Zero;
            for (; i <= n - Vector128<T>.Count; i += Vector128<T>.Count)
            {
                Vector128<T> e = VectorMath.Exp(Vector128.LoadUnsafe(ref xr, (nuint)i) - s);
                e.StoreUnsafe(ref xr, (nuint)i);
                acc += e;
            }
            sum = Vector128.Sum(acc);
        }
        for (; i < n; i++)
        {
            T e = T.Exp(Unsafe.Add(ref xr, i) - shift);
            Unsafe.Add(ref xr, i) = e;
            sum += e;
        }
        return sum;
    }

    /// <summary>xᵢ ← xᵢ · factor, vectorised (each product rounded once, as the scalar one).</summary>
    public static void Scale<T>(Span<T> x, T factor) where T : unmanaged, IBinaryFloatingPointIeee754<T> => FlashSoftmax.Scale(x, factor);
}
