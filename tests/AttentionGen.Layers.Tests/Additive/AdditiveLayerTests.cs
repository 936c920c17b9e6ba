using System;
using System.Linq;
using System.Numerics;
using Xunit;

namespace AttentionGen.Layers.Tests.Additive;

/// <summary>
/// The numeric contract of one generated additive layer: forward against the independent double reference,
/// every entry point agreeing, masks, bad input, extremes. Each declared layer gets a subclass (below), so
/// every compile-time dimension and every SIMD tail runs the same checks.
/// </summary>
public abstract class AdditiveLayerTests<TLayer, T, TTape>
    where TLayer : IAdditiveLayer<T, TTape>, new()
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    protected static readonly int Dim = Constant("Dim");
    protected static readonly int Units = Constant("Units");
    protected static readonly int ValueDim = Constant("ValueDim");
    protected static readonly double Tolerance = typeof(T) == typeof(float) ? 1e-5 : 1e-12;

    private static int Constant(string name) => (int)typeof(TLayer).GetField(name)!.GetRawConstantValue()!;

    protected static TLayer CreateLayer(int seed)
    {
        var layer = new TLayer();
        layer.ResetParameters(seed);
        // A non-zero bias, so that its path is exercised (it starts at zero).
        var random = new Random(seed + 1);
        foreach (Parameter<T> parameter in layer.Parameters.Where(p => p.Name == "score_bias"))
        {
            TestData.Random<T>(random, parameter.Length, 0.5).CopyTo(parameter.Value, 0);
        }
        return layer;
    }

    protected static double[]? Param(TLayer layer, string name)
    {
        Parameter<T>? parameter = layer.Parameters.FirstOrDefault(p => p.Name == name);
        return parameter is null ? null : TestData.ToDouble(parameter.Value);
    }

    protected static (double[] Context, double[] Weights) Reference(TLayer layer, int batch, int tq, int tk, T[] query, T[] keys, T[] values, bool[]? keyMask, bool[]? queryMask)
        => AdditiveReference.Forward(batch, tq, tk, Dim, Units, ValueDim,
            Param(layer, "query_weight")!, Param(layer, "key_weight")!, Param(layer, "score_bias"), Param(layer, "score_vector")!,
            TestData.ToDouble(query), TestData.ToDouble(keys), TestData.ToDouble(values),
            (b, i, j) => (keyMask is null || keyMask[b * tk + j]) && (queryMask is null || queryMask[(b * tq + i) * tk + j]));

    public static TheoryData<int, int, int, int> Shapes => new()
    {
        // seed, batch, Tq, Tk
        { 1, 1, 1, 1 },
        { 2, 1, 1, 16 },
        { 3, 2, 3, 5 },
        { 4, 3, 4, 9 },
        { 5, 2, 1, 33 },
        { 6, 37, 1, 3 }, // decoder steps: ForwardWithKeyProjection projects the queries 32 batch rows at a time, then the last 5
        { 7, 9, 5, 4 },  // 6 batch rows (30 queries) a group, then 3
        { 8, 2, 40, 3 }, // more than 32 queries a row: a group is one row
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_matches_the_scalar_reference(int seed, int batch, int tq, int tk)
    {
        var random = new Random(seed);
        TLayer layer = CreateLayer(seed);
        T[] query = TestData.Random<T>(random, batch * tq * Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * Dim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        var context = new T[batch * tq * ValueDim];
        var weights = new T[batch * tq * tk];

        layer.Forward(batch, tq, tk, query, keys, values, context, weights, default);

        var (expectedContext, expectedWeights) = Reference(layer, batch, tq, tk, query, keys, values, null, null);
        TestData.AssertClose<T>(expectedWeights, weights, Tolerance, "weights");
        TestData.AssertClose<T>(expectedContext, context, Tolerance, "context");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Masked_forward_matches_the_reference_and_a_fully_masked_query_is_zero(int seed, int batch, int tq, int tk)
    {
        var random = new Random(seed + 100);
        TLayer layer = CreateLayer(seed);
        T[] query = TestData.Random<T>(random, batch * tq * Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * Dim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        bool[] keyMask = TestData.Mask(random, batch * tk, 0.8);
        bool[] queryMask = TestData.Mask(random, batch * tq * tk, 0.8);
        // The last query of batch row 0 may attend to nothing.
        for (int j = 0; j < tk; j++)
        {
            queryMask[(tq - 1) * tk + j] = false;
        }
        var context = new T[batch * tq * ValueDim];
        var weights = new T[batch * tq * tk];

        layer.Forward(batch, tq, tk, query, keys, values, context, weights, new AttentionMask { KeyPadding = keyMask, PerQuery = queryMask });

        var (expectedContext, expectedWeights) = Reference(layer, batch, tq, tk, query, keys, values, keyMask, queryMask);
        TestData.AssertClose<T>(expectedWeights, weights, Tolerance, "weights");
        TestData.AssertClose<T>(expectedContext, context, Tolerance, "context");
        Assert.All(context.AsSpan((tq - 1) * ValueDim, ValueDim).ToArray(), c => Assert.Equal(T.Zero, c));
        Assert.All(weights.AsSpan((tq - 1) * tk, tk).ToArray(), a => Assert.Equal(T.Zero, a));
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Every_entry_point_gives_the_same_result(int seed, int batch, int tq, int tk)
    {
        var random = new Random(seed + 200);
        TLayer layer = CreateLayer(seed);
        T[] query = TestData.Random<T>(random, batch * tq * Dim);
        T[] keys = TestData.Random<T>(random, batch * tk * Dim);
        T[] values = TestData.Random<T>(random, batch * tk * ValueDim);
        bool[] keyMask = TestData.Mask(random, batch * tk, 0.7);
        var mask = AttentionMask.FromKeyPadding(keyMask);

        var inference = new T[batch * tq * ValueDim];
        layer.Forward(batch, tq, tk, query, keys, values, inference, default, mask);

        // Without a weights output (the layer then uses scratch for them).
        var training = new T[batch * tq * ValueDim];
        var tape = new TTape();
        layer.Forward(tape, batch, tq, tk, query, keys, values, training, default, mask);
        Assert.Equal(inference, training);

        var keyProjection = new T[batch * tk * Units];
        layer.ProjectKeys(batch, tk, keys, keyProjection);
        var projected = new T[batch * tq * ValueDim];
        layer.ForwardWithKeyProjection(batch, tq, tk, query, keyProjection, values, projected, default, mask);
        Assert.Equal(inference, projected);
    }

    [Fact]
    public void Keys_serve_as_values_when_values_are_empty()
    {
        if (ValueDim != Dim)
        {
            // Then the values are required: an empty span is an argument error naming 'values'.
            var layer1 = CreateLayer(3);
            var error = Assert.Throws<ArgumentException>(() => layer1.Forward(1, 1, 2, new T[Dim], new T[2 * Dim], default, new T[ValueDim], default, default));
            Assert.Equal("values", error.ParamName);
            return;
        }
        var random = new Random(9);
        TLayer layer = CreateLayer(9);
        T[] query = TestData.Random<T>(random, 2 * 3 * Dim);
        T[] keys = TestData.Random<T>(random, 2 * 4 * Dim);
        var implicitValues = new T[2 * 3 * ValueDim];
        var explicitValues = new T[2 * 3 * ValueDim];
        layer.Forward(2, 3, 4, query, keys, default, implicitValues, default, default);
        layer.Forward(2, 3, 4, query, keys, keys, explicitValues, default, default);
        Assert.Equal(explicitValues, implicitValues);
    }

    [Fact]
    public void Huge_logits_give_finite_results()
    {
        var random = new Random(11);
        TLayer layer = CreateLayer(11);
        // v scaled so that scores reach about ±1e4.
        foreach (Parameter<T> parameter in layer.Parameters.Where(p => p.Name == "score_vector"))
        {
            for (int u = 0; u < parameter.Length; u++)
            {
                parameter.Value[u] = T.CreateTruncating(1e4 / Units * (u % 2 == 0 ? 1 : -1));
            }
        }
        T[] query = TestData.Random<T>(random, 2 * Dim, 3);
        T[] keys = TestData.Random<T>(random, 5 * Dim, 3);
        T[] values = TestData.Random<T>(random, 5 * ValueDim);
        var context = new T[2 * ValueDim];
        var weights = new T[2 * 5];
        layer.Forward(1, 2, 5, query, keys, values, context, weights, default);
        Assert.All(context, c => Assert.True(T.IsFinite(c)));
        Assert.All(weights, a => Assert.True(T.IsFinite(a) && a >= T.Zero && a <= T.One));
        for (int i = 0; i < 2; i++)
        {
            double sum = 0;
            for (int j = 0; j < 5; j++)
            {
                sum += double.CreateTruncating(weights[i * 5 + j]);
            }
            Assert.Equal(1.0, sum, 5);
        }
    }

    [Fact]
    public void Wrong_lengths_throw_naming_the_argument_before_writing_output()
    {
        TLayer layer = CreateLayer(1);
        T sentinel = T.CreateTruncating(42);
        var context = Enumerable.Repeat(sentinel, 2 * 3 * ValueDim).ToArray();
        var weights = Enumerable.Repeat(sentinel, 2 * 3 * 4).ToArray();
        T[] query = new T[2 * 3 * Dim];
        T[] keys = new T[2 * 4 * Dim];
        T[] values = new T[2 * 4 * ValueDim];

        void Check(string argument, Action call)
        {
            var error = Assert.Throws<ArgumentException>(call);
            Assert.Equal(argument, error.ParamName);
            Assert.All(context, c => Assert.Equal(sentinel, c));
            Assert.All(weights, a => Assert.Equal(sentinel, a));
        }

        Check("query", () => layer.Forward(2, 3, 4, new T[query.Length - 1], keys, values, context, weights, default));
        Check("keys", () => layer.Forward(2, 3, 4, query, new T[keys.Length + Dim], values, context, weights, default));
        Check("values", () => layer.Forward(2, 3, 4, query, keys, new T[values.Length - 1], context, weights, default));
        Check("context", () => layer.Forward(2, 3, 4, query, keys, values, new T[context.Length + 1], weights, default));
        Check("weights", () => layer.Forward(2, 3, 4, query, keys, values, context, new T[5], default));
        Check("keyLength", () => layer.Forward(2, 3, 0, query, keys, values, context, weights, default));
        Check("mask.KeyPadding", () => layer.Forward(2, 3, 4, query, keys, values, context, weights, AttentionMask.FromKeyPadding(new bool[3])));
        Check("context", () => layer.Forward(2, 3, 4, query, keys, values, keys.AsSpan(0, context.Length), weights, default));
    }
}

public sealed class AdditiveF1Tests : AdditiveLayerTests<AdditiveF1, float, AdditiveF1.Tape>;
public sealed class AdditiveF3Tests : AdditiveLayerTests<AdditiveF3, float, AdditiveF3.Tape>;
public sealed class AdditiveF7Tests : AdditiveLayerTests<AdditiveF7, float, AdditiveF7.Tape>;
public sealed class AdditiveF8Tests : AdditiveLayerTests<AdditiveF8, float, AdditiveF8.Tape>;
public sealed class AdditiveF9Tests : AdditiveLayerTests<AdditiveF9, float, AdditiveF9.Tape>;
public sealed class AdditiveF15Tests : AdditiveLayerTests<AdditiveF15, float, AdditiveF15.Tape>;
public sealed class AdditiveF16Tests : AdditiveLayerTests<AdditiveF16, float, AdditiveF16.Tape>;
public sealed class AdditiveF17Tests : AdditiveLayerTests<AdditiveF17, float, AdditiveF17.Tape>;
public sealed class AdditiveF31Tests : AdditiveLayerTests<AdditiveF31, float, AdditiveF31.Tape>;
public sealed class AdditiveF33Tests : AdditiveLayerTests<AdditiveF33, float, AdditiveF33.Tape>;
public sealed class AdditiveF37Tests : AdditiveLayerTests<AdditiveF37, float, AdditiveF37.Tape>;
public sealed class AdditiveF64Tests : AdditiveLayerTests<AdditiveF64, float, AdditiveF64.Tape>;
public sealed class AdditiveF100Tests : AdditiveLayerTests<AdditiveF100, float, AdditiveF100.Tape>;
public sealed class AdditiveF128Tests : AdditiveLayerTests<AdditiveF128, float, AdditiveF128.Tape>;
public sealed class AdditiveF129Tests : AdditiveLayerTests<AdditiveF129, float, AdditiveF129.Tape>;
public sealed class AdditiveF12U37V5Tests : AdditiveLayerTests<AdditiveF12U37V5, float, AdditiveF12U37V5.Tape>;
public sealed class AdditiveF33U8NoBiasTests : AdditiveLayerTests<AdditiveF33U8NoBias, float, AdditiveF33U8NoBias.Tape>;
public sealed class AdditiveD1Tests : AdditiveLayerTests<AdditiveD1, double, AdditiveD1.Tape>;
public sealed class AdditiveD3Tests : AdditiveLayerTests<AdditiveD3, double, AdditiveD3.Tape>;
public sealed class AdditiveD7Tests : AdditiveLayerTests<AdditiveD7, double, AdditiveD7.Tape>;
public sealed class AdditiveD9Tests : AdditiveLayerTests<AdditiveD9, double, AdditiveD9.Tape>;
public sealed class AdditiveD17Tests : AdditiveLayerTests<AdditiveD17, double, AdditiveD17.Tape>;
public sealed class AdditiveD37Tests : AdditiveLayerTests<AdditiveD37, double, AdditiveD37.Tape>;
public sealed class AdditiveD37NoBiasTests : AdditiveLayerTests<AdditiveD37NoBias, double, AdditiveD37NoBias.Tape>;
public sealed class AdditiveD12U37V5Tests : AdditiveLayerTests<AdditiveD12U37V5, double, AdditiveD12U37V5.Tape>;
public sealed class AdditiveD33U8Tests : AdditiveLayerTests<AdditiveD33U8, double, AdditiveD33U8.Tape>;
