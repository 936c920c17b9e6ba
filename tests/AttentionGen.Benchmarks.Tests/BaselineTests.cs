using System;
using System.Collections.Generic;
using System.Linq;
using AttentionGen.Benchmarks;
using Xunit;

namespace AttentionGen.Benchmarks.Tests;

/// <summary>
/// The hand-written baselines the benchmarks compare against: forward against a scalar double reference, backward
/// against central finite differences of that reference's Σ context (the loss the benchmarks' backward uses).
/// Shapes are small and odd so that TensorPrimitives' vector tails are exercised.
/// </summary>
public sealed class BaselineTests
{
    public static TheoryData<string> Shapes => new() { "additive", "additive-wide", "luong", "pooling", "sdpa", "sdpa-causal", "sdpa-causal-long", "local", "local-wide", "monotonic", "monotonic-wide", "mocha", "mocha-wide", "mocha-long-chunk", "local-concat", "local-concat-wide", "local-concat-step", "keyvalue", "keyvalue-wide", "structured", "structured-wide" };

    private static Workload Shape(string name) => name switch
    {
        "additive" => new("T", "additive", 2, 3, 4, 5, 6),
        "additive-wide" => new("T", "additive", 1, 2, 3, 19, 11), // D past one 16-lane vector, U not a multiple of 8
        "luong" => new("T", "luong", 2, 3, 5, 7, 7),
        "monotonic" => new("T", "monotonic", 2, 4, 5, 5, 6),
        "monotonic-wide" => new("T", "monotonic", 1, 3, 7, 19, 11),
        "mocha" => new("T", "monotonic", 2, 4, 5, 5, 6, Chunk: 2),
        "mocha-wide" => new("T", "monotonic", 1, 3, 7, 19, 11, Chunk: 3),
        "mocha-long-chunk" => new("T", "monotonic", 1, 3, 4, 5, 3, Chunk: 6), // w > Tk: every chunk reaches back to key 0
        "pooling" => new("T", "pooling", 3, 5, 0, 6, 4),
        "sdpa" => new("T", "sdpa", 2, 4, 4, 9, 0, Heads: 2),
        "sdpa-causal" => new("T", "sdpa", 1, 5, 5, 9, 0, Heads: 2, Causal: true),
        "sdpa-causal-long" => new("T", "sdpa", 1, 40, 40, 17, 0, Heads: 1, Causal: true),
        "local" => new("T", "local", 2, 4, 9, 7, 5, Window: 2),
        "local-wide" => new("T", "local", 1, 6, 13, 19, 11, Window: 3), // D past one 16-lane vector, windows clipped at the edges
        "local-concat" => new("T", "local-concat", 2, 4, 9, 7, 5, Window: 2),
        "local-concat-wide" => new("T", "local-concat", 1, 6, 13, 19, 11, Window: 3), // D past one 16-lane vector, windows clipped at the edges
        "local-concat-step" => new("T", "local-concat", 3, 1, 9, 7, 5, Window: 2), // W12's use: one query per call
        "keyvalue" => new("T", "keyvalue", 2, 5, 0, 6, 0, Window: 2),
        "keyvalue-wide" => new("T", "keyvalue", 1, 7, 0, 19, 0, Window: 3), // D past one 16-lane vector, T > L
        "structured" => new("T", "structured", 2, 5, 0, 6, 4, Hops: 3),
        "structured-wide" => new("T", "structured", 1, 7, 0, 19, 11, Hops: 2),
        _ => throw new ArgumentException($"unknown shape {name}", nameof(name)),
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_matches_the_scalar_double_reference(string shape)
    {
        var data = new WorkloadData(Shape(shape), seed: 7);
        IBaseline baseline = Baseline.For(data);
        baseline.Forward();
        double[] expected = ScalarReference.Context(data.Workload, ScalarReference.Inputs(data));
        Assert.Equal(expected.Length, baseline.Context.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - baseline.Context[i]) <= 1e-5 * (1 + Math.Abs(expected[i])),
                $"context[{i}]: expected {expected[i]:R}, baseline {baseline.Context[i]:R}");
        }
    }

    [Fact]
    public void A_second_forward_gives_the_same_context()
    {
        // The baselines reuse their buffers: nothing of the first call may leak into the second.
        var data = new WorkloadData(Shape("additive"), seed: 3);
        IBaseline baseline = Baseline.For(data);
        baseline.Forward();
        float[] first = baseline.Context.ToArray();
        baseline.Forward();
        Assert.Equal(first, baseline.Context);
    }

    [Theory]
    [InlineData("local-concat-step")]
    [InlineData("local-concat-wide")]
    public void Decoder_steps_from_keys_projected_once_match_the_scalar_reference_for_each_new_query(string shape)
    {
        var data = new WorkloadData(Shape(shape), seed: 5);
        var baseline = Assert.IsAssignableFrom<IDecoderStepBaseline>(Baseline.For(data));
        baseline.ProjectKeys();
        var random = new Random(13);
        for (int step = 0; step < 3; step++)
        {
            // A new decoder state at every step; the keys, and so their projection, stay.
            for (int i = 0; i < data.Query.Length; i++) data.Query[i] = (float)(random.NextDouble() * 2 - 1);
            baseline.Step();
            AssertContext(ScalarReference.Context(data.Workload, ScalarReference.Inputs(data)), baseline.Context);
        }
    }

    [Fact]
    public void MoChA_with_chunks_of_one_key_is_monotonic_attention()
    {
        // w = 1: every chunk is its own key, so β = α whatever the chunk energies (the paper's remark, and the docs').
        var data = new WorkloadData(new Workload("T", "monotonic", 2, 4, 6, 5, 3, Chunk: 1), seed: 9);
        IBaseline baseline = Baseline.For(data);
        baseline.Forward();
        Dictionary<string, double[]> inputs = ScalarReference.Inputs(data);
        AssertContext(ScalarReference.Context(data.Workload with { Chunk = 0 }, inputs), baseline.Context);
        // and w = 2 is not: the chunk energies then move weight to the key before each chunk's end.
        var two = new WorkloadData(data.Workload with { Chunk = 2 }, seed: 9);
        double[] chunked = ScalarReference.Context(two.Workload, ScalarReference.Inputs(two));
        double[] plain = ScalarReference.Context(two.Workload with { Chunk = 0 }, ScalarReference.Inputs(two));
        Assert.True(chunked.Zip(plain).Max(p => Math.Abs(p.First - p.Second)) > 1e-3);
    }

    [Fact]
    public void A_decoder_step_reads_the_key_projection_not_the_key_columns_of_the_weight()
    {
        var data = new WorkloadData(Shape("local-concat-step"), seed: 5);
        var baseline = (IDecoderStepBaseline)Baseline.For(data);
        double[] before = ScalarReference.Context(data.Workload, ScalarReference.Inputs(data));
        baseline.ProjectKeys();
        // Change W_a's key columns (the last D of each [U, 2D] row) after projecting: the step keeps the old projection.
        Workload w = data.Workload;
        for (int r = 0; r < w.Units; r++)
        {
            for (int c = w.Dim; c < 2 * w.Dim; c++) data.QueryWeight[r * 2 * w.Dim + c] *= -3;
        }
        baseline.Step();
        AssertContext(before, baseline.Context);
        double[] after = ScalarReference.Context(w, ScalarReference.Inputs(data));
        Assert.True(before.Zip(after).Max(p => Math.Abs(p.First - p.Second)) > 1e-3, "changing W_a's key columns should change the context");
        baseline.Forward(); // the whole forward projects again
        AssertContext(after, baseline.Context);
    }

    [Fact]
    public void The_baselines_with_a_decoder_step_are_the_ones_Baseline_says()
    {
        foreach (string shape in Shapes)
        {
            Workload w = Shape(shape);
            Assert.Equal(Baseline.HasDecoderStep(w), Baseline.For(new WorkloadData(w)) is IDecoderStepBaseline);
        }
    }

    private static void AssertContext(double[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * (1 + Math.Abs(expected[i])), $"context[{i}]: expected {expected[i]:R}, baseline {actual[i]:R}");
        }
    }

    [Theory]
    [InlineData("additive")]
    [InlineData("additive-wide")]
    [InlineData("luong")]
    [InlineData("pooling")]
    [InlineData("local")]
    [InlineData("local-wide")]
    [InlineData("monotonic")]
    [InlineData("monotonic-wide")]
    [InlineData("mocha")]
    [InlineData("mocha-wide")]
    [InlineData("mocha-long-chunk")]
    [InlineData("local-concat")]
    [InlineData("local-concat-wide")]
    [InlineData("keyvalue")]
    [InlineData("keyvalue-wide")]
    [InlineData("structured")]
    [InlineData("structured-wide")]
    [InlineData("sdpa")]
    [InlineData("sdpa-causal")]
    [InlineData("sdpa-causal-long")]
    public void Backward_matches_central_finite_differences(string shape)
    {
        var data = new WorkloadData(Shape(shape), seed: 11);
        IBaseline baseline = Baseline.For(data);
        Assert.True(baseline.HasBackward);
        baseline.Forward();
        baseline.Backward();
        baseline.Forward(); // a second step must overwrite, not accumulate
        baseline.Backward();
        Dictionary<string, double[]> inputs = ScalarReference.Inputs(data);
        Assert.Equal(inputs.Keys.OrderBy(k => k), baseline.Gradients.Keys.OrderBy(k => k));
        const double step = 1e-5;
        foreach (var (name, values) in inputs)
        {
            float[] gradient = baseline.Gradients[name];
            Assert.Equal(values.Length, gradient.Length);
            for (int i = 0; i < values.Length; i++)
            {
                double saved = values[i];
                values[i] = saved + step;
                double plus = ScalarReference.Context(data.Workload, inputs).Sum();
                values[i] = saved - step;
                double minus = ScalarReference.Context(data.Workload, inputs).Sum();
                values[i] = saved;
                double numeric = (plus - minus) / (2 * step);
                Assert.True(Math.Abs(numeric - gradient[i]) <= 2e-4 * (1 + Math.Abs(numeric)),
                    $"∂{name}[{i}]: finite differences {numeric:R}, baseline {gradient[i]:R}");
            }
        }
    }
}

