using System;
using System.Linq;
using Xunit;

namespace AttentionGen.Layers.Tests.Monotonic;

/// <summary>
/// Failure modes and extremes of [MonotonicAttention], plain and MoChA: concurrent inference (soft and hard) on one
/// instance, NaN confined to its batch row (and, by the recursion over queries, to the later queries of that row),
/// energies of ±1e4, denormals, Tk = 1 and Tk = 0, long sources without steady-state allocation, tape reuse across
/// lengths, overlapping outputs.
/// </summary>
public sealed class MonotonicHardeningTests
{
    private static (float[] Query, float[] Keys, float[] Values) Inputs(int seed, int batch, int tq, int tk, int dim, int valueDim)
    {
        var random = new Random(seed);
        return (TestData.Random<float>(random, batch * tq * dim), TestData.Random<float>(random, batch * tk * dim), TestData.Random<float>(random, batch * tk * valueDim));
    }

    private static void SetEnergyBias<T>(IAttentionLayer<T> layer, T value) where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
        => layer.Parameters.Single(p => p.Name == "energy_bias").Value[0] = value;

    [Fact]
    public void One_instance_serves_many_threads_with_the_serial_results()
    {
        const int batch = 2, tq = 3, tk = 7;
        var plain = new MonotonicF16U37V5 { MaxDegreeOfParallelism = 1 };
        plain.ResetParameters(3);
        SetEnergyBias(plain, 0f);
        var mocha = new MochaW3F16U37V5 { MaxDegreeOfParallelism = 1 };
        mocha.ResetParameters(4);
        SetEnergyBias(mocha, 0f);
        var inputs = Enumerable.Range(0, 24).Select(i => Inputs(100 + i, batch, tq, tk, 16, 5)).ToArray();
        int contextLength = batch * tq * 5, weightLength = batch * tq * tk;

        // soft: context then α (plain) or β (MoChA) in one output
        Hardening.ConcurrentRunsMatchSerial<float>(inputs.Length, contextLength + weightLength,
            (i, output) => plain.Forward(batch, tq, tk, inputs[i].Query, inputs[i].Keys, inputs[i].Values, output.AsSpan(0, contextLength), output.AsSpan(contextLength), default));
        Hardening.ConcurrentRunsMatchSerial<float>(inputs.Length, contextLength + weightLength,
            (i, output) => mocha.Forward(batch, tq, tk, inputs[i].Query, inputs[i].Keys, inputs[i].Values, output.AsSpan(0, contextLength), output.AsSpan(contextLength), default));
        // hard: context then the positions (as floats)
        Hardening.ConcurrentRunsMatchSerial<float>(inputs.Length, contextLength + batch * tq, (i, output) =>
        {
            var positions = new int[batch * tq];
            plain.ForwardHard(batch, tq, tk, inputs[i].Query, inputs[i].Keys, inputs[i].Values, output.AsSpan(0, contextLength), positions, default);
            for (int p = 0; p < positions.Length; p++) output[contextLength + p] = positions[p];
        });
        Hardening.ConcurrentRunsMatchSerial<float>(inputs.Length, contextLength + batch * tq, (i, output) =>
        {
            var positions = new int[batch * tq];
            mocha.ForwardHard(batch, tq, tk, inputs[i].Query, inputs[i].Keys, inputs[i].Values, output.AsSpan(0, contextLength), positions, default);
            for (int p = 0; p < positions.Length; p++) output[contextLength + p] = positions[p];
        });
    }

    private delegate void SoftForward(int batch, int tq, int tk, ReadOnlySpan<float> query, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, Span<float> context, Span<float> weights, AttentionMask mask);
    private delegate void HardForward(int batch, int tq, int tk, ReadOnlySpan<float> query, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, Span<float> context, Span<int> positions, AttentionMask mask);
    private delegate void TapeForward<TTape>(TTape tape, int batch, int tq, int tk, ReadOnlySpan<float> query, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, Span<float> context, Span<float> weights, AttentionMask mask, Random? noise);
    private delegate void TapeBackward<TTape>(TTape tape, ReadOnlySpan<float> query, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, ReadOnlySpan<float> dContext, Span<float> dQuery, Span<float> dKeys, Span<float> dValues, ReadOnlySpan<float> dWeights);

