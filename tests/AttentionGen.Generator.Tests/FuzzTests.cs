using System;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.Loader;
using CsCheck;
using Microsoft.CodeAnalysis;
using Xunit;
using Xunit.Abstractions;

namespace AttentionGen.Generator.Tests;

/// <summary>
/// Property-based fuzzing of the generator with CsCheck: random attribute configurations (legal and illegal,
/// literal and constant-expression values) in random declaration shapes, run through the real generator and
/// compiler. Legal ones compile without warnings and their forward matches a scalar reference; illegal ones give
/// their documented diagnostic and no source; the generator never throws (no ATTN9999).
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    private static readonly string[] s_shapes =
    {
        "namespace Fuzz.Space;\n{0}\npublic partial class Layer;",
        "namespace Fuzz.Space {{ {0} internal sealed partial class Layer {{ }} }}",
        "{0}\npublic partial class Layer;",
        "namespace Fuzz.Space; public partial class Outer {{ public partial record Inner {{ {0} public partial class Layer; }} }}",
        "namespace Fuzz.Space; {0} public partial record Layer;",
        "namespace Fuzz.Space; {0} public partial class Layer {{ public int Own => 1; }}\npublic partial class Layer {{ public int More => 2; }}",
    };

    private sealed record Config(int Dim, int Units, int ValueDim, bool UseBias, bool Double, bool AsExpression, int Shape)
    {
        public bool Legal => Dim is >= 1 and <= 65536 && Units is >= 1 and <= 65536 && ValueDim is >= 1 and <= 65536;

        public string Attribute()
        {
            string Value(int v) => AsExpression && v > 2 && v % 2 == 0 ? $"2 * {v / 2}" : AsExpression ? $"Sizes.Of{Math.Abs(v)}" .Replace("Of", v < 0 ? "Minus" : "Of") : v.ToString();
            return $"[AdditiveAttention(Dim = {Value(Dim)}, Units = {Value(Units)}, ValueDim = {Value(ValueDim)}, UseBias = {(UseBias ? "true" : "false")}{(Double ? ", ElementType = typeof(double)" : "")})]";
        }

        public string Constants()
        {
            var values = new[] { Dim, Units, ValueDim }.Distinct();
            return "static class Sizes { " + string.Join(" ", values.Select(v => $"public const int {(v < 0 ? "Minus" : "Of")}{Math.Abs(v)} = {v};")) + " }";
        }
    }

    private static readonly Gen<int> s_legalDimension = Gen.OneOf(Gen.Int[1, 40], Gen.OneOf(64, 100, 128, 129));
    private static readonly Gen<int> s_anyDimension = Gen.OneOf(s_legalDimension, Gen.OneOf(0, -1, -64, 65537, 1_000_000));

    [Fact]
    public void Legal_configurations_compile_clean_and_match_the_reference()
    {
        int tried = 0;
        Gen.Select(s_legalDimension, s_legalDimension, s_legalDimension, Gen.Bool, Gen.Bool, Gen.Bool, Gen.Int[0, s_shapes.Length - 1],
                (d, u, v, bias, dbl, expr, shape) => new Config(Math.Min(d, 48), Math.Min(u, 48), Math.Min(v, 48), bias, dbl, expr, shape))
            .Sample(config =>
            {
                tried++;
                CheckLegal(config);
            }, iter: 12, threads: 1, seed: "0N0XIzNsQ0O2");
        output.WriteLine($"legal configurations tried: {tried}");
        Assert.Equal(12, tried);
    }

    [Fact]
    public void Illegal_configurations_give_their_diagnostic_and_no_source()
    {
        int tried = 0, illegal = 0;
        Gen.Select(s_anyDimension, s_anyDimension, s_anyDimension, Gen.Bool, Gen.Bool, Gen.Int[0, s_shapes.Length - 1],
                (d, u, v, bias, expr, shape) => new Config(d, u, v, bias, false, expr, shape))
            .Sample(config =>
            {
                tried++;
                string source = "using AttentionGen;\n" + string.Format(s_shapes[config.Shape], config.Attribute()) + "\n" + config.Constants();
                var (result, _, _) = GeneratorHarness.Run(source);
                Assert.Null(result.Exception);
                Assert.DoesNotContain(result.Diagnostics, d => d.Id == "ATTN9999");
                if (config.Legal)
                {
                    Assert.Empty(result.Diagnostics);
                    Assert.Single(result.GeneratedSources);
                    return;
                }
                illegal++;
                Assert.Empty(result.GeneratedSources);
                int outOfRange = new[] { config.Dim, config.Units, config.ValueDim }.Count(v => v is < 1 or > 65536);
                Assert.Equal(outOfRange, result.Diagnostics.Count(d => d.Id == "ATTN0003"));
            }, iter: 150, threads: 1, seed: "0N0XIzNsQ0O2");
        output.WriteLine($"configurations tried: {tried}, illegal: {illegal}");
        Assert.True(illegal > 20, $"only {illegal} illegal configurations were generated");
    }

    private void CheckLegal(Config config)
    {
        string type = config.Double ? "double" : "float";
        string driver = $$"""
            public static class Driver
            {
                public static {{type}}[] Forward({{type}}[] query, {{type}}[] keys, {{type}}[] values, int batch, int tq, int tk)
                {
                    var layer = new {{LayerTypeName(config.Shape)}}(seed: 7);
                    var context = new {{type}}[batch * tq * {{config.ValueDim}}];
                    layer.Forward(batch, tq, tk, query, keys, values, context);
                    return context;
                }

                public static {{type}}[][] Parameters() => System.Linq.Enumerable.ToArray(System.Linq.Enumerable.Select(new {{LayerTypeName(config.Shape)}}(seed: 7).Parameters, p => p.Value));
            }
            """;
        string source = "using AttentionGen;\n" + string.Format(s_shapes[config.Shape], config.Attribute()) + "\n" + config.Constants();
        var (result, compilation, diagnostics) = GeneratorHarness.Run(source, driver);
        Assert.Null(result.Exception);
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.Problems(diagnostics).Select(d => d.ToString()));

        using var stream = new MemoryStream();
        var emitted = compilation.Emit(stream);
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics));
        var context = new AssemblyLoadContext("fuzz", isCollectible: true);
        try
        {
            stream.Position = 0;
            Assembly assembly = context.LoadFromStream(stream);
            Type driverType = assembly.GetType("Driver")!;
            var random = new Random(config.GetHashCode());
            const int batch = 2, tq = 2, tk = 3;
            double[] q = Enumerable.Range(0, batch * tq * config.Dim).Select(_ => random.NextDouble() * 2 - 1).ToArray();
            double[] k = Enumerable.Range(0, batch * tk * config.Dim).Select(_ => random.NextDouble() * 2 - 1).ToArray();
            double[] v = Enumerable.Range(0, batch * tk * config.ValueDim).Select(_ => random.NextDouble() * 2 - 1).ToArray();
            object Convert(double[] x) => config.Double ? x : x.Select(e => (float)e).ToArray();
            double[] ToDouble(object x) => config.Double ? (double[])x : ((float[])x).Select(e => (double)e).ToArray();

            double[] actual = ToDouble(driverType.GetMethod("Forward")!.Invoke(null, new[] { Convert(q), Convert(k), Convert(v), batch, tq, tk })!);
            var parameters = ((Array)driverType.GetMethod("Parameters")!.Invoke(null, null)!).Cast<object>().Select(ToDouble).ToArray();
            double[] wq = parameters[0], wk = parameters[1], sv = parameters[^1];
            double[]? bias = config.UseBias ? parameters[2] : null;
            if (!config.Double)
            {
                q = ToDouble(Convert(q)); k = ToDouble(Convert(k)); v = ToDouble(Convert(v));
            }
            double[] expected = ReferenceContext(batch, tq, tk, config, wq, wk, bias, sv, q, k, v);
            double tolerance = config.Double ? 1e-12 : 1e-5;
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.True(Math.Abs(actual[i] - expected[i]) <= tolerance * Math.Max(1, Math.Abs(expected[i])), $"{config}: context[{i}] {actual[i]} vs {expected[i]}");
            }
        }
        finally
        {
            context.Unload();
        }
    }

    private static string LayerTypeName(int shape) => shape == 3 ? "Fuzz.Space.Outer.Inner.Layer" : shape == 2 ? "Layer" : "Fuzz.Space.Layer";

    // eᵢⱼ = vᵀ tanh(W_q qᵢ + W_k kⱼ + b), softmax over j, cᵢ = Σⱼ aᵢⱼ valueⱼ — written plainly, in double.
    private static double[] ReferenceContext(int batch, int tq, int tk, Config c, double[] wq, double[] wk, double[]? bias, double[] v, double[] q, double[] k, double[] values)
    {
        var context = new double[batch * tq * c.ValueDim];
        for (int b = 0; b < batch; b++)
        {
            for (int i = 0; i < tq; i++)
            {
                var e = new double[tk];
                for (int j = 0; j < tk; j++)
                {
                    for (int u = 0; u < c.Units; u++)
                    {
                        double pre = bias?[u] ?? 0;
                        for (int d = 0; d < c.Dim; d++)
                        {
                            pre += wq[u * c.Dim + d] * q[(b * tq + i) * c.Dim + d] + wk[u * c.Dim + d] * k[(b * tk + j) * c.Dim + d];
                        }
                        e[j] += v[u] * Math.Tanh(pre);
                    }
                }
                double max = e.Max(), sum = e.Sum(x => Math.Exp(x - max));
                for (int j = 0; j < tk; j++)
                {
                    double a = Math.Exp(e[j] - max) / sum;
                    for (int d = 0; d < c.ValueDim; d++)
                    {
                        context[(b * tq + i) * c.ValueDim + d] += a * values[(b * tk + j) * c.ValueDim + d];
                    }
                }
            }
        }
        return context;
    }
}
