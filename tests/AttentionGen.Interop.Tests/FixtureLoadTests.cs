using System;
using System.Collections.Generic;
using System.IO;
using AttentionGen.Serialization;
using Xunit;

namespace AttentionGen.Interop.Tests;

/// <summary>Files written by make_fixtures.py in the reference layout load by name, in every readable dtype.</summary>
public sealed class FixtureLoadTests
{
    [Theory]
    [InlineData("additive_f32.safetensors")]
    [InlineData("additive_f64.safetensors")]
    [InlineData("additive_f16.safetensors")]
    [InlineData("additive_bf16.safetensors")]
    public void Every_dtype_loads_into_a_float_layer_exactly(string file)
    {
        // Every formula value is a multiple of 1/8 below 8 in magnitude: exact in every dtype, so equality is exact.
        var layer = new TinyAdditiveLayer<float>();
        layer.Fill(99f);
        SafeTensors.Load(layer, Fixture.PathOf(file));
        foreach (Parameter<float> parameter in layer.Parameters)
        {
            for (int i = 0; i < parameter.Length; i++)
            {
                Assert.Equal((float)Fixture.Value(parameter.Name, i), parameter.Value[i]);
            }
        }
    }

    [Theory]
    [InlineData("additive_f32.safetensors")]
    [InlineData("additive_f64.safetensors")]
    [InlineData("additive_f16.safetensors")]
    [InlineData("additive_bf16.safetensors")]
    public void Every_dtype_loads_into_a_double_layer_exactly(string file)
    {
        var layer = new TinyAdditiveLayer<double>();
        layer.Fill(99);
        using (FileStream stream = File.OpenRead(Fixture.PathOf(file)))
        {
            SafeTensors.Load(layer, stream);
        }
        foreach (Parameter<double> parameter in layer.Parameters)
        {
            for (int i = 0; i < parameter.Length; i++)
            {
                Assert.Equal(Fixture.Value(parameter.Name, i), parameter.Value[i]);
            }
        }
    }

    [Fact]
    public void A_forward_only_stream_loads_like_a_file()
    {
        var layer = new TinyAdditiveLayer<double>();
        SafeTensors.Load(layer, new ForwardOnlyStream(Fixture.Bytes("additive_f16.safetensors")));
        Assert.Equal(Fixture.Value("key_weight", 11), layer.Parameters[1].Value[11]);
        Assert.Equal(Fixture.Value("score_vector", 0), layer.Parameters[3].Value[0]);
    }

    [Fact]
    public void Special_values_convert_bit_for_bit()
    {
        var f16 = new Parameter<double>("f16", 6);
        var bf16 = new Parameter<double>("bf16", 5);
        var f64AsFloat = new Parameter<float>("f64", 4);
        SafeTensors.Load(new[] { f16, bf16 }, Fixture.PathOf("special_values.safetensors"));
        SafeTensors.Load(new[] { f64AsFloat }, Fixture.PathOf("special_values.safetensors"));

        // binary16: largest finite, smallest subnormal, smallest normal, −0, −∞, and 1/3 rounded to 11 bits = 1365/4096.
        Assert.Equal(65504.0, f16.Value[0]);
        Assert.Equal(Math.Pow(2, -24), f16.Value[1]);
        Assert.Equal(Math.Pow(2, -14), f16.Value[2]);
        Assert.True(f16.Value[3] == 0 && double.IsNegative(f16.Value[3]), "−0 keeps its sign");
        Assert.Equal(double.NegativeInfinity, f16.Value[4]);
        Assert.Equal(1365.0 / 4096, f16.Value[5]);

        // bfloat16: 1.5·2^127, the subnormal 2^-133, −∞, 1 + 2^-7, −2.5.
        Assert.Equal(1.5 * Math.Pow(2, 127), bf16.Value[0]);
        Assert.Equal(Math.Pow(2, -133), bf16.Value[1]);
        Assert.Equal(double.NegativeInfinity, bf16.Value[2]);
        Assert.Equal(1 + Math.Pow(2, -7), bf16.Value[3]);
        Assert.Equal(-2.5, bf16.Value[4]);

        // F64 into float rounds to nearest: 0.1 → 0.1f, 1/3 → 1/3f, 1e-300 underflows to 0, 2·float.MaxValue overflows to ∞.
        Assert.Equal(0.1f, f64AsFloat.Value[0]);
        Assert.Equal(1f / 3f, f64AsFloat.Value[1]);
        Assert.Equal(0f, f64AsFloat.Value[2]);
        Assert.Equal(float.PositiveInfinity, f64AsFloat.Value[3]);
    }

