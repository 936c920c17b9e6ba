using System.Collections.Generic;
using AttentionGen.Generator.Model;

namespace AttentionGen.Generator.Emit;

/// <summary>
/// Writes a <c>[KeyValueAttention]</c> layer (Daniluk et al. 2017): each hidden state splits into a key, a value (and a
/// predict part); each step attends additively over the previous Window keys and outputs h*ₜ = tanh(W_r rₜ + W_x xₜ),
/// with xₜ the value (or predict part). A whole sequence in one causal call (training, with backward) and one step at a
/// time over a rolling window (generation) compute the same numbers.
/// </summary>
internal static class KeyValueEmitter
{
    public static string Emit(KeyValueModel model)
    {
        string T = model.Element.Keyword;
        var constants = new[]
        {
            new LayerConstant("Dim", model.Dim, "k: the size of each part of a hidden state and of the output."),
            new LayerConstant("Window", model.Window, "L: how many previous steps each step attends to."),
            new LayerConstant("Parts", model.Parts, "How many parts each hidden state has: key, value" + (model.Predict ? ", predict." : ".")),
            new LayerConstant("InputDim", model.Parts * model.Dim, "The size of each hidden state: Parts · Dim."),
        };
        string glorot = $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Dim, fanOut: Dim, random);";
        var parameters = new List<LayerParameter>
        {
            new("MemoryWeight", "memory_weight", new[] { "Dim", "Dim" }, "W^Y: projects each remembered key, Mₜ = tanh(W^Y K + (W^h kₜ) 1ᵀ).", glorot),
            new("QueryWeight", "query_weight", new[] { "Dim", "Dim" }, "W^h: projects the current key.", glorot),
            new("ScoreVector", "score_vector", new[] { "Dim" }, "w: αₜ = softmax(wᵀ Mₜ).", $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Dim, fanOut: 1, random);"),
            new("ContextWeight", "context_weight", new[] { "Dim", "Dim" }, "W^r: h*ₜ = tanh(W^r rₜ + W^x xₜ).", glorot),
            new("InputWeight", "input_weight", new[] { "Dim", "Dim" }, "W^x: applied to the current " + (model.Predict ? "predict part pₜ." : "value vₜ."), glorot),
        };
        string summary =
            $"Key-value attention (Daniluk et al. 2017), generated for k = {model.Dim}, L = {model.Window}, split {(model.Predict ? "key/value/predict" : "key/value")}, {T}:\n" +
            "Mₜ = tanh(W^Y [k_{t−L} … k_{t−1}] + (W^h kₜ) 1ᵀ), αₜ = softmax(wᵀ Mₜ), rₜ = Σ αₜ v, h*ₜ = tanh(W^r rₜ + W^x " + (model.Predict ? "pₜ" : "vₜ") + ").\n" +
            "Positions before the start of the sequence are masked (step 0 has r = 0). Shapes: input [B, T, InputDim], output [B, T, Dim],\n" +
            "weights [B, T, Window] (entry j is the weight of step t − Window + j; zero before the start).";
        return LayerScaffold.Write(model.Target, model.Element, summary, constants, parameters, (writer, kernels) => EmitBody(writer, kernels, model));
    }

    private static void EmitBody(SourceWriter w, Kernels kernels, KeyValueModel model)
    {
        ElementType element = model.Element;
        string T = element.Keyword;
        string project = kernels.ProductTransposedAdd(model.Dim);
        string product = kernels.MatrixProductAdd(model.Dim);
        string axpy = kernels.MultiplyAdd(model.Dim);
        string dot = kernels.Dot(model.Dim);
        string xPart = model.Predict ? "2" : "1";
        string score = kernels.AdditiveScore(model.Dim);
        string scoreBackward = kernels.AdditiveScoreBackward(model.Dim);
        string tanh = kernels.TanhInPlace(model.Dim);

        // ---- Tape and window state ----
        w.WriteLine();
        w.Summary("What a training forward records: W^Y K and W^h K [B, T, Dim], the weights [B, T, Window], r [B, T, Dim] and h* [B, T, Dim].");
        using (w.Block("public sealed class Tape : AttentionTape"))
        {
            LayerScaffold.DeclareTapeCallState(w);
            foreach (string field in new[] { "MemoryProjection", "QueryProjection", "Weights", "Context", "Output" })
            {
                w.WriteLine($"internal AlignedBuffer<{T}> {field};");
            }
            w.WriteLine();
            using (w.Block("internal void Prepare(int batch, int length)"))
            {
                w.WriteLine("Grow(ref MemoryProjection, batch * length * Dim);");
                w.WriteLine("Grow(ref QueryProjection, batch * length * Dim);");
                w.WriteLine("Grow(ref Weights, batch * length * Window);");
                w.WriteLine("Grow(ref Context, batch * length * Dim);");
                w.WriteLine("Grow(ref Output, batch * length * Dim);");
                w.WriteLine("(Batch, QueryLength, KeyLength, IsRecorded) = (batch, length, length, true);");
            }
        }
        w.WriteLine();
        w.Summary("The rolling window of one generation stream per batch row: the last Window projected keys W^Y k and values v.");
        using (w.Block("public sealed class WindowState"))
        {
            w.WriteLine($"internal {T}[] Keys = Array.Empty<{T}>();");
            w.WriteLine($"internal {T}[] Values = Array.Empty<{T}>();");
            w.WriteLine("internal int Batch;");
            w.Summary("How many steps have been taken since <see cref=\"Reset\"/>.");
            w.WriteLine("public int Steps { get; internal set; }");
            w.WriteLine();
            w.Summary("Starts new streams for <paramref name=\"batch\"/> rows (allocates only when the batch grows).");
            using (w.Block("public void Reset(int batch)"))
            {
                w.WriteLine("Shapes.RequireAtLeast(batch, 1, nameof(batch));");
                w.WriteLine($"if (Keys.Length < batch * Window * Dim) {{ Keys = new {T}[batch * Window * Dim]; Values = new {T}[batch * Window * Dim]; }}");
                w.WriteLine("(Batch, Steps) = (batch, 0);");
            }
        }

        // ---- Whole-sequence forwards ----
        w.WriteLine();
        w.Summary("Inference over whole sequences: every step attends to its previous Window steps (causal).");
        WriteParamDocs(w);
        using (w.Block($"public void Forward(int batch, int length, ReadOnlySpan<{T}> input, Span<{T}> output, Span<{T}> weights = default)"))
        {
            w.WriteLine("ThrowIfInvalidForward(batch, length, input, output, weights);");
            w.WriteLine("ForwardBatch(null, batch, length, input, output, weights);");
        }
        w.WriteLine();
        w.Summary("Training forward over whole sequences: the inference result, recording what <see cref=\"Backward\"/> needs.");
        w.WriteLine("/// <param name=\"tape\">The caller's reusable tape.</param>");
        WriteParamDocs(w);
        using (w.Block($"public void Forward(Tape tape, int batch, int length, ReadOnlySpan<{T}> input, Span<{T}> output, Span<{T}> weights = default)"))
        {
            w.WriteLine("ArgumentNullException.ThrowIfNull(tape);");
            w.WriteLine("ThrowIfInvalidForward(batch, length, input, output, weights);");
            w.WriteLine("tape.Prepare(batch, length);");
            w.WriteLine("ForwardBatch(tape, batch, length, input, output, weights);");
        }
        w.WriteLine();
        w.WriteLine("// Sequences are independent: a large call spreads them over threads, each writing only its own rows.");
        using (w.Block($"private void ForwardBatch(Tape? tape, int batch, int length, ReadOnlySpan<{T}> input, Span<{T}> output, Span<{T}> weights)"))
        {
            w.WriteLine("// Per sequence: 4 T·k² multiply-adds for the projections KP, QP and h*, about 2 T·L·k for the attention.");
            w.WriteLine("long work = (long)batch * length * Dim * (4 * Dim + 2 * Math.Min(length, Window));");
            LayerScaffold.SplitOrSerial(w, element, "batch", "work", "CallStateFor(tape)",
                "((CallState)state).Layer.ForwardRows(((CallState)state).Tape, chunk, chunk + 1, s.KeyLength, s.R0, s.W0, s.W1)",
                "(batch, length, length), r0: input, w0: output, w1: weights",
                "ForwardRows(tape, 0, batch, length, input, output, weights);");
        }
        w.WriteLine();
        w.WriteLine($"private sealed record CallState({model.Target.Name} Layer, Tape? Tape);");
        LayerScaffold.DeclareCallStateFor(w);
        w.WriteLine();
        w.WriteLine("// Sequences [first, end), each: KP = K W^Yᵀ, QP = K W^hᵀ; for each t: eⱼ = wᵀ tanh(QPₜ + KP_{t−n+j}) over the n = min(t, Window) previous steps,");
        w.WriteLine("// α = softmax(e) (stored right-aligned in a row of Window), rₜ = Σ αⱼ v; then h* = tanh(R W^rᵀ + X W^xᵀ).");
        using (LayerScaffold.HotBlock(w, $"private void ForwardRows(Tape? tape, int first, int end, int length, ReadOnlySpan<{T}> input, Span<{T}> output, Span<{T}> weights)"))
        {
            LayerScaffold.DeclareScratch(w, element, "scratch", "3 * length * Dim + (tape is null ? 4 * length * Dim + length * Window : 0)");
            using (w.Block("try"))
            {
                w.WriteLine("int block = length * Dim;");
                w.WriteLine($"Span<{T}> keys = scratch.Slice(0, block), values = scratch.Slice(block, block), inputs = scratch.Slice(2 * block, block);");
                using (w.Block("for (int b = first; b < end; b++)"))
                {
                    w.WriteLine("int offset = b * block;");
                    w.WriteLine($"Span<{T}> memory = tape is not null ? tape.MemoryProjection.AsSpan(offset, block) : scratch.Slice(3 * block, block);");
                    w.WriteLine($"Span<{T}> query = tape is not null ? tape.QueryProjection.AsSpan(offset, block) : scratch.Slice(4 * block, block);");
                    w.WriteLine($"Span<{T}> context = tape is not null ? tape.Context.AsSpan(offset, block) : scratch.Slice(5 * block, block);");
                    w.WriteLine($"Span<{T}> result = tape is not null ? tape.Output.AsSpan(offset, block) : scratch.Slice(6 * block, block);");
                    w.WriteLine($"Span<{T}> alpha = tape is not null ? tape.Weights.AsSpan(b * length * Window, length * Window) : scratch.Slice(7 * block, length * Window);");
                    w.WriteLine("Extract(input, b, length, 0, keys);");
                    w.WriteLine("Extract(input, b, length, 1, values);");
                    w.WriteLine($"Extract(input, b, length, {xPart}, inputs);");
                    w.WriteLine("memory.Clear();");
                    w.WriteLine("query.Clear();");
                    w.WriteLine($"{project}(length, Dim, ref MemoryMarshal.GetReference(keys), ref MemoryMarshal.GetArrayDataReference(MemoryWeight.Value), ref MemoryMarshal.GetReference(memory));");
                    w.WriteLine($"{project}(length, Dim, ref MemoryMarshal.GetReference(keys), ref MemoryMarshal.GetArrayDataReference(QueryWeight.Value), ref MemoryMarshal.GetReference(query));");
                    using (w.Block("for (int t = 0; t < length; t++)"))
                    {
                        w.WriteLine("int n = Math.Min(t, Window);");
                        w.WriteLine("Attend(query.Slice(t * Dim, Dim), memory.Slice((t - n) * Dim, n * Dim), values.Slice((t - n) * Dim, n * Dim), alpha.Slice(t * Window, Window), context.Slice(t * Dim, Dim));");
                    }
                    w.WriteLine("Output(length, context, inputs, result);");
                    w.WriteLine("result.CopyTo(output.Slice(offset, block));");
                    w.WriteLine("if (!weights.IsEmpty) alpha.CopyTo(weights.Slice(b * length * Window, length * Window));");
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }
        w.WriteLine();
        w.WriteLine("// One step: scores over the n remembered steps (oldest first), softmax, r = Σ αⱼ vⱼ. The weights row has Window entries,");
        w.WriteLine("// right-aligned: its first Window − n entries (before the start of the sequence) stay zero.");
        using (LayerScaffold.HotBlock(w, $"private void Attend(ReadOnlySpan<{T}> projectedQuery, ReadOnlySpan<{T}> memory, ReadOnlySpan<{T}> values, Span<{T}> alpha, Span<{T}> context)"))
        {
            w.WriteLine("int n = memory.Length / Dim;");
            w.WriteLine("alpha.Clear();");
            w.WriteLine("context.Clear();");
            w.WriteLine("if (n == 0) return;");
            w.WriteLine($"Span<{T}> scores = alpha.Slice(Window - n, n);");
            w.WriteLine($"ref {T} q = ref MemoryMarshal.GetReference(projectedQuery);");
            w.WriteLine($"ref {T} scoreVector = ref MemoryMarshal.GetArrayDataReference(ScoreVector.Value);");
            w.WriteLine($"for (int j = 0; j < n; j++) scores[j] = {score}(ref q, ref MemoryMarshal.GetReference(memory.Slice(j * Dim, Dim)), ref scoreVector);");
            w.WriteLine("AttentionMath.Softmax(scores);");
            w.WriteLine($"for (int j = 0; j < n; j++) {axpy}(scores[j], ref MemoryMarshal.GetReference(values.Slice(j * Dim, Dim)), ref MemoryMarshal.GetReference(context));");
        }
        w.WriteLine();
        w.WriteLine("// h* = tanh(R W^rᵀ + X W^xᵀ) for `rows` steps.");
        using (LayerScaffold.HotBlock(w, $"private void Output(int rows, ReadOnlySpan<{T}> context, ReadOnlySpan<{T}> inputs, Span<{T}> result)"))
        {
            w.WriteLine("result.Clear();");
            w.WriteLine($"{project}(rows, Dim, ref MemoryMarshal.GetReference(context), ref MemoryMarshal.GetArrayDataReference(ContextWeight.Value), ref MemoryMarshal.GetReference(result));");
            w.WriteLine($"{project}(rows, Dim, ref MemoryMarshal.GetReference(inputs), ref MemoryMarshal.GetArrayDataReference(InputWeight.Value), ref MemoryMarshal.GetReference(result));");
            w.WriteLine($"for (int t = 0; t < rows; t++) {tanh}(ref result[t * Dim]);");
        }
        w.WriteLine();
        w.WriteLine("// Copies part `part` (0 key, 1 value, 2 predict) of every step of sequence b into a contiguous [T, Dim] block.");
        using (w.Block($"private static void Extract(ReadOnlySpan<{T}> input, int b, int length, int part, Span<{T}> destination)"))
        {
            w.WriteLine("for (int t = 0; t < length; t++) input.Slice((b * length + t) * InputDim + part * Dim, Dim).CopyTo(destination.Slice(t * Dim, Dim));");
        }

        // ---- Step ----
        w.WriteLine();
        w.Summary("One generation step for every stream: attends over the state's remembered steps, writes h*ₜ, then remembers this step\n(the oldest falls out after Window steps). Gives the numbers the whole-sequence forward gives at the same step.");
        w.WriteLine("/// <param name=\"state\">The streams' rolling windows, started with <see cref=\"WindowState.Reset\"/>.</param>");
        w.WriteLine("/// <param name=\"input\">This step's hidden states, [B, InputDim].</param>");
        w.WriteLine("/// <param name=\"output\">h*ₜ, [B, Dim], written.</param>");
        w.WriteLine("/// <param name=\"weights\">[B, Window], written when not empty (right-aligned as in the whole-sequence forward).</param>");
        using (LayerScaffold.HotBlock(w, $"public void Step(WindowState state, ReadOnlySpan<{T}> input, Span<{T}> output, Span<{T}> weights = default)"))
        {
            w.WriteLine("ArgumentNullException.ThrowIfNull(state);");
            w.WriteLine("int batch = state.Batch;");
            w.WriteLine("if (batch == 0) throw new ArgumentException(\"The window state has not been started: call Reset(batch) first.\", nameof(state));");
            w.WriteLine("Shapes.RequireLength(input.Length, (long)batch * InputDim, nameof(input), $\"[B={batch}, InputDim={InputDim}]\");");
            w.WriteLine("Shapes.RequireLength(output.Length, (long)batch * Dim, nameof(output), $\"[B={batch}, Dim={Dim}]\");");
            w.WriteLine("Shapes.RequireOptionalLength(weights.Length, (long)batch * Window, nameof(weights), $\"[B={batch}, Window={Window}]\");");
            w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(output, input, nameof(output), nameof(input));");
            w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(weights, input, nameof(weights), nameof(input));");
            w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(weights, output, nameof(weights), nameof(output));");
            LayerScaffold.DeclareScratch(w, element, "scratch", "6 * Dim + 2 * Window * Dim + Window");
            using (w.Block("try"))
            {
                w.WriteLine($"Span<{T}> projectedQuery = scratch.Slice(0, Dim), projectedKey = scratch.Slice(Dim, Dim), context = scratch.Slice(2 * Dim, Dim), result = scratch.Slice(3 * Dim, Dim);");
                w.WriteLine($"Span<{T}> memory = scratch.Slice(4 * Dim, Window * Dim), values = scratch.Slice(4 * Dim + Window * Dim, Window * Dim), alpha = scratch.Slice(4 * Dim + 2 * Window * Dim, Window);");
                w.WriteLine("int n = Math.Min(state.Steps, Window);");
                using (w.Block("for (int b = 0; b < batch; b++)"))
                {
                    w.WriteLine($"ReadOnlySpan<{T}> hidden = input.Slice(b * InputDim, InputDim);");
                    w.WriteLine($"ReadOnlySpan<{T}> key = hidden.Slice(0, Dim);");
                    w.WriteLine("// The remembered steps in order, oldest first, out of the ring.");
                    using (w.Block("for (int j = 0; j < n; j++)"))
                    {
                        w.WriteLine("int slot = (state.Steps - n + j) % Window;");
                        w.WriteLine("state.Keys.AsSpan((b * Window + slot) * Dim, Dim).CopyTo(memory.Slice(j * Dim, Dim));");
                        w.WriteLine("state.Values.AsSpan((b * Window + slot) * Dim, Dim).CopyTo(values.Slice(j * Dim, Dim));");
                    }
                    w.WriteLine("projectedQuery.Clear();");
                    w.WriteLine($"{project}(1, Dim, ref MemoryMarshal.GetReference(key), ref MemoryMarshal.GetArrayDataReference(QueryWeight.Value), ref MemoryMarshal.GetReference(projectedQuery));");
                    w.WriteLine("Attend(projectedQuery, memory.Slice(0, n * Dim), values.Slice(0, n * Dim), alpha, context);");
                    w.WriteLine($"Output(1, context, hidden.Slice({xPart} * Dim, Dim), result);");
                    w.WriteLine("result.CopyTo(output.Slice(b * Dim, Dim));");
                    w.WriteLine("if (!weights.IsEmpty) alpha.CopyTo(weights.Slice(b * Window, Window));");
                    w.WriteLine("// Remember this step: W^Y kₜ and vₜ go into the ring.");
                    w.WriteLine("int newest = state.Steps % Window;");
                    w.WriteLine("projectedKey.Clear();");
                    w.WriteLine($"{project}(1, Dim, ref MemoryMarshal.GetReference(key), ref MemoryMarshal.GetArrayDataReference(MemoryWeight.Value), ref MemoryMarshal.GetReference(projectedKey));");
                    w.WriteLine("projectedKey.CopyTo(state.Keys.AsSpan((b * Window + newest) * Dim, Dim));");
                    w.WriteLine("hidden.Slice(Dim, Dim).CopyTo(state.Values.AsSpan((b * Window + newest) * Dim, Dim));");
                }
                w.WriteLine("state.Steps++;");
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }

        // ---- Backward ----
        w.WriteLine();
        w.Summary(
            "Backward over whole sequences: from ∂L/∂h* writes ∂L/∂input when <paramref name=\"dInput\"/> is not empty and adds every parameter's\n" +
            "gradient. Through h* = tanh(pre): ∂pre = ∂h* ⊙ (1 − h*²); ∂W^r += ∂preᵀ R, ∂R = ∂pre W^r, ∂W^x += ∂preᵀ X, ∂X = ∂pre W^x; then per\n" +
            "step the attention (value path, softmax backward, the fused score's backward into ∂w, ∂QP, ∂KP); finally ∂W^h, ∂W^Y and ∂K.");
        w.WriteLine("/// <param name=\"tape\">The tape the training <c>Forward</c> recorded into.</param>");
        w.WriteLine("/// <param name=\"input\">The input given to the forward, [B, T, InputDim].</param>");
        w.WriteLine("/// <param name=\"dOutput\">∂L/∂h*, [B, T, Dim].</param>");
        w.WriteLine("/// <param name=\"dInput\">∂L/∂input, [B, T, InputDim]: written when not empty.</param>");
        using (w.Block($"public void Backward(Tape tape, ReadOnlySpan<{T}> input, ReadOnlySpan<{T}> dOutput, Span<{T}> dInput = default)"))
        {
            w.WriteLine("ArgumentNullException.ThrowIfNull(tape);");
            w.WriteLine("if (!tape.IsRecorded) throw new ArgumentException(\"The tape holds no recorded forward: call the training Forward(tape, ...) first.\", nameof(tape));");
            w.WriteLine("int batch = tape.Batch, length = tape.KeyLength;");
            w.WriteLine("Shapes.RequireLength(input.Length, (long)batch * length * InputDim, nameof(input), $\"[B={batch}, T={length}, InputDim={InputDim}]\");");
            w.WriteLine("Shapes.RequireLength(dOutput.Length, (long)batch * length * Dim, nameof(dOutput), $\"[B={batch}, T={length}, Dim={Dim}]\");");
            w.WriteLine("Shapes.RequireOptionalLength(dInput.Length, (long)batch * length * InputDim, nameof(dInput), $\"[B={batch}, T={length}, InputDim={InputDim}]\");");
            w.WriteLine("int rows = batch * length;");
            w.WriteLine("// Scratch for the whole batch, every element written by BackwardRows: each sequence's share of ∂w (one cache line");
            w.WriteLine("// or more each), then ∂pre, K, X, ∂QP and ∂KP [B·T, Dim], which the projection gradients read after every sequence is done.");
            LayerScaffold.DeclareScratch(w, element, "scratch", "batch * ScoreShareStride + 5 * rows * Dim");
            using (w.Block("try"))
            {
                w.WriteLine("long work = (long)rows * Dim * (4 * Dim + 2 * Math.Min(length, Window));");
                w.WriteLine("var lengths = (batch, length, length);");
                w.WriteLine("// Per sequence (independent, so large calls spread them over threads): through the tanh, the attention and the");
                w.WriteLine("// projections into ∂L/∂input's rows, ∂pre, ∂QP, ∂KP and the sequence's share of ∂w.");
                LayerScaffold.SplitOrSerial(w, element, "batch", "work", "CallStateFor(tape)",
                    "((CallState)state).Layer.BackwardRows(((CallState)state).Tape!, chunk, chunk + 1, s.R0, s.R1, s.W0, s.W1)",
                    "lengths, r0: input, r1: dOutput, w0: dInput, w1: scratch",
                    "BackwardRows(tape, 0, batch, input, dOutput, dInput, scratch);");
                w.WriteLine();
                w.WriteLine("// The weight gradients over all B·T steps, each cut into row ranges that threads take independently (on one thread,");
                w.WriteLine("// each product in one call), and ∂w, the shares summed in sequence order.");
                LayerScaffold.SplitOrSerial(w, element, "4 * ProductParts + 1", "work", "CallStateFor(tape)",
                    "((CallState)state).Layer.BackwardProducts(((CallState)state).Tape!, chunk, ProductParts, s.R0)",
                    "lengths, r0: scratch",
                    "for (int product = 0; product < 5; product++) BackwardProducts(tape, product, 1, scratch);");
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }

        // ---- Backward, per sequence ----
        w.WriteLine();
        LayerScaffold.DeclareShareStride(w, element, model.Dim, "∂w");
        w.WriteLine();
        w.WriteLine("// Sequences [first, end) of the backward; each writes only its own rows of ∂L/∂input and of the whole-batch scratch.");
        using (LayerScaffold.HotBlock(w, $"private void BackwardRows(Tape tape, int first, int end, ReadOnlySpan<{T}> input, ReadOnlySpan<{T}> dOutput, Span<{T}> dInput, Span<{T}> scratch)"))
        {
            w.WriteLine("int batch = tape.Batch, length = tape.KeyLength, block = length * Dim, all = batch * block;");
            w.WriteLine($"Span<{T}> shares = scratch.Slice(0, batch * ScoreShareStride), batchScratch = scratch.Slice(batch * ScoreShareStride);");
            w.WriteLine("// V, ∂R, ∂X, ∂V and ∂K of one sequence; ∂α and ∂e of one step.");
            LayerScaffold.DeclareScratch(w, element, "rowScratch", "5 * length * Dim + 2 * Window");
            using (w.Block("try"))
            {
                w.WriteLine($"Span<{T}> values = rowScratch.Slice(0, block), dContext = rowScratch.Slice(block, block), dInputs = rowScratch.Slice(2 * block, block);");
                w.WriteLine($"Span<{T}> dValues = rowScratch.Slice(3 * block, block), dKeys = rowScratch.Slice(4 * block, block);");
                w.WriteLine($"Span<{T}> dAlpha = rowScratch.Slice(5 * block, Window), dScores = rowScratch.Slice(5 * block + Window, Window);");
                w.WriteLine($"ref {T} scoreVector = ref MemoryMarshal.GetArrayDataReference(ScoreVector.Value);");
                using (w.Block("for (int b = first; b < end; b++)"))
                {
                    w.WriteLine("int offset = b * block;");
                    w.WriteLine($"Span<{T}> dPre = batchScratch.Slice(offset, block), keys = batchScratch.Slice(all + offset, block), inputs = batchScratch.Slice(2 * all + offset, block);");
                    w.WriteLine($"Span<{T}> dQuery = batchScratch.Slice(3 * all + offset, block), dMemory = batchScratch.Slice(4 * all + offset, block);");
                    w.WriteLine($"Span<{T}> dScoreVector = shares.Slice(b * ScoreShareStride, Dim);");
                    w.WriteLine("Extract(input, b, length, 0, keys);");
                    w.WriteLine("Extract(input, b, length, 1, values);");
                    w.WriteLine($"Extract(input, b, length, {xPart}, inputs);");
                    w.WriteLine($"ReadOnlySpan<{T}> result = tape.Output.AsSpan(offset, block);");
                    w.WriteLine($"ReadOnlySpan<{T}> memory = tape.MemoryProjection.AsSpan(offset, block), query = tape.QueryProjection.AsSpan(offset, block);");
                    w.WriteLine("// ∂pre = ∂h* ⊙ (1 − h*²); ∂R = ∂pre W^r (∂W^r and ∂W^x follow for the whole batch).");
                    w.WriteLine("for (int i = 0; i < block; i++) dPre[i] = dOutput[offset + i] * (1 - result[i] * result[i]);");
                    w.WriteLine("dContext.Clear(); dValues.Clear(); dQuery.Clear(); dMemory.Clear(); dScoreVector.Clear();");
                    w.WriteLine($"{product}(length, Dim, ref MemoryMarshal.GetReference(dPre), Dim, 1, ref MemoryMarshal.GetArrayDataReference(ContextWeight.Value), ref MemoryMarshal.GetReference(dContext));");
                    using (w.Block("for (int t = 1; t < length; t++)"))
                    {
                        w.WriteLine("int n = Math.Min(t, Window), oldest = t - n;");
                        w.WriteLine($"ReadOnlySpan<{T}> alpha = tape.Weights.AsSpan((b * length + t) * Window + Window - n, n);");
                        w.WriteLine($"ref {T} dContextRow = ref dContext[t * Dim];");
                        w.WriteLine("// rₜ = Σ αⱼ v: ∂αⱼ = ∂rₜ · v, ∂v += αⱼ ∂rₜ.");
                        using (w.Block("for (int j = 0; j < n; j++)"))
                        {
                            w.WriteLine($"dAlpha[j] = {dot}(ref dContextRow, ref MemoryMarshal.GetReference(values.Slice((oldest + j) * Dim, Dim)));");
                            w.WriteLine($"{axpy}(alpha[j], ref dContextRow, ref dValues[(oldest + j) * Dim]);");
                        }
                        w.WriteLine($"AttentionMath.SoftmaxBackward<{T}>(alpha, dAlpha.Slice(0, n), dScores.Slice(0, n));");
                        using (w.Block("for (int j = 0; j < n; j++)"))
                        {
                            w.WriteLine($"{scoreBackward}(dScores[j], ref MemoryMarshal.GetReference(query.Slice(t * Dim, Dim)), ref MemoryMarshal.GetReference(memory.Slice((oldest + j) * Dim, Dim)), ref scoreVector,");
                            w.WriteLine("    ref dScoreVector[0], ref dQuery[t * Dim], ref dMemory[(oldest + j) * Dim]);");
                        }
                    }
                    using (w.Block("if (!dInput.IsEmpty)"))
                    {
                        w.WriteLine("// ∂X = ∂pre W^x; QP = K W^hᵀ and KP = K W^Yᵀ: ∂K = ∂QP W^h + ∂KP W^Y.");
                        w.WriteLine("dInputs.Clear(); dKeys.Clear();");
                        w.WriteLine($"{product}(length, Dim, ref MemoryMarshal.GetReference(dPre), Dim, 1, ref MemoryMarshal.GetArrayDataReference(InputWeight.Value), ref MemoryMarshal.GetReference(dInputs));");
                        w.WriteLine($"{product}(length, Dim, ref MemoryMarshal.GetReference(dQuery), Dim, 1, ref MemoryMarshal.GetArrayDataReference(QueryWeight.Value), ref MemoryMarshal.GetReference(dKeys));");
                        w.WriteLine($"{product}(length, Dim, ref MemoryMarshal.GetReference(dMemory), Dim, 1, ref MemoryMarshal.GetArrayDataReference(MemoryWeight.Value), ref MemoryMarshal.GetReference(dKeys));");
                        w.WriteLine("dInput.Slice(b * length * InputDim, length * InputDim).Clear();");
                        using (w.Block("for (int t = 0; t < length; t++)"))
                        {
                            w.WriteLine($"Span<{T}> row = dInput.Slice((b * length + t) * InputDim, InputDim);");
                            w.WriteLine("dKeys.Slice(t * Dim, Dim).CopyTo(row.Slice(0, Dim));");
                            w.WriteLine("dValues.Slice(t * Dim, Dim).CopyTo(row.Slice(Dim, Dim));");
                            w.WriteLine($"Span<{T}> xRow = row.Slice({xPart} * Dim, Dim);");
                            w.WriteLine("for (int i = 0; i < Dim; i++) xRow[i] += dInputs[t * Dim + i];");
                        }
                    }
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "rowScratch");
            }
        }

        // ---- Backward, the weight gradients ----
        w.WriteLine();
        LayerScaffold.DeclareProductParts(w);
        w.WriteLine();
        w.WriteLine("// Chunk c does part c % parts of product c / parts, over all B·T steps (h* = tanh(R W^rᵀ + X W^xᵀ), QP = K W^hᵀ, KP = K W^Yᵀ):");
        w.WriteLine("//   0: ∂W^r += ∂preᵀ R   1: ∂W^x += ∂preᵀ X   2: ∂W^h += ∂QPᵀ K   3: ∂W^Y += ∂KPᵀ K");
        w.WriteLine("// and product 4 (one part) adds the sequences' shares of ∂w in order. Parts write disjoint rows of their gradient.");
        using (LayerScaffold.HotBlock(w, $"private void BackwardProducts(Tape tape, int chunk, int parts, ReadOnlySpan<{T}> scratch)"))
        {
            w.WriteLine("int batch = tape.Batch, rows = batch * tape.KeyLength, all = rows * Dim;");
            w.WriteLine("int product = chunk / parts, part = chunk % parts;");
            w.WriteLine($"ReadOnlySpan<{T}> shares = scratch.Slice(0, batch * ScoreShareStride), batchScratch = scratch.Slice(batch * ScoreShareStride);");
            w.WriteLine($"ReadOnlySpan<{T}> dPre = batchScratch.Slice(0, all), keys = batchScratch.Slice(all, all), inputs = batchScratch.Slice(2 * all, all);");
            w.WriteLine($"ReadOnlySpan<{T}> dQuery = batchScratch.Slice(3 * all, all), dMemory = batchScratch.Slice(4 * all, all);");
            w.WriteLine($"ReadOnlySpan<{T}> context = tape.Context.AsSpan(0, all);");
            using (w.Block("if (product == 4)"))
            {
                w.WriteLine($"ref {T} dScoreVector = ref MemoryMarshal.GetArrayDataReference(ScoreVector.Gradient);");
                w.WriteLine($"for (int b = 0; b < batch; b++) {axpy}(1, ref MemoryMarshal.GetReference(shares.Slice(b * ScoreShareStride, Dim)), ref dScoreVector);");
                w.WriteLine("return;");
            }
            w.WriteLine("// Product p is ∂W += ∂yᵀ x for y = x Wᵀ, one of the four projections.");
            w.WriteLine($"ReadOnlySpan<{T}> dProjection = product switch {{ 0 or 1 => dPre, 2 => dQuery, _ => dMemory }};");
            w.WriteLine($"ReadOnlySpan<{T}> projected = product switch {{ 0 => context, 1 => inputs, _ => keys }};");
            w.WriteLine($"{T}[] gradient = product switch {{ 0 => ContextWeight.Gradient, 1 => InputWeight.Gradient, 2 => QueryWeight.Gradient, _ => MemoryWeight.Gradient }};");
            LayerScaffold.WeightGradientPart(w, product, "Dim", "rows", "parts", "dProjection", "projected", "gradient", "Dim");
        }

        w.WriteLine();
        using (w.Block($"private static void ThrowIfInvalidForward(int batch, int length, ReadOnlySpan<{T}> input, Span<{T}> output, Span<{T}> weights)"))
        {
            w.WriteLine("Shapes.RequireAtLeast(batch, 0, nameof(batch));");
            w.WriteLine("Shapes.RequireAtLeast(length, 1, nameof(length));");
            w.WriteLine("Shapes.RequireLength(input.Length, (long)batch * length * InputDim, nameof(input), $\"[B={batch}, T={length}, InputDim={InputDim}]\");");
            w.WriteLine("Shapes.RequireLength(output.Length, (long)batch * length * Dim, nameof(output), $\"[B={batch}, T={length}, Dim={Dim}]\");");
            w.WriteLine("Shapes.RequireOptionalLength(weights.Length, (long)batch * length * Window, nameof(weights), $\"[B={batch}, T={length}, Window={Window}]\");");
            w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(output, input, nameof(output), nameof(input));");
            w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(weights, input, nameof(weights), nameof(input));");
            w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(weights, output, nameof(weights), nameof(output));");
        }
    }

    private static void WriteParamDocs(SourceWriter w)
    {
        w.WriteLine("/// <param name=\"batch\">B, the number of sequences.</param>");
        w.WriteLine("/// <param name=\"length\">T, the steps of each sequence, at least 1.</param>");
        w.WriteLine("/// <param name=\"input\">The hidden states, [B, T, InputDim]: each is [key; value" + "" + "(; predict)].</param>");
        w.WriteLine("/// <param name=\"output\">h*, [B, T, Dim], written.</param>");
        w.WriteLine("/// <param name=\"weights\">[B, T, Window], written when not empty: entry j of step t weights step t − Window + j.</param>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the shapes, T &lt; 1, or an output overlaps an input.</exception>");
    }
}
