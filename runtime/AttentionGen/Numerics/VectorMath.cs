using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AttentionGen.Numerics;

/// <summary>
/// Element-wise transcendental functions on SIMD vectors, for <see cref="float"/> and <see cref="double"/>,
/// at each width side by side (as <c>TensorPrimitives</c>' operators are written). Generated layers call
/// these inside their fused loops; <see cref="AttentionMath"/> applies them over spans.
/// </summary>
/// <remarks>
/// <para><b>tanh.</b> Vector paths: with y = −2|x| (clamped at −87 for float, −708 for double, where tanh is ±1 to
/// the last bit), m = eʸ − 1 is computed without cancellation (Cody–Waite reduction y = n·ln2 + r, the Taylor
/// polynomial of eʳ − 1, then 2ⁿq + (2ⁿ − 1) in one FMA) and tanh|x| = −m / (2 + m), sign restored: about 23
/// vector operations and one division, no branch. The scalar path computes the same formula. Measured maximum relative errors against <see cref="System.Math.Tanh(double)"/>: see docs/numerics.md.</para>
/// <para><b>sigmoid.</b> σ(x) = 1 / (1 + e^{−x}); e^{−x} = +∞ for very negative x gives exactly 0.</para>
/// <para>NaN in, NaN out, in every function.</para>
/// </remarks>
public static class VectorMath
{
    // Cody–Waite split of ln 2: Ln2High has few enough bits that n·Ln2High is exact for the n that occur.
    private const double Log2E = 1.4426950408889634;
    private const double Ln2High = 0.693145751953125;
    private const double Ln2Low = 1.42860682030941723212e-6;

