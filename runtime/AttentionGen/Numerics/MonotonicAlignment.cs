using System;
using System.Numerics;

namespace AttentionGen.Numerics;

/// <summary>
/// The runtime-length part of monotonic attention (Raffel et al. 2017): one alignment row from the choose
/// probabilities pᵢ and the previous row αᵢ₋₁, in the recursive and the parallel (cumulative product) forms, and
/// the exact reverse pass of each. Nothing here depends on a layer's compile-time dimensions, so generated
/// <c>[MonotonicAttention]</c> layers share it.
/// </summary>
/// <remarks>
/// Every row sums to at most Σⱼ αᵢ₋₁,ⱼ ≤ 1: mass that scans past the last key is "attend nothing" and is never
/// renormalised. A probability of 0 (a masked key) lets the mass pass through that key untouched.
/// </remarks>
public static class MonotonicAlignment
{
    /// <summary>The floor of the clipped cumulative product in <see cref="Parallel{T}"/> (TF-Addons uses the same).</summary>
    public const double ParallelClip = 1e-10;

    /// <summary>Writes α₀ = one-hot(0) into each of the <c>alignment.Length / keyLength</c> rows of <paramref name="alignment"/>.</summary>
    public static void Initialize<T>(Span<T> alignment, int keyLength) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (keyLength < 1)
        {
            throw new ArgumentException($"'{nameof(keyLength)}' must be at least 1, but is {keyLength}.", nameof(keyLength));
        }
        if (alignment.Length % keyLength != 0)
        {
            throw new ArgumentException($"'{nameof(alignment)}' must hold whole rows of {keyLength} elements, but has {alignment.Length}.", nameof(alignment));
        }
        alignment.Clear();
        for (int row = 0; row < alignment.Length; row += keyLength)
        {
            alignment[row] = T.One;
        }
    }

    /// <summary>
    /// The recursive form: q₀ = αᵢ₋₁,₀, qⱼ = (1 − pⱼ₋₁) qⱼ₋₁ + αᵢ₋₁,ⱼ, αᵢⱼ = pⱼ qⱼ. Only products of numbers in
    /// [0, 1]: no division, no loss of mass. <paramref name="alignment"/> may be the same span as
    /// <paramref name="previous"/> (each αᵢ₋₁,ⱼ is read before αᵢⱼ is written).
    /// </summary>
    public static void Recursive<T>(ReadOnlySpan<T> p, ReadOnlySpan<T> previous, Span<T> alignment) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        RequireRow(p.Length, previous.Length, nameof(previous), alignment.Length, nameof(alignment));
        T q = T.Zero;
        for (int j = 0; j < p.Length; j++)
        {
            q = j == 0 ? previous[0] : T.MultiplyAddEstimate(T.One - p[j - 1], q, previous[j]);
            alignment[j] = p[j] * q;
        }
    }

    /// <summary>
    /// The parallel form: with the exclusive cumulative product cⱼ = Πₗ₍ₗ₌₀..ⱼ₋₁₎ (1 − pₗ) and
    /// Sⱼ = Σₖ₍ₖ≤ⱼ₎ αᵢ₋₁,ₖ / clip(cₖ, 1e-10, 1), αᵢⱼ = pⱼ cⱼ Sⱼ. The product is a running product in linear space
    /// (not log space); the clip on the divisor is what TF-Addons does, and where cₖ underflows it the result loses
    /// mass that <see cref="Recursive{T}"/> keeps. <paramref name="alignment"/> may be the same span as <paramref name="previous"/>.
    /// </summary>
    public static void Parallel<T>(ReadOnlySpan<T> p, ReadOnlySpan<T> previous, Span<T> alignment) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        RequireRow(p.Length, previous.Length, nameof(previous), alignment.Length, nameof(alignment));
        T clip = T.CreateTruncating(ParallelClip);
        T c = T.One, sum = T.Zero;
        for (int j = 0; j < p.Length; j++)
        {
            sum += previous[j] / T.Max(c, clip);
            T pj = p[j];
            alignment[j] = pj * c * sum;
            c *= T.One - pj;
        }
    }

    /// <summary>
    /// The reverse pass of <see cref="Recursive{T}"/>: from g = ∂L/∂αᵢ writes ∂L/∂pᵢ and ∂L/∂αᵢ₋₁. Recomputes q into
    /// <paramref name="scratch"/> (one row), then for j from the last key down, with G_Tk = 0:
    /// Gⱼ = gⱼ pⱼ + Gⱼ₊₁ (1 − pⱼ), ∂L/∂pⱼ = qⱼ (gⱼ − Gⱼ₊₁), ∂L/∂αᵢ₋₁,ⱼ = Gⱼ.
    /// <paramref name="dPrevious"/> may be the same span as <paramref name="dAlignment"/>.
    /// </summary>
    public static void RecursiveBackward<T>(ReadOnlySpan<T> p, ReadOnlySpan<T> previous, ReadOnlySpan<T> dAlignment, Span<T> dChoose, Span<T> dPrevious, Span<T> scratch)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int n = p.Length;
        RequireRow(n, previous.Length, nameof(previous), dAlignment.Length, nameof(dAlignment));
        RequireRow(n, dChoose.Length, nameof(dChoose), dPrevious.Length, nameof(dPrevious));
        if (scratch.Length < n)
        {
            throw new ArgumentException($"'{nameof(scratch)}' must have at least {n} elements, but has {scratch.Length}.", nameof(scratch));
        }
        Span<T> q = scratch.Slice(0, n);
        T running = T.Zero;
        for (int j = 0; j < n; j++)
        {
            running = j == 0 ? previous[0] : T.MultiplyAddEstimate(T.One - p[j - 1], running, previous[j]);
            q[j] = running;
        }
        T next = T.Zero; // Gⱼ₊₁ = ∂L/∂qⱼ₊₁
        for (int j = n - 1; j >= 0; j--)
        {
            T g = dAlignment[j], pj = p[j];
            dChoose[j] = q[j] * (g - next);
            next = T.MultiplyAddEstimate(g, pj, next * (T.One - pj));
            dPrevious[j] = next;
        }
    }

    /// <summary>
    /// The reverse pass of <see cref="Parallel{T}"/>, exact for the clipped form it computes: from g = ∂L/∂αᵢ writes
    /// ∂L/∂pᵢ and ∂L/∂αᵢ₋₁. Recomputes cⱼ and Sⱼ into <paramref name="scratch"/> (two rows), then for j from the last
    /// key down: Rⱼ = Σₘ₍ₘ≥ⱼ₎ gₘ pₘ cₘ, ∂L/∂αᵢ₋₁,ⱼ = Rⱼ / clip(cⱼ), ∂L/∂cⱼ = gⱼ pⱼ Sⱼ − Rⱼ αᵢ₋₁,ⱼ / cⱼ² (the second term
    /// only where the clip is not active), accumulated backwards through cⱼ₊₁ = cⱼ (1 − pⱼ) as Hⱼ = ∂L/∂cⱼ + Hⱼ₊₁ (1 − pⱼ)
    /// and ∂L/∂pⱼ = gⱼ cⱼ Sⱼ − Hⱼ₊₁ cⱼ. <paramref name="dPrevious"/> may be the same span as <paramref name="dAlignment"/>.
    /// </summary>
    public static void ParallelBackward<T>(ReadOnlySpan<T> p, ReadOnlySpan<T> previous, ReadOnlySpan<T> dAlignment, Span<T> dChoose, Span<T> dPrevious, Span<T> scratch)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int n = p.Length;
        RequireRow(n, previous.Length, nameof(previous), dAlignment.Length, nameof(dAlignment));
        RequireRow(n, dChoose.Length, nameof(dChoose), dPrevious.Length, nameof(dPrevious));
        if (scratch.Length < 2 * n)
        {
            throw new ArgumentException($"'{nameof(scratch)}' must have at least {2 * n} elements, but has {scratch.Length}.", nameof(scratch));
        }
        T clip = T.CreateTruncating(ParallelClip);
        Span<T> products = scratch.Slice(0, n);
        Span<T> sums = scratch.Slice(n, n);
        T c = T.One, sum = T.Zero;
        for (int j = 0; j < n; j++)
        {
            products[j] = c;
            sum += previous[j] / T.Max(c, clip);
            sums[j] = sum;
            c *= T.One - p[j];
        }
        T tail = T.Zero; // Rⱼ₊₁
        T next = T.Zero; // Hⱼ₊₁ = ∂L/∂cⱼ₊₁
        for (int j = n - 1; j >= 0; j--)
        {
            T g = dAlignment[j], pj = p[j], cj = products[j], sj = sums[j];
            tail += g * pj * cj;
            T divisor = T.Max(cj, clip);
            T dProduct = g * pj * sj;
            if (cj > clip)
            {
                dProduct -= tail * previous[j] / (cj * cj);
            }
            dChoose[j] = g * cj * sj - next * cj;
            dPrevious[j] = tail / divisor;
            next = dProduct + next * (T.One - pj);
        }
    }

    /// <summary>A standard normal sample N(0, 1) from <paramref name="random"/> (Box–Muller, one of the pair).</summary>
    public static double StandardNormal(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        double u1 = 1.0 - random.NextDouble(); // (0, 1]: the log is finite
        double u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    private static void RequireRow(int keys, int first, string firstName, int second, string secondName)
    {
        if (first != keys)
        {
            throw new ArgumentException($"'{firstName}' must have {keys} elements (one per key, as p has), but has {first}.", firstName);
        }
        if (second != keys)
        {
            throw new ArgumentException($"'{secondName}' must have {keys} elements (one per key, as p has), but has {second}.", secondName);
        }
    }
}
