using System;
using System.Collections.Generic;
using System.Linq;
using AttentionGen;
using AttentionGen.Samples;
using AttentionGen.Serialization;

namespace DateTranslation;

/// <summary>
/// Bahdanau's additive attention between the encoder states (keys and values, 64 = 2 × 32: forward and backward GRU)
/// and the decoder state (the query, 64); U = 32 hidden units in the score network.
/// </summary>
[AdditiveAttention(Dim = 64, Units = 32)]
public partial class DateAligner;

/// <summary>
/// A character-level seq2seq translator: source characters → embeddings → bidirectional GRU encoder (the keys);
/// a GRU decoder whose state sₜ attends over the keys with <see cref="DateAligner"/> (eₜⱼ = vᵀ tanh(W_q sₜ + W_k kⱼ + b));
/// then h̃ₜ = tanh(W_c [sₜ; cₜ] + b_c) and logits = W_o h̃ₜ + b_o over the 11 ISO characters.
/// The attention comes after the decoder step (Luong et al.'s placement, with Bahdanau's additive score) so that, with teacher
/// forcing, one training call attends for all output steps at once and projects the keys once per batch; at inference the
/// decoder calls it once per output step with the key projection computed once per input (<c>ForwardWithKeyProjection</c>).
/// </summary>
public sealed class Translator
{
    public const int EmbedDim = 16, EncoderHidden = 32, Hidden = DateAligner.Dim, CombineDim = 64;
    private const int KeyDim = 2 * EncoderHidden, OutputClasses = 11, TargetLength = Dates.TargetLength;

    private readonly Embedding _sourceEmbedding, _targetEmbedding;
    private readonly Gru _forward, _backward, _decoder;
    private readonly Dense _combine, _output;

    public Translator(int seed)
    {
        var random = new Random(seed);
        _sourceEmbedding = new Embedding("source_embedding", Dates.SourceVocabulary, EmbedDim, random);
        _targetEmbedding = new Embedding("target_embedding", Dates.Start + 1, EmbedDim, random);
        _forward = new Gru("encoder.forward", EmbedDim, EncoderHidden, random);
        _backward = new Gru("encoder.backward", EmbedDim, EncoderHidden, random);
        _decoder = new Gru("decoder", EmbedDim, Hidden, random);
        Attention = new DateAligner(seed: random.Next());
        _combine = new Dense("combine", Hidden + KeyDim, CombineDim, random);
        _output = new Dense("output", CombineDim, OutputClasses, random);
        OwnParameters =
        [
            _sourceEmbedding.Weight, _targetEmbedding.Weight, .. _forward.Parameters, .. _backward.Parameters,
            .. _decoder.Parameters, .. _combine.Parameters, .. _output.Parameters,
        ];
        Parameters = [.. OwnParameters, .. Attention.Parameters];
    }

    static Translator()
    {
        // The decoder state is the attention query and the encoder states are its keys: the sizes must agree.
        if (KeyDim != DateAligner.Dim || DateAligner.ValueDim != KeyDim) throw new InvalidOperationException("Attention sizes do not match the encoder.");
    }

    /// <summary>The generated attention layer.</summary>
    public DateAligner Attention { get; }

    /// <summary>The hand-written layers' parameters (saved under their own names).</summary>
    public IReadOnlyList<Parameter<float>> OwnParameters { get; }

    /// <summary>Every trainable parameter, the attention layer's last.</summary>
    public IReadOnlyList<Parameter<float>> Parameters { get; }

    // ---- Buffers reused across batches (training allocates only when a batch is longer than any before). ----
    private readonly DateAligner.Tape _tape = new();
    private readonly List<Gru.StepRecord> _forwardRecords = [], _backwardRecords = [], _decoderRecords = [];

