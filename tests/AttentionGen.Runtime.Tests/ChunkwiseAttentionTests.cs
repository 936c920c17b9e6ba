using System;
using System.Linq;
using AttentionGen.Numerics;
using Xunit;

namespace AttentionGen.Runtime.Tests;

/// <summary>
/// MoChA's expected chunkwise weights (Chiu &amp; Raffel 2018) against the paper's equation written out literally,
/// βⱼ = Σₖ₌ⱼ^{j+w−1} αₖ exp(uⱼ) / Σₗ₌ₖ₋w₊₁^{k} exp(uₗ) (no max subtraction, keys outside the sequence or masked left out),
/// the reverse pass against central finite differences, w = 1, w ≥ Tk, masks, extreme energies, and the hard chunk.
/// </summary>
public sealed class ChunkwiseAttentionTests
{
    // The paper's equation, term by term; masked[l] leaves key l out of every sum.
    private static double[] Paper(double[] alpha, double[] u, int w, bool[]? masked = null)
    {
        int n = alpha.Length;
        var beta = new double[n];
        for (int j = 0; j < n; j++)
        {
            if (masked?[j] == true) continue;
            for (int k = j; k <= j + w - 1 && k < n; k++)
            {
                double denominator = 0;
                for (int l = k - w + 1; l <= k; l++)
                {
                    if (l >= 0 && masked?[l] != true) denominator += Math.Exp(u[l]);
                }
                beta[j] += alpha[k] * Math.Exp(u[j]) / denominator;
            }
        }
        return beta;
    }

    private static (double[] Alpha, double[] U) Row(Random random, int n)
    {
        double[] alpha = Enumerable.Range(0, n).Select(_ => random.NextDouble()).ToArray();
        double total = alpha.Sum() * 1.3;
        double[] u = Enumerable.Range(0, n).Select(_ => 4 * random.NextDouble() - 2).ToArray();
        return (alpha.Select(a => a / total).ToArray(), u);
    }

    private static double[] Expected(double[] alpha, double[] u, int w)
    {
        var beta = new double[alpha.Length];
        ChunkwiseAttention.Expected<double>(alpha, u, w, beta, new double[2 * alpha.Length]);
        return beta;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(50)]
    public void Matches_the_papers_equation_and_keeps_the_alignments_mass(int w)
    {
        var random = new Random(10 + w);
        for (int n = 1; n <= 30; n++)
        {
            var (alpha, u) = Row(random, n);
            double[] beta = Expected(alpha, u, w);
            Assert.Equal(Paper(alpha, u, w), beta, (a, b) => Math.Abs(a - b) <= 1e-14);
            Assert.Equal(alpha.Sum(), beta.Sum(), 1e-14);
            Assert.All(beta, b => Assert.True(b >= 0));
            if (w == 1)
            {
                Assert.Equal(alpha, beta); // every chunk is its own key: β = α exactly
            }
        }
    }

    [Fact]
    public void A_chunk_wider_than_the_sequence_spreads_each_mass_over_every_key_before_it()
    {
        double[] alpha = { 0, 0, 0.6 };
        double[] u = { 0, Math.Log(2), Math.Log(3) };
        double[] beta = Expected(alpha, u, 7);
        Assert.Equal(beta, Expected(alpha, u, int.MaxValue)); // no overflow in j + w − 1
        // Only chunk 2 carries mass, and it covers keys 0–2 with softmax weights 1/6, 2/6, 3/6.
        Assert.Equal(new[] { 0.1, 0.2, 0.3 }, beta, (a, b) => Math.Abs(a - b) <= 1e-15);
    }

    [Fact]
    public void Masked_keys_get_no_weight_and_the_chunks_around_them_renormalise()
    {
        var random = new Random(5);
        for (int w = 1; w <= 4; w++)
        {
            var (alpha, u) = Row(random, 9);
            bool[] masked = { false, true, false, false, true, true, false, false, true };
            for (int j = 0; j < 9; j++) if (masked[j]) { alpha[j] = 0; u[j] = double.NegativeInfinity; }
            double[] beta = Expected(alpha, u, w);
            double[] reference = Paper(alpha, u.Select(x => double.IsNegativeInfinity(x) ? 0 : x).ToArray(), w, masked);
            Assert.Equal(reference, beta, (a, b) => Math.Abs(a - b) <= 1e-14);
            for (int j = 0; j < 9; j++) if (masked[j]) Assert.Equal(0.0, beta[j]);
            Assert.Equal(alpha.Sum(), beta.Sum(), 1e-14);
        }
        // Every key masked: nothing at all, not NaN.
        double[] none = Expected(new double[4], Enumerable.Repeat(double.NegativeInfinity, 4).ToArray(), 2);
        Assert.Equal(new double[4], none);
    }