/// <summary>The workloads' shapes and nominal FLOP counts, worked out by hand from workloads.md.</summary>
public sealed class WorkloadTests
{
    [Theory]
    // additive: 2·B·(Tq+Tk)·D·U + 4·B·Tq·Tk·U + 2·B·Tq·Tk·D
    [InlineData("W0", 2.0 * 17 * 32 * 32 + 4.0 * 16 * 32 + 2.0 * 16 * 32)]
    [InlineData("W1", 2.0 * 51 * 256 * 256 + 4.0 * 50 * 256 + 2.0 * 50 * 256)]
    [InlineData("W2", 2.0 * 32 * 50 * 128 * 128 + 4.0 * 32 * 600 * 128 + 2.0 * 32 * 600 * 128)]
    // Luong general: 2·B·Tq·D² + 4·B·Tq·Tk·D
    [InlineData("W3", 2.0 * 32 * 20 * 65536 + 4.0 * 32 * 20 * 30 * 256)]
    // pooling: 2·B·T·D·U + 2·B·T·U + 2·B·T·D
    [InlineData("W4", 2.0 * 6400 * 10000 + 2.0 * 6400 * 100 + 2.0 * 6400 * 100)]
    // scaled dot-product: 4·B·H·T²·d, halved when causal (W5)
    [InlineData("W5", 4.0 * 8 * 1024 * 1024 * 64 / 2)]
    [InlineData("W6", 4.0 * 8 * 64 * 64 * 64)]
    // local-p, general: 2·B·Tq·D² + 2·B·Tq·D·U + 2·B·Tq·U + 4·B·Tq·(2W+1)·D
    [InlineData("W7", 2.0 * 32 * 64 * 65536 + 2.0 * 32 * 64 * 65536 + 2.0 * 32 * 64 * 256 + 4.0 * 32 * 64 * 11 * 256)]
    // monotonic: the additive formula at W2's shape
    [InlineData("W8", 2.0 * 32 * 50 * 128 * 128 + 4.0 * 32 * 600 * 128 + 2.0 * 32 * 600 * 128)]
    // MoChA: the additive formula plus the chunk energy's 2·B·(Tq+Tk)·D·U + 4·B·Tq·Tk·U
    [InlineData("W13", 2 * (2.0 * 8 * 160 * 128 * 128 + 4.0 * 8 * 40 * 120 * 128) + 2.0 * 8 * 40 * 120 * 128)]
    // key-value: 8·B·T·D² + 6·B·T·L·D
    [InlineData("W9", 8.0 * 32 * 50 * 128 * 128 + 6.0 * 32 * 50 * 5 * 128)]
    // structured: 2·B·T·D·U + 2·B·T·U·r + 2·B·r·T·D
    [InlineData("W10", 2.0 * 32 * 50 * 256 * 128 + 2.0 * 32 * 50 * 128 * 4 + 2.0 * 32 * 4 * 50 * 256)]
    // local-p, concat: 2·B·Tq·D·U + 2·B·Tq·U (predictor) + 2·B·(Tq+Tk)·D·U (QP, KP) + B·Tq·(2W+1)·(4·U + 2·D)
    [InlineData("W11", 2.0 * 32 * 64 * 256 * 256 + 2.0 * 32 * 64 * 256 + 2.0 * 32 * 128 * 256 * 256 + 32.0 * 64 * 11 * (4 * 256 + 2 * 256))]
    public void Nominal_forward_flops_follow_workloads_md(string id, double expected)
    {
        Workload w = Workload.Get(id);
        Assert.Equal(expected, w.ForwardFlops);
        Assert.Equal(3 * expected, w.TrainingFlops);
    }

