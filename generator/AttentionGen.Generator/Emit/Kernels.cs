using System;
using System.Collections.Generic;
using AttentionGen.Generator.Model;

namespace AttentionGen.Generator.Emit;

/// <summary>
/// The shared emit blocks: small static methods of compile-time length (dot product, axpy, matrix-vector
/// products) that every layer kind composes. A layer asks for the blocks it needs; each distinct block is
/// written once into the layer's file, after the layer's own members.
/// </summary>
internal sealed class Kernels
{
    private readonly ElementType _element;
    private readonly SortedSet<string> _requested = new(System.StringComparer.Ordinal);
    private readonly Dictionary<string, System.Action<SourceWriter>> _emitters = new();

    public Kernels(ElementType element) => _element = element;

    /// <summary>Σᵢ xᵢ yᵢ over <paramref name="length"/> elements. Returns the method name.</summary>
    public string Dot(int length)
    {
        string name = $"Dot{length}";
        Request(name, writer =>
        {
            writer.Summary($"Σᵢ xᵢ yᵢ for i &lt; {length}.");
            writer.WriteLine("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            using (writer.Block($"private static {T} {name}(ref {T} x, ref {T} y)"))
            {
                writer.WriteLine($"{T} sum;");
                new VectorLoop(length, _element,
                    "{acc} = {V}.MultiplyAddEstimate({V}.LoadUnsafe(ref x, {o}), {V}.LoadUnsafe(ref y, {o}), {acc});",
                    "{acc} = {T}.MultiplyAddEstimate(Unsafe.Add(ref x, {o}), Unsafe.Add(ref y, {o}), {acc});")
                { ReduceInto = "sum" }.Emit(writer);
                writer.WriteLine("return sum;");
            }
        });
        return name;
    }

    /// <summary>y ← y + α x over <paramref name="length"/> elements. Returns the method name.</summary>
    public string MultiplyAdd(int length)
    {
        string name = $"MultiplyAdd{length}";
        Request(name, writer =>
        {
            writer.Summary($"yᵢ ← yᵢ + α xᵢ for i &lt; {length}.");
            writer.WriteLine("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            using (writer.Block($"private static void {name}({T} alpha, ref {T} x, ref {T} y)"))
            {
                new VectorLoop(length, _element,
                    "{V}.MultiplyAddEstimate(alpha{V}, {V}.LoadUnsafe(ref x, {o}), {V}.LoadUnsafe(ref y, {o})).StoreUnsafe(ref y, {o});",
                    "Unsafe.Add(ref y, {o}) = {T}.MultiplyAddEstimate(alpha, Unsafe.Add(ref x, {o}), Unsafe.Add(ref y, {o}));")
                { VectorPrologue = "{VT} alpha{V} = {V}.Create(alpha);" }.Emit(writer);
            }
        });
        return name;
    }

    /// <summary>y ← α x over <paramref name="length"/> elements (overwriting y). Returns the method name.</summary>
    public string ScaleInto(int length)
    {
        string name = $"ScaleInto{length}";
        Request(name, writer =>
        {
            writer.Summary($"yᵢ ← α xᵢ for i &lt; {length}.");
            writer.WriteLine("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            using (writer.Block($"private static void {name}({T} alpha, ref {T} x, ref {T} y)"))
            {
                new VectorLoop(length, _element,
                    "(alpha{V} * {V}.LoadUnsafe(ref x, {o})).StoreUnsafe(ref y, {o});",
                    "Unsafe.Add(ref y, {o}) = alpha * Unsafe.Add(ref x, {o});")
                { VectorPrologue = "{VT} alpha{V} = {V}.Create(alpha);" }.Emit(writer);
            }
        });
        return name;
    }

    /// <summary>y ← x over <paramref name="length"/> elements (a fixed-length copy, no call). Returns the method name.</summary>
    public string Copy(int length)
    {
        string name = $"Copy{length}";
        Request(name, writer =>
        {
            writer.Summary($"yᵢ ← xᵢ for i &lt; {length}.");
            writer.WriteLine("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            using (writer.Block($"private static void {name}(ref {T} x, ref {T} y)"))
            {
                new VectorLoop(length, _element,
                    "{V}.LoadUnsafe(ref x, {o}).StoreUnsafe(ref y, {o});",
                    "Unsafe.Add(ref y, {o}) = Unsafe.Add(ref x, {o});").Emit(writer);
            }
        });
        return name;
    }

    /// <summary>y ← W x for W of <c>[rows, columns]</c> row-major (PyTorch's <c>nn.Linear</c> layout). Returns the method name.</summary>
    public string MatrixVector(int rows, int columns)
    {
        string name = $"MatrixVector{rows}x{columns}";
        string dot = Dot(columns);
        Request(name, writer =>
        {
            writer.Summary($"yᵣ ← Σ_c W[r, c] x_c for W of [{rows}, {columns}] (one dot product per row).");
            writer.WriteLine("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            using (writer.Block($"private static void {name}(ref {T} weight, ref {T} x, ref {T} y)"))
            {
                using (writer.Block($"for (int r = 0; r < {rows}; r++)"))
                {
                    writer.WriteLine($"Unsafe.Add(ref y, r) = {dot}(ref Unsafe.Add(ref weight, r * {columns}), ref x);");
                }
            }
        });
        return name;
    }

    /// <summary>y ← y + Wᵀ c for W of <c>[rows, columns]</c>: the input gradient of a projection. Returns the method name.</summary>
    public string TransposedMatrixVectorAdd(int rows, int columns)
    {
        string name = $"TransposedMatrixVectorAdd{rows}x{columns}";
        string axpy = MultiplyAdd(columns);
        Request(name, writer =>
        {
            writer.Summary($"y_c ← y_c + Σᵣ cᵣ W[r, c] for W of [{rows}, {columns}] (an axpy per row).");
            writer.WriteLine("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            using (writer.Block($"private static void {name}(ref {T} weight, ref {T} c, ref {T} y)"))
            {
                using (writer.Block($"for (int r = 0; r < {rows}; r++)"))
                {
                    writer.WriteLine($"{axpy}(Unsafe.Add(ref c, r), ref Unsafe.Add(ref weight, r * {columns}), ref y);");
                }
            }
        });
        return name;
    }

    /// <summary>G ← G + c xᵀ for G of <c>[rows, columns]</c>: a projection's weight gradient. Returns the method name.</summary>
    public string OuterProductAdd(int rows, int columns)
    {
        string name = $"OuterProductAdd{rows}x{columns}";
        string axpy = MultiplyAdd(columns);
        Request(name, writer =>
        {
            writer.Summary($"G[r, c] ← G[r, c] + cᵣ x_c for G of [{rows}, {columns}].");
            writer.WriteLine("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            using (writer.Block($"private static void {name}(ref {T} c, ref {T} x, ref {T} gradient)"))
            {
                using (writer.Block($"for (int r = 0; r < {rows}; r++)"))
                {
                    writer.WriteLine($"{axpy}(Unsafe.Add(ref c, r), ref x, ref Unsafe.Add(ref gradient, r * {columns}));");
                }
            }
        });
        return name;
    }

    // MatrixProductAdd's depth block on the Vector256 and Vector128 paths, which is also what its panel of a transposed A
    // covers (see depthBlock and packA there).
    private const int NarrowDepthBlock = 64;

    // From how many rows MatrixProductAdd copies a depth block of B into per-tile panels on the narrower paths (see packB).
    private const int PackBRows = 128;

    // Whether a kernel of `columns` columns (B's rows that many elements apart) may pack B: rows of B a whole number of KB
    // apart, where a tile's strip of B (3 vectors of each of 64 rows) is spread over a few level-1 sets and comes from L2 in
    // short runs (W3's 256 float columns; measured there, see packB).
    private bool PacksB(int columns, int stride) => stride == columns && columns >= _element.Lanes(128) && columns * _element.Size % 1024 == 0;

    /// <summary>
    /// C ← C + A·B (or C ← A·B with <c>accumulate: false</c>, which spares the caller clearing C first) with B row-major
    /// <c>[depth, columns]</c> and C row-major <c>[rows, columns]</c>, A read through
    /// strides (so A or Aᵀ can be passed without copying); rows and depth are runtime values, columns is the
    /// compile-time constant. A register-blocked micro-kernel: 8 rows of C × 3 vectors of columns held in 24
    /// accumulators on the Vector512 path (4 to 7 rows left over join the last 8 as 12 rows × 2 vectors, and the last
    /// few rows get wider tiles; 4 rows × 3 vectors, 12 accumulators, on the narrower paths), each step broadcasting an
    /// element of A per row against the tile's vectors of one row of B. Every projection
    /// and projection gradient of a batch is one call (forward Y = X Wᵀ with W packed as Wᵀ; dX = dY W; dW += dYᵀ X).
    /// Tail columns narrower than a Vector512 go to <see cref="MatrixProductTailDots"/> (row-major A, unless the caller
    /// passes inDepthOrder) or <see cref="MatrixProductTailRows"/> (transposed A) on that path. An element's result never
    /// depends on the other rows of the call. With a <paramref name="stride"/> wider than the columns, B's and C's rows are
    /// that far apart and only their first columns are used (the first half of a key tile's scores, say); every element
    /// is then the same sum, in the same order, as in the kernel of <paramref name="stride"/> columns. Returns the method
    /// name.
    /// </summary>
    public string MatrixProductAdd(int columns, int stride = 0)
    {
        stride = stride == 0 ? columns : stride;
        string name = $"MatrixProductAdd{Shape(columns, stride)}";
        CopyToPanel();
        int lanes512 = _element.Lanes(512);
        // (a kernel of wider rows takes no dot products for its tail: the kernel of `stride` columns sums those columns in its
        // tiles, in the order of k)
        (string? Dots, string Rows)? tailColumns = columns > lanes512 && columns % lanes512 > 0
            ? (stride == columns ? MatrixProductTailDots(columns) : null, MatrixProductTailRows(columns, stride))
            : null;
        Request(name, writer =>
        {
            writer.Summary(
                $"C[i, c] += Σₖ A[i·aRow + k·aDepth] · B[k, c] for i &lt; rows, k &lt; depth, c &lt; {columns} (with accumulate false, C[i, c] = Σₖ …):\n" +
                (stride == columns
                    ? "B is [depth, " + columns + "] and C is [rows, " + columns + "], both row-major. Blocks of 8 rows × 3 vectors stay in registers (Vector512, where 4 to 7\n"
                    : "B and C are row-major with rows " + stride + " elements apart, of which the first " + columns + " are read and written: each element is the same\n" +
                      "sum, in the same order, as in MatrixProductAdd" + stride + ", which does all " + stride + ". Blocks of 8 rows × 3 vectors stay in registers (Vector512, where 4 to 7\n") +
                "rows left over join the last 8 as 12 rows × 2 vectors; 4 rows × 3 vectors on narrower vectors).\n" +
                "An element's result does not depend on the other rows of the call; with inDepthOrder it is summed from C in the order of k.");
            LayerScaffold.HotMethod(writer); // large: called, not inlined
            using (writer.Block($"private static void {name}(int rows, int depth, ref {T} a, nint aRow, nint aDepth, ref {T} b, ref {T} c, bool accumulate = true, bool inDepthOrder = false)"))
            {
                using (writer.Block("if (depth == 0 && !accumulate)"))
                {
                    writer.WriteLine(stride == columns
                        ? "MemoryMarshal.CreateSpan(ref c, rows * " + columns + ").Clear(); // an empty sum"
                        : "for (nint i = 0; i < rows; i++) MemoryMarshal.CreateSpan(ref Unsafe.Add(ref c, i * " + stride + "), " + columns + ").Clear(); // an empty sum");
                }
                writer.WriteLine("// Depth in blocks, so that each block of B stays in cache while every tile of C uses it: 256 rows of B on Vector512,");
                writer.WriteLine($"// {NarrowDepthBlock} on the narrower paths (a block of up to 128 float columns then fits in Zen 3's 32 KB level-1 cache; on that");
                writer.WriteLine("// AVX2 host W3's q W, 256 columns, also went from about 55 to 62–66 GFLOP/s against blocks of 256, and blocks of 32 or 128");
                writer.WriteLine("// were no faster). The tiles of the first block start from C, or from zero when overwriting it; each element is summed");
                writer.WriteLine("// in the order of k either way.");
                writer.WriteLine($"nint depthBlock = SimdPaths.Vector512 ? 256 : {NarrowDepthBlock};");
                writer.WriteLine("// A read transposed (aRow = 1, as ∂Y in ∂W += ∂Yᵀ X) on the Vector256 and Vector128 paths: for each depth block, A's");
                writer.WriteLine("// rows k0 … k1 (contiguous, `rows` elements each) are copied once into a panel where each block of rows finds its");
                writer.WriteLine("// elements as one contiguous [k, row] run, instead of every tile reading them aDepth apart (W4's ∂W, [100 × 1600] ·");
                writer.WriteLine("// [1600 × 100], went from 33–39 to 41–50 GFLOP/s on Zen 3 against a panel per block of rows with depth blocks of 128).");
                writer.WriteLine("// The same products in the same order: the bits do not change. On Vector512 (Zen 5) such products ran at about");
                writer.WriteLine("// 90 % of the peak without a panel.");
                writer.WriteLine(columns >= _element.Lanes(128)
                    ? $"bool packA = SimdPaths.Vector128 && !SimdPaths.Vector512 && aRow == 1 && aDepth != 1 && depth >= {NarrowDepthBlock};"
                    : "bool packA = false; // too few columns for a Vector128: only the scalar path, which reads A in place");
                writer.WriteLine("// (rented rather than on the stack: a stackalloc would cost every call of the kernel a stack cookie check, and");
                writer.WriteLine("// the many short calls of the multi-head kernel's tiles never take the panel)");
                writer.WriteLine($"{T}[]? aPanel = packA ? ArrayPool<{T}>.Shared.Rent(rows * {NarrowDepthBlock}) : null;");
                if (PacksB(columns, stride))
                {
                    writer.WriteLine($"// B's rows are {columns * _element.Size / 1024} KB apart: from {PackBRows} rows on, on the Vector256 and Vector128 paths, each depth block of B is");
                    writer.WriteLine("// copied once into one contiguous panel per tile of columns ([k, the tile's columns], tile after tile), which the");
                    writer.WriteLine("// hardware prefetcher streams whole, instead of every tile reading 3 vectors of each row of B a KB apart (W3's");
                    writer.WriteLine("// q W, [640 × 256] · [256 × 256], went from 56–65 to 77–81 GFLOP/s on Zen 3 in a harness, 128 rows from about 75 to");
                    writer.WriteLine("// 80; 64 rows gained nothing). The same products in the same order: the bits do not change.");
                    writer.WriteLine($"bool packB = SimdPaths.Vector128 && !SimdPaths.Vector512 && rows >= {PackBRows};");
                    writer.WriteLine($"{T}[]? bPanel = packB ? ArrayPool<{T}>.Shared.Rent({NarrowDepthBlock * columns}) : null;");
                }
                using (writer.Block("for (nint k0 = 0; k0 < depth; k0 += depthBlock)"))
                {
                    writer.WriteLine("nint k1 = nint.Min(k0 + depthBlock, depth), kCount = k1 - k0;");
                    writer.WriteLine("bool fromC = accumulate || k0 > 0;");
                    using (writer.Block("if (packA)"))
                    {
                        writer.WriteLine($"{CopyToPanelName}(ref Unsafe.Add(ref a, k0 * aDepth), aDepth, rows, kCount, ref MemoryMarshal.GetArrayDataReference(aPanel!));");
                    }
                    bool first = true;
                    foreach (int bits in new[] { 512, 256, 128 })
                    {
                        int lanes = _element.Lanes(bits);
                        if (columns < lanes)
                        {
                            continue;
                        }
                        using (writer.Block($"{(first ? "if" : "else if")} (SimdPaths.Vector{bits})"))
                        {
                            EmitProductWidth(writer, columns, stride, bits, bits == 512 ? tailColumns : null);
                        }
                        first = false;
                    }
                    using (first ? default : writer.Block("else"))
                    {
                        using (writer.Block("for (nint i = 0; i < rows; i++)"))
                        {
                            EmitProductScalar(writer, columns, stride, "0", "i");
                        }
                    }
                }
                using (writer.Block("if (aPanel is not null)"))
                {
                    writer.WriteLine($"ArrayPool<{T}>.Shared.Return(aPanel);");
                }
                if (PacksB(columns, stride))
                {
                    using (writer.Block("if (bPanel is not null)"))
                    {
                        writer.WriteLine($"ArrayPool<{T}>.Shared.Return(bPanel);");
                    }
                }
            }
        });
        return name;
    }

    // A product kernel's name suffix: its columns, and the row stride of B and C when that is wider ("32Of64").
    private static string Shape(int columns, int stride) => stride == columns ? $"{columns}" : $"{columns}Of{stride}";

    private const string CopyToPanelName = "CopyToPanel";

    // MatrixProductAdd's panel of A read transposed, for one depth block (see packA there).
    private void CopyToPanel()
    {
        Request(CopyToPanelName, writer =>
        {
            writer.Summary("The rows of A read transposed (aRow = 1) for one depth block, copied so that each block of rows MatrixProductAdd's\n" +
                "Vector256 and Vector128 paths take (4 rows, then 2 and 1 left over) finds its elements contiguous: the block of r rows\n" +
                "from row i holds a[k · aDepth + i + j] at panel[i · count + k · r + j] for k &lt; count, j &lt; r. Each k reads a\n" +
                "contiguous run of A.");
            LayerScaffold.HotMethod(writer); // called, and optimised from its first call as the kernels are
            using (writer.Block($"private static void {CopyToPanelName}(ref {T} a, nint aDepth, int rows, nint count, ref {T} panel)"))
            {
                int perVector128 = 16 / _element.Size;
                writer.WriteLine("nint fourRowsEnd = rows / 4 * 4;");
                using (writer.Block("for (nint k = 0; k < count; k++)"))
                {
                    writer.WriteLine($"ref {T} from = ref Unsafe.Add(ref a, k * aDepth);");
                    writer.WriteLine($"ref {T} to = ref Unsafe.Add(ref panel, k * 4);");
                    writer.WriteLine($"// the 4-row blocks: {(perVector128 == 4 ? "one Vector128" : "two Vector128s")} each");
                    using (writer.Block("for (nint i = 0; i < fourRowsEnd; i += 4)"))
                    {
                        for (int r = 0; r < 4; r += perVector128)
                        {
                            string offset = r == 0 ? "" : $" + {r}";
                            writer.WriteLine($"Vector128.LoadUnsafe(ref Unsafe.Add(ref from, i{offset})).StoreUnsafe(ref Unsafe.Add(ref to, i * count{offset}));");
                        }
                    }
                    writer.WriteLine("// the rows left over: a block of 2, then one of 1");
                    writer.WriteLine("nint left = fourRowsEnd;");
                    using (writer.Block("if (left + 2 <= rows)"))
                    {
                        writer.WriteLine("Unsafe.Add(ref panel, left * count + k * 2) = Unsafe.Add(ref from, left);");
                        writer.WriteLine("Unsafe.Add(ref panel, left * count + k * 2 + 1) = Unsafe.Add(ref from, left + 1);");
                        writer.WriteLine("left += 2;");
                    }
                    using (writer.Block("if (left < rows)"))
                    {
                        writer.WriteLine("Unsafe.Add(ref panel, left * count + k) = Unsafe.Add(ref from, left);");
                    }
                }
            }
        });
    }

    private void EmitProductWidth(SourceWriter writer, int columns, int stride, int bits, (string? Dots, string Rows)? tailColumns)
    {
        int lanes = _element.Lanes(bits);
        int vectors = columns / lanes;
        int tail = columns % lanes;
        writer.WriteLine($"// columns: {columns} = {vectors} vector(s) + {tail} scalar(s) of {lanes} lanes");
        // Vector512 (32 registers): 8 rows × 3 vectors in 24 accumulators, so each vector of B loaded serves 8 FMAs
        // (Zen 5 runs two full-width FMAs a cycle), and one block of 12 rows × 2 vectors for 4 to 7 rows left over; then
        // blocks of 4 rows, 2 and 1, in wider tiles (VectorTileWidth). Narrower vectors (16 registers): 4 × 3, 2 × 3,
        // then 1 × 3.
        int[] rowBlocks = [4, 2, 1];
        // On Vector512 the tail columns (a quarter-width vector or less per FMA in a row's tile) go to a helper where every
        // lane is busy: for a row-major A, dot products over B's tail columns packed as rows (whenever the depth block holds
        // a whole vector, whatever the rows, so that a row's result never depends on the rows beside it in the call); for a
        // transposed A (aRow = 1, as in dW = dYᵀ X), 16 rows of C in the lanes of each accumulator, summed in the same order
        // as the tiles below. Rows from tailDone on keep those tiles. A caller that needs every element summed from C in
        // the order of k (so that terms of zero appended to the depth leave it unchanged, as a decoding step's shorter
        // key range must give the full computation's bits) passes inDepthOrder and gets no dot products.
        if (tailColumns is { Dots: null })
        {
            writer.WriteLine($"nint tailDone = aRow == 1 ? rows / {lanes} * {lanes} : 0;");
        }
        else if (tailColumns != null)
        {
            writer.WriteLine($"bool tailByDots = !inDepthOrder && aDepth == 1 && k1 - k0 >= {lanes};");
            writer.WriteLine($"nint tailDone = tailByDots ? rows : aRow == 1 ? rows / {lanes} * {lanes} : 0;");
        }
        bool packB = bits != 512 && PacksB(columns, stride);
        if (packB)
        {
            EmitPackB(writer, columns, bits);
        }
        writer.WriteLine("nint i = 0;");
        if (bits == 512)
        {
            // 4 to 7 rows left over after the 8-row blocks go with the last 8 as one block of 12 rows × 2 vectors: 24
            // accumulators again, and each vector of B serves 12 FMAs (a 4-row block is short of B's bandwidth from L2).
            writer.WriteLine("bool twelveRows = rows >= 12 && rows % 8 >= 4;");
            using (writer.Block("for (nint eightEnd = twelveRows ? rows - 12 : rows; i + 8 <= eightEnd; i += 8)"))
            {
                EmitRowBlock(writer, columns, stride, bits, 8, tailColumns != null, packB);
            }
            using (writer.Block("if (twelveRows)"))
            {
                EmitRowBlock(writer, columns, stride, bits, 12, tailColumns != null, packB);
                writer.WriteLine("i += 12;");
            }
        }
        foreach (int rowBlock in rowBlocks)
        {
            using (writer.Block(rowBlock > 1 ? $"for (; i + {rowBlock} <= rows; i += {rowBlock})" : "for (; i < rows; i++)"))
            {
                EmitRowBlock(writer, columns, stride, bits, rowBlock, tailColumns != null, packB);
            }
        }
        if (tailColumns is var (dots, byRows))
        {
            if (dots is not null)
            {
                using (writer.Block("if (tailByDots)"))
                {
                    writer.WriteLine($"{dots}(rows, k0, k1, ref a, aRow, ref b, ref c, fromC);");
                }
            }
            using (writer.Block(dots is null ? "if (tailDone > 0)" : "else if (tailDone > 0)"))
            {
                writer.WriteLine($"{byRows}(tailDone, k0, k1, ref a, aDepth, ref b, ref c, fromC);");
            }
        }
    }

    // MatrixProductAdd's packB copy on one narrow path: rows k0 … k1 of B into one panel per tile of whole vectors, the tiles
    // as EmitRowBlock cuts a row (the same for its blocks of 4, 2 and 1 rows there), the tile from column col at
    // panel[kCount · col + k · its width + j]. The tail columns past the last whole vector stay in B.
    private void EmitPackB(SourceWriter writer, int columns, int bits)
    {
        int lanes = _element.Lanes(bits);
        int vectors = columns / lanes;
        int width = VectorTileWidth(bits, 4);
        (int loopTiles, int[] lastTiles) = VectorTiles(vectors, width);
        string V = $"Vector{bits}";
        using (writer.Block("if (packB)"))
        {
            writer.WriteLine($"ref {T} panel = ref MemoryMarshal.GetArrayDataReference(bPanel!);");
            using (writer.Block("for (nint k = 0; k < kCount; k++)"))
            {
                writer.WriteLine($"ref {T} from = ref Unsafe.Add(ref b, (k0 + k) * {columns});");
                if (loopTiles > 0)
                {
                    using (writer.Block($"for (nint col = 0; col < {loopTiles * width * lanes}; col += {width * lanes})"))
                    {
                        writer.WriteLine($"ref {T} to = ref Unsafe.Add(ref panel, kCount * col + k * {width * lanes});");
                        for (int v = 0; v < width; v++)
                        {
                            writer.WriteLine($"{V}.LoadUnsafe(ref from, (nuint)(col{(v == 0 ? "" : $" + {v * lanes}")})).StoreUnsafe(ref to{(v == 0 ? "" : $", {v * lanes}")});");
                        }
                    }
                }
                int tileStart = loopTiles * width;
                foreach (int tileVectors in lastTiles)
                {
                    int col = tileStart * lanes;
                    writer.WriteLine($"ref {T} to{col} = ref Unsafe.Add(ref panel, kCount * {col} + k * {tileVectors * lanes});");
                    for (int v = 0; v < tileVectors; v++)
                    {
                        writer.WriteLine($"{V}.LoadUnsafe(ref from, {col + v * lanes}).StoreUnsafe(ref to{col}{(v == 0 ? "" : $", {v * lanes}")});");
                    }
                    tileStart += tileVectors;
                }
            }
        }
    }

    // The body of one block of `rowBlock` rows of C from row i: its whole vectors in tiles, then its tail columns (rows from
    // tailDone on, when a helper takes the others). A 12-row block's tail columns are done as 8 rows and 4, since tailDone is
    // a multiple of 8 that may fall inside it. With packedB (decided once per path, see packB) its tiles read B from the panel.
    private void EmitRowBlock(SourceWriter writer, int columns, int stride, int bits, int rowBlock, bool tailHelpers, bool packedB)
    {
        int lanes = _element.Lanes(bits);
        int vectors = columns / lanes;
        // The block's rows of A from depth k0: in place (aRowStep = aRow, aDepthStep = aDepth), or copied into the panel (not
        // on Vector512, see packA).
        writer.WriteLine($"ref {T} aTop = ref Unsafe.Add(ref a, i * aRow + k0 * aDepth);");
        writer.WriteLine("nint aRowStep = aRow, aDepthStep = aDepth;");
        if (bits != 512)
        {
            using SourceWriter.Scope packing = writer.Block("if (packA)");
            writer.WriteLine("aTop = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(aPanel!), i * kCount);");
            writer.WriteLine($"(aRowStep, aDepthStep) = (1, {rowBlock});");
        }
        // Whole vectors: runs of tiles `width` vectors wide, then the tiles of what is left (see VectorTiles).
        int width = VectorTileWidth(bits, rowBlock);
        (int loopTiles, int[] lastTiles) = VectorTiles(vectors, width);
        writer.WriteLine($"// {rowBlock} row(s) × ({(loopTiles > 0 ? $"{loopTiles} × {width}" : "")}{(loopTiles > 0 && lastTiles.Length > 0 ? " + " : "")}{string.Join(" + ", lastTiles)}) vectors");
        if (loopTiles > 0)
        {
            using (loopTiles > 1 ? writer.Block($"for (nint col = 0; col < {loopTiles * width * lanes}; col += {width * lanes})") : writer.Block())
            {
                EmitTile(writer, stride, bits, rowBlock, width, loopTiles > 1 ? "col" : "0", packedB: packedB);
            }
        }
        int tileStart = loopTiles * width;
        foreach (int tileVectors in lastTiles)
        {
            using (writer.Block())
            {
                EmitTile(writer, stride, bits, rowBlock, tileVectors, (tileStart * lanes).ToString(), packedB: packedB);
            }
            tileStart += tileVectors;
        }
        // The tail columns at their known offset: one narrower vector per width that fits, then scalars.
        foreach ((int firstRow, int rowCount) in rowBlock == 12 ? new[] { (0, 8), (8, 4) } : new[] { (0, rowBlock) })
        {
            EmitTailColumns(writer, columns, stride, bits, firstRow, rowCount, tailHelpers);
        }
    }

    private void EmitTailColumns(SourceWriter writer, int columns, int stride, int bits, int firstRow, int rowCount, bool tailHelpers)
    {
        int lanes = _element.Lanes(bits);
        int tail = columns % lanes;
        if (tail == 0)
        {
            return;
        }
        using SourceWriter.Scope tailScope = tailHelpers ? writer.Block(firstRow == 0 ? "if (i >= tailDone)" : $"if (i + {firstRow} >= tailDone)") : default;
        int offset = columns - tail, left = tail;
        foreach (int narrow in new[] { 256, 128 })
        {
            int narrowLanes = _element.Lanes(narrow);
            if (narrow >= bits || left < narrowLanes)
            {
                continue;
            }
            using (writer.Block())
            {
                EmitTile(writer, stride, narrow, rowCount, 1, offset.ToString(), firstRow);
            }
            offset += narrowLanes;
            left -= narrowLanes;
        }
        if (left > 0)
        {
            writer.WriteLine($"// the last {left} column(s), at offset {offset}");
            for (int r = firstRow; r < firstRow + rowCount; r++)
            {
                EmitProductScalar(writer, columns, stride, offset.ToString(), r == 0 ? "i" : $"(i + {r})");
            }
        }
    }

    /// <summary>
    /// MatrixProductAdd's last <c>columns % lanes</c> columns on Vector512 for a row-major A (aDepth = 1), as dot products:
    /// the tail columns of B over one depth block are packed as rows (B's columns made contiguous), then each output is
    /// a dot product of a row of A with one of them, 4 rows × the tail columns in accumulators (fewer rows when the
    /// tail is wider). Returns the method name.
    /// </summary>
    private string MatrixProductTailDots(int columns)
    {
        string name = $"MatrixProductTailDots{columns}";
        int lanes = _element.Lanes(512);
        int tail = columns % lanes, start = columns - tail;
        Request(name, writer =>
        {
            writer.Summary(
                $"C[i, c] += Σₖ A[i, k] · B[k, c] for i &lt; rows, k0 ≤ k &lt; k1 (at most 256, at least {lanes}) and the last {tail} column(s) {start} ≤ c &lt; {columns}, A row-major:\n" +
                $"B's {tail} column(s) are copied as rows, so every FMA multiplies {lanes} elements of depth (a tile of row-major\n" +
                $"columns would use {tail} of its {lanes} lanes). Called by MatrixProductAdd{columns} on the Vector512 path.");
            LayerScaffold.HotMethod(writer);
            using (writer.Block($"private static void {name}(int rows, nint k0, nint k1, ref {T} a, nint aRow, ref {T} b, ref {T} c, bool fromC)"))
            {
                string VT = $"Vector512<{T}>";
                string integer = _element.Size == 4 ? "int" : "long";
                writer.WriteLine("nint depth = k1 - k0;");
                writer.WriteLine($"// column j of the tail at columnsOfB[j·256 ..], over this depth block");
                writer.WriteLine($"Span<{T}> columnsOfB = stackalloc {T}[{tail * 256}];");
                writer.WriteLine("ref " + T + " packed = ref MemoryMarshal.GetReference(columnsOfB);");
                using (writer.Block("for (nint k = 0; k < depth; k++)"))
                {
                    writer.WriteLine($"ref {T} bRow = ref Unsafe.Add(ref b, (k0 + k) * {columns} + {start});");
                    for (int j = 0; j < tail; j++)
                    {
                        writer.WriteLine($"Unsafe.Add(ref packed, {(j == 0 ? "" : $"{j * 256} + ")}k) = {(j == 0 ? "bRow" : $"Unsafe.Add(ref bRow, {j})")};");
                    }
                }
                writer.WriteLine($"// depth = whole vectors + a rest, read as the vector ending at depth with the lanes already counted masked");
                writer.WriteLine($"nint wholeEnd = depth / {lanes} * {lanes};");
                writer.WriteLine($"{VT} restMask = Vector512.GreaterThanOrEqual(Vector512<{integer}>.Indices, Vector512.Create(({integer})({lanes} - (depth - wholeEnd)))).As<{integer}, {T}>();");
                // 4 rows × a tail of up to 4 columns is 16 accumulators; a wider tail takes fewer rows (32 registers).
                int rowBlock = tail <= 4 ? 4 : tail <= 8 ? 2 : 1;
                writer.WriteLine("nint i = 0;");
                if (rowBlock > 1)
                {
                    using (writer.Block($"for (; i + {rowBlock} <= rows; i += {rowBlock})"))
                    {
                        EmitTailDotTile(writer, columns, rowBlock);
                    }
                }
                using (writer.Block("for (; i < rows; i++)"))
                {
                    EmitTailDotTile(writer, columns, 1);
                }
            }
        });
        return name;
    }

    // `rowBlock` rows of A from row i × MatrixProductTailDots' packed columns, reduced into C.
    private void EmitTailDotTile(SourceWriter writer, int columns, int rowBlock)
    {
        int lanes = _element.Lanes(512);
        int tail = columns % lanes, start = columns - tail;
        string VT = $"Vector512<{T}>";
        string Row(int r) => r == 0 ? "i" : $"(i + {r})";
        for (int r = 0; r < rowBlock; r++)
        {
            writer.WriteLine($"ref {T} aRow{r} = ref Unsafe.Add(ref a, {Row(r)} * aRow + k0);");
            for (int j = 0; j < tail; j++)
            {
                writer.WriteLine($"{VT} acc{r}{j} = {VT}.Zero;");
            }
        }
        static string Offset(string index) => index.Contains(" ") ? $"(nuint)({index})" : $"(nuint){index}";
        void Step(string offset, bool masked)
        {
            for (int j = 0; j < tail; j++)
            {
                writer.WriteLine($"{VT} column{j} = Vector512.LoadUnsafe(ref packed, {Offset(j == 0 ? offset : $"{j * 256} + {offset}")}){(masked ? " & restMask" : "")};");
            }
            for (int r = 0; r < rowBlock; r++)
            {
                // the masked lanes of A too: an infinite element counted already, times a masked zero, would be NaN
                writer.WriteLine($"{VT} a{r} = Vector512.LoadUnsafe(ref aRow{r}, {Offset(offset)}){(masked ? " & restMask" : "")};");
                for (int j = 0; j < tail; j++)
                {
                    writer.WriteLine($"acc{r}{j} = Vector512.MultiplyAddEstimate(a{r}, column{j}, acc{r}{j});");
                }
            }
        }
        using (writer.Block($"for (nint d = 0; d < wholeEnd; d += {lanes})"))
        {
            Step("d", masked: false);
        }
        using (writer.Block("if (wholeEnd < depth)"))
        {
            Step($"depth - {lanes}", masked: true);
        }
        string sums = _element.Size == 4 ? "Vector128" : "Vector256";
        for (int r = 0; r < rowBlock; r++)
        {
            writer.WriteLine($"ref {T} c{r} = ref Unsafe.Add(ref c, {Row(r)} * {columns} + {start});");
            int j = 0;
            for (; j + 4 <= tail; j += 4)
            {
                string at = j == 0 ? $"c{r}" : $"Unsafe.Add(ref c{r}, {j})";
                writer.WriteLine($"{sums}<{T}> sums{r}{j} = Reductions.SumEach(acc{r}{j}, acc{r}{j + 1}, acc{r}{j + 2}, acc{r}{j + 3});");
                writer.WriteLine($"(fromC ? {sums}.LoadUnsafe(ref {at}) + sums{r}{j} : sums{r}{j}).StoreUnsafe(ref {at});");
            }
            for (; j < tail; j++)
            {
                string at = j == 0 ? $"c{r}" : $"Unsafe.Add(ref c{r}, {j})";
                writer.WriteLine($"{at} = fromC ? {at} + Reductions.Sum(acc{r}{j}) : Reductions.Sum(acc{r}{j});");
            }
        }
    }

    // How many vectors of columns a tile of `rowBlock` rows spans. Eight rows take 3 (24 accumulators, 3 loads of B and 8
    // broadcasts for 24 FMAs), twelve take 2 (24 again). The blocks of 4, 2 and 1 rows left after those (7 rows, 30 keys)
    // would get 12, 6 or 3 accumulators at 3 vectors: fewer than the 8 FMAs two pipes keep in flight at 4 cycles of
    // latency, with a load for every one or two of them. On Vector512 they are wider instead: 4 × 6, 2 × 8 and 1 × 8
    // vectors. Narrower vectors have 16 registers, which 4 × 3 fills.
    private static int VectorTileWidth(int bits, int rowBlock)
        => bits != 512 || rowBlock == 8 ? 3 : rowBlock == 12 ? 2 : rowBlock == 4 ? 6 : 8;

    // Cuts a row's `vectors` whole vectors into tiles at most `width` wide: `loopTiles` tiles of `width` (emitted as a
    // loop), then `lastTiles`. A remainder under half the width is not left as a thin tile of its own (its accumulators
    // would wait on each other) but shares the last full tile's vectors as two tiles of about equal width, except at the
    // width of 3, where a remainder of one vector keeps its tile (8 rows give it 8 accumulators, as many as are in flight).
    private static (int LoopTiles, int[] LastTiles) VectorTiles(int vectors, int width)
    {
        int full = vectors / width, rest = vectors % width;
        if (rest == 0)
        {
            return (full, []);
        }
        if (full == 0 || width == 3 || 2 * rest >= width)
        {
            return (full, [rest]);
        }
        int merged = width + rest;
        return (full - 1, [(merged + 1) / 2, merged / 2]);
    }

    // One register tile: `rowBlock` rows of C × `vectorCount` vectors from column `col`, accumulated over all of depth.
    // `firstRow` offsets the rows from i (a 12-row block's last 4 rows).
    // B's and C's rows are `stride` elements apart.
    // With packedB the tile reads B from MatrixProductAdd's panel when packB is set (the tile's own [k, vectorCount vectors]
    // run from kCount · col on), else in place.
    private void EmitTile(SourceWriter writer, int stride, int bits, int rowBlock, int vectorCount, string col, int firstRow = 0, bool packedB = false)
    {
        int lanes = _element.Lanes(bits);
        string V = $"Vector{bits}";
        string VT = $"Vector{bits}<{T}>";
        string Row(int r) => r + firstRow == 0 ? "i" : $"(i + {r + firstRow})";
        // acc{row}{vector}, with a separator once rows take two digits (acc10_1, not acc101).
        string Tag(int r, int v) => rowBlock > 10 ? $"{r}_{v}" : $"{r}{v}";
        for (int r = 0; r < rowBlock; r++)
        {
            for (int v = 0; v < vectorCount; v++)
            {
                writer.WriteLine($"ref {T} c{Tag(r, v)} = ref Unsafe.Add(ref c, {Row(r)} * {stride} + {col}{(v == 0 ? "" : $" + {v * lanes}")});");
                writer.WriteLine($"{VT} acc{Tag(r, v)} = fromC ? {V}.LoadUnsafe(ref c{Tag(r, v)}) : {VT}.Zero;");
            }
        }
        for (int r = 0; r < rowBlock; r++)
        {
            int aRowIndex = r + firstRow;
            writer.WriteLine(aRowIndex switch
            {
                0 => $"ref {T} aRow{r} = ref aTop;",
                1 => $"ref {T} aRow{r} = ref Unsafe.Add(ref aTop, aRowStep);",
                _ => $"ref {T} aRow{r} = ref Unsafe.Add(ref aTop, {aRowIndex} * aRowStep);",
            });
        }
        if (packedB)
        {
            writer.WriteLine($"ref {T} bColumn = ref packB ? ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(bPanel!), kCount * {col}) : ref Unsafe.Add(ref b, k0 * {stride} + {col});");
            writer.WriteLine($"nint bStep = packB ? {vectorCount * lanes} : {stride};");
        }
        else
        {
            writer.WriteLine($"ref {T} bColumn = ref Unsafe.Add(ref b, k0 * {stride} + {col});");
        }
        using (writer.Block("for (nint k = 0; k < kCount; k++)"))
        {
            writer.WriteLine($"ref {T} bRow = ref Unsafe.Add(ref bColumn, k * {(packedB ? "bStep" : stride.ToString())});");
            writer.WriteLine("nint aOffset = k * aDepthStep;");
            if (vectorCount <= 3)
            {
                for (int v = 0; v < vectorCount; v++)
                {
                    writer.WriteLine($"{VT} b{v} = {V}.LoadUnsafe(ref bRow{(v == 0 ? "" : $", {v * lanes}")});");
                }
                for (int r = 0; r < rowBlock; r++)
                {
                    writer.WriteLine($"{VT} a{r} = {V}.Create(Unsafe.Add(ref aRow{r}, aOffset));");
                    for (int v = 0; v < vectorCount; v++)
                    {
                        writer.WriteLine($"acc{Tag(r, v)} = {V}.MultiplyAddEstimate(a{r}, b{v}, acc{Tag(r, v)});");
                    }
                }
            }
            else
            {
                // A wide tile of few rows: the rows' broadcasts first, then each vector of B as it is used, so that the
                // accumulators, the broadcasts and one vector of B fit in the registers.
                for (int r = 0; r < rowBlock; r++)
                {
                    writer.WriteLine($"{VT} a{r} = {V}.Create(Unsafe.Add(ref aRow{r}, aOffset));");
                }
                for (int v = 0; v < vectorCount; v++)
                {
                    writer.WriteLine($"{VT} b{v} = {V}.LoadUnsafe(ref bRow{(v == 0 ? "" : $", {v * lanes}")});");
                    for (int r = 0; r < rowBlock; r++)
                    {
                        writer.WriteLine($"acc{Tag(r, v)} = {V}.MultiplyAddEstimate(a{r}, b{v}, acc{Tag(r, v)});");
                    }
                }
            }
        }
        for (int r = 0; r < rowBlock; r++)
        {
            for (int v = 0; v < vectorCount; v++)
            {
                writer.WriteLine($"acc{Tag(r, v)}.StoreUnsafe(ref c{Tag(r, v)});");
            }
        }
    }

    // One row's columns from `fromColumn` on, as plain scalar loops (the scalar path, and each row's tail columns).
    private void EmitProductScalar(SourceWriter writer, int columns, int stride, string fromColumn, string row)
    {
        string M = _element.Size == 4 ? "MathF" : "Math";
        using (writer.Block($"for (nint col = {fromColumn}; col < {columns}; col++)"))
        {
            writer.WriteLine($"ref {T} target = ref Unsafe.Add(ref c, {row} * {stride} + col);");
            writer.WriteLine($"{T} sum = fromC ? target : 0;");
            using (writer.Block("for (nint k = k0; k < k1; k++)"))
            {
                writer.WriteLine($"sum = {T}.MultiplyAddEstimate(Unsafe.Add(ref a, {row} * aRow + k * aDepth), Unsafe.Add(ref b, k * {stride} + col), sum);");
            }
            writer.WriteLine("target = sum;");
        }
    }

    /// <summary>
    /// Y ← Y + X Wᵀ for X of <c>[rows, depth]</c>, W of <c>[columns, depth]</c> (PyTorch's <c>nn.Linear</c> layout, or the
    /// keys of a score matrix) and Y of <c>[rows, columns]</c>, all row-major; rows and columns are runtime values, depth
    /// the compile-time constant. A register-blocked micro-kernel of dot products: 5 rows of X × 5 rows of W in 25
    /// accumulators on the Vector512 path (32 registers; sums reduced four at a time; 4 × 4 when the depth is under 4
    /// vectors), 4 × 3 in 12 on the narrower ones (16 registers; 3 × 4 with each row's sums reduced together on Vector256
    /// when the depth is 4 vectors or less), so each loaded vector serves 3 to 5 FMAs; the tail of
    /// an odd depth is one more vector loaded at its known offset with the lanes already counted masked off. Returns the
    /// method name.
    /// </summary>
    public string ProductTransposedAdd(int depth)
    {
        string name = $"ProductTransposedAdd{depth}";
        string dot = Dot(depth);
        // requested here, not while this method is written (the requests are being enumerated then)
        string split = depth >= 4 * _element.Lanes(512) ? FiveWideEnd() : "";
        Request(name, writer =>
        {
            writer.Summary(
                $"Y[r, c] += Σ_d X[r, d] · W[c, d] for r &lt; rows, c &lt; columns, d &lt; {depth}: X [rows, {depth}], W [columns, {depth}], Y [rows, columns].\n" +
                $"Tiles of {(depth >= 4 * _element.Lanes(512) ? "5 rows of X × 5 rows of W" : "4 rows of X × 4 rows of W")} (Vector512), {(depth <= 4 * _element.Lanes(256) ? "3 × 4 (Vector256), or 4 × 3 (Vector128)" : "or 4 × 3 (narrower vectors)")}, are held in accumulators; X's rows are taken in\n" +
                "chunks that stay in L1 while W streams past once per chunk.");
            // Inlined where the JIT accepts its size; where it does not, the called copy is fully optimised from the first call.
            writer.WriteLine("[MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]");
            using (writer.Block($"private static void {name}(int rows, int columns, ref {T} x, ref {T} weight, ref {T} y)"))
            {
                bool first = true;
                foreach (int bits in new[] { 512, 256, 128 })
                {
                    if (depth < _element.Lanes(bits))
                    {
                        continue;
                    }
                    using (writer.Block($"{(first ? "if" : "else if")} (SimdPaths.Vector{bits})"))
                    {
                        EmitTransposedProductWidth(writer, depth, bits, split);
                    }
                    first = false;
                }
                using (first ? default : writer.Block("else"))
                {
                    using (writer.Block("for (nint r = 0; r < rows; r++)"))
                    {
                        using (writer.Block("for (nint o = 0; o < columns; o++)"))
                        {
                            writer.WriteLine($"Unsafe.Add(ref y, r * columns + o) += {dot}(ref Unsafe.Add(ref x, r * {depth}), ref Unsafe.Add(ref weight, o * {depth}));");
                        }
                    }
                }
            }
        });
        return name;
    }

    private void EmitTransposedProductWidth(SourceWriter writer, int depth, int bits, string split)
    {
        int lanes = _element.Lanes(bits);
        int vectors = depth / lanes;
        int tail = depth % lanes;
        string V = $"Vector{bits}";
        string VT = $"Vector{bits}<{T}>";
        writer.WriteLine($"// depth: {depth} = {vectors} × {lanes} lanes{(tail > 0 ? $" + {tail}, read as the vector at offset {depth - lanes} with its first {lanes - tail} lanes masked" : "")}");
        if (tail > 0)
        {
            string integer = _element.Size == 4 ? "int" : "long";
            writer.WriteLine($"{VT} tailMask = {V}.GreaterThanOrEqual({V}<{integer}>.Indices, {V}.Create(({integer}){lanes - tail})).As<{integer}, {T}>();");
        }
        // Vector512 with 4 or more vectors of depth: 5 × 5 tiles (below). With fewer, a tile's loop is too short for the
        // wider tile to pay for its fifth column's reductions (16 × 32 outputs of depth 32: 310 → 330 ns): 4 × 4 tiles,
        // each row's four sums taken together (Reductions.SumEach). Narrower vectors (16 registers): 4 × 3 tiles, each
        // sum on its own; except Vector256 at a depth of 4 vectors or less, where those twelve separate reductions cost
        // more than the tile's FMAs: 3 × 4 tiles there, each row's four sums together (SumEach in Sum's order, so the
        // bits are those of a one-column tile; 16 × 32 outputs of depth 32 on Zen 3: 903 → 775 ns).
        if (bits == 512 && depth >= 4 * lanes)
        {
            EmitTransposedProduct512(writer, depth, split);
            return;
        }
        bool rowsOfFourSums = bits == 256 && depth <= 4 * lanes;
        int outputBlock = bits == 512 || rowsOfFourSums ? 4 : 3;
        int rowBlock = rowsOfFourSums ? 3 : 4;
        // Rows are taken in chunks small enough to stay in L1 (RowChunkBytes) while W's rows stream past once per
        // chunk, a block of them at a time: each block of W is read from L2 once and then reused from L1 by every
        // row of the chunk. Each output is one tile's dot product whichever tile computes it, so the order is free.
        int rowChunk = Math.Max(rowBlock, RowChunkBytes / (depth * _element.Size) / rowBlock * rowBlock);
        using (writer.Block($"for (nint chunk = 0; chunk < rows; chunk += {rowChunk})"))
        {
            writer.WriteLine($"nint chunkEnd = Math.Min(rows, chunk + {rowChunk});");
            writer.WriteLine("nint o = 0;");
            void RowTiles(int block, bool fresh)
            {
                writer.WriteLine("nint r = chunk;");
                using (writer.Block($"for (; r + {rowBlock} <= chunkEnd; r += {rowBlock})"))
                {
                    EmitDotTile(writer, depth, bits, rowBlock, block, fresh);
                }
                using (writer.Block("for (; r < chunkEnd; r++)"))
                {
                    EmitDotTile(writer, depth, bits, 1, block, fresh);
                }
            }
            using (writer.Block($"for (; o + {outputBlock} <= columns; o += {outputBlock})"))
            {
                RowTiles(outputBlock, fresh: false);
            }
            // The last columns % B outputs (B = the tile's width), when there are at least two of them and B columns in
            // all: one more whole tile over the last B columns, adding only its sums from column `fresh` on (the others
            // are done). A one-column tile costs each output a load of X per FMA and a reduction of its own: two of them
            // took longer than a whole tile; one alone is cheaper.
            using (writer.Block($"if (columns - o >= 2 && columns >= {outputBlock})"))
            {
                writer.WriteLine("nint fresh = o;");
                writer.WriteLine($"o = columns - {outputBlock};");
                if (outputBlock == 4)
                {
                    string sums = _element.Size == 4 ? "Vector128" : "Vector256";
                    string integer = _element.Size == 4 ? "int" : "long";
                    writer.WriteLine($"{sums}<{T}> freshSums = {sums}.GreaterThanOrEqual({sums}<{integer}>.Indices, {sums}.Create(({integer})(fresh - o))).As<{integer}, {T}>();");
                }
                RowTiles(outputBlock, fresh: true);
                writer.WriteLine("o = columns;");
            }
            using (writer.Block("for (; o < columns; o++)"))
            {
                RowTiles(1, fresh: false);
            }
        }
    }

    // The Vector512 path for 4 or more vectors of depth: 5 × 5 tiles (25 accumulators, the 5 vectors of W and one of X
    // in 32 registers), each step 10 loads for 25 FMAs where a 4 × 4 tile needs 8 for 16; that matters most when rows
    // straddle cache lines, as the rows of a caller's array usually do (20 × 30 × 256, both operands 16 bytes off a line: 1.9 → 1.6 µs). Rows and columns
    // are split into 5-wide tiles and then 4-wide ones (5a + 4b is every count from 12 up, and 4, 5, 8, 9 and 10), so
    // the common sizes (multiples of 4 or of 5) are covered exactly; what is left is taken one row, or one column, at a
    // time, except two or three columns, which are one 4-wide tile moved back over columns already done.
    private void EmitTransposedProduct512(SourceWriter writer, int depth, string split)
    {
        string sums = _element.Size == 4 ? "Vector128" : "Vector256";
        string integer = _element.Size == 4 ? "int" : "long";
        // Rows are taken in chunks small enough to stay in L1 (RowChunkBytes) while W's rows stream past once per
        // chunk, a block of them at a time: each block of W is read from L2 once and then reused from L1 by every
        // row of the chunk. Each output is one tile's dot product whichever tile computes it, so the order is free.
        // A whole number of 20 rows where that fits (5a + 4b rows exactly), else of 5.
        int rowsInL1 = RowChunkBytes / (depth * _element.Size);
        int rowChunk = rowsInL1 >= 20 ? rowsInL1 / 20 * 20 : Math.Max(5, rowsInL1 / 5 * 5);
        writer.WriteLine("// columns [0, fiveWideColumns) in 5-wide tiles, the rest in 4-wide ones, then one at a time (5a + 4b = columns where it can)");
        writer.WriteLine($"nint fiveWideColumns = {split}(columns);");
        using (writer.Block($"for (nint chunk = 0; chunk < rows; chunk += {rowChunk})"))
        {
            writer.WriteLine($"nint chunkEnd = Math.Min(rows, chunk + {rowChunk});");
            writer.WriteLine("// and the chunk's rows [chunk, fiveRowEnd) in 5-row tiles, the rest in 4-row ones, then one at a time");
            writer.WriteLine($"nint fiveRowEnd = chunk + {split}(chunkEnd - chunk);");
            void RowTiles(int block, bool fresh)
            {
                writer.WriteLine("nint r = chunk;");
                using (writer.Block("for (; r < fiveRowEnd; r += 5)"))
                {
                    EmitDotTile(writer, depth, 512, 5, block, fresh);
                }
                using (writer.Block("for (; r + 4 <= chunkEnd; r += 4)"))
                {
                    EmitDotTile(writer, depth, 512, 4, block, fresh);
                }
                using (writer.Block("for (; r < chunkEnd; r++)"))
                {
                    EmitDotTile(writer, depth, 512, 1, block, fresh);
                }
            }
            writer.WriteLine("nint o = 0;");
            using (writer.Block("for (; o < fiveWideColumns; o += 5)"))
            {
                RowTiles(5, fresh: false);
            }
            // Then 4-wide tiles; when two or three columns are left, the last one is moved back to end at the last
            // column and adds only its sums from column `fresh` on. A one-column tile costs each output a load of X
            // per FMA and a reduction of its own: two of them took longer than a whole tile; one alone is cheaper.
            writer.WriteLine("// 4-wide tiles; with 2 or 3 columns left, the last one ends at the last column and adds only from `fresh` on");
            writer.WriteLine("nint fresh = o;");
            using (writer.Block("while (columns - fresh >= 2 && columns >= 4)"))
            {
                writer.WriteLine("o = Math.Min(fresh, columns - 4);");
                writer.WriteLine($"{sums}<{T}> freshSums = {sums}.GreaterThanOrEqual({sums}<{integer}>.Indices, {sums}.Create(({integer})(fresh - o))).As<{integer}, {T}>();");
                RowTiles(4, fresh: true);
                writer.WriteLine("fresh = o + 4;");
            }
            using (writer.Block("for (o = fresh; o < columns; o++)"))
            {
                RowTiles(1, fresh: false);
            }
        }
    }

    /// <summary>
    /// How many of <c>count</c> rows or columns a ProductTransposedAdd takes in 5-wide tiles, leaving a multiple of 4 when
    /// one can be left: the rest modulo 5 is made up by (5 − count mod 5) mod 5 tiles of 4. Returns the method name.
    /// </summary>
    private string FiveWideEnd()
    {
        const string name = "FiveWideEnd";
        Request(name, writer =>
        {
            writer.Summary("The first count − 4b of count rows or columns, a multiple of 5, with b = (−count) mod 5 tiles of 4 after them\n" +
                "(count = 5a + 4b exactly from 12 up, and for 4, 5, 8, 9, 10); where 4b is more than count, b = 0.");
            writer.WriteLine("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            using (writer.Block($"private static nint {name}(nint count)"))
            {
                writer.WriteLine("nint fourWide = (5 - count % 5) % 5;");
                writer.WriteLine("return (4 * fourWide <= count ? count - 4 * fourWide : count) / 5 * 5;");
            }
        });
        return name;
    }

    // Bytes of X rows one chunk of ProductTransposedAdd keeps in L1 (Zen 4 has 32 KB of L1 data, Zen 5 48 KB),
    // leaving room for the block of W rows and the outputs.
    private const int RowChunkBytes = 20 * 1024;

    // A tile of `rowBlock` rows of X × `outputBlock` rows of W (starting at r and o), reduced into Y.
    // With `fresh`, only outputs at columns ≥ `fresh` are added (the tile overlaps columns already done); on Vector512
    // `freshSums` masks the lanes of each row's first four.
    private void EmitDotTile(SourceWriter writer, int depth, int bits, int rowBlock, int outputBlock, bool fresh = false)
    {
        int lanes = _element.Lanes(bits);
        int vectors = depth / lanes;
        int tail = depth % lanes;
        string V = $"Vector{bits}";
        string VT = $"Vector{bits}<{T}>";
        for (int i = 0; i < rowBlock; i++)
        {
            writer.WriteLine($"ref {T} x{i} = ref Unsafe.Add(ref x, {(i == 0 ? "r" : $"(r + {i})")} * {depth});");
        }
        for (int j = 0; j < outputBlock; j++)
        {
            writer.WriteLine($"ref {T} w{j} = ref Unsafe.Add(ref weight, {(j == 0 ? "o" : $"(o + {j})")} * {depth});");
        }
        for (int i = 0; i < rowBlock; i++)
        {
            for (int j = 0; j < outputBlock; j++)
            {
                writer.WriteLine($"{VT} acc{i}{j} = {VT}.Zero;");
            }
        }
        // Vector256's four-column tiles (3 rows × 4 columns in 12 accumulators) load the rows of X first and then one
        // vector of W at a time, so that 16 registers hold everything; the others load W's vectors first and then one row
        // of X at a time.
        bool rowsOfFourSums = bits == 256 && outputBlock == 4;
        void Step(string offset, bool masked)
        {
            // masked lanes of x too: they were read already, and an infinite input times a masked (zero) weight would be NaN
            string Load(string name, int index) => $"{VT} {name}v{index} = {V}.LoadUnsafe(ref {name}{index}, {offset}){(masked ? " & tailMask" : "")};";
            string Fma(int i, int j) => $"acc{i}{j} = {V}.MultiplyAddEstimate(xv{i}, wv{j}, acc{i}{j});";
            (string outer, int outerCount, string inner, int innerCount) = rowsOfFourSums ? ("w", outputBlock, "x", rowBlock) : ("x", rowBlock, "w", outputBlock);
            for (int k = 0; k < innerCount; k++)
            {
                writer.WriteLine(Load(inner, k));
            }
            for (int m = 0; m < outerCount; m++)
            {
                writer.WriteLine(Load(outer, m));
                for (int k = 0; k < innerCount; k++)
                {
                    writer.WriteLine(rowsOfFourSums ? Fma(k, m) : Fma(m, k));
                }
            }
        }
        using (writer.Block($"for (nuint d = 0; d < {vectors * lanes}; d += {lanes})"))
        {
            Step("d", masked: false);
        }
        if (tail > 0)
        {
            using (writer.Block())
            {
                Step((depth - lanes).ToString(), masked: true);
            }
        }
        // On Vector512 (and in Vector256's four-column tiles) each row's first four outputs are one vector of four sums
        // added in place (Reductions.SumEach), and on Vector512 the columns past the fourth are reduced four rows at a
        // time (one SumEach, its lanes added to four rows).
        int quadColumns = (bits == 512 || rowsOfFourSums) && outputBlock >= 4 ? 4 : 0;
        string sums = _element.Size == 4 ? "Vector128" : "Vector256";
        for (int i = 0; i < rowBlock; i++)
        {
            string row = i == 0 ? "r" : $"(r + {i})";
            if (quadColumns > 0)
            {
                writer.WriteLine($"ref {T} y{i} = ref Unsafe.Add(ref y, {row} * columns + o);");
                if (fresh)
                {
                    // the lanes already done keep their value exactly (a select, not an added zero: -0 + 0 is +0)
                    writer.WriteLine($"{sums}<{T}> y{i}Old = {sums}.LoadUnsafe(ref y{i});");
                    writer.WriteLine($"{sums}.ConditionalSelect(freshSums, y{i}Old + Reductions.SumEach(acc{i}0, acc{i}1, acc{i}2, acc{i}3), y{i}Old).StoreUnsafe(ref y{i});");
                    continue;
                }
                writer.WriteLine($"({sums}.LoadUnsafe(ref y{i}) + Reductions.SumEach(acc{i}0, acc{i}1, acc{i}2, acc{i}3)).StoreUnsafe(ref y{i});");
                continue;
            }
            if (bits == 512)
            {
                continue; // a one-column tile: its rows are reduced together below
            }
            for (int j = 0; j < outputBlock; j++)
            {
                string output = j == 0 ? "o" : $"o + {j}";
                string add = $"Unsafe.Add(ref y, {row} * columns + {output}) += Reductions.Sum(acc{i}{j});";
                if (fresh && j < outputBlock - 1)
                {
                    // the tile's last column is always one not done yet
                    using (writer.Block($"if ({output} >= fresh)"))
                    {
                        writer.WriteLine(add);
                    }
                    continue;
                }
                writer.WriteLine(add);
            }
        }
        if (bits != 512)
        {
            return;
        }
        // The columns past the fourth (the fifth of a 5-wide tile, or a one-column tile's only one): always columns not
        // done yet, since a tile that overlaps done columns ends at the last column. A row left over is summed in
        // SumEach's order, so an output has the same bits whichever rows the call covers.
        for (int j = quadColumns; j < outputBlock; j++)
        {
            string output = j == 0 ? "o" : $"o + {j}";
            int i = 0;
            for (; i + 4 <= rowBlock; i += 4)
            {
                string column = $"column{j}Rows{i}";
                writer.WriteLine($"{sums}<{T}> {column} = Reductions.SumEach(acc{i}{j}, acc{i + 1}{j}, acc{i + 2}{j}, acc{i + 3}{j});");
                for (int k = 0; k < 4; k++)
                {
                    string row = i + k == 0 ? "r" : $"(r + {i + k})";
                    writer.WriteLine($"Unsafe.Add(ref y, {row} * columns + {output}) += {column}.GetElement({k});");
                }
            }
            for (; i < rowBlock; i++)
            {
                string row = i == 0 ? "r" : $"(r + {i})";
                writer.WriteLine($"Unsafe.Add(ref y, {row} * columns + {output}) += Reductions.SumLikeEach(acc{i}{j});");
            }
        }
    }

    /// <summary>
    /// MatrixProductAdd's last <c>columns % lanes</c> columns on Vector512 for a transposed A (aRow = 1: A's column k is
    /// contiguous, as ∂W = ∂Yᵀ X reads ∂Y): 16 rows of C in each accumulator's lanes, one per tail column, each step a
    /// vector of A's column k times B[k, c] broadcast. Every element is summed in the same order as in MatrixProductAdd's
    /// own tiles (from C, then k upwards), so the results are the same bits. Returns the method name.
    /// </summary>
    private string MatrixProductTailRows(int columns, int stride)
    {
        string name = $"MatrixProductTailRows{Shape(columns, stride)}";
        int lanes = _element.Lanes(512);
        int tail = columns % lanes, start = columns - tail;
        // 4 vectors of rows × a tail of up to 4 columns is 16 accumulators; up to 8 columns, 2 vectors; wider, 1.
        int rowVectors = tail <= 4 ? 4 : tail <= 8 ? 2 : 1;
        Request(name, writer =>
        {
            writer.Summary(
                $"C[i, c] += Σₖ A[i + k·aDepth] · B[k, c] for i &lt; rows (a multiple of {lanes}), k0 ≤ k &lt; k1 and the last {tail} column(s) {start} ≤ c &lt; {columns}:\n" +
                $"{lanes} rows of C in the lanes, so every FMA uses all of them (a row's tile of these columns would use {tail} of {lanes}).\n" +
                $"Called by MatrixProductAdd{Shape(columns, stride)} on the Vector512 path when A is transposed (aRow = 1).");
            LayerScaffold.HotMethod(writer);
            using (writer.Block($"private static void {name}(nint rows, nint k0, nint k1, ref {T} a, nint aDepth, ref {T} b, ref {T} c, bool fromC)"))
            {
                writer.WriteLine($"// C's tail columns are strided in memory, so a tile's pass through columnsOfC: row l of the tile's column j at j·(the tile's rows) + l");
                writer.WriteLine($"Span<{T}> columnsOfC = stackalloc {T}[{tail * rowVectors * lanes}];");
                writer.WriteLine($"ref {T} buffer = ref MemoryMarshal.GetReference(columnsOfC);");
                writer.WriteLine("nint i = 0;");
                if (rowVectors > 1)
                {
                    using (writer.Block($"for (; i + {rowVectors * lanes} <= rows; i += {rowVectors * lanes})"))
                    {
                        EmitTailRowsTile(writer, columns, stride, rowVectors);
                    }
                }
                using (writer.Block($"for (; i < rows; i += {lanes})"))
                {
                    EmitTailRowsTile(writer, columns, stride, 1);
                }
            }
        });
        return name;
    }

    // `rowVectors` × 16 rows of C from row i, by the tail columns of MatrixProductTailRows.
    private void EmitTailRowsTile(SourceWriter writer, int columns, int rowStride, int rowVectors)
    {
        int lanes = _element.Lanes(512);
        int tail = columns % lanes, start = columns - tail;
        int stride = rowVectors * lanes;
        string VT = $"Vector512<{T}>";
        using (writer.Block($"for (nint l = 0; l < {stride}; l++)"))
        {
            writer.WriteLine($"ref {T} cRow = ref Unsafe.Add(ref c, (i + l) * {rowStride} + {start});");
            for (int j = 0; j < tail; j++)
            {
                writer.WriteLine($"Unsafe.Add(ref buffer, {(j == 0 ? "" : $"{j * stride} + ")}l) = fromC ? {(j == 0 ? "cRow" : $"Unsafe.Add(ref cRow, {j})")} : 0;");
            }
        }
        for (int v = 0; v < rowVectors; v++)
        {
            for (int j = 0; j < tail; j++)
            {
                writer.WriteLine($"{VT} acc{v}{j} = Vector512.LoadUnsafe(ref buffer, {j * stride + v * lanes});");
            }
        }
        using (writer.Block("for (nint k = k0; k < k1; k++)"))
        {
            writer.WriteLine($"ref {T} aColumn = ref Unsafe.Add(ref a, k * aDepth + i);");
            writer.WriteLine($"ref {T} bRow = ref Unsafe.Add(ref b, k * {rowStride} + {start});");
            for (int j = 0; j < tail; j++)
            {
                writer.WriteLine($"{VT} b{j} = Vector512.Create({(j == 0 ? "bRow" : $"Unsafe.Add(ref bRow, {j})")});");
            }
            for (int v = 0; v < rowVectors; v++)
            {
                writer.WriteLine($"{VT} a{v} = Vector512.LoadUnsafe(ref aColumn{(v == 0 ? "" : $", {v * lanes}")});");
                for (int j = 0; j < tail; j++)
                {
                    writer.WriteLine($"acc{v}{j} = Vector512.MultiplyAddEstimate(a{v}, b{j}, acc{v}{j});");
                }
            }
        }
        for (int v = 0; v < rowVectors; v++)
        {
            for (int j = 0; j < tail; j++)
            {
                writer.WriteLine($"acc{v}{j}.StoreUnsafe(ref buffer, {j * stride + v * lanes});");
            }
        }
        using (writer.Block($"for (nint l = 0; l < {stride}; l++)"))
        {
            writer.WriteLine($"ref {T} cRow = ref Unsafe.Add(ref c, (i + l) * {rowStride} + {start});");
            for (int j = 0; j < tail; j++)
            {
                writer.WriteLine($"{(j == 0 ? "cRow" : $"Unsafe.Add(ref cRow, {j})")} = Unsafe.Add(ref buffer, {(j == 0 ? "" : $"{j * stride} + ")}l);");
            }
        }
    }

    /// <summary>xᵢ ← tanh(xᵢ) over <paramref name="length"/> elements, in place. Returns the method name.</summary>
    public string TanhInPlace(int length)
    {
        string name = $"TanhInPlace{length}";
        Request(name, writer =>
        {
            writer.Summary($"xᵢ ← tanh(xᵢ) for i &lt; {length}.");
            writer.WriteLine("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            using (writer.Block($"private static void {name}(ref {T} x)"))
            {
                new VectorLoop(length, _element,
                    "VectorMath.Tanh({V}.LoadUnsafe(ref x, {o})).StoreUnsafe(ref x, {o});",
                    "Unsafe.Add(ref x, {o}) = VectorMath.Tanh(Unsafe.Add(ref x, {o}));").Emit(writer);
            }
        });
        return name;
    }

    /// <summary>
    /// The additive (Bahdanau) score of one pair, vᵀ tanh(qp + kp) over <paramref name="length"/>: the projection add,
    /// the tanh and the dot with v fused in one pass, so the tanh values are never stored. Returns the method name.
    /// </summary>
    public string AdditiveScore(int length)
    {
        string name = $"AdditiveScore{length}";
        Request(name, writer =>
        {
            writer.Summary($"vᵀ tanh(qp + kp) over {length} units: projection add, tanh and the dot with v fused in one pass.");
            writer.WriteLine("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            using (writer.Block($"private static {T} {name}(ref {T} qp, ref {T} kp, ref {T} v)"))
            {
                writer.WriteLine($"{T} score;");
                new VectorLoop(length, _element,
                    "{acc} = {V}.MultiplyAddEstimate({V}.LoadUnsafe(ref v, {o}), VectorMath.Tanh({V}.LoadUnsafe(ref qp, {o}) + {V}.LoadUnsafe(ref kp, {o})), {acc});",
                    "{acc} = {T}.MultiplyAddEstimate(Unsafe.Add(ref v, {o}), VectorMath.Tanh(Unsafe.Add(ref qp, {o}) + Unsafe.Add(ref kp, {o})), {acc});")
                { ReduceInto = "score" }.Emit(writer);
                writer.WriteLine("return score;");
            }
        });
        return name;
    }

    /// <summary>
    /// The additive score's backward for one pair, given δ = ∂L/∂e: with z = tanh(qp + kp) recomputed, ∂v += δ z and
    /// ∂qp, ∂kp each += δ v ⊙ (1 − z²). Returns the method name.
    /// </summary>
    public string AdditiveScoreBackward(int length)
    {
        string name = $"AdditiveScoreBackward{length}";
        Request(name, writer =>
        {
            writer.Summary($"The additive score's backward for one pair over {length} units, given δ = ∂L/∂e: with z = tanh(qp + kp) recomputed,\n∂L/∂v += δ z, and ∂L/∂qp, ∂L/∂kp each += δ v ⊙ (1 − z²).");
            writer.WriteLine("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            using (writer.Block($"private static void {name}({T} delta, ref {T} qp, ref {T} kp, ref {T} v, ref {T} dv, ref {T} dqp, ref {T} dkp)"))
            {
                new VectorLoop(length, _element,
                    "{VT} z = VectorMath.Tanh({V}.LoadUnsafe(ref qp, {o}) + {V}.LoadUnsafe(ref kp, {o}));\n" +
                    "{V}.MultiplyAddEstimate(delta{V}, z, {V}.LoadUnsafe(ref dv, {o})).StoreUnsafe(ref dv, {o});\n" +
                    "{VT} dPre = delta{V} * {V}.LoadUnsafe(ref v, {o}) * ({VT}.One - z * z);\n" +
                    "({V}.LoadUnsafe(ref dqp, {o}) + dPre).StoreUnsafe(ref dqp, {o});\n" +
                    "({V}.LoadUnsafe(ref dkp, {o}) + dPre).StoreUnsafe(ref dkp, {o});",
                    "{T} z = VectorMath.Tanh(Unsafe.Add(ref qp, {o}) + Unsafe.Add(ref kp, {o}));\n" +
                    "Unsafe.Add(ref dv, {o}) = {T}.MultiplyAddEstimate(delta, z, Unsafe.Add(ref dv, {o}));\n" +
                    "{T} dPre = delta * Unsafe.Add(ref v, {o}) * (1 - z * z);\n" +
                    "Unsafe.Add(ref dqp, {o}) += dPre;\n" +
                    "Unsafe.Add(ref dkp, {o}) += dPre;")
                { VectorPrologue = "{VT} delta{V} = {V}.Create(delta);", Unroll = 2 }.Emit(writer);
            }
        });
        return name;
    }

    /// <summary>Registers a kind-specific block (for example a fused score) so it is written with the others.</summary>
    public string Custom(string name, System.Action<SourceWriter> emit)
    {
        Request(name, emit);
        return name;
    }

    /// <summary>Writes every requested block, in name order (so the output is stable).</summary>
    public void EmitAll(SourceWriter writer)
    {
        foreach (string name in _requested)
        {
            writer.WriteLine();
            _emitters[name](writer);
        }
    }

    private string T => _element.Keyword;

    private void Request(string name, System.Action<SourceWriter> emit)
    {
        if (_requested.Add(name))
        {
            _emitters[name] = emit;
        }
    }
}
