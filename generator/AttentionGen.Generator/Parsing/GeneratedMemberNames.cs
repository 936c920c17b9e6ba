using System.Linq;
using System.Threading;
using AttentionGen.Generator.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AttentionGen.Generator.Parsing;

/// <summary>
/// Finds a generated member that has the layer class's own name (ATTN0011): C# forbids a member named as its enclosing
/// type (CS0542), and the compiler would report it inside the generated file, at a member the user never wrote. Which
/// names a layer generates depends on its kind and options (a <c>Heads</c> constant, a nested <c>Tape</c> class, kernels
/// named by their widths), so the check reads them from the emitted source itself rather than from a list kept beside
/// the emitters.
/// </summary>
internal static class GeneratedMemberNames
{
    /// <summary>
    /// "the constant 'Heads'" (what the message calls it) when the emitted <paramref name="source"/> declares, directly in
    /// <paramref name="layer"/>'s class, a member named as the class; null when it does not.
    /// </summary>
    public static string? MemberNamedAsTheClass(string source, LayerTarget layer, CancellationToken cancellationToken)
    {
        // Most names occur in the source only in the class's one declaration and its constructors: skip the parse then.
        if (CountWord(source, layer.Name) - CountConstructors(source, layer.Name) <= 1)
        {
            return null;
        }
        CompilationUnitSyntax root = CSharpSyntaxTree.ParseText(source, cancellationToken: cancellationToken).GetCompilationUnitRoot(cancellationToken);
        foreach (TypeDeclarationSyntax type in root.DescendantNodes().OfType<TypeDeclarationSyntax>())
        {
            if (type.Identifier.ValueText != layer.Name || !IsTheLayer(type, layer))
            {
                continue;
            }
            foreach (MemberDeclarationSyntax member in type.Members)
            {
                string? description = Describe(member, layer.Name);
                if (description is not null)
                {
                    return description;
                }
            }
        }
        return null;
    }

    // The layer's own declaration: its enclosing types are the model's containing types, innermost last.
    private static bool IsTheLayer(TypeDeclarationSyntax type, LayerTarget layer)
    {
        string[] enclosing = type.Ancestors().OfType<TypeDeclarationSyntax>().Select(t => t.Identifier.ValueText).Reverse().ToArray();
        return enclosing.SequenceEqual(layer.ContainingTypes.Select(c => c.Name));
    }

    private static string? Describe(MemberDeclarationSyntax member, string name) => member switch
    {
        FieldDeclarationSyntax field when field.Declaration.Variables.Any(v => v.Identifier.ValueText == name)
            => (field.Modifiers.Any(SyntaxKind.ConstKeyword) ? "the constant '" : "the field '") + name + "'",
        PropertyDeclarationSyntax property when property.Identifier.ValueText == name => "the property '" + name + "'",
        MethodDeclarationSyntax method when method.Identifier.ValueText == name => "the method '" + name + "'",
        EventFieldDeclarationSyntax @event when @event.Declaration.Variables.Any(v => v.Identifier.ValueText == name) => "the event '" + name + "'",
        TypeDeclarationSyntax nested when nested.Identifier.ValueText == name => "the nested " + nested.Keyword.ValueText + " '" + name + "'",
        EnumDeclarationSyntax nested when nested.Identifier.ValueText == name => "the nested enum '" + name + "'",
        DelegateDeclarationSyntax @delegate when @delegate.Identifier.ValueText == name => "the delegate '" + name + "'",
        _ => null,
    };

    // Occurrences of the name as a whole identifier.
    private static int CountWord(string source, string name)
    {
        int count = 0;
        for (int at = source.IndexOf(name, System.StringComparison.Ordinal); at >= 0; at = source.IndexOf(name, at + name.Length, System.StringComparison.Ordinal))
        {
            bool before = at > 0 && IsIdentifierPart(source[at - 1]);
            bool after = at + name.Length < source.Length && IsIdentifierPart(source[at + name.Length]);
            if (!before && !after)
            {
                count++;
            }
        }
        return count;
    }

    // "Name(" after an accessibility keyword: a constructor, a use that is not a member.
    private static int CountConstructors(string source, string name)
        => Count(source, "public " + name + "(") + Count(source, "private " + name + "(") + Count(source, "internal " + name + "(") + Count(source, "protected " + name + "(");

    private static int Count(string source, string text)
    {
        int count = 0;
        for (int at = source.IndexOf(text, System.StringComparison.Ordinal); at >= 0; at = source.IndexOf(text, at + text.Length, System.StringComparison.Ordinal))
        {
            if (at == 0 || !IsIdentifierPart(source[at - 1]))
            {
                count++;
            }
        }
        return count;
    }

    private static bool IsIdentifierPart(char c) => char.IsLetterOrDigit(c) || c == '_';
}
