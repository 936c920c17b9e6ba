using System.Collections.Generic;
using System.IO;
using System.Linq;
using AttentionGen.Serialization;
using Xunit;

namespace AttentionGen.Layers.Tests.MultiHead;

/// <summary>The parameters carry PyTorch nn.MultiheadAttention's state-dict names and shapes, so its weights load by name.</summary>
public sealed class MultiHeadInteropTests
{
    [Fact]
    public void Packed_projection_is_saved_under_PyTorch_names_and_shapes()
    {
        var layer = new HeadsF16x2(seed: 3);
        using var stream = new MemoryStream();
        SafeTensors.Save(layer, stream);
        stream.Position = 0;
        SafeTensorsHeader header = SafeTensors.ReadHeader(stream);
        var shapes = header.Tensors.ToDictionary(t => t.Name, t => string.Join("x", t.Shape));
        Assert.Equal(new Dictionary<string, string>
        {
            ["in_proj_weight"] = "48x16", ["in_proj_bias"] = "48", ["out_proj.weight"] = "16x16", ["out_proj.bias"] = "16",
        }, shapes);
    }

    [Fact]
    public void Separate_key_and_value_dimensions_use_the_q_k_v_proj_names()
    {
        var names = new HeadsF12x3K7V5().Parameters.Select(p => p.Name + ":" + string.Join("x", p.Shape)).ToArray();
        Assert.Equal(new[] { "q_proj_weight:12x12", "k_proj_weight:12x7", "v_proj_weight:12x5", "in_proj_bias:36", "out_proj.weight:12x12", "out_proj.bias:12" }, names);
    }

    [Fact]
    public void A_state_dict_under_a_module_prefix_loads_and_gives_the_same_outputs()
    {
        var trained = new HeadsF16x2(seed: 1);
        foreach (Parameter<float> p in trained.Parameters)
        {
            for (int i = 0; i < p.Value.Length; i++) p.Value[i] += 0.01f * (i % 7);
        }
        // As nn.TransformerEncoderLayer would save it: "self_attn.in_proj_weight", …
        var renamed = trained.Parameters.Select(p =>
        {
            var copy = new Parameter<float>("self_attn." + p.Name, p.Shape.ToArray());
            p.Value.CopyTo(copy.Value, 0);
            return copy;
        }).ToArray();
        using var stream = new MemoryStream();
        SafeTensors.Save(renamed, stream);
        stream.Position = 0;
        var loaded = new HeadsF16x2(seed: 2);
        SafeTensors.Load(loaded, stream, new SafeTensorsLoadOptions { Prefix = "self_attn." });

        var random = new System.Random(4);
        float[] x = TestData.Random<float>(random, 2 * 5 * 16);
        float[] expected = new float[x.Length], actual = new float[x.Length];
        trained.Forward(2, 5, 5, x, x, x, expected);
        loaded.Forward(2, 5, 5, x, x, x, actual);
        Assert.Equal(expected, actual);
    }
}
