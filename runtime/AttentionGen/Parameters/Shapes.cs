using System;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace AttentionGen;

/// <summary>
/// Argument checks shared by every generated layer, so each one reports bad input the same way:
/// an <see cref="ArgumentException"/> naming the argument, the expected size (with its shape) and the actual
/// size, raised before any output is written.
/// </summary>
public static class Shapes
{
    /// <summary>Throws unless <paramref name="actual"/> equals <paramref name="expected"/>.</summary>
    /// <param name="actual">The span's length.</param>
    /// <param name="expected">The length the shape needs.</param>
    /// <param name="argument">The argument's name.</param>
    /// <param name="shape">The shape in words, e.g. <c>[B=2, Tq=5, Dq=128]</c>.</param>
    public static void RequireLength(int actual, long expected, string argument, string shape)
    {
        if (actual != expected)
        {
            ThrowLength(actual, expected, argument, shape, optional: false);
        }
    }

    /// <summary>
    /// Throws unless <paramref name="actual"/> equals <paramref name="expected"/>; the interpolated shape is only
    /// formatted when it does not, so a correct call allocates nothing.
    /// </summary>
    public static void RequireLength(int actual, long expected, string argument,
        [InterpolatedStringHandlerArgument(nameof(actual), nameof(expected))] ref LengthMismatchHandler shape)
    {
        if (actual != expected)
        {
            ThrowLength(actual, expected, argument, shape.ToStringAndClear(), optional: false);
        }
    }

    /// <summary>Throws unless the span is empty (not requested) or has exactly the expected length.</summary>
    public static void RequireOptionalLength(int actual, long expected, string argument, string shape)
    {
        if (actual != 0 && actual != expected)
        {
            ThrowLength(actual, expected, argument, shape, optional: true);
        }
    }

    /// <summary>Throws unless the span is empty (not requested) or has exactly the expected length; formats the shape only then.</summary>
    public static void RequireOptionalLength(int actual, long expected, string argument,
        [InterpolatedStringHandlerArgument(nameof(actual), nameof(expected))] ref OptionalLengthMismatchHandler shape)
    {
        if (actual != 0 && actual != expected)
        {
            ThrowLength(actual, expected, argument, shape.ToStringAndClear(), optional: true);
        }
    }

    [DoesNotReturn]
    private static void ThrowLength(int actual, long expected, string argument, string shape, bool optional)
        => throw new ArgumentException(optional
            ? $"'{argument}' must be empty (not requested) or have {expected} elements for shape {shape}, but has {actual}."
            : $"'{argument}' must have {expected} elements for shape {shape}, but has {actual}.", argument);

    /// <summary>Formats a shape description only when the length it describes is wrong.</summary>
    [InterpolatedStringHandler]
    public ref struct LengthMismatchHandler
    {
        private DefaultInterpolatedStringHandler _inner;

        /// <summary>Called by the compiler; formats nothing when the lengths agree.</summary>
        public LengthMismatchHandler(int literalLength, int formattedCount, int actual, long expected, out bool shouldAppend)
        {
            shouldAppend = actual != expected;
            _inner = shouldAppend ? new DefaultInterpolatedStringHandler(literalLength, formattedCount) : default;
        }

        /// <summary>Called by the compiler.</summary>
        public void AppendLiteral(string value) => _inner.AppendLiteral(value);

        /// <summary>Called by the compiler.</summary>
        public void AppendFormatted<TValue>(TValue value) => _inner.AppendFormatted(value);

        internal string ToStringAndClear() => _inner.ToStringAndClear();
    }

    /// <summary>Formats a shape description only when the optional length it describes is wrong.</summary>
    [InterpolatedStringHandler]
    public ref struct OptionalLengthMismatchHandler
    {
        private DefaultInterpolatedStringHandler _inner;

        /// <summary>Called by the compiler; formats nothing when the span is empty or has the right length.</summary>
        public OptionalLengthMismatchHandler(int literalLength, int formattedCount, int actual, long expected, out bool shouldAppend)
        {
            shouldAppend = actual != 0 && actual != expected;
            _inner = shouldAppend ? new DefaultInterpolatedStringHandler(literalLength, formattedCount) : default;
        }

        /// <summary>Called by the compiler.</summary>
        public void AppendLiteral(string value) => _inner.AppendLiteral(value);

        /// <summary>Called by the compiler.</summary>
        public void AppendFormatted<TValue>(TValue value) => _inner.AppendFormatted(value);

        internal string ToStringAndClear() => _inner.ToStringAndClear();
    }

    /// <summary>Throws unless a runtime length is at least <paramref name="minimum"/>.</summary>
    public static void RequireAtLeast(int value, int minimum, string argument)
    {
        if (value < minimum)
        {
            throw new ArgumentException($"'{argument}' must be at least {minimum}, but is {value}.", argument);
        }
    }

    /// <summary>Throws when an output span overlaps an input span (outputs are written before inputs are fully read).</summary>
    public static void RequireNoOverlap<TOut, TIn>(ReadOnlySpan<TOut> output, ReadOnlySpan<TIn> input, string outputName, string inputName)
        where TOut : unmanaged
        where TIn : unmanaged
    {
        if (!output.IsEmpty && !input.IsEmpty && System.MemoryExtensions.Overlaps(System.Runtime.InteropServices.MemoryMarshal.AsBytes(output), System.Runtime.InteropServices.MemoryMarshal.AsBytes(input)))
        {
            throw new ArgumentException($"'{outputName}' overlaps '{inputName}'; outputs must not share memory with inputs.", outputName);
        }
    }
}
