// Prints which SIMD widths this process's JIT accelerates, and the path AttentionGen takes with this environment
// (ATTENTIONGEN_SIMD=512 forces the Vector512 path, emulated where the hardware lacks it), so each CI leg shows the
// path it tests; fails when EXPECTED_SIMD (512, 256, 128 or scalar) names another. SimdPathTests asserts the same
// inside the test processes.
using System;
using System.Runtime.Intrinsics;

bool forced = Environment.GetEnvironmentVariable("ATTENTIONGEN_SIMD") == "512";
string widest = Vector512.IsHardwareAccelerated || forced ? "512" : Vector256.IsHardwareAccelerated ? "256" : Vector128.IsHardwareAccelerated ? "128" : "scalar";
Console.WriteLine($"SIMD: Vector512={Vector512.IsHardwareAccelerated} Vector256={Vector256.IsHardwareAccelerated} Vector128={Vector128.IsHardwareAccelerated}"
    + $" -> AttentionGen path: {widest}{(forced && !Vector512.IsHardwareAccelerated ? " (forced, emulated)" : "")}");
string? expected = Environment.GetEnvironmentVariable("EXPECTED_SIMD");
if (expected is not null && expected != widest)
{
    Console.Error.WriteLine($"Expected the {expected} path, but this process takes the {widest} path.");
    return 1;
}
return 0;
