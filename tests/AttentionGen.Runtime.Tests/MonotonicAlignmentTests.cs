using System;
using System.Linq;
using AttentionGen.Numerics;
using Xunit;

namespace AttentionGen.Runtime.Tests;

/// <summary>
/// One row of monotonic alignment (Raffel et al. 2017) in both forms against the closed form
/// αⱼ = pⱼ Σₖ≤ⱼ αᵢ₋₁,ₖ Πₗ₌ₖ^{j−1} (1 − pₗ), and both reverse passes against central finite differences, at lengths 1–40,
/// with probabilities of exactly 0 and 1 among them.
/// </summary>
public sealed class MonotonicAlignmentTests
{
    private static double[] ClosedForm(double[] p, double[] previous)
    {
        var alignment = new double[p.Length];
        for (int j = 0; j < p.Length; j++)
        {
            double sum = 0;
            for (int k = 0; k <= j; k++)
            {
                double product = 1;
                for (int l = k; l < j; l++) product *= 1 - p[l];
                sum += previous[k] * product;
            }
            alignment[j] = p[j] * sum;
        }
        return alignment;
    }

    private static (double[] P, double[] Previous) Row(Random random, int n, bool extremes)
    {
        double[] p = Enumerable.Range(0, n).Select(_ => 0.05 + 0.6 * random.NextDouble()).ToArray();
        if (extremes && n > 2)
        {
            p[random.Next(n)] = 0;
            p[random.Next(n)] = 1;
        }
        double[] previous = Enumerable.Range(0, n).Select(_ => random.NextDouble()).ToArray();
        double total = previous.Sum() * 1.25;
        return (p, previous.Select(a => a / total).ToArray());
    }

