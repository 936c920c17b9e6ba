using System;
using System.Collections.Generic;
using System.Linq;
using System.Numerics;
using System.Reflection;
using Xunit;

namespace AttentionGen.Layers.Tests.Static;

/// <summary>The generated static-attention (pooling) layers' API, implemented implicitly by each declared layer.</summary>
public interface IStaticLayer<T, TTape> : IAttentionLayer<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    int MaxDegreeOfParallelism { get; set; }
    void Forward(int batch, int length, ReadOnlySpan<T> input, Span<T> output, Span<T> weights, ReadOnlySpan<bool> padding);
    void Forward(TTape tape, int batch, int length, ReadOnlySpan<T> input, Span<T> output, Span<T> weights, ReadOnlySpan<bool> padding);
    void Backward(TTape tape, ReadOnlySpan<T> input, ReadOnlySpan<T> dOutput, Span<T> dInput, ReadOnlySpan<T> dWeights);
}

[StaticAttention(Dim = 100, Units = 100)] public partial class PoolingF100 : IStaticLayer<float, PoolingF100.Tape>;
[StaticAttention(Dim = 37, Units = 9)] public partial class PoolingF37U9 : IStaticLayer<float, PoolingF37U9.Tape>;
[StaticAttention(Dim = 3)] public partial class PoolingF3 : IStaticLayer<float, PoolingF3.Tape>;
[StaticAttention(Dim = 17, Units = 33)] public partial class PoolingF17U33 : IStaticLayer<float, PoolingF17U33.Tape>;
[StaticAttention(Dim = 7, Units = 5, ElementType = typeof(double))] public partial class PoolingD7U5 : IStaticLayer<double, PoolingD7U5.Tape>;
[StaticAttention(Dim = 9, Units = 17, ElementType = typeof(double))] public partial class PoolingD9U17 : IStaticLayer<double, PoolingD9U17.Tape>;

/// <summary>HAN attention pooling in plain double, from the paper: uₜ = tanh(W hₜ + b), αₜ = softmax(uₜᵀ u_w), s = Σ αₜ hₜ.</summary>
internal static class PoolingReference
{
    public static (double[] Output, double[] Weights) Forward(int batch, int length, int dim, int units, double[] w, double[] bias, double[] context, double[] input, bool[]? padding)
    {
        var output = new double[batch * dim];
        var weights = new double[batch * length];
        for (int b = 0; b < batch; b++)
        {
            var e = new double[length];
            double max = double.NegativeInfinity;
            for (int t = 0; t < length; t++)
            {
                if (padding is not null && !padding[b * length + t]) { e[t] = double.NegativeInfinity; continue; }
                for (int u = 0; u < units; u++)
                {
                    double pre = bias[u];
                    for (int d = 0; d < dim; d++) pre += w[u * dim + d] * input[(b * length + t) * dim + d];
                    e[t] += Math.Tanh(pre) * context[u];
                }
                max = Math.Max(max, e[t]);
            }
            if (double.IsNegativeInfinity(max)) continue;
            double sum = 0;
            for (int t = 0; t < length; t++) sum += e[t] = double.IsNegativeInfinity(e[t]) ? 0 : Math.Exp(e[t] - max);
            for (int t = 0; t < length; t++)
            {
                double a = weights[b * length + t] = e[t] / sum;
                for (int d = 0; d < dim; d++) output[b * dim + d] += a * input[(b * length + t) * dim + d];
            }
        }
        return (output, weights);
    }
}

