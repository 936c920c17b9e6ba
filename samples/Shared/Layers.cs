using System;
using System.Collections.Generic;
using System.Numerics.Tensors;
using AttentionGen;

namespace AttentionGen.Samples;

// The small, hand-written layers the training samples put around the generated attention layers: embeddings, a dense
// layer, a GRU cell and softmax cross-entropy. Everything is float, batch first, row-major, and keeps its parameters
// in the runtime's Parameter<float> (value + gradient), so the runtime's Adam trains them together with the attention
// layers and SafeTensors saves them. Backward passes *add* into parameter gradients and into input gradients (dx),
// so callers can sum the gradients of several uses; they are checked against finite differences (GradientCheck).

/// <summary>Small dense-algebra helpers over spans (vectorised through TensorPrimitives).</summary>
public static class Linear
{
    /// <summary>y[r] = W x[r] + b for <paramref name="rows"/> rows; W is [outDim, inDim] (PyTorch's nn.Linear layout).</summary>
    public static void Forward(int rows, int inDim, int outDim, ReadOnlySpan<float> x, float[] weight, float[]? bias, Span<float> y)
    {
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> xr = x.Slice(r * inDim, inDim);
            Span<float> yr = y.Slice(r * outDim, outDim);
            for (int o = 0; o < outDim; o++)
            {
                yr[o] = TensorPrimitives.Dot(weight.AsSpan(o * inDim, inDim), xr) + (bias is null ? 0f : bias[o]);
            }
        }
    }

    /// <summary>Backward of <see cref="Forward"/>: dW += Σᵣ dy[r] x[r]ᵀ, db += Σᵣ dy[r], dx[r] += Wᵀ dy[r] (when dx is not empty).</summary>
    public static void Backward(int rows, int inDim, int outDim, ReadOnlySpan<float> x, float[] weight, ReadOnlySpan<float> dy,
        Span<float> dx, float[] dWeight, float[]? dBias)
    {
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> xr = x.Slice(r * inDim, inDim);
            ReadOnlySpan<float> dyr = dy.Slice(r * outDim, outDim);
            Span<float> dxr = dx.IsEmpty ? default : dx.Slice(r * inDim, inDim);
            for (int o = 0; o < outDim; o++)
            {
                float g = dyr[o];
                if (g == 0f) continue; // masked rows and saturated units cost nothing
                Span<float> dw = dWeight.AsSpan(o * inDim, inDim);
                TensorPrimitives.MultiplyAdd(xr, g, dw, dw);
                if (!dxr.IsEmpty) TensorPrimitives.MultiplyAdd(weight.AsSpan(o * inDim, inDim), g, dxr, dxr);
                if (dBias is not null) dBias[o] += g;
            }
        }
    }
}

/// <summary>A fully connected layer y = W x + b (W is [Out, In] as PyTorch's nn.Linear).</summary>
public sealed class Dense
{
    public Dense(string name, int inDim, int outDim, Random random)
    {
        (In, Out) = (inDim, outDim);
        Weight = new Parameter<float>(name + ".weight", outDim, inDim);
        Bias = new Parameter<float>(name + ".bias", outDim);
        Initializers.GlorotUniform<float>(Weight.Value, inDim, outDim, random);
    }

    public int In { get; }
    public int Out { get; }
    public Parameter<float> Weight { get; }
    public Parameter<float> Bias { get; }
    public IEnumerable<Parameter<float>> Parameters => [Weight, Bias];

    public void Forward(int rows, ReadOnlySpan<float> x, Span<float> y) => Linear.Forward(rows, In, Out, x, Weight.Value, Bias.Value, y);

    public void Backward(int rows, ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
        => Linear.Backward(rows, In, Out, x, Weight.Value, dy, dx, Weight.Gradient, Bias.Gradient);
}

/// <summary>A lookup table of one learned vector per token id.</summary>
public sealed class Embedding
{
    public Embedding(string name, int vocabulary, int dim, Random random)
    {
        (Vocabulary, Dim) = (vocabulary, dim);
        Weight = new Parameter<float>(name + ".weight", vocabulary, dim);
        Initializers.Uniform<float>(Weight.Value, -0.5, 0.5, random);
    }

    public int Vocabulary { get; }
    public int Dim { get; }
    public Parameter<float> Weight { get; }

    /// <summary>output[i] = E[ids[i]].</summary>
    public void Forward(ReadOnlySpan<int> ids, Span<float> output)
    {
        for (int i = 0; i < ids.Length; i++)
        {
            Weight.Value.AsSpan(ids[i] * Dim, Dim).CopyTo(output.Slice(i * Dim, Dim));
        }
    }

