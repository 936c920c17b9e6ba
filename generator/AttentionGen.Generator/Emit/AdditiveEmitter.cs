using AttentionGen.Generator.Model;

namespace AttentionGen.Generator.Emit;

/// <summary>
/// Writes an <c>[AdditiveAttention]</c> layer (Bahdanau et al. 2015):
/// eᵢⱼ = vᵀ tanh(W_q qᵢ + W_k kⱼ + b), aᵢ = softmax over j of eᵢⱼ (masked), cᵢ = Σⱼ aᵢⱼ valueⱼ.
/// </summary>
/// <remarks>
/// The key projection W_k kⱼ + b does not depend on the query, so it is computed once per key sequence (what
/// TensorFlow calls the processed memory) and the per-query work is the fused score vᵀ tanh(W_q qᵢ + ·) over U,
/// never materialising the [Tq, Tk, U] tensor. Backward recomputes the tanh of each attended pair instead of
/// storing it: the tape holds W_q q [B, Tq, U], W_k k + b [B, Tk, U] and the weights [B, Tq, Tk].
/// </remarks>
internal static class AdditiveEmitter
{
    public static string Emit(AdditiveModel model)
    {
        ElementType element = model.Element;
        string T = element.Keyword;
        var constants = new[]
        {
            new LayerConstant("Dim", model.Dim, "Dq = Dk: the dimension of each query and each key."),
            new LayerConstant("Units", model.Units, "U: the hidden size of the score network (rows of W_q and W_k)."),
            new LayerConstant("ValueDim", model.ValueDim, "Dv: the dimension of each value and of the context."),
        };
        string glorot = $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Dim, fanOut: Units, random);";
        var parameters = new System.Collections.Generic.List<LayerParameter>
        {
            new("QueryWeight", "query_weight", new[] { "Units", "Dim" }, "W_q: projects a query into the score space (PyTorch <c>nn.Linear(Dim, Units, bias: false).weight</c>).", glorot),
            new("KeyWeight", "key_weight", new[] { "Units", "Dim" }, "W_k: projects a key into the score space (PyTorch <c>nn.Linear(Dim, Units, bias: false).weight</c>).", glorot),
        };
        if (model.UseBias)
        {
            parameters.Add(new("ScoreBias", "score_bias", new[] { "Units" }, "b: the bias inside the tanh; starts at zero.", $"Initializers.Zeros<{T}>({{p}});"));
        }
        parameters.Add(new("ScoreVector", "score_vector", new[] { "Units" }, "v: reduces tanh(·) to a score, eᵢⱼ = vᵀ tanh(·) (PyTorch <c>nn.Linear(Units, 1, bias: false).weight</c> flattened).",
            $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Units, fanOut: 1, random);"));

        string summary =
            $"Additive (Bahdanau) attention, generated for Dq = Dk = {model.Dim}, U = {model.Units}, Dv = {model.ValueDim}, {T}{(model.UseBias ? "" : ", no bias")}:\n" +
            "eᵢⱼ = vᵀ tanh(W_q qᵢ + W_k kⱼ" + (model.UseBias ? " + b" : "") + "), aᵢ = softmax over j of eᵢⱼ (masked), cᵢ = Σⱼ aᵢⱼ valueⱼ.\n" +
            "Shapes: query [B, Tq, Dim], keys [B, Tk, Dim], values [B, Tk, ValueDim] (empty: the keys are the values),\n" +
            "context [B, Tq, ValueDim], weights [B, Tq, Tk]. Runtime lengths B, Tq, Tk; Tk ≥ 1.";

        return LayerScaffold.Write(model.Target, element, summary, constants, parameters, (writer, kernels) => EmitBody(writer, kernels, model));
    }