    private static void NaNStaysInItsRow(SoftForward forward, HardForward forwardHard, int dim, int valueDim)
    {
        const int batch = 3, tq = 3, tk = 5;
        var (query, keys, values) = Inputs(7, batch, tq, tk, dim, valueDim);
        var clean = new float[batch * tq * valueDim];
        var cleanWeights = new float[batch * tq * tk];
        forward(batch, tq, tk, query.AsSpan(), keys.AsSpan(), values.AsSpan(), clean.AsSpan(), cleanWeights.AsSpan(), default);
        var cleanPositions = new int[batch * tq];
        var cleanHard = new float[batch * tq * valueDim];
        forwardHard(batch, tq, tk, query.AsSpan(), keys.AsSpan(), values.AsSpan(), cleanHard.AsSpan(), cleanPositions.AsSpan(), default);

        float[] poisoned = (float[])query.Clone();
        poisoned[1 * dim + 2] = float.NaN;                                // batch row 0, query 1
        var context = new float[batch * tq * valueDim];
        var weights = new float[batch * tq * tk];
        forward(batch, tq, tk, poisoned.AsSpan(), keys.AsSpan(), values.AsSpan(), context.AsSpan(), weights.AsSpan(), default);
        // row 0: query 0 untouched; query 1's energies are NaN, so its alignment and context are NaN, and through αᵢ₋₁ so are query 2's.
        Assert.Equal(clean.AsSpan(0, valueDim).ToArray(), context.AsSpan(0, valueDim).ToArray());
        Assert.Equal(cleanWeights.AsSpan(0, tk).ToArray(), weights.AsSpan(0, tk).ToArray());
        Assert.All(context.AsSpan(valueDim, 2 * valueDim).ToArray(), c => Assert.True(float.IsNaN(c)));
        Assert.All(weights.AsSpan(tk, 2 * tk).ToArray(), a => Assert.True(float.IsNaN(a)));
        // rows 1 and 2: bit-identical
        Assert.Equal(clean.AsSpan(tq * valueDim).ToArray(), context.AsSpan(tq * valueDim).ToArray());
        Assert.Equal(cleanWeights.AsSpan(tq * tk).ToArray(), weights.AsSpan(tq * tk).ToArray());

        // hard: a NaN energy is p < 0.5, so query 1 attends nothing (−1, zero context), and so does every later query of the row.
        var positions = new int[batch * tq];
        var hard = new float[batch * tq * valueDim];
        forwardHard(batch, tq, tk, poisoned.AsSpan(), keys.AsSpan(), values.AsSpan(), hard.AsSpan(), positions.AsSpan(), default);
        Assert.Equal(cleanPositions[0], positions[0]);
        Assert.Equal(new[] { -1, -1 }, positions.AsSpan(1, 2).ToArray());
        Assert.All(hard.AsSpan(valueDim, 2 * valueDim).ToArray(), c => Assert.Equal(0f, c));
        Assert.Equal(cleanPositions.AsSpan(tq).ToArray(), positions.AsSpan(tq).ToArray());
        Assert.Equal(cleanHard.AsSpan(tq * valueDim).ToArray(), hard.AsSpan(tq * valueDim).ToArray());
        Assert.Equal(cleanHard.AsSpan(0, valueDim).ToArray(), hard.AsSpan(0, valueDim).ToArray());
    }

    [Fact]
    public void NaN_stays_in_its_batch_row_and_in_the_later_queries_of_that_row()
    {
        var plain = new MonotonicF16U37V5();
        plain.ResetParameters(5);
        SetEnergyBias(plain, 0.5f);
        NaNStaysInItsRow(plain.Forward, plain.ForwardHard, 16, 5);
        var mocha = new MochaW3F16U37V5();
        mocha.ResetParameters(6);
        SetEnergyBias(mocha, 0.5f);
        NaNStaysInItsRow(mocha.Forward, mocha.ForwardHard, 16, 5);
    }

