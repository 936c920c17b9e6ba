using System;
using System.Collections.Generic;
using System.Linq;
using AttentionGen;
using AttentionGen.Samples;

namespace DocumentClassifier;

/// <summary>Word-level attention pooling: one vector per sentence from its word embeddings.</summary>
[StaticAttention(Dim = 32, Units = 32)]
public partial class WordAttention;

/// <summary>Sentence-level attention pooling: one vector per document from its sentence vectors.</summary>
[StaticAttention(Dim = 32, Units = 32)]
public partial class SentenceAttention;

/// <summary>
/// A Hierarchical Attention Network (Yang et al. 2016) in its smallest form: word embeddings xᵢₜ → word attention
/// (uᵢₜ = tanh(W_w xᵢₜ + b_w), αᵢₜ = softmax over t of uᵢₜᵀ u_w, sᵢ = Σₜ αᵢₜ xᵢₜ) → hᵢ = tanh(W_s sᵢ + b_s) → sentence attention
/// (βᵢ = softmax over i of uᵢᵀ u_s, d = Σᵢ βᵢ hᵢ) → logits = W_c d + b_c. The paper puts a bidirectional GRU under each
/// attention; on this corpus the label depends on which words occur together in a sentence, not on their order, so the
/// embeddings (and a dense layer for sentences) suffice and keep the sample small.
/// </summary>
public sealed class HierarchicalClassifier
{
    public const int Dim = WordAttention.Dim;
    private readonly Embedding _embedding;
    private readonly Dense _sentenceEncoder, _classifier;
    private readonly WordAttention.Tape _wordTape = new();
    private readonly SentenceAttention.Tape _sentenceTape = new();

    public HierarchicalClassifier(int seed)
    {
        var random = new Random(seed);
        _embedding = new Embedding("embedding", Corpus.Vocabulary.Length, Dim, random);
        Words = new WordAttention(random.Next());
        _sentenceEncoder = new Dense("sentence_encoder", Dim, SentenceAttention.Dim, random);
        Sentences = new SentenceAttention(random.Next());
        _classifier = new Dense("classifier", SentenceAttention.Dim, Corpus.Topics.Length, random);
        Parameters = [_embedding.Weight, .. Words.Parameters, .. _sentenceEncoder.Parameters, .. Sentences.Parameters, .. _classifier.Parameters];
    }

    public WordAttention Words { get; }
    public SentenceAttention Sentences { get; }
    public IReadOnlyList<Parameter<float>> Parameters { get; }

    /// <summary>A batch laid out for the layers: word ids [B·S, W] and padding masks (true = a real word / sentence).</summary>
    private sealed record Layout(int Batch, int SentenceCount, int WordCount, int[] Ids, bool[] WordMask, bool[] SentenceMask);

    private static Layout Lay(IReadOnlyList<Document> documents)
    {
        int b = documents.Count, s = documents.Max(d => d.Sentences.Length), w = documents.Max(d => d.Sentences.Max(x => x.Length));
        var ids = new int[b * s * w];
        var wordMask = new bool[b * s * w];
        var sentenceMask = new bool[b * s];
        for (int d = 0; d < b; d++)
        {
            for (int i = 0; i < documents[d].Sentences.Length; i++)
            {
                sentenceMask[d * s + i] = true;
                int[] sentence = documents[d].Sentences[i];
                for (int t = 0; t < sentence.Length; t++)
                {
                    ids[(d * s + i) * w + t] = sentence[t];
                    wordMask[(d * s + i) * w + t] = true;
                }
            }
        }
        return new Layout(b, s, w, ids, wordMask, sentenceMask);
    }

    /// <summary>Everything a forward computes, kept for the backward and for showing the attention.</summary>
    public sealed record Pass(int Batch, int SentenceCount, int WordCount, float[] Logits, float[] WordWeights, float[] SentenceWeights,
        float[] Embedded, float[] SentenceVectors, float[] Encoded, int[] Ids);

