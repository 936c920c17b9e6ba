using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace AttentionGen.Serialization;

/// <summary>
/// Saves and loads parameters in the safetensors format, so that weights move by name between AttentionGen and PyTorch,
/// Keras or anything else that reads it. A file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// (<c>{"__metadata__":{…},"name":{"dtype":"F32","shape":[…],"data_offsets":[begin,end]},…}</c>, offsets counted from
/// the first byte after the header), then the raw little-endian data.
/// </summary>
/// <remarks>
/// <para>Saving writes the layout of the reference implementation's <c>save_file</c> byte for byte: tensors ordered by
/// dtype (one dtype per save here) then by name (UTF-8 byte order), packed without gaps, the header as compact JSON with
/// <c>__metadata__</c> first, padded with spaces to a multiple of 8 bytes.</para>
/// <para>Loading is all or nothing: the whole header is parsed and checked (lengths, JSON, dtypes, offsets against
/// dtype × shape and against each other, the data's length), every parameter is matched to its tensor (name, dtype,
/// shape) and every needed byte is read and converted before the first parameter changes. Any problem throws a
/// <see cref="SafeTensorsException"/> naming the tensor, and then no parameter has changed.</para>
/// <para>No reflection: JSON goes through <see cref="Utf8JsonReader"/> and <see cref="Utf8JsonWriter"/>, so this is
/// trimming- and Native-AOT-safe. Byte order goes through <see cref="BinaryPrimitives"/>, so files are little-endian
/// on every host.</para>
/// </remarks>
public static class SafeTensors
{
    private const int ChunkBytes = 64 * 1024;

    /// <summary>Saves <paramref name="layer"/>'s parameters to <paramref name="stream"/>.</summary>
    /// <param name="layer">The layer whose <see cref="IAttentionLayer{T}.Parameters"/> are saved.</param>
    /// <param name="stream">Where the file is written, from its current position.</param>
    /// <param name="metadata">Written as <c>__metadata__</c> (string to string, in ordinal key order); null writes none.</param>
    /// <param name="dtype">F32 or F64; by default F64 for <see cref="double"/> parameters and F32 otherwise. F32 from
    /// <see cref="double"/> rounds each value to the nearest <see cref="float"/>.</param>
    public static void Save<T>(IAttentionLayer<T> layer, Stream stream, IReadOnlyDictionary<string, string>? metadata = null, SafeTensorsDType? dtype = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(layer);
        Save(layer.Parameters, stream, metadata, dtype);
    }

    /// <summary>
    /// Saves <paramref name="layer"/>'s parameters to the file <paramref name="path"/>, replacing it only once the new
    /// file is complete (it is written beside it first).
    /// </summary>
    /// <inheritdoc cref="Save{T}(IAttentionLayer{T}, Stream, IReadOnlyDictionary{string, string}?, SafeTensorsDType?)"/>
    public static void Save<T>(IAttentionLayer<T> layer, string path, IReadOnlyDictionary<string, string>? metadata = null, SafeTensorsDType? dtype = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(layer);
        Save(layer.Parameters, path, metadata, dtype);
    }

    /// <summary>Saves <paramref name="parameters"/> (unique names) to <paramref name="stream"/>.</summary>
    /// <param name="parameters">The parameters; each is saved under its <see cref="Parameter{T}.Name"/>.</param>
    /// <param name="stream">Where the file is written, from its current position.</param>
    /// <param name="metadata">Written as <c>__metadata__</c> (string to string, in ordinal key order); null writes none.</param>
    /// <param name="dtype">F32 or F64; by default F64 for <see cref="double"/> parameters and F32 otherwise.</param>
    /// <exception cref="ArgumentException">Duplicate or reserved names, a null value, or a dtype other than F32/F64;
    /// nothing is written.</exception>
    public static void Save<T>(IReadOnlyList<Parameter<T>> parameters, Stream stream, IReadOnlyDictionary<string, string>? metadata = null, SafeTensorsDType? dtype = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(stream);
        PreparedSave<T> prepared = PrepareSave(parameters, metadata, dtype);
        if (!stream.CanWrite)
        {
            throw new ArgumentException("The stream must be writable.", nameof(stream));
        }
        WriteFile(prepared, stream);
    }