    [Fact]
    public void An_infinite_key_saturates_tanh_and_the_row_stays_finite_and_equal_to_the_reference()
    {
        var layer = new MonotonicD5U9V3();
        layer.ResetParameters(2);
        const int tq = 3, tk = 4;
        var random = new Random(12);
        double[] query = TestData.Random<double>(random, tq * 5), keys = TestData.Random<double>(random, tk * 5), values = TestData.Random<double>(random, tk * 3);
        keys[1 * 5 + 2] = double.PositiveInfinity;
        var context = new double[tq * 3];
        var weights = new double[tq * tk];
        layer.Forward(1, tq, tk, query, keys, values, context, weights, default);
        Assert.All(context, c => Assert.True(double.IsFinite(c)));
        var expected = MonotonicReference.From(layer).Soft(1, tq, tk, query, keys, values);
        TestData.AssertClose<double>(expected.Weights, weights, 1e-12, "weights");
        TestData.AssertClose<double>(expected.Context, context, 1e-12, "context");
    }

    [Fact]
    public void Energies_of_ten_thousand_give_finite_alignments_with_rows_summing_to_at_most_one()
    {
        // Multiplicative energy with W = I: a query 100·e₀ against keys 100·sⱼ·e₀ gives eᵢⱼ = 1e4·sⱼ (+ r = 0).
        var layer = new MonotonicMulF33();
        var w = layer.Parameters.Single(p => p.Name == "key_weight").Value;
        Array.Clear(w);
        for (int d = 0; d < 33; d++) w[d * 33 + d] = 1f;
        SetEnergyBias(layer, 0f);
        const int tq = 3, tk = 6;
        float[] scales = { -1f, -0.9995f, 0.9999f, -1f, 1f, 0.9995f };
        var query = new float[tq * 33];
        for (int i = 0; i < tq; i++) query[i * 33] = 100f * (i == 1 ? -1f : 1f); // query 1 flips every sign
        var keys = new float[tk * 33];
        for (int j = 0; j < tk; j++) keys[j * 33] = 100f * scales[j];
        float[] values = TestData.Random<float>(new Random(3), tk * 33);
        var context = new float[tq * 33];
        var weights = new float[tq * tk];
        layer.Forward(1, tq, tk, query, keys, values, context, weights, default);
        Assert.All(context, c => Assert.True(float.IsFinite(c)));
        Assert.All(weights, a => Assert.True(float.IsFinite(a) && a >= 0 && a <= 1));
        for (int i = 0; i < tq; i++) Assert.True(weights.AsSpan(i * tk, tk).ToArray().Sum() <= 1f + 1e-6f);
        var expected = MonotonicReference.From(layer).Soft(1, tq, tk, TestData.ToDouble(query), TestData.ToDouble(keys), TestData.ToDouble(values));
        TestData.AssertClose<float>(expected.Weights, weights, 1e-6, "weights");
        TestData.AssertClose<float>(expected.Context, context, 1e-5, "context");
        // p saturates to exactly 0 or 1: query 0 stops at key 2 with all the mass; query 1 (signs flipped) at key 3; query 2 moves on from key 3 to key 4.
        Assert.Equal(new float[] { 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0 }, weights);

        // MoChA: monotonic and chunk energies of ±1e4 through v and v_c (tanh bounds each term by |vᵤ|).
        var mocha = new MochaW3F16U37V5();
        mocha.ResetParameters(9);
        SetEnergyBias(mocha, 0f);
        foreach (string name in new[] { "score_vector", "chunk_score_vector" })
        {
            var v = mocha.Parameters.Single(p => p.Name == name).Value;
            for (int u = 0; u < v.Length; u++) v[u] = (u % 2 == 0 ? 1e4f : -1e4f) / 37 * 2;
        }
        var (q, k, vals) = Inputs(21, 2, 4, 9, 16, 5);
        var beta = new float[2 * 4 * 9];
        var chunkContext = new float[2 * 4 * 5];
        mocha.Forward(2, 4, 9, q, k, vals, chunkContext, beta, default);
        Assert.All(chunkContext, c => Assert.True(float.IsFinite(c)));
        Assert.All(beta, a => Assert.True(float.IsFinite(a) && a >= 0 && a <= 1 + 1e-6f));
        // β spreads exactly each chunk's α: its row sums equal the α row sums of the monotonic reference (σ saturates without overflow in double).
        var alpha = MonotonicReference.From(mocha).Soft(2, 4, 9, TestData.ToDouble(q), TestData.ToDouble(k), TestData.ToDouble(vals)).Weights;
        double[] alphaSums = Enumerable.Range(0, 8).Select(r => alpha.AsSpan(r * 9, 9).ToArray().Sum()).ToArray();
        float[] betaSums = Enumerable.Range(0, 8).Select(r => beta.AsSpan(r * 9, 9).ToArray().Sum()).ToArray();
        TestData.AssertClose<float>(alphaSums, betaSums, 1e-5, "β row sums");
        Assert.All(betaSums, s => Assert.True(s <= 1f + 1e-6f, $"row sum {s}"));
    }

