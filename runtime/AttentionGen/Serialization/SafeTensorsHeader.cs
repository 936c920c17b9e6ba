using System;
using System.Collections.Generic;
using System.Text.Json;

namespace AttentionGen.Serialization;

/// <summary>One tensor as its header entry describes it.</summary>
public sealed class SafeTensorsTensorInfo
{
    internal SafeTensorsTensorInfo(string name, string dtype, long[] shape, long dataBegin, long dataEnd, long elementCount)
    {
        Name = name;
        DType = dtype;
        _shape = shape;
        DataBegin = dataBegin;
        DataEnd = dataEnd;
        ElementCount = elementCount;
    }

    private readonly long[] _shape;

    /// <summary>The tensor's name, e.g. <c>decoder.attention.query_weight</c>.</summary>
    public string Name { get; }

    /// <summary>Its dtype as written, e.g. <c>F32</c>, <c>BF16</c> or <c>I64</c>.</summary>
    public string DType { get; }

    /// <summary>Its dimensions, outermost first (empty for a scalar).</summary>
    public IReadOnlyList<long> Shape => _shape;

    /// <summary>The number of elements (the product of <see cref="Shape"/>).</summary>
    public long ElementCount { get; }

    /// <summary>Where its bytes begin, counted from the first byte after the header.</summary>
    public long DataBegin { get; }

    /// <summary>Where its bytes end (exclusive), counted from the first byte after the header.</summary>
    public long DataEnd { get; }

    internal string ShapeText => FormatShape(_shape);

    internal static string FormatShape(IReadOnlyList<long> shape) => "[" + string.Join(", ", shape) + "]";

    /// <inheritdoc/>
    public override string ToString() => $"{Name} {DType} {ShapeText} @ [{DataBegin}, {DataEnd})";
}

/// <summary>
/// The checked header of a safetensors file: its metadata and its tensors in data order. Every entry has been checked:
/// a known dtype, a byte span equal to dtype size × element count, and spans that tile the data from 0 to the end
/// without gaps or overlaps (the reference implementation's rules).
/// </summary>
public sealed class SafeTensorsHeader
{
    internal const string MetadataKey = "__metadata__";

    // The reference rejects larger headers; so do we, before allocating them.
    internal const ulong MaxHeaderLength = 100_000_000;

    private readonly Dictionary<string, SafeTensorsTensorInfo> _byName;

    private SafeTensorsHeader(IReadOnlyDictionary<string, string>? metadata, SafeTensorsTensorInfo[] tensors, Dictionary<string, SafeTensorsTensorInfo> byName, long headerLength)
    {
        Metadata = metadata;
        Tensors = tensors;
        _byName = byName;
        HeaderLength = headerLength;
        DataLength = tensors.Length == 0 ? 0 : tensors[^1].DataEnd;
    }

    /// <summary>The <c>__metadata__</c> entry (string to string), or null when the file has none.</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; }

    /// <summary>Every tensor, in the order of their data.</summary>
    public IReadOnlyList<SafeTensorsTensorInfo> Tensors { get; }

    /// <summary>N, the length of the JSON header in bytes (its padding included); the data starts at byte 8 + N.</summary>
    public long HeaderLength { get; }

    /// <summary>The length of the data section, which the tensors cover exactly.</summary>
    public long DataLength { get; }

    /// <summary>Looks a tensor up by its name in the file.</summary>
    public bool TryGetTensor(string name, out SafeTensorsTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _byName.TryGetValue(name, out tensor!);
    }

    /// <summary>Parses and checks the JSON header (the N bytes after the length).</summary>
    internal static SafeTensorsHeader Parse(ReadOnlySpan<byte> json)
    {
        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            throw new SafeTensorsException("The header is not valid UTF-8.");
        }
        if (json.IsEmpty || json[0] != (byte)'{')
        {
            throw new SafeTensorsException($"The header must be a JSON object starting with '{{'; its first byte is {(json.IsEmpty ? "missing" : $"0x{json[0]:X2}")}.");
        }

