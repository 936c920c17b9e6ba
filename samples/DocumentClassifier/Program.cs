using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using AttentionGen;
using AttentionGen.Numerics;
using AttentionGen.Samples;
using Spectre.Console;

namespace DocumentClassifier;

/// <summary>
/// Trains a Hierarchical Attention Network (two generated <c>[StaticAttention]</c> layers: words → sentence, sentences →
/// document) on a generated corpus whose topic depends on a few key words in one marked sentence, reports held-out accuracy, and shows which words
/// and sentences the attention weighted most: highlighted in the terminal and as a PNG.
/// <list type="bullet">
/// <item><c>(no arguments)</c>: train until 99% on the validation documents (or the step budget), test, show examples.</item>
/// <item><c>--quick</c>: a short run that checks the loss falls (CI's smoke test); also <c>DOCUMENTCLASSIFIER_QUICK=1</c>.</item>
/// <item><c>--uniform</c>: the ablation: both context vectors held at zero, so every word and sentence weighs the same (mean pooling).</item>
/// <item><c>--gradcheck</c>: compare the backward passes with finite differences.</item>
/// <item><c>--seed N</c>: another seed for the data and the initial weights (the default is fixed, so runs repeat exactly).</item>
/// <item><c>--out DIR</c>: where the picture goes (default <c>output/document-classifier</c> under the current directory).</item>
/// </list>
/// </summary>
public static class Program
{
    private const int BatchSize = 32;
    private static int Seed = 2016; // fixed by default so that runs repeat exactly; --seed changes it

    public static int Main(string[] args)
    {
        // Redirected output (CI logs) would otherwise be wrapped at 80 columns.
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
        string output = Option(args, "--out") ?? Path.Combine("output", "document-classifier");
        if (Option(args, "--seed") is string seed) Seed = int.Parse(seed, System.Globalization.CultureInfo.InvariantCulture);
        Directory.CreateDirectory(output);
        if (args.Contains("--gradcheck")) return RunGradientCheck();
        bool quick = args.Contains("--quick") || Environment.GetEnvironmentVariable("DOCUMENTCLASSIFIER_QUICK") == "1";

        List<Document> test = Corpus.Many(quick ? 300 : 2000, Seed + 1);
        List<Document> validation = Corpus.Many(500, Seed + 2);
        var trainRandom = new Random(Seed + 3);
        int maxSteps = quick ? 150 : 3000, evaluateEvery = quick ? 50 : 100;

        var model = new HierarchicalClassifier(Seed);
        // The ablation: with both context vectors held at 0 every score is equal, so the pooling is a plain mean.
        bool uniform = args.Contains("--uniform");
        if (uniform) { Array.Clear(model.Words.ContextVector.Value); Array.Clear(model.Sentences.ContextVector.Value); }
        var adam = new Adam<float>(model.Parameters, learningRate: 5e-3);
        AnsiConsole.MarkupLine($"[bold]DocumentClassifier[/]: HAN with StaticAttention(Dim = {WordAttention.Dim}) over words and over sentences; " +
            $"{model.Parameters.Sum(p => p.Length):N0} parameters, {Corpus.Topics.Length} topics, batch {BatchSize}, SIMD {SimdPaths.Widest}");

        var clock = Stopwatch.StartNew();
        double firstLoss = double.NaN, lastLoss = double.NaN, recentLoss = 0;
        int recentCount = 0, stepsTaken = 0;
        var batch = new List<Document>(BatchSize);
        for (int step = 1; step <= maxSteps; step++)
        {
            batch.Clear();
            for (int i = 0; i < BatchSize; i++) batch.Add(Corpus.Next(trainRandom)); // fresh documents every step
            adam.ZeroGradients();
            recentLoss += model.LossAndGradients(batch);
            recentCount++;
            if (uniform) { model.Words.ContextVector.ZeroGradient(); model.Sentences.ContextVector.ZeroGradient(); }
            adam.Step();
            stepsTaken = step;
            if (step == 10) firstLoss = recentLoss / recentCount;
            if (step % evaluateEvery == 0 || step == maxSteps)
            {
                lastLoss = recentLoss / recentCount;
                (recentLoss, recentCount) = (0, 0);
                (double accuracy, double lead, _) = model.Evaluate(validation);
                AnsiConsole.WriteLine($"step {step,5}  loss {lastLoss:0.0000}  validation accuracy {accuracy:P1}  strongest sentence is the lead {lead:P0}  {clock.Elapsed.TotalSeconds:0.0} s");
                if (!quick && accuracy >= 0.99) break;
            }
        }
        TimeSpan trainingTime = clock.Elapsed;

        (double testAccuracy, double testLead, double testWord) = model.Evaluate(test);
        AnsiConsole.MarkupLine($"[bold]test accuracy {testAccuracy:P2}[/] on {test.Count} held-out documents after {stepsTaken} steps ({stepsTaken * BatchSize:N0} documents) in {trainingTime.TotalSeconds:0.0} s");
        AnsiConsole.WriteLine($"the sentence with the highest weight β is the marked lead sentence in {testLead:P1} of them; " +
            $"the word with the highest weight α in it is its marker or a key word of the topic in {testWord:P1}");

        List<Document> examples = test.Take(3).ToList();
        HierarchicalClassifier.Pass pass = model.Forward(examples, training: false);
        int[] predictions = HierarchicalClassifier.Predictions(pass);
        for (int d = 0; d < examples.Count; d++)
        {
            AnsiConsole.WriteLine();
            AnsiConsole.MarkupLine($"[bold]document {d + 1}[/]: topic [green]{Corpus.Topics[examples[d].Label]}[/], predicted [green]{Corpus.Topics[predictions[d]]}[/]");
            WriteHighlighted(examples[d], pass, d);
        }
        string picture = Path.Combine(output, "document-attention.png");
        AttentionPicture.Save(examples[0], pass, 0, Corpus.Topics[predictions[0]], picture);
        AnsiConsole.WriteLine($"attention picture: {picture}");

        if (quick)
        {
            bool fell = lastLoss < firstLoss * 0.8;
            AnsiConsole.WriteLine(fell ? $"loss fell from {firstLoss:0.000} to {lastLoss:0.000}" : $"LOSS DID NOT FALL: {firstLoss:0.000} → {lastLoss:0.000}");
            return fell ? 0 : 1;
        }
        return testAccuracy >= 0.95 ? 0 : 1;
    }

