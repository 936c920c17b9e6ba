using System;
using System.Linq;
using System.Runtime.Intrinsics;
using AttentionGen.Numerics;
using Xunit;
using Xunit.Abstractions;

namespace AttentionGen.Runtime.Tests;

/// <summary>
/// The tiled kernel's row operations: the float exponential at every width against Math.Exp in double (the bound
/// docs/numerics.md states), its special values, the online softmax against a plain softmax over the whole row, masks.
/// </summary>
public sealed class FlashSoftmaxTests(ITestOutputHelper output)
{
    private const double ExpFloatBound = 2.5 * 5.96e-8; // relative, 2 ulp of float plus the rounding of the input

    [Fact]
    public void Float_exp_is_within_two_ulp_at_every_width()
    {
        double worst = 0;
        for (int i = -87000; i <= 0; i++)
        {
            float x = i / 1000f;
            double expected = Math.Exp(x);
            foreach (float actual in new[] { FlashSoftmax.Exp(Vector512.Create(x)).ToScalar(), FlashSoftmax.Exp(Vector256.Create(x)).ToScalar(), FlashSoftmax.Exp(Vector128.Create(x)).ToScalar() })
            {
                double error = Math.Abs(actual - expected) / expected;
                worst = Math.Max(worst, error);
                Assert.True(error <= ExpFloatBound, $"e^{x:R}: {actual:R} vs {expected:R}, relative error {error:g3}");
            }
        }
        output.WriteLine($"worst relative error on [−87, 0]: {worst:g3}");
    }

    [Fact]
    public void Float_exp_special_values()
    {
        Vector256<float> x = Vector256.Create(0f, float.NegativeInfinity, -87.5f, float.NaN, -1e30f, 1f, 80f, -0f);
        Vector256<float> e = FlashSoftmax.Exp(x);
        Assert.Equal(1f, e[0]);                  // e⁰ = 1 exactly
        Assert.Equal(0f, e[1]);                  // e^{−∞} = 0: masked scores carry no weight
        Assert.Equal(0f, e[2]);                  // below the normal range: 0
        Assert.True(float.IsNaN(e[3]));          // NaN propagates
        Assert.Equal(0f, e[4]);
        Assert.Equal(Math.E, e[5], 6);
        Assert.Equal(Math.Exp(80), e[6], Math.Exp(80) * 3e-7);
        Assert.Equal(1f, e[7]);
    }

