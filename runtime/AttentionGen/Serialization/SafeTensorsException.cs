using System.IO;

namespace AttentionGen.Serialization;

/// <summary>
/// A safetensors file that cannot be loaded: malformed, inconsistent, or not matching the parameters it is loaded into.
/// The message names the tensor and says what was expected and what was found. When it is thrown, no parameter has
/// changed. An <see cref="IOException"/> (<see cref="InvalidDataException"/> is sealed), so code that handles I/O
/// failures of a load handles these too.
/// </summary>
public sealed class SafeTensorsException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong, naming the tensor and the expected and actual values.</param>
    /// <param name="tensorName">The tensor at fault, or null when the problem is with the file as a whole.</param>
    public SafeTensorsException(string message, string? tensorName = null)
        : base(message)
        => TensorName = tensorName;

    /// <summary>The name (as written in the file) of the tensor at fault, or null for a problem with the file as a whole.</summary>
    public string? TensorName { get; }
}
