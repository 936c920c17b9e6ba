using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using AttentionGen.Serialization;
using Xunit;

namespace AttentionGen.Layers.Tests.Local;

/// <summary>A local-p layer's parameters survive a safetensors round trip by name, and load from PyTorch-shaped tensors.</summary>
public sealed class LocalInteropTests
{
    [Fact]
    public void A_saved_layer_loads_into_a_fresh_one_with_the_same_forward()
    {
        var trained = new LocalPGeneralF37W3();
        trained.ResetParameters(4);
        trained.PredictorVector.Value[2] = 0.75f;
        using var stream = new MemoryStream();
        SafeTensors.Save(trained, stream);
        Assert.Equal(new[] { "predictor_vector", "predictor_weight", "score_weight" }, Names(stream));
        stream.Position = 0;
        var loaded = new LocalPGeneralF37W3();
        loaded.ResetParameters(99);
        SafeTensors.Load(loaded, stream);

        var random = new Random(1);
        float[] query = TestData.Random<float>(random, 3 * 37), keys = TestData.Random<float>(random, 9 * 37);
        var expected = new float[3 * 37];
        var actual = new float[3 * 37];
        trained.Forward(1, 3, 9, query, keys, default, expected, default, default, default);
        loaded.Forward(1, 3, 9, query, keys, default, actual, default, default, default);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void PyTorch_shaped_v_p_of_one_row_loads_with_IgnoreSizeOneDimensions()
    {
        // nn.Linear(PredictorUnits, 1, bias=False).weight is [1, PredictorUnits]: saved here from a parameter of that shape.
        var source = new LocalPDotD8W1();
        source.ResetParameters(3);
        var pytorchVector = new Parameter<double>("predictor_vector", 1, LocalPDotD8W1.PredictorUnits);
        source.PredictorVector.Value.CopyTo(pytorchVector.Value, 0);
        using var stream = new MemoryStream();
        SafeTensors.Save(new[] { source.PredictorWeight, pytorchVector }, stream);

        var target = new LocalPDotD8W1();
        target.ResetParameters(8);
        stream.Position = 0;
        Assert.Throws<SafeTensorsException>(() => SafeTensors.Load(target, stream));
        stream.Position = 0;
        SafeTensors.Load(target, stream, new SafeTensorsLoadOptions { IgnoreSizeOneDimensions = true });
        Assert.Equal(source.PredictorVector.Value, target.PredictorVector.Value);
        Assert.Equal(source.PredictorWeight.Value, target.PredictorWeight.Value);
    }

    [Fact]
    public void A_concat_layer_saves_W_a_as_one_Units_by_Dim_plus_KeyDim_tensor_and_loads_by_name()
    {
        // PyTorch: nn.Linear(Dim + KeyDim, Units, bias=False).weight is [Units, Dim + KeyDim], applied to torch.cat([h_t, h_s]).
        var trained = new LocalPConcatD9K7V5W2U6();
        trained.ResetParameters(4);
        using var stream = new MemoryStream();
        SafeTensors.Save(trained, stream);
        Assert.Equal(new[] { "predictor_vector", "predictor_weight", "score_vector", "score_weight" }, Names(stream));
        stream.Position = 0;
        SafeTensorsTensorInfo weight = SafeTensors.ReadHeader(stream).Tensors.Single(t => t.Name == "score_weight");
        Assert.Equal(new long[] { LocalPConcatD9K7V5W2U6.Units, LocalPConcatD9K7V5W2U6.Dim + LocalPConcatD9K7V5W2U6.KeyDim }, weight.Shape.ToArray());
        stream.Position = 0;
        var loaded = new LocalPConcatD9K7V5W2U6();
        loaded.ResetParameters(99);
        SafeTensors.Load(loaded, stream);

        var random = new Random(2);
        double[] query = TestData.Random<double>(random, 2 * 3 * 9), keys = TestData.Random<double>(random, 2 * 8 * 7), values = TestData.Random<double>(random, 2 * 8 * 5);
        var expected = new double[2 * 3 * 5];
        var actual = new double[2 * 3 * 5];
        trained.Forward(2, 3, 8, query, keys, values, expected, default, default, default);
        loaded.Forward(2, 3, 8, query, keys, values, actual, default, default, default);
        Assert.Equal(expected, actual);
    }

    private static List<string> Names(MemoryStream stream)
    {
        stream.Position = 0;
        var names = new List<string>();
        foreach (SafeTensorsTensorInfo tensor in SafeTensors.ReadHeader(stream).Tensors) names.Add(tensor.Name);
        names.Sort(StringComparer.Ordinal);
        return names;
    }
}
