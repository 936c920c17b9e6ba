using System.Linq;
using Xunit;

namespace AttentionGen.Generator.Tests;

/// <summary>The generated source of representative additive layers, guarded as snapshots, and compiled clean.</summary>
public sealed class AdditiveSnapshotTests
{
    [Theory]
    [InlineData("Additive_Dim128_Float", "[AdditiveAttention(Dim = 128)]")]
    [InlineData("Additive_Dim37_Double_NoBias", "[AdditiveAttention(Dim = 37, ElementType = typeof(double), UseBias = false)]")]
    [InlineData("Additive_Dim12_Units37_Value5", "[AdditiveAttention(Dim = 12, Units = 37, ValueDim = 5)]")]
    public void Generated_source_matches_the_snapshot_and_compiles_without_warnings(string name, string attribute)
    {
        string source = $$"""
            using AttentionGen;

            namespace Samples.Translation;

            {{attribute}}
            public partial class Aligner;
            """;

        var (result, _, outputDiagnostics) = GeneratorHarness.Run(source);

        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.Problems(outputDiagnostics));
        Assert.Single(result.GeneratedSources);
        Assert.Equal("Samples.Translation.Aligner.AdditiveAttention.g.cs", result.GeneratedSources[0].HintName);
        Snapshot.Verify(result.GeneratedSources[0].SourceText.ToString(), name);
    }

    [Theory]
    [InlineData("namespace A.B;\n[AdditiveAttention(Dim = 8)] public partial class Layer;")]
    [InlineData("namespace A.B { [AdditiveAttention(Dim = 8)] public partial class Layer { } }")]
    [InlineData("[AdditiveAttention(Dim = 8)] public partial class Layer;")]
    [InlineData("namespace A; public partial class Outer { public partial struct Mid { [AdditiveAttention(Dim = 8)] internal partial class Layer; } }")]
    [InlineData("namespace A; [AdditiveAttention(Dim = 2 * 4)] public sealed partial record Layer;")]
    [InlineData("namespace A; static class Sizes { public const int Hidden = 24; } [AdditiveAttention(Dim = Sizes.Hidden, Units = Sizes.Hidden / 2)] partial class Layer;")]
    [InlineData("namespace A; [AdditiveAttention(Dim = 8)] public partial class Layer { public int Extra => 1; }\npublic partial class Layer { public int More => 2; }")]
    public void Every_declaration_shape_compiles_without_warnings(string declaration)
    {
        var (result, _, outputDiagnostics) = GeneratorHarness.Run("using AttentionGen;\n" + declaration);

        Assert.Empty(result.Diagnostics);
        Assert.Single(result.GeneratedSources);
        Assert.Empty(GeneratorHarness.Problems(outputDiagnostics).Select(d => d.ToString()));
    }
}