        IReadOnlyDictionary<string, string>? metadata = null;
        var tensors = new List<SafeTensorsTensorInfo>();
        var byName = new Dictionary<string, SafeTensorsTensorInfo>(StringComparer.Ordinal);
        string? current = null;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false });
            reader.Read(); // the '{' checked above
            bool seenMetadata = false;
            while (Next(ref reader) == JsonTokenType.PropertyName)
            {
                current = reader.GetString()!;
                reader.Read();
                if (current == MetadataKey)
                {
                    if (seenMetadata)
                    {
                        throw new SafeTensorsException($"The header has two '{MetadataKey}' entries.");
                    }
                    seenMetadata = true;
                    metadata = ReadMetadata(ref reader);
                    continue;
                }
                if (byName.ContainsKey(current))
                {
                    throw new SafeTensorsException($"Tensor '{current}' appears twice in the header.", current);
                }
                SafeTensorsTensorInfo tensor = ReadTensor(ref reader, current);
                byName.Add(current, tensor);
                tensors.Add(tensor);
            }
            current = null;
            // Only whitespace (the padding) may follow the object; the reader throws on anything else.
            if (reader.Read())
            {
                throw new SafeTensorsException($"The header has {reader.TokenType} after its closing '}}'.");
            }
        }
        catch (Exception exception) when (exception is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: a string escape that is not valid UTF-16 (a lone surrogate).
            throw current is null
                ? new SafeTensorsException($"The header is not valid JSON: {exception.Message}")
                : new SafeTensorsException($"The header entry of tensor '{current}' is not valid JSON: {exception.Message}", current);
        }

        SafeTensorsTensorInfo[] ordered = tensors.ToArray();
        // By span, then name, so that the tensor an error names does not depend on the order of the header.
        Array.Sort(ordered, static (a, b) => a.DataBegin != b.DataBegin ? a.DataBegin.CompareTo(b.DataBegin)
            : a.DataEnd != b.DataEnd ? a.DataEnd.CompareTo(b.DataEnd)
            : string.CompareOrdinal(a.Name, b.Name));
        long cursor = 0;
        SafeTensorsTensorInfo? previous = null;
        foreach (SafeTensorsTensorInfo tensor in ordered)
        {
            if (tensor.DataBegin < cursor)
            {
                throw new SafeTensorsException(
                    $"Tensor '{tensor.Name}' has data offsets [{tensor.DataBegin}, {tensor.DataEnd}], which overlap tensor '{previous!.Name}' at [{previous.DataBegin}, {previous.DataEnd}].", tensor.Name);
            }
            if (tensor.DataBegin > cursor)
            {
                throw new SafeTensorsException(
                    $"Tensor '{tensor.Name}' has data offsets [{tensor.DataBegin}, {tensor.DataEnd}], leaving bytes [{cursor}, {tensor.DataBegin}) unused after {(previous is null ? "the header" : $"tensor '{previous.Name}'")}; tensors must be packed without gaps.", tensor.Name);
            }
            cursor = tensor.DataEnd;
            previous = tensor;
        }
        return new SafeTensorsHeader(metadata, ordered, byName, json.Length);
    }

    /// <summary>Checks the header against the actual length of the data section, when it is known.</summary>
    internal void CheckDataLength(long actual)
    {
        if (actual < DataLength)
        {
            foreach (SafeTensorsTensorInfo tensor in Tensors)
            {
                if (tensor.DataEnd > actual)
                {
                    throw new SafeTensorsException(
                        $"Tensor '{tensor.Name}' has data offsets [{tensor.DataBegin}, {tensor.DataEnd}], past the end of the data: the file holds {actual} bytes of data, the header needs {DataLength} (is the file truncated?).", tensor.Name);
                }
            }
        }
        if (actual > DataLength)
        {
            throw new SafeTensorsException(
                $"The file holds {actual} bytes of data, but its tensors cover {DataLength}: {actual - DataLength} bytes follow the last tensor{(Tensors.Count == 0 ? "" : $" '{Tensors[^1].Name}'")}.", Tensors.Count == 0 ? null : Tensors[^1].Name);
        }
    }

    private static JsonTokenType Next(ref Utf8JsonReader reader)
    {
        if (!reader.Read())
        {
            throw new SafeTensorsException("The header's JSON ends early.");
        }
        return reader.TokenType;
    }

    private static IReadOnlyDictionary<string, string>? ReadMetadata(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new SafeTensorsException($"The header's '{MetadataKey}' must be an object of strings; it is {Describe(reader.TokenType)}.");
        }
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        while (Next(ref reader) == JsonTokenType.PropertyName)
        {
            string key = reader.GetString()!;
            if (Next(ref reader) != JsonTokenType.String)
            {
                throw new SafeTensorsException($"The header's '{MetadataKey}' must map strings to strings; '{key}' is {Describe(reader.TokenType)}.");
            }
            if (!metadata.TryAdd(key, reader.GetString()!))
            {
                throw new SafeTensorsException($"The header's '{MetadataKey}' has the key '{key}' twice.");
            }
        }
        return metadata;
    }

    private static SafeTensorsTensorInfo ReadTensor(ref Utf8JsonReader reader, string name)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new SafeTensorsException($"The header entry of tensor '{name}' must be an object with dtype, shape and data_offsets; it is {Describe(reader.TokenType)}.", name);
        }
        string? dtype = null;
        long[]? shape = null;
        long[]? offsets = null;
        while (Next(ref reader) == JsonTokenType.PropertyName)
        {
            string field = reader.GetString()!;
            reader.Read();
            switch (field)
            {
                case "dtype":
                    if (reader.TokenType != JsonTokenType.String)
                    {
                        throw new SafeTensorsException($"Tensor '{name}' has a dtype that is {Describe(reader.TokenType)}, not a string.", name);
                    }
                    dtype = reader.GetString();
                    break;
                case "shape":
                    shape = ReadCounts(ref reader, name, field);
                    break;
                case "data_offsets":
                    offsets = ReadCounts(ref reader, name, field);
                    break;
                default:
                    // The reference ignores fields it does not know; so do we.
                    reader.Skip();
                    break;
            }
        }
        if (dtype is null || shape is null || offsets is null)
        {
            string missing = dtype is null ? "dtype" : shape is null ? "shape" : "data_offsets";
            throw new SafeTensorsException($"Tensor '{name}' has no {missing} in its header entry.", name);
        }
        if (offsets.Length != 2)
        {
            throw new SafeTensorsException($"Tensor '{name}' has {offsets.Length} data offsets; expected 2, [begin, end].", name);
        }
        long begin = offsets[0], end = offsets[1];
        if (end < begin)
        {
            throw new SafeTensorsException($"Tensor '{name}' has data offsets [{begin}, {end}] that end before they begin.", name);
        }
        if (!SafeTensorsDTypes.TryGetBits(dtype, out int bits))
        {
            throw new SafeTensorsException($"Tensor '{name}' has dtype '{dtype}', which is not a safetensors dtype.", name);
        }
        long elements = 1;
        long bytes;
        try
        {
            foreach (long dimension in shape)
            {
                elements = checked(elements * dimension);
            }
            long totalBits = checked(elements * bits);
            bytes = totalBits / 8;
            if (totalBits % 8 != 0)
            {
                throw new SafeTensorsException($"Tensor '{name}' of dtype {dtype} and shape {SafeTensorsTensorInfo.FormatShape(shape)} does not fill a whole number of bytes.", name);
            }
        }
        catch (OverflowException)
        {
            throw new SafeTensorsException($"Tensor '{name}' has shape {SafeTensorsTensorInfo.FormatShape(shape)}, too large to address.", name);
        }
        if (end - begin != bytes)
        {
            throw new SafeTensorsException(
                $"Tensor '{name}' has data offsets [{begin}, {end}] spanning {end - begin} bytes, but dtype {dtype} × shape {SafeTensorsTensorInfo.FormatShape(shape)} needs {bytes}.", name);
        }
        return new SafeTensorsTensorInfo(name, dtype, shape, begin, end, elements);
    }

    // Shapes and offsets: arrays of non-negative integers (usize in the reference).
    private static long[] ReadCounts(ref Utf8JsonReader reader, string name, string field)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new SafeTensorsException($"Tensor '{name}' has a {field} that is {Describe(reader.TokenType)}, not an array.", name);
        }
        var values = new List<long>();
        while (Next(ref reader) != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out long value) || value < 0)
            {
                string text = reader.TokenType == JsonTokenType.Number ? System.Text.Encoding.UTF8.GetString(reader.ValueSpan) : Describe(reader.TokenType);
                throw new SafeTensorsException($"Tensor '{name}' has {text} in its {field}; expected non-negative integers.", name);
            }
            values.Add(value);
        }
        return values.ToArray();
    }

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };
}

