using System;
using System.Linq;
using System.Numerics;
using Xunit;

namespace AttentionGen.Layers.Tests.MultiHead;

/// <summary>
/// The float additive attention bias (PyTorch's float <c>attn_mask</c>): forward against the plain reference with the bias added
/// there by hand, for the shared [Tq, Tk] and the per-head [B, H, Tq, Tk] shapes, T across tile and block boundaries, combined
/// with key padding and causal masks; rows whose bias is −∞ wherever allowed; NaN confined to its row; the KV cache; the core;
/// thread invariance of forward and every gradient including ∂bias; bad lengths; no steady-state allocation.
/// </summary>
public abstract class MultiHeadBiasTests<TLayer, T, TTape, TCache>
    : MultiHeadFixture<TLayer, T, TTape, TCache>
    where TLayer : IMultiHeadLayer<T, TTape, TCache>, new()
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    // A bias of the given length with values in ±2 and about one entry in ten −∞ (a soft mask with hard holes).
    private static T[] RandomBias(Random random, int length)
    {
        T[] bias = TestData.Random<T>(random, length, 2);
        for (int x = 0; x < length; x++)
        {
            if (random.NextDouble() < 0.1) bias[x] = T.NegativeInfinity;
        }
        return bias;
    }

    // The reference's view of a bias: shared [Tq, Tk] or per head [B, H, Tq, Tk], decided by its length as the layer does.
    private static Func<int, int, int, int, double> BiasOf(T[] bias, int tq, int tk)
        => bias.Length == tq * tk
            ? (b, h, i, j) => double.CreateTruncating(bias[i * tk + j])
            : (b, h, i, j) => double.CreateTruncating(bias[((b * Heads + h) * tq + i) * tk + j]);

    private bool Allowed(int b, int i, int j, int tq, int tk, bool[]? keyPadding, bool causal)
        => (!(Causal || causal) || j <= i + tk - tq) && (keyPadding is null || keyPadding[b * tk + j]);

    public static TheoryData<int, int, int, int> Shapes => new()
    {
        { 1, 2, 1, 1 }, { 2, 2, 63, 64 }, { 3, 1, 64, 65 }, { 4, 2, 65, 130 }, { 5, 1, 130, 63 }, { 6, 2, 1, 130 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_with_a_bias_matches_the_reference_for_both_shapes_and_with_masks(int seed, int batch, int tq, int tk)
    {
        var random = new Random(seed);
        TLayer layer = CreateLayer(seed);
        MultiHeadReference reference = Reference(layer);
        T[] query = TestData.Random<T>(random, batch * tq * ModelDim);
        T[] keys = TestData.Random<T>(random, batch * tk * KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        var masks = new (bool[]? KeyPadding, bool Causal)[] { (null, false), (TestData.Mask(random, batch * tk, 0.7), false), (TestData.Mask(random, batch * tk, 0.8), true) };
        foreach (int length in new[] { tq * tk, batch * Heads * tq * tk })
        foreach (var (keyPadding, causal) in masks)
        {
            T[] bias = RandomBias(random, length);
            var mask = new AttentionMask { KeyPadding = keyPadding, Causal = causal };
            var (expectedOutput, expectedHeadWeights) = reference.Forward(batch, tq, tk, TestData.ToDouble(query), TestData.ToDouble(keys), TestData.ToDouble(values),
                (b, i, j) => Allowed(b, i, j, tq, tk, keyPadding, causal), BiasOf(bias, tq, tk));
            string what = $"(bias {length}, padding {keyPadding is not null}, causal {causal})";

            var output = new T[batch * tq * ModelDim];
            var averaged = new T[batch * tq * tk];
            layer.Forward(batch, tq, tk, query, keys, values, output, averaged, mask, true, bias);
            TestData.AssertClose<T>(expectedOutput, output, Tolerance, "output " + what);
            TestData.AssertClose<T>(reference.Average(expectedHeadWeights, batch, tq, tk), averaged, Tolerance, "averaged weights " + what);

            var perHead = new T[batch * Heads * tq * tk];
            var again = new T[output.Length];
            layer.Forward(batch, tq, tk, query, keys, values, again, perHead, mask, false, bias);
            TestData.AssertClose<T>(expectedHeadWeights, perHead, Tolerance, "per-head weights " + what);
            Assert.Equal(output, again);

            var trained = new T[output.Length];
            layer.Forward(new TTape(), batch, tq, tk, query, keys, values, trained, default, mask, true, bias);
            Assert.Equal(output, trained);
        }
    }

    [Fact]
    public void A_bias_of_minus_infinity_on_a_whole_row_gives_a_zero_head_output_and_zero_gradients()
    {
        var random = new Random(21);
        TLayer layer = CreateLayer(21);
        int batch = 2, tq = 5, tk = 70, row = 3;
        T[] query = TestData.Random<T>(random, batch * tq * ModelDim);
        T[] keys = TestData.Random<T>(random, batch * tk * KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        T[] bias = TestData.Random<T>(random, tq * tk);
        bias.AsSpan(row * tk, tk).Fill(T.NegativeInfinity);
        var tape = new TTape();
        var output = new T[batch * tq * ModelDim];
        var weights = new T[batch * tq * tk];
        layer.Forward(tape, batch, tq, tk, query, keys, values, output, weights, default, true, bias);
        T[] outputBias = layer.Parameters.FirstOrDefault(p => p.Name == "out_proj.bias")?.Value ?? new T[ModelDim];
        for (int b = 0; b < batch; b++)
        {
            Assert.Equal(outputBias, output.AsSpan((b * tq + row) * ModelDim, ModelDim).ToArray());
            Assert.All(weights.AsSpan((b * tq + row) * tk, tk).ToArray(), w => Assert.Equal(T.Zero, w));
        }
        Assert.All(output, o => Assert.True(T.IsFinite(o)));

        T[] dOutput = TestData.Random<T>(random, output.Length);
        var dQuery = new T[query.Length];
        var dKeys = new T[keys.Length];
        var dValues = new T[values.Length];
        var dBias = Enumerable.Repeat(T.CreateTruncating(9), tq * tk).ToArray();
        layer.Backward(tape, query, keys, values, dOutput, dQuery, dKeys, dValues, dBias);
        for (int b = 0; b < batch; b++)
        {
            Assert.All(dQuery.AsSpan((b * tq + row) * ModelDim, ModelDim).ToArray(), g => Assert.Equal(T.Zero, g));
        }
        Assert.All(dBias.AsSpan(row * tk, tk).ToArray(), g => Assert.Equal(T.Zero, g));
        Assert.All(dQuery.Concat(dKeys).Concat(dValues).Concat(dBias), g => Assert.True(T.IsFinite(g)));
        Assert.Contains(dBias, g => g != T.Zero); // the other rows do depend on the bias
    }

    [Fact]
    public void NaN_in_the_bias_stays_in_its_own_row()
    {
        var random = new Random(22);
        TLayer layer = CreateLayer(22);
        int batch = 2, tq = 40, tk = 70;
        T[] query = TestData.Random<T>(random, batch * tq * ModelDim);
        T[] keys = TestData.Random<T>(random, batch * tk * KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        T[] bias = TestData.Random<T>(random, batch * Heads * tq * tk);
        var clean = new T[batch * tq * ModelDim];
        layer.Forward(batch, tq, tk, query, keys, values, clean, default, default, true, bias);
        // Batch row 1, query 33 (second query block), head 0, key 66 (second tile); causally query 33 of 40 sees keys up to 63, so key 50.
        int poisonedRow = 1 * tq + 33;
        bias[((1 * Heads + 0) * tq + 33) * tk + (Causal ? 50 : 66)] = T.NaN;
        var output = new T[clean.Length];
        layer.Forward(batch, tq, tk, query, keys, values, output, default, default, true, bias);
        for (int r = 0; r < batch * tq; r++)
        {
            T[] got = output.AsSpan(r * ModelDim, ModelDim).ToArray();
            if (r == poisonedRow)
            {
                Assert.Contains(got, T.IsNaN);
            }
            else
            {
                Assert.Equal(clean.AsSpan(r * ModelDim, ModelDim).ToArray(), got);
            }
        }
    }

    [Fact]
    public void A_key_value_cache_with_a_bias_gives_the_full_computation()
    {
        var random = new Random(23);
        TLayer layer = CreateLayer(23);
        int batch = 2, length = 70;
        T[] inputs = TestData.Random<T>(random, batch * length * ModelDim);
        T[] keys = TestData.Random<T>(random, batch * length * KeyDim);
        T[] values = TestData.Random<T>(random, batch * length * ValueDim);
        T[] bias = RandomBias(random, length * length); // ALiBi-like: shared by batch rows and heads
        for (int t = 0; t < length; t++) bias[t * length] = T.Zero; // every query keeps key 0, so no row is empty
        var causalMask = new AttentionMask { Causal = true };
        var full = new T[batch * length * ModelDim];
        layer.Forward(batch, length, length, inputs, keys, values, full, default, causalMask, true, bias);

        TCache cache = CreateCache(batch, 1);
        var stepOutput = new T[batch * ModelDim];
        for (int t = 0; t < length; t++)
        {
            T[] Token(T[] source, int dim) => Enumerable.Range(0, batch).SelectMany(b => source.AsSpan((b * length + t) * dim, dim).ToArray()).ToArray();
            layer.Append(cache, 1, Token(keys, KeyDim), Token(values, ValueDim));
            // Query t's bias over the t + 1 cached keys: row t of the full bias, [Tq = 1, Tk = t + 1].
            layer.Forward(cache, 1, Token(inputs, ModelDim), stepOutput, default, causalMask, true, bias.AsSpan(t * length, t + 1));
            for (int b = 0; b < batch; b++)
            {
                Assert.Equal(full.AsSpan((b * length + t) * ModelDim, ModelDim).ToArray(), stepOutput.AsSpan(b * ModelDim, ModelDim).ToArray());
            }
        }

        // A prefilled cache with a per-head bias gives the full forward with the same bias.
        T[] perHead = RandomBias(random, batch * Heads * length * length);
        TCache prefilled = CreateCache(batch, 0);
        layer.Append(prefilled, length, keys, values);
        var decoded = new T[full.Length];
        var expected = new T[full.Length];
        layer.Forward(prefilled, length, inputs, decoded, default, default, true, perHead);
        layer.Forward(batch, length, length, inputs, keys, values, expected, default, default, true, perHead);
        Assert.Equal(expected, decoded);
    }

    [Theory]
    [InlineData(1, 2, 40, 61)]
    [InlineData(2, 1, 97, 97)]
    public void ScaledDotProductAttention_with_a_bias_matches_the_reference_core(int seed, int batch, int tq, int tk)
    {
        var random = new Random(seed);
        TLayer layer = CreateLayer(seed);
        T[] q = TestData.Random<T>(random, batch * Heads * tq * HeadDim);
        T[] k = TestData.Random<T>(random, batch * Heads * tk * HeadDim);
        T[] v = TestData.Random<T>(random, batch * Heads * tk * HeadDim);
        foreach (int length in new[] { tq * tk, batch * Heads * tq * tk })
        {
            T[] bias = RandomBias(random, length);
            Func<int, int, int, int, double> biasOf = BiasOf(bias, tq, tk);
            var output = new T[q.Length];
            layer.ScaledDotProductAttention(batch, tq, tk, q, k, v, output, default, bias);
            var expected = new double[q.Length];
            for (int head = 0; head < batch * Heads; head++)
            for (int i = 0; i < tq; i++)
            {
                var s = new double[tk];
                double max = double.NegativeInfinity;
                for (int j = 0; j < tk; j++)
                {
                    bool allowed = !Causal || j <= i + tk - tq;
                    double dot = 0;
                    for (int c = 0; c < HeadDim; c++) dot += double.CreateTruncating(q[(head * tq + i) * HeadDim + c]) * double.CreateTruncating(k[(head * tk + j) * HeadDim + c]);
                    s[j] = allowed ? dot / Math.Sqrt(HeadDim) + biasOf(head / Heads, head % Heads, i, j) : double.NegativeInfinity;
                    max = Math.Max(max, s[j]);
                }
                if (double.IsNegativeInfinity(max)) continue;
                double total = s.Sum(x => Math.Exp(x - max));
                for (int j = 0; j < tk; j++)
                for (int c = 0; c < HeadDim; c++)
                    expected[(head * tq + i) * HeadDim + c] += Math.Exp(s[j] - max) / total * double.CreateTruncating(v[(head * tk + j) * HeadDim + c]);
            }
            TestData.AssertClose<T>(expected, output, Tolerance, $"core output (bias {length})");
            var recorded = new T[q.Length];
            layer.ScaledDotProductAttention(new TTape(), batch, tq, tk, q, k, v, recorded, default, bias);
            Assert.Equal(output, recorded);
        }
    }

    [Fact]
    public void Results_and_every_gradient_with_a_bias_do_not_depend_on_the_thread_count()
    {
        var random = new Random(24);
        TLayer layer = CreateLayer(24);
        int batch = 3, tq = 70, tk = 90;
        T[] query = TestData.Random<T>(random, batch * tq * ModelDim);
        T[] keys = TestData.Random<T>(random, batch * tk * KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        T[] dOutput = TestData.Random<T>(random, batch * tq * ModelDim);
        bool[] padding = TestData.Mask(random, batch * tk, 0.8);
        foreach (int length in new[] { tq * tk, batch * Heads * tq * tk })
        {
            T[] bias = RandomBias(random, length);
            T[][] Run(int threads)
            {
                layer.MaxDegreeOfParallelism = threads;
                layer.ZeroGradients();
                var tape = new TTape();
                var output = new T[batch * tq * ModelDim];
                var weights = new T[batch * tq * tk];
                layer.Forward(tape, batch, tq, tk, query, keys, values, output, weights, AttentionMask.FromKeyPadding(padding), true, bias);
                var dQuery = new T[query.Length];
                var dKeys = new T[keys.Length];
                var dValues = new T[values.Length];
                var dBias = new T[length];
                layer.Backward(tape, query, keys, values, dOutput, dQuery, dKeys, dValues, dBias);

                // The core alone, on the projected shapes [B, H, T, d] (random data of those sizes).
                var coreTape = new TTape();
                var coreOutput = new T[batch * Heads * tq * HeadDim];
                var coreRandom = new Random(25);
                T[] q = TestData.Random<T>(coreRandom, coreOutput.Length), k = TestData.Random<T>(coreRandom, batch * Heads * tk * HeadDim), v = TestData.Random<T>(coreRandom, k.Length);
                layer.ScaledDotProductAttention(coreTape, batch, tq, tk, q, k, v, coreOutput, default, bias);
                T[] dq = new T[q.Length], dk = new T[k.Length], dv = new T[v.Length], dCoreBias = new T[length];
                layer.ScaledDotProductAttentionBackward(coreTape, TestData.Random<T>(coreRandom, coreOutput.Length), dq, dk, dv, dCoreBias);
                return new[] { output, weights, dQuery, dKeys, dValues, dBias, coreOutput, dq, dk, dv, dCoreBias }.Concat(layer.Parameters.Select(p => (T[])p.Gradient.Clone())).ToArray();
            }
            T[][] one = Run(1);
            Assert.Contains(one[5], g => g != T.Zero);
            foreach (int threads in new[] { 2, 3 })
            {
                T[][] many = Run(threads);
                for (int x = 0; x < one.Length; x++) Assert.Equal(one[x], many[x]);
            }
        }
    }

    [Fact]
    public void Inference_with_a_bias_allocates_nothing_in_steady_state_at_one_thread()
    {
        var random = new Random(26);
        TLayer layer = CreateLayer(26);
        layer.MaxDegreeOfParallelism = 1;
        int batch = 2, tq = 33, tk = 70;
        T[] query = TestData.Random<T>(random, batch * tq * ModelDim);
        T[] keys = TestData.Random<T>(random, batch * tk * KeyDim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        var output = new T[batch * tq * ModelDim];
        var weights = new T[batch * tq * tk];
        foreach (int length in new[] { tq * tk, batch * Heads * tq * tk })
        {
            T[] bias = RandomBias(random, length);
            Assert.Equal(0, Hardening.SteadyStateAllocation(() => layer.Forward(batch, tq, tk, query, keys, values, output, weights, default, true, bias)));
        }
    }

    [Fact]
    public void A_bias_of_the_wrong_length_throws_naming_it_before_any_output_is_written()
    {
        TLayer layer = CreateLayer(1);
        int batch = 2, tq = 3, tk = 4;
        var query = new T[batch * tq * ModelDim];
        var keys = new T[batch * tk * KeyDim];
        var values = new T[batch * tk * ValueDim];
        var output = Enumerable.Repeat(T.CreateTruncating(42), batch * tq * ModelDim).ToArray();
        var weights = Enumerable.Repeat(T.CreateTruncating(42), batch * tq * tk).ToArray();
        var bad = new T[tq * tk + 1];
        void Expect(string argument, Action call, params T[][] untouched)
        {
            var e = Assert.ThrowsAny<ArgumentException>(call);
            Assert.Equal(argument, e.ParamName);
            Assert.Contains($"{tq * tk}", e.Message);
            Assert.Contains($"{batch * Heads * tq * tk}", e.Message);
            foreach (T[] span in untouched) Assert.All(span, o => Assert.Equal(T.CreateTruncating(42), o));
        }
        Expect("attentionBias", () => layer.Forward(batch, tq, tk, query, keys, values, output, weights, default, true, bad), output, weights);
        Expect("attentionBias", () => layer.Forward(batch, tq, tk, query, keys, values, output, default, default, true, new T[batch * tq * tk]), output);
        var tape = new TTape();
        Expect("attentionBias", () => layer.Forward(tape, batch, tq, tk, query, keys, values, output, default, default, true, bad), output);
        Assert.False(tape.IsRecorded);
        TCache cache = CreateCache(batch, 4);
        layer.Append(cache, tk, keys, values);
        Expect("attentionBias", () => layer.Forward(cache, tq, query, output, default, default, true, bad), output);
        var coreOutput = Enumerable.Repeat(T.CreateTruncating(42), batch * Heads * tq * HeadDim).ToArray();
        T[] q = new T[coreOutput.Length], k = new T[batch * Heads * tk * HeadDim];
        Expect("attentionBias", () => layer.ScaledDotProductAttention(batch, tq, tk, q, k, k, coreOutput, default, bad), coreOutput);
        Expect("attentionBias", () => layer.ScaledDotProductAttention(new TTape(), batch, tq, tk, q, k, k, coreOutput, default, bad), coreOutput);

        // ∂bias of a wrong length: nothing written, no parameter gradient accumulated.
        layer.Forward(tape, batch, tq, tk, query, keys, values, new T[output.Length], default, default, true, new T[tq * tk]);
        layer.ZeroGradients();
        var dQuery = Enumerable.Repeat(T.CreateTruncating(42), query.Length).ToArray();
        Expect("dAttentionBias", () => layer.Backward(tape, query, keys, values, new T[output.Length], dQuery, default, default, bad), dQuery);
        Assert.All(layer.Parameters, p => Assert.All(p.Gradient, g => Assert.Equal(T.Zero, g)));
        var coreTape = new TTape();
        layer.ScaledDotProductAttention(coreTape, batch, tq, tk, q, k, k, new T[coreOutput.Length], default);
        var dq = Enumerable.Repeat(T.CreateTruncating(42), q.Length).ToArray();
        Expect("dAttentionBias", () => layer.ScaledDotProductAttentionBackward(coreTape, new T[q.Length], dq, new T[k.Length], new T[k.Length], bad), dq);
    }
}

public sealed class HeadsF16x2BiasTests : MultiHeadBiasTests<HeadsF16x2, float, HeadsF16x2.Tape, HeadsF16x2.KeyValueCache> { protected override bool Causal => false; }
public sealed class HeadsF120x6BiasTests : MultiHeadBiasTests<HeadsF120x6, float, HeadsF120x6.Tape, HeadsF120x6.KeyValueCache> { protected override bool Causal => false; }
public sealed class HeadsF64x4CausalBiasTests : MultiHeadBiasTests<HeadsF64x4Causal, float, HeadsF64x4Causal.Tape, HeadsF64x4Causal.KeyValueCache> { protected override bool Causal => true; }
public sealed class HeadsF12x3K7V5BiasTests : MultiHeadBiasTests<HeadsF12x3K7V5, float, HeadsF12x3K7V5.Tape, HeadsF12x3K7V5.KeyValueCache> { protected override bool Causal => false; }
public sealed class HeadsD6x2BiasTests : MultiHeadBiasTests<HeadsD6x2, double, HeadsD6x2.Tape, HeadsD6x2.KeyValueCache> { protected override bool Causal => false; }
public sealed class HeadsD8x4K5V3CausalBiasTests : MultiHeadBiasTests<HeadsD8x4K5V3Causal, double, HeadsD8x4K5V3Causal.Tape, HeadsD8x4K5V3Causal.KeyValueCache> { protected override bool Causal => true; }
