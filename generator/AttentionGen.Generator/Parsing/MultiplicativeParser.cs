using System.Threading;
using AttentionGen.Generator.Diagnostics;
using AttentionGen.Generator.Model;
using Microsoft.CodeAnalysis;

namespace AttentionGen.Generator.Parsing;

/// <summary>Reads <c>[MultiplicativeAttention]</c> into a <see cref="MultiplicativeModel"/>, with its diagnostics.</summary>
internal static class MultiplicativeParser
{
    public const string AttributeMetadataName = "AttentionGen.MultiplicativeAttentionAttribute";
    public const string HardAttributeMetadataName = "AttentionGen.HardAttentionAttribute";

    public static ParseResult<MultiplicativeModel> Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
        => Parse(context, cancellationToken, hard: false);

    /// <summary>Reads <c>[HardAttention]</c>: the same scores, plus the selection; no learned scale or causal option.</summary>
    public static ParseResult<MultiplicativeModel> ParseHard(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
        => Parse(context, cancellationToken, hard: true);

    private static ParseResult<MultiplicativeModel> Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken, bool hard)
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
        string? score = parser.ReadEnum("Score", "General");
        if (score == "Concat")
        {
            parser.Report(DiagnosticDescriptors.ConflictingOptions, parser.ArgumentLocation("Score"),
                $"Score = AttentionScore.Concat is not offered by [{(hard ? "HardAttention" : "MultiplicativeAttention")}]: Luong's concat score over every key, vₐᵀ tanh(Wₐ [hₜ; h̄ₛ]), is [AdditiveAttention] (Bahdanau's form vᵀ tanh(W_q q + W_k k + b)); inside a window it is [LocalAttention(Score = AttentionScore.Concat)]");
        }
        else if (score is "Dot" or "ScaledDot" && keyDim != dim && !parser.HasErrors)
        {
            parser.Report(DiagnosticDescriptors.ConflictingOptions, parser.ArgumentLocation("KeyDim"),
                $"Score = AttentionScore.{score} compares queries and keys directly, so KeyDim ({keyDim}) must equal Dim ({dim}); use Score = AttentionScore.General to learn a map between them");
        }
        bool learnedScale = !hard && parser.ReadBool("LearnedScale", false);
        bool causal = !hard && parser.ReadBool("Causal", false);
        string? selection = hard ? parser.ReadEnum("Selection", "Argmax") : "Argmax";

        MultiplicativeModel? model = target is null || element is null || score is null || selection is null || parser.HasErrors
            ? null
            : new MultiplicativeModel(target, element, dim, keyDim, valueDim, score, learnedScale, causal, hard, selection == "Sample");
        return new ParseResult<MultiplicativeModel>(model, parser.Diagnostics);
    }
}
