using System;

namespace AttentionGen;

/// <summary>
/// The base of every attention attribute. A class carries at most one of them
/// (diagnostic <c>ATTN0005</c> otherwise).
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public abstract class AttentionLayerAttribute : Attribute
{
    /// <summary>
    /// The element type of the layer's parameters and tensors: <c>typeof(float)</c> (the default) or
    /// <c>typeof(double)</c> (for gradient checks and high-precision work). Anything else is diagnostic
    /// <c>ATTN0006</c>.
    /// </summary>
    public Type ElementType { get; set; } = typeof(float);
}