public abstract class StaticTests<TLayer, T, TTape>
    where TLayer : IStaticLayer<T, TTape>, new()
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    private static readonly int Dim = (int)typeof(TLayer).GetField("Dim")!.GetRawConstantValue()!;
    private static readonly int Units = (int)typeof(TLayer).GetField("Units")!.GetRawConstantValue()!;
    private static readonly double Tolerance = typeof(T) == typeof(float) ? 1e-5 : 1e-12;

    private static TLayer Create(int seed)
    {
        var layer = new TLayer();
        layer.ResetParameters(seed);
        var random = new Random(seed);
        foreach (Parameter<T> p in layer.Parameters) for (int i = 0; i < p.Length; i++) p.Value[i] += T.CreateTruncating((random.NextDouble() - 0.5) * 0.3);
        return layer;
    }

    private static double[] P(TLayer layer, string name) => TestData.ToDouble(layer.Parameters.Single(p => p.Name == name).Value);

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(2, 3, 5)]
    [InlineData(3, 4, 33)]
    public void Forward_matches_the_paper_with_padding_and_an_all_padding_sequence(int seed, int batch, int length)
    {
        var random = new Random(seed);
        TLayer layer = Create(seed);
        T[] input = TestData.Random<T>(random, batch * length * Dim);
        bool[] padding = TestData.Mask(random, batch * length, 0.7);
        padding[0] = true;
        if (batch > 1) for (int t = 0; t < length; t++) padding[length + t] = false; // sequence 1 is all padding
        var output = new T[batch * Dim];
        var weights = new T[batch * length];
        layer.Forward(batch, length, input, output, weights, padding);
        var expected = PoolingReference.Forward(batch, length, Dim, Units, P(layer, "weight"), P(layer, "bias"), P(layer, "context_vector"), TestData.ToDouble(input), padding);
        TestData.AssertClose<T>(expected.Weights, weights, Tolerance, "weights");
        TestData.AssertClose<T>(expected.Output, output, Tolerance, "output");
        if (batch > 1) Assert.All(output.AsSpan(Dim, Dim).ToArray(), x => Assert.Equal(T.Zero, x));

        var training = new T[output.Length];
        layer.Forward(new TTape(), batch, length, input, training, default, padding);
        Assert.Equal(output, training);
    }

    // The generated layer's private ParallelWorkThreshold: calls with less work stay on the calling thread.
    private static readonly long ParallelWorkThreshold = (long)typeof(TLayer).GetField("ParallelWorkThreshold", BindingFlags.NonPublic | BindingFlags.Static)!.GetRawConstantValue()!;

    [Fact]
    public void Results_do_not_depend_on_the_thread_count()
    {
        // Enough sequences that forward and backward split (B·T·U·D multiply-adds over the threshold): the sequences of
        // both passes, and the backward's ∂W summed over fixed step ranges and ∂H cut by rows. With padding and an all-padding sequence.
        const int length = 40;
        int batch = (int)Math.Max(12, 2 * ParallelWorkThreshold / ((long)length * Units * Dim) + 1);
        var random = new Random(4);
        T[] input = TestData.Random<T>(random, batch * length * Dim);
        T[] dOutput = TestData.Random<T>(random, batch * Dim);
        T[] dWeights = TestData.Random<T>(random, batch * length);
        bool[] padding = TestData.Mask(random, batch * length, 0.8);
        for (int t = 0; t < length; t++) padding[length + t] = false; // sequence 1 is all padding
        (T[] Output, T[] DInput, T[] Gradients) Run(int degree)
        {
            TLayer layer = Create(2);
            layer.MaxDegreeOfParallelism = degree;
            var tape = new TTape();
            var output = new T[batch * Dim];
            layer.Forward(tape, batch, length, input, output, default, padding);
            var dInput = new T[input.Length];
            layer.Backward(tape, input, dOutput, dInput, dWeights);
            return (output, dInput, layer.Parameters.SelectMany(p => p.Gradient).ToArray());
        }
        var serial = Run(1);
        Assert.Contains(serial.DInput, x => x != T.Zero);
        Assert.Contains(serial.Gradients, x => x != T.Zero);
        foreach (int degree in new[] { 2, 3 })
        {
            var parallel = Run(degree);
            Assert.Equal(serial.Output, parallel.Output);
            Assert.Equal(serial.DInput, parallel.DInput);
            Assert.Equal(serial.Gradients, parallel.Gradients);
        }

        // On two threads inference and the training step really split, and in steady state allocate nothing on the calling thread.
        TLayer split = Create(2);
        split.MaxDegreeOfParallelism = 2;
        var splitTape = new TTape();
        var splitOutput = new T[batch * Dim];
        var splitDInput = new T[input.Length];
        Hardening.AssertSplits(() => split.Forward(batch, length, input, splitOutput, default, padding), "inference");
        Hardening.AssertSplits(() =>
        {
            split.Forward(splitTape, batch, length, input, splitOutput, default, padding);
            split.Backward(splitTape, input, dOutput, splitDInput, dWeights);
        }, "training step");
    }

    [Fact]
    public void Wrong_lengths_throw_naming_the_argument()
    {
        TLayer layer = Create(1);
        var output = new T[2 * Dim];
        Assert.Equal("input", Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, new T[6 * Dim - 1], output, default, default)).ParamName);
        Assert.Equal("padding", Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, new T[6 * Dim], output, default, new bool[5])).ParamName);
        Assert.Equal("length", Assert.Throws<ArgumentException>(() => layer.Forward(2, 0, default, output, default, default)).ParamName);
    }
}

