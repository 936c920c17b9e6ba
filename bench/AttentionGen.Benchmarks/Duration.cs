namespace AttentionGen.Benchmarks;

/// <summary>Times in the tables: nanoseconds as ns, µs or ms with two decimals.</summary>
public static class Duration
{
    public static string Format(double ns) => ns >= 1e6 ? $"{ns / 1e6:F2} ms" : ns >= 1e3 ? $"{ns / 1e3:F2} µs" : $"{ns:F0} ns";
}
