using System;
using System.Collections.Generic;
using System.Linq;

namespace AttentionGen.Benchmarks;

/// <summary>One comparison's result: how many times faster the second side is than the first, per round.</summary>
public sealed record PairedComparison(string Workload, string Label, string Pass, double[] Ratios, double FirstPerCall, double SecondPerCall)
{
    public double Median => PairedTable.Quantile(Ratios, 0.5);
}

/// <summary>The table of <see cref="Paired"/>'s comparisons, and the quantiles it gives.</summary>
public static class PairedTable
{
    public static string Format(IReadOnlyList<PairedComparison> results, int rounds, double batchMilliseconds)
    {
        var lines = new List<string>
        {
            $"Paired ratios, measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC: {rounds} rounds per comparison, each two batches of about {batchMilliseconds:F0} ms back to back (one per side, "
                + "the order alternating); the ratio is the first side's time per call over the second's, so above 1 the generated layer (or two threads) is faster.",
            "",
            "| workload | pass | comparison | ratio (median of rounds) | middle half of rounds | first side per call | second side per call |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        };
        foreach (PairedComparison c in results)
        {
            lines.Add($"| {c.Workload} | {c.Pass} | {c.Label} | {c.Median:F2}× | {Quantile(c.Ratios, 0.25):F2}–{Quantile(c.Ratios, 0.75):F2}× | {Duration.Format(c.FirstPerCall)} | {Duration.Format(c.SecondPerCall)} |");
        }
        return string.Join(Environment.NewLine, lines);
    }

    // Linear interpolation between the sorted values around q·(n − 1).
    public static double Quantile(IReadOnlyList<double> values, double q)
    {
        double[] sorted = values.OrderBy(v => v).ToArray();
        if (sorted.Length == 0) return double.NaN;
        double position = q * (sorted.Length - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
    }
}
