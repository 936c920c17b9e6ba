using System;
using System.Collections.Generic;
using System.Linq;
using System.Numerics;
using System.Reflection;
using Xunit;

namespace AttentionGen.Layers.Tests.Structured;

/// <summary>The generated structured self-attention layers' API.</summary>
public interface IStructuredLayer<T, TTape> : IAttentionLayer<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    int MaxDegreeOfParallelism { get; set; }
    T PenaltyCoefficient { get; set; }
    T Forward(int batch, int length, ReadOnlySpan<T> input, Span<T> output, Span<T> weights, ReadOnlySpan<bool> padding);
    T Forward(TTape tape, int batch, int length, ReadOnlySpan<T> input, Span<T> output, Span<T> weights, ReadOnlySpan<bool> padding);
    void Backward(TTape tape, ReadOnlySpan<T> input, ReadOnlySpan<T> dOutput, Span<T> dInput, ReadOnlySpan<T> dWeights);
}

[StructuredSelfAttention(Dim = 37, Units = 16, Hops = 4)] public partial class StructuredF37 : IStructuredLayer<float, StructuredF37.Tape>;
[StructuredSelfAttention(Dim = 8, Units = 9, Hops = 3, Penalty = PenaltyNorm.Frobenius)] public partial class StructuredF8Frobenius : IStructuredLayer<float, StructuredF8Frobenius.Tape>;
[StructuredSelfAttention(Dim = 7, Units = 5, Hops = 3, ElementType = typeof(double))] public partial class StructuredD7 : IStructuredLayer<double, StructuredD7.Tape>;
[StructuredSelfAttention(Dim = 5, Units = 6, Hops = 2, Penalty = PenaltyNorm.Frobenius, ElementType = typeof(double))] public partial class StructuredD5Frobenius : IStructuredLayer<double, StructuredD5Frobenius.Tape>;

/// <summary>Lin et al. 2017 in plain double: A = softmax(W_s2 tanh(W_s1 Hᵀ)), M = A H, P = ‖AAᵀ − I‖²_F (or its root + 1e-10).</summary>
internal static class StructuredReference
{
    public static (double[] M, double[] A, double Penalty) Forward(int batch, int length, int dim, int units, int hops, double[] ws1, double[] ws2, double[] input, bool[]? padding, bool squared)
    {
        var m = new double[batch * hops * dim];
        var a = new double[batch * hops * length];
        double penalty = 0;
        for (int b = 0; b < batch; b++)
        {
            var hidden = new double[length, units];
            for (int t = 0; t < length; t++)
                for (int u = 0; u < units; u++)
                {
                    double pre = 0;
                    for (int d = 0; d < dim; d++) pre += ws1[u * dim + d] * input[(b * length + t) * dim + d];
                    hidden[t, u] = Math.Tanh(pre);
                }
            for (int h = 0; h < hops; h++)
            {
                var e = new double[length];
                double max = double.NegativeInfinity;
                for (int t = 0; t < length; t++)
                {
                    if (padding is not null && !padding[b * length + t]) { e[t] = double.NegativeInfinity; continue; }
                    for (int u = 0; u < units; u++) e[t] += ws2[h * units + u] * hidden[t, u];
                    max = Math.Max(max, e[t]);
                }
                if (double.IsNegativeInfinity(max)) continue;
                double sum = 0;
                for (int t = 0; t < length; t++) sum += e[t] = double.IsNegativeInfinity(e[t]) ? 0 : Math.Exp(e[t] - max);
                for (int t = 0; t < length; t++)
                {
                    double w = a[(b * hops + h) * length + t] = e[t] / sum;
                    for (int d = 0; d < dim; d++) m[(b * hops + h) * dim + d] += w * input[(b * length + t) * dim + d];
                }
            }
            double norm = 0;
            for (int h = 0; h < hops; h++)
                for (int k = 0; k < hops; k++)
                {
                    double g = (h == k ? -1 : 0);
                    for (int t = 0; t < length; t++) g += a[(b * hops + h) * length + t] * a[(b * hops + k) * length + t];
                    norm += g * g;
                }
            penalty += squared ? norm : Math.Sqrt(norm + 1e-10);
        }
        return (m, a, penalty);
    }
}

