using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using AttentionGen.Generator.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AttentionGen.Generator.Parsing;

/// <summary>
/// What the source emitted for a model declares and refers to, for the two checks that need it: a generated member named
/// as the layer class (ATTN0011; C# forbids a member named as its enclosing type, CS0542) and a name the generated code
/// takes from its <c>using</c> directives that the user's code hides (ATTN0012: a class <c>Shapes</c> beside the layer
/// turns every <c>Shapes.RequireLength</c> of the generated file into an error). Which names a layer generates and uses
/// depends on its kind and options, so both are read from the emitted source rather than from lists kept beside the
/// emitters.
/// </summary>
/// <param name="MemberNamedAsTheClass">"the constant 'Heads'" when the class declares a member with its own name, else null.</param>
/// <param name="Imports">The namespaces of the generated file's <c>using</c> directives.</param>
/// <param name="SimpleNames">
/// Names the generated code looks up unqualified (not after a dot), with their type-argument counts; without the names the
/// generated class declares itself, which lookup finds before anything outside the class.
/// </param>
internal sealed record EmittedNames(string? MemberNamedAsTheClass, EquatableArray<string> Imports, EquatableArray<(string Name, int Arity)> SimpleNames)
{
    // The transform that calls this runs again on every compilation change (each keystroke in an editor), for every layer;
    // the emitted source depends on the model alone, so its names are kept per model (value-equal records) and the emitter
    // and the parse run once per distinct layer. Bounded: cleared when it grows past what a solution plausibly holds.
    private static readonly ConcurrentDictionary<object, EmittedNames> s_byModel = new();
    private const int MaximumModels = 1024;

    public static EmittedNames For<TModel>(TModel model, Func<TModel, string> emit, string className, CancellationToken cancellationToken)
        where TModel : class
    {
        if (s_byModel.TryGetValue(model, out EmittedNames? known))
        {
            return known;
        }
        EmittedNames names = Read(emit(model), className, cancellationToken);
        if (s_byModel.Count >= MaximumModels)
        {
            s_byModel.Clear();
        }
        s_byModel[model] = names;
        return names;
    }

    private static EmittedNames Read(string source, string className, CancellationToken cancellationToken)
    {
        CompilationUnitSyntax root = CSharpSyntaxTree.ParseText(source, cancellationToken: cancellationToken).GetCompilationUnitRoot(cancellationToken);
        string[] imports = root.Usings.Where(u => u.Alias is null && u.StaticKeyword.IsKind(SyntaxKind.None)).Select(u => u.Name!.ToString()).ToArray();
        // The layer's own declaration: the outermost type declaration with its name (containing types come first).
        TypeDeclarationSyntax? layer = root.DescendantNodes().OfType<TypeDeclarationSyntax>().FirstOrDefault(t => t.Identifier.ValueText == className);
        var memberNames = new SortedSet<string>(StringComparer.Ordinal);
        string? namedAsTheClass = null;
        if (layer is not null)
        {
            foreach (MemberDeclarationSyntax member in layer.Members)
            {
                foreach ((string name, string sort) in Declared(member))
                {
                    memberNames.Add(name);
                    if (name == className && namedAsTheClass is null)
                    {
                        namedAsTheClass = sort + " '" + name + "'";
                    }
                }
            }
        }
        var simpleNames = new SortedSet<(string, int)>();
        foreach (SimpleNameSyntax name in root.DescendantNodes().OfType<SimpleNameSyntax>())
        {
            // Only a name that starts a qualified name or member access (or stands alone) is looked up in scope.
            bool afterDot = name.Parent switch
            {
                MemberAccessExpressionSyntax access => access.Name == name,
                QualifiedNameSyntax qualified => qualified.Right == name,
                AliasQualifiedNameSyntax aliased => aliased.Name == name,
                MemberBindingExpressionSyntax => true,
                _ => false,
            };
            bool directive = name.AncestorsAndSelf().Any(node => node is UsingDirectiveSyntax || node.Parent is BaseNamespaceDeclarationSyntax space && space.Name == node);
            if (!afterDot && !directive && !memberNames.Contains(name.Identifier.ValueText))
            {
                simpleNames.Add((name.Identifier.ValueText, name is GenericNameSyntax generic ? generic.TypeArgumentList.Arguments.Count : 0));
            }
        }
        return new EmittedNames(namedAsTheClass, new EquatableArray<string>(imports), new EquatableArray<(string, int)>(simpleNames.ToArray()));
    }

