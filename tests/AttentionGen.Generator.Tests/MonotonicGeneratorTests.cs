using System.Linq;
using Microsoft.CodeAnalysis;
using Xunit;

namespace AttentionGen.Generator.Tests;

/// <summary>[MonotonicAttention]: snapshots of both energies and both alignment forms, and the ATTN0040–0049 diagnostics (and ATTN0020 for Units without a hidden layer).</summary>
public sealed class MonotonicGeneratorTests
{
    [Theory]
    [InlineData("Monotonic_Additive_Dim64_Float", "[MonotonicAttention(Dim = 64)]")]
    [InlineData("Monotonic_Additive_Normalized_Dim12_Units37_Double", "[MonotonicAttention(Dim = 12, Units = 37, Normalize = true, ElementType = typeof(double))]")]
    [InlineData("Monotonic_MoChA_Additive_Chunk3_Dim16_Units8_Value5_Float", "[MonotonicAttention(Dim = 16, Units = 8, ValueDim = 5, ChunkSize = 3)]")]
    [InlineData("Monotonic_Multiplicative_Dim37_Value5_Double_Parallel", "[MonotonicAttention(Dim = 37, ValueDim = 5, Score = MonotonicScore.Multiplicative, Mode = MonotonicMode.Parallel, ElementType = typeof(double), InitialEnergyBias = -1.5, NoiseStdDev = 0.5)]")]
    public void Generated_source_matches_the_snapshot_and_compiles_without_warnings(string name, string attribute)
    {
        var (result, _, diagnostics) = GeneratorHarness.Run($"using AttentionGen;\nnamespace Samples.Speech;\n{attribute}\npublic partial class StreamingAligner;");
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.Problems(diagnostics).Select(d => d.ToString()));
        GeneratedSourceResult source = Assert.Single(result.GeneratedSources);
        Assert.Equal("Samples.Speech.StreamingAligner.MonotonicAttention.g.cs", source.HintName);
        Snapshot.Verify(source.SourceText.ToString(), name);
    }

    private static Diagnostic Single(string arguments, string id)
    {
        string source = $"using AttentionGen;\n[MonotonicAttention({arguments})] public partial class Aligner;";
        var (result, _, _) = GeneratorHarness.Run(source);
        Assert.Empty(result.GeneratedSources);
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal(id, d.Id);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal("docs/diagnostics.md#" + id.ToLowerInvariant(), d.Descriptor.HelpLinkUri);
        return d;
    }

    private static string Located(Diagnostic d, string arguments)
    {
        string source = $"using AttentionGen;\n[MonotonicAttention({arguments})] public partial class Aligner;";
        return source.Substring(d.Location.SourceSpan.Start, d.Location.SourceSpan.Length);
    }

    [Theory]
    [InlineData("double.NaN", "NaN")]
    [InlineData("double.PositiveInfinity", "∞")]
    [InlineData("-1.0 / 0.0", "-∞")]
    public void ATTN0040_energy_bias_not_finite(string value, string shown)
    {
        string arguments = $"Dim = 8, InitialEnergyBias = {value}";
        Diagnostic d = Single(arguments, "ATTN0040");
        Assert.Equal($"InitialEnergyBias = {value}", Located(d, arguments));
        Assert.StartsWith($"InitialEnergyBias = {shown} is not a finite number", d.GetMessage(System.Globalization.CultureInfo.InvariantCulture).Replace("Infinity", "∞"));
    }

    [Theory]
    [InlineData("-0.5", "-0.5")]
    [InlineData("double.NaN", "NaN")]
    [InlineData("double.PositiveInfinity", "∞")]
    public void ATTN0041_noise_out_of_range(string value, string shown)
    {
        string arguments = $"Dim = 8, NoiseStdDev = {value}";
        Diagnostic d = Single(arguments, "ATTN0041");
        Assert.Equal($"NoiseStdDev = {value}", Located(d, arguments));
        Assert.StartsWith($"NoiseStdDev = {shown} is out of range", d.GetMessage().Replace("Infinity", "∞"));
    }

    [Fact]
    public void ATTN0020_units_with_the_multiplicative_energy_warns_and_still_generates()
    {
        const string Source = "using AttentionGen;\n[MonotonicAttention(Dim = 8, Units = 16, Score = MonotonicScore.Multiplicative)] public partial class Aligner;";
        var (result, _, diagnostics) = GeneratorHarness.Run(Source);
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0020", d.Id);
        Assert.Equal(DiagnosticSeverity.Warning, d.Severity);
        Assert.StartsWith("Units has no effect with Score = MonotonicScore.Multiplicative", d.GetMessage());
        Assert.Equal("Units = 16", Source.Substring(d.Location.SourceSpan.Start, d.Location.SourceSpan.Length));
        string source = Assert.Single(result.GeneratedSources).SourceText.ToString();
        Assert.Contains("public const int Units = 8;", source);
        Assert.Empty(GeneratorHarness.Problems(diagnostics).Select(x => x.ToString()));
    }

    [Fact]
    public void ATTN0042_normalize_with_the_multiplicative_energy()
    {
        const string arguments = "Dim = 8, Score = MonotonicScore.Multiplicative, Normalize = true";
        Diagnostic d = Single(arguments, "ATTN0042");
        Assert.Equal("Normalize = true", Located(d, arguments));
        Assert.StartsWith("Normalize = true cannot apply to Score = MonotonicScore.Multiplicative", d.GetMessage());
    }

    [Fact]
    public void ATTN0043_negative_chunk_size()
    {
        const string arguments = "Dim = 8, ChunkSize = -2";
        Diagnostic d = Single(arguments, "ATTN0043");
        Assert.Equal("ChunkSize = -2", Located(d, arguments));
        Assert.StartsWith("ChunkSize = -2 is out of range", d.GetMessage());
    }

    [Theory]
    [InlineData("Dim = 8, Mode = (MonotonicMode)7", "ATTN0009")]
    [InlineData("Dim = 8, Score = (MonotonicScore)3", "ATTN0009")]
    [InlineData("Dim = 0", "ATTN0003")]
    [InlineData("Dim = 8, ValueDim = -1", "ATTN0003")]
    [InlineData("Dim = 8, Units = 70000", "ATTN0003")]
    [InlineData("Dim = 8, ElementType = typeof(int)", "ATTN0006")]
    public void Shared_diagnostics_apply_to_monotonic_attention(string arguments, string id) => Single(arguments, id);

    [Theory]
    [InlineData("Dim = 8, InitialEnergyBias = 0, NoiseStdDev = 0")]
    [InlineData("Dim = 8, InitialEnergyBias = -4")]
    [InlineData("Dim = 3, Units = 5, ValueDim = 2, Mode = MonotonicMode.Parallel, ElementType = typeof(double)")]
    [InlineData("Dim = 3, Score = MonotonicScore.Multiplicative, ValueDim = 129")]
    [InlineData("Dim = 3, Normalize = false, Score = MonotonicScore.Multiplicative")]
    [InlineData("Dim = 70, Units = 5000, Normalize = true")]
    public void Legal_configurations_generate_clean_code(string arguments)
    {
        var (result, _, diagnostics) = GeneratorHarness.Run($"using AttentionGen;\nnamespace A;\n[MonotonicAttention({arguments})] public partial class Aligner;");
        Assert.Empty(result.Diagnostics);
        Assert.Single(result.GeneratedSources);
        Assert.Empty(GeneratorHarness.Problems(diagnostics).Select(d => d.ToString()));
    }
}

