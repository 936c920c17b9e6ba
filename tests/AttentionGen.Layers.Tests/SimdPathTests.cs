using System;
using AttentionGen.Numerics;
using Xunit;
using Xunit.Abstractions;

namespace AttentionGen.Layers.Tests;

/// <summary>
/// Each CI leg sets EXPECTED_SIMD to the path it means to test (512, 256, 128 or scalar); this fails when the
/// process really takes another, so a leg can never silently test the wrong path.
/// </summary>
public sealed class SimdPathTests(ITestOutputHelper output)
{
    [Fact]
    public void The_leg_takes_the_path_it_expects()
    {
        output.WriteLine($"SIMD path: {SimdPaths.Widest} (Vector512 {SimdPaths.Vector512}, Vector256 {SimdPaths.Vector256}, Vector128 {SimdPaths.Vector128})");
        string? expected = Environment.GetEnvironmentVariable("EXPECTED_SIMD");
        if (expected is not null)
        {
            Assert.Equal(expected, SimdPaths.Widest);
        }
        else
        {
            // Outside CI: at least the hardware's own answer must be what the layers use.
            Assert.Equal(System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated, SimdPaths.Vector256);
        }
    }
}
