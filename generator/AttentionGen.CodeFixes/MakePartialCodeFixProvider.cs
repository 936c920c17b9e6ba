using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AttentionGen.CodeFixes;

/// <summary>
/// Fixes ATTN0001 by adding <c>partial</c> to the attributed class and to every enclosing type that lacks it.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(MakePartialCodeFixProvider)), Shared]
public sealed class MakePartialCodeFixProvider : CodeFixProvider
{
    public const string DiagnosticId = "ATTN0001";

    public override ImmutableArray<string> FixableDiagnosticIds => ImmutableArray.Create(DiagnosticId);

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        SyntaxNode? root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        TypeDeclarationSyntax? declaration = root?.FindToken(context.Span.Start).Parent?.AncestorsAndSelf().OfType<TypeDeclarationSyntax>().FirstOrDefault();
        if (root is null || declaration is null)
        {
            return;
        }
        context.RegisterCodeFix(
            CodeAction.Create("Make the attention layer partial", cancellationToken => MakePartialAsync(context.Document, root, declaration, cancellationToken), equivalenceKey: DiagnosticId),
            context.Diagnostics);
    }

    private static Task<Document> MakePartialAsync(Document document, SyntaxNode root, TypeDeclarationSyntax declaration, CancellationToken cancellationToken)
    {
        var targets = declaration.AncestorsAndSelf().OfType<TypeDeclarationSyntax>().Where(t => !t.Modifiers.Any(SyntaxKind.PartialKeyword)).ToList();
        SyntaxNode newRoot = root.ReplaceNodes(targets, (original, rewritten) => AddPartial(rewritten));
        return Task.FromResult(document.WithSyntaxRoot(newRoot));
    }

    // `partial` goes last among the modifiers, just before the keyword (public static partial class …).
    private static TypeDeclarationSyntax AddPartial(TypeDeclarationSyntax type)
    {
        SyntaxToken partial = SyntaxFactory.Token(SyntaxKind.PartialKeyword).WithTrailingTrivia(SyntaxFactory.Space);
        if (type.Modifiers.Count == 0)
        {
            // Keep the leading trivia (comments, attributes' line breaks) on the first token.
            SyntaxToken keyword = type.Keyword;
            return type.WithKeyword(keyword.WithLeadingTrivia()).WithModifiers(SyntaxFactory.TokenList(partial.WithLeadingTrivia(keyword.LeadingTrivia)));
        }
        return type.WithModifiers(type.Modifiers.Add(partial));
    }
}
