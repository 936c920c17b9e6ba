using System;
using System.Linq;
using CsCheck;
using Xunit;
using Xunit.Abstractions;

namespace AttentionGen.Generator.Tests;

/// <summary>
/// Every layer kind through the real generator with random dimensions (legal and not) and random declaration shapes:
/// a legal configuration gives exactly one source file and no diagnostic, and that source compiles without warnings; an
/// illegal one gives one ATTN0003/ATTN0004 per bad value and no source; the generator never throws (no ATTN9999).
/// </summary>
public sealed class FuzzAllKindsTests(ITestOutputHelper output)
{
    private static readonly string[] s_kinds =
    {
        "AdditiveAttention(Dim = {0}, Units = {1}, ValueDim = {2})",
        "MultiplicativeAttention(Dim = {0}, ValueDim = {2}, Score = AttentionScore.ScaledDot)",
        "MultiplicativeAttention(Dim = {0}, KeyDim = {1}, ValueDim = {2})",
        "HardAttention(Dim = {0}, KeyDim = {1}, Selection = HardSelection.Sample)",
        "StaticAttention(Dim = {0}, Units = {1})",
        "StructuredSelfAttention(Dim = {0}, Units = {1}, Hops = {2})",
        "KeyValueAttention(Dim = {0}, Window = {1}, Split = KeyValueSplit.KeyValuePredict)",
        "LocalAttention(Dim = {0}, Window = {1}, PredictorUnits = {2})",
        "LocalAttention(Dim = {0}, KeyDim = {1}, ValueDim = {2}, Window = {2}, Alignment = LocalAlignment.Monotonic)",
        "MultiHeadAttention(ModelDim = {0} * {2}, Heads = {2}, KeyDim = {1})",
        "MonotonicAttention(Dim = {0}, Units = {1}, ValueDim = {2}, Mode = MonotonicMode.Parallel)",
        "LocalAttention(Dim = {0}, KeyDim = {1}, Units = {2}, Window = {2}, Score = AttentionScore.Concat)",
    };

    private static readonly string[] s_shapes =
    {
        "namespace Fuzz;\n[{0}]\npublic partial class Layer;",
        "namespace Fuzz {{ [{0}] internal sealed partial class Layer {{ }} }}",
        "[{0}]\npublic partial record Layer;",
        "namespace Fuzz; public partial class Outer {{ [{0}] private partial class Layer; }}",
    };

    [Fact]
    public void Every_kind_either_generates_clean_code_or_reports_its_diagnostics()
    {
        int tried = 0, legal = 0;
        Gen.Select(Gen.Int[0, s_kinds.Length - 1], Gen.Int[0, s_shapes.Length - 1],
                Gen.OneOf(Gen.Int[1, 40], Gen.OneOf(0, -5, 70000)), Gen.OneOf(Gen.Int[1, 40], Gen.OneOf(0, -1)), Gen.OneOf(Gen.Int[1, 9], Gen.OneOf(0, -3)))
            .Sample((kind, shape, a, b, c) =>
            {
                tried++;
                string attribute = string.Format(s_kinds[kind], a, b, c);
                string source = "using AttentionGen;\n" + string.Format(s_shapes[shape], attribute);
                var (result, _, diagnostics) = GeneratorHarness.Run(source);
                Assert.Null(result.Exception);
                Assert.DoesNotContain(result.Diagnostics, d => d.Id == "ATTN9999");
                int[] values = kind switch { 1 => new[] { a, c }, 3 => new[] { a, b }, 4 => new[] { a, b }, 6 => new[] { a, b }, 8 => new[] { a, b, c, c }, 9 => new[] { a * c, b, c }, 11 => new[] { a, b, c, c }, _ => new[] { a, b, c } };
                int bad = values.Count(v => v is < 1 or > 65536);
                if (bad == 0)
                {
                    legal++;
                    Assert.Empty(result.Diagnostics);
                    Assert.Single(result.GeneratedSources);
                    Assert.Empty(GeneratorHarness.Problems(diagnostics).Select(d => d.ToString()));
                }
                else
                {
                    Assert.Empty(result.GeneratedSources);
                    Assert.Equal(bad, result.Diagnostics.Count(d => d.Id is "ATTN0003" or "ATTN0004"));
                }
            }, iter: 100, threads: 1, seed: "0N0XIzNsQ0O2");
        output.WriteLine($"configurations tried: {tried}, legal (compiled): {legal}");
        // The seed fixes only the first draw; the rest are random, so the split varies between runs (about 1 in 6 draws is
        // legal: 12 and 18 of 100 in two runs). At least 10 of each failed about one run in forty; at least 3 of each, which
        // still shows both branches ran, a few times in a million.
        Assert.True(legal >= 3 && tried - legal >= 3, $"{legal} legal of {tried}");
    }
}

