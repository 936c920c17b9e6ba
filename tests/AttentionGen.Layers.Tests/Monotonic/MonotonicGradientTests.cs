using System;
using System.Collections.Generic;
using System.Linq;
using Xunit;

namespace AttentionGen.Layers.Tests.Monotonic;

/// <summary>
/// Backward against central finite differences in double: for L = Σ c ⊙ R + Σ α ⊙ S with random R and S, every input
/// gradient and every parameter gradient (r included) must match (L(x + h) − L(x − h)) / 2h to a norm-wise relative
/// error of 1e-6, with masks (a fully masked query among them), Tk = 1, the keys serving as values, and seeded noise.
/// </summary>
public abstract class MonotonicGradientTests<TLayer, TTape>
    where TLayer : IMonotonicLayer<double, TTape>, new()
    where TTape : AttentionTape, new()
{
    private static readonly int Dim = (int)typeof(TLayer).GetField("Dim")!.GetRawConstantValue()!;
    private static readonly int ValueDim = (int)typeof(TLayer).GetField("ValueDim")!.GetRawConstantValue()!;

    public static TheoryData<int, int, int, int, bool, bool, bool> Cases => new()
    {
        // seed, batch, Tq, Tk, keys as values, masks, noise
        { 1, 1, 1, 1, false, false, false },
        { 2, 2, 3, 4, false, false, false },
        { 3, 1, 4, 5, true, true, false },
        { 4, 2, 3, 6, false, true, true },
        { 5, 1, 5, 3, true, false, true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Backward_matches_central_finite_differences(int seed, int batch, int tq, int tk, bool keysAsValues, bool masks, bool noise)
    {
        keysAsValues &= ValueDim == Dim;
        var random = new Random(seed);
        TLayer layer = MonotonicLayerTests<double, TLayer, TTape>.Layer(seed, energyBias: 0.2, spread: 0.8);
        double[] query = TestData.Random<double>(random, batch * tq * Dim);
        double[] keys = TestData.Random<double>(random, batch * tk * Dim);
        double[] values = keysAsValues ? Array.Empty<double>() : TestData.Random<double>(random, batch * tk * ValueDim);
        bool[] keyPadding = masks ? TestData.Mask(random, batch * tk, 0.8) : Array.Empty<bool>();
        bool[] perQuery = masks ? Enumerable.Repeat(true, batch * tq * tk).ToArray() : Array.Empty<bool>();
        if (masks && tq > 2)
        {
            for (int j = 0; j < tk; j++) perQuery[(tq - 1) * tk + j] = false; // the last query of row 0 attends nothing
            perQuery[1 * tk + tk / 2] = false;
        }
        double[] upstreamContext = TestData.Random<double>(random, batch * tq * ValueDim);
        double[] upstreamWeights = TestData.Random<double>(random, batch * tq * tk);

        double Loss()
        {
            var context = new double[batch * tq * ValueDim];
            var weights = new double[batch * tq * tk];
            layer.Forward(new TTape(), batch, tq, tk, query, keys, values, context, weights, new AttentionMask { KeyPadding = keyPadding, PerQuery = perQuery }, noise ? new Random(seed) : null);
            double loss = 0;
            for (int i = 0; i < context.Length; i++) loss += context[i] * upstreamContext[i];
            for (int i = 0; i < weights.Length; i++) loss += weights[i] * upstreamWeights[i];
            return loss;
        }

        var tape = new TTape();
        layer.Forward(tape, batch, tq, tk, query, keys, values, new double[batch * tq * ValueDim], default, new AttentionMask { KeyPadding = keyPadding, PerQuery = perQuery }, noise ? new Random(seed) : null);
        layer.ZeroGradients();
        // ∂L/∂q, ∂L/∂k and ∂L/∂value are written, not added to: they start as NaN, so an element the backward does not write shows.
        double[] dQuery = Enumerable.Repeat(double.NaN, query.Length).ToArray();
        double[] dKeys = Enumerable.Repeat(double.NaN, keys.Length).ToArray();
        double[] dValues = Enumerable.Repeat(double.NaN, values.Length).ToArray();
        layer.Backward(tape, query, keys, values, upstreamContext, dQuery, dKeys, dValues, upstreamWeights);

        var failures = new List<string>();
        void Compare(string name, double[] target, double[] analytic) => failures.AddRange(TestData.GradientFailures(name, Loss, target, analytic));
        Compare("dQuery", query, dQuery);
        Compare("dKeys", keys, dKeys);
        if (!keysAsValues)
        {
            Compare("dValues", values, dValues);
        }
        foreach (Parameter<double> parameter in layer.Parameters)
        {
            Compare(parameter.Name, parameter.Value, (double[])parameter.Gradient.Clone());
        }
        Assert.True(failures.Count == 0, string.Join("; ", failures));
        Assert.Contains(dQuery, g => g != 0);
    }

    [Fact]
    public void Backward_accumulates_parameter_gradients_and_ZeroGradients_clears_them()
    {
        var random = new Random(5);
        TLayer layer = MonotonicLayerTests<double, TLayer, TTape>.Layer(5);
        double[] query = TestData.Random<double>(random, 2 * Dim);
        double[] keys = TestData.Random<double>(random, 3 * Dim);
        double[] values = TestData.Random<double>(random, 3 * ValueDim);
        double[] dContext = TestData.Random<double>(random, 2 * ValueDim);
        var tape = new TTape();
        layer.Forward(tape, 1, 2, 3, query, keys, values, new double[2 * ValueDim], default, default, null);
        layer.Backward(tape, query, keys, values, dContext, default, default, default, default);
        double[][] once = layer.Parameters.Select(p => (double[])p.Gradient.Clone()).ToArray();
        layer.Backward(tape, query, keys, values, dContext, default, default, default, default);
        for (int p = 0; p < once.Length; p++)
        {
            for (int i = 0; i < once[p].Length; i++)
            {
                Assert.Equal(2 * once[p][i], layer.Parameters[p].Gradient[i], 12);
            }
        }
        Assert.All(once, g => Assert.Contains(g, x => x != 0));
        layer.ZeroGradients();
        Assert.All(layer.Parameters, p => Assert.All(p.Gradient, g => Assert.Equal(0.0, g)));
    }
}

public sealed class MonotonicD7GradientTests : MonotonicGradientTests<MonotonicD7, MonotonicD7.Tape>;
public sealed class MonotonicD5U9V3GradientTests : MonotonicGradientTests<MonotonicD5U9V3, MonotonicD5U9V3.Tape>;
public sealed class MonotonicMulD6V4GradientTests : MonotonicGradientTests<MonotonicMulD6V4, MonotonicMulD6V4.Tape>;
public sealed class MonotonicParallelD5U9V3GradientTests : MonotonicGradientTests<MonotonicParallelD5U9V3, MonotonicParallelD5U9V3.Tape>;
public sealed class MonotonicParallelMulD6V4GradientTests : MonotonicGradientTests<MonotonicParallelMulD6V4, MonotonicParallelMulD6V4.Tape>;
public sealed class MonotonicNormD5U9V3GradientTests : MonotonicGradientTests<MonotonicNormD5U9V3, MonotonicNormD5U9V3.Tape>;
public sealed class MonotonicNormParallelD4GradientTests : MonotonicGradientTests<MonotonicNormParallelD4, MonotonicNormParallelD4.Tape>;