    /// <summary>dE[ids[i]] += dOutput[i] (a token used several times gets the sum).</summary>
    public void Backward(ReadOnlySpan<int> ids, ReadOnlySpan<float> dOutput)
    {
        for (int i = 0; i < ids.Length; i++)
        {
            Span<float> row = Weight.Gradient.AsSpan(ids[i] * Dim, Dim);
            TensorPrimitives.Add(row, dOutput.Slice(i * Dim, Dim), row);
        }
    }
}

/// <summary>
/// A gated recurrent unit (Cho et al. 2014) in PyTorch's formulation and parameter layout (gates ordered r, z, n):
/// r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
/// n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h.
/// One call is one time step for a batch; the caller keeps one <see cref="StepRecord"/> per step for backpropagation through time.
/// </summary>
public sealed class Gru
{
    public Gru(string name, int inDim, int hidden, Random random)
    {
        (In, Hidden) = (inDim, hidden);
        InputWeight = new Parameter<float>(name + ".weight_ih", 3 * hidden, inDim);
        HiddenWeight = new Parameter<float>(name + ".weight_hh", 3 * hidden, hidden);
        InputBias = new Parameter<float>(name + ".bias_ih", 3 * hidden);
        HiddenBias = new Parameter<float>(name + ".bias_hh", 3 * hidden);
        // PyTorch's default for recurrent layers: every weight and bias U(−1/√H, 1/√H).
        double limit = 1 / Math.Sqrt(hidden);
        foreach (Parameter<float> p in Parameters) Initializers.Uniform<float>(p.Value, -limit, limit, random);
    }

    public int In { get; }
    public int Hidden { get; }
    public Parameter<float> InputWeight { get; }
    public Parameter<float> HiddenWeight { get; }
    public Parameter<float> InputBias { get; }
    public Parameter<float> HiddenBias { get; }
    public IEnumerable<Parameter<float>> Parameters => [InputWeight, HiddenWeight, InputBias, HiddenBias];

    /// <summary>What one step keeps for its backward: its inputs and the gate activations.</summary>
    public sealed class StepRecord
    {
        internal float[] X = [], HPrev = [], R = [], Z = [], N = [], HiddenN = [];
        internal bool[]? Active;
        internal int Batch;

        internal void Prepare(int batch, int inDim, int hidden)
        {
            Batch = batch;
            if (X.Length < batch * inDim) X = new float[batch * inDim];
            if (HPrev.Length < batch * hidden)
            {
                HPrev = new float[batch * hidden];
                R = new float[batch * hidden];
                Z = new float[batch * hidden];
                N = new float[batch * hidden];
                HiddenN = new float[batch * hidden];
            }
        }
    }

    private float[] _gi = [], _gh = [], _dgi = [], _dgh = [];

    /// <summary>
    /// One step: h = GRU(x, hPrev) for every batch row. Rows whose <paramref name="active"/> flag is false (padding) keep
    /// h = hPrev, so a padded sequence ends in the state of its last real step. Records into <paramref name="record"/> when not null.
    /// </summary>
    public void Step(int batch, ReadOnlySpan<float> x, ReadOnlySpan<float> hPrev, Span<float> h, StepRecord? record, bool[]? active = null)
    {
        int hidden = Hidden, gates = 3 * hidden;
        Grow(ref _gi, batch * gates);
        Grow(ref _gh, batch * gates);
        Linear.Forward(batch, In, gates, x, InputWeight.Value, InputBias.Value, _gi);
        Linear.Forward(batch, hidden, gates, hPrev, HiddenWeight.Value, HiddenBias.Value, _gh);
        record?.Prepare(batch, In, hidden);
        for (int b = 0; b < batch; b++)
        {
            int g = b * gates, s = b * hidden;
            for (int j = 0; j < hidden; j++)
            {
                float r = Sigmoid(_gi[g + j] + _gh[g + j]);
                float z = Sigmoid(_gi[g + hidden + j] + _gh[g + hidden + j]);
                float hn = _gh[g + 2 * hidden + j];
                float n = MathF.Tanh(_gi[g + 2 * hidden + j] + r * hn);
                float hp = hPrev[s + j];
                h[s + j] = active is null || active[b] ? (1 - z) * n + z * hp : hp;
                if (record is not null)
                {
                    record.R[s + j] = r;
                    record.Z[s + j] = z;
                    record.N[s + j] = n;
                    record.HiddenN[s + j] = hn;
                }
            }
        }
        if (record is not null)
        {
            x.Slice(0, batch * In).CopyTo(record.X);
            hPrev.Slice(0, batch * hidden).CopyTo(record.HPrev);
            record.Active = active is null ? null : (bool[])active.Clone();
        }
    }