    [Fact]
    public void Denormal_inputs_give_the_reference_result()
    {
        var layer = new MonotonicD5U9V3();
        layer.ResetParameters(2);
        SetEnergyBias(layer, 0.0);
        const int tq = 3, tk = 4;
        double[] query = Enumerable.Range(0, tq * 5).Select(i => (i % 3 - 1) * 1e-310).ToArray();
        double[] keys = Enumerable.Range(0, tk * 5).Select(i => i % 2 == 0 ? 5e-320 : -3e-315).ToArray();
        double[] values = Enumerable.Range(0, tk * 3).Select(i => (i + 1) * 1e-311).ToArray();
        var context = new double[tq * 3];
        var weights = new double[tq * tk];
        layer.Forward(1, tq, tk, query, keys, values, context, weights, default);
        var expected = MonotonicReference.From(layer).Soft(1, tq, tk, query, keys, values);
        TestData.AssertClose<double>(expected.Weights, weights, 1e-12, "weights");
        Hardening.AssertRelative<double>(expected.Context, context, 1e-9, "context"); // denormal contexts, not flushed to zero
        Assert.All(context, c => Assert.True(c != 0 && double.IsSubnormal(c)));

        var mocha = new MochaW3D5U9V3();
        mocha.ResetParameters(3);
        SetEnergyBias(mocha, 0.0);
        var beta = new double[tq * tk];
        mocha.Forward(1, tq, tk, query, keys, values, context, beta, default);
        var expectedMocha = MochaReference.From(mocha).Soft(1, tq, tk, query, keys, values);
        TestData.AssertClose<double>(expectedMocha.Weights, beta, 1e-12, "β");
        Hardening.AssertRelative<double>(expectedMocha.Context, context, 1e-9, "MoChA context");
    }

    [Fact]
    public void A_single_key_gets_the_product_of_the_choose_probabilities_and_no_keys_is_an_argument_exception()
    {
        var layer = new MonotonicD7();
        layer.ResetParameters(8);
        SetEnergyBias(layer, 1.0);
        const int batch = 2, tq = 3;
        var random = new Random(9);
        double[] query = TestData.Random<double>(random, batch * tq * 7), keys = TestData.Random<double>(random, batch * 7), values = TestData.Random<double>(random, batch * 7);
        var context = new double[batch * tq * 7];
        var weights = new double[batch * tq];
        layer.Forward(batch, tq, 1, query, keys, values, context, weights, default);
        var reference = MonotonicReference.From(layer);
        for (int b = 0; b < batch; b++)
        {
            double alpha = 1; // α₀ = one-hot(0); with one key, αᵢ₀ = pᵢ₀ αᵢ₋₁,₀
            for (int i = 0; i < tq; i++)
            {
                alpha *= MonotonicReference.Sigmoid(reference.Energy(query.AsSpan((b * tq + i) * 7, 7), keys.AsSpan(b * 7, 7)));
                Assert.Equal(alpha, weights[b * tq + i], 1e-13);
                for (int v = 0; v < 7; v++) Assert.Equal(alpha * values[b * 7 + v], context[(b * tq + i) * 7 + v], 1e-13);
            }
        }
        // MoChA with one key: the chunk is that key alone, so β = α.
        var mocha = new MochaW3D5U9V3();
        mocha.ResetParameters(8);
        SetEnergyBias(mocha, 1.0);
        double[] q5 = TestData.Random<double>(random, batch * tq * 5), k5 = TestData.Random<double>(random, batch * 5), v3 = TestData.Random<double>(random, batch * 3);
        var beta = new double[batch * tq];
        mocha.Forward(batch, tq, 1, q5, k5, v3, new double[batch * tq * 3], beta, default);
        TestData.AssertClose<double>(MonotonicReference.From(mocha).Soft(batch, tq, 1, q5, k5, v3).Weights, beta, 1e-13, "β");

        var untouched = Enumerable.Repeat(7.0, batch * tq * 7).ToArray();
        var positions = Enumerable.Repeat(9, batch * tq).ToArray();
        Assert.Equal("keyLength", Assert.Throws<ArgumentException>(() => layer.Forward(batch, tq, 0, query, default, default, untouched, default, default)).ParamName);
        Assert.Equal("keyLength", Assert.Throws<ArgumentException>(() => layer.ForwardHard(batch, tq, 0, query, default, default, untouched, positions, default)).ParamName);
        Assert.Equal("keyLength", Assert.Throws<ArgumentException>(() => mocha.ForwardHard(batch, tq, 0, q5, default, default, untouched.AsSpan(0, batch * tq * 3), positions, default)).ParamName);
        Assert.All(untouched, c => Assert.Equal(7.0, c));
        Assert.All(positions, p => Assert.Equal(9, p));
    }

