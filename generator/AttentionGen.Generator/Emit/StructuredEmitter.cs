using System.Collections.Generic;
using AttentionGen.Generator.Model;

namespace AttentionGen.Generator.Emit;

/// <summary>
/// Writes a <c>[StructuredSelfAttention]</c> layer (Lin et al. 2017): per sequence, Hid = tanh(H W_s1ᵀ) [T, Units],
/// E = W_s2 Hidᵀ [Hops, T], A = row softmax of E (padding masked), M = A H [Hops, Dim]; penalty ‖A Aᵀ − I‖.
/// </summary>
internal static class StructuredEmitter
{
    public static string Emit(StructuredModel model)
    {
        string T = model.Element.Keyword;
        var constants = new[]
        {
            new LayerConstant("Dim", model.Dim, "D: the dimension of each hidden state hₜ and of each row of M."),
            new LayerConstant("Units", model.Units, "dₐ: the rows of W_s1."),
            new LayerConstant("Hops", model.Hops, "r: the number of attention hops (rows of A and M)."),
        };
        var parameters = new List<LayerParameter>
        {
            new("FirstWeight", "ws1", new[] { "Units", "Dim" }, "W_s1: Hid = tanh(H W_s1ᵀ), no bias (as the paper and its reference code; PyTorch <c>nn.Linear(Dim, Units, bias: false).weight</c>).",
                $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Dim, fanOut: Units, random);"),
            new("SecondWeight", "ws2", new[] { "Hops", "Units" }, "W_s2: E = W_s2 Hidᵀ, one row of scores per hop (PyTorch <c>nn.Linear(Units, Hops, bias: false).weight</c>).",
                $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Units, fanOut: Hops, random);"),
        };
        string norm = model.Penalty == "Frobenius" ? "√(‖A Aᵀ − I‖²_F + 1e-10)" : "‖A Aᵀ − I‖²_F";
        string summary =
            $"Structured self-attention (Lin et al. 2017), generated for D = {model.Dim}, dₐ = {model.Units}, r = {model.Hops}, {T}:\n" +
            "A = softmax over t of W_s2 tanh(W_s1 Hᵀ) [r, T] (padding masked), M = A H [r, D];\n" +
            $"penalty P = {norm} per sequence, summed over the batch and times <see cref=\"PenaltyCoefficient\"/>.\n" +
            "Shapes: input [B, T, Dim], output M [B, Hops, Dim], weights A [B, Hops, T], padding [B, T] (true = a real step).";
        return LayerScaffold.Write(model.Target, model.Element, summary, constants, parameters, (writer, kernels) => EmitBody(writer, kernels, model));
    }

