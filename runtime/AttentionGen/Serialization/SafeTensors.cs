using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Numerics;
using System.Text;
using System.Text.Json;

namespace AttentionGen.Serialization;

/// <summary>The element types of a safetensors file this runtime reads (all four) and writes (F32, F64).</summary>
public enum SafeTensorsDType
{
    /// <summary>IEEE 754 binary32.</summary>
    F32,
    /// <summary>IEEE 754 binary64.</summary>
    F64,
    /// <summary>IEEE 754 binary16 (read only).</summary>
    F16,
    /// <summary>bfloat16: the upper half of a binary32 (read only).</summary>
    BF16,
}

/// <summary>How <see cref="SafeTensors.Load{T}(IReadOnlyList{Parameter{T}}, Stream, SafeTensorsLoadOptions?)"/> matches file tensors to parameters.</summary>
public sealed class SafeTensorsLoadOptions
{
    /// <summary>Prepended to every parameter name when looking it up in the file (e.g. <c>decoder.attention.</c>).</summary>
    public string Prefix { get; init; } = "";

    /// <summary>Parameter name → tensor name in the file, for names that differ (applied before <see cref="Prefix"/>).</summary>
    public IReadOnlyDictionary<string, string> Rename { get; init; } = new Dictionary<string, string>();

    /// <summary>Whether tensors the layer does not use are allowed in the file (a whole model's state dict). Default true.</summary>
    public bool AllowExtraTensors { get; init; } = true;
}

/// <summary>A safetensors file that cannot be loaded: <see cref="TensorName"/> names the tensor (when one is at fault).</summary>
public sealed class SafeTensorsException : IOException
{
    /// <summary>Creates the exception.</summary>
    public SafeTensorsException(string message, string? tensorName = null) : base(message) => TensorName = tensorName;

    /// <summary>The tensor at fault, or null for a problem with the file as a whole.</summary>
    public string? TensorName { get; }
}

/// <summary>
/// Loads and saves parameters in the safetensors format (8-byte little-endian header length N, N bytes of UTF-8 JSON
/// mapping each tensor's name to its dtype, shape and data offsets, then the raw little-endian data), so weights move
/// between AttentionGen and PyTorch / Keras by name. Loading is all or nothing: the whole file is read and checked before
/// any parameter changes. No reflection: JSON is read and written with <see cref="Utf8JsonReader"/>/<see cref="Utf8JsonWriter"/>.
/// </summary>
public static class SafeTensors
{
    private const string MetadataKey = "__metadata__";

    /// <summary>Saves <paramref name="layer"/>'s parameters to <paramref name="path"/>.</summary>
    public static void Save<T>(IAttentionLayer<T> layer, string path, IReadOnlyDictionary<string, string>? metadata = null, SafeTensorsDType? dtype = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(layer);
        using FileStream stream = File.Create(path);
        Save(layer.Parameters, stream, metadata, dtype);
    }

    /// <summary>Loads <paramref name="layer"/>'s parameters from <paramref name="path"/>; on any problem nothing changes.</summary>
    public static void Load<T>(IAttentionLayer<T> layer, string path, SafeTensorsLoadOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(layer);
        using FileStream stream = File.OpenRead(path);
        Load(layer.Parameters, stream, options);
    }

