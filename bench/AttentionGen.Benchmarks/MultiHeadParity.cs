using System;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace AttentionGen.Benchmarks;

[MultiHeadAttention(ModelDim = 64, Heads = 4)] public partial class ParityMultiHead;

/// <summary>
/// The multi-head layer against PyTorch's own <c>nn.MultiheadAttention</c> (through TorchSharp), not a re-derivation of the
/// math: the same weights, loaded by their state-dict names, the same inputs and key padding mask, compared on the output
/// and the head-averaged weights. Run by the quick mode when TorchSharp loads.
/// </summary>
public static class MultiHeadParity
{
    public static string Check(System.Collections.Generic.List<string> failures)
    {
        const int batch = 2, length = 10, e = ParityMultiHead.ModelDim;
        var layer = new ParityMultiHead(seed: 3);
        var random = new Random(5);
        foreach (Parameter<float> p in layer.Parameters)
        {
            for (int i = 0; i < p.Value.Length; i++) p.Value[i] = (float)(random.NextDouble() - 0.5);
        }
        float[] x = Enumerable.Range(0, batch * length * e).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        bool[] mayAttend = Enumerable.Range(0, batch * length).Select(i => i % length < length - 1 - i / length * 3).ToArray();
        var output = new float[x.Length];
        var weights = new float[batch * length * length];
        layer.Forward(batch, length, length, x, x, x, output, weights, AttentionMask.FromKeyPadding(mayAttend));

        using var scope = NewDisposeScope();
        using var mha = nn.MultiheadAttention(e, ParityMultiHead.Heads);
        using (no_grad())
        {
            foreach (var (name, parameter) in mha.named_parameters())
            {
                Parameter<float> ours = layer.Parameters.Single(p => p.Name == name);
                parameter.copy_(tensor(ours.Value, ours.Shape.Select(s => (long)s).ToArray()));
            }
        }
        // TorchSharp's module is sequence-first, [T, B, E]; its key_padding_mask is true = ignore.
        Tensor input = tensor(x, new long[] { batch, length, e }).transpose(0, 1);
        Tensor ignore = tensor(mayAttend.Select(m => !m).ToArray(), new long[] { batch, length });
        var (torchOutput, torchWeights) = mha.forward(input, input, input, ignore, true, null);
        float[] expectedOutput = torchOutput.transpose(0, 1).contiguous().data<float>().ToArray();
        float[] expectedWeights = torchWeights.contiguous().data<float>().ToArray();
        double outputDifference = Quick.RelativeDifference(expectedOutput, output), weightDifference = Quick.RelativeDifference(expectedWeights, weights);
        bool ok = outputDifference <= 1e-5 && weightDifference <= 1e-5;
        if (!ok) failures.Add($"multi-head parity with nn.MultiheadAttention (output {outputDifference:g3}, weights {weightDifference:g3})");
        return $"[MultiHeadAttention] against TorchSharp's nn.MultiheadAttention (E = 64, 4 heads, key padding): output relative difference {outputDifference:g3}, weights {weightDifference:g3} {(ok ? "✓" : "✗")}";
    }
}
