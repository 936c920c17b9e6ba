using System;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.Loader;
using CsCheck;
using Xunit;
using Xunit.Abstractions;

namespace AttentionGen.Generator.Tests;

/// <summary>
/// Executes fuzzed legal configurations of [MultiplicativeAttention], [StaticAttention], [StructuredSelfAttention],
/// [MultiHeadAttention], [HardAttention] (argmax), [KeyValueAttention], [LocalAttention] (local-m and local-p, every score) and [MonotonicAttention] (plain and MoChA): each runs through the real generator and compiler in a random declaration shape (one of them a
/// partial class split across two files; sizes as literals or constant expressions), compiles with no warnings, is emitted, loaded and run on random input with
/// perturbed parameters, and its forward must match a small scalar reference written here from the kind's equations.
/// </summary>
public sealed class FuzzKindsExecutionTests(ITestOutputHelper output)
{
    // {0} is the attribute. The last shape is split across two files (see Sources).
    private static readonly string[] s_shapes =
    {
        "namespace Fuzz.Space;\n{0}\npublic partial class Layer;",
        "namespace Fuzz.Space {{ {0} internal sealed partial class Layer {{ }} }}",
        "{0}\npublic partial class Layer;",
        "namespace Fuzz.Space; public partial class Outer {{ public partial record Inner {{ {0} public partial class Layer; }} }}",
        "namespace Fuzz.Space; {0} public partial record Layer;",
        "namespace Fuzz.Space; {0} public partial class Layer {{ public int Own => 1; }}\npublic partial class Layer {{ public int More => 2; }}",
        "namespace Fuzz.Space; {0} public partial class Layer {{ public int Own => 1; }}",
    };

    private const string SecondFile = "namespace Fuzz.Space; public partial class Layer { public int InAnotherFile => 3; }";

    private static string LayerTypeName(int shape) => shape == 3 ? "Fuzz.Space.Outer.Inner.Layer" : shape == 2 ? "Layer" : "Fuzz.Space.Layer";

    private enum Kind { Multiplicative, Static, Structured, MultiHead, Hard, KeyValue, Local, Monotonic }

    private sealed record Config(Kind Kind, int A, int B, int C, int Variant, bool Flag1, bool Flag2, bool Double, int Shape, bool Expressions = false)
    {
        // Sizes written as constant expressions (Sizes.D12, 2 * 6) when Expressions is set, else as literals.
        private string V(int v) => !Expressions ? v.ToString() : v % 2 == 0 && v > 2 ? $"2 * {v / 2}" : $"Sizes.D{v}";

        private static readonly string[] s_scores = { "Dot", "General", "ScaledDot" };

        // Multiplicative: Dim = A, KeyDim = B (General only), ValueDim = C, Score = Variant, LearnedScale = Flag1, Causal = Flag2.
        // Static: Dim = A, Units = B. Structured: Dim = A, Units = B, Hops = C.
        // Multi-head: Heads = C (1–4), ModelDim = Heads · A, Bias = Flag1, Causal = Flag2.
        // Hard (argmax): Dim = A, KeyDim = B (General only), ValueDim = C, Score = Variant.
        // Key-value: Dim = A, Window = B (1–5), Split = KeyValuePredict when Flag1.
        // Local: Dim = A, KeyDim = B (General and Concat), ValueDim = C, Score = Variant (Concat when Flag2), local-m when Flag1
        // (else local-p), Window, PredictorUnits and the concat score's Units derived from A, B and C.
        // Monotonic: Dim = A, Units = B (additive), ValueDim = C, energy additive (Variant 0), multiplicative (1) or weight-normalised
        // additive (2), MoChA with ChunkSize = Chunk when Flag2, Mode = Recursive (the parallel form divides by a clipped running product).
        public int Chunk => Flag2 ? 1 + (A + B) % 4 : 0;
        public int Window => 1 + (A + B) % 3;
        public int PredictorUnits => 1 + A * B % 7;
        public int ConcatUnits => 1 + A * C % 11;
        public string Score => Kind == Kind.Local && Flag2 ? "Concat" : s_scores[Variant];
        public int KeyDim => Kind == Kind.Monotonic ? A : Kind is Kind.Multiplicative or Kind.Hard or Kind.Local ? (Score is "General" or "Concat" ? B : A) : Kind == Kind.MultiHead ? ModelDim : 0;
        public int ModelDim => A * C;

