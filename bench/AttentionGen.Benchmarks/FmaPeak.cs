using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Threading.Tasks;

namespace AttentionGen.Benchmarks;

/// <summary>The machine's FP32 FMA peak, measured: 12 independent chains of 256-bit FMAs (enough to cover the latency).</summary>
public static class FmaPeak
{
    public static (double OneThread, double TwoThreads) Measure()
    {
        Chains(1000);
        const int iterations = 20_000_000;
        var watch = Stopwatch.StartNew();
        Chains(iterations);
        double one = Flops(iterations) / watch.Elapsed.TotalSeconds / 1e9;
        watch.Restart();
        Parallel.For(0, 2, _ => Chains(iterations));
        double two = 2 * Flops(iterations) / watch.Elapsed.TotalSeconds / 1e9;
        return (one, two);
    }

    private static double Flops(int iterations) => iterations * 12.0 * Vector256<float>.Count * 2;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Chains(int iterations)
    {
        Vector256<float> a = Vector256.Create(0.999f), b = Vector256.Create(1e-6f);
        Vector256<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a;
        for (int i = 0; i < iterations; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, a, b); c1 = Vector256.FusedMultiplyAdd(c1, a, b); c2 = Vector256.FusedMultiplyAdd(c2, a, b);
            c3 = Vector256.FusedMultiplyAdd(c3, a, b); c4 = Vector256.FusedMultiplyAdd(c4, a, b); c5 = Vector256.FusedMultiplyAdd(c5, a, b);
            c6 = Vector256.FusedMultiplyAdd(c6, a, b); c7 = Vector256.FusedMultiplyAdd(c7, a, b); c8 = Vector256.FusedMultiplyAdd(c8, a, b);
            c9 = Vector256.FusedMultiplyAdd(c9, a, b); c10 = Vector256.FusedMultiplyAdd(c10, a, b); c11 = Vector256.FusedMultiplyAdd(c11, a, b);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }
}
