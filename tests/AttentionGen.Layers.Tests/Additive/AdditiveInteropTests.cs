using System;
using System.IO;
using AttentionGen.Serialization;
using Xunit;

namespace AttentionGen.Layers.Tests.Additive;

/// <summary>A generated layer's parameters survive a safetensors round trip by name, and a bad file changes nothing.</summary>
public sealed class AdditiveInteropTests
{
    [Fact]
    public void A_saved_layer_loads_into_a_fresh_one_with_the_same_forward()
    {
        var trained = new AdditiveF37(seed: 4);
        trained.ScoreBias.Value[3] = 0.75f;
        string path = Path.Combine(Path.GetTempPath(), $"additive-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensors.Save(trained, path);
            var loaded = new AdditiveF37(seed: 99);
            SafeTensors.Load(loaded, path);
            var random = new Random(1);
            float[] query = TestData.Random<float>(random, 2 * 37), keys = TestData.Random<float>(random, 5 * 37);
            var expected = new float[2 * 37];
            var actual = new float[2 * 37];
            trained.Forward(1, 2, 5, query, keys, default, expected, default, default);
            loaded.Forward(1, 2, 5, query, keys, default, actual, default, default);
            Assert.Equal(expected, actual);

            // A layer of another shape cannot load it, and keeps its own values.
            var other = new AdditiveF33(seed: 5);
            float before = other.QueryWeight.Value[0];
            var error = Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(other, path));
            Assert.Equal("query_weight", error.TensorName);
            Assert.Contains("has shape [37, 37]; expected [33, 33]", error.Message);
            Assert.Equal(before, other.QueryWeight.Value[0]);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
