using System;
using System.Linq;
using AttentionGen.Layers.Tests.Structured;
using Xunit;

namespace AttentionGen.Layers.Tests.KeyValue;

/// <summary>Wrong lengths for the sequence-level kinds: ArgumentException naming the argument, outputs untouched.</summary>
public sealed class SequenceBadInputTests
{
    [Fact]
    public void Key_value_attention_rejects_wrong_lengths_before_writing()
    {
        var layer = new KeyValueF9W3(seed: 1);
        var output = Enumerable.Repeat(5f, 2 * 4 * 9).ToArray();
        var error = Assert.Throws<ArgumentException>(() => layer.Forward(2, 4, new float[2 * 4 * 18 - 1], output));
        Assert.Equal("input", error.ParamName);
        Assert.Contains("144", error.Message);
        Assert.Contains("143", error.Message);
        Assert.Equal("weights", Assert.Throws<ArgumentException>(() => layer.Forward(2, 4, new float[2 * 4 * 18], output, new float[7])).ParamName);
        Assert.Equal("length", Assert.Throws<ArgumentException>(() => layer.Forward(2, 0, default, output)).ParamName);
        Assert.All(output, x => Assert.Equal(5f, x));
        var state = new KeyValueF9W3.WindowState();
        state.Reset(2);
        Assert.Equal("input", Assert.Throws<ArgumentException>(() => layer.Step(state, new float[17], new float[18])).ParamName);
        Assert.Equal(0, state.Steps);
    }

    [Fact]
    public void Structured_self_attention_rejects_wrong_lengths_before_writing()
    {
        var layer = new StructuredF37(seed: 1);
        var output = Enumerable.Repeat(5f, 2 * 4 * 37).ToArray();
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, new float[2 * 3 * 37], output.AsSpan(1), default, default)).ParamName);
        Assert.Equal("padding", Assert.Throws<ArgumentException>(() => layer.Forward(2, 3, new float[2 * 3 * 37], output, default, new bool[5])).ParamName);
        Assert.Equal("tape", Assert.Throws<ArgumentException>(() => layer.Backward(new StructuredF37.Tape(), new float[37], new float[4 * 37], default, default)).ParamName);
        Assert.All(output, x => Assert.Equal(5f, x));
    }
}