    /// <summary>tanh of each lane (method and error bound: see the class remarks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Tanh<T>(Vector512<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // With y = −2|x| ≤ 0 and m = eʸ − 1 computed without cancellation: tanh|x| = −m / (2 + m). The clamp's constant is
        // MaxNative's first operand: where either is NaN the instruction returns the second, so a NaN x stays NaN through
        // every step (no compare and select at the end).
        Vector512<T> y = Vector512.MaxNative(Vector512.Create(typeof(T) == typeof(float) ? T.CreateTruncating(-87.0) : T.CreateTruncating(-708.0)), Vector512.Abs(x) * Vector512.Create(T.CreateTruncating(-2.0)));
        Vector512<T> m = ExpMinusOne(y);
        Vector512<T> magnitude = -m / (Vector512.Create(T.CreateTruncating(2.0)) + m);
        return Vector512.CopySign(magnitude, x);
    }

    /// <summary>
    /// eʸ − 1 for y in [−708, 0] (float: [−87, 0]): y = n·ln2 + r with |r| ≤ ln2/2 (Cody–Waite, ln2 split in two so
    /// n·ln2 is exact), eʳ − 1 = q(r) by its Taylor polynomial, then eʸ − 1 = 2ⁿ q + (2ⁿ − 1) in one FMA: no
    /// cancellation near 0, where q(r) = r + r²/2 + ….
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> ExpMinusOne<T>(Vector512<T> y) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Vector512<T> scaled = y * Vector512.Create(T.CreateTruncating(Log2E));
        Vector512<T> n = typeof(T) == typeof(float) ? Vector512.Round(scaled.AsSingle()).As<float, T>() : Vector512.Round(scaled.AsDouble()).As<double, T>();
        Vector512<T> r = MultiplyAdd(n, Vector512.Create(T.CreateTruncating(-Ln2Low)), MultiplyAdd(n, Vector512.Create(T.CreateTruncating(-Ln2High)), y));
        // q = r + r²/2! + … : 7 terms for float (|r| ≤ 0.35 leaves < 2e-8), 13 for double (< 1e-17).
        Vector512<T> q;
        if (typeof(T) == typeof(float))
        {
            Vector512<float> rf = r.AsSingle();
            Vector512<float> p = Vector512.Create(1f / 5040);
            p = Vector512.MultiplyAddEstimate(p, rf, Vector512.Create(1f / 720));
            p = Vector512.MultiplyAddEstimate(p, rf, Vector512.Create(1f / 120));
            p = Vector512.MultiplyAddEstimate(p, rf, Vector512.Create(1f / 24));
            p = Vector512.MultiplyAddEstimate(p, rf, Vector512.Create(1f / 6));
            p = Vector512.MultiplyAddEstimate(p, rf, Vector512.Create(0.5f));
            p = Vector512.MultiplyAddEstimate(p, rf, Vector512<float>.One);
            q = (p * rf).As<float, T>();
        }
        else
        {
            Vector512<double> rd = r.AsDouble();
            Vector512<double> p = Vector512.Create(1.0 / 6227020800);
            p = Vector512.MultiplyAddEstimate(p, rd, Vector512.Create(1.0 / 479001600));
            p = Vector512.MultiplyAddEstimate(p, rd, Vector512.Create(1.0 / 39916800));
            p = Vector512.MultiplyAddEstimate(p, rd, Vector512.Create(1.0 / 3628800));
            p = Vector512.MultiplyAddEstimate(p, rd, Vector512.Create(1.0 / 362880));
            p = Vector512.MultiplyAddEstimate(p, rd, Vector512.Create(1.0 / 40320));
            p = Vector512.MultiplyAddEstimate(p, rd, Vector512.Create(1.0 / 5040));
            p = Vector512.MultiplyAddEstimate(p, rd, Vector512.Create(1.0 / 720));
            p = Vector512.MultiplyAddEstimate(p, rd, Vector512.Create(1.0 / 120));
            p = Vector512.MultiplyAddEstimate(p, rd, Vector512.Create(1.0 / 24));
            p = Vector512.MultiplyAddEstimate(p, rd, Vector512.Create(1.0 / 6));
            p = Vector512.MultiplyAddEstimate(p, rd, Vector512.Create(0.5));
            p = Vector512.MultiplyAddEstimate(p, rd, Vector512<double>.One);
            q = (p * rd).As<double, T>();
        }
        Vector512<T> scale = typeof(T) == typeof(float)
            ? Vector512.ShiftLeft(Vector512.ConvertToInt32Native(n.AsSingle()) + Vector512.Create(127), 23).As<int, T>()
            : Vector512.ShiftLeft(Vector512.ConvertToInt64Native(n.AsDouble()) + Vector512.Create(1023L), 52).As<long, T>();
        return MultiplyAdd(scale, q, scale - Vector512<T>.One); // scale = 2ⁿ: the product is exact either way
    }

    /// <summary>tanh of each lane (method and error bound: see the class remarks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Tanh<T>(Vector256<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // With y = −2|x| ≤ 0 and m = eʸ − 1 computed without cancellation: tanh|x| = −m / (2 + m).
        Vector256<T> y = Vector256.MaxNative(Vector256.Create(typeof(T) == typeof(float) ? T.CreateTruncating(-87.0) : T.CreateTruncating(-708.0)), Vector256.Abs(x) * Vector256.Create(T.CreateTruncating(-2.0)));
        Vector256<T> m = ExpMinusOne(y);
        Vector256<T> magnitude = -m / (Vector256.Create(T.CreateTruncating(2.0)) + m);
        return Vector256.CopySign(magnitude, x);
    }

    /// <summary>
    /// eʸ − 1 for y in [−708, 0] (float: [−87, 0]): y = n·ln2 + r with |r| ≤ ln2/2 (Cody–Waite, ln2 split in two so
    /// n·ln2 is exact), eʳ − 1 = q(r) by its Taylor polynomial, then eʸ − 1 = 2ⁿ q + (2ⁿ − 1) in one FMA: no
    /// cancellation near 0, where q(r) = r + r²/2 + ….
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> ExpMinusOne<T>(Vector256<T> y) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Vector256<T> scaled = y * Vector256.Create(T.CreateTruncating(Log2E));
        Vector256<T> n = typeof(T) == typeof(float) ? Vector256.Round(scaled.AsSingle()).As<float, T>() : Vector256.Round(scaled.AsDouble()).As<double, T>();
        Vector256<T> r = MultiplyAdd(n, Vector256.Create(T.CreateTruncating(-Ln2Low)), MultiplyAdd(n, Vector256.Create(T.CreateTruncating(-Ln2High)), y));
        // q = r + r²/2! + … : 7 terms for float (|r| ≤ 0.35 leaves < 2e-8), 13 for double (< 1e-17).
        Vector256<T> q;
        if (typeof(T) == typeof(float))
        {
            Vector256<float> rf = r.AsSingle();
            Vector256<float> p = Vector256.Create(1f / 5040);
            p = Vector256.MultiplyAddEstimate(p, rf, Vector256.Create(1f / 720));
            p = Vector256.MultiplyAddEstimate(p, rf, Vector256.Create(1f / 120));
            p = Vector256.MultiplyAddEstimate(p, rf, Vector256.Create(1f / 24));
            p = Vector256.MultiplyAddEstimate(p, rf, Vector256.Create(1f / 6));
            p = Vector256.MultiplyAddEstimate(p, rf, Vector256.Create(0.5f));
            p = Vector256.MultiplyAddEstimate(p, rf, Vector256<float>.One);
            q = (p * rf).As<float, T>();
        }
        else
        {
            Vector256<double> rd = r.AsDouble();
            Vector256<double> p = Vector256.Create(1.0 / 6227020800);
            p = Vector256.MultiplyAddEstimate(p, rd, Vector256.Create(1.0 / 479001600));
            p = Vector256.MultiplyAddEstimate(p, rd, Vector256.Create(1.0 / 39916800));
            p = Vector256.MultiplyAddEstimate(p, rd, Vector256.Create(1.0 / 3628800));
            p = Vector256.MultiplyAddEstimate(p, rd, Vector256.Create(1.0 / 362880));
            p = Vector256.MultiplyAddEstimate(p, rd, Vector256.Create(1.0 / 40320));
            p = Vector256.MultiplyAddEstimate(p, rd, Vector256.Create(1.0 / 5040));
            p = Vector256.MultiplyAddEstimate(p, rd, Vector256.Create(1.0 / 720));
            p = Vector256.MultiplyAddEstimate(p, rd, Vector256.Create(1.0 / 120));
            p = Vector256.MultiplyAddEstimate(p, rd, Vector256.Create(1.0 / 24));
            p = Vector256.MultiplyAddEstimate(p, rd, Vector256.Create(1.0 / 6));
            p = Vector256.MultiplyAddEstimate(p, rd, Vector256.Create(0.5));
            p = Vector256.MultiplyAddEstimate(p, rd, Vector256<double>.One);
            q = (p * rd).As<double, T>();
        }
        Vector256<T> scale = typeof(T) == typeof(float)
            ? Vector256.ShiftLeft(Vector256.ConvertToInt32Native(n.AsSingle()) + Vector256.Create(127), 23).As<int, T>()
            : Vector256.ShiftLeft(Vector256.ConvertToInt64Native(n.AsDouble()) + Vector256.Create(1023L), 52).As<long, T>();
        return MultiplyAdd(scale, q, scale - Vector256<T>.One); // scale = 2ⁿ: the product is exact either way
    }

    /// <summary>tanh of each lane (method and error bound: see the class remarks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Tanh<T>(Vector128<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // With y = −2|x| ≤ 0 and m = eʸ − 1 computed without cancellation: tanh|x| = −m / (2 + m).
        Vector128<T> y = Vector128.MaxNative(Vector128.Create(typeof(T) == typeof(float) ? T.CreateTruncating(-87.0) : T.CreateTruncating(-708.0)), Vector128.Abs(x) * Vector128.Create(T.CreateTruncating(-2.0)));
        Vector128<T> m = ExpMinusOne(y);
        Vector128<T> magnitude = -m / (Vector128.Create(T.CreateTruncating(2.0)) + m);
        return Vector128.CopySign(magnitude, x);
    }

    /// <summary>
    /// eʸ − 1 for y in [−708, 0] (float: [−87, 0]): y = n·ln2 + r with |r| ≤ ln2/2 (Cody–Waite, ln2 split in two so
    /// n·ln2 is exact), eʳ − 1 = q(r) by its Taylor polynomial, then eʸ − 1 = 2ⁿ q + (2ⁿ − 1) in one FMA: no
    /// cancellation near 0, where q(r) = r + r²/2 + ….
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<T> ExpMinusOne<T>(Vector128<T> y) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Vector128<T> scaled = y * Vector128.Create(T.CreateTruncating(Log2E));
        Vector128<T> n = typeof(T) == typeof(float) ? Vector128.Round(scaled.AsSingle()).As<float, T>() : Vector128.Round(scaled.AsDouble()).As<double, T>();
        Vector128<T> r = MultiplyAdd(n, Vector128.Create(T.CreateTruncating(-Ln2Low)), MultiplyAdd(n, Vector128.Create(T.CreateTruncating(-Ln2High)), y));
        // q = r + r²/2! + … : 7 terms for float (|r| ≤ 0.35 leaves < 2e-8), 13 for double (< 1e-17).
        Vector128<T> q;
        if (typeof(T) == typeof(float))
        {
            Vector128<float> rf = r.AsSingle();
            Vector128<float> p = Vector128.Create(1f / 5040);
            p = Vector128.MultiplyAddEstimate(p, rf, Vector128.Create(1f / 720));
            p = Vector128.MultiplyAddEstimate(p, rf, Vector128.Create(1f / 120));
            p = Vector128.MultiplyAddEstimate(p, rf, Vector128.Create(1f / 24));
            p = Vector128.MultiplyAddEstimate(p, rf, Vector128.Create(1f / 6));
            p = Vector128.MultiplyAddEstimate(p, rf, Vector128.Create(0.5f));
            p = Vector128.MultiplyAddEstimate(p, rf, Vector128<float>.One);
            q = (p * rf).As<float, T>();
        }
        else
        {
            Vector128<double> rd = r.AsDouble();
            Vector128<double> p = Vector128.Create(1.0 / 6227020800);
            p = Vector128.MultiplyAddEstimate(p, rd, Vector128.Create(1.0 / 479001600));
            p = Vector128.MultiplyAddEstimate(p, rd, Vector128.Create(1.0 / 39916800));
            p = Vector128.MultiplyAddEstimate(p, rd, Vector128.Create(1.0 / 3628800));
            p = Vector128.MultiplyAddEstimate(p, rd, Vector128.Create(1.0 / 362880));
            p = Vector128.MultiplyAddEstimate(p, rd, Vector128.Create(1.0 / 40320));
            p = Vector128.MultiplyAddEstimate(p, rd, Vector128.Create(1.0 / 5040));
            p = Vector128.MultiplyAddEstimate(p, rd, Vector128.Create(1.0 / 720));
            p = Vector128.MultiplyAddEstimate(p, rd, Vector128.Create(1.0 / 120));
            p = Vector128.MultiplyAddEstimate(p, rd, Vector128.Create(1.0 / 24));
            p = Vector128.MultiplyAddEstimate(p, rd, Vector128.Create(1.0 / 6));
            p = Vector128.MultiplyAddEstimate(p, rd, Vector128.Create(0.5));
            p = Vector128.MultiplyAddEstimate(p, rd, Vector128<double>.One);
            q = (p * rd).As<double, T>();
        }
        Vector128<T> scale = typeof(T) == typeof(float)
            ? Vector128.ShiftLeft(Vector128.ConvertToInt32Native(n.AsSingle()) + Vector128.Create(127), 23).As<int, T>()
            : Vector128.ShiftLeft(Vector128.ConvertToInt64Native(n.AsDouble()) + Vector128.Create(1023L), 52).As<long, T>();
        return MultiplyAdd(scale, q, scale - Vector128<T>.One); // scale = 2ⁿ: the product is exact either way
    }

    /// <summary>tanh of one value, by the same formula as the vector paths.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Tanh<T>(T x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (T.IsNaN(x))
        {
            return x;
        }
        T y = T.Max(T.Abs(x) * T.CreateTruncating(-2.0), typeof(T) == typeof(float) ? T.CreateTruncating(-87.0) : T.CreateTruncating(-708.0));
        T m = ExpMinusOne(y);
        return T.CopySign(-m / (T.CreateTruncating(2.0) + m), x);
    }

    /// <summary>eʸ − 1 for one value, as the vector <c>ExpMinusOne</c> computes it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T ExpMinusOne<T>(T y) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        T n = T.Round(y * T.CreateTruncating(Log2E));
        T r = T.MultiplyAddEstimate(n, T.CreateTruncating(-Ln2Low), T.MultiplyAddEstimate(n, T.CreateTruncating(-Ln2High), y));
        T q;
        if (typeof(T) == typeof(float))
        {
            float rf = float.CreateTruncating(r);
            float p = 1f / 5040;
            p = float.MultiplyAddEstimate(p, rf, 1f / 720);
            p = float.MultiplyAddEstimate(p, rf, 1f / 120);
            p = float.MultiplyAddEstimate(p, rf, 1f / 24);
            p = float.MultiplyAddEstimate(p, rf, 1f / 6);
            p = float.MultiplyAddEstimate(p, rf, 0.5f);
            p = float.MultiplyAddEstimate(p, rf, 1f);
            q = T.CreateTruncating(p * rf);
        }
        else
        {
            double rd = double.CreateTruncating(r);
            double p = 1.0 / 6227020800;
            p = double.MultiplyAddEstimate(p, rd, 1.0 / 479001600);
            p = double.MultiplyAddEstimate(p, rd, 1.0 / 39916800);
            p = double.MultiplyAddEstimate(p, rd, 1.0 / 3628800);
            p = double.MultiplyAddEstimate(p, rd, 1.0 / 362880);
            p = double.MultiplyAddEstimate(p, rd, 1.0 / 40320);
            p = double.MultiplyAddEstimate(p, rd, 1.0 / 5040);
            p = double.MultiplyAddEstimate(p, rd, 1.0 / 720);
            p = double.MultiplyAddEstimate(p, rd, 1.0 / 120);
            p = double.MultiplyAddEstimate(p, rd, 1.0 / 24);
            p = double.MultiplyAddEstimate(p, rd, 1.0 / 6);
            p = double.MultiplyAddEstimate(p, rd, 0.5);
            p = double.MultiplyAddEstimate(p, rd, 1.0);
            q = T.CreateTruncating(p * rd);
        }
        T scale = T.ScaleB(T.One, int.CreateTruncating(n));
        return T.MultiplyAddEstimate(scale, q, scale - T.One); // scale = 2ⁿ: the product is exact either way
    }

    /// <summary>σ(x) = 1 / (1 + e^{−x}) of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Sigmoid<T>(Vector512<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => Vector512<T>.One / (Vector512<T>.One + Exp(-x));

    /// <summary>σ(x) = 1 / (1 + e^{−x}) of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Sigmoid<T>(Vector256<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => Vector256<T>.One / (Vector256<T>.One + Exp(-x));

    /// <summary>σ(x) = 1 / (1 + e^{−x}) of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Sigmoid<T>(Vector128<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => Vector128<T>.One / (Vector128<T>.One + Exp(-x));

    /// <summary>σ(x) = 1 / (1 + e^{−x}).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Sigmoid<T>(T x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => T.One / (T.One + T.Exp(-x));

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
