using System;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using AttentionGen.CodeFixes;
using AttentionGen.Generator.Analyzers;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Testing;
using Microsoft.CodeAnalysis.Testing;
using Xunit;

namespace AttentionGen.Generator.Tests;

/// <summary>ATTN0001 comes from the analyzer, and the code fix adds `partial` to the class and its enclosing types.</summary>
public sealed class CodeFixTests
{
    private static CSharpCodeFixTest<PartialLayerAnalyzer, MakePartialCodeFixProvider, DefaultVerifier> Test(string source, string fixedSource)
    {
        var test = new CSharpCodeFixTest<PartialLayerAnalyzer, MakePartialCodeFixProvider, DefaultVerifier>
        {
            TestCode = source,
            FixedCode = fixedSource,
            // The running framework's own assemblies and the runtime: nothing is downloaded.
            ReferenceAssemblies = new ReferenceAssemblies("net10.0"),
        };
        foreach (string path in ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
                     .Where(p => Path.GetFileName(p).StartsWith("System", StringComparison.Ordinal) || Path.GetFileName(p) is "netstandard.dll" or "mscorlib.dll"))
        {
            test.TestState.AdditionalReferences.Add(MetadataReference.CreateFromFile(path));
            test.FixedState.AdditionalReferences.Add(MetadataReference.CreateFromFile(path));
        }
        test.TestState.AdditionalReferences.Add(typeof(AttentionLayerAttribute).Assembly);
        test.FixedState.AdditionalReferences.Add(typeof(AttentionLayerAttribute).Assembly);
        return test;
    }

    [Fact]
    public Task Adds_partial_to_the_class()
        => Test(
            "using AttentionGen;\n[AdditiveAttention(Dim = 8)]\npublic sealed class {|ATTN0001:Aligner|}\n{\n}\n",
            "using AttentionGen;\n[AdditiveAttention(Dim = 8)]\npublic sealed partial class Aligner\n{\n}\n").RunAsync();

    [Fact]
    public Task Adds_partial_to_enclosing_types_too()
        => Test(
            "using AttentionGen;\npublic class Model\n{\n    [MultiplicativeAttention(Dim = 8)]\n    internal class {|ATTN0001:Scorer|}\n    {\n    }\n}\n",
            "using AttentionGen;\npublic partial class Model\n{\n    [MultiplicativeAttention(Dim = 8)]\n    internal partial class Scorer\n    {\n    }\n}\n").RunAsync();

    [Fact]
    public Task A_class_without_modifiers_gets_partial_in_front()
        => Test(
            "using AttentionGen;\n[StaticAttention(Dim = 4)]\nclass {|ATTN0001:Pooling|} { }\n",
            "using AttentionGen;\n[StaticAttention(Dim = 4)]\npartial class Pooling { }\n").RunAsync();
}
