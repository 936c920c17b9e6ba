using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace AttentionGen.Numerics;

/// <summary>
/// The row operations of a tiled attention kernel with an online softmax (FlashAttention, Dao et al. 2022; the
/// FlashAttention-2 loop order). Keys arrive in tiles; each query row keeps its running maximum m and running sum ℓ,
/// and its output accumulator is rescaled by e^{m_old − m_new} whenever the maximum grows. None of this depends on a
/// compile-time dimension, so it lives here; the generated layers call it between their specialised products.
/// </summary>
public static class FlashSoftmax
{
    /// <summary>
    /// Sets to −∞ the scores of one tile row that the query may not attend to: columns at or past
    /// <paramref name="validKeys"/> (the tile's padding past the last key), keys after the causal limit, padded keys,
    /// and keys the per-query mask forbids.
    /// </summary>
    /// <param name="row">The tile row: scores of keys <paramref name="firstKey"/> … <paramref name="firstKey"/> + row.Length − 1.</param>
    /// <param name="firstKey">The absolute index of the tile's first key.</param>
    /// <param name="validKeys">How many of the tile's columns are real keys.</param>
    /// <param name="causalLimit">The last key the query may see (<c>int.MaxValue</c> when not causal).</param>
    /// <param name="keyPadding">This batch row's key padding <c>[Tk]</c> (true = may attend), or empty.</param>
    /// <param name="perQuery">This query's row of the per-query mask <c>[Tk]</c>, or empty.</param>
    /// <returns>Whether any column may be attended to.</returns>
    public static bool MaskRow<T>(Span<T> row, int firstKey, int validKeys, int causalLimit, ReadOnlySpan<bool> keyPadding, ReadOnlySpan<bool> perQuery)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // The last column this query may see, before the element masks.
        long lastAllowed = Math.Min((long)validKeys - 1, (long)causalLimit - firstKey);
        int allowedEnd = (int)Math.Clamp(lastAllowed + 1, 0, row.Length);
        row.Slice(allowedEnd).Fill(T.NegativeInfinity);
        bool any = allowedEnd > 0;
        if (any && (!keyPadding.IsEmpty || !perQuery.IsEmpty))
        {
            any = false;
            for (int c = 0; c < allowedEnd; c++)
            {
                int key = firstKey + c;
                if ((!keyPadding.IsEmpty && !keyPadding[key]) || (!perQuery.IsEmpty && !perQuery[key]))
                {
                    row[c] = T.NegativeInfinity;
                }
                else
                {
                    any = true;
                }
            }
        }
        return any;
    }

    /// <summary>
    /// Folds one tile row of scores into a query's online softmax: with m' = max(m, max(row)), replaces the row by
    /// p = e^{row − m'}, sets ℓ ← ℓ·e^{m − m'} + Σ p and m ← m', and returns e^{m − m'}, the factor the query's output
    /// accumulator must be multiplied by before p·V is added. A row with nothing allowed so far (m' = −∞) becomes zeros
    /// and returns 1.
    /// </summary>
    public static T Update<T>(Span<T> row, ref T max, ref T sum)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        T tileMax = Max(row);
        T newMax = T.IsNaN(tileMax) ? tileMax : T.Max(max, tileMax);
        if (T.IsNegativeInfinity(newMax))
        {
            row.Clear();
            return T.One;
        }
        T rescale = max == newMax ? T.One : T.Exp(max - newMax);
        sum = sum * rescale + AttentionMath.ExpShiftedInPlace(row, newMax);
        max = newMax;
        return rescale;
    }

    /// <summary>
    /// The row's log-sum-exp m + log ℓ, kept by the forward for the backward; +∞ for a query with nothing allowed,
    /// so that the backward's e^{s − L} is 0 there.
    /// </summary>
    public static T LogSumExp<T>(T max, T sum) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => sum > T.Zero ? max + T.Log(sum) : T.PositiveInfinity;

    /// <summary>pⱼ = e^{sⱼ − L} in place: the backward's recomputed weights from the forward's log-sum-exp L.</summary>
    public static void Recompute<T>(Span<T> row, T logSumExp) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (T.IsPositiveInfinity(logSumExp))
        {
            row.Clear();
            return;
        }
        AttentionMath.ExpShiftedInPlace(row, logSumExp);
    }

    /// <summary>
    /// The softmax backward of one tile row: dSⱼ = pⱼ (dPⱼ − D) in place in <paramref name="dWeights"/>, where
    /// D = Σ dO ⊙ O over the query's whole output row (FlashAttention-2's rowsum, equal to Σⱼ pⱼ dPⱼ over all keys).
    /// </summary>
    public static void SoftmaxGradient<T>(ReadOnlySpan<T> weights, Span<T> dWeights, T delta) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ref T p = ref MemoryMarshal.GetReference(weights);
        ref T g = ref MemoryMarshal.GetReference(dWeights);
        int n = Math.Min(weights.Length, dWeights.Length);
        int i = 0;
        if (SimdPaths.Vector512 && n >= Vector512<T>.Count)
        {
            Vector512<T> d = Vector512.Create(delta);
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
            {
                (Vector512.LoadUnsafe(ref p, (nuint)i) * (Vector512.LoadUnsafe(ref g, (nuint)i) - d)).StoreUnsafe(ref g, (nuint)i);
            }
        }
        else if (SimdPaths.Vector256 && n >= Vector256<T>.Count)
        {
            Vector256<T> d = Vector256.Create(delta);
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                (Vector256.LoadUnsafe(ref p, (nuint)i) * (Vector256.LoadUnsafe(ref g, (nuint)i) - d)).StoreUnsafe(ref g, (nuint)i);
            }
        }
        else if (SimdPaths.Vector128 && n >= Vector128<T>.Count)
        {
            Vector128<T> d = Vector128.Create(delta);
            for (; i <= n - Vector128<T>.Count; i += Vector128<T>.Count)
            {
                (Vector128.LoadUnsafe(ref p, (nuint)i) * (Vector128.LoadUnsafe(ref g, (nuint)i) - d)).StoreUnsafe(ref g, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            Unsafe.Add(ref g, i) = Unsafe.Add(ref p, i) * (Unsafe.Add(ref g, i) - delta);
        }
    }

    /// <summary>xᵢ ← xᵢ · factor, vectorised.</summary>
    public static void Scale<T>(Span<T> x, T factor) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ref T xr = ref MemoryMarshal.GetReference(x);
        int n = x.Length;
        int i = 0;
        if (SimdPaths.Vector512 && n >= Vector512<T>.Count)
        {
            Vector512<T> f = Vector512.Create(factor);
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
            {
                (Vector512.LoadUnsafe(ref xr, (nuint)i) * f).StoreUnsafe(ref xr, (nuint)i);
            }
        }
        else if (SimdPaths.Vector256 && n >= Vector256<T>.Count)
        {
            Vector256<T> f = Vector256.Create(factor);
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                (Vector256.LoadUnsafe(ref xr, (nuint)i) * f).StoreUnsafe(ref xr, (nuint)i);
            }
        }
        else if (SimdPaths.Vector128 && n >= Vector128<T>.Count)
        {
            Vector128<T> f = Vector128.Create(factor);
            for (; i <= n - Vector128<T>.Count; i += Vector128<T>.Count)
            {
                (Vector128.LoadUnsafe(ref xr, (nuint)i) * f).StoreUnsafe(ref xr, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            Unsafe.Add(ref xr, i) *= factor;
        }
    }

    /// <summary>The largest element, vectorised (−∞ for an empty or all −∞ row; NaN when any element is NaN).</summary>
    public static T Max<T>(ReadOnlySpan<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ref T xr = ref MemoryMarshal.GetReference(x);
        int n = x.Length;
        int i = 0;
        T max = T.NegativeInfinity;
        if (SimdPaths.Vector512 && n >= Vector512<T>.Count)
        {
            Vector512<T> m = Vector512.Create(T.NegativeInfinity);
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
            {
                m = Vector512.Max(m, Vector512.LoadUnsafe(ref xr, (nuint)i));
            }
            max = Reduce256(m.GetLower(), m.GetUpper());
        }
        else if (SimdPaths.Vector256 && n >= Vector256<T>.Count)
        {
            Vector256<T> m = Vector256.Create(T.NegativeInfinity);
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                m = Vector256.Max(m, Vector256.LoadUnsafe(ref xr, (nuint)i));
            }
            max = Reduce128(m.GetLower(), m.GetUpper());
        }
        else if (SimdPaths.Vector128 && n >= Vector128<T>.Count)
        {
            Vector128<T> m = Vector128.Create(T.NegativeInfinity);
            for (; i <= n - Vector128<T>.Count; i += Vector128<T>.Count)
            {
                m = Vector128.Max(m, Vector128.LoadUnsafe(ref xr, (nuint)i));
            }
            max = Reduce128(m, m);
        }
        for (; i < n; i++)
        {
            max = T.Max(max, Unsafe.Add(ref xr, i));
        }
        return max;

        static T Reduce256(Vector256<T> a, Vector256<T> b) => Reduce128(Vector256.Max(a, b).GetLower(), Vector256.Max(a, b).GetUpper());

        static T Reduce128(Vector128<T> a, Vector128<T> b)
        {
            Vector128<T> m = Vector128.Max(a, b);
            T result = m.GetElement(0);
            for (int lane = 1; lane < Vector128<T>.Count; lane++)
            {
                result = T.Max(result, m.GetElement(lane));
            }
            return result;
        }
    }
}
