using System;
using System.Collections.Generic;
using AttentionGen;

namespace AttentionGen.Samples;

/// <summary>
/// Checks a model's hand-written backward passes against central finite differences. The models are float, so instead of
/// perturbing single entries (whose effect drowns in rounding) each parameter tensor is moved along a random unit direction
/// d: the analytic directional derivative g·d is compared with (L(θ + εd) − L(θ − εd)) / 2ε.
/// </summary>
public static class GradientCheck
{
    /// <summary>Returns the worst relative error over the tensors; <paramref name="report"/> gets one line per tensor.</summary>
    /// <param name="parameters">Every parameter the loss depends on.</param>
    /// <param name="lossAndGradients">Computes the loss and adds its gradient into each parameter's Gradient.</param>
    public static double Run(IReadOnlyList<Parameter<float>> parameters, Func<double> lossAndGradients, Action<string> report,
        int seed = 1, double epsilon = 1e-2)
    {
        foreach (Parameter<float> p in parameters) p.ZeroGradient();
        lossAndGradients();
        var gradients = new List<float[]>();
        foreach (Parameter<float> p in parameters) gradients.Add((float[])p.Gradient.Clone());

        var random = new Random(seed);
        double worst = 0;
        for (int k = 0; k < parameters.Count; k++)
        {
            Parameter<float> p = parameters[k];
            var direction = new double[p.Length];
            double norm = 0;
            for (int i = 0; i < direction.Length; i++)
            {
                direction[i] = random.NextDouble() * 2 - 1;
                norm += direction[i] * direction[i];
            }
            norm = Math.Sqrt(norm);
            double analytic = 0;
            for (int i = 0; i < direction.Length; i++)
            {
                direction[i] /= norm;
                analytic += gradients[k][i] * direction[i];
            }
            float[] original = (float[])p.Value.Clone();
            double plus = LossAt(p, original, direction, epsilon, lossAndGradients);
            double minus = LossAt(p, original, direction, -epsilon, lossAndGradients);
            original.CopyTo(p.Value, 0);
            double numeric = (plus - minus) / (2 * epsilon);
            // Relative to the larger magnitude, with a floor so that a tensor the loss hardly depends on is judged absolutely.
            double error = Math.Abs(analytic - numeric) / Math.Max(Math.Max(Math.Abs(analytic), Math.Abs(numeric)), 1e-3);
            worst = Math.Max(worst, error);
            report($"{p.Name,-32} analytic {analytic,12:E4}  numeric {numeric,12:E4}  relative error {error:E2}");
        }
        foreach (Parameter<float> p in parameters) p.ZeroGradient();
        return worst;
    }

    private static double LossAt(Parameter<float> p, float[] original, double[] direction, double step, Func<double> loss)
    {
        for (int i = 0; i < original.Length; i++) p.Value[i] = (float)(original[i] + step * direction[i]);
        return loss();
    }
}
