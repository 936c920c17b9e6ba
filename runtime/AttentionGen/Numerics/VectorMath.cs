using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AttentionGen.Numerics;

/// <summary>
/// Element-wise transcendental functions on SIMD vectors, for <see cref="float"/> and <see cref="double"/>,
/// at each width side by side (as <c>TensorPrimitives</c>' operators are written). Generated layers call
/// these inside their fused loops; <see cref="AttentionMath"/> applies them over spans.
/// </summary>
/// <remarks>
/// <para><b>tanh.</b> With y = −2|x| clamped (at −87 for float, −708 for double, where tanh is ±1 to the last bit),
/// m = eʸ − 1 is computed without cancellation (y = n·ln2 + r, a polynomial for eʳ − 1, then 2ⁿq + (2ⁿ − 1) in one
/// multiply-add) and tanh|x| = m / (−2 − m), sign restored: no branch, one division. float: n by the shift trick, r in
/// one FMA, a degree-6 fitted polynomial, about 18 vector operations; double: the Cody–Waite split and the Taylor
/// polynomial to r¹³. The scalar path computes the same formula. Measured maximum relative errors against
/// <see cref="System.Math.Tanh(double)"/>: see docs/numerics.md.</para>
/// <para><b>sigmoid.</b> float: with e = e^{−|x|} by the softmax exponential, σ = 1 / (1 + e) for x ≥ 0 and e / (1 + e)
/// below 0, exactly 0 below −87 and 1 above 87 (the scalar path the same through a one-lane vector); double: 1 / (1 + e^{−x}).</para>
/// <para>NaN in, NaN out, in every function.</para>
/// </remarks>
public static class VectorMath
{
    // Cody–Waite split of ln 2 for double (and for float without FMA hardware): the high part has few enough bits that
    // n·ln2High is exact for the n that occur, even when the multiply-add is not fused.
    private const double Log2E = 1.4426950408889634;
    private const double Ln2High = 0.693145751953125;
    private const double Ln2Low = 1.42860682030941723212e-6;

    // The float tanh's constants. Adding RoundingShift = 1.5·2²³ + 127 to y·log₂e (|y·log₂e| < 2²²) rounds it to an integer n
    // held in the sum's low mantissa bits already biased by 127, so the sum's bits shifted left by 23 are 2ⁿ and one
    // subtraction gives n: no round, convert or add of the bias.
    private const float RoundingShift = 12582912f + 127f;
    private const float Log2ESingle = 1.44269504f;
    private const float Ln2Single = 0.693147182f;
    private const float Ln2HighSingle = 0.693145752f;
    private const float Ln2LowSingle = 1.42860677e-6f;

    // eʳ − 1 = r + r²·h(r) for |r| ≤ 0.3475: h of degree 4, fitted (Lawson-weighted least squares, then rounded to float) for
    // the relative error of eʳ − 1, 1.7e-8 at most with these float coefficients (the Taylor terms to r⁷ left 1.5e-8).
    private const float ExpM1C0 = 0.49999997f, ExpM1C1 = 0.16666542f, ExpM1C2 = 0.041667204f, ExpM1C3 = 0.008366692f, ExpM1C4 = 0.0013882488f;
    /// <summary>tanh of each lane (method and error bound: see the class remarks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Tanh<T>(Vector512<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float) ? TanhSingle(x.AsSingle()).As<float, T>() : TanhDouble(x.AsDouble()).As<double, T>();

    /// <summary>
    /// float tanh: with y = −2|x| clamped at −87 (tanh is ±1 to the last bit long before), y = n·ln2 + r, |r| ≤ ln2/2,
    /// eʳ − 1 = q by its polynomial and m = eʸ − 1 = 2ⁿq + (2ⁿ − 1) in one multiply-add (no cancellation near 0);
    /// tanh|x| = m / (−2 − m), sign restored. About 18 vector operations and one division, no branch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> TanhSingle(Vector512<float> x)
    {
        // The clamp's constant is MaxNative's first operand: where either is NaN the instruction returns the second, so a
        // NaN x stays NaN through every step (no compare and select at the end).
        Vector512<float> y = Vector512.MaxNative(Vector512.Create(-87f), Vector512.Abs(x) * Vector512.Create(-2f));
        Vector512<float> r = SplitExponent(y, out Vector512<float> scale, wholeRange: false);
        Vector512<float> m = MultiplyAdd(scale, ExpMinusOneReduced(r), scale - Vector512<float>.One); // scale = 2ⁿ: the product is exact either way
        return Vector512.CopySign(m / (Vector512.Create(-2f) - m), x);
    }