    // The names a member declaration introduces, with what the message calls that sort of member.
    private static IEnumerable<(string Name, string Sort)> Declared(MemberDeclarationSyntax member) => member switch
    {
        FieldDeclarationSyntax field => field.Declaration.Variables.Select(v => (v.Identifier.ValueText, field.Modifiers.Any(SyntaxKind.ConstKeyword) ? "the constant" : "the field")),
        PropertyDeclarationSyntax property => new[] { (property.Identifier.ValueText, "the property") },
        MethodDeclarationSyntax method => new[] { (method.Identifier.ValueText, "the method") },
        EventFieldDeclarationSyntax @event => @event.Declaration.Variables.Select(v => (v.Identifier.ValueText, "the event")),
        TypeDeclarationSyntax nested => new[] { (nested.Identifier.ValueText, "the nested " + nested.Keyword.ValueText) },
        EnumDeclarationSyntax nested => new[] { (nested.Identifier.ValueText, "the nested enum") },
        DelegateDeclarationSyntax @delegate => new[] { (@delegate.Identifier.ValueText, "the delegate") },
        _ => Array.Empty<(string, string)>(),
    };
}

/// <summary>
/// ATTN0012 and ATTN0013: the first name the generated code takes from its imports that the layer's scope hides, or that a
/// global using directive gives another meaning.
/// </summary>
internal static class HiddenNames
{
    /// <summary>
    /// The type the generated file means by a simple name (from its <c>using</c> directives) and what the layer's scope
    /// finds first instead (a member of the layer, of an enclosing type or of their base types; a type or namespace of an
    /// enclosing namespace), or null when nothing hides any of them.
    /// </summary>
    public static (INamespaceOrTypeSymbol Meant, ISymbol Found)? Find(EmittedNames names, INamedTypeSymbol layer, Compilation compilation)
    {
        foreach ((string name, int arity) in names.SimpleNames)
        {
            // What the layer's scope finds first (most names: nothing; this runs at every compilation, so it goes first).
            ISymbol? found = FirstInScope(layer, name, arity, compilation);
            if (found is null)
            {
                continue;
            }
            // What the generated file means: a type of its imports, or a namespace it qualifies names with
            // (System.Threading.Interlocked) from the global namespace. Neither: a local or a parameter, found before both.
            INamespaceOrTypeSymbol? meant = Meant(names, name, arity, compilation);
            meant ??= arity == 0 ? compilation.GlobalNamespace.GetMembers(name).OfType<INamespaceSymbol>().FirstOrDefault() : null;
            if (meant is not null && !SymbolEqualityComparer.Default.Equals(found.OriginalDefinition, meant))
            {
                return (meant, found);
            }
        }
        return null;
    }

    // The type of the generated file's imports that a simple name means there (null when none: a name it declares, a
    // local, a namespace qualifier).
    private static INamedTypeSymbol? Meant(EmittedNames names, string name, int arity, Compilation compilation)
    {
        foreach (string import in names.Imports)
        {
            INamedTypeSymbol? type = compilation.GetTypeByMetadataName(import + "." + name + (arity > 0 ? "`" + arity : ""));
            if (type is not null && compilation.IsSymbolAccessibleWithin(type, compilation.Assembly))
            {
                return type;
            }
        }
        return null;
    }

