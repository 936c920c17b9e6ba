using System.Threading;
using AttentionGen.Generator.Diagnostics;
using AttentionGen.Generator.Model;
using Microsoft.CodeAnalysis;

namespace AttentionGen.Generator.Parsing;

/// <summary>Reads <c>[LocalAttention]</c> into a <see cref="LocalModel"/>, with its diagnostics.</summary>
internal static class LocalParser
{
    public const string AttributeMetadataName = "AttentionGen.LocalAttentionAttribute";

    public static ParseResult<LocalModel> Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var parser = new LayerParser(context, cancellationToken);
        LayerTarget? target = parser.ReadTarget();
        ElementType? element = parser.ReadElementType();

        int dim = parser.ReadInt("Dim", 0);
        parser.RequireDimension("Dim", dim);
        int keyDim = parser.ReadInt("KeyDim", dim);
        if (parser.IsSet("KeyDim"))
        {
            parser.RequireDimension("KeyDim", keyDim);
        }
        int valueDim = parser.ReadInt("ValueDim", keyDim);
        if (parser.IsSet("ValueDim"))
        {
            parser.RequireDimension("ValueDim", valueDim);
        }
        int window = parser.ReadInt("Window", 0);
        if (window < 1 || window > LayerParser.MaxDimension)
        {
            parser.Report(DiagnosticDescriptors.WindowOutOfRange, parser.ArgumentLocation("Window"), "Window", window.ToString(), LayerParser.MaxDimension.ToString());
        }
        string? alignment = parser.ReadEnum("Alignment", "Predictive");
        string? score = parser.ReadEnum("Score", "General");
        if (score is "Dot" or "ScaledDot" && keyDim != dim && !parser.HasErrors)
        {
            parser.Report(DiagnosticDescriptors.ConflictingOptions, parser.ArgumentLocation("KeyDim"),
                $"Score = AttentionScore.{score} compares queries and keys directly, so KeyDim ({keyDim}) must equal Dim ({dim}); use Score = AttentionScore.General to learn a map between them");
        }
        int units = parser.ReadInt("Units", dim);
        if (parser.IsSet("Units"))
        {
            parser.RequireDimension("Units", units);
            if (score is not null and not "Concat")
            {
                parser.Report(DiagnosticDescriptors.OptionHasNoEffect, parser.ArgumentLocation("Units"),
                    "Units", $"Score = AttentionScore.{score}", "only the concat score vₐᵀ tanh(Wₐ [hₜ; h̄ₛ]) has a hidden layer to size");
            }
        }
        int predictorUnits = parser.ReadInt("PredictorUnits", dim);
        if (parser.IsSet("PredictorUnits"))
        {
            parser.RequireDimension("PredictorUnits", predictorUnits);
            if (alignment == "Monotonic")
            {
                parser.Report(DiagnosticDescriptors.OptionHasNoEffect, parser.ArgumentLocation("PredictorUnits"),
                    "PredictorUnits", "Alignment = LocalAlignment.Monotonic", "local-m takes pₜ = t and has no position predictor");
            }
        }

        LocalModel? model = target is null || element is null || score is null || alignment is null || parser.HasErrors
            ? null
            : new LocalModel(target, element, dim, keyDim, valueDim, window, score, alignment == "Predictive", alignment == "Predictive" ? predictorUnits : 0,
                score == "Concat" ? units : 0);
        return new ParseResult<LocalModel>(model, parser.Diagnostics);
    }
}
