using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace AttentionGen.Generator.Tests;

/// <summary>
/// Incremental caching: an edit that does not touch an attributed class leaves every tracked step Cached or
/// Unchanged (so nothing is re-emitted), and the models carry nothing from the compilation.
/// </summary>
public sealed class IncrementalTests
{
    private const string Layer = """
        using AttentionGen;
        namespace App;
        [AdditiveAttention(Dim = 16, Units = 8)]
        public partial class Aligner;
        """;

    private static readonly string[] s_trackedSteps = { "AdditiveAttention.Parse", "AdditiveAttention.Model" };

    [Fact]
    public void An_unrelated_edit_leaves_every_tracked_step_cached_or_unchanged()
    {
        CSharpCompilation first = GeneratorHarness.Compilation(Layer, "namespace App; public class Other { }");
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(first);

        SyntaxTree other = first.SyntaxTrees.Last();
        CSharpCompilation second = first.ReplaceSyntaxTree(other,
            CSharpSyntaxTree.ParseText("namespace App; public class Other { public int Added => 1; } // edited", GeneratorHarness.ParseOptions, path: other.FilePath));
        driver = driver.RunGenerators(second);

        GeneratorRunResult result = driver.GetRunResult().Results.Single();
        foreach (string step in s_trackedSteps)
        {
            Assert.True(result.TrackedSteps.ContainsKey(step), $"step {step} is not tracked");
            foreach (IncrementalGeneratorRunStep run in result.TrackedSteps[step])
            {
                Assert.All(run.Outputs, output => Assert.True(
                    output.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged,
                    $"{step} output was {output.Reason}"));
            }
        }
        Assert.All(result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs),
            output => Assert.Equal(IncrementalStepRunReason.Cached, output.Reason));
    }

    [Fact]
    public void A_comment_in_the_attributed_file_does_not_re_emit()
    {
        CSharpCompilation first = GeneratorHarness.Compilation(Layer);
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(first);
        SyntaxTree tree = first.SyntaxTrees.Single();
        CSharpCompilation second = first.ReplaceSyntaxTree(tree,
            CSharpSyntaxTree.ParseText(Layer + "\n// a comment\n", GeneratorHarness.ParseOptions, path: tree.FilePath));
        driver = driver.RunGenerators(second);

        GeneratorRunResult result = driver.GetRunResult().Results.Single();
        Assert.All(result.TrackedSteps["AdditiveAttention.Model"].SelectMany(s => s.Outputs),
            output => Assert.True(output.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, output.Reason.ToString()));
        Assert.All(result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs),
            output => Assert.Equal(IncrementalStepRunReason.Cached, output.Reason));
    }

    [Fact]
    public void Changing_the_attribute_re_emits()
    {
        CSharpCompilation first = GeneratorHarness.Compilation(Layer);
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(first);
        SyntaxTree tree = first.SyntaxTrees.Single();
        CSharpCompilation second = first.ReplaceSyntaxTree(tree,
            CSharpSyntaxTree.ParseText(Layer.Replace("Units = 8", "Units = 9"), GeneratorHarness.ParseOptions, path: tree.FilePath));
        driver = driver.RunGenerators(second);

        GeneratorRunResult result = driver.GetRunResult().Results.Single();
        Assert.Contains(result.TrackedSteps["AdditiveAttention.Model"].SelectMany(s => s.Outputs), o => o.Reason == IncrementalStepRunReason.Modified);
        Assert.Contains("public const int Units = 9;", result.GeneratedSources.Single().SourceText.ToString());
    }

    [Fact]
    public void Tracked_outputs_hold_no_symbols_syntax_or_compilations()
    {
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(
            GeneratorHarness.Compilation(Layer, "using AttentionGen; [AdditiveAttention(Dim = 0)] public partial class Broken;"));
        GeneratorRunResult result = driver.GetRunResult().Results.Single();
        int visited = 0;
        // Our own steps (Roslyn's internal ForAttributeWithMetadataName steps legitimately hold syntax).
        foreach (IncrementalGeneratorRunStep step in result.TrackedSteps.Where(s => s.Key.StartsWith("AdditiveAttention.", StringComparison.Ordinal)).SelectMany(s => s.Value))
        {
            foreach ((object value, IncrementalStepRunReason _) in step.Outputs)
            {
                Walk(value, new HashSet<object>(ReferenceEqualityComparer.Instance), ref visited);
            }
        }
        Assert.True(visited > 10, $"the walk visited only {visited} objects");
    }

    // Fails on anything from the compilation; tests with `is` so interfaces are caught too.
    private static void Walk(object? value, HashSet<object> seen, ref int visited)
    {
        if (value is null || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum || !seen.Add(value))
        {
            return;
        }
        Type valueType = value.GetType();
        if (valueType.IsGenericType && valueType.GetGenericTypeDefinition() == typeof(System.Collections.Immutable.ImmutableArray<>)
            && (bool)valueType.GetProperty("IsDefault")!.GetValue(value)!)
        {
            return;
        }
        visited++;
        Assert.False(value is Compilation or ISymbol or SyntaxNode or SyntaxTree or SemanticModel, $"found {value.GetType()} in a tracked output");
        if (value is DiagnosticDescriptor or Microsoft.CodeAnalysis.Text.TextSpan or Microsoft.CodeAnalysis.Text.LinePositionSpan)
        {
            return; // plain immutable data
        }
        if (value is IEnumerable sequence)
        {
            foreach (object? item in sequence)
            {
                Walk(item, seen, ref visited);
            }
        }
        for (Type? type = value.GetType(); type is not null && type != typeof(object); type = type.BaseType)
        {
            foreach (FieldInfo field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (!field.FieldType.IsPointer)
                {
                    Walk(field.GetValue(value), seen, ref visited);
                }
            }
        }
    }
}
