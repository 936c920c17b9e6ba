using System.Collections.Generic;
using System.Globalization;
using AttentionGen.Generator.Model;

namespace AttentionGen.Generator.Emit;

/// <summary>
/// Writes a <c>[MultiplicativeAttention]</c> layer (Luong et al. 2015; Vaswani et al. 2017): per batch row,
/// S = Q' Kᵀ (Q' = Q Wᵀ for the general score, Q itself for dot products), scaled, masked, softmax over keys, C = A V.
/// Every step is one of the shared register-blocked matrix products, so the layer runs at matrix-product speed.
/// </summary>
internal static class MultiplicativeEmitter
{
    public static string Emit(MultiplicativeModel model)
    {
        ElementType element = model.Element;
        string T = element.Keyword;
        var constants = new[]
        {
            new LayerConstant("Dim", model.Dim, "Dq: the dimension of each query."),
            new LayerConstant("KeyDim", model.KeyDim, "Dk: the dimension of each key."),
            new LayerConstant("ValueDim", model.ValueDim, "Dv: the dimension of each value and of the context."),
        };
        var parameters = new List<LayerParameter>();
        if (model.General)
        {
            parameters.Add(new("ScoreWeight", "score_weight", new[] { "KeyDim", "Dim" },
                "W: maps a query into key space, eᵢⱼ = (W qᵢ)ᵀ kⱼ (Luong's general score qᵀ Wᵀ k; PyTorch <c>nn.Linear(Dim, KeyDim, bias: false).weight</c>, OpenNMT's <c>linear_in</c>).",
                $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Dim, fanOut: KeyDim, random);"));
        }
        if (model.LearnedScale)
        {
            parameters.Add(new("Scale", "scale", new[] { "1" },
                "g: one learned scalar multiplying every score; starts at 1 (Keras <c>Attention(use_scale=True)</c>).",
                $"Initializers.Constant<{T}>({{p}}, 1);"));
        }

        string scoreText = model.Score switch
        {
            "Dot" => "qᵢᵀ kⱼ",
            "ScaledDot" => "qᵢᵀ kⱼ / √Dk",
            _ => "(W qᵢ)ᵀ kⱼ",
        };
        string summary = model.Hard
            ? $"Hard attention (Xu et al. 2015) with a {model.Score} score, generated for Dq = {model.Dim}, Dk = {model.KeyDim}, Dv = {model.ValueDim}, {T}:\n" +
              $"eᵢⱼ = {scoreText}, aᵢ = softmax over j (masked); the context is the single value chosen by " + (model.Sample ? "sampling from aᵢ" : "argmax of aᵢ") + ".\n" +
              "Backward is straight-through (the soft weights' gradient) by default, REINFORCE with BackwardReinforce.\n" +
              "Shapes: query [B, Tq, Dim], keys [B, Tk, KeyDim], values [B, Tk, ValueDim] (empty: the keys are the values), context [B, Tq, ValueDim],\n" +
              "weights [B, Tq, Tk] (the soft weights), choices [B, Tq] (the chosen key, −1 for a fully masked query)."
            : $"Multiplicative (Luong) attention, generated for Dq = {model.Dim}, Dk = {model.KeyDim}, Dv = {model.ValueDim}, {T}, score {model.Score}" +
            $"{(model.LearnedScale ? ", learned scale" : "")}{(model.Causal ? ", causal" : "")}:\n" +
            $"eᵢⱼ = {(model.LearnedScale ? "g · " : "")}{scoreText}, aᵢ = softmax over j of eᵢⱼ (masked{(model.Causal ? ", causal" : "")}), cᵢ = Σⱼ aᵢⱼ valueⱼ.\n" +
            "Shapes: query [B, Tq, Dim], keys [B, Tk, KeyDim], values [B, Tk, ValueDim] (empty: the keys are the values),\n" +
            "context [B, Tq, ValueDim], weights [B, Tq, Tk]. Runtime lengths B, Tq, Tk; Tk ≥ 1.";

        return LayerScaffold.Write(model.Target, element, summary, constants, parameters, (writer, kernels) => EmitBody(writer, kernels, model));
    }

    // Declares `split`: whether the call's batch rows (and the general score's packing) go over threads.
    private static void WriteSplitChoice(SourceWriter w, MultiplicativeModel model)
    {
        w.WriteLine($"long work = (long)batch * queryLength * (keyLength * (KeyDim + ValueDim){(model.General ? " + Dim * KeyDim" : "")});");
        w.WriteLine("bool split = BatchParallel.ShouldSplit(batch, MaxDegreeOfParallelism, work, ParallelWorkThreshold);");
    }

    // ForwardBatch's choice: hard attention's rows in order on the calling thread, otherwise batch rows over threads when the
    // call is large enough (`split`, declared here or, for the general score, before the packing). The general score's rows
    // also take the packed Wᵀ (empty when not packed).
    private static void WriteForwardDispatch(SourceWriter w, MultiplicativeModel model)
    {
        string T = model.Element.Keyword;
        string packedWeight = model.General ? "packedWeight, " : "";
        if (model.Hard)
        {
            w.WriteLine("// Hard attention runs its rows in order on the calling thread, so a seeded Random draws the same choices every time.");
            w.WriteLine($"ForwardRows(tape, 0, batch, queryLength, keyLength, query, keys, values, {packedWeight}context, weights, mask, choices, random);");
            return;
        }
        if (!model.General)
        {
            WriteSplitChoice(w, model);
        }
        using (w.Block("if (!split)"))
        {
            w.WriteLine($"ForwardRows(tape, 0, batch, queryLength, keyLength, query, keys, values, {packedWeight}context, weights, mask);");
            w.WriteLine("return;");
        }
        if (model.General)
        {
            // The call's number (0: no packing) reaches the threads as R3; each takes its own Wᵀ from ThreadPackedWeight.
            w.WriteLine("Span<long> packedWeightCall = stackalloc long[] { packs ? System.Threading.Interlocked.Increment(ref s_packedWeightCalls) : 0 };");
        }
        w.WriteLine($"BatchParallel.For<{T}>(batch, MaxDegreeOfParallelism, CallStateFor(tape),");
        w.WriteLine($"    static (int b, object state, in ChunkSpans<{T}> s) => ((CallState)state).Layer.ForwardRows(((CallState)state).Tape, b, b + 1, s.QueryLength, s.KeyLength, s.R0, s.R1, s.R2, {(model.General ? "((CallState)state).Layer.ThreadPackedWeight(s.R3), " : "")}s.W0, s.W1, s.Mask),");
        w.WriteLine($"    (batch, queryLength, keyLength), mask, r0: query, r1: keys, r2: values{(model.General ? $", r3: MemoryMarshal.Cast<long, {T}>(packedWeightCall)" : "")}, w0: context, w1: weights);");
    }

    private static string Literal(ElementType element, double value)
        => element.Size == 4
            ? ((float)value).ToString("R", CultureInfo.InvariantCulture) + "f"
            : value.ToString("R", CultureInfo.InvariantCulture);

    private static void EmitBody(SourceWriter w, Kernels kernels, MultiplicativeModel model)
    {
        ElementType element = model.Element;
        string T = element.Keyword;
        string name = model.Target.Name;
        string scoresFromQuery = kernels.ProductTransposedAdd(model.KeyDim);   // S += Q' Kᵀ
        string contextProduct = kernels.MatrixProductAdd(model.ValueDim);      // C += A V, ∂V += Aᵀ ∂C
        string weightsGradient = kernels.ProductTransposedAdd(model.ValueDim); // ∂A += ∂C Vᵀ
        string keySideProduct = kernels.MatrixProductAdd(model.KeyDim);        // ∂Q' += ∂S K, ∂K += ∂Sᵀ Q'
        string queryProjection = model.General ? kernels.ProductTransposedAdd(model.Dim) : "";
        string queryGradient = model.General ? kernels.MatrixProductAdd(model.Dim) : "";
        bool scaled = model.Score == "ScaledDot";
        string axpyValue = model.Hard ? kernels.MultiplyAdd(model.ValueDim) : "";
        string queryWidth = model.General ? "KeyDim" : "Dim";

        w.WriteLine();
        w.WriteLine("// The fixed factor on every score (1/√Dk for the scaled dot product).");
        w.WriteLine($"private const {T} ScoreFactor = {(scaled ? Literal(element, 1 / System.Math.Sqrt(model.KeyDim)) : Literal(element, 1))};");
        w.WriteLine();
        w.WriteLine($"private {T} CurrentScoreFactor => ScoreFactor{(model.LearnedScale ? " * Scale.Value[0]" : "")};");
        if (model.General)
        {
            w.WriteLine();
            w.WriteLine("// The fewest query rows in a call for which the forward packs Wᵀ for its projection (see ForwardBatch).");
            w.WriteLine("private const int PackedProjectionRows = 64;");
        }

        // ---- Tape ----
        w.WriteLine();
        w.Summary("What a training forward records for <see cref=\"Backward\"/>: the weights [B, Tq, Tk]" +
            (model.General ? ", W q [B, Tq, KeyDim]" : "") + (model.LearnedScale ? " and the unscaled scores [B, Tq, Tk]" : "") + ".\nOwned by the caller, reused across steps, grown as needed.");
        using (w.Block("public sealed class Tape : AttentionTape"))
        {
            LayerScaffold.DeclareTapeCallState(w);
            w.WriteLine($"internal AlignedBuffer<{T}> Weights;");
            if (model.General) w.WriteLine($"internal AlignedBuffer<{T}> QueryProjection;");
            if (model.LearnedScale) w.WriteLine($"internal AlignedBuffer<{T}> RawScores;");
            w.WriteLine("internal bool KeysAreValues;");
            if (model.Hard) w.WriteLine("internal int[] Choices = Array.Empty<int>();");
            w.WriteLine();
            using (w.Block("internal void Prepare(int batch, int queryLength, int keyLength, bool keysAreValues)"))
            {
                w.WriteLine("Grow(ref Weights, batch * queryLength * keyLength);");
                if (model.Hard) w.WriteLine("Grow(ref Choices, batch * queryLength);");
                if (model.General) w.WriteLine("Grow(ref QueryProjection, batch * queryLength * KeyDim);");
                if (model.LearnedScale) w.WriteLine("Grow(ref RawScores, batch * queryLength * keyLength);");
                w.WriteLine("(Batch, QueryLength, KeyLength, KeysAreValues, IsRecorded) = (batch, queryLength, keyLength, keysAreValues, true);");
            }
        }

        // ---- Forwards ----
        w.WriteLine();
        w.Summary("Inference forward: cᵢ = Σⱼ aᵢⱼ valueⱼ, aᵢ = softmax over j of eᵢⱼ. Keeps no state; allocates nothing in steady state\n(on one thread), so one layer serves many threads at once.");
        WriteForwardParamDocs(w, tape: false);
        string hardParameters = model.Hard ? ", Span<int> choices = default, Random? random = null" : "";
        string hardArguments = model.Hard ? ", choices, random" : "";
        using (w.Block($"public void Forward(int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights = default, AttentionMask mask = default{hardParameters})"))
        {
            w.WriteLine("bool keysAreValues = values.IsEmpty;");
            w.WriteLine("ThrowIfInvalidForward(batch, queryLength, keyLength, query, keys, keysAreValues ? keys : values, keysAreValues, context, weights, mask);");
            if (model.Hard) WriteHardChecks(w, model);
            w.WriteLine($"ForwardBatch(null, batch, queryLength, keyLength, query, keys, keysAreValues ? keys : values, context, weights, mask{hardArguments});");
        }
        w.WriteLine();
        w.Summary("Training forward: the inference result, and records in <paramref name=\"tape\"/> what <see cref=\"Backward\"/> needs.");
        w.WriteLine("/// <param name=\"tape\">The caller's reusable tape; grown to these lengths if needed.</param>");
        WriteForwardParamDocs(w, tape: true);
        using (w.Block($"public void Forward(Tape tape, int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights = default, AttentionMask mask = default{hardParameters})"))
        {
            w.WriteLine("ArgumentNullException.ThrowIfNull(tape);");
            w.WriteLine("bool keysAreValues = values.IsEmpty;");
            w.WriteLine("ThrowIfInvalidForward(batch, queryLength, keyLength, query, keys, keysAreValues ? keys : values, keysAreValues, context, weights, mask);");
            if (model.Hard) WriteHardChecks(w, model);
            w.WriteLine("tape.Prepare(batch, queryLength, keyLength, keysAreValues);");
            w.WriteLine($"ForwardBatch(tape, batch, queryLength, keyLength, query, keys, keysAreValues ? keys : values, context, weights, mask{hardArguments});");
        }

        w.WriteLine();
        w.WriteLine("// Batch rows are independent: large calls spread them over threads; each row is computed the same way whatever the");
        w.WriteLine("// thread count, so the result is too.");
        using (w.Block($"private void ForwardBatch(Tape? tape, int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights, AttentionMask mask{hardParameters})"))
        {
            if (!model.General)
            {
                WriteForwardDispatch(w, model);
            }
            else
            {
                w.WriteLine("// Q' = Q Wᵀ: a call with at least PackedProjectionRows query rows packs W once as Wᵀ [Dim, KeyDim], and the projection");
                w.WriteLine("// then broadcasts elements of Q against rows of Wᵀ (register tiles with no horizontal sums). Fewer rows (a decoder step)");
                w.WriteLine("// take dot products against W's rows: there the packing would cost more than it saves. A call split over threads");
                w.WriteLine("// packs on each thread (ThreadPackedWeight), not here.");
                w.WriteLine("bool packs = batch * queryLength >= PackedProjectionRows;");
                if (!model.Hard)
                {
                    WriteSplitChoice(w, model);
                }
                LayerScaffold.DeclareScratch(w, element, "packedWeight", model.Hard ? "packs ? Dim * KeyDim : 0" : "packs && !split ? Dim * KeyDim : 0");
                using (w.Block("try"))
                {
                    w.WriteLine($"if (!packedWeight.IsEmpty) MatrixOps.Transpose<{T}>(ScoreWeight.Value, KeyDim, Dim, packedWeight);");
                    WriteForwardDispatch(w, model);
                }
                using (w.Block("finally"))
                {
                    LayerScaffold.ReturnScratch(w, element, "packedWeight");
                }
            }
        }
        if (model.General)
        {
            if (!model.Hard)
            {
                w.WriteLine();
                w.WriteLine("// Wᵀ for the rows of a call split over threads: each thread packs its own copy at its first row of the call and keeps");
                w.WriteLine("// it for the others. One shared copy, packed in parts on both threads, took 20 µs of a 290 µs two-thread W3 forward");
                w.WriteLine("// against 8–10 µs for the whole transpose on one thread: its lines had been read by the other core in the previous call,");
                w.WriteLine("// so each write first took them back. Calls are numbered (s_packedWeightCalls) so that a thread never reuses a copy");
                w.WriteLine("// from another call, whose W may since have changed; 0 means the call does not pack.");
                w.WriteLine($"[ThreadStatic] private static AlignedBuffer<{T}> t_packedWeight;");
                w.WriteLine("[ThreadStatic] private static long t_packedWeightCall;");
                w.WriteLine("private static long s_packedWeightCalls;");
                w.WriteLine();
                using (w.Block($"private ReadOnlySpan<{T}> ThreadPackedWeight(ReadOnlySpan<{T}> callNumber)"))
                {
                    w.WriteLine("long call = MemoryMarshal.Read<long>(MemoryMarshal.AsBytes(callNumber));");
                    using (w.Block("if (call == 0)"))
                    {
                        w.WriteLine("return default;");
                    }
                    using (w.Block("if (t_packedWeightCall != call)"))
                    {
                        w.WriteLine("t_packedWeight.EnsureLength(Dim * KeyDim);");
                        w.WriteLine($"MatrixOps.Transpose<{T}>(ScoreWeight.Value, KeyDim, Dim, t_packedWeight.AsSpan());");
                        w.WriteLine("t_packedWeightCall = call;");
                    }
                    w.WriteLine("return t_packedWeight.AsSpan();");
                }
            }
        }
        w.WriteLine();
        w.WriteLine($"private sealed record CallState({name} Layer, Tape? Tape);");
        LayerScaffold.DeclareCallStateFor(w);

        w.WriteLine();
        w.WriteLine("// Batch rows [first, end), each:");
        if (model.General)
        {
            w.WriteLine("//   Q' = Q Wᵀ                      [Tq, KeyDim]  (into the tape when training)");
        }
        w.WriteLine($"//   S = Q'{(model.General ? "" : " (= Q)")} Kᵀ · factor            [Tq, Tk], −∞ where the mask forbids");
        w.WriteLine("//   A = softmax over each row of S  (row maximum subtracted; a row with nothing allowed becomes zeros)");
        w.WriteLine("//   C = A V                         [Tq, Dv]");
        using (LayerScaffold.HotBlock(w, $"private void ForwardRows(Tape? tape, int first, int end, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, {(model.General ? $"ReadOnlySpan<{T}> packedWeight, " : "")}Span<{T}> context, Span<{T}> weights, AttentionMask mask{(model.Hard ? ", Span<int> choices, Random? random" : "")})"))
        {
            w.WriteLine($"{T} factor = CurrentScoreFactor;");
            w.WriteLine($"bool masked = {(model.Causal ? "true" : "!mask.IsEmpty")};");
            if (model.Causal)
            {
                w.WriteLine("AttentionMask effective = new() { KeyPadding = mask.KeyPadding, PerQuery = mask.PerQuery, Causal = true };");
            }
            else
            {
                w.WriteLine("AttentionMask effective = mask;");
            }
            LayerScaffold.DeclareScratch(w, element, "scratch", model.General
                ? "(tape is null ? queryLength * KeyDim : 0) + (weights.IsEmpty && tape is null ? queryLength * keyLength : 0)"
                : "weights.IsEmpty && tape is null ? queryLength * keyLength : 0");
            using (w.Block("try"))
            {
                using (w.Block("for (int b = first; b < end; b++)"))
                {
                    w.WriteLine($"ReadOnlySpan<{T}> rowQuery = query.Slice(b * queryLength * Dim, queryLength * Dim);");
                    w.WriteLine($"ReadOnlySpan<{T}> rowKeys = keys.Slice(b * keyLength * KeyDim, keyLength * KeyDim);");
                    if (model.General)
                    {
                        w.WriteLine($"Span<{T}> projected = tape is not null ? tape.QueryProjection.AsSpan(b * queryLength * KeyDim, queryLength * KeyDim) : scratch.Slice(0, queryLength * KeyDim);");
                        using (w.Block("if (packedWeight.IsEmpty)"))
                        {
                            w.WriteLine("projected.Clear();");
                            w.WriteLine($"{queryProjection}(queryLength, KeyDim, ref MemoryMarshal.GetReference(rowQuery), ref MemoryMarshal.GetArrayDataReference(ScoreWeight.Value), ref MemoryMarshal.GetReference(projected));");
                        }
                        using (w.Block("else"))
                        {
                            w.WriteLine($"{keySideProduct}(queryLength, Dim, ref MemoryMarshal.GetReference(rowQuery), Dim, 1, ref MemoryMarshal.GetReference(packedWeight), ref MemoryMarshal.GetReference(projected), accumulate: false);");
                        }
                        w.WriteLine($"ReadOnlySpan<{T}> queries = projected;");
                    }
                    else
                    {
                        w.WriteLine($"ReadOnlySpan<{T}> queries = rowQuery;");
                    }
                    w.WriteLine($"Span<{T}> scores = tape is not null ? tape.Weights.AsSpan(b * queryLength * keyLength, queryLength * keyLength)");
                    w.WriteLine($"    : weights.IsEmpty ? scratch.Slice({(model.General ? "queryLength * KeyDim" : "0")}, queryLength * keyLength) : weights.Slice(b * queryLength * keyLength, queryLength * keyLength);");
                    w.WriteLine("scores.Clear();");
                    w.WriteLine($"{scoresFromQuery}(queryLength, keyLength, ref MemoryMarshal.GetReference(queries), ref MemoryMarshal.GetReference(rowKeys), ref MemoryMarshal.GetReference(scores));");
                    if (model.LearnedScale)
                    {
                        w.WriteLine("if (tape is not null) scores.CopyTo(tape.RawScores.AsSpan(b * queryLength * keyLength, queryLength * keyLength));");
                    }
                    using (w.Block("for (int i = 0; i < queryLength; i++)"))
                    {
                        w.WriteLine($"Span<{T}> row = scores.Slice(i * keyLength, keyLength);");
                        using (w.Block("if (masked)"))
                        {
                            using (w.Block("for (int j = 0; j < keyLength; j++)"))
                            {
                                w.WriteLine($"row[j] = !effective.Allows(b, i, j, queryLength, keyLength) ? {T}.NegativeInfinity : row[j] * factor;");
                            }
                        }
                        w.WriteLine("else if (factor != 1) AttentionMath.Scale(row, factor); // the same products, a vector at a time");
                        w.WriteLine("AttentionMath.Softmax(row);");
                    }
                    w.WriteLine($"Span<{T}> rowContext = context.Slice(b * queryLength * ValueDim, queryLength * ValueDim);");
                    if (model.Hard)
                    {
                        w.WriteLine("rowContext.Clear();");
                        w.WriteLine("// The context is the chosen value itself (zero for a query with nothing allowed).");
                        using (w.Block("for (int i = 0; i < queryLength; i++)"))
                        {
                            w.WriteLine("int choice = Choose(scores.Slice(i * keyLength, keyLength), random);");
                            w.WriteLine("if (tape is not null) tape.Choices[b * queryLength + i] = choice;");
                            w.WriteLine("if (!choices.IsEmpty) choices[b * queryLength + i] = choice;");
                            w.WriteLine("if (choice >= 0) values.Slice((b * keyLength + choice) * ValueDim, ValueDim).CopyTo(rowContext.Slice(i * ValueDim, ValueDim));");
                            w.WriteLine($"else if (HasNaN(scores.Slice(i * keyLength, keyLength))) rowContext.Slice(i * ValueDim, ValueDim).Fill({T}.NaN); // NaN propagates: no choice, a NaN context");
                        }
                    }
                    else
                    {
                        w.WriteLine($"{contextProduct}(queryLength, keyLength, ref MemoryMarshal.GetReference(scores), keyLength, 1, ref MemoryMarshal.GetReference(values.Slice(b * keyLength * ValueDim, keyLength * ValueDim)), ref MemoryMarshal.GetReference(rowContext), accumulate: false);");
                    }
                    using (w.Block("if (tape is not null && !weights.IsEmpty)"))
                    {
                        w.WriteLine("scores.CopyTo(weights.Slice(b * queryLength * keyLength, queryLength * keyLength));");
                    }
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
            "Backward: from ∂L/∂C (and optionally ∂L/∂A) writes ∂L/∂Q, ∂L/∂K, ∂L/∂V (each only when its span is not empty) and adds the\n" +
            "parameter gradients. Per batch row: ∂A = ∂C Vᵀ (+ ∂L/∂A), ∂V = Aᵀ ∂C, ∂S = factor · A ⊙ (∂A − rowsum(A ⊙ ∂A)),\n" +
            $"∂Q' = ∂S K, ∂K = ∂Sᵀ Q'{(model.General ? "; then ∂W += ∂Q'ᵀ Q and ∂Q = ∂Q' W" : "")}{(model.LearnedScale ? "; ∂g = Σ ∂S_raw ⊙ S_raw / g" : "")}.\n" +
            "A fully masked query contributes nothing.");
        w.WriteLine("/// <param name=\"tape\">The tape the training <c>Forward</c> recorded into.</param>");
        w.WriteLine("/// <param name=\"query\">The query given to the forward, [B, Tq, Dim].</param>");
        w.WriteLine("/// <param name=\"keys\">The keys given to the forward, [B, Tk, KeyDim].</param>");
        w.WriteLine("/// <param name=\"values\">The values given to the forward (empty if the keys were the values).</param>");
        w.WriteLine("/// <param name=\"dContext\">∂L/∂C, [B, Tq, ValueDim].</param>");
        w.WriteLine("/// <param name=\"dQuery\">∂L/∂Q, [B, Tq, Dim]: written when not empty.</param>");
        w.WriteLine("/// <param name=\"dKeys\">∂L/∂K, [B, Tk, KeyDim]: written when not empty (with the value path when the keys were the values).</param>");
        w.WriteLine("/// <param name=\"dValues\">∂L/∂V, [B, Tk, ValueDim]: written when not empty; must be empty when the keys were the values.</param>");
        w.WriteLine("/// <param name=\"dWeights\">Optional ∂L/∂A, [B, Tq, Tk].</param>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the recorded shapes, or the tape holds no forward.</exception>");
        string rewardParameters = model.Hard ? $", ReadOnlySpan<{T}> rewards = default, {T} baseline = 0" : "";
        if (model.Hard)
        {
            using (w.Block($"public void Backward(Tape tape, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, ReadOnlySpan<{T}> dContext, Span<{T}> dQuery = default, Span<{T}> dKeys = default, Span<{T}> dValues = default, ReadOnlySpan<{T}> dWeights = default)"))
            {
                w.WriteLine("BackwardCore(tape, query, keys, values, dContext, dQuery, dKeys, dValues, dWeights);");
            }
            w.WriteLine();
            w.Summary(
                "REINFORCE backward (Williams 1992; Xu et al. 2015): the scores get the gradient of the surrogate loss −(Rᵢ − b) log aᵢ,ₛ̃ of each\n" +
                "query's chosen key s̃, ∂L/∂eᵢⱼ = (aᵢⱼ − [j = s̃])(Rᵢ − b) — written without dividing by a. Gradient descent on it raises the expected\n" +
                "reward. The chosen value still receives ∂L/∂C directly; ∂L/∂A is not used.");
            w.WriteLine("/// <param name=\"tape\">The tape the training <c>Forward</c> recorded into (with its choices).</param>");
            w.WriteLine("/// <param name=\"query\">The query given to the forward.</param>");
            w.WriteLine("/// <param name=\"keys\">The keys given to the forward.</param>");
            w.WriteLine("/// <param name=\"values\">The values given to the forward (empty if the keys were the values).</param>");
            w.WriteLine("/// <param name=\"rewards\">Rᵢ for each query, [B, Tq].</param>");
            w.WriteLine("/// <param name=\"baseline\">b, subtracted from every reward to reduce the variance (e.g. a moving average of R).</param>");
            w.WriteLine("/// <param name=\"dContext\">∂L/∂C, [B, Tq, ValueDim], or empty for none.</param>");
            w.WriteLine("/// <param name=\"dQuery\">∂L/∂Q: written when not empty.</param>");
            w.WriteLine("/// <param name=\"dKeys\">∂L/∂K: written when not empty.</param>");
            w.WriteLine("/// <param name=\"dValues\">∂L/∂V: written when not empty.</param>");
            using (w.Block($"public void BackwardReinforce(Tape tape, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, ReadOnlySpan<{T}> rewards, {T} baseline, ReadOnlySpan<{T}> dContext = default, Span<{T}> dQuery = default, Span<{T}> dKeys = default, Span<{T}> dValues = default)"))
            {
                w.WriteLine("ArgumentNullException.ThrowIfNull(tape);");
                w.WriteLine("Shapes.RequireLength(rewards.Length, (long)tape.Batch * tape.QueryLength, nameof(rewards), $\"[B={tape.Batch}, Tq={tape.QueryLength}]\");");
                w.WriteLine($"{T}[]? zeros = dContext.IsEmpty ? new {T}[tape.Batch * tape.QueryLength * ValueDim] : null;");
                w.WriteLine("BackwardCore(tape, query, keys, values, zeros ?? dContext, dQuery, dKeys, dValues, default, rewards, baseline);");
            }
            w.WriteLine();
        }
        using (w.Block(model.Hard
            ? $"private void BackwardCore(Tape tape, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, ReadOnlySpan<{T}> dContext, Span<{T}> dQuery, Span<{T}> dKeys, Span<{T}> dValues, ReadOnlySpan<{T}> dWeights{rewardParameters})"
            : $"public void Backward(Tape tape, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, ReadOnlySpan<{T}> dContext, Span<{T}> dQuery = default, Span<{T}> dKeys = default, Span<{T}> dValues = default, ReadOnlySpan<{T}> dWeights = default)"))
        {
            LayerScaffold.QueryKeyBackwardChecks(w, element, "KeyDim");
            w.WriteLine("// ∂L/∂Q, ∂L/∂K, ∂L/∂V are cleared part by part by the threads that then add into them.");
            w.WriteLine();
            w.WriteLine($"// Scratch: {(model.General ? "∂L/∂Q' [B, Tq, KeyDim] and " : "")}each batch row's share of ∂L/∂g [B] (summed in row order), written by BackwardRows.");
            LayerScaffold.DeclareScratch(w, element, "scratch", model.General ? "batch * queryLength * KeyDim + batch" : "batch");
            using (w.Block("try"))
            {
                w.WriteLine($"Span<{T}> dQueryTarget = {(model.General ? "scratch.Slice(0, batch * queryLength * KeyDim)" : "dQuery")};");
                w.WriteLine("long work = (long)batch * queryLength * keyLength * (KeyDim + ValueDim);");
                if (model.Hard)
                {
                    w.WriteLine("BackwardRows(tape, 0, batch, query, keys, valueSource, dContext, dQueryTarget, dKeys, dValueTarget, scratch, dWeights, rewards, baseline);");
                }
                else
                {
                using (w.Block("if (BatchParallel.ShouldSplit(batch, MaxDegreeOfParallelism, work, ParallelWorkThreshold))"))
                {
                    w.WriteLine($"BatchParallel.For<{T}>(batch, MaxDegreeOfParallelism, CallStateFor(tape),");
                    w.WriteLine($"    static (int b, object state, in ChunkSpans<{T}> s) => ((CallState)state).Layer.BackwardRows(((CallState)state).Tape!, b, b + 1, s.R0, s.R1, s.R2, s.R3, s.W0, s.W1, s.W2, s.W3, s.R4),");
                    w.WriteLine("    (batch, queryLength, keyLength), r0: query, r1: keys, r2: valueSource, r3: dContext, r4: dWeights, w0: dQueryTarget, w1: dKeys, w2: dValueTarget, w3: scratch);");
                }
                using (w.Block("else"))
                {
                    w.WriteLine("BackwardRows(tape, 0, batch, query, keys, valueSource, dContext, dQueryTarget, dKeys, dValueTarget, scratch, dWeights);");
                }
                }
                if (model.LearnedScale)
                {
                    w.WriteLine();
                    w.WriteLine("// e = g · f · raw: ∂L/∂g = Σ ∂L/∂e ⊙ f · raw, accumulated per row, added in row order.");
                    w.WriteLine($"Span<{T}> scaleShares = scratch.Slice(scratch.Length - batch, batch);");
                    w.WriteLine("for (int b = 0; b < batch; b++) Scale.Gradient[0] += scaleShares[b];");
                }
                if (model.General)
                {
                    w.WriteLine();
                    w.WriteLine("// Q' = Q Wᵀ over all B·Tq rows: ∂L/∂W += ∂L/∂Q'ᵀ Q, ∂L/∂Q = ∂L/∂Q' W, each cut into ProductParts ranges of its output");
                    w.WriteLine("// rows that threads take independently (one range each on one thread; every output element is still summed over all");
                    w.WriteLine("// rows in the same order).");
                    w.WriteLine("long productWork = (long)batch * queryLength * KeyDim * Dim;");
                    using (w.Block("if (BatchParallel.ShouldSplit(2 * ProductParts, MaxDegreeOfParallelism, productWork, ParallelWorkThreshold))"))
                    {
                        w.WriteLine($"BatchParallel.For<{T}>(2 * ProductParts, MaxDegreeOfParallelism, this,");
                        w.WriteLine($"    static (int chunk, object layer, in ChunkSpans<{T}> s) => (({name})layer).QueryProducts(BatchParallel.Interleaved(chunk, 2, ProductParts), ProductParts, s.Batch * s.QueryLength, s.R0, s.R1, s.W0),");
                        w.WriteLine("    (batch, queryLength, keyLength), r0: query, r1: dQueryTarget, w0: dQuery);");
                    }
                    using (w.Block("else"))
                    {
                        w.WriteLine("QueryProducts(0, 1, batch * queryLength, query, dQueryTarget, dQuery);");
                        w.WriteLine("QueryProducts(1, 1, batch * queryLength, query, dQueryTarget, dQuery);");
                    }
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }

        w.WriteLine();
        w.WriteLine("// Batch rows [first, end) of the backward; rows write disjoint parts of every output.");
        using (LayerScaffold.HotBlock(w, $"private void BackwardRows(Tape tape, int first, int end, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, ReadOnlySpan<{T}> dContext, Span<{T}> dQueryTarget, Span<{T}> dKeys, Span<{T}> dValueTarget, Span<{T}> scratch, ReadOnlySpan<{T}> dWeights = default{rewardParameters})"))
        {
            w.WriteLine("int batch = tape.Batch, queryLength = tape.QueryLength, keyLength = tape.KeyLength;");
            w.WriteLine($"{T} factor = CurrentScoreFactor;");
            LayerScaffold.DeclareScratch(w, element, "rowScratch", "queryLength * keyLength");
            using (w.Block("try"))
            {
                using (w.Block("for (int b = first; b < end; b++)"))
                {
                    w.WriteLine($"ReadOnlySpan<{T}> weights = tape.Weights.AsSpan(b * queryLength * keyLength, queryLength * keyLength);");
                    w.WriteLine($"ref {T} weightsStart = ref MemoryMarshal.GetReference(weights);");
                    w.WriteLine($"ReadOnlySpan<{T}> rowValues = values.Slice(b * keyLength * ValueDim, keyLength * ValueDim);");
                    w.WriteLine($"ReadOnlySpan<{T}> rowContextGradient = dContext.Slice(b * queryLength * ValueDim, queryLength * ValueDim);");
                    if (model.Hard)
                    {
                        LayerScaffold.ClearKeyAndValueRows(w, "KeyDim");
                    }
                    else
                    {
                        w.WriteLine("// The products below write ∂Q' and ∂V (overwriting), then ∂K (adding to ∂V's share when the keys are the values).");
                    }
                    w.WriteLine();
                    w.WriteLine("// ∂A = ∂C Vᵀ (+ the caller's ∂L/∂A); the value path ∂V += Aᵀ ∂C.");
                    w.WriteLine($"Span<{T}> dScores = rowScratch;");
                    w.WriteLine("if (dWeights.IsEmpty) dScores.Clear(); else dWeights.Slice(b * queryLength * keyLength, queryLength * keyLength).CopyTo(dScores);");
                    w.WriteLine($"{weightsGradient}(queryLength, keyLength, ref MemoryMarshal.GetReference(rowContextGradient), ref MemoryMarshal.GetReference(rowValues), ref MemoryMarshal.GetReference(dScores));");
                    using (w.Block("if (!dValueTarget.IsEmpty)"))
                    {
                        if (model.Hard)
                        {
                            w.WriteLine("// Hard: the context is the chosen value, so only it receives ∂C.");
                            using (w.Block("for (int i = 0; i < queryLength; i++)"))
                            {
                                w.WriteLine("int choice = tape.Choices[b * queryLength + i];");
                                w.WriteLine($"if (choice >= 0) {axpyValue}(1, ref MemoryMarshal.GetReference(rowContextGradient.Slice(i * ValueDim, ValueDim)), ref dValueTarget[(b * keyLength + choice) * ValueDim]);");
                            }
                        }
                        else
                        {
                            w.WriteLine($"{contextProduct}(keyLength, queryLength, ref weightsStart, 1, keyLength, ref MemoryMarshal.GetReference(rowContextGradient), ref dValueTarget[b * keyLength * ValueDim], accumulate: false);");
                        }
                    }
                    w.WriteLine();
                    w.WriteLine("// ∂S = factor · A ⊙ (∂A − rowsum(A ⊙ ∂A)): the softmax backward, then the score factor.");
                    if (model.LearnedScale)
                    {
                        w.WriteLine($"{T} scaleShare = 0;");
                        w.WriteLine($"ReadOnlySpan<{T}> raw = tape.RawScores.AsSpan(b * queryLength * keyLength, queryLength * keyLength);");
                    }
                    using (w.Block("for (int i = 0; i < queryLength; i++)"))
                    {
                        w.WriteLine($"Span<{T}> row = dScores.Slice(i * keyLength, keyLength);");
                        if (model.Hard)
                        {
                            using (w.Block("if (!rewards.IsEmpty)"))
                            {
                                w.WriteLine("// REINFORCE: ∂L/∂eᵢⱼ = (aᵢⱼ − [j = s̃])(Rᵢ − b), replacing the straight-through gradient.");
                                w.WriteLine("int choice = tape.Choices[b * queryLength + i];");
                                w.WriteLine($"{T} advantage = rewards[b * queryLength + i] - baseline;");
                                w.WriteLine("for (int j = 0; j < keyLength; j++) row[j] = (weights[i * keyLength + j] - (j == choice ? 1 : 0)) * advantage;");
                                w.WriteLine("if (choice < 0) row.Clear();");
                            }
                            using (w.Block("else"))
                            {
                                w.WriteLine($"AttentionMath.SoftmaxBackward<{T}>(weights.Slice(i * keyLength, keyLength), row, row);");
                            }
                        }
                        else
                        {
                            w.WriteLine($"AttentionMath.SoftmaxBackward<{T}>(weights.Slice(i * keyLength, keyLength), row, row);");
                        }
                        if (model.LearnedScale)
                        {
                            w.WriteLine("// ∂e/∂g = ScoreFactor · raw (zero where the weight is zero: masked entries carry no gradient)");
                            w.WriteLine($"scaleShare += ScoreFactor * AttentionMath.Dot<{T}>(row, raw.Slice(i * keyLength, keyLength));");
                        }
                        w.WriteLine("if (factor != 1) AttentionMath.Scale(row, factor);");
                    }
                    if (model.LearnedScale)
                    {
                        w.WriteLine("scratch[scratch.Length - batch + b] = scaleShare;");
                    }
                    w.WriteLine();
                    string queries = model.General ? "tape.QueryProjection.AsSpan(b * queryLength * KeyDim, queryLength * KeyDim)" : "query.Slice(b * queryLength * Dim, queryLength * Dim)";
                    w.WriteLine($"// S = Q' Kᵀ: ∂Q' = ∂S K{(model.General ? " (into scratch; ∂W and ∂Q follow for the whole batch)" : "")}, ∂K += ∂Sᵀ Q'.");
                    using (w.Block("if (!dQueryTarget.IsEmpty)"))
                    {
                        w.WriteLine($"{keySideProduct}(queryLength, keyLength, ref MemoryMarshal.GetReference(dScores), keyLength, 1, ref MemoryMarshal.GetReference(keys.Slice(b * keyLength * KeyDim, keyLength * KeyDim)), ref dQueryTarget[b * queryLength * {queryWidth}], accumulate: false);");
                    }
                    using (w.Block("if (!dKeys.IsEmpty)"))
                    {
                        w.WriteLine($"{keySideProduct}(keyLength, queryLength, ref MemoryMarshal.GetReference(dScores), 1, keyLength, ref MemoryMarshal.GetReference({queries}), ref dKeys[b * keyLength * KeyDim]{(model.Hard ? "" : ", accumulate: tape.KeysAreValues")});");
                    }
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "rowScratch");
            }
        }

        if (model.General)
        {
            w.WriteLine();
            LayerScaffold.DeclareProductParts(w);
            w.WriteLine();
            w.WriteLine("// Chunk c does part c % parts of product c / parts, over the B·Tq rows of Q and ∂L/∂Q':");
            w.WriteLine("//   0: ∂L/∂W += ∂L/∂Q'ᵀ Q (rows [lo, hi) of ∂L/∂W)   1: ∂L/∂Q = ∂L/∂Q' W (rows [lo, hi) of ∂L/∂Q; skipped when not wanted)");
            using (LayerScaffold.HotBlock(w, $"private void QueryProducts(int chunk, int parts, int rows, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> dProjected, Span<{T}> dQuery)"))
            {
                w.WriteLine("int part = chunk % parts;");
                using (w.Block("if (chunk < parts)"))
                {
                    LayerScaffold.WeightGradientPart(w, queryGradient, "KeyDim", "rows", "parts", "dProjected", "query", "ScoreWeight.Gradient", "Dim");
                }
                using (w.Block("else"))
                {
                    LayerScaffold.InputGradientPart(w, queryGradient, "KeyDim", "rows", "parts", "dProjected", "ScoreWeight.Value", "dQuery", "Dim", overwrite: true);
                }
            }
        }

        if (model.Hard)
        {
            w.WriteLine();
            w.WriteLine(model.Sample
                ? "// Samples j with probability aⱼ (one draw of the caller's Random, taken even for a NaN row); −1 when every weight is zero (a fully masked query) or a weight is NaN."
                : "// The first j of largest weight; −1 when every weight is zero (a fully masked query) or a weight is NaN.");
            using (w.Block($"private static int Choose(ReadOnlySpan<{T}> weights, Random? random)"))
            {
                if (model.Sample)
                {
                    w.WriteLine("double draw = random!.NextDouble(), cumulative = 0;");
                    w.WriteLine("if (HasNaN(weights)) return -1;");
                    w.WriteLine("int last = -1;");
                    using (w.Block("for (int j = 0; j < weights.Length; j++)"))
                    {
                        w.WriteLine("if (weights[j] <= 0) continue;");
                        w.WriteLine("last = j;");
                        w.WriteLine("cumulative += double.CreateTruncating(weights[j]);");
                        w.WriteLine("if (draw < cumulative) return j;");
                    }
                    w.WriteLine("return last; // rounding left the draw past the total: the last possible key");
                }
                else
                {
                    w.WriteLine("if (HasNaN(weights)) return -1;");
                    w.WriteLine("int best = -1;");
                    w.WriteLine($"{T} largest = 0;");
                    w.WriteLine("for (int j = 0; j < weights.Length; j++) if (weights[j] > largest) (largest, best) = (weights[j], j);");
                    w.WriteLine("return best;");
                }
            }
            w.WriteLine();
            using (w.Block($"private static bool HasNaN(ReadOnlySpan<{T}> weights)"))
            {
                w.WriteLine($"foreach ({T} a in weights) if ({T}.IsNaN(a)) return true;");
                w.WriteLine("return false;");
            }
        }

        // ---- Argument checks ----
        w.WriteLine();
        using (w.Block($"private static void ThrowIfInvalidForward(int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, bool keysAreValues, Span<{T}> context, Span<{T}> weights, AttentionMask mask)"))
        {
            w.WriteLine("Shapes.RequireAtLeast(batch, 0, nameof(batch));");
            w.WriteLine("Shapes.RequireAtLeast(queryLength, 0, nameof(queryLength));");
            w.WriteLine("Shapes.RequireAtLeast(keyLength, 1, nameof(keyLength));");
            using (w.Block("if (keysAreValues && ValueDim != KeyDim)"))
            {
                w.WriteLine("throw new ArgumentException($\"'values' is required: the keys can serve as values only when ValueDim ({ValueDim}) equals KeyDim ({KeyDim}).\", nameof(values));");
            }
            w.WriteLine("Shapes.RequireLength(query.Length, (long)batch * queryLength * Dim, nameof(query), $\"[B={batch}, Tq={queryLength}, Dim={Dim}]\");");
            w.WriteLine("Shapes.RequireLength(keys.Length, (long)batch * keyLength * KeyDim, nameof(keys), $\"[B={batch}, Tk={keyLength}, KeyDim={KeyDim}]\");");
            w.WriteLine("Shapes.RequireLength(values.Length, (long)batch * keyLength * ValueDim, nameof(values), $\"[B={batch}, Tk={keyLength}, ValueDim={ValueDim}]\");");
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

    private static void WriteHardChecks(SourceWriter w, MultiplicativeModel model)
    {
        w.WriteLine("if (!choices.IsEmpty) Shapes.RequireLength(choices.Length, (long)batch * queryLength, nameof(choices), $\"[B={batch}, Tq={queryLength}]\");");
        if (model.Sample)
        {
            w.WriteLine("if (random is null) throw new ArgumentException(\"Sampling hard attention needs the caller's Random (seed it for reproducible choices).\", nameof(random));");
        }
    }

    private static void WriteForwardParamDocs(SourceWriter w, bool tape)
    {
        w.WriteLine("/// <param name=\"batch\">B.</param>");
        w.WriteLine("/// <param name=\"queryLength\">Tq.</param>");
        w.WriteLine("/// <param name=\"keyLength\">Tk, at least 1.</param>");
        w.WriteLine("/// <param name=\"query\">[B, Tq, Dim].</param>");
        w.WriteLine("/// <param name=\"keys\">[B, Tk, KeyDim].</param>");
        w.WriteLine("/// <param name=\"values\">[B, Tk, ValueDim], or empty to use the keys as values (needs ValueDim = KeyDim).</param>");
        w.WriteLine("/// <param name=\"context\">[B, Tq, ValueDim], written.</param>");
        w.WriteLine("/// <param name=\"weights\">[B, Tq, Tk], written when not empty" + (tape ? " (the tape keeps its own copy)" : "") + ".</param>");
        w.WriteLine("/// <param name=\"mask\">Which keys each query may attend to (true = may attend); a fully masked query gets zero weights and a zero context.</param>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the shapes, Tk &lt; 1, or an output overlaps an input.</exception>");
    }
}