    [Theory]
    [InlineData(1, 7)]
    [InlineData(2, 48)]
    [InlineData(3, 200)]
    public void Folding_tiles_one_by_one_gives_the_softmax_of_the_whole_row(int seed, int length)
    {
        var random = new Random(seed);
        float[] scores = Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 20 - 10)).ToArray();
        float[] values = Enumerable.Range(0, length).Select(_ => (float)random.NextDouble()).ToArray();
        // Expected: Σⱼ softmax(s)ⱼ vⱼ in double.
        double max = scores.Max(), total = scores.Sum(s => Math.Exp(s - max));
        double expected = scores.Select((s, j) => Math.Exp(s - max) / total * values[j]).Sum();

        float runningMax = float.NegativeInfinity, runningSum = 0, accumulator = 0;
        for (int start = 0; start < length; start += 16)
        {
            float[] tile = scores.Skip(start).Take(16).ToArray();
            float rescale = FlashSoftmax.Update<float>(tile, ref runningMax, ref runningSum);
            accumulator *= rescale;
            for (int j = 0; j < tile.Length; j++) accumulator += tile[j] * values[start + j];
        }
        Assert.Equal(expected, accumulator / runningSum, 5);
        Assert.Equal(Math.Log(total) + max, FlashSoftmax.LogSumExp(runningMax, runningSum), 4);
    }

    [Fact]
    public void A_row_with_nothing_allowed_stays_empty_and_its_log_sum_exp_is_infinite()
    {
        float[] tile = { float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity };
        float max = float.NegativeInfinity, sum = 0;
        Assert.Equal(1f, FlashSoftmax.Update<float>(tile, ref max, ref sum));
        Assert.All(tile, p => Assert.Equal(0f, p));
        Assert.Equal(0f, sum);
        Assert.Equal(float.PositiveInfinity, FlashSoftmax.LogSumExp(max, sum));
        float[] recomputed = { 1f, 2f };
        FlashSoftmax.Recompute<float>(recomputed, float.PositiveInfinity);
        Assert.All(recomputed, p => Assert.Equal(0f, p));
    }

    [Fact]
    public void MaskRow_masks_padding_past_the_keys_the_causal_limit_and_each_mask()
    {
        float[] row = Enumerable.Repeat(1f, 8).ToArray();
        bool[] keyPadding = { true, false, true, true, true, true, true, true, true, true, true, true };
        bool[] perQuery = { true, true, true, false, true, true, true, true, true, true, true, true };
        // Keys 2 … 9 of a 12-key row; only 6 are real (2 … 7); causal limit 6; key 3 masked per query; key 1 is padded but outside.
        bool any = FlashSoftmax.MaskRow<float>(row, firstKey: 2, validKeys: 6, causalLimit: 6, keyPadding, perQuery);
        Assert.True(any);
        Assert.Equal(new[] { 1f, float.NegativeInfinity, 1f, 1f, 1f, float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity }, row);
        Assert.False(FlashSoftmax.MaskRow<float>(Enumerable.Repeat(1f, 4).ToArray(), firstKey: 8, validKeys: 4, causalLimit: 7, default, default));
    }

    // The copying scale (scaled queries, stored weights): every length around the vector widths, the element past the
    // source untouched, the in-place form equal to it, and a short destination refused before anything is written.
    [Fact]
    public void Scale_into_a_destination_multiplies_each_element_and_writes_nothing_past_the_source()
    {
        var random = new Random(11);
        for (int length = 0; length <= 70; length++)
        {
            float[] x = Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 8 - 4)).ToArray();
            float[] destination = Enumerable.Repeat(9f, length + 1).ToArray();
            FlashSoftmax.Scale<float>(x, 0.125f, destination);
            for (int i = 0; i < length; i++)
            {
                Assert.Equal(x[i] * 0.125f, destination[i]);
            }
            Assert.Equal(9f, destination[length]);
            float[] inPlace = (float[])x.Clone();
            FlashSoftmax.Scale<float>(inPlace, 0.125f);
            Assert.Equal(destination.Take(length), inPlace);
        }
        var shortDestination = new double[4];
        Assert.Equal("destination", Assert.Throws<ArgumentException>(() => FlashSoftmax.Scale<double>(new double[5] { 1, 2, 3, 4, 5 }, 2.0, shortDestination)).ParamName);
        Assert.All(shortDestination, v => Assert.Equal(0.0, v));
    }

    // UpdateBlock is the per-row Update plus the output rescale without a call per row: it must give the same bits, over
    // several tiles of one block, with rows whose maximum grows, rows that stay fully masked, a row that becomes allowed
    // late, a NaN row, and widths that take a fused vector loop (64 × 64 where Vector512 or Vector256 is the widest path;
    // 16 × 8 and 8 × 24 where Vector256 is, so the reduced-SIMD run covers that path) and those that do not (12, 5).
    // Width 64 with 24 output columns takes the row-by-row path on Vector512 and the fused one on Vector256: on Vector512
    // a fused loop of 8 lanes would sum the exponentials in another order than the row-by-row path's 16.
    [Theory]
    [InlineData(64, 64)]
    [InlineData(64, 24)]
    [InlineData(16, 8)]
    [InlineData(8, 24)]
    [InlineData(12, 64)]
    [InlineData(5, 3)]
    public void UpdateBlock_gives_the_bits_of_updating_each_row_and_scaling_its_output(int width, int outputWidth)
    {
        const int rows = 6, tiles = 3;
        var random = new Random(width * 100 + outputWidth);
        float[] maxBlock = Enumerable.Repeat(float.NegativeInfinity, rows).ToArray(), sumBlock = new float[rows];
        float[] maxRows = (float[])maxBlock.Clone(), sumRows = new float[rows];
        float[] outBlock = new float[rows * outputWidth], outRows = new float[rows * outputWidth];
        for (int t = 0; t < tiles; t++)
        {
            float[] tile = Enumerable.Range(0, rows * width).Select(_ => (float)(random.NextDouble() * 6 * (t + 1) - 3)).ToArray();
            for (int c = 0; c < width; c++)
            {
                tile[1 * width + c] = float.NegativeInfinity;                   // row 1: never allowed
                if (t == 0) tile[2 * width + c] = float.NegativeInfinity;      // row 2: allowed from the second tile on
            }
            if (t == 1) tile[3 * width + width / 2] = float.NaN;                // row 3: a NaN score
            if (t == 0)
            {
                for (int c = 0; c < width; c++)
                {
                    tile[4 * width + c] = c % 2 == 0 ? -0f : -1f;                 // row 4: the largest is −0 …
                    tile[5 * width + c] = c % 3 == 0 ? -0f : -2f;                 // row 5: … or +0 beside −0s
                }
                tile[5 * width + width - 1] = 0f;
            }
            float[] tileRows = (float[])tile.Clone();
            FlashSoftmax.UpdateBlock<float>(tile, rows, width, maxBlock, sumBlock, outBlock, outputWidth);
            for (int r = 0; r < rows; r++)
            {
                float previous = maxRows[r];
                float rescale = FlashSoftmax.Update(tileRows.AsSpan(r * width, width), ref maxRows[r], ref sumRows[r]);
                if (rescale != 1 && !float.IsNegativeInfinity(previous))
                {
                    FlashSoftmax.Scale(outRows.AsSpan(r * outputWidth, outputWidth), rescale);
                }
            }
            Assert.Equal(tileRows, tile);
            Assert.Equal(maxRows.Select(BitConverter.SingleToInt32Bits), maxBlock.Select(BitConverter.SingleToInt32Bits));
            if (t == 0)
            {
                Assert.Equal(BitConverter.SingleToInt32Bits(-0f), BitConverter.SingleToInt32Bits(maxBlock[4]));
                Assert.Equal(0, BitConverter.SingleToInt32Bits(maxBlock[5]));
            }
            Assert.Equal(sumRows, sumBlock);
            Assert.Equal(outRows, outBlock);
            // what a kernel adds to the outputs after each tile: here the tile's first column, so a later rescale shows
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < outputWidth; c++)
                {
                    outBlock[r * outputWidth + c] += tile[r * width] * (c + 1);
                    outRows[r * outputWidth + c] += tileRows[r * width] * (c + 1);
                }
        }
        Assert.True(sumBlock[0] > 0 && sumBlock[2] > 0 && sumBlock[1] == 0 && float.IsNaN(sumBlock[3]), "the test's rows did not take the intended branches");
        Assert.All(outBlock.AsSpan(outputWidth, outputWidth).ToArray(), v => Assert.Equal(0f, v));
        Assert.Throws<ArgumentException>(() => FlashSoftmax.UpdateBlock<float>(new float[rows * width - 1], rows, width, new float[rows], new float[rows], new float[rows * outputWidth], outputWidth));
    }
}