    /// <summary>
    /// ATTN0013: a type the generated file means by a simple name (from its <c>using</c> directives) that one of the project's
    /// <c>global using</c> directives, which apply to the generated file as to every other, gives another meaning: an alias of
    /// that name (an alias comes before the imported namespaces), or a namespace or type imported with another type of that
    /// name and arity (then the name is ambiguous). Returns the type meant, the directive and what it makes the name.
    /// Namespaces the generated file qualifies names with (System.…) are members of the global namespace, which lookup
    /// searches before any using directive, so only types are at risk.
    /// </summary>
    public static (INamedTypeSymbol Meant, string Directive, string Meaning)? FindGlobal(EmittedNames names, SemanticModel model, int position)
    {
        // The imports in scope at the layer merge its file's using directives with the project's global ones; the global ones
        // are those whose directive says so (the generated file sees those and its own, not the layer file's others).
        var aliases = new List<IAliasSymbol>();
        var imports = new List<(INamespaceOrTypeSymbol Imported, SyntaxReference? Directive)>();
        foreach (IImportScope scope in model.GetImportScopes(position))
        {
            aliases.AddRange(scope.Aliases.Where(alias => IsGlobal(alias.DeclaringSyntaxReferences.FirstOrDefault())));
            imports.AddRange(scope.Imports.Where(import => IsGlobal(import.DeclaringSyntaxReference)).Select(import => (import.NamespaceOrType, import.DeclaringSyntaxReference)));
        }
        if (aliases.Count == 0 && imports.Count == 0)
        {
            return null;
        }
        Compilation compilation = model.Compilation;
        foreach ((string name, int arity) in names.SimpleNames)
        {
            INamedTypeSymbol? meant = null;
            if (arity == 0 && aliases.FirstOrDefault(alias => alias.Name == name) is IAliasSymbol alias)
            {
                meant = Meant(names, name, arity, compilation);
                if (meant is not null && !SymbolEqualityComparer.Default.Equals(alias.Target, meant))
                {
                    return (meant, Directive(alias.DeclaringSyntaxReferences.FirstOrDefault()), "mean " + Describe(alias.Target));
                }
            }
            foreach ((INamespaceOrTypeSymbol imported, SyntaxReference? directive) in imports)
            {
                INamedTypeSymbol? other = imported.GetTypeMembers(name, arity).FirstOrDefault(type => compilation.IsSymbolAccessibleWithin(type, compilation.Assembly));
                if (other is null)
                {
                    continue;
                }
                meant ??= Meant(names, name, arity, compilation);
                if (meant is not null && !SymbolEqualityComparer.Default.Equals(other, meant))
                {
                    return (meant, Directive(directive), "ambiguous with " + Describe(other));
                }
            }
        }
        return null;
    }

    private static bool IsGlobal(SyntaxReference? reference)
        => reference?.GetSyntax() is UsingDirectiveSyntax directive && directive.GlobalKeyword.IsKind(SyntaxKind.GlobalKeyword);

    private static string Directive(SyntaxReference? reference)
        => reference?.GetSyntax() is UsingDirectiveSyntax directive ? directive.ToString() : "a global using directive";

    // Simple-name lookup from inside the layer class, without the using directives (the generated file has its own):
    // members of the class and its bases, then of each enclosing type and its bases, then each enclosing namespace.
    private static ISymbol? FirstInScope(INamedTypeSymbol layer, string name, int arity, Compilation compilation)
    {
        for (INamedTypeSymbol? enclosing = layer; enclosing is not null; enclosing = enclosing.ContainingType)
        {
            for (INamedTypeSymbol? type = enclosing; type is not null; type = type.BaseType)
            {
                foreach (ISymbol member in type.GetMembers(name))
                {
                    if (Matches(member, arity) && compilation.IsSymbolAccessibleWithin(member, layer))
                    {
                        return member;
                    }
                }
            }
        }
        for (INamespaceSymbol? space = layer.ContainingNamespace; space is not null; space = space.ContainingNamespace)
        {
            foreach (INamespaceOrTypeSymbol member in space.GetMembers(name))
            {
                if (Matches(member, arity) && (member is INamespaceSymbol || compilation.IsSymbolAccessibleWithin(member, layer)))
                {
                    return member;
                }
            }
        }
        return null;
    }

    private static bool Matches(ISymbol symbol, int arity) => symbol switch
    {
        INamedTypeSymbol type => type.Arity == arity,
        IMethodSymbol => true,
        _ => arity == 0,
    };

    /// <summary>"the class 'App.Shapes'": what the message calls a symbol.</summary>
    public static string Describe(ISymbol symbol)
    {
        string sort = symbol switch
        {
            INamedTypeSymbol { IsRecord: true } => "the record",
            INamedTypeSymbol { TypeKind: TypeKind.Class } => "the class",
            INamedTypeSymbol { TypeKind: TypeKind.Struct } => "the struct",
            INamedTypeSymbol { TypeKind: TypeKind.Interface } => "the interface",
            INamedTypeSymbol { TypeKind: TypeKind.Enum } => "the enum",
            INamedTypeSymbol { TypeKind: TypeKind.Delegate } => "the delegate",
            INamespaceSymbol => "the namespace",
            IMethodSymbol => "the method",
            IPropertySymbol => "the property",
            IFieldSymbol { IsConst: true } => "the constant",
            IFieldSymbol => "the field",
            IEventSymbol => "the event",
            _ => "the symbol",
        };
        return sort + " '" + symbol.ToDisplayString(SymbolDisplayFormat.CSharpErrorMessageFormat) + "'";
    }
}