    /// <summary>
    /// Writes <paramref name="parameters"/> in the layout of the reference implementation's <c>save_file</c>: tensors
    /// ordered by dtype size (largest first) then by name, packed without gaps, the JSON header compact and padded with
    /// spaces to a multiple of 8 bytes. <paramref name="dtype"/> defaults to the parameters' own type (F32 or F64).
    /// </summary>
    public static void Save<T>(IEnumerable<Parameter<T>> parameters, Stream stream, IReadOnlyDictionary<string, string>? metadata = null, SafeTensorsDType? dtype = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(stream);
        SafeTensorsDType type = dtype ?? (typeof(T) == typeof(double) ? SafeTensorsDType.F64 : SafeTensorsDType.F32);
        if (type is not (SafeTensorsDType.F32 or SafeTensorsDType.F64))
        {
            throw new ArgumentException($"Only F32 and F64 are written; got {type}.", nameof(dtype));
        }
        int size = type == SafeTensorsDType.F32 ? 4 : 8;
        Parameter<T>[] ordered = parameters.OrderBy(p => p.Name, StringComparer.Ordinal).ToArray();
        if (ordered.Select(p => p.Name).Distinct(StringComparer.Ordinal).Count() != ordered.Length)
        {
            throw new ArgumentException("Parameter names must be unique to be saved.", nameof(parameters));
        }

        var header = new ArrayBufferWriterLite();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(MetadataKey);
                foreach (KeyValuePair<string, string> pair in metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    json.WriteString(pair.Key, pair.Value);
                }
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (Parameter<T> parameter in ordered)
            {
                json.WriteStartObject(parameter.Name);
                json.WriteString("dtype", type.ToString());
                json.WriteStartArray("shape");
                foreach (int dimension in parameter.Shape) json.WriteNumberValue(dimension);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                offset += (long)parameter.Length * size;
                json.WriteNumberValue(offset);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        int padded = (header.Length + 7) / 8 * 8;
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
        stream.Write(length);
        stream.Write(header.Written);
        for (int i = header.Length; i < padded; i++) stream.WriteByte((byte)' ');

        byte[] buffer = new byte[8];
        foreach (Parameter<T> parameter in ordered)
        {
            foreach (T value in parameter.Value)
            {
                if (size == 4) BinaryPrimitives.WriteSingleLittleEndian(buffer, float.CreateTruncating(value));
                else BinaryPrimitives.WriteDoubleLittleEndian(buffer, double.CreateTruncating(value));
                stream.Write(buffer, 0, size);
            }
        }
    }

    /// <summary>
    /// Loads every parameter from the tensor of the same name (after <see cref="SafeTensorsLoadOptions.Rename"/> and
    /// <see cref="SafeTensorsLoadOptions.Prefix"/>), converting F32/F64/F16/BF16 to <typeparamref name="T"/>. The whole file
    /// is read and checked first; on any problem a <see cref="SafeTensorsException"/> names the tensor and the problem and
    /// no parameter changes.
    /// </summary>
    public static void Load<T>(IReadOnlyList<Parameter<T>> parameters, Stream stream, SafeTensorsLoadOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(stream);
        options ??= new SafeTensorsLoadOptions();
        byte[] file = ReadAll(stream);
        Dictionary<string, TensorEntry> entries = ReadHeader(file, out int dataStart);

        var staged = new List<(Parameter<T> Parameter, T[] Values)>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (Parameter<T> parameter in parameters)
        {
            string name = options.Prefix + (options.Rename.TryGetValue(parameter.Name, out string? renamed) ? renamed : parameter.Name);
            if (!entries.TryGetValue(name, out TensorEntry entry))
            {
                throw new SafeTensorsException($"Tensor '{name}' (for parameter '{parameter.Name}') is missing from the file.", name);
            }
            used.Add(name);
            if (!entry.Shape.SequenceEqual(parameter.Shape.Select(d => (long)d)))
            {
                throw new SafeTensorsException($"Tensor '{name}' has shape [{string.Join(", ", entry.Shape)}], but parameter '{parameter.Name}' needs [{string.Join(", ", parameter.Shape)}].", name);
            }
            staged.Add((parameter, Decode<T>(file.AsSpan(dataStart + (int)entry.Begin, (int)(entry.End - entry.Begin)), entry.DType)));
        }
        if (!options.AllowExtraTensors && entries.Keys.FirstOrDefault(k => !used.Contains(k)) is { } extra)
        {
            throw new SafeTensorsException($"Tensor '{extra}' is in the file but no parameter uses it (AllowExtraTensors is false).", extra);
        }
        foreach ((Parameter<T> parameter, T[] values) in staged)
        {
            values.CopyTo(parameter.Value, 0);
        }
    }

    private readonly record struct TensorEntry(SafeTensorsDType DType, long[] Shape, long Begin, long End);

    private static byte[] ReadAll(Stream stream)
    {
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static Dictionary<string, TensorEntry> ReadHeader(byte[] file, out int dataStart)
    {
        if (file.Length < 8)
        {
            throw new SafeTensorsException($"The file is {file.Length} bytes long: too short for the 8-byte header length.");
        }
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(file);
        if (headerLength > (ulong)(file.Length - 8))
        {
            throw new SafeTensorsException($"The header length {headerLength} runs past the end of the file ({file.Length - 8} bytes follow the length).");
        }
        dataStart = 8 + (int)headerLength;
        long dataLength = file.Length - dataStart;
        var entries = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
        try
        {
            var reader = new Utf8JsonReader(file.AsSpan(8, (int)headerLength));
            Expect(reader.Read() && reader.TokenType == JsonTokenType.StartObject, "the header is not a JSON object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string name = reader.GetString()!;
                Expect(reader.Read() && reader.TokenType == JsonTokenType.StartObject, $"the entry of '{name}' is not an object");
                if (name == MetadataKey)
                {
                    reader.Skip();
                    continue;
                }
                string? dtype = null;
                List<long>? shape = null, offsets = null;
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    string field = reader.GetString()!;
                    reader.Read();
                    switch (field)
                    {
                        case "dtype": dtype = reader.GetString(); break;
                        case "shape": shape = ReadNumbers(ref reader); break;
                        case "data_offsets": offsets = ReadNumbers(ref reader); break;
                        default: reader.Skip(); break;
                    }
                }
                if (dtype is null || shape is null || offsets is null || offsets.Count != 2)
                {
                    throw new SafeTensorsException($"Tensor '{name}' lacks a dtype, a shape or two data offsets.", name);
                }
                if (!Enum.TryParse(dtype, out SafeTensorsDType type) || !Enum.IsDefined(type))
                {
                    throw new SafeTensorsException($"Tensor '{name}' has dtype {dtype}; only F32, F64, F16 and BF16 are read.", name);
                }
                if (shape.Any(d => d < 0))
                {
                    throw new SafeTensorsException($"Tensor '{name}' has a negative dimension in [{string.Join(", ", shape)}].", name);
                }
                long elements = shape.Aggregate(1L, (a, d) => a * d);
                long bytes = elements * (type is SafeTensorsDType.F64 ? 8 : type is SafeTensorsDType.F32 ? 4 : 2);
                if (offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength)
                {
                    throw new SafeTensorsException($"Tensor '{name}' has data offsets [{offsets[0]}, {offsets[1]}] outside the {dataLength} bytes of data.", name);
                }
                if (offsets[1] - offsets[0] != bytes)
                {
                    throw new SafeTensorsException($"Tensor '{name}' spans {offsets[1] - offsets[0]} bytes, but {type} of shape [{string.Join(", ", shape)}] needs {bytes}.", name);
                }
                if (!entries.TryAdd(name, new TensorEntry(type, shape.ToArray(), offsets[0], offsets[1])))
                {
                    throw new SafeTensorsException($"Tensor '{name}' appears twice in the header.", name);
                }
            }
        }
        catch (JsonException exception)
        {
            throw new SafeTensorsException($"The header is not valid JSON: {exception.Message}");
        }
        // Tensors may not share bytes.
        TensorEntry? previous = null;
        string previousName = "";
        foreach (KeyValuePair<string, TensorEntry> pair in entries.OrderBy(p => p.Value.Begin))
        {
            if (previous is { } p && pair.Value.Begin < p.End && pair.Value.End > pair.Value.Begin)
            {
                throw new SafeTensorsException($"Tensor '{pair.Key}' overlaps tensor '{previousName}' in the data.", pair.Key);
            }
            previous = pair.Value;
            previousName = pair.Key;
        }
        return entries;

        static void Expect(bool condition, string problem)
        {
            if (!condition) throw new SafeTensorsException($"The header is malformed: {problem}.");
        }
    }

    private static List<long> ReadNumbers(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new SafeTensorsException("The header is malformed: an array of numbers was expected.");
        }
        var numbers = new List<long>();
        while (reader.Read() && reader.TokenType == JsonTokenType.Number)
        {
            numbers.Add(reader.GetInt64());
        }
        return numbers;
    }