    /// <summary>
    /// Teacher-forced forward and backward over a batch: returns the mean cross-entropy per output character and adds
    /// ∂loss/∂θ into every parameter's gradient (the caller zeroes gradients and steps the optimiser).
    /// </summary>
    public double LossAndGradients(IReadOnlyList<DatePair> batch)
    {
        int b = batch.Count, t = batch.Max(p => p.SourceIds.Length);
        Encoded enc = Encode(batch, t, record: true);

        // Decoder, teacher forced: input at step i is the target character i − 1 (Start first). Q[b, i] = sᵢ.
        int[][] decoderInputs = new int[TargetLength][];
        float[][] decoderX = new float[TargetLength][];
        float[][] states = new float[TargetLength + 1][];
        states[0] = new float[b * Hidden];
        float[] queries = new float[b * TargetLength * Hidden];
        for (int i = 0; i < TargetLength; i++)
        {
            decoderInputs[i] = batch.Select(p => i == 0 ? Dates.Start : p.TargetIds[i - 1]).ToArray();
            decoderX[i] = new float[b * EmbedDim];
            _targetEmbedding.Forward(decoderInputs[i], decoderX[i]);
            states[i + 1] = new float[b * Hidden];
            _decoder.Step(b, decoderX[i], states[i], states[i + 1], Record(_decoderRecords, i));
            for (int r = 0; r < b; r++) states[i + 1].AsSpan(r * Hidden, Hidden).CopyTo(queries.AsSpan((r * TargetLength + i) * Hidden, Hidden));
        }

        // One training call attends for every output step: cₜ = Σⱼ aₜⱼ kⱼ.
        float[] context = new float[b * TargetLength * KeyDim];
        Attention.Forward(_tape, b, TargetLength, t, queries, enc.Keys, default, context, default, AttentionMask.FromKeyPadding(enc.Padding));

        // Output head over all B·10 positions: h̃ = tanh(W_c [s; c] + b_c), logits = W_o h̃ + b_o.
        int rows = b * TargetLength;
        float[] joined = Join(rows, queries, context);
        float[] hidden = new float[rows * CombineDim];
        _combine.Forward(rows, joined, hidden);
        Activations.Tanh(hidden, hidden);
        float[] logits = new float[rows * OutputClasses];
        _output.Forward(rows, hidden, logits);
        int[] targets = new int[rows];
        for (int r = 0; r < b; r++) batch[r].TargetIds.CopyTo(targets, r * TargetLength);
        float[] dLogits = new float[logits.Length];
        double loss = CrossEntropy.LossAndGradient(rows, OutputClasses, logits, targets, 1f / rows, dLogits) / rows;

        // ---- Backward, in reverse order. ----
        float[] dHidden = new float[hidden.Length];
        _output.Backward(rows, hidden, dLogits, dHidden);
        Activations.TanhBackward(hidden, dHidden, dHidden);
        float[] dJoined = new float[joined.Length];
        _combine.Backward(rows, joined, dHidden, dJoined);
        float[] dQueries = new float[queries.Length], dContext = new float[context.Length];
        Split(rows, dJoined, dQueries, dContext);
        float[] dQueryFromAttention = new float[queries.Length], dKeys = new float[enc.Keys.Length];
        Attention.Backward(_tape, queries, enc.Keys, default, dContext, dQueryFromAttention, dKeys);
        for (int i = 0; i < dQueries.Length; i++) dQueries[i] += dQueryFromAttention[i];

        // Decoder, backpropagation through time: ∂L/∂sᵢ = its output-head and attention share + what step i + 1 passes back.
        float[] dState = new float[b * Hidden], dPrevious = new float[b * Hidden];
        for (int i = TargetLength - 1; i >= 0; i--)
        {
            for (int r = 0; r < b; r++)
            {
                Span<float> d = dState.AsSpan(r * Hidden, Hidden);
                ReadOnlySpan<float> fromOutput = dQueries.AsSpan((r * TargetLength + i) * Hidden, Hidden);
                for (int k = 0; k < Hidden; k++) d[k] += fromOutput[k];
            }
            float[] dx = new float[b * EmbedDim];
            _decoder.StepBackward(_decoderRecords[i], dState, dx, dPrevious);
            _targetEmbedding.Backward(decoderInputs[i], dx);
            (dState, dPrevious) = (dPrevious, dState);
        }

        EncodeBackward(enc, dKeys);
        return loss;
    }

    /// <summary>What the encoder produced for a batch: keys [B, T, 64], the padding mask [B, T] and each step's token ids.</summary>
    private sealed record Encoded(int Batch, int Length, float[] Keys, bool[] Padding, int[][] Ids);

