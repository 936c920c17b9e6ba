using System;
using System.Linq;
using System.Threading;
using AttentionGen.Benchmarks;
using Xunit;

namespace AttentionGen.Benchmarks.Tests;

/// <summary>When the suite flags a run as disturbed: the peaks it measured at start and after the run disagree with an idle machine.</summary>
public sealed class FmaPeakTests
{
    private static FmaPeak Peak(double one, double two) => new(one, one, one, two);

    [Fact]
    public void The_pinned_vCPUs_peak_is_the_better_of_its_two_measurements()
    {
        var start = new[] { new CpuPeak(0, 150), new CpuPeak(1, 210) };
        var after = new[] { new CpuPeak(0, 220), new CpuPeak(1, 205) };
        Assert.Equal(210, PinChoice.PeakOf(1, start, after));
        Assert.Equal(220, PinChoice.PeakOf(0, start, after));
        Assert.Equal(210, PinChoice.PeakOf(1, start, null)); // the peaks after the run are not measured when nothing was pinned
        Assert.Null(PinChoice.PeakOf(2, start, after));
        Assert.Null(PinChoice.PeakOf(0, null, null));
    }

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

    private static CpuPeak[] Peaks(params double[] peaks) => peaks.Select((p, cpu) => new CpuPeak(cpu, p)).ToArray();

    [Fact]
    public void One_thread_benchmarks_go_to_the_faster_vcpu_whichever_it_is()
    {
        PinChoice second = PinChoice.Choose(Peaks(150, 210), pin: true, failure: null);
        Assert.Equal(1, second.Cpu);
        Assert.Contains("vCPU 1", second.Description);
        Assert.Contains("vCPU 0 29 % slower", second.Description);
        Assert.Equal(0, PinChoice.Choose(Peaks(210, 150), pin: true, failure: null).Cpu);
        // Not the first or the last of more: the highest.
        Assert.Equal(2, PinChoice.Choose(Peaks(100, 120, 130, 90), pin: true, failure: null).Cpu);
    }

    [Fact]
    public void A_tie_goes_to_the_lower_vcpu()
    {
        Assert.Equal(0, PinChoice.Choose(Peaks(200, 200), pin: true, failure: null).Cpu);
        Assert.Equal(3, PinChoice.Choose(new[] { new CpuPeak(5, 200), new CpuPeak(3, 200) }, pin: true, failure: null).Cpu);
    }

    [Fact]
    public void No_pinning_when_asked_not_to_on_one_vcpu_or_when_affinity_failed()
    {
        PinChoice off = PinChoice.Choose(Peaks(150, 210), pin: false, failure: null);
        Assert.Null(off.Cpu);
        Assert.Contains("--no-pin", off.Description);
        PinChoice single = PinChoice.Choose(Peaks(210), pin: true, failure: null);
        Assert.Null(single.Cpu);
        Assert.Contains("1 vCPU only", single.Description);
        PinChoice failed = PinChoice.Choose(null, pin: true, failure: "sched_setaffinity failed (errno 22)");
        Assert.Null(failed.Cpu);
        Assert.Contains("errno 22", failed.Description);
        Assert.Null(PinChoice.Choose(Peaks(), pin: true, failure: null).Cpu);
    }

    [Fact]
    public void A_measurement_that_is_not_a_positive_number_means_no_pinning()
    {
        Assert.Null(PinChoice.Choose(Peaks(210, double.NaN), pin: true, failure: null).Cpu);
        Assert.Null(PinChoice.Choose(Peaks(0, 150), pin: true, failure: null).Cpu);
        Assert.Null(PinChoice.Choose(Peaks(double.PositiveInfinity, 150), pin: true, failure: null).Cpu);
    }

    [Fact]
    public void A_pinned_vcpu_that_became_the_slower_one_is_reported_after_the_run()
    {
        PinChoice choice = PinChoice.Choose(Peaks(150, 210), pin: true, failure: null);
        Assert.Null(choice.Drift(Peaks(150, 205)));   // still the faster
        Assert.Null(choice.Drift(Peaks(200, 185)));   // slower, but within a tenth
        string? swapped = choice.Drift(Peaks(210, 150));
        Assert.NotNull(swapped);
        Assert.Contains("vCPU 1 was 29 % slower than vCPU 0", swapped);
        Assert.Null(PinChoice.Choose(Peaks(150, 210), pin: false, failure: null).Drift(Peaks(210, 150))); // not pinned: nothing to report
    }

    private static CpuStepTime[] Steps(params double[] milliseconds) => milliseconds.Select((m, cpu) => new CpuStepTime(cpu, m)).ToArray();

    [Fact]
    public void With_training_step_times_the_vcpu_with_the_shorter_step_wins_whatever_the_fma_peaks_say()
    {
        // vCPU 1 has the higher FMA peak but the slower step: the step decides.
        PinChoice choice = PinChoice.Choose(Peaks(215, 220), pin: true, failure: null, Steps(1.60, 1.90));
        Assert.Equal(0, choice.Cpu);
        Assert.Contains("training step (vCPU 1 19 % slower)", choice.Description);
        Assert.Equal(1, PinChoice.Choose(Peaks(220, 215), pin: true, failure: null, Steps(1.90, 1.60)).Cpu);
        Assert.Equal(0, PinChoice.Choose(Peaks(200, 220), pin: true, failure: null, Steps(1.70, 1.70)).Cpu); // a tie: the lower vCPU
        // --no-pin and failed peaks still mean no pinning.
        Assert.Null(PinChoice.Choose(Peaks(215, 220), pin: false, failure: null, Steps(1.60, 1.90)).Cpu);
        Assert.Null(PinChoice.Choose(null, pin: true, failure: "sched_setaffinity failed", Steps(1.60, 1.90)).Cpu);
    }

