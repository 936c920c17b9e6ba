using AttentionGen.Benchmarks;
using Xunit;

namespace AttentionGen.Benchmarks.Tests;

public class PairedTests
{
    [Fact]
    public void Quantiles_interpolate_between_the_sorted_rounds()
    {
        double[] rounds = { 4, 1, 3, 2 }; // unsorted, as the rounds come
        Assert.Equal(2.5, PairedTable.Quantile(rounds, 0.5), 12);
        Assert.Equal(1.75, PairedTable.Quantile(rounds, 0.25), 12);
        Assert.Equal(3.25, PairedTable.Quantile(rounds, 0.75), 12);
        Assert.Equal(1, PairedTable.Quantile(rounds, 0), 12);
        Assert.Equal(4, PairedTable.Quantile(rounds, 1), 12);
        Assert.Equal(7, PairedTable.Quantile(new double[] { 7 }, 0.5), 12);
        Assert.True(double.IsNaN(PairedTable.Quantile(System.Array.Empty<double>(), 0.5)));
    }

    [Fact]
    public void The_table_gives_the_median_ratio_its_middle_half_and_both_sides_times()
    {
        // Rounds whose first side took 3, 2, 9, 2.2 times the second: the median is 2.6 whatever the outlier.
        var comparison = new PairedComparison("W3", "1 thread: TorchSharp / generated", "ForwardBackward", new[] { 3.0, 2.0, 9.0, 2.2 }, 5.1e6, 1.7e6);
        Assert.Equal(2.6, comparison.Median, 12);
        string table = PairedTable.Format(new[] { comparison }, rounds: 4, batchMilliseconds: 60);
        Assert.Contains("| W3 | ForwardBackward | 1 thread: TorchSharp / generated | 2.60× | 2.15–4.50× | 5.10 ms | 1.70 ms |", table);
        Assert.Contains("4 rounds per comparison", table);
    }
}