        public string Attribute()
        {
            string type = Double ? ", ElementType = typeof(double)" : "";
            return Kind switch
            {
                Kind.Multiplicative => $"[MultiplicativeAttention(Dim = {V(A)}{(Score == "General" ? $", KeyDim = {V(B)}" : "")}, ValueDim = {V(C)}, Score = AttentionScore.{Score}, LearnedScale = {Flag1.ToString().ToLowerInvariant()}, Causal = {Flag2.ToString().ToLowerInvariant()}{type})]",
                Kind.Static => $"[StaticAttention(Dim = {V(A)}, Units = {V(B)}{type})]",
                Kind.Structured => $"[StructuredSelfAttention(Dim = {V(A)}, Units = {V(B)}, Hops = {V(C)}{type})]",
                Kind.Hard => $"[HardAttention(Dim = {V(A)}{(Score == "General" ? $", KeyDim = {V(B)}" : "")}, ValueDim = {V(C)}, Score = AttentionScore.{Score}{type})]",
                Kind.Local => $"[LocalAttention(Dim = {V(A)}{(Score is "General" or "Concat" ? $", KeyDim = {V(B)}" : "")}, ValueDim = {V(C)}, Window = {V(Window)}, Score = AttentionScore.{Score}{(Score == "Concat" ? $", Units = {V(ConcatUnits)}" : "")}, Alignment = LocalAlignment.{(Flag1 ? "Monotonic" : $"Predictive, PredictorUnits = {V(PredictorUnits)}")}{type})]",
                Kind.Monotonic => $"[MonotonicAttention(Dim = {V(A)}{(Variant != 1 ? $", Units = {V(B)}" : ", Score = MonotonicScore.Multiplicative")}, ValueDim = {V(C)}{(Variant == 2 ? ", Normalize = true" : "")}, InitialEnergyBias = 0{(Chunk > 0 ? $", ChunkSize = {V(Chunk)}" : "")}{type})]",
                Kind.KeyValue => $"[KeyValueAttention(Dim = {V(A)}, Window = {V(B)}, Split = KeyValueSplit.{(Flag1 ? "KeyValuePredict" : "KeyValue")}{type})]",
                _ => $"[MultiHeadAttention(ModelDim = {V(C)} * {V(A)}, Heads = {V(C)}, Bias = {Flag1.ToString().ToLowerInvariant()}, Causal = {Flag2.ToString().ToLowerInvariant()}{type})]",
            };
        }

        public (int Query, int Keys, int Values, int Output) Lengths(int batch, int tq, int tk) => Kind switch
        {
            Kind.Multiplicative or Kind.Hard or Kind.Local or Kind.Monotonic => (batch * tq * A, batch * tk * KeyDim, batch * tk * C, batch * tq * C),
            Kind.KeyValue => (batch * tk * (Flag1 ? 3 : 2) * A, 0, 0, batch * tk * A),
            Kind.Static => (batch * tk * A, 0, 0, batch * A),
            Kind.Structured => (batch * tk * A, 0, 0, batch * C * A),
            _ => (batch * tq * ModelDim, batch * tk * ModelDim, batch * tk * ModelDim, batch * tq * ModelDim),
        };
    }

