using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AttentionGen.Numerics;

/// <summary>
/// Horizontal sums of several accumulators at once, for the register-blocked dot-product tiles of generated layers:
/// a tile of dot products ends with one accumulator vector per output, and summing each on its own
/// (<c>Vector512.Sum</c>: fold 512 → 256 → 128 → 64 → 32, about eight operations) costs as much as the FMAs of a short
/// dot product. Summing four together transposes as it adds: two in-lane unpacks and one in-lane shuffle pair leave
/// each 128-bit lane holding partial sums of all four, so the folds run once for the four (about thirteen operations
/// for four sums instead of thirty-two).
/// </summary>
/// <remarks>
/// The four sums come out in order in one vector, ready to add into four consecutive outputs. Where AVX-512 is not
/// available (a forced, emulated Vector512 path) each sum is taken on its own; the results may then differ from the
/// accelerated ones in the last bits (another summation order), never otherwise.
/// </remarks>
public static class Reductions
{
    /// <summary>[Σ a0, Σ a1, Σ a2, Σ a3], each the sum of one vector's 16 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> SumEach(Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3)
    {
        if (Avx512F.IsSupported)
        {
            // In each 128-bit lane: unpacks give [a0 a1 a0 a1] partial sums, then the shuffles [a0 a1 a2 a3].
            Vector512<float> pair01 = Avx512F.UnpackLow(a0, a1) + Avx512F.UnpackHigh(a0, a1);
            Vector512<float> pair23 = Avx512F.UnpackLow(a2, a3) + Avx512F.UnpackHigh(a2, a3);
            Vector512<float> four = Avx512F.Shuffle(pair01, pair23, 0b01_00_01_00) + Avx512F.Shuffle(pair01, pair23, 0b11_10_11_10);
            Vector256<float> half = four.GetLower() + four.GetUpper();
            return half.GetLower() + half.GetUpper();
        }
        return Vector128.Create(Vector512.Sum(a0), Vector512.Sum(a1), Vector512.Sum(a2), Vector512.Sum(a3));
    }

    /// <summary>[Σ a0, Σ a1, Σ a2, Σ a3], each the sum of one vector's 8 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> SumEach(Vector512<double> a0, Vector512<double> a1, Vector512<double> a2, Vector512<double> a3)
    {
        if (Avx512F.IsSupported)
        {
            // In each 128-bit lane the unpacks give [a0 a1] and [a2 a3] partial sums; pairing the 128-bit lanes leaves
            // [a0 a1 | a0 a1 | a2 a3 | a2 a3], and the last fold adds within each 256-bit half.
            Vector512<double> pair01 = Avx512F.UnpackLow(a0, a1) + Avx512F.UnpackHigh(a0, a1);
            Vector512<double> pair23 = Avx512F.UnpackLow(a2, a3) + Avx512F.UnpackHigh(a2, a3);
            Vector512<double> four = Avx512F.Shuffle4x128(pair01, pair23, 0b10_00_10_00) + Avx512F.Shuffle4x128(pair01, pair23, 0b11_01_11_01);
            Vector256<double> sums01 = four.GetLower(), sums23 = four.GetUpper();
            return Vector256.Create(sums01.GetLower() + sums01.GetUpper(), sums23.GetLower() + sums23.GetUpper());
        }
        return Vector256.Create(Vector512.Sum(a0), Vector512.Sum(a1), Vector512.Sum(a2), Vector512.Sum(a3));
    }

    /// <summary>
    /// [Σ a0, Σ a1, Σ a2, Σ a3], each the sum of one vector's 8 lanes added exactly as <see cref="Sum(Vector256{float})"/>
    /// adds it (the halves, then (q0 + q1) + (q2 + q3)), so an output has the same bits reduced alone or with three others.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> SumEach(Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3)
    {
        if (Avx.IsSupported)
        {
            // The halves of two vectors side by side ([q0 | q1], q = lower + upper), then two horizontal adds: the first
            // gives each q's (q0 + q1) and (q2 + q3) in its 128-bit lane, the second their sum, as Sum's two swaps do.
            Vector256<float> halves01 = Avx.Permute2x128(a0, a1, 0x20) + Avx.Permute2x128(a0, a1, 0x31);
            Vector256<float> halves23 = Avx.Permute2x128(a2, a3, 0x20) + Avx.Permute2x128(a2, a3, 0x31);
            Vector256<float> pairs = Avx.HorizontalAdd(halves01, halves23); // [a0: 01 23, a2: 01 23 | a1: 01 23, a3: 01 23]
            Vector256<float> sums = Avx.HorizontalAdd(pairs, pairs);        // [Σa0 Σa2 Σa0 Σa2 | Σa1 Σa3 Σa1 Σa3]
            return Sse.UnpackLow(sums.GetLower(), sums.GetUpper());
        }
        return Vector128.Create(Sum(a0), Sum(a1), Sum(a2), Sum(a3));
    }

