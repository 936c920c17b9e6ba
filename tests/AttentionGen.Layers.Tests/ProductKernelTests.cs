using System;
using System.Linq;
using System.Numerics;
using System.Reflection;
using AttentionGen.Layers.Tests.Additive;
using AttentionGen.Layers.Tests.MultiHead;
using AttentionGen.Layers.Tests.Multiplicative;
using Xunit;

namespace AttentionGen.Layers.Tests;

[MultiplicativeAttention(Dim = 256)] public partial class KernelF256 : IMultiplicativeLayer<float, KernelF256.Tape>;
[MultiplicativeAttention(Dim = 37, ElementType = typeof(double))] public partial class KernelD37 : IMultiplicativeLayer<double, KernelD37.Tape>;
[MultiplicativeAttention(Dim = 20, ElementType = typeof(double))] public partial class KernelD20 : IMultiplicativeLayer<double, KernelD20.Tape>;
[MultiplicativeAttention(Dim = 12, ElementType = typeof(double))] public partial class KernelD12 : IMultiplicativeLayer<double, KernelD12.Tape>;

/// <summary>
/// The two product kernels every layer's projections go through, called directly (they are private static methods of
/// each generated class): C += A·B or C = A·B (<c>MatrixProductAdd{columns}</c>, A read through strides; overwriting C
/// when <c>accumulate</c> is false) and Y += X Wᵀ
/// (<c>ProductTransposedAdd{depth}</c>). Row counts cross every register block (8, 12, 4, 2 and 1 rows) and the row chunks and
/// depth blocks the kernels use to stay in cache; widths leave vector and scalar tails. Each result is checked against a
/// double reference, and each row against the same kernel called for that row alone, bit for bit: layers rely on an
/// element being computed the same way whichever rows one call covers (ProjectKeys against a step; threads' row ranges).
/// The reduced-SIMD legs of CI run these on the narrower paths.
/// </summary>
public class ProductKernelTests
{
    private delegate void MatrixProductAdd<T>(int rows, int depth, ref T a, nint aRow, nint aDepth, ref T b, ref T c, bool accumulate, bool inDepthOrder);
    private delegate void ProductTransposedAdd<T>(int rows, int columns, ref T x, ref T weight, ref T y);

    private static TDelegate Kernel<TDelegate>(Type layer, string name) where TDelegate : Delegate
    {
        MethodInfo method = layer.GetMethod(name, BindingFlags.NonPublic | BindingFlags.Static)
            ?? throw new InvalidOperationException($"{layer.Name} has no kernel {name}");
        return method.CreateDelegate<TDelegate>();
    }