    [Fact]
    public void A_hundred_thousand_keys_decode_hard_without_steady_state_allocation()
    {
        // Multiplicative energy, r = −50: random keys never reach p ≥ 0.5; key 70 000 is set to give the query an energy of 100 − 50.
        var layer = new MonotonicMulF33 { MaxDegreeOfParallelism = 1 };
        layer.ResetParameters(4);
        SetEnergyBias(layer, -50f);
        const int tk = 100_000, dim = 33, chosen = 70_000;
        var random = new Random(4);
        float[] query = TestData.Random<float>(random, 2 * dim);
        query.AsSpan(0, dim).CopyTo(query.AsSpan(dim)); // both queries equal: the pointer stays at the chosen key
        float[] keys = TestData.Random<float>(random, tk * dim);
        float[] values = TestData.Random<float>(random, tk * dim);
        float[] w = layer.Parameters.Single(p => p.Name == "key_weight").Value;
        var direction = new double[dim]; // Wᵀq
        for (int o = 0; o < dim; o++)
            for (int c = 0; c < dim; c++) direction[c] += query[o] * w[o * dim + c];
        double norm2 = direction.Sum(x => x * x);
        for (int c = 0; c < dim; c++) keys[chosen * dim + c] = (float)(direction[c] * 100 / norm2);

        var context = new float[2 * dim];
        var positions = new int[2];
        long allocated = Hardening.SteadyStateAllocation(() => layer.ForwardHard(1, 2, tk, query, keys, values, context, positions, default));
        Assert.Equal(0, allocated);
        Assert.Equal(new[] { chosen, chosen }, positions);
        Assert.Equal(values.AsSpan(chosen * dim, dim).ToArray(), context.AsSpan(0, dim).ToArray());
        Assert.Equal(values.AsSpan(chosen * dim, dim).ToArray(), context.AsSpan(dim, dim).ToArray());

        // StepHard over precomputed projections: same pointer, no allocation.
        var projection = new float[tk * dim];
        layer.ProjectKeys(1, tk, keys, projection);
        var position = new int[1];
        var stepContext = new float[dim];
        allocated = Hardening.SteadyStateAllocation(() =>
        {
            position[0] = 0;
            layer.StepHard(1, tk, query.AsSpan(0, dim), projection, values, position, stepContext, default);
        });
        Assert.Equal(0, allocated);
        Assert.Equal(chosen, position[0]);
        Assert.Equal(values.AsSpan(chosen * dim, dim).ToArray(), stepContext);

        // MoChA hard decoding over 100 000 keys: no allocation either, and the reference's pointer.
        var mocha = new MochaW3F16U37V5 { MaxDegreeOfParallelism = 1 };
        mocha.ResetParameters(5);
        SetEnergyBias(mocha, -0.3f);
        var (mq, mk, mv) = Inputs(31, 1, 3, tk, 16, 5);
        var mochaContext = new float[3 * 5];
        var mochaPositions = new int[3];
        allocated = Hardening.SteadyStateAllocation(() => mocha.ForwardHard(1, 3, tk, mq, mk, mv, mochaContext, mochaPositions, default));
        Assert.Equal(0, allocated);
        Assert.All(mochaContext, c => Assert.True(float.IsFinite(c)));
        for (int i = 1; i < 3; i++) Assert.True(mochaPositions[i] >= mochaPositions[i - 1] || mochaPositions[i] == -1);
    }