    private static void EmitBody(SourceWriter w, Kernels kernels, AdditiveModel model)
    {
        ElementType element = model.Element;
        string T = element.Keyword;
        string axpyUnits = kernels.MultiplyAdd(model.Units);
        string axpyValue = kernels.MultiplyAdd(model.ValueDim);
        string dotValue = kernels.Dot(model.ValueDim);
        string transposedProduct = kernels.ProductTransposedAdd(model.Dim);
        string productDim = kernels.MatrixProductAdd(model.Dim);
        string score = kernels.AdditiveScore(model.Units);
        string scoreBackward = kernels.AdditiveScoreBackward(model.Units);

        // ---- Tape ----
        w.WriteLine();
        w.Summary(
            "What a training <see cref=\"Forward(Tape, int, int, int, ReadOnlySpan{" + T + "}, ReadOnlySpan{" + T + "}, ReadOnlySpan{" + T + "}, Span{" + T + "}, Span{" + T + "}, AttentionMask)\"/> records for <see cref=\"Backward\"/>:\n" +
            "W_q q [B, Tq, U], W_k k" + (model.UseBias ? " + b" : "") + " [B, Tk, U] and the weights [B, Tq, Tk]. Owned by the caller, reused across steps, grown as needed.");
        using (w.Block("public sealed class Tape : AttentionTape"))
        {
            LayerScaffold.DeclareTapeCallState(w);
            w.WriteLine($"internal AlignedBuffer<{T}> QueryProjection;");
            w.WriteLine($"internal AlignedBuffer<{T}> KeyProjection;");
            w.WriteLine($"internal AlignedBuffer<{T}> Weights;");
            w.WriteLine("internal bool KeysAreValues;");
            w.WriteLine();
            using (w.Block("internal void Prepare(int batch, int queryLength, int keyLength, bool keysAreValues)"))
            {
                w.WriteLine("Grow(ref QueryProjection, batch * queryLength * Units);");
                w.WriteLine("Grow(ref KeyProjection, batch * keyLength * Units);");
                w.WriteLine("Grow(ref Weights, batch * queryLength * keyLength);");
                w.WriteLine("Batch = batch;");
                w.WriteLine("QueryLength = queryLength;");
                w.WriteLine("KeyLength = keyLength;");
                w.WriteLine("KeysAreValues = keysAreValues;");
                w.WriteLine("IsRecorded = true;");
            }
        }

        // ---- Key projection (processed memory) ----
        w.WriteLine();
        using (LayerScaffold.ProjectKeysBlock(w, element,
            "Computes the key projection W_k kⱼ" + (model.UseBias ? " + b" : "") + " for every key: once per key sequence, then reused by\n" +
            "<see cref=\"ForwardWithKeyProjection\"/> at every decoder step (TensorFlow's \"processed memory\").", "Dim"))
        {
            w.WriteLine("ProjectKeysUnchecked(batch * keyLength, keys, keyProjection);");
        }
        w.WriteLine();
        w.WriteLine("// kpⱼ = W_k kⱼ" + (model.UseBias ? " + b" : "") + " for `rows` keys (the bias is folded in here, once per key, instead of once per pair).");
        using (w.Block($"private void ProjectKeysUnchecked(int rows, ReadOnlySpan<{T}> keys, Span<{T}> keyProjection)"))
        {
            w.WriteLine($"Project(rows, keys, KeyWeight.Value, {(model.UseBias ? "ScoreBias.Value" : "null")}, keyProjection);");
        }
        w.WriteLine();
        LayerScaffold.DeclareProject(w, element, transposedProduct, kernels.Copy(model.Units));

        // ---- Inference forward ----
        w.WriteLine();
        w.Summary(
            "Inference forward: cᵢ = Σⱼ aᵢⱼ valueⱼ with aᵢ = softmax over j of vᵀ tanh(W_q qᵢ + W_k kⱼ" + (model.UseBias ? " + b" : "") + ").\n" +
            "Keeps no state and allocates nothing in steady state, so one layer serves many threads at once.");
        WriteForwardParamDocs(w, tape: false);
        using (w.Block($"public void Forward(int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights = default, AttentionMask mask = default)"))
        {
            w.WriteLine("bool keysAreValues = values.IsEmpty;");
            w.WriteLine("ThrowIfInvalidForward(batch, queryLength, keyLength, query, keys, keysAreValues ? keys : values, keysAreValues, context, weights, mask);");
            w.WriteLine("ReadOnlySpan<" + T + "> valueSource = keysAreValues ? keys : values;");
            w.WriteLine("ForwardBatch(null, batch, queryLength, keyLength, query, keys, valueSource, context, weights, mask);");
        }

        // ---- The batch driver shared by both forwards ----
        w.WriteLine();
        w.WriteLine("// Batch rows are independent: large calls spread them over threads (each row is computed the same way whatever");
        w.WriteLine("// the thread count, so the result is too); small ones run on the calling thread and allocate nothing.");
        using (w.Block($"private void ForwardBatch(Tape? tape, int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights, AttentionMask mask)"))
        {
            using (w.Block("if (!BatchParallel.ShouldSplit(batch, MaxDegreeOfParallelism, (long)batch * queryLength * keyLength * Units, ParallelWorkThreshold))"))
            {
                w.WriteLine("ForwardRows(tape, 0, batch, queryLength, keyLength, query, keys, values, context, weights, mask);");
                w.WriteLine("return;");
            }
            w.WriteLine($"BatchParallel.For<{T}>(batch, MaxDegreeOfParallelism, CallStateFor(tape),");
            w.WriteLine($"    static (int b, object state, in ChunkSpans<{T}> s) => ((CallState)state).Layer.ForwardRows(((CallState)state).Tape, b, b + 1, s.QueryLength, s.KeyLength, s.R0, s.R1, s.R2, s.W0, s.W1, s.Mask),");
            w.WriteLine("    (batch, queryLength, keyLength), mask, r0: query, r1: keys, r2: values, w0: context, w1: weights);");
        }
        w.WriteLine();
        w.WriteLine($"private sealed record CallState({model.Target.Name} Layer, Tape? Tape);");
        LayerScaffold.DeclareCallStateFor(w);
        w.WriteLine();
        w.WriteLine("// Batch rows [first, end): project the row's keys (into the tape when training), then attend.");
        using (LayerScaffold.HotBlock(w, $"private void ForwardRows(Tape? tape, int first, int end, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights, AttentionMask mask)"))
        {
            LayerScaffold.DeclareScratch(w, element, "scratch", "tape is not null ? 0 : keyLength * Units + queryLength * Units + (weights.IsEmpty ? queryLength * keyLength : 0)");
            using (w.Block("try"))
            {
                using (w.Block("for (int b = first; b < end; b++)"))
                {
                    w.WriteLine($"Span<{T}> keyProjection = tape is not null ? tape.KeyProjection.AsSpan(b * keyLength * Units, keyLength * Units) : scratch.Slice(0, keyLength * Units);");
                    w.WriteLine($"Span<{T}> queryProjection = tape is not null ? tape.QueryProjection.AsSpan(b * queryLength * Units, queryLength * Units) : scratch.Slice(keyLength * Units, queryLength * Units);");
                    w.WriteLine($"Span<{T}> rowWeights = tape is not null ? tape.Weights.AsSpan(b * queryLength * keyLength, queryLength * keyLength)");
                    w.WriteLine("    : weights.IsEmpty ? scratch.Slice((keyLength + queryLength) * Units, queryLength * keyLength) : weights.Slice(b * queryLength * keyLength, queryLength * keyLength);");
                    w.WriteLine("ProjectKeysUnchecked(keyLength, keys.Slice(b * keyLength * Dim, keyLength * Dim), keyProjection);");
                    w.WriteLine("Project(queryLength, query.Slice(b * queryLength * Dim, queryLength * Dim), QueryWeight.Value, null, queryProjection);");
                    w.WriteLine("AttendBatchRow(b, queryLength, keyLength, queryProjection, keyProjection,");
                    w.WriteLine("    values.Slice(b * keyLength * ValueDim, keyLength * ValueDim), context.Slice(b * queryLength * ValueDim, queryLength * ValueDim), rowWeights, mask);");
                    using (w.Block("if (tape is not null && !weights.IsEmpty)"))
                    {
                        w.WriteLine("rowWeights.CopyTo(weights.Slice(b * queryLength * keyLength, queryLength * keyLength));");
                    }
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }

        // ---- Inference forward with a precomputed key projection ----
        w.WriteLine();
        w.Summary(
            "Inference forward from a key projection computed once by <see cref=\"ProjectKeys\"/>: the call a decoder makes at every\n" +
            "step, costing O(Tq·(Dim·U + Tk·U + Tk·Dv)) instead of also re-projecting the Tk keys.");
        w.WriteLine("/// <param name=\"batch\">B.</param>");
        w.WriteLine("/// <param name=\"queryLength\">Tq.</param>");
        w.WriteLine("/// <param name=\"keyLength\">Tk, at least 1.</param>");
        w.WriteLine("/// <param name=\"query\">[B, Tq, Dim].</param>");
        w.WriteLine("/// <param name=\"keyProjection\">[B, Tk, Units], from <see cref=\"ProjectKeys\"/>.</param>");
        w.WriteLine("/// <param name=\"values\">[B, Tk, ValueDim] (pass the keys when they are the values).</param>");
        w.WriteLine("/// <param name=\"context\">[B, Tq, ValueDim], written.</param>");
        w.WriteLine("/// <param name=\"weights\">[B, Tq, Tk], written when not empty.</param>");
        w.WriteLine("/// <param name=\"mask\">Which keys each query may attend to (true = may attend).</param>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the shapes, or an output overlaps an input.</exception>");
        using (w.Block($"public void ForwardWithKeyProjection(int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keyProjection, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights = default, AttentionMask mask = default)"))
        {
            w.WriteLine("ThrowIfInvalidForward(batch, queryLength, keyLength, query, default, values, false, context, weights, mask);");
            w.WriteLine("Shapes.RequireLength(keyProjection.Length, (long)batch * keyLength * Units, nameof(keyProjection), $\"[B={batch}, Tk={keyLength}, Units={Units}]\");");
            w.WriteLine("Shapes.RequireNoOverlap<" + T + ", " + T + ">(context, keyProjection, nameof(context), nameof(keyProjection));");
            w.WriteLine("Shapes.RequireNoOverlap<" + T + ", " + T + ">(weights, keyProjection, nameof(weights), nameof(keyProjection));");
            LayerScaffold.DeclareQueryGroups(w, "batch", wholeRangeWithTape: false);
            LayerScaffold.DeclareScratch(w, element, "scratch", "groupRows * queryLength * Units + (weights.IsEmpty ? queryLength * keyLength : 0)");
            using (w.Block("try"))
            {
                w.WriteLine($"Span<{T}> rowWeights = weights.IsEmpty ? scratch.Slice(groupRows * queryLength * Units, queryLength * keyLength) : default;");
                using (w.Block("for (int g = 0; g < batch; g += groupRows)"))
                {
                    w.WriteLine("int groupEnd = Math.Min(batch, g + groupRows);");
                    w.WriteLine($"Span<{T}> groupProjection = scratch.Slice(0, (groupEnd - g) * queryLength * Units);");
                    w.WriteLine("Project((groupEnd - g) * queryLength, query.Slice(g * queryLength * Dim, (groupEnd - g) * queryLength * Dim), QueryWeight.Value, null, groupProjection);");
                    using (w.Block("for (int b = g; b < groupEnd; b++)"))
                    {
                        w.WriteLine("AttendBatchRow(b, queryLength, keyLength, groupProjection.Slice((b - g) * queryLength * Units, queryLength * Units), keyProjection.Slice(b * keyLength * Units, keyLength * Units),");
                        w.WriteLine("    values.Slice(b * keyLength * ValueDim, keyLength * ValueDim), context.Slice(b * queryLength * ValueDim, queryLength * ValueDim),");
                        w.WriteLine("    weights.IsEmpty ? rowWeights : weights.Slice(b * queryLength * keyLength, queryLength * keyLength), mask);");
                    }
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }

        // ---- Training forward ----
        w.WriteLine();
        w.Summary(
            "Training forward: the same result as the inference <c>Forward</c>, and records in <paramref name=\"tape\"/> what\n" +
            "<see cref=\"Backward\"/> needs. Pass the same inputs to <see cref=\"Backward\"/> afterwards.");
        w.WriteLine("/// <param name=\"tape\">The caller's reusable tape; grown to these lengths if needed.</param>");
        WriteForwardParamDocs(w, tape: true);
        using (w.Block($"public void Forward(Tape tape, int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights = default, AttentionMask mask = default)"))
        {
            w.WriteLine("ArgumentNullException.ThrowIfNull(tape);");
            w.WriteLine("bool keysAreValues = values.IsEmpty;");
            w.WriteLine("ThrowIfInvalidForward(batch, queryLength, keyLength, query, keys, keysAreValues ? keys : values, keysAreValues, context, weights, mask);");
            w.WriteLine("ReadOnlySpan<" + T + "> valueSource = keysAreValues ? keys : values;");
            w.WriteLine("tape.Prepare(batch, queryLength, keyLength, keysAreValues);");
            w.WriteLine("ForwardBatch(tape, batch, queryLength, keyLength, query, keys, valueSource, context, weights, mask);");
        }

        // ---- The shared per-batch-row attention ----
        w.WriteLine();
        w.WriteLine("// One batch row b, for each query i, given its projection qpᵢ = W_q qᵢ (queryProjection[i], computed by the caller):");
        w.WriteLine("//   eᵢⱼ = vᵀ tanh(qpᵢ + kpⱼ), or −∞ where the mask forbids j");
        w.WriteLine("//   aᵢ  = softmax(eᵢ) (row maximum subtracted; all −∞ gives zeros)");
        w.WriteLine("//   cᵢ  = Σⱼ aᵢⱼ valueⱼ");
        using (LayerScaffold.HotBlock(w, $"private void AttendBatchRow(int b, int queryLength, int keyLength, ReadOnlySpan<{T}> queryProjection, ReadOnlySpan<{T}> keyProjection, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights, AttentionMask mask)"))
        {
            w.WriteLine($"ref {T} scoreVector = ref MemoryMarshal.GetArrayDataReference(ScoreVector.Value);");
            w.WriteLine($"ref {T} keyProjectionStart = ref MemoryMarshal.GetReference(keyProjection);");
            w.WriteLine($"ref {T} valueStart = ref MemoryMarshal.GetReference(values);");
            w.WriteLine("bool masked = !mask.IsEmpty;");
            using (w.Block("for (int i = 0; i < queryLength; i++)"))
            {
                w.WriteLine($"ref {T} projectedQuery = ref MemoryMarshal.GetReference(queryProjection.Slice(i * Units, Units));");
                w.WriteLine($"Span<{T}> scores = weights.Slice(i * keyLength, keyLength);");
                using (w.Block("for (int j = 0; j < keyLength; j++)"))
                {
                    w.WriteLine("scores[j] = masked && !mask.Allows(b, i, j, queryLength, keyLength)");
                    w.WriteLine($"    ? {T}.NegativeInfinity");
                    w.WriteLine($"    : {score}(ref projectedQuery, ref Unsafe.Add(ref keyProjectionStart, j * Units), ref scoreVector);");
                }
                w.WriteLine("AttentionMath.Softmax(scores);");
                w.WriteLine($"Span<{T}> contextRow = context.Slice(i * ValueDim, ValueDim);");
                w.WriteLine("contextRow.Clear();");
                w.WriteLine($"ref {T} contextStart = ref MemoryMarshal.GetReference(contextRow);");
                using (w.Block("for (int j = 0; j < keyLength; j++)"))
                {
                    w.WriteLine($"{T} weight = scores[j];");
                    using (w.Block("if (weight != 0)"))
                    {
                        w.WriteLine($"{axpyValue}(weight, ref Unsafe.Add(ref valueStart, j * ValueDim), ref contextStart);");
                    }
                }
            }
        }

        // ---- Backward ----
        w.WriteLine();
        w.Summary(
            "Backward: from ∂L/∂c (and optionally ∂L/∂a) writes ∂L/∂q, ∂L/∂k, ∂L/∂value (each only when its span is not empty) and\n" +
            "adds the parameter gradients into each parameter's <c>Gradient</c>. Call after the training <c>Forward</c> with the same\n" +
            "inputs and tape. With a = softmax(e) and gᵢⱼ = ∂L/∂aᵢⱼ = ∂L/∂cᵢ · valueⱼ: ∂L/∂eᵢⱼ = aᵢⱼ (gᵢⱼ − Σₖ aᵢₖ gᵢₖ); with\n" +
            "zᵢⱼ = tanh(·): ∂L/∂v += Σ ∂L/∂eᵢⱼ zᵢⱼ and ∂L/∂(pre)ᵢⱼ = ∂L/∂eᵢⱼ v ⊙ (1 − zᵢⱼ²), which flows to W_q, q, W_k, k" + (model.UseBias ? " and b" : "") + ".\n" +
            "A fully masked query contributes nothing (its weights are zero).");
        w.WriteLine("/// <param name=\"tape\">The tape the training <c>Forward</c> recorded into.</param>");
        w.WriteLine("/// <param name=\"query\">The query given to the forward, [B, Tq, Dim].</param>");
        w.WriteLine("/// <param name=\"keys\">The keys given to the forward, [B, Tk, Dim].</param>");
        w.WriteLine("/// <param name=\"values\">The values given to the forward (empty if the keys were the values).</param>");
        w.WriteLine("/// <param name=\"dContext\">∂L/∂c, [B, Tq, ValueDim].</param>");
        w.WriteLine("/// <param name=\"dQuery\">∂L/∂q, [B, Tq, Dim]: written when not empty.</param>");
        w.WriteLine("/// <param name=\"dKeys\">∂L/∂k, [B, Tk, Dim]: written when not empty (including the value path when the keys were the values).</param>");
        w.WriteLine("/// <param name=\"dValues\">∂L/∂value, [B, Tk, ValueDim]: written when not empty; must be empty when the keys were the values.</param>");
        w.WriteLine("/// <param name=\"dWeights\">Optional ∂L/∂a, [B, Tq, Tk], for losses on the attention weights themselves.</param>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the recorded shapes, or the tape holds no forward.</exception>");
        using (w.Block($"public void Backward(Tape tape, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, ReadOnlySpan<{T}> dContext, Span<{T}> dQuery = default, Span<{T}> dKeys = default, Span<{T}> dValues = default, ReadOnlySpan<{T}> dWeights = default)"))
        {
            LayerScaffold.QueryKeyBackwardChecks(w, element, "Dim");
            w.WriteLine();
            w.WriteLine("// Scratch for the whole batch: each batch row's share of ∂L/∂v [B, ScoreShareStride] (summed in row order afterwards,");
            w.WriteLine("// so the result does not depend on how rows were spread over threads), then ∂L/∂kp [B, Tk, U] and ∂L/∂qp [B, Tq, U]");
            w.WriteLine("// (their projection gradients are then a few register-blocked matrix products). Nothing is cleared here: each batch");
            w.WriteLine("// row clears its part of the scratch, ∂L/∂k and ∂L/∂value in BackwardRows, and ∂L/∂q is written by its product.");
            LayerScaffold.DeclareScratch(w, element, "scratch", "batch * ScoreShareStride + batch * (keyLength + queryLength) * Units");
            using (w.Block("try"))
            {
                w.WriteLine("long work = (long)batch * queryLength * keyLength * Units;");
                w.WriteLine("var lengths = (batch, queryLength, keyLength);");
                using (w.Block("if (BatchParallel.ShouldSplit(batch, MaxDegreeOfParallelism, work, ParallelWorkThreshold))"))
                {
                    w.WriteLine($"BatchParallel.For<{T}>(batch, MaxDegreeOfParallelism, CallStateFor(tape),");
                    w.WriteLine($"    static (int b, object state, in ChunkSpans<{T}> s) => ((CallState)state).Layer.BackwardRows(((CallState)state).Tape!, b, b + 1, s.R0, s.R1, s.R2, s.W0, s.W1, s.W2),");
                    w.WriteLine("    lengths, r0: valueSource, r1: dContext, r2: dWeights, w0: dValueTarget, w1: dKeys, w2: scratch);");
                }
                using (w.Block("else"))
                {
                    w.WriteLine("BackwardRows(tape, 0, batch, valueSource, dContext, dWeights, dValueTarget, dKeys, scratch);");
                }
                w.WriteLine();
                w.WriteLine($"Span<{T}> dScoreVectorShares = scratch.Slice(0, batch * ScoreShareStride), dProjections = scratch.Slice(batch * ScoreShareStride);");
                w.WriteLine($"Span<{T}> dKeyProjection = dProjections.Slice(0, batch * keyLength * Units);");
                w.WriteLine($"ref {T} dScoreVector = ref MemoryMarshal.GetArrayDataReference(ScoreVector.Gradient);");
                using (w.Block("for (int b = 0; b < batch; b++)"))
                {
                    w.WriteLine($"{axpyUnits}(1, ref dScoreVectorShares[b * ScoreShareStride], ref dScoreVector);");
                }
                if (model.UseBias)
                {
                    w.WriteLine("// kpⱼ = W_k kⱼ + b: ∂L/∂b = Σⱼ ∂L/∂kpⱼ.");
                    w.WriteLine($"ref {T} dBias = ref MemoryMarshal.GetArrayDataReference(ScoreBias.Gradient);");
                    using (w.Block("for (int j = 0; j < batch * keyLength; j++)"))
                    {
                        w.WriteLine($"{axpyUnits}(1, ref dKeyProjection[j * Units], ref dBias);");
                    }
                }
                w.WriteLine();
                w.WriteLine("// The projection gradients, each split into row ranges that threads may take independently.");
                LayerScaffold.ProductPhase(w, element, model.Target.Name, 4, "work", "lengths",
                    "s.Batch, s.QueryLength, s.KeyLength, s.R0, s.R1, s.R2, s.W0, s.W1", "batch, queryLength, keyLength, query, keys, dProjections, dQuery, dKeys",
                    "r0: query, r1: keys, r2: dProjections, w0: dQuery, w1: dKeys");
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }

        // ---- Backward, per batch row ----
        w.WriteLine();
        w.WriteLine("// Batch rows [first, end) of the backward: through the value path, the softmax and the tanh of every attended pair,");
        w.WriteLine("// into ∂L/∂value, ∂L/∂kp, ∂L/∂qp and the row's share of ∂L/∂v. Rows write disjoint parts of every output. Each row first");
        w.WriteLine("// clears what it accumulates into, and its rows of ∂L/∂k (the key projection's product adds to them afterwards).");
        using (LayerScaffold.HotBlock(w, $"private void BackwardRows(Tape tape, int first, int end, ReadOnlySpan<{T}> valueSource, ReadOnlySpan<{T}> dContext, ReadOnlySpan<{T}> dWeights, Span<{T}> dValueTarget, Span<{T}> dKeys, Span<{T}> scratch)"))
        {
            w.WriteLine("int batch = tape.Batch, queryLength = tape.QueryLength, keyLength = tape.KeyLength;");
            w.WriteLine($"Span<{T}> dScoreVectorShares = scratch.Slice(0, batch * ScoreShareStride);");
            w.WriteLine($"Span<{T}> dKeyProjection = scratch.Slice(batch * ScoreShareStride, batch * keyLength * Units);");
            w.WriteLine($"Span<{T}> dQueryProjection = scratch.Slice(batch * ScoreShareStride + batch * keyLength * Units, batch * queryLength * Units);");
            LayerScaffold.DeclareScratch(w, element, "rowScratch", "2 * keyLength");
            using (w.Block("try"))
            {
                w.WriteLine($"Span<{T}> dRowWeights = rowScratch.Slice(0, keyLength);");
                w.WriteLine($"Span<{T}> dScores = rowScratch.Slice(keyLength, keyLength);");
                w.WriteLine($"ref {T} scoreVector = ref MemoryMarshal.GetArrayDataReference(ScoreVector.Value);");
                using (w.Block("for (int b = first; b < end; b++)"))
                {
                    w.WriteLine($"ref {T} valueStart = ref MemoryMarshal.GetReference(valueSource.Slice(b * keyLength * ValueDim, keyLength * ValueDim));");
                    w.WriteLine($"ref {T} keyProjectionStart = ref tape.KeyProjection[b * keyLength * Units];");
                    w.WriteLine($"ref {T} dKeyProjectionStart = ref dKeyProjection[b * keyLength * Units];");
                    w.WriteLine($"ref {T} dScoreVector = ref dScoreVectorShares[b * ScoreShareStride];");
                    w.WriteLine("// Zero this batch row's sums here, on the thread that adds to them (the lines are then in its cache).");
                    w.WriteLine("dScoreVectorShares.Slice(b * ScoreShareStride, ScoreShareStride).Clear();");
                    w.WriteLine("dKeyProjection.Slice(b * keyLength * Units, keyLength * Units).Clear();");
                    w.WriteLine("dQueryProjection.Slice(b * queryLength * Units, queryLength * Units).Clear();");
                    LayerScaffold.ClearKeyAndValueRows(w, "Dim");
                    using (w.Block("for (int i = 0; i < queryLength; i++)"))
                    {
                        w.WriteLine("int row = b * queryLength + i;");
                        w.WriteLine($"ReadOnlySpan<{T}> rowWeights = tape.Weights.AsSpan(row * keyLength, keyLength);");
                        w.WriteLine($"ref {T} dContextRow = ref MemoryMarshal.GetReference(dContext.Slice(row * ValueDim, ValueDim));");
                        w.WriteLine();
                        w.WriteLine("// gᵢⱼ = ∂L/∂aᵢⱼ = ∂L/∂cᵢ · valueⱼ (+ the caller's ∂L/∂aᵢⱼ); the value path: ∂L/∂valueⱼ += aᵢⱼ ∂L/∂cᵢ.");
                        w.WriteLine("bool attends = false;");
                        using (w.Block("for (int j = 0; j < keyLength; j++)"))
                        {
                            w.WriteLine($"{T} weight = rowWeights[j];");
                            using (w.Block("if (weight == 0)"))
                            {
                                w.WriteLine("dRowWeights[j] = 0;");
                                w.WriteLine("continue;");
                            }
                            w.WriteLine("attends = true;");
                            w.WriteLine($"ref {T} value = ref Unsafe.Add(ref valueStart, j * ValueDim);");
                            w.WriteLine($"dRowWeights[j] = {dotValue}(ref dContextRow, ref value) + (dWeights.IsEmpty ? 0 : dWeights[row * keyLength + j]);");
                            using (w.Block("if (!dValueTarget.IsEmpty)"))
                            {
                                w.WriteLine($"{axpyValue}(weight, ref dContextRow, ref dValueTarget[(b * keyLength + j) * ValueDim]);");
                            }
                        }
                        using (w.Block("if (!attends)"))
                        {
                            w.WriteLine("continue; // a fully masked query: zero weights, so zero gradients everywhere");
                        }
                        w.WriteLine();
                        w.WriteLine("// ∂L/∂eᵢ = aᵢ ⊙ (gᵢ − aᵢ·gᵢ)");
                        w.WriteLine("AttentionMath.SoftmaxBackward<" + T + ">(rowWeights, dRowWeights, dScores);");
                        w.WriteLine();
                        w.WriteLine("// Through the tanh of each attended pair (recomputed, not stored): ∂L/∂v, ∂L/∂qpᵢ, ∂L/∂kpⱼ.");
                        w.WriteLine($"ref {T} projectedQuery = ref tape.QueryProjection[row * Units];");
                        w.WriteLine($"ref {T} dProjectedQuery = ref dQueryProjection[row * Units];");
                        using (w.Block("for (int j = 0; j < keyLength; j++)"))
                        {
                            using (w.Block("if (rowWeights[j] != 0)"))
                            {
                                w.WriteLine($"{scoreBackward}(dScores[j], ref projectedQuery, ref Unsafe.Add(ref keyProjectionStart, j * Units), ref scoreVector,");
                                w.WriteLine("    ref dScoreVector, ref dProjectedQuery, ref Unsafe.Add(ref dKeyProjectionStart, j * Units));");
                            }
                        }
                    }
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "rowScratch");
            }
        }

        // ---- Backward, the projection gradients ----
        w.WriteLine();
        LayerScaffold.DeclareShareStride(w, element, model.Units, "∂L/∂v");
        w.WriteLine();
        LayerScaffold.DeclareProductParts(w);
        w.WriteLine();
        w.WriteLine("// Chunk c does part c % parts of product c / parts:");
        w.WriteLine("//   0: ∂L/∂W_q += ∂L/∂qpᵀ Q   1: ∂L/∂Q = ∂L/∂qp W_q   2: ∂L/∂W_k += ∂L/∂kpᵀ K   3: ∂L/∂K += ∂L/∂kp W_k");
        using (LayerScaffold.HotBlock(w, $"private void BackwardProducts(int chunk, int parts, int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> dProjections, Span<{T}> dQuery, Span<{T}> dKeys)"))
        {
            w.WriteLine("int product = chunk / parts, part = chunk % parts;");
            w.WriteLine("bool queries = product < 2;");
            w.WriteLine("int inputRows = batch * (queries ? queryLength : keyLength);");
            w.WriteLine("// dProjections holds ∂L/∂kp [B, Tk, U], then ∂L/∂qp [B, Tq, U].");
            w.WriteLine($"ReadOnlySpan<{T}> dProjection = queries ? dProjections.Slice(batch * keyLength * Units, inputRows * Units) : dProjections.Slice(0, inputRows * Units);");
            w.WriteLine($"ReadOnlySpan<{T}> inputs = queries ? query : keys;");
            w.WriteLine($"Parameter<{T}> weight = queries ? QueryWeight : KeyWeight;");
            using (w.Block("if (product % 2 == 0)"))
            {
                LayerScaffold.WeightGradientPart(w, productDim, "Units", "inputRows", "parts", "dProjection", "inputs", "weight.Gradient", "Dim");
            }
            using (w.Block("else"))
            {
                w.WriteLine($"Span<{T}> dInputs = queries ? dQuery : dKeys;");
                w.WriteLine("// ∂L/∂Q is written here; ∂L/∂K is added to: BackwardRows cleared it, and put the value path in it when the keys were the values.");
                LayerScaffold.InputGradientPart(w, productDim, "Units", "inputRows", "parts", "dProjection", "weight.Value", "dInputs", "Dim", accumulate: "!queries");
            }
        }

        // ---- Argument checks ----
        w.WriteLine();
        using (w.Block($"private static void ThrowIfInvalidForward(int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, bool keysAreValues, Span<{T}> context, Span<{T}> weights, AttentionMask mask)"))
        {
            w.WriteLine("Shapes.RequireAtLeast(batch, 0, nameof(batch));");
            w.WriteLine("Shapes.RequireAtLeast(queryLength, 0, nameof(queryLength));");
            w.WriteLine("Shapes.RequireAtLeast(keyLength, 1, nameof(keyLength));");
            using (w.Block("if (keysAreValues && ValueDim != Dim)"))
            {
                w.WriteLine("throw new ArgumentException($\"'values' is required: the keys can serve as values only when ValueDim ({ValueDim}) equals Dim ({Dim}).\", nameof(values));");
            }
            w.WriteLine("Shapes.RequireLength(query.Length, (long)batch * queryLength * Dim, nameof(query), $\"[B={batch}, Tq={queryLength}, Dim={Dim}]\");");
            using (w.Block("if (!keys.IsEmpty || !keysAreValues)"))
            {
                w.WriteLine("if (!keys.IsEmpty) Shapes.RequireLength(keys.Length, (long)batch * keyLength * Dim, nameof(keys), $\"[B={batch}, Tk={keyLength}, Dim={Dim}]\");");
                w.WriteLine("Shapes.RequireLength(values.Length, (long)batch * keyLength * ValueDim, nameof(values), $\"[B={batch}, Tk={keyLength}, ValueDim={ValueDim}]\");");
            }
            w.WriteLine("Shapes.RequireLength(context.Length, (long)batch * queryLength * ValueDim, nameof(context), $\"[B={batch}, Tq={queryLength}, ValueDim={ValueDim}]\");");
            w.WriteLine("Shapes.RequireOptionalLength(weights.Length, (long)batch * queryLength * keyLength, nameof(weights), $\"[B={batch}, Tq={queryLength}, Tk={keyLength}]\");");
            w.WriteLine("mask.Validate(batch, queryLength, keyLength, nameof(mask));");
            foreach (string output in new[] { "context", "weights" })
            {
                foreach (string input in new[] { "query", "keys", "values" })
                {
                    w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>({output}, {input}, nameof({output}), nameof({input}));");
                }
            }
            w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(weights, context, nameof(weights), nameof(context));");
        }
    }

    private static void WriteForwardParamDocs(SourceWriter w, bool tape)
    {
        w.WriteLine("/// <param name=\"batch\">B.</param>");
        w.WriteLine("/// <param name=\"queryLength\">Tq.</param>");
        w.WriteLine("/// <param name=\"keyLength\">Tk, at least 1.</param>");
        w.WriteLine("/// <param name=\"query\">[B, Tq, Dim].</param>");
        w.WriteLine("/// <param name=\"keys\">[B, Tk, Dim].</param>");
        w.WriteLine("/// <param name=\"values\">[B, Tk, ValueDim], or empty to use the keys as values (needs ValueDim = Dim).</param>");
        w.WriteLine("/// <param name=\"context\">[B, Tq, ValueDim], written.</param>");
        w.WriteLine("/// <param name=\"weights\">[B, Tq, Tk], written when not empty" + (tape ? " (the tape keeps its own copy)" : "") + ".</param>");
        w.WriteLine("/// <param name=\"mask\">Which keys each query may attend to (true = may attend); a fully masked query gets zero weights and a zero context.</param>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the shapes, Tk &lt; 1, or an output overlaps an input.</exception>");
    }
}
