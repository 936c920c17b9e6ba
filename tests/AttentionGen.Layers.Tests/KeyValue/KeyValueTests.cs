using System;
using System.Collections.Generic;
using System.Linq;
using System.Numerics;
using System.Reflection;
using Xunit;

namespace AttentionGen.Layers.Tests.KeyValue;

/// <summary>The whole-sequence API every generated key-value layer has, so that one test class covers each configuration.</summary>
public interface IKeyValueLayer<T, TTape> : IAttentionLayer<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    int MaxDegreeOfParallelism { get; set; }
    void Forward(int batch, int length, ReadOnlySpan<T> input, Span<T> output, Span<T> weights);
    void Forward(TTape tape, int batch, int length, ReadOnlySpan<T> input, Span<T> output, Span<T> weights);
    void Backward(TTape tape, ReadOnlySpan<T> input, ReadOnlySpan<T> dOutput, Span<T> dInput);
}

[KeyValueAttention(Dim = 9, Window = 3)] public partial class KeyValueF9W3 : IKeyValueLayer<float, KeyValueF9W3.Tape>;
[KeyValueAttention(Dim = 16, Window = 5, Split = KeyValueSplit.KeyValuePredict)] public partial class KeyValuePredictF16W5 : IKeyValueLayer<float, KeyValuePredictF16W5.Tape>;
[KeyValueAttention(Dim = 5, Window = 2, ElementType = typeof(double))] public partial class KeyValueD5W2 : IKeyValueLayer<double, KeyValueD5W2.Tape>;
[KeyValueAttention(Dim = 4, Window = 3, Split = KeyValueSplit.KeyValuePredict, ElementType = typeof(double))] public partial class KeyValuePredictD4W3;

/// <summary>Daniluk et al. 2017 in plain double, from the equations, with steps before the start masked.</summary>
internal static class KeyValueReference
{
    public static double[] Forward(int batch, int length, int k, int window, int parts, double[] wy, double[] wh, double[] w, double[] wr, double[] wx, double[] input)
    {
        var output = new double[batch * length * k];
        double Part(int b, int t, int part, int i) => input[(b * length + t) * parts * k + part * k + i];
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < length; t++)
            {
                int first = Math.Max(0, t - window);
                var e = new List<double>();
                for (int s = first; s < t; s++)
                {
                    double score = 0;
                    for (int u = 0; u < k; u++)
                    {
                        double m = 0;
                        for (int i = 0; i < k; i++) m += wy[u * k + i] * Part(b, s, 0, i) + wh[u * k + i] * Part(b, t, 0, i);
                        score += w[u] * Math.Tanh(m);
                    }
                    e.Add(score);
                }
                var r = new double[k];
                if (e.Count > 0)
                {
                    double max = e.Max(), sum = e.Sum(x => Math.Exp(x - max));
                    for (int j = 0; j < e.Count; j++)
                        for (int i = 0; i < k; i++) r[i] += Math.Exp(e[j] - max) / sum * Part(b, first + j, 1, i);
                }
                int x = parts == 3 ? 2 : 1;
                for (int u = 0; u < k; u++)
                {
                    double pre = 0;
                    for (int i = 0; i < k; i++) pre += wr[u * k + i] * r[i] + wx[u * k + i] * Part(b, t, x, i);
                    output[(b * length + t) * k + u] = Math.Tanh(pre);
                }
            }
        }
        return output;
    }
}

public sealed class KeyValueTests
{
    private static double[] P<T>(IAttentionLayer<T> layer, string name) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => TestData.ToDouble(layer.Parameters.Single(p => p.Name == name).Value);

