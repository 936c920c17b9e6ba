using System;
using System.Collections.Generic;
using System.Linq;

namespace DocumentClassifier;

/// <summary>A document: sentences of word ids, and its topic.</summary>
public sealed record Document(int[][] Sentences, int Label);

/// <summary>
/// A generated corpus (seeded; nothing is downloaded). Each topic has a handful of key words; a document is a few
/// sentences of common filler words with two or three key words of its topic scattered through it, and sometimes one key
/// word of another topic as a distractor. So the label depends on a few words among many, and a model that weighs every
/// word alike is easily misled: the attention has to find the key words (and the sentences holding them).
/// </summary>
public static class Corpus
{
    public static readonly string[] Topics = ["sports", "finance", "science", "weather"];

    private static readonly string[][] s_keyWords =
    [
        ["goal", "referee", "striker", "league", "match", "coach"],
        ["shares", "dividend", "investors", "bond", "earnings", "bank"],
        ["molecule", "telescope", "experiment", "genome", "laboratory", "physics"],
        ["rain", "forecast", "storm", "humidity", "drought", "snow"],
    ];

    private static readonly string[] s_filler =
    (
        "the a of and to in on at for with by from about after before during over under " +
        "city people said year new old first last many some other local public report " +
        "week today morning evening group team plan time day night home world country " +
        "said told asked expected announced reported noted added showed found made took " +
        "large small early late long short high low good bad best major minor several " +
        "council school road river market office station park street village region family"
    ).Split(' ').Distinct().ToArray();

    /// <summary>Id 0 is padding; then the filler words, then every topic's key words.</summary>
    public static readonly string[] Vocabulary = ["<pad>", .. s_filler, .. s_keyWords.SelectMany(k => k)];

    private static readonly Dictionary<string, int> s_ids = Vocabulary.Select((w, i) => (w, i)).ToDictionary(p => p.w, p => p.i);

    /// <summary>Whether a word id is one of the topics' key words (for reporting what the attention found).</summary>
    public static bool IsKeyWord(int id) => id > s_filler.Length;

    /// <summary>The topic whose key word this is, or −1 for a filler word.</summary>
    public static int TopicOf(int id) => IsKeyWord(id) ? (id - s_filler.Length - 1) / s_keyWords[0].Length : -1;

    public const int MaxSentences = 6, MaxWords = 10;

    /// <summary>One random document.</summary>
    public static Document Next(Random random)
    {
        int label = random.Next(Topics.Length);
        int sentenceCount = random.Next(3, MaxSentences + 1);
        var sentences = new List<int>[sentenceCount];
        for (int s = 0; s < sentenceCount; s++)
        {
            int words = random.Next(4, MaxWords);
            sentences[s] = Enumerable.Range(0, words).Select(_ => s_ids[s_filler[random.Next(s_filler.Length)]]).ToList();
        }
        // Two or three key words of the topic; at most one of another topic, so the topic always has the majority.
        int keys = random.Next(2, 4);
        for (int k = 0; k < keys; k++) Place(sentences, KeyWord(label, random), random);
        if (random.NextDouble() < 0.5)
        {
            int other = (label + 1 + random.Next(Topics.Length - 1)) % Topics.Length;
            Place(sentences, KeyWord(other, random), random);
        }
        return new Document(sentences.Select(s => s.ToArray()).ToArray(), label);
    }

    public static List<Document> Many(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Next(random)).ToList();
    }

    public static string Word(int id) => Vocabulary[id];

    private static int KeyWord(int topic, Random random) => s_ids[s_keyWords[topic][random.Next(s_keyWords[topic].Length)]];

    // Replaces a random filler word of a random sentence (never a key word placed before, so the counts stay as drawn;
    // sentences keep at most MaxWords words).
    private static void Place(List<int>[] sentences, int word, Random random)
    {
        while (true)
        {
            List<int> sentence = sentences[random.Next(sentences.Length)];
            int at = random.Next(sentence.Count);
            if (IsKeyWord(sentence[at])) continue;
            sentence[at] = word;
            return;
        }
    }
}
