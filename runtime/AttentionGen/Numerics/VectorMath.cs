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
/// <para><b>tanh.</b> For |x| ≥ ¼: tanh|x| = 1 − 2 / (e^{2|x|} + 1), with the sign restored; this form has no
/// overflow (e^{2|x|} = +∞ gives exactly 1) and its absolute error is a few ulp of 1, so its relative error
/// is at most about 8 ulp just above ¼. For |x| &lt; ¼, where that subtraction would cancel, the odd Taylor
/// series x − x³/3 + 2x⁵/15 − … is used, truncated where the next term is below half an ulp
/// (6 terms for float, 11 for double). Measured maximum relative error against <see cref="System.Math.Tanh(double)"/>:
/// see docs/numerics.md.</para>
/// <para><b>sigmoid.</b> σ(x) = 1 / (1 + e^{−x}); e^{−x} = +∞ for very negative x gives exactly 0.</para>
/// <para>NaN in, NaN out, in every function.</para>
/// </remarks>
public static class VectorMath
{
    // Where the tanh series hands over to the exponential form.
    private const double TanhSeriesLimit = 0.25;

    // Taylor coefficients of tanh(x) = Σ cₙ x^{2n+1}: 2^{2n+2}(2^{2n+2} − 1) B_{2n+2} / (2n+2)!.
    private const double C1 = -1.0 / 3.0;
    private const double C2 = 2.0 / 15.0;
    private const double C3 = -17.0 / 315.0;
    private const double C4 = 62.0 / 2835.0;
    private const double C5 = -1382.0 / 155925.0;
    private const double C6 = 21844.0 / 6081075.0;
    private const double C7 = -929569.0 / 638512875.0;
    private const double C8 = 6404582.0 / 10854718875.0;
    private const double C9 = -443861162.0 / 1856156927625.0;
    private const double C10 = 18888466084.0 / 194896477400625.0;

    /// <summary>tanh of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Tanh<T>(Vector512<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Vector512<T> magnitude = Vector512.Abs(x);
        Vector512<T> one = Vector512<T>.One;
        Vector512<T> large = one - Vector512.Create(T.CreateTruncating(2.0)) / (Exp(magnitude + magnitude) + one);
        Vector512<T> square = x * x;
        Vector512<T> series = x + x * square * TanhSeriesTail(square);
        Vector512<T> small = Vector512.LessThan(magnitude, Vector512.Create(T.CreateTruncating(TanhSeriesLimit)));
        Vector512<T> signedLarge = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<T>.Zero), -large, large);
        return Vector512.ConditionalSelect(small, series, signedLarge);
    }

    /// <summary>tanh of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Tanh<T>(Vector256<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Vector256<T> magnitude = Vector256.Abs(x);
        Vector256<T> one = Vector256<T>.One;
        Vector256<T> large = one - Vector256.Create(T.CreateTruncating(2.0)) / (Exp(magnitude + magnitude) + one);
        Vector256<T> square = x * x;
        Vector256<T> series = x + x * square * TanhSeriesTail(square);
        Vector256<T> small = Vector256.LessThan(magnitude, Vector256.Create(T.CreateTruncating(TanhSeriesLimit)));
        Vector256<T> signedLarge = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<T>.Zero), -large, large);
        return Vector256.ConditionalSelect(small, series, signedLarge);
    }

    /// <summary>tanh of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Tanh<T>(Vector128<T> x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Vector128<T> magnitude = Vector128.Abs(x);
        Vector128<T> one = Vector128<T>.One;
        Vector128<T> large = one - Vector128.Create(T.CreateTruncating(2.0)) / (Exp(magnitude + magnitude) + one);
        Vector128<T> square = x * x;
        Vector128<T> series = x + x * square * TanhSeriesTail(square);
        Vector128<T> small = Vector128.LessThan(magnitude, Vector128.Create(T.CreateTruncating(TanhSeriesLimit)));
        Vector128<T> signedLarge = Vector128.ConditionalSelect(Vector128.LessThan(x, Vector128<T>.Zero), -large, large);
        return Vector128.ConditionalSelect(small, series, signedLarge);
    }

    /// <summary>tanh of one value, by the same method as the vector paths (so every path agrees closely).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Tanh<T>(T x) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        T magnitude = T.Abs(x);
        if (magnitude < T.CreateTruncating(TanhSeriesLimit))
        {
            T square = x * x;
            return x + x * square * TanhSeriesTail(square);
        }
        if (T.IsNaN(x))
        {
            return x;
        }
        T large = T.One - T.CreateTruncating(2.0) / (T.Exp(magnitude + magnitude) + T.One);
        return T.IsNegative(x) ? -large : large;
    }

    /// <summary>(tanh(x) − x) / x³ as a polynomial in x², by Horner's rule; double keeps more terms.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> TanhSeriesTail<T>(Vector512<T> s) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Vector512<T> p = typeof(T) == typeof(double)
            ? Horner(Horner(Horner(Horner(Horner(Vector512.Create(T.CreateTruncating(C10)), s, C9), s, C8), s, C7), s, C6), s, C5)
            : Vector512.Create(T.CreateTruncating(C5));
        return Horner(Horner(Horner(Horner(p, s, C4), s, C3), s, C2), s, C1);

        static Vector512<T> Horner(Vector512<T> p, Vector512<T> s, double c) => FusedMultiplyAdd(p, s, Vector512.Create(T.CreateTruncating(c)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> TanhSeriesTail<T>(Vector256<T> s) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Vector256<T> p = typeof(T) == typeof(double)
            ? Horner(Horner(Horner(Horner(Horner(Vector256.Create(T.CreateTruncating(C10)), s, C9), s, C8), s, C7), s, C6), s, C5)
            : Vector256.Create(T.CreateTruncating(C5));
        return Horner(Horner(Horner(Horner(p, s, C4), s, C3), s, C2), s, C1);

        static Vector256<T> Horner(Vector256<T> p, Vector256<T> s, double c) => FusedMultiplyAdd(p, s, Vector256.Create(T.CreateTruncating(c)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<T> TanhSeriesTail<T>(Vector128<T> s) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Vector128<T> p = typeof(T) == typeof(double)
            ? Horner(Horner(Horner(Horner(Horner(Vector128.Create(T.CreateTruncating(C10)), s, C9), s, C8), s, C7), s, C6), s, C5)
            : Vector128.Create(T.CreateTruncating(C5));
        return Horner(Horner(Horner(Horner(p, s, C4), s, C3), s, C2), s, C1);

        static Vector128<T> Horner(Vector128<T> p, Vector128<T> s, double c) => FusedMultiplyAdd(p, s, Vector128.Create(T.CreateTruncating(c)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T TanhSeriesTail<T>(T s) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        T p = typeof(T) == typeof(double)
            ? Horner(Horner(Horner(Horner(Horner(T.CreateTruncating(C10), s, C9), s, C8), s, C7), s, C6), s, C5)
            : T.CreateTruncating(C5);
        return Horner(Horner(Horner(Horner(p, s, C4), s, C3), s, C2), s, C1);

        static T Horner(T p, T s, double c) => T.FusedMultiplyAdd(p, s, T.CreateTruncating(c));
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
}