    [Fact]
    public void A_few_thousand_keys_soft_forward_without_steady_state_allocation_equal_the_recursion()
    {
        var layer = new MonotonicF16U37V5 { MaxDegreeOfParallelism = 1 };
        layer.ResetParameters(6);
        SetEnergyBias(layer, -2f);
        const int tq = 3, tk = 3000;
        var (query, keys, values) = Inputs(41, 1, tq, tk, 16, 5);
        var context = new float[tq * 5];
        var weights = new float[tq * tk];
        long allocated = Hardening.SteadyStateAllocation(() => layer.Forward(1, tq, tk, query, keys, values, context, weights, default));
        Assert.Equal(0, allocated);
        // the paper's recursion in double: qⱼ = (1 − pⱼ₋₁) qⱼ₋₁ + αᵢ₋₁,ⱼ, αᵢⱼ = pⱼ qⱼ
        var reference = MonotonicReference.From(layer);
        var previous = new double[tk];
        previous[0] = 1;
        for (int i = 0; i < tq; i++)
        {
            var alpha = new double[tk];
            double carry = 0, lastP = 0;
            for (int j = 0; j < tk; j++)
            {
                double p = MonotonicReference.Sigmoid(reference.Energy(TestData.ToDouble(query).AsSpan(i * 16, 16), TestData.ToDouble(keys).AsSpan(j * 16, 16)));
                carry = (1 - lastP) * carry + previous[j];
                alpha[j] = p * carry;
                lastP = p;
            }
            TestData.AssertClose<float>(alpha, weights.AsSpan(i * tk, tk), 1e-5, $"α row {i}");
            Assert.True(weights.AsSpan(i * tk, tk).ToArray().Sum() <= 1f + 1e-5f);
            previous = alpha;
        }

        var mocha = new MochaW3F16U37V5 { MaxDegreeOfParallelism = 1 };
        mocha.ResetParameters(7);
        SetEnergyBias(mocha, -2f);
        var beta = new float[tq * tk];
        allocated = Hardening.SteadyStateAllocation(() => mocha.Forward(1, tq, tk, query, keys, values, context, beta, default));
        Assert.Equal(0, allocated);
        Assert.All(context, c => Assert.True(float.IsFinite(c)));
        for (int i = 0; i < tq; i++) Assert.True(beta.AsSpan(i * tk, tk).ToArray().Sum() <= 1f + 1e-5f);
    }

    private static void TapeReuse<TTape>(IAttentionLayer<float> layer, TapeForward<TTape> forward, TapeBackward<TTape> backward, int dim, int valueDim)
        where TTape : AttentionTape, new()
    {
        var reused = new TTape();
        foreach (var (batch, tq, tk) in new[] { (3, 4, 9), (1, 1, 2), (2, 5, 3), (3, 4, 9) })
        {
            var random = new Random(batch * 100 + tq * 10 + tk);
            float[] query = TestData.Random<float>(random, batch * tq * dim), keys = TestData.Random<float>(random, batch * tk * dim), values = TestData.Random<float>(random, batch * tk * valueDim);
            float[] dContext = TestData.Random<float>(random, batch * tq * valueDim);
            float[] Step(TTape tape)
            {
                layer.ZeroGradients();
                var context = new float[batch * tq * valueDim];
                var weights = new float[batch * tq * tk];
                forward(tape, batch, tq, tk, query.AsSpan(), keys.AsSpan(), values.AsSpan(), context.AsSpan(), weights.AsSpan(), default, null);
                var (dQuery, dKeys, dValues) = (new float[query.Length], new float[keys.Length], new float[values.Length]);
                backward(tape, query, keys, values, dContext, dQuery.AsSpan(), dKeys.AsSpan(), dValues.AsSpan(), default);
                return context.Concat(weights).Concat(dQuery).Concat(dKeys).Concat(dValues).Concat(layer.Parameters.SelectMany(p => p.Gradient)).ToArray();
            }
            Assert.Equal(Step(new TTape()), Step(reused));
        }
    }