    private static string Driver(Config config, int outputLength)
    {
        string type = config.Double ? "double" : "float";
        string call = config.Kind is Kind.Static or Kind.Structured or Kind.KeyValue
            ? "s_layer.Forward(batch, tk, a, output);"
            : "s_layer.Forward(batch, tq, tk, a, b, c, output);";
        return $$"""
            public static class Driver
            {
                private static readonly {{LayerTypeName(config.Shape)}} s_layer = Create();

                private static {{LayerTypeName(config.Shape)}} Create()
                {
                    var layer = new {{LayerTypeName(config.Shape)}}(seed: 7);
                    // Move every parameter (biases and scales start at 0 or 1) so each path shows in the result.
                    foreach (var p in layer.Parameters)
                        for (int i = 0; i < p.Value.Length; i++) p.Value[i] += ({{type}})(0.05 * ((i * 7919 + p.Value.Length) % 13 - 6));
                    return layer;
                }

                public static {{type}}[] Run({{type}}[] a, {{type}}[] b, {{type}}[] c, int batch, int tq, int tk)
                {
                    var output = new {{type}}[{{outputLength}}];
                    {{call}}
                    return output;
                }

                public static string[] Names() => System.Linq.Enumerable.ToArray(System.Linq.Enumerable.Select(s_layer.Parameters, p => p.Name));
                public static {{type}}[][] Values() => System.Linq.Enumerable.ToArray(System.Linq.Enumerable.Select(s_layer.Parameters, p => p.Value));
            }
            """;
    }

    // One draw of sizes, options and shape; every iteration runs it through each of the seven kinds, so each kind is executed
    // as often as the others on every run.
    private static readonly Gen<(int A, int B, int C, int Variant, int Flags, int Shape)> s_draws =
        Gen.Select(Gen.Int[1, 40], Gen.Int[1, 40], Gen.Int[1, 12], Gen.Int[0, 2], Gen.Int[0, 15], Gen.Int[0, s_shapes.Length - 1],
            (a, b, c, variant, flags, shape) => (a, b, c, variant, flags, shape));

    private static readonly string s_sizes = "static class Sizes { " + string.Join(" ", Enumerable.Range(1, 40).Select(v => $"public const int D{v} = {v};")) + " }";

    private static Config Build(Kind kind, (int A, int B, int C, int Variant, int Flags, int Shape) draw)
    {
        var (a, b, c, variant, flags, shape) = draw;
        bool f1 = (flags & 1) != 0, f2 = (flags & 2) != 0, dbl = (flags & 4) != 0, expr = (flags & 8) != 0;
        return kind switch
        {
            Kind.MultiHead => new Config(Kind.MultiHead, Math.Min(a, 12), 0, 1 + c % 4, 0, f1, f2, dbl, shape, expr),
            Kind.Structured => new Config(Kind.Structured, a, b, 1 + c % 5, 0, false, false, dbl, shape, expr),
            Kind.Hard => new Config(Kind.Hard, a, b, c, variant, false, false, dbl, shape, expr),
            Kind.KeyValue => new Config(Kind.KeyValue, Math.Min(a, 24), 1 + b % 5, 0, 0, f1, false, dbl, shape, expr),
            _ => new Config(kind, a, b, c, variant, f1, f2, dbl, shape, expr),
        };
    }

    [Fact]
    public void Legal_configurations_of_other_kinds_compile_clean_and_match_their_scalar_references()
    {
        int tried = 0;
        var kinds = Enum.GetValues<Kind>();
        s_draws.Sample(draw =>
        {
            foreach (Kind kind in kinds)
            {
                tried++;
                Check(Build(kind, draw));
            }
        }, iter: 6, threads: 1, seed: "0N0XIzNsQ0O2");
        output.WriteLine($"legal configurations executed: {tried} ({tried / kinds.Length} of each of {string.Join(", ", kinds)})");
        Assert.Equal(6 * kinds.Length, tried);
    }