    /// <summary>
    /// Saves <paramref name="parameters"/> (unique names) to the file <paramref name="path"/>, replacing it only once the
    /// new file is complete (it is written beside it first).
    /// </summary>
    /// <inheritdoc cref="Save{T}(IReadOnlyList{Parameter{T}}, Stream, IReadOnlyDictionary{string, string}?, SafeTensorsDType?)"/>
    public static void Save<T>(IReadOnlyList<Parameter<T>> parameters, string path, IReadOnlyDictionary<string, string>? metadata = null, SafeTensorsDType? dtype = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        PreparedSave<T> prepared = PrepareSave(parameters, metadata, dtype);
        string fullPath = Path.GetFullPath(path);
        string temporary = Path.Combine(Path.GetDirectoryName(fullPath)!, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1))
            {
                WriteFile(prepared, stream);
            }
            File.Move(temporary, fullPath, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    /// <summary>Loads <paramref name="layer"/>'s parameters from <paramref name="stream"/>; on any problem nothing changes.</summary>
    /// <param name="layer">The layer whose <see cref="IAttentionLayer{T}.Parameters"/> are loaded.</param>
    /// <param name="stream">The file, from its current position; it need not be seekable.</param>
    /// <param name="options">Name prefix, renames, whether extra tensors are allowed; null for the defaults.</param>
    /// <exception cref="SafeTensorsException">The file is malformed or does not fit the parameters; none has changed.</exception>
    public static void Load<T>(IAttentionLayer<T> layer, Stream stream, SafeTensorsLoadOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(layer);
        Load(layer.Parameters, stream, options);
    }

    /// <summary>Loads <paramref name="layer"/>'s parameters from the file <paramref name="path"/>; on any problem nothing changes.</summary>
    /// <inheritdoc cref="Load{T}(IAttentionLayer{T}, Stream, SafeTensorsLoadOptions?)"/>
    public static void Load<T>(IAttentionLayer<T> layer, string path, SafeTensorsLoadOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(layer);
        Load(layer.Parameters, path, options);
    }

    /// <summary>
    /// Loads every parameter from the tensor named <see cref="SafeTensorsLoadOptions.Prefix"/> + its (renamed) name,
    /// converting F32, F64, F16 or BF16 to <typeparamref name="T"/> (F64 to <see cref="float"/> rounds to nearest; the
    /// others convert exactly). The whole file is checked and read first; on any problem no parameter changes.
    /// </summary>
    /// <param name="parameters">The parameters (unique names) to fill.</param>
    /// <param name="stream">The file, from its current position; it need not be seekable.</param>
    /// <param name="options">Name prefix, renames, whether extra tensors are allowed; null for the defaults.</param>
    /// <exception cref="SafeTensorsException">The file is malformed or does not fit the parameters; none has changed.</exception>
    /// <exception cref="ArgumentException">Duplicate parameter names or a rename of a parameter that does not exist.</exception>
    public static void Load<T>(IReadOnlyList<Parameter<T>> parameters, Stream stream, SafeTensorsLoadOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(stream);
        options ??= new SafeTensorsLoadOptions();
        CheckLoadArguments(parameters, options);

        SafeTensorsHeader header = ReadHeaderCore(stream, out long? dataLength);
        if (dataLength is long known)
        {
            header.CheckDataLength(known);
        }
        LoadPlan<T>[] plans = Match(parameters, header, options);
        Dictionary<SafeTensorsTensorInfo, byte[]> bytes = ReadTensorBytes(stream, header, plans, dataLength.HasValue);

        // Everything is read and checked, and converting cannot fail: only now do the parameters change.
        foreach (LoadPlan<T> plan in plans)
        {
            Decode(bytes[plan.Tensor], plan.DType, plan.Parameter.Value.AsSpan());
        }
    }

    /// <summary>Loads <paramref name="parameters"/> from the file <paramref name="path"/>; on any problem nothing changes.</summary>
    /// <inheritdoc cref="Load{T}(IReadOnlyList{Parameter{T}}, Stream, SafeTensorsLoadOptions?)"/>
    public static void Load<T>(IReadOnlyList<Parameter<T>> parameters, string path, SafeTensorsLoadOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using FileStream stream = File.OpenRead(path);
        Load(parameters, stream, options);
    }

    /// <summary>
    /// Reads and checks the header of the file in <paramref name="stream"/> (from its current position) without reading
    /// any tensor data: its metadata and every tensor's name, dtype, shape and offsets, e.g. to find the names to put
    /// in <see cref="SafeTensorsLoadOptions.Rename"/>. When the stream is seekable the data's length is checked too.
    /// </summary>
    /// <exception cref="SafeTensorsException">The header is malformed or inconsistent.</exception>
    public static SafeTensorsHeader ReadHeader(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        SafeTensorsHeader header = ReadHeaderCore(stream, out long? dataLength);
        if (dataLength is long known)
        {
            header.CheckDataLength(known);
        }
        return header;
    }

    /// <summary>Reads and checks the header of the file <paramref name="path"/>, and the length of its data.</summary>
    /// <inheritdoc cref="ReadHeader(Stream)"/>
    public static SafeTensorsHeader ReadHeader(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using FileStream stream = File.OpenRead(path);
        return ReadHeader(stream);
    }

    // ---- saving ----

    private sealed record PreparedSave<T>(Parameter<T>[] Ordered, byte[] Header, SafeTensorsDType DType)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>;

    // Checks everything and builds the header before a byte is written.
    private static PreparedSave<T> PrepareSave<T>(IReadOnlyList<Parameter<T>> parameters, IReadOnlyDictionary<string, string>? metadata, SafeTensorsDType? dtype)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(parameters);
        SafeTensorsDType type = dtype ?? (typeof(T) == typeof(double) ? SafeTensorsDType.F64 : SafeTensorsDType.F32);
        if (type is not (SafeTensorsDType.F32 or SafeTensorsDType.F64))
        {
            throw new ArgumentException($"'dtype' must be F32 or F64 to save; got {type}.", nameof(dtype));
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        var ordered = new (byte[] Utf8Name, Parameter<T> Parameter)[parameters.Count];
        for (int i = 0; i < parameters.Count; i++)
        {
            Parameter<T> parameter = parameters[i] ?? throw new ArgumentException($"'parameters[{i}]' is null.", nameof(parameters));
            if (parameter.Name == SafeTensorsHeader.MetadataKey)
            {
                throw new ArgumentException($"'parameters[{i}]' is named '{SafeTensorsHeader.MetadataKey}', which the format reserves for metadata.", nameof(parameters));
            }
            if (!names.Add(parameter.Name))
            {
                throw new ArgumentException($"'parameters' has two parameters named '{parameter.Name}'; names must be unique to be saved.", nameof(parameters));
            }
            ordered[i] = (Encoding.UTF8.GetBytes(parameter.Name), parameter);
        }
        // The reference sorts by dtype (one here), then by name as Rust compares strings: UTF-8 bytes, i.e. code points
        // (ordinal UTF-16 comparison differs above U+D7FF).
        Array.Sort(ordered, static (a, b) => a.Utf8Name.AsSpan().SequenceCompareTo(b.Utf8Name));

        var metadataPairs = new List<(byte[] Utf8Key, string Key, string Value)>();
        if (metadata is not null)
        {
            foreach (KeyValuePair<string, string> pair in metadata)
            {
                if (pair.Key is null || pair.Value is null)
                {
                    throw new ArgumentException($"'metadata' has a null {(pair.Key is null ? "key" : $"value for '{pair.Key}'")}.", nameof(metadata));
                }
                metadataPairs.Add((Encoding.UTF8.GetBytes(pair.Key), pair.Key, pair.Value));
            }
            metadataPairs.Sort(static (a, b) => a.Utf8Key.AsSpan().SequenceCompareTo(b.Utf8Key));
        }

        int elementSize = SafeTensorsDTypes.Size(type);
        var json = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = SerdeJsonEncoder.Instance, Indented = false }))
        {
            writer.WriteStartObject();
            if (metadata is not null)
            {
                writer.WriteStartObject(SafeTensorsHeader.MetadataKey);
                foreach ((_, string key, string value) in metadataPairs)
                {
                    writer.WriteString(key, value);
                }
                writer.WriteEndObject();
            }
            long offset = 0;
            foreach ((_, Parameter<T> parameter) in ordered)
            {
                writer.WriteStartObject(parameter.Name);
                writer.WriteString("dtype", SafeTensorsDTypes.Name(type));
                writer.WriteStartArray("shape");
                foreach (int dimension in parameter.Shape)
                {
                    writer.WriteNumberValue(dimension);
                }
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                offset += (long)parameter.Length * elementSize;
                writer.WriteNumberValue(offset);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
        }
        // Pad with spaces to a multiple of 8, as the reference does, so that the data starts 8-byte aligned.
        int padded = (json.WrittenCount + 7) / 8 * 8;
        var header = new byte[padded];
        json.WrittenSpan.CopyTo(header);
        header.AsSpan(json.WrittenCount).Fill((byte)' ');

        var parametersInOrder = new Parameter<T>[ordered.Length];
        for (int i = 0; i < ordered.Length; i++)
        {
            parametersInOrder[i] = ordered[i].Parameter;
        }
        return new PreparedSave<T>(parametersInOrder, header, type);
    }

    private static void WriteFile<T>(PreparedSave<T> prepared, Stream stream)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)prepared.Header.Length);
        stream.Write(length);
        stream.Write(prepared.Header);

        int size = SafeTensorsDTypes.Size(prepared.DType);
        if (BitConverter.IsLittleEndian
            && ((prepared.DType == SafeTensorsDType.F32 && typeof(T) == typeof(float)) || (prepared.DType == SafeTensorsDType.F64 && typeof(T) == typeof(double))))
        {
            // The values' in-memory bytes are already the file's.
            foreach (Parameter<T> parameter in prepared.Ordered)
            {
                stream.Write(MemoryMarshal.AsBytes(parameter.Value.AsSpan()));
            }
            stream.Flush();
            return;
        }
        byte[] chunk = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            int used = 0;
            foreach (Parameter<T> parameter in prepared.Ordered)
            {
                foreach (T value in parameter.Value)
                {
                    if (used + size > ChunkBytes)
                    {
                        stream.Write(chunk, 0, used);
                        used = 0;
                    }
                    if (size == 4)
                    {
                        BinaryPrimitives.WriteSingleLittleEndian(chunk.AsSpan(used), float.CreateTruncating(value));
                    }
                    else
                    {
                        BinaryPrimitives.WriteDoubleLittleEndian(chunk.AsSpan(used), double.CreateTruncating(value));
                    }
                    used += size;
                }
            }
            stream.Write(chunk, 0, used);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
        stream.Flush();
    }

    // ---- loading ----

    private readonly record struct LoadPlan<T>(Parameter<T> Parameter, SafeTensorsTensorInfo Tensor, SafeTensorsDType DType)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>;

    private static void CheckLoadArguments<T>(IReadOnlyList<Parameter<T>> parameters, SafeTensorsLoadOptions options)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(options.Prefix, "options.Prefix");
        ArgumentNullException.ThrowIfNull(options.Rename, "options.Rename");
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < parameters.Count; i++)
        {
            Parameter<T> parameter = parameters[i] ?? throw new ArgumentException($"'parameters[{i}]' is null.", nameof(parameters));
            if (!names.Add(parameter.Name))
            {
                throw new ArgumentException($"'parameters' has two parameters named '{parameter.Name}'.", nameof(parameters));
            }
        }
        foreach (KeyValuePair<string, string> rename in options.Rename)
        {
            if (!names.Contains(rename.Key))
            {
                throw new ArgumentException(
                    $"'options.Rename' renames '{rename.Key}', which is not a parameter; the parameters are {string.Join(", ", names)}.", nameof(options));
            }
            if (string.IsNullOrEmpty(rename.Value))
            {
                throw new ArgumentException($"'options.Rename' renames '{rename.Key}' to an empty name.", nameof(options));
            }
        }
    }

    private static SafeTensorsHeader ReadHeaderCore(Stream stream, out long? dataLength)
    {
        if (!stream.CanRead)
        {
            throw new ArgumentException("The stream must be readable.", nameof(stream));
        }
        long? remaining = stream.CanSeek ? stream.Length - stream.Position : null;
        Span<byte> prefix = stackalloc byte[8];
        int got = stream.ReadAtLeast(prefix, 8, throwOnEndOfStream: false);
        if (got < 8)
        {
            throw new SafeTensorsException($"The file is {got} bytes long: too short for the 8-byte header length.");
        }
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (remaining is long total && headerLength > (ulong)(total - 8))
        {
            throw new SafeTensorsException($"The header length is {headerLength} bytes, past the end of the file: only {total - 8} bytes follow the length.");
        }
        if (headerLength > SafeTensorsHeader.MaxHeaderLength)
        {
            throw new SafeTensorsException($"The header length is {headerLength} bytes; headers over {SafeTensorsHeader.MaxHeaderLength} bytes are refused (as the reference implementation does).");
        }
        var json = new byte[(int)headerLength];
        got = stream.ReadAtLeast(json, json.Length, throwOnEndOfStream: false);
        if (got < json.Length)
        {
            throw new SafeTensorsException($"The header length is {headerLength} bytes, past the end of the file: only {got} bytes follow the length.");
        }
        dataLength = remaining - 8 - (long)headerLength;
        return SafeTensorsHeader.Parse(json);
    }

    private static LoadPlan<T>[] Match<T>(IReadOnlyList<Parameter<T>> parameters, SafeTensorsHeader header, SafeTensorsLoadOptions options)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var plans = new LoadPlan<T>[parameters.Count];
        var used = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < parameters.Count; i++)
        {
            Parameter<T> parameter = parameters[i];
            string name = options.Prefix + (options.Rename.TryGetValue(parameter.Name, out string? renamed) ? renamed : parameter.Name);
            string forParameter = name == parameter.Name ? "" : $" (for parameter '{parameter.Name}')";
            string expectedShape = "[" + string.Join(", ", parameter.Shape) + "]";
            if (!header.TryGetTensor(name, out SafeTensorsTensorInfo tensor))
            {
                throw new SafeTensorsException(
                    $"Tensor '{name}'{forParameter} is missing from the file; expected {expectedShape}. The file has {header.Tensors.Count} tensors{FirstNames(header)}.", name);
            }
            if (!SafeTensorsDTypes.TryParseLoadable(tensor.DType, out SafeTensorsDType type))
            {
                throw new SafeTensorsException(
                    $"Tensor '{name}'{forParameter} has dtype {tensor.DType}; expected F32, F64, F16 or BF16.", name);
            }
            if (!ShapesMatch(parameter.Shape, tensor.Shape, options.IgnoreSizeOneDimensions))
            {
                throw new SafeTensorsException(
                    $"Tensor '{name}'{forParameter} has shape {tensor.ShapeText}; expected {expectedShape}{(options.IgnoreSizeOneDimensions ? " (size-1 dimensions ignored)" : "")}.", name);
            }
            used.Add(name);
            plans[i] = new LoadPlan<T>(parameter, tensor, type);
        }
        if (!options.AllowExtraTensors)
        {
            foreach (SafeTensorsTensorInfo tensor in header.Tensors)
            {
                if (!used.Contains(tensor.Name))
                {
                    throw new SafeTensorsException(
                        $"Tensor '{tensor.Name}' is in the file but no parameter loads from it (AllowExtraTensors is false).", tensor.Name);
                }
            }
        }
        return plans;
    }

    private static string FirstNames(SafeTensorsHeader header)
    {
        const int Shown = 8;
        if (header.Tensors.Count == 0)
        {
            return "";
        }
        var names = new List<string>();
        for (int i = 0; i < Math.Min(Shown, header.Tensors.Count); i++)
        {
            names.Add("'" + header.Tensors[i].Name + "'");
        }
        return ": " + string.Join(", ", names) + (header.Tensors.Count > Shown ? ", …" : "");
    }

    private static bool ShapesMatch(IReadOnlyList<int> expected, IReadOnlyList<long> actual, bool ignoreSizeOne)
    {
        int e = 0, a = 0;
        while (true)
        {
            if (ignoreSizeOne)
            {
                while (e < expected.Count && expected[e] == 1) e++;
                while (a < actual.Count && actual[a] == 1) a++;
            }
            if (e == expected.Count || a == actual.Count)
            {
                return e == expected.Count && a == actual.Count;
            }
            if (expected[e] != actual[a])
            {
                return false;
            }
            e++;
            a++;
        }
    }

    // Reads the bytes of every planned tensor. A seekable stream (already checked against the header's length) seeks
    // past the rest; any other stream is read through to its end, so a truncated file or trailing bytes are found
    // before anything changes.
    private static Dictionary<SafeTensorsTensorInfo, byte[]> ReadTensorBytes<T>(Stream stream, SafeTensorsHeader header, LoadPlan<T>[] plans, bool seekable)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var needed = new HashSet<SafeTensorsTensorInfo>();
        foreach (LoadPlan<T> plan in plans)
        {
            needed.Add(plan.Tensor);
        }
        var bytes = new Dictionary<SafeTensorsTensorInfo, byte[]>();
        long position = 0;
        foreach (SafeTensorsTensorInfo tensor in header.Tensors)
        {
            long length = tensor.DataEnd - tensor.DataBegin;
            if (!needed.Contains(tensor))
            {
                if (seekable)
                {
                    continue;
                }
                position += Skip(stream, length, tensor, position);
                continue;
            }
            if (seekable && position != tensor.DataBegin)
            {
                stream.Seek(tensor.DataBegin - position, SeekOrigin.Current);
                position = tensor.DataBegin;
            }
            var data = new byte[length];
            int got = stream.ReadAtLeast(data, data.Length, throwOnEndOfStream: false);
            if (got < data.Length)
            {
                ThrowTruncated(tensor, position + got, header);
            }
            position += length;
            bytes.Add(tensor, data);
        }
        if (!seekable)
        {
            long trailing = 0;
            byte[] scratch = ArrayPool<byte>.Shared.Rent(ChunkBytes);
            try
            {
                int read;
                while ((read = stream.Read(scratch, 0, ChunkBytes)) > 0)
                {
                    trailing += read;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(scratch);
            }
            if (trailing > 0)
            {
                header.CheckDataLength(header.DataLength + trailing);
            }
        }
        return bytes;
    }

    private static long Skip(Stream stream, long length, SafeTensorsTensorInfo tensor, long position)
    {
        byte[] scratch = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            long left = length;
            while (left > 0)
            {
                int read = stream.Read(scratch, 0, (int)Math.Min(left, ChunkBytes));
                if (read == 0)
                {
                    throw new SafeTensorsException(
                        $"Tensor '{tensor.Name}' has data offsets [{tensor.DataBegin}, {tensor.DataEnd}], past the end of the data: the file ends after {position + length - left} bytes of data (is the file truncated?).", tensor.Name);
                }
                left -= read;
            }
            return length;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private static void ThrowTruncated(SafeTensorsTensorInfo tensor, long dataRead, SafeTensorsHeader header)
        => throw new SafeTensorsException(
            $"Tensor '{tensor.Name}' has data offsets [{tensor.DataBegin}, {tensor.DataEnd}], past the end of the data: the file holds {dataRead} bytes of data, the header needs {header.DataLength} (is the file truncated?).", tensor.Name);

    internal static void Decode<T>(ReadOnlySpan<byte> data, SafeTensorsDType type, Span<T> destination)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (!BitConverter.IsLittleEndian)
        {
            DecodeAnyEndian(data, type, destination);
            return;
        }
        // Little-endian host: the file's bytes are already the values' in-memory representation.
        switch (type)
        {
            case SafeTensorsDType.F32 when typeof(T) == typeof(float):
                data.CopyTo(MemoryMarshal.AsBytes(destination));
                break;
            case SafeTensorsDType.F64 when typeof(T) == typeof(double):
                data.CopyTo(MemoryMarshal.AsBytes(destination));
                break;
            case SafeTensorsDType.F32:
                ConvertEach(MemoryMarshal.Cast<byte, float>(data), destination);
                break;
            case SafeTensorsDType.F64:
                ConvertEach(MemoryMarshal.Cast<byte, double>(data), destination);
                break;
            case SafeTensorsDType.F16:
                // Every binary16 value is exactly a binary32 value.
                ReadOnlySpan<Half> halves = MemoryMarshal.Cast<byte, Half>(data);
                for (int i = 0; i < destination.Length; i++)
                {
                    destination[i] = T.CreateTruncating((float)halves[i]);
                }
                break;
            default:
                // bfloat16 is the upper half of a binary32: shift it back into place.
                ReadOnlySpan<ushort> upper = MemoryMarshal.Cast<byte, ushort>(data);
                for (int i = 0; i < destination.Length; i++)
                {
                    destination[i] = T.CreateTruncating(BitConverter.Int32BitsToSingle(upper[i] << 16));
                }
                break;
        }
    }

    private static void ConvertEach<TFrom, T>(ReadOnlySpan<TFrom> source, Span<T> destination)
        where TFrom : unmanaged, IBinaryFloatingPointIeee754<TFrom>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = T.CreateTruncating(source[i]);
        }
    }

    // Big-endian hosts: every value through BinaryPrimitives.
    internal static void DecodeAnyEndian<T>(ReadOnlySpan<byte> data, SafeTensorsDType type, Span<T> destination)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = type switch
            {
                SafeTensorsDType.F32 => T.CreateTruncating(BinaryPrimitives.ReadSingleLittleEndian(data.Slice(4 * i))),
                SafeTensorsDType.F64 => T.CreateTruncating(BinaryPrimitives.ReadDoubleLittleEndian(data.Slice(8 * i))),
                SafeTensorsDType.F16 => T.CreateTruncating((float)BinaryPrimitives.ReadHalfLittleEndian(data.Slice(2 * i))),
                _ => T.CreateTruncating(BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(data.Slice(2 * i)) << 16)),
            };
        }
    }
}
