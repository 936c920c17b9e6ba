using System.Linq;
using Microsoft.CodeAnalysis;
using Xunit;

namespace AttentionGen.Generator.Tests;

/// <summary>
/// Each diagnostic fires for its mistake, at the attribute argument (or declaration) that holds it, with a
/// message naming the offending value, and nothing is generated for the class.
/// </summary>
public sealed class DiagnosticTests
{
    private static string s_lastSource = "";

    private static Diagnostic Single(string source, string id)
    {
        s_lastSource = "using AttentionGen;\n" + source;
        var (result, _, _) = GeneratorHarness.Run(s_lastSource);
        Assert.Empty(result.GeneratedSources);
        Diagnostic diagnostic = Assert.Single(result.Diagnostics);
        Assert.Equal(id, diagnostic.Id);
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        Assert.StartsWith("docs/diagnostics.md#" + id.ToLowerInvariant(), diagnostic.Descriptor.HelpLinkUri);
        return diagnostic;
    }

    // Diagnostics travel as plain data, so their locations are file spans without a syntax tree: read the span
    // from the source the test compiled.
    private static string Located(Diagnostic diagnostic)
    {
        Assert.Equal("Source0.cs", diagnostic.Location.GetLineSpan().Path);
        return s_lastSource.Substring(diagnostic.Location.SourceSpan.Start, diagnostic.Location.SourceSpan.Length);
    }

    // ATTN0001 comes from PartialLayerAnalyzer (so the code fix can attach to it); the generator only stays silent.
    private static Diagnostic FromAnalyzer(string source)
    {
        s_lastSource = "using AttentionGen;\n" + source;
        var (result, _, _) = GeneratorHarness.Run(s_lastSource);
        Assert.Empty(result.GeneratedSources);
        Assert.Empty(result.Diagnostics);
        var analyzers = System.Collections.Immutable.ImmutableArray.Create<Microsoft.CodeAnalysis.Diagnostics.DiagnosticAnalyzer>(new AttentionGen.Generator.Analyzers.PartialLayerAnalyzer());
        var diagnostics = Microsoft.CodeAnalysis.Diagnostics.DiagnosticAnalyzerExtensions.WithAnalyzers(GeneratorHarness.Compilation(s_lastSource), analyzers)
            .GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
        Diagnostic d = Assert.Single(diagnostics);
        Assert.Equal("ATTN0001", d.Id);
        Assert.StartsWith("docs/diagnostics.md#attn0001", d.Descriptor.HelpLinkUri);
        return d;
    }

    private static string LocatedInSource(Diagnostic diagnostic) => s_lastSource.Substring(diagnostic.Location.SourceSpan.Start, diagnostic.Location.SourceSpan.Length);

    [Fact]
    public void ATTN0001_class_not_partial()
    {
        Diagnostic d = FromAnalyzer("[AdditiveAttention(Dim = 8)] public class Aligner { }");
        Assert.Equal("Aligner", LocatedInSource(d));
        Assert.Contains("'Aligner'", d.GetMessage());
        Assert.Contains("[AdditiveAttention]", d.GetMessage());
    }

    [Fact]
    public void ATTN0001_containing_type_not_partial()
    {
        Diagnostic d = FromAnalyzer("public class Outer { [AdditiveAttention(Dim = 8)] public partial class Aligner { } }");
        Assert.Contains("'Outer'", d.GetMessage());
    }

    [Fact]
    public void ATTN0002_generic_class()
    {
        Diagnostic d = Single("[AdditiveAttention(Dim = 8)] public partial class Aligner<T> { }", "ATTN0002");
        Assert.Contains("'Aligner'", d.GetMessage());
    }

    [Fact]
    public void ATTN0002_nested_in_generic_type()
    {
        Diagnostic d = Single("public partial class Outer<T> { [AdditiveAttention(Dim = 8)] public partial class Aligner { } }", "ATTN0002");
        Assert.Contains("'Outer'", d.GetMessage());
    }