    /// <summary>Forward for a batch; with <paramref name="training"/> the layers record their tapes for <see cref="Backward"/>.</summary>
    public Pass Forward(IReadOnlyList<Document> documents, bool training)
    {
        Layout l = Lay(documents);
        int sentences = l.Batch * l.SentenceCount;
        var embedded = new float[sentences * l.WordCount * Dim];
        _embedding.Forward(l.Ids, embedded);

        // Word level: every sentence of the batch is one row of the word attention; an empty (padding) sentence pools to 0.
        var sentenceVectors = new float[sentences * Dim];
        var wordWeights = new float[sentences * l.WordCount];
        if (training) Words.Forward(_wordTape, sentences, l.WordCount, embedded, sentenceVectors, wordWeights, l.WordMask);
        else Words.Forward(sentences, l.WordCount, embedded, sentenceVectors, wordWeights, l.WordMask);

        var encoded = new float[sentences * SentenceAttention.Dim];
        _sentenceEncoder.Forward(sentences, sentenceVectors, encoded);
        Activations.Tanh(encoded, encoded);

        // Sentence level: one row per document.
        var documentVectors = new float[l.Batch * SentenceAttention.Dim];
        var sentenceWeights = new float[sentences];
        if (training) Sentences.Forward(_sentenceTape, l.Batch, l.SentenceCount, encoded, documentVectors, sentenceWeights, l.SentenceMask);
        else Sentences.Forward(l.Batch, l.SentenceCount, encoded, documentVectors, sentenceWeights, l.SentenceMask);

        var logits = new float[l.Batch * Corpus.Topics.Length];
        _classifier.Forward(l.Batch, documentVectors, logits);
        _documentVectors = documentVectors;
        return new Pass(l.Batch, l.SentenceCount, l.WordCount, logits, wordWeights, sentenceWeights, embedded, sentenceVectors, encoded, l.Ids);
    }

    private float[] _documentVectors = [];

    /// <summary>Mean cross-entropy of a batch, with its gradient added into every parameter's Gradient.</summary>
    public double LossAndGradients(IReadOnlyList<Document> documents)
    {
        Pass pass = Forward(documents, training: true);
        int b = pass.Batch, classes = Corpus.Topics.Length, sentences = b * pass.SentenceCount;
        var dLogits = new float[pass.Logits.Length];
        double loss = CrossEntropy.LossAndGradient(b, classes, pass.Logits, documents.Select(d => d.Label).ToArray(), 1f / b, dLogits) / b;

        var dDocument = new float[b * SentenceAttention.Dim];
        _classifier.Backward(b, _documentVectors, dLogits, dDocument);
        var dEncoded = new float[pass.Encoded.Length];
        Sentences.Backward(_sentenceTape, pass.Encoded, dDocument, dEncoded);
        Activations.TanhBackward(pass.Encoded, dEncoded, dEncoded);
        var dSentenceVectors = new float[pass.SentenceVectors.Length];
        _sentenceEncoder.Backward(sentences, pass.SentenceVectors, dEncoded, dSentenceVectors);
        var dEmbedded = new float[pass.Embedded.Length];
        Words.Backward(_wordTape, pass.Embedded, dSentenceVectors, dEmbedded);
        _embedding.Backward(pass.Ids, dEmbedded);
        return loss;
    }

    /// <summary>The predicted topic of each document.</summary>
    public static int[] Predictions(Pass pass)
    {
        int classes = Corpus.Topics.Length;
        var predictions = new int[pass.Batch];
        for (int d = 0; d < pass.Batch; d++)
        {
            ReadOnlySpan<float> row = pass.Logits.AsSpan(d * classes, classes);
            for (int c = 1; c < classes; c++) if (row[c] > row[predictions[d]]) predictions[d] = c;
        }
        return predictions;
    }

    /// <summary>
    /// Accuracy over <paramref name="documents"/>; how often the sentence with the highest βᵢ is the marked lead sentence; and
    /// how often the word with the highest αᵢₜ in that sentence is its marker or a key word of the document's topic.
    /// </summary>
    public (double Accuracy, double LeadFound, double WordFound) Evaluate(IReadOnlyList<Document> documents, int batchSize = 500)
    {
        int correct = 0, leads = 0, words = 0;
        for (int start = 0; start < documents.Count; start += batchSize)
        {
            List<Document> chunk = documents.Skip(start).Take(batchSize).ToList();
            Pass pass = Forward(chunk, training: false);
            int[] predictions = Predictions(pass);
            for (int d = 0; d < chunk.Count; d++)
            {
                if (predictions[d] == chunk[d].Label) correct++;
                (int sentence, int word) = Strongest(pass, d);
                if (chunk[d].Sentences[sentence].Any(Corpus.IsMarker)) leads++;
                int id = chunk[d].Sentences[sentence][word];
                if (Corpus.IsMarker(id) || Corpus.TopicOf(id) == chunk[d].Label) words++;
            }
        }
        return ((double)correct / documents.Count, (double)leads / documents.Count, (double)words / documents.Count);
    }

    /// <summary>The sentence with the largest βᵢ and, in it, the word with the largest αᵢₜ.</summary>
    public static (int Sentence, int Word) Strongest(Pass pass, int document)
    {
        int s = pass.SentenceCount, w = pass.WordCount;
        ReadOnlySpan<float> beta = pass.SentenceWeights.AsSpan(document * s, s);
        int sentence = 0;
        for (int i = 1; i < s; i++) if (beta[i] > beta[sentence]) sentence = i;
        ReadOnlySpan<float> alpha = pass.WordWeights.AsSpan((document * s + sentence) * w, w);
        int word = 0;
        for (int t = 1; t < w; t++) if (alpha[t] > alpha[word]) word = t;
        return (sentence, word);
    }
}
