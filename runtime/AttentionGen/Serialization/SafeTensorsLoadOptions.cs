using System.Collections.Generic;

namespace AttentionGen.Serialization;

/// <summary>How <see cref="SafeTensors"/>' <c>Load</c> matches the tensors of a file to a layer's parameters.</summary>
public sealed class SafeTensorsLoadOptions
{
    private static readonly IReadOnlyDictionary<string, string> s_noRenames = new Dictionary<string, string>();

    /// <summary>
    /// Put in front of every (renamed) parameter name to form the tensor name, e.g. <c>decoder.attention.</c> to load
    /// from the part of a whole model's state dict that holds this layer. Empty by default.
    /// </summary>
    public string Prefix { get; init; } = "";

    /// <summary>
    /// Parameter name → tensor name for parameters whose name in the file differs, e.g.
    /// <c>["score_vector"] = "v.weight"</c>; applied before <see cref="Prefix"/>. A key that is not a parameter name is
    /// an error (it is almost always a typo). Empty by default.
    /// </summary>
    public IReadOnlyDictionary<string, string> Rename { get; init; } = s_noRenames;

    /// <summary>
    /// Whether the file may hold tensors that no parameter loads from (a whole model's state dict). Default true;
    /// with false such a tensor is an error naming it.
    /// </summary>
    public bool AllowExtraTensors { get; init; } = true;

    /// <summary>
    /// Whether shapes that differ only by dimensions of size 1 match, so that PyTorch's <c>nn.Linear(Units, 1).weight</c>
    /// <c>[1, Units]</c> loads into a <c>[Units]</c> vector. The row-major element order is the same either way.
    /// Default false: shapes must be equal.
    /// </summary>
    public bool IgnoreSizeOneDimensions { get; init; }
}
