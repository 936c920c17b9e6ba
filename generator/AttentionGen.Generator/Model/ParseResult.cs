namespace AttentionGen.Generator.Model;

/// <summary>
/// What parsing one attributed class yields: the model to emit (null when the input is invalid; nothing is
/// emitted then, never half a class) and the diagnostics to report.
/// </summary>
internal sealed record ParseResult<TModel>(TModel? Model, EquatableArray<DiagnosticInfo> Diagnostics)
    where TModel : class;
