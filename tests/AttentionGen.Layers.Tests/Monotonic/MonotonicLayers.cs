using System;
using System.Numerics;

namespace AttentionGen.Layers.Tests.Monotonic;

/// <summary>
/// The generated monotonic layers' API as an interface, so one generic test body drives every declared layer: the
/// generated public methods implement it implicitly.
/// </summary>
public interface IMonotonicLayer<T, TTape> : IAttentionLayer<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    void Forward(int batch, int queryLength, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> context, Span<T> weights, AttentionMask mask);
    void Forward(TTape tape, int batch, int queryLength, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> context, Span<T> weights, AttentionMask mask, Random? noise);
    void Backward(TTape tape, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, ReadOnlySpan<T> dContext, Span<T> dQuery, Span<T> dKeys, Span<T> dValues, ReadOnlySpan<T> dWeights);
    void ProjectKeys(int batch, int keyLength, ReadOnlySpan<T> keys, Span<T> keyProjection);
    void Step(int batch, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keyProjection, ReadOnlySpan<T> values, ReadOnlySpan<T> previousAlignment, Span<T> alignment, Span<T> context, ReadOnlySpan<bool> keyPadding);
    void ForwardHard(int batch, int queryLength, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, Span<T> context, Span<int> positions, AttentionMask mask);
    void StepHard(int batch, int keyLength, ReadOnlySpan<T> query, ReadOnlySpan<T> keyProjection, ReadOnlySpan<T> values, Span<int> position, Span<T> context, ReadOnlySpan<bool> keyPadding);
}

// Float layers at odd and even dimensions (tails of every vector width), both energies and both alignment forms.
[MonotonicAttention(Dim = 7)] public partial class MonotonicF7 : IMonotonicLayer<float, MonotonicF7.Tape>;
[MonotonicAttention(Dim = 16, Units = 37, ValueDim = 5)] public partial class MonotonicF16U37V5 : IMonotonicLayer<float, MonotonicF16U37V5.Tape>;
[MonotonicAttention(Dim = 33, Score = MonotonicScore.Multiplicative)] public partial class MonotonicMulF33 : IMonotonicLayer<float, MonotonicMulF33.Tape>;
[MonotonicAttention(Dim = 9, Mode = MonotonicMode.Parallel, InitialEnergyBias = -1)] public partial class MonotonicParallelF9 : IMonotonicLayer<float, MonotonicParallelF9.Tape>;

// Double layers, for the gradient checks and as the float layers' references.
[MonotonicAttention(Dim = 7, ElementType = typeof(double))] public partial class MonotonicD7 : IMonotonicLayer<double, MonotonicD7.Tape>;
[MonotonicAttention(Dim = 5, Units = 9, ValueDim = 3, ElementType = typeof(double), InitialEnergyBias = 0)] public partial class MonotonicD5U9V3 : IMonotonicLayer<double, MonotonicD5U9V3.Tape>;
[MonotonicAttention(Dim = 6, Score = MonotonicScore.Multiplicative, ValueDim = 4, ElementType = typeof(double), InitialEnergyBias = 0.5)] public partial class MonotonicMulD6V4 : IMonotonicLayer<double, MonotonicMulD6V4.Tape>;
[MonotonicAttention(Dim = 5, Units = 9, ValueDim = 3, ElementType = typeof(double), InitialEnergyBias = 0, Mode = MonotonicMode.Parallel)] public partial class MonotonicParallelD5U9V3 : IMonotonicLayer<double, MonotonicParallelD5U9V3.Tape>;
[MonotonicAttention(Dim = 6, Score = MonotonicScore.Multiplicative, ValueDim = 4, ElementType = typeof(double), InitialEnergyBias = 0.5, Mode = MonotonicMode.Parallel)] public partial class MonotonicParallelMulD6V4 : IMonotonicLayer<double, MonotonicParallelMulD6V4.Tape>;

// The paper's weight-normalised energy, g vᵀ/‖v‖ tanh(·) + r.
[MonotonicAttention(Dim = 8, Units = 12, ValueDim = 3, Normalize = true)] public partial class MonotonicNormF8U12V3 : IMonotonicLayer<float, MonotonicNormF8U12V3.Tape>;
[MonotonicAttention(Dim = 5, Units = 9, ValueDim = 3, Normalize = true, ElementType = typeof(double), InitialEnergyBias = 0)] public partial class MonotonicNormD5U9V3 : IMonotonicLayer<double, MonotonicNormD5U9V3.Tape>;
[MonotonicAttention(Dim = 4, Normalize = true, Mode = MonotonicMode.Parallel, ElementType = typeof(double))] public partial class MonotonicNormParallelD4 : IMonotonicLayer<double, MonotonicNormParallelD4.Tape>;
