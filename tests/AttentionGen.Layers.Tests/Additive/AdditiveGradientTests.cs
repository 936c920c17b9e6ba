using System;
using System.Collections.Generic;
using System.Linq;
using Xunit;

namespace AttentionGen.Layers.Tests.Additive;

/// <summary>
/// Backward against central finite differences in double: for L = Σ c ⊙ R + Σ a ⊙ S with random R and S,
/// every input gradient and every parameter gradient must match (L(x + h) − L(x − h)) / 2h to a norm-wise
/// relative error of 1e-6, with masks, a fully masked query, Tk = 1, and the keys serving as values.
/// </summary>
public abstract class AdditiveGradientTests<TLayer, TTape>
    where TLayer : IAdditiveLayer<double, TTape>, new()
    where TTape : AttentionTape, new()
{
    private static readonly int Dim = (int)typeof(TLayer).GetField("Dim")!.GetRawConstantValue()!;
    private static readonly int ValueDim = (int)typeof(TLayer).GetField("ValueDim")!.GetRawConstantValue()!;
    private const double Step = 1e-5;
    private const double MaxRelativeError = 1e-6;

    public static TheoryData<int, int, int, int, bool> Cases => new()
    {
        // seed, batch, Tq, Tk, keys as values
        { 1, 1, 1, 1, false },
        { 2, 2, 3, 4, false },
        { 3, 1, 2, 5, true },
        { 4, 2, 2, 3, true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Backward_matches_central_finite_differences(int seed, int batch, int tq, int tk, bool keysAsValues)
    {
        if (keysAsValues && ValueDim != Dim)
        {
            keysAsValues = false; // this layer cannot use its keys as values
        }
        var random = new Random(seed);
        var layer = new TLayer();
        layer.ResetParameters(seed);
        foreach (Parameter<double> parameter in layer.Parameters)
        {
            // Spread every parameter (the bias starts at zero) so every path carries gradient.
            for (int i = 0; i < parameter.Length; i++)
            {
                parameter.Value[i] += (random.NextDouble() - 0.5) * 0.4;
            }
        }
        double[] query = TestData.Random<double>(random, batch * tq * Dim);
        double[] keys = TestData.Random<double>(random, batch * tk * Dim);
        double[] values = keysAsValues ? Array.Empty<double>() : TestData.Random<double>(random, batch * tk * ValueDim);
        bool[] keyMask = TestData.Mask(random, batch * tk, 0.75);
        keyMask[0] = true;
        bool[] queryMask = Enumerable.Repeat(true, batch * tq * tk).ToArray();
        if (tq > 1)
        {
            for (int j = 0; j < tk; j++)
            {
                queryMask[(tq - 1) * tk + j] = false; // the last query of row 0 attends to nothing
            }
        }
        double[] upstreamContext = TestData.Random<double>(random, batch * tq * ValueDim);
        double[] upstreamWeights = TestData.Random<double>(random, batch * tq * tk);

        double Loss()
        {
            var context = new double[batch * tq * ValueDim];
            var weights = new double[batch * tq * tk];
            layer.Forward(batch, tq, tk, query, keys, values, context, weights, new AttentionMask { KeyPadding = keyMask, PerQuery = queryMask });
            double loss = 0;
            for (int i = 0; i < context.Length; i++) loss += context[i] * upstreamContext[i];
            for (int i = 0; i < weights.Length; i++) loss += weights[i] * upstreamWeights[i];
            return loss;
        }

        // Analytic gradients.
        var tape = new TTape();
        var forwardContext = new double[batch * tq * ValueDim];
        layer.Forward(tape, batch, tq, tk, query, keys, values, forwardContext, default, new AttentionMask { KeyPadding = keyMask, PerQuery = queryMask });
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

        // The fully masked query contributes nothing: its query gradient is exactly zero.
        if (tq > 1)
        {
            Assert.All(dQuery.AsSpan((tq - 1) * Dim, Dim).ToArray(), g => Assert.Equal(0.0, g));
        }
    }

    [Fact]
    public void Backward_accumulates_parameter_gradients_and_ZeroGradients_clears_them()
    {
        var random = new Random(5);
        var layer = new TLayer();
        double[] query = TestData.Random<double>(random, 2 * Dim);
        double[] keys = TestData.Random<double>(random, 3 * Dim);
        double[] values = TestData.Random<double>(random, 3 * ValueDim);
        double[] dContext = TestData.Random<double>(random, 2 * ValueDim);
        var tape = new TTape();
        layer.Forward(tape, 1, 2, 3, query, keys, values, new double[2 * ValueDim], default, default);
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
        Assert.Contains(once, g => g.Any(x => x != 0));
        layer.ZeroGradients();
        Assert.All(layer.Parameters, p => Assert.All(p.Gradient, g => Assert.Equal(0.0, g)));
    }

    [Fact]
    public void Backward_rejects_a_tape_without_a_forward_and_mismatched_lengths()
    {
        var layer = new TLayer();
        var tape = new TTape();
        var error = Assert.Throws<ArgumentException>(() => layer.Backward(tape, new double[Dim], new double[Dim], new double[ValueDim], new double[ValueDim], default, default, default, default));
        Assert.Equal("tape", error.ParamName);

        layer.Forward(tape, 1, 1, 2, new double[Dim], new double[2 * Dim], new double[2 * ValueDim], new double[ValueDim], default, default);
        var dQuery = Enumerable.Repeat(7.0, Dim).ToArray();
        error = Assert.Throws<ArgumentException>(() => layer.Backward(tape, new double[Dim], new double[2 * Dim], new double[2 * ValueDim], new double[ValueDim + 1], dQuery, default, default, default));
        Assert.Equal("dContext", error.ParamName);
        Assert.Contains($"{ValueDim + 1}", error.Message);
        Assert.All(dQuery, g => Assert.Equal(7.0, g));
    }
}

public sealed class AdditiveD1GradientTests : AdditiveGradientTests<AdditiveD1, AdditiveD1.Tape>;
public sealed class AdditiveD3GradientTests : AdditiveGradientTests<AdditiveD3, AdditiveD3.Tape>;
public sealed class AdditiveD7GradientTests : AdditiveGradientTests<AdditiveD7, AdditiveD7.Tape>;
public sealed class AdditiveD9GradientTests : AdditiveGradientTests<AdditiveD9, AdditiveD9.Tape>;
public sealed class AdditiveD17GradientTests : AdditiveGradientTests<AdditiveD17, AdditiveD17.Tape>;
public sealed class AdditiveD37GradientTests : AdditiveGradientTests<AdditiveD37, AdditiveD37.Tape>;
public sealed class AdditiveD37NoBiasGradientTests : AdditiveGradientTests<AdditiveD37NoBias, AdditiveD37NoBias.Tape>;
public sealed class AdditiveD12U37V5GradientTests : AdditiveGradientTests<AdditiveD12U37V5, AdditiveD12U37V5.Tape>;
public sealed class AdditiveD33U8GradientTests : AdditiveGradientTests<AdditiveD33U8, AdditiveD33U8.Tape>;

/// <summary>The float backward against the double backward of a layer with the same parameters and inputs.</summary>
public sealed class AdditiveFloatBackwardTests
{
    [Fact]
    public void Float_backward_matches_double_backward()
    {
        var random = new Random(21);
        var single = new AdditiveF37(seed: 4);
        var precise = new AdditiveD37(seed: 4);
        for (int p = 0; p < single.Parameters.Count; p++)
        {
            for (int i = 0; i < single.Parameters[p].Length; i++)
            {
                float value = single.Parameters[p].Value[i] + (float)((random.NextDouble() - 0.5) * 0.2);
                single.Parameters[p].Value[i] = value;
                precise.Parameters[p].Value[i] = value;
            }
        }
        const int batch = 2, tq = 3, tk = 6, dim = 37;
        float[] query = TestData.Random<float>(random, batch * tq * dim);
        float[] keys = TestData.Random<float>(random, batch * tk * dim);
        float[] dContext = TestData.Random<float>(random, batch * tq * dim);

        var singleTape = new AdditiveF37.Tape();
        var preciseTape = new AdditiveD37.Tape();
        single.Forward(singleTape, batch, tq, tk, query, keys, default, new float[batch * tq * dim]);
        precise.Forward(preciseTape, batch, tq, tk, TestData.ToDouble(query), TestData.ToDouble(keys), default, new double[batch * tq * dim]);
        var dQuery = new float[query.Length];
        var dKeys = new float[keys.Length];
        var dQueryPrecise = new double[query.Length];
        var dKeysPrecise = new double[keys.Length];
        single.Backward(singleTape, query, keys, default, dContext, dQuery, dKeys);
        precise.Backward(preciseTape, TestData.ToDouble(query), TestData.ToDouble(keys), default, TestData.ToDouble(dContext), dQueryPrecise, dKeysPrecise);

        Assert.True(TestData.RelativeError(TestData.ToDouble(dQuery), dQueryPrecise) < 1e-5);
        Assert.True(TestData.RelativeError(TestData.ToDouble(dKeys), dKeysPrecise) < 1e-5);
        for (int p = 0; p < single.Parameters.Count; p++)
        {
            double error = TestData.RelativeError(TestData.ToDouble(single.Parameters[p].Gradient), precise.Parameters[p].Gradient);
            Assert.True(error < 1e-5, $"{single.Parameters[p].Name}: {error:g3}");
        }
    }
}