    private static T[] Decode<T>(ReadOnlySpan<byte> data, SafeTensorsDType type) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int size = type switch { SafeTensorsDType.F64 => 8, SafeTensorsDType.F32 => 4, _ => 2 };
        var values = new T[data.Length / size];
        for (int i = 0; i < values.Length; i++)
        {
            ReadOnlySpan<byte> bytes = data.Slice(i * size, size);
            values[i] = type switch
            {
                SafeTensorsDType.F64 => T.CreateTruncating(BinaryPrimitives.ReadDoubleLittleEndian(bytes)),
                SafeTensorsDType.F32 => T.CreateTruncating(BinaryPrimitives.ReadSingleLittleEndian(bytes)),
                SafeTensorsDType.F16 => T.CreateTruncating((float)BinaryPrimitives.ReadHalfLittleEndian(bytes)),
                _ => T.CreateTruncating(BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes) << 16)),
            };
        }
        return values;
    }

    // A growable byte buffer for Utf8JsonWriter (IBufferWriter<byte>).
    private sealed class ArrayBufferWriterLite : System.Buffers.IBufferWriter<byte>
    {
        private byte[] _buffer = new byte[256];

        public int Length { get; private set; }

        public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, Length);

        public void Advance(int count) => Length += count;

        public Memory<byte> GetMemory(int sizeHint = 0)
        {
            Ensure(sizeHint);
            return _buffer.AsMemory(Length);
        }

        public Span<byte> GetSpan(int sizeHint = 0)
        {
            Ensure(sizeHint);
            return _buffer.AsSpan(Length);
        }

        private void Ensure(int sizeHint)
        {
            int needed = Length + Math.Max(sizeHint, 1);
            if (needed > _buffer.Length) Array.Resize(ref _buffer, Math.Max(needed, _buffer.Length * 2));
        }
    }
}