    [Fact]
    public void A_state_dict_with_a_prefix_mixed_dtypes_and_extra_tensors_loads()
    {
        var layer = new TinyAdditiveLayer<float>();
        SafeTensors.Load(layer, Fixture.PathOf("state_dict_mixed.safetensors"), new SafeTensorsLoadOptions { Prefix = "decoder.attention." });
        foreach (Parameter<float> parameter in layer.Parameters)
        {
            for (int i = 0; i < parameter.Length; i++)
            {
                Assert.Equal((float)Fixture.Value(parameter.Name, i), parameter.Value[i]);
            }
        }
    }

    [Fact]
    public void The_state_dict_is_laid_out_in_the_reference_dtype_order()
    {
        // The reference sorts by dtype, descending in its enum order (I64 > F64 > F32 > BF16 > F16), then by name.
        SafeTensorsHeader header = SafeTensors.ReadHeader(Fixture.PathOf("state_dict_mixed.safetensors"));
        var names = new List<string>();
        foreach (SafeTensorsTensorInfo tensor in header.Tensors)
        {
            names.Add(tensor.DType + " " + tensor.Name);
        }
        Assert.Equal(new[]
        {
            "I64 decoder.norm.num_batches_tracked",
            "F64 decoder.attention.query_weight",
            "F32 decoder.attention.key_weight",
            "BF16 decoder.attention.score_bias",
            "F16 decoder.attention.extra",
            "F16 decoder.attention.score_vector",
        }, names);
        Assert.Null(header.Metadata);
        Assert.Empty(header.Tensors[0].Shape);
        Assert.Equal(8 + 96 + 48 + 8 + 4 + 8, header.DataLength);
    }

    [Fact]
    public void PyTorch_names_load_through_rename_prefix_and_size_one_dimensions()
    {
        var options = new SafeTensorsLoadOptions
        {
            Prefix = "attn.",
            Rename = new Dictionary<string, string>
            {
                ["query_weight"] = "W_q.weight",
                ["key_weight"] = "W_k.weight",
                ["score_bias"] = "W_k.bias",
                ["score_vector"] = "v.weight",
            },
            AllowExtraTensors = false,
            IgnoreSizeOneDimensions = true,
        };
        var layer = new TinyAdditiveLayer<double>();
        SafeTensors.Load(layer, Fixture.PathOf("pytorch_names.safetensors"), options);
        foreach (Parameter<double> parameter in layer.Parameters)
        {
            for (int i = 0; i < parameter.Length; i++)
            {
                Assert.Equal(Fixture.Value(parameter.Name, i), parameter.Value[i]);
            }
        }

        // Without IgnoreSizeOneDimensions, v.weight [1, 4] does not fit score_vector [4], and nothing changes.
        layer.Fill(5);
        var strict = new SafeTensorsLoadOptions { Prefix = options.Prefix, Rename = options.Rename };
        var error = Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(layer, Fixture.PathOf("pytorch_names.safetensors"), strict));
        Assert.Equal("attn.v.weight", error.TensorName);
        Assert.Contains("'attn.v.weight' (for parameter 'score_vector') has shape [1, 4]; expected [4]", error.Message);
        Assert.All(layer.Parameters, p => Assert.All(p.Value, v => Assert.Equal(5.0, v)));
    }

    [Fact]
    public void The_header_gives_metadata_and_every_tensor()
    {
        SafeTensorsHeader header = SafeTensors.ReadHeader(Fixture.PathOf("pytorch_names.safetensors"));
        Assert.Equal("pt", header.Metadata!["format"]);
        Assert.Equal("torch.save_file of an nn.Module", header.Metadata["source"]);
        Assert.True(header.TryGetTensor("attn.v.weight", out SafeTensorsTensorInfo v));
        Assert.Equal(new long[] { 1, 4 }, v.Shape);
        Assert.Equal("F32", v.DType);
        Assert.Equal(4, v.ElementCount);
        Assert.Equal(16, v.DataEnd - v.DataBegin);
    }

    [Fact]
    public void Escaped_and_non_ASCII_names_load()
    {
        // make_fixtures.py gives these names the values 1, 2, 3, … in this order.
        string[] names = { "plain", "quote\"d", "back\\slash", "new\nline", "tab\there", "bell\u0007", "caf\u00e9", "<tag>&amp;", "\uff01wide", "\U0001f600smile", "slash/ok", "del\u007f" };
        var parameters = new Parameter<float>[names.Length];
        for (int i = 0; i < names.Length; i++)
        {
            parameters[i] = new Parameter<float>(names[i], 1);
        }
        SafeTensors.Load(parameters, Fixture.PathOf("escaped_names.safetensors"), new SafeTensorsLoadOptions { AllowExtraTensors = false });
        for (int i = 0; i < names.Length; i++)
        {
            Assert.Equal(i + 1f, parameters[i].Value[0]);
        }
        SafeTensorsHeader header = SafeTensors.ReadHeader(Fixture.PathOf("escaped_names.safetensors"));
        Assert.Equal("line\nbreak \u00fc \"q\" <b>", header.Metadata!["note"]);
        Assert.Equal("ctrl", header.Metadata["a\u0001"]);
    }
}