/// <summary>
/// Declaration shapes that cannot hold a layer, for every kind with legal dimensions: a static or abstract class gives ATTN0008,
/// a generic class or a class nested in a generic type ATTN0002, a struct ATTN0008 (the attribute applies to classes only, so
/// the compiler adds CS0592); nothing is generated and the generator never throws. A partial class split across two files
/// generates once and compiles clean.
/// </summary>
public sealed class FuzzDeclarationShapeTests(ITestOutputHelper output)
{
    private static readonly string[] s_kinds =
    {
        "AdditiveAttention(Dim = {0}, Units = {1})",
        "MultiplicativeAttention(Dim = {0}, KeyDim = {1})",
        "HardAttention(Dim = {0})",
        "StaticAttention(Dim = {0}, Units = {1})",
        "StructuredSelfAttention(Dim = {0}, Units = {1}, Hops = 2)",
        "KeyValueAttention(Dim = {0}, Window = 3)",
        "LocalAttention(Dim = {0}, Window = 2)",
        "MultiHeadAttention(ModelDim = 2 * {0}, Heads = 2)",
    };

    // (shape, the diagnostic it must give); {0} is the attribute.
    private static readonly (string Shape, string Id)[] s_invalid =
    {
        ("namespace Fuzz; [{0}] public static partial class Layer {{ }}", "ATTN0008"),
        ("namespace Fuzz; [{0}] public abstract partial class Layer {{ }}", "ATTN0008"),
        ("namespace Fuzz; [{0}] public partial class Layer<T> {{ }}", "ATTN0002"),
        ("namespace Fuzz; public partial class Outer<T> {{ [{0}] public partial class Layer {{ }} }}", "ATTN0002"),
        ("[{0}] public partial class Layer<TElement, TOther> where TElement : struct {{ }}", "ATTN0002"),
        ("namespace Fuzz; [{0}] public partial struct Layer {{ }}", "ATTN0008"),
        ("namespace Fuzz; [{0}] public partial record struct Layer;", "ATTN0008"),
    };

    [Fact]
    public void Invalid_shapes_give_their_documented_diagnostic_and_a_split_partial_class_generates_once()
    {
        int tried = 0;
        Gen.Select(Gen.Int[0, s_kinds.Length - 1], Gen.Int[0, s_invalid.Length - 1], Gen.Int[1, 40], Gen.Int[1, 40])
            .Sample((kind, shape, a, b) =>
            {
                tried++;
                string attribute = string.Format(s_kinds[kind], a, b);
                {
                    var (ok, _, okDiagnostics) = GeneratorHarness.Run(
                        $"using AttentionGen;\nnamespace Fuzz; [{attribute}] public partial class Layer {{ public int Here => 1; }}",
                        "namespace Fuzz; public partial class Layer { public int There => 2; }",
                        "public static class Use { public static int Both() { var l = new Fuzz.Layer(); return l.Here + l.There + l.Parameters.Count; } }");
                    Assert.Null(ok.Exception);
                    Assert.Empty(ok.Diagnostics);
                    Assert.Single(ok.GeneratedSources);
                    Assert.Empty(GeneratorHarness.Problems(okDiagnostics).Select(d => d.ToString()));
                }
                var (invalid, id) = s_invalid[shape];
                var (result, _, diagnostics) = GeneratorHarness.Run("using AttentionGen;\n" + string.Format(invalid, attribute));
                Assert.Null(result.Exception);
                Assert.DoesNotContain(result.Diagnostics, d => d.Id == "ATTN9999");
                Assert.Empty(result.GeneratedSources);
                Assert.Equal(id, Assert.Single(result.Diagnostics).Id);
                if (invalid.Contains("struct Layer")) Assert.Contains(diagnostics, d => d.Id == "CS0592");
            }, iter: 60, threads: 1, seed: "0N0XIzNsQ0O2");
        output.WriteLine($"declaration shapes tried: {tried} invalid ones, each with the same attribute on a class split across two files");
        Assert.Equal(60, tried);
    }
}
