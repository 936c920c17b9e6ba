using System;
using System.Collections.Generic;
using System.IO;
using System.Numerics;
using System.Text;

namespace AttentionGen.Interop.Tests;

/// <summary>
/// A hand-written stand-in for a generated additive layer (Dim = 3, Units = 4 by default): the same parameter names,
/// shapes and order, no forward pass.
/// </summary>
internal sealed class TinyAdditiveLayer<T> : IAttentionLayer<T> where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    public TinyAdditiveLayer(int units = 4, int dim = 3)
    {
        Parameters = new[]
        {
            new Parameter<T>("query_weight", units, dim),
            new Parameter<T>("key_weight", units, dim),
            new Parameter<T>("score_bias", units),
            new Parameter<T>("score_vector", units),
        };
    }

    public IReadOnlyList<Parameter<T>> Parameters { get; }

    public void ZeroGradients()
    {
        foreach (Parameter<T> parameter in Parameters)
        {
            parameter.ZeroGradient();
        }
    }

    public void ResetParameters(int seed)
    {
        var random = new Random(seed);
        foreach (Parameter<T> parameter in Parameters)
        {
            Initializers.Uniform<T>(parameter.Value, -1, 1, random);
        }
    }

    public void Fill(T value)
    {
        foreach (Parameter<T> parameter in Parameters)
        {
            Array.Fill(parameter.Value, value);
        }
    }
}

/// <summary>The fixtures and the formulas make_fixtures.py wrote them with, recomputed here.</summary>
internal static class Fixture
{
    public static string PathOf(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    public static byte[] Bytes(string name) => File.ReadAllBytes(PathOf(name));

    // make_fixtures.py: element i of a tensor is (i * 0.5 − 3) × the scale of its base name.
    public static double Value(string parameterName, int i) => (i * 0.5 - 3) * parameterName switch
    {
        "query_weight" => 1.0,
        "key_weight" => 0.25,
        "score_bias" => 2.0,
        "score_vector" => -1.0,
        "extra" => 0.125,
        _ => throw new ArgumentOutOfRangeException(nameof(parameterName), parameterName, "No formula for this name."),
    };

    public static void FillWithFormula<T>(IAttentionLayer<T> layer) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        foreach (Parameter<T> parameter in layer.Parameters)
        {
            for (int i = 0; i < parameter.Length; i++)
            {
                parameter.Value[i] = T.CreateChecked(Value(parameter.Name, i));
            }
        }
    }
}

/// <summary>Writes a safetensors file from a header given as JSON text and raw data, for the corrupt-file tests.</summary>
internal static class RawFile
{
    public static byte[] Build(string headerJson, byte[] data, ulong? declaredLength = null)
    {
        byte[] header = Encoding.UTF8.GetBytes(headerJson);
        var file = new byte[8 + header.Length + data.Length];
        BitConverter.TryWriteBytes(file.AsSpan(0, 8), declaredLength ?? (ulong)header.Length);
        if (!BitConverter.IsLittleEndian)
        {
            file.AsSpan(0, 8).Reverse();
        }
        header.CopyTo(file, 8);
        data.CopyTo(file, 8 + header.Length);
        return file;
    }

    public static string Entry(string name, string dtype, string shape, long begin, long end)
        => $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    // The additive layer as F32 with every tensor where make_fixtures.py puts it (sorted by name).
    public static string[] AdditiveEntries() => new[]
    {
        Entry("key_weight", "F32", "[4,3]", 0, 48),
        Entry("query_weight", "F32", "[4,3]", 48, 96),
        Entry("score_bias", "F32", "[4]", 96, 112),
        Entry("score_vector", "F32", "[4]", 112, 128),
    };

    public static string Header(params string[] entries) => "{" + string.Join(",", entries) + "}";
}

/// <summary>A stream that can only be read forwards, like a network or pipe stream.</summary>
internal sealed class ForwardOnlyStream(byte[] bytes) : Stream
{
    private readonly MemoryStream _inner = new(bytes, writable: false);

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
