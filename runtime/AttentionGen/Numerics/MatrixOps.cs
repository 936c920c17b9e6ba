using System;
using System.Numerics;

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
        // Blocks of 16 × 16 keep both the reads and the writes within a few cache lines.
        const int block = 16;
        for (int r0 = 0; r0 < rows; r0 += block)
        {
            int r1 = Math.Min(r0 + block, rows);
            for (int c0 = 0; c0 < columns; c0 += block)
            {
                int c1 = Math.Min(c0 + block, columns);
                for (int r = r0; r < r1; r++)
                {
                    for (int c = c0; c < c1; c++)
                    {
                        destination[c * rows + r] = source[r * columns + c];
                    }
                }
            }
        }
    }
}
