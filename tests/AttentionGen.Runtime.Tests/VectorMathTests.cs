using System;
using System.Collections.Generic;
using System.Runtime.Intrinsics;
using AttentionGen.Numerics;
using Xunit;
using Xunit.Abstractions;

namespace AttentionGen.Runtime.Tests;

/// <summary>
/// tanh, sigmoid and exp at every vector width and on the scalar path, against System.Math in double, over a dense
/// sweep plus the special values. The error bounds asserted here are the ones docs/numerics.md states.
/// </summary>
public sealed class VectorMathTests(ITestOutputHelper output)
{
    // Documented bounds (relative error): tanh float ≤ 4 ulp of float, double ≤ 4 ulp of double.
    private const double TanhFloatBound = 4 * 5.96e-8;
    private const double TanhDoubleBound = 4 * 1.11e-16;

    private static IEnumerable<double> Sweep()
    {
        var random = new Random(17);
        for (int i = -4000; i <= 4000; i++)
        {
            yield return i / 200.0; // −20 … 20 in steps of 0.005
        }
        for (int e = -40; e <= 2; e++)
        {
            for (int k = 1; k <= 9; k++)
            {
                yield return k * Math.Pow(10, e);
                yield return -k * Math.Pow(10, e);
            }
        }
        foreach (double special in new[] { 0.25, -0.25, 0.2499999, 0.2500001, 1e-300, 5e-324, 43.5, 44, 88, 700, 710, 1e30 })
        {
            yield return special;
            yield return -special;
        }
        for (int i = 0; i < 20000; i++)
        {
            yield return (random.NextDouble() * 2 - 1) * Math.Pow(10, random.Next(-10, 2));
        }
    }

    private static float TanhAt(int width, float x) => width switch
    {
        512 => VectorMath.Tanh(Vector512.Create(x)).GetElement(3),
        256 => VectorMath.Tanh(Vector256.Create(x)).GetElement(3),
        128 => VectorMath.Tanh(Vector128.Create(x)).GetElement(3),
        _ => VectorMath.Tanh(x),
    };

    private static double TanhAt(int width, double x) => width switch
    {
        512 => VectorMath.Tanh(Vector512.Create(x)).GetElement(1),
        256 => VectorMath.Tanh(Vector256.Create(x)).GetElement(1),
        128 => VectorMath.Tanh(Vector128.Create(x)).GetElement(1),
        _ => VectorMath.Tanh(x),
    };

    public static TheoryData<int> Widths => new() { 512, 256, 128, 0 };

