using System.Threading;
using AttentionGen.Generator.Diagnostics;
using AttentionGen.Generator.Model;
using Microsoft.CodeAnalysis;

namespace AttentionGen.Generator.Parsing;

/// <summary>Reads <c>[MultiHeadAttention]</c> into a <see cref="MultiHeadModel"/>, with its diagnostics.</summary>
internal static class MultiHeadParser
{
    public const string AttributeMetadataName = "AttentionGen.MultiHeadAttentionAttribute";

    public static ParseResult<MultiHeadModel> Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var parser = new LayerParser(context, cancellationToken);
        LayerTarget? target = parser.ReadTarget();
        ElementType? element = parser.ReadElementType();

        int modelDim = parser.ReadInt("ModelDim", 0);
        parser.RequireDimension("ModelDim", modelDim);
        int heads = parser.ReadInt("Heads", 0);
        parser.RequireDimension("Heads", heads);
        if (modelDim > 0 && heads > 0 && modelDim % heads != 0)
        {
            parser.Report(DiagnosticDescriptors.HeadsMustDivideDimension, parser.ArgumentLocation("Heads"), heads.ToString(), "ModelDim", modelDim.ToString());
        }
        // PyTorch: kdim and vdim each default to embed_dim.
        int keyDim = parser.ReadInt("KeyDim", modelDim);
        if (parser.IsSet("KeyDim"))
        {
            parser.RequireDimension("KeyDim", keyDim);
        }
        int valueDim = parser.ReadInt("ValueDim", modelDim);
        if (parser.IsSet("ValueDim"))
        {
            parser.RequireDimension("ValueDim", valueDim);
        }
        bool bias = parser.ReadBool("Bias", true);
        bool causal = parser.ReadBool("Causal", false);
        bool addBiasKeyValue = parser.ReadBool("AddBiasKeyValue", false);
        bool addZeroAttention = parser.ReadBool("AddZeroAttention", false);

        MultiHeadModel? model = target is null || element is null || parser.HasErrors
            ? null
            : new MultiHeadModel(target, element, modelDim, heads, keyDim, valueDim, bias, causal, addBiasKeyValue, addZeroAttention);
        return new ParseResult<MultiHeadModel>(model, parser.Diagnostics);
    }
}
