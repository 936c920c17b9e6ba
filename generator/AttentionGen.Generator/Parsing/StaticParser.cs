using System.Threading;
using AttentionGen.Generator.Model;
using Microsoft.CodeAnalysis;

namespace AttentionGen.Generator.Parsing;

/// <summary>Reads <c>[StaticAttention]</c> into a <see cref="StaticModel"/>, with its diagnostics.</summary>
internal static class StaticParser
{
    public const string AttributeMetadataName = "AttentionGen.StaticAttentionAttribute";

    public static ParseResult<StaticModel> Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var parser = new LayerParser(context, cancellationToken);
        LayerTarget? target = parser.ReadTarget();
        ElementType? element = parser.ReadElementType();
        int dim = parser.ReadInt("Dim", 0);
        parser.RequireDimension("Dim", dim);
        int units = parser.ReadInt("Units", dim);
        if (parser.IsSet("Units"))
        {
            parser.RequireDimension("Units", units);
        }
        StaticModel? model = target is null || element is null || parser.HasErrors ? null : new StaticModel(target, element, dim, units);
        return new ParseResult<StaticModel>(model, parser.Diagnostics);
    }
}
