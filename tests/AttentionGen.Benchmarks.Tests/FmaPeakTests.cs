using AttentionGen.Benchmarks;
using Xunit;

namespace AttentionGen.Benchmarks.Tests;

/// <summary>When the suite flags a run as disturbed: the peaks it measured at start and after the run disagree with an idle machine.</summary>
public sealed class FmaPeakTests
{
    private static FmaPeak Peak(double one, double two) => new(one, one, one, two);

    [Fact]
    public void An_idle_run_is_not_flagged()
    {
        Assert.Null(FmaPeak.Disturbance(Peak(114, 226), Peak(112, 221)));
    }

    [Fact]
    public void A_lost_second_core_at_either_end_is_flagged()
    {
        string? atStart = FmaPeak.Disturbance(Peak(114, 150), Peak(114, 226));
        Assert.NotNull(atStart);
        Assert.Contains("1.32× one thread's peak at start", atStart);
        string? atEnd = FmaPeak.Disturbance(Peak(114, 226), Peak(114, 179));
        Assert.NotNull(atEnd);
        Assert.Contains("after the run", atEnd);
    }

    [Fact]
    public void A_one_thread_peak_that_moves_more_than_a_tenth_is_flagged()
    {
        Assert.Null(FmaPeak.Disturbance(Peak(114, 226), Peak(104, 205)));
        string? moved = FmaPeak.Disturbance(Peak(114, 226), Peak(100, 198));
        Assert.NotNull(moved);
        Assert.Contains("114.0 → 100.0", moved);
    }
}
