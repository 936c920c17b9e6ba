using System.Threading;
using AttentionGen.Generator.Model;
using Microsoft.CodeAnalysis;

namespace AttentionGen.Generator.Parsing;

/// <summary>Reads <c>[StructuredSelfAttention]</c> into a <see cref="StructuredModel"/>, with its diagnostics.</summary>
internal static class StructuredParser
{
    public const string AttributeMetadataName = "AttentionGen.StructuredSelfAttentionAttribute";

    public static ParseResult<StructuredModel> Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var parser = new LayerParser(context, cancellationToken);
        LayerTarget? target = parser.ReadTarget();
        ElementType? element = parser.ReadElementType();
        int dim = parser.ReadInt("Dim", 0);
        parser.RequireDimension("Dim", dim);
        int units = parser.ReadInt("Units", dim);
        if (parser.IsSet("Units")) parser.RequireDimension("Units", units);
        int hops = parser.ReadInt("Hops", 1);
        parser.RequireDimension("Hops", hops, 1, 4096);
        string? penalty = parser.ReadEnum("Penalty", "SquaredFrobenius");
        StructuredModel? model = target is null || element is null || penalty is null || parser.HasErrors
            ? null
            : new StructuredModel(target, element, dim, units, hops, penalty);
        return new ParseResult<StructuredModel>(model, parser.Diagnostics);
    }
}
