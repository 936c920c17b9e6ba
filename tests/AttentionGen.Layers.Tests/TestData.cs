using System;
using System.Collections.Generic;
using System.Linq;
using System.Numerics;

namespace AttentionGen.Layers.Tests;

/// <summary>Seeded random inputs and masks, and comparison helpers, shared by the layer tests.</summary>
internal static class TestData
{
    public static T[] Random<T>(Random random, int length, double scale = 1.0) where T : IFloatingPoint<T>
    {
        var values = new T[length];
        for (int i = 0; i < length; i++)
        {
            values[i] = T.CreateTruncating((random.NextDouble() * 2 - 1) * scale);
        }
        return values;
    }

    public static bool[] Mask(Random random, int length, double keepProbability)
    {
        var mask = new bool[length];
        for (int i = 0; i < length; i++)
        {
            mask[i] = random.NextDouble() < keepProbability;
        }
        return mask;
    }

    public static double[] ToDouble<T>(T[] values) where T : INumberBase<T>
        => Array.ConvertAll(values, v => double.CreateTruncating(v));

    /// <summary>Asserts |actual − expected| ≤ tolerance · max(1, |expected|) element-wise, naming the first offender.</summary>
    public static void AssertClose<T>(ReadOnlySpan<double> expected, ReadOnlySpan<T> actual, double tolerance, string what) where T : INumberBase<T>
    {
        if (expected.Length != actual.Length)
        {
            throw new Xunit.Sdk.XunitException($"{what}: expected {expected.Length} elements, got {actual.Length}");
        }
        for (int i = 0; i < expected.Length; i++)
        {
            double a = double.CreateTruncating(actual[i]);
            double e = expected[i];
            if (!(Math.Abs(a - e) <= tolerance * Math.Max(1.0, Math.Abs(e))))
            {
                throw new Xunit.Sdk.XunitException($"{what}[{i}]: expected {e:R}, got {a:R} (tolerance {tolerance:g3})");
            }
        }
    }

    /// <summary>‖g − f‖ / max(‖g‖, ‖f‖, floor): the norm-wise relative error used for gradient checks.</summary>
    public static double RelativeError(ReadOnlySpan<double> analytic, ReadOnlySpan<double> numeric, double floor = 1e-8)
    {
        double diff = 0, a = 0, n = 0;
        for (int i = 0; i < analytic.Length; i++)
        {
            diff += (analytic[i] - numeric[i]) * (analytic[i] - numeric[i]);
            a += analytic[i] * analytic[i];
            n += numeric[i] * numeric[i];
        }
        return Math.Sqrt(diff) / Math.Max(Math.Max(Math.Sqrt(a), Math.Sqrt(n)), floor);
    }

    /// <summary>
    /// Central finite differences in double: perturbs each element of <paramref name="target"/> by ±<paramref name="step"/>,
    /// and returns a failure message when the norm-wise relative error against <paramref name="analytic"/> exceeds
    /// <paramref name="tolerance"/> (none when it does not).
    /// </summary>
    public static IEnumerable<string> GradientFailures(string name, Func<double> loss, double[] target, double[] analytic, double step = 1e-5, double tolerance = 1e-6)
        => GradientFailures(name, loss, target, analytic, Enumerable.Range(0, target.Length).ToArray(), step, tolerance);

    /// <summary>
    /// As above for <paramref name="sample"/> entries of a large target: its first and last entry and others drawn at random
    /// with a fixed seed (all of them when it has no more). For the per-head attention bias, whose [B, H, Tq, Tk] entries
    /// number in the tens of thousands: two forward calls per entry cost minutes there, and a few hundred entries spread
    /// over every head, row and key tile find what all of them would.
    /// </summary>
    public static IEnumerable<string> SampledGradientFailures(string name, Func<double> loss, double[] target, double[] analytic, int sample, double step = 1e-5, double tolerance = 1e-6)
    {
        if (target.Length <= sample) return GradientFailures(name, loss, target, analytic, step, tolerance);
        var random = new Random(target.Length);
        var chosen = new SortedSet<int> { 0, target.Length - 1 };
        while (chosen.Count < sample) chosen.Add(random.Next(target.Length));
        return GradientFailures(name, loss, target, analytic, chosen.ToArray(), step, tolerance);
    }

    private static IEnumerable<string> GradientFailures(string name, Func<double> loss, double[] target, double[] analytic, int[] entries, double step, double tolerance)
    {
        var numeric = new double[entries.Length];
        var expected = new double[entries.Length];
        for (int e = 0; e < entries.Length; e++)
        {
            int i = entries[e];
            double saved = target[i];
            target[i] = saved + step;
            double plus = loss();
            target[i] = saved - step;
            double minus = loss();
            target[i] = saved;
            numeric[e] = (plus - minus) / (2 * step);
            expected[e] = analytic[i];
        }
        double error = RelativeError(expected, numeric);
        return error <= tolerance ? Array.Empty<string>() : new[] { $"{name}: relative error {error:g3}" };
    }
}
