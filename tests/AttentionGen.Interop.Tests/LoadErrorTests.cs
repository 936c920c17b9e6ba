using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using AttentionGen.Serialization;
using Xunit;

namespace AttentionGen.Interop.Tests;

/// <summary>
/// Every malformed or mismatched file throws a <see cref="SafeTensorsException"/> whose message names the tensor and the
/// problem, from a seekable stream and a forward-only one alike, and no parameter changes.
/// </summary>
public sealed class LoadErrorTests
{
    private static readonly byte[] s_data = Enumerable.Range(0, 128).Select(i => (byte)i).ToArray();

    private static string[] Entries() => RawFile.AdditiveEntries();

    private static string WithEntry(int index, string entry)
    {
        string[] entries = Entries();
        entries[index] = entry;
        return RawFile.Header(entries);
    }

    private static byte[] Good() => RawFile.Build(RawFile.Header(Entries()), s_data);

    // name → (file, tensor the error names or null for the whole file, fragments the message must contain)
    private static readonly Dictionary<string, (Func<byte[]> File, string? Tensor, string[] Fragments)> s_cases = new()
    {
        ["too short"] = (() => Good()[..5], null, new[] { "5 bytes long", "too short" }),
        ["header length past the end"] = (() => RawFile.Build(RawFile.Header(Entries()), s_data, declaredLength: 100_000), null, new[] { "100000", "past the end of the file" }),
        ["file cut inside the header"] = (() => Good()[..40], null, new[] { "past the end of the file", "only 32 bytes" }),
        ["header not UTF-8"] = (() => RawFile.Build("{\"key_weight\u00e9\":{}}", s_data).Select(b => b == 0xA9 ? (byte)0xFF : b).ToArray(), null, new[] { "not valid UTF-8" }),
        ["header not an object"] = (() => RawFile.Build("[1,2]", s_data), null, new[] { "must be a JSON object" }),
        ["corrupt JSON in an entry"] = (() => RawFile.Build(RawFile.Header(Entries()).Replace("\"shape\":[4]", "shape:[4]"), s_data), "score_bias", new[] { "header entry of tensor 'score_bias' is not valid JSON" }),
        ["junk after the header object"] = (() => RawFile.Build(RawFile.Header(Entries()) + " }", s_data), null, new[] { "not valid JSON" }),
        ["metadata not strings"] = (() => RawFile.Build("{\"__metadata__\":{\"epoch\":3}," + RawFile.Header(Entries())[1..], s_data), null, new[] { "'__metadata__' must map strings to strings", "'epoch' is a number" }),
        ["wrong dtype"] = (() => RawFile.Build(WithEntry(0, RawFile.Entry("key_weight", "I32", "[4,3]", 0, 48)), s_data), "key_weight", new[] { "has dtype I32; expected F32, F64, F16 or BF16" }),
        ["unknown dtype"] = (() => RawFile.Build(WithEntry(0, RawFile.Entry("key_weight", "Q7", "[4,3]", 0, 48)), s_data), "key_weight", new[] { "dtype 'Q7'", "not a safetensors dtype" }),
        ["wrong shape"] = (() => RawFile.Build(WithEntry(1, RawFile.Entry("query_weight", "F32", "[3,4]", 48, 96)), s_data), "query_weight", new[] { "has shape [3, 4]; expected [4, 3]" }),
        ["missing tensor"] = (() => RawFile.Build(WithEntry(2, RawFile.Entry("score_bias_renamed", "F32", "[4]", 96, 112)), s_data), "score_bias", new[] { "missing", "expected [4]" }),
        ["overlapping offsets"] = (() => RawFile.Build(WithEntry(1, RawFile.Entry("query_weight", "F32", "[4,3]", 40, 88)), s_data), "query_weight", new[] { "[40, 88]", "overlap tensor 'key_weight' at [0, 48]" }),
        ["offsets not matching dtype × shape"] = (() => RawFile.Build(WithEntry(2, RawFile.Entry("score_bias", "F32", "[4]", 96, 108)), s_data), "score_bias", new[] { "spanning 12 bytes", "F32 × shape [4] needs 16" }),
        ["offsets ending before they begin"] = (() => RawFile.Build(WithEntry(3, RawFile.Entry("score_vector", "F32", "[4]", 128, 112)), s_data), "score_vector", new[] { "[128, 112]", "end before they begin" }),
        ["gap between tensors"] = (() => RawFile.Build(WithEntry(3, RawFile.Entry("score_vector", "F32", "[4]", 116, 132)), s_data.Concat(new byte[4]).ToArray()), "score_vector", new[] { "bytes [112, 116) unused", "tensor 'score_bias'" }),
        ["truncated data"] = (() => Good()[..^8], "score_vector", new[] { "[112, 128]", "past the end of the data", "120 bytes" }),
        ["trailing bytes"] = (() => RawFile.Build(RawFile.Header(Entries()), s_data.Concat(new byte[5]).ToArray()), "score_vector", new[] { "133 bytes of data", "5 bytes follow the last tensor 'score_vector'" }),
        ["duplicate tensor"] = (() => RawFile.Build(RawFile.Header(Entries().Append(RawFile.Entry("score_bias", "F32", "[4]", 128, 144)).ToArray()), s_data.Concat(new byte[16]).ToArray()), "score_bias", new[] { "appears twice" }),
        ["negative dimension"] = (() => RawFile.Build(WithEntry(2, RawFile.Entry("score_bias", "F32", "[-4]", 96, 112)), s_data), "score_bias", new[] { "-4 in its shape" }),
        ["missing data_offsets"] = (() => RawFile.Build(WithEntry(2, "\"score_bias\":{\"dtype\":\"F32\",\"shape\":[4]}"), s_data), "score_bias", new[] { "no data_offsets" }),
    };

