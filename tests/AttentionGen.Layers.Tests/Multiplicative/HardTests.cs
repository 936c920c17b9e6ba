using System;
using System.Collections.Generic;
using System.Linq;
using Xunit;

namespace AttentionGen.Layers.Tests.Multiplicative;

[HardAttention(Dim = 12, Score = AttentionScore.Dot)] public partial class HardArgmaxF12;
[HardAttention(Dim = 6, KeyDim = 5, ValueDim = 3, Selection = HardSelection.Sample, ElementType = typeof(double))] public partial class HardSampleD6;
[HardAttention(Dim = 4, ValueDim = 3, ElementType = typeof(double))] public partial class HardArgmaxD4;

/// <summary>Hard attention: the choice and its context, straight-through gradients, and REINFORCE's unbiasedness.</summary>
public sealed class HardTests
{
    [Fact]
    public void Argmax_picks_the_largest_soft_weight_and_its_value()
    {
        var random = new Random(1);
        var layer = new HardArgmaxF12();
        const int batch = 2, tq = 3, tk = 5;
        float[] q = TestData.Random<float>(random, batch * tq * 12), k = TestData.Random<float>(random, batch * tk * 12), v = TestData.Random<float>(random, batch * tk * 12);
        bool[] padding = { true, true, false, true, true, false, false, false, false, false };   // batch row 1 fully padded
        var context = new float[batch * tq * 12];
        var weights = new float[batch * tq * tk];
        var choices = new int[batch * tq];
        layer.Forward(batch, tq, tk, q, k, v, context, weights, AttentionMask.FromKeyPadding(padding), choices);
        for (int i = 0; i < tq; i++)
        {
            // The soft weights are the dot-product softmax; the choice is their argmax; the context is that value.
            float[] row = weights.Skip(i * tk).Take(tk).ToArray();
            int expected = Array.IndexOf(row, row.Max());
            Assert.Equal(expected, choices[i]);
            Assert.Equal(0f, row[2]);
            Assert.Equal(v.Skip(expected * 12).Take(12), context.Skip(i * 12).Take(12));
        }
        Assert.All(choices.Skip(tq), c => Assert.Equal(-1, c));
        Assert.All(context.Skip(tq * 12), c => Assert.Equal(0f, c));
    }

