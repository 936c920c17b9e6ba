using System;
using System.Runtime.CompilerServices;

namespace AttentionGen;

/// <summary>
/// Which keys each query may attend to. Every part is optional and they combine with AND:
/// a key-padding mask <c>[B, Tk]</c>, a per-query mask <c>[B, Tq, Tk]</c>, and (for kinds that support it)
/// a causal mask. <c>true</c> means "may attend" everywhere — the opposite of PyTorch
/// <c>nn.MultiheadAttention</c>'s <c>key_padding_mask</c>, the same as <c>scaled_dot_product_attention</c>'s
/// boolean mask. A query whose every key is masked gets all-zero weights, a zero context and zero gradients.
/// </summary>
public readonly ref struct AttentionMask
{
    /// <summary>Key padding, <c>[B, Tk]</c>: false marks a padded key no query may attend to. Empty = no padding.</summary>
    public ReadOnlySpan<bool> KeyPadding { get; init; }

    /// <summary>Per-query mask, <c>[B, Tq, Tk]</c>. Empty = every query may attend to every (unpadded) key.</summary>
    public ReadOnlySpan<bool> PerQuery { get; init; }

    /// <summary>
    /// Causal: query i may attend to keys j ≤ i + (Tk − Tq), the diagonal aligned to the end, so that a
    /// query block appended to a key cache (Tq ≤ Tk) sees every earlier key. With Tq = Tk it is the usual
    /// lower triangle.
    /// </summary>
    public bool Causal { get; init; }

    /// <summary>A mask of key padding only.</summary>
    public static AttentionMask FromKeyPadding(ReadOnlySpan<bool> keyPadding) => new() { KeyPadding = keyPadding };

    /// <summary>Whether any part of the mask is present.</summary>
    public bool IsEmpty => KeyPadding.IsEmpty && PerQuery.IsEmpty && !Causal;

    /// <summary>Throws <see cref="ArgumentException"/> when a present part has the wrong length for these runtime lengths.</summary>
    public void Validate(int batch, int queryLength, int keyLength, string parameterName = "mask")
    {
        if (!KeyPadding.IsEmpty)
        {
            if (KeyPadding.Length != (long)batch * keyLength)
            {
                Shapes.RequireLength(KeyPadding.Length, (long)batch * keyLength, parameterName + ".KeyPadding", $"[B={batch}, Tk={keyLength}]");
            }
        }
        if (!PerQuery.IsEmpty)
        {
            if (PerQuery.Length != (long)batch * queryLength * keyLength)
            {
                Shapes.RequireLength(PerQuery.Length, (long)batch * queryLength * keyLength, parameterName + ".PerQuery", $"[B={batch}, Tq={queryLength}, Tk={keyLength}]");
            }
        }
    }

    /// <summary>Whether query <paramref name="query"/> of batch row <paramref name="batch"/> may attend to key <paramref name="key"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Allows(int batch, int query, int key, int queryLength, int keyLength)
    {
        if (Causal && key > query + (keyLength - queryLength))
        {
            return false;
        }
        if (!KeyPadding.IsEmpty && !KeyPadding[batch * keyLength + key])
        {
            return false;
        }
        return PerQuery.IsEmpty || PerQuery[(batch * queryLength + query) * keyLength + key];
    }
}
