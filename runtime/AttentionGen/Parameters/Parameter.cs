using System;
using System.Collections.Generic;
using System.Numerics;

namespace AttentionGen;

/// <summary>
/// A named, shaped, trainable tensor: its values and the gradient that <c>Backward</c> accumulates into.
/// Row-major; shapes follow PyTorch's conventions (an <c>nn.Linear</c> weight is <c>[out, in]</c>), so weights
/// load by name through safetensors.
/// </summary>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
public sealed class Parameter<T> where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private readonly int[] _shape;

    /// <summary>Creates a zero-filled parameter.</summary>
    /// <param name="name">The name it is saved and loaded under (for example <c>query_weight</c>).</param>
    /// <param name="shape">Its dimensions, outermost first; each at least 1.</param>
    public Parameter(string name, params int[] shape)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        long length = 1;
        foreach (int dimension in shape)
        {
            if (dimension < 1)
            {
                throw new ArgumentException($"Every dimension of parameter '{name}' must be at least 1; got [{string.Join(", ", shape)}].", nameof(shape));
            }
            length *= dimension;
            if (length > Array.MaxLength)
            {
                throw new ArgumentException($"Parameter '{name}' of shape [{string.Join(", ", shape)}] is too large.", nameof(shape));
            }
        }
        Name = name;
        _shape = (int[])shape.Clone();
        Value = new T[length];
        Gradient = new T[length];
    }

    /// <summary>The name it is saved and loaded under.</summary>
    public string Name { get; }

    /// <summary>Its dimensions, outermost first.</summary>
    public IReadOnlyList<int> Shape => _shape;

    /// <summary>The number of elements (the product of <see cref="Shape"/>).</summary>
    public int Length => Value.Length;

    /// <summary>The values, row-major.</summary>
    public T[] Value { get; }

    /// <summary>The accumulated gradient of the loss with respect to <see cref="Value"/>, same layout.</summary>
    public T[] Gradient { get; }

    /// <summary>Clears <see cref="Gradient"/>.</summary>
    public void ZeroGradient() => Array.Clear(Gradient);

    /// <inheritdoc/>
    public override string ToString() => $"{Name} [{string.Join(", ", _shape)}]";
}