    [Theory]
    [InlineData("Dim = 0", "Dim = 0")]
    [InlineData("Dim = -3", "Dim = -3")]
    [InlineData("Dim = 70000", "Dim = 70000")]
    [InlineData("Dim = 8, Units = 0", "Units = 0")]
    [InlineData("Dim = 8, ValueDim = 100000", "ValueDim = 100000")]
    public void ATTN0003_dimension_out_of_range(string arguments, string offending)
    {
        Diagnostic d = Single($"[AdditiveAttention({arguments})] public partial class Aligner;", "ATTN0003");
        Assert.Equal(offending, Located(d));
        Assert.StartsWith(offending + " is out of range: it must be between 1 and 65536", d.GetMessage());
    }

    [Fact]
    public void ATTN0003_missing_dim_reports_at_the_attribute()
    {
        Diagnostic d = Single("[AdditiveAttention] public partial class Aligner;", "ATTN0003");
        Assert.Equal("AdditiveAttention", Located(d));
        Assert.Contains("Dim = 0", d.GetMessage());
    }

    [Fact]
    public void ATTN0005_two_attention_attributes()
    {
        const string source = """
            public sealed class OtherAttention : AttentionLayerAttribute { }
            [OtherAttention]
            [AdditiveAttention(Dim = 8)]
            public partial class Aligner;
            """;
        Diagnostic d = Single(source, "ATTN0005");
        Assert.Equal("AdditiveAttention(Dim = 8)", Located(d));
        Assert.Contains("[OtherAttention] and [AdditiveAttention]", d.GetMessage());
    }

    [Fact]
    public void ATTN0005_first_attribute_stays_silent_but_generates_nothing()
    {
        const string source = """
            public sealed class OtherAttention : AttentionLayerAttribute { }
            [AdditiveAttention(Dim = 8)]
            [OtherAttention]
            public partial class Aligner;
            """;
        var (result, _, _) = GeneratorHarness.Run("using AttentionGen;\n" + source);
        Assert.Empty(result.GeneratedSources);
        Assert.Empty(result.Diagnostics); // the second attribute's own kind would report; OtherAttention has no generator
    }

    [Theory]
    [InlineData("int")]
    [InlineData("System.Half")]
    [InlineData("decimal")]
    public void ATTN0006_unsupported_element_type(string type)
    {
        Diagnostic d = Single($"[AdditiveAttention(Dim = 8, ElementType = typeof({type}))] public partial class Aligner;", "ATTN0006");
        Assert.Equal($"ElementType = typeof({type})", Located(d));
    }

    [Theory]
    [InlineData("static", "static")]
    [InlineData("abstract", "abstract")]
    public void ATTN0008_static_or_abstract(string modifier, string word)
    {
        Diagnostic d = Single($"[AdditiveAttention(Dim = 8)] public {modifier} partial class Aligner {{ }}", "ATTN0008");
        Assert.Contains($"is {word}", d.GetMessage());
    }

    [Theory]
    [InlineData("partial struct Aligner { }", "a struct")]
    [InlineData("partial record struct Aligner;", "a record struct")]
    public void ATTN0008_struct(string declaration, string words)
    {
        Diagnostic d = Single($"[AdditiveAttention(Dim = 8)] public {declaration}", "ATTN0008");
        Assert.Contains($"'Aligner' is {words};", d.GetMessage());
        Assert.Equal("Aligner", Located(d));
    }

    [Theory]
    [InlineData("MultiplicativeAttention(Dim = 8, Score = AttentionScore.Concat)", "MultiplicativeAttention")]
    [InlineData("MultiplicativeAttention(Dim = 8, KeyDim = 6, Score = AttentionScore.Concat, LearnedScale = true)", "MultiplicativeAttention")]
    [InlineData("HardAttention(Dim = 8, Score = AttentionScore.Concat)", "HardAttention")]
    public void ATTN0010_concat_score_over_every_key_is_additive_attention(string attribute, string kind)
    {
        Diagnostic d = Single($"[{attribute}] public partial class Scorer;", "ATTN0010");
        Assert.StartsWith($"Score = AttentionScore.Concat is not offered by [{kind}]", d.GetMessage());
        Assert.Contains("is [AdditiveAttention] (Bahdanau's form vᵀ tanh(W_q q + W_k k + b))", d.GetMessage());
        Assert.Contains("[LocalAttention(Score = AttentionScore.Concat)]", d.GetMessage());
        Assert.Equal("Score = AttentionScore.Concat", Located(d));
    }

