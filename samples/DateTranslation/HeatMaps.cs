using System;
using System.Linq;
using System.Text;
using Spectre.Console;

namespace DateTranslation;

/// <summary>The alignment pictures: attention weights aᵢⱼ with output characters as rows and input characters as columns.</summary>
public static class HeatMaps
{
    /// <summary>Writes a PNG heat map (ScottPlot): bright = the decoder looked there while writing that output character.</summary>
    public static void SavePng(Translator.Translation translation, string path)
    {
        float[,] weights = translation.Weights;
        int rows = weights.GetLength(0), columns = weights.GetLength(1);
        var data = new double[rows, columns];
        for (int i = 0; i < rows; i++) for (int j = 0; j < columns; j++) data[i, j] = weights[i, j];

        var plot = new ScottPlot.Plot();
        ScottPlot.Plottables.Heatmap heatmap = plot.Add.Heatmap(data);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        heatmap.ManualRange = new ScottPlot.Range(0, 1); // the same colour means the same weight in every picture
        plot.Add.ColorBar(heatmap);

        // The heat map draws row 0 at the top, at y = rows − 1: label each cell with its character.
        double[] xPositions = Enumerable.Range(0, columns).Select(j => (double)j).ToArray();
        string[] xLabels = translation.Source.Select(c => c == ' ' ? "␣" : c.ToString()).ToArray();
        double[] yPositions = Enumerable.Range(0, rows).Select(i => (double)(rows - 1 - i)).ToArray();
        string[] yLabels = translation.Output.Select(c => c.ToString()).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(xPositions, xLabels);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(yPositions, yLabels);
        plot.Title($"\"{translation.Source}\" → {translation.Output}");
        plot.XLabel("input character");
        plot.YLabel("output character");
        plot.SavePng(path, 120 + 26 * columns, 120 + 26 * rows);
    }

    /// <summary>The same picture in the terminal: one shaded, coloured cell per weight (Spectre.Console).</summary>
    public static void WriteConsole(Translator.Translation translation)
    {
        float[,] weights = translation.Weights;
        int rows = weights.GetLength(0), columns = weights.GetLength(1);
        var text = new StringBuilder();
        text.Append("    ");
        foreach (char c in translation.Source) text.Append(Markup.Escape(c.ToString())).Append(' ');
        text.AppendLine();
        for (int i = 0; i < rows; i++)
        {
            text.Append(' ').Append(translation.Output[i]).Append("  ");
            for (int j = 0; j < columns; j++)
            {
                float w = weights[i, j];
                // A shade glyph keeps the picture readable without colour (redirected output); colour adds the detail.
                string glyph = w < 0.1f ? "··" : w < 0.3f ? "░░" : w < 0.6f ? "▒▒" : w < 0.85f ? "▓▓" : "██";
                int level = (int)(60 + 195 * Math.Clamp(w, 0f, 1f));
                text.Append($"[rgb({level / 3},{level},{level / 2})]{glyph}[/]");
            }
            text.AppendLine();
        }
        AnsiConsole.Markup(text.ToString());
    }
}