    /// <summary>
    /// Backward of one recorded step: from ∂L/∂h adds ∂L/∂x into <paramref name="dx"/> (when not empty), writes ∂L/∂hPrev
    /// into <paramref name="dhPrev"/>, and adds the parameter gradients.
    /// </summary>
    public void StepBackward(StepRecord record, ReadOnlySpan<float> dh, Span<float> dx, Span<float> dhPrev)
    {
        int batch = record.Batch, hidden = Hidden, gates = 3 * hidden;
        Grow(ref _dgi, batch * gates);
        Grow(ref _dgh, batch * gates);
        for (int b = 0; b < batch; b++)
        {
            int g = b * gates, s = b * hidden;
            bool isActive = record.Active is null || record.Active[b];
            for (int j = 0; j < hidden; j++)
            {
                if (!isActive)
                {
                    // h = hPrev: the gradient passes straight through, nothing reaches the gates.
                    dhPrev[s + j] = dh[s + j];
                    _dgi[g + j] = _dgi[g + hidden + j] = _dgi[g + 2 * hidden + j] = 0;
                    _dgh[g + j] = _dgh[g + hidden + j] = _dgh[g + 2 * hidden + j] = 0;
                    continue;
                }
                float r = record.R[s + j], z = record.Z[s + j], n = record.N[s + j], hn = record.HiddenN[s + j];
                float d = dh[s + j];
                float dn = d * (1 - z);                 // h' = (1 − z) n + z h
                float dz = d * (record.HPrev[s + j] - n);
                float dPreN = dn * (1 - n * n);         // tanh'
                float dr = dPreN * hn;                  // pre-n = gi_n + r ⊙ hn
                float dPreZ = dz * z * (1 - z);         // σ'
                float dPreR = dr * r * (1 - r);
                _dgi[g + j] = dPreR; _dgi[g + hidden + j] = dPreZ; _dgi[g + 2 * hidden + j] = dPreN;
                _dgh[g + j] = dPreR; _dgh[g + hidden + j] = dPreZ; _dgh[g + 2 * hidden + j] = dPreN * r;
                dhPrev[s + j] = d * z;                  // the direct path; W_hᵀ dgh is added below
            }
        }
        Linear.Backward(batch, In, gates, record.X, InputWeight.Value, _dgi, dx, InputWeight.Gradient, InputBias.Gradient);
        Linear.Backward(batch, hidden, gates, record.HPrev, HiddenWeight.Value, _dgh, dhPrev, HiddenWeight.Gradient, HiddenBias.Gradient);
    }

    private static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));

    private static void Grow(ref float[] buffer, int length)
    {
        if (buffer.Length < length) buffer = new float[length];
    }
}

/// <summary>Softmax cross-entropy over rows of logits.</summary>
public static class CrossEntropy
{
    /// <summary>
    /// Returns the summed loss −Σᵣ log softmax(logits[r])[target[r]] and writes ∂L/∂logits = (softmax − onehot) · scale
    /// (scale = 1 / number of rows averaged over). Rows with target −1 are ignored.
    /// </summary>
    public static double LossAndGradient(int rows, int classes, ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, float scale, Span<float> dLogits)
    {
        double loss = 0;
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> row = logits.Slice(r * classes, classes);
            Span<float> grad = dLogits.Slice(r * classes, classes);
            if (targets[r] < 0)
            {
                grad.Clear();
                continue;
            }
            float max = TensorPrimitives.Max(row);
            double sum = 0;
            for (int c = 0; c < classes; c++) sum += Math.Exp(row[c] - max);
            loss += Math.Log(sum) - (row[targets[r]] - max); // log Σ exp − the target logit, shifted by the max
            for (int c = 0; c < classes; c++) grad[c] = (float)(Math.Exp(row[c] - max) / sum) * scale;
            grad[targets[r]] -= scale;
        }
        return loss;
    }
}

/// <summary>tanh over a span and its backward, for the small dense layers between attention and the classifier.</summary>
public static class Activations
{
    public static void Tanh(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Tanh(x, y);

    /// <summary>dx = dy ⊙ (1 − y²) for y = tanh(x).</summary>
    public static void TanhBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < dx.Length; i++) dx[i] = dy[i] * (1 - y[i] * y[i]);
    }
}