    // The bidirectional encoder: kⱼ = [→hⱼ; ←hⱼ]. Rows shorter than T are padded at the end; their padded steps keep the
    // state unchanged (so ←h starts at each row's real last character) and are masked out of the attention.
    private Encoded Encode(IReadOnlyList<DatePair> batch, int t, bool record)
    {
        int b = batch.Count;
        var ids = new int[t][];
        var x = new float[t][];
        var active = new bool[t][];
        var padding = new bool[b * t];
        for (int j = 0; j < t; j++)
        {
            ids[j] = new int[b];
            active[j] = new bool[b];
            for (int r = 0; r < b; r++)
            {
                int[] source = batch[r].SourceIds;
                active[j][r] = padding[r * t + j] = j < source.Length;
                ids[j][r] = j < source.Length ? source[j] : Dates.Padding;
            }
            x[j] = new float[b * EmbedDim];
            _sourceEmbedding.Forward(ids[j], x[j]);
        }
        var keys = new float[b * t * KeyDim];
        float[] h = new float[b * EncoderHidden], next = new float[b * EncoderHidden];
        for (int j = 0; j < t; j++)
        {
            _forward.Step(b, x[j], h, next, record ? Record(_forwardRecords, j) : null, active[j]);
            (h, next) = (next, h);
            for (int r = 0; r < b; r++) h.AsSpan(r * EncoderHidden, EncoderHidden).CopyTo(keys.AsSpan((r * t + j) * KeyDim, EncoderHidden));
        }
        Array.Clear(h);
        for (int j = t - 1; j >= 0; j--)
        {
            _backward.Step(b, x[j], h, next, record ? Record(_backwardRecords, j) : null, active[j]);
            (h, next) = (next, h);
            for (int r = 0; r < b; r++) h.AsSpan(r * EncoderHidden, EncoderHidden).CopyTo(keys.AsSpan((r * t + j) * KeyDim + EncoderHidden, EncoderHidden));
        }
        return new Encoded(b, t, keys, padding, ids);
    }

    private void EncodeBackward(Encoded enc, float[] dKeys)
    {
        int b = enc.Batch, t = enc.Length;
        var dx = new float[t][];
        for (int j = 0; j < t; j++) dx[j] = new float[b * EmbedDim];
        float[] dh = new float[b * EncoderHidden], dPrevious = new float[b * EncoderHidden];
        // →h: step j fed step j + 1, so walk back from the end.
        for (int j = t - 1; j >= 0; j--)
        {
            AddKeyGradient(dKeys, b, t, j, 0, dh);
            _forward.StepBackward(_forwardRecords[j], dh, dx[j], dPrevious);
            (dh, dPrevious) = (dPrevious, dh);
        }
        Array.Clear(dh);
        // ←h: step j fed step j − 1, so walk forward from the start.
        for (int j = 0; j < t; j++)
        {
            AddKeyGradient(dKeys, b, t, j, EncoderHidden, dh);
            _backward.StepBackward(_backwardRecords[j], dh, dx[j], dPrevious);
            (dh, dPrevious) = (dPrevious, dh);
        }
        for (int j = 0; j < t; j++) _sourceEmbedding.Backward(enc.Ids[j], dx[j]);
    }

    private static void AddKeyGradient(float[] dKeys, int b, int t, int j, int offset, float[] dh)
    {
        for (int r = 0; r < b; r++)
        {
            ReadOnlySpan<float> source = dKeys.AsSpan((r * t + j) * KeyDim + offset, EncoderHidden);
            Span<float> target = dh.AsSpan(r * EncoderHidden, EncoderHidden);
            for (int k = 0; k < EncoderHidden; k++) target[k] += source[k];
        }
    }

    /// <summary>The result of greedy decoding: one ISO string per input, and the attention weights [10, T] of each.</summary>
    public sealed record Translation(string Source, string Output, float[,] Weights);

