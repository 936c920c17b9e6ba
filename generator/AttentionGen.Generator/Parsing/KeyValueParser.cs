using System.Threading;
using AttentionGen.Generator.Diagnostics;
using AttentionGen.Generator.Model;
using Microsoft.CodeAnalysis;

namespace AttentionGen.Generator.Parsing;

/// <summary>Reads <c>[KeyValueAttention]</c> into a <see cref="KeyValueModel"/>, with its diagnostics.</summary>
internal static class KeyValueParser
{
    public const string AttributeMetadataName = "AttentionGen.KeyValueAttentionAttribute";

    public static ParseResult<KeyValueModel> Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var parser = new LayerParser(context, cancellationToken);
        LayerTarget? target = parser.ReadTarget();
        ElementType? element = parser.ReadElementType();
        int dim = parser.ReadInt("Dim", 0);
        parser.RequireDimension("Dim", dim);
        int window = parser.ReadInt("Window", 0);
        if (window < 1 || window > LayerParser.MaxDimension)
        {
            parser.Report(DiagnosticDescriptors.WindowOutOfRange, parser.ArgumentLocation("Window"), "Window", window.ToString(), LayerParser.MaxDimension.ToString());
        }
        string? split = parser.ReadEnum("Split", "KeyValue");
        KeyValueModel? model = target is null || element is null || split is null || parser.HasErrors
            ? null
            : new KeyValueModel(target, element, dim, window, split == "KeyValuePredict");
        return new ParseResult<KeyValueModel>(model, parser.Diagnostics);
    }
}
