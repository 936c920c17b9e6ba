using Microsoft.CodeAnalysis;

namespace AttentionGen.Generator.Diagnostics;

/// <summary>
/// Every diagnostic AttentionGen reports, in ID order. Each has a section in docs/diagnostics.md that its
/// help link points at, and a test that makes it fire. IDs are never reused.
/// </summary>
internal static class DiagnosticDescriptors
{
    private const string Category = "AttentionGen";

    /// <summary>Where each ID's documentation lives, relative to the repository root.</summary>
    public const string HelpLinkBase = "docs/diagnostics.md#";

    public static readonly DiagnosticDescriptor ClassMustBePartial = new(
        id: "ATTN0001",
        title: "Attention layer class must be partial",
        messageFormat: "The class '{0}' carries [{1}] but is not declared partial; add the 'partial' modifier so AttentionGen can generate its members",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0001");

    public static readonly DiagnosticDescriptor GenericNotSupported = new(
        id: "ATTN0002",
        title: "Attention layer class cannot be generic or nested in a generic type",
        messageFormat: "'{0}' is generic or nested in the generic type '{1}'; an attention layer's dimensions and element type are fixed at compile time, so declare it in a non-generic type",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0002");

    public static readonly DiagnosticDescriptor DimensionOutOfRange = new(
        id: "ATTN0003",
        title: "Dimension out of range",
        messageFormat: "{0} = {1} is out of range: it must be between {2} and {3}",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0003");

    public static readonly DiagnosticDescriptor WindowOutOfRange = new(
        id: "ATTN0004",
        title: "Window out of range",
        messageFormat: "{0} = {1} is out of range: it must be between 1 and {2}",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0004");

    public static readonly DiagnosticDescriptor MultipleAttentionAttributes = new(
        id: "ATTN0005",
        title: "More than one attention attribute on a class",
        messageFormat: "'{0}' carries both [{1}] and [{2}]; a class is one attention layer, so keep one attribute and declare another class for the other layer",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0005");

    public static readonly DiagnosticDescriptor UnsupportedElementType = new(
        id: "ATTN0006",
        title: "Unsupported element type",
        messageFormat: "ElementType = typeof({0}) is not supported: use typeof(float) (the default) or typeof(double)",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0006");

    public static readonly DiagnosticDescriptor HeadsMustDivideDimension = new(
        id: "ATTN0007",
        title: "Heads must divide the model dimension",
        messageFormat: "Heads = {0} does not divide {1} = {2}; each head gets {1} / Heads dimensions, so choose a divisor of {2}",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0007");

    public static readonly DiagnosticDescriptor UnsupportedDeclaration = new(
        id: "ATTN0008",
        title: "Attention layer must be a non-static, non-abstract class",
        messageFormat: "'{0}' is {1}; an attention layer is an instance class that AttentionGen completes, so declare it as a plain (non-static, non-abstract) partial class",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0008");

    public static readonly DiagnosticDescriptor UndefinedOptionValue = new(
        id: "ATTN0009",
        title: "Option value is not defined",
        messageFormat: "{0} = {1} is not a defined value of {2}; use one of: {3}",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0009");

    public static readonly DiagnosticDescriptor ConflictingOptions = new(
        id: "ATTN0010",
        title: "Attention options conflict",
        messageFormat: "{0}",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0010");

    public static readonly DiagnosticDescriptor ClassNameIsAGeneratedMember = new(
        id: "ATTN0011",
        title: "Attention layer class has the name of a generated member",
        messageFormat: "The class '{0}' has the name of {1} that [{2}] generates, and a member cannot have its class's name; rename the class",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0011");

    public static readonly DiagnosticDescriptor GeneratedNameHidden = new(
        id: "ATTN0012",
        title: "A name the generated code uses is hidden",
        messageFormat: "The code generated for '{0}' uses '{1}' for {2}, but where '{0}' is declared '{1}' is {3}; rename {3}, or declare the layer in another namespace",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0012");

    public static readonly DiagnosticDescriptor GeneratedNameMadeAmbiguous = new(
        id: "ATTN0013",
        title: "A global using directive gives a name the generated code uses another meaning",
        messageFormat: "The code generated for '{0}' uses '{1}' for {2}, but '{3}' makes '{1}' {4} in every file of the project; rename the alias, or import that namespace with a using directive in the files that need it",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0013");

    public static readonly DiagnosticDescriptor OptionHasNoEffect = new(
        id: "ATTN0020",
        title: "Option has no effect",
        messageFormat: "{0} has no effect with {1}: {2}; remove it",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0020");

    public static readonly DiagnosticDescriptor InvalidEnergyBias = new(
        id: "ATTN0040",
        title: "Monotonic attention: initial energy bias must be finite",
        messageFormat: "InitialEnergyBias = {0} is not a finite number: the energy bias r starts every choose probability at σ(e + r), so give a finite value (the paper uses about -4)",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0040");

    public static readonly DiagnosticDescriptor InvalidNoiseStdDev = new(
        id: "ATTN0041",
        title: "Monotonic attention: noise standard deviation out of range",
        messageFormat: "NoiseStdDev = {0} is out of range: the pre-sigmoid noise's standard deviation must be finite and at least 0 (the paper uses 1; 0 turns the noise off)",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0041");

    public static readonly DiagnosticDescriptor NormalizeWithoutAdditiveEnergy = new(
        id: "ATTN0042",
        title: "Monotonic attention: Normalize needs the additive energy",
        messageFormat: "Normalize = true cannot apply to Score = MonotonicScore.{0}: weight normalisation rescales the vector v of the additive energy g vᵀ/‖v‖ tanh(·), which the multiplicative energy does not have; remove Normalize or use Score = MonotonicScore.Additive",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0042");

    public static readonly DiagnosticDescriptor InvalidChunkSize = new(
        id: "ATTN0043",
        title: "Monotonic attention: chunk size must not be negative",
        messageFormat: "ChunkSize = {0} is out of range: it is MoChA's chunk width w, 0 for plain monotonic attention or at least 1 for a softmax over the w keys ending at the monotonic position",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn0043");

    public static readonly DiagnosticDescriptor InternalError = new(
        id: "ATTN9999",
        title: "AttentionGen failed unexpectedly",
        messageFormat: "AttentionGen could not generate '{0}': {1}; nothing was generated for it. This is a bug in AttentionGen, please report it with this message.",
        category: Category,
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpLinkBase + "attn9999");
}
