using System;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Text;

namespace AttentionGen;

/// <summary>
/// Argument checks shared by every generated layer, so each one reports bad input the same way:
/// an <see cref="ArgumentException"/> naming the argument, the expected size (with its shape) and the actual
/// size, raised before any output is written. The checks are inlined and throw through separate methods: a small call
/// (W0's decoder step) runs about twenty of them, which cost 62 ns per call as calls on Zen 4.
/// </summary>
public static class Shapes
{
    /// <summary>Throws unless <paramref name="actual"/> equals <paramref name="expected"/>.</summary>
    /// <param name="actual">The span's length.</param>
    /// <param name="expected">The length the shape needs.</param>
    /// <param name="argument">The argument's name.</param>
    /// <param name="shape">The shape in words, e.g. <c>[B=2, Tq=5, Dq=128]</c>.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
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
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RequireLength(int actual, long expected, string argument,
        [InterpolatedStringHandlerArgument(nameof(actual), nameof(expected))] ref LengthMismatchHandler shape)
    {
        if (actual != expected)
        {
            ThrowLength(actual, expected, argument, shape.ToStringAndClear(), optional: false);
        }
    }

    /// <summary>Throws unless the span is empty (not requested) or has exactly the expected length.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RequireOptionalLength(int actual, long expected, string argument, string shape)
    {
        if (actual != 0 && actual != expected)
        {
            ThrowLength(actual, expected, argument, shape, optional: true);
        }
    }

    /// <summary>Throws unless the span is empty (not requested) or has exactly the expected length; formats the shape only then.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
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

    // The shape text of a failing check is built in a per-thread builder, so the handlers hold no reference: a correct call
    // then costs a comparison, not the zeroing of a formatting buffer per check in the caller's frame (about 800 bytes for
    // a forward's twenty checks when the handlers wrapped DefaultInterpolatedStringHandler).
    private static class ShapeText
    {
        [ThreadStatic]
        private static StringBuilder? t_text;

        public static void Start() => (t_text ??= new StringBuilder()).Clear();

        public static void Append(string? value) => t_text!.Append(value);

        public static string Take() => t_text!.ToString();
    }

    /// <summary>Formats a shape description only when the length it describes is wrong.</summary>
    [InterpolatedStringHandler]
    public ref struct LengthMismatchHandler
    {
        /// <summary>Called by the compiler; formats nothing when the lengths agree.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public LengthMismatchHandler(int literalLength, int formattedCount, int actual, long expected, out bool shouldAppend)
        {
            shouldAppend = actual != expected;
            if (shouldAppend)
            {
                ShapeText.Start();
            }
        }

        /// <summary>Called by the compiler.</summary>
        public readonly void AppendLiteral(string value) => ShapeText.Append(value);

        /// <summary>Called by the compiler.</summary>
        public readonly void AppendFormatted<TValue>(TValue value) => ShapeText.Append(value?.ToString());

        internal readonly string ToStringAndClear() => ShapeText.Take();
    }

    /// <summary>Formats a shape description only when the optional length it describes is wrong.</summary>
    [InterpolatedStringHandler]
    public ref struct OptionalLengthMismatchHandler
    {
        /// <summary>Called by the compiler; formats nothing when the span is empty or has the right length.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public OptionalLengthMismatchHandler(int literalLength, int formattedCount, int actual, long expected, out bool shouldAppend)
        {
            shouldAppend = actual != 0 && actual != expected;
            if (shouldAppend)
            {
                ShapeText.Start();
            }
        }

        /// <summary>Called by the compiler.</summary>
        public readonly void AppendLiteral(string value) => ShapeText.Append(value);

        /// <summary>Called by the compiler.</summary>
        public readonly void AppendFormatted<TValue>(TValue value) => ShapeText.Append(value?.ToString());

        internal readonly string ToStringAndClear() => ShapeText.Take();
    }

    /// <summary>Throws unless a runtime length is at least <paramref name="minimum"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RequireAtLeast(int value, int minimum, string argument)
    {
        if (value < minimum)
        {
            ThrowBelow(value, minimum, argument);
        }
    }

    [DoesNotReturn]
    private static void ThrowBelow(int value, int minimum, string argument)
        => throw new ArgumentException($"'{argument}' must be at least {minimum}, but is {value}.", argument);

    /// <summary>Throws when an output span overlaps an input span (outputs are written before inputs are fully read).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RequireNoOverlap<TOut, TIn>(ReadOnlySpan<TOut> output, ReadOnlySpan<TIn> input, string outputName, string inputName)
        where TOut : unmanaged
        where TIn : unmanaged
    {
        if (!output.IsEmpty && !input.IsEmpty && System.MemoryExtensions.Overlaps(System.Runtime.InteropServices.MemoryMarshal.AsBytes(output), System.Runtime.InteropServices.MemoryMarshal.AsBytes(input)))
        {
            ThrowOverlap(outputName, inputName);
        }
    }

    [DoesNotReturn]
    private static void ThrowOverlap(string outputName, string inputName)
        => throw new ArgumentException($"'{outputName}' overlaps '{inputName}'; outputs must not share memory with inputs.", outputName);
}
