using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AttentionGen;

/// <summary>
/// Cache-line alignment of scratch that several threads write at once. When the rows two threads update (for example
/// the per-batch-row shares of a gradient, updated once per attended pair) share a 64-byte line at their edge, every
/// update of that line moves it between the cores (false sharing). Starting the scratch on a line boundary keeps rows
/// whose sizes are whole lines on lines of their own.
/// </summary>
public static class CacheLines
{
    /// <summary>The cache-line size assumed (x64 and Arm64 cores): 64 bytes.</summary>
    public const int Bytes = 64;

    /// <summary>How many extra elements a buffer needs so that <see cref="Aligned{T}"/> can always find an aligned start.</summary>
    public static int Slack<T>() where T : unmanaged => Bytes / Unsafe.SizeOf<T>();

    /// <summary>
    /// The <paramref name="length"/> elements of <paramref name="buffer"/> from its first element on a 64-byte boundary.
    /// <paramref name="buffer"/> must hold <paramref name="length"/> + <see cref="Slack{T}"/> elements. (A heap array the
    /// GC moves afterwards loses the alignment, never correctness; large rented arrays live on the large-object heap,
    /// which is not compacted by default.)
    /// </summary>
    /// <exception cref="ArgumentException">The buffer is too short.</exception>
    public static unsafe Span<T> Aligned<T>(Span<T> buffer, int length) where T : unmanaged
    {
        if (buffer.Length < (long)length + Slack<T>())
        {
            throw new ArgumentException($"buffer holds {buffer.Length} elements; {length} aligned need {(long)length + Slack<T>()}.", nameof(buffer));
        }
        nint address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(buffer));
        int skip = (int)((Bytes - (address & (Bytes - 1))) & (Bytes - 1)) / Unsafe.SizeOf<T>();
        return buffer.Slice(skip, length);
    }
}