    [Fact]
    public void A_tape_reused_across_lengths_gives_what_a_fresh_tape_gives()
    {
        var plain = new MonotonicF16U37V5();
        plain.ResetParameters(6);
        SetEnergyBias(plain, 0f);
        TapeReuse<MonotonicF16U37V5.Tape>(plain, plain.Forward, plain.Backward, 16, 5);
        var mocha = new MochaW3F16U37V5();
        mocha.ResetParameters(7);
        SetEnergyBias(mocha, 0f);
        TapeReuse<MochaW3F16U37V5.Tape>(mocha, mocha.Forward, mocha.Backward, 16, 5);
    }

    // Backward clears and adds into its gradient outputs while it still reads its inputs: an output that overlaps an input
    // is refused before anything is written (the inputs and the parameter gradients stay as they were).
    [Fact]
    public void Gradient_outputs_that_overlap_inputs_are_rejected_before_anything_is_written()
    {
        var layer = new MonotonicF7();
        var (query, keys, values) = Inputs(1, 1, 2, 3, 7, 7);
        var tape = new MonotonicF7.Tape();
        layer.Forward(tape, 1, 2, 3, query, keys, values, new float[2 * 7]);
        float[] dContext = TestData.Random<float>(new Random(2), 2 * 7);
        Hardening.GradientOutputsOverlappingInputsAreRejected(query, keys, values, dContext,
            (dQuery, dKeys, dValues) => layer.Backward(tape, query, keys, values, dContext, dQuery, dKeys, dValues), layer.Parameters);
    }

    [Fact]
    public void Outputs_that_overlap_inputs_or_each_other_are_rejected()
    {
        var layer = new MonotonicF7();
        var (query, keys, values) = Inputs(1, 1, 2, 3, 7, 7);
        float[] shared = new float[2 * 7 + 6];
        Assert.Equal("weights", Assert.Throws<ArgumentException>(() => layer.Forward(1, 2, 3, query, keys, values, shared.AsSpan(0, 2 * 7), shared.AsSpan(2 * 7 - 1, 6), default)).ParamName);
        Assert.Equal("context", Assert.Throws<ArgumentException>(() => layer.Forward(1, 2, 3, query, keys, values, values.AsSpan(0, 2 * 7), default, default)).ParamName);
        Assert.Equal("context", Assert.Throws<ArgumentException>(() => layer.Forward(1, 2, 3, query, keys, values, query.AsSpan(), default, default)).ParamName);
        Assert.Equal("context", Assert.Throws<ArgumentException>(() => layer.ForwardHard(1, 2, 3, query, keys, values, keys.AsSpan(0, 2 * 7), new int[2], default)).ParamName);
        var projection = new float[3 * 7];
        layer.ProjectKeys(1, 3, keys, projection);
        var alignment = new float[3 + 7];
        Assert.Throws<ArgumentException>(() => layer.Step(1, 3, query.AsSpan(0, 7), projection, values, new float[3], alignment.AsSpan(0, 3), alignment.AsSpan(2, 7), default));
        Assert.Throws<ArgumentException>(() => layer.StepHard(1, 3, query.AsSpan(0, 7), projection, values, new int[1], projection.AsSpan(0, 7), default));

        var mocha = new MochaW3F16U37V5();
        var (q, k, v) = Inputs(2, 1, 2, 3, 16, 5);
        Assert.Equal("context", Assert.Throws<ArgumentException>(() => mocha.Forward(1, 2, 3, q, k, v, v.AsSpan(0, 10), default, default)).ParamName);
        Assert.Equal("context", Assert.Throws<ArgumentException>(() => mocha.ForwardHard(1, 2, 3, q, k, v, q.AsSpan(0, 10), new int[2], default)).ParamName);
        float[] both = new float[10 + 6];
        Assert.Equal("weights", Assert.Throws<ArgumentException>(() => mocha.Forward(1, 2, 3, q, k, v, both.AsSpan(0, 10), both.AsSpan(9, 6), default)).ParamName);
    }
}
