using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace AttentionGen.Numerics;

/// <summary>
/// Runs <see cref="SimdPaths"/>' static initializer when this assembly is first used, before any generated kernel is
/// compiled.
/// </summary>
/// <remarks>
/// The generated kernels are marked <c>AggressiveOptimization</c>: the JIT compiles them once, fully optimised, at their
/// first call, and never again. It folds <c>SimdPaths.Vector512</c> (a static readonly field) to a constant only when the
/// class is already initialised at that moment; otherwise the kernel keeps all four paths as code, reads the fields at
/// run time, and its size exhausts the JIT's inlining budget, so the horizontal sums (<c>Reductions.Sum</c>) of the path
/// actually taken become calls. A layer's first kernel always met that case (nothing had read the fields yet): on an AVX2
/// host structured self-attention's projection ran 2.7 times slower for it (W10, 2026-12-07). A layer touches this
/// assembly (its parameters, argument checks and tapes live here) before any of its kernels runs, so initialising the
/// class from the module initializer settles it for every kernel.
/// </remarks>
internal static class SimdPathsInitializer
{
    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries",
        Justification = "It only runs SimdPaths' and ScratchSwitches' own static initializers early (reads of two environment-independent flags, one variable and one runtime switch), so that the JIT can fold the path checks and the scratch switch in every generated kernel.")]
    internal static void Initialize()
    {
        RuntimeHelpers.RunClassConstructor(typeof(SimdPaths).TypeHandle);
        RuntimeHelpers.RunClassConstructor(typeof(ScratchSwitches).TypeHandle);
    }
}
