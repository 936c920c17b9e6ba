using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace AttentionGen.Generator.Tests;

/// <summary>[LocalAttention]: snapshots of local-p and local-m configurations and the kind's diagnostics.</summary>
public sealed class LocalGeneratorTests
{
    [Theory]
    [InlineData("Local_Predictive_General_Dim256_Window5_Float", "[LocalAttention(Dim = 256, Window = 5)]")]
    [InlineData("Local_Monotonic_ScaledDot_Dim37_Window3_Double", "[LocalAttention(Dim = 37, Window = 3, Alignment = LocalAlignment.Monotonic, Score = AttentionScore.ScaledDot, ElementType = typeof(double))]")]
    [InlineData("Local_Predictive_Dot_Dim12_Window1_Units5_Value3_Float", "[LocalAttention(Dim = 12, ValueDim = 3, Window = 1, Score = AttentionScore.Dot, PredictorUnits = 5)]")]
    [InlineData("Local_Predictive_Concat_Dim12_Key7_Units5_Window2_Float", "[LocalAttention(Dim = 12, KeyDim = 7, Window = 2, Score = AttentionScore.Concat, Units = 5, PredictorUnits = 3)]")]
    [InlineData("Local_Monotonic_Concat_Dim9_Key7_Units6_Window3_Double", "[LocalAttention(Dim = 9, KeyDim = 7, Window = 3, Alignment = LocalAlignment.Monotonic, Score = AttentionScore.Concat, Units = 6, ElementType = typeof(double))]")]
    public void Generated_source_matches_the_snapshot_and_compiles_without_warnings(string name, string attribute)
    {
        var (result, _, diagnostics) = GeneratorHarness.Run($"using AttentionGen;\nnamespace Samples.Translation;\n{attribute}\npublic partial class LocalAligner;");
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.Problems(diagnostics).Select(d => d.ToString()));
        Snapshot.Verify(Assert.Single(result.GeneratedSources).SourceText.ToString(), name);
    }

    [Theory]
    [InlineData("Window = 0", "Window = 0")]
    [InlineData("Window = -3", "Window = -3")]
    [InlineData("Window = 70000", "Window = 70000")]
    public void ATTN0004_window_out_of_range(string arguments, string shown)
    {
        string source = $"using AttentionGen;\n[LocalAttention(Dim = 8, {arguments})] public partial class LocalAligner;";
        var (result, _, _) = GeneratorHarness.Run(source);
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0004", d.Id);
        Assert.StartsWith(shown + " is out of range: it must be between 1 and 65536", d.GetMessage());
        Assert.Equal(shown, source.Substring(d.Location.SourceSpan.Start, d.Location.SourceSpan.Length));
        Assert.Empty(result.GeneratedSources);
    }

    [Fact]
    public void ATTN0004_missing_window_is_reported_at_the_attribute()
    {
        var (result, _, _) = GeneratorHarness.Run("using AttentionGen;\n[LocalAttention(Dim = 8)] public partial class LocalAligner;");
        Assert.Equal("ATTN0004", Assert.Single(result.Diagnostics).Id);
        Assert.Empty(result.GeneratedSources);
    }

    [Theory]
    [InlineData("Dim = 0, Window = 2", "Dim = 0 is out of range")]
    [InlineData("Dim = 8, KeyDim = -1, Window = 2", "KeyDim = -1 is out of range")]
    [InlineData("Dim = 8, Window = 2, PredictorUnits = 0", "PredictorUnits = 0 is out of range")]
    [InlineData("Dim = 8, Window = 2, PredictorUnits = 65537", "PredictorUnits = 65537 is out of range")]
    [InlineData("Dim = 8, Window = 2, Score = AttentionScore.Concat, Units = 0", "Units = 0 is out of range: it must be between 1 and 65536")]
    [InlineData("Dim = 8, Window = 2, Score = AttentionScore.Concat, Units = 65537", "Units = 65537 is out of range")]
    public void ATTN0003_dimensions_out_of_range(string arguments, string message)
    {
        var (result, _, _) = GeneratorHarness.Run($"using AttentionGen;\n[LocalAttention({arguments})] public partial class LocalAligner;");
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0003", d.Id);
        Assert.StartsWith(message, d.GetMessage());
        Assert.Empty(result.GeneratedSources);
    }

    [Theory]
    [InlineData("Alignment = (LocalAlignment)7", "Alignment = 7 is not a defined value of LocalAlignment", "LocalAlignment.Predictive")]
    [InlineData("Score = (AttentionScore)9", "Score = 9 is not a defined value of AttentionScore", "AttentionScore.ScaledDot")]
    public void ATTN0009_undefined_option(string arguments, string message, string listed)
    {
        var (result, _, _) = GeneratorHarness.Run($"using AttentionGen;\n[LocalAttention(Dim = 8, Window = 2, {arguments})] public partial class LocalAligner;");
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0009", d.Id);
        Assert.Contains(message, d.GetMessage());
        Assert.Contains(listed, d.GetMessage());
        Assert.Empty(result.GeneratedSources);
    }

    [Theory]
    [InlineData("Dot")]
    [InlineData("ScaledDot")]
    public void ATTN0010_dot_scores_need_equal_dimensions(string score)
    {
        var (result, _, _) = GeneratorHarness.Run($"using AttentionGen;\n[LocalAttention(Dim = 8, KeyDim = 6, Window = 2, Score = AttentionScore.{score})] public partial class LocalAligner;");
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0010", d.Id);
        Assert.Contains("KeyDim (6) must equal Dim (8)", d.GetMessage());
        Assert.Empty(result.GeneratedSources);
    }

    [Fact]
    public void ATTN0020_predictor_units_with_monotonic_alignment_warns_and_still_generates()
    {
        const string Source = "using AttentionGen;\n[LocalAttention(Dim = 8, Window = 2, Alignment = LocalAlignment.Monotonic, PredictorUnits = 4)] public partial class LocalAligner;";
        var (result, _, diagnostics) = GeneratorHarness.Run(Source);
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0020", d.Id);
        Assert.Equal(DiagnosticSeverity.Warning, d.Severity);
        Assert.StartsWith("PredictorUnits has no effect with Alignment = LocalAlignment.Monotonic", d.GetMessage());
        Assert.Equal("PredictorUnits = 4", Source.Substring(d.Location.SourceSpan.Start, d.Location.SourceSpan.Length));
        Assert.Equal("docs/diagnostics.md#attn0020", d.Descriptor.HelpLinkUri);
        string source = Assert.Single(result.GeneratedSources).SourceText.ToString();
        Assert.DoesNotContain("PredictorWeight", source);
        Assert.Empty(GeneratorHarness.Problems(diagnostics).Select(x => x.ToString()));
    }

    [Theory]
    [InlineData("General", "")]
    [InlineData("Dot", "")]
    [InlineData("ScaledDot", ", Alignment = LocalAlignment.Monotonic")]
    public void ATTN0020_units_without_the_concat_score_warns_and_still_generates(string score, string more)
    {
        string source = $"using AttentionGen;\n[LocalAttention(Dim = 8, Window = 2, Score = AttentionScore.{score}, Units = 4{more})] public partial class LocalAligner;";
        var (result, _, diagnostics) = GeneratorHarness.Run(source);
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0020", d.Id);
        Assert.Equal(DiagnosticSeverity.Warning, d.Severity);
        Assert.Equal($"Units has no effect with Score = AttentionScore.{score}: only the concat score vₐᵀ tanh(Wₐ [hₜ; h̄ₛ]) has a hidden layer to size; remove it", d.GetMessage());
        Assert.Equal("Units = 4", source.Substring(d.Location.SourceSpan.Start, d.Location.SourceSpan.Length));
        string generated = Assert.Single(result.GeneratedSources).SourceText.ToString();
        Assert.DoesNotContain("ScoreVector", generated);
        Assert.DoesNotContain("const int Units", generated);
        Assert.Empty(GeneratorHarness.Problems(diagnostics).Select(x => x.ToString()));
    }

    [Theory]
    [InlineData("Dim = 8, KeyDim = 5, Window = 2, Score = AttentionScore.Concat")]
    [InlineData("Dim = 8, KeyDim = 12, ValueDim = 3, Window = 1, Score = AttentionScore.Concat, Units = 1, Alignment = LocalAlignment.Monotonic")]
    public void Concat_takes_any_key_dimension_and_units_default_to_Dim(string arguments)
    {
        var (result, _, diagnostics) = GeneratorHarness.Run($"using AttentionGen;\n[LocalAttention({arguments})] public partial class LocalAligner;");
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.Problems(diagnostics).Select(x => x.ToString()));
        string generated = Assert.Single(result.GeneratedSources).SourceText.ToString();
        Assert.Contains($"public const int Units = {(arguments.Contains("Units = 1") ? 1 : 8)};", generated);
        Assert.Contains("new(\"score_weight\", Units, Dim + KeyDim)", generated);
    }

    [Fact]
    public void ATTN0005_local_and_multiplicative_on_one_class()
    {
        var (result, _, _) = GeneratorHarness.Run("using AttentionGen;\n[MultiplicativeAttention(Dim = 8)]\n[LocalAttention(Dim = 8, Window = 2)]\npublic partial class Both;");
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0005", d.Id);
        Assert.Contains("[MultiplicativeAttention] and [LocalAttention]", d.GetMessage());
        Assert.Empty(result.GeneratedSources);
    }

    [Fact]
    public void An_unrelated_edit_leaves_the_local_steps_cached_and_an_attribute_edit_re_emits()
    {
        const string Layer = "using AttentionGen;\nnamespace App;\n[LocalAttention(Dim = 16, Window = 3)]\npublic partial class LocalAligner;";
        CSharpCompilation first = GeneratorHarness.Compilation(Layer, "namespace App; public class Other { }");
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(first);

        SyntaxTree other = first.SyntaxTrees.Last();
        CSharpCompilation second = first.ReplaceSyntaxTree(other,
            CSharpSyntaxTree.ParseText("namespace App; public class Other { public int Added => 1; }", GeneratorHarness.ParseOptions, path: other.FilePath));
        driver = driver.RunGenerators(second);
        GeneratorRunResult result = driver.GetRunResult().Results.Single();
        foreach (string step in new[] { "LocalAttention.Parse", "LocalAttention.Model" })
        {
            Assert.True(result.TrackedSteps.ContainsKey(step), $"step {step} is not tracked");
            Assert.All(result.TrackedSteps[step].SelectMany(s => s.Outputs),
                output => Assert.True(output.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{step} output was {output.Reason}"));
        }
        Assert.All(result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs),
            output => Assert.Equal(IncrementalStepRunReason.Cached, output.Reason));

        SyntaxTree layer = second.SyntaxTrees.First();
        CSharpCompilation third = second.ReplaceSyntaxTree(layer,
            CSharpSyntaxTree.ParseText(Layer.Replace("Window = 3", "Window = 4"), GeneratorHarness.ParseOptions, path: layer.FilePath));
        driver = driver.RunGenerators(third);
        result = driver.GetRunResult().Results.Single();
        Assert.Contains(result.TrackedSteps["LocalAttention.Model"].SelectMany(s => s.Outputs), o => o.Reason == IncrementalStepRunReason.Modified);
        Assert.Contains("public const int Window = 4;", result.GeneratedSources.Single().SourceText.ToString());
    }
}