    [Theory]
    // the additive formula without the keys' projection: 2·B·Tq·D·U + 4·B·Tq·Tk·U + 2·B·Tq·Tk·D
    [InlineData("W0", 2.0 * 32 * 32 + 4.0 * 16 * 32 + 2.0 * 16 * 32)]
    [InlineData("W1", 2.0 * 256 * 256 + 4.0 * 50 * 256 + 2.0 * 50 * 256)]
    // local-p concat without KP: 2·B·Tq·D·U + 2·B·Tq·U (predictor) + 2·B·Tq·D·U (QP) + B·Tq·(2W+1)·(4·U + 2·D)
    [InlineData("W12", 2.0 * 32 * 256 * 256 + 2.0 * 32 * 256 + 2.0 * 32 * 256 * 256 + 32.0 * 11 * (4 * 256 + 2 * 256))]
    public void Decoder_step_flops_leave_out_the_key_projection(string id, double expected)
    {
        Assert.Equal(expected, Workload.Get(id).StepFlops);
    }

    [Fact]
    public void W12_is_W11s_layer_one_query_at_a_time()
    {
        Workload w11 = Workload.Get("W11"), w12 = Workload.Get("W12");
        Assert.Equal(w11 with { Id = "W12", QueryLength = 1 }, w12);
        // Its forward re-projects the 64 keys: 2·B·Tk·D·U more than the step.
        Assert.Equal(2.0 * 32 * 64 * 256 * 256, w12.ForwardFlops - w12.StepFlops);
    }

