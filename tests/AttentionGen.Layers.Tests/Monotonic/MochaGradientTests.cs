using System;
using System.Collections.Generic;
using System.Linq;
using Xunit;

namespace AttentionGen.Layers.Tests.Monotonic;

/// <summary>
/// MoChA's backward against central finite differences in double: L = Σ c ⊙ R + Σ β ⊙ S with random R and S; every input
/// and parameter gradient (the chunk energy's included) to a norm-wise relative error of 1e-6, for w = 1, 2, 3 and w
/// larger than Tk, both energies and both alignment forms, with masks (a fully masked query among them), keys as values
/// and seeded noise.
/// </summary>
public abstract class MochaGradientTests<TLayer, TTape>
    where TLayer : IMochaLayer<double, TTape>, new()
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
        var layer = new TLayer();
        layer.ResetParameters(seed);
        var spread = new Random(seed + 300);
        foreach (Parameter<double> parameter in layer.Parameters)
        {
            for (int i = 0; i < parameter.Length; i++) parameter.Value[i] += (spread.NextDouble() - 0.5) * 0.8;
        }
        layer.Parameters.Single(p => p.Name == "energy_bias").Value[0] = 0.2;
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
        if (tk > 1 && (int)typeof(TLayer).GetField("ChunkSize")!.GetRawConstantValue()! > 1)
        {
            Assert.Contains(layer.Parameters.Single(p => p.Name == "chunk_key_weight").Gradient, g => g != 0); // u gets a gradient
        }
    }
}

public sealed class MochaW1D5U9V3GradientTests : MochaGradientTests<MochaW1D5U9V3, MochaW1D5U9V3.Tape>;
public sealed class MochaW2D5U9V3GradientTests : MochaGradientTests<MochaW2D5U9V3, MochaW2D5U9V3.Tape>;
public sealed class MochaW3D5U9V3GradientTests : MochaGradientTests<MochaW3D5U9V3, MochaW3D5U9V3.Tape>;
public sealed class MochaW12D4GradientTests : MochaGradientTests<MochaW12D4, MochaW12D4.Tape>;
public sealed class MochaMulParallelW2D6V4GradientTests : MochaGradientTests<MochaMulParallelW2D6V4, MochaMulParallelW2D6V4.Tape>;
public sealed class MochaNormW3D5U9V3GradientTests : MochaGradientTests<MochaNormW3D5U9V3, MochaNormW3D5U9V3.Tape>;

/// <summary>w = 1: every chunk is the attended key alone, so β = α (the plain monotonic alignment) and hard MoChA is hard monotonic attention.</summary>
public sealed class MochaChunkOfOneTests
{
    [Fact]
    public void With_w_1_beta_is_alpha_and_the_hard_context_is_the_attended_value()
    {
        var random = new Random(9);
        var layer = new MochaW1D5U9V3();
        layer.ResetParameters(9);
        layer.Parameters.Single(p => p.Name == "energy_bias").Value[0] = 0.4;
        const int batch = 2, tq = 4, tk = 6;
        double[] q = TestData.Random<double>(random, batch * tq * 5), k = TestData.Random<double>(random, batch * tk * 5), v = TestData.Random<double>(random, batch * tk * 3);
        var monotonic = MonotonicReference.From(layer);
        var (alpha, alphaContext) = monotonic.Soft(batch, tq, tk, q, k, v);
        var weights = new double[batch * tq * tk];
        var context = new double[batch * tq * 3];
        layer.Forward(batch, tq, tk, q, k, v, context, weights, default);
        TestData.AssertClose<double>(alpha, weights, 1e-13, "β = α");
        TestData.AssertClose<double>(alphaContext, context, 1e-13, "context");
        var (positions, hardContext) = monotonic.Hard(batch, tq, tk, q, k, v);
        var actual = new double[context.Length];
        var actualPositions = new int[batch * tq];
        layer.ForwardHard(batch, tq, tk, q, k, v, actual, actualPositions, default);
        Assert.Equal(positions, actualPositions);
        Assert.Equal(hardContext, actual); // a softmax over one key is exactly 1
    }
}

/// <summary>MoChA's batch rows spread over threads give bit-identical results to the calling thread alone, forward and backward.</summary>
public sealed class MochaThreadingTests
{
    [Fact]
    public void Results_do_not_depend_on_the_degree_of_parallelism()
    {
        const int batch = 16, tq = 16, tk = 32; // B·Tq·Tk·U = 303104 multiply-adds: above the split threshold
        var random = new Random(41);
        float[] query = TestData.Random<float>(random, batch * tq * 16);
        float[] keys = TestData.Random<float>(random, batch * tk * 16);
        float[] values = TestData.Random<float>(random, batch * tk * 5);
        float[] dContext = TestData.Random<float>(random, batch * tq * 5);
        float[] dWeights = TestData.Random<float>(random, batch * tq * tk);
        bool[] keyPadding = TestData.Mask(random, batch * tk, 0.9);

        (float[] Context, float[] Weights, float[] TrainedWeights, float[] DQuery, float[] DKeys, float[] DValues, float[][] Parameters) Run(int threads)
        {
            var layer = new MochaW3F16U37V5();
            layer.ResetParameters(7);
            layer.MaxDegreeOfParallelism = threads;
            var context = new float[batch * tq * 5];
            var weights = new float[batch * tq * tk];
            layer.Forward(batch, tq, tk, query, keys, values, context, weights, AttentionMask.FromKeyPadding(keyPadding));
            var tape = new MochaW3F16U37V5.Tape();
            var trainedWeights = new float[weights.Length];
            layer.Forward(tape, batch, tq, tk, query, keys, values, new float[context.Length], trainedWeights, AttentionMask.FromKeyPadding(keyPadding));
            var dQuery = new float[query.Length];
            var dKeys = new float[keys.Length];
            var dValues = new float[values.Length];
            layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues, dWeights);
            return (context, weights, trainedWeights, dQuery, dKeys, dValues, layer.Parameters.Select(p => p.Gradient).ToArray());
        }

        var one = Run(1);
        var two = Run(2);
        Assert.Equal(one.Context, two.Context);
        Assert.Equal(one.Weights, two.Weights);
        Assert.Equal(one.Weights, two.TrainedWeights);
        Assert.Equal(one.DQuery, two.DQuery);
        Assert.Equal(one.DKeys, two.DKeys);
        Assert.Equal(one.DValues, two.DValues);
        for (int p = 0; p < one.Parameters.Length; p++) Assert.Equal(one.Parameters[p], two.Parameters[p]);
        Assert.Contains(one.DQuery, g => g != 0);

        // On two threads inference and the training step really split, and in steady state allocate nothing on the calling thread.
        var split = new MochaW3F16U37V5();
        split.ResetParameters(7);
        split.MaxDegreeOfParallelism = 2;
        var splitTape = new MochaW3F16U37V5.Tape();
        var (splitContext, splitWeights) = (new float[batch * tq * 5], new float[batch * tq * tk]);
        var (splitDQuery, splitDKeys, splitDValues) = (new float[query.Length], new float[keys.Length], new float[values.Length]);
        Hardening.AssertSplits(() => split.Forward(batch, tq, tk, query, keys, values, splitContext, splitWeights, AttentionMask.FromKeyPadding(keyPadding)), "inference");
        Hardening.AssertSplits(() =>
        {
            split.Forward(splitTape, batch, tq, tk, query, keys, values, splitContext, splitWeights, AttentionMask.FromKeyPadding(keyPadding));
            split.Backward(splitTape, query, keys, values, dContext, splitDQuery, splitDKeys, splitDValues, dWeights);
        }, "training step");
    }
}
