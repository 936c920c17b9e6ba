using System;
using System.Linq;
using System.Threading;
using AttentionGen.Generator.Diagnostics;
using AttentionGen.Generator.Emit;
using AttentionGen.Generator.Model;
using AttentionGen.Generator.Parsing;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AttentionGen.Generator;

/// <summary>
/// The AttentionGen source generator: a table of contents. Each attention kind is one line in
/// <see cref="Initialize"/>: its attribute, its parser (attribute + symbol → a value-equatable model and
/// diagnostics) and its emitter (model → source). Everything else is shared.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class AttentionGenerator : IIncrementalGenerator
{
    /// <summary>Tracking-step names, used by the incremental-caching tests.</summary>
    public static class TrackingNames
    {
        public const string Parse = "Parse";
        public const string Model = "Model";
        public const string Diagnostics = "Diagnostics";
    }

    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        RegisterKind<AdditiveModel>(context, AdditiveParser.AttributeMetadataName, "AdditiveAttention", AdditiveParser.Parse, AdditiveEmitter.Emit, m => m.Target);
        RegisterKind<MultiplicativeModel>(context, MultiplicativeParser.AttributeMetadataName, "MultiplicativeAttention", MultiplicativeParser.Parse, MultiplicativeEmitter.Emit, m => m.Target);
        RegisterKind<MultiplicativeModel>(context, MultiplicativeParser.HardAttributeMetadataName, "HardAttention", MultiplicativeParser.ParseHard, MultiplicativeEmitter.Emit, m => m.Target);
        RegisterKind<StaticModel>(context, StaticParser.AttributeMetadataName, "StaticAttention", StaticParser.Parse, StaticEmitter.Emit, m => m.Target);
        RegisterKind<StructuredModel>(context, StructuredParser.AttributeMetadataName, "StructuredSelfAttention", StructuredParser.Parse, StructuredEmitter.Emit, m => m.Target);
        RegisterKind<KeyValueModel>(context, KeyValueParser.AttributeMetadataName, "KeyValueAttention", KeyValueParser.Parse, KeyValueEmitter.Emit, m => m.Target);
        RegisterKind<LocalModel>(context, LocalParser.AttributeMetadataName, "LocalAttention", LocalParser.Parse, LocalEmitter.Emit, m => m.Target);
        RegisterKind<MultiHeadModel>(context, MultiHeadParser.AttributeMetadataName, "MultiHeadAttention", MultiHeadParser.Parse, MultiHeadEmitter.Emit, m => m.Target);
        RegisterKind<MonotonicModel>(context, MonotonicParser.AttributeMetadataName, "MonotonicAttention", MonotonicParser.Parse, MonotonicEmitter.Emit, m => m.Target);
    }

    /// <summary>
    /// One kind's pipeline. <c>ForAttributeWithMetadataName</c> runs the parser only for classes carrying the
    /// attribute, and only again when such a class changes; the parser's result compares by value, so an
    /// edit elsewhere leaves it Cached and nothing is re-emitted. Source and diagnostics go out through
    /// separate outputs, so a change in a diagnostic never re-emits source.
    /// </summary>
    private static void RegisterKind<TModel>(
        IncrementalGeneratorInitializationContext context,
        string attributeMetadataName,
        string kind,
        Func<GeneratorAttributeSyntaxContext, CancellationToken, ParseResult<TModel>> parse,
        Func<TModel, string> emit,
        Func<TModel, LayerTarget> target)
        where TModel : class
    {
        IncrementalValuesProvider<ParseResult<TModel>> parsed = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                attributeMetadataName,
                predicate: static (node, _) => node is ClassDeclarationSyntax or RecordDeclarationSyntax or StructDeclarationSyntax, // structs only to report ATTN0008
                transform: (attributeContext, cancellationToken) => SafeParse(attributeContext, cancellationToken, (c, t) => CheckNames(parse(c, t), c, kind, emit, target, t)))
            .WithTrackingName(kind + "." + TrackingNames.Parse);

        IncrementalValuesProvider<TModel> models = parsed
            .Where(static result => result.Model is not null)
            .Select(static (result, _) => result.Model!)
            .WithTrackingName(kind + "." + TrackingNames.Model);

        IncrementalValuesProvider<EquatableArray<DiagnosticInfo>> diagnostics = parsed
            .Select(static (result, _) => result.Diagnostics)
            .Where(static d => d.Length > 0)
            .WithTrackingName(kind + "." + TrackingNames.Diagnostics);

        context.RegisterSourceOutput(models, (productionContext, model) =>
        {
            LayerTarget layer = target(model);
            string source;
            try
            {
                source = emit(model);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                productionContext.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.InternalError, null, layer.FullName, exception.GetType().Name + ": " + exception.Message));
                return;
            }
            productionContext.AddSource($"{layer.FullName}.{kind}.g.cs", source);
        });

        context.RegisterSourceOutput(diagnostics, static (productionContext, list) =>
        {
            foreach (DiagnosticInfo diagnostic in list)
            {
                productionContext.ReportDiagnostic(diagnostic.ToDiagnostic());
            }
        });
    }

    // ATTN0011, ATTN0012 and ATTN0013, from the names in the source the model gets (EmittedNames keeps them per model, so the
    // emitter runs here once per distinct layer, not at each of the transform's reruns): a layer class named as one of
    // its generated members (a class Heads with its Heads constant), or a name the generated code takes from its using
    // directives that the layer's scope hides (a class Shapes beside the layer) or that a global using directive makes
    // ambiguous or redirects (global using Shapes = …;), gets the diagnostic at the class name
    // and no code, instead of compiler errors inside the generated file.
    private static ParseResult<TModel> CheckNames<TModel>(ParseResult<TModel> parsed, GeneratorAttributeSyntaxContext context, string kind,
        Func<TModel, string> emit, Func<TModel, LayerTarget> target, CancellationToken cancellationToken)
        where TModel : class
    {
        if (parsed.Model is null || context.TargetSymbol is not INamedTypeSymbol layer)
        {
            return parsed;
        }
        EmittedNames names = EmittedNames.For(parsed.Model, emit, target(parsed.Model).Name, cancellationToken);
        Location location = context.TargetNode is BaseTypeDeclarationSyntax declaration ? declaration.Identifier.GetLocation() : context.TargetNode.GetLocation();
        DiagnosticInfo? problem = null;
        if (names.MemberNamedAsTheClass is not null)
        {
            problem = DiagnosticInfo.Create(DiagnosticDescriptors.ClassNameIsAGeneratedMember, location, layer.Name, names.MemberNamedAsTheClass, kind);
        }
        else if (HiddenNames.Find(names, layer, context.SemanticModel.Compilation) is (INamespaceOrTypeSymbol meant, ISymbol found))
        {
            problem = DiagnosticInfo.Create(DiagnosticDescriptors.GeneratedNameHidden, location, layer.Name, meant.Name,
                (meant is INamespaceSymbol ? "the namespace " : "") + meant.ToDisplayString(SymbolDisplayFormat.CSharpErrorMessageFormat), HiddenNames.Describe(found));
        }
        else if (HiddenNames.FindGlobal(names, context.SemanticModel, context.TargetNode.SpanStart) is (INamedTypeSymbol globalMeant, string directive, string meaning))
        {
            problem = DiagnosticInfo.Create(DiagnosticDescriptors.GeneratedNameMadeAmbiguous, location, layer.Name, globalMeant.Name,
                globalMeant.ToDisplayString(SymbolDisplayFormat.CSharpErrorMessageFormat), directive, meaning);
        }
        return problem is null ? parsed : new ParseResult<TModel>(null, new EquatableArray<DiagnosticInfo>(parsed.Diagnostics.Concat(new[] { problem }).ToArray()));
    }

    // The generator must never throw: a parser failure becomes ATTN9999 at the attribute, with nothing emitted.
    private static ParseResult<TModel> SafeParse<TModel>(
        GeneratorAttributeSyntaxContext context,
        CancellationToken cancellationToken,
        Func<GeneratorAttributeSyntaxContext, CancellationToken, ParseResult<TModel>> parse)
        where TModel : class
    {
        try
        {
            return parse(context, cancellationToken);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            DiagnosticInfo failure = DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, context.TargetNode.GetLocation(),
                context.TargetSymbol.Name, exception.GetType().Name + ": " + exception.Message);
            return new ParseResult<TModel>(null, new EquatableArray<DiagnosticInfo>(new[] { failure }));
        }
    }
}