/// <summary>The safetensors dtypes the reference implementation knows, with their sizes in bits.</summary>
internal static class SafeTensorsDTypes
{
    public static bool TryGetBits(string dtype, out int bits)
    {
        bits = dtype switch
        {
            "F4" => 4,
            "F6_E2M3" or "F6_E3M2" => 6,
            "BOOL" or "U8" or "I8" or "F8_E5M2" or "F8_E4M3" or "F8_E8M0" => 8,
            "I16" or "U16" or "F16" or "BF16" => 16,
            "I32" or "U32" or "F32" => 32,
            "I64" or "U64" or "F64" or "C64" => 64,
            _ => 0,
        };
        return bits != 0;
    }

    public static bool TryParseLoadable(string dtype, out SafeTensorsDType type)
    {
        switch (dtype)
        {
            case "F32": type = SafeTensorsDType.F32; return true;
            case "F64": type = SafeTensorsDType.F64; return true;
            case "F16": type = SafeTensorsDType.F16; return true;
            case "BF16": type = SafeTensorsDType.BF16; return true;
            default: type = default; return false;
        }
    }

    public static string Name(SafeTensorsDType type) => type switch
    {
        SafeTensorsDType.F32 => "F32",
        SafeTensorsDType.F64 => "F64",
        SafeTensorsDType.F16 => "F16",
        SafeTensorsDType.BF16 => "BF16",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not a safetensors dtype this runtime knows."),
    };

    public static int Size(SafeTensorsDType type) => type switch
    {
        SafeTensorsDType.F64 => 8,
        SafeTensorsDType.F32 => 4,
        _ => 2,
    };
}
