using System;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace AttentionGen.Benchmarks;

[MultiHeadAttention(ModelDim = 64, Heads = 4)] public partial class ParityMultiHead;
[MultiHeadAttention(ModelDim = 64, Heads = 4, AddBiasKeyValue = true, AddZeroAttention = true)] public partial class ParityMultiHeadExtraKeys;

/// <summary>
/// The multi-head layer against PyTorch's own <c>nn.MultiheadAttention</c> (through TorchSharp), not a re-derivation of the
/// math: the same weights, loaded by their state-dict names, the same inputs and key padding mask, compared on the output
/// and the head-averaged weights, without and with a float <c>attn_mask</c> (our <c>attentionBias</c>), and with <c>add_bias_kv</c> and
/// <c>add_zero_attn</c>. Run by the quick mode when TorchSharp loads.
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
        string report = $"[MultiHeadAttention] against TorchSharp's nn.MultiheadAttention (E = 64, 4 heads, key padding): output relative difference {outputDifference:g3}, weights {weightDifference:g3} {(ok ? "✓" : "✗")}";

        // A float attn_mask (added to the scaled scores), with the key padding mask: shared [L, S] (an ALiBi-like slope with a few
        // −∞ holes) and per head [B·H, L, S] (random), against the same module.
        int heads = ParityMultiHead.Heads;
        float[] shared = new float[length * length];
        for (int i = 0; i < length; i++)
        for (int j = 0; j < length; j++)
            shared[i * length + j] = (i + 2 * j) % 9 == 4 && j != 0 ? float.NegativeInfinity : -0.3f * Math.Abs(i - j);
        float[] perHead = Enumerable.Range(0, batch * heads * length * length).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        // [L, S] through nn.MultiheadAttention itself, with the key padding mask.
        {
            layer.Forward(batch, length, length, x, x, x, output, weights, AttentionMask.FromKeyPadding(mayAttend), attentionBias: shared);
            var (biasedOutput, biasedWeights) = mha.forward(input, input, input, ignore, true, tensor(shared, new long[] { length, length }));
            double outputDiff = Quick.RelativeDifference(biasedOutput.transpose(0, 1).contiguous().data<float>().ToArray(), output);
            double weightDiff = Quick.RelativeDifference(biasedWeights.contiguous().data<float>().ToArray(), weights);
            bool biasedOk = outputDiff <= 1e-5 && weightDiff <= 1e-5;
            if (!biasedOk) failures.Add($"multi-head parity with nn.MultiheadAttention and a float attn_mask [L, S] (output {outputDiff:g3}, weights {weightDiff:g3})");
            report += $"\n[MultiHeadAttention] with a float attn_mask [L, S] (attentionBias) and key padding: output relative difference {outputDiff:g3}, weights {weightDiff:g3} {(biasedOk ? "✓" : "✗")}";
        }

        // [B, H, L, S]: libtorch's C++ nn.MultiheadAttention rejects a 3-D attn_mask (it broadcasts it to 4-D and adds in place),
        // so the per-head shape is checked on the core against torch's scaled_dot_product_attention with a 4-D float mask. Our core
        // gets the boolean key padding and the bias separately, torch one float mask with the padding folded in as −∞ (the AND).
        {
            int d = ParityMultiHead.HeadDim;
            float[] q = Enumerable.Range(0, batch * heads * length * d).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            float[] k = Enumerable.Range(0, q.Length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            float[] v = Enumerable.Range(0, q.Length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            float[] folded = (float[])perHead.Clone();
            for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
            for (int i = 0; i < length; i++)
            for (int j = 0; j < length; j++)
                if (!mayAttend[b * length + j]) folded[((b * heads + h) * length + i) * length + j] = float.NegativeInfinity;
            var core = new float[q.Length];
            layer.ScaledDotProductAttention(batch, length, length, q, k, v, core, AttentionMask.FromKeyPadding(mayAttend), perHead);
            long[] shape = { batch, heads, length, d };
            Tensor expected = nn.functional.scaled_dot_product_attention(tensor(q, shape), tensor(k, shape), tensor(v, shape), tensor(folded, new long[] { batch, heads, length, length }));
            double coreDiff = Quick.RelativeDifference(expected.contiguous().data<float>().ToArray(), core);
            bool coreOk = coreDiff <= 1e-5;
            if (!coreOk) failures.Add($"core parity with scaled_dot_product_attention and a float attn_mask [B, H, L, S] ({coreDiff:g3})");
            report += $"\n[MultiHeadAttention] core with attentionBias [B, H, L, S] and key padding against torch's scaled_dot_product_attention: output relative difference {coreDiff:g3} {(coreOk ? "✓" : "✗")}";
        }

        // add_bias_kv and add_zero_attn: bias_k and bias_v loaded by name like the rest, the weights with their two extra columns
        // (bias_k's, then the zero key's), the key padding mask leaving those alone.
        {
            var extra = new ParityMultiHeadExtraKeys(seed: 4);
            foreach (Parameter<float> p in extra.Parameters)
            {
                for (int i = 0; i < p.Value.Length; i++) p.Value[i] = (float)(random.NextDouble() - 0.5);
            }
            var extraOutput = new float[x.Length];
            var extraWeights = new float[batch * length * (length + ParityMultiHeadExtraKeys.ExtraKeys)];
            extra.Forward(batch, length, length, x, x, x, extraOutput, extraWeights, AttentionMask.FromKeyPadding(mayAttend));
            using var mhaExtra = nn.MultiheadAttention(e, heads, add_bias_kv: true, add_zero_attn: true);
            using (no_grad())
            {
                foreach (var (name, parameter) in mhaExtra.named_parameters())
                {
                    Parameter<float> ours = extra.Parameters.Single(p => p.Name == name);
                    parameter.copy_(tensor(ours.Value, ours.Shape.Select(s => (long)s).ToArray()));
                }
            }
            var (torchExtraOutput, torchExtraWeights) = mhaExtra.forward(input, input, input, ignore, true, null);
            double outputDiff = Quick.RelativeDifference(torchExtraOutput.transpose(0, 1).contiguous().data<float>().ToArray(), extraOutput);
            double weightDiff = Quick.RelativeDifference(torchExtraWeights.contiguous().data<float>().ToArray(), extraWeights);
            bool extraOk = outputDiff <= 1e-5 && weightDiff <= 1e-5;
            if (!extraOk) failures.Add($"multi-head parity with nn.MultiheadAttention(add_bias_kv, add_zero_attn) (output {outputDiff:g3}, weights {weightDiff:g3})");
            report += $"\n[MultiHeadAttention(AddBiasKeyValue, AddZeroAttention)] against nn.MultiheadAttention(add_bias_kv: true, add_zero_attn: true) with key padding: output relative difference {outputDiff:g3}, weights {weightDiff:g3} {(extraOk ? "✓" : "✗")}";
        }
        return report;
    }
}