    [Fact]
    public void Only_additive_and_local_concat_workloads_have_a_decoder_step()
    {
        Assert.Throws<InvalidOperationException>(() => Workload.Get("W3").StepFlops);
        Assert.Throws<InvalidOperationException>(() => Workload.Get("W7").StepFlops);
    }

    [Fact]
    public void Shapes_are_the_ones_of_workloads_md()
    {
        Workload w5 = Workload.Get("W5");
        Assert.Equal((1, 8, 1024, 1024, 64, true), (w5.Batch, w5.Heads, w5.QueryLength, w5.KeyLength, w5.Dim, w5.Causal));
        var data = new WorkloadData(w5);
        Assert.Equal(8 * 1024 * 64, data.Query.Length);
        Assert.Equal(8 * 1024 * 64, data.Values.Length);
        var w4 = new WorkloadData(Workload.Get("W4"));
        Assert.Equal(64 * 100 * 100, w4.Query.Length);
        Assert.Equal(64 * 100, w4.DContext.Length);
        Assert.All(w4.DContext, g => Assert.Equal(1f, g));
    }

    [Fact]
    public void Inputs_are_seeded()
    {
        Assert.Equal(new WorkloadData(Workload.W2).Keys, new WorkloadData(Workload.W2).Keys);
        Assert.NotEqual(new WorkloadData(Workload.W2, seed: 1).Keys, new WorkloadData(Workload.W2, seed: 2).Keys);
    }

    [Fact]
    public void An_unknown_workload_is_refused_by_name()
    {
        var error = Assert.Throws<ArgumentException>(() => Workload.Get("W14"));
        Assert.Equal("id", error.ParamName);
        Assert.Contains("W14", error.Message);
    }
}