    private static double[] Reference<T>(IAttentionLayer<T> layer, int batch, int length, int k, int window, int parts, T[] input) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => KeyValueReference.Forward(batch, length, k, window, parts, P(layer, "memory_weight"), P(layer, "query_weight"), P(layer, "score_vector"), P(layer, "context_weight"), P(layer, "input_weight"), TestData.ToDouble(input));

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(2, 2, 7)]
    [InlineData(3, 3, 12)]
    public void Whole_sequences_match_the_paper(int seed, int batch, int length)
    {
        var random = new Random(seed);
        var kv = new KeyValueF9W3(seed);
        float[] input = TestData.Random<float>(random, batch * length * KeyValueF9W3.InputDim);
        var output = new float[batch * length * KeyValueF9W3.Dim];
        var weights = new float[batch * length * KeyValueF9W3.Window];
        kv.Forward(batch, length, input, output, weights);
        TestData.AssertClose<float>(Reference(kv, batch, length, 9, 3, 2, input), output, 1e-5, "output");
        // Step 0 attends nothing; step 1 only the first step, at the right end of its window row.
        Assert.All(weights.AsSpan(0, 3).ToArray(), a => Assert.Equal(0f, a));
        if (length > 1) Assert.Equal(1f, weights[3 + 2]);

        var predict = new KeyValuePredictF16W5(seed);
        float[] input3 = TestData.Random<float>(random, batch * length * KeyValuePredictF16W5.InputDim);
        var output3 = new float[batch * length * 16];
        predict.Forward(batch, length, input3, output3);
        TestData.AssertClose<float>(Reference(predict, batch, length, 16, 5, 3, input3), output3, 1e-5, "output (predict)");
    }

    [Fact]
    public void Stepping_over_a_rolling_window_gives_the_whole_sequence_numbers()
    {
        const int batch = 2, length = 11;
        var random = new Random(4);
        var layer = new KeyValuePredictF16W5(seed: 2);
        float[] input = TestData.Random<float>(random, batch * length * KeyValuePredictF16W5.InputDim);
        var whole = new float[batch * length * 16];
        var wholeWeights = new float[batch * length * 5];
        layer.Forward(batch, length, input, whole, wholeWeights);

        var state = new KeyValuePredictF16W5.WindowState();
        state.Reset(batch);
        var stepInput = new float[batch * KeyValuePredictF16W5.InputDim];
        var stepOutput = new float[batch * 16];
        var stepWeights = new float[batch * 5];
        for (int t = 0; t < length; t++)
        {
            for (int b = 0; b < batch; b++)
                input.AsSpan((b * length + t) * 48, 48).CopyTo(stepInput.AsSpan(b * 48, 48));
            layer.Step(state, stepInput, stepOutput, stepWeights);
            for (int b = 0; b < batch; b++)
            {
                Assert.Equal(whole.AsSpan((b * length + t) * 16, 16).ToArray(), stepOutput.AsSpan(b * 16, 16).ToArray());
                Assert.Equal(wholeWeights.AsSpan((b * length + t) * 5, 5).ToArray(), stepWeights.AsSpan(b * 5, 5).ToArray());
            }
        }
        Assert.Equal(length, state.Steps);
        Assert.Equal("state", Assert.Throws<ArgumentException>(() => layer.Step(new KeyValuePredictF16W5.WindowState(), stepInput, stepOutput)).ParamName);
    }

    [Theory]
    [InlineData(1, 1, 4)]
    [InlineData(2, 2, 6)]
    public void Backward_matches_central_finite_differences(int seed, int batch, int length)
    {
        CheckGradients(new KeyValueD5W2(seed), batch, length, KeyValueD5W2.InputDim, KeyValueD5W2.Dim, seed,
            (l, input, output) => l.Forward(batch, length, input, output),
            (l, tape, input, output) => l.Forward(tape, batch, length, input, output), () => new KeyValueD5W2.Tape(),
            (l, tape, input, dOutput, dInput) => l.Backward(tape, input, dOutput, dInput));
        CheckGradients(new KeyValuePredictD4W3(seed), batch, length, KeyValuePredictD4W3.InputDim, KeyValuePredictD4W3.Dim, seed,
            (l, input, output) => l.Forward(batch, length, input, output),
            (l, tape, input, output) => l.Forward(tape, batch, length, input, output), () => new KeyValuePredictD4W3.Tape(),
            (l, tape, input, dOutput, dInput) => l.Backward(tape, input, dOutput, dInput));
    }

    private static void CheckGradients<TLayer, TTape>(TLayer layer, int batch, int length, int inputDim, int dim, int seed,
        Action<TLayer, double[], double[]> forward, Action<TLayer, TTape, double[], double[]> train, Func<TTape> newTape, Action<TLayer, TTape, double[], double[], double[]> backward)
        where TLayer : IAttentionLayer<double>
    {
        var random = new Random(seed);
        foreach (Parameter<double> p in layer.Parameters) for (int i = 0; i < p.Length; i++) p.Value[i] += (random.NextDouble() - 0.5) * 0.5;
        double[] input = TestData.Random<double>(random, batch * length * inputDim);
        double[] dOutput = TestData.Random<double>(random, batch * length * dim);
        double Loss()
        {
            var output = new double[batch * length * dim];
            forward(layer, input, output);
            return output.Zip(dOutput, (o, g) => o * g).Sum();
        }
        TTape tape = newTape();
        train(layer, tape, input, new double[batch * length * dim]);
        layer.ZeroGradients();
        var dInput = new double[input.Length];
        backward(layer, tape, input, dOutput, dInput);
        var failures = new List<string>();

        void Compare(string name, double[] target, double[] analytic) => failures.AddRange(TestData.GradientFailures($"{typeof(TLayer).Name} {name}", Loss, target, analytic));
        Compare("dInput", input, dInput);
        foreach (Parameter<double> p in layer.Parameters) Compare(p.Name, p.Value, (double[])p.Gradient.Clone());
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }
}

