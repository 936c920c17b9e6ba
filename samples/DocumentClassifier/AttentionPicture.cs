using System;
using System.Linq;

namespace DocumentClassifier;

/// <summary>
/// A PNG of one document's two levels of attention (ScottPlot): one row per sentence, one cell per word coloured by its
/// word weight αᵢₜ and labelled with the word; the sentence weight βᵢ is written at the start of each row.
/// </summary>
public static class AttentionPicture
{
    public static void Save(Document document, HierarchicalClassifier.Pass pass, int d, string predicted, string path)
    {
        int sentences = document.Sentences.Length, words = document.Sentences.Max(s => s.Length);
        int s0 = pass.SentenceCount, w0 = pass.WordCount;
        var data = new double[sentences, words];
        for (int i = 0; i < sentences; i++)
        {
            for (int t = 0; t < words; t++)
            {
                data[i, t] = t < document.Sentences[i].Length ? pass.WordWeights[(d * s0 + i) * w0 + t] : double.NaN;
            }
        }

        var plot = new ScottPlot.Plot();
        ScottPlot.Plottables.Heatmap heatmap = plot.Add.Heatmap(data);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        heatmap.ManualRange = new ScottPlot.Range(0, 1);
        heatmap.NaNCellColor = ScottPlot.Colors.White;
        plot.Add.ColorBar(heatmap).Label = "word weight α";

        // Row i is drawn at y = sentences − 1 − i (the heat map puts row 0 at the top).
        for (int i = 0; i < sentences; i++)
        {
            double y = sentences - 1 - i;
            for (int t = 0; t < document.Sentences[i].Length; t++)
            {
                double alpha = data[i, t];
                ScottPlot.Plottables.Text label = plot.Add.Text(Corpus.Word(document.Sentences[i][t]), t, y);
                label.LabelAlignment = ScottPlot.Alignment.MiddleCenter;
                label.LabelFontSize = 11;
                label.LabelFontColor = alpha > 0.5 ? ScottPlot.Colors.Black : ScottPlot.Colors.White;
            }
        }
        double[] rows = Enumerable.Range(0, sentences).Select(i => (double)(sentences - 1 - i)).ToArray();
        string[] labels = Enumerable.Range(0, sentences).Select(i => $"β = {pass.SentenceWeights[d * s0 + i]:0.00}").ToArray();
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(rows, labels);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual([], []);
        plot.Title($"topic {Corpus.Topics[document.Label]}, predicted {predicted}: where the attention looked");
        plot.YLabel("sentence (weight β)");
        plot.SavePng(path, 160 + 90 * words, 110 + 34 * sentences);
    }
}
