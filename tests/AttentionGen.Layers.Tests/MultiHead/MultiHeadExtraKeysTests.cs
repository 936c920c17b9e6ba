using System;
using System.Linq;
using System.Numerics;
using Xunit;

namespace AttentionGen.Layers.Tests.MultiHead;

/// <summary>
/// PyTorch's <c>add_bias_kv</c> and <c>add_zero_attn</c> (<c>AddBiasKeyValue</c>, <c>AddZeroAttention</c>): keys appended after the
/// given ones that every query sees. Forward and weights (with their extra columns) against the plain reference under every kind of
/// mask, queries with every given key masked, the KV cache, thread invariance, the attention core left alone, bad input. The
/// gradients of bias_k and bias_v are in the finite-difference classes (<see cref="MultiHeadGradientTests{TLayer, TTape, TCache}"/>).
/// </summary>
public abstract class MultiHeadExtraKeysTests<TLayer, T, TTape, TCache>
    : MultiHeadFixture<TLayer, T, TTape, TCache>
    where TLayer : IMultiHeadLayer<T, TTape, TCache>, new()
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    private static readonly int ExtraKeys = (int)typeof(TLayer).GetField("ExtraKeys")!.GetRawConstantValue()!;
    protected abstract bool ZeroKey { get; }

    private MultiHeadReference ReferenceWithExtras(TLayer layer)
    {
        MultiHeadReference reference = Reference(layer);
        reference.ZeroKey = ZeroKey;
        Assert.Equal(ExtraKeys, reference.ExtraKeys); // the declared options, as the reference reads them
        return reference;
    }

    private bool Allowed(int b, int i, int j, int tq, int tk, bool[]? keyPadding, bool causal)
        => (!(Causal || causal) || j <= i + tk - tq) && (keyPadding is null || keyPadding[b * tk + j]);

    public static TheoryData<int, int, int, int> Shapes => new() { { 1, 1, 1, 1 }, { 2, 2, 3, 5 }, { 3, 1, 50, 70 }, { 4, 2, 33, 97 }, { 5, 1, 40, 6 } };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_and_weights_match_the_reference_with_the_extra_keys_last(int seed, int batch, int tq, int tk)
    {
        var random = new Random(seed);
        TLayer layer = CreateLayer(seed);
        MultiHeadReference reference = ReferenceWithExtras(layer);
        T[] query = TestData.Random<T>(random, batch * tq * ModelDim);
        T[] keys = TestData.Random<T>(random, batch * tk * KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        int columns = tk + ExtraKeys;
        var cases = new (bool[]? KeyPadding, bool Causal, bool Biased)[]
        {
            (null, false, false),
            (TestData.Mask(random, batch * tk, 0.5), false, false),
            (TestData.Mask(random, batch * tk, 0.7), true, false),
            (null, false, true),
        };
        foreach (var (keyPadding, causal, biased) in cases)
        {
            var mask = new AttentionMask { KeyPadding = keyPadding, Causal = causal };
            // A float attn_mask [Tq, Tk] over the given keys; PyTorch pads it with zeros for the extra keys.
            double[] bias = biased ? Enumerable.Range(0, tq * tk).Select(_ => random.NextDouble() * 2 - 1).ToArray() : Array.Empty<double>();
            T[] attentionBias = bias.Select(T.CreateTruncating).ToArray();
            var (expectedOutput, expectedHeadWeights) = reference.Forward(batch, tq, tk, TestData.ToDouble(query), TestData.ToDouble(keys), TestData.ToDouble(values),
                (b, i, j) => Allowed(b, i, j, tq, tk, keyPadding, causal), biased ? (b, h, i, j) => bias[i * tk + j] : null);
            string what = $"(padding {keyPadding is not null}, causal {causal}, bias {biased})";

            var output = new T[batch * tq * ModelDim];
            var averaged = new T[batch * tq * columns];
            layer.Forward(batch, tq, tk, query, keys, values, output, averaged, mask, averageWeights: true, attentionBias);
            TestData.AssertClose<T>(expectedOutput, output, Tolerance, "output " + what);
            TestData.AssertClose<T>(reference.Average(expectedHeadWeights, batch, tq, columns), averaged, Tolerance, "averaged weights " + what);

            var perHead = new T[batch * Heads * tq * columns];
            var again = new T[output.Length];
            layer.Forward(batch, tq, tk, query, keys, values, again, perHead, mask, averageWeights: false, attentionBias);
            TestData.AssertClose<T>(expectedHeadWeights, perHead, Tolerance, "per-head weights " + what);
            Assert.Equal(output, again);

            var tape = new TTape();
            var trained = new T[output.Length];
            layer.Forward(tape, batch, tq, tk, query, keys, values, trained, default, mask, averageWeights: true, attentionBias);
            Assert.Equal(output, trained);
        }
    }

    // PyTorch's reason for add_zero_attn: a query whose every given key is masked still has keys to attend to (the extra ones),
    // so its weights are the extra keys' alone, they sum to 1, and its output is theirs.
    [Fact]
    public void A_query_with_every_given_key_masked_attends_to_the_extra_keys_only()
    {
        var random = new Random(9);
        TLayer layer = CreateLayer(9);
        MultiHeadReference reference = ReferenceWithExtras(layer);
        int batch = 2, tq = 3, tk = 4, columns = tk + ExtraKeys;
        T[] query = TestData.Random<T>(random, batch * tq * ModelDim);
        T[] keys = TestData.Random<T>(random, batch * tk * KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        var padding = new bool[batch * tk];
        for (int j = 0; j < tk; j++) padding[tk + j] = true; // batch row 0: every given key padded
        var output = new T[batch * tq * ModelDim];
        var weights = new T[batch * Heads * tq * columns];
        layer.Forward(batch, tq, tk, query, keys, values, output, weights, AttentionMask.FromKeyPadding(padding), averageWeights: false);
        var (expectedOutput, _) = reference.Forward(batch, tq, tk, TestData.ToDouble(query), TestData.ToDouble(keys), TestData.ToDouble(values), (b, i, j) => Allowed(b, i, j, tq, tk, padding, false));
        TestData.AssertClose<T>(expectedOutput, output, Tolerance, "output");
        for (int h = 0; h < Heads; h++)
        for (int i = 0; i < tq; i++)
        {
            Span<T> row = weights.AsSpan((h * tq + i) * columns, columns);
            Assert.All(row.Slice(0, tk).ToArray(), w => Assert.Equal(T.Zero, w));
            T extra = T.Zero;
            foreach (T w in row.Slice(tk)) extra += w;
            Assert.True(T.Abs(extra - T.One) <= T.CreateTruncating(Tolerance), $"head {h}, query {i}: the extra keys' weights sum to {extra}");
        }
        Assert.All(output, o => Assert.True(T.IsFinite(o)));
    }

    // The cache holds the given keys only; the extra keys join every decoding call as they join the full forward, so decoding
    // token by token gives the full causal forward's rows bit for bit.
    [Fact]
    public void Decoding_with_the_cache_gives_the_full_causal_forward_bit_for_bit()
    {
        var random = new Random(12);
        TLayer layer = CreateLayer(12);
        int batch = 2, length = 70;
        T[] x = TestData.Random<T>(random, batch * length * ModelDim);
        T[] keys = KeyDim == ModelDim ? x : TestData.Random<T>(random, batch * length * KeyDim);
        T[] values = ValueDim == ModelDim ? x : TestData.Random<T>(random, batch * length * ValueDim);
        var full = new T[batch * length * ModelDim];
        layer.Forward(batch, length, length, x, keys, values, full, default, new AttentionMask { Causal = true }, averageWeights: true);
        TCache cache = CreateCache(batch, 8);
        var step = new T[batch * ModelDim];
        for (int t = 0; t < length; t++)
        {
            T[] Token(T[] source, int dim) => Enumerable.Range(0, batch).SelectMany(b => source.AsSpan((b * length + t) * dim, dim).ToArray()).ToArray();
            layer.Append(cache, 1, Token(keys, KeyDim), Token(values, ValueDim));
            layer.Forward(cache, 1, Token(x, ModelDim), step, default, new AttentionMask { Causal = true }, averageWeights: true);
            for (int b = 0; b < batch; b++)
            {
                Assert.Equal(full.AsSpan((b * length + t) * ModelDim, ModelDim).ToArray(), step.AsSpan(b * ModelDim, ModelDim).ToArray());
            }
        }
    }

    [Fact]
    public void Results_and_gradients_do_not_depend_on_the_thread_count()
    {
        var random = new Random(13);
        int batch = 3, tq = 40, tk = 70;
        T[] query = TestData.Random<T>(random, batch * tq * ModelDim);
        T[] keys = TestData.Random<T>(random, batch * tk * KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        T[] upstream = TestData.Random<T>(random, batch * tq * ModelDim);
        (T[] Output, T[] Weights, T[] DQuery, T[][] ParameterGradients) Run(int threads)
        {
            TLayer layer = CreateLayer(13);
            layer.MaxDegreeOfParallelism = threads;
            var output = new T[batch * tq * ModelDim];
            var weights = new T[batch * tq * (tk + ExtraKeys)];
            var tape = new TTape();
            layer.Forward(tape, batch, tq, tk, query, keys, values, output, weights, default, averageWeights: true);
            var dQuery = new T[query.Length];
            layer.Backward(tape, query, keys, values, upstream, dQuery, default, default);
            return (output, weights, dQuery, layer.Parameters.Select(p => p.Gradient.ToArray()).ToArray());
        }
        var one = Run(1);
        foreach (int threads in new[] { 2, 3 })
        {
            var many = Run(threads);
            Assert.Equal(one.Output, many.Output);
            Assert.Equal(one.Weights, many.Weights);
            Assert.Equal(one.DQuery, many.DQuery);
            for (int p = 0; p < one.ParameterGradients.Length; p++) Assert.Equal(one.ParameterGradients[p], many.ParameterGradients[p]);
        }
    }

    // The weights have Tk + ExtraKeys columns: a span for Tk columns (the shape of a layer without extra keys) is refused before
    // anything is written.
    [Fact]
    public void Weights_without_the_extra_columns_are_refused_before_anything_is_written()
    {
        TLayer layer = CreateLayer(14);
        int batch = 2, tq = 3, tk = 5;
        var random = new Random(14);
        T[] query = TestData.Random<T>(random, batch * tq * ModelDim);
        T[] keys = TestData.Random<T>(random, batch * tk * KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        var output = new T[batch * tq * ModelDim];
        foreach (bool average in new[] { true, false })
        {
            var weights = new T[(average ? 1 : Heads) * batch * tq * tk];
            var exception = Assert.Throws<ArgumentException>(() => layer.Forward(batch, tq, tk, query, keys, values, output, weights, default, average));
            Assert.Equal("weights", exception.ParamName);
            Assert.Contains($"Tk + ExtraKeys={tk + ExtraKeys}", exception.Message);
            Assert.All(output, o => Assert.Equal(T.Zero, o));
            Assert.All(weights, w => Assert.Equal(T.Zero, w));
        }
    }

    // The attention core alone (scaled_dot_product_attention) has no extra keys: it is the plain core, as in a layer without them.
    [Fact]
    public void The_attention_core_alone_has_no_extra_keys()
    {
        var random = new Random(15);
        TLayer layer = CreateLayer(15);
        int batch = 2, tq = 5, tk = 7;
        T[] q = TestData.Random<T>(random, batch * Heads * tq * HeadDim);
        T[] k = TestData.Random<T>(random, batch * Heads * tk * HeadDim);
        T[] v = TestData.Random<T>(random, batch * Heads * tk * HeadDim);
        var output = new T[q.Length];
        layer.ScaledDotProductAttention(batch, tq, tk, q, k, v, output, default);
        double[] expected = MultiHeadReference.Core(batch * Heads, tq, tk, HeadDim, TestData.ToDouble(q), TestData.ToDouble(k), TestData.ToDouble(v), Causal);
        TestData.AssertClose<T>(expected, output, Tolerance, "core output");
    }

    [Fact]
    public void bias_k_and_bias_v_carry_PyTorch_names_and_shapes_in_its_state_dict_order()
    {
        var names = new TLayer().Parameters.Select(p => p.Name).ToArray();
        bool kv = names.Contains("bias_k");
        Assert.Equal(kv, ExtraKeys - (ZeroKey ? 1 : 0) == 1);
        if (kv)
        {
            var parameters = new TLayer().Parameters;
            Assert.Equal(new[] { 1, 1, ModelDim }, parameters.Single(p => p.Name == "bias_k").Shape.ToArray());
            Assert.Equal(new[] { 1, 1, ModelDim }, parameters.Single(p => p.Name == "bias_v").Shape.ToArray());
            // PyTorch registers bias_k and bias_v after in_proj_bias and before the out_proj submodule's parameters.
            Assert.Equal(Array.IndexOf(names, "bias_k") + 1, Array.IndexOf(names, "bias_v"));
            Assert.Equal(Array.IndexOf(names, "out_proj.weight") - 1, Array.IndexOf(names, "bias_v"));
        }
    }
}

public sealed class ExtraF16x2KvZeroTests : MultiHeadExtraKeysTests<ExtraF16x2KvZero, float, ExtraF16x2KvZero.Tape, ExtraF16x2KvZero.KeyValueCache> { protected override bool Causal => false; protected override bool ZeroKey => true; }
public sealed class ExtraF64x4CausalKvTests : MultiHeadExtraKeysTests<ExtraF64x4CausalKv, float, ExtraF64x4CausalKv.Tape, ExtraF64x4CausalKv.KeyValueCache> { protected override bool Causal => true; protected override bool ZeroKey => false; }
public sealed class ExtraD6x2KvZeroTests : MultiHeadExtraKeysTests<ExtraD6x2KvZero, double, ExtraD6x2KvZero.Tape, ExtraD6x2KvZero.KeyValueCache> { protected override bool Causal => false; protected override bool ZeroKey => true; }
public sealed class ExtraD8x4K5V3CausalKvTests : MultiHeadExtraKeysTests<ExtraD8x4K5V3CausalKv, double, ExtraD8x4K5V3CausalKv.Tape, ExtraD8x4K5V3CausalKv.KeyValueCache> { protected override bool Causal => true; protected override bool ZeroKey => false; }
public sealed class ExtraD6x3NoBiasZeroTests : MultiHeadExtraKeysTests<ExtraD6x3NoBiasZero, double, ExtraD6x3NoBiasZero.Tape, ExtraD6x3NoBiasZero.KeyValueCache> { protected override bool Causal => false; protected override bool ZeroKey => true; }

public sealed class ExtraD6x2KvZeroGradientTests : MultiHeadGradientTests<ExtraD6x2KvZero, ExtraD6x2KvZero.Tape, ExtraD6x2KvZero.KeyValueCache>;
public sealed class ExtraD8x4K5V3CausalKvGradientTests : MultiHeadGradientTests<ExtraD8x4K5V3CausalKv, ExtraD8x4K5V3CausalKv.Tape, ExtraD8x4K5V3CausalKv.KeyValueCache>;
public sealed class ExtraD6x3NoBiasZeroGradientTests : MultiHeadGradientTests<ExtraD6x3NoBiasZero, ExtraD6x3NoBiasZero.Tape, ExtraD6x3NoBiasZero.KeyValueCache>;
