using System;
using System.Linq;

namespace AttentionGen.Layers.Tests.MultiHead;

/// <summary>
/// Multi-head attention written plainly from Vaswani et al. 2017 and PyTorch's nn.MultiheadAttention documentation, in double:
/// full projections, the whole score matrix, a max-subtracted softmax, no tiles. Independent of the generated kernel.
/// </summary>
public sealed class MultiHeadReference
{
    public required int ModelDim, Heads, KeyDim, ValueDim;
    public required double[] QueryWeight, KeyWeight, ValueWeight, OutputWeight; // [E, E], [E, KeyDim], [E, ValueDim], [E, E]
    public required double[] QueryBias, KeyBias, ValueBias, OutputBias;        // [E] each (zeros when the layer has none)

    // PyTorch's add_bias_kv (bias_k, bias_v [E], empty when absent) and add_zero_attn: keys appended after the given ones, in that
    // order, which no mask or additive bias touches.
    public double[] ExtraKey = Array.Empty<double>(), ExtraValue = Array.Empty<double>();
    public bool ZeroKey;

    /// <summary>The extra keys: bias_k (when present), then the zero key (when present).</summary>
    public int ExtraKeys => (ExtraKey.Length > 0 ? 1 : 0) + (ZeroKey ? 1 : 0);

