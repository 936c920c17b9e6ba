using System.Threading;
using AttentionGen.Generator.Diagnostics;
using AttentionGen.Generator.Model;
using Microsoft.CodeAnalysis;

namespace AttentionGen.Generator.Parsing;

/// <summary>Reads <c>[MonotonicAttention]</c> into a <see cref="MonotonicModel"/>, with its diagnostics (ATTN0040–0049, and the shared ones).</summary>
internal static class MonotonicParser
{
    public const string AttributeMetadataName = "AttentionGen.MonotonicAttentionAttribute";

    public static ParseResult<MonotonicModel> Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var parser = new LayerParser(context, cancellationToken);
        LayerTarget? target = parser.ReadTarget();
        ElementType? element = parser.ReadElementType();

        int dim = parser.ReadInt("Dim", 0);
        parser.RequireDimension("Dim", dim);
        string? score = parser.ReadEnum("Score", "Additive");
        string? mode = parser.ReadEnum("Mode", "Recursive");
        int units = parser.ReadInt("Units", dim);
        if (parser.IsSet("Units"))
        {
            parser.RequireDimension("Units", units);
            if (score is not null and not "Additive")
            {
                // A size with nothing to size: a warning (the layer is still generated), as for the other kinds' unused options.
                parser.Report(DiagnosticDescriptors.OptionHasNoEffect, parser.ArgumentLocation("Units"),
                    "Units", "Score = MonotonicScore." + score, "the multiplicative energy qᵀ W k has no hidden layer to size");
            }
        }
        int valueDim = parser.ReadInt("ValueDim", dim);
        if (parser.IsSet("ValueDim"))
        {
            parser.RequireDimension("ValueDim", valueDim);
        }
        double energyBias = parser.ReadDouble("InitialEnergyBias", -4.0);
        if (double.IsNaN(energyBias) || double.IsInfinity(energyBias))
        {
            parser.Report(DiagnosticDescriptors.InvalidEnergyBias, parser.ArgumentLocation("InitialEnergyBias"), Format(energyBias));
        }
        double noise = parser.ReadDouble("NoiseStdDev", 1.0);
        if (double.IsNaN(noise) || double.IsInfinity(noise) || noise < 0)
        {
            parser.Report(DiagnosticDescriptors.InvalidNoiseStdDev, parser.ArgumentLocation("NoiseStdDev"), Format(noise));
        }

        bool normalize = parser.ReadBool("Normalize", false);
        if (normalize && score is not null and not "Additive")
        {
            parser.Report(DiagnosticDescriptors.NormalizeWithoutAdditiveEnergy, parser.ArgumentLocation("Normalize"), score);
        }

        int chunkSize = parser.ReadInt("ChunkSize", 0);
        if (chunkSize < 0)
        {
            parser.Report(DiagnosticDescriptors.InvalidChunkSize, parser.ArgumentLocation("ChunkSize"), chunkSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        bool additive = score == "Additive";
        MonotonicModel? model = target is null || element is null || score is null || mode is null || parser.HasErrors
            ? null
            : new MonotonicModel(target, element, dim, additive ? units : dim, valueDim, additive, mode == "Parallel", energyBias, noise, normalize, chunkSize);
        return new ParseResult<MonotonicModel>(model, parser.Diagnostics);
    }

    private static string Format(double value) => value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
}