    // Each sentence with its weight βᵢ; each word coloured by its weight αᵢₜ, and the heavily weighted words of heavily weighted
    // sentences also in ‹brackets›, so the highlighting survives output without colour.
    private static void WriteHighlighted(Document document, HierarchicalClassifier.Pass pass, int d)
    {
        int s = pass.SentenceCount, w = pass.WordCount;
        for (int i = 0; i < document.Sentences.Length; i++)
        {
            float beta = pass.SentenceWeights[d * s + i];
            var line = new StringBuilder();
            line.Append($"  β {beta:0.00} {new string('█', (int)Math.Round(beta * 10)),-10} ");
            for (int t = 0; t < document.Sentences[i].Length; t++)
            {
                float alpha = pass.WordWeights[(d * s + i) * w + t];
                string word = Markup.Escape(Corpus.Word(document.Sentences[i][t]));
                int level = (int)(90 + 165 * Math.Clamp(alpha * beta * 2, 0f, 1f)); // how much this word counts in the document
                if (alpha >= 0.3f && beta >= 0.15f) line.Append($"[bold rgb(255,{255 - level / 2},0)]‹{word}›[/] ");
                else line.Append($"[rgb({level},{level},{level})]{word}[/] ");
            }
            AnsiConsole.MarkupLine(line.ToString());
        }
    }

    private static int RunGradientCheck()
    {
        var model = new HierarchicalClassifier(Seed);
        List<Document> batch = Corpus.Many(4, 99);
        double worst = GradientCheck.Run(model.Parameters, () => model.LossAndGradients(batch), Console.WriteLine);
        bool ok = worst < 2e-2;
        Console.WriteLine(ok ? $"gradient check passed: worst relative error {worst:E2}" : $"GRADIENT CHECK FAILED: worst relative error {worst:E2}");
        return ok ? 0 : 1;
    }

    private static string? Option(string[] args, string name)
    {
        int at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
    }
}
