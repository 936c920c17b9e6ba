using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Text;
using AttentionGen.Serialization;
using Xunit;

namespace AttentionGen.Interop.Tests;

/// <summary>Saved files have the reference save_file layout: the fixtures' bytes exactly, and the rules spelled out.</summary>
public sealed class SaveLayoutTests
{
    private static readonly Dictionary<string, string> s_formatPt = new() { ["format"] = "pt" };

    private static byte[] SaveToBytes<T>(IAttentionLayer<T> layer, IReadOnlyDictionary<string, string>? metadata, SafeTensorsDType? dtype = null)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        using var stream = new MemoryStream();
        SafeTensors.Save(layer, stream, metadata, dtype);
        return stream.ToArray();
    }

    [Fact]
    public void A_float_layer_saves_as_the_F32_fixture_byte_for_byte()
    {
        var layer = new TinyAdditiveLayer<float>();
        Fixture.FillWithFormula(layer);
        Assert.Equal(Fixture.Bytes("additive_f32.safetensors"), SaveToBytes(layer, s_formatPt));
    }

    [Fact]
    public void A_double_layer_saves_as_the_F64_fixture_by_default_and_as_the_F32_fixture_on_request()
    {
        var layer = new TinyAdditiveLayer<double>();
        Fixture.FillWithFormula(layer);
        Assert.Equal(Fixture.Bytes("additive_f64.safetensors"), SaveToBytes(layer, s_formatPt));
        Assert.Equal(Fixture.Bytes("additive_f32.safetensors"), SaveToBytes(layer, s_formatPt, SafeTensorsDType.F32));
    }

    [Fact]
    public void A_float_layer_saved_as_F64_gives_the_F64_fixture()
    {
        // The formula's values are exact in binary32, so widening them gives the fixture's binary64 bytes.
        var layer = new TinyAdditiveLayer<float>();
        Fixture.FillWithFormula(layer);
        Assert.Equal(Fixture.Bytes("additive_f64.safetensors"), SaveToBytes(layer, s_formatPt, SafeTensorsDType.F64));
    }

    [Fact]
    public void Names_and_metadata_are_escaped_and_ordered_as_the_reference_does()
    {
        // Same names and values as make_fixtures.py's escaped_names; given here in another order than the file's.
        string[] names = { "plain", "quote\"d", "back\\slash", "new\nline", "tab\there", "bell\u0007", "caf\u00e9", "<tag>&amp;", "\uff01wide", "\U0001f600smile", "slash/ok", "del\u007f" };
        var parameters = new List<Parameter<float>>();
        for (int i = names.Length - 1; i >= 0; i--)
        {
            var parameter = new Parameter<float>(names[i], 1);
            parameter.Value[0] = i + 1;
            parameters.Add(parameter);
        }
        var metadata = new Dictionary<string, string> { ["note"] = "line\nbreak \u00fc \"q\" <b>", ["a\u0001"] = "ctrl" };
        using var stream = new MemoryStream();
        SafeTensors.Save(parameters, stream, metadata);
        Assert.Equal(Fixture.Bytes("escaped_names.safetensors"), stream.ToArray());
    }

    [Fact]
    public void The_layout_rules_hold_for_a_saved_layer()
    {
        var layer = new TinyAdditiveLayer<float>();
        Fixture.FillWithFormula(layer);
        byte[] file = SaveToBytes(layer, s_formatPt);

        // Compact JSON, __metadata__ first, tensors by name (key < query < score_bias < score_vector), packed from 0.
        const string Json = "{\"__metadata__\":{\"format\":\"pt\"},"
            + "\"key_weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0,48]},"
            + "\"query_weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[48,96]},"
            + "\"score_bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[96,112]},"
            + "\"score_vector\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[112,128]}}";
        int padded = (Json.Length + 7) / 8 * 8;
        Assert.Equal((ulong)padded, BinaryPrimitives.ReadUInt64LittleEndian(file));
        Assert.Equal(Json, Encoding.UTF8.GetString(file, 8, Json.Length));
        for (int i = 8 + Json.Length; i < 8 + padded; i++)
        {
            Assert.Equal((byte)' ', file[i]);
        }
        Assert.Equal(8 + padded + 128, file.Length);

        // The data: each tensor's values as little-endian binary32, in the header's order, no gaps.
        int at = 8 + padded;
        foreach (string name in new[] { "key_weight", "query_weight", "score_bias", "score_vector" })
        {
            int count = name.EndsWith("weight", StringComparison.Ordinal) ? 12 : 4;
            for (int i = 0; i < count; i++, at += 4)
            {
                byte[] expected = BitConverter.GetBytes((float)Fixture.Value(name, i));
                if (!BitConverter.IsLittleEndian)
                {
                    Array.Reverse(expected);
                }
                Assert.Equal(expected, file[at..(at + 4)]);
            }
        }
    }

    [Fact]
    public void No_metadata_writes_none_and_empty_metadata_writes_an_empty_object()
    {
        var layer = new TinyAdditiveLayer<float>(units: 1, dim: 1);
        string HeaderOf(byte[] file) => Encoding.UTF8.GetString(file, 8, (int)BinaryPrimitives.ReadUInt64LittleEndian(file));
        Assert.StartsWith("{\"key_weight\":", HeaderOf(SaveToBytes(layer, null)));
        Assert.StartsWith("{\"__metadata__\":{},\"key_weight\":", HeaderOf(SaveToBytes(layer, new Dictionary<string, string>())));
    }

    [Fact]
    public void Saving_to_a_path_replaces_the_file_only_when_it_succeeds()
    {
        string directory = Path.Combine(Path.GetTempPath(), "attentiongen-interop-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        try
        {
            string path = Path.Combine(directory, "layer.safetensors");
            File.WriteAllBytes(path, new byte[] { 1, 2, 3 });
            var duplicate = new[] { new Parameter<float>("w", 2), new Parameter<float>("w", 3) };
            var error = Assert.Throws<ArgumentException>(() => SafeTensors.Save(duplicate, path));
            Assert.Equal("parameters", error.ParamName);
            Assert.Contains("two parameters named 'w'", error.Message);
            Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(path));

            var layer = new TinyAdditiveLayer<float>();
            Fixture.FillWithFormula(layer);
            SafeTensors.Save(layer, path, s_formatPt);
            Assert.Equal(Fixture.Bytes("additive_f32.safetensors"), File.ReadAllBytes(path));
            Assert.Single(Directory.GetFiles(directory));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Bad_save_arguments_throw_before_writing()
    {
        var layer = new TinyAdditiveLayer<float>();
        using var stream = new MemoryStream();
        var dtype = Assert.Throws<ArgumentException>(() => SafeTensors.Save(layer, stream, null, SafeTensorsDType.BF16));
        Assert.Equal("dtype", dtype.ParamName);
        Assert.Contains("F32 or F64", dtype.Message);
        Assert.Contains("BF16", dtype.Message);

        var reserved = Assert.Throws<ArgumentException>(() => SafeTensors.Save(new[] { new Parameter<float>("__metadata__", 1) }, stream));
        Assert.Equal("parameters", reserved.ParamName);
        Assert.Equal(0, stream.Length);
    }
}
