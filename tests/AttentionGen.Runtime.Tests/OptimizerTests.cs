using System;
using System.Linq;
using Xunit;

namespace AttentionGen.Runtime.Tests;

/// <summary>Adam and SGD against their update rules computed by hand in the test, and on a small quadratic.</summary>
public sealed class OptimizerTests
{
    [Fact]
    public void Adam_first_two_steps_follow_the_paper()
    {
        var p = new Parameter<double>("w", 2);
        p.Value[0] = 1.0; p.Value[1] = -2.0;
        var adam = new Adam<double>(new[] { p }, learningRate: 0.1);
        double[] g1 = { 0.5, -3.0 }, g2 = { -1.0, 2.0 };
        double[] m = new double[2], v = new double[2], theta = { 1.0, -2.0 };
        foreach ((double[] g, int t) in new[] { (g1, 1), (g2, 2) })
        {
            g.CopyTo(p.Gradient, 0);
            adam.Step();
            for (int i = 0; i < 2; i++)
            {
                m[i] = 0.9 * m[i] + 0.1 * g[i];
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
                double mHat = m[i] / (1 - Math.Pow(0.9, t)), vHat = v[i] / (1 - Math.Pow(0.999, t));
                theta[i] -= 0.1 * mHat / (Math.Sqrt(vHat) + 1e-8);
                Assert.Equal(theta[i], p.Value[i], 10);
            }
        }
        Assert.Equal(2, adam.Steps);
    }

    [Fact]
    public void AdamW_decays_weights_apart_from_the_gradient()
    {
        var p = new Parameter<double>("w", 1);
        p.Value[0] = 2.0;
        var adamW = new Adam<double>(new[] { p }, learningRate: 0.01, weightDecay: 0.5, decoupledWeightDecay: true);
        adamW.Step(); // zero gradient: only the decay acts
        Assert.Equal(2.0 - 0.01 * 0.5 * 2.0, p.Value[0], 12);
    }

    [Fact]
    public void Sgd_with_momentum_follows_its_rule()
    {
        var p = new Parameter<float>("w", 1);
        p.Value[0] = 1f;
        var sgd = new Sgd<float>(new[] { p }, learningRate: 0.1, momentum: 0.9);
        p.Gradient[0] = 2f; sgd.Step();   // v = 2, θ = 1 − 0.2
        Assert.Equal(0.8f, p.Value[0], 6);
        p.Gradient[0] = 1f; sgd.Step();   // v = 0.9·2 + 1 = 2.8, θ = 0.8 − 0.28
        Assert.Equal(0.52f, p.Value[0], 6);
    }

    [Fact]
    public void Adam_minimises_a_quadratic()
    {
        var p = new Parameter<float>("w", 3);
        float[] target = { 3f, -1f, 0.5f };
        var adam = new Adam<float>(new[] { p }, learningRate: 0.05);
        for (int step = 0; step < 2000; step++)
        {
            adam.ZeroGradients();
            for (int i = 0; i < 3; i++) p.Gradient[i] = 2 * (p.Value[i] - target[i]);
            adam.Step();
        }
        for (int i = 0; i < 3; i++) Assert.Equal(target[i], p.Value[i], 2);
    }

    [Fact]
    public void Bad_hyperparameters_are_rejected()
    {
        var p = new[] { new Parameter<float>("w", 1) };
        Assert.Throws<ArgumentOutOfRangeException>(() => new Adam<float>(p, learningRate: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Adam<float>(p, beta1: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd<float>(p, learningRate: -1));
    }
}