    private static void Check(Config config)
    {
        const int batch = 2, tq = 2, tk = 5;
        var lengths = config.Lengths(batch, tq, tk);
        string source = "using AttentionGen;\n" + string.Format(s_shapes[config.Shape], config.Attribute()) + "\n" + s_sizes;
        string[] sources = config.Shape == s_shapes.Length - 1 ? new[] { source, SecondFile, Driver(config, lengths.Output) } : new[] { source, Driver(config, lengths.Output) };
        var (result, compilation, diagnostics) = GeneratorHarness.Run(sources);
        Assert.Null(result.Exception);
        Assert.Empty(result.Diagnostics);
        Assert.Single(result.GeneratedSources);
        Assert.Empty(GeneratorHarness.Problems(diagnostics).Select(d => d.ToString()));

        using var stream = new MemoryStream();
        var emitted = compilation.Emit(stream);
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics));
        var context = new AssemblyLoadContext("fuzz-kinds", isCollectible: true);
        try
        {
            stream.Position = 0;
            Type driver = context.LoadFromStream(stream).GetType("Driver")!;
            var random = new Random(config.GetHashCode());
            double[] Random(int n) => Enumerable.Range(0, n).Select(_ => random.NextDouble() * 2 - 1).ToArray();
            object Convert(double[] x) => config.Double ? x : x.Select(e => (float)e).ToArray();
            double[] ToDouble(object x) => config.Double ? (double[])x : ((float[])x).Select(e => (double)e).ToArray();
            double[] a = ToDouble(Convert(Random(lengths.Query))), b = ToDouble(Convert(Random(lengths.Keys))), c = ToDouble(Convert(Random(lengths.Values)));

            double[] actual = ToDouble(driver.GetMethod("Run")!.Invoke(null, new[] { Convert(a), Convert(b), Convert(c), batch, tq, tk })!);
            string[] names = (string[])driver.GetMethod("Names")!.Invoke(null, null)!;
            object[] values = ((Array)driver.GetMethod("Values")!.Invoke(null, null)!).Cast<object>().ToArray();
            double[] P(string name) => Array.IndexOf(names, name) is var i and >= 0 ? ToDouble(values[i]) : Array.Empty<double>();

            double[] expected = config.Kind switch
            {
                Kind.Multiplicative => References.Multiplicative(config, batch, tq, tk, P("score_weight"), P("scale"), a, b, c),
                Kind.Static => References.Pooling(batch, tk, config.A, config.B, P("weight"), P("bias"), P("context_vector"), a),
                Kind.Structured => References.Structured(batch, tk, config.A, config.B, config.C, P("ws1"), P("ws2"), a),
                Kind.Local => References.Local(config, batch, tq, tk, P("score_weight"), P("predictor_weight"), P("predictor_vector"), a, b, c, P("score_vector")),
                Kind.Hard => References.Hard(config, batch, tq, tk, P("score_weight"), a, b, c),
                Kind.Monotonic => References.Monotonic(config, batch, tq, tk, P, a, b, c),
                Kind.KeyValue => References.KeyValue(batch, tk, config.A, config.B, config.Flag1 ? 3 : 2, P("memory_weight"), P("query_weight"), P("score_vector"), P("context_weight"), P("input_weight"), a),
                _ => References.MultiHead(config, batch, tq, tk, P("in_proj_weight"), P("in_proj_bias"), P("out_proj.weight"), P("out_proj.bias"), a, b, c),
            };
            double tolerance = config.Double ? 1e-11 : 2e-5;
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.True(Math.Abs(actual[i] - expected[i]) <= tolerance * Math.Max(1, Math.Abs(expected[i])), $"{config}: output[{i}] {actual[i]} vs {expected[i]}");
            }
        }
        finally
        {
            context.Unload();
        }
    }

    /// <summary>Plain double references, one loop per equation, independent of the emitted kernels.</summary>
    private static class References
    {
        private static double[] Softmax(double[] e)
        {
            double max = e.Where(x => !double.IsNegativeInfinity(x)).DefaultIfEmpty(double.NaN).Max();
            if (double.IsNaN(max)) return new double[e.Length]; // nothing allowed: zero weights
            double[] p = e.Select(x => double.IsNegativeInfinity(x) ? 0 : Math.Exp(x - max)).ToArray();
            double sum = p.Sum();
            return p.Select(x => x / sum).ToArray();
        }

        // eᵢⱼ = g·(W qᵢ)ᵀ kⱼ (General) | g·qᵢᵀ kⱼ (Dot) | g·qᵢᵀ kⱼ / √Dk (ScaledDot); causal: j ≤ i + Tk − Tq; cᵢ = Σⱼ aᵢⱼ vⱼ.
        public static double[] Multiplicative(Config c, int batch, int tq, int tk, double[] w, double[] scale, double[] q, double[] k, double[] v)
        {
            int dim = c.A, keyDim = c.KeyDim, valueDim = c.C;
            double g = scale.Length > 0 ? scale[0] : 1;
            var context = new double[batch * tq * valueDim];
            for (int bb = 0; bb < batch; bb++)
                for (int i = 0; i < tq; i++)
                {
                    var qp = new double[keyDim];
                    for (int r = 0; r < keyDim; r++)
                        if (c.Score == "General") for (int d = 0; d < dim; d++) qp[r] += w[r * dim + d] * q[(bb * tq + i) * dim + d];
                        else qp[r] = q[(bb * tq + i) * dim + r];
                    var e = new double[tk];
                    for (int j = 0; j < tk; j++)
                    {
                        if (c.Flag2 && j > i + tk - tq) { e[j] = double.NegativeInfinity; continue; }
                        for (int r = 0; r < keyDim; r++) e[j] += qp[r] * k[(bb * tk + j) * keyDim + r];
                        e[j] *= g * (c.Score == "ScaledDot" ? 1 / Math.Sqrt(keyDim) : 1);
                    }
                    double[] a = Softmax(e);
                    for (int j = 0; j < tk; j++)
                        for (int d = 0; d < valueDim; d++) context[(bb * tq + i) * valueDim + d] += a[j] * v[(bb * tk + j) * valueDim + d];
                }
            return context;
        }

        // Luong et al. 2015 §3.2: pₜ = t + Tk − Tq (local-m) or Tk · sigmoid(v_pᵀ tanh(W_p hₜ)) (local-p); window
        // [c − D, c + D] ∩ [0, Tk − 1] around c = pₜ (local-m) or ⌊pₜ + ½⌋; softmax of the scores over the window, times
        // exp(−(s − pₜ)² / (2 (D/2)²)) for local-p; cₜ = Σₛ aₜ(s) vₛ.
        public static double[] Local(Config c, int batch, int tq, int tk, double[] w, double[] wp, double[] vp, double[] q, double[] k, double[] v, double[] va)
        {
            int dim = c.A, keyDim = c.KeyDim, valueDim = c.C, d = c.Window;
            bool predictive = !c.Flag1;
            var context = new double[batch * tq * valueDim];
            for (int bb = 0; bb < batch; bb++)
                for (int t = 0; t < tq; t++)
                {
                    double[] h = q.AsSpan((bb * tq + t) * dim, dim).ToArray();
                    double p;
                    int center;
                    if (predictive)
                    {
                        double u = 0;
                        for (int r = 0; r < c.PredictorUnits; r++)
                        {
                            double pre = 0;
                            for (int x = 0; x < dim; x++) pre += wp[r * dim + x] * h[x];
                            u += vp[r] * Math.Tanh(pre);
                        }
                        p = tk / (1 + Math.Exp(-u));
                        center = (int)Math.Floor(p + 0.5);
                    }
                    else
                    {
                        center = t + tk - tq;
                        p = center;
                    }
                    int lo = Math.Max(0, center - d), hi = Math.Min(tk - 1, center + d);
                    if (hi < lo) continue;
                    var e = new double[hi - lo + 1];
                    // Concat: e = v_aᵀ tanh(W_a [h; k]), W_a of [Units, Dim + KeyDim].
                    for (int s = lo; s <= hi && c.Score == "Concat"; s++)
                        for (int u = 0; u < c.ConcatUnits; u++)
                        {
                            double pre = 0;
                            for (int x = 0; x < dim; x++) pre += w[u * (dim + keyDim) + x] * h[x];
                            for (int x = 0; x < keyDim; x++) pre += w[u * (dim + keyDim) + dim + x] * k[(bb * tk + s) * keyDim + x];
                            e[s - lo] += va[u] * Math.Tanh(pre);
                        }
                    for (int s = lo; s <= hi && c.Score != "Concat"; s++)
                        for (int r = 0; r < keyDim; r++)
                        {
                            double qr = 0;
                            if (c.Score == "General") for (int x = 0; x < dim; x++) qr += w[r * dim + x] * h[x];
                            else qr = h[r];
                            e[s - lo] += qr * k[(bb * tk + s) * keyDim + r] / (c.Score == "ScaledDot" ? Math.Sqrt(keyDim) : 1);
                        }
                    double[] a = Softmax(e);
                    double sigma = d / 2.0;
                    for (int s = lo; s <= hi; s++)
                    {
                        double weight = a[s - lo] * (predictive ? Math.Exp(-(s - p) * (s - p) / (2 * sigma * sigma)) : 1);
                        for (int x = 0; x < valueDim; x++) context[(bb * tq + t) * valueDim + x] += weight * v[(bb * tk + s) * valueDim + x];
                    }
                }
            return context;
        }

        // Hard (argmax): the scores as in Multiplicative (the scale does not move the argmax); cᵢ = v_{first j of largest score}.
        public static double[] Hard(Config c, int batch, int tq, int tk, double[] w, double[] q, double[] k, double[] v)
        {
            int dim = c.A, keyDim = c.KeyDim, valueDim = c.C;
            var context = new double[batch * tq * valueDim];
            for (int bb = 0; bb < batch; bb++)
                for (int i = 0; i < tq; i++)
                {
                    int best = -1;
                    double largest = double.NegativeInfinity;
                    for (int j = 0; j < tk; j++)
                    {
                        double e = 0;
                        for (int r = 0; r < keyDim; r++)
                        {
                            double qr = 0;
                            if (c.Score == "General") for (int d = 0; d < dim; d++) qr += w[r * dim + d] * q[(bb * tq + i) * dim + d];
                            else qr = q[(bb * tq + i) * dim + r];
                            e += qr * k[(bb * tk + j) * keyDim + r];
                        }
                        if (e > largest) (largest, best) = (e, j);
                    }
                    Array.Copy(v, (bb * tk + best) * valueDim, context, (bb * tq + i) * valueDim, valueDim);
                }
            return context;
        }

        // Daniluk et al. 2017: input step t = [kₜ; vₜ(; pₜ)]; step t attends to steps t − L … t − 1 (none before the start):
        // eₛ = wᵀ tanh(W^Y kₛ + W^h kₜ), r = Σₛ softmax(e)ₛ vₛ (0 when there is none), h* = tanh(W^r r + W^x (pₜ or vₜ)).
        public static double[] KeyValue(int batch, int length, int k, int window, int parts, double[] wy, double[] wh, double[] w, double[] wr, double[] wx, double[] input)
        {
            var output = new double[batch * length * k];
            double Part(int b, int t, int part, int i) => input[(b * length + t) * parts * k + part * k + i];
            for (int b = 0; b < batch; b++)
                for (int t = 0; t < length; t++)
                {
                    int first = Math.Max(0, t - window);
                    var e = new double[t - first];
                    for (int s = first; s < t; s++)
                        for (int u = 0; u < k; u++)
                        {
                            double m = 0;
                            for (int i = 0; i < k; i++) m += wy[u * k + i] * Part(b, s, 0, i) + wh[u * k + i] * Part(b, t, 0, i);
                            e[s - first] += w[u] * Math.Tanh(m);
                        }
                    double[] a = Softmax(e);
                    var r = new double[k];
                    for (int s = first; s < t; s++)
                        for (int i = 0; i < k; i++) r[i] += a[s - first] * Part(b, s, 1, i);
                    for (int u = 0; u < k; u++)
                    {
                        double pre = 0;
                        for (int i = 0; i < k; i++) pre += wr[u * k + i] * r[i] + wx[u * k + i] * Part(b, t, parts - 1, i);
                        output[(b * length + t) * k + u] = Math.Tanh(pre);
                    }
                }
            return output;
        }

        // uₜ = tanh(W hₜ + b), αₜ = softmax(uₜᵀ u_w), s = Σₜ αₜ hₜ.
        public static double[] Pooling(int batch, int length, int dim, int units, double[] w, double[] bias, double[] uw, double[] h)
        {
            var s = new double[batch * dim];
            for (int b = 0; b < batch; b++)
            {
                var e = new double[length];
                for (int t = 0; t < length; t++)
                    for (int u = 0; u < units; u++)
                    {
                        double pre = bias[u];
                        for (int d = 0; d < dim; d++) pre += w[u * dim + d] * h[(b * length + t) * dim + d];
                        e[t] += Math.Tanh(pre) * uw[u];
                    }
                double[] a = Softmax(e);
                for (int t = 0; t < length; t++)
                    for (int d = 0; d < dim; d++) s[b * dim + d] += a[t] * h[(b * length + t) * dim + d];
            }
            return s;
        }

        // A = softmax(W_s2 tanh(W_s1 Hᵀ)) over t, per hop; M = A H.
        public static double[] Structured(int batch, int length, int dim, int units, int hops, double[] ws1, double[] ws2, double[] h)
        {
            var m = new double[batch * hops * dim];
            for (int b = 0; b < batch; b++)
            {
                var z = new double[length, units];
                for (int t = 0; t < length; t++)
                    for (int u = 0; u < units; u++)
                    {
                        double pre = 0;
                        for (int d = 0; d < dim; d++) pre += ws1[u * dim + d] * h[(b * length + t) * dim + d];
                        z[t, u] = Math.Tanh(pre);
                    }
                for (int r = 0; r < hops; r++)
                {
                    var e = new double[length];
                    for (int t = 0; t < length; t++)
                        for (int u = 0; u < units; u++) e[t] += ws2[r * units + u] * z[t, u];
                    double[] a = Softmax(e);
                    for (int t = 0; t < length; t++)
                        for (int d = 0; d < dim; d++) m[(b * hops + r) * dim + d] += a[t] * h[(b * length + t) * dim + d];
                }
            }
            return m;
        }

        // PyTorch nn.MultiheadAttention: [Q'; K'; V'] = x W_inᵀ + b_in (packed rows q, k, v), per head softmax(Q'ₕ K'ₕᵀ / √d) V'ₕ
        // (causal: j ≤ i + Tk − Tq), heads concatenated, y = O W_outᵀ + b_out.
        public static double[] MultiHead(Config c, int batch, int tq, int tk, double[] inW, double[] inB, double[] outW, double[] outB, double[] q, double[] k, double[] v)
        {
            int e = c.ModelDim, heads = c.C, hd = c.A;
            double Bias(double[] b, int i) => b.Length == 0 ? 0 : b[i];
            double[] Project(double[] x, int rows, int part)
            {
                var y = new double[rows * e];
                for (int r = 0; r < rows; r++)
                    for (int o = 0; o < e; o++)
                    {
                        double sum = Bias(inB, part * e + o);
                        for (int d = 0; d < e; d++) sum += inW[(part * e + o) * e + d] * x[r * e + d];
                        y[r * e + o] = sum;
                    }
                return y;
            }
            double[] qp = Project(q, batch * tq, 0), kp = Project(k, batch * tk, 1), vp = Project(v, batch * tk, 2);
            var concat = new double[batch * tq * e];
            for (int b = 0; b < batch; b++)
                for (int h = 0; h < heads; h++)
                    for (int i = 0; i < tq; i++)
                    {
                        var s = new double[tk];
                        for (int j = 0; j < tk; j++)
                        {
                            if (c.Flag2 && j > i + tk - tq) { s[j] = double.NegativeInfinity; continue; }
                            for (int d = 0; d < hd; d++) s[j] += qp[(b * tq + i) * e + h * hd + d] * kp[(b * tk + j) * e + h * hd + d];
                            s[j] /= Math.Sqrt(hd);
                        }
                        double[] a = Softmax(s);
                        for (int j = 0; j < tk; j++)
                            for (int d = 0; d < hd; d++) concat[(b * tq + i) * e + h * hd + d] += a[j] * vp[(b * tk + j) * e + h * hd + d];
                    }
            var y = new double[batch * tq * e];
            for (int r = 0; r < batch * tq; r++)
                for (int o = 0; o < e; o++)
                {
                    double sum = Bias(outB, o);
                    for (int d = 0; d < e; d++) sum += outW[o * e + d] * concat[r * e + d];
                    y[r * e + o] = sum;
                }
            return y;
        }

        // Raffel et al. 2017: pᵢⱼ = σ(eᵢⱼ + r), eᵢⱼ = (g/‖v‖)·vᵀ tanh(W_q qᵢ + W_k kⱼ + b) (additive; g/‖v‖ = 1 unless weight-normalised)
        // or qᵢᵀ W kⱼ; the expected alignment by the paper's recursion, α₀ = one-hot(0):
        // sⱼ = (1 − pᵢ,ⱼ₋₁) sⱼ₋₁ + αᵢ₋₁,ⱼ (s₀ = αᵢ₋₁,₀), αᵢⱼ = pᵢⱼ sⱼ. MoChA (Chiu & Raffel 2018), chunk width w: chunk energy uᵢⱼ of
        // the same form with its own parameters (no g, no r), βᵢⱼ = Σₖ₌ⱼ^{j+w−1} αᵢₖ exp(uᵢⱼ) / Σₗ₌max(0,k−w+1)^{k} exp(uᵢₗ). cᵢ = Σⱼ (α|β)ᵢⱼ vⱼ.
        public static double[] Monotonic(Config c, int batch, int tq, int tk, Func<string, double[]> parameter, double[] q, double[] k, double[] v)
        {
            int dim = c.A, units = c.B, valueDim = c.C, w = c.Chunk;
            bool additive = c.Variant != 1;
            double Energy(string prefix, int qi, int kj, double factor)
            {
                double e = 0;
                double[] wk = parameter(prefix + "key_weight");
                if (additive)
                {
                    double[] wq = parameter(prefix + "query_weight"), bias = parameter(prefix + "score_bias"), vector = parameter(prefix + "score_vector");
                    for (int u = 0; u < units; u++)
                    {
                        double pre = bias[u];
                        for (int d = 0; d < dim; d++) pre += wq[u * dim + d] * q[qi * dim + d] + wk[u * dim + d] * k[kj * dim + d];
                        e += factor * vector[u] * Math.Tanh(pre);
                    }
                }
                else
                {
                    for (int o = 0; o < dim; o++)
                        for (int d = 0; d < dim; d++) e += q[qi * dim + o] * wk[o * dim + d] * k[kj * dim + d];
                }
                return e;
            }
            double r = parameter("energy_bias")[0];
            double g = c.Variant == 2 ? parameter("score_scale")[0] / Math.Sqrt(parameter("score_vector").Sum(x => x * x)) : 1;
            var context = new double[batch * tq * valueDim];
            for (int bb = 0; bb < batch; bb++)
            {
                var previous = new double[tk];
                previous[0] = 1;
                for (int i = 0; i < tq; i++)
                {
                    var alpha = new double[tk];
                    double carry = 0, lastP = 0;
                    for (int j = 0; j < tk; j++)
                    {
                        double p = 1 / (1 + Math.Exp(-(Energy("", bb * tq + i, bb * tk + j, g) + r)));
                        carry = (1 - lastP) * carry + previous[j];
                        alpha[j] = p * carry;
                        lastP = p;
                    }
                    double[] weights = alpha;
                    if (w > 0)
                    {
                        double[] expU = Enumerable.Range(0, tk).Select(j => Math.Exp(Energy("chunk_", bb * tq + i, bb * tk + j, 1))).ToArray();
                        weights = new double[tk];
                        for (int j = 0; j < tk; j++)
                            for (int kk = j; kk <= j + w - 1 && kk < tk; kk++)
                            {
                                double denominator = 0;
                                for (int l = Math.Max(0, kk - w + 1); l <= kk; l++) denominator += expU[l];
                                weights[j] += alpha[kk] * expU[j] / denominator;
                            }
                    }
                    for (int j = 0; j < tk; j++)
                        for (int d = 0; d < valueDim; d++) context[(bb * tq + i) * valueDim + d] += weights[j] * v[(bb * tk + j) * valueDim + d];
                    previous = alpha;
                }
            }
            return context;
        }
    }
}
