using System;
using System.Runtime.Intrinsics;
using AttentionGen.Numerics;
using Xunit;

namespace AttentionGen.Runtime.Tests;

/// <summary>
/// Reductions.SumEach, the four-at-once horizontal sum of the dot-product tiles: each output lane against a plain
/// double sum of its own vector, with distinct lanes so that a lane taken from the wrong vector or position shows.
/// </summary>
public sealed class ReductionsTests
{
    [Fact]
    public void Float_sums_four_vectors_into_their_own_lanes()
    {
        var random = new Random(7);
        for (int trial = 0; trial < 200; trial++)
        {
            var lanes = new float[4][];
            var vectors = new Vector512<float>[4];
            for (int v = 0; v < 4; v++)
            {
                lanes[v] = new float[16];
                // powers of two per lane position make every lane's contribution distinguishable in the sum
                for (int i = 0; i < 16; i++) lanes[v][i] = trial == 0 ? (v + 1) * MathF.Pow(2, i) : (float)(random.NextDouble() * 2 - 1);
                vectors[v] = Vector512.Create(lanes[v]);
            }
            Vector128<float> sums = Reductions.SumEach(vectors[0], vectors[1], vectors[2], vectors[3]);
            for (int v = 0; v < 4; v++)
            {
                double expected = 0;
                foreach (float x in lanes[v]) expected += x;
                Assert.True(Math.Abs(sums[v] - expected) <= 1e-5 * Math.Max(1, Math.Abs(expected)), $"trial {trial}, vector {v}: {sums[v]} vs {expected}");
            }
        }
    }

    [Fact]
    public void Double_sums_four_vectors_into_their_own_lanes()
    {
        var random = new Random(8);
        for (int trial = 0; trial < 200; trial++)
        {
            var lanes = new double[4][];
            var vectors = new Vector512<double>[4];
            for (int v = 0; v < 4; v++)
            {
                lanes[v] = new double[8];
                for (int i = 0; i < 8; i++) lanes[v][i] = trial == 0 ? (v + 1) * Math.Pow(2, i) : random.NextDouble() * 2 - 1;
                vectors[v] = Vector512.Create(lanes[v]);
            }
            Vector256<double> sums = Reductions.SumEach(vectors[0], vectors[1], vectors[2], vectors[3]);
            for (int v = 0; v < 4; v++)
            {
                double expected = 0;
                foreach (double x in lanes[v]) expected += x;
                Assert.True(Math.Abs(sums[v] - expected) <= 1e-13 * Math.Max(1, Math.Abs(expected)), $"trial {trial}, vector {v}: {sums[v]} vs {expected}");
            }
        }
    }

    // The Vector256 SumEach (Vector256's dot-product tiles at short depths): each lane the bits of Reductions.Sum of its own
    // vector, since a row's outputs are reduced four at a time or one by one depending on where the tile falls. Random
    // lanes of mixed magnitude (where the order of the additions shows in the last bits), powers of two (a lost, doubled
    // or misplaced lane shows exactly), signed zeros and special values.
    [Fact]
    public void Vector256_float_sums_have_the_bits_of_Sum()
    {
        var random = new Random(9);
        for (int trial = 0; trial < 500; trial++)
        {
            var vectors = new Vector256<float>[4];
            for (int v = 0; v < 4; v++)
            {
                var lanes = new float[8];
                for (int i = 0; i < 8; i++)
                {
                    lanes[i] = trial switch
                    {
                        0 => (v + 1) * MathF.Pow(2, i),
                        1 => -0f,
                        2 => i == v ? float.NaN : i == 7 - v ? float.PositiveInfinity : 1,
                        _ => (float)((random.NextDouble() * 2 - 1) * Math.Pow(10, random.Next(-4, 5))),
                    };
                }
                vectors[v] = Vector256.Create(lanes);
            }
            Vector128<float> sums = Reductions.SumEach(vectors[0], vectors[1], vectors[2], vectors[3]);
            for (int v = 0; v < 4; v++)
            {
                Assert.Equal(BitConverter.SingleToInt32Bits(Reductions.Sum(vectors[v])), BitConverter.SingleToInt32Bits(sums[v]));
            }
        }
        Assert.Equal(new[] { 255f, 510f, 765f, 1020f }, ToArray(Reductions.SumEach(Powers(1), Powers(2), Powers(3), Powers(4))));

        static Vector256<float> Powers(int scale) => Vector256.Create(1f, 2, 4, 8, 16, 32, 64, 128) * scale;
        static float[] ToArray(Vector128<float> v) => new[] { v[0], v[1], v[2], v[3] };
    }

