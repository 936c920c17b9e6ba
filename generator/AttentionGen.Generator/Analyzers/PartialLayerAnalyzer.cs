using System.Collections.Immutable;
using System.Linq;
using AttentionGen.Generator.Diagnostics;
using AttentionGen.Generator.Parsing;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace AttentionGen.Generator.Analyzers;

/// <summary>
/// Reports ATTN0001 for a class that carries an attention attribute but is not <c>partial</c> (or sits in a type that is
/// not). An analyzer rather than the generator reports it, so that the code fix in AttentionGen.CodeFixes can offer to add
/// <c>partial</c>, as the .NET Regex generator's upgrade fixer does.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class PartialLayerAnalyzer : DiagnosticAnalyzer
{
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => ImmutableArray.Create(DiagnosticDescriptors.ClassMustBePartial);

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterSymbolAction(Analyze, SymbolKind.NamedType);
    }

    private static void Analyze(SymbolAnalysisContext context)
    {
        var type = (INamedTypeSymbol)context.Symbol;
        AttributeData? attribute = type.GetAttributes().FirstOrDefault(a => LayerParser.IsAttentionAttribute(a.AttributeClass));
        if (attribute is null)
        {
            return;
        }
        string attributeName = attribute.AttributeClass!.Name.EndsWith("Attribute", System.StringComparison.Ordinal)
            ? attribute.AttributeClass.Name.Substring(0, attribute.AttributeClass.Name.Length - "Attribute".Length)
            : attribute.AttributeClass.Name;
        for (INamedTypeSymbol? current = type; current is not null; current = current.ContainingType)
        {
            var declarations = current.DeclaringSyntaxReferences.Select(r => r.GetSyntax(context.CancellationToken)).OfType<TypeDeclarationSyntax>().ToList();
            if (declarations.Count > 0 && !declarations.Any(d => d.Modifiers.Any(SyntaxKind.PartialKeyword)))
            {
                // One diagnostic per layer, naming the innermost type that is not partial; the fix makes them all partial.
                TypeDeclarationSyntax classSyntax = type.DeclaringSyntaxReferences.Select(r => r.GetSyntax(context.CancellationToken)).OfType<TypeDeclarationSyntax>().First();
                context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.ClassMustBePartial, classSyntax.Identifier.GetLocation(), current.Name, attributeName));
                return;
            }
        }
    }
}
