using System;
using System.Linq;
using System.Threading;
using Xunit;

namespace AttentionGen.Runtime.Tests;

/// <summary>Parameters, initialisers, masks, shape checks and the parallel driver.</summary>
public sealed class RuntimeTypesTests
{
    [Fact]
    public void Glorot_uniform_is_seeded_and_bounded()
    {
        var first = new float[1000];
        var second = new float[1000];
        Initializers.GlorotUniform<float>(first, 30, 70, new Random(4));
        Initializers.GlorotUniform<float>(second, 30, 70, new Random(4));
        Assert.Equal(first, second);
        double limit = Math.Sqrt(6.0 / 100);
        Assert.All(first, v => Assert.InRange(v, -limit, limit));
        Assert.True(first.Max() > 0.9 * limit && first.Min() < -0.9 * limit);
        Assert.InRange(first.Average(v => (double)v), -0.02, 0.02);
    }

    // xavier_normal_: N(0, 2 / (fanIn + fanOut)), seeded. 20 000 draws put the sample's σ within 2 % and its mean within 0.02 σ
    // of the target (about 2.8 standard errors each).
    [Fact]
    public void Glorot_normal_is_seeded_and_has_the_Glorot_variance()
    {
        var first = new double[20000];
        var second = new double[20000];
        Initializers.GlorotNormal<double>(first, 64, 64, new Random(5));
        Initializers.GlorotNormal<double>(second, 64, 64, new Random(5));
        Assert.Equal(first, second);
        double sigma = Math.Sqrt(2.0 / 128), mean = first.Average(), deviation = Math.Sqrt(first.Average(v => (v - mean) * (v - mean)));
        Assert.InRange(deviation / sigma, 0.98, 1.02);
        Assert.InRange(mean / sigma, -0.02, 0.02);
        // Tails as a normal's: about 4.6 % beyond 2σ (a uniform of the same σ has none beyond 1.73σ).
        Assert.InRange(first.Count(v => Math.Abs(v) > 2 * sigma) / 20000.0, 0.040, 0.052);
        Assert.All(first, v => Assert.True(double.IsFinite(v)));
    }

    [Fact]
    public void Parameter_rejects_bad_shapes_and_clears_its_gradient()
    {
        Assert.Throws<ArgumentException>(() => new Parameter<float>("w", 3, 0));
        var parameter = new Parameter<double>("w", 2, 3);
        Assert.Equal(6, parameter.Length);
        Assert.Equal(new[] { 2, 3 }, parameter.Shape);
        parameter.Gradient[4] = 1;
        parameter.ZeroGradient();
        Assert.All(parameter.Gradient, g => Assert.Equal(0, g));
        Assert.Equal("w [2, 3]", parameter.ToString());
    }

    [Fact]
    public void Causal_mask_aligns_the_diagonal_to_the_end()
    {
        var mask = new AttentionMask { Causal = true };
        // Tq = Tk = 4: the usual lower triangle.
        Assert.True(mask.Allows(0, 2, 2, 4, 4));
        Assert.False(mask.Allows(0, 2, 3, 4, 4));
        // Tq = 2 new queries after a cache of 3 keys (Tk = 5): query 0 sees keys 0–3, query 1 sees 0–4.
        Assert.True(mask.Allows(0, 0, 3, 2, 5));
        Assert.False(mask.Allows(0, 0, 4, 2, 5));
        Assert.True(mask.Allows(0, 1, 4, 2, 5));
    }

    [Fact]
    public void Masks_combine_with_and_and_report_wrong_lengths()
    {
        bool[] padding = { true, false, true, true };          // [B=2, Tk=2]
        bool[] perQuery = { true, true, false, true, true, true, true, true }; // [B=2, Tq=2, Tk=2]
        var mask = new AttentionMask { KeyPadding = padding, PerQuery = perQuery };
        Assert.True(mask.Allows(0, 0, 0, 2, 2));
        Assert.False(mask.Allows(0, 0, 1, 2, 2));  // padded
        Assert.False(mask.Allows(0, 1, 0, 2, 2));  // per-query
        Assert.True(mask.Allows(1, 1, 1, 2, 2));
        var error = Assert.Throws<ArgumentException>(() => new AttentionMask { KeyPadding = padding }.Validate(2, 2, 3));
        Assert.Equal("mask.KeyPadding", error.ParamName);
        Assert.Contains("6", error.Message);
        Assert.Contains("4", error.Message);
    }

