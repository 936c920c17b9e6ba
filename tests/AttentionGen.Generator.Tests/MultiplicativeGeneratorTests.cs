using System.Linq;
using Microsoft.CodeAnalysis;
using Xunit;

namespace AttentionGen.Generator.Tests;

/// <summary>[MultiplicativeAttention]: snapshots of representative configurations and its own diagnostics.</summary>
public sealed class MultiplicativeGeneratorTests
{
    [Theory]
    [InlineData("Multiplicative_General_Dim256_Float", "[MultiplicativeAttention(Dim = 256)]")]
    [InlineData("Multiplicative_ScaledDot_Dim37_Double_LearnedScale_Causal", "[MultiplicativeAttention(Dim = 37, Score = AttentionScore.ScaledDot, LearnedScale = true, Causal = true, ElementType = typeof(double))]")]
    public void Generated_source_matches_the_snapshot_and_compiles_without_warnings(string name, string attribute)
    {
        var (result, _, diagnostics) = GeneratorHarness.Run($"using AttentionGen;\nnamespace Samples.Translation;\n{attribute}\npublic partial class Scorer;");
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.Problems(diagnostics).Select(d => d.ToString()));
        Snapshot.Verify(Assert.Single(result.GeneratedSources).SourceText.ToString(), name);
    }

    [Fact]
    public void ATTN0009_undefined_score()
    {
        var (result, _, _) = GeneratorHarness.Run("using AttentionGen;\n[MultiplicativeAttention(Dim = 8, Score = (AttentionScore)42)] public partial class Scorer;");
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0009", d.Id);
        Assert.Contains("Score = 42 is not a defined value of AttentionScore", d.GetMessage());
        Assert.Contains("AttentionScore.General", d.GetMessage());
        Assert.Empty(result.GeneratedSources);
    }

    [Theory]
    [InlineData("Dot")]
    [InlineData("ScaledDot")]
    public void ATTN0010_dot_scores_need_equal_dimensions(string score)
    {
        var (result, _, _) = GeneratorHarness.Run($"using AttentionGen;\n[MultiplicativeAttention(Dim = 8, KeyDim = 6, Score = AttentionScore.{score})] public partial class Scorer;");
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0010", d.Id);
        Assert.Contains("KeyDim (6) must equal Dim (8)", d.GetMessage());
        Assert.Empty(result.GeneratedSources);
    }

    [Fact]
    public void ATTN0005_additive_and_multiplicative_on_one_class()
    {
        var (result, _, _) = GeneratorHarness.Run("using AttentionGen;\n[AdditiveAttention(Dim = 8)]\n[MultiplicativeAttention(Dim = 8)]\npublic partial class Both;");
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0005", d.Id);
        Assert.Contains("[AdditiveAttention] and [MultiplicativeAttention]", d.GetMessage());
        Assert.Empty(result.GeneratedSources);
    }
}

/// <summary>[StaticAttention]: snapshot and its dimension diagnostic.</summary>
public sealed class StaticGeneratorTests
{
    [Fact]
    public void Generated_source_matches_the_snapshot_and_compiles_without_warnings()
    {
        var (result, _, diagnostics) = GeneratorHarness.Run("using AttentionGen;\nnamespace Samples.Documents;\n[StaticAttention(Dim = 100, Units = 100)]\npublic partial class SentencePooling;");
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.Problems(diagnostics).Select(d => d.ToString()));
        Snapshot.Verify(Assert.Single(result.GeneratedSources).SourceText.ToString(), "Static_Dim100_Units100_Float");
    }

    [Fact]
    public void ATTN0003_units_out_of_range()
    {
        var (result, _, _) = GeneratorHarness.Run("using AttentionGen;\n[StaticAttention(Dim = 8, Units = 0)] public partial class Pooling;");
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0003", d.Id);
        Assert.StartsWith("Units = 0 is out of range", d.GetMessage());
    }
}