public abstract class StructuredTests<TLayer, T, TTape>
    where TLayer : IStructuredLayer<T, TTape>, new()
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    private static readonly int Dim = C("Dim"), Units = C("Units"), Hops = C("Hops");
    private static int C(string name) => (int)typeof(TLayer).GetField(name)!.GetRawConstantValue()!;
    protected abstract bool Squared { get; }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(2, 3, 6)]
    [InlineData(3, 2, 17)]
    public void Forward_and_penalty_match_the_paper(int seed, int batch, int length)
    {
        var random = new Random(seed);
        var layer = new TLayer();
        layer.ResetParameters(seed);
        layer.PenaltyCoefficient = T.CreateTruncating(0.3);
        T[] input = TestData.Random<T>(random, batch * length * Dim);
        bool[] padding = TestData.Mask(random, batch * length, 0.75);
        padding[0] = true;
        var output = new T[batch * Hops * Dim];
        var weights = new T[batch * Hops * length];
        T penalty = layer.Forward(batch, length, input, output, weights, padding);
        var expected = StructuredReference.Forward(batch, length, Dim, Units, Hops,
            TestData.ToDouble(layer.Parameters[0].Value), TestData.ToDouble(layer.Parameters[1].Value), TestData.ToDouble(input), padding, Squared);
        double tolerance = typeof(T) == typeof(float) ? 1e-5 : 1e-12;
        TestData.AssertClose<T>(expected.A, weights, tolerance, "A");
        TestData.AssertClose<T>(expected.M, output, tolerance, "M");
        Assert.Equal(0.3 * expected.Penalty, double.CreateTruncating(penalty), typeof(T) == typeof(float) ? 4 : 10);
        layer.PenaltyCoefficient = T.Zero;
        Assert.Equal(T.Zero, layer.Forward(batch, length, input, output, weights, padding));
    }

    // The generated layer's private ParallelWorkThreshold: calls with less work stay on the calling thread.
    private static readonly long ParallelWorkThreshold = (long)typeof(TLayer).GetField("ParallelWorkThreshold", BindingFlags.NonPublic | BindingFlags.Static)!.GetRawConstantValue()!;

    [Fact]
    public void Results_do_not_depend_on_the_thread_count()
    {
        // Enough sequences that every pass splits (B·T·dₐ·D multiply-adds of H W_s1ᵀ alone exceed the threshold): the sequences
        // of both forwards (each with its penalty, summed in order) and of the backward, then ∂W_s1, ∂W_s2 and ∂H cut by their
        // output rows. With padding, an all-padding sequence, the penalty and the caller's ∂L/∂A.
        const int length = 24;
        int batch = (int)Math.Max(6, 2 * ParallelWorkThreshold / ((long)length * Units * Dim) + 1);
        var random = new Random(4);
        T[] input = TestData.Random<T>(random, batch * length * Dim);
        T[] dOutput = TestData.Random<T>(random, batch * Hops * Dim);
        T[] dWeights = TestData.Random<T>(random, batch * Hops * length);
        bool[] padding = TestData.Mask(random, batch * length, 0.8);
        for (int t = 0; t < length; t++) padding[length + t] = false; // sequence 1 is all padding
        TLayer Create(int degree)
        {
            var layer = new TLayer();
            layer.ResetParameters(2);
            layer.PenaltyCoefficient = T.CreateTruncating(0.3);
            layer.MaxDegreeOfParallelism = degree;
            return layer;
        }
        var serial = Hardening.ResultsAgreeAcrossThreadCounts<T>(degree =>
        {
            TLayer layer = Create(degree);
            var inference = new T[batch * Hops * Dim];
            var weights = new T[batch * Hops * length];
            T penalty = layer.Forward(batch, length, input, inference, weights, padding);
            var tape = new TTape();
            var output = new T[inference.Length];
            T trainingPenalty = layer.Forward(tape, batch, length, input, output, default, padding);
            var dInput = new T[input.Length];
            layer.Backward(tape, input, dOutput, dInput, dWeights);
            return new[] { ("inference", inference), ("weights", weights), ("training output", output), ("penalties", new[] { penalty, trainingPenalty }), ("dInput", dInput) }
                .Concat(layer.Parameters.Select(p => ($"d{p.Name}", (T[])p.Gradient.Clone()))).ToArray();
        });
        Assert.True(serial[3].Values[0] > T.Zero);
        Assert.All(serial.Skip(4), r => Assert.Contains(r.Values, x => x != T.Zero)); // ∂L/∂H and every parameter's gradient
        Assert.All(serial.Skip(4).SelectMany(r => r.Values), x => Assert.True(T.IsFinite(x)));

        // The shape really splits on two threads: inference, the training forward and the backward each.
        TLayer split = Create(2);
        var splitOutput = new T[batch * Hops * Dim];
        var splitTape = new TTape();
        var splitDInput = new T[input.Length];
        Hardening.AssertSplits(() => split.Forward(batch, length, input, splitOutput, default, padding), "inference");
        Hardening.AssertSplits(() => split.Forward(splitTape, batch, length, input, splitOutput, default, padding), "training forward");
        Hardening.AssertSplits(() => split.Backward(splitTape, input, dOutput, splitDInput, dWeights), "backward");
    }
}