    [Fact]
    public void Vector256_double_sums_have_the_bits_of_Sum()
    {
        var random = new Random(10);
        for (int trial = 0; trial < 500; trial++)
        {
            var vectors = new Vector256<double>[4];
            for (int v = 0; v < 4; v++)
            {
                var lanes = new double[4];
                for (int i = 0; i < 4; i++)
                {
                    lanes[i] = trial switch
                    {
                        0 => (v + 1) * Math.Pow(2, i),
                        1 => -0.0,
                        2 => i == v ? double.NaN : i == 3 - v ? double.NegativeInfinity : 1,
                        _ => (random.NextDouble() * 2 - 1) * Math.Pow(10, random.Next(-8, 9)),
                    };
                }
                vectors[v] = Vector256.Create(lanes);
            }
            Vector256<double> sums = Reductions.SumEach(vectors[0], vectors[1], vectors[2], vectors[3]);
            for (int v = 0; v < 4; v++)
            {
                Assert.Equal(BitConverter.DoubleToInt64Bits(Reductions.Sum(vectors[v])), BitConverter.DoubleToInt64Bits(sums[v]));
            }
        }
        Vector256<double> powers = Vector256.Create(1.0, 2, 4, 8);
        Vector256<double> scaled = Reductions.SumEach(powers, powers * 2, powers * 3, powers * 4);
        Assert.Equal(new[] { 15.0, 30, 45, 60 }, new[] { scaled[0], scaled[1], scaled[2], scaled[3] });
    }

    [Fact]
    public void Special_values_stay_in_their_lane()
    {
        Vector512<float> finite = Vector512.Create(1f);
        Vector128<float> sums = Reductions.SumEach(finite, Vector512.Create(float.NaN), finite.WithElement(3, float.PositiveInfinity), finite);
        Assert.Equal(16f, sums[0]);
        Assert.True(float.IsNaN(sums[1]));
        Assert.Equal(float.PositiveInfinity, sums[2]);
        Assert.Equal(16f, sums[3]);
    }

    // Reductions.Sum, one vector's sum by halves: every lane counted once (powers of two make a lost or doubled lane
    // visible exactly), random lanes within float rounding of the double sum, and NaN / ∞ in any lane reaching the sum.
    [Fact]
    public void Single_vector_sums_count_every_lane_once_at_every_width()
    {
        float[] powers = new float[16];
        for (int i = 0; i < 16; i++) powers[i] = MathF.Pow(2, i);
        Assert.Equal(65535f, Reductions.Sum(Vector512.Create(powers)));
        Assert.Equal(255f, Reductions.Sum(Vector256.Create(powers.AsSpan(0, 8))));
        Assert.Equal(15f, Reductions.Sum(Vector128.Create(powers.AsSpan(0, 4))));
        double[] doublePowers = new double[8];
        for (int i = 0; i < 8; i++) doublePowers[i] = Math.Pow(2, i);
        Assert.Equal(255.0, Reductions.Sum(Vector512.Create(doublePowers)));
        Assert.Equal(15.0, Reductions.Sum(Vector256.Create(doublePowers.AsSpan(0, 4))));
        Assert.Equal(3.0, Reductions.Sum(Vector128.Create(doublePowers.AsSpan(0, 2))));

        var random = new Random(3);
        for (int trial = 0; trial < 500; trial++)
        {
            float[] lanes = new float[16];
            for (int i = 0; i < 16; i++) lanes[i] = (float)(random.NextDouble() * 200 - 100);
            double exact = 0;
            foreach (float x in lanes) exact += x;
            double magnitude = 0;
            foreach (float x in lanes) magnitude += Math.Abs(x);
            Assert.True(Math.Abs(Reductions.Sum(Vector512.Create(lanes)) - exact) <= 16 * 6e-8 * magnitude, $"trial {trial}");
        }
        for (int lane = 0; lane < 16; lane++)
        {
            float[] lanes = new float[16];
            lanes[lane] = float.NaN;
            Assert.True(float.IsNaN(Reductions.Sum(Vector512.Create(lanes))), $"NaN in lane {lane}");
            lanes[lane] = float.PositiveInfinity;
            Assert.Equal(float.PositiveInfinity, Reductions.Sum(Vector512.Create(lanes)));
        }
    }