    /// <summary>
    /// For float lanes y in [−87, 88]: y = n·ln2 + r with n = round(y·log₂e) and |r| ≤ ln2/2 (a little more without FMA
    /// hardware); returns r. A NaN y gives a NaN r.
    /// </summary>
    /// <param name="y">The lanes to split.</param>
    /// <param name="scale">Set to 2ⁿ.</param>
    /// <param name="wholeRange">
    /// true: r to float precision for every n, by the two-part ln 2 (two operations). false: one FMA with ln 2 rounded to
    /// float where the hardware has it, whose error n·(ln2 − fl(ln2)) grows to 2.4e-7 at |n| = 126: enough where 2ⁿ is
    /// small beside what it is added to (tanh's m = 2ⁿq + 2ⁿ − 1), not for eʸ itself.
    /// </param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> SplitExponent(Vector512<float> y, out Vector512<float> scale, bool wholeRange)
    {
        Vector512<float> shifted = Vector512.MultiplyAddEstimate(y, Vector512.Create(Log2ESingle), Vector512.Create(RoundingShift));
        Vector512<float> n = shifted - Vector512.Create(RoundingShift);
        scale = Vector512.ShiftLeft(shifted.AsInt32(), 23).AsSingle();
        if (!wholeRange)
        {
            return Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Single), y); // AVX-512 has FMA: n·ln2 is exact inside it
        }
        // Ln2HighSingle has few enough bits that n·Ln2HighSingle is exact even unfused.
        return Vector512.MultiplyAddEstimate(n, Vector512.Create(-Ln2LowSingle), Vector512.MultiplyAddEstimate(n, Vector512.Create(-Ln2HighSingle), y));
    }

    /// <summary>eʳ − 1 = r + r²·h(r) for float lanes |r| ≤ 0.3475, within 1.7e-8 relative (h: see its constants).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> ExpMinusOneReduced(Vector512<float> r)
    {
        Vector512<float> h = Vector512.Create(ExpM1C4);
        h = Vector512.MultiplyAddEstimate(h, r, Vector512.Create(ExpM1C3));
        h = Vector512.MultiplyAddEstimate(h, r, Vector512.Create(ExpM1C2));
        h = Vector512.MultiplyAddEstimate(h, r, Vector512.Create(ExpM1C1));
        h = Vector512.MultiplyAddEstimate(h, r, Vector512.Create(ExpM1C0));
        return Vector512.MultiplyAddEstimate(h, r * r, r);
    }

    /// <summary>double tanh: as the float one, with y clamped at −708, the two-part ln 2 and the Taylor polynomial to r¹³.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<double> TanhDouble(Vector512<double> x)
    {
        Vector512<double> y = Vector512.MaxNative(Vector512.Create(-708.0), Vector512.Abs(x) * Vector512.Create(-2.0));
        Vector512<double> m = ExpMinusOne(y);
        return Vector512.CopySign(m / (Vector512.Create(-2.0) - m), x);
    }

    /// <summary>
    /// eʸ − 1 for y in [−708, 0]: y = n·ln2 + r with |r| ≤ ln2/2 (Cody–Waite, ln2 split in two so n·ln2 is exact),
    /// eʳ − 1 = q(r) by its Taylor polynomial to r¹³ (&lt; 1e-17 left), then eʸ − 1 = 2ⁿ q + (2ⁿ − 1) in one multiply-add.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<double> ExpMinusOne(Vector512<double> y)
    {
        Vector512<double> n = Vector512.Round(y * Vector512.Create(Log2E));
        Vector512<double> r = Vector512.MultiplyAddEstimate(n, Vector512.Create(-Ln2Low), Vector512.MultiplyAddEstimate(n, Vector512.Create(-Ln2High), y));
        Vector512<double> p = Vector512.Create(1.0 / 6227020800);
        p = Vector512.MultiplyAddEstimate(p, r, Vector512.Create(1.0 / 479001600));
        p = Vector512.MultiplyAddEstimate(p, r, Vector512.Create(1.0 / 39916800));
        p = Vector512.MultiplyAddEstimate(p, r, Vector512.Create(1.0 / 3628800));
        p = Vector512.MultiplyAddEstimate(p, r, Vector512.Create(1.0 / 362880));
        p = Vector512.MultiplyAddEstimate(p, r, Vector512.Create(1.0 / 40320));
        p = Vector512.MultiplyAddEstimate(p, r, Vector512.Create(1.0 / 5040));
        p = Vector512.MultiplyAddEstimate(p, r, Vector512.Create(1.0 / 720));
        p = Vector512.MultiplyAddEstimate(p, r, Vector512.Create(1.0 / 120));
        p = Vector512.MultiplyAddEstimate(p, r, Vector512.Create(1.0 / 24));
        p = Vector512.MultiplyAddEstimate(p, r, Vector512.Create(1.0 / 6));
        p = Vector512.MultiplyAddEstimate(p, r, Vector512.Create(0.5));
        p = Vector512.MultiplyAddEstimate(p, r, Vector512<double>.One);
        Vector512<double> scale = Vector512.ShiftLeft(Vector512.ConvertToInt64Native(n) + Vector512.Create(1023L), 52).AsDouble();
        return Vector512.MultiplyAddEstimate(scale, p * r, scale - Vector512<double>.One); // scale = 2ⁿ: the product is exact either way
    }
    /// <summary>tanh of each lane (method and error bound: see the class remarks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Tanh<T>(Vector256<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float) ? TanhSingle(x.AsSingle()).As<float, T>() : TanhDouble(x.AsDouble()).As<double, T>();

    /// <summary>
    /// float tanh: with y = −2|x| clamped at −87 (tanh is ±1 to the last bit long before), y = n·ln2 + r, |r| ≤ ln2/2,
    /// eʳ − 1 = q by its polynomial and m = eʸ − 1 = 2ⁿq + (2ⁿ − 1) in one multiply-add (no cancellation near 0);
    /// tanh|x| = m / (−2 − m), sign restored. About 18 vector operations and one division, no branch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> TanhSingle(Vector256<float> x)
    {
        // The clamp's constant is MaxNative's first operand: where either is NaN the instruction returns the second, so a
        // NaN x stays NaN through every step (no compare and select at the end).
        Vector256<float> y = Vector256.MaxNative(Vector256.Create(-87f), Vector256.Abs(x) * Vector256.Create(-2f));
        Vector256<float> r = SplitExponent(y, out Vector256<float> scale, wholeRange: false);
        Vector256<float> m = MultiplyAdd(scale, ExpMinusOneReduced(r), scale - Vector256<float>.One); // scale = 2ⁿ: the product is exact either way
        return Vector256.CopySign(m / (Vector256.Create(-2f) - m), x);
    }

    /// <summary>
    /// For float lanes y in [−87, 88]: y = n·ln2 + r with n = round(y·log₂e) and |r| ≤ ln2/2 (a little more without FMA
    /// hardware); returns r. A NaN y gives a NaN r.
    /// </summary>
    /// <param name="y">The lanes to split.</param>
    /// <param name="scale">Set to 2ⁿ.</param>
    /// <param name="wholeRange">
    /// true: r to float precision for every n, by the two-part ln 2 (two operations). false: one FMA with ln 2 rounded to
    /// float where the hardware has it, whose error n·(ln2 − fl(ln2)) grows to 2.4e-7 at |n| = 126: enough where 2ⁿ is
    /// small beside what it is added to (tanh's m = 2ⁿq + 2ⁿ − 1), not for eʸ itself.
    /// </param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> SplitExponent(Vector256<float> y, out Vector256<float> scale, bool wholeRange)
    {
        Vector256<float> shifted = Vector256.MultiplyAddEstimate(y, Vector256.Create(Log2ESingle), Vector256.Create(RoundingShift));
        Vector256<float> n = shifted - Vector256.Create(RoundingShift);
        scale = Vector256.ShiftLeft(shifted.AsInt32(), 23).AsSingle();
        if (!wholeRange && Fma.IsSupported)
        {
            return Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Single), y); // n·ln2 is exact inside the fused operation
        }
        // Ln2HighSingle has few enough bits that n·Ln2HighSingle is exact even unfused.
        return Vector256.MultiplyAddEstimate(n, Vector256.Create(-Ln2LowSingle), Vector256.MultiplyAddEstimate(n, Vector256.Create(-Ln2HighSingle), y));
    }

    /// <summary>eʳ − 1 = r + r²·h(r) for float lanes |r| ≤ 0.3475, within 1.7e-8 relative (h: see its constants).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> ExpMinusOneReduced(Vector256<float> r)
    {
        Vector256<float> h = Vector256.Create(ExpM1C4);
        h = Vector256.MultiplyAddEstimate(h, r, Vector256.Create(ExpM1C3));
        h = Vector256.MultiplyAddEstimate(h, r, Vector256.Create(ExpM1C2));
        h = Vector256.MultiplyAddEstimate(h, r, Vector256.Create(ExpM1C1));
        h = Vector256.MultiplyAddEstimate(h, r, Vector256.Create(ExpM1C0));
        return Vector256.MultiplyAddEstimate(h, r * r, r);
    }

    /// <summary>double tanh: as the float one, with y clamped at −708, the two-part ln 2 and the Taylor polynomial to r¹³.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<double> TanhDouble(Vector256<double> x)
    {
        Vector256<double> y = Vector256.MaxNative(Vector256.Create(-708.0), Vector256.Abs(x) * Vector256.Create(-2.0));
        Vector256<double> m = ExpMinusOne(y);
        return Vector256.CopySign(m / (Vector256.Create(-2.0) - m), x);
    }

    /// <summary>
    /// eʸ − 1 for y in [−708, 0]: y = n·ln2 + r with |r| ≤ ln2/2 (Cody–Waite, ln2 split in two so n·ln2 is exact),
    /// eʳ − 1 = q(r) by its Taylor polynomial to r¹³ (&lt; 1e-17 left), then eʸ − 1 = 2ⁿ q + (2ⁿ − 1) in one multiply-add.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<double> ExpMinusOne(Vector256<double> y)
    {
        Vector256<double> n = Vector256.Round(y * Vector256.Create(Log2E));
        Vector256<double> r = Vector256.MultiplyAddEstimate(n, Vector256.Create(-Ln2Low), Vector256.MultiplyAddEstimate(n, Vector256.Create(-Ln2High), y));
        Vector256<double> p = Vector256.Create(1.0 / 6227020800);
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(1.0 / 479001600));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(1.0 / 39916800));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(1.0 / 3628800));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(1.0 / 362880));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(1.0 / 40320));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(1.0 / 5040));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(1.0 / 720));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(1.0 / 120));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(1.0 / 24));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(1.0 / 6));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(0.5));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256<double>.One);
        Vector256<double> scale = Vector256.ShiftLeft(Vector256.ConvertToInt64Native(n) + Vector256.Create(1023L), 52).AsDouble();
        return Vector256.MultiplyAddEstimate(scale, p * r, scale - Vector256<double>.One); // scale = 2ⁿ: the product is exact either way
    }
    /// <summary>tanh of each lane (method and error bound: see the class remarks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Tanh<T>(Vector128<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float) ? TanhSingle(x.AsSingle()).As<float, T>() : TanhDouble(x.AsDouble()).As<double, T>();

    /// <summary>
    /// float tanh: with y = −2|x| clamped at −87 (tanh is ±1 to the last bit long before), y = n·ln2 + r, |r| ≤ ln2/2,
    /// eʳ − 1 = q by its polynomial and m = eʸ − 1 = 2ⁿq + (2ⁿ − 1) in one multiply-add (no cancellation near 0);
    /// tanh|x| = m / (−2 − m), sign restored. About 18 vector operations and one division, no branch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> TanhSingle(Vector128<float> x)
    {
        // The clamp's constant is MaxNative's first operand: where either is NaN the instruction returns the second, so a
        // NaN x stays NaN through every step (no compare and select at the end).
        Vector128<float> y = Vector128.MaxNative(Vector128.Create(-87f), Vector128.Abs(x) * Vector128.Create(-2f));
        Vector128<float> r = SplitExponent(y, out Vector128<float> scale, wholeRange: false);
        Vector128<float> m = MultiplyAdd(scale, ExpMinusOneReduced(r), scale - Vector128<float>.One); // scale = 2ⁿ: the product is exact either way
        return Vector128.CopySign(m / (Vector128.Create(-2f) - m), x);
    }

    /// <summary>
    /// For float lanes y in [−87, 88]: y = n·ln2 + r with n = round(y·log₂e) and |r| ≤ ln2/2 (a little more without FMA
    /// hardware); returns r. A NaN y gives a NaN r.
    /// </summary>
    /// <param name="y">The lanes to split.</param>
    /// <param name="scale">Set to 2ⁿ.</param>
    /// <param name="wholeRange">
    /// true: r to float precision for every n, by the two-part ln 2 (two operations). false: one FMA with ln 2 rounded to
    /// float where the hardware has it, whose error n·(ln2 − fl(ln2)) grows to 2.4e-7 at |n| = 126: enough where 2ⁿ is
    /// small beside what it is added to (tanh's m = 2ⁿq + 2ⁿ − 1), not for eʸ itself.
    /// </param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> SplitExponent(Vector128<float> y, out Vector128<float> scale, bool wholeRange)
    {
        Vector128<float> shifted = Vector128.MultiplyAddEstimate(y, Vector128.Create(Log2ESingle), Vector128.Create(RoundingShift));
        Vector128<float> n = shifted - Vector128.Create(RoundingShift);
        scale = Vector128.ShiftLeft(shifted.AsInt32(), 23).AsSingle();
        if (!wholeRange && Fma.IsSupported)
        {
            return Vector128.FusedMultiplyAdd(n, Vector128.Create(-Ln2Single), y); // n·ln2 is exact inside the fused operation
        }
        // Ln2HighSingle has few enough bits that n·Ln2HighSingle is exact even unfused.
        return Vector128.MultiplyAddEstimate(n, Vector128.Create(-Ln2LowSingle), Vector128.MultiplyAddEstimate(n, Vector128.Create(-Ln2HighSingle), y));
    }

    /// <summary>eʳ − 1 = r + r²·h(r) for float lanes |r| ≤ 0.3475, within 1.7e-8 relative (h: see its constants).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> ExpMinusOneReduced(Vector128<float> r)
    {
        Vector128<float> h = Vector128.Create(ExpM1C4);
        h = Vector128.MultiplyAddEstimate(h, r, Vector128.Create(ExpM1C3));
        h = Vector128.MultiplyAddEstimate(h, r, Vector128.Create(ExpM1C2));
        h = Vector128.MultiplyAddEstimate(h, r, Vector128.Create(ExpM1C1));
        h = Vector128.MultiplyAddEstimate(h, r, Vector128.Create(ExpM1C0));
        return Vector128.MultiplyAddEstimate(h, r * r, r);
    }

    /// <summary>double tanh: as the float one, with y clamped at −708, the two-part ln 2 and the Taylor polynomial to r¹³.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<double> TanhDouble(Vector128<double> x)
    {
        Vector128<double> y = Vector128.MaxNative(Vector128.Create(-708.0), Vector128.Abs(x) * Vector128.Create(-2.0));
        Vector128<double> m = ExpMinusOne(y);
        return Vector128.CopySign(m / (Vector128.Create(-2.0) - m), x);
    }

    /// <summary>
    /// eʸ − 1 for y in [−708, 0]: y = n·ln2 + r with |r| ≤ ln2/2 (Cody–Waite, ln2 split in two so n·ln2 is exact),
    /// eʳ − 1 = q(r) by its Taylor polynomial to r¹³ (&lt; 1e-17 left), then eʸ − 1 = 2ⁿ q + (2ⁿ − 1) in one multiply-add.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<double> ExpMinusOne(Vector128<double> y)
    {
        Vector128<double> n = Vector128.Round(y * Vector128.Create(Log2E));
        Vector128<double> r = Vector128.MultiplyAddEstimate(n, Vector128.Create(-Ln2Low), Vector128.MultiplyAddEstimate(n, Vector128.Create(-Ln2High), y));
        Vector128<double> p = Vector128.Create(1.0 / 6227020800);
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(1.0 / 479001600));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(1.0 / 39916800));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(1.0 / 3628800));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(1.0 / 362880));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(1.0 / 40320));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(1.0 / 5040));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(1.0 / 720));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(1.0 / 120));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(1.0 / 24));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(1.0 / 6));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(0.5));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128<double>.One);
        Vector128<double> scale = Vector128.ShiftLeft(Vector128.ConvertToInt64Native(n) + Vector128.Create(1023L), 52).AsDouble();
        return Vector128.MultiplyAddEstimate(scale, p * r, scale - Vector128<double>.One); // scale = 2ⁿ: the product is exact either way
    }
    /// <summary>tanh of one value, by the same formula as the vector paths (for float, the same operations, so the same bits where the hardware has FMA).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Tanh<T>(T x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (T.IsNaN(x))
        {
            return x;
        }
        if (typeof(T) == typeof(float))
        {
            float xf = float.CreateTruncating(x);
            float y = MathF.Max(MathF.Abs(xf) * -2f, -87f);
            float shifted = float.MultiplyAddEstimate(y, Log2ESingle, RoundingShift);
            float n = shifted - RoundingShift;
            float r = Fma.IsSupported
                ? MathF.FusedMultiplyAdd(n, -Ln2Single, y)
                : float.MultiplyAddEstimate(n, -Ln2LowSingle, float.MultiplyAddEstimate(n, -Ln2HighSingle, y));
            float h = ExpM1C4;
            h = float.MultiplyAddEstimate(h, r, ExpM1C3);
            h = float.MultiplyAddEstimate(h, r, ExpM1C2);
            h = float.MultiplyAddEstimate(h, r, ExpM1C1);
            h = float.MultiplyAddEstimate(h, r, ExpM1C0);
            float q = float.MultiplyAddEstimate(h, r * r, r);
            float scale = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(shifted) << 23);
            float m = float.MultiplyAddEstimate(scale, q, scale - 1f);
            return T.CreateTruncating(MathF.CopySign(m / (-2f - m), xf));
        }
        else
        {
            double xd = double.CreateTruncating(x);
            double m = ExpMinusOne(Math.Max(Math.Abs(xd) * -2.0, -708.0));
            return T.CreateTruncating(Math.CopySign(m / (-2.0 - m), xd));
        }
    }

    /// <summary>eʸ − 1 for one double, as the vector <c>ExpMinusOne</c> computes it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double ExpMinusOne(double y)
    {
        double n = Math.Round(y * Log2E);
        double r = double.MultiplyAddEstimate(n, -Ln2Low, double.MultiplyAddEstimate(n, -Ln2High, y));
        double p = 1.0 / 6227020800;
        p = double.MultiplyAddEstimate(p, r, 1.0 / 479001600);
        p = double.MultiplyAddEstimate(p, r, 1.0 / 39916800);
        p = double.MultiplyAddEstimate(p, r, 1.0 / 3628800);
        p = double.MultiplyAddEstimate(p, r, 1.0 / 362880);
        p = double.MultiplyAddEstimate(p, r, 1.0 / 40320);
        p = double.MultiplyAddEstimate(p, r, 1.0 / 5040);
        p = double.MultiplyAddEstimate(p, r, 1.0 / 720);
        p = double.MultiplyAddEstimate(p, r, 1.0 / 120);
        p = double.MultiplyAddEstimate(p, r, 1.0 / 24);
        p = double.MultiplyAddEstimate(p, r, 1.0 / 6);
        p = double.MultiplyAddEstimate(p, r, 0.5);
        p = double.MultiplyAddEstimate(p, r, 1.0);
        double scale = Math.ScaleB(1.0, (int)n);
        return double.MultiplyAddEstimate(scale, p * r, scale - 1.0); // scale = 2ⁿ: the product is exact either way
    }

    /// <summary>σ(x) = 1 / (1 + e^{−x}) of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Sigmoid<T>(Vector512<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float) ? SigmoidSingle(x.AsSingle()).As<float, T>() : Vector512<T>.One / (Vector512<T>.One + Exp(-x));

    // float σ with e = e^{−|x|} ∈ [0, 1] by the softmax exponential: σ(x) = 1 / (1 + e) for x ≥ 0 and e / (1 + e) for x < 0,
    // so nothing overflows and below −87 (where e = 0) σ is exactly 0. NaN stays NaN (through e).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> SigmoidSingle(Vector512<float> x)
    {
        Vector512<float> e = FlashSoftmax.Exp(-Vector512.Abs(x));
        Vector512<float> numerator = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), e, Vector512<float>.One);
        return numerator / (Vector512<float>.One + e);
    }

    /// <summary>σ(x) = 1 / (1 + e^{−x}) of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Sigmoid<T>(Vector256<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float) ? SigmoidSingle(x.AsSingle()).As<float, T>() : Vector256<T>.One / (Vector256<T>.One + Exp(-x));

    // float σ with e = e^{−|x|} ∈ [0, 1] by the softmax exponential: σ(x) = 1 / (1 + e) for x ≥ 0 and e / (1 + e) for x < 0,
    // so nothing overflows and below −87 (where e = 0) σ is exactly 0. NaN stays NaN (through e).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> SigmoidSingle(Vector256<float> x)
    {
        Vector256<float> e = FlashSoftmax.Exp(-Vector256.Abs(x));
        Vector256<float> numerator = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), e, Vector256<float>.One);
        return numerator / (Vector256<float>.One + e);
    }

    /// <summary>σ(x) = 1 / (1 + e^{−x}) of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Sigmoid<T>(Vector128<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float) ? SigmoidSingle(x.AsSingle()).As<float, T>() : Vector128<T>.One / (Vector128<T>.One + Exp(-x));

    // float σ with e = e^{−|x|} ∈ [0, 1] by the softmax exponential: σ(x) = 1 / (1 + e) for x ≥ 0 and e / (1 + e) for x < 0,
    // so nothing overflows and below −87 (where e = 0) σ is exactly 0. NaN stays NaN (through e).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> SigmoidSingle(Vector128<float> x)
    {
        Vector128<float> e = FlashSoftmax.Exp(-Vector128.Abs(x));
        Vector128<float> numerator = Vector128.ConditionalSelect(Vector128.LessThan(x, Vector128<float>.Zero), e, Vector128<float>.One);
        return numerator / (Vector128<float>.One + e);
    }

    /// <summary>σ(x) = 1 / (1 + e^{−x}).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Sigmoid<T>(T x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float) && SimdPaths.Vector128
            ? T.CreateTruncating(SigmoidSingle(Vector128.CreateScalar(float.CreateTruncating(x))).ToScalar()) // a libm exp costs more than the vector evaluation
            : T.One / (T.One + T.Exp(-x));

    /// <summary>e^x of each lane (the runtime's vectorised exponential for the lane type).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Exp<T>(Vector512<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float) ? Vector512.Exp(x.AsSingle()).As<float, T>() : Vector512.Exp(x.AsDouble()).As<double, T>();

    /// <summary>e^x of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Exp<T>(Vector256<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float) ? Vector256.Exp(x.AsSingle()).As<float, T>() : Vector256.Exp(x.AsDouble()).As<double, T>();

    /// <summary>e^x of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Exp<T>(Vector128<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float) ? Vector128.Exp(x.AsSingle()).As<float, T>() : Vector128.Exp(x.AsDouble()).As<double, T>();

    /// <summary>a·b + c in each lane, rounded once (FMA), for float or double lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> FusedMultiplyAdd<T>(Vector512<T> a, Vector512<T> b, Vector512<T> c) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float)
            ? Vector512.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector512.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();

    /// <summary>a·b + c in each lane, rounded once (FMA), for float or double lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> FusedMultiplyAdd<T>(Vector256<T> a, Vector256<T> b, Vector256<T> c) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float)
            ? Vector256.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector256.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();

    /// <summary>a·b + c in each lane, rounded once (FMA), for float or double lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> FusedMultiplyAdd<T>(Vector128<T> a, Vector128<T> b, Vector128<T> c) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float)
            ? Vector128.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector128.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();

    /// <summary>
    /// a·b + c in each lane: one fused multiply-add where the hardware has FMA, a multiply then an add where it does not
    /// (a software-emulated fused operation is tens of times slower). The hot loops of the runtime and of generated layers
    /// use this; <see cref="FusedMultiplyAdd{T}(Vector512{T}, Vector512{T}, Vector512{T})"/> always rounds once.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> MultiplyAdd<T>(Vector512<T> a, Vector512<T> b, Vector512<T> c) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float)
            ? Vector512.MultiplyAddEstimate(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector512.MultiplyAddEstimate(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();

    /// <inheritdoc cref="MultiplyAdd{T}(Vector512{T}, Vector512{T}, Vector512{T})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> MultiplyAdd<T>(Vector256<T> a, Vector256<T> b, Vector256<T> c) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float)
            ? Vector256.MultiplyAddEstimate(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector256.MultiplyAddEstimate(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();

    /// <inheritdoc cref="MultiplyAdd{T}(Vector512{T}, Vector512{T}, Vector512{T})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> MultiplyAdd<T>(Vector128<T> a, Vector128<T> b, Vector128<T> c) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => typeof(T) == typeof(float)
            ? Vector128.MultiplyAddEstimate(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector128.MultiplyAddEstimate(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
}
