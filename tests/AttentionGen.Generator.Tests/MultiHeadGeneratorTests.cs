using System.Linq;
using Microsoft.CodeAnalysis;
using Xunit;

namespace AttentionGen.Generator.Tests;

/// <summary>[MultiHeadAttention]: snapshots of representative configurations and its diagnostics.</summary>
public sealed class MultiHeadGeneratorTests
{
    [Theory]
    [InlineData("MultiHead_Model512_Heads8_Causal_Float", "[MultiHeadAttention(ModelDim = 512, Heads = 8, Causal = true)]")]
    [InlineData("MultiHead_Model120_Heads6_Key7_Value5_NoBias_Double", "[MultiHeadAttention(ModelDim = 120, Heads = 6, KeyDim = 7, ValueDim = 5, Bias = false, ElementType = typeof(double))]")]
    [InlineData("MultiHead_Model64_Heads4_BiasKv_ZeroAttn_Float", "[MultiHeadAttention(ModelDim = 64, Heads = 4, AddBiasKeyValue = true, AddZeroAttention = true)]")]
    public void Generated_source_matches_the_snapshot_and_compiles_without_warnings(string name, string attribute)
    {
        var (result, _, diagnostics) = GeneratorHarness.Run($"using AttentionGen;\nnamespace Samples.Transformer;\n{attribute}\npublic partial class SelfAttention;");
        Assert.Empty(result.Diagnostics);
        Assert.Empty(GeneratorHarness.Problems(diagnostics).Select(d => d.ToString()));
        Snapshot.Verify(Assert.Single(result.GeneratedSources).SourceText.ToString(), name);
    }

    [Theory]
    [InlineData(512, 7)]
    [InlineData(10, 4)]
    [InlineData(6, 12)]
    public void ATTN0007_heads_must_divide_the_model_dimension(int modelDim, int heads)
    {
        var (result, _, _) = GeneratorHarness.Run($"using AttentionGen;\n[MultiHeadAttention(ModelDim = {modelDim}, Heads = {heads})] public partial class SelfAttention;");
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0007", d.Id);
        Assert.Contains($"Heads = {heads} does not divide ModelDim = {modelDim}", d.GetMessage());
        Assert.Equal($"Heads = {heads}".Length, d.Location.SourceSpan.Length); // reported at the Heads argument
        Assert.Empty(result.GeneratedSources);
    }

    [Theory]
    [InlineData("ModelDim = 0, Heads = 1", "ModelDim")]
    [InlineData("ModelDim = 8, Heads = 0", "Heads")]
    [InlineData("ModelDim = 8, Heads = 2, KeyDim = -3", "KeyDim")]
    [InlineData("ModelDim = 8, Heads = 2, ValueDim = 70000", "ValueDim")]
    public void ATTN0003_dimension_out_of_range(string arguments, string property)
    {
        var (result, _, _) = GeneratorHarness.Run($"using AttentionGen;\n[MultiHeadAttention({arguments})] public partial class SelfAttention;");
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0003", d.Id);
        Assert.StartsWith(property + " = ", d.GetMessage());
        Assert.Empty(result.GeneratedSources);
    }
}
