using System;
using System.IO;
using System.Runtime.CompilerServices;

namespace AttentionGen.Generator.Tests;

/// <summary>
/// Snapshot testing in Verify's file convention: the accepted text is <c>Snapshots/{name}.verified.cs</c> beside the
/// test; on a mismatch the new text is written to <c>{name}.received.cs</c> and the test fails. Set the environment
/// variable <c>ACCEPT_SNAPSHOTS=1</c> to accept the received text instead (then review the diff like code).
/// </summary>
internal static class Snapshot
{
    public const string AcceptVariable = "ACCEPT_SNAPSHOTS";

    public static void Verify(string actual, string name, [CallerFilePath] string testFile = "")
    {
        string directory = Path.Combine(Path.GetDirectoryName(testFile)!, "Snapshots");
        Directory.CreateDirectory(directory);
        string verified = Path.Combine(directory, name + ".verified.cs");
        string received = Path.Combine(directory, name + ".received.cs");
        string normalized = actual.Replace("\r\n", "\n");

        if (File.Exists(verified) && File.ReadAllText(verified).Replace("\r\n", "\n") == normalized)
        {
            if (File.Exists(received))
            {
                File.Delete(received);
            }
            return;
        }
        if (Environment.GetEnvironmentVariable(AcceptVariable) == "1")
        {
            File.WriteAllText(verified, normalized);
            if (File.Exists(received))
            {
                File.Delete(received);
            }
            return;
        }
        File.WriteAllText(received, normalized);
        throw new Xunit.Sdk.XunitException(
            File.Exists(verified)
                ? $"Generated source differs from the snapshot {verified}. The new text is in {received}: review the diff, then rerun with {AcceptVariable}=1 to accept it."
                : $"No snapshot {verified} yet. The generated text is in {received}: review it, then rerun with {AcceptVariable}=1 to accept it.");
    }
}