public abstract class StaticGradientTests<TLayer, TTape>
    where TLayer : IStaticLayer<double, TTape>, new()
    where TTape : AttentionTape, new()
{
    private static readonly int Dim = (int)typeof(TLayer).GetField("Dim")!.GetRawConstantValue()!;

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(2, 2, 4)]
    [InlineData(3, 3, 6)]
    public void Backward_matches_central_finite_differences(int seed, int batch, int length)
    {
        var random = new Random(seed);
        var layer = new TLayer();
        layer.ResetParameters(seed);
        foreach (Parameter<double> p in layer.Parameters) for (int i = 0; i < p.Length; i++) p.Value[i] += (random.NextDouble() - 0.5) * 0.6;
        double[] input = TestData.Random<double>(random, batch * length * Dim);
        bool[] padding = TestData.Mask(random, batch * length, 0.75);
        padding[0] = true;
        double[] dOutput = TestData.Random<double>(random, batch * Dim);
        double[] dWeights = TestData.Random<double>(random, batch * length);
        double Loss()
        {
            var output = new double[batch * Dim];
            var weights = new double[batch * length];
            layer.Forward(batch, length, input, output, weights, padding);
            return output.Zip(dOutput, (o, g) => o * g).Sum() + weights.Zip(dWeights, (a, g) => a * g).Sum();
        }
        var tape = new TTape();
        layer.Forward(tape, batch, length, input, new double[batch * Dim], default, padding);
        layer.ZeroGradients();
        // ∂L/∂H is written, not added to: it starts as NaN, so an element the backward forgets (a padded step's) shows.
        double[] dInput = Enumerable.Repeat(double.NaN, input.Length).ToArray();
        layer.Backward(tape, input, dOutput, dInput, dWeights);

        var failures = new List<string>();

        void Compare(string name, double[] target, double[] analytic) => failures.AddRange(TestData.GradientFailures(name, Loss, target, analytic));
        Compare("dInput", input, dInput);
        foreach (Parameter<double> p in layer.Parameters) Compare(p.Name, p.Value, (double[])p.Gradient.Clone());
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }
}

public sealed class PoolingF100Tests : StaticTests<PoolingF100, float, PoolingF100.Tape>;
public sealed class PoolingF37U9Tests : StaticTests<PoolingF37U9, float, PoolingF37U9.Tape>;
public sealed class PoolingF3Tests : StaticTests<PoolingF3, float, PoolingF3.Tape>;
public sealed class PoolingF17U33Tests : StaticTests<PoolingF17U33, float, PoolingF17U33.Tape>;
public sealed class PoolingD7U5Tests : StaticTests<PoolingD7U5, double, PoolingD7U5.Tape>;
public sealed class PoolingD9U17Tests : StaticTests<PoolingD9U17, double, PoolingD9U17.Tape>;
public sealed class PoolingD7U5GradientTests : StaticGradientTests<PoolingD7U5, PoolingD7U5.Tape>;
public sealed class PoolingD9U17GradientTests : StaticGradientTests<PoolingD9U17, PoolingD9U17.Tape>;
