using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AttentionGen;

/// <summary>
/// An array of a tape whose first element starts a 64-byte cache line. The products of a backward load the recorded arrays
/// (projected queries and keys, hidden states, weights) a whole vector at a time; an array that starts part-way into a line,
/// as the GC's arrays usually do, makes every 512-bit load of it span two lines, which cost a Luong training step about 4 %
/// (docs/benchmarks.md). Its rows are then aligned too whenever their length is a whole number of lines (a dimension that is
/// a multiple of 16 floats). The array lives on the pinned-object heap, so the GC never moves it and the alignment holds.
/// </summary>
/// <typeparam name="T">The element type (float or double in the generated layers).</typeparam>
public struct AlignedBuffer<T> where T : unmanaged
{
    private T[]? _array;
    private int _start;
    private int _length;

    /// <summary>How many elements the buffer holds (0 before the first <see cref="EnsureLength"/>).</summary>
    public readonly int Length => _length;

    /// <summary>All the elements.</summary>
    public readonly Span<T> AsSpan()
        => _array is null ? default : MemoryMarshal.CreateSpan(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_array), _start), _length);

    /// <summary>The elements from <paramref name="start"/> on.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="start"/> is past the end.</exception>
    public readonly Span<T> AsSpan(int start) => AsSpan().Slice(start);

    /// <summary><paramref name="length"/> elements from <paramref name="start"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside the buffer.</exception>
    public readonly Span<T> AsSpan(int start, int length) => AsSpan().Slice(start, length);

    /// <summary>The element at <paramref name="index"/>.</summary>
    /// <exception cref="IndexOutOfRangeException"><paramref name="index"/> is outside the buffer.</exception>
    public readonly ref T this[int index]
    {
        get
        {
            // One check against the length (a tape's per-row and per-key accesses go through here); start + length lies
            // inside the array by construction.
            if ((uint)index >= (uint)_length)
            {
                throw new IndexOutOfRangeException($"Index {index} is outside the buffer of {_length} elements.");
            }
            return ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_array!), _start + index);
        }
    }

    /// <summary>All the elements, as <see cref="AsSpan()"/>.</summary>
    public static implicit operator Span<T>(AlignedBuffer<T> buffer) => buffer.AsSpan();

    /// <summary>All the elements, read-only.</summary>
    public static implicit operator ReadOnlySpan<T>(AlignedBuffer<T> buffer) => buffer.AsSpan();

    /// <summary>
    /// Makes the buffer hold at least <paramref name="length"/> elements: keeps the current array (and its contents) when it is
    /// long enough, like a tape's arrays always did; otherwise allocates a new zeroed one, aligned.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative.</exception>
    public unsafe void EnsureLength(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length <= _length)
        {
            return;
        }
        int slack = CacheLines.Slack<T>();
        var array = GC.AllocateArray<T>(length + slack, pinned: true);
        nint address = (nint)Unsafe.AsPointer(ref array[0]);
        int skip = (int)((CacheLines.Bytes - (address & (CacheLines.Bytes - 1))) & (CacheLines.Bytes - 1)) / Unsafe.SizeOf<T>();
        (_array, _start, _length) = (array, Math.Min(skip, slack), length);
    }
}