    /// <summary>
    /// [Σ a0, Σ a1, Σ a2, Σ a3], each the sum of one vector's 4 lanes added exactly as <see cref="Sum(Vector256{double})"/>
    /// adds it ((e0 + e2) + (e1 + e3)), so an output has the same bits reduced alone or with three others.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> SumEach(Vector256<double> a0, Vector256<double> a1, Vector256<double> a2, Vector256<double> a3)
    {
        if (Avx2.IsSupported)
        {
            Vector256<double> halves01 = Avx.Permute2x128(a0, a1, 0x20) + Avx.Permute2x128(a0, a1, 0x31); // [e0+e2, e1+e3] of a0 | of a1
            Vector256<double> halves23 = Avx.Permute2x128(a2, a3, 0x20) + Avx.Permute2x128(a2, a3, 0x31);
            Vector256<double> sums = Avx.HorizontalAdd(halves01, halves23); // [Σa0 Σa2 | Σa1 Σa3]
            return Avx2.Permute4x64(sums, 0b11_01_10_00);
        }
        return Vector256.Create(Sum(a0), Sum(a1), Sum(a2), Sum(a3));
    }

    /// <summary>
    /// Σ of the 16 lanes, added in the order <see cref="SumEach(Vector512{float}, Vector512{float}, Vector512{float}, Vector512{float})"/>
    /// adds each of its vectors (in each 128-bit lane (j0 + j2) + (j1 + j3), then the lanes (q0 + q2) + (q1 + q3)), so an
    /// output reduced on its own has the same bits as when it is reduced four at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SumLikeEach(Vector512<float> v)
    {
        if (Avx512F.IsSupported)
        {
            Vector512<float> pairs = v + Avx512F.Permute4x32(v, 0b01_00_11_10);                 // [j0+j2, j1+j3, j2+j0, j3+j1]
            Vector512<float> lanes = pairs + Avx512F.Permute4x32(pairs, 0b10_11_00_01);         // (j0+j2) + (j1+j3) in j0
            Vector256<float> half = lanes.GetLower() + lanes.GetUpper();
            return (half.GetLower() + half.GetUpper()).ToScalar();
        }
        return Vector512.Sum(v);
    }

    /// <summary>
    /// Σ of the 8 lanes, added in the order <see cref="SumEach(Vector512{double}, Vector512{double}, Vector512{double}, Vector512{double})"/>
    /// adds each of its vectors (((e0 + e1) + (e2 + e3)) + ((e4 + e5) + (e6 + e7))), so an output reduced on its own has the
    /// same bits as when it is reduced four at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double SumLikeEach(Vector512<double> v)
    {
        if (Avx512F.IsSupported)
        {
            Vector512<double> pairs = v + Avx512F.Permute2x64(v, 0b0101_0101);                  // e2q + e2q+1 in each e2q
            Vector256<double> low = pairs.GetLower(), high = pairs.GetUpper();
            return (low.GetLower() + low.GetUpper()).ToScalar() + (high.GetLower() + high.GetUpper()).ToScalar();
        }
        return Vector512.Sum(v);
    }

    // One vector's sum by halves: each step adds the upper half to the lower (one extract and one add), and the last
    // 128 bits are folded in-lane by two swaps. About seven instructions for 16 floats, where Vector512.Sum reduces each
    // 128-bit quarter on its own (about twenty-two); the order of the additions differs, so the last bit may.

    /// <summary>Σ of the 16 lanes, folded by halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector512<float> v) => Sum(v.GetLower() + v.GetUpper());

    /// <summary>Σ of the 8 lanes, folded by halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> v) => Sum(v.GetLower() + v.GetUpper());

    /// <summary>Σ of the 4 lanes: neighbours swapped and added, then pairs swapped and added.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector128<float> v)
    {
        v += Vector128.Shuffle(v, Vector128.Create(1, 0, 3, 2));
        v += Vector128.Shuffle(v, Vector128.Create(2, 3, 0, 1));
        return v.ToScalar();
    }

    /// <summary>Σ of the 8 lanes, folded by halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Sum(Vector512<double> v) => Sum(v.GetLower() + v.GetUpper());

    /// <summary>Σ of the 4 lanes, folded by halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Sum(Vector256<double> v) => Sum(v.GetLower() + v.GetUpper());

    /// <summary>Σ of the 2 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Sum(Vector128<double> v) => v.ToScalar() + v.GetElement(1);
}