    [Theory]
    [InlineData(2, 2)]
    [InlineData(4, 16)] // 64 query rows: the forward packs Wᵀ for its projection
    public void Straight_through_gradients_match_finite_differences_of_the_soft_surrogate(int batch, int tq)
    {
        // Straight-through: the scores get the gradient they would get if the context were Σⱼ aᵢⱼ vⱼ (with v held fixed),
        // and the chosen value gets ∂L/∂c. Check the score path against finite differences of L = Σ (Σⱼ aᵢⱼ vⱼ) · g.
        var random = new Random(3);
        var layer = new HardArgmaxD4(seed: 2);
        const int tk = 3;
        double[] q = TestData.Random<double>(random, batch * tq * 4), k = TestData.Random<double>(random, batch * tk * 4), v = TestData.Random<double>(random, batch * tk * 3);
        double[] g = TestData.Random<double>(random, batch * tq * 3);
        var tape = new HardArgmaxD4.Tape();
        layer.Forward(tape, batch, tq, tk, q, k, v, new double[batch * tq * 3]);
        var dQuery = new double[q.Length];
        var dValues = new double[v.Length];
        layer.Backward(tape, q, k, v, g, dQuery, default, dValues);
        double Surrogate()
        {
            var weights = new double[batch * tq * tk];
            layer.Forward(batch, tq, tk, q, k, v, new double[batch * tq * 3], weights);
            double loss = 0;
            for (int b = 0; b < batch; b++)
                for (int i = 0; i < tq; i++)
                    for (int j = 0; j < tk; j++)
                        for (int d = 0; d < 3; d++) loss += weights[(b * tq + i) * tk + j] * v[(b * tk + j) * 3 + d] * g[(b * tq + i) * 3 + d];
            return loss;
        }
        var numeric = new double[q.Length];
        for (int i = 0; i < q.Length; i++)
        {
            double saved = q[i];
            q[i] = saved + 1e-6; double plus = Surrogate();
            q[i] = saved - 1e-6; double minus = Surrogate();
            q[i] = saved;
            numeric[i] = (plus - minus) / 2e-6;
        }
        Assert.True(TestData.RelativeError(dQuery, numeric) < 1e-6, $"{TestData.RelativeError(dQuery, numeric)}");
        // Only each query's chosen value receives ∂L/∂c.
        var choices = new int[batch * tq];
        layer.Forward(batch, tq, tk, q, k, v, new double[batch * tq * 3], default, default, choices);
        var expected = new double[v.Length];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < tq; i++)
                for (int d = 0; d < 3; d++) expected[(b * tk + choices[b * tq + i]) * 3 + d] += g[(b * tq + i) * 3 + d];
        Assert.Equal(expected, dValues);
    }

    [Fact]
    public void Reinforce_is_unbiased_for_the_gradient_of_the_expected_reward()
    {
        // One query, four keys, reward R(s) known per key: E[R] = Σ aₛ R(s), whose exact gradient in the scores is
        // ∂E[R]/∂eⱼ = aⱼ (R(j) − E[R]). BackwardReinforce gives the gradient of the surrogate loss −(R − b) log a_s̃;
        // its mean over many sampled choices must be −∂E[R]/∂e. Compared through ∂/∂query (e = q·W k is linear in q).
        var layer = new HardSampleD6(seed: 5);
        const int tk = 4;
        var random = new Random(7);
        double[] q = TestData.Random<double>(random, 6), k = TestData.Random<double>(random, tk * 5), v = TestData.Random<double>(random, tk * 3);
        double[] reward = { 1.0, -0.5, 2.0, 0.25 };
        var weights = new double[tk];
        var sampler = new Random(11);
        layer.Forward(1, 1, tk, q, k, v, new double[3], weights, default, default, sampler);
        double expectedReward = weights.Zip(reward, (a, r) => a * r).Sum();

        // Exact: ∂E[R]/∂q through the scores, from a REINFORCE call per key weighted by its probability (b = E[R] makes it exact).
        var exact = new double[6];
        var tape = new HardSampleD6.Tape();
        var mean = new double[6];
        const int samples = 20000;
        var choice = new int[1];
        for (int n = 0; n < samples; n++)
        {
            layer.Forward(tape, 1, 1, tk, q, k, v, new double[3], default, default, choice, sampler);
            var dQuery = new double[6];
            layer.BackwardReinforce(tape, q, k, v, new[] { reward[choice[0]] }, 0.0, default, dQuery);
            for (int i = 0; i < 6; i++) mean[i] += dQuery[i] / samples;
        }
        // The exact gradient of −E[R]: Σⱼ aⱼ (R(j) − E[R]) ∂eⱼ/∂q, negated — obtained from the layer's own straight-through path
        // would mix in other terms, so compute ∂eⱼ/∂q by finite differences of the scores (log-weights) instead.
        var logits = new Func<double[], double[]>(qq =>
        {
            var w = new double[tk];
            layer.Forward(1, 1, tk, qq, k, v, new double[3], w, default, default, new Random(0));
            return w.Select(x => Math.Log(x)).ToArray();
        });
        for (int i = 0; i < 6; i++)
        {
            double saved = q[i];
            q[i] = saved + 1e-6; double[] plus = logits(q);
            q[i] = saved - 1e-6; double[] minus = logits(q);
            q[i] = saved;
            // ∂E[R]/∂qᵢ = Σⱼ aⱼ R(j) ∂log aⱼ/∂qᵢ
            for (int j = 0; j < tk; j++) exact[i] -= weights[j] * reward[j] * (plus[j] - minus[j]) / 2e-6;
        }
        double error = TestData.RelativeError(mean, exact, 1e-3);
        Assert.True(error < 0.05, $"REINFORCE mean deviates from the exact gradient by {error:P1}");
        Assert.True(Math.Abs(expectedReward) > 0);
    }

    [Fact]
    public void Sampling_without_a_random_source_is_an_argument_error()
    {
        var layer = new HardSampleD6();
        var error = Assert.Throws<ArgumentException>(() => layer.Forward(1, 1, 2, new double[6], new double[10], new double[6], new double[3]));
        Assert.Equal("random", error.ParamName);
    }
}