    private static void EmitBody(SourceWriter w, Kernels kernels, StructuredModel model)
    {
        ElementType element = model.Element;
        string T = element.Keyword;
        string projectDim = kernels.ProductTransposedAdd(model.Dim);
        string projectUnits = kernels.ProductTransposedAdd(model.Units);
        string productDim = kernels.MatrixProductAdd(model.Dim);
        string productUnits = kernels.MatrixProductAdd(model.Units);
        string tanh = kernels.TanhInPlace(model.Units);
        string tanhGradient = kernels.Custom($"TanhGradientInPlace{model.Units}", writer =>
        {
            writer.Summary($"gᵢ ← gᵢ (1 − zᵢ²) for i &lt; {model.Units}: the gradient through z = tanh(·).");
            writer.WriteLine("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            using (writer.Block($"private static void TanhGradientInPlace{model.Units}(ref {T} z, ref {T} g)"))
            {
                new VectorLoop(model.Units, element,
                    "{VT} zv = {V}.LoadUnsafe(ref z, {o});\n({V}.LoadUnsafe(ref g, {o}) * ({VT}.One - zv * zv)).StoreUnsafe(ref g, {o});",
                    "{T} zs = Unsafe.Add(ref z, {o});\nUnsafe.Add(ref g, {o}) *= 1 - zs * zs;").Emit(writer);
            }
        });
        bool squared = model.Penalty != "Frobenius";

        w.WriteLine();
        w.Summary("The weight of the penalty in the loss: Forward returns PenaltyCoefficient · Σ_b P_b and Backward adds its gradient.\n0 (the default) turns the penalty off.");
        w.WriteLine($"public {T} PenaltyCoefficient {{ get; set; }}");

        // ---- Tape ----
        w.WriteLine();
        w.Summary("What a training forward records for <see cref=\"Backward\"/>: Hid = tanh(H W_s1ᵀ) [B, T, Units], A [B, Hops, T] and the coefficient used.");
        using (w.Block("public sealed class Tape : AttentionTape"))
        {
            LayerScaffold.DeclareTapeCallState(w);
            w.WriteLine($"internal AlignedBuffer<{T}> Hidden;");
            w.WriteLine($"internal AlignedBuffer<{T}> Weights;");
            w.WriteLine($"internal {T} PenaltyCoefficient;");
            w.WriteLine();
            using (w.Block($"internal void Prepare(int batch, int length, {T} coefficient)"))
            {
                w.WriteLine("Grow(ref Hidden, batch * length * Units);");
                w.WriteLine("Grow(ref Weights, batch * Hops * length);");
                w.WriteLine("PenaltyCoefficient = coefficient;");
                w.WriteLine("(Batch, QueryLength, KeyLength, IsRecorded) = (batch, Hops, length, true);");
            }
        }

        // ---- Forwards ----
        w.WriteLine();
        w.Summary("Inference forward: M = A H per sequence. Returns the penalty PenaltyCoefficient · Σ_b P_b (0 when the coefficient is 0).");
        WriteParamDocs(w, tape: false);
        using (w.Block($"public {T} Forward(int batch, int length, ReadOnlySpan<{T}> input, Span<{T}> output, Span<{T}> weights = default, ReadOnlySpan<bool> padding = default)"))
        {
            w.WriteLine("ThrowIfInvalidForward(batch, length, input, output, weights, padding);");
            w.WriteLine("return ForwardBatch(null, batch, length, input, output, weights, padding);");
        }
        w.WriteLine();
        w.Summary("Training forward: the inference result (and penalty), recording what <see cref=\"Backward\"/> needs.");
        w.WriteLine("/// <param name=\"tape\">The caller's reusable tape.</param>");
        WriteParamDocs(w, tape: true);
        using (w.Block($"public {T} Forward(Tape tape, int batch, int length, ReadOnlySpan<{T}> input, Span<{T}> output, Span<{T}> weights = default, ReadOnlySpan<bool> padding = default)"))
        {
            w.WriteLine("ArgumentNullException.ThrowIfNull(tape);");
            w.WriteLine("ThrowIfInvalidForward(batch, length, input, output, weights, padding);");
            w.WriteLine("tape.Prepare(batch, length, PenaltyCoefficient);");
            w.WriteLine("return ForwardBatch(tape, batch, length, input, output, weights, padding);");
        }
        w.WriteLine();
        w.WriteLine("// Sequences are independent: a large call spreads them over threads. Each writes its penalty P_b into its own");
        w.WriteLine("// element of `penalties`, and the sum over b runs in order afterwards, so it does not depend on the thread count.");
        using (w.Block($"private {T} ForwardBatch(Tape? tape, int batch, int length, ReadOnlySpan<{T}> input, Span<{T}> output, Span<{T}> weights, ReadOnlySpan<bool> padding)"))
        {
            w.WriteLine("// W_s1ᵀ [Dim, Units], packed once per call and read by every sequence: H W_s1ᵀ then broadcasts elements of H");
            w.WriteLine("// against rows of W_s1ᵀ (a register-blocked product without horizontal sums; W10's forward took 10–20 % less");
            w.WriteLine("// time than with dot products of depth Dim). The penalties P_b follow it.");
            LayerScaffold.DeclareScratch(w, element, "scratch", "Dim * Units + batch");
            using (w.Block("try"))
            {
                w.WriteLine($"Span<{T}> packedWeight = scratch.Slice(0, Dim * Units);");
                w.WriteLine($"Span<{T}> penalties = scratch.Slice(Dim * Units, batch);");
                w.WriteLine($"MatrixOps.Transpose<{T}>(FirstWeight.Value, Units, Dim, packedWeight);");
                w.WriteLine("// Per sequence: T·dₐ·D multiply-adds for H W_s1ᵀ, r·T·dₐ for E and r·T·D for M.");
                w.WriteLine("long work = (long)batch * length * (Units * Dim + Hops * (Units + Dim));");
                LayerScaffold.SplitOrSerial(w, element, "batch", "work", "CallStateFor(tape)",
                    "((CallState)state).Layer.ForwardRows(((CallState)state).Tape, chunk, chunk + 1, s.KeyLength, s.R0, s.R1, s.W0, s.W1, s.W2, s.Mask.KeyPadding)",
                    "(batch, Hops, length), AttentionMask.FromKeyPadding(padding), r0: input, r1: packedWeight, w0: output, w1: weights, w2: penalties",
                    "ForwardRows(tape, 0, batch, length, input, packedWeight, output, weights, penalties, padding);");
                w.WriteLine($"{T} penalty = 0;");
                w.WriteLine("for (int b = 0; b < batch; b++) penalty += penalties[b];");
                w.WriteLine("return PenaltyCoefficient * penalty;");
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }
        w.WriteLine();
        w.WriteLine($"private sealed record CallState({model.Target.Name} Layer, Tape? Tape);");
        LayerScaffold.DeclareCallStateFor(w);
        w.WriteLine();
        w.WriteLine("// Sequences [first, end), each: Hid = tanh(H W_s1ᵀ); E = W_s2 Hidᵀ (−∞ at padding); A = row softmax of E; M = A H;");
        w.WriteLine("// P_b from G = A Aᵀ − I (0 when the coefficient is 0).");
        using (LayerScaffold.HotBlock(w, $"private void ForwardRows(Tape? tape, int first, int end, int length, ReadOnlySpan<{T}> input, ReadOnlySpan<{T}> packedWeight, Span<{T}> output, Span<{T}> weights, Span<{T}> penalties, ReadOnlySpan<bool> padding)"))
        {
            LayerScaffold.DeclareScratch(w, element, "scratch", "(tape is null ? length * Units : 0) + (tape is null && weights.IsEmpty ? Hops * length : 0) + Hops * Hops");
            using (w.Block("try"))
            {
                w.WriteLine($"Span<{T}> gram = scratch.Slice(scratch.Length - Hops * Hops, Hops * Hops);");
                using (w.Block("for (int b = first; b < end; b++)"))
                {
                    w.WriteLine($"ReadOnlySpan<{T}> rows = input.Slice(b * length * Dim, length * Dim);");
                    w.WriteLine($"Span<{T}> hidden = tape is not null ? tape.Hidden.AsSpan(b * length * Units, length * Units) : scratch.Slice(0, length * Units);");
                    w.WriteLine($"Span<{T}> attention = tape is not null ? tape.Weights.AsSpan(b * Hops * length, Hops * length)");
                    w.WriteLine("    : weights.IsEmpty ? scratch.Slice(length * Units, Hops * length) : weights.Slice(b * Hops * length, Hops * length);");
                    w.WriteLine($"{productUnits}(length, Dim, ref MemoryMarshal.GetReference(rows), Dim, 1, ref MemoryMarshal.GetReference(packedWeight), ref MemoryMarshal.GetReference(hidden), accumulate: false);");
                    w.WriteLine($"for (int t = 0; t < length; t++) {tanh}(ref hidden[t * Units]);");
                    w.WriteLine("attention.Clear();");
                    w.WriteLine($"{projectUnits}(Hops, length, ref MemoryMarshal.GetArrayDataReference(SecondWeight.Value), ref MemoryMarshal.GetReference(hidden), ref MemoryMarshal.GetReference(attention));");
                    using (w.Block("for (int h = 0; h < Hops; h++)"))
                    {
                        w.WriteLine($"Span<{T}> row = attention.Slice(h * length, length);");
                        w.WriteLine($"if (!padding.IsEmpty) for (int t = 0; t < length; t++) if (!padding[b * length + t]) row[t] = {T}.NegativeInfinity;");
                        w.WriteLine("AttentionMath.Softmax(row);");
                    }
                    w.WriteLine($"Span<{T}> embedding = output.Slice(b * Hops * Dim, Hops * Dim);");
                    w.WriteLine("embedding.Clear();");
                    w.WriteLine($"{productDim}(Hops, length, ref MemoryMarshal.GetReference(attention), length, 1, ref MemoryMarshal.GetReference(rows), ref MemoryMarshal.GetReference(embedding));");
                    w.WriteLine("if (tape is not null && !weights.IsEmpty) attention.CopyTo(weights.Slice(b * Hops * length, Hops * length));");
                    w.WriteLine("penalties[b] = 0;");
                    using (w.Block("if (PenaltyCoefficient != 0)"))
                    {
                        w.WriteLine("Gram(attention, length, gram);");
                        w.WriteLine($"{T} squaredNorm = AttentionMath.Dot<{T}>(gram, gram);");
                        w.WriteLine(squared ? "penalties[b] = squaredNorm;" : $"penalties[b] = {T}.Sqrt(squaredNorm + {(element.Size == 4 ? "1e-10f" : "1e-10")});");
                    }
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }
        w.WriteLine();
        w.WriteLine("// G = A Aᵀ − I for one sequence's A [Hops, T].");
        using (LayerScaffold.HotBlock(w, $"private static void Gram(ReadOnlySpan<{T}> attention, int length, Span<{T}> gram)"))
        {
            using (w.Block("for (int h = 0; h < Hops; h++)"))
            {
                using (w.Block("for (int k = 0; k < Hops; k++)"))
                {
                    w.WriteLine($"gram[h * Hops + k] = AttentionMath.Dot<{T}>(attention.Slice(h * length, length), attention.Slice(k * length, length)) - (h == k ? 1 : 0);");
                }
            }
        }

        // ---- Backward ----
        w.WriteLine();
        w.Summary(
            "Backward: from ∂L/∂M (and optionally ∂L/∂A) plus the penalty (with the coefficient the forward recorded), writes ∂L/∂H when\n" +
            "<paramref name=\"dInput\"/> is not empty and adds the gradients of W_s1 and W_s2. ∂A = ∂M Hᵀ (+ ∂L/∂A) + coefficient ·\n" +
            (squared ? "4 G A" : "2 G A / P") + "; H receives Aᵀ ∂M; then the softmax backward, ∂W_s2 += ∂E Hid, ∂Hid = ∂Eᵀ W_s2, through the tanh, ∂W_s1 += ∂preᵀ H, ∂H += ∂pre W_s1.");
        w.WriteLine("/// <param name=\"tape\">The tape the training <c>Forward</c> recorded into.</param>");
        w.WriteLine("/// <param name=\"input\">H given to the forward, [B, T, Dim].</param>");
        w.WriteLine("/// <param name=\"dOutput\">∂L/∂M, [B, Hops, Dim].</param>");
        w.WriteLine("/// <param name=\"dInput\">∂L/∂H, [B, T, Dim]: written when not empty.</param>");
        w.WriteLine("/// <param name=\"dWeights\">Optional ∂L/∂A, [B, Hops, T].</param>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the recorded shapes, or the tape holds no forward.</exception>");
        using (w.Block($"public void Backward(Tape tape, ReadOnlySpan<{T}> input, ReadOnlySpan<{T}> dOutput, Span<{T}> dInput = default, ReadOnlySpan<{T}> dWeights = default)"))
        {
            w.WriteLine("ArgumentNullException.ThrowIfNull(tape);");
            using (w.Block("if (!tape.IsRecorded)"))
            {
                w.WriteLine("throw new ArgumentException(\"The tape holds no recorded forward: call the training Forward(tape, ...) first.\", nameof(tape));");
            }
            w.WriteLine("int batch = tape.Batch, length = tape.KeyLength;");
            w.WriteLine("Shapes.RequireLength(input.Length, (long)batch * length * Dim, nameof(input), $\"[B={batch}, T={length}, Dim={Dim}]\");");
            w.WriteLine("Shapes.RequireLength(dOutput.Length, (long)batch * Hops * Dim, nameof(dOutput), $\"[B={batch}, Hops={Hops}, Dim={Dim}]\");");
            w.WriteLine("Shapes.RequireOptionalLength(dInput.Length, (long)batch * length * Dim, nameof(dInput), $\"[B={batch}, T={length}, Dim={Dim}]\");");
            w.WriteLine("Shapes.RequireOptionalLength(dWeights.Length, (long)batch * Hops * length, nameof(dWeights), $\"[B={batch}, Hops={Hops}, T={length}]\");");
            w.WriteLine("// Scratch for the whole batch, every element written by BackwardRows: ∂L/∂pre [B·T, Units] and ∂L/∂E by step [B·T, Hops].");
            LayerScaffold.DeclareScratch(w, element, "scratch", "batch * length * (Units + Hops)");
            using (w.Block("try"))
            {
                w.WriteLine("long work = (long)batch * length * (Units * Dim + Hops * (Units + Dim));");
                w.WriteLine("var lengths = (batch, Hops, length);");
                w.WriteLine("// Per sequence (independent, so large calls spread them over threads): ∂A, the softmax backward, ∂E, ∂pre, and");
                w.WriteLine("// H's share Aᵀ ∂M of ∂L/∂H.");
                LayerScaffold.SplitOrSerial(w, element, "batch", "work", "CallStateFor(tape)",
                    "((CallState)state).Layer.BackwardRows(((CallState)state).Tape!, chunk, chunk + 1, s.R0, s.R1, s.R2, s.W0, s.W1)",
                    "lengths, r0: input, r1: dOutput, r2: dWeights, w0: dInput, w1: scratch",
                    "BackwardRows(tape, 0, batch, input, dOutput, dWeights, dInput, scratch);");
                w.WriteLine();
                w.WriteLine("// The parameter gradients and the rest of ∂L/∂H over all B·T steps, after every sequence is done, each product");
                w.WriteLine("// cut into row ranges that threads take independently (on one thread, each product in one call).");
                LayerScaffold.SplitOrSerial(w, element, "3 * ProductParts", "work", "CallStateFor(tape)",
                    "((CallState)state).Layer.BackwardProducts(((CallState)state).Tape!, BatchParallel.Interleaved(chunk, 3, ProductParts), ProductParts, s.R0, s.R1, s.W0)",
                    "lengths, r0: input, r1: scratch, w0: dInput",
                    "for (int product = 0; product < 3; product++) BackwardProducts(tape, product, 1, input, scratch, dInput);");
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }

        // ---- Backward, per sequence ----
        w.WriteLine();
        w.WriteLine("// Sequences [first, end) of the backward; each writes only its own rows of ∂L/∂H, ∂L/∂pre and ∂L/∂E.");
        using (LayerScaffold.HotBlock(w, $"private void BackwardRows(Tape tape, int first, int end, ReadOnlySpan<{T}> input, ReadOnlySpan<{T}> dOutput, ReadOnlySpan<{T}> dWeights, Span<{T}> dInput, Span<{T}> scratch)"))
        {
            w.WriteLine("int batch = tape.Batch, length = tape.KeyLength;");
            w.WriteLine($"{T} coefficient = tape.PenaltyCoefficient;");
            w.WriteLine($"Span<{T}> dPre = scratch.Slice(0, batch * length * Units);");
            w.WriteLine($"Span<{T}> dScores = scratch.Slice(batch * length * Units, batch * length * Hops);");
            w.WriteLine("// ∂A [Hops, T] and G [Hops, Hops] of one sequence.");
            LayerScaffold.DeclareScratch(w, element, "rowScratch", "Hops * length + Hops * Hops");
            using (w.Block("try"))
            {
                w.WriteLine($"Span<{T}> dAttention = rowScratch.Slice(0, Hops * length);");
                w.WriteLine($"Span<{T}> gram = rowScratch.Slice(Hops * length, Hops * Hops);");
                using (w.Block("for (int b = first; b < end; b++)"))
                {
                    w.WriteLine($"ReadOnlySpan<{T}> rows = input.Slice(b * length * Dim, length * Dim);");
                    w.WriteLine($"ReadOnlySpan<{T}> attention = tape.Weights.AsSpan(b * Hops * length, Hops * length);");
                    w.WriteLine($"ReadOnlySpan<{T}> hidden = tape.Hidden.AsSpan(b * length * Units, length * Units);");
                    w.WriteLine($"ReadOnlySpan<{T}> dEmbedding = dOutput.Slice(b * Hops * Dim, Hops * Dim);");
                    w.WriteLine("// ∂A = ∂M Hᵀ (+ the caller's ∂L/∂A); H receives Aᵀ ∂M.");
                    w.WriteLine("if (dWeights.IsEmpty) dAttention.Clear(); else dWeights.Slice(b * Hops * length, Hops * length).CopyTo(dAttention);");
                    w.WriteLine($"{projectDim}(Hops, length, ref MemoryMarshal.GetReference(dEmbedding), ref MemoryMarshal.GetReference(rows), ref MemoryMarshal.GetReference(dAttention));");
                    using (w.Block("if (!dInput.IsEmpty)"))
                    {
                        w.WriteLine("// (written, not cleared then added to: the sequence's rows of ∂L/∂H start here)");
                        w.WriteLine($"{productDim}(length, Hops, ref MemoryMarshal.GetReference(attention), 1, length, ref MemoryMarshal.GetReference(dEmbedding), ref dInput[b * length * Dim], accumulate: false);");
                    }
                    using (w.Block("if (coefficient != 0)"))
                    {
                        w.WriteLine(squared
                            ? "// P = ‖G‖²_F: ∂P/∂A = 4 G A."
                            : "// P = √(‖G‖²_F + 1e-10): ∂P/∂A = 2 G A / P.");
                        w.WriteLine("Gram(attention, length, gram);");
                        w.WriteLine(squared
                            ? $"{T} scale = 4 * coefficient;"
                            : $"{T} scale = 2 * coefficient / {T}.Sqrt(AttentionMath.Dot<{T}>(gram, gram) + {(element.Size == 4 ? "1e-10f" : "1e-10")});");
                        using (w.Block("for (int h = 0; h < Hops; h++)"))
                        {
                            using (w.Block("for (int k = 0; k < Hops; k++)"))
                            {
                                w.WriteLine($"System.Numerics.Tensors.TensorPrimitives.MultiplyAdd<{T}>(attention.Slice(k * length, length), scale * gram[h * Hops + k], dAttention.Slice(h * length, length), dAttention.Slice(h * length, length));");
                            }
                        }
                    }
                    w.WriteLine("// The softmax backward per hop gives ∂E; E = W_s2 Hidᵀ: ∂Hid = ∂Eᵀ W_s2 (∂W_s2 += ∂E Hid follows for the whole batch,");
                    w.WriteLine("// from ∂E stored by step).");
                    w.WriteLine($"for (int h = 0; h < Hops; h++) AttentionMath.SoftmaxBackward<{T}>(attention.Slice(h * length, length), dAttention.Slice(h * length, length), dAttention.Slice(h * length, length));");
                    w.WriteLine("for (int t = 0; t < length; t++) for (int h = 0; h < Hops; h++) dScores[(b * length + t) * Hops + h] = dAttention[h * length + t];");
                    w.WriteLine($"Span<{T}> dHidden = dPre.Slice(b * length * Units, length * Units);");
                    w.WriteLine($"{productUnits}(length, Hops, ref MemoryMarshal.GetReference(dAttention), 1, length, ref MemoryMarshal.GetArrayDataReference(SecondWeight.Value), ref MemoryMarshal.GetReference(dHidden), accumulate: false);");
                    w.WriteLine("// Through Hid = tanh(pre): ∂pre = ∂Hid ⊙ (1 − Hid²).");
                    w.WriteLine($"for (int t = 0; t < length; t++) {tanhGradient}(ref MemoryMarshal.GetReference(hidden.Slice(t * Units, Units)), ref dHidden[t * Units]);");
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "rowScratch");
            }
        }

        // ---- Backward, the parameter and input products ----
        w.WriteLine();
        LayerScaffold.DeclareProductParts(w);
        w.WriteLine();
        w.WriteLine("// Chunk c does part c % parts of product c / parts, over all B·T steps (pre = H W_s1ᵀ, E = W_s2 Hidᵀ by step):");
        w.WriteLine("//   0: ∂W_s1 += ∂preᵀ H   1: ∂W_s2 += ∂Eᵀ Hid   2: ∂H += ∂pre W_s1 (skipped when not wanted)");
        w.WriteLine("// Parts write disjoint rows, so threads may take them in any order.");
        using (LayerScaffold.HotBlock(w, $"private void BackwardProducts(Tape tape, int chunk, int parts, ReadOnlySpan<{T}> input, ReadOnlySpan<{T}> scratch, Span<{T}> dInput)"))
        {
            w.WriteLine("int steps = tape.Batch * tape.KeyLength;");
            w.WriteLine("int product = chunk / parts, part = chunk % parts;");
            w.WriteLine($"ReadOnlySpan<{T}> dPre = scratch.Slice(0, steps * Units);");
            using (w.Block("if (product == 0)"))
            {
                LayerScaffold.WeightGradientPart(w, productDim, "Units", "steps", "parts", "dPre", "input", "FirstWeight.Gradient", "Dim");
            }
            using (w.Block("else if (product == 1)"))
            {
                w.WriteLine($"ReadOnlySpan<{T}> dScores = scratch.Slice(steps * Units, steps * Hops);");
                w.WriteLine($"ReadOnlySpan<{T}> hidden = tape.Hidden.AsSpan(0, steps * Units);");
                LayerScaffold.WeightGradientPart(w, productUnits, "Hops", "steps", "parts", "dScores", "hidden", "SecondWeight.Gradient", "Units");
            }
            using (w.Block("else"))
            {
                LayerScaffold.InputGradientPart(w, productDim, "Units", "steps", "parts", "dPre", "FirstWeight.Value", "dInput", "Dim", overwrite: false);
            }
        }

        w.WriteLine();
        using (w.Block($"private static void ThrowIfInvalidForward(int batch, int length, ReadOnlySpan<{T}> input, Span<{T}> output, Span<{T}> weights, ReadOnlySpan<bool> padding)"))
        {
            w.WriteLine("Shapes.RequireAtLeast(batch, 0, nameof(batch));");
            w.WriteLine("Shapes.RequireAtLeast(length, 1, nameof(length));");
            w.WriteLine("Shapes.RequireLength(input.Length, (long)batch * length * Dim, nameof(input), $\"[B={batch}, T={length}, Dim={Dim}]\");");
            w.WriteLine("Shapes.RequireLength(output.Length, (long)batch * Hops * Dim, nameof(output), $\"[B={batch}, Hops={Hops}, Dim={Dim}]\");");
            w.WriteLine("Shapes.RequireOptionalLength(weights.Length, (long)batch * Hops * length, nameof(weights), $\"[B={batch}, Hops={Hops}, T={length}]\");");
            w.WriteLine("if (!padding.IsEmpty) Shapes.RequireLength(padding.Length, (long)batch * length, nameof(padding), $\"[B={batch}, T={length}]\");");
            w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(output, input, nameof(output), nameof(input));");
            w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(weights, input, nameof(weights), nameof(input));");
            w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(weights, output, nameof(weights), nameof(output));");
        }
    }

    private static void WriteParamDocs(SourceWriter w, bool tape)
    {
        w.WriteLine("/// <param name=\"batch\">B, the number of sequences.</param>");
        w.WriteLine("/// <param name=\"length\">T, the steps of each sequence, at least 1.</param>");
        w.WriteLine("/// <param name=\"input\">H, [B, T, Dim].</param>");
        w.WriteLine("/// <param name=\"output\">M, [B, Hops, Dim], written.</param>");
        w.WriteLine("/// <param name=\"weights\">A, [B, Hops, T], written when not empty" + (tape ? " (the tape keeps its own copy)" : "") + ".</param>");
        w.WriteLine("/// <param name=\"padding\">[B, T]: false marks padding, which gets weight 0 in every hop. Empty = no padding.</param>");
        w.WriteLine("/// <returns>PenaltyCoefficient · Σ over the batch of P.</returns>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the shapes, T &lt; 1, or an output overlaps an input.</exception>");
    }
}