/// <summary>[StructuredSelfAttention]: snapshot and its diagnostics.</summary>
public sealed class StructuredGeneratorTests
{
    [Fact]
    public void Generated_source_matches_the_snapshot_and_compiles_without_warnings()
    {
        var (result, _, diagnostics) = GeneratorHarness.Run("using AttentionGen;\nnamespace Samples.Sentences;\n[StructuredSelfAttention(Dim = 64, Units = 32, Hops = 4)]\npublic partial class SentenceEmbedding;");
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.Problems(diagnostics).Select(d => d.ToString()));
        Snapshot.Verify(Assert.Single(result.GeneratedSources).SourceText.ToString(), "Structured_Dim64_Units32_Hops4_Float");
    }

    [Theory]
    [InlineData("Hops = 0", "ATTN0003", "Hops = 0 is out of range: it must be between 1 and 4096")]
    [InlineData("Hops = 2, Penalty = (PenaltyNorm)9", "ATTN0009", "Penalty = 9 is not a defined value of PenaltyNorm")]
    public void Bad_options_are_reported(string arguments, string id, string message)
    {
        var (result, _, _) = GeneratorHarness.Run($"using AttentionGen;\n[StructuredSelfAttention(Dim = 8, {arguments})] public partial class Embedding;");
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal(id, d.Id);
        Assert.StartsWith(message, d.GetMessage());
        Assert.Empty(result.GeneratedSources);
    }
}

/// <summary>[KeyValueAttention]: snapshot and its window diagnostic.</summary>
public sealed class KeyValueGeneratorTests
{
    [Fact]
    public void Generated_source_matches_the_snapshot_and_compiles_without_warnings()
    {
        var (result, _, diagnostics) = GeneratorHarness.Run("using AttentionGen;\nnamespace Samples.Language;\n[KeyValueAttention(Dim = 100, Window = 5, Split = KeyValueSplit.KeyValuePredict)]\npublic partial class ShortMemory;");
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.Problems(diagnostics).Select(d => d.ToString()));
        Snapshot.Verify(Assert.Single(result.GeneratedSources).SourceText.ToString(), "KeyValue_Dim100_Window5_Predict_Float");
    }

    [Theory]
    [InlineData("Window = 0", "Window = 0")]
    [InlineData("Window = -2", "Window = -2")]
    public void ATTN0004_window_out_of_range(string arguments, string shown)
    {
        var (result, _, _) = GeneratorHarness.Run($"using AttentionGen;\n[KeyValueAttention(Dim = 8, {arguments})] public partial class Memory;");
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0004", d.Id);
        Assert.StartsWith(shown + " is out of range: it must be between 1 and 65536", d.GetMessage());
        Assert.Empty(result.GeneratedSources);
    }

    [Fact]
    public void ATTN0004_missing_window_is_reported_at_the_attribute()
    {
        var (result, _, _) = GeneratorHarness.Run("using AttentionGen;\n[KeyValueAttention(Dim = 8)] public partial class Memory;");
        Assert.Equal("ATTN0004", Assert.Single(result.Diagnostics).Id);
    }
}

/// <summary>[HardAttention]: snapshot and its selection diagnostic.</summary>
public sealed class HardGeneratorTests
{
    [Fact]
    public void Generated_source_matches_the_snapshot_and_compiles_without_warnings()
    {
        var (result, _, diagnostics) = GeneratorHarness.Run("using AttentionGen;\nnamespace Samples.Captions;\n[HardAttention(Dim = 64, Selection = HardSelection.Sample)]\npublic partial class Glimpse;");
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.Problems(diagnostics).Select(d => d.ToString()));
        Snapshot.Verify(Assert.Single(result.GeneratedSources).SourceText.ToString(), "Hard_Dim64_Sample_Float");
    }

    [Fact]
    public void ATTN0009_undefined_selection()
    {
        var (result, _, _) = GeneratorHarness.Run("using AttentionGen;\n[HardAttention(Dim = 8, Selection = (HardSelection)5)] public partial class Glimpse;");
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0009", d.Id);
        Assert.Contains("HardSelection.Sample", d.GetMessage());
    }
}
