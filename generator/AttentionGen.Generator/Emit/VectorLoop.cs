using System.Collections.Generic;
using AttentionGen.Generator.Model;

namespace AttentionGen.Generator.Emit;

/// <summary>
/// Emits one loop of compile-time length over SIMD vectors, the way <c>TensorPrimitives</c> structures its
/// operators: a branch per vector width (Vector512, Vector256, Vector128, chosen by the JIT-time
/// <c>IsHardwareAccelerated</c> constants) plus a scalar path, each width unrolled in chunks of
/// <see cref="Unroll"/> vectors, and the tail of an odd length handled at its known offset with narrower
/// vectors and then scalars. Every emit block (dot, axpy, the fused attention scores) is a
/// <see cref="VectorLoop"/> with its own chunk templates.
/// </summary>
/// <remarks>
/// Templates are C# text with placeholders: <c>{V}</c> the vector class (<c>Vector512</c>), <c>{VT}</c> the
/// vector type (<c>Vector512&lt;float&gt;</c>), <c>{T}</c> the element keyword, <c>{M}</c> the scalar math class
/// (<c>MathF</c> or <c>Math</c>), <c>{o}</c> the offset of the chunk's first element, <c>{acc}</c> the
/// accumulator of a reduction. A template of several lines is wrapped in its own block so its locals do not clash.
/// </remarks>
internal sealed class VectorLoop
{
    private static readonly int[] s_widths = { 512, 256, 128 };

    public VectorLoop(int length, ElementType element, string vectorChunk, string scalarElement)
    {
        Length = length;
        Element = element;
        VectorChunk = vectorChunk;
        ScalarElement = scalarElement;
    }

    /// <summary>The compile-time number of elements.</summary>
    public int Length { get; }

    public ElementType Element { get; }

    /// <summary>The work on one vector at offset <c>{o}</c>.</summary>
    public string VectorChunk { get; }

    /// <summary>The same work on one element at offset <c>{o}</c>.</summary>
    public string ScalarElement { get; }

    /// <summary>Statements run once per width before the chunks (for example broadcasting a scalar), or null.</summary>
    public string? VectorPrologue { get; set; }

    /// <summary>For a reduction: the variable (declared by the caller, of the element type) that receives the sum of the accumulators.</summary>
    public string? ReduceInto { get; set; }

    /// <summary>How many vectors one loop iteration handles (and, for a reduction, how many accumulators it keeps).</summary>
    public int Unroll { get; set; } = 4;

    public void Emit(SourceWriter writer)
    {
        bool first = true;
        foreach (int bits in s_widths)
        {
            int lanes = Element.Lanes(bits);
            if (Length < lanes)
            {
                continue; // too short for this width: a narrower one (or the scalar path) does it
            }
            using (writer.Block($"{(first ? "if" : "else if")} (SimdPaths.Vector{bits})"))
            {
                EmitWidth(writer, bits);
            }
            first = false;
        }
        if (first)
        {
            EmitScalarLoop(writer);
            return;
        }
        using (writer.Block("else"))
        {
            EmitScalarLoop(writer);
        }
    }

    private void EmitWidth(SourceWriter writer, int bits)
    {
        int lanes = Element.Lanes(bits);
        int vectors = Length / lanes;
        int rest = Length % lanes;
        bool reduce = ReduceInto is not null;
        int accumulators = reduce ? System.Math.Min(Unroll, vectors) : 0;

        writer.WriteLine($"// {Length} = {vectors} × {lanes} lanes{(rest > 0 ? $" + {rest} at offset {vectors * lanes}" : "")}");
        if (VectorPrologue is not null)
        {
            writer.WriteLine(Fill(VectorPrologue, bits, "0", acc: ""));
        }
        for (int a = 0; a < accumulators; a++)
        {
            writer.WriteLine($"Vector{bits}<{Element.Keyword}> acc{a} = Vector{bits}<{Element.Keyword}>.Zero;");
        }

        int done = 0;
        if (vectors >= 2 * Unroll)
        {
            int blocks = vectors / Unroll;
            int step = Unroll * lanes;
            using (writer.Block($"for (nuint o = 0; o < {blocks * step}; o += {step})"))
            {
                for (int u = 0; u < Unroll; u++)
                {
                    WriteChunk(writer, Fill(VectorChunk, bits, u == 0 ? "o" : $"o + {u * lanes}", acc: $"acc{u}"));
                }
            }
            done = blocks * Unroll;
        }
        for (int v = done; v < vectors; v++)
        {
            WriteChunk(writer, Fill(VectorChunk, bits, (v * lanes).ToString(), acc: reduce ? $"acc{v % Unroll}" : ""));
        }

        if (reduce)
        {
            var sum = new List<string>();
            for (int a = 0; a < accumulators; a++)
            {
                sum.Add($"acc{a}");
            }
            writer.WriteLine($"{ReduceInto} = Reductions.Sum({string.Join(" + ", sum)});");
        }

        // The tail at its known offset: one narrower vector per width that fits, then scalars.
        int offset = vectors * lanes;
        foreach (int narrow in s_widths)
        {
            int narrowLanes = Element.Lanes(narrow);
            if (narrow >= bits || rest < narrowLanes)
            {
                continue;
            }
            if (reduce)
            {
                using (writer.Block())
                {
                    writer.WriteLine($"Vector{narrow}<{Element.Keyword}> accTail = Vector{narrow}<{Element.Keyword}>.Zero;");
                    if (VectorPrologue is not null)
                    {
                        writer.WriteLine(Fill(VectorPrologue, narrow, "0", acc: ""));
                    }
                    WriteChunk(writer, Fill(VectorChunk, narrow, offset.ToString(), acc: "accTail"));
                    writer.WriteLine($"{ReduceInto} += Reductions.Sum(accTail);");
                }
            }
            else
            {
                using (writer.Block())
                {
                    if (VectorPrologue is not null)
                    {
                        writer.WriteLine(Fill(VectorPrologue, narrow, "0", acc: ""));
                    }
                    WriteChunk(writer, Fill(VectorChunk, narrow, offset.ToString(), acc: ""));
                }
            }
            offset += narrowLanes;
            rest -= narrowLanes;
        }
        for (int e = 0; e < rest; e++)
        {
            WriteChunk(writer, Fill(ScalarElement, 0, (offset + e).ToString(), acc: ReduceInto ?? ""));
        }
    }

    private void EmitScalarLoop(SourceWriter writer)
    {
        if (ReduceInto is not null)
        {
            writer.WriteLine($"{ReduceInto} = 0;");
        }
        using (writer.Block($"for (nuint o = 0; o < {Length}; o++)"))
        {
            writer.WriteLine(Fill(ScalarElement, 0, "o", acc: ReduceInto ?? ""));
        }
    }

    private static void WriteChunk(SourceWriter writer, string code)
    {
        if (code.IndexOf('\n') < 0)
        {
            writer.WriteLine(code);
            return;
        }
        using (writer.Block())
        {
            writer.WriteLine(code);
        }
    }

    private string Fill(string template, int bits, string offset, string acc)
    {
        string vectorClass = bits == 0 ? "" : $"Vector{bits}";
        return template
            .Replace("{VT}", $"{vectorClass}<{Element.Keyword}>")
            .Replace("{V}", vectorClass)
            .Replace("{T}", Element.Keyword)
            .Replace("{M}", Element.Size == 4 ? "MathF" : "Math")
            .Replace("{o}", offset)
            .Replace("{acc}", acc);
    }
}
