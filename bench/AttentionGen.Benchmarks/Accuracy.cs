using System;
using System.Runtime.Intrinsics;
using System.Threading.Tasks;
using AttentionGen.Numerics;

namespace AttentionGen.Benchmarks;

/// <summary>
/// <c>--accuracy</c>: the exhaustive error figures docs/numerics.md states for the float tanh (<see cref="VectorMath"/>) and
/// the softmax exponential (<see cref="FlashSoftmax.Exp(Vector512{float})"/>): every float of the range goes through each
/// vector width and the scalar path and is compared with <see cref="Math.Tanh"/> / <see cref="Math.Exp"/> in double.
/// The tests assert the bounds on a sweep; this measures the maximum, about 25 s per function on two cores. Run it with
/// <c>DOTNET_EnableAVX2=0</c> too for the paths without FMA (the wider widths then run in software and take long).
/// </summary>
public static class Accuracy
{
    // Relative error in units of 2⁻²⁴, the unit docs/numerics.md quotes.
    private const double Ulp = 5.96e-8;

    public static int Run(string? only)
    {
        uint smallestNormal = BitConverter.SingleToUInt32Bits(1.2e-38f);
        var tanhPaths = new (string Name, Func<Vector512<float>, Vector512<float>> Apply)[]
        {
            ("tanh Vector512", x => VectorMath.Tanh(x)),
            ("tanh Vector256", x => Vector512.Create(VectorMath.Tanh(x.GetLower()), VectorMath.Tanh(x.GetUpper()))),
            ("tanh Vector128", x => ByQuarters(x, v => VectorMath.Tanh(v))),
            ("tanh scalar", x => { Span<float> y = stackalloc float[16]; for (int k = 0; k < 16; k++) y[k] = VectorMath.Tanh(x[k]); return Vector512.Create((ReadOnlySpan<float>)y); }),
        };
        foreach (var (name, apply) in tanhPaths)
        {
            if (only is not null && !name.Contains(only, StringComparison.OrdinalIgnoreCase)) continue;
            // Below the smallest normal float tanh x is x itself; above 44 the clamp holds every path at ±1.
            var (worst, at) = MaxRelativeError(apply, Math.Tanh, smallestNormal, BitConverter.SingleToUInt32Bits(44f));
            Console.WriteLine($"{name}: max {worst / Ulp:F3} ulp over every float in [1.2e-38, 44], at {at:R}");
        }
        var expPaths = new (string Name, Func<Vector512<float>, Vector512<float>> Apply)[]
        {
            ("exp Vector512", x => FlashSoftmax.Exp(x)),
            ("exp Vector256", x => Vector512.Create(FlashSoftmax.Exp(x.GetLower()), FlashSoftmax.Exp(x.GetUpper()))),
            ("exp Vector128", x => ByQuarters(x, v => FlashSoftmax.Exp(v))),
        };
        foreach (var (name, apply) in expPaths)
        {
            if (only is not null && !name.Contains(only, StringComparison.OrdinalIgnoreCase)) continue;
            // Negative floats are the bit patterns from −0 up; results below the smallest normal float are left out.
            var (negative, negativeAt) = MaxRelativeError(apply, Math.Exp, 0x8000_0000u, BitConverter.SingleToUInt32Bits(-87f));
            var (positive, positiveAt) = MaxRelativeError(apply, Math.Exp, 0u, BitConverter.SingleToUInt32Bits(88f));
            Console.WriteLine($"{name}: max {negative / Ulp:F3} ulp on [−87, 0] at {negativeAt:R}, {positive / Ulp:F3} ulp on [0, 88] at {positiveAt:R}");
        }
        return 0;
    }

    private static Vector256<float> ByQuarters(Vector256<float> x, Func<Vector128<float>, Vector128<float>> f)
        => Vector256.Create(f(x.GetLower()), f(x.GetUpper()));

    private static Vector512<float> ByQuarters(Vector512<float> x, Func<Vector128<float>, Vector128<float>> f)
        => Vector512.Create(ByQuarters(x.GetLower(), f), ByQuarters(x.GetUpper(), f));

    // Every float whose bits lie in [fromBits, toBits), 16 at a time, spread over the cores.
    private static (double Worst, float At) MaxRelativeError(Func<Vector512<float>, Vector512<float>> apply, Func<double, double> exact, uint fromBits, uint toBits)
    {
        const int Parts = 64;
        var worst = new (double Error, float At)[Parts];
        ulong partLength = ((ulong)toBits - fromBits + Parts - 1) / Parts;
        Parallel.For(0, Parts, part =>
        {
            ulong first = fromBits + (ulong)part * partLength, end = Math.Min(toBits, first + partLength);
            Span<float> x = stackalloc float[16];
            for (ulong bits = first; bits < end; bits += 16)
            {
                for (int k = 0; k < 16; k++) x[k] = BitConverter.UInt32BitsToSingle((uint)Math.Min(bits + (ulong)k, end - 1));
                Vector512<float> y = apply(Vector512.Create((ReadOnlySpan<float>)x));
                for (int k = 0; k < 16; k++)
                {
                    double expected = exact(x[k]);
                    if (Math.Abs(expected) < 1.2e-38) continue;
                    double error = Math.Abs(y[k] - expected) / Math.Abs(expected);
                    if (error > worst[part].Error) worst[part] = (error, x[k]);
                }
            }
        });
        (double Error, float At) max = (0, 0);
        foreach (var w in worst) if (w.Error > max.Error) max = w;
        return max;
    }
}