    /// <summary>
    /// Greedy decoding, as a deployed translator runs: encode once, project the keys once (<c>ProjectKeys</c>), then per output
    /// step one decoder GRU step, one <c>ForwardWithKeyProjection</c> and the output head; the argmax is the next input.
    /// </summary>
    public List<Translation> Translate(IReadOnlyList<DatePair> batch)
    {
        int b = batch.Count, t = batch.Max(p => p.SourceIds.Length);
        Encoded enc = Encode(batch, t, record: false);
        float[] keyProjection = new float[b * t * DateAligner.Units];
        Attention.ProjectKeys(b, t, enc.Keys, keyProjection);

        int[] previous = Enumerable.Repeat(Dates.Start, b).ToArray();
        float[] x = new float[b * EmbedDim], state = new float[b * Hidden], next = new float[b * Hidden];
        float[] context = new float[b * KeyDim], weights = new float[b * t];
        float[] hidden = new float[b * CombineDim], logits = new float[b * OutputClasses];
        int[,] outputs = new int[b, TargetLength];
        float[][,] allWeights = Enumerable.Range(0, b).Select(_ => new float[TargetLength, t]).ToArray();
        for (int i = 0; i < TargetLength; i++)
        {
            _targetEmbedding.Forward(previous, x);
            _decoder.Step(b, x, state, next, null);
            (state, next) = (next, state);
            Attention.ForwardWithKeyProjection(b, 1, t, state, keyProjection, enc.Keys, context, weights, AttentionMask.FromKeyPadding(enc.Padding));
            float[] joined = Join(b, state, context);
            _combine.Forward(b, joined, hidden);
            Activations.Tanh(hidden, hidden);
            _output.Forward(b, hidden, logits);
            for (int r = 0; r < b; r++)
            {
                ReadOnlySpan<float> row = logits.AsSpan(r * OutputClasses, OutputClasses);
                int best = 0;
                for (int c = 1; c < OutputClasses; c++) if (row[c] > row[best]) best = c;
                outputs[r, i] = previous[r] = best;
                for (int j = 0; j < t; j++) allWeights[r][i, j] = weights[r * t + j];
            }
        }
        var results = new List<Translation>(b);
        for (int r = 0; r < b; r++)
        {
            int length = batch[r].SourceIds.Length;
            var w = new float[TargetLength, length]; // drop the padded columns (their weights are 0)
            for (int i = 0; i < TargetLength; i++) for (int j = 0; j < length; j++) w[i, j] = allWeights[r][i, j];
            int[] ids = Enumerable.Range(0, TargetLength).Select(i => outputs[r, i]).ToArray();
            results.Add(new Translation(batch[r].Source, Dates.Decode(ids), w));
        }
        return results;
    }

    /// <summary>Exact-match accuracy (all 10 characters right) over <paramref name="pairs"/>.</summary>
    public double Accuracy(IReadOnlyList<DatePair> pairs, int batchSize = 250)
    {
        int correct = 0;
        for (int start = 0; start < pairs.Count; start += batchSize)
        {
            List<DatePair> chunk = pairs.Skip(start).Take(batchSize).ToList();
            List<Translation> translations = Translate(chunk);
            for (int i = 0; i < chunk.Count; i++) if (translations[i].Output == chunk[i].Target) correct++;
        }
        return (double)correct / pairs.Count;
    }

    /// <summary>
    /// Saves every parameter to a safetensors file. The generated layer's parameters have short names (query_weight, …);
    /// in the model's file they live under "attention.".
    /// </summary>
    public void Save(string path)
    {
        var all = new List<Parameter<float>>(OwnParameters);
        foreach (Parameter<float> p in Attention.Parameters)
        {
            var copy = new Parameter<float>("attention." + p.Name, [.. p.Shape]);
            p.Value.CopyTo(copy.Value, 0);
            all.Add(copy);
        }
        SafeTensors.Save(all, path, new Dictionary<string, string> { ["model"] = "DateTranslation sample" });
    }

    /// <summary>Loads what <see cref="Save"/> wrote (all or nothing: on a mismatch no parameter changes).</summary>
    public void Load(string path)
    {
        SafeTensors.Load(OwnParameters, path);
        SafeTensors.Load(Attention, path, new SafeTensorsLoadOptions { Prefix = "attention." });
    }

    private static Gru.StepRecord Record(List<Gru.StepRecord> records, int step)
    {
        while (records.Count <= step) records.Add(new Gru.StepRecord());
        return records[step];
    }

    // [s; c] per row: the decoder state (Hidden) then the attention context (KeyDim).
    private static float[] Join(int rows, float[] state, float[] context)
    {
        var joined = new float[rows * (Hidden + KeyDim)];
        for (int r = 0; r < rows; r++)
        {
            state.AsSpan(r * Hidden, Hidden).CopyTo(joined.AsSpan(r * (Hidden + KeyDim)));
            context.AsSpan(r * KeyDim, KeyDim).CopyTo(joined.AsSpan(r * (Hidden + KeyDim) + Hidden));
        }
        return joined;
    }

    private static void Split(int rows, float[] joined, float[] state, float[] context)
    {
        for (int r = 0; r < rows; r++)
        {
            joined.AsSpan(r * (Hidden + KeyDim), Hidden).CopyTo(state.AsSpan(r * Hidden));
            joined.AsSpan(r * (Hidden + KeyDim) + Hidden, KeyDim).CopyTo(context.AsSpan(r * KeyDim));
        }
    }
}