    [Fact]
    public void Thread_scratch_is_taken_once_at_a_time_and_poisoned_in_the_tests()
    {
        Assert.True(ThreadScratch<float>.TryTake(40, out Span<float> taken));
        try
        {
            Assert.Equal(40, taken.Length);
            // The test projects set AttentionGen.PoisonScratch: every take starts as NaN bits, whatever the last call left.
            foreach (float x in taken) Assert.True(float.IsNaN(x));
            taken.Fill(1);
            // Taken: a nested call on this thread gets nothing and uses the stack or the pool.
            Assert.False(ThreadScratch<float>.TryTake(8, out Span<float> nested));
            Assert.True(nested.IsEmpty);
            // Another thread has a buffer of its own.
            bool otherTook = false;
            var other = new System.Threading.Thread(() =>
            {
                otherTook = ThreadScratch<float>.TryTake(8, out _);
                if (otherTook) ThreadScratch<float>.Release();
            });
            other.Start();
            other.Join();
            Assert.True(otherTook);
        }
        finally
        {
            ThreadScratch<float>.Release();
        }
        Assert.True(ThreadScratch<float>.TryTake(40, out Span<float> again));
        ThreadScratch<float>.Release();
        Assert.True(float.IsNaN(again[0]));
        Assert.False(ThreadScratch<float>.TryTake(ThreadScratch<float>.Capacity + 1, out _));
        Assert.Equal(4096, ThreadScratch<float>.Capacity);
        Assert.Equal(2048, ThreadScratch<double>.Capacity);
    }

    [Fact]
    public void Shape_errors_name_the_argument_the_expected_and_the_actual_size()
    {
        var error = Assert.Throws<ArgumentException>(() => Shapes.RequireLength(10, 12, "query", $"[B={2}, Tq={3}, Dim={2}]"));
        Assert.Equal("query", error.ParamName);
        Assert.Contains("12", error.Message);
        Assert.Contains("10", error.Message);
        Assert.Contains("[B=2, Tq=3, Dim=2]", error.Message);
        Shapes.RequireOptionalLength(0, 12, "weights", $"[{1}]");
        var optional = Assert.Throws<ArgumentException>(() => Shapes.RequireOptionalLength(5, 12, "weights", $"[T={1}]"));
        // The shape text of one failure does not leak into the next (it is built in a per-thread buffer).
        Assert.EndsWith("for shape [T=1], but has 5. (Parameter 'weights')", optional.Message);
        Shapes.RequireLength(12, 12, "query", $"[B={4}, Tq={3}]");
        var next = Assert.Throws<ArgumentException>(() => Shapes.RequireLength(1, 2, "keys", $"[Tk={2}]"));
        Assert.Equal("'keys' must have 2 elements for shape [Tk=2], but has 1. (Parameter 'keys')", next.Message);
    }

    [Fact]
    public void Parallel_driver_runs_every_chunk_once_and_sees_the_spans()
    {
        float[] input = Enumerable.Range(0, 64).Select(i => (float)i).ToArray();
        var output = new float[64];
        int calls = 0;
        BatchParallel.For<float>(8, 2, new object(), (int chunk, object _, in ChunkSpans<float> s) =>
        {
            Interlocked.Increment(ref calls);
            for (int i = chunk * 8; i < chunk * 8 + 8; i++) s.W0[i] = s.R0[i] * 2;
            Assert.Equal(3, s.QueryLength);
        }, (1, 3, 4), r0: input, w0: output);
        Assert.Equal(8, calls);
        Assert.Equal(input.Select(x => x * 2), output);
    }
}
