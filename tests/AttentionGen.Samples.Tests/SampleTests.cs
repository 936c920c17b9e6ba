extern alias classifier;

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using AttentionGen;
using AttentionGen.Samples;
using DateTranslation;
using Xunit;
using Corpus = classifier::DocumentClassifier.Corpus;
using Document = classifier::DocumentClassifier.Document;
using HierarchicalClassifier = classifier::DocumentClassifier.HierarchicalClassifier;

namespace AttentionGen.Samples.Tests;

/// <summary>
/// The training samples' hand-written layers (embedding, GRU, dense, cross-entropy) and their wiring around the generated
/// attention layers: gradients against finite differences, a few steps of training that must lower the loss, padding that
/// must not change a result, and a safetensors round trip.
/// </summary>
public class SampleTests
{
    [Fact]
    public void TranslatorGradientsMatchFiniteDifferences()
    {
        var model = new Translator(seed: 5);
        // Different lengths, so the padded GRU steps and the attention's key-padding mask are exercised too.
        List<DatePair> batch = [Dates.Make("3 May 1979", "1979-05-03"), Dates.Make("11/30/26", "2026-11-30"), Dates.Make("Thursday, May 3rd 1979", "1979-05-03")];
        var lines = new List<string>();
        double worst = GradientCheck.Run(model.Parameters, () => model.LossAndGradients(batch), lines.Add);
        Assert.True(worst < 2e-2, string.Join(Environment.NewLine, lines));
    }

    [Fact]
    public void ClassifierGradientsMatchFiniteDifferences()
    {
        var model = new HierarchicalClassifier(seed: 5);
        List<Document> batch = Corpus.Many(4, seed: 11);
        var lines = new List<string>();
        double worst = GradientCheck.Run(model.Parameters, () => model.LossAndGradients(batch), lines.Add);
        Assert.True(worst < 2e-2, string.Join(Environment.NewLine, lines));
    }

    [Fact]
    public void TranslatorLossFalls()
    {
        var model = new Translator(seed: 1);
        var adam = new Adam<float>(model.Parameters, learningRate: 4e-3);
        var random = new Random(2);
        List<double> losses = [];
        for (int step = 0; step < 60; step++)
        {
            List<DatePair> batch = Enumerable.Range(0, 16).Select(_ => Dates.Next(random)).ToList();
            adam.ZeroGradients();
            losses.Add(model.LossAndGradients(batch));
            adam.Step();
        }
        Assert.True(losses.TakeLast(10).Average() < 0.8 * losses.Take(10).Average(), string.Join(", ", losses.Select(l => l.ToString("0.000"))));
    }

    [Fact]
    public void ClassifierLossFalls()
    {
        var model = new HierarchicalClassifier(seed: 1);
        var adam = new Adam<float>(model.Parameters, learningRate: 5e-3);
        var random = new Random(2);
        List<double> losses = [];
        for (int step = 0; step < 150; step++) // the lead-sentence task has a plateau of ~80 steps first
        {
            List<Document> batch = Enumerable.Range(0, 32).Select(_ => Corpus.Next(random)).ToList();
            adam.ZeroGradients();
            losses.Add(model.LossAndGradients(batch));
            adam.Step();
        }
        Assert.True(losses.TakeLast(10).Average() < 0.8 * losses.Take(10).Average(), string.Join(", ", losses.Select(l => l.ToString("0.000"))));
    }

    [Fact]
    public void PaddingDoesNotChangeATranslation()
    {
        var model = new Translator(seed: 3);
        DatePair shortDate = Dates.Make("5/3/79", "");
        Translator.Translation alone = model.Translate([shortDate])[0];
        Translator.Translation padded = model.Translate([shortDate, Dates.Make("Wednesday, September 23rd 2026", "")])[0];
        Assert.Equal(alone.Output, padded.Output);
        // Equal up to rounding: the softmax's vector reductions run over the padded length (masked keys add exact zeros,
        // but the summation order changes).
        Assert.Equal(alone.Weights.Cast<float>().Count(), padded.Weights.Cast<float>().Count());
        foreach ((float a, float b) in alone.Weights.Cast<float>().Zip(padded.Weights.Cast<float>())) Assert.Equal(a, b, 1e-5f);
    }

    [Fact]
    public void SavedWeightsReloadToTheSameTranslations()
    {
        var trained = new Translator(seed: 3);
        string path = Path.Combine(Path.GetTempPath(), $"translator-{Guid.NewGuid():N}.safetensors");
        try
        {
            trained.Save(path);
            var reloaded = new Translator(seed: 4);
            reloaded.Load(path);
            for (int k = 0; k < trained.Parameters.Count; k++) Assert.Equal(trained.Parameters[k].Value, reloaded.Parameters[k].Value);
            List<DatePair> dates = [Dates.Make("3 May 1979", ""), Dates.Make("12/31/99", "")];
            Assert.Equal(trained.Translate(dates).Select(t => t.Output), reloaded.Translate(dates).Select(t => t.Output));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void GeneratedDatesAreWellFormed()
    {
        var random = new Random(7);
        for (int i = 0; i < 500; i++)
        {
            DatePair pair = Dates.Next(random);
            Assert.True(DateTime.TryParseExact(pair.Target, "yyyy-MM-dd", null, System.Globalization.DateTimeStyles.None, out DateTime date), pair.Target);
            Assert.InRange(date.Year, 1950, 2049);
            Assert.Equal(Dates.TargetLength, pair.TargetIds.Length);
            Assert.DoesNotContain(Dates.Unknown, pair.SourceIds);
            Assert.DoesNotContain("#", pair.Source);
        }
    }
}
