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

    // Max folds its vectors with MaxNative (one instruction; which zero or NaN it keeps is left to the hardware) and sets
    // NaN lanes and the sign of a zero maximum right afterwards: IEEE 754's maximum says +0 whenever any zero is +0.
    [Fact]
    public void Max_of_a_row_whose_largest_is_a_zero_is_plus_zero_exactly_when_a_plus_zero_is_there()
    {
        var random = new Random(5);
        for (int length = 1; length <= 70; length++)
        {
            foreach (int plant in new[] { 0, length / 3, length - 1 })
            {
                float[] x = Enumerable.Range(0, length).Select(_ => random.Next(3) == 0 ? -0f : -(float)random.NextDouble() - 1e-3f).ToArray();
                x[plant] = -0f;
                double[] asDouble = x.Select(v => (double)v).ToArray();
                Assert.Equal(BitConverter.SingleToInt32Bits(-0f), BitConverter.SingleToInt32Bits(AttentionMath.Max<float>(x)));
                Assert.Equal(BitConverter.DoubleToInt64Bits(-0d), BitConverter.DoubleToInt64Bits(AttentionMath.Max<double>(asDouble)));
                x[plant] = 0f;
                asDouble[plant] = 0d;
                Assert.Equal(0, BitConverter.SingleToInt32Bits(AttentionMath.Max<float>(x)));
                Assert.Equal(0L, BitConverter.DoubleToInt64Bits(AttentionMath.Max<double>(asDouble)));
            }
        }
    }

    [Fact]
    public void Max_and_Scale_match_scalar_loops_at_every_length()
    {
        var random = new Random(4);
        for (int length = 0; length <= 80; length++)
        {
            foreach (int plant in new[] { -1, 0, length / 2, length - 1 })
            {
                // the largest element placed anywhere, tails included; or a NaN there; or nothing but −∞
                float[] x = Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 20 - 10)).ToArray();
                double[] asDouble = x.Select(v => (double)v).ToArray();
                float expected = length == 0 ? float.NegativeInfinity : (float)asDouble.Max();
                Assert.Equal(expected, AttentionMath.Max<float>(x));
                Assert.Equal((double)expected, AttentionMath.Max<double>(asDouble));
                if (plant >= 0 && length > 0)
                {
                    x[plant] = float.NaN;
                    asDouble[plant] = double.NaN;
                    Assert.True(float.IsNaN(AttentionMath.Max<float>(x)), $"length {length}: a NaN at {plant} was missed");
                    Assert.True(double.IsNaN(AttentionMath.Max<double>(asDouble)), $"length {length}: a NaN at {plant} was missed (double)");
                }
            }
            float[] masked = Enumerable.Repeat(float.NegativeInfinity, length).ToArray();
            Assert.Equal(float.NegativeInfinity, AttentionMath.Max<float>(masked));

            float[] values = Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
            float[] scaled = (float[])values.Clone();
            AttentionMath.Scale<float>(scaled, 0.37f);
            for (int j = 0; j < length; j++)
            {
                Assert.Equal(values[j] * 0.37f, scaled[j]);
            }
        }
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

    // The float exponentials take whole vectors, then the row's last whole vector with only the lanes not yet done written
    // and summed: every length up to five 512-bit vectors, each element exponentiated exactly once, the sum of exactly those,
    // and a NaN in the last element reaching that element and the sum only.
    [Fact]
    public void ExpShiftedInPlace_exponentiates_every_element_once_at_every_length()
    {
        var random = new Random(4);
        for (int length = 0; length <= 80; length++)
        {
            float[] x = Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 8 - 4)).ToArray();
            const float shift = 1.5f;
            float[] e = (float[])x.Clone();
            float sum = AttentionMath.ExpShiftedInPlace<float>(e, shift);
            double expectedSum = 0;
            for (int j = 0; j < length; j++)
            {
                double expected = Math.Exp((double)x[j] - shift);
                expectedSum += expected;
                Assert.True(Math.Abs(e[j] - expected) <= 1e-6 * expected, $"length {length}, [{j}]: {e[j]} vs {expected}");
            }
            Assert.True(Math.Abs(sum - expectedSum) <= 1e-6 * Math.Max(1, expectedSum), $"length {length}: sum {sum} vs {expectedSum}");

            if (length == 0) continue;
            float[] withNaN = (float[])x.Clone();
            withNaN[length - 1] = float.NaN;
            Assert.True(float.IsNaN(AttentionMath.ExpShiftedInPlace<float>(withNaN, shift)), $"length {length}: the sum of a row with a NaN");
            Assert.True(float.IsNaN(withNaN[length - 1]));
            for (int j = 0; j < length - 1; j++) Assert.Equal(e[j], withNaN[j]);
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

    // Rows of 17 to 32 floats (two overlapping vectors on the 512-bit path): a fully masked row, a NaN anywhere, and the
    // maximum in the lanes only the last vector holds behave as in every other row.
    [Fact]
    public void Two_vector_rows_keep_the_masked_NaN_and_maximum_rules()
    {
        for (int length = 17; length <= 32; length++)
        {
            float[] masked = Enumerable.Repeat(float.NegativeInfinity, length).ToArray();
            Assert.False(AttentionMath.Softmax<float>(masked));
            Assert.All(masked, v => Assert.Equal(0f, v));

            foreach (int at in new[] { 0, 15, length - 1 })
            {
                float[] withNaN = Enumerable.Range(0, length).Select(j => (float)j).ToArray();
                withNaN[at] = float.NaN;
                AttentionMath.Softmax<float>(withNaN);
                Assert.All(withNaN, v => Assert.True(float.IsNaN(v), $"length {length}, NaN at {at}"));
            }

            float[] huge = new float[length];
            huge[length - 1] = 1e4f; // only the last vector's fresh lanes see it: every other weight underflows to 0
            Assert.True(AttentionMath.Softmax<float>(huge));
            Assert.Equal(1f, huge[length - 1]);
            Assert.All(huge[..^1], v => Assert.Equal(0f, v));
        }
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

    // The row's tail goes through its last whole vector (lanes the loop already did are dropped): every element of the
    // softmax backward, in place and into another span, is the scalar formula with the row's dot product; and an infinity in
    // a lane the tail vector overlaps counts once (not as 0 · ∞ = NaN).
    [Fact]
    public void Softmax_backward_and_dot_tails_match_scalar_loops_at_every_length()
    {
        var random = new Random(6);
        for (int length = 1; length <= 70; length++)
        {
            float[] weights = Enumerable.Range(0, length).Select(_ => (float)random.NextDouble()).ToArray();
            float[] upstream = Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            float dot = AttentionMath.Dot<float>(weights, upstream);
            var into = new float[length + 3];
            Array.Fill(into, 42f);
            AttentionMath.SoftmaxBackward<float>(weights, upstream, into.AsSpan(0, length));
            float[] inPlace = (float[])upstream.Clone();
            AttentionMath.SoftmaxBackward<float>(weights, inPlace, inPlace);
            for (int j = 0; j < length; j++)
            {
                float expected = weights[j] * (upstream[j] - dot);
                Assert.Equal(expected, into[j]);
                Assert.Equal(expected, inPlace[j]);
            }
            Assert.All(into[length..], v => Assert.Equal(42f, v)); // nothing written past the row

            if (length > 16)
            {
                float[] x = new float[length], y = new float[length];
                Array.Fill(x, 1f);
                y[15] = float.PositiveInfinity; // inside both the loop's first vector and the tail's last one when length < 32
                Assert.Equal(float.PositiveInfinity, AttentionMath.Dot<float>(x, y));
            }
        }
    }

    // The packed transpose (a layer's weight [out, in] into [in, out] once per call) goes through the register-blocked
    // one: shapes below, at and around its 8 × 8 (float) and 4 × 4 (double) blocks, and strips of two blocks across (16
    // float or 8 double columns) that end on one block (24 and 20 columns).
    [Fact]
    public void Transpose_matches_the_definition()
    {
        foreach (var (rows, columns) in new[] { (1, 1), (3, 5), (8, 8), (17, 33), (64, 1), (32, 32), (100, 100), (16, 24), (9, 20), (256, 256) })
        {
            Check<double>(rows, columns);
            Check<float>(rows, columns);
        }

        static void Check<T>(int rows, int columns) where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
        {
            T[] source = Enumerable.Range(0, rows * columns).Select(i => T.CreateChecked(i)).ToArray();
            var destination = new T[source.Length];
            MatrixOps.Transpose<T>(source, rows, columns, destination);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < columns; c++)
                    Assert.Equal(source[r * columns + c], destination[c * rows + r]);
        }
    }

    // The strided transpose packs multi-head key tiles: every shape around the 8 × 8 (float) and 4 × 4 (double) register
    // blocks, a stride wider than the rows, and the destination entries past the rows left untouched.
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(8, 8, 8)]
    [InlineData(7, 9, 12)]
    [InlineData(16, 64, 64)]
    [InlineData(64, 64, 64)]
    [InlineData(37, 64, 64)]
    [InlineData(13, 21, 30)]
    [InlineData(16, 24, 20)]
    [InlineData(8, 20, 9)]
    [InlineData(0, 5, 4)]
    public void Strided_transpose_writes_each_column_into_its_row_and_nothing_else(int rows, int columns, int stride)
    {
        Check<float>(rows, columns, stride);
        Check<double>(rows, columns, stride);

        static void Check<T>(int rows, int columns, int stride) where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
        {
            T[] source = Enumerable.Range(0, rows * columns).Select(i => T.CreateTruncating(i + 1)).ToArray();
            int length = columns == 0 ? 0 : (columns - 1) * stride + rows + 3; // three sentinels past the last row
            T[] destination = Enumerable.Repeat(T.CreateTruncating(-7), length).ToArray();
            MatrixOps.Transpose<T>(source, rows, columns, destination, stride);
            for (int c = 0; c < columns; c++)
            {
                for (int k = 0; k < stride && c * stride + k < length; k++)
                {
                    T expected = k < rows ? source[k * columns + c] : T.CreateTruncating(-7);
                    Assert.True(destination[c * stride + k] == expected, $"{typeof(T).Name} [{rows}, {columns}] stride {stride}: destination[{c}, {k}] = {destination[c * stride + k]}, expected {expected}");
                }
            }
            Assert.True(destination.AsSpan(length - 3).ToArray().All(x => x == T.CreateTruncating(-7)), "the sentinels past the last row were overwritten");
        }
    }

    [Fact]
    public void Strided_transpose_rejects_a_short_destination_or_a_narrow_stride_before_writing()
    {
        var source = new float[6 * 4];
        var destination = new float[3 * 8 + 5]; // 4 rows of stride 8 holding 6 need 3·8 + 6 = 30
        var error = Assert.Throws<ArgumentException>(() => MatrixOps.Transpose<float>(source, 6, 4, destination, 8));
        Assert.Equal("destination", error.ParamName);
        Assert.Contains("30", error.Message);
        Assert.All(destination, x => Assert.Equal(0f, x));
        Assert.Equal("destinationStride", Assert.Throws<ArgumentException>(() => MatrixOps.Transpose<float>(source, 6, 4, new float[64], 5)).ParamName);
        Assert.Equal("source", Assert.Throws<ArgumentException>(() => MatrixOps.Transpose<float>(new float[23], 6, 4, new float[64], 8)).ParamName);
    }
}