    [Theory]
    [InlineData("MultiHeadAttention(ModelDim = 8, Heads = 2)", "Heads", "the constant 'Heads'")]
    [InlineData("AdditiveAttention(Dim = 8)", "Units", "the constant 'Units'")]
    [InlineData("AdditiveAttention(Dim = 8)", "Tape", "the nested class 'Tape'")]
    [InlineData("MultiplicativeAttention(Dim = 8)", "Forward", "the method 'Forward'")]
    [InlineData("StaticAttention(Dim = 8)", "Parameters", "the property 'Parameters'")]
    [InlineData("LocalAttention(Dim = 8, Window = 2)", "MaxDegreeOfParallelism", "the property 'MaxDegreeOfParallelism'")]
    public void ATTN0011_class_named_as_a_generated_member(string attribute, string name, string member)
    {
        Diagnostic d = Single($"[{attribute}] public partial class {name};", "ATTN0011");
        Assert.Equal(name, Located(d));
        string kind = attribute.Substring(0, attribute.IndexOf('('));
        Assert.Equal($"The class '{name}' has the name of {member} that [{kind}] generates, and a member cannot have its class's name; rename the class", d.GetMessage());
    }

    [Theory]
    [InlineData("namespace Models { public partial class Outer { [MultiHeadAttention(ModelDim = 8, Heads = 2)] public partial class Heads; } }", "Heads")]
    [InlineData("public partial record Tape; [AdditiveAttention(Dim = 8)] public partial record Tape;", "Tape")]
    public void ATTN0011_in_a_namespace_nested_or_on_a_record(string declaration, string name)
    {
        Diagnostic d = Single(declaration, "ATTN0011");
        Assert.Equal(name, Located(d));
    }

    // Names a generated member mentions (a parameter, a word of a comment) are no collision; nor are
    // names that differ from a member's in case.
    [Theory]
    [InlineData("AdditiveAttention(Dim = 8)", "Query")]
    [InlineData("MultiHeadAttention(ModelDim = 8, Heads = 2)", "heads")]
    [InlineData("MultiHeadAttention(ModelDim = 8, Heads = 2)", "Attention")]
    [InlineData("MultiplicativeAttention(Dim = 8)", "Keys")]
    public void A_class_whose_name_only_appears_in_the_generated_code_is_generated(string attribute, string name)
    {
        var (result, _, outputDiagnostics) = GeneratorHarness.Run($"using AttentionGen;\n[{attribute}] public partial class {name};");
        Assert.Empty(result.Diagnostics);
        Assert.Single(result.GeneratedSources);
        Assert.Empty(GeneratorHarness.Problems(outputDiagnostics));
    }

    [Theory]
    [InlineData("namespace App { public class Shapes { } [AdditiveAttention(Dim = 8)] public partial class Aligner; }",
        "Aligner", "Shapes", "AttentionGen.Shapes", "the class 'App.Shapes'")]
    [InlineData("namespace App { [AdditiveAttention(Dim = 8)] public partial class Reductions; }",
        "Reductions", "Reductions", "AttentionGen.Numerics.Reductions", "the class 'App.Reductions'")]
    [InlineData("public partial class Outer { public struct Math { } [MultiHeadAttention(ModelDim = 8, Heads = 2)] public partial class Layer; }",
        "Layer", "Math", "System.Math", "the struct 'Outer.Math'")]
    [InlineData("[AdditiveAttention(Dim = 8)] public partial class Aligner { private int MemoryMarshal; }",
        "Aligner", "MemoryMarshal", "System.Runtime.InteropServices.MemoryMarshal", "the field 'Aligner.MemoryMarshal'")]
    [InlineData("namespace App.AttentionMath { public class X { } } namespace App { [MultiplicativeAttention(Dim = 8)] public partial class Scorer; }",
        "Scorer", "AttentionMath", "AttentionGen.Numerics.AttentionMath", "the namespace 'App.AttentionMath'")]
    [InlineData("public class Base { protected static void Unsafe() { } } [StaticAttention(Dim = 8)] public partial class Pooling : Base;",
        "Pooling", "Unsafe", "System.Runtime.CompilerServices.Unsafe", "the method 'Base.Unsafe()'")]
    [InlineData("namespace App.System { public class X { } } namespace App { [MultiHeadAttention(ModelDim = 8, Heads = 2)] public partial class Layer; }",
        "Layer", "System", "the namespace System", "the namespace 'App.System'")]
    public void ATTN0012_a_name_the_generated_code_uses_is_hidden(string declarations, string layer, string name, string meant, string found)
    {
        Diagnostic d = Single(declarations, "ATTN0012");
        Assert.Equal(layer, Located(d));
        Assert.Equal($"The code generated for '{layer}' uses '{name}' for {meant}, but where '{layer}' is declared '{name}' is {found}; rename {found}, or declare the layer in another namespace", d.GetMessage());
    }