    /// <summary>Reads the parameters of a generated layer by their PyTorch names.</summary>
    public static MultiHeadReference From<T>(IAttentionLayer<T> layer, int modelDim, int heads, int keyDim, int valueDim) where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        double[] Get(string name) => layer.Parameters.FirstOrDefault(p => p.Name == name) is { } p ? TestData.ToDouble(p.Value) : Array.Empty<double>();
        int e = modelDim;
        double[] packed = Get("in_proj_weight");
        double[] bias = Get("in_proj_bias");
        double[] Part(double[] source, int offset, int length) => source.Length == 0 ? new double[length] : source.AsSpan(offset, length).ToArray();
        return new MultiHeadReference
        {
            ModelDim = e, Heads = heads, KeyDim = keyDim, ValueDim = valueDim,
            QueryWeight = packed.Length > 0 ? Part(packed, 0, e * e) : Get("q_proj_weight"),
            KeyWeight = packed.Length > 0 ? Part(packed, e * e, e * e) : Get("k_proj_weight"),
            ValueWeight = packed.Length > 0 ? Part(packed, 2 * e * e, e * e) : Get("v_proj_weight"),
            OutputWeight = Get("out_proj.weight"),
            QueryBias = Part(bias, 0, e), KeyBias = Part(bias, e, e), ValueBias = Part(bias, 2 * e, e),
            OutputBias = Get("out_proj.bias") is { Length: > 0 } ob ? ob : new double[e],
            ExtraKey = Get("bias_k"), ExtraValue = Get("bias_v"),
        };
    }

    // y = x Wᵀ + b for rows of x.
    private static double[] Linear(double[] x, int rows, int inDim, double[] weight, double[] bias, int outDim)
    {
        var y = new double[rows * outDim];
        for (int r = 0; r < rows; r++)
        {
            for (int o = 0; o < outDim; o++)
            {
                double sum = bias[o];
                for (int i = 0; i < inDim; i++) sum += x[r * inDim + i] * weight[o * inDim + i];
                y[r * outDim + o] = sum;
            }
        }
        return y;
    }

    /// <summary>
    /// The output [B, Tq, E] and the per-head weights [B, H, Tq, Tk + ExtraKeys]; <paramref name="allowed"/>(b, i, j) is the mask and
    /// <paramref name="bias"/>(b, h, i, j), when given, the additive bias added to the scaled score of an allowed pair.
    /// </summary>
    public (double[] Output, double[] HeadWeights) Forward(int batch, int tq, int tk, double[] query, double[] keys, double[] values, Func<int, int, int, bool> allowed,
        Func<int, int, int, int, double>? bias = null)
    {
        int e = ModelDim, d = e / Heads;
        double[] q = Linear(query, batch * tq, e, QueryWeight, QueryBias, e);
        double[] k = Linear(keys, batch * tk, KeyDim, KeyWeight, KeyBias, e);
        double[] v = Linear(values, batch * tk, ValueDim, ValueWeight, ValueBias, e);
        var concatenated = new double[batch * tq * e];
        int columns = tk + ExtraKeys;
        var weights = new double[batch * Heads * tq * columns];
        var scores = new double[columns];
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < Heads; h++)
        for (int i = 0; i < tq; i++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < tk; j++)
            {
                if (!allowed(b, i, j)) { scores[j] = double.NegativeInfinity; continue; }
                double s = 0;
                for (int c = 0; c < d; c++) s += q[(b * tq + i) * e + h * d + c] * k[(b * tk + j) * e + h * d + c];
                scores[j] = s / Math.Sqrt(d) + (bias is null ? 0 : bias(b, h, i, j));
                max = double.IsNaN(max) || double.IsNaN(scores[j]) ? double.NaN : Math.Max(max, scores[j]);
            }
            for (int x = 0; x < ExtraKeys; x++)
            {
                // bias_k's score (qᵢ · k_b / √d), then the zero key's (0): always allowed
                double s = 0;
                if (x == 0 && ExtraKey.Length > 0) for (int c = 0; c < d; c++) s += q[(b * tq + i) * e + h * d + c] * ExtraKey[h * d + c];
                scores[tk + x] = s / Math.Sqrt(d);
                max = double.IsNaN(max) || double.IsNaN(scores[tk + x]) ? double.NaN : Math.Max(max, scores[tk + x]);
            }
            if (double.IsNegativeInfinity(max)) continue; // nothing allowed (or a bias of −∞ wherever allowed): zero weights, zero head output
            double total = 0;
            for (int j = 0; j < columns; j++) { scores[j] = Math.Exp(scores[j] - max); total += scores[j]; }
            for (int j = 0; j < columns; j++)
            {
                double a = scores[j] / total;
                weights[((b * Heads + h) * tq + i) * columns + j] = a;
                for (int c = 0; c < d; c++)
                {
                    double value = j < tk ? v[(b * tk + j) * e + h * d + c] : j == tk && ExtraValue.Length > 0 ? ExtraValue[h * d + c] : 0;
                    concatenated[(b * tq + i) * e + h * d + c] += a * value;
                }
            }
        }
        return (Linear(concatenated, batch * tq, e, OutputWeight, OutputBias, e), weights);
    }

    /// <summary>
    /// The attention core alone (scaled_dot_product_attention) on [heads, T, d] in double: softmax(q kᵀ / √d) v per head, keys after
    /// i + Tk − Tq hidden when causal, a query with nothing allowed giving zeros.
    /// </summary>
    public static double[] Core(int heads, int tq, int tk, int d, double[] q, double[] k, double[] v, bool causal)
    {
        var output = new double[heads * tq * d];
        var s = new double[tk];
        for (int head = 0; head < heads; head++)
        for (int i = 0; i < tq; i++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < tk; j++)
            {
                double dot = 0;
                for (int c = 0; c < d; c++) dot += q[(head * tq + i) * d + c] * k[(head * tk + j) * d + c];
                s[j] = !causal || j <= i + tk - tq ? dot / Math.Sqrt(d) : double.NegativeInfinity;
                max = Math.Max(max, s[j]);
            }
            if (double.IsNegativeInfinity(max)) continue;
            double total = s.Sum(x => Math.Exp(x - max));
            for (int j = 0; j < tk; j++)
            for (int c = 0; c < d; c++)
                output[(head * tq + i) * d + c] += Math.Exp(s[j] - max) / total * v[(head * tk + j) * d + c];
        }
        return output;
    }

    /// <summary>Weights averaged over heads, [B, Tq, Tk].</summary>
    public double[] Average(double[] headWeights, int batch, int tq, int tk)
    {
        var averaged = new double[batch * tq * tk];
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < Heads; h++)
        for (int x = 0; x < tq * tk; x++)
            averaged[b * tq * tk + x] += headWeights[(b * Heads + h) * tq * tk + x] / Heads;
        return averaged;
    }
}
