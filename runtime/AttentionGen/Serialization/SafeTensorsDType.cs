namespace AttentionGen.Serialization;

/// <summary>
/// The element types a parameter can be loaded from (all four) or saved as (<see cref="F32"/> and <see cref="F64"/>).
/// A file may hold tensors of any other safetensors dtype (I64, U8, …) as long as no parameter is loaded from them.
/// </summary>
public enum SafeTensorsDType
{
    /// <summary>IEEE 754 binary32, <c>"F32"</c>.</summary>
    F32,

    /// <summary>IEEE 754 binary64, <c>"F64"</c>.</summary>
    F64,

    /// <summary>IEEE 754 binary16, <c>"F16"</c> (read only).</summary>
    F16,

    /// <summary>bfloat16, the upper 16 bits of a binary32, <c>"BF16"</c> (read only).</summary>
    BF16,
}