    // 16, 32, 64 and 70 rows cross the Vector512 tail helpers' tiles of rows in lanes (16 and 64 rows, the rest by rows);
    // 12 to 15, 20, 28, 30 and 70 end in the Vector512 12-row block, which the transposed tail helper's rows end inside at
    // 20 and 70 (rows 16 and 64); depths 15, 16 and 17 cross the whole vector the packed-column tail needs, and 127, 129
    // and 300 leave its rest. On the narrower paths depth blocks are 64 deep and a transposed A is copied to a panel from
    // depth 64 on: 63, 64 and 65 cross both, 127 to 300 end in partial blocks. From 128 rows on a kernel whose B rows are a
    // whole number of KB apart (256 float columns) copies B into per-tile panels there: 128 and 131 (leftover blocks of 2
    // and 1 rows) take them, 70 does not.
    private static readonly int[] RowCounts = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 15, 16, 17, 20, 25, 28, 30, 32, 64, 70, 128, 131];
    private static readonly int[] Depths = [0, 1, 5, 15, 16, 17, 63, 64, 65, 127, 128, 129, 300];

    [Fact] public void MatrixProductAdd256_float() => CheckMatrixProduct<float>(typeof(KernelF256), 256, 1e-5);
    [Fact] public void MatrixProductAdd129_float() => CheckMatrixProduct<float>(typeof(GeneralF129Causal), 129, 1e-5);
    [Fact] public void MatrixProductAdd100_float() => CheckMatrixProduct<float>(typeof(AdditiveF100), 100, 1e-5);
    // Tails of 1, 5 and 15 columns on Vector512: every tile shape of the tail helpers (4, 2 and 1 rows; 4, 2 and 1 vectors of rows).
    [Fact] public void MatrixProductAdd17_float() => CheckMatrixProduct<float>(typeof(AdditiveF17), 17, 1e-5);
    [Fact] public void MatrixProductAdd37_float() => CheckMatrixProduct<float>(typeof(AdditiveF37), 37, 1e-5);
    [Fact] public void MatrixProductAdd31_float() => CheckMatrixProduct<float>(typeof(AdditiveF31), 31, 1e-5);
    [Fact] public void MatrixProductAdd37_double() => CheckMatrixProduct<double>(typeof(KernelD37), 37, 1e-13);

    [Fact] public void ProductTransposedAdd256_float() => CheckTransposedProduct<float>(typeof(KernelF256), 256, 1e-5);
    [Fact] public void ProductTransposedAdd129_float() => CheckTransposedProduct<float>(typeof(GeneralF129Causal), 129, 1e-5);
    [Fact] public void ProductTransposedAdd100_float() => CheckTransposedProduct<float>(typeof(AdditiveF100), 100, 1e-5);
    [Fact] public void ProductTransposedAdd37_double() => CheckTransposedProduct<double>(typeof(KernelD37), 37, 1e-13);
    // Under 4 vectors of depth the Vector512 path takes 4 × 4 tiles instead of 5 × 5.
    [Fact] public void ProductTransposedAdd37_float() => CheckTransposedProduct<float>(typeof(AdditiveF37), 37, 1e-5);
    [Fact] public void ProductTransposedAdd20_double() => CheckTransposedProduct<double>(typeof(KernelD20), 20, 1e-13);
    // Depths of 4 vectors or less: Vector256's 3 × 4 tiles, each row's four sums reduced together.
    [Fact] public void ProductTransposedAdd17_float() => CheckTransposedProduct<float>(typeof(AdditiveF17), 17, 1e-5);
    [Fact] public void ProductTransposedAdd31_float() => CheckTransposedProduct<float>(typeof(AdditiveF31), 31, 1e-5);
    [Fact] public void ProductTransposedAdd12_double() => CheckTransposedProduct<double>(typeof(KernelD12), 12, 1e-13);

    private static void CheckMatrixProduct<T>(Type layer, int columns, double tolerance) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var product = Kernel<MatrixProductAdd<T>>(layer, $"MatrixProductAdd{columns}");
        var random = new Random(columns);
        foreach (int rows in RowCounts)
        {
            foreach (int depth in Depths)
            {
                // One spare element, so that depth 0 still has an element to pass by reference.
                T[] b = TestData.Random<T>(random, depth * columns + 1);
                T[] start = TestData.Random<T>(random, rows * columns);
                // A as [rows, depth] (aRow = depth, aDepth = 1) and as its transpose [depth, rows] (aRow = 1, aDepth = rows);
                // adding to C, and overwriting C (which then starts as NaN, so a lane the kernel forgets to write shows).
                foreach ((bool transposed, bool accumulate) in new[] { (false, true), (true, true), (false, false), (true, false) })
                {
                    T[] a = TestData.Random<T>(random, rows * depth + 1);
                    nint aRow = transposed ? 1 : depth, aDepth = transposed ? rows : 1;
                    T[] c = accumulate ? (T[])start.Clone() : Enumerable.Repeat(T.NaN, start.Length).ToArray();
                    product(rows, depth, ref a[0], aRow, aDepth, ref b[0], ref c[0], accumulate, false);

                    string what = $"{columns} columns, {rows} rows, depth {depth}, A {(transposed ? "transposed" : "row-major")}, {(accumulate ? "adding" : "overwriting")}";
                    for (int i = 0; i < rows; i++)
                    {
                        for (int col = 0; col < columns; col++)
                        {
                            double expected = accumulate ? double.CreateTruncating(start[i * columns + col]) : 0, magnitude = Math.Abs(expected);
                            for (int k = 0; k < depth; k++)
                            {
                                double term = double.CreateTruncating(a[i * aRow + k * aDepth]) * double.CreateTruncating(b[k * columns + col]);
                                expected += term;
                                magnitude += Math.Abs(term);
                            }
                            double actual = double.CreateTruncating(c[i * columns + col]);
                            Assert.True(Math.Abs(actual - expected) <= tolerance * Math.Max(1, magnitude),
                                $"{what}: C[{i}, {col}] = {actual}, expected {expected}");
                        }

                        // Row i alone, through the one-row path.
                        T[] alone = accumulate ? start.AsSpan(i * columns, columns).ToArray() : Enumerable.Repeat(T.NaN, columns).ToArray();
                        product(1, depth, ref a[depth == 0 ? 0 : i * aRow], aRow, aDepth, ref b[0], ref alone[0], accumulate, false); // depth 0 reads no A
                        Assert.True(alone.AsSpan().SequenceEqual(c.AsSpan(i * columns, columns)), $"{what}: row {i} differs when computed alone");
                    }
                }
            }
        }
    }

    [Fact] public void MatrixProductAdd100_in_depth_order_float() => CheckInDepthOrder<float>(typeof(AdditiveF100), 100);
    [Fact] public void MatrixProductAdd37_in_depth_order_double() => CheckInDepthOrder<double>(typeof(KernelD37), 37);

    // With inDepthOrder, terms of zero appended to the depth leave C's bits unchanged: the flash kernel's O += P V runs
    // over a decoding step's shorter key range and must give the full computation's bits (whose extra P are zero).
    private static void CheckInDepthOrder<T>(Type layer, int columns) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var product = Kernel<MatrixProductAdd<T>>(layer, $"MatrixProductAdd{columns}");
        var random = new Random(columns + 1);
        foreach (int rows in new[] { 1, 5, 16, 30 })
        {
            foreach (int depth in new[] { 3, 15, 16, 17, 40, 127 })
            {
                foreach (int zeros in new[] { 1, 13, 64 })
                {
                    int longer = depth + zeros;
                    T[] a = TestData.Random<T>(random, rows * longer);
                    for (int i = 0; i < rows; i++)
                    {
                        a.AsSpan(i * longer + depth, zeros).Clear();
                    }
                    T[] b = TestData.Random<T>(random, longer * columns);
                    T[] start = TestData.Random<T>(random, rows * columns);
                    T[] shortSum = (T[])start.Clone(), longSum = (T[])start.Clone();
                    product(rows, depth, ref a[0], longer, 1, ref b[0], ref shortSum[0], true, true);
                    product(rows, longer, ref a[0], longer, 1, ref b[0], ref longSum[0], true, true);
                    Assert.True(shortSum.AsSpan().SequenceEqual(longSum), $"{columns} columns, {rows} rows: depth {depth} and {longer} (zeros after {depth}) differ");
                }
            }
        }
    }

    [Fact] public void MatrixProductAdd32Of64_float() => CheckNarrowerColumns<float>(typeof(HeadsF16x2));
    [Fact] public void MatrixProductAdd32Of64_double() => CheckNarrowerColumns<double>(typeof(HeadsD6x2));

    // The multi-head kernel's half-tile product (MatrixProductAdd32Of64: the first 32 columns of B and C, whose rows are 64
    // apart) must give the bits the 64-column kernel gives in those columns, so that a score is the same number whichever
    // kernel a block × tile used (the forward, the weights, the backward's recomputation and a decoding step may differ),
    // and must not touch C's other 32 columns.
    private static void CheckNarrowerColumns<T>(Type layer) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var whole = Kernel<MatrixProductAdd<T>>(layer, "MatrixProductAdd64");
        var half = Kernel<MatrixProductAdd<T>>(layer, "MatrixProductAdd32Of64");
        var random = new Random(3264);
        foreach (int rows in RowCounts)
        {
            foreach (int depth in Depths)
            {
                T[] b = TestData.Random<T>(random, depth * 64 + 1);
                T[] start = TestData.Random<T>(random, rows * 64);
                foreach ((bool transposed, bool accumulate) in new[] { (false, true), (true, true), (false, false), (true, false) })
                {
                    T[] a = TestData.Random<T>(random, rows * depth + 1);
                    nint aRow = transposed ? 1 : depth, aDepth = transposed ? rows : 1;
                    T[] expected = (T[])start.Clone(), actual = (T[])start.Clone();
                    whole(rows, depth, ref a[0], aRow, aDepth, ref b[0], ref expected[0], accumulate, false);
                    half(rows, depth, ref a[0], aRow, aDepth, ref b[0], ref actual[0], accumulate, false);
                    string what = $"{rows} rows, depth {depth}, A {(transposed ? "transposed" : "row-major")}, {(accumulate ? "adding" : "overwriting")}";
                    for (int i = 0; i < rows; i++)
                    {
                        Assert.True(actual.AsSpan(i * 64, 32).SequenceEqual(expected.AsSpan(i * 64, 32)), $"{what}: row {i}'s first 32 columns differ from MatrixProductAdd64's");
                        Assert.True(actual.AsSpan(i * 64 + 32, 32).SequenceEqual(start.AsSpan(i * 64 + 32, 32)), $"{what}: row {i}'s last 32 columns were written");
                    }
                }
            }
        }
    }

    private static void CheckTransposedProduct<T>(Type layer, int depth, double tolerance) where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var product = Kernel<ProductTransposedAdd<T>>(layer, $"ProductTransposedAdd{depth}");
        var random = new Random(depth);
        // Past the row chunk of every width here (Vector512: 20 rows of 256 floats, 35 of 129, 40 of 100, 60 of 37 doubles;
        // otherwise 20, 36, 48, 68, and 136 of 37 floats, 128 of 20 doubles). On Vector512's 5 × 5 path rows and columns are
        // split into 5-wide tiles, then 4-wide ones (24 = 5·4 + 4, 33 = 5·5 + 4·2), then single ones (6, 7, 11: no such
        // split); 2 and 3 columns left are one 4-wide tile over columns already done. The 4 × 4, 4 × 3 and 3 × 4 tiles leave every
        // remainder of 4 and 3 rows and of 4 and 3 columns.
        int[] rowCounts = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 19, 20, 21, 24, 37, 41, 50, 70, 137];
        int[] columnCounts = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 30, 33];
        foreach (int rows in rowCounts)
        {
            foreach (int columns in columnCounts)
            {
                T[] x = TestData.Random<T>(random, rows * depth);
                T[] w = TestData.Random<T>(random, columns * depth);
                T[] start = TestData.Random<T>(random, rows * columns);
                T[] y = (T[])start.Clone();
                product(rows, columns, ref x[0], ref w[0], ref y[0]);

                string what = $"depth {depth}, {rows} rows, {columns} columns";
                for (int r = 0; r < rows; r++)
                {
                    for (int o = 0; o < columns; o++)
                    {
                        double expected = double.CreateTruncating(start[r * columns + o]), magnitude = Math.Abs(expected);
                        for (int d = 0; d < depth; d++)
                        {
                            double term = double.CreateTruncating(x[r * depth + d]) * double.CreateTruncating(w[o * depth + d]);
                            expected += term;
                            magnitude += Math.Abs(term);
                        }
                        double actual = double.CreateTruncating(y[r * columns + o]);
                        Assert.True(Math.Abs(actual - expected) <= tolerance * Math.Max(1, magnitude),
                            $"{what}: Y[{r}, {o}] = {actual}, expected {expected}");
                    }

                    T[] alone = start.AsSpan(r * columns, columns).ToArray();
                    product(1, columns, ref x[r * depth], ref w[0], ref alone[0]);
                    Assert.True(alone.AsSpan().SequenceEqual(y.AsSpan(r * columns, columns)), $"{what}: row {r} differs when computed alone");
                }
                // and each column against the kernel called for that column alone (a one-column tile, each sum on its
                // own, where the whole call reduces a row's sums four at a time)
                for (int o = 0; o < columns; o++)
                {
                    T[] column = new T[rows];
                    for (int r = 0; r < rows; r++) column[r] = start[r * columns + o];
                    product(rows, 1, ref x[0], ref w[o * depth], ref column[0]);
                    for (int r = 0; r < rows; r++)
                    {
                        Assert.True(column[r].Equals(y[r * columns + o]), $"{what}: Y[{r}, {o}] differs when its column is computed alone");
                    }
                }
            }
        }
    }
}
