using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading.Tasks;
using Xunit;

namespace AttentionGen.Samples.Tests;

/// <summary>
/// The generated hot methods are compiled once, fully optimised (<c>AggressiveOptimization</c>), at their first call. The
/// JIT folds their SIMD path checks (<c>SimdPaths.Vector512</c>, … static readonly fields) to constants only if
/// <c>SimdPaths</c> is initialised by then, which the runtime's module initializer guarantees; without it the first hot
/// method of a process read the fields through the static-base helper at run time, kept every path as code and lost the
/// inlining of its reductions (2.7× slower on W10's projection). This runs the AotDemo sample, whose first statements
/// build a layer and call it, under the JIT with its listings written out, and reads them.
/// </summary>
public sealed class JitFoldingTests
{
    [Fact]
    public async Task The_first_hot_methods_of_a_process_are_compiled_with_their_path_checks_folded()
    {
        string demo = AotDemoPath();
        string listing = Path.Combine(Path.GetTempPath(), $"attentiongen-jit-{Guid.NewGuid():N}.txt");
        try
        {
            var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            start.ArgumentList.Add(demo);
            start.Environment["DOTNET_JitDisasm"] = "*DecoderAttention:*";
            start.Environment["DOTNET_JitStdOutFile"] = listing;
            using Process process = Process.Start(start)!;
            // Both pipes read at once (a child blocked on a full stderr pipe would never finish its stdout).
            Task<string> outputRead = process.StandardOutput.ReadToEndAsync();
            Task<string> errorsRead = process.StandardError.ReadToEndAsync();
            using (var timeout = new System.Threading.CancellationTokenSource(TimeSpan.FromMinutes(2)))
            {
                try
                {
                    await process.WaitForExitAsync(timeout.Token);
                }
                catch (OperationCanceledException)
                {
                    process.Kill(entireProcessTree: true);
                    Assert.Fail("AotDemo did not finish within two minutes");
                }
            }
            string output = await outputRead, errors = await errorsRead;
            Assert.True(process.ExitCode == 0, $"AotDemo exited with {process.ExitCode}: {output} {errors}");
            Assert.True(File.Exists(listing), $"the JIT wrote no listing to {listing}: {output} {errors}");

            // One listing per compiled method: "; Assembly listing for method Type:Name(args) (Tier0 | FullOpts | ...)".
            string[] methods = Regex.Split(File.ReadAllText(listing), "(?=; Assembly listing for method )")
                .Where(m => m.StartsWith("; Assembly listing for method ", StringComparison.Ordinal))
                .ToArray();
            string[] optimised = methods.Where(m => m.Substring(0, m.IndexOf('\n')).Contains("(FullOpts)")).ToArray();
            // The layer's forward rows, its projection and its product kernel at least.
            Assert.True(optimised.Length >= 3, $"{optimised.Length} fully optimised DecoderAttention methods in {methods.Length} listings");
            string[] unfolded = optimised
                .Where(m => m.Contains("CORINFO_HELP_GET_NONGCSTATIC_BASE", StringComparison.Ordinal))
                .Select(m => m.Substring(0, m.IndexOf('\n')))
                .ToArray();
            Assert.True(unfolded.Length == 0, "compiled before SimdPaths was initialised (the path checks read at run time):\n" + string.Join("\n", unfolded));
        }
        finally
        {
            File.Delete(listing);
        }
    }

    // samples/AotDemo/bin/<configuration>/net10.0/AotDemo.dll, built before this project (a reference without its assembly).
    private static string AotDemoPath()
    {
        var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string framework = here.Name, configuration = here.Parent!.Name;
        DirectoryInfo? root = here;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "AttentionGen.sln"))) root = root.Parent;
        Assert.True(root is not null, $"no AttentionGen.sln above {here.FullName}");
        string demo = Path.Combine(root!.FullName, "samples", "AotDemo", "bin", configuration, framework, "AotDemo.dll");
        Assert.True(File.Exists(demo), $"{demo} is missing: build the solution first");
        return demo;
    }
}
