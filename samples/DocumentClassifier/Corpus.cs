using System;
using System.Collections.Generic;
using System.Linq;

namespace DocumentClassifier;

/// <summary>A document: sentences of word ids, and its topic.</summary>
public sealed record Document(int[][] Sentences, int Label);

/// <summary>
/// A generated corpus (seeded; nothing is downloaded). Each topic has a handful of key words; a document is 3–8 sentences
/// of common filler words. One sentence, the lead, holds a marker word and key words of the document's topic; most other
/// sentences hold a key word of another topic. So the label depends on a few words among many, and only on those in the
/// marked sentence: the sentence-level attention has to find the lead, and the word-level attention the words in it.
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

    /// <summary>The words that mark a document's lead sentence.</summary>
    private static readonly string[] s_markers = ["headline", "mainly", "focus"];

    /// <summary>Id 0 is padding; then the filler words, every topic's key words, then the markers.</summary>
    public static readonly string[] Vocabulary = ["<pad>", .. s_filler, .. s_keyWords.SelectMany(k => k), .. s_markers];

    private static readonly Dictionary<string, int> s_ids = Vocabulary.Select((w, i) => (w, i)).ToDictionary(p => p.w, p => p.i);

    /// <summary>Whether a word id is one of the topics' key words (for reporting what the attention found).</summary>
    public static bool IsKeyWord(int id) => id > s_filler.Length && id <= s_filler.Length + s_keyWords.Length * s_keyWords[0].Length;

    /// <summary>Whether a word id is one of the lead-sentence markers.</summary>
    public static bool IsMarker(int id) => id > s_filler.Length + s_keyWords.Length * s_keyWords[0].Length;

    /// <summary>Whether a word id is placed (a key word or a marker): placement never overwrites one.</summary>
    private static bool IsPlaced(int id) => id > s_filler.Length;

    /// <summary>The topic whose key word this is, or −1 for a filler word.</summary>
    public static int TopicOf(int id) => IsKeyWord(id) ? (id - s_filler.Length - 1) / s_keyWords[0].Length : -1;

    public const int MaxSentences = 8, MaxWords = 10;

    /// <summary>
    /// One random document: its lead sentence holds a marker word ("headline", "mainly", "focus") and one or two key words of
    /// the document's topic; most other sentences hold a key word of some other topic. Counting key words is therefore no
    /// guide (the other topics together usually outnumber the document's): only the key words in the marked sentence count.
    /// </summary>
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
        int lead = random.Next(sentenceCount);
        Place(sentences[lead], s_ids[s_markers[random.Next(s_markers.Length)]], random);
        int keys = random.Next(1, 3);
        for (int k = 0; k < keys; k++) Place(sentences[lead], KeyWord(label, random), random);
        for (int s = 0; s < sentenceCount; s++)
        {
            if (s == lead || random.NextDouble() < 0.2) continue;
            int other = (label + 1 + random.Next(Topics.Length - 1)) % Topics.Length;
            Place(sentences[s], KeyWord(other, random), random);
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

    // Replaces a random filler word of the sentence (never a key or marker word placed before; sentences have at least 4
    // words and get at most 3 placed).
    private static void Place(List<int> sentence, int word, Random random)
    {
        while (true)
        {
            int at = random.Next(sentence.Count);
            if (IsPlaced(sentence[at])) continue;
            sentence[at] = word;
            return;
        }
    }
}