    [Fact]
    public void Both_forms_match_the_closed_form_and_may_work_in_place()
    {
        var random = new Random(1);
        for (int n = 1; n <= 40; n++)
        {
            var (p, previous) = Row(random, n, extremes: true);
            double[] expected = ClosedForm(p, previous);
            var recursive = new double[n];
            MonotonicAlignment.Recursive<double>(p, previous, recursive);
            Assert.Equal(expected, recursive, (a, b) => Math.Abs(a - b) <= 1e-14);
            double[] inPlace = (double[])previous.Clone();
            MonotonicAlignment.Recursive<double>(p, inPlace, inPlace);
            Assert.Equal(recursive, inPlace);
            Assert.True(recursive.Sum() <= previous.Sum() + 1e-15);

            // The parallel form where its cumulative product stays above the clip (no p = 1 before the mass).
            var (pp, pprev) = Row(random, n, extremes: false);
            var parallel = new double[n];
            MonotonicAlignment.Parallel<double>(pp, pprev, parallel);
            Assert.Equal(ClosedForm(pp, pprev), parallel, (a, b) => Math.Abs(a - b) <= 1e-12);
            double[] parallelInPlace = (double[])pprev.Clone();
            MonotonicAlignment.Parallel<double>(pp, parallelInPlace, parallelInPlace);
            Assert.Equal(parallel, parallelInPlace);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Reverse_passes_match_central_finite_differences(bool parallel)
    {
        var random = new Random(parallel ? 3 : 2);
        for (int n = 1; n <= 25; n++)
        {
            var (p, previous) = Row(random, n, extremes: !parallel);
            double[] upstream = Enumerable.Range(0, n).Select(_ => random.NextDouble() * 2 - 1).ToArray();
            double Loss()
            {
                var alignment = new double[n];
                if (parallel) MonotonicAlignment.Parallel<double>(p, previous, alignment);
                else MonotonicAlignment.Recursive<double>(p, previous, alignment);
                return alignment.Zip(upstream, (a, g) => a * g).Sum();
            }
            var dChoose = new double[n];
            var dPrevious = new double[n];
            var scratch = new double[2 * n];
            if (parallel) MonotonicAlignment.ParallelBackward<double>(p, previous, upstream, dChoose, dPrevious, scratch);
            else MonotonicAlignment.RecursiveBackward<double>(p, previous, upstream, dChoose, dPrevious, scratch);
            foreach (var (target, analytic, name) in new[] { (p, dChoose, "p"), (previous, dPrevious, "previous") })
            {
                for (int i = 0; i < n; i++)
                {
                    double saved = target[i];
                    target[i] = saved + 1e-6;
                    double plus = Loss();
                    target[i] = saved - 1e-6;
                    double minus = Loss();
                    target[i] = saved;
                    double numeric = (plus - minus) / 2e-6;
                    Assert.True(Math.Abs(numeric - analytic[i]) <= 1e-7 * (1 + Math.Abs(numeric)), $"n = {n}, ∂{name}[{i}]: {analytic[i]:R} vs {numeric:R}");
                }
            }

            // dPrevious may be the same span as dAlignment.
            double[] shared = (double[])upstream.Clone();
            var dChooseShared = new double[n];
            if (parallel) MonotonicAlignment.ParallelBackward<double>(p, previous, shared, dChooseShared, shared, scratch);
            else MonotonicAlignment.RecursiveBackward<double>(p, previous, shared, dChooseShared, shared, scratch);
            Assert.Equal(dPrevious, shared);
            Assert.Equal(dChoose, dChooseShared);
        }
    }

    [Fact]
    public void The_parallel_backward_stays_finite_at_p_equal_to_one()
    {
        double[] p = { 0.3, 1, 0.5, 1, 0.2 };
        double[] previous = { 0.5, 0.2, 0.1, 0.1, 0.1 };
        var dChoose = new double[5];
        var dPrevious = new double[5];
        MonotonicAlignment.ParallelBackward<double>(p, previous, new double[] { 1, -1, 2, 0.5, 1 }, dChoose, dPrevious, new double[10]);
        Assert.All(dChoose.Concat(dPrevious), g => Assert.True(double.IsFinite(g)));
        var single = new float[5];
        MonotonicAlignment.Parallel<float>(p.Select(x => (float)x).ToArray(), previous.Select(x => (float)x).ToArray(), single);
        Assert.All(single, a => Assert.True(float.IsFinite(a) && a >= 0));
    }

    [Fact]
    public void Wrong_lengths_name_the_argument()
    {
        var p = new double[4];
        Assert.Equal("previous", Assert.Throws<ArgumentException>(() => MonotonicAlignment.Recursive<double>(p, new double[3], new double[4])).ParamName);
        Assert.Equal("alignment", Assert.Throws<ArgumentException>(() => MonotonicAlignment.Parallel<double>(p, new double[4], new double[5])).ParamName);
        Assert.Equal("dChoose", Assert.Throws<ArgumentException>(() => MonotonicAlignment.RecursiveBackward<double>(p, new double[4], new double[4], new double[3], new double[4], new double[4])).ParamName);
        Assert.Equal("scratch", Assert.Throws<ArgumentException>(() => MonotonicAlignment.RecursiveBackward<double>(p, new double[4], new double[4], new double[4], new double[4], new double[3])).ParamName);
        Assert.Equal("scratch", Assert.Throws<ArgumentException>(() => MonotonicAlignment.ParallelBackward<double>(p, new double[4], new double[4], new double[4], new double[4], new double[7])).ParamName);
        Assert.Equal("keyLength", Assert.Throws<ArgumentException>(() => MonotonicAlignment.Initialize<float>(new float[4], 0)).ParamName);
        Assert.Equal("alignment", Assert.Throws<ArgumentException>(() => MonotonicAlignment.Initialize<float>(new float[5], 2)).ParamName);
    }

    [Fact]
    public void Standard_normal_samples_are_seeded_and_standard()
    {
        var a = new Random(9);
        var b = new Random(9);
        double[] samples = Enumerable.Range(0, 40000).Select(_ => MonotonicAlignment.StandardNormal(a)).ToArray();
        Assert.Equal(samples.Take(10), Enumerable.Range(0, 10).Select(_ => MonotonicAlignment.StandardNormal(b)));
        double mean = samples.Average();
        double variance = samples.Select(x => (x - mean) * (x - mean)).Average();
        Assert.InRange(mean, -0.03, 0.03);
        Assert.InRange(variance, 0.95, 1.05);
        Assert.All(samples, x => Assert.True(double.IsFinite(x)));
    }
}
