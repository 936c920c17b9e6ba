using System;
using System.Collections.Generic;
using System.Globalization;

namespace DateTranslation;

/// <summary>One training pair: a human-written date and its ISO form, with their token ids.</summary>
public sealed record DatePair(string Source, string Target, int[] SourceIds, int[] TargetIds);

/// <summary>
/// Generates human-written dates and their ISO 8601 form from a seeded random source (nothing is downloaded).
/// Years are 1950–2049 so that two-digit years are unambiguous (50–99 → 19xx, 00–49 → 20xx); slashed dates are US order
/// (month first), dotted ones European (day first), so every source string has exactly one correct translation.
/// </summary>
public static class Dates
{
    /// <summary>The characters a source may contain; id 0 is padding, id 1 anything unknown.</summary>
    public const string SourceAlphabet = " abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,./-";

    public const int Padding = 0, Unknown = 1;

    /// <summary>Source vocabulary: padding, unknown, then the alphabet.</summary>
    public static int SourceVocabulary => SourceAlphabet.Length + 2;

    /// <summary>The ISO output characters; the decoder's first input is <see cref="Start"/>.</summary>
    public const string TargetAlphabet = "0123456789-";

    public static int Start => TargetAlphabet.Length;

    /// <summary>"yyyy-MM-dd": every output has this many characters, so the decoder runs a fixed number of steps.</summary>
    public const int TargetLength = 10;

    /// <summary>Longer inputs are cut (the longest format, "Wednesday, September 23rd 2026", has 30).</summary>
    public const int MaxSourceLength = 40;

    private static readonly string[] s_formats =
    [
        "d MMMM yyyy",      // 3 May 1979
        "MM/dd/yy",         // 05/03/79
        "ddd, MMM d yyyy",  // Thu, May 3 1979
        "dddd, MMMM d# yyyy", // Thursday, May 3rd 1979 (# is the ordinal suffix)
        "MMMM d, yyyy",     // May 3, 1979
        "dd.MM.yyyy",       // 03.05.1979
        "d MMM yy",         // 3 May 79
        "M/d/yyyy",         // 5/3/1979
        "MMM d# yyyy",      // May 3rd 1979
        "yyyy/MM/dd",       // 1979/05/03
        "dddd d MMMM yyyy", // Thursday 3 May 1979
        "d.M.yy",           // 3.5.79
    ];

    private static readonly DateTime s_first = new(1950, 1, 1), s_last = new(2049, 12, 31);

    /// <summary>A random date written in a random format (sometimes all lower or upper case).</summary>
    public static DatePair Next(Random random)
    {
        int days = (int)(s_last - s_first).TotalDays;
        DateTime date = s_first.AddDays(random.Next(days + 1));
        string format = s_formats[random.Next(s_formats.Length)];
        string source = Write(date, format);
        double casing = random.NextDouble();
        if (casing < 0.15) source = source.ToLowerInvariant();
        else if (casing < 0.25) source = source.ToUpperInvariant();
        return Make(source, date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
    }

    /// <summary>Builds a pair from a source string and (for training) its ISO target.</summary>
    public static DatePair Make(string source, string target)
    {
        if (source.Length > MaxSourceLength) source = source[..MaxSourceLength];
        if (source.Length == 0) source = " ";
        var sourceIds = new int[source.Length];
        for (int i = 0; i < source.Length; i++)
        {
            int index = SourceAlphabet.IndexOf(source[i]);
            sourceIds[i] = index < 0 ? Unknown : index + 2;
        }
        var targetIds = new int[target.Length];
        for (int i = 0; i < target.Length; i++) targetIds[i] = TargetAlphabet.IndexOf(target[i]);
        return new DatePair(source, target, sourceIds, targetIds);
    }

    /// <summary>Turns decoder output ids back into text.</summary>
    public static string Decode(ReadOnlySpan<int> ids)
    {
        var chars = new char[ids.Length];
        for (int i = 0; i < ids.Length; i++) chars[i] = TargetAlphabet[ids[i]];
        return new string(chars);
    }

    /// <summary>
    /// <paramref name="count"/> distinct pairs from their own seed, none of whose sources is in <paramref name="exclude"/>;
    /// their sources are added to it, so the sets drawn one after another never share an input.
    /// </summary>
    public static List<DatePair> Distinct(int count, int seed, HashSet<string> exclude)
    {
        var random = new Random(seed);
        var pairs = new List<DatePair>(count);
        while (pairs.Count < count)
        {
            DatePair pair = Next(random);
            if (exclude.Add(pair.Source)) pairs.Add(pair);
        }
        return pairs;
    }

    private static string Write(DateTime date, string format)
    {
        string ordinal = (date.Day % 10, date.Day) switch
        {
            (_, 11 or 12 or 13) => "th",
            (1, _) => "st",
            (2, _) => "nd",
            (3, _) => "rd",
            _ => "th",
        };
        // "#" is not a .NET format character, so it is replaced after formatting ("d#" alone would be read as a custom format).
        return date.ToString(format.Replace("#", "'#'"), CultureInfo.InvariantCulture).Replace("#", ordinal);
    }
}