    [Theory]
    [MemberData(nameof(Widths))]
    public void Tanh_float_is_within_its_documented_bound(int width)
    {
        double worst = 0, worstAt = 0;
        foreach (double value in Sweep())
        {
            float x = (float)value;
            double exact = Math.Tanh(x);
            float actual = TanhAt(width, x);
            double error = exact == 0 ? Math.Abs(actual) : Math.Abs(actual - exact) / Math.Abs(exact);
            // Below the smallest normal float the answer is x itself (tanh x = x to all digits), flushed or not.
            if (Math.Abs(x) < 1.2e-38) error = actual == x || actual == 0 ? 0 : 1;
            if (error > worst) (worst, worstAt) = (error, x);
        }
        output.WriteLine($"tanh float, width {width}: max relative error {worst:g3} ({worst / 5.96e-8:F2} ulp) at {worstAt:R}");
        Assert.True(worst <= TanhFloatBound, $"max relative error {worst:g3} at {worstAt:R}");
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Tanh_double_is_within_its_documented_bound(int width)
    {
        double worst = 0, worstAt = 0;
        foreach (double x in Sweep())
        {
            double exact = Math.Tanh(x);
            double actual = TanhAt(width, x);
            double error = exact == 0 ? Math.Abs(actual) : Math.Abs(actual - exact) / Math.Abs(exact);
            if (Math.Abs(x) < 2.3e-308) error = actual == x || actual == 0 ? 0 : 1;
            if (error > worst) (worst, worstAt) = (error, x);
        }
        output.WriteLine($"tanh double, width {width}: max relative error {worst:g3} ({worst / 1.11e-16:F2} ulp) at {worstAt:R}");
        Assert.True(worst <= TanhDoubleBound, $"max relative error {worst:g3} at {worstAt:R}");
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Tanh_special_values(int width)
    {
        Assert.True(float.IsNaN(TanhAt(width, float.NaN)));
        Assert.Equal(1f, TanhAt(width, float.PositiveInfinity));
        Assert.Equal(-1f, TanhAt(width, float.NegativeInfinity));
        Assert.Equal(0f, TanhAt(width, 0f));
        Assert.True(float.IsNegative(TanhAt(width, -0f)));
        Assert.Equal(1f, TanhAt(width, 50f));
        Assert.Equal(-1.0, TanhAt(width, -1e300));
        Assert.True(double.IsNaN(TanhAt(width, double.NaN)));
    }

    [Fact]
    public void Tanh_is_odd_and_monotonic_in_float()
    {
        float previous = -1;
        for (int i = -20000; i <= 20000; i++)
        {
            float x = i / 1000f;
            float y = VectorMath.Tanh(Vector256.Create(x)).GetElement(0);
            Assert.Equal(-y, VectorMath.Tanh(Vector256.Create(-x)).GetElement(0));
            Assert.True(y >= previous, $"tanh decreases at {x}");
            previous = y;
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Sigmoid_and_exp_match_math(int width)
    {
        foreach (double value in Sweep())
        {
            if (Math.Abs(value) > 80) continue;
            float x = (float)value;
            (float sigmoid, float exp) = width switch
            {
                512 => (VectorMath.Sigmoid(Vector512.Create(x)).GetElement(0), VectorMath.Exp(Vector512.Create(x)).GetElement(0)),
                256 => (VectorMath.Sigmoid(Vector256.Create(x)).GetElement(0), VectorMath.Exp(Vector256.Create(x)).GetElement(0)),
                128 => (VectorMath.Sigmoid(Vector128.Create(x)).GetElement(0), VectorMath.Exp(Vector128.Create(x)).GetElement(0)),
                _ => (VectorMath.Sigmoid(x), MathF.Exp(x)),
            };
            double exactSigmoid = 1 / (1 + Math.Exp(-(double)x));
            Assert.True(Math.Abs(sigmoid - exactSigmoid) <= 4e-7 * exactSigmoid, $"sigmoid({x}) = {sigmoid}, expected {exactSigmoid}");
            double exactExp = Math.Exp(x);
            Assert.True(Math.Abs(exp - exactExp) <= 4e-7 * exactExp, $"exp({x}) = {exp}, expected {exactExp}");
        }
        // Saturation is exact at every width and on the scalar path: 0 far below, 1 far above, ½ at ±0; NaN stays NaN.
        foreach (float x in new[] { -1e4f, -200f, -90f, float.NegativeInfinity })
        {
            Assert.Equal(0f, SigmoidAt(width, x));
        }
        foreach (float x in new[] { 1e4f, 200f, 90f, float.PositiveInfinity })
        {
            Assert.Equal(1f, SigmoidAt(width, x));
        }
        Assert.Equal(0.5f, SigmoidAt(width, -0f));
        Assert.True(float.IsNaN(SigmoidAt(width, float.NaN)));
    }

    private static float SigmoidAt(int width, float x) => width switch
    {
        512 => VectorMath.Sigmoid(Vector512.Create(x)).GetElement(2),
        256 => VectorMath.Sigmoid(Vector256.Create(x)).GetElement(2),
        128 => VectorMath.Sigmoid(Vector128.Create(x)).GetElement(2),
        _ => VectorMath.Sigmoid(x),
    };
}