    // Reductions.SumLikeEach, one vector's sum in SumEach's order: the dot-product tiles reduce an output alone (a row or
    // column left over) or four at a time, and an output must have the same bits either way. Lanes of mixed magnitudes
    // make the order show in the last bits (Reductions.Sum, which folds by halves, differs from it on these).
    [Fact]
    public void Sum_like_each_has_the_bits_of_sum_each_and_counts_every_lane_once()
    {
        float[] powers = new float[16];
        for (int i = 0; i < 16; i++) powers[i] = MathF.Pow(2, i);
        Assert.Equal(65535f, Reductions.SumLikeEach(Vector512.Create(powers)));
        double[] doublePowers = new double[8];
        for (int i = 0; i < 8; i++) doublePowers[i] = Math.Pow(2, i);
        Assert.Equal(255.0, Reductions.SumLikeEach(Vector512.Create(doublePowers)));

        var random = new Random(11);
        int differFromSum = 0;
        for (int trial = 0; trial < 500; trial++)
        {
            float[] lanes = new float[16];
            for (int i = 0; i < 16; i++) lanes[i] = (float)((random.NextDouble() * 2 - 1) * Math.Pow(2, random.Next(-12, 12)));
            Vector512<float> v = Vector512.Create(lanes), other = Vector512.Create(lanes[0]);
            float alone = Reductions.SumLikeEach(v);
            for (int position = 0; position < 4; position++)
            {
                Vector128<float> four = position switch
                {
                    0 => Reductions.SumEach(v, other, other, other),
                    1 => Reductions.SumEach(other, v, other, other),
                    2 => Reductions.SumEach(other, other, v, other),
                    _ => Reductions.SumEach(other, other, other, v),
                };
                Assert.True(BitConverter.SingleToInt32Bits(alone) == BitConverter.SingleToInt32Bits(four[position]), $"trial {trial}, position {position}: {alone} vs {four[position]}");
            }
            if (alone != Reductions.Sum(v)) differFromSum++;

            double[] doubleLanes = new double[8];
            for (int i = 0; i < 8; i++) doubleLanes[i] = (random.NextDouble() * 2 - 1) * Math.Pow(2, random.Next(-40, 40));
            Vector512<double> d = Vector512.Create(doubleLanes), dOther = Vector512.Create(1.0);
            double dAlone = Reductions.SumLikeEach(d);
            Assert.Equal(BitConverter.DoubleToInt64Bits(Reductions.SumEach(d, dOther, dOther, dOther)[0]), BitConverter.DoubleToInt64Bits(dAlone));
            Assert.Equal(BitConverter.DoubleToInt64Bits(Reductions.SumEach(dOther, dOther, dOther, d)[3]), BitConverter.DoubleToInt64Bits(dAlone));
        }
        // the data does tell the orders apart (on AVX-512; without it both fall back to Vector512.Sum and agree)
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
        {
            Assert.True(differFromSum > 0, "no trial told SumLikeEach's order from Sum's");
        }
    }
}
