using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Text;
using AttentionGen.Serialization;
using Xunit;

namespace AttentionGen.Runtime.Tests;

/// <summary>
/// safetensors: fixtures written by Fixtures/make_fixtures.py in the reference layout are read in every dtype; saving
/// reproduces that layout byte for byte; every corrupt or mismatched file throws naming the tensor and changes nothing.
/// </summary>
public sealed class SafeTensorsTests
{
    private static readonly Dictionary<string, double> s_scales = new()
    {
        ["query_weight"] = 1.0, ["key_weight"] = 0.25, ["score_bias"] = 2.0, ["score_vector"] = -1.0,
    };

    // The additive layer's parameter set for Dim = 3, Units = 4, as a plain list.
    private static List<Parameter<T>> Layer<T>() where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
        => new() { new("query_weight", 4, 3), new("key_weight", 4, 3), new("score_bias", 4), new("score_vector", 4) };

    private static string Fixture(string name, [CallerFilePath] string here = "") => Path.Combine(Path.GetDirectoryName(here)!, "Fixtures", name);

    private static double Expected(string name, int i) => (i * 0.5 - 3) * s_scales[name];

    [Theory]
    [InlineData("additive_f32.safetensors", 0.0)]
    [InlineData("additive_f64.safetensors", 0.0)]
    [InlineData("additive_f16.safetensors", 1e-3)]
    [InlineData("additive_bf16.safetensors", 1e-2)]
    public void Fixtures_of_every_dtype_load_by_name(string file, double tolerance)
    {
        foreach (bool asDouble in new[] { false, true })
        {
            if (asDouble)
            {
                List<Parameter<double>> layer = Layer<double>();
                using FileStream stream = File.OpenRead(Fixture(file));
                SafeTensors.Load(layer, stream);
                foreach (Parameter<double> p in layer)
                    for (int i = 0; i < p.Length; i++)
                        Assert.True(Math.Abs(p.Value[i] - Expected(p.Name, i)) <= tolerance * Math.Abs(Expected(p.Name, i)) + 1e-12, $"{file} {p.Name}[{i}]");
            }
            else
            {
                List<Parameter<float>> layer = Layer<float>();
                using FileStream stream = File.OpenRead(Fixture(file));
                SafeTensors.Load(layer, stream);
                foreach (Parameter<float> p in layer)
                    for (int i = 0; i < p.Length; i++)
                        Assert.True(Math.Abs(p.Value[i] - Expected(p.Name, i)) <= tolerance * Math.Abs(Expected(p.Name, i)) + 1e-6, $"{file} {p.Name}[{i}]");
            }
        }
    }

    [Fact]
    public void A_state_dict_with_a_prefix_an_extra_tensor_and_mixed_dtypes_loads()
    {
        List<Parameter<float>> layer = Layer<float>();
        using (FileStream stream = File.OpenRead(Fixture("state_dict_mixed.safetensors")))
        {
            SafeTensors.Load(layer, stream, new SafeTensorsLoadOptions { Prefix = "decoder.attention." });
        }
        Assert.Equal((float)Expected("query_weight", 5), layer[0].Value[5]);
        Assert.Equal((float)Expected("score_vector", 3), layer[3].Value[3]);

        using FileStream again = File.OpenRead(Fixture("state_dict_mixed.safetensors"));
        var error = Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(Layer<float>(), again, new SafeTensorsLoadOptions { Prefix = "decoder.attention.", AllowExtraTensors = false }));
        Assert.Equal("decoder.attention.extra", error.TensorName);
    }

    [Fact]
    public void Saving_reproduces_the_reference_layout_byte_for_byte()
    {
        foreach (string dtype in new[] { "f32", "f64" })
        {
            List<Parameter<double>> layer = Layer<double>();
            foreach (Parameter<double> p in layer)
                for (int i = 0; i < p.Length; i++) p.Value[i] = Expected(p.Name, i);
            using var saved = new MemoryStream();
            SafeTensors.Save(layer, saved, new Dictionary<string, string> { ["format"] = "pt" }, dtype == "f32" ? SafeTensorsDType.F32 : SafeTensorsDType.F64);
            Assert.Equal(File.ReadAllBytes(Fixture($"additive_{dtype}.safetensors")), saved.ToArray());
        }
    }

    [Fact]
    public void Round_trip_keeps_every_value()
    {
        List<Parameter<float>> layer = Layer<float>();
        var random = new Random(2);
        foreach (Parameter<float> p in layer) for (int i = 0; i < p.Length; i++) p.Value[i] = (float)random.NextDouble();
        using var stream = new MemoryStream();
        SafeTensors.Save(layer, stream);
        stream.Position = 0;
        List<Parameter<float>> loaded = Layer<float>();
        SafeTensors.Load(loaded, stream);
        for (int p = 0; p < layer.Count; p++) Assert.Equal(layer[p].Value, loaded[p].Value);
    }

    public static TheoryData<string, string?, string> Corruptions => new()
    {
        // description, tensor the message must name (null: the file as a whole), text the message must contain
        { "truncated data", "score_vector", "outside" },
        { "header length past the end", null, "runs past the end" },
        { "corrupt json", null, "not valid JSON" },
        { "unknown dtype", "key_weight", "dtype I32" },
        { "wrong shape", "query_weight", "needs [4, 3]" },
        { "missing tensor", "score_bias", "missing" },
        { "overlapping offsets", "query_weight", "overlaps" },
        { "too short", null, "too short" },
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void Corrupt_files_throw_naming_the_tensor_and_change_nothing(string corruption, string? tensor, string text)
    {
        byte[] good = File.ReadAllBytes(Fixture("additive_f32.safetensors"));
        int headerLength = (int)BitConverter.ToUInt64(good, 0);
        string header = Encoding.UTF8.GetString(good, 8, headerLength);
        byte[] WithHeader(string newHeader)
        {
            byte[] json = Encoding.UTF8.GetBytes(newHeader);
            return BitConverter.GetBytes((ulong)json.Length).Concat(json).Concat(good.Skip(8 + headerLength)).ToArray();
        }
        byte[] bad = corruption switch
        {
            "truncated data" => good[..^8],
            "header length past the end" => BitConverter.GetBytes((ulong)good.Length).Concat(good.Skip(8)).ToArray(),
            "corrupt json" => WithHeader(header.Replace("\"shape\"", "shape")),
            "unknown dtype" => WithHeader(header.Replace("\"key_weight\":{\"dtype\":\"F32\"", "\"key_weight\":{\"dtype\":\"I32\"")),
            "wrong shape" => WithHeader(header.Replace("\"query_weight\":{\"dtype\":\"F32\",\"shape\":[4,3]", "\"query_weight\":{\"dtype\":\"F32\",\"shape\":[3,4]")),
            "missing tensor" => WithHeader(header.Replace("\"score_bias\"", "\"score_bias_renamed\"")),
            "overlapping offsets" => WithHeader(header.Replace("\"data_offsets\":[0,48]", "\"data_offsets\":[40,88]")),
            _ => good[..5],
        };
        List<Parameter<float>> layer = Layer<float>();
        foreach (Parameter<float> p in layer) Array.Fill(p.Value, 7f);
        var error = Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(layer, new MemoryStream(bad)));
        Assert.Equal(tensor, error.TensorName);
        Assert.Contains(text, error.Message);
        if (tensor is not null) Assert.Contains($"'{tensor}'", error.Message);
        Assert.All(layer, p => Assert.All(p.Value, v => Assert.Equal(7f, v)));
    }
}
