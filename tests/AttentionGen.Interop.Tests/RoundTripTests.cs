using System;
using System.Buffers.Binary;
using System.IO;
using AttentionGen.Serialization;
using Xunit;

namespace AttentionGen.Interop.Tests;

/// <summary>Save then load gives back every value (and leaves gradients alone).</summary>
public sealed class RoundTripTests
{
    [Theory]
    [InlineData(4, 3)]
    [InlineData(129, 100)] // > 64 KiB of data: several write chunks
    public void Float_values_survive_exactly(int units, int dim)
    {
        var saved = new TinyAdditiveLayer<float>(units, dim);
        saved.ResetParameters(seed: 1);
        saved.Parameters[2].Value[0] = float.NaN;
        saved.Parameters[3].Value[units - 1] = float.NegativeInfinity;
        using var stream = new MemoryStream();
        SafeTensors.Save(saved, stream);

        var loaded = new TinyAdditiveLayer<float>(units, dim);
        loaded.ResetParameters(seed: 2);
        loaded.Parameters[0].Gradient[0] = 42f;
        stream.Position = 0;
        SafeTensors.Load(loaded, stream);
        for (int p = 0; p < saved.Parameters.Count; p++)
        {
            Assert.Equal(saved.Parameters[p].Value, loaded.Parameters[p].Value);
        }
        Assert.Equal(42f, loaded.Parameters[0].Gradient[0]);
    }

    [Fact]
    public void Double_values_survive_exactly_as_F64_and_round_to_float_as_F32()
    {
        var saved = new TinyAdditiveLayer<double>(units: 5, dim: 7);
        saved.ResetParameters(seed: 3);
        using var f64 = new MemoryStream();
        using var f32 = new MemoryStream();
        SafeTensors.Save(saved, f64);
        SafeTensors.Save(saved, f32, dtype: SafeTensorsDType.F32);
        Assert.Equal(8 * (5 * 7 * 2 + 5 * 2), f64.Length - 8 - (long)BinaryPrimitives.ReadUInt64LittleEndian(f64.GetBuffer()));

        var exact = new TinyAdditiveLayer<double>(units: 5, dim: 7);
        var rounded = new TinyAdditiveLayer<double>(units: 5, dim: 7);
        SafeTensors.Load(exact, new ForwardOnlyStream(f64.ToArray()));
        SafeTensors.Load(rounded, new ForwardOnlyStream(f32.ToArray()));
        for (int p = 0; p < saved.Parameters.Count; p++)
        {
            for (int i = 0; i < saved.Parameters[p].Length; i++)
            {
                Assert.Equal(saved.Parameters[p].Value[i], exact.Parameters[p].Value[i]);
                Assert.Equal((double)(float)saved.Parameters[p].Value[i], rounded.Parameters[p].Value[i]);
            }
        }
    }

    [Fact]
    public void A_float_layer_loads_a_double_layers_file_and_back()
    {
        var source = new TinyAdditiveLayer<double>();
        source.ResetParameters(seed: 4);
        string path = Path.Combine(Path.GetTempPath(), $"attentiongen-interop-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensors.Save(source, path);
            var single = new TinyAdditiveLayer<float>();
            SafeTensors.Load(single, path);
            for (int p = 0; p < source.Parameters.Count; p++)
            {
                for (int i = 0; i < source.Parameters[p].Length; i++)
                {
                    Assert.Equal((float)source.Parameters[p].Value[i], single.Parameters[p].Value[i]);
                }
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_stream_that_does_not_start_at_zero_round_trips()
    {
        var saved = new TinyAdditiveLayer<float>();
        saved.ResetParameters(seed: 5);
        using var stream = new MemoryStream();
        stream.Write(new byte[] { 9, 9, 9 });
        SafeTensors.Save(saved, stream);
        stream.Position = 3;
        var loaded = new TinyAdditiveLayer<float>();
        SafeTensors.Load(loaded, stream);
        Assert.Equal(saved.Parameters[1].Value, loaded.Parameters[1].Value);
    }
}
