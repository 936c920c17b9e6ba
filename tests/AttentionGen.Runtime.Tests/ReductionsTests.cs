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
}
