using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using AttentionGen.Generator.Diagnostics;
using AttentionGen.Generator.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AttentionGen.Generator.Parsing;

/// <summary>
/// What every layer kind's parser shares: reading the attributed class into a <see cref="LayerTarget"/> (with
/// the declaration checks), and reading the attribute's named arguments with their source locations, so a bad
/// value is reported at the argument that holds it.
/// </summary>
internal sealed class LayerParser
{
    /// <summary>The metadata name of the base of every attention attribute.</summary>
    public const string AttentionAttributeBase = "AttentionGen.AttentionLayerAttribute";

    /// <summary>The largest compile-time dimension accepted (ATTN0003 above it).</summary>
    public const int MaxDimension = 65536;

    private readonly GeneratorAttributeSyntaxContext _context;
    private readonly AttributeData _attribute;
    private readonly AttributeSyntax? _attributeSyntax;
    private readonly List<DiagnosticInfo> _diagnostics = new();

    public LayerParser(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        _context = context;
        _attribute = context.Attributes[0];
        _attributeSyntax = _attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken) as AttributeSyntax;
        Symbol = (INamedTypeSymbol)context.TargetSymbol;
    }

    public INamedTypeSymbol Symbol { get; }

    /// <summary>The attribute's short name as written by users, e.g. <c>AdditiveAttention</c>.</summary>
    public string AttributeName => TrimAttributeSuffix(_attribute.AttributeClass?.Name ?? "attribute");

    public bool HasErrors => _diagnostics.Any(d => d.Descriptor.DefaultSeverity == DiagnosticSeverity.Error);

    public EquatableArray<DiagnosticInfo> Diagnostics => new(_diagnostics.ToArray());

    public void Report(DiagnosticDescriptor descriptor, Location? location, params string[] arguments)
        => _diagnostics.Add(DiagnosticInfo.Create(descriptor, location ?? AttributeLocation, arguments));

    public Location AttributeLocation => _attributeSyntax?.GetLocation() ?? _context.TargetNode.GetLocation();

    /// <summary>
    /// Checks the declaration (partial, not generic, not static or abstract, one attention attribute) and
    /// returns the target, or null when the class cannot be completed (the reasons are reported).
    /// </summary>
    public LayerTarget? ReadTarget()
    {
        INamedTypeSymbol symbol = Symbol;
        var classSyntax = (TypeDeclarationSyntax)_context.TargetNode;

        // Several attention attributes: the one written first stays silent, each later one reports, and no
        // attribute generates anything.
        ImmutableArray<AttributeData> attentionAttributes = symbol.GetAttributes()
            .Where(a => DerivesFrom(a.AttributeClass, AttentionAttributeBase))
            .ToImmutableArray();
        if (attentionAttributes.Length > 1)
        {
            int index = attentionAttributes.Select((a, i) => SameApplication(a, _attribute) ? i : -1).FirstOrDefault(i => i >= 0);
            if (index > 0)
            {
                Report(DiagnosticDescriptors.MultipleAttentionAttributes, AttributeLocation,
                    symbol.Name, TrimAttributeSuffix(attentionAttributes[0].AttributeClass!.Name), AttributeName);
            }
            return null;
        }

        // A class (or enclosing type) that is not partial cannot be completed: nothing is generated. ATTN0001 itself is
        // reported by PartialLayerAnalyzer, whose diagnostic the code fix attaches to.
        bool notPartial = !classSyntax.Modifiers.Any(SyntaxKind.PartialKeyword);
        if (symbol.IsStatic || symbol.IsAbstract)
        {
            Report(DiagnosticDescriptors.UnsupportedDeclaration, classSyntax.Identifier.GetLocation(), symbol.Name, symbol.IsStatic ? "static" : "abstract");
        }
        else if (symbol.TypeKind == TypeKind.Struct)
        {
            Report(DiagnosticDescriptors.UnsupportedDeclaration, classSyntax.Identifier.GetLocation(), symbol.Name, "a " + TypeKeyword(symbol));
        }
        if (symbol.TypeParameters.Length > 0)
        {
            Report(DiagnosticDescriptors.GenericNotSupported, classSyntax.Identifier.GetLocation(), symbol.Name, symbol.Name);
        }

        var containing = new List<ContainingType>();
        for (INamedTypeSymbol? outer = symbol.ContainingType; outer is not null; outer = outer.ContainingType)
        {
            if (outer.TypeParameters.Length > 0)
            {
                Report(DiagnosticDescriptors.GenericNotSupported, classSyntax.Identifier.GetLocation(), symbol.Name, outer.Name);
            }
            bool outerPartial = outer.DeclaringSyntaxReferences
                .Select(r => r.GetSyntax())
                .OfType<TypeDeclarationSyntax>()
                .Any(d => d.Modifiers.Any(SyntaxKind.PartialKeyword));
            notPartial |= !outerPartial;
            containing.Insert(0, new ContainingType(TypeKeyword(outer), outer.Name));
        }

        if (HasErrors || notPartial)
        {
            return null;
        }

        string ns = symbol.ContainingNamespace.IsGlobalNamespace ? "" : symbol.ContainingNamespace.ToDisplayString();
        string fullName = symbol.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat).Replace("global::", "");
        return new LayerTarget(ns, new EquatableArray<ContainingType>(containing.ToArray()), TypeKeyword(symbol), symbol.Name, fullName);
    }

    /// <summary>The element type (float unless <c>ElementType = typeof(double)</c>); null after reporting ATTN0006.</summary>
    public ElementType? ReadElementType()
    {
        if (!TryGetNamed("ElementType", out TypedConstant value) || value.Value is not ITypeSymbol type)
        {
            return ElementType.Single;
        }
        switch (type.SpecialType)
        {
            case SpecialType.System_Single:
                return ElementType.Single;
            case SpecialType.System_Double:
                return ElementType.Double;
            default:
                Report(DiagnosticDescriptors.UnsupportedElementType, ArgumentLocation("ElementType"), type.ToDisplayString());
                return null;
        }
    }

    /// <summary>An int property; <paramref name="fallback"/> when it is not set.</summary>
    public int ReadInt(string name, int fallback)
        => TryGetNamed(name, out TypedConstant value) && value.Value is int number ? number : fallback;

    /// <summary>A bool property; <paramref name="fallback"/> when it is not set.</summary>
    public bool ReadBool(string name, bool fallback)
        => TryGetNamed(name, out TypedConstant value) && value.Value is bool flag ? flag : fallback;

    /// <summary>A double property; <paramref name="fallback"/> when it is not set.</summary>
    public double ReadDouble(string name, double fallback)
        => TryGetNamed(name, out TypedConstant value) && value.Value is double number ? number : fallback;

    /// <summary>
    /// An enum property as the name of its member; reports ATTN0009 and returns null when the value is not a
    /// defined member (for example <c>(AttentionScore)42</c>).
    /// </summary>
    public string? ReadEnum(string name, string fallbackMember)
    {
        if (!TryGetNamed(name, out TypedConstant value) || value.Type is not INamedTypeSymbol enumType)
        {
            return fallbackMember;
        }
        var members = enumType.GetMembers().OfType<IFieldSymbol>().Where(f => f.HasConstantValue).ToList();
        IFieldSymbol? match = members.FirstOrDefault(f => Equals(f.ConstantValue, value.Value));
        if (match is null)
        {
            Report(DiagnosticDescriptors.UndefinedOptionValue, ArgumentLocation(name), name, value.Value?.ToString() ?? "null",
                enumType.Name, string.Join(", ", members.Select(m => enumType.Name + "." + m.Name)));
            return null;
        }
        return match.Name;
    }

    /// <summary>Reports ATTN0003 unless <paramref name="value"/> is within [<paramref name="minimum"/>, <paramref name="maximum"/>].</summary>
    public void RequireDimension(string name, int value, int minimum = 1, int maximum = MaxDimension)
    {
        if (value < minimum || value > maximum)
        {
            Report(DiagnosticDescriptors.DimensionOutOfRange, ArgumentLocation(name), name, value.ToString(), minimum.ToString(), maximum.ToString());
        }
    }

    /// <summary>The location of the named argument <c>Name = value</c> (its value), or the attribute's when it is not written.</summary>
    public Location ArgumentLocation(string name)
    {
        if (_attributeSyntax?.ArgumentList is { } arguments)
        {
            foreach (AttributeArgumentSyntax argument in arguments.Arguments)
            {
                if (argument.NameEquals?.Name.Identifier.ValueText == name)
                {
                    return argument.GetLocation();
                }
            }
        }
        return AttributeLocation;
    }

    public bool IsSet(string name) => TryGetNamed(name, out _);

    private bool TryGetNamed(string name, out TypedConstant value)
    {
        foreach (KeyValuePair<string, TypedConstant> pair in _attribute.NamedArguments)
        {
            if (pair.Key == name && pair.Value.Kind != TypedConstantKind.Error)
            {
                value = pair.Value;
                return true;
            }
        }
        value = default;
        return false;
    }

    /// <summary>Whether <paramref name="type"/> is an attention attribute (derives from AttentionLayerAttribute).</summary>
    public static bool IsAttentionAttribute(INamedTypeSymbol? type) => DerivesFrom(type, AttentionAttributeBase);

    private static bool SameApplication(AttributeData left, AttributeData right)
        => ReferenceEquals(left, right)
           || (left.ApplicationSyntaxReference is { } l && right.ApplicationSyntaxReference is { } r
               && l.SyntaxTree == r.SyntaxTree && l.Span == r.Span);

    private static bool DerivesFrom(INamedTypeSymbol? type, string metadataName)
    {
        for (INamedTypeSymbol? t = type; t is not null; t = t.BaseType)
        {
            if (t.ToDisplayString() == metadataName)
            {
                return true;
            }
        }
        return false;
    }

    private static string TypeKeyword(INamedTypeSymbol type) => type switch
    {
        { IsRecord: true, TypeKind: TypeKind.Struct } => "record struct",
        { IsRecord: true } => "record",
        { TypeKind: TypeKind.Struct } => "struct",
        { TypeKind: TypeKind.Interface } => "interface",
        _ => "class",
    };

    private static string TrimAttributeSuffix(string name)
        => name.EndsWith("Attribute", System.StringComparison.Ordinal) ? name.Substring(0, name.Length - "Attribute".Length) : name;
}
