namespace AttentionGen;

/// <summary>
/// The base of every generated layer's tape: what a training forward records for <c>Backward</c>.
/// A tape is owned by the caller, reused across steps, and grows to the largest runtime lengths it has
/// seen (batch, query length, key length); it never shrinks, so a steady training loop allocates nothing.
/// One tape serves one forward/backward pair at a time: it is not thread-safe.
/// Its recorded arrays are <see cref="AlignedBuffer{T}"/>s, starting on cache lines.
/// </summary>
public abstract class AttentionTape
{
    /// <summary>The batch size of the recorded forward (0 before any).</summary>
    public int Batch { get; protected set; }

    /// <summary>The query length of the recorded forward.</summary>
    public int QueryLength { get; protected set; }

    /// <summary>The key length of the recorded forward.</summary>
    public int KeyLength { get; protected set; }

    /// <summary>Whether a training forward has been recorded and not yet consumed by a backward.</summary>
    public bool IsRecorded { get; protected set; }

    /// <summary>Returns a buffer of at least <paramref name="length"/> elements, reusing <paramref name="buffer"/> when it is large enough.</summary>
    protected static void Grow<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length)
        {
            buffer = new T[length];
        }
    }

    /// <summary>Makes <paramref name="buffer"/> hold at least <paramref name="length"/> elements, reusing it when it is large enough (see <see cref="AlignedBuffer{T}"/>).</summary>
    protected static void Grow<T>(ref AlignedBuffer<T> buffer, int length) where T : unmanaged => buffer.EnsureLength(length);
}
