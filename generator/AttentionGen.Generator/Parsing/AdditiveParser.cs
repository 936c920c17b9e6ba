using System.Threading;
using AttentionGen.Generator.Model;
using Microsoft.CodeAnalysis;

namespace AttentionGen.Generator.Parsing;

/// <summary>Reads <c>[AdditiveAttention]</c> into an <see cref="AdditiveModel"/>, with its diagnostics.</summary>
internal static class AdditiveParser
{
    public const string AttributeMetadataName = "AttentionGen.AdditiveAttentionAttribute";

    public static ParseResult<AdditiveModel> Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
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
        int valueDim = parser.ReadInt("ValueDim", dim);
        if (parser.IsSet("ValueDim"))
        {
            parser.RequireDimension("ValueDim", valueDim);
        }
        bool useBias = parser.ReadBool("UseBias", true);

        AdditiveModel? model = target is null || element is null || parser.HasErrors
            ? null
            : new AdditiveModel(target, element, dim, units, valueDim, useBias);
        return new ParseResult<AdditiveModel>(model, parser.Diagnostics);
    }
}