    // What the generated file does not see, or sees after its own members: another file's using directive, a type of
    // another arity, a type named as a generated member, a base class's private type, the runtime's own namespace.
    [Theory]
    [InlineData("namespace Lib { public class Shapes { } } namespace App { using Lib; [AdditiveAttention(Dim = 8)] public partial class Aligner; }")]
    [InlineData("namespace App { public class Span { } public class Reductions<T> { } [AdditiveAttention(Dim = 8)] public partial class Aligner; }")]
    [InlineData("namespace App { public class Units { } public class Tape { } [AdditiveAttention(Dim = 8)] public partial class Aligner; }")]
    [InlineData("namespace App { public class Base { private class Shapes { } } [AdditiveAttention(Dim = 8)] public partial class Aligner : Base; }")]
    [InlineData("namespace AttentionGen.Models { [MultiHeadAttention(ModelDim = 8, Heads = 2)] public partial class Layer; }")]
    public void Names_the_generated_file_does_not_see_do_not_hide_its_own(string declarations)
    {
        var (result, _, outputDiagnostics) = GeneratorHarness.Run("using AttentionGen;\n" + declarations);
        Assert.Empty(result.Diagnostics);
        Assert.Single(result.GeneratedSources);
        Assert.Empty(GeneratorHarness.Problems(outputDiagnostics));
    }

    // Without ATTN0012 the compiler reports the hiding inside the generated file: the cases above are real breakages.
    [Fact]
    public void A_hidden_name_breaks_the_generated_code_when_it_is_generated_anyway()
    {
        var (result, _, _) = GeneratorHarness.Run("using AttentionGen;\nnamespace App { public class Shapes { } [AdditiveAttention(Dim = 8)] public partial class Aligner; }");
        Assert.Equal("ATTN0012", Assert.Single(result.Diagnostics).Id);
        var source = GeneratorHarness.Run("using AttentionGen;\nnamespace App { [AdditiveAttention(Dim = 8)] public partial class Aligner; }").Result.GeneratedSources.Single().SourceText.ToString();
        var compilation = GeneratorHarness.Compilation("namespace App { public class Shapes { } }", source);
        Assert.Contains(compilation.GetDiagnostics(), d => d.Severity == DiagnosticSeverity.Error && d.GetMessage().Contains("Shapes"));
    }

    // A global using directive applies to the generated file too: an alias of a name the generated code uses, or a namespace
    // (or a type, with using static) that brings another type of that name and arity, breaks it from another file.
    [Theory]
    [InlineData("global using Shapes = Lib.Tools;", "Shapes", "AttentionGen.Shapes", "mean the class 'Lib.Tools'")]
    [InlineData("global using Lib;", "Reductions", "AttentionGen.Numerics.Reductions", "ambiguous with the class 'Lib.Reductions'")]
    [InlineData("global using static Lib.Holder;", "BatchParallel", "AttentionGen.BatchParallel", "ambiguous with the class 'Lib.Holder.BatchParallel'")]
    [InlineData("global using Lib.Memory;", "MemoryMarshal", "System.Runtime.InteropServices.MemoryMarshal", "ambiguous with the struct 'Lib.Memory.MemoryMarshal'")]
    public void ATTN0013_a_global_using_directive_gives_a_generated_name_another_meaning(string directive, string name, string meant, string meaning)
    {
        s_lastSource = "using AttentionGen;\nnamespace App { [AdditiveAttention(Dim = 8)] public partial class Aligner; }";
        var (result, _, _) = GeneratorHarness.Run(s_lastSource, directive, GlobalUsingLibrary);
        Diagnostic d = Assert.Single(result.Diagnostics);
        Assert.Equal("ATTN0013", d.Id);
        Assert.Equal("Aligner", Located(d));
        Assert.Equal($"The code generated for 'Aligner' uses '{name}' for {meant}, but '{directive}' makes '{name}' {meaning} in every file of the project; rename the alias, or import that namespace with a using directive in the files that need it", d.GetMessage());
        Assert.Empty(result.GeneratedSources);
    }