    [Fact]
    public void Step_times_that_are_missing_or_not_positive_fall_back_to_the_fma_peaks()
    {
        Assert.Equal(1, PinChoice.Choose(Peaks(150, 210), pin: true, failure: null, Steps(1.60, double.NaN)).Cpu);
        Assert.Equal(1, PinChoice.Choose(Peaks(150, 210), pin: true, failure: null, Steps(0, 1.90)).Cpu);
        Assert.Equal(1, PinChoice.Choose(Peaks(150, 210), pin: true, failure: null, Steps(1.60)).Cpu); // vCPU 1 not timed
        PinChoice byPeak = PinChoice.Choose(Peaks(150, 210), pin: true, failure: null, steps: null);
        Assert.Equal(1, byPeak.Cpu);
        Assert.DoesNotContain("training step", byPeak.Description);
        Assert.Equal("", PinChoice.Format((CpuStepTime[]?)null));
        Assert.Equal("training step (W3, 1 thread): vCPU 0 1.62, vCPU 1 1.93 ms", PinChoice.Format(Steps(1.62, 1.93)));
    }

    [Fact]
    public void A_pinned_vcpu_whose_step_became_a_tenth_slower_is_reported_after_the_run()
    {
        PinChoice choice = PinChoice.Choose(Peaks(215, 220), pin: true, failure: null, Steps(1.60, 1.90));
        Assert.Null(choice.StepDrift(Steps(1.62, 1.95)));  // still the faster
        Assert.Null(choice.StepDrift(Steps(1.70, 1.60)));  // slower, by less than a tenth
        string? swapped = choice.StepDrift(Steps(1.90, 1.60));
        Assert.NotNull(swapped);
        Assert.Contains("pinned vCPU 0 took 19 % longer than vCPU 1", swapped);
        Assert.Null(choice.StepDrift(null));
        Assert.Null(PinChoice.Choose(Peaks(215, 220), pin: false, failure: null, Steps(1.60, 1.90)).StepDrift(Steps(1.90, 1.60)));
    }

    [Fact]
    public void Each_vcpus_measurement_runs_pinned_to_it_and_keeps_the_median_of_its_rounds()
    {
        int[]? cpus = CpuAffinity.AllowedCpus(out string? failure);
        if (cpus is null)
        {
            Assert.False(OperatingSystem.IsLinux(), failure);
            return;
        }
        int calls = 0;
        // Each call reports the one vCPU its thread may run on, plus an offset by round whose median over the 3 rounds is 1.
        double[] offsets = { 0, 5, 1 };
        var medians = CpuAffinity.MedianOnEachCpu(cpus, 3, () =>
        {
            int[] allowed = CpuAffinity.AllowedCpus(out _)!;
            if (allowed.Length != 1) return double.NaN; // not pinned: fails the medians below (an Assert here would throw on another thread)
            int round = (Interlocked.Increment(ref calls) - 1) / cpus.Length;
            return allowed[0] * 100 + offsets[round];
        }, out failure);
        Assert.Null(failure);
        Assert.NotNull(medians);
        Assert.Equal(3 * cpus.Length, calls);
        Assert.Equal(cpus, medians!.Select(m => m.Cpu));
        Assert.All(medians!, m => Assert.Equal(m.Cpu * 100 + 1, m.Median));
    }

    [Fact]
    public void A_pinned_thread_runs_on_its_vcpu_only_and_gets_the_others_back()
    {
        // On a thread of its own, so that the test runner's threads keep their affinity whatever happens.
        int[]? before = null, pinned = null, after = null;
        string? failure = null;
        bool pinOk = false, unpinOk = false;
        var thread = new System.Threading.Thread(() =>
        {
            before = CpuAffinity.AllowedCpus(out failure);
            if (before is null) return;
            pinOk = CpuAffinity.TryPinCurrentThread(before[^1], out failure);
            pinned = CpuAffinity.AllowedCpus(out _);
            unpinOk = CpuAffinity.TryUnpinCurrentThread(out failure);
            after = CpuAffinity.AllowedCpus(out _);
        });
        thread.Start();
        thread.Join();
        if (!OperatingSystem.IsLinux())
        {
            Assert.Null(before);
            Assert.Contains("Linux", failure);
            return;
        }
        Assert.NotNull(before);
        Assert.NotEmpty(before);
        Assert.Equal(before.Order(), before);
        Assert.True(pinOk, failure);
        Assert.Equal(new[] { before[^1] }, pinned);
        Assert.True(unpinOk, failure);
        Assert.Equal(before, after);
        Assert.False(CpuAffinity.TryPinCurrentThread(-1, out string? bad));
        Assert.Contains("no vCPU -1", bad);
    }
}