public abstract class StructuredGradientTests<TLayer, TTape>
    where TLayer : IStructuredLayer<double, TTape>, new()
    where TTape : AttentionTape, new()
{
    private static readonly int Dim = (int)typeof(TLayer).GetField("Dim")!.GetRawConstantValue()!;
    private static readonly int Hops = (int)typeof(TLayer).GetField("Hops")!.GetRawConstantValue()!;

    [Theory]
    [InlineData(1, 1, 2, 0.0)]
    [InlineData(2, 2, 5, 0.7)]
    [InlineData(3, 3, 4, 1.3)]
    public void Backward_with_the_penalty_matches_central_finite_differences(int seed, int batch, int length, double coefficient)
    {
        var random = new Random(seed);
        var layer = new TLayer();
        layer.ResetParameters(seed);
        layer.PenaltyCoefficient = coefficient;
        double[] input = TestData.Random<double>(random, batch * length * Dim);
        bool[] padding = TestData.Mask(random, batch * length, 0.8);
        padding[0] = true;
        double[] dOutput = TestData.Random<double>(random, batch * Hops * Dim);
        double[] dWeights = TestData.Random<double>(random, batch * Hops * length);
        double Loss()
        {
            var output = new double[batch * Hops * Dim];
            var weights = new double[batch * Hops * length];
            double penalty = layer.Forward(batch, length, input, output, weights, padding);
            return penalty + output.Zip(dOutput, (o, g) => o * g).Sum() + weights.Zip(dWeights, (a, g) => a * g).Sum();
        }
        var tape = new TTape();
        layer.Forward(tape, batch, length, input, new double[batch * Hops * Dim], default, padding);
        layer.ZeroGradients();
        // ∂L/∂H is written, not added to: whatever the span held before must not show.
        var dInput = Enumerable.Repeat(double.NaN, input.Length).ToArray();
        layer.Backward(tape, input, dOutput, dInput, dWeights);
        var failures = new List<string>();

        void Compare(string name, double[] target, double[] analytic) => failures.AddRange(TestData.GradientFailures(name, Loss, target, analytic));
        Compare("dInput", input, dInput);
        foreach (Parameter<double> p in layer.Parameters) Compare(p.Name, p.Value, (double[])p.Gradient.Clone());
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }
}

public sealed class StructuredF37Tests : StructuredTests<StructuredF37, float, StructuredF37.Tape> { protected override bool Squared => true; }
public sealed class StructuredF8FrobeniusTests : StructuredTests<StructuredF8Frobenius, float, StructuredF8Frobenius.Tape> { protected override bool Squared => false; }
public sealed class StructuredD7Tests : StructuredTests<StructuredD7, double, StructuredD7.Tape> { protected override bool Squared => true; }
public sealed class StructuredD5FrobeniusTests : StructuredTests<StructuredD5Frobenius, double, StructuredD5Frobenius.Tape> { protected override bool Squared => false; }
public sealed class StructuredD7GradientTests : StructuredGradientTests<StructuredD7, StructuredD7.Tape>;
public sealed class StructuredD5FrobeniusGradientTests : StructuredGradientTests<StructuredD5Frobenius, StructuredD5Frobenius.Tape>;
