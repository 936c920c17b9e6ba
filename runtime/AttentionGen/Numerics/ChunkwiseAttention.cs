using System;
using System.Numerics;

namespace AttentionGen.Numerics;

/// <summary>
/// The runtime-length part of MoChA, monotonic chunkwise attention (Chiu &amp; Raffel 2018): from a monotonic alignment
/// row αᵢ and the chunk energies uᵢ, the expected chunkwise weights
/// βᵢⱼ = Σₖ₌ⱼ^{j+w−1} αᵢₖ · exp(uᵢⱼ) / Σₗ₌ₖ₋w₊₁^{k} exp(uᵢₗ), their exact reverse pass, and the hard (test-time) chunk: a
/// softmax of uᵢ over the w keys ending at the attended position. Nothing here depends on a layer's compile-time
/// dimensions, so generated <c>[MonotonicAttention(ChunkSize = w)]</c> layers share it.
/// </summary>
/// <remarks>
/// <para>Windows are clipped to the sequence: the chunk ending at key k is [max(0, k − w + 1), k] (the paper pads with
/// zeros of exp(u), which is the same). A key whose chunk energy is −∞ is masked: it gets no chunk weight and no
/// gradient, and the chunks around it are renormalised over the keys they may attend.</para>
/// <para>Stability: each chunk's softmax subtracts its own maximum Mₖ = max of uᵢₗ over the chunk, so every exponential is
/// at most 1 and every denominator at least 1: no overflow and no 0/0 whatever the spread of the energies. The cost is
/// O(Tk·w) per row, as the paper's moving sums. For float the exponentials are the softmax's own (<c>FlashSoftmax.Exp</c>
/// through one vector lane, ≤ 1.43 ulp, exactly 0 below −87) rather than libm's, which cost about 6 % of W13's step.</para>
/// <para>Each β row sums to Σₖ αᵢₖ ≤ 1 (every chunk distributes exactly the mass αᵢₖ), so "attend nothing" carries over
/// from the monotonic alignment unchanged. With w = 1, β = α.</para>
/// </remarks>
public static class ChunkwiseAttention
{
    /// <summary>
    /// The expected chunkwise weights βⱼ = Σₖ₌ⱼ^{min(j+w−1, Tk−1)} αₖ exp(uⱼ − Mₖ) / Dₖ, with Mₖ the maximum and
    /// Dₖ = Σₗ exp(uₗ − Mₖ) over the chunk [max(0, k − w + 1), k]. Writes Mₖ and Dₖ into <paramref name="scratch"/>
    /// (two rows; Dₖ = 0 for a chunk whose keys are all masked, which then distributes nothing).
    /// </summary>
    /// <param name="alignment">αᵢ, one row of Tk.</param>
    /// <param name="chunkEnergy">uᵢ, Tk; −∞ where the key is masked.</param>
    /// <param name="chunkSize">w, at least 1.</param>
    /// <param name="weights">βᵢ, Tk, written; must not overlap the inputs.</param>
    /// <param name="scratch">At least 2·Tk elements.</param>
    public static void Expected<T>(ReadOnlySpan<T> alignment, ReadOnlySpan<T> chunkEnergy, int chunkSize, Span<T> weights, Span<T> scratch)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int n = alignment.Length;
        RequireArguments(n, chunkEnergy.Length, nameof(chunkEnergy), weights.Length, nameof(weights), chunkSize, scratch.Length);
        chunkSize = Math.Min(chunkSize, Math.Max(n, 1)); // a chunk never reaches past the sequence (and j + w − 1 cannot overflow)
        Span<T> maxima = scratch.Slice(0, n);
        Span<T> denominators = scratch.Slice(n, n);
        ChunkNormalizers(chunkEnergy, chunkSize, maxima, denominators);
        for (int j = 0; j < n; j++)
        {
            T u = chunkEnergy[j];
            T beta = T.Zero;
            if (!T.IsNegativeInfinity(u))
            {
                int last = Math.Min(j + chunkSize - 1, n - 1);
                for (int k = j; k <= last; k++)
                {
                    T a = alignment[k];
                    if (a == T.Zero || denominators[k] == T.Zero) continue;
                    beta += a * FlashSoftmax.ScalarExp(u - maxima[k]) / denominators[k];
                }
            }
            weights[j] = beta;
        }
    }

    /// <summary>
    /// The reverse pass of <see cref="Expected{T}"/>: from g = ∂L/∂βᵢ writes ∂L/∂αᵢ and ∂L/∂uᵢ. With sₖₗ = exp(uₗ − Mₖ) / Dₖ
    /// the softmax of chunk k at key l: ∂L/∂αₖ = ḡₖ = Σₗ sₖₗ gₗ over chunk k, and
    /// ∂L/∂uₗ = Σₖ₌ₗ^{l+w−1} αₖ sₖₗ (gₗ − ḡₖ). Masked keys (u = −∞) get ∂L/∂u = 0. Recomputes Mₖ and Dₖ into
    /// <paramref name="scratch"/> (two rows). No output may overlap another span.
    /// </summary>
    public static void ExpectedBackward<T>(ReadOnlySpan<T> alignment, ReadOnlySpan<T> chunkEnergy, int chunkSize, ReadOnlySpan<T> dWeights,
        Span<T> dAlignment, Span<T> dChunkEnergy, Span<T> scratch)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int n = alignment.Length;
        RequireArguments(n, chunkEnergy.Length, nameof(chunkEnergy), dWeights.Length, nameof(dWeights), chunkSize, scratch.Length);
        RequireRow(n, dAlignment.Length, nameof(dAlignment));
        RequireRow(n, dChunkEnergy.Length, nameof(dChunkEnergy));
        chunkSize = Math.Min(chunkSize, Math.Max(n, 1)); // a chunk never reaches past the sequence (and j + w − 1 cannot overflow)
        Span<T> maxima = scratch.Slice(0, n);
        Span<T> denominators = scratch.Slice(n, n);
        ChunkNormalizers(chunkEnergy, chunkSize, maxima, denominators);
        // ḡₖ = Σₗ sₖₗ gₗ over chunk k: the gradient of the mass αₖ that chunk k distributes.
        for (int k = 0; k < n; k++)
        {
            T average = T.Zero;
            if (denominators[k] != T.Zero)
            {
                for (int l = Math.Max(0, k - chunkSize + 1); l <= k; l++)
                {
                    if (T.IsNegativeInfinity(chunkEnergy[l])) continue;
                    average += FlashSoftmax.ScalarExp(chunkEnergy[l] - maxima[k]) * dWeights[l];
                }
                average /= denominators[k];
            }
            dAlignment[k] = average;
        }
        // ∂L/∂uₗ = Σₖ αₖ sₖₗ (gₗ − ḡₖ) over the chunks k that contain l.
        for (int l = 0; l < n; l++)
        {
            T u = chunkEnergy[l];
            T du = T.Zero;
            if (!T.IsNegativeInfinity(u))
            {
                int last = Math.Min(l + chunkSize - 1, n - 1);
                for (int k = l; k <= last; k++)
                {
                    T a = alignment[k];
                    if (a == T.Zero || denominators[k] == T.Zero) continue;
                    du += a * FlashSoftmax.ScalarExp(u - maxima[k]) / denominators[k] * (dWeights[l] - dAlignment[k]);
                }
            }
            dChunkEnergy[l] = du;
        }
    }

    /// <summary>
    /// The hard (test-time) chunk: a softmax of u over the keys [max(0, t − w + 1), t] ending at the attended position t,
    /// written into <paramref name="weights"/> (zero elsewhere, and everywhere when t = −1, "attend nothing", or when every
    /// key of the chunk is masked). Returns the chunk's first key.
    /// </summary>
    /// <param name="chunkEnergy">uᵢ, Tk; −∞ where the key is masked (only the chunk's entries are read).</param>
    /// <param name="chunkSize">w, at least 1.</param>
    /// <param name="position">t, in [−1, Tk − 1].</param>
    /// <param name="weights">Tk, written.</param>
    public static int HardChunk<T>(ReadOnlySpan<T> chunkEnergy, int chunkSize, int position, Span<T> weights)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int n = chunkEnergy.Length;
        RequireRow(n, weights.Length, nameof(weights));
        if (chunkSize < 1)
        {
            throw new ArgumentException($"'{nameof(chunkSize)}' must be at least 1, but is {chunkSize}.", nameof(chunkSize));
        }
        if (position < -1 || position >= n)
        {
            throw new ArgumentException($"'{nameof(position)}' must be in [-1, {n - 1}], but is {position}.", nameof(position));
        }
        weights.Clear();
        if (position < 0)
        {
            return position;
        }
        int first = Math.Max(0, position - chunkSize + 1);
        T max = T.NegativeInfinity;
        for (int l = first; l <= position; l++) max = T.Max(max, chunkEnergy[l]);
        if (T.IsNegativeInfinity(max))
        {
            return first;
        }
        T sum = T.Zero;
        for (int l = first; l <= position; l++)
        {
            T e = T.IsNegativeInfinity(chunkEnergy[l]) ? T.Zero : FlashSoftmax.ScalarExp(chunkEnergy[l] - max);
            weights[l] = e;
            sum += e;
        }
        for (int l = first; l <= position; l++) weights[l] /= sum;
        return first;
    }

    // Mₖ = max of uₗ and Dₖ = Σₗ exp(uₗ − Mₖ) over the chunk [max(0, k − w + 1), k]; Dₖ = 0 when all its keys are masked.
    // The maximum is recomputed per chunk (O(w)): w is small, and this keeps every exponential ≤ 1 and every Dₖ ≥ 1.
    private static void ChunkNormalizers<T>(ReadOnlySpan<T> u, int w, Span<T> maxima, Span<T> denominators)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        for (int k = 0; k < u.Length; k++)
        {
            int first = Math.Max(0, k - w + 1);
            T max = T.NegativeInfinity;
            for (int l = first; l <= k; l++) max = T.Max(max, u[l]);
            T sum = T.Zero;
            if (!T.IsNegativeInfinity(max))
            {
                for (int l = first; l <= k; l++)
                {
                    if (!T.IsNegativeInfinity(u[l])) sum += FlashSoftmax.ScalarExp(u[l] - max);
                }
            }
            maxima[k] = max;
            denominators[k] = sum;
        }
    }

    private static void RequireArguments(int n, int first, string firstName, int second, string secondName, int chunkSize, int scratch)
    {
        RequireRow(n, first, firstName);
        RequireRow(n, second, secondName);
        if (chunkSize < 1)
        {
            throw new ArgumentException($"'{nameof(chunkSize)}' must be at least 1, but is {chunkSize}.", nameof(chunkSize));
        }
        if (scratch < 2 * n)
        {
            throw new ArgumentException($"'scratch' must have at least {2 * n} elements, but has {scratch}.", "scratch");
        }
    }

    private static void RequireRow(int keys, int length, string name)
    {
        if (length != keys)
        {
            throw new ArgumentException($"'{name}' must have {keys} elements (one per key, as the alignment has), but has {length}.", name);
        }
    }
}
