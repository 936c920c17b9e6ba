using System.Collections.Generic;
using AttentionGen.Generator.Model;

namespace AttentionGen.Generator.Emit;

/// <summary>
/// Writes a <c>[StaticAttention]</c> layer (attention pooling, Yang et al. 2016): per sequence,
/// U = tanh(H Wᵀ + b) [T, Units], eₜ = uₜ · u_w, α = softmax over t (padding masked), s = Σₜ αₜ hₜ.
/// </summary>
internal static class StaticEmitter
{
    public static string Emit(StaticModel model)
    {
        string T = model.Element.Keyword;
        var constants = new[]
        {
            new LayerConstant("Dim", model.Dim, "D: the dimension of each input vector hₜ and of the pooled output s."),
            new LayerConstant("Units", model.Units, "U: the dimension of uₜ and of the context vector u_w."),
        };
        var parameters = new List<LayerParameter>
        {
            new("Weight", "weight", new[] { "Units", "Dim" }, "W: uₜ = tanh(W hₜ + b) (PyTorch <c>nn.Linear(Dim, Units).weight</c>).",
                $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Dim, fanOut: Units, random);"),
            new("Bias", "bias", new[] { "Units" }, "b: the bias of the projection; starts at zero (PyTorch <c>nn.Linear(Dim, Units).bias</c>).",
                $"Initializers.Zeros<{T}>({{p}});"),
            new("ContextVector", "context_vector", new[] { "Units" }, "u_w: the learned context vector that scores each step, eₜ = uₜᵀ u_w.",
                $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Units, fanOut: 1, random);"),
        };
        string summary =
            $"Static attention (attention pooling, Hierarchical Attention Networks), generated for D = {model.Dim}, U = {model.Units}, {T}:\n" +
            "uₜ = tanh(W hₜ + b), αₜ = softmax over t of uₜᵀ u_w (padding masked), s = Σₜ αₜ hₜ.\n" +
            "Shapes: input [B, T, Dim], output [B, Dim], weights [B, T], padding mask [B, T] (true = a real step). Runtime lengths B, T; T ≥ 1.";
        return LayerScaffold.Write(model.Target, model.Element, summary, constants, parameters, (writer, kernels) => EmitBody(writer, kernels, model));
    }