    [Fact]
    public void Extreme_energies_neither_overflow_nor_give_NaN()
    {
        double[] alpha = { 0.1, 0.2, 0.3, 0.2 };
        double[] u = { 800, -800, 750, 10 }; // exp overflows or underflows without the per-chunk maximum
        double[] beta = Expected(alpha, u, 2);
        Assert.All(beta, b => Assert.True(double.IsFinite(b)));
        // Chunk 1 is all key 0 (800 ≫ −800), chunk 2 all key 2, chunk 3 all key 2 (750 ≫ 10).
        Assert.Equal(new[] { 0.1 + 0.2, 0, 0.3 + 0.2, 0 }, beta, (a, b) => Math.Abs(a - b) <= 1e-15);
        float[] single = new float[4];
        ChunkwiseAttention.Expected<float>(new float[] { 0.1f, 0.2f, 0.3f, 0.2f }, new float[] { 200, -200, 150, 10 }, 2, single, new float[8]);
        Assert.All(single, b => Assert.True(float.IsFinite(b)));
        Assert.Equal(0.8f, single.Sum(), 1e-6f);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(40)]
    public void The_reverse_pass_matches_central_finite_differences(int w)
    {
        var random = new Random(20 + w);
        for (int n = 1; n <= 12; n++)
        {
            var (alpha, u) = Row(random, n);
            bool withMask = n > 3;
            if (withMask) { alpha[1] = 0; u[1] = double.NegativeInfinity; }
            double[] g = Enumerable.Range(0, n).Select(_ => random.NextDouble() - 0.5).ToArray();
            double Loss(double[] a, double[] e) => Expected(a, e, w).Zip(g, (x, y) => x * y).Sum();
            var dAlpha = new double[n];
            var dU = new double[n];
            ChunkwiseAttention.ExpectedBackward<double>(alpha, u, w, g, dAlpha, dU, new double[2 * n]);
            const double h = 1e-6;
            for (int j = 0; j < n; j++)
            {
                if (withMask && j == 1)
                {
                    Assert.Equal(0.0, dU[j]);
                }
                else
                {
                    double[] up = (double[])u.Clone(), down = (double[])u.Clone();
                    up[j] += h; down[j] -= h;
                    Assert.Equal((Loss(alpha, up) - Loss(alpha, down)) / (2 * h), dU[j], 1e-8);
                }
                double[] ap = (double[])alpha.Clone(), am = (double[])alpha.Clone();
                ap[j] += h; am[j] -= h;
                // α at a masked key is 0 in practice; the derivative there is the chunk's average all the same.
                Assert.Equal((Loss(ap, u) - Loss(am, u)) / (2 * h), dAlpha[j], 1e-8);
            }
        }
    }

    [Fact]
    public void The_hard_chunk_is_a_softmax_over_the_w_keys_ending_at_the_position()
    {
        double[] u = { 1, 2, double.NegativeInfinity, 0.5, -1 };
        var weights = new double[5];
        Assert.Equal(2, ChunkwiseAttention.HardChunk<double>(u, 3, 4, weights));
        double z = Math.Exp(0.5) + Math.Exp(-1);
        Assert.Equal(new[] { 0, 0, 0, Math.Exp(0.5) / z, Math.Exp(-1) / z }, weights, (a, b) => Math.Abs(a - b) <= 1e-15);
        Assert.Equal(0, ChunkwiseAttention.HardChunk<double>(u, 9, 1, weights)); // clipped at the first key
        double z2 = Math.Exp(1) + Math.Exp(2);
        Assert.Equal(new[] { Math.Exp(1) / z2, Math.Exp(2) / z2, 0, 0, 0 }, weights, (a, b) => Math.Abs(a - b) <= 1e-15);
        Assert.Equal(3, ChunkwiseAttention.HardChunk<double>(u, 1, 3, weights));
        Assert.Equal(new double[] { 0, 0, 0, 1, 0 }, weights);
        Assert.Equal(-1, ChunkwiseAttention.HardChunk<double>(u, 2, -1, weights));
        Assert.Equal(new double[5], weights);
    }

    [Fact]
    public void Bad_arguments_are_refused()
    {
        var row = new double[3];
        Assert.Throws<ArgumentException>(() => ChunkwiseAttention.Expected<double>(row, row, 0, new double[3], new double[6]));
        Assert.Throws<ArgumentException>(() => ChunkwiseAttention.Expected<double>(row, new double[2], 1, new double[3], new double[6]));
        Assert.Throws<ArgumentException>(() => ChunkwiseAttention.Expected<double>(row, row, 1, new double[3], new double[5]));
        Assert.Throws<ArgumentException>(() => ChunkwiseAttention.ExpectedBackward<double>(row, row, 1, row, new double[2], new double[3], new double[6]));
        Assert.Throws<ArgumentException>(() => ChunkwiseAttention.HardChunk<double>(row, 1, 3, new double[3]));
        Assert.Throws<ArgumentException>(() => ChunkwiseAttention.HardChunk<double>(row, 1, -2, new double[3]));
        Assert.Throws<ArgumentException>(() => ChunkwiseAttention.HardChunk<double>(row, 0, 0, new double[3]));
    }
}
