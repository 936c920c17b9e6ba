using System;
using System.Diagnostics;
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
        T rescale = max == newMax ? T.One : ScalarExp(max - newMax);
        sum = sum * rescale + ExpShiftedInPlace(row, newMax);
        max = newMax;
        return rescale;
    }

    /// <summary>
    /// <see cref="Update{T}"/> for every row of a block × tile of scores, and the rescaling of each row's output accumulator:
    /// row r of <paramref name="tile"/> (<paramref name="width"/> columns) becomes p = e^{row − m'ᵣ}, ℓᵣ and mᵣ are updated, and
    /// row r of <paramref name="outputs"/> (<paramref name="outputWidth"/> columns) is multiplied by e^{mᵣ − m'ᵣ} unless that is 1
    /// or the row had nothing allowed before (its accumulator is still zero). The same arithmetic in the same order as
    /// calling <see cref="Update{T}"/> and <see cref="Scale{T}(Span{T}, T)"/> row by row (bit-identical), without a call per
    /// row: on the Vector512 path, and on Vector256 where that is the widest, for float at widths of whole vectors the row's
    /// max, exponentials and rescaling run in one loop each (other paths update row by row).
    /// </summary>
    /// <exception cref="ArgumentException">A span is shorter than <paramref name="rows"/> rows.</exception>
    public static void UpdateBlock<T>(Span<T> tile, int rows, int width, Span<T> rowMax, Span<T> rowSum, Span<T> outputs, int outputWidth)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (tile.Length < (long)rows * width || outputs.Length < (long)rows * outputWidth || rowMax.Length < rows || rowSum.Length < rows)
        {
            throw new ArgumentException($"UpdateBlock needs {rows} rows: tile {tile.Length} of {(long)rows * width}, outputs {outputs.Length} of {(long)rows * outputWidth}, maxima {rowMax.Length}, sums {rowSum.Length}.");
        }
        // The fused rows take the widest path only: on Vector512 the row-by-row path sums a row's exponentials 16 lanes at a time,
        // so a fused loop of 8 there would change the last bits of ℓ for the widths that are not whole Vector512s.
        int lanes = SimdPaths.Vector512 ? Vector512<float>.Count : SimdPaths.Vector256 ? Vector256<float>.Count : 0;
        if (typeof(T) == typeof(float) && lanes > 0 && width % lanes == 0 && outputWidth % lanes == 0)
        {
            for (int r = 0; r < rows; r++)
            {
                UpdateRow(ref Unsafe.As<T, float>(ref tile[r * width]), width, ref Unsafe.As<T, float>(ref rowMax[r]), ref Unsafe.As<T, float>(ref rowSum[r]),
                    ref Unsafe.As<T, float>(ref MemoryMarshal.GetReference(outputs.Slice(r * outputWidth))), outputWidth);
            }
            return;
        }
        for (int r = 0; r < rows; r++)
        {
            T previousMax = rowMax[r];
            T rescale = Update(tile.Slice(r * width, width), ref rowMax[r], ref rowSum[r]);
            if (rescale != T.One && !T.IsNegativeInfinity(previousMax))
            {
                Scale(outputs.Slice(r * outputWidth, outputWidth), rescale);
            }
        }
    }

    // One row of UpdateBlock on the widest path (Vector512, or Vector256 without it), width and outputWidth whole vectors of it:
    // Max, then Update's branches, ExpShiftedInPlace and Scale, with their loops inlined below one width at a time.
    private static void UpdateRow(ref float row, int width, ref float max, ref float sum, ref float output, int outputWidth)
    {
        float tileMax = SimdPaths.Vector512 ? RowMax512(ref row, width) : RowMax256(ref row, width);
        float previousMax = max;
        float newMax = float.IsNaN(tileMax) ? tileMax : float.Max(previousMax, tileMax);
        if (float.IsNegativeInfinity(newMax))
        {
            MemoryMarshal.CreateSpan(ref row, width).Clear();
            return;
        }
        float rescale = previousMax == newMax ? 1f : ScalarExp(previousMax - newMax);
        sum = sum * rescale + (SimdPaths.Vector512 ? ExpRow512(ref row, width, newMax) : ExpRow256(ref row, width, newMax));
        max = newMax;
        if (rescale != 1f && !float.IsNegativeInfinity(previousMax))
        {
            if (SimdPaths.Vector512) ScaleRow512(ref output, outputWidth, rescale); else ScaleRow256(ref output, outputWidth, rescale);
        }
    }

    // UpdateRow's loops over whole vectors: the row's maximum; pⱼ = e^{sⱼ − shift} in place, returning Σ p; xⱼ ← xⱼ · factor.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RowMax512(ref float row, int width)
    {
        Vector512<float> m = Vector512.Create(float.NegativeInfinity), nan = Vector512<float>.Zero;
        for (nuint j = 0; j < (nuint)width; j += (nuint)Vector512<float>.Count)
        {
            Vector512<float> x = Vector512.LoadUnsafe(ref row, j);
            m = Vector512.MaxNative(m, x);
            nan |= Vector512.IsNaN(x);
        }
        return MaxOfLanes(Vector256.MaxNative(m.GetLower(), m.GetUpper()), nan.GetLower() | nan.GetUpper(), ref row, width);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RowMax256(ref float row, int width)
    {
        Vector256<float> m = Vector256.Create(float.NegativeInfinity), nan = Vector256<float>.Zero;
        for (nuint j = 0; j < (nuint)width; j += (nuint)Vector256<float>.Count)
        {
            Vector256<float> x = Vector256.LoadUnsafe(ref row, j);
            m = Vector256.MaxNative(m, x);
            nan |= Vector256.IsNaN(x);
        }
        return MaxOfLanes(m, nan, ref row, width);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ExpRow512(ref float row, int width, float shift)
    {
        Vector512<float> s = Vector512.Create(shift), total = Vector512<float>.Zero;
        for (nuint j = 0; j < (nuint)width; j += (nuint)Vector512<float>.Count)
        {
            Vector512<float> e = Exp(Vector512.LoadUnsafe(ref row, j) - s);
            e.StoreUnsafe(ref row, j);
            total += e;
        }
        return Reductions.Sum(total);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ExpRow256(ref float row, int width, float shift)
    {
        Vector256<float> s = Vector256.Create(shift), total = Vector256<float>.Zero;
        for (nuint j = 0; j < (nuint)width; j += (nuint)Vector256<float>.Count)
        {
            Vector256<float> e = Exp(Vector256.LoadUnsafe(ref row, j) - s);
            e.StoreUnsafe(ref row, j);
            total += e;
        }
        return Reductions.Sum(total);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScaleRow512(ref float x, int width, float factor)
    {
        Vector512<float> f = Vector512.Create(factor);
        for (nuint j = 0; j < (nuint)width; j += (nuint)Vector512<float>.Count) (Vector512.LoadUnsafe(ref x, j) * f).StoreUnsafe(ref x, j);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScaleRow256(ref float x, int width, float factor)
    {
        Vector256<float> f = Vector256.Create(factor);
        for (nuint j = 0; j < (nuint)width; j += (nuint)Vector256<float>.Count) (Vector256.LoadUnsafe(ref x, j) * f).StoreUnsafe(ref x, j);
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
        ExpShiftedInPlace(row, logSumExp);
    }

    /// <summary>xᵢ ← e^{xᵢ − shift}; returns Σ of the results (<see cref="AttentionMath.ExpShiftedInPlace{T}"/>).</summary>
    public static T ExpShiftedInPlace<T>(Span<T> x, T shift) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => AttentionMath.ExpShiftedInPlace(x, shift);

    /// <summary>
    /// The float case of <see cref="AttentionMath.ExpShiftedInPlace{T}"/>: xᵢ ← e^{xᵢ − shift} with <see cref="Exp(Vector512{float})"/>
    /// (a Cody–Waite reduction and a degree-7 polynomial, error ≤ 2 ulp), several times cheaper than the double-precision
    /// evaluation behind <c>Vector512.Exp(Vector512&lt;float&gt;)</c>; returns Σ of the results.
    /// </summary>
    internal static float ExpShiftedInPlace(Span<float> values, float s)
    {
        ref float xr = ref MemoryMarshal.GetReference(values);
        int n = values.Length;
        int i = 0;
        float sum = 0;
        // Whole vectors, then the last n − i elements as the row's last whole vector with only those lanes written and summed
        // (a row of 30 scores had 14 of them go through libm's expf one at a time).
        if (SimdPaths.Vector512 && n >= Vector512<float>.Count)
        {
            Vector512<float> sv = Vector512.Create(s);
            Vector512<float> acc = Vector512<float>.Zero;
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                Vector512<float> e = Exp(Vector512.LoadUnsafe(ref xr, (nuint)i) - sv);
                e.StoreUnsafe(ref xr, (nuint)i);
                acc += e;
            }
            if (i < n)
            {
                nuint last = (nuint)(n - Vector512<float>.Count);
                Vector512<float> x = Vector512.LoadUnsafe(ref xr, last), e = Exp(x - sv);
                Vector512<float> fresh = TailLanes.From512<float>(i - (int)last);
                Vector512.ConditionalSelect(fresh, e, x).StoreUnsafe(ref xr, last);
                acc += e & fresh;
                i = n;
            }
            sum = Reductions.Sum(acc);
        }
        else if (SimdPaths.Vector256 && n >= Vector256<float>.Count)
        {
            Vector256<float> sv = Vector256.Create(s);
            Vector256<float> acc = Vector256<float>.Zero;
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                Vector256<float> e = Exp(Vector256.LoadUnsafe(ref xr, (nuint)i) - sv);
                e.StoreUnsafe(ref xr, (nuint)i);
                acc += e;
            }
            if (i < n)
            {
                nuint last = (nuint)(n - Vector256<float>.Count);
                Vector256<float> x = Vector256.LoadUnsafe(ref xr, last), e = Exp(x - sv);
                Vector256<float> fresh = TailLanes.From256<float>(i - (int)last);
                Vector256.ConditionalSelect(fresh, e, x).StoreUnsafe(ref xr, last);
                acc += e & fresh;
                i = n;
            }
            sum = Reductions.Sum(acc);
        }
        else if (SimdPaths.Vector128 && n >= Vector128<float>.Count)
        {
            Vector128<float> sv = Vector128.Create(s);
            Vector128<float> acc = Vector128<float>.Zero;
            for (; i <= n - Vector128<float>.Count; i += Vector128<float>.Count)
            {
                Vector128<float> e = Exp(Vector128.LoadUnsafe(ref xr, (nuint)i) - sv);
                e.StoreUnsafe(ref xr, (nuint)i);
                acc += e;
            }
            if (i < n)
            {
                nuint last = (nuint)(n - Vector128<float>.Count);
                Vector128<float> x = Vector128.LoadUnsafe(ref xr, last), e = Exp(x - sv);
                Vector128<float> fresh = TailLanes.From128<float>(i - (int)last);
                Vector128.ConditionalSelect(fresh, e, x).StoreUnsafe(ref xr, last);
                acc += e & fresh;
                i = n;
            }
            sum = Reductions.Sum(acc);
        }
        for (; i < n; i++)
        {
            float e = MathF.Exp(Unsafe.Add(ref xr, i) - s);
            Unsafe.Add(ref xr, i) = e;
            sum += e;
        }
        return sum;
    }

    /// <summary>
    /// <see cref="AttentionMath.Softmax{T}"/> of a float row of 17 to 32 scores (30 keys, say) held in two Vector512 registers:
    /// the row's first vector and its last whole one, which overlaps it. The same operations as the general path (maximum,
    /// e^{x − max} summed over the row's lanes once, times 1 / Σ), so the same results, without its three passes' loads,
    /// stores and loop control. The overlapping lanes are computed twice from the same inputs and stored twice with the same
    /// value.
    /// </summary>
    internal static bool SoftmaxTwoVectors(Span<float> row)
    {
        ref float r = ref MemoryMarshal.GetReference(row);
        int n = row.Length;
        Debug.Assert(n > Vector512<float>.Count && n <= 2 * Vector512<float>.Count);
        nuint last = (nuint)(n - Vector512<float>.Count);
        Vector512<float> first = Vector512.LoadUnsafe(ref r), tail = Vector512.LoadUnsafe(ref r, last);
        Vector512<float> m = Vector512.Max(first, tail);
        float max = ReduceMax(m.GetLower(), m.GetUpper());
        if (float.IsNegativeInfinity(max))
        {
            row.Clear();
            return false;
        }
        Vector512<float> shift = Vector512.Create(max);
        Vector512<float> firstExp = Exp(first - shift), tailExp = Exp(tail - shift);
        float inverse = 1f / Reductions.Sum(firstExp + (tailExp & TailLanes.From512<float>(Vector512<float>.Count - (int)last)));
        Vector512<float> scale = Vector512.Create(inverse);
        (firstExp * scale).StoreUnsafe(ref r);
        (tailExp * scale).StoreUnsafe(ref r, last);
        return true;
    }

    // e^x = 2ⁿ · e^r with n = round(x·log₂e) and r = x − n·ln 2, |r| ≤ ln 2 / 2 (VectorMath.SplitExponent: n by the shift
    // trick, r by the two-part ln 2), e^r − 1 = q by VectorMath's fitted polynomial (1.7e-8 relative), then e^x = 2ⁿq + 2ⁿ in one
    // multiply-add. Inputs below −87 give 0 (softmax needs exact zeros for masked scores, e^{−∞}); above 88 they are
    // clamped (never reached: softmax shifts by the maximum); NaN stays NaN (the clamp returns it, the comparison below
    // is false for it, and it reaches the final multiply-add).
    private const float ExpLow = -87f, ExpHigh = 88f;

    // One e^x through the vector routine for float (a libm call costs more than the whole vector evaluation).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static T ScalarExp<T>(T x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float) && SimdPaths.Vector128
            ? T.CreateTruncating(Exp(Vector128.CreateScalar(float.CreateTruncating(x))).ToScalar())
            : T.Exp(x);

    /// <summary>e^x in each float lane, error ≤ 2 ulp; 0 below −87 (and for −∞), NaN for NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        Vector512<float> clamped = Vector512.MinNative(Vector512.Create(ExpHigh), x);
        Vector512<float> r = VectorMath.SplitExponent(clamped, out Vector512<float> scale, wholeRange: true);
        Vector512<float> result = VectorMath.MultiplyAdd(VectorMath.ExpMinusOneReduced(r), scale, scale);
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(ExpLow)), Vector512<float>.Zero, result);
    }

    /// <inheritdoc cref="Exp(Vector512{float})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        Vector256<float> clamped = Vector256.MinNative(Vector256.Create(ExpHigh), x);
        Vector256<float> r = VectorMath.SplitExponent(clamped, out Vector256<float> scale, wholeRange: true);
        Vector256<float> result = VectorMath.MultiplyAdd(VectorMath.ExpMinusOneReduced(r), scale, scale);
        return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(ExpLow)), Vector256<float>.Zero, result);
    }

    /// <inheritdoc cref="Exp(Vector512{float})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Exp(Vector128<float> x)
    {
        Vector128<float> clamped = Vector128.MinNative(Vector128.Create(ExpHigh), x);
        Vector128<float> r = VectorMath.SplitExponent(clamped, out Vector128<float> scale, wholeRange: true);
        Vector128<float> result = VectorMath.MultiplyAdd(VectorMath.ExpMinusOneReduced(r), scale, scale);
        return Vector128.ConditionalSelect(Vector128.LessThan(x, Vector128.Create(ExpLow)), Vector128<float>.Zero, result);
    }

    /// <summary>
    /// The softmax backward of one tile row: dSⱼ = pⱼ (dPⱼ − D) in place in <paramref name="dWeights"/>, where
    /// D = Σ dO ⊙ O over the query's whole output row (FlashAttention-2's rowsum, equal to Σⱼ pⱼ dPⱼ over all keys).
    /// </summary>
    public static void SoftmaxGradient<T>(ReadOnlySpan<T> weights, Span<T> dWeights, T delta) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int n = Math.Min(weights.Length, dWeights.Length);
        WeightedDifference(weights.Slice(0, n), dWeights.Slice(0, n), delta, dWeights.Slice(0, n));
    }

    // destinationⱼ = pⱼ (gⱼ − delta) for the n = p.Length elements (g and destination hold at least n); destination may be g
    // itself. Each element is the same two operations whichever width computes it.
    internal static void WeightedDifference<T>(ReadOnlySpan<T> weights, ReadOnlySpan<T> g, T delta, Span<T> destination)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ref T p = ref MemoryMarshal.GetReference(weights);
        ref T gr = ref MemoryMarshal.GetReference(g);
        ref T o = ref MemoryMarshal.GetReference(destination);
        int n = weights.Length;
        int i = 0;
        // In the tails below the overlapping lanes of g may already hold results (in place); they are computed and dropped.
        if (SimdPaths.Vector512 && n >= Vector512<T>.Count)
        {
            Vector512<T> d = Vector512.Create(delta);
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
            {
                (Vector512.LoadUnsafe(ref p, (nuint)i) * (Vector512.LoadUnsafe(ref gr, (nuint)i) - d)).StoreUnsafe(ref o, (nuint)i);
            }
            if (i < n)
            {
                nuint last = (nuint)(n - Vector512<T>.Count);
                Vector512<T> result = Vector512.LoadUnsafe(ref p, last) * (Vector512.LoadUnsafe(ref gr, last) - d);
                Vector512.ConditionalSelect(TailLanes.From512<T>(i - (int)last), result, Vector512.LoadUnsafe(ref o, last)).StoreUnsafe(ref o, last);
                i = n;
            }
        }
        else if (SimdPaths.Vector256 && n >= Vector256<T>.Count)
        {
            Vector256<T> d = Vector256.Create(delta);
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                (Vector256.LoadUnsafe(ref p, (nuint)i) * (Vector256.LoadUnsafe(ref gr, (nuint)i) - d)).StoreUnsafe(ref o, (nuint)i);
            }
            if (i < n)
            {
                nuint last = (nuint)(n - Vector256<T>.Count);
                Vector256<T> result = Vector256.LoadUnsafe(ref p, last) * (Vector256.LoadUnsafe(ref gr, last) - d);
                Vector256.ConditionalSelect(TailLanes.From256<T>(i - (int)last), result, Vector256.LoadUnsafe(ref o, last)).StoreUnsafe(ref o, last);
                i = n;
            }
        }
        else if (SimdPaths.Vector128 && n >= Vector128<T>.Count)
        {
            Vector128<T> d = Vector128.Create(delta);
            for (; i <= n - Vector128<T>.Count; i += Vector128<T>.Count)
            {
                (Vector128.LoadUnsafe(ref p, (nuint)i) * (Vector128.LoadUnsafe(ref gr, (nuint)i) - d)).StoreUnsafe(ref o, (nuint)i);
            }
            if (i < n)
            {
                nuint last = (nuint)(n - Vector128<T>.Count);
                Vector128<T> result = Vector128.LoadUnsafe(ref p, last) * (Vector128.LoadUnsafe(ref gr, last) - d);
                Vector128.ConditionalSelect(TailLanes.From128<T>(i - (int)last), result, Vector128.LoadUnsafe(ref o, last)).StoreUnsafe(ref o, last);
                i = n;
            }
        }
        for (; i < n; i++)
        {
            Unsafe.Add(ref o, i) = Unsafe.Add(ref p, i) * (Unsafe.Add(ref gr, i) - delta);
        }
    }

    /// <summary>xᵢ ← xᵢ · factor, vectorised.</summary>
    public static void Scale<T>(Span<T> x, T factor) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => Scale((ReadOnlySpan<T>)x, factor, x);

    /// <summary>
    /// destinationᵢ = xᵢ · factor, vectorised: a copy and a scaling in one pass (the scaled queries and the stored weights
    /// of a multi-head layer's recorded forward).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="x"/>.</exception>
    public static void Scale<T>(ReadOnlySpan<T> x, T factor, Span<T> destination) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (destination.Length < x.Length)
        {
            throw new ArgumentException($"destination holds {destination.Length} elements; x has {x.Length}.", nameof(destination));
        }
        ref T xr = ref MemoryMarshal.GetReference(x);
        ref T dr = ref MemoryMarshal.GetReference(destination);
        int n = x.Length;
        int i = 0;
        if (SimdPaths.Vector512 && n >= Vector512<T>.Count)
        {
            Vector512<T> f = Vector512.Create(factor);
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
            {
                (Vector512.LoadUnsafe(ref xr, (nuint)i) * f).StoreUnsafe(ref dr, (nuint)i);
            }
            if (i < n)
            {
                // The tail as the last whole vector; in place, its overlapping lanes are already scaled and are kept as they are.
                nuint last = (nuint)(n - Vector512<T>.Count);
                Vector512<T> scaled = Vector512.LoadUnsafe(ref xr, last) * f;
                Vector512.ConditionalSelect(TailLanes.From512<T>(i - (int)last), scaled, Vector512.LoadUnsafe(ref dr, last)).StoreUnsafe(ref dr, last);
                i = n;
            }
        }
        else if (SimdPaths.Vector256 && n >= Vector256<T>.Count)
        {
            Vector256<T> f = Vector256.Create(factor);
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                (Vector256.LoadUnsafe(ref xr, (nuint)i) * f).StoreUnsafe(ref dr, (nuint)i);
            }
            if (i < n)
            {
                // The tail as the last whole vector; in place, its overlapping lanes are already scaled and are kept as they are.
                nuint last = (nuint)(n - Vector256<T>.Count);
                Vector256<T> scaled = Vector256.LoadUnsafe(ref xr, last) * f;
                Vector256.ConditionalSelect(TailLanes.From256<T>(i - (int)last), scaled, Vector256.LoadUnsafe(ref dr, last)).StoreUnsafe(ref dr, last);
                i = n;
            }
        }
        else if (SimdPaths.Vector128 && n >= Vector128<T>.Count)
        {
            Vector128<T> f = Vector128.Create(factor);
            for (; i <= n - Vector128<T>.Count; i += Vector128<T>.Count)
            {
                (Vector128.LoadUnsafe(ref xr, (nuint)i) * f).StoreUnsafe(ref dr, (nuint)i);
            }
            if (i < n)
            {
                // The tail as the last whole vector; in place, its overlapping lanes are already scaled and are kept as they are.
                nuint last = (nuint)(n - Vector128<T>.Count);
                Vector128<T> scaled = Vector128.LoadUnsafe(ref xr, last) * f;
                Vector128.ConditionalSelect(TailLanes.From128<T>(i - (int)last), scaled, Vector128.LoadUnsafe(ref dr, last)).StoreUnsafe(ref dr, last);
                i = n;
            }
        }
        for (; i < n; i++)
        {
            Unsafe.Add(ref dr, i) = Unsafe.Add(ref xr, i) * factor;
        }
    }

    /// <summary>
    /// The largest element, vectorised (−∞ for an empty or all −∞ row; NaN when any element is NaN; +0 when the largest
    /// is a zero and any zero is +0): IEEE 754's maximum. A row longer than one vector reads its tail as the last whole
    /// vector; shorter rows take the scalar loop.
    /// </summary>
    public static T Max<T>(ReadOnlySpan<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ref T xr = ref MemoryMarshal.GetReference(x);
        int n = x.Length;
        if (SimdPaths.Vector512 && n >= Vector512<T>.Count)
        {
            Vector512<T> m = Vector512.Create(T.NegativeInfinity), nan = Vector512<T>.Zero;
            for (int i = 0; i < n; i += Vector512<T>.Count)
            {
                // the tail as the last whole vector, overlapping lanes already seen (a maximum may count an element twice)
                Vector512<T> v = Vector512.LoadUnsafe(ref xr, (nuint)Math.Min(i, n - Vector512<T>.Count));
                m = Vector512.MaxNative(m, v);
                nan |= Vector512.IsNaN(v);
            }
            return MaxOfLanes(Vector256.MaxNative(m.GetLower(), m.GetUpper()), nan.GetLower() | nan.GetUpper(), ref xr, n);
        }
        if (SimdPaths.Vector256 && n >= Vector256<T>.Count)
        {
            Vector256<T> m = Vector256.Create(T.NegativeInfinity), nan = Vector256<T>.Zero;
            for (int i = 0; i < n; i += Vector256<T>.Count)
            {
                Vector256<T> v = Vector256.LoadUnsafe(ref xr, (nuint)Math.Min(i, n - Vector256<T>.Count));
                m = Vector256.MaxNative(m, v);
                nan |= Vector256.IsNaN(v);
            }
            return MaxOfLanes(m, nan, ref xr, n);
        }
        if (SimdPaths.Vector128 && n >= Vector128<T>.Count)
        {
            Vector128<T> m = Vector128.Create(T.NegativeInfinity), nan = Vector128<T>.Zero;
            for (int i = 0; i < n; i += Vector128<T>.Count)
            {
                Vector128<T> v = Vector128.LoadUnsafe(ref xr, (nuint)Math.Min(i, n - Vector128<T>.Count));
                m = Vector128.MaxNative(m, v);
                nan |= Vector128.IsNaN(v);
            }
            return MaxOfLanes(m, nan, ref xr, n);
        }
        T max = T.NegativeInfinity;
        for (int i = 0; i < n; i++)
        {
            max = T.Max(max, Unsafe.Add(ref xr, i));
        }
        return max;
    }

    // Vector.Max is IEEE 754's maximum (a NaN wins, +0 is above −0); without AVX-512 that is nine instructions a vector, all
    // in the loop's one dependent chain, and a tile row's maximum cost half as much as its exponentials. So the loops take
    // MaxNative (one vmaxps) and set NaN lanes aside. The folded lanes then give IEEE's maximum except for the sign of a zero
    // maximum, which ZeroMaximum settles by looking at the row again (only when the maximum is a zero): the same value, bit
    // for bit, as folding with Max.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T MaxOfLanes<T>(Vector256<T> m, Vector256<T> nan, ref T x, int n) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => MaxOfLanes(Vector128.MaxNative(m.GetLower(), m.GetUpper()), nan.GetLower() | nan.GetUpper(), ref x, n);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T MaxOfLanes<T>(Vector128<T> m, Vector128<T> nan, ref T x, int n) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (nan != Vector128<T>.Zero)
        {
            return T.NaN;
        }
        m = Vector128.MaxNative(m, Vector128.Shuffle(m.AsInt64(), Vector128.Create(1L, 0L)).As<long, T>());
        if (Vector128<T>.Count == 4)
        {
            m = Vector128.MaxNative(m, Vector128.Shuffle(m.AsInt32(), Vector128.Create(1, 0, 3, 2)).As<int, T>());
        }
        T max = m.ToScalar();
        return T.IsZero(max) ? ZeroMaximum(ref x, n) : max;
    }

    // The largest element of a row whose largest is a zero: +0 if any element is +0, else −0.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static T ZeroMaximum<T>(ref T x, int n) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        for (int i = 0; i < n; i++)
        {
            T v = Unsafe.Add(ref x, i);
            if (T.IsZero(v) && T.IsPositive(v))
            {
                return T.Zero;
            }
        }
        return T.NegativeZero;
    }

    private static T ReduceMax<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => ReduceMax(Vector256.Max(a, b).GetLower(), Vector256.Max(a, b).GetUpper());

    // The lanes folded pairwise (the 64-bit halves swapped, then for float the 32-bit neighbours), all in registers.
    private static T ReduceMax<T>(Vector128<T> a, Vector128<T> b) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Vector128<T> m = Vector128.Max(a, b);
        m = Vector128.Max(m, Vector128.Shuffle(m.AsInt64(), Vector128.Create(1L, 0L)).As<long, T>());
        if (Vector128<T>.Count == 4)
        {
            m = Vector128.Max(m, Vector128.Shuffle(m.AsInt32(), Vector128.Create(1, 0, 3, 2)).As<int, T>());
        }
        return m.ToScalar();
    }
}