/// <summary>The monotonic kind's model is value-equatable: an unrelated edit re-emits nothing, a changed option re-emits.</summary>
public sealed class MonotonicIncrementalTests
{
    private const string Layer = """
        using AttentionGen;
        namespace App;
        [MonotonicAttention(Dim = 16, Units = 8, Normalize = true, InitialEnergyBias = -2.5)]
        public partial class Aligner;
        """;

    [Fact]
    public void An_unrelated_edit_leaves_the_model_cached_and_an_option_change_re_emits()
    {
        Microsoft.CodeAnalysis.CSharp.CSharpCompilation first = GeneratorHarness.Compilation(Layer, "namespace App; public class Other { }");
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(first);
        SyntaxTree other = first.SyntaxTrees.Last();
        var second = first.ReplaceSyntaxTree(other,
            Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree.ParseText("namespace App; public class Other { public int Added => 1; }", GeneratorHarness.ParseOptions, path: other.FilePath));
        driver = driver.RunGenerators(second);
        GeneratorRunResult result = driver.GetRunResult().Results.Single();
        Assert.All(result.TrackedSteps["MonotonicAttention.Model"].SelectMany(s => s.Outputs),
            output => Assert.True(output.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, output.Reason.ToString()));
        Assert.All(result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs),
            output => Assert.Equal(IncrementalStepRunReason.Cached, output.Reason));

        SyntaxTree layer = second.SyntaxTrees.First();
        var third = second.ReplaceSyntaxTree(layer,
            Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree.ParseText(Layer.Replace("-2.5", "-3"), GeneratorHarness.ParseOptions, path: layer.FilePath));
        driver = driver.RunGenerators(third);
        result = driver.GetRunResult().Results.Single();
        Assert.Contains(result.TrackedSteps["MonotonicAttention.Model"].SelectMany(s => s.Outputs), o => o.Reason == IncrementalStepRunReason.Modified);
        Assert.Contains("(float)(-3d)", result.GeneratedSources.Single().SourceText.ToString());
    }
}
