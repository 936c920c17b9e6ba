using System;

namespace AttentionGen.Numerics;

/// <summary>
/// Which SIMD path generated layers and the runtime take: the widest width the JIT accelerates
/// (<c>Vector512/256/128.IsHardwareAccelerated</c>), or the scalar path. Read once at start-up into static readonly
/// fields, which the JIT folds to constants in optimised code, so the untaken paths cost nothing.
/// </summary>
/// <remarks>
/// Setting the environment variable <c>ATTENTIONGEN_SIMD=512</c> forces the Vector512 path even where the hardware does
/// not accelerate it (the runtime then emulates 512-bit vectors with narrower ones): slow, but it lets a machine without
/// AVX-512 test that path's code, tails included. The usual switches (<c>DOTNET_EnableAVX512=0</c>,
/// <c>DOTNET_EnableAVX2=0</c>, <c>DOTNET_EnableHWIntrinsic=0</c>) select the narrower paths.
/// </remarks>
public static class SimdPaths
{
    /// <summary>The name of the environment variable that forces a path (only <c>512</c> is recognised).</summary>
    public const string ForceVariable = "ATTENTIONGEN_SIMD";

    private static readonly bool s_force512 = Environment.GetEnvironmentVariable(ForceVariable) == "512";

    /// <summary>Take the Vector512 path.</summary>
    public static readonly bool Vector512 = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated || s_force512;

    /// <summary>Take the Vector256 path (when not <see cref="Vector512"/>).</summary>
    public static readonly bool Vector256 = System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated;

    /// <summary>Take the Vector128 path (when neither wider one).</summary>
    public static readonly bool Vector128 = System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated;

    /// <summary>The widest path taken: <c>512</c>, <c>256</c>, <c>128</c> or <c>scalar</c>.</summary>
    public static string Widest => Vector512 ? "512" : Vector256 ? "256" : Vector128 ? "128" : "scalar";
}
