using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using AttentionGen.Generator.Model;

namespace AttentionGen.Generator.Emit;

/// <summary>
/// Writes a <c>[MonotonicAttention]</c> layer (Raffel et al. 2017): choose probabilities pᵢⱼ = σ(eᵢⱼ + r + noise), the
/// expected alignment αᵢⱼ = pᵢⱼ Σₖ αᵢ₋₁,ₖ Πₗ₌ₖ^{j−1} (1 − pᵢₗ) with α₀ = one-hot(0), context cᵢ = Σⱼ αᵢⱼ valueⱼ; and hard
/// decoding that scans forward from the previously attended key to the first pᵢⱼ ≥ 0.5.
/// </summary>
/// <remarks>
/// The energy reuses the additive kind's fused blocks (<see cref="Kernels.AdditiveScore"/> and its backward) or a dot
/// product against the projected key W kⱼ. The alignment row itself (recursive or parallel form, and their reverse
/// passes) does not depend on the compile-time dimensions, so it lives in the runtime's <c>MonotonicAlignment</c>.
/// The tape holds p and α [B, Tq, Tk] and the projections; backward walks the queries from last to first carrying
/// ∂L/∂αᵢ₋₁ and needs one row of scratch beyond that.
/// </remarks>
internal static class MonotonicEmitter
{
    public static string Emit(MonotonicModel model)
    {
        ElementType element = model.Element;
        string T = element.Keyword;
        var constants = new List<LayerConstant>
        {
            new("Dim", model.Dim, "Dq = Dk: the dimension of each query and each key."),
        };
        if (model.Additive)
        {
            constants.Add(new("Units", model.Units, "U: the hidden size of the additive energy (rows of W_q and W_k)."));
        }
        else
        {
            constants.Add(new("Units", model.Units, "The size of the projected key W kⱼ (equal to Dim: the energy is qᵢᵀ W kⱼ)."));
        }
        constants.Add(new("ValueDim", model.ValueDim, "Dv: the dimension of each value and of the context."));

        var parameters = new List<LayerParameter>();
        string energyText;
        if (model.Additive)
        {
            string glorot = $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Dim, fanOut: Units, random);";
            parameters.Add(new("QueryWeight", "query_weight", new[] { "Units", "Dim" }, "W_q: projects a query into the energy's hidden space (PyTorch <c>nn.Linear(Dim, Units, bias: false).weight</c>).", glorot));
            parameters.Add(new("KeyWeight", "key_weight", new[] { "Units", "Dim" }, "W_k: projects a key into the energy's hidden space (PyTorch <c>nn.Linear(Dim, Units, bias: false).weight</c>).", glorot));
            parameters.Add(new("ScoreBias", "score_bias", new[] { "Units" }, "b: the bias inside the tanh; starts at zero.", $"Initializers.Zeros<{T}>({{p}});"));
            parameters.Add(new("ScoreVector", "score_vector", new[] { "Units" }, "v: reduces tanh(·) to an energy, eᵢⱼ = vᵀ tanh(·) (PyTorch <c>nn.Linear(Units, 1, bias: false).weight</c> flattened).",
                $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Units, fanOut: 1, random);"));
            if (model.Normalize)
            {
                parameters.Add(new("ScoreScale", "score_scale", new[] { "1" }, "g: the weight-normalised energy's scale, g vᵀ/‖v‖, starting at √(1/Units) (TF-Addons <c>attention_g</c>).",
                    $"Initializers.Constant<{T}>({{p}}, {T}.Sqrt(({T})1 / Units));"));
            }
            energyText = model.Normalize ? "eᵢⱼ = g vᵀ/‖v‖ tanh(W_q qᵢ + W_k kⱼ + b)" : "eᵢⱼ = vᵀ tanh(W_q qᵢ + W_k kⱼ + b)";
        }
        else
        {
            parameters.Add(new("KeyWeight", "key_weight", new[] { "Units", "Dim" }, "W: the bilinear energy eᵢⱼ = qᵢᵀ W kⱼ, applied to the keys once (PyTorch <c>nn.Linear(Dim, Dim, bias: false).weight</c>).",
                $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Dim, fanOut: Dim, random);"));
            energyText = "eᵢⱼ = qᵢᵀ W kⱼ";
        }
        string bias = model.InitialEnergyBias.ToString("R", CultureInfo.InvariantCulture);
        parameters.Add(new("EnergyBias", "energy_bias", new[] { "1" },
            $"r: the learned scalar added to every energy before the sigmoid, starting at {bias} (TF-Addons <c>attention_score_bias</c>).",
            $"Initializers.Constant<{T}>({{p}}, ({T})({bias}d));"));

        if (model.Chunkwise)
        {
            // MoChA's chunk energy uᵢⱼ: the same form as the monotonic energy with its own parameters, but never
            // weight-normalised and without r or noise (a softmax is shift-invariant, so r would have no effect).
            constants.Add(new("ChunkSize", model.ChunkSize, "w: MoChA's chunk width, the keys a softmax attends that end at the monotonic position."));
            if (model.Additive)
            {
                string glorot = $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Dim, fanOut: Units, random);";
                parameters.Add(new("ChunkQueryWeight", "chunk_query_weight", new[] { "Units", "Dim" }, "W_cq: projects a query into the chunk energy's hidden space.", glorot));
                parameters.Add(new("ChunkKeyWeight", "chunk_key_weight", new[] { "Units", "Dim" }, "W_ck: projects a key into the chunk energy's hidden space.", glorot));
                parameters.Add(new("ChunkScoreBias", "chunk_score_bias", new[] { "Units" }, "b_c: the bias inside the chunk energy's tanh; starts at zero.", $"Initializers.Zeros<{T}>({{p}});"));
                parameters.Add(new("ChunkScoreVector", "chunk_score_vector", new[] { "Units" }, "v_c: reduces tanh(·) to a chunk energy, uᵢⱼ = v_cᵀ tanh(·).",
                    $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Units, fanOut: 1, random);"));
            }
            else
            {
                parameters.Add(new("ChunkKeyWeight", "chunk_key_weight", new[] { "Units", "Dim" }, "W_c: the chunk energy uᵢⱼ = qᵢᵀ W_c kⱼ.",
                    $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Dim, fanOut: Dim, random);"));
            }
        }

        string mode = model.Parallel ? "parallel" : "recursive";
        string summary =
            $"Monotonic attention (Raffel et al. 2017), generated for Dq = Dk = {model.Dim}, " + (model.Additive ? $"U = {model.Units}, " : "") +
            $"Dv = {model.ValueDim}, {T}, {(model.Additive ? (model.Normalize ? "weight-normalised additive" : "additive") : "multiplicative")} energy, {mode} alignment:\n" +
            energyText + ", pᵢⱼ = σ(eᵢⱼ + r (+ noise in training)), 0 where the mask forbids j;\n" +
            "αᵢⱼ = pᵢⱼ Σₖ αᵢ₋₁,ₖ Πₗ₌ₖ^{j−1} (1 − pᵢₗ) with α₀ = one-hot(0); cᵢ = Σⱼ αᵢⱼ valueⱼ. A row of α sums to at most 1 and is\n" +
            "not renormalised: the rest of the mass means \"attend nothing\". Hard decoding (ForwardHard, StepHard) moves from the\n" +
            "previously attended key to the first j with pᵢⱼ ≥ 0.5 and never back.\n" +
            "Shapes: query [B, Tq, Dim], keys [B, Tk, Dim], values [B, Tk, ValueDim] (empty: the keys are the values),\n" +
            "context [B, Tq, ValueDim], weights α [B, Tq, Tk]. Runtime lengths B, Tq, Tk; Tk ≥ 1.";
        if (model.Chunkwise)
        {
            summary = summary.Replace("; cᵢ = Σⱼ αᵢⱼ valueⱼ. A row of α", ". A row of α").Replace("weights α [B, Tq, Tk]", "weights β [B, Tq, Tk]") +
                $"\nMoChA (Chiu &amp; Raffel 2018) with chunks of w = {model.ChunkSize} keys: chunk energy " +
                (model.Additive ? "uᵢⱼ = v_cᵀ tanh(W_cq qᵢ + W_ck kⱼ + b_c)" : "uᵢⱼ = qᵢᵀ W_c kⱼ") +
                ",\nβᵢⱼ = Σₖ₌ⱼ^{j+w−1} αᵢₖ exp(uᵢⱼ) / Σₗ₌ₖ₋w₊₁^{k} exp(uᵢₗ), cᵢ = Σⱼ βᵢⱼ valueⱼ; hard decoding attends a softmax of uᵢ over the\n" +
                "w keys ending at the monotonic position.";
        }

        return LayerScaffold.Write(model.Target, element, summary, constants, parameters, (writer, kernels) => EmitBody(writer, kernels, model));
    }

    private static void EmitBody(SourceWriter w, Kernels kernels, MonotonicModel model)
    {
        ElementType element = model.Element;
        string T = element.Keyword;
        bool additive = model.Additive;
        string align = model.Parallel ? "MonotonicAlignment.Parallel" : "MonotonicAlignment.Recursive";
        string alignBackward = model.Parallel ? "MonotonicAlignment.ParallelBackward" : "MonotonicAlignment.RecursiveBackward";
        string alignFormula = model.Parallel
            ? "αᵢ = pᵢ ⊙ cumprod(1 − pᵢ) ⊙ cumsum(αᵢ₋₁ / clip(cumprod(1 − pᵢ), 1e-10, 1))   (parallel form, exclusive cumprod)"
            : "qᵢⱼ = (1 − pᵢ,ⱼ₋₁) qᵢ,ⱼ₋₁ + αᵢ₋₁,ⱼ,  αᵢⱼ = pᵢⱼ qᵢⱼ   (recursive form)";
        string axpyValue = kernels.MultiplyAdd(model.ValueDim);
        string dotValue = kernels.Dot(model.ValueDim);
        string axpyUnits = kernels.MultiplyAdd(model.Units);
        string transposedProduct = kernels.ProductTransposedAdd(model.Dim);
        string productDim = kernels.MatrixProductAdd(model.Dim);
        string score = additive ? kernels.AdditiveScore(model.Units) : kernels.Dot(model.Dim);
        string scoreBackward = additive ? kernels.AdditiveScoreBackward(model.Units) : "";
        string axpyDim = kernels.MultiplyAdd(model.Dim);
        // The energy without r of a projected query (additive) or a query (multiplicative) against a projected key.
        string Energy(string qp, string kp) => additive ? $"{score}(ref {qp}, ref {kp}, ref scoreVector)" : $"{score}(ref {qp}, ref {kp})";
        string energyComment = additive ? "eᵢⱼ = vᵀ tanh(qpᵢ + kpⱼ)" : "eᵢⱼ = qᵢᵀ kpⱼ";
        bool normalize = model.Normalize;
        // The vector the energy reads: v itself, or v′ = g v/‖v‖ computed once per call into `slice` (a scratch span of Units).
        void ScoreVectorSetup(string slice)
        {
            if (!normalize)
            {
                w.WriteLine($"ref {T} scoreVector = ref MemoryMarshal.GetArrayDataReference(ScoreVector.Value);");
                return;
            }
            w.WriteLine($"Span<{T}> normalizedScoreVector = {slice};");
            w.WriteLine("NormalizedScoreVector(normalizedScoreVector); // v′ = g v / ‖v‖, once per call");
            w.WriteLine($"ref {T} scoreVector = ref MemoryMarshal.GetReference(normalizedScoreVector);");
        }
        string extraUnits = normalize ? " + Units" : "";
        string scoreArgument = additive ? ", ref scoreVector" : "";
        string scoreParameter = additive ? $", ref {T} scoreVector" : "";
        string queryRow = additive ? "Units" : "Dim"; // the length of what the energy reads for one query
        bool chunkwise = model.Chunkwise;
        string chunkScoreArgument = additive ? ", ref chunkScoreVector" : "";
        string chunkScoreParameter = additive ? $", ref {T} chunkScoreVector" : "";
        string chunkEnergyComment = additive ? "uᵢⱼ = v_cᵀ tanh(cqpᵢ + ckpⱼ)" : "uᵢⱼ = qᵢᵀ ckpⱼ";
        // The projections whose gradients the backward finishes with matrix products, in the order they are done: where each
        // one's ∂ sits in the backward's scratch (queryRows = B·Tq, keyRows = B·Tk; chunkStart begins the chunk energy's part).
        var gradientProjections = new List<Projection>();
        if (additive) gradientProjections.Add(new("QueryWeight", "W_q", "∂L/∂qp", OfQueries: true, "keyRows * Units"));
        gradientProjections.Add(new("KeyWeight", additive ? "W_k" : "W", "∂L/∂kp", OfQueries: false, "0"));
        if (chunkwise && additive) gradientProjections.Add(new("ChunkQueryWeight", "W_cq", "∂L/∂cqp", OfQueries: true, "chunkStart + keyRows * Units"));
        if (chunkwise) gradientProjections.Add(new("ChunkKeyWeight", additive ? "W_ck" : "W_c", "∂L/∂ckp", OfQueries: false, "chunkStart"));
        int products = gradientProjections.Count + (additive ? 2 : 1); // the weight gradients, then ∂Q (additive only) and ∂K

        // The backward's scratch opens with the batch rows' shares of ∂L/∂v (and of ∂L/∂v_c), a cache line apart; the projections'
        // gradients (dProjections, where the offsets above point) follow, and each row's share of ∂L/∂r ends it.
        string shareSpace = !additive ? "" : chunkwise ? "2 * batch * ScoreShareStride + " : "batch * ScoreShareStride + ";
        // The start of each batch row b of the backward: it clears what it then adds into (its shares, its rows of the
        // projections' gradients, of ∂L/∂q, ∂L/∂k and ∂L/∂value; ∂L/∂r's share is assigned), on the thread that adds to them.
        void RowClears()
        {
            w.WriteLine("// Zero this batch row's sums here, on the thread that adds to them (the lines are then in its cache).");
            if (additive)
            {
                w.WriteLine("dScoreVectorShares.Slice(b * ScoreShareStride, ScoreShareStride).Clear();");
                if (chunkwise) w.WriteLine("dChunkScoreVectorShares.Slice(b * ScoreShareStride, ScoreShareStride).Clear();");
            }
            w.WriteLine("dKeyProjection.Slice(b * keyLength * Units, keyLength * Units).Clear();");
            if (additive) w.WriteLine("dQueryProjection.Slice(b * queryLength * Units, queryLength * Units).Clear();");
            if (chunkwise)
            {
                w.WriteLine("dChunkKeyProjection.Slice(b * keyLength * Units, keyLength * Units).Clear();");
                if (additive) w.WriteLine("dChunkQueryProjection.Slice(b * queryLength * Units, queryLength * Units).Clear();");
            }
            w.WriteLine("if (!dQuery.IsEmpty) dQuery.Slice(b * queryLength * Dim, queryLength * Dim).Clear();" + (additive ? " // its products add to it" : ""));
            LayerScaffold.ClearKeyAndValueRows(w, "Dim"); // the ∂K products add to its rows afterwards
        }

        void ScratchViews()
        {
            if (!additive)
            {
                w.WriteLine($"Span<{T}> dProjections = scratch;");
                return;
            }
            w.WriteLine($"Span<{T}> dScoreVectorShares = scratch.Slice(0, batch * ScoreShareStride);");
            if (chunkwise)
            {
                w.WriteLine($"Span<{T}> dChunkScoreVectorShares = scratch.Slice(batch * ScoreShareStride, batch * ScoreShareStride);");
            }
            w.WriteLine($"Span<{T}> dProjections = scratch.Slice({shareSpace.TrimEnd(' ', '+')});");
        }

        // ---- Tape ----
        w.WriteLine();
        w.Summary(
            "What a training <c>Forward(Tape, ...)</c> records for <see cref=\"Backward\"/>: " + (additive ? "W_q q [B, Tq, U], " : "") +
            "the key projection [B, Tk, U],\nthe choose probabilities p [B, Tq, Tk] and the alignment α [B, Tq, Tk]. Owned by the caller, reused, grown as needed.");
        using (w.Block("public sealed class Tape : AttentionTape"))
        {
            LayerScaffold.DeclareTapeCallState(w);
            if (additive)
            {
                w.WriteLine($"internal AlignedBuffer<{T}> QueryProjection;");
            }
            w.WriteLine($"internal AlignedBuffer<{T}> KeyProjection;");
            w.WriteLine($"internal AlignedBuffer<{T}> Choose;");
            w.WriteLine($"internal AlignedBuffer<{T}> Weights;");
            if (chunkwise)
            {
                w.WriteLine("// MoChA: Weights holds β; the monotonic alignment α, the chunk energies u [B, Tq, Tk] and the chunk energy's projections.");
                w.WriteLine($"internal AlignedBuffer<{T}> Alignment;");
                w.WriteLine($"internal AlignedBuffer<{T}> ChunkEnergy;");
                w.WriteLine($"internal AlignedBuffer<{T}> ChunkKeyProjection;");
                if (additive)
                {
                    w.WriteLine($"internal AlignedBuffer<{T}> ChunkQueryProjection;");
                }
            }
            w.WriteLine("internal bool KeysAreValues;");
            w.WriteLine();
            using (w.Block("internal void Prepare(int batch, int queryLength, int keyLength, bool keysAreValues)"))
            {
                if (additive)
                {
                    w.WriteLine("Grow(ref QueryProjection, batch * queryLength * Units);");
                }
                w.WriteLine("Grow(ref KeyProjection, batch * keyLength * Units);");
                w.WriteLine("Grow(ref Choose, batch * queryLength * keyLength);");
                w.WriteLine("Grow(ref Weights, batch * queryLength * keyLength);");
                if (chunkwise)
                {
                    w.WriteLine("Grow(ref Alignment, batch * queryLength * keyLength);");
                    w.WriteLine("Grow(ref ChunkEnergy, batch * queryLength * keyLength);");
                    w.WriteLine("Grow(ref ChunkKeyProjection, batch * keyLength * Units);");
                    if (additive)
                    {
                        w.WriteLine("Grow(ref ChunkQueryProjection, batch * queryLength * Units);");
                    }
                }
                w.WriteLine("Batch = batch;");
                w.WriteLine("QueryLength = queryLength;");
                w.WriteLine("KeyLength = keyLength;");
                w.WriteLine("KeysAreValues = keysAreValues;");
                w.WriteLine("IsRecorded = true;");
            }
        }

        // ---- Key projection ----
        w.WriteLine();
        using (LayerScaffold.ProjectKeysBlock(w, element,
            "Computes the key projection kpⱼ = " + (additive ? "W_k kⱼ + b" : "W kⱼ") + " for every key: once per key sequence, then reused by\n" +
            "<see cref=\"Step\"/> and <see cref=\"StepHard\"/> at every decoder step (TensorFlow's \"processed memory\").", "Dim"))
        {
            w.WriteLine($"Project(batch * keyLength, keys, KeyWeight.Value, {(additive ? "ScoreBias.Value" : "null")}, keyProjection);");
        }
        if (chunkwise)
        {
            w.WriteLine();
            w.Summary("MoChA: computes the chunk energy's key projection ckpⱼ = " + (additive ? "W_ck kⱼ + b_c" : "W_c kⱼ") + " for every key, once per key\nsequence, for <see cref=\"Step\"/> and <see cref=\"StepHard\"/>.");
            w.WriteLine("/// <param name=\"batch\">B.</param>");
            w.WriteLine("/// <param name=\"keyLength\">Tk, at least 1.</param>");
            w.WriteLine("/// <param name=\"keys\">[B, Tk, Dim].</param>");
            w.WriteLine("/// <param name=\"chunkKeyProjection\">[B, Tk, Units], written.</param>");
            w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the shapes, or the output overlaps the keys.</exception>");
            using (w.Block($"public void ProjectChunkKeys(int batch, int keyLength, ReadOnlySpan<{T}> keys, Span<{T}> chunkKeyProjection)"))
            {
                w.WriteLine("Shapes.RequireAtLeast(batch, 0, nameof(batch));");
                w.WriteLine("Shapes.RequireAtLeast(keyLength, 1, nameof(keyLength));");
                w.WriteLine("Shapes.RequireLength(keys.Length, (long)batch * keyLength * Dim, nameof(keys), $\"[B={batch}, Tk={keyLength}, Dim={Dim}]\");");
                w.WriteLine("Shapes.RequireLength(chunkKeyProjection.Length, (long)batch * keyLength * Units, nameof(chunkKeyProjection), $\"[B={batch}, Tk={keyLength}, Units={Units}]\");");
                w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(chunkKeyProjection, keys, nameof(chunkKeyProjection), nameof(keys));");
                w.WriteLine($"Project(batch * keyLength, keys, ChunkKeyWeight.Value, {(additive ? "ChunkScoreBias.Value" : "null")}, chunkKeyProjection);");
            }
        }
        w.WriteLine();
        LayerScaffold.DeclareProject(w, element, transposedProduct, kernels.Copy(model.Units));

        // ---- α₀ ----
        w.WriteLine();
        w.Summary("Writes α₀ = one-hot(0) for each batch row: the alignment before the first decoder step, to pass to the first <see cref=\"Step\"/>.");
        w.WriteLine("/// <param name=\"batch\">B.</param>");
        w.WriteLine("/// <param name=\"keyLength\">Tk, at least 1.</param>");
        w.WriteLine("/// <param name=\"alignment\">[B, Tk], written.</param>");
        using (w.Block($"public static void InitialAlignment(int batch, int keyLength, Span<{T}> alignment)"))
        {
            w.WriteLine("Shapes.RequireAtLeast(batch, 0, nameof(batch));");
            w.WriteLine("Shapes.RequireAtLeast(keyLength, 1, nameof(keyLength));");
            w.WriteLine("Shapes.RequireLength(alignment.Length, (long)batch * keyLength, nameof(alignment), $\"[B={batch}, Tk={keyLength}]\");");
            w.WriteLine("MonotonicAlignment.Initialize(alignment, keyLength);");
        }

        // ---- Inference forward ----
        w.WriteLine();
        w.Summary(
            "Inference forward over whole sequences (all decoder steps of a batch at once): the soft alignment α and the context\n" +
            "cᵢ = Σⱼ αᵢⱼ valueⱼ, without noise. Keeps no state and allocates nothing in steady state.");
        WriteForwardParamDocs(w, tape: false);
        using (w.Block($"public void Forward(int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights = default, AttentionMask mask = default)"))
        {
            w.WriteLine("bool keysAreValues = values.IsEmpty;");
            w.WriteLine("ThrowIfInvalidForward(batch, queryLength, keyLength, query, keys, keysAreValues ? keys : values, keysAreValues, context, weights, mask);");
            w.WriteLine($"ReadOnlySpan<{T}> valueSource = keysAreValues ? keys : values;");
            w.WriteLine("ForwardBatch(null, null, batch, queryLength, keyLength, query, keys, valueSource, context, weights, mask);");
        }

        // ---- Training forward ----
        w.WriteLine();
        w.Summary(
            "Training forward: the inference result (plus noise when <paramref name=\"noise\"/> is given), recording in\n" +
            "<paramref name=\"tape\"/> what <see cref=\"Backward\"/> needs. Pass the same inputs to <see cref=\"Backward\"/> afterwards.");
        w.WriteLine("/// <param name=\"tape\">The caller's reusable tape; grown to these lengths if needed.</param>");
        WriteForwardParamDocs(w, tape: true);
        w.WriteLine("/// <param name=\"noise\">When not null, pᵢⱼ = σ(eᵢⱼ + r + σₙ·nᵢⱼ) with nᵢⱼ ~ N(0, 1) drawn from it in the order b, i, j (one draw per");
        w.WriteLine("/// pair, masked or not) and σₙ = NoiseStdDev: the paper's pre-sigmoid noise, reproducible from a seeded <see cref=\"Random\"/>.</param>");
        using (w.Block($"public void Forward(Tape tape, int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights = default, AttentionMask mask = default, Random? noise = null)"))
        {
            w.WriteLine("ArgumentNullException.ThrowIfNull(tape);");
            w.WriteLine("bool keysAreValues = values.IsEmpty;");
            w.WriteLine("ThrowIfInvalidForward(batch, queryLength, keyLength, query, keys, keysAreValues ? keys : values, keysAreValues, context, weights, mask);");
            w.WriteLine($"ReadOnlySpan<{T}> valueSource = keysAreValues ? keys : values;");
            w.WriteLine("tape.Prepare(batch, queryLength, keyLength, keysAreValues);");
            w.WriteLine("ForwardBatch(tape, noise, batch, queryLength, keyLength, query, keys, valueSource, context, weights, mask);");
            using (w.Block("if (!weights.IsEmpty)"))
            {
                w.WriteLine("tape.Weights.AsSpan(0, batch * queryLength * keyLength).CopyTo(weights);");
            }
        }

        // ---- Shared forward rows ----
        w.WriteLine();
        w.WriteLine("// Batch rows are independent: large calls spread them over threads (each row is computed the same way whatever the");
        w.WriteLine("// thread count, so the result is too). With noise the rows run in order on the calling thread, so that the draws");
        w.WriteLine("// from the caller's Random come in the documented order b, i, j.");
        using (w.Block($"private void ForwardBatch(Tape? tape, Random? noise, int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights, AttentionMask mask)"))
        {
            using (w.Block("if (noise is not null || !BatchParallel.ShouldSplit(batch, MaxDegreeOfParallelism, (long)batch * queryLength * keyLength * Units, ParallelWorkThreshold))"))
            {
                w.WriteLine("ForwardRows(tape, noise, 0, batch, queryLength, keyLength, query, keys, values, context, weights, mask);");
                w.WriteLine("return;");
            }
            w.WriteLine($"BatchParallel.For<{T}>(batch, MaxDegreeOfParallelism, CallStateFor(tape),");
            w.WriteLine($"    static (int b, object state, in ChunkSpans<{T}> s) => ((CallState)state).Layer.ForwardRows(((CallState)state).Tape, null, b, b + 1, s.QueryLength, s.KeyLength, s.R0, s.R1, s.R2, s.W0, s.W1, s.Mask),");
            w.WriteLine("    (batch, queryLength, keyLength), mask, r0: query, r1: keys, r2: values, w0: context, w1: tape is not null ? default : weights);");
        }
        w.WriteLine();
        w.WriteLine($"private sealed record CallState({model.Target.Name} Layer, Tape? Tape);");
        LayerScaffold.DeclareCallStateFor(w);
        w.WriteLine();
        if (chunkwise) { ChunkwiseForwardRows(); } else {
        w.WriteLine("// For each batch row b in [first, end):");
        w.WriteLine("//   kpⱼ = " + (additive ? "W_k kⱼ + b" : "W kⱼ") + (additive ? ",  qpᵢ = W_q qᵢ" : ""));
        w.WriteLine("//   then for each query i in order: pᵢ (ChooseRow), αᵢ from pᵢ and αᵢ₋₁ (α₀ = one-hot(0)), cᵢ = Σⱼ αᵢⱼ valueⱼ.");
        using (LayerScaffold.HotBlock(w, $"private void ForwardRows(Tape? tape, Random? noise, int first, int end, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights, AttentionMask mask)"))
        {
            string projections = additive ? "keyLength * Units + queryLength * Units" : "keyLength * Units";
            LayerScaffold.DeclareScratch(w, element, "scratch", $"(tape is not null ? 0 : {projections} + keyLength + (weights.IsEmpty ? queryLength * keyLength : 0)) + keyLength{extraUnits}");
            using (w.Block("try"))
            {
                w.WriteLine($"Span<{T}> initial = scratch.Slice(scratch.Length - keyLength{(normalize ? " - Units" : "")}, keyLength);");
                if (additive)
                {
                    ScoreVectorSetup("scratch.Slice(scratch.Length - Units, Units)");
                }
                w.WriteLine("MonotonicAlignment.Initialize(initial, keyLength);");
                using (w.Block("for (int b = first; b < end; b++)"))
                {
                    w.WriteLine("int rowPairs = queryLength * keyLength;");
                    w.WriteLine($"Span<{T}> keyProjection = tape is not null ? tape.KeyProjection.AsSpan(b * keyLength * Units, keyLength * Units) : scratch.Slice(0, keyLength * Units);");
                    if (additive)
                    {
                        w.WriteLine($"Span<{T}> queryProjection = tape is not null ? tape.QueryProjection.AsSpan(b * queryLength * Units, queryLength * Units) : scratch.Slice(keyLength * Units, queryLength * Units);");
                    }
                    w.WriteLine("int used = " + projections + ";");
                    w.WriteLine($"Span<{T}> choose = tape is not null ? tape.Choose.AsSpan(b * rowPairs, rowPairs) : scratch.Slice(used, keyLength);");
                    w.WriteLine($"Span<{T}> rowWeights = tape is not null ? tape.Weights.AsSpan(b * rowPairs, rowPairs)");
                    w.WriteLine("    : weights.IsEmpty ? scratch.Slice(used + keyLength, rowPairs) : weights.Slice(b * rowPairs, rowPairs);");
                    w.WriteLine($"Project(keyLength, keys.Slice(b * keyLength * Dim, keyLength * Dim), KeyWeight.Value, {(additive ? "ScoreBias.Value" : "null")}, keyProjection);");
                    if (additive)
                    {
                        w.WriteLine("Project(queryLength, query.Slice(b * queryLength * Dim, queryLength * Dim), QueryWeight.Value, null, queryProjection);");
                    }
                    else
                    {
                        w.WriteLine($"ReadOnlySpan<{T}> queryProjection = query.Slice(b * queryLength * Dim, queryLength * Dim); // the energy reads qᵢ itself");
                    }
                    w.WriteLine($"ref {T} valueStart = ref MemoryMarshal.GetReference(values.Slice(b * keyLength * ValueDim, keyLength * ValueDim));");
                    using (w.Block("for (int i = 0; i < queryLength; i++)"))
                    {
                        w.WriteLine($"Span<{T}> p = tape is not null ? choose.Slice(i * keyLength, keyLength) : choose;");
                        w.WriteLine($"ChooseRow(b, i, queryLength, keyLength, ref MemoryMarshal.GetReference(queryProjection.Slice(i * {queryRow}, {queryRow})), keyProjection, mask, noise, p{scoreArgument});");
                        w.WriteLine($"ReadOnlySpan<{T}> previous = i == 0 ? initial : rowWeights.Slice((i - 1) * keyLength, keyLength);");
                        w.WriteLine($"Span<{T}> alignment = rowWeights.Slice(i * keyLength, keyLength);");
                        w.WriteLine("// " + alignFormula);
                        w.WriteLine($"{align}<{T}>(p, previous, alignment);");
                        w.WriteLine("// cᵢ = Σⱼ αᵢⱼ valueⱼ");
                        w.WriteLine($"Span<{T}> contextRow = context.Slice((b * queryLength + i) * ValueDim, ValueDim);");
                        w.WriteLine("contextRow.Clear();");
                        using (w.Block("for (int j = 0; j < keyLength; j++)"))
                        {
                            using (w.Block("if (alignment[j] != 0)"))
                            {
                                w.WriteLine($"{axpyValue}(alignment[j], ref Unsafe.Add(ref valueStart, j * ValueDim), ref MemoryMarshal.GetReference(contextRow));");
                            }
                        }
                    }
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }

        }
        // ---- Choose probabilities ----
        w.WriteLine();
        w.WriteLine("// pᵢⱼ = σ(eᵢⱼ + r + σₙ nᵢⱼ) for one query against every key, with " + energyComment + ";");
        w.WriteLine("// pᵢⱼ = 0 where the mask forbids j (the alignment mass passes that key by, as TF-Addons' masked score does).");
        using (LayerScaffold.HotBlock(w, $"private void ChooseRow(int b, int i, int queryLength, int keyLength, ref {T} projectedQuery, ReadOnlySpan<{T}> keyProjection, AttentionMask mask, Random? noise, Span<{T}> p{scoreParameter})"))
        {
            w.WriteLine($"ref {T} keyProjectionStart = ref MemoryMarshal.GetReference(keyProjection);");
            w.WriteLine($"{T} r = EnergyBias.Value[0];");
            w.WriteLine("bool masked = !mask.IsEmpty;");
            using (w.Block("for (int j = 0; j < keyLength; j++)"))
            {
                w.WriteLine($"{T} n = noise is null ? 0 : ({T})(NoiseStdDev * MonotonicAlignment.StandardNormal(noise));");
                using (w.Block("if (masked && !mask.Allows(b, i, j, queryLength, keyLength))"))
                {
                    w.WriteLine("p[j] = 0;");
                    w.WriteLine("continue;");
                }
                w.WriteLine($"{T} e = {Energy("projectedQuery", "Unsafe.Add(ref keyProjectionStart, j * Units)")};");
                w.WriteLine("p[j] = VectorMath.Sigmoid(e + r + n);");
            }
        }
        w.WriteLine();
        w.WriteLine("// σₙ: the standard deviation of the pre-sigmoid training noise (NoiseStdDev of the attribute).");
        w.WriteLine($"private const double NoiseStdDev = {model.NoiseStdDev.ToString("R", CultureInfo.InvariantCulture)}d;");

        // ---- Step ----
        if (chunkwise) { ChunkwiseStep(); } else {
        w.WriteLine();
        w.Summary(
            "One soft decoder step for streaming: from the previous alignment αᵢ₋₁ (start from <see cref=\"InitialAlignment\"/>) and\n" +
            "this step's query, writes αᵢ and cᵢ. The same numbers as row i of the whole-sequence <c>Forward</c> (without noise).");
        w.WriteLine("/// <param name=\"batch\">B.</param>");
        w.WriteLine("/// <param name=\"keyLength\">Tk, at least 1.</param>");
        w.WriteLine("/// <param name=\"query\">This step's queries, [B, Dim].</param>");
        w.WriteLine("/// <param name=\"keyProjection\">[B, Tk, Units], from <see cref=\"ProjectKeys\"/>.</param>");
        w.WriteLine("/// <param name=\"values\">[B, Tk, ValueDim] (pass the keys when they are the values).</param>");
        w.WriteLine("/// <param name=\"previousAlignment\">αᵢ₋₁, [B, Tk].</param>");
        w.WriteLine("/// <param name=\"alignment\">αᵢ, [B, Tk], written; may be the same memory as <paramref name=\"previousAlignment\"/>.</param>");
        w.WriteLine("/// <param name=\"context\">cᵢ, [B, ValueDim], written.</param>");
        w.WriteLine("/// <param name=\"keyPadding\">Optional [B, Tk], true = may attend.</param>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the shapes, or an output overlaps an input.</exception>");
        using (LayerScaffold.HotBlock(w, $"public void Step(int batch, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keyProjection, ReadOnlySpan<{T}> values, ReadOnlySpan<{T}> previousAlignment, Span<{T}> alignment, Span<{T}> context, ReadOnlySpan<bool> keyPadding = default)"))
        {
            w.WriteLine("ThrowIfInvalidStep(batch, keyLength, query, keyProjection, values, context, keyPadding);");
            w.WriteLine("Shapes.RequireLength(previousAlignment.Length, (long)batch * keyLength, nameof(previousAlignment), $\"[B={batch}, Tk={keyLength}]\");");
            w.WriteLine("Shapes.RequireLength(alignment.Length, (long)batch * keyLength, nameof(alignment), $\"[B={batch}, Tk={keyLength}]\");");
            foreach (string input in new[] { "query", "keyProjection", "values" })
            {
                w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(alignment, {input}, nameof(alignment), nameof({input}));");
            }
            using (w.Block("if (!alignment.Overlaps(previousAlignment, out int offset) || offset != 0)"))
            {
                w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(alignment, previousAlignment, nameof(alignment), nameof(previousAlignment));");
            }
            w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(context, previousAlignment, nameof(context), nameof(previousAlignment));");
            w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(context, alignment, nameof(context), nameof(alignment));");
            w.WriteLine("var mask = AttentionMask.FromKeyPadding(keyPadding);");
            LayerScaffold.DeclareScratch(w, element, "scratch", additive ? $"keyLength + Units{extraUnits}" : "keyLength");
            using (w.Block("try"))
            {
                w.WriteLine($"Span<{T}> p = scratch.Slice(0, keyLength);");
                if (additive)
                {
                    ScoreVectorSetup("scratch.Slice(keyLength + Units, Units)");
                }
                using (w.Block("for (int b = 0; b < batch; b++)"))
                {
                    if (additive)
                    {
                        w.WriteLine($"Span<{T}> projectedQuery = scratch.Slice(keyLength, Units);");
                        w.WriteLine("Project(1, query.Slice(b * Dim, Dim), QueryWeight.Value, null, projectedQuery);");
                    }
                    else
                    {
                        w.WriteLine($"ReadOnlySpan<{T}> projectedQuery = query.Slice(b * Dim, Dim);");
                    }
                    w.WriteLine($"ChooseRow(b, 0, 1, keyLength, ref MemoryMarshal.GetReference(projectedQuery), keyProjection.Slice(b * keyLength * Units, keyLength * Units), mask, null, p{scoreArgument});");
                    w.WriteLine($"Span<{T}> row = alignment.Slice(b * keyLength, keyLength);");
                    w.WriteLine("// " + alignFormula);
                    w.WriteLine($"{align}<{T}>(p, previousAlignment.Slice(b * keyLength, keyLength), row);");
                    w.WriteLine($"Span<{T}> contextRow = context.Slice(b * ValueDim, ValueDim);");
                    w.WriteLine("contextRow.Clear();");
                    using (w.Block("for (int j = 0; j < keyLength; j++)"))
                    {
                        using (w.Block("if (row[j] != 0)"))
                        {
                            w.WriteLine($"{axpyValue}(row[j], ref MemoryMarshal.GetReference(values.Slice((b * keyLength + j) * ValueDim, ValueDim)), ref MemoryMarshal.GetReference(contextRow));");
                        }
                    }
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }

        }
        // ---- Hard decoding ----
        w.WriteLine();
        w.Summary(
            "Hard monotonic decoding over whole sequences (test time): for each query, scan forward from the key attended at the\n" +
            "previous step (key 0 before the first) and stop at the first allowed j with pᵢⱼ ≥ 0.5, i.e. eᵢⱼ + r ≥ 0; cᵢ = valueⱼ. When\n" +
            "no key qualifies the query attends nothing (cᵢ = 0, position −1) and so does every later query of that row, as in\n" +
            "TF-Addons' hard mode. The pointer never moves back, so each batch row computes at most Tq + Tk energies." +
            (chunkwise ? "\nMoChA: cᵢ = Σⱼ softmax(uᵢ)ⱼ valueⱼ over the chunk of w keys ending at the attended position (clipped at key 0);\n" +
                         "positions are the chunks' last keys." : ""));
        w.WriteLine("/// <param name=\"batch\">B.</param>");
        w.WriteLine("/// <param name=\"queryLength\">Tq.</param>");
        w.WriteLine("/// <param name=\"keyLength\">Tk, at least 1.</param>");
        w.WriteLine("/// <param name=\"query\">[B, Tq, Dim].</param>");
        w.WriteLine("/// <param name=\"keys\">[B, Tk, Dim].</param>");
        w.WriteLine("/// <param name=\"values\">[B, Tk, ValueDim], or empty to use the keys as values (needs ValueDim = Dim).</param>");
        w.WriteLine("/// <param name=\"context\">[B, Tq, ValueDim], written.</param>");
        w.WriteLine("/// <param name=\"positions\">[B, Tq], written: the attended key of each query, or −1 for none.</param>");
        w.WriteLine("/// <param name=\"mask\">Which keys each query may stop at (true = may attend).</param>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the shapes, Tk &lt; 1, or an output overlaps an input.</exception>");
        if (chunkwise) ChunkwiseForwardHard(); else
        using (LayerScaffold.HotBlock(w, $"public void ForwardHard(int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<int> positions, AttentionMask mask = default)"))
        {
            w.WriteLine("bool keysAreValues = values.IsEmpty;");
            w.WriteLine("ThrowIfInvalidForward(batch, queryLength, keyLength, query, keys, keysAreValues ? keys : values, keysAreValues, context, default, mask);");
            w.WriteLine("Shapes.RequireLength(positions.Length, (long)batch * queryLength, nameof(positions), $\"[B={batch}, Tq={queryLength}]\");");
            w.WriteLine($"ReadOnlySpan<{T}> valueSource = keysAreValues ? keys : values;");
            LayerScaffold.DeclareScratch(w, element, "scratch", additive ? $"keyLength * Units + Units{extraUnits}" : "keyLength * Units");
            using (w.Block("try"))
            {
                w.WriteLine($"Span<{T}> keyProjection = scratch.Slice(0, keyLength * Units);");
                if (additive)
                {
                    ScoreVectorSetup("scratch.Slice(keyLength * Units + Units, Units)");
                }
                using (w.Block("for (int b = 0; b < batch; b++)"))
                {
                    w.WriteLine($"Project(keyLength, keys.Slice(b * keyLength * Dim, keyLength * Dim), KeyWeight.Value, {(additive ? "ScoreBias.Value" : "null")}, keyProjection);");
                    w.WriteLine("int position = 0; // α₀ = one-hot(0)");
                    using (w.Block("for (int i = 0; i < queryLength; i++)"))
                    {
                        if (additive)
                        {
                            w.WriteLine($"Span<{T}> projectedQuery = scratch.Slice(keyLength * Units, Units);");
                            w.WriteLine("if (position >= 0) Project(1, query.Slice((b * queryLength + i) * Dim, Dim), QueryWeight.Value, null, projectedQuery);");
                        }
                        else
                        {
                            w.WriteLine($"ReadOnlySpan<{T}> projectedQuery = query.Slice((b * queryLength + i) * Dim, Dim);");
                        }
                        w.WriteLine($"position = HardChoice(b, i, queryLength, keyLength, position, ref MemoryMarshal.GetReference(projectedQuery), keyProjection, mask{scoreArgument});");
                        w.WriteLine("positions[b * queryLength + i] = position;");
                        w.WriteLine($"Span<{T}> contextRow = context.Slice((b * queryLength + i) * ValueDim, ValueDim);");
                        w.WriteLine("if (position < 0) contextRow.Clear();");
                        w.WriteLine("else valueSource.Slice((b * keyLength + position) * ValueDim, ValueDim).CopyTo(contextRow);");
                    }
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }

        if (chunkwise) { ChunkwiseStepHard(); } else {
        w.WriteLine();
        w.Summary(
            "One hard decoder step for streaming: from each row's previously attended key (0 before the first step, −1 once a step\n" +
            "attended nothing) scan forward to the first allowed j with pᵢⱼ ≥ 0.5; write cᵢ = valueⱼ (zero for none) and update the position.\n" +
            "The same numbers as row i of <see cref=\"ForwardHard\"/>.");
        w.WriteLine("/// <param name=\"batch\">B.</param>");
        w.WriteLine("/// <param name=\"keyLength\">Tk, at least 1.</param>");
        w.WriteLine("/// <param name=\"query\">This step's queries, [B, Dim].</param>");
        w.WriteLine("/// <param name=\"keyProjection\">[B, Tk, Units], from <see cref=\"ProjectKeys\"/>.</param>");
        w.WriteLine("/// <param name=\"values\">[B, Tk, ValueDim] (pass the keys when they are the values).</param>");
        w.WriteLine("/// <param name=\"position\">[B]: in, the previously attended key (0 at the start, −1 for none); out, this step's (never smaller, or −1).</param>");
        w.WriteLine("/// <param name=\"context\">cᵢ, [B, ValueDim], written.</param>");
        w.WriteLine("/// <param name=\"keyPadding\">Optional [B, Tk], true = may attend.</param>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the shapes, a position is out of range, or an output overlaps an input.</exception>");
        using (LayerScaffold.HotBlock(w, $"public void StepHard(int batch, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keyProjection, ReadOnlySpan<{T}> values, Span<int> position, Span<{T}> context, ReadOnlySpan<bool> keyPadding = default)"))
        {
            w.WriteLine("ThrowIfInvalidStep(batch, keyLength, query, keyProjection, values, context, keyPadding);");
            w.WriteLine("Shapes.RequireLength(position.Length, batch, nameof(position), $\"[B={batch}]\");");
            using (w.Block("for (int b = 0; b < batch; b++)"))
            {
                using (w.Block("if (position[b] < -1 || position[b] >= keyLength)"))
                {
                    w.WriteLine("throw new ArgumentException($\"'position' must hold key indices in [-1, {keyLength - 1}], but position[{b}] is {position[b]}.\", nameof(position));");
                }
            }
            w.WriteLine("var mask = AttentionMask.FromKeyPadding(keyPadding);");
            if (additive)
            {
                string units = normalize ? "2 * Units" : "Units";
                w.WriteLine($"Span<{T}> stepScratch = stackalloc {T}[{units} <= StackScratchLimit ? {units} : 0];");
                w.WriteLine($"if (stepScratch.IsEmpty) stepScratch = new {T}[{units}];");
                w.WriteLine($"Span<{T}> projectedQuery = stepScratch.Slice(0, Units);");
                ScoreVectorSetup("stepScratch.Slice(Units, Units)");
            }
            {
                using (w.Block("for (int b = 0; b < batch; b++)"))
                {
                    if (additive)
                    {
                        w.WriteLine("if (position[b] >= 0) Project(1, query.Slice(b * Dim, Dim), QueryWeight.Value, null, projectedQuery);");
                    }
                    else
                    {
                        w.WriteLine($"ReadOnlySpan<{T}> projectedQuery = query.Slice(b * Dim, Dim);");
                    }
                    w.WriteLine($"int chosen = HardChoice(b, 0, 1, keyLength, position[b], ref MemoryMarshal.GetReference(projectedQuery), keyProjection.Slice(b * keyLength * Units, keyLength * Units), mask{scoreArgument});");
                    w.WriteLine("position[b] = chosen;");
                    w.WriteLine($"Span<{T}> contextRow = context.Slice(b * ValueDim, ValueDim);");
                    w.WriteLine("if (chosen < 0) contextRow.Clear();");
                    w.WriteLine("else values.Slice((b * keyLength + chosen) * ValueDim, ValueDim).CopyTo(contextRow);");
                }
            }
        }
        }

        w.WriteLine();
        w.WriteLine("// The paper's test-time rule: from the previous position t, the first allowed j ≥ t with pᵢⱼ = σ(eᵢⱼ + r) ≥ 0.5,");
        w.WriteLine("// i.e. eᵢⱼ + r ≥ 0 (no sigmoid needed); −1 when there is none or when t is already −1. Computes only the energies it scans.");
        using (LayerScaffold.HotBlock(w, $"private int HardChoice(int b, int i, int queryLength, int keyLength, int start, ref {T} projectedQuery, ReadOnlySpan<{T}> keyProjection, AttentionMask mask{scoreParameter})"))
        {
            w.WriteLine($"ref {T} keyProjectionStart = ref MemoryMarshal.GetReference(keyProjection);");
            w.WriteLine($"{T} r = EnergyBias.Value[0];");
            w.WriteLine("bool masked = !mask.IsEmpty;");
            using (w.Block("for (int j = start < 0 ? keyLength : start; j < keyLength; j++)"))
            {
                using (w.Block("if (masked && !mask.Allows(b, i, j, queryLength, keyLength))"))
                {
                    w.WriteLine("continue;");
                }
                using (w.Block($"if ({Energy("projectedQuery", "Unsafe.Add(ref keyProjectionStart, j * Units)")} + r >= 0)"))
                {
                    w.WriteLine("return j;");
                }
            }
            w.WriteLine("return -1;");
        }

        // ---- Backward ----
        w.WriteLine();
        w.Summary(
            "Backward: from ∂L/∂c (and optionally ∂L/∂α) writes ∂L/∂q, ∂L/∂k, ∂L/∂value (each only when its span is not empty) and\n" +
            "adds the parameter gradients into each parameter's <c>Gradient</c>. Call after the training <c>Forward</c> with the same\n" +
            "inputs and tape. The queries are walked from last to first: gᵢⱼ = ∂L/∂cᵢ · valueⱼ + ∂L/∂αᵢⱼ + (∂L/∂αᵢ from step i + 1);\n" +
            "the alignment's reverse pass gives ∂L/∂pᵢ and ∂L/∂αᵢ₋₁; ∂L/∂eᵢⱼ = ∂L/∂pᵢⱼ pᵢⱼ (1 − pᵢⱼ), which flows to r and through the\n" +
            "energy to the projections. Masked pairs (p = 0) pass no gradient to their energy.");
        w.WriteLine("/// <param name=\"tape\">The tape the training <c>Forward</c> recorded into.</param>");
        w.WriteLine("/// <param name=\"query\">The query given to the forward, [B, Tq, Dim].</param>");
        w.WriteLine("/// <param name=\"keys\">The keys given to the forward, [B, Tk, Dim].</param>");
        w.WriteLine("/// <param name=\"values\">The values given to the forward (empty if the keys were the values).</param>");
        w.WriteLine("/// <param name=\"dContext\">∂L/∂c, [B, Tq, ValueDim].</param>");
        w.WriteLine("/// <param name=\"dQuery\">∂L/∂q, [B, Tq, Dim]: written when not empty.</param>");
        w.WriteLine("/// <param name=\"dKeys\">∂L/∂k, [B, Tk, Dim]: written when not empty (including the value path when the keys were the values).</param>");
        w.WriteLine("/// <param name=\"dValues\">∂L/∂value, [B, Tk, ValueDim]: written when not empty; must be empty when the keys were the values.</param>");
        w.WriteLine("/// <param name=\"dWeights\">Optional ∂L/∂α, [B, Tq, Tk], for losses on the alignment itself.</param>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the recorded shapes, or the tape holds no forward.</exception>");
        using (w.Block($"public void Backward(Tape tape, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, ReadOnlySpan<{T}> dContext, Span<{T}> dQuery = default, Span<{T}> dKeys = default, Span<{T}> dValues = default, ReadOnlySpan<{T}> dWeights = default)"))
        {
            LayerScaffold.QueryKeyBackwardChecks(w, element, "Dim");
            w.WriteLine();
            string extra = additive ? " + batch * queryLength * Units" : "";
            w.WriteLine("// Scratch for the whole batch: " + (additive ? "each batch row's share of ∂L/∂v [B, ScoreShareStride]" + (chunkwise ? " and of ∂L/∂v_c" : "") + ", then " : "") + "∂L/∂kp [B, Tk, U]" + (additive ? " and ∂L/∂qp [B, Tq, U]" : "") + ",");
            if (chunkwise)
            {
                w.WriteLine("// MoChA: the same again for the chunk energy (∂L/∂ckp" + (additive ? " and ∂L/∂cqp" : "") + "),");
            }
            w.WriteLine("// and each row's share of ∂L/∂r [B]. The projection gradients are then a few register-blocked products, and the shares");
            w.WriteLine("// are summed in row order, so the result does not depend on how rows were spread over threads. Nothing is cleared here:");
            w.WriteLine("// each batch row clears its part of the scratch and its rows of ∂L/∂q, ∂L/∂k and ∂L/∂value in BackwardRows.");
            LayerScaffold.DeclareScratch(w, element, "scratch", shareSpace + (chunkwise ? $"2 * (batch * keyLength * Units{extra}) + batch" : $"batch * keyLength * Units{extra} + batch"));
            using (w.Block("try"))
            {
                w.WriteLine("var lengths = (batch, queryLength, keyLength);");
                using (w.Block("if (BatchParallel.ShouldSplit(batch, MaxDegreeOfParallelism, (long)batch * queryLength * keyLength * Units, ParallelWorkThreshold))"))
                {
                    w.WriteLine($"BatchParallel.For<{T}>(batch, MaxDegreeOfParallelism, CallStateFor(tape),");
                    w.WriteLine($"    static (int b, object state, in ChunkSpans<{T}> s) => ((CallState)state).Layer.BackwardRows(((CallState)state).Tape!, b, b + 1, s.R0, s.R1, s.R2, s.R3, s.W0, s.W1, s.W2, s.W3),");
                    w.WriteLine("    lengths, r0: query, r1: valueSource, r2: dContext, r3: dWeights, w0: dQuery, w1: dValueTarget, w2: dKeys, w3: scratch);");
                }
                using (w.Block("else"))
                {
                    w.WriteLine("BackwardRows(tape, 0, batch, query, valueSource, dContext, dWeights, dQuery, dValueTarget, dKeys, scratch);");
                }
                w.WriteLine();
                ScratchViews();
                w.WriteLine($"Span<{T}> dKeyProjection = dProjections.Slice(0, batch * keyLength * Units);");
                if (additive)
                {
                    if (!normalize)
                    {
                        w.WriteLine($"ref {T} dScoreVector = ref MemoryMarshal.GetArrayDataReference(ScoreVector.Gradient);");
                    }
                }
                w.WriteLine($"Span<{T}> dEnergyBiasShares = scratch.Slice(scratch.Length - batch, batch);");
                using (w.Block("for (int b = 0; b < batch; b++)"))
                {
                    if (additive && !normalize)
                    {
                        w.WriteLine($"{axpyUnits}(1, ref dScoreVectorShares[b * ScoreShareStride], ref dScoreVector);");
                    }
                    else if (additive)
                    {
                        w.WriteLine($"if (b > 0) {axpyUnits}(1, ref dScoreVectorShares[b * ScoreShareStride], ref dScoreVectorShares[0]);");
                    }
                    w.WriteLine("EnergyBias.Gradient[0] += dEnergyBiasShares[b];");
                }
                if (normalize)
                {
                    w.WriteLine("if (batch > 0) NormalizedScoreVectorBackward(dScoreVectorShares.Slice(0, Units)); // ∂L/∂v′ into ∂L/∂g and ∂L/∂v");
                }
                w.WriteLine();
                if (additive)
                {
                    w.WriteLine("// kpⱼ = W_k kⱼ + b: ∂L/∂b = Σⱼ ∂L/∂kpⱼ.");
                    w.WriteLine($"ref {T} dBias = ref MemoryMarshal.GetArrayDataReference(ScoreBias.Gradient);");
                    using (w.Block("for (int j = 0; j < batch * keyLength; j++)"))
                    {
                        w.WriteLine($"{axpyUnits}(1, ref dKeyProjection[j * Units], ref dBias);");
                    }
                }
                if (chunkwise)
                {
                    w.WriteLine();
                    w.WriteLine("// The chunk energy's own shares and bias, the same way.");
                    w.WriteLine($"int chunkStart = batch * keyLength * Units{extra};");
                    if (additive)
                    {
                        w.WriteLine($"Span<{T}> dChunkKeyProjection = dProjections.Slice(chunkStart, batch * keyLength * Units);");
                        w.WriteLine($"ref {T} dChunkScoreVector = ref MemoryMarshal.GetArrayDataReference(ChunkScoreVector.Gradient);");
                        using (w.Block("for (int b = 0; b < batch; b++)"))
                        {
                            w.WriteLine($"{axpyUnits}(1, ref dChunkScoreVectorShares[b * ScoreShareStride], ref dChunkScoreVector);");
                        }
                        w.WriteLine("// ckpⱼ = W_ck kⱼ + b_c: ∂L/∂b_c = Σⱼ ∂L/∂ckpⱼ.");
                        w.WriteLine($"ref {T} dChunkBias = ref MemoryMarshal.GetArrayDataReference(ChunkScoreBias.Gradient);");
                        using (w.Block("for (int j = 0; j < batch * keyLength; j++)"))
                        {
                            w.WriteLine($"{axpyUnits}(1, ref dChunkKeyProjection[j * Units], ref dChunkBias);");
                        }
                    }
                }
                w.WriteLine();
                w.WriteLine("// The projection gradients (" + string.Join(", ", gradientProjections.Select(p => p.WeightGradient)) + (additive ? ", then ∂Q and ∂K" : ", then ∂K") + " by rows), each");
                w.WriteLine("// cut into ProductParts row ranges that threads take independently.");
                LayerScaffold.ProductPhase(w, element, model.Target.Name, products, "(long)batch * (queryLength + keyLength) * Dim * Units * 2", "lengths",
                    "s.Batch, s.QueryLength, s.KeyLength, s.R0, s.R1, s.R2, s.W0, s.W1", "batch, queryLength, keyLength, query, keys, dProjections, dQuery, dKeys",
                    "r0: query, r1: keys, r2: dProjections, w0: dQuery, w1: dKeys");
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }

        // ---- Backward, the projection gradients ----
        w.WriteLine();
        if (additive)
        {
            LayerScaffold.DeclareShareStride(w, element, model.Units, "∂L/∂v" + (chunkwise ? " (and of ∂L/∂v_c)" : ""));
            w.WriteLine();
        }
        LayerScaffold.DeclareProductParts(w);
        w.WriteLine();
        w.WriteLine("// Chunk c does part c % parts of product c / parts: the weight gradients, then ∂Q and ∂K by rows, each row's terms");
        w.WriteLine("// added in a fixed order. Parts write disjoint rows, so threads may take them in any order.");
        using (LayerScaffold.HotBlock(w, $"private void BackwardProducts(int chunk, int parts, int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> dProjections, Span<{T}> dQuery, Span<{T}> dKeys)"))
        {
            w.WriteLine("int product = chunk / parts, part = chunk % parts;");
            w.WriteLine("int queryRows = batch * queryLength, keyRows = batch * keyLength;");
            if (chunkwise)
            {
                w.WriteLine($"int chunkStart = keyRows * Units{(additive ? " + queryRows * Units" : "")};");
            }
            int index = 0;
            foreach (Projection projection in gradientProjections)
            {
                using (w.Block($"if (product == {index++})"))
                {
                    w.WriteLine($"// {projection.WeightGradient} += {projection.Gradient}ᵀ {(projection.OfQueries ? "Q" : "K")}.");
                    w.WriteLine($"ReadOnlySpan<{T}> dProjection = dProjections.Slice({projection.Offset}, {projection.Rows} * Units);");
                    LayerScaffold.WeightGradientPart(w, productDim, "Units", projection.Rows, "parts", "dProjection", projection.OfQueries ? "query" : "keys", projection.Weight + ".Gradient", "Dim");
                    w.WriteLine("return;");
                }
            }
            foreach (bool ofQueries in new[] { true, false })
            {
                Projection[] terms = gradientProjections.Where(p => p.OfQueries == ofQueries).ToArray();
                if (terms.Length == 0)
                {
                    continue;
                }
                string dInputs = ofQueries ? "dQuery" : "dKeys", rows = ofQueries ? "queryRows" : "keyRows";
                using (w.Block($"if (product == {index++})"))
                {
                    w.WriteLine($"if ({dInputs}.IsEmpty) return;");
                    w.WriteLine($"// {(ofQueries ? "∂Q" : "∂K")} rows [firstRow, endRow) += " + string.Join(" then ", terms.Select(p => $"{p.Gradient} {p.WeightName}")) + ".");
                    w.WriteLine($"int firstRow = {rows} * part / parts, endRow = {rows} * (part + 1) / parts;");
                    w.WriteLine("if (endRow == firstRow) return;");
                    foreach (Projection term in terms)
                    {
                        w.WriteLine($"{productDim}(endRow - firstRow, Units, ref MemoryMarshal.GetReference(dProjections.Slice({term.At("firstRow * Units")})), Units, 1, ref MemoryMarshal.GetArrayDataReference({term.Weight}.Value), ref {dInputs}[firstRow * Dim]);");
                    }
                }
            }
        }

        // ---- Backward, per batch row ----
        if (chunkwise) { ChunkwiseBackwardRows(); } else {
        w.WriteLine();
        w.WriteLine("// Batch rows [first, end) of the backward: the queries from last to first, through the value path, the alignment's reverse");
        w.WriteLine("// pass and the energy, into ∂L/∂value, ∂L/∂kp" + (additive ? ", ∂L/∂qp and the row's share of ∂L/∂v" : " and ∂L/∂q") + " and of ∂L/∂r. Rows write disjoint parts of every output.");
        using (LayerScaffold.HotBlock(w, $"private void BackwardRows(Tape tape, int first, int end, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> valueSource, ReadOnlySpan<{T}> dContext, ReadOnlySpan<{T}> dWeights, Span<{T}> dQuery, Span<{T}> dValueTarget, Span<{T}> dKeys, Span<{T}> scratch)"))
        {
            w.WriteLine("int batch = tape.Batch, queryLength = tape.QueryLength, keyLength = tape.KeyLength;");
            ScratchViews();
            w.WriteLine($"Span<{T}> dKeyProjection = dProjections.Slice(0, batch * keyLength * Units);");
            if (additive)
            {
                w.WriteLine($"Span<{T}> dQueryProjection = dProjections.Slice(batch * keyLength * Units, batch * queryLength * Units);");
            }
            w.WriteLine($"Span<{T}> dEnergyBiasShares = scratch.Slice(scratch.Length - batch, batch);");
            w.WriteLine("// Per row: g = ∂L/∂αᵢ, the carry ∂L/∂αᵢ₋₁, ∂L/∂pᵢ, α₀ and the reverse pass's two rows.");
            LayerScaffold.DeclareScratch(w, element, "rowScratch", $"6 * keyLength{(additive ? extraUnits : "")}");
            using (w.Block("try"))
            {
                if (additive)
                {
                    ScoreVectorSetup("rowScratch.Slice(6 * keyLength, Units)");
                }
                w.WriteLine($"Span<{T}> g = rowScratch.Slice(0, keyLength);");
                w.WriteLine($"Span<{T}> carry = rowScratch.Slice(keyLength, keyLength);");
                w.WriteLine($"Span<{T}> dChoose = rowScratch.Slice(2 * keyLength, keyLength);");
                w.WriteLine($"Span<{T}> initial = rowScratch.Slice(3 * keyLength, keyLength);");
                w.WriteLine($"Span<{T}> reverseScratch = rowScratch.Slice(4 * keyLength, 2 * keyLength);");
                w.WriteLine("MonotonicAlignment.Initialize(initial, keyLength);");
                using (w.Block("for (int b = first; b < end; b++)"))
                {
                    RowClears();
                    if (additive)
                    {
                        w.WriteLine($"ref {T} dScoreVector = ref dScoreVectorShares[b * ScoreShareStride];");
                    }
                    w.WriteLine($"{T} dEnergyBias = 0;");
                    w.WriteLine("int rowPairs = queryLength * keyLength;");
                    w.WriteLine($"ReadOnlySpan<{T}> rowWeights = tape.Weights.AsSpan(b * rowPairs, rowPairs);");
                    w.WriteLine($"ReadOnlySpan<{T}> rowChoose = tape.Choose.AsSpan(b * rowPairs, rowPairs);");
                    w.WriteLine($"ref {T} valueStart = ref MemoryMarshal.GetReference(valueSource.Slice(b * keyLength * ValueDim, keyLength * ValueDim));");
                    w.WriteLine($"ref {T} keyProjectionStart = ref tape.KeyProjection[b * keyLength * Units];");
                    w.WriteLine($"ref {T} dKeyProjectionStart = ref dKeyProjection[b * keyLength * Units];");
                    w.WriteLine("carry.Clear(); // nothing flows back from beyond the last query");
                    using (w.Block("for (int i = queryLength - 1; i >= 0; i--)"))
                    {
                        w.WriteLine("int row = b * queryLength + i;");
                        w.WriteLine($"ReadOnlySpan<{T}> alignment = rowWeights.Slice(i * keyLength, keyLength);");
                        w.WriteLine($"ReadOnlySpan<{T}> p = rowChoose.Slice(i * keyLength, keyLength);");
                        w.WriteLine($"ReadOnlySpan<{T}> previous = i == 0 ? initial : rowWeights.Slice((i - 1) * keyLength, keyLength);");
                        w.WriteLine($"ref {T} dContextRow = ref MemoryMarshal.GetReference(dContext.Slice(row * ValueDim, ValueDim));");
                        w.WriteLine();
                        w.WriteLine("// gᵢⱼ = ∂L/∂cᵢ · valueⱼ + ∂L/∂αᵢⱼ + carryⱼ; the value path: ∂L/∂valueⱼ += αᵢⱼ ∂L/∂cᵢ.");
                        using (w.Block("for (int j = 0; j < keyLength; j++)"))
                        {
                            w.WriteLine($"ref {T} value = ref Unsafe.Add(ref valueStart, j * ValueDim);");
                            w.WriteLine($"g[j] = {dotValue}(ref dContextRow, ref value) + (dWeights.IsEmpty ? 0 : dWeights[row * keyLength + j]) + carry[j];");
                            using (w.Block("if (alignment[j] != 0 && !dValueTarget.IsEmpty)"))
                            {
                                w.WriteLine($"{axpyValue}(alignment[j], ref dContextRow, ref dValueTarget[(b * keyLength + j) * ValueDim]);");
                            }
                        }
                        w.WriteLine();
                        w.WriteLine(model.Parallel
                            ? "// The parallel form's reverse pass: ∂L/∂pᵢ and ∂L/∂αᵢ₋₁ (into carry, for step i − 1)."
                            : "// Reverse of the recursion, j from Tk − 1 down (G_Tk = 0): Gⱼ = gⱼ pⱼ + Gⱼ₊₁ (1 − pⱼ), ∂L/∂pⱼ = qⱼ (gⱼ − Gⱼ₊₁), ∂L/∂αᵢ₋₁,ⱼ = Gⱼ.");
                        w.WriteLine($"{alignBackward}<{T}>(p, previous, g, dChoose, carry, reverseScratch);");
                        w.WriteLine();
                        w.WriteLine("// ∂L/∂eᵢⱼ = ∂L/∂pᵢⱼ · pᵢⱼ (1 − pᵢⱼ), into r and through the energy.");
                        if (additive)
                        {
                            w.WriteLine($"ref {T} projectedQuery = ref tape.QueryProjection[row * Units];");
                            w.WriteLine($"ref {T} dProjectedQuery = ref dQueryProjection[row * Units];");
                        }
                        else
                        {
                            w.WriteLine($"ref {T} queryRow = ref MemoryMarshal.GetReference(query.Slice(row * Dim, Dim));");
                        }
                        using (w.Block("for (int j = 0; j < keyLength; j++)"))
                        {
                            w.WriteLine($"{T} pj = p[j];");
                            w.WriteLine($"{T} dEnergy = dChoose[j] * pj * (1 - pj);");
                            w.WriteLine("if (dEnergy == 0) continue; // masked (p = 0), saturated, or no gradient");
                            w.WriteLine("dEnergyBias += dEnergy;");
                            if (additive)
                            {
                                w.WriteLine($"{scoreBackward}(dEnergy, ref projectedQuery, ref Unsafe.Add(ref keyProjectionStart, j * Units), ref scoreVector,");
                                w.WriteLine("    ref dScoreVector, ref dProjectedQuery, ref Unsafe.Add(ref dKeyProjectionStart, j * Units));");
                            }
                            else
                            {
                                w.WriteLine("// eᵢⱼ = qᵢ · kpⱼ: ∂L/∂qᵢ += ∂L/∂eᵢⱼ kpⱼ, ∂L/∂kpⱼ += ∂L/∂eᵢⱼ qᵢ.");
                                w.WriteLine($"if (!dQuery.IsEmpty) {axpyDim}(dEnergy, ref Unsafe.Add(ref keyProjectionStart, j * Units), ref dQuery[row * Dim]);");
                                w.WriteLine($"{axpyDim}(dEnergy, ref queryRow, ref Unsafe.Add(ref dKeyProjectionStart, j * Units));");
                            }
                        }
                    }
                    w.WriteLine("dEnergyBiasShares[b] = dEnergyBias;");
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "rowScratch");
            }
        }
        }

        if (normalize)
        {
            w.WriteLine();
            w.WriteLine("// v′ = g v / ‖v‖ (weight normalisation, Salimans & Kingma 2016, as Raffel et al. use it); v′ = 0 when v = 0.");
            using (w.Block($"private void NormalizedScoreVector(Span<{T}> destination)"))
            {
                w.WriteLine($"{T}[] v = ScoreVector.Value;");
                w.WriteLine($"{T} norm = {T}.Sqrt(AttentionMath.Dot<{T}>(v, v));");
                w.WriteLine($"{T} factor = norm == 0 ? 0 : ScoreScale.Value[0] / norm;");
                using (w.Block("for (int u = 0; u < Units; u++)"))
                {
                    w.WriteLine("destination[u] = factor * v[u];");
                }
            }
            w.WriteLine();
            w.WriteLine("// From ∂L/∂v′: ∂L/∂g += ∂L/∂v′ · v̂ and ∂L/∂v += (g / ‖v‖)(∂L/∂v′ − (∂L/∂v′ · v̂) v̂), with v̂ = v / ‖v‖ (nothing when v = 0).");
            using (w.Block($"private void NormalizedScoreVectorBackward(ReadOnlySpan<{T}> dNormalized)"))
            {
                w.WriteLine($"{T}[] v = ScoreVector.Value;");
                w.WriteLine($"{T} norm = {T}.Sqrt(AttentionMath.Dot<{T}>(v, v));");
                w.WriteLine("if (norm == 0) return;");
                w.WriteLine($"{T} projection = AttentionMath.Dot<{T}>(dNormalized, v) / norm;");
                w.WriteLine("ScoreScale.Gradient[0] += projection;");
                w.WriteLine($"{T} factor = ScoreScale.Value[0] / norm;");
                using (w.Block("for (int u = 0; u < Units; u++)"))
                {
                    w.WriteLine("ScoreVector.Gradient[u] += factor * (dNormalized[u] - projection * v[u] / norm);");
                }
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
            w.WriteLine("Shapes.RequireLength(keys.Length, (long)batch * keyLength * Dim, nameof(keys), $\"[B={batch}, Tk={keyLength}, Dim={Dim}]\");");
            w.WriteLine("if (!keysAreValues) Shapes.RequireLength(values.Length, (long)batch * keyLength * ValueDim, nameof(values), $\"[B={batch}, Tk={keyLength}, ValueDim={ValueDim}]\");");
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

        w.WriteLine();
        using (w.Block($"private static void ThrowIfInvalidStep(int batch, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keyProjection, ReadOnlySpan<{T}> values, Span<{T}> context, ReadOnlySpan<bool> keyPadding)"))
        {
            w.WriteLine("Shapes.RequireAtLeast(batch, 0, nameof(batch));");
            w.WriteLine("Shapes.RequireAtLeast(keyLength, 1, nameof(keyLength));");
            w.WriteLine("Shapes.RequireLength(query.Length, (long)batch * Dim, nameof(query), $\"[B={batch}, Dim={Dim}]\");");
            w.WriteLine("Shapes.RequireLength(keyProjection.Length, (long)batch * keyLength * Units, nameof(keyProjection), $\"[B={batch}, Tk={keyLength}, Units={Units}]\");");
            w.WriteLine("Shapes.RequireLength(values.Length, (long)batch * keyLength * ValueDim, nameof(values), $\"[B={batch}, Tk={keyLength}, ValueDim={ValueDim}]\");");
            w.WriteLine("Shapes.RequireLength(context.Length, (long)batch * ValueDim, nameof(context), $\"[B={batch}, ValueDim={ValueDim}]\");");
            w.WriteLine("Shapes.RequireOptionalLength(keyPadding.Length, (long)batch * keyLength, nameof(keyPadding), $\"[B={batch}, Tk={keyLength}]\");");
            foreach (string input in new[] { "query", "keyProjection", "values" })
            {
                w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(context, {input}, nameof(context), nameof({input}));");
            }
        }
        // ======== MoChA (Chiu & Raffel 2018): the chunkwise variants, written only when ChunkSize ≥ 1 ========

        // The chunk energy uᵢⱼ of a (projected) query against a projected key: the monotonic energy's form, own parameters.
        string ChunkEnergy(string cq, string ckp) => additive ? $"{score}(ref {cq}, ref {ckp}, ref chunkScoreVector)" : $"{score}(ref {cq}, ref {ckp})";
        void ChunkScoreVectorSetup() => w.WriteLine($"ref {T} chunkScoreVector = ref MemoryMarshal.GetArrayDataReference(ChunkScoreVector.Value);");

        // cᵢ = Σⱼ weightⱼ valueⱼ over keys [first, end) of one batch row.
        void WriteContext(string weightsRow, string first, string end, string valueRef)
        {
            w.WriteLine("contextRow.Clear();");
            using (w.Block($"for (int j = {first}; j < {end}; j++)"))
            {
                using (w.Block($"if ({weightsRow}[j] != 0)"))
                {
                    w.WriteLine($"{axpyValue}({weightsRow}[j], ref {valueRef}, ref MemoryMarshal.GetReference(contextRow));");
                }
            }
        }

        void ChunkwiseForwardRows()
        {
            w.WriteLine("// For each batch row b in [first, end):");
            w.WriteLine("//   kpⱼ = " + (additive ? "W_k kⱼ + b" : "W kⱼ") + (additive ? ",  qpᵢ = W_q qᵢ" : "") + ", and the chunk energy's ckpⱼ = " + (additive ? "W_ck kⱼ + b_c,  cqpᵢ = W_cq qᵢ" : "W_c kⱼ"));
            w.WriteLine("//   then for each query i in order: pᵢ (ChooseRow), αᵢ from pᵢ and αᵢ₋₁ (α₀ = one-hot(0)), uᵢ (ChunkEnergyRow),");
            w.WriteLine("//   βᵢ from αᵢ and uᵢ (MoChA's expected chunkwise weights), cᵢ = Σⱼ βᵢⱼ valueⱼ.");
            using (LayerScaffold.HotBlock(w, $"private void ForwardRows(Tape? tape, Random? noise, int first, int end, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights, AttentionMask mask)"))
            {
                string projections = additive ? "keyLength * Units + queryLength * Units" : "keyLength * Units";
                w.WriteLine("// Without a tape: both energies' projections, p, u, α [Tq, Tk] and one row of β; always: α₀ and the chunk softmax's Mₖ, Dₖ.");
                LayerScaffold.DeclareScratch(w, element, "scratch", $"(tape is not null ? 0 : 2 * ({projections}) + 3 * keyLength + queryLength * keyLength) + 3 * keyLength{extraUnits}");
                using (w.Block("try"))
                {
                    w.WriteLine($"Span<{T}> initial = scratch.Slice(scratch.Length - 3 * keyLength{(normalize ? " - Units" : "")}, keyLength);");
                    w.WriteLine($"Span<{T}> normalizers = scratch.Slice(scratch.Length - 2 * keyLength{(normalize ? " - Units" : "")}, 2 * keyLength);");
                    if (additive)
                    {
                        ScoreVectorSetup("scratch.Slice(scratch.Length - Units, Units)");
                        ChunkScoreVectorSetup();
                    }
                    w.WriteLine("MonotonicAlignment.Initialize(initial, keyLength);");
                    using (w.Block("for (int b = first; b < end; b++)"))
                    {
                        w.WriteLine("int rowPairs = queryLength * keyLength;");
                        w.WriteLine($"Span<{T}> keyProjection = tape is not null ? tape.KeyProjection.AsSpan(b * keyLength * Units, keyLength * Units) : scratch.Slice(0, keyLength * Units);");
                        if (additive)
                        {
                            w.WriteLine($"Span<{T}> queryProjection = tape is not null ? tape.QueryProjection.AsSpan(b * queryLength * Units, queryLength * Units) : scratch.Slice(keyLength * Units, queryLength * Units);");
                        }
                        w.WriteLine($"Span<{T}> chunkKeyProjection = tape is not null ? tape.ChunkKeyProjection.AsSpan(b * keyLength * Units, keyLength * Units) : scratch.Slice({projections}, keyLength * Units);");
                        if (additive)
                        {
                            w.WriteLine($"Span<{T}> chunkQueryProjection = tape is not null ? tape.ChunkQueryProjection.AsSpan(b * queryLength * Units, queryLength * Units) : scratch.Slice({projections} + keyLength * Units, queryLength * Units);");
                        }
                        w.WriteLine($"int used = 2 * ({projections});");
                        w.WriteLine($"Span<{T}> choose = tape is not null ? tape.Choose.AsSpan(b * rowPairs, rowPairs) : scratch.Slice(used, keyLength);");
                        w.WriteLine($"Span<{T}> chunkEnergy = tape is not null ? tape.ChunkEnergy.AsSpan(b * rowPairs, rowPairs) : scratch.Slice(used + keyLength, keyLength);");
                        w.WriteLine($"Span<{T}> alignments = tape is not null ? tape.Alignment.AsSpan(b * rowPairs, rowPairs) : scratch.Slice(used + 2 * keyLength, rowPairs);");
                        w.WriteLine("bool everyRow = tape is not null || !weights.IsEmpty; // β of every query kept, or one row reused");
                        w.WriteLine($"Span<{T}> rowWeights = tape is not null ? tape.Weights.AsSpan(b * rowPairs, rowPairs)");
                        w.WriteLine("    : weights.IsEmpty ? scratch.Slice(used + 2 * keyLength + rowPairs, keyLength) : weights.Slice(b * rowPairs, rowPairs);");
                        w.WriteLine($"ReadOnlySpan<{T}> rowKeys = keys.Slice(b * keyLength * Dim, keyLength * Dim);");
                        w.WriteLine($"Project(keyLength, rowKeys, KeyWeight.Value, {(additive ? "ScoreBias.Value" : "null")}, keyProjection);");
                        w.WriteLine($"Project(keyLength, rowKeys, ChunkKeyWeight.Value, {(additive ? "ChunkScoreBias.Value" : "null")}, chunkKeyProjection);");
                        if (additive)
                        {
                            w.WriteLine($"ReadOnlySpan<{T}> rowQueries = query.Slice(b * queryLength * Dim, queryLength * Dim);");
                            w.WriteLine("Project(queryLength, rowQueries, QueryWeight.Value, null, queryProjection);");
                            w.WriteLine("Project(queryLength, rowQueries, ChunkQueryWeight.Value, null, chunkQueryProjection);");
                        }
                        else
                        {
                            w.WriteLine($"ReadOnlySpan<{T}> queryProjection = query.Slice(b * queryLength * Dim, queryLength * Dim); // both energies read qᵢ itself");
                            w.WriteLine($"ReadOnlySpan<{T}> chunkQueryProjection = queryProjection;");
                        }
                        w.WriteLine($"ref {T} valueStart = ref MemoryMarshal.GetReference(values.Slice(b * keyLength * ValueDim, keyLength * ValueDim));");
                        using (w.Block("for (int i = 0; i < queryLength; i++)"))
                        {
                            w.WriteLine($"Span<{T}> p = tape is not null ? choose.Slice(i * keyLength, keyLength) : choose;");
                            w.WriteLine($"ChooseRow(b, i, queryLength, keyLength, ref MemoryMarshal.GetReference(queryProjection.Slice(i * {queryRow}, {queryRow})), keyProjection, mask, noise, p{scoreArgument});");
                            w.WriteLine($"ReadOnlySpan<{T}> previous = i == 0 ? initial : alignments.Slice((i - 1) * keyLength, keyLength);");
                            w.WriteLine($"Span<{T}> alignment = alignments.Slice(i * keyLength, keyLength);");
                            w.WriteLine("// " + alignFormula);
                            w.WriteLine($"{align}<{T}>(p, previous, alignment);");
                            w.WriteLine($"Span<{T}> u = tape is not null ? chunkEnergy.Slice(i * keyLength, keyLength) : chunkEnergy;");
                            w.WriteLine($"ChunkEnergyRow(b, i, queryLength, 0, keyLength, ref MemoryMarshal.GetReference(chunkQueryProjection.Slice(i * {queryRow}, {queryRow})), chunkKeyProjection, mask, u{chunkScoreArgument});");
                            w.WriteLine($"Span<{T}> beta = everyRow ? rowWeights.Slice(i * keyLength, keyLength) : rowWeights;");
                            w.WriteLine("// βᵢⱼ = Σₖ₌ⱼ^{j+w−1} αᵢₖ exp(uᵢⱼ) / Σₗ₌ₖ₋w₊₁^{k} exp(uᵢₗ), each chunk's softmax shifted by its own maximum");
                            w.WriteLine($"ChunkwiseAttention.Expected<{T}>(alignment, u, ChunkSize, beta, normalizers);");
                            w.WriteLine("// cᵢ = Σⱼ βᵢⱼ valueⱼ");
                            w.WriteLine($"Span<{T}> contextRow = context.Slice((b * queryLength + i) * ValueDim, ValueDim);");
                            WriteContext("beta", "0", "keyLength", "Unsafe.Add(ref valueStart, j * ValueDim)");
                        }
                    }
                }
                using (w.Block("finally"))
                {
                    LayerScaffold.ReturnScratch(w, element, "scratch");
                }
            }

            w.WriteLine();
            w.WriteLine("// " + chunkEnergyComment + " for one query against the keys [from, to); uᵢⱼ = −∞ where the mask forbids j");
            w.WriteLine("// (ChunkwiseAttention gives such keys no weight). No r and no noise: a softmax does not see a constant shift.");
            using (LayerScaffold.HotBlock(w, $"private void ChunkEnergyRow(int b, int i, int queryLength, int from, int to, ref {T} chunkQuery, ReadOnlySpan<{T}> chunkKeyProjection, AttentionMask mask, Span<{T}> u{chunkScoreParameter})"))
            {
                w.WriteLine("int keyLength = u.Length;");
                w.WriteLine($"ref {T} chunkKeyProjectionStart = ref MemoryMarshal.GetReference(chunkKeyProjection);");
                w.WriteLine("bool masked = !mask.IsEmpty;");
                using (w.Block("for (int j = from; j < to; j++)"))
                {
                    w.WriteLine($"u[j] = masked && !mask.Allows(b, i, j, queryLength, keyLength) ? {T}.NegativeInfinity : {ChunkEnergy("chunkQuery", "Unsafe.Add(ref chunkKeyProjectionStart, j * Units)")};");
                }
            }
        }

        void ChunkwiseForwardHard()
        {
            using (LayerScaffold.HotBlock(w, $"public void ForwardHard(int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<int> positions, AttentionMask mask = default)"))
            {
                w.WriteLine("bool keysAreValues = values.IsEmpty;");
                w.WriteLine("ThrowIfInvalidForward(batch, queryLength, keyLength, query, keys, keysAreValues ? keys : values, keysAreValues, context, default, mask);");
                w.WriteLine("Shapes.RequireLength(positions.Length, (long)batch * queryLength, nameof(positions), $\"[B={batch}, Tq={queryLength}]\");");
                w.WriteLine($"ReadOnlySpan<{T}> valueSource = keysAreValues ? keys : values;");
                w.WriteLine("// Both energies' key projections, " + (additive ? "both query projections, " : "") + "the chunk energies and the chunk's softmax" + (normalize ? ", v′" : "") + ".");
                LayerScaffold.DeclareScratch(w, element, "scratch", additive ? $"2 * keyLength * Units + 2 * Units + 2 * keyLength{extraUnits}" : "2 * keyLength * Units + 2 * keyLength");
                using (w.Block("try"))
                {
                    w.WriteLine($"Span<{T}> keyProjection = scratch.Slice(0, keyLength * Units);");
                    w.WriteLine($"Span<{T}> chunkKeyProjection = scratch.Slice(keyLength * Units, keyLength * Units);");
                    w.WriteLine($"Span<{T}> u = scratch.Slice(2 * keyLength * Units, keyLength);");
                    w.WriteLine($"Span<{T}> chunkWeights = scratch.Slice(2 * keyLength * Units + keyLength, keyLength);");
                    if (additive)
                    {
                        w.WriteLine($"Span<{T}> projectedQuery = scratch.Slice(2 * keyLength * Units + 2 * keyLength, Units);");
                        w.WriteLine($"Span<{T}> chunkQuery = scratch.Slice(2 * keyLength * Units + 2 * keyLength + Units, Units);");
                        ScoreVectorSetup("scratch.Slice(2 * keyLength * Units + 2 * keyLength + 2 * Units, Units)");
                        ChunkScoreVectorSetup();
                    }
                    using (w.Block("for (int b = 0; b < batch; b++)"))
                    {
                        w.WriteLine($"ReadOnlySpan<{T}> rowKeys = keys.Slice(b * keyLength * Dim, keyLength * Dim);");
                        w.WriteLine($"Project(keyLength, rowKeys, KeyWeight.Value, {(additive ? "ScoreBias.Value" : "null")}, keyProjection);");
                        w.WriteLine($"Project(keyLength, rowKeys, ChunkKeyWeight.Value, {(additive ? "ChunkScoreBias.Value" : "null")}, chunkKeyProjection);");
                        w.WriteLine("int position = 0; // α₀ = one-hot(0)");
                        using (w.Block("for (int i = 0; i < queryLength; i++)"))
                        {
                            w.WriteLine($"ReadOnlySpan<{T}> queryRow = query.Slice((b * queryLength + i) * Dim, Dim);");
                            if (additive)
                            {
                                w.WriteLine("if (position >= 0) Project(1, queryRow, QueryWeight.Value, null, projectedQuery);");
                            }
                            else
                            {
                                w.WriteLine($"ReadOnlySpan<{T}> projectedQuery = queryRow, chunkQuery = queryRow;");
                            }
                            w.WriteLine($"position = HardChoice(b, i, queryLength, keyLength, position, ref MemoryMarshal.GetReference(projectedQuery), keyProjection, mask{scoreArgument});");
                            w.WriteLine("positions[b * queryLength + i] = position;");
                            w.WriteLine($"Span<{T}> contextRow = context.Slice((b * queryLength + i) * ValueDim, ValueDim);");
                            using (w.Block("if (position < 0)"))
                            {
                                w.WriteLine("contextRow.Clear();");
                                w.WriteLine("continue;");
                            }
                            w.WriteLine("// The chunk [tᵢ − w + 1, tᵢ] (clipped at 0): cᵢ = Σⱼ softmax(uᵢ)ⱼ valueⱼ over it; only its energies are computed.");
                            w.WriteLine("int chunkStart = Math.Max(0, position - ChunkSize + 1);");
                            if (additive)
                            {
                                w.WriteLine("Project(1, queryRow, ChunkQueryWeight.Value, null, chunkQuery);");
                            }
                            w.WriteLine($"ChunkEnergyRow(b, i, queryLength, chunkStart, position + 1, ref MemoryMarshal.GetReference(chunkQuery), chunkKeyProjection, mask, u{chunkScoreArgument});");
                            w.WriteLine($"ChunkwiseAttention.HardChunk<{T}>(u, ChunkSize, position, chunkWeights);");
                            WriteContext("chunkWeights", "chunkStart", "position + 1", "MemoryMarshal.GetReference(valueSource.Slice((b * keyLength + j) * ValueDim, ValueDim))");
                        }
                    }
                }
                using (w.Block("finally"))
                {
                    LayerScaffold.ReturnScratch(w, element, "scratch");
                }
            }
        }

        void ChunkwiseStep()
        {
            w.WriteLine();
            w.Summary(
                "One soft decoder step for streaming (MoChA): from the previous alignment αᵢ₋₁ (start from <see cref=\"InitialAlignment\"/>) and\n" +
                "this step's query, writes αᵢ, βᵢ (when asked for) and cᵢ = Σⱼ βᵢⱼ valueⱼ. The same numbers as row i of the whole-sequence\n" +
                "<c>Forward</c> (without noise).");
            w.WriteLine("/// <param name=\"batch\">B.</param>");
            w.WriteLine("/// <param name=\"keyLength\">Tk, at least 1.</param>");
            w.WriteLine("/// <param name=\"query\">This step's queries, [B, Dim].</param>");
            w.WriteLine("/// <param name=\"keyProjection\">[B, Tk, Units], from <see cref=\"ProjectKeys\"/>.</param>");
            w.WriteLine("/// <param name=\"chunkKeyProjection\">[B, Tk, Units], from <see cref=\"ProjectChunkKeys\"/>.</param>");
            w.WriteLine("/// <param name=\"values\">[B, Tk, ValueDim] (pass the keys when they are the values).</param>");
            w.WriteLine("/// <param name=\"previousAlignment\">αᵢ₋₁, [B, Tk].</param>");
            w.WriteLine("/// <param name=\"alignment\">αᵢ, [B, Tk], written; may be the same memory as <paramref name=\"previousAlignment\"/>.</param>");
            w.WriteLine("/// <param name=\"context\">cᵢ, [B, ValueDim], written.</param>");
            w.WriteLine("/// <param name=\"chunkWeights\">βᵢ, [B, Tk], written when not empty.</param>");
            w.WriteLine("/// <param name=\"keyPadding\">Optional [B, Tk], true = may attend.</param>");
            w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the shapes, or an output overlaps an input.</exception>");
            using (LayerScaffold.HotBlock(w, $"public void Step(int batch, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keyProjection, ReadOnlySpan<{T}> chunkKeyProjection, ReadOnlySpan<{T}> values, ReadOnlySpan<{T}> previousAlignment, Span<{T}> alignment, Span<{T}> context, Span<{T}> chunkWeights = default, ReadOnlySpan<bool> keyPadding = default)"))
            {
                w.WriteLine("ThrowIfInvalidStep(batch, keyLength, query, keyProjection, values, context, keyPadding);");
                w.WriteLine("Shapes.RequireLength(chunkKeyProjection.Length, (long)batch * keyLength * Units, nameof(chunkKeyProjection), $\"[B={batch}, Tk={keyLength}, Units={Units}]\");");
                w.WriteLine("Shapes.RequireLength(previousAlignment.Length, (long)batch * keyLength, nameof(previousAlignment), $\"[B={batch}, Tk={keyLength}]\");");
                w.WriteLine("Shapes.RequireLength(alignment.Length, (long)batch * keyLength, nameof(alignment), $\"[B={batch}, Tk={keyLength}]\");");
                w.WriteLine("Shapes.RequireOptionalLength(chunkWeights.Length, (long)batch * keyLength, nameof(chunkWeights), $\"[B={batch}, Tk={keyLength}]\");");
                foreach (string output in new[] { "alignment", "chunkWeights" })
                {
                    foreach (string input in new[] { "query", "keyProjection", "chunkKeyProjection", "values" })
                    {
                        w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>({output}, {input}, nameof({output}), nameof({input}));");
                    }
                }
                using (w.Block("if (!alignment.Overlaps(previousAlignment, out int offset) || offset != 0)"))
                {
                    w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(alignment, previousAlignment, nameof(alignment), nameof(previousAlignment));");
                }
                w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(context, chunkKeyProjection, nameof(context), nameof(chunkKeyProjection));");
                w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(context, previousAlignment, nameof(context), nameof(previousAlignment));");
                w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(context, alignment, nameof(context), nameof(alignment));");
                w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(chunkWeights, previousAlignment, nameof(chunkWeights), nameof(previousAlignment));");
                w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(chunkWeights, alignment, nameof(chunkWeights), nameof(alignment));");
                w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(chunkWeights, context, nameof(chunkWeights), nameof(context));");
                w.WriteLine("var mask = AttentionMask.FromKeyPadding(keyPadding);");
                w.WriteLine("// p, u, β, the chunk softmax's Mₖ and Dₖ" + (additive ? ", both query projections" : "") + (normalize ? ", v′" : "") + ".");
                LayerScaffold.DeclareScratch(w, element, "scratch", additive ? $"5 * keyLength + 2 * Units{extraUnits}" : "5 * keyLength");
                using (w.Block("try"))
                {
                    w.WriteLine($"Span<{T}> p = scratch.Slice(0, keyLength);");
                    w.WriteLine($"Span<{T}> u = scratch.Slice(keyLength, keyLength);");
                    w.WriteLine($"Span<{T}> betaScratch = scratch.Slice(2 * keyLength, keyLength);");
                    w.WriteLine($"Span<{T}> normalizers = scratch.Slice(3 * keyLength, 2 * keyLength);");
                    if (additive)
                    {
                        w.WriteLine($"Span<{T}> projectedQuery = scratch.Slice(5 * keyLength, Units);");
                        w.WriteLine($"Span<{T}> chunkQuery = scratch.Slice(5 * keyLength + Units, Units);");
                        ScoreVectorSetup("scratch.Slice(5 * keyLength + 2 * Units, Units)");
                        ChunkScoreVectorSetup();
                    }
                    using (w.Block("for (int b = 0; b < batch; b++)"))
                    {
                        w.WriteLine($"ReadOnlySpan<{T}> queryRow = query.Slice(b * Dim, Dim);");
                        if (additive)
                        {
                            w.WriteLine("Project(1, queryRow, QueryWeight.Value, null, projectedQuery);");
                            w.WriteLine("Project(1, queryRow, ChunkQueryWeight.Value, null, chunkQuery);");
                        }
                        else
                        {
                            w.WriteLine($"ReadOnlySpan<{T}> projectedQuery = queryRow, chunkQuery = queryRow;");
                        }
                        w.WriteLine($"ChooseRow(b, 0, 1, keyLength, ref MemoryMarshal.GetReference(projectedQuery), keyProjection.Slice(b * keyLength * Units, keyLength * Units), mask, null, p{scoreArgument});");
                        w.WriteLine($"Span<{T}> row = alignment.Slice(b * keyLength, keyLength);");
                        w.WriteLine("// " + alignFormula);
                        w.WriteLine($"{align}<{T}>(p, previousAlignment.Slice(b * keyLength, keyLength), row);");
                        w.WriteLine($"ChunkEnergyRow(b, 0, 1, 0, keyLength, ref MemoryMarshal.GetReference(chunkQuery), chunkKeyProjection.Slice(b * keyLength * Units, keyLength * Units), mask, u{chunkScoreArgument});");
                        w.WriteLine($"Span<{T}> beta = chunkWeights.IsEmpty ? betaScratch : chunkWeights.Slice(b * keyLength, keyLength);");
                        w.WriteLine("// βᵢⱼ = Σₖ₌ⱼ^{j+w−1} αᵢₖ exp(uᵢⱼ) / Σₗ₌ₖ₋w₊₁^{k} exp(uᵢₗ)");
                        w.WriteLine($"ChunkwiseAttention.Expected<{T}>(row, u, ChunkSize, beta, normalizers);");
                        w.WriteLine($"Span<{T}> contextRow = context.Slice(b * ValueDim, ValueDim);");
                        WriteContext("beta", "0", "keyLength", "MemoryMarshal.GetReference(values.Slice((b * keyLength + j) * ValueDim, ValueDim))");
                    }
                }
                using (w.Block("finally"))
                {
                    LayerScaffold.ReturnScratch(w, element, "scratch");
                }
            }
        }

        void ChunkwiseStepHard()
        {
            w.WriteLine();
            w.Summary(
                "One hard decoder step for streaming (MoChA): from each row's previously attended key (0 before the first step, −1 once a\n" +
                "step attended nothing) scan forward to the first allowed j with pᵢⱼ ≥ 0.5, then attend a softmax of uᵢ over the chunk of\n" +
                "w keys ending there; write cᵢ (zero for none) and update the position. The same numbers as row i of <see cref=\"ForwardHard\"/>.");
            w.WriteLine("/// <param name=\"batch\">B.</param>");
            w.WriteLine("/// <param name=\"keyLength\">Tk, at least 1.</param>");
            w.WriteLine("/// <param name=\"query\">This step's queries, [B, Dim].</param>");
            w.WriteLine("/// <param name=\"keyProjection\">[B, Tk, Units], from <see cref=\"ProjectKeys\"/>.</param>");
            w.WriteLine("/// <param name=\"chunkKeyProjection\">[B, Tk, Units], from <see cref=\"ProjectChunkKeys\"/>.</param>");
            w.WriteLine("/// <param name=\"values\">[B, Tk, ValueDim] (pass the keys when they are the values).</param>");
            w.WriteLine("/// <param name=\"position\">[B]: in, the previously attended key (0 at the start, −1 for none); out, this step's (never smaller, or −1).</param>");
            w.WriteLine("/// <param name=\"context\">cᵢ, [B, ValueDim], written.</param>");
            w.WriteLine("/// <param name=\"keyPadding\">Optional [B, Tk], true = may attend.</param>");
            w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the shapes, a position is out of range, or an output overlaps an input.</exception>");
            using (LayerScaffold.HotBlock(w, $"public void StepHard(int batch, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keyProjection, ReadOnlySpan<{T}> chunkKeyProjection, ReadOnlySpan<{T}> values, Span<int> position, Span<{T}> context, ReadOnlySpan<bool> keyPadding = default)"))
            {
                w.WriteLine("ThrowIfInvalidStep(batch, keyLength, query, keyProjection, values, context, keyPadding);");
                w.WriteLine("Shapes.RequireLength(chunkKeyProjection.Length, (long)batch * keyLength * Units, nameof(chunkKeyProjection), $\"[B={batch}, Tk={keyLength}, Units={Units}]\");");
                w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(context, chunkKeyProjection, nameof(context), nameof(chunkKeyProjection));");
                w.WriteLine("Shapes.RequireLength(position.Length, batch, nameof(position), $\"[B={batch}]\");");
                using (w.Block("for (int b = 0; b < batch; b++)"))
                {
                    using (w.Block("if (position[b] < -1 || position[b] >= keyLength)"))
                    {
                        w.WriteLine("throw new ArgumentException($\"'position' must hold key indices in [-1, {keyLength - 1}], but position[{b}] is {position[b]}.\", nameof(position));");
                    }
                }
                w.WriteLine("var mask = AttentionMask.FromKeyPadding(keyPadding);");
                LayerScaffold.DeclareScratch(w, element, "scratch", additive ? $"2 * keyLength + 2 * Units{extraUnits}" : "2 * keyLength");
                using (w.Block("try"))
                {
                    w.WriteLine($"Span<{T}> u = scratch.Slice(0, keyLength);");
                    w.WriteLine($"Span<{T}> chunkWeights = scratch.Slice(keyLength, keyLength);");
                    if (additive)
                    {
                        w.WriteLine($"Span<{T}> projectedQuery = scratch.Slice(2 * keyLength, Units);");
                        w.WriteLine($"Span<{T}> chunkQuery = scratch.Slice(2 * keyLength + Units, Units);");
                        ScoreVectorSetup("scratch.Slice(2 * keyLength + 2 * Units, Units)");
                        ChunkScoreVectorSetup();
                    }
                    using (w.Block("for (int b = 0; b < batch; b++)"))
                    {
                        w.WriteLine($"ReadOnlySpan<{T}> queryRow = query.Slice(b * Dim, Dim);");
                        if (additive)
                        {
                            w.WriteLine("if (position[b] >= 0) Project(1, queryRow, QueryWeight.Value, null, projectedQuery);");
                        }
                        else
                        {
                            w.WriteLine($"ReadOnlySpan<{T}> projectedQuery = queryRow, chunkQuery = queryRow;");
                        }
                        w.WriteLine($"ReadOnlySpan<{T}> rowChunkKeys = chunkKeyProjection.Slice(b * keyLength * Units, keyLength * Units);");
                        w.WriteLine($"int chosen = HardChoice(b, 0, 1, keyLength, position[b], ref MemoryMarshal.GetReference(projectedQuery), keyProjection.Slice(b * keyLength * Units, keyLength * Units), mask{scoreArgument});");
                        w.WriteLine("position[b] = chosen;");
                        w.WriteLine($"Span<{T}> contextRow = context.Slice(b * ValueDim, ValueDim);");
                        using (w.Block("if (chosen < 0)"))
                        {
                            w.WriteLine("contextRow.Clear();");
                            w.WriteLine("continue;");
                        }
                        w.WriteLine("int chunkStart = Math.Max(0, chosen - ChunkSize + 1);");
                        if (additive)
                        {
                            w.WriteLine("Project(1, queryRow, ChunkQueryWeight.Value, null, chunkQuery);");
                        }
                        w.WriteLine($"ChunkEnergyRow(b, 0, 1, chunkStart, chosen + 1, ref MemoryMarshal.GetReference(chunkQuery), rowChunkKeys, mask, u{chunkScoreArgument});");
                        w.WriteLine($"ChunkwiseAttention.HardChunk<{T}>(u, ChunkSize, chosen, chunkWeights);");
                        WriteContext("chunkWeights", "chunkStart", "chosen + 1", "MemoryMarshal.GetReference(values.Slice((b * keyLength + j) * ValueDim, ValueDim))");
                    }
                }
                using (w.Block("finally"))
                {
                    LayerScaffold.ReturnScratch(w, element, "scratch");
                }
            }
        }

        void ChunkwiseBackwardRows()
        {
            string extra = additive ? " + batch * queryLength * Units" : "";
            w.WriteLine();
            w.WriteLine("// Batch rows [first, end) of the backward (MoChA): the queries from last to first, through the value path (β), MoChA's");
            w.WriteLine("// reverse pass into ∂L/∂α and ∂L/∂u, the alignment's reverse pass, and both energies. Rows write disjoint parts of every output.");
            using (LayerScaffold.HotBlock(w, $"private void BackwardRows(Tape tape, int first, int end, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> valueSource, ReadOnlySpan<{T}> dContext, ReadOnlySpan<{T}> dWeights, Span<{T}> dQuery, Span<{T}> dValueTarget, Span<{T}> dKeys, Span<{T}> scratch)"))
            {
                w.WriteLine("int batch = tape.Batch, queryLength = tape.QueryLength, keyLength = tape.KeyLength;");
                ScratchViews();
                w.WriteLine($"Span<{T}> dKeyProjection = dProjections.Slice(0, batch * keyLength * Units);");
                if (additive)
                {
                    w.WriteLine($"Span<{T}> dQueryProjection = dProjections.Slice(batch * keyLength * Units, batch * queryLength * Units);");
                }
                w.WriteLine($"int chunkStart = batch * keyLength * Units{extra};");
                w.WriteLine($"Span<{T}> dChunkKeyProjection = dProjections.Slice(chunkStart, batch * keyLength * Units);");
                if (additive)
                {
                    w.WriteLine($"Span<{T}> dChunkQueryProjection = dProjections.Slice(chunkStart + batch * keyLength * Units, batch * queryLength * Units);");
                }
                w.WriteLine($"Span<{T}> dEnergyBiasShares = scratch.Slice(scratch.Length - batch, batch);");
                w.WriteLine("// Per row: g = ∂L/∂αᵢ, the carry ∂L/∂αᵢ₋₁, ∂L/∂pᵢ, α₀, the reverse pass's two rows, ∂L/∂βᵢ, ∂L/∂uᵢ, Mₖ and Dₖ.");
                LayerScaffold.DeclareScratch(w, element, "rowScratch", $"10 * keyLength{(additive ? extraUnits : "")}");
                using (w.Block("try"))
                {
                    if (additive)
                    {
                        ScoreVectorSetup("rowScratch.Slice(10 * keyLength, Units)");
                        ChunkScoreVectorSetup();
                    }
                    w.WriteLine($"Span<{T}> g = rowScratch.Slice(0, keyLength);");
                    w.WriteLine($"Span<{T}> carry = rowScratch.Slice(keyLength, keyLength);");
                    w.WriteLine($"Span<{T}> dChoose = rowScratch.Slice(2 * keyLength, keyLength);");
                    w.WriteLine($"Span<{T}> initial = rowScratch.Slice(3 * keyLength, keyLength);");
                    w.WriteLine($"Span<{T}> reverseScratch = rowScratch.Slice(4 * keyLength, 2 * keyLength);");
                    w.WriteLine($"Span<{T}> dBeta = rowScratch.Slice(6 * keyLength, keyLength);");
                    w.WriteLine($"Span<{T}> dChunkEnergy = rowScratch.Slice(7 * keyLength, keyLength);");
                    w.WriteLine($"Span<{T}> normalizers = rowScratch.Slice(8 * keyLength, 2 * keyLength);");
                    w.WriteLine("MonotonicAlignment.Initialize(initial, keyLength);");
                    using (w.Block("for (int b = first; b < end; b++)"))
                    {
                        RowClears();
                        if (additive)
                        {
                            w.WriteLine($"ref {T} dScoreVector = ref dScoreVectorShares[b * ScoreShareStride];");
                            w.WriteLine($"ref {T} dChunkScoreVector = ref dChunkScoreVectorShares[b * ScoreShareStride];");
                        }
                        w.WriteLine($"{T} dEnergyBias = 0;");
                        w.WriteLine("int rowPairs = queryLength * keyLength;");
                        w.WriteLine($"ReadOnlySpan<{T}> rowAlignment = tape.Alignment.AsSpan(b * rowPairs, rowPairs);");
                        w.WriteLine($"ReadOnlySpan<{T}> rowWeights = tape.Weights.AsSpan(b * rowPairs, rowPairs);");
                        w.WriteLine($"ReadOnlySpan<{T}> rowChoose = tape.Choose.AsSpan(b * rowPairs, rowPairs);");
                        w.WriteLine($"ReadOnlySpan<{T}> rowChunkEnergy = tape.ChunkEnergy.AsSpan(b * rowPairs, rowPairs);");
                        w.WriteLine($"ref {T} valueStart = ref MemoryMarshal.GetReference(valueSource.Slice(b * keyLength * ValueDim, keyLength * ValueDim));");
                        w.WriteLine($"ref {T} keyProjectionStart = ref tape.KeyProjection[b * keyLength * Units];");
                        w.WriteLine($"ref {T} dKeyProjectionStart = ref dKeyProjection[b * keyLength * Units];");
                        w.WriteLine($"ref {T} chunkKeyProjectionStart = ref tape.ChunkKeyProjection[b * keyLength * Units];");
                        w.WriteLine($"ref {T} dChunkKeyProjectionStart = ref dChunkKeyProjection[b * keyLength * Units];");
                        w.WriteLine("carry.Clear(); // nothing flows back from beyond the last query");
                        using (w.Block("for (int i = queryLength - 1; i >= 0; i--)"))
                        {
                            w.WriteLine("int row = b * queryLength + i;");
                            w.WriteLine($"ReadOnlySpan<{T}> alignment = rowAlignment.Slice(i * keyLength, keyLength);");
                            w.WriteLine($"ReadOnlySpan<{T}> beta = rowWeights.Slice(i * keyLength, keyLength);");
                            w.WriteLine($"ReadOnlySpan<{T}> u = rowChunkEnergy.Slice(i * keyLength, keyLength);");
                            w.WriteLine($"ReadOnlySpan<{T}> p = rowChoose.Slice(i * keyLength, keyLength);");
                            w.WriteLine($"ReadOnlySpan<{T}> previous = i == 0 ? initial : rowAlignment.Slice((i - 1) * keyLength, keyLength);");
                            w.WriteLine($"ref {T} dContextRow = ref MemoryMarshal.GetReference(dContext.Slice(row * ValueDim, ValueDim));");
                            w.WriteLine();
                            w.WriteLine("// ∂L/∂βᵢⱼ = ∂L/∂cᵢ · valueⱼ + ∂L/∂βᵢⱼ (dWeights); the value path: ∂L/∂valueⱼ += βᵢⱼ ∂L/∂cᵢ.");
                            using (w.Block("for (int j = 0; j < keyLength; j++)"))
                            {
                                w.WriteLine($"ref {T} value = ref Unsafe.Add(ref valueStart, j * ValueDim);");
                                w.WriteLine($"dBeta[j] = {dotValue}(ref dContextRow, ref value) + (dWeights.IsEmpty ? 0 : dWeights[row * keyLength + j]);");
                                using (w.Block("if (beta[j] != 0 && !dValueTarget.IsEmpty)"))
                                {
                                    w.WriteLine($"{axpyValue}(beta[j], ref dContextRow, ref dValueTarget[(b * keyLength + j) * ValueDim]);");
                                }
                            }
                            w.WriteLine();
                            w.WriteLine("// MoChA's reverse pass, with sₖₗ the softmax of chunk k at key l: ∂L/∂αᵢₖ = Σₗ sₖₗ ∂L/∂βᵢₗ over chunk k,");
                            w.WriteLine("// ∂L/∂uᵢₗ = Σₖ αᵢₖ sₖₗ (∂L/∂βᵢₗ − ∂L/∂αᵢₖ) over the chunks k that contain l. Then gᵢ = ∂L/∂αᵢ + carry.");
                            w.WriteLine($"ChunkwiseAttention.ExpectedBackward<{T}>(alignment, u, ChunkSize, dBeta, g, dChunkEnergy, normalizers);");
                            using (w.Block("for (int j = 0; j < keyLength; j++)"))
                            {
                                w.WriteLine("g[j] += carry[j];");
                            }
                            w.WriteLine();
                            w.WriteLine(model.Parallel
                                ? "// The parallel form's reverse pass: ∂L/∂pᵢ and ∂L/∂αᵢ₋₁ (into carry, for step i − 1)."
                                : "// Reverse of the recursion, j from Tk − 1 down (G_Tk = 0): Gⱼ = gⱼ pⱼ + Gⱼ₊₁ (1 − pⱼ), ∂L/∂pⱼ = qⱼ (gⱼ − Gⱼ₊₁), ∂L/∂αᵢ₋₁,ⱼ = Gⱼ.");
                            w.WriteLine($"{alignBackward}<{T}>(p, previous, g, dChoose, carry, reverseScratch);");
                            w.WriteLine();
                            w.WriteLine("// ∂L/∂eᵢⱼ = ∂L/∂pᵢⱼ · pᵢⱼ (1 − pᵢⱼ), into r and through the monotonic energy; ∂L/∂uᵢⱼ through the chunk energy.");
                            if (additive)
                            {
                                w.WriteLine($"ref {T} projectedQuery = ref tape.QueryProjection[row * Units];");
                                w.WriteLine($"ref {T} dProjectedQuery = ref dQueryProjection[row * Units];");
                                w.WriteLine($"ref {T} chunkQuery = ref tape.ChunkQueryProjection[row * Units];");
                                w.WriteLine($"ref {T} dChunkQuery = ref dChunkQueryProjection[row * Units];");
                            }
                            else
                            {
                                w.WriteLine($"ref {T} queryRow = ref MemoryMarshal.GetReference(query.Slice(row * Dim, Dim));");
                            }
                            using (w.Block("for (int j = 0; j < keyLength; j++)"))
                            {
                                w.WriteLine($"{T} du = dChunkEnergy[j];");
                                using (w.Block("if (du != 0) // zero for masked keys (u = −∞) and keys in no chunk with mass"))
                                {
                                    if (additive)
                                    {
                                        w.WriteLine($"{scoreBackward}(du, ref chunkQuery, ref Unsafe.Add(ref chunkKeyProjectionStart, j * Units), ref chunkScoreVector,");
                                        w.WriteLine("    ref dChunkScoreVector, ref dChunkQuery, ref Unsafe.Add(ref dChunkKeyProjectionStart, j * Units));");
                                    }
                                    else
                                    {
                                        w.WriteLine("// uᵢⱼ = qᵢ · ckpⱼ: ∂L/∂qᵢ += ∂L/∂uᵢⱼ ckpⱼ, ∂L/∂ckpⱼ += ∂L/∂uᵢⱼ qᵢ.");
                                        w.WriteLine($"if (!dQuery.IsEmpty) {axpyDim}(du, ref Unsafe.Add(ref chunkKeyProjectionStart, j * Units), ref dQuery[row * Dim]);");
                                        w.WriteLine($"{axpyDim}(du, ref queryRow, ref Unsafe.Add(ref dChunkKeyProjectionStart, j * Units));");
                                    }
                                }
                                w.WriteLine($"{T} pj = p[j];");
                                w.WriteLine($"{T} dEnergy = dChoose[j] * pj * (1 - pj);");
                                w.WriteLine("if (dEnergy == 0) continue; // masked (p = 0), saturated, or no gradient");
                                w.WriteLine("dEnergyBias += dEnergy;");
                                if (additive)
                                {
                                    w.WriteLine($"{scoreBackward}(dEnergy, ref projectedQuery, ref Unsafe.Add(ref keyProjectionStart, j * Units), ref scoreVector,");
                                    w.WriteLine("    ref dScoreVector, ref dProjectedQuery, ref Unsafe.Add(ref dKeyProjectionStart, j * Units));");
                                }
                                else
                                {
                                    w.WriteLine("// eᵢⱼ = qᵢ · kpⱼ: ∂L/∂qᵢ += ∂L/∂eᵢⱼ kpⱼ, ∂L/∂kpⱼ += ∂L/∂eᵢⱼ qᵢ.");
                                    w.WriteLine($"if (!dQuery.IsEmpty) {axpyDim}(dEnergy, ref Unsafe.Add(ref keyProjectionStart, j * Units), ref dQuery[row * Dim]);");
                                    w.WriteLine($"{axpyDim}(dEnergy, ref queryRow, ref Unsafe.Add(ref dKeyProjectionStart, j * Units));");
                                }
                            }
                        }
                        w.WriteLine("dEnergyBiasShares[b] = dEnergyBias;");
                    }
                }
                using (w.Block("finally"))
                {
                    LayerScaffold.ReturnScratch(w, element, "rowScratch");
                }
            }
        }
    }

    // A projection y = x Wᵀ of the queries or of the keys whose ∂y the backward's scratch holds at Offset (an expression).
    private sealed record Projection(string Weight, string WeightName, string Gradient, bool OfQueries, string Offset)
    {
        public string Rows => OfQueries ? "queryRows" : "keyRows";
        public string WeightGradient => "∂L/∂" + WeightName;
        public string At(string offset) => Offset == "0" ? offset : $"{Offset} + {offset}";
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
        w.WriteLine("/// <param name=\"weights\">The alignment α, [B, Tq, Tk], written when not empty" + (tape ? " (the tape keeps its own copy)" : "") + ".</param>");
        w.WriteLine("/// <param name=\"mask\">Which keys each query may attend to (true = may attend): pᵢⱼ = 0 where it forbids j, so the alignment mass");
        w.WriteLine("/// passes that key by; a fully masked query gets zero weights and a zero context, and so does every later query of its row.</param>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the shapes, Tk &lt; 1, or an output overlaps an input.</exception>");
    }
}
