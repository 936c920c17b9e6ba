using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AttentionGen.Numerics;

/// <summary>
/// The tail of a row as its last whole vector. A row of n ≥ Count elements whose length is not a whole number of vectors
/// ends with n mod Count elements the vector loop has not reached; the softmax's exponentials, scaling and backward and
/// the dot product load the row's last whole vector (starting at n − Count, overlapping lanes already done) and keep only
/// its lanes from <c>first</c> on: one vector operation instead of up to Count − 1 scalar ones (a row of 30 keys had 14).
/// </summary>
internal static class TailLanes
{
    /// <summary>All-ones in lanes <paramref name="first"/> … Count − 1, zero below.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> From512<T>(int first) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => Vector512.GreaterThanOrEqual(Vector512<T>.Indices, Vector512.Create(T.CreateTruncating(first)));

    /// <inheritdoc cref="From512{T}(int)"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> From256<T>(int first) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => Vector256.GreaterThanOrEqual(Vector256<T>.Indices, Vector256.Create(T.CreateTruncating(first)));

    /// <inheritdoc cref="From512{T}(int)"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> From128<T>(int first) where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => Vector128.GreaterThanOrEqual(Vector128<T>.Indices, Vector128.Create(T.CreateTruncating(first)));
}
