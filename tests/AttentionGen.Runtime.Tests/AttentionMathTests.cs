using System;
using System.Linq;
using AttentionGen.Numerics;
using Xunit;

namespace AttentionGen.Runtime.Tests;

/// <summary>The span-level softmax, its backward and the dot product, at every length 0–256, against double references.</summary>
public sealed class AttentionMathTests
{
    private static double[] ReferenceSoftmax(double[] scores)
    {
        double max = scores.Where(s => !double.IsNegativeInfinity(s)).DefaultIfEmpty(double.NegativeInfinity).Max();
        if (double.IsNegativeInfinity(max)) return new double[scores.Length];
        double[] e = scores.Select(s => double.IsNegativeInfinity(s) ? 0 : Math.Exp(s - max)).ToArray();
        double sum = e.Sum();
        return e.Select(x => x / sum).ToArray();
    }

    [Fact]
    public void Softmax_matches_the_reference_at_every_length_with_masks()
    {
        var random = new Random(1);
        for (int length = 0; length <= 256; length++)
        {
            double[] scores = Enumerable.Range(0, length).Select(_ => random.NextDouble() * 20 - 10).ToArray();
            for (int j = 0; j < length; j++)
            {
                if (random.NextDouble() < 0.2) scores[j] = double.NegativeInfinity;
            }
            float[] single = scores.Select(s => (float)s).ToArray();
            double[] expected = ReferenceSoftmax(single.Select(s => (double)s).ToArray());
            bool any = AttentionMath.Softmax<float>(single);
            Assert.Equal(length > 0 && scores.Any(s => !double.IsNegativeInfinity(s)), any);
            for (int j = 0; j < length; j++)
            {
                Assert.True(Math.Abs(single[j] - expected[j]) <= 1e-6 * Math.Max(expected[j], 1e-3), $"length {length}, [{j}]: {single[j]} vs {expected[j]}");
                if (double.IsNegativeInfinity(scores[j])) Assert.Equal(0f, single[j]);
            }

            double[] precise = (double[])scores.Clone();
            AttentionMath.Softmax<double>(precise);
            double[] expectedPrecise = ReferenceSoftmax(scores);
            for (int j = 0; j < length; j++)
            {
                Assert.True(Math.Abs(precise[j] - expectedPrecise[j]) <= 1e-14, $"double length {length}, [{j}]");
            }
        }
    }

    [Fact]
    public void A_fully_masked_row_becomes_zeros_not_NaN()
    {
        float[] scores = Enumerable.Repeat(float.NegativeInfinity, 37).ToArray();
        Assert.False(AttentionMath.Softmax<float>(scores));
        Assert.All(scores, s => Assert.Equal(0f, s));
    }

    [Fact]
    public void Huge_logits_do_not_overflow()
    {
        float[] scores = { 1e4f, -1e4f, 9999f, 0f, 1e4f };
        AttentionMath.Softmax<float>(scores);
        Assert.All(scores, s => Assert.True(float.IsFinite(s)));
        Assert.Equal(1.0, scores.Sum(s => (double)s), 6);
        Assert.True(scores[0] > 0.4f && scores[4] > 0.4f);
    }

    [Fact]
    public void NaN_in_a_row_makes_that_row_NaN()
    {
        float[] scores = { 1f, float.NaN, 2f };
        AttentionMath.Softmax<float>(scores);
        Assert.All(scores, s => Assert.True(float.IsNaN(s)));
    }

    [Fact]
    public void Softmax_backward_matches_central_finite_differences()
    {
        var random = new Random(3);
        foreach (int length in new[] { 1, 2, 7, 33 })
        {
            double[] scores = Enumerable.Range(0, length).Select(_ => random.NextDouble() * 4 - 2).ToArray();
            if (length > 2) scores[1] = double.NegativeInfinity;
            double[] upstream = Enumerable.Range(0, length).Select(_ => random.NextDouble() - 0.5).ToArray();
            double[] weights = (double[])scores.Clone();
            AttentionMath.Softmax<double>(weights);
            var gradient = new double[length];
            AttentionMath.SoftmaxBackward<double>(weights, upstream, gradient);
            for (int j = 0; j < length; j++)
            {
                if (double.IsNegativeInfinity(scores[j]))
                {
                    Assert.Equal(0, gradient[j]);
                    continue;
                }
                double Loss(double delta)
                {
                    double[] shifted = (double[])scores.Clone();
                    shifted[j] += delta;
                    AttentionMath.Softmax<double>(shifted);
                    return shifted.Zip(upstream, (a, g) => a * g).Sum();
                }
                double numeric = (Loss(1e-6) - Loss(-1e-6)) / 2e-6;
                Assert.True(Math.Abs(numeric - gradient[j]) <= 1e-8, $"length {length}, [{j}]: {gradient[j]} vs {numeric}");
            }
        }
    }

    [Fact]
    public void Dot_matches_the_reference_at_every_length()
    {
        var random = new Random(5);
        for (int length = 0; length <= 256; length++)
        {
            float[] x = Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            float[] y = Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            double expected = x.Zip(y, (a, b) => (double)a * b).Sum();
            Assert.True(Math.Abs(AttentionMath.Dot<float>(x, y) - expected) <= 1e-5 * (1 + Math.Abs(expected)), $"length {length}");
        }
        Assert.Throws<ArgumentException>(() => AttentionMath.Dot<float>(new float[3], new float[4]));
    }

    [Fact]
    public void Transpose_matches_the_definition()
    {
        foreach (var (rows, columns) in new[] { (1, 1), (3, 5), (17, 33), (64, 1) })
        {
            double[] source = Enumerable.Range(0, rows * columns).Select(i => (double)i).ToArray();
            var destination = new double[source.Length];
            MatrixOps.Transpose<double>(source, rows, columns, destination);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < columns; c++)
                    Assert.Equal(source[r * columns + c], destination[c * rows + r]);
        }
    }
}