/// <summary>
/// Threads in the whole-sequence calls: the sequences of both forwards and of the backward, and the backward's weight
/// gradients cut by their output rows, give the one-thread numbers bit for bit.
/// </summary>
public abstract class KeyValueThreadTests<TLayer, T, TTape>
    where TLayer : IKeyValueLayer<T, TTape>, new()
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    private static readonly int Dim = C("Dim"), Window = C("Window"), InputDim = C("InputDim");
    private static int C(string name) => (int)typeof(TLayer).GetField(name)!.GetRawConstantValue()!;

    // The generated layer's private ParallelWorkThreshold: calls with less work stay on the calling thread.
    private static readonly long ParallelWorkThreshold = (long)typeof(TLayer).GetField("ParallelWorkThreshold", BindingFlags.NonPublic | BindingFlags.Static)!.GetRawConstantValue()!;

    [Fact]
    public void Results_do_not_depend_on_the_thread_count()
    {
        // Enough sequences that every pass splits (the 4 B·T·k² multiply-adds of the projections alone exceed the threshold).
        const int length = 30;
        int batch = (int)Math.Max(6, 2 * ParallelWorkThreshold / (4L * length * Dim * Dim) + 1);
        var random = new Random(5);
        T[] input = TestData.Random<T>(random, batch * length * InputDim);
        T[] dOutput = TestData.Random<T>(random, batch * length * Dim);
        TLayer Create(int degree)
        {
            var layer = new TLayer();
            layer.ResetParameters(3);
            layer.MaxDegreeOfParallelism = degree;
            return layer;
        }
        var serial = Hardening.ResultsAgreeAcrossThreadCounts<T>(degree =>
        {
            TLayer layer = Create(degree);
            var inference = new T[batch * length * Dim];
            var weights = new T[batch * length * Window];
            layer.Forward(batch, length, input, inference, weights);
            var tape = new TTape();
            var output = new T[inference.Length];
            layer.Forward(tape, batch, length, input, output, default);
            var dInput = new T[input.Length];
            layer.Backward(tape, input, dOutput, dInput);
            return new[] { ("inference", inference), ("weights", weights), ("training output", output), ("dInput", dInput) }
                .Concat(layer.Parameters.Select(p => ($"d{p.Name}", (T[])p.Gradient.Clone()))).ToArray();
        });
        Assert.Equal(serial[0].Values, serial[2].Values); // the training forward gives the inference output
        Assert.All(serial.Skip(3), r => Assert.Contains(r.Values, x => x != T.Zero)); // ∂L/∂input and every parameter's gradient

        // The shape really splits on two threads: inference, the training forward and the backward each.
        TLayer split = Create(2);
        var splitOutput = new T[batch * length * Dim];
        var splitTape = new TTape();
        var splitDInput = new T[input.Length];
        Hardening.AssertSplits(() => split.Forward(batch, length, input, splitOutput, default), "inference");
        Hardening.AssertSplits(() => split.Forward(splitTape, batch, length, input, splitOutput, default), "training forward");
        Hardening.AssertSplits(() => split.Backward(splitTape, input, dOutput, splitDInput), "backward");
    }
}

public sealed class KeyValueF9W3ThreadTests : KeyValueThreadTests<KeyValueF9W3, float, KeyValueF9W3.Tape>;
public sealed class KeyValuePredictF16W5ThreadTests : KeyValueThreadTests<KeyValuePredictF16W5, float, KeyValuePredictF16W5.Tape>;
public sealed class KeyValueD5W2ThreadTests : KeyValueThreadTests<KeyValueD5W2, double, KeyValueD5W2.Tape>;
