using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AttentionGen.Numerics;

/// <summary>Matrix helpers that do not depend on compile-time dimensions.</summary>
public static class MatrixOps
{
    /// <summary>
    /// Writes the transpose of the row-major <c>[rows, columns]</c> matrix <paramref name="source"/> into
    /// <paramref name="destination"/> (<c>[columns, rows]</c>). Generated layers use it to pack a weight
    /// <c>[out, in]</c> into <c>[in, out]</c> once per call, so their matrix products stream contiguous rows.
    /// </summary>
    public static void Transpose<T>(ReadOnlySpan<T> source, int rows, int columns, Span<T> destination)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Shapes.RequireLength(source.Length, (long)rows * columns, nameof(source), $"[{rows}, {columns}]");
        Shapes.RequireLength(destination.Length, (long)rows * columns, nameof(destination), $"[{columns}, {rows}]");
        // The register-blocked transpose below, with destination rows packed tight.
        Transpose(source, rows, columns, destination, destinationStride: rows);
    }

    /// <summary>
    /// Writes the transpose of the row-major <c>[rows, columns]</c> matrix <paramref name="source"/> into the first
    /// <paramref name="rows"/> entries of <paramref name="columns"/> rows of <paramref name="destination"/>, whose rows are
    /// <paramref name="destinationStride"/> apart: <c>destination[c · destinationStride + r] = source[r · columns + c]</c>.
    /// The entries of a destination row past <paramref name="rows"/> are left as they are. Multi-head layers use it to pack
    /// a tile of keys (or values) transposed, <c>[count, d]</c> into <c>[d, KeyTile]</c>.
    /// </summary>
    /// <remarks>
    /// Where AVX is available (and the Vector256 or Vector512 path is taken), float moves in 8 × 8 blocks and double in
    /// 4 × 4 blocks held in registers (unpacks, in-lane shuffles, then 128-bit lane swaps), about five times fewer
    /// instructions than an element at a time; the edges that do not fill a block are copied element by element.
    /// </remarks>
    /// <exception cref="ArgumentException">A length does not match the shapes, or the stride is less than <paramref name="rows"/>.</exception>
    public static void Transpose<T>(ReadOnlySpan<T> source, int rows, int columns, Span<T> destination, int destinationStride)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Shapes.RequireAtLeast(rows, 0, nameof(rows));
        Shapes.RequireAtLeast(columns, 0, nameof(columns));
        Shapes.RequireAtLeast(destinationStride, rows, nameof(destinationStride));
        Shapes.RequireLength(source.Length, (long)rows * columns, nameof(source), $"[{rows}, {columns}]");
        long needed = columns == 0 ? 0 : (long)(columns - 1) * destinationStride + rows;
        if (destination.Length < needed)
        {
            throw new ArgumentException(
                $"destination holds {destination.Length} elements; {columns} rows of stride {destinationStride} holding {rows} each need at least {needed}.",
                nameof(destination));
        }
        ref T from = ref MemoryMarshal.GetReference(source);
        ref T to = ref MemoryMarshal.GetReference(destination);
        int blockedRows = 0, blockedColumns = 0;
        if (Avx.IsSupported && (SimdPaths.Vector512 || SimdPaths.Vector256))
        {
            int block = typeof(T) == typeof(float) ? 8 : typeof(T) == typeof(double) ? 4 : 0;
            if (block > 0)
            {
                blockedRows = rows / block * block;
                blockedColumns = columns / block * block;
                TransposeBlocks(ref from, blockedRows, blockedColumns, columns, ref to, destinationStride, block);
            }
        }
        // The edges: the columns right of the blocks in the blocked rows, then the rows below them.
        for (nint r = 0; r < blockedRows; r++)
        {
            for (nint c = blockedColumns; c < columns; c++)
            {
                Unsafe.Add(ref to, c * destinationStride + r) = Unsafe.Add(ref from, r * columns + c);
            }
        }
        for (nint r = blockedRows; r < rows; r++)
        {
            for (nint c = 0; c < columns; c++)
            {
                Unsafe.Add(ref to, c * destinationStride + r) = Unsafe.Add(ref from, r * columns + c);
            }
        }
    }

    // Blocks (8 × 8 float, 4 × 4 double) go down strips two blocks wide, one 64-byte line of each source row, so every
    // source line is read whole once and each destination row is written front to back. Going along source rows instead
    // read half a line per block and came back for the other half 256 rows later, after the line had left L1: a 256 × 256
    // float weight took about 39 µs that way and about 8 µs this way.
    private static void TransposeBlocks<T>(ref T from, int rows, int columns, int sourceStride, ref T to, int destinationStride, int block)
    {
        for (nint c0 = 0; c0 < columns; c0 += 2 * block)
        {
            for (nint r0 = 0; r0 < rows; r0 += block)
            {
                TransposeBlock(ref from, r0, c0, sourceStride, ref to, destinationStride);
                if (c0 + block < columns)
                {
                    TransposeBlock(ref from, r0, c0 + block, sourceStride, ref to, destinationStride);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransposeBlock<T>(ref T from, nint r0, nint c0, int sourceStride, ref T to, int destinationStride)
    {
        if (typeof(T) == typeof(float))
        {
            TransposeBlock8(ref Unsafe.As<T, float>(ref from), r0, c0, sourceStride, ref Unsafe.As<T, float>(ref to), destinationStride);
        }
        else
        {
            TransposeBlock4(ref Unsafe.As<T, double>(ref from), r0, c0, sourceStride, ref Unsafe.As<T, double>(ref to), destinationStride);
        }
    }

    // One 8 × 8 float block: rows a₀ … a₇ → unpacks pair rows (a₀a₁, a₂a₃, …), the shuffles gather four rows' element j in
    // each 128-bit lane (element j in the low lane, j + 4 in the high lane), the lane swaps join two such halves into a column.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransposeBlock8(ref float from, nint r0, nint c0, int sourceStride, ref float to, int destinationStride)
    {
        ref float block = ref Unsafe.Add(ref from, r0 * sourceStride + c0);
        Vector256<float> a0 = Vector256.LoadUnsafe(ref block);
        Vector256<float> a1 = Vector256.LoadUnsafe(ref block, (nuint)sourceStride);
        Vector256<float> a2 = Vector256.LoadUnsafe(ref block, (nuint)(2 * sourceStride));
        Vector256<float> a3 = Vector256.LoadUnsafe(ref block, (nuint)(3 * sourceStride));
        Vector256<float> a4 = Vector256.LoadUnsafe(ref block, (nuint)(4 * sourceStride));
        Vector256<float> a5 = Vector256.LoadUnsafe(ref block, (nuint)(5 * sourceStride));
        Vector256<float> a6 = Vector256.LoadUnsafe(ref block, (nuint)(6 * sourceStride));
        Vector256<float> a7 = Vector256.LoadUnsafe(ref block, (nuint)(7 * sourceStride));
        Vector256<float> t0 = Avx.UnpackLow(a0, a1), t1 = Avx.UnpackHigh(a0, a1);
        Vector256<float> t2 = Avx.UnpackLow(a2, a3), t3 = Avx.UnpackHigh(a2, a3);
        Vector256<float> t4 = Avx.UnpackLow(a4, a5), t5 = Avx.UnpackHigh(a4, a5);
        Vector256<float> t6 = Avx.UnpackLow(a6, a7), t7 = Avx.UnpackHigh(a6, a7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        ref float column = ref Unsafe.Add(ref to, c0 * destinationStride + r0);
        Avx.Permute2x128(u0, u4, 0x20).StoreUnsafe(ref column);
        Avx.Permute2x128(u1, u5, 0x20).StoreUnsafe(ref column, (nuint)destinationStride);
        Avx.Permute2x128(u2, u6, 0x20).StoreUnsafe(ref column, (nuint)(2 * destinationStride));
        Avx.Permute2x128(u3, u7, 0x20).StoreUnsafe(ref column, (nuint)(3 * destinationStride));
        Avx.Permute2x128(u0, u4, 0x31).StoreUnsafe(ref column, (nuint)(4 * destinationStride));
        Avx.Permute2x128(u1, u5, 0x31).StoreUnsafe(ref column, (nuint)(5 * destinationStride));
        Avx.Permute2x128(u2, u6, 0x31).StoreUnsafe(ref column, (nuint)(6 * destinationStride));
        Avx.Permute2x128(u3, u7, 0x31).StoreUnsafe(ref column, (nuint)(7 * destinationStride));
    }

    // One 4 × 4 double block: the unpacks pair rows (a₀a₁, a₂a₃) into elements (0, 2) and (1, 3); the lane swaps join them.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransposeBlock4(ref double from, nint r0, nint c0, int sourceStride, ref double to, int destinationStride)
    {
        ref double block = ref Unsafe.Add(ref from, r0 * sourceStride + c0);
        Vector256<double> a0 = Vector256.LoadUnsafe(ref block);
        Vector256<double> a1 = Vector256.LoadUnsafe(ref block, (nuint)sourceStride);
        Vector256<double> a2 = Vector256.LoadUnsafe(ref block, (nuint)(2 * sourceStride));
        Vector256<double> a3 = Vector256.LoadUnsafe(ref block, (nuint)(3 * sourceStride));
        Vector256<double> t0 = Avx.UnpackLow(a0, a1), t1 = Avx.UnpackHigh(a0, a1);
        Vector256<double> t2 = Avx.UnpackLow(a2, a3), t3 = Avx.UnpackHigh(a2, a3);
        ref double column = ref Unsafe.Add(ref to, c0 * destinationStride + r0);
        Avx.Permute2x128(t0, t2, 0x20).StoreUnsafe(ref column);
        Avx.Permute2x128(t1, t3, 0x20).StoreUnsafe(ref column, (nuint)destinationStride);
        Avx.Permute2x128(t0, t2, 0x31).StoreUnsafe(ref column, (nuint)(2 * destinationStride));
        Avx.Permute2x128(t1, t3, 0x31).StoreUnsafe(ref column, (nuint)(3 * destinationStride));
    }
}