    private static void EmitBody(SourceWriter w, Kernels kernels, StaticModel model)
    {
        ElementType element = model.Element;
        string T = element.Keyword;
        string project = kernels.MatrixProductAdd(model.Units); // H Wᵀ with Wᵀ packed [Dim, Units]: broadcasts, no horizontal sums
        string product = kernels.MatrixProductAdd(model.Dim);
        string dotUnits = kernels.Dot(model.Units);
        string dotDim = kernels.Dot(model.Dim);
        string copyBias = kernels.Copy(model.Units);
        string scaleDim = kernels.ScaleInto(model.Dim);
        string axpyUnits = kernels.MultiplyAdd(model.Units);
        string axpyDim = kernels.MultiplyAdd(model.Dim);
        string tanh = kernels.TanhInPlace(model.Units);
        string preGradient = kernels.Custom($"PoolingPreGradient{model.Units}", writer =>
        {
            writer.Summary($"For one step, given δ = ∂L/∂eₜ and u = uₜ: ∂L/∂(W hₜ + b) = δ u_w ⊙ (1 − u²), over U = {model.Units}; and, while u and\n" +
                "that gradient are in registers, the step's terms of ∂L/∂u_w (δ u) and ∂L/∂b (the gradient itself) added to its sequence's sums.");
            writer.WriteLine("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            using (writer.Block($"private static void PoolingPreGradient{model.Units}({T} delta, ref {T} u, ref {T} contextVector, ref {T} dPre, ref {T} dContextVectorSum, ref {T} dBiasSum)"))
            {
                new VectorLoop(model.Units, element,
                    "{VT} z = {V}.LoadUnsafe(ref u, {o});\n" +
                    "{VT} pre = delta{V} * {V}.LoadUnsafe(ref contextVector, {o}) * ({VT}.One - z * z);\n" +
                    "pre.StoreUnsafe(ref dPre, {o});\n" +
                    "{V}.MultiplyAddEstimate(delta{V}, z, {V}.LoadUnsafe(ref dContextVectorSum, {o})).StoreUnsafe(ref dContextVectorSum, {o});\n" +
                    "({V}.LoadUnsafe(ref dBiasSum, {o}) + pre).StoreUnsafe(ref dBiasSum, {o});",
                    "{T} z = Unsafe.Add(ref u, {o});\n" +
                    "{T} pre = delta * Unsafe.Add(ref contextVector, {o}) * (1 - z * z);\n" +
                    "Unsafe.Add(ref dPre, {o}) = pre;\n" +
                    "Unsafe.Add(ref dContextVectorSum, {o}) = {T}.MultiplyAddEstimate(delta, z, Unsafe.Add(ref dContextVectorSum, {o}));\n" +
                    "Unsafe.Add(ref dBiasSum, {o}) += pre;")
                { VectorPrologue = "{VT} delta{V} = {V}.Create(delta);", Unroll = 2 }.Emit(writer);
            }
        });

        // ---- Tape ----
        w.WriteLine();
        w.Summary("What a training forward records for <see cref=\"Backward\"/>: U = tanh(H Wᵀ + b) [B, T, Units] and the weights [B, T].\nOwned by the caller, reused across steps, grown as needed.");
        using (w.Block("public sealed class Tape : AttentionTape"))
        {
            LayerScaffold.DeclareTapeCallState(w);
            w.WriteLine($"internal AlignedBuffer<{T}> Hidden;");
            w.WriteLine($"internal AlignedBuffer<{T}> Weights;");
            w.WriteLine();
            using (w.Block("internal void Prepare(int batch, int length)"))
            {
                w.WriteLine("Grow(ref Hidden, batch * length * Units);");
                w.WriteLine("Grow(ref Weights, batch * length);");
                w.WriteLine("(Batch, QueryLength, KeyLength, IsRecorded) = (batch, 1, length, true);");
            }
        }

        // ---- Forwards ----
        w.WriteLine();
        w.Summary("Inference forward: s = Σₜ αₜ hₜ for each sequence. Keeps no state; one layer serves many threads at once.");
        WriteParamDocs(w, tape: false);
        using (w.Block($"public void Forward(int batch, int length, ReadOnlySpan<{T}> input, Span<{T}> output, Span<{T}> weights = default, ReadOnlySpan<bool> padding = default)"))
        {
            w.WriteLine("ThrowIfInvalidForward(batch, length, input, output, weights, padding);");
            w.WriteLine("ForwardBatch(null, batch, length, input, output, weights, padding);");
        }
        w.WriteLine();
        w.Summary("Training forward: the inference result, and records in <paramref name=\"tape\"/> what <see cref=\"Backward\"/> needs.");
        w.WriteLine("/// <param name=\"tape\">The caller's reusable tape.</param>");
        WriteParamDocs(w, tape: true);
        using (w.Block($"public void Forward(Tape tape, int batch, int length, ReadOnlySpan<{T}> input, Span<{T}> output, Span<{T}> weights = default, ReadOnlySpan<bool> padding = default)"))
        {
            w.WriteLine("ArgumentNullException.ThrowIfNull(tape);");
            w.WriteLine("ThrowIfInvalidForward(batch, length, input, output, weights, padding);");
            w.WriteLine("tape.Prepare(batch, length);");
            w.WriteLine("ForwardBatch(tape, batch, length, input, output, weights, padding);");
        }
        w.WriteLine();
        using (w.Block($"private void ForwardBatch(Tape? tape, int batch, int length, ReadOnlySpan<{T}> input, Span<{T}> output, Span<{T}> weights, ReadOnlySpan<bool> padding)"))
        {
            w.WriteLine("// Wᵀ [Dim, Units], packed once per call: the projection then broadcasts elements of H against rows of Wᵀ");
            w.WriteLine("// (a register-blocked product with no horizontal sums: W4's projection, 100 × 100 × 100 per sequence, ran 1.2–1.6× as");
            w.WriteLine("// fast as with dot products against W on a Zen 3 host with AVX2, best of 30 calls, 2026-12-07).");
            LayerScaffold.DeclareScratch(w, element, "packedWeight", "Dim * Units");
            using (w.Block("try"))
            {
                w.WriteLine($"MatrixOps.Transpose<{T}>(Weight.Value, Units, Dim, packedWeight);");
                using (w.Block("if (!BatchParallel.ShouldSplit(batch, MaxDegreeOfParallelism, (long)batch * length * Units * Dim, ParallelWorkThreshold))"))
                {
                    w.WriteLine("ForwardRows(tape, 0, batch, length, input, packedWeight, output, weights, padding);");
                    w.WriteLine("return;");
                }
                w.WriteLine($"BatchParallel.For<{T}>(batch, MaxDegreeOfParallelism, CallStateFor(tape),");
                w.WriteLine($"    static (int b, object state, in ChunkSpans<{T}> s) => ((CallState)state).Layer.ForwardRows(((CallState)state).Tape, b, b + 1, s.KeyLength, s.R0, s.R1, s.W0, s.W1, s.Mask.KeyPadding),");
                w.WriteLine("    (batch, 1, length), AttentionMask.FromKeyPadding(padding), r0: input, r1: packedWeight, w0: output, w1: weights);");
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "packedWeight");
            }
        }
        w.WriteLine();
        w.WriteLine($"private sealed record CallState({model.Target.Name} Layer, Tape? Tape);");
        LayerScaffold.DeclareCallStateFor(w);
        w.WriteLine();
        w.WriteLine("// Sequences [first, end), each: U = tanh(H Wᵀ + b) [T, Units]; eₜ = uₜ · u_w (−∞ for padding); α = softmax(e); s = αᵀ H.");
        using (LayerScaffold.HotBlock(w, $"private void ForwardRows(Tape? tape, int first, int end, int length, ReadOnlySpan<{T}> input, ReadOnlySpan<{T}> packedWeight, Span<{T}> output, Span<{T}> weights, ReadOnlySpan<bool> padding)"))
        {
            LayerScaffold.DeclareScratch(w, element, "scratch", "(tape is null ? length * Units : 0) + (tape is null && weights.IsEmpty ? length : 0)");
            using (w.Block("try"))
            {
                w.WriteLine($"ref {T} contextVector = ref MemoryMarshal.GetArrayDataReference(ContextVector.Value);");
                using (w.Block("for (int b = first; b < end; b++)"))
                {
                    w.WriteLine($"ReadOnlySpan<{T}> rows = input.Slice(b * length * Dim, length * Dim);");
                    w.WriteLine($"Span<{T}> hidden = tape is not null ? tape.Hidden.AsSpan(b * length * Units, length * Units) : scratch.Slice(0, length * Units);");
                    w.WriteLine($"Span<{T}> alpha = tape is not null ? tape.Weights.AsSpan(b * length, length) : weights.IsEmpty ? scratch.Slice(length * Units, length) : weights.Slice(b * length, length);");
                    w.WriteLine("// the bias in every row (a fixed-length copy; a Span.CopyTo per row would be a Memmove call each)");
                    w.WriteLine($"for (int t = 0; t < length; t++) {copyBias}(ref MemoryMarshal.GetArrayDataReference(Bias.Value), ref hidden[t * Units]);");
                    w.WriteLine($"{project}(length, Dim, ref MemoryMarshal.GetReference(rows), Dim, 1, ref MemoryMarshal.GetReference(packedWeight), ref MemoryMarshal.GetReference(hidden));");
                    using (w.Block("for (int t = 0; t < length; t++)"))
                    {
                        w.WriteLine($"ref {T} u = ref hidden[t * Units];");
                        w.WriteLine($"{tanh}(ref u);");
                        w.WriteLine($"alpha[t] = padding.IsEmpty || padding[b * length + t] ? {dotUnits}(ref u, ref contextVector) : {T}.NegativeInfinity;");
                    }
                    w.WriteLine("AttentionMath.Softmax(alpha);");
                    w.WriteLine($"Span<{T}> pooled = output.Slice(b * Dim, Dim);");
                    w.WriteLine("pooled.Clear();");
                    w.WriteLine($"{product}(1, length, ref MemoryMarshal.GetReference(alpha), 0, 1, ref MemoryMarshal.GetReference(rows), ref MemoryMarshal.GetReference(pooled));");
                    w.WriteLine("if (tape is not null && !weights.IsEmpty) alpha.CopyTo(weights.Slice(b * length, length));");
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }

        // ---- Backward ----
        w.WriteLine();
        w.Summary(
            "Backward: from ∂L/∂s (and optionally ∂L/∂α) writes ∂L/∂H when <paramref name=\"dInput\"/> is not empty and adds the parameter\n" +
            "gradients. hₜ receives αₜ ∂L/∂s directly and, through the score, Wᵀ(∂L/∂eₜ u_w ⊙ (1 − uₜ²)), with ∂L/∂e the softmax backward\n" +
            "of ∂L/∂αₜ = ∂L/∂s · hₜ. A sequence that is all padding contributes nothing.");
        w.WriteLine("/// <param name=\"tape\">The tape the training <c>Forward</c> recorded into.</param>");
        w.WriteLine("/// <param name=\"input\">The input given to the forward, [B, T, Dim].</param>");
        w.WriteLine("/// <param name=\"dOutput\">∂L/∂s, [B, Dim].</param>");
        w.WriteLine("/// <param name=\"dInput\">∂L/∂H, [B, T, Dim]: written when not empty.</param>");
        w.WriteLine("/// <param name=\"dWeights\">Optional ∂L/∂α, [B, T].</param>");
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
            w.WriteLine("Shapes.RequireLength(dOutput.Length, (long)batch * Dim, nameof(dOutput), $\"[B={batch}, Dim={Dim}]\");");
            w.WriteLine("Shapes.RequireOptionalLength(dInput.Length, (long)batch * length * Dim, nameof(dInput), $\"[B={batch}, T={length}, Dim={Dim}]\");");
            w.WriteLine("Shapes.RequireOptionalLength(dWeights.Length, (long)batch * length, nameof(dWeights), $\"[B={batch}, T={length}]\");");
            w.WriteLine("// Scratch for the whole batch: ∂L/∂(H Wᵀ + b) [B·T, Units], every element written by BackwardRows; from a");
            w.WriteLine("// cache line on, each sequence's sums of ∂L/∂u_w and ∂L/∂b [B, SequenceSumsLength], written by BackwardRows; then");
            w.WriteLine("// ProductParts partial sums of ∂L/∂W [Units, Dim], each written by its part of BackwardProducts.");
            w.WriteLine("int sequenceSumsStart = SequenceSumsStart(batch * length);");
            w.WriteLine("int partialsStart = sequenceSumsStart + batch * SequenceSumsLength;");
            LayerScaffold.DeclareScratch(w, element, "scratch", "partialsStart + ProductParts * Units * Dim");
            w.WriteLine($"Span<{T}> partials = scratch.Slice(partialsStart, ProductParts * Units * Dim);");
            using (w.Block("try"))
            {
                w.WriteLine("long work = (long)batch * length * Units * Dim;");
                w.WriteLine("var lengths = (batch, 1, length);");
                w.WriteLine("// Per sequence (sequences are independent, so large calls spread them over threads): ∂L/∂α, ∂L/∂e, ∂L/∂pre.");
                using (w.Block("if (BatchParallel.ShouldSplit(batch, MaxDegreeOfParallelism, work, ParallelWorkThreshold))"))
                {
                    w.WriteLine($"BatchParallel.For<{T}>(batch, MaxDegreeOfParallelism, CallStateFor(tape),");
                    w.WriteLine($"    static (int b, object state, in ChunkSpans<{T}> s) => ((CallState)state).Layer.BackwardRows(((CallState)state).Tape!, b, b + 1, s.R0, s.R1, s.R2, s.W0, s.W1),");
                    w.WriteLine("    lengths, r0: input, r1: dOutput, r2: dWeights, w0: dInput, w1: scratch);");
                }
                using (w.Block("else"))
                {
                    w.WriteLine("BackwardRows(tape, 0, batch, input, dOutput, dWeights, dInput, scratch);");
                }
                w.WriteLine();
                w.WriteLine("// pre = H Wᵀ + b over all B·T steps, cut into ProductParts ranges of steps: part p of ∂L/∂W = ∂L/∂preᵀ H over its");
                w.WriteLine("// steps, and ∂L/∂H += ∂L/∂pre W on its steps. Threads take the parts of the steps whose rows they wrote above");
                w.WriteLine("// (BatchParallel.Interleaved), and each part reads only its own steps.");
                using (w.Block("if (BatchParallel.ShouldSplit(2 * ProductParts, MaxDegreeOfParallelism, work, ParallelWorkThreshold))"))
                {
                    w.WriteLine($"BatchParallel.For<{T}>(2 * ProductParts, MaxDegreeOfParallelism, CallStateFor(tape),");
                    w.WriteLine($"    static (int chunk, object state, in ChunkSpans<{T}> s) => ((CallState)state).Layer.BackwardProducts(((CallState)state).Tape!, BatchParallel.Interleaved(chunk, 2, ProductParts), s.R0, s.R1, s.W0, s.W1),");
                    w.WriteLine("    lengths, r0: input, r1: scratch, w0: dInput, w1: partials);");
                }
                using (w.Block("else"))
                {
                    using (w.Block("for (int chunk = 0; chunk < 2 * ProductParts; chunk++)"))
                    {
                        w.WriteLine("BackwardProducts(tape, chunk, input, scratch, dInput, partials);");
                    }
                }
                w.WriteLine("// ∂L/∂u_w and ∂L/∂b += the sequences' sums, in sequence order (the same additions whatever the number of threads).");
                w.WriteLine($"ref {T} dContextVector = ref MemoryMarshal.GetArrayDataReference(ContextVector.Gradient);");
                w.WriteLine($"ref {T} dBias = ref MemoryMarshal.GetArrayDataReference(Bias.Gradient);");
                using (w.Block("for (int b = 0; b < batch; b++)"))
                {
                    w.WriteLine($"ref {T} sums = ref scratch[sequenceSumsStart + b * SequenceSumsLength];");
                    w.WriteLine($"{axpyUnits}(1, ref sums, ref dContextVector);");
                    w.WriteLine($"{axpyUnits}(1, ref Unsafe.Add(ref sums, Units), ref dBias);");
                }
                w.WriteLine("// ∂L/∂W += the parts' sums, in part order: the same additions whatever the number of threads.");
                using (w.Block("for (int part = 0; part < ProductParts; part++)"))
                {
                    using (w.Block("for (int u = 0; u < Units; u++)"))
                    {
                        w.WriteLine($"{axpyDim}(1, ref partials[(part * Units + u) * Dim], ref Weight.Gradient[u * Dim]);");
                    }
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }

        // ---- Backward, per sequence ----
        w.WriteLine();
        w.WriteLine("// Sequences [first, end) of the backward; each writes only its own rows of ∂L/∂H, ∂L/∂pre and ∂L/∂e.");
        using (LayerScaffold.HotBlock(w, $"private void BackwardRows(Tape tape, int first, int end, ReadOnlySpan<{T}> input, ReadOnlySpan<{T}> dOutput, ReadOnlySpan<{T}> dWeights, Span<{T}> dInput, Span<{T}> scratch)"))
        {
            w.WriteLine("int batch = tape.Batch, length = tape.KeyLength;");
            w.WriteLine($"Span<{T}> dPre = scratch.Slice(0, batch * length * Units);");
            w.WriteLine("int sequenceSumsStart = SequenceSumsStart(batch * length);");
            w.WriteLine("// ∂L/∂α and ∂L/∂e of one sequence.");
            LayerScaffold.DeclareScratch(w, element, "stepScratch", "2 * length");
            using (w.Block("try"))
            {
                w.WriteLine($"ref {T} contextVector = ref MemoryMarshal.GetArrayDataReference(ContextVector.Value);");
                using (w.Block("for (int b = first; b < end; b++)"))
                {
                    w.WriteLine($"ReadOnlySpan<{T}> alpha = tape.Weights.AsSpan(b * length, length);");
                    w.WriteLine($"Span<{T}> dAlpha = stepScratch.Slice(0, length), dScores = stepScratch.Slice(length, length);");
                    w.WriteLine($"ref {T} dPooled = ref MemoryMarshal.GetReference(dOutput.Slice(b * Dim, Dim));");
                    w.WriteLine("// s = Σₜ αₜ hₜ: ∂L/∂αₜ = ∂L/∂s · hₜ, and hₜ receives αₜ ∂L/∂s directly (written here, the projection's share added later).");
                    using (w.Block("for (int t = 0; t < length; t++)"))
                    {
                        w.WriteLine($"ref {T} h = ref MemoryMarshal.GetReference(input.Slice((b * length + t) * Dim, Dim));");
                        w.WriteLine($"dAlpha[t] = {dotDim}(ref dPooled, ref h) + (dWeights.IsEmpty ? 0 : dWeights[b * length + t]);");
                        using (w.Block("if (!dInput.IsEmpty)"))
                        {
                            w.WriteLine($"if (alpha[t] != 0) {scaleDim}(alpha[t], ref dPooled, ref dInput[(b * length + t) * Dim]);");
                            w.WriteLine("else dInput.Slice((b * length + t) * Dim, Dim).Clear(); // a padded step's share stays exactly zero");
                        }
                    }
                    w.WriteLine($"AttentionMath.SoftmaxBackward<{T}>(alpha, dAlpha, dScores);");
                    w.WriteLine("// eₜ = uₜ · u_w with uₜ = tanh(preₜ): ∂L/∂preₜ = ∂L/∂eₜ u_w ⊙ (1 − uₜ²); the sequence's sums of ∂L/∂u_w = Σₜ ∂L/∂eₜ uₜ");
                    w.WriteLine("// and ∂L/∂b = Σₜ ∂L/∂preₜ, in step order, added to the parameters' gradients after the products.");
                    w.WriteLine($"Span<{T}> sums = scratch.Slice(sequenceSumsStart + b * SequenceSumsLength, 2 * Units);");
                    w.WriteLine("sums.Clear();");
                    w.WriteLine($"ref {T} dContextVectorSum = ref sums[0];");
                    w.WriteLine($"ref {T} dBiasSum = ref sums[Units];");
                    using (w.Block("for (int t = 0; t < length; t++)"))
                    {
                        using (w.Block("if (alpha[t] != 0)"))
                        {
                            w.WriteLine($"{preGradient}(dScores[t], ref tape.Hidden[(b * length + t) * Units], ref contextVector, ref dPre[(b * length + t) * Units], ref dContextVectorSum, ref dBiasSum);");
                        }
                        using (w.Block("else"))
                        {
                            w.WriteLine("dPre.Slice((b * length + t) * Units, Units).Clear(); // padding: no gradient");
                        }
                    }
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "stepScratch");
            }
        }

        // ---- Backward, the parameter and input products ----
        w.WriteLine();
        LayerScaffold.DeclareProductParts(w);
        w.WriteLine();
        int lineElements = 64 / element.Size;
        w.WriteLine("// Each sequence's sums of ∂L/∂u_w and ∂L/∂b (2·Units) in the backward's scratch, padded to whole cache lines so that threads");
        w.WriteLine("// writing neighbouring sequences never share a line.");
        w.WriteLine($"private const int SequenceSumsLength = {(2 * model.Units + lineElements - 1) / lineElements * lineElements};");
        w.WriteLine();
        w.WriteLine("// Where the sequences' sums start in the backward's scratch: after ∂L/∂pre of the B·T steps, on a cache line.");
        w.WriteLine($"private static int SequenceSumsStart(int steps) => (steps * Units + {lineElements - 1}) / {lineElements} * {lineElements};");
        w.WriteLine();
        w.WriteLine("// Chunk c does part p = c % ProductParts, the steps [lo, hi) = [p·S/parts, (p+1)·S/parts) of the B·T = S, of");
        w.WriteLine("// product c / ProductParts:");
        w.WriteLine("//   0: partial sum p of ∂L/∂W = Σ over steps [lo, hi), in order, of ∂L/∂preₜᵀ hₜ (written to its own scratch, added after)");
        w.WriteLine("//   1: ∂L/∂H += ∂L/∂pre W on rows [lo, hi) (skipped when not wanted)");
        using (LayerScaffold.HotBlock(w, $"private void BackwardProducts(Tape tape, int chunk, ReadOnlySpan<{T}> input, ReadOnlySpan<{T}> scratch, Span<{T}> dInput, Span<{T}> partials)"))
        {
            w.WriteLine("const int parts = ProductParts;");
            w.WriteLine("int steps = tape.Batch * tape.KeyLength;");
            w.WriteLine($"ReadOnlySpan<{T}> dPre = scratch.Slice(0, steps * Units);");
            w.WriteLine("int part = chunk % parts;");
            using (w.Block("if (chunk < parts)"))
            {
                w.WriteLine("int lo = steps * part / parts, hi = steps * (part + 1) / parts;");
                w.WriteLine("// Σ over the part's steps (none: zero) of ∂y[r, u] · x[r, :] (y = x Wᵀ), from zero.");
                w.WriteLine($"{product}(Units, hi - lo, ref Unsafe.Add(ref MemoryMarshal.GetReference(dPre), lo * Units), 1, Units, ref Unsafe.Add(ref MemoryMarshal.GetReference(input), lo * Dim), ref partials[part * Units * Dim], accumulate: false);");
            }
            using (w.Block("else"))
            {
                LayerScaffold.InputGradientPart(w, product, "Units", "steps", "parts", "dPre", "Weight.Value", "dInput", "Dim", overwrite: false);
            }
        }

        // ---- Argument checks ----
        w.WriteLine();
        using (w.Block($"private static void ThrowIfInvalidForward(int batch, int length, ReadOnlySpan<{T}> input, Span<{T}> output, Span<{T}> weights, ReadOnlySpan<bool> padding)"))
        {
            w.WriteLine("Shapes.RequireAtLeast(batch, 0, nameof(batch));");
            w.WriteLine("Shapes.RequireAtLeast(length, 1, nameof(length));");
            w.WriteLine("Shapes.RequireLength(input.Length, (long)batch * length * Dim, nameof(input), $\"[B={batch}, T={length}, Dim={Dim}]\");");
            w.WriteLine("Shapes.RequireLength(output.Length, (long)batch * Dim, nameof(output), $\"[B={batch}, Dim={Dim}]\");");
            w.WriteLine("Shapes.RequireOptionalLength(weights.Length, (long)batch * length, nameof(weights), $\"[B={batch}, T={length}]\");");
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
        w.WriteLine("/// <param name=\"output\">s, [B, Dim], written.</param>");
        w.WriteLine("/// <param name=\"weights\">α, [B, T], written when not empty" + (tape ? " (the tape keeps its own copy)" : "") + ".</param>");
        w.WriteLine("/// <param name=\"padding\">[B, T]: false marks padding, which gets weight 0; a sequence that is all padding pools to zeros. Empty = no padding.</param>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the shapes, T &lt; 1, or an output overlaps an input.</exception>");
    }
}
