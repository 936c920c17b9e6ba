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
                    "{acc} = {V}.FusedMultiplyAdd({V}.LoadUnsafe(ref x, {o}), {V}.LoadUnsafe(ref y, {o}), {acc});",
                    "{acc} = {M}.FusedMultiplyAdd(Unsafe.Add(ref x, {o}), Unsafe.Add(ref y, {o}), {acc});")
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
                    "{V}.FusedMultiplyAdd(alpha{V}, {V}.LoadUnsafe(ref x, {o}), {V}.LoadUnsafe(ref y, {o})).StoreUnsafe(ref y, {o});",
                    "Unsafe.Add(ref y, {o}) = {M}.FusedMultiplyAdd(alpha, Unsafe.Add(ref x, {o}), Unsafe.Add(ref y, {o}));")
                { VectorPrologue = "{VT} alpha{V} = {V}.Create(alpha);" }.Emit(writer);
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