    private const string GlobalUsingLibrary = """
        namespace Lib { public class Tools { } public class Reductions { } public class Shapes<T> { } public static class Holder { public class BatchParallel { } } }
        namespace Lib.Memory { public struct MemoryMarshal { } }
        namespace Lib.Quiet { public class Span { } public class Reductions<T> { } }
        """;

    // Global using directives that leave the generated file's names alone: the runtime's own namespace or type under its own
    // name, a type of another arity, a namespace without a type of that name; and a using directive of the layer's file that
    // is not global.
    [Theory]
    [InlineData("global using AttentionGen;")]
    [InlineData("global using Shapes = AttentionGen.Shapes;")]
    [InlineData("global using Lib.Quiet;")]
    [InlineData("global using Tools = Lib.Tools;")]
    [InlineData("using Lib;")]
    public void Global_using_directives_that_mean_the_same_or_nothing_of_the_generated_names_are_not_reported(string directive)
    {
        var (result, _, outputDiagnostics) = GeneratorHarness.Run("using AttentionGen;\nnamespace App { [AdditiveAttention(Dim = 8)] public partial class Aligner; }", directive, GlobalUsingLibrary);
        Assert.Empty(result.Diagnostics);
        Assert.Single(result.GeneratedSources);
        Assert.Empty(GeneratorHarness.Problems(outputDiagnostics));
    }

    // Without ATTN0013 the compiler reports the alias and the ambiguity inside the generated file.
    [Theory]
    [InlineData("global using Shapes = Lib.Tools;", "'Tools' does not contain a definition for 'RequireLength'")]
    [InlineData("global using Lib;", "'Reductions' is an ambiguous reference")]
    public void A_global_using_that_gives_a_name_another_meaning_breaks_the_generated_code(string directive, string error)
    {
        var source = GeneratorHarness.Run("using AttentionGen;\nnamespace App { [AdditiveAttention(Dim = 8)] public partial class Aligner; }").Result.GeneratedSources.Single().SourceText.ToString();
        var compilation = GeneratorHarness.Compilation(directive, GlobalUsingLibrary, source);
        Assert.Contains(compilation.GetDiagnostics(), d => d.Severity == DiagnosticSeverity.Error && d.GetMessage().Contains(error));
    }

    [Fact]
    public void Several_mistakes_are_all_reported_and_nothing_is_generated()
    {
        var (result, _, _) = GeneratorHarness.Run("using AttentionGen;\n[AdditiveAttention(Dim = 0, Units = -1, ElementType = typeof(int))] public partial class Aligner;");
        Assert.Empty(result.GeneratedSources);
        Assert.Equal(new[] { "ATTN0003", "ATTN0003", "ATTN0006" }, result.Diagnostics.Select(d => d.Id).OrderBy(x => x));
    }

    [Fact]
    public void Every_descriptor_has_a_section_in_the_diagnostics_docs()
    {
        string docs = System.IO.File.ReadAllText(System.IO.Path.Combine(RepositoryRoot(), "docs", "diagnostics.md"));
        foreach (var field in typeof(AttentionGenerator).Assembly.GetType("AttentionGen.Generator.Diagnostics.DiagnosticDescriptors")!
                     .GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
                     .Where(f => f.FieldType == typeof(DiagnosticDescriptor)))
        {
            var descriptor = (DiagnosticDescriptor)field.GetValue(null)!;
            Assert.Contains($"## {descriptor.Id}", docs);
            Assert.Equal("docs/diagnostics.md#" + descriptor.Id.ToLowerInvariant(), descriptor.HelpLinkUri);
        }
    }

    internal static string RepositoryRoot([System.Runtime.CompilerServices.CallerFilePath] string here = "")
        => System.IO.Path.GetFullPath(System.IO.Path.Combine(System.IO.Path.GetDirectoryName(here)!, "..", ".."));
}