    public static TheoryData<string, bool> Cases()
    {
        var data = new TheoryData<string, bool>();
        foreach (string name in s_cases.Keys)
        {
            data.Add(name, true);
            data.Add(name, false);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_bad_file_throws_naming_the_tensor_and_changes_nothing(string corruption, bool seekable)
    {
        (Func<byte[]> build, string? tensor, string[] fragments) = s_cases[corruption];
        byte[] file = build();
        var layer = new TinyAdditiveLayer<float>();
        layer.Fill(7f);
        Stream stream = seekable ? new MemoryStream(file) : new ForwardOnlyStream(file);

        var error = Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(layer, stream));

        Assert.Equal(tensor, error.TensorName);
        if (tensor is not null)
        {
            Assert.Contains($"'{tensor}'", error.Message);
        }
        foreach (string fragment in fragments)
        {
            Assert.Contains(fragment, error.Message);
        }
        Assert.All(layer.Parameters, p => Assert.All(p.Value, v => Assert.Equal(7f, v)));
    }

    [Fact]
    public void The_good_file_the_corruptions_start_from_loads()
    {
        // Guards the cases above: each fails because of its corruption, not because the base file is bad.
        var layer = new TinyAdditiveLayer<float>();
        SafeTensors.Load(layer, new MemoryStream(Good()));
        Assert.Equal(BinaryPrimitives.ReadSingleLittleEndian(s_data.AsSpan(48)), layer.Parameters[0].Value[0]);
        Assert.Equal(BinaryPrimitives.ReadSingleLittleEndian(s_data.AsSpan(124)), layer.Parameters[3].Value[3]);
    }

    [Fact]
    public void A_header_over_the_reference_limit_is_refused_before_it_is_read()
    {
        byte[] file = RawFile.Build("{}", Array.Empty<byte>(), declaredLength: 200_000_000);
        var error = Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(new TinyAdditiveLayer<float>(), new ForwardOnlyStream(file)));
        Assert.Null(error.TensorName);
        Assert.Contains("200000000", error.Message);
        Assert.Contains("refused", error.Message);
    }

    [Fact]
    public void An_extra_tensor_is_an_error_only_when_extra_tensors_are_not_allowed()
    {
        string header = RawFile.Header(Entries().Append(RawFile.Entry("extra", "I64", "[2]", 128, 144)).ToArray());
        byte[] file = RawFile.Build(header, s_data.Concat(new byte[16]).ToArray());
        var layer = new TinyAdditiveLayer<float>();
        layer.Fill(7f);

        var error = Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(layer, new MemoryStream(file), new SafeTensorsLoadOptions { AllowExtraTensors = false }));
        Assert.Equal("extra", error.TensorName);
        Assert.Contains("'extra' is in the file but no parameter loads from it", error.Message);
        Assert.All(layer.Parameters, p => Assert.All(p.Value, v => Assert.Equal(7f, v)));

        SafeTensors.Load(layer, new MemoryStream(file));
        Assert.Equal(BinaryPrimitives.ReadSingleLittleEndian(s_data.AsSpan(0)), layer.Parameters[1].Value[0]);
    }

    [Fact]
    public void A_later_parameters_problem_leaves_the_earlier_ones_unchanged()
    {
        // query_weight and key_weight match; score_vector has the wrong shape. Neither of the first two may change.
        byte[] file = RawFile.Build(WithEntry(3, RawFile.Entry("score_vector", "F32", "[2,2]", 112, 128)), s_data);
        var layer = new TinyAdditiveLayer<double>();
        layer.Fill(7);
        var error = Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(layer, new MemoryStream(file)));
        Assert.Equal("score_vector", error.TensorName);
        Assert.All(layer.Parameters, p => Assert.All(p.Value, v => Assert.Equal(7.0, v)));
    }

    [Fact]
    public void Bad_load_arguments_throw_argument_exceptions_naming_them()
    {
        var layer = new TinyAdditiveLayer<float>();
        var rename = Assert.Throws<ArgumentException>(() => SafeTensors.Load(layer, new MemoryStream(Good()),
            new SafeTensorsLoadOptions { Rename = new Dictionary<string, string> { ["score_vectr"] = "v.weight" } }));
        Assert.Equal("options", rename.ParamName);
        Assert.Contains("'score_vectr', which is not a parameter", rename.Message);

        var duplicate = Assert.Throws<ArgumentException>(() => SafeTensors.Load(new[] { new Parameter<float>("w", 1), new Parameter<float>("w", 1) }, new MemoryStream(Good())));
        Assert.Equal("parameters", duplicate.ParamName);
    }
}
