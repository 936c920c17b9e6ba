using System;
using System.Linq;
using System.Numerics;
using Xunit;

namespace AttentionGen.Layers.Tests.MultiHead;

/// <summary>
/// Forward against the plain reference (T across tile boundaries, T = 1, padding, per-query and causal masks, fully masked
/// rows, weights averaged and per head), the attention core alone, the KV cache against the full computation, thread
/// invariance and bad input, for each declared layer.
/// </summary>
public abstract class MultiHeadTests<TLayer, T, TTape, TCache>
    : MultiHeadFixture<TLayer, T, TTape, TCache>
    where TLayer : IMultiHeadLayer<T, TTape, TCache>, new()
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    private bool Allowed(int b, int i, int j, int tq, int tk, bool[]? keyPadding, bool[]? perQuery, bool causal)
        => (!(Causal || causal) || j <= i + tk - tq)
           && (keyPadding is null || keyPadding[b * tk + j])
           && (perQuery is null || perQuery[(b * tq + i) * tk + j]);

    public static TheoryData<int, int, int, int> Shapes => new() { { 1, 1, 1, 1 }, { 2, 2, 3, 5 }, { 3, 1, 50, 50 }, { 4, 2, 33, 97 }, { 5, 1, 70, 49 } };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_matches_the_reference_with_every_kind_of_mask(int seed, int batch, int tq, int tk)
    {
        var random = new Random(seed);
        TLayer layer = CreateLayer(seed);
        MultiHeadReference reference = Reference(layer);
        T[] query = TestData.Random<T>(random, batch * tq * ModelDim);
        T[] keys = TestData.Random<T>(random, batch * tk * KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        var cases = new (bool[]? KeyPadding, bool[]? PerQuery, bool Causal)[]
        {
            (null, null, false),
            (TestData.Mask(random, batch * tk, 0.6), null, false),
            (null, TestData.Mask(random, batch * tq * tk, 0.5), false),
            (TestData.Mask(random, batch * tk, 0.7), null, true),
        };
        foreach (var (keyPadding, perQuery, causal) in cases)
        {
            var mask = new AttentionMask { KeyPadding = keyPadding, PerQuery = perQuery, Causal = causal };
            var (expectedOutput, expectedHeadWeights) = reference.Forward(batch, tq, tk, TestData.ToDouble(query), TestData.ToDouble(keys), TestData.ToDouble(values),
                (b, i, j) => Allowed(b, i, j, tq, tk, keyPadding, perQuery, causal));
            string what = $"(padding {keyPadding is not null}, per-query {perQuery is not null}, causal {causal})";

            var output = new T[batch * tq * ModelDim];
            var averaged = new T[batch * tq * tk];
            layer.Forward(batch, tq, tk, query, keys, values, output, averaged, mask, averageWeights: true);
            TestData.AssertClose<T>(expectedOutput, output, Tolerance, "output " + what);
            TestData.AssertClose<T>(reference.Average(expectedHeadWeights, batch, tq, tk), averaged, Tolerance, "averaged weights " + what);

            var perHead = new T[batch * Heads * tq * tk];
            var again = new T[output.Length];
            layer.Forward(batch, tq, tk, query, keys, values, again, perHead, mask, averageWeights: false);
            TestData.AssertClose<T>(expectedHeadWeights, perHead, Tolerance, "per-head weights " + what);
            Assert.Equal(output, again);

            var withoutWeights = new T[output.Length];
            layer.Forward(batch, tq, tk, query, keys, values, withoutWeights, default, mask, averageWeights: true);
            Assert.Equal(output, withoutWeights);

            var tape = new TTape();
            var trained = new T[output.Length];
            layer.Forward(tape, batch, tq, tk, query, keys, values, trained, default, mask, averageWeights: true);
            Assert.Equal(output, trained);
        }
    }

    [Fact]
    public void A_query_with_every_key_masked_gets_zero_weights_and_only_the_output_bias()
    {
        var random = new Random(7);
        TLayer layer = CreateLayer(7);
        int batch = 2, tq = 3, tk = 4;
        T[] query = TestData.Random<T>(random, batch * tq * ModelDim);
        T[] keys = TestData.Random<T>(random, batch * tk * KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        var padding = new bool[batch * tk];
        for (int j = 0; j < tk; j++) padding[tk + j] = true; // batch row 0: every key padded
        var output = new T[batch * tq * ModelDim];
        var weights = new T[batch * tq * tk];
        layer.Forward(batch, tq, tk, query, keys, values, output, weights, AttentionMask.FromKeyPadding(padding), averageWeights: true);
        T[] outputBias = layer.Parameters.FirstOrDefault(p => p.Name == "out_proj.bias")?.Value ?? new T[ModelDim];
        for (int i = 0; i < tq; i++)
        {
            Assert.Equal(outputBias, output.AsSpan(i * ModelDim, ModelDim).ToArray());
        }
        Assert.All(weights.AsSpan(0, tq * tk).ToArray(), w => Assert.Equal(T.Zero, w));
        Assert.All(output, o => Assert.True(T.IsFinite(o)));
    }

    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(2, 2, 40, 61)]
    [InlineData(3, 1, 97, 97)]
    public void ScaledDotProductAttention_matches_the_reference_core(int seed, int batch, int tq, int tk)
    {
        var random = new Random(seed);
        TLayer layer = CreateLayer(seed);
        T[] q = TestData.Random<T>(random, batch * Heads * tq * HeadDim);
        T[] k = TestData.Random<T>(random, batch * Heads * tk * HeadDim);
        T[] v = TestData.Random<T>(random, batch * Heads * tk * HeadDim);
        foreach (bool causal in new[] { false, true })
        {
            var output = new T[q.Length];
            layer.ScaledDotProductAttention(batch, tq, tk, q, k, v, output, new AttentionMask { Causal = causal });
            double[] expected = MultiHeadReference.Core(batch * Heads, tq, tk, HeadDim, TestData.ToDouble(q), TestData.ToDouble(k), TestData.ToDouble(v), causal || Causal);
            TestData.AssertClose<T>(expected, output, Tolerance, $"core output (causal {causal})");
            var recorded = new T[q.Length];
            layer.ScaledDotProductAttention(new TTape(), batch, tq, tk, q, k, v, recorded, new AttentionMask { Causal = causal });
            Assert.Equal(output, recorded);
        }
    }

    [Fact]
    public void A_key_value_cache_filled_token_by_token_gives_the_full_computation()
    {
        var random = new Random(11);
        TLayer layer = CreateLayer(11);
        int batch = 2, length = 70; // past one key tile and two query blocks
        T[] inputs = TestData.Random<T>(random, batch * length * ModelDim);
        T[] keys = TestData.Random<T>(random, batch * length * KeyDim);
        T[] values = TestData.Random<T>(random, batch * length * ValueDim);
        var causalMask = new AttentionMask { Causal = true };
        var full = new T[batch * length * ModelDim];
        layer.Forward(batch, length, length, inputs, keys, values, full, default, causalMask, averageWeights: true);

        TCache cache = CreateCache(batch, 1); // grows as tokens arrive
        var stepOutput = new T[batch * ModelDim];
        for (int t = 0; t < length; t++)
        {
            T[] Token(T[] source, int dim) => Enumerable.Range(0, batch).SelectMany(b => source.AsSpan((b * length + t) * dim, dim).ToArray()).ToArray();
            layer.Append(cache, 1, Token(keys, KeyDim), Token(values, ValueDim));
            layer.Forward(cache, 1, Token(inputs, ModelDim), stepOutput, default, causalMask, averageWeights: true);
            for (int b = 0; b < batch; b++)
            {
                Assert.Equal(full.AsSpan((b * length + t) * ModelDim, ModelDim).ToArray(), stepOutput.AsSpan(b * ModelDim, ModelDim).ToArray());
            }
        }

        // A prefilled cache (cross-attention: every key at once) gives the non-causal full forward exactly too.
        TCache prefilled = CreateCache(batch, 0);
        layer.Append(prefilled, length, keys, values);
        var decoded = new T[full.Length];
        var expected = new T[full.Length];
        var cacheWeights = new T[batch * length * length];
        var expectedWeights = new T[batch * length * length];
        layer.Forward(prefilled, length, inputs, decoded, cacheWeights, default, averageWeights: true);
        layer.Forward(batch, length, length, inputs, keys, values, expected, expectedWeights, default, averageWeights: true);
        if (!Causal)
        {
            Assert.Equal(expected, decoded);
            Assert.Equal(expectedWeights, cacheWeights);
        }
    }

    [Fact]
    public void The_result_does_not_depend_on_the_thread_count()
    {
        var random = new Random(5);
        TLayer layer = CreateLayer(5);
        int batch = 3, tq = 70, tk = 90;
        T[] query = TestData.Random<T>(random, batch * tq * ModelDim);
        T[] keys = TestData.Random<T>(random, batch * tk * KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        T[] dOutput = TestData.Random<T>(random, batch * tq * ModelDim);
        bool[] padding = TestData.Mask(random, batch * tk, 0.8);
        (T[] Output, T[] DQuery, T[] DKeys, T[] DValues, T[][] Gradients) Run(int threads)
        {
            layer.MaxDegreeOfParallelism = threads;
            layer.ZeroGradients();
            var tape = new TTape();
            var output = new T[batch * tq * ModelDim];
            layer.Forward(tape, batch, tq, tk, query, keys, values, output, default, AttentionMask.FromKeyPadding(padding), averageWeights: true);
            var dQuery = new T[query.Length];
            var dKeys = new T[keys.Length];
            var dValues = new T[values.Length];
            layer.Backward(tape, query, keys, values, dOutput, dQuery, dKeys, dValues);
            return (output, dQuery, dKeys, dValues, layer.Parameters.Select(p => (T[])p.Gradient.Clone()).ToArray());
        }
        var one = Run(1);
        foreach (int threads in new[] { 2, -1 })
        {
            var many = Run(threads);
            Assert.Equal(one.Output, many.Output);
            Assert.Equal(one.DQuery, many.DQuery);
            Assert.Equal(one.DKeys, many.DKeys);
            Assert.Equal(one.DValues, many.DValues);
            for (int p = 0; p < one.Gradients.Length; p++) Assert.Equal(one.Gradients[p], many.Gradients[p]);
        }
    }

    [Fact]
    public void Calls_split_over_threads_allocate_nothing_in_steady_state()
    {
        // B·Tq·Tk·ModelDim·2 passes the 2¹⁸ threshold for the smallest layer declared here (ModelDim 6).
        const int batch = 3, tq = 150, tk = 160;
        var random = new Random(19);
        T[] query = TestData.Random<T>(random, batch * tq * ModelDim);
        T[] keys = TestData.Random<T>(random, batch * tk * KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        T[] dOutput = TestData.Random<T>(random, batch * tq * ModelDim);
        TLayer layer = CreateLayer(19);
        layer.MaxDegreeOfParallelism = 2;
        var tape = new TTape();
        var output = new T[batch * tq * ModelDim];
        var (dQuery, dKeys, dValues) = (new T[query.Length], new T[keys.Length], new T[values.Length]);
        Hardening.AssertSplits(() => layer.Forward(batch, tq, tk, query, keys, values, output, default, default, averageWeights: true), "inference");
        Hardening.AssertSplits(() =>
        {
            layer.Forward(tape, batch, tq, tk, query, keys, values, output, default, default, averageWeights: true);
            layer.Backward(tape, query, keys, values, dOutput, dQuery, dKeys, dValues);
        }, "training step");

        // Decoding from a key-value cache holding every key.
        TCache cache = CreateCache(batch, tk);
        layer.Append(cache, tk, keys, values);
        Hardening.AssertSplits(() => layer.Forward(cache, tq, query, output, default, default, averageWeights: true), "decoding from the cache");
    }

    [Fact]
    public void Wrong_lengths_throw_naming_the_argument_before_any_output_is_written()
    {
        TLayer layer = CreateLayer(1);
        int batch = 2, tq = 3, tk = 4;
        var query = new T[batch * tq * ModelDim];
        var keys = new T[batch * tk * KeyDim];
        var values = new T[batch * tk * ValueDim];
        var output = Enumerable.Repeat(T.CreateTruncating(42), batch * tq * ModelDim).ToArray();
        void Expect(string argument, Action call)
        {
            var e = Assert.ThrowsAny<ArgumentException>(call);
            Assert.Equal(argument, e.ParamName);
            Assert.All(output, o => Assert.Equal(T.CreateTruncating(42), o));
        }
        Expect("query", () => layer.Forward(batch, tq, tk, query.AsSpan(1), keys, values, output, default, default, true));
        Expect("keys", () => layer.Forward(batch, tq, tk, query, keys.AsSpan(1), values, output, default, default, true));
        Expect("values", () => layer.Forward(batch, tq, tk, query, keys, values.AsSpan(1), output, default, default, true));
        Expect("output", () => layer.Forward(batch, tq, tk, query, keys, values, output.AsSpan(1), default, default, true));
        Expect("weights", () => layer.Forward(batch, tq, tk, query, keys, values, output, new T[batch * tq * tk], default, false));
        Expect("keyLength", () => layer.Forward(batch, tq, 0, query, keys.AsSpan(0, 0), values.AsSpan(0, 0), output, default, default, true));
        Expect("mask.KeyPadding", () => layer.Forward(batch, tq, tk, query, keys, values, output, default, AttentionMask.FromKeyPadding(new bool[3]), true));
        Expect("output", () => layer.Forward(batch, tq, tk, query, keys, values, query.AsSpan(0, output.Length), default, default, true));
        Expect("tape", () => layer.Backward(new TTape(), query, keys, values, output, default, default, default));
        var tape = new TTape();
        layer.Forward(tape, batch, tq, tk, query, keys, values, new T[output.Length], default, default, true);
        Expect("dOutput", () => layer.Backward(tape, query, keys, values, output.AsSpan(1), default, default, default));
        Expect("dKeys", () => layer.Backward(tape, query, keys, values, output, default, new T[1], default));
        TCache cache = CreateCache(batch, 4);
        Expect("cache", () => layer.Forward(cache, tq, query, output, default, default, true));
        Expect("keys", () => layer.Append(cache, 2, keys, values));
        Expect("batch", () => CreateCache(0, 4));
    }
}

public sealed class HeadsF16x2Tests : MultiHeadTests<HeadsF16x2, float, HeadsF16x2.Tape, HeadsF16x2.KeyValueCache> { protected override bool Causal => false; }
public sealed class HeadsF120x6Tests : MultiHeadTests<HeadsF120x6, float, HeadsF120x6.Tape, HeadsF120x6.KeyValueCache> { protected override bool Causal => false; }
public sealed class HeadsF64x4CausalTests : MultiHeadTests<HeadsF64x4Causal, float, HeadsF64x4Causal.Tape, HeadsF64x4Causal.KeyValueCache> { protected override bool Causal => true; }
public sealed class HeadsF12x3K7V5Tests : MultiHeadTests<HeadsF12x3K7V5, float, HeadsF12x3K7V5.Tape, HeadsF12x3K7V5.KeyValueCache> { protected override bool Causal => false; }
public sealed class HeadsF9x9NoBiasTests : MultiHeadTests<HeadsF9x9NoBias, float, HeadsF9x9NoBias.Tape, HeadsF9x9NoBias.KeyValueCache> { protected override bool Causal => false; }
public sealed class HeadsD6x2Tests : MultiHeadTests<HeadsD6x2, double, HeadsD6x2.Tape, HeadsD6x2.KeyValueCache> { protected override bool Causal => false; }
public sealed class HeadsD8x4K5V3CausalTests : MultiHeadTests<HeadsD8x4K5V3Causal, double, HeadsD8x4K5V3Causal.Tape, HeadsD8x4K5V3Causal.KeyValueCache> { protected override bool Causal => true; }
