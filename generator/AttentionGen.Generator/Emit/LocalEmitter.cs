using System.Collections.Generic;
using System.Globalization;
using AttentionGen.Generator.Model;

namespace AttentionGen.Generator.Emit;

/// <summary>
/// Writes a <c>[LocalAttention]</c> layer (Luong et al. 2015, §3.2): each query t attends to the keys of the window
/// [pₜ − D, pₜ + D] ∩ [0, Tk − 1] only. pₜ is t (local-m, aligned to the end when Tq ≠ Tk) or learned (local-p:
/// pₜ = S · sigmoid(v_pᵀ tanh(W_p hₜ)), and the window's softmax is multiplied by a Gaussian centred on pₜ). The query-side
/// projections (W hₜ for the general score, tanh(W_p hₜ) for the predictor) are shared register-blocked matrix products;
/// inside the window every score is one compile-time-length dot product and every context update one axpy, so the
/// attention itself costs O(Tq · D · (Dk + Dv)), not O(Tq · Tk · d).
/// </summary>
internal static class LocalEmitter
{
    public static string Emit(LocalModel model)
    {
        ElementType element = model.Element;
        string T = element.Keyword;
        var constants = new List<LayerConstant>
        {
            new("Dim", model.Dim, "Dq: the dimension of each query (the target state hₜ)."),
            new("KeyDim", model.KeyDim, "Dk: the dimension of each key (the source state h̄ₛ)."),
            new("ValueDim", model.ValueDim, "Dv: the dimension of each value and of the context."),
            new("Window", model.Window, "D: the half-width of the window; query t sees the keys s ∈ [pₜ − D, pₜ + D]."),
            new("WindowSize", model.WindowSize, "2D + 1: the most keys one window holds."),
        };
        var parameters = new List<LayerParameter>();
        if (model.General)
        {
            parameters.Add(new("ScoreWeight", "score_weight", new[] { "KeyDim", "Dim" },
                "W_a: maps a query into key space, score(hₜ, h̄ₛ) = (W_a hₜ)ᵀ h̄ₛ (Luong's general score hₜᵀ W_aᵀ h̄ₛ; PyTorch <c>nn.Linear(Dim, KeyDim, bias: false).weight</c>).",
                $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Dim, fanOut: KeyDim, random);"));
        }
        if (model.Concat)
        {
            constants.Add(new("Units", model.Units, "The hidden size of the concat score (rows of W_a, length of v_a)."));
            parameters.Add(new("ScoreWeight", "score_weight", new[] { "Units", "Dim + KeyDim" },
                "W_a: the concat score's projection of [hₜ; h̄ₛ], query columns first, score(hₜ, h̄ₛ) = v_aᵀ tanh(W_a [hₜ; h̄ₛ]) (PyTorch <c>nn.Linear(Dim + KeyDim, Units, bias: false).weight</c>).",
                $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Dim + KeyDim, fanOut: Units, random);"));
            parameters.Add(new("ScoreVector", "score_vector", new[] { "Units" },
                "v_a: reduces tanh(W_a [hₜ; h̄ₛ]) to a score (PyTorch <c>nn.Linear(Units, 1, bias: false).weight</c> flattened).",
                $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Units, fanOut: 1, random);"));
        }
        if (model.Predictive)
        {
            constants.Add(new("PredictorUnits", model.PredictorUnits, "The hidden size of the position predictor (rows of W_p)."));
            parameters.Add(new("PredictorWeight", "predictor_weight", new[] { "PredictorUnits", "Dim" },
                "W_p: the position predictor's projection, pₜ = S · sigmoid(v_pᵀ tanh(W_p hₜ)) (PyTorch <c>nn.Linear(Dim, PredictorUnits, bias: false).weight</c>).",
                $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: Dim, fanOut: PredictorUnits, random);"));
            parameters.Add(new("PredictorVector", "predictor_vector", new[] { "PredictorUnits" },
                "v_p: the position predictor's output vector (PyTorch <c>nn.Linear(PredictorUnits, 1, bias: false).weight</c> flattened).",
                $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: PredictorUnits, fanOut: 1, random);"));
        }

        string scoreText = ScoreText(model.Score);
        string summary =
            $"Local attention (Luong et al. 2015, §3.2), {(model.Predictive ? "local-p" : "local-m")}, generated for Dq = {model.Dim}, Dk = {model.KeyDim}, Dv = {model.ValueDim}, D = {model.Window}" +
            $"{(model.Predictive ? $", predictor units {model.PredictorUnits}" : "")}{(model.Concat ? $", score units {model.Units}" : "")}, {T}, score {model.Score}:\n" +
            (model.Predictive
                ? "pₜ = S · sigmoid(v_pᵀ tanh(W_p hₜ)) with S = Tk; the window is centred on round(pₜ) = ⌊pₜ + ½⌋;\n"
                : "pₜ = t + Tk − Tq (t itself when Tq = Tk: the diagonal aligned to the end, like the causal mask);\n") +
            $"for s in [pₜ − D, pₜ + D] ∩ [0, Tk − 1]: eₜ(s) = {scoreText}, aₜ = softmax over the window of eₜ (masked)" +
            (model.Predictive ? ",\nthen aₜ(s) ← aₜ(s) · exp(−(s − pₜ)² / (2σ²)), σ = D / 2 (the weights no longer sum to 1)" : "") +
            "; cₜ = Σₛ aₜ(s) valueₛ.\n" +
            "Shapes: query [B, Tq, Dim], keys [B, Tk, KeyDim], values [B, Tk, ValueDim] (empty: the keys are the values),\n" +
            "context [B, Tq, ValueDim], weights [B, Tq, Tk] (zero outside each window), positions [B, Tq] (pₜ). Runtime lengths B, Tq, Tk; Tk ≥ 1.";

        return LayerScaffold.Write(model.Target, element, summary, constants, parameters, (writer, kernels) => EmitBody(writer, kernels, model));
    }

    private static string ScoreText(string score) => score switch
    {
        "Dot" => "hₜᵀ h̄ₛ",
        "ScaledDot" => "hₜᵀ h̄ₛ / √Dk",
        "Concat" => "v_aᵀ tanh(W_a [hₜ; h̄ₛ])",
        _ => "(W_a hₜ)ᵀ h̄ₛ",
    };

    private static string Literal(ElementType element, double value)
        => element.Size == 4
            ? ((float)value).ToString("R", CultureInfo.InvariantCulture) + "f"
            : value.ToString("R", CultureInfo.InvariantCulture);

    private static void EmitBody(SourceWriter w, Kernels kernels, LocalModel model)
    {
        ElementType element = model.Element;
        string T = element.Keyword;
        string M = element.Size == 4 ? "MathF" : "Math";
        string name = model.Target.Name;
        bool general = model.General, predictive = model.Predictive, concat = model.Concat;
        string scoreDot = concat ? "" : kernels.Dot(model.KeyDim); // eₜ(s) = q'ₜᵀ kₛ
        string valueDot = kernels.Dot(model.ValueDim);            // ∂aₜ(s) = ∂cₜᵀ vₛ
        string valueAxpy = kernels.MultiplyAdd(model.ValueDim);   // cₜ += aₜ(s) vₛ, ∂vₛ += aₜ(s) ∂cₜ
        string keyAxpy = concat ? "" : kernels.MultiplyAdd(model.KeyDim); // ∂q'ₜ += ∂eₜ(s) kₛ, ∂kₛ += ∂eₜ(s) q'ₜ
        bool projectsQueries = general || predictive || concat;
        string queryProjection = projectsQueries ? kernels.ProductTransposedAdd(model.Dim) : ""; // Q Wᵀ for W_a (or its query half) and W_p
        string queryGradient = projectsQueries ? kernels.MatrixProductAdd(model.Dim) : "";         // ∂W += ∂Yᵀ Q, ∂Q += ∂Y W
        // The concat score: K W_a,kᵀ (and its gradients), v_aᵀ tanh(qpₜ + kpₛ) per pair and its backward, ∂v_a's row shares summed.
        string keyProjection = concat ? kernels.ProductTransposedAdd(model.KeyDim) : "";
        string keyGradient = concat ? kernels.MatrixProductAdd(model.KeyDim) : "";
        string concatScore = concat ? kernels.AdditiveScore(model.Units) : "";
        string concatScoreBackward = concat ? kernels.AdditiveScoreBackward(model.Units) : "";
        string unitsAxpy = concat ? kernels.MultiplyAdd(model.Units) : "";
        string predictorTanh = predictive ? kernels.TanhInPlace(model.PredictorUnits) : "";
        string predictorDot = predictive ? kernels.Dot(model.PredictorUnits) : "";
        string predictorBackward = predictive ? PredictorBackwardKernel(kernels, model) : "";
        string queryWidth = general ? "KeyDim" : concat ? "Units" : "Dim";
        string scoreTarget = concat ? "dProjections" : "dQueryTarget"; // what BackwardRows writes the score path's gradient into

        if (!concat)
        {
            w.WriteLine();
            w.WriteLine("// The fixed factor on every score (1/√Dk for the scaled dot product).");
            w.WriteLine($"private const {T} ScoreFactor = {Literal(element, model.Score == "ScaledDot" ? 1 / System.Math.Sqrt(model.KeyDim) : 1)};");
        }
        if (predictive)
        {
            double sigma = model.Window / 2.0;
            w.WriteLine();
            w.WriteLine($"// σ = D / 2 = {sigma.ToString("R", CultureInfo.InvariantCulture)}: the Gaussian is exp(−(s − pₜ)² · HalfInverseVariance), and ∂/∂pₜ of it is (s − pₜ) · InverseVariance times itself.");
            w.WriteLine($"private const {T} HalfInverseVariance = {Literal(element, 1 / (2 * sigma * sigma))};");
            w.WriteLine($"private const {T} InverseVariance = {Literal(element, 1 / (sigma * sigma))};");
        }

        // ---- Tape ----
        w.WriteLine();
        w.Summary("What a training forward records for <see cref=\"Backward\"/>: per query its window (first key and length) and the weights aₜ over it" +
            (predictive ? ",\nthe softmax αₜ before the Gaussian, pₜ and tanh(W_p hₜ)" : "") + (general ? ", W_a hₜ" : "") +
            (concat ? ",\nthe concat score's projections qpₜ = W_a,q hₜ [B, Tq, Units] and kpₛ = W_a,k h̄ₛ [B, Tk, Units]" : "") +
            ". Window rows have min(2D + 1, Tk) entries.\nOwned by the caller, reused across steps, grown as needed.");
        using (w.Block("public sealed class Tape : AttentionTape"))
        {
            LayerScaffold.DeclareTapeCallState(w);
            w.WriteLine($"internal AlignedBuffer<{T}> Weights;");
            if (predictive)
            {
                w.WriteLine($"internal AlignedBuffer<{T}> Alignments;");
                w.WriteLine($"internal AlignedBuffer<{T}> Positions;");
                w.WriteLine($"internal AlignedBuffer<{T}> PredictorHidden;");
            }
            if (general || concat) w.WriteLine($"internal AlignedBuffer<{T}> QueryProjection;");
            if (concat) w.WriteLine($"internal AlignedBuffer<{T}> KeyProjection;");
            w.WriteLine("internal int[] WindowStarts = Array.Empty<int>();");
            w.WriteLine("internal int[] WindowCounts = Array.Empty<int>();");
            w.WriteLine("internal bool KeysAreValues;");
            w.WriteLine();
            using (w.Block("internal void Prepare(int batch, int queryLength, int keyLength, bool keysAreValues)"))
            {
                w.WriteLine("int rows = batch * queryLength;");
                w.WriteLine("Grow(ref Weights, rows * Math.Min(WindowSize, keyLength));");
                w.WriteLine("Grow(ref WindowStarts, rows);");
                w.WriteLine("Grow(ref WindowCounts, rows);");
                if (predictive)
                {
                    w.WriteLine("Grow(ref Alignments, rows * Math.Min(WindowSize, keyLength));");
                    w.WriteLine("Grow(ref Positions, rows);");
                    w.WriteLine("Grow(ref PredictorHidden, rows * PredictorUnits);");
                }
                if (general) w.WriteLine("Grow(ref QueryProjection, rows * KeyDim);");
                if (concat)
                {
                    w.WriteLine("Grow(ref QueryProjection, rows * Units);");
                    w.WriteLine("Grow(ref KeyProjection, batch * keyLength * Units);");
                }
                w.WriteLine("(Batch, QueryLength, KeyLength, KeysAreValues, IsRecorded) = (batch, queryLength, keyLength, keysAreValues, true);");
            }
        }

        // ---- Forwards ----
        w.WriteLine();
        w.Summary("Inference forward: cₜ = Σₛ aₜ(s) valueₛ over each query's window. Keeps no state; allocates nothing in steady state\n(on one thread), so one layer serves many threads at once.");
        WriteForwardParamDocs(w, tape: false);
        string forwardParameters = $"int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights = default, AttentionMask mask = default, Span<{T}> positions = default";
        using (w.Block($"public void Forward({forwardParameters})"))
        {
            w.WriteLine("bool keysAreValues = values.IsEmpty;");
            w.WriteLine("ThrowIfInvalidForward(batch, queryLength, keyLength, query, keys, keysAreValues ? keys : values, keysAreValues, context, weights, mask, positions);");
            w.WriteLine("ForwardBatch(null, batch, queryLength, keyLength, query, keys, keysAreValues ? keys : values, context, weights, mask, positions);");
        }
        w.WriteLine();
        w.Summary("Training forward: the inference result, and records in <paramref name=\"tape\"/> what <see cref=\"Backward\"/> needs.");
        w.WriteLine("/// <param name=\"tape\">The caller's reusable tape; grown to these lengths if needed.</param>");
        WriteForwardParamDocs(w, tape: true);
        using (w.Block($"public void Forward(Tape tape, {forwardParameters})"))
        {
            w.WriteLine("ArgumentNullException.ThrowIfNull(tape);");
            w.WriteLine("bool keysAreValues = values.IsEmpty;");
            w.WriteLine("ThrowIfInvalidForward(batch, queryLength, keyLength, query, keys, keysAreValues ? keys : values, keysAreValues, context, weights, mask, positions);");
            w.WriteLine("tape.Prepare(batch, queryLength, keyLength, keysAreValues);");
            w.WriteLine("ForwardBatch(tape, batch, queryLength, keyLength, query, keys, keysAreValues ? keys : values, context, weights, mask, positions);");
        }

        if (concat)
        {
            EmitKeyProjectionCalls(w, model, keyProjection, forwardParameters.Replace($"ReadOnlySpan<{T}> keys", $"ReadOnlySpan<{T}> keyProjection"));
        }

        string projectionWork = (general ? " + Dim * KeyDim" : "") + (predictive ? " + Dim * PredictorUnits" : "");
        w.WriteLine();
        w.WriteLine("// Batch rows are independent: large calls spread them over threads; each row is computed the same way whatever the");
        w.WriteLine("// thread count, so the result is too.");
        using (w.Block($"private void ForwardBatch(Tape? tape, int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights, AttentionMask mask, Span<{T}> positions{(concat ? ", bool keysProjected = false" : "")})"))
        {
            w.WriteLine(concat
                ? $"long work = (long)batch * (queryLength * (Math.Min(WindowSize, keyLength) * (Units + ValueDim) + Dim * Units{projectionWork}) + (keysProjected ? 0 : keyLength * KeyDim * Units));"
                : $"long work = (long)batch * queryLength * (Math.Min(WindowSize, keyLength) * (KeyDim + ValueDim){projectionWork});");
            using (w.Block("if (!BatchParallel.ShouldSplit(batch, MaxDegreeOfParallelism, work, ParallelWorkThreshold))"))
            {
                w.WriteLine($"ForwardRows(tape, 0, batch, queryLength, keyLength, query, keys, values, context, weights, mask, positions{(concat ? ", keysProjected" : "")});");
                w.WriteLine("return;");
            }
            w.WriteLine($"BatchParallel.For<{T}>(batch, MaxDegreeOfParallelism, {(concat ? "keysProjected ? CallStateWithProjectedKeys() : " : "")}CallStateFor(tape),");
            w.WriteLine($"    static (int b, object state, in ChunkSpans<{T}> s) => ((CallState)state).Layer.ForwardRows(((CallState)state).Tape, b, b + 1, s.QueryLength, s.KeyLength, s.R0, s.R1, s.R2, s.W0, s.W1, s.Mask, s.W2{(concat ? ", ((CallState)state).KeysProjected" : "")}),");
            w.WriteLine("    (batch, queryLength, keyLength), mask, r0: query, r1: keys, r2: values, w0: context, w1: weights, w2: positions);");
        }
        w.WriteLine();
        w.WriteLine($"private sealed record CallState({name} Layer, Tape? Tape{(concat ? ", bool KeysProjected = false" : "")});");
        LayerScaffold.DeclareCallStateFor(w);
        if (concat)
        {
            w.WriteLine();
            w.WriteLine("// The record of ForwardWithKeyProjection's calls on several threads (inference: no tape), made once per layer like");
            w.WriteLine("// CallStateFor's, so that a decoder's steps allocate nothing in steady state.");
            w.WriteLine("private CallState? _callStateWithProjectedKeys;");
            w.WriteLine();
            w.WriteLine("private CallState CallStateWithProjectedKeys() => _callStateWithProjectedKeys ??= new CallState(this, null, true);");
        }

        w.WriteLine();
        w.WriteLine("// Batch rows [first, end), each:");
        if (general) w.WriteLine("//   Q' = Q W_aᵀ                     [Tq, KeyDim]  (into the tape when training)");
        if (concat)
        {
            w.WriteLine("//   W_a [hₜ; h̄ₛ] = W_a,q hₜ + W_a,k h̄ₛ, W_a = [W_a,q | W_a,k] (its Dim query columns, then its KeyDim key columns):");
            w.WriteLine("//   QP = Q W_a,qᵀ [Tq, Units] and KP = K W_a,kᵀ [Tk, Units], once per query and once per key (into the tape when training)");
        }
        if (predictive) w.WriteLine("//   Z = tanh(Q W_pᵀ)                [Tq, PredictorUnits], pₜ = Tk · sigmoid(v_pᵀ zₜ)");
        else w.WriteLine("//   pₜ = t + Tk − Tq");
        w.WriteLine("//   per query t, over the window s ∈ [round(pₜ) − D, round(pₜ) + D] ∩ [0, Tk − 1]:");
        w.WriteLine($"//     eₜ(s) = {(general ? "q'ₜᵀ kₛ · factor" : concat ? "v_aᵀ tanh(qpₜ + kpₛ)" : "qₜᵀ kₛ · factor")} (−∞ where the mask forbids), aₜ = softmax(eₜ) (row maximum subtracted;");
        w.WriteLine("//     a window with nothing allowed becomes zeros)" + (predictive ? ", aₜ(s) ← aₜ(s) · exp(−(s − pₜ)² / (2σ²))" : "") + ", cₜ = Σₛ aₜ(s) vₛ");
        if (concat) w.WriteLine("// keysProjected: `keys` holds K W_a,kᵀ [B, Tk, Units] from ProjectKeys, so no key is projected here.");
        using (LayerScaffold.HotBlock(w, $"private void ForwardRows(Tape? tape, int first, int end, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, Span<{T}> context, Span<{T}> weights, AttentionMask mask, Span<{T}> positions{(concat ? ", bool keysProjected" : "")})"))
        {
            w.WriteLine("bool masked = !mask.IsEmpty;");
            w.WriteLine("int stride = Math.Min(WindowSize, keyLength);");
            bool projects = general || concat || predictive;
            if (projects)
            {
                LayerScaffold.DeclareQueryGroups(w, "end - first", wholeRangeWithTape: true);
                w.WriteLine("int groupQueries = groupRows * queryLength;");
            }
            var scratchParts = new List<string> { "stride" };
            if (general) scratchParts.Add("(tape is null ? groupQueries * KeyDim : 0)");
            if (concat) scratchParts.Add("Units * (Dim + KeyDim) + (tape is null ? (groupQueries + (keysProjected ? 0 : keyLength)) * Units : 0)");
            if (predictive) scratchParts.Add("(tape is null ? groupQueries * PredictorUnits : 0)");
            LayerScaffold.DeclareScratch(w, element, "scratch", string.Join(" + ", scratchParts));
            using (w.Block("try"))
            {
                w.WriteLine($"Span<{T}> window = scratch.Slice(0, stride);");
                if (concat)
                {
                    w.WriteLine("// W_a's two halves packed into contiguous blocks once per call, so the projections stream their rows.");
                    w.WriteLine($"Span<{T}> queryWeight = scratch.Slice(stride, Units * Dim), keyWeight = scratch.Slice(stride + Units * Dim, Units * KeyDim);");
                    w.WriteLine("SplitScoreWeight(ScoreWeight.Value, queryWeight, keysProjected ? default : keyWeight); // a given key projection needs only the query half");
                    w.WriteLine($"ref {T} scoreVector = ref MemoryMarshal.GetArrayDataReference(ScoreVector.Value);");
                }
                using (projects ? w.Block("for (int g = first; g < end; g += groupRows)") : default)
                {
                    if (projects)
                    {
                        w.WriteLine("int groupEnd = Math.Min(end, g + groupRows);");
                        w.WriteLine($"ReadOnlySpan<{T}> groupQuery = query.Slice(g * queryLength * Dim, (groupEnd - g) * queryLength * Dim);");
                    }
                    if (general)
                    {
                        w.WriteLine("// Q' = Q W_aᵀ: the general score's query side, once per query rather than once per (query, key) pair.");
                        w.WriteLine($"Span<{T}> groupProjection = tape is not null ? tape.QueryProjection.AsSpan(g * queryLength * KeyDim, (groupEnd - g) * queryLength * KeyDim) : scratch.Slice(stride, (groupEnd - g) * queryLength * KeyDim);");
                        w.WriteLine("groupProjection.Clear();");
                        w.WriteLine($"{queryProjection}((groupEnd - g) * queryLength, KeyDim, ref MemoryMarshal.GetReference(groupQuery), ref MemoryMarshal.GetArrayDataReference(ScoreWeight.Value), ref MemoryMarshal.GetReference(groupProjection));");
                    }
                    else if (concat)
                    {
                        w.WriteLine("// qpₜ = W_a,q hₜ (and kpₛ = W_a,k h̄ₛ below): each half of W_a [hₜ; h̄ₛ] once per vector rather than once per (query, key) pair.");
                        w.WriteLine($"Span<{T}> groupProjection = tape is not null ? tape.QueryProjection.AsSpan(g * queryLength * Units, (groupEnd - g) * queryLength * Units) : scratch.Slice(stride + Units * (Dim + KeyDim), (groupEnd - g) * queryLength * Units);");
                        w.WriteLine("groupProjection.Clear();");
                        w.WriteLine($"{queryProjection}((groupEnd - g) * queryLength, Units, ref MemoryMarshal.GetReference(groupQuery), ref MemoryMarshal.GetReference(queryWeight), ref MemoryMarshal.GetReference(groupProjection));");
                    }
                    if (predictive)
                    {
                        w.WriteLine("// Z = Q W_pᵀ (tanh applied per query below): the position predictor's hidden layer.");
                        string hiddenOffset = general ? " + groupQueries * KeyDim" : concat ? " + Units * (Dim + KeyDim) + (groupQueries + (keysProjected ? 0 : keyLength)) * Units" : "";
                        w.WriteLine($"Span<{T}> groupHidden = tape is not null ? tape.PredictorHidden.AsSpan(g * queryLength * PredictorUnits, (groupEnd - g) * queryLength * PredictorUnits) : scratch.Slice(stride{hiddenOffset}, (groupEnd - g) * queryLength * PredictorUnits);");
                        w.WriteLine("groupHidden.Clear();");
                        w.WriteLine($"{queryProjection}((groupEnd - g) * queryLength, PredictorUnits, ref MemoryMarshal.GetReference(groupQuery), ref MemoryMarshal.GetArrayDataReference(PredictorWeight.Value), ref MemoryMarshal.GetReference(groupHidden));");
                    }
                    using (w.Block(projects ? "for (int b = g; b < groupEnd; b++)" : "for (int b = first; b < end; b++)"))
                    {
                        if (!general && !concat) w.WriteLine($"ReadOnlySpan<{T}> rowQuery = query.Slice(b * queryLength * Dim, queryLength * Dim);");
                        if (!concat) w.WriteLine($"ReadOnlySpan<{T}> rowKeys = keys.Slice(b * keyLength * KeyDim, keyLength * KeyDim);");
                        w.WriteLine($"ReadOnlySpan<{T}> rowValues = values.Slice(b * keyLength * ValueDim, keyLength * ValueDim);");
                        if (general)
                        {
                            w.WriteLine($"ReadOnlySpan<{T}> queries = groupProjection.Slice((b - g) * queryLength * KeyDim, queryLength * KeyDim);");
                        }
                        else if (concat)
                        {
                            w.WriteLine($"scoped ReadOnlySpan<{T}> keyProjection; // the caller's, or projected into the tape or the stack scratch");
                            using (w.Block("if (keysProjected)"))
                            {
                                w.WriteLine("keyProjection = keys.Slice(b * keyLength * Units, keyLength * Units);");
                            }
                            using (w.Block("else"))
                            {
                                w.WriteLine($"ReadOnlySpan<{T}> rowKeys = keys.Slice(b * keyLength * KeyDim, keyLength * KeyDim);");
                                w.WriteLine($"Span<{T}> projectedKeys = tape is not null ? tape.KeyProjection.AsSpan(b * keyLength * Units, keyLength * Units) : scratch.Slice(stride + Units * (Dim + KeyDim) + groupQueries * Units, keyLength * Units);");
                                w.WriteLine(predictive
                                    ? "// local-p's windows may lie anywhere in the source: every key is projected."
                                    : "// local-m's windows hold only the keys from Tk − Tq − D on: the earlier ones are never projected (a decoder step\n// over a long key cache projects D + 1 keys, not Tk).");
                                w.WriteLine($"int firstKey = {(predictive ? "0" : "Math.Max(0, keyLength - queryLength - Window)")};");
                                w.WriteLine("projectedKeys.Slice(firstKey * Units).Clear();");
                                w.WriteLine($"{keyProjection}(keyLength - firstKey, Units, ref MemoryMarshal.GetReference(rowKeys.Slice(firstKey * KeyDim)), ref MemoryMarshal.GetReference(keyWeight), ref projectedKeys[firstKey * Units]);");
                                w.WriteLine("keyProjection = projectedKeys;");
                            }
                            w.WriteLine($"ReadOnlySpan<{T}> queries = groupProjection.Slice((b - g) * queryLength * Units, queryLength * Units);");
                        }
                        else
                        {
                            w.WriteLine($"ReadOnlySpan<{T}> queries = rowQuery;");
                        }
                        if (predictive)
                        {
                            w.WriteLine($"Span<{T}> hidden = groupHidden.Slice((b - g) * queryLength * PredictorUnits, queryLength * PredictorUnits);");
                        }
                        w.WriteLine($"Span<{T}> rowContext = context.Slice(b * queryLength * ValueDim, queryLength * ValueDim);");
                        w.WriteLine("rowContext.Clear();");
                        w.WriteLine("if (!weights.IsEmpty) weights.Slice(b * queryLength * keyLength, queryLength * keyLength).Clear();");
                        using (w.Block("for (int t = 0; t < queryLength; t++)"))
                        {
                            w.WriteLine("int row = b * queryLength + t;");
                            if (predictive)
                            {
                                w.WriteLine("// pₜ = S · sigmoid(v_pᵀ tanh(W_p hₜ)), S = Tk, so pₜ ∈ [0, Tk]; the window is centred on the nearest position ⌊pₜ + ½⌋.");
                                w.WriteLine($"ref {T} z = ref hidden[t * PredictorUnits];");
                                w.WriteLine($"{predictorTanh}(ref z);");
                                w.WriteLine($"{T} p = keyLength * VectorMath.Sigmoid({predictorDot}(ref z, ref MemoryMarshal.GetArrayDataReference(PredictorVector.Value)));");
                                w.WriteLine($"int center = Math.Clamp((int){M}.Floor(p + {Literal(element, 0.5)}), 0, keyLength);");
                            }
                            else
                            {
                                w.WriteLine("// local-m: pₜ = t, with the diagonal aligned to the end when Tq ≠ Tk.");
                                w.WriteLine("int center = t + keyLength - queryLength;");
                                w.WriteLine($"{T} p = center;");
                            }
                            w.WriteLine("int start = Math.Max(0, center - Window);");
                            w.WriteLine("int count = Math.Max(0, Math.Min(keyLength - 1, center + Window) - start + 1);");
                            w.WriteLine("if (!positions.IsEmpty) positions[row] = p;");
                            using (w.Block("if (tape is not null)"))
                            {
                                w.WriteLine("tape.WindowStarts[row] = start;");
                                w.WriteLine("tape.WindowCounts[row] = count;");
                                if (predictive) w.WriteLine("tape.Positions[row] = p;");
                            }
                            w.WriteLine();
                            w.WriteLine($"Span<{T}> a = tape is not null ? tape.Weights.AsSpan(row * stride, count) : window.Slice(0, count);");
                            w.WriteLine($"ref {T} q = ref MemoryMarshal.GetReference(queries.Slice(t * {queryWidth}, {queryWidth}));");
                            using (w.Block("for (int s = 0; s < count; s++)"))
                            {
                                w.WriteLine("int key = start + s;");
                                w.WriteLine(concat
                                    ? $"a[s] = masked && !mask.Allows(b, t, key, queryLength, keyLength) ? {T}.NegativeInfinity : {concatScore}(ref q, ref MemoryMarshal.GetReference(keyProjection.Slice(key * Units, Units)), ref scoreVector);"
                                    : $"a[s] = masked && !mask.Allows(b, t, key, queryLength, keyLength) ? {T}.NegativeInfinity : ScoreFactor * {scoreDot}(ref q, ref MemoryMarshal.GetReference(rowKeys.Slice(key * KeyDim, KeyDim)));");
                            }
                            w.WriteLine("AttentionMath.Softmax(a);");
                            if (predictive)
                            {
                                w.WriteLine("if (tape is not null) a.CopyTo(tape.Alignments.AsSpan(row * stride, count));");
                                w.WriteLine("// aₜ(s) = αₜ(s) · exp(−(s − pₜ)² / (2σ²))");
                                using (w.Block("for (int s = 0; s < count; s++)"))
                                {
                                    w.WriteLine($"{T} offset = start + s - p;");
                                    w.WriteLine($"a[s] *= {M}.Exp(-offset * offset * HalfInverseVariance);");
                                }
                            }
                            w.WriteLine("// cₜ = Σₛ aₜ(s) vₛ");
                            w.WriteLine($"ref {T} c = ref rowContext[t * ValueDim];");
                            w.WriteLine($"for (int s = 0; s < count; s++) {valueAxpy}(a[s], ref MemoryMarshal.GetReference(rowValues.Slice((start + s) * ValueDim, ValueDim)), ref c);");
                            w.WriteLine("if (!weights.IsEmpty) a.CopyTo(weights.Slice(row * keyLength + start, count));");
                        }
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
            "parameter gradients. Per query, over its window: ∂aₜ(s) = ∂cₜᵀ vₛ (+ ∂L/∂A), ∂vₛ += aₜ(s) ∂cₜ" +
            (predictive ? ",\n∂pₜ = Σₛ ∂aₜ(s) aₜ(s) (s − pₜ) / σ², ∂αₜ(s) = ∂aₜ(s) · exp(−(s − pₜ)² / (2σ²))" : "") +
            (concat
                ? ", ∂eₜ = α ⊙ (∂α − Σ α ⊙ ∂α),\n" +
                  "with zₜₛ = tanh(qpₜ + kpₛ): ∂v_a += ∂eₜ(s) zₜₛ, ∂qpₜ and ∂kpₛ += ∂eₜ(s) v_a ⊙ (1 − zₜₛ²); then ∂W_a,q += ∂QPᵀ Q, ∂W_a,k += ∂KPᵀ K,\n" +
                  "∂Q = ∂QP W_a,q and ∂K += ∂KP W_a,k"
                : ", ∂eₜ = factor · α ⊙ (∂α − Σ α ⊙ ∂α),\n" +
                  $"∂q'ₜ = Σₛ ∂eₜ(s) kₛ, ∂kₛ += ∂eₜ(s) q'ₜ{(general ? "; then ∂W_a += ∂Q'ᵀ Q and ∂Q = ∂Q' W_a" : "")}") +
            (predictive ? ";\nthrough pₜ = S · sigmoid(u), u = v_pᵀ zₜ, zₜ = tanh(W_p hₜ): ∂u = ∂pₜ · pₜ (1 − pₜ / S), ∂v_p += ∂u zₜ,\n∂(W_p hₜ) = ∂u v_p ⊙ (1 − zₜ²), ∂W_p += its outer product with hₜ, ∂hₜ += W_pᵀ of it. The window bounds are piecewise\nconstant in pₜ and pass no gradient" : "") +
            ".\nA query with nothing allowed in its window contributes nothing.");
        w.WriteLine("/// <param name=\"tape\">The tape the training <c>Forward</c> recorded into.</param>");
        w.WriteLine("/// <param name=\"query\">The query given to the forward, [B, Tq, Dim].</param>");
        w.WriteLine("/// <param name=\"keys\">The keys given to the forward, [B, Tk, KeyDim].</param>");
        w.WriteLine("/// <param name=\"values\">The values given to the forward (empty if the keys were the values).</param>");
        w.WriteLine("/// <param name=\"dContext\">∂L/∂C, [B, Tq, ValueDim].</param>");
        w.WriteLine("/// <param name=\"dQuery\">∂L/∂Q, [B, Tq, Dim]: written when not empty.</param>");
        w.WriteLine("/// <param name=\"dKeys\">∂L/∂K, [B, Tk, KeyDim]: written when not empty (with the value path when the keys were the values).</param>");
        w.WriteLine("/// <param name=\"dValues\">∂L/∂V, [B, Tk, ValueDim]: written when not empty; must be empty when the keys were the values.</param>");
        w.WriteLine("/// <param name=\"dWeights\">Optional ∂L/∂A, [B, Tq, Tk] (entries outside each window are ignored: those weights are constant zeros).</param>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the recorded shapes, or the tape holds no forward.</exception>");
        using (w.Block($"public void Backward(Tape tape, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, ReadOnlySpan<{T}> dContext, Span<{T}> dQuery = default, Span<{T}> dKeys = default, Span<{T}> dValues = default, ReadOnlySpan<{T}> dWeights = default)"))
        {
            LayerScaffold.QueryKeyBackwardChecks(w, element, "KeyDim");
            w.WriteLine("int rows = batch * queryLength;");
            if (concat)
            {
                w.WriteLine("int keyRows = batch * keyLength;");
                w.WriteLine(ConcatScratchLength);
            }
            w.WriteLine();
            var scratchParts = new List<string>();
            var scratchDoc = new List<string>();
            if (general) { scratchParts.Add("rows * KeyDim"); scratchDoc.Add("∂L/∂Q' [B, Tq, KeyDim]"); }
            if (concat)
            {
                scratchParts.Add("scoreScratch");
                scratchDoc.Add("each batch row's share of ∂L/∂v_a [B, ScoreShareStride], ∂L/∂QP [B, Tq, Units], ∂L/∂KP [B, Tk, Units],\n// W_a's halves W_a,q [Units, Dim] and W_a,k [Units, KeyDim] and ∂W_a's halves likewise");
            }
            if (predictive) { scratchParts.Add("rows + rows * PredictorUnits"); scratchDoc.Add("∂L/∂u [B, Tq] and ∂L/∂(W_p hₜ) [B, Tq, PredictorUnits]"); }
            if (scratchParts.Count == 0) scratchParts.Add("0");
            w.WriteLine($"// Scratch: {(scratchDoc.Count == 0 ? "none (the dot score writes ∂L/∂Q directly)" : string.Join(", ", scratchDoc))}.");
            w.WriteLine("// Nothing is cleared here: each batch row clears its part of the scratch, of ∂L/∂K and of ∂L/∂V in BackwardRows, on the");
            w.WriteLine(general || concat
                ? "// thread that then adds to it, and ∂L/∂Q is written by its first product."
                : "// thread that then adds to it, ∂L/∂Q's rows with them.");
            LayerScaffold.DeclareScratch(w, element, "scratch", string.Join(" + ", scratchParts));
            using (w.Block("try"))
            {
                if (concat)
                {
                    w.WriteLine("// W_a's halves packed as in the forward, and ∂W_a's halves copied out to accumulate into (and back at the end).");
                    w.WriteLine(ConcatWeightSlices(T));
                    w.WriteLine("SplitScoreWeight(ScoreWeight.Value, queryWeight, keyWeight);");
                    w.WriteLine("SplitScoreWeight(ScoreWeight.Gradient, dQueryWeight, dKeyWeight);");
                    w.WriteLine($"Span<{T}> dProjections = scratch.Slice(0, batch * ScoreShareStride + (rows + keyRows) * Units);");
                }
                else
                {
                    w.WriteLine($"Span<{T}> dQueryTarget = {(general ? "scratch.Slice(0, rows * KeyDim)" : "dQuery")};");
                }
                w.WriteLine(predictive
                    ? $"Span<{T}> predictorScratch = scratch.Slice({(general ? "rows * KeyDim" : concat ? "scoreScratch" : "0")}, rows + rows * PredictorUnits), dPredictor = predictorScratch.Slice(0, rows);"
                    : $"Span<{T}> predictorScratch = default;");
                w.WriteLine($"long work = (long)rows * Math.Min(WindowSize, keyLength) * ({(concat ? "Units" : "KeyDim")} + ValueDim);");
                using (w.Block("if (BatchParallel.ShouldSplit(batch, MaxDegreeOfParallelism, work, ParallelWorkThreshold))"))
                {
                    w.WriteLine($"BatchParallel.For<{T}>(batch, MaxDegreeOfParallelism, CallStateFor(tape),");
                    w.WriteLine($"    static (int b, object state, in ChunkSpans<{T}> s) => ((CallState)state).Layer.BackwardRows(((CallState)state).Tape!, b, b + 1, s.R0, s.R1, s.R2, s.R3, s.W0, s.W1, s.W2, s.W3, s.R4),");
                    w.WriteLine($"    (batch, queryLength, keyLength), r0: query, r1: keys, r2: valueSource, r3: dContext, r4: dWeights, w0: {scoreTarget}, w1: dKeys, w2: dValueTarget, w3: predictorScratch);");
                }
                using (w.Block("else"))
                {
                    w.WriteLine($"BackwardRows(tape, 0, batch, query, keys, valueSource, dContext, {scoreTarget}, dKeys, dValueTarget, predictorScratch, dWeights);");
                }
                if (concat)
                {
                    w.WriteLine();
                    w.WriteLine("// ∂v_a: the batch rows' shares added in row order, so the sum does not depend on how rows were spread over threads.");
                    w.WriteLine($"ref {T} dScoreVector = ref MemoryMarshal.GetArrayDataReference(ScoreVector.Gradient);");
                    w.WriteLine($"for (int b = 0; b < batch; b++) {unitsAxpy}(1, ref dProjections[b * ScoreShareStride], ref dScoreVector);");
                }
                if (predictive)
                {
                    w.WriteLine();
                    w.WriteLine("// The position predictor, in row order: ∂v_p += ∂u zₜ and ∂(W_p hₜ) = ∂u v_p ⊙ (1 − zₜ²) per query.");
                    w.WriteLine($"Span<{T}> dHidden = predictorScratch.Slice(rows);");
                    w.WriteLine($"ref {T} predictorVector = ref MemoryMarshal.GetArrayDataReference(PredictorVector.Value);");
                    w.WriteLine($"ref {T} predictorVectorGradient = ref MemoryMarshal.GetArrayDataReference(PredictorVector.Gradient);");
                    using (w.Block("for (int r = 0; r < rows; r++)"))
                    {
                        w.WriteLine("if (dPredictor[r] == 0) continue;");
                        w.WriteLine($"{predictorBackward}(dPredictor[r], ref tape.PredictorHidden[r * PredictorUnits], ref predictorVector, ref predictorVectorGradient, ref dHidden[r * PredictorUnits]);");
                    }
                }
                if (concat)
                {
                    w.WriteLine();
                    w.WriteLine("// The projection gradients over all rows, each cut into ProductParts ranges that threads take independently:");
                    w.WriteLine($"// ∂W_a,q += ∂QPᵀ Q, ∂W_a,k += ∂KPᵀ K, {(predictive ? "∂W_p += ∂(W_p H)ᵀ Q, " : "")}∂K += ∂KP W_a,k by rows of K, ∂Q = ∂QP W_a,q{(predictive ? " + ∂(W_p H) W_p" : "")} by rows of Q.");
                    LayerScaffold.ProductPhase(w, element, name, predictive ? 5 : 4,
                        $"((long)rows * Dim + (long)keyRows * KeyDim) * Units * 4{(predictive ? " + (long)rows * Dim * PredictorUnits * 2" : "")}", "(batch, queryLength, keyLength)",
                        "s.Batch, s.QueryLength, s.KeyLength, s.R0, s.R1, s.W0, s.W1, s.W2", "batch, queryLength, keyLength, query, keys, scratch, dQuery, dKeys",
                        "r0: query, r1: keys, w0: scratch, w1: dQuery, w2: dKeys");
                    w.WriteLine("JoinScoreWeight(dQueryWeight, dKeyWeight, ScoreWeight.Gradient);");
                }
                else if (general || predictive)
                {
                    int weightProducts = (general ? 1 : 0) + (predictive ? 1 : 0);
                    string depth = general && predictive ? "(KeyDim + PredictorUnits)" : general ? "KeyDim" : "PredictorUnits";
                    w.WriteLine();
                    w.WriteLine("// The projection gradients over all B·Tq rows, each cut into ProductParts ranges that threads take independently:");
                    w.WriteLine($"// {(general ? "∂W_a += ∂Q'ᵀ Q, " : "")}{(predictive ? "∂W_p += ∂(W_p H)ᵀ Q, " : "")}then ∂Q {(general ? "+= ∂Q' W_a" : "")}{(general && predictive ? " and " : "")}{(predictive ? "+= ∂(W_p H) W_p" : "")} by rows of Q.");
                    LayerScaffold.ProductPhase(w, element, name, weightProducts + 1, $"(long)rows * Dim * {depth} * 4", "(batch, queryLength, keyLength)",
                        "s.Batch * s.QueryLength, s.R0, s.R1, s.W0", "rows, query, scratch, dQuery", "r0: query, r1: scratch, w0: dQuery");
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }

        if (concat)
        {
            w.WriteLine();
            LayerScaffold.DeclareShareStride(w, element, model.Units, "∂L/∂v_a");
            w.WriteLine();
            LayerScaffold.DeclareProductParts(w);
            EmitConcatBackwardProducts(w, model, queryGradient, keyGradient);
            EmitScoreWeightSplit(w, T);
        }
        else if (general || predictive)
        {
            w.WriteLine();
            LayerScaffold.DeclareProductParts(w);
            w.WriteLine();
            w.WriteLine("// Chunk c does part c % parts of product c / parts (the weight gradients, then ∂Q by rows of Q, its terms");
            w.WriteLine("// added in a fixed order). Parts write disjoint rows, so threads may take them in any order.");
            using (LayerScaffold.HotBlock(w, $"private void BackwardProducts(int chunk, int parts, int rows, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> scratch, Span<{T}> dQuery)"))
            {
                w.WriteLine("int product = chunk / parts, part = chunk % parts;");
                if (general) w.WriteLine($"ReadOnlySpan<{T}> dProjected = scratch.Slice(0, rows * KeyDim);");
                if (predictive) w.WriteLine($"ReadOnlySpan<{T}> dHidden = scratch.Slice({(general ? "rows * KeyDim + " : "")}rows, rows * PredictorUnits);");
                int index = 0;
                if (general)
                {
                    using (w.Block($"if (product == {index++})"))
                    {
                        LayerScaffold.WeightGradientPart(w, queryGradient, "KeyDim", "rows", "parts", "dProjected", "query", "ScoreWeight.Gradient", "Dim");
                        w.WriteLine("return;");
                    }
                }
                if (predictive)
                {
                    using (w.Block($"if (product == {index++})"))
                    {
                        LayerScaffold.WeightGradientPart(w, queryGradient, "PredictorUnits", "rows", "parts", "dHidden", "query", "PredictorWeight.Gradient", "Dim");
                        w.WriteLine("return;");
                    }
                }
                w.WriteLine("if (dQuery.IsEmpty) return;");
                w.WriteLine("// ∂Q rows [firstRow, endRow).");
                w.WriteLine("int firstRow = rows * part / parts, endRow = rows * (part + 1) / parts;");
                w.WriteLine("if (endRow == firstRow) return;");
                if (general)
                {
                    w.WriteLine(predictive ? "// ∂Q' W_a writes the rows (nothing cleared them), then ∂(W_p H) W_p is added" : "// ∂Q' W_a writes the rows (nothing cleared them)");
                    w.WriteLine($"{queryGradient}(endRow - firstRow, KeyDim, ref Unsafe.Add(ref MemoryMarshal.GetReference(dProjected), firstRow * KeyDim), KeyDim, 1, ref MemoryMarshal.GetArrayDataReference(ScoreWeight.Value), ref dQuery[firstRow * Dim], accumulate: false);");
                }
                if (predictive)
                {
                    w.WriteLine($"{queryGradient}(endRow - firstRow, PredictorUnits, ref Unsafe.Add(ref MemoryMarshal.GetReference(dHidden), firstRow * PredictorUnits), PredictorUnits, 1, ref MemoryMarshal.GetArrayDataReference(PredictorWeight.Value), ref dQuery[firstRow * Dim]);");
                }
            }
        }

        w.WriteLine();
        w.WriteLine("// Batch rows [first, end) of the backward; rows write disjoint parts of every output, and each first clears its parts of");
        w.WriteLine("// what it adds into (on the thread that adds to them, the lines then in its cache).");
        if (concat) w.WriteLine("// dProjections holds each batch row's share of ∂L/∂v_a [B, ScoreShareStride], then ∂L/∂QP [B, Tq, Units] and ∂L/∂KP [B, Tk, Units].");
        if (predictive) w.WriteLine("// predictorScratch holds ∂L/∂u [B, Tq], then ∂L/∂(W_p hₜ) [B, Tq, PredictorUnits] (written after this phase, where ∂L/∂u ≠ 0).");
        using (LayerScaffold.HotBlock(w, $"private void BackwardRows(Tape tape, int first, int end, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, ReadOnlySpan<{T}> dContext, Span<{T}> {scoreTarget}, Span<{T}> dKeys, Span<{T}> dValueTarget, Span<{T}> predictorScratch, ReadOnlySpan<{T}> dWeights)"))
        {
            w.WriteLine("int queryLength = tape.QueryLength, keyLength = tape.KeyLength;");
            if (concat || predictive) w.WriteLine("int rows = tape.Batch * queryLength;");
            if (concat)
            {
                w.WriteLine("int keyRows = tape.Batch * keyLength;");
                w.WriteLine($"ref {T} scoreVector = ref MemoryMarshal.GetArrayDataReference(ScoreVector.Value);");
            }
            if (predictive) w.WriteLine($"Span<{T}> dPredictor = predictorScratch.Slice(0, rows), dHidden = predictorScratch.Slice(rows);");
            w.WriteLine("int stride = Math.Min(WindowSize, keyLength);");
            LayerScaffold.DeclareScratch(w, element, "window", "stride");
            using (w.Block("try"))
            {
                using (w.Block("for (int b = first; b < end; b++)"))
                {
                    if (concat)
                    {
                        w.WriteLine("dProjections.Slice(b * ScoreShareStride, ScoreShareStride).Clear();");
                        w.WriteLine("dProjections.Slice(tape.Batch * ScoreShareStride + b * queryLength * Units, queryLength * Units).Clear();");
                        w.WriteLine("dProjections.Slice(tape.Batch * ScoreShareStride + (rows + b * keyLength) * Units, keyLength * Units).Clear();");
                    }
                    else
                    {
                        w.WriteLine($"if (!dQueryTarget.IsEmpty) dQueryTarget.Slice(b * queryLength * {queryWidth}, queryLength * {queryWidth}).Clear();{(general ? "" : " // ∂L/∂Q itself")}");
                    }
                    LayerScaffold.ClearKeyAndValueRows(w, "KeyDim");
                    if (predictive)
                    {
                        w.WriteLine("dPredictor.Slice(b * queryLength, queryLength).Clear();");
                        w.WriteLine("dHidden.Slice(b * queryLength * PredictorUnits, queryLength * PredictorUnits).Clear();");
                    }
                    using (w.Block("for (int t = 0; t < queryLength; t++)"))
                    {
                        w.WriteLine("int row = b * queryLength + t;");
                        w.WriteLine("int start = tape.WindowStarts[row], count = tape.WindowCounts[row];");
                        w.WriteLine($"ReadOnlySpan<{T}> a = tape.Weights.AsSpan(row * stride, count);");
                        w.WriteLine($"ReadOnlySpan<{T}> alpha = {(predictive ? "tape.Alignments.AsSpan(row * stride, count)" : "a")};");
                        w.WriteLine($"ref {T} dc = ref MemoryMarshal.GetReference(dContext.Slice(row * ValueDim, ValueDim));");
                        w.WriteLine($"Span<{T}> g = window.Slice(0, count);");
                        w.WriteLine();
                        w.WriteLine("// ∂aₜ(s) = ∂cₜᵀ vₛ (+ the caller's ∂L/∂A); the value path ∂vₛ += aₜ(s) ∂cₜ.");
                        using (w.Block("for (int s = 0; s < count; s++)"))
                        {
                            w.WriteLine("int key = b * keyLength + start + s;");
                            w.WriteLine($"g[s] = {valueDot}(ref dc, ref MemoryMarshal.GetReference(values.Slice(key * ValueDim, ValueDim))) + (dWeights.IsEmpty ? 0 : dWeights[row * keyLength + start + s]);");
                            w.WriteLine($"if (!dValueTarget.IsEmpty) {valueAxpy}(a[s], ref dc, ref dValueTarget[key * ValueDim]);");
                        }
                        if (predictive)
                        {
                            w.WriteLine();
                            w.WriteLine("// aₜ(s) = αₜ(s) · G(s), G(s) = exp(−(s − pₜ)² / (2σ²)): ∂pₜ = Σₛ ∂aₜ(s) aₜ(s) (s − pₜ) / σ², ∂αₜ(s) = ∂aₜ(s) G(s).");
                            w.WriteLine($"{T} p = tape.Positions[row];");
                            w.WriteLine($"{T} dp = 0;");
                            using (w.Block("for (int s = 0; s < count; s++)"))
                            {
                                w.WriteLine($"{T} offset = start + s - p;");
                                w.WriteLine("dp += g[s] * a[s] * offset * InverseVariance;");
                                w.WriteLine($"g[s] *= {M}.Exp(-offset * offset * HalfInverseVariance);");
                            }
                            w.WriteLine("// pₜ = S · sigmoid(u): ∂u = ∂pₜ · S σ(u)(1 − σ(u)) = ∂pₜ · pₜ (1 − pₜ / S).");
                            w.WriteLine("dPredictor[row] = dp * p * (1 - p / keyLength);");
                        }
                        w.WriteLine();
                        if (concat) EmitConcatScoreBackward(w, T, concatScoreBackward, scoreTarget);
                        else EmitProductScoreBackward(w, T, general, keyAxpy, queryWidth);
                    }
                }
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "window");
            }
        }

        // ---- Argument checks ----
        w.WriteLine();
        if (concat) w.WriteLine("// keysProjected: `keys` is the key projection [B, Tk, Units] of ForwardWithKeyProjection, checked under that name.");
        using (w.Block($"private static void ThrowIfInvalidForward(int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, ReadOnlySpan<{T}> values, bool keysAreValues, Span<{T}> context, Span<{T}> weights, AttentionMask mask, Span<{T}> positions{(concat ? ", bool keysProjected = false" : "")})"))
        {
            w.WriteLine("Shapes.RequireAtLeast(batch, 0, nameof(batch));");
            w.WriteLine("Shapes.RequireAtLeast(queryLength, 0, nameof(queryLength));");
            w.WriteLine("Shapes.RequireAtLeast(keyLength, 1, nameof(keyLength));");
            using (w.Block("if (keysAreValues && ValueDim != KeyDim)"))
            {
                w.WriteLine("throw new ArgumentException($\"'values' is required: the keys can serve as values only when ValueDim ({ValueDim}) equals KeyDim ({KeyDim}).\", nameof(values));");
            }
            w.WriteLine("Shapes.RequireLength(query.Length, (long)batch * queryLength * Dim, nameof(query), $\"[B={batch}, Tq={queryLength}, Dim={Dim}]\");");
            if (concat)
            {
                w.WriteLine("string keysName = keysProjected ? \"keyProjection\" : nameof(keys);");
                w.WriteLine("// Two calls, not one with a conditional message: the shape text is formatted only when a check fails.");
                w.WriteLine("if (keysProjected) Shapes.RequireLength(keys.Length, (long)batch * keyLength * Units, keysName, $\"[B={batch}, Tk={keyLength}, Units={Units}]\");");
                w.WriteLine("else Shapes.RequireLength(keys.Length, (long)batch * keyLength * KeyDim, keysName, $\"[B={batch}, Tk={keyLength}, KeyDim={KeyDim}]\");");
            }
            else
            {
                w.WriteLine("Shapes.RequireLength(keys.Length, (long)batch * keyLength * KeyDim, nameof(keys), $\"[B={batch}, Tk={keyLength}, KeyDim={KeyDim}]\");");
            }
            w.WriteLine("Shapes.RequireLength(values.Length, (long)batch * keyLength * ValueDim, nameof(values), $\"[B={batch}, Tk={keyLength}, ValueDim={ValueDim}]\");");
            w.WriteLine("Shapes.RequireLength(context.Length, (long)batch * queryLength * ValueDim, nameof(context), $\"[B={batch}, Tq={queryLength}, ValueDim={ValueDim}]\");");
            w.WriteLine("Shapes.RequireOptionalLength(weights.Length, (long)batch * queryLength * keyLength, nameof(weights), $\"[B={batch}, Tq={queryLength}, Tk={keyLength}]\");");
            w.WriteLine("Shapes.RequireOptionalLength(positions.Length, (long)batch * queryLength, nameof(positions), $\"[B={batch}, Tq={queryLength}]\");");
            w.WriteLine("mask.Validate(batch, queryLength, keyLength, nameof(mask));");
            foreach (string output in new[] { "context", "weights", "positions" })
            {
                foreach (string input in new[] { "query", "keys", "values" })
                {
                    w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>({output}, {input}, nameof({output}), {(concat && input == "keys" ? "keysName" : $"nameof({input})")});");
                }
            }
            w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(weights, context, nameof(weights), nameof(context));");
            w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(positions, context, nameof(positions), nameof(context));");
            w.WriteLine($"Shapes.RequireNoOverlap<{T}, {T}>(positions, weights, nameof(positions), nameof(weights));");
        }
    }

    // The concat backward's scratch: ∂v_a's row shares (first, so they start on a cache line), ∂QP and ∂KP, then W_a's halves
    // and ∂W_a's halves (2 · Units · (Dim + KeyDim)).
    private const string ConcatScratchLength = "int scoreScratch = batch * ScoreShareStride + (rows + keyRows) * Units + 2 * Units * (Dim + KeyDim);";

    // The last four blocks of that scratch: W_a's halves packed, then ∂W_a's halves.
    private static string ConcatWeightSlices(string T) =>
        "int weightStart = batch * ScoreShareStride + (rows + keyRows) * Units;\n" +
        $"Span<{T}> queryWeight = scratch.Slice(weightStart, Units * Dim), keyWeight = scratch.Slice(weightStart + Units * Dim, Units * KeyDim);\n" +
        $"Span<{T}> dQueryWeight = scratch.Slice(weightStart + Units * (Dim + KeyDim), Units * Dim), dKeyWeight = scratch.Slice(weightStart + Units * (2 * Dim + KeyDim), Units * KeyDim);";

    // The concat backward's projection gradients, each product cut into row ranges: ∂W_a,q, ∂W_a,k (into the packed halves),
    // ∂W_p for local-p, then ∂K += ∂KP W_a,k and ∂Q = ∂QP W_a,q (+ ∂(W_p H) W_p) by rows.
    private static void EmitConcatBackwardProducts(SourceWriter w, LocalModel model, string queryGradient, string keyGradient)
    {
        string T = model.Element.Keyword;
        bool predictive = model.Predictive;
        w.WriteLine();
        w.WriteLine("// Chunk c does part c % parts of product c / parts: ∂W_a,q += ∂QPᵀ Q, ∂W_a,k += ∂KPᵀ K" + (predictive ? ", ∂W_p += ∂(W_p H)ᵀ Q" : "") + ",");
        w.WriteLine("// then ∂K += ∂KP W_a,k by rows of K and ∂Q by rows of Q (its terms added in a fixed order). Parts write disjoint rows,");
        w.WriteLine("// so threads may take them in any order.");
        using (LayerScaffold.HotBlock(w, $"private void BackwardProducts(int chunk, int parts, int batch, int queryLength, int keyLength, ReadOnlySpan<{T}> query, ReadOnlySpan<{T}> keys, Span<{T}> scratch, Span<{T}> dQuery, Span<{T}> dKeys)"))
        {
            w.WriteLine("int product = chunk / parts, part = chunk % parts;");
            w.WriteLine("int rows = batch * queryLength, keyRows = batch * keyLength;");
            w.WriteLine(ConcatWeightSlices(T));
            w.WriteLine($"ReadOnlySpan<{T}> dQueryProjection = scratch.Slice(batch * ScoreShareStride, rows * Units);");
            w.WriteLine($"ReadOnlySpan<{T}> dKeyProjection = scratch.Slice(batch * ScoreShareStride + rows * Units, keyRows * Units);");
            if (predictive)
            {
                w.WriteLine(ConcatScratchLength);
                w.WriteLine($"ReadOnlySpan<{T}> dHidden = scratch.Slice(scoreScratch + rows, rows * PredictorUnits);");
            }
            using (w.Block("if (product == 0)"))
            {
                LayerScaffold.WeightGradientPart(w, queryGradient, "Units", "rows", "parts", "dQueryProjection", "query", "dQueryWeight", "Dim");
                w.WriteLine("return;");
            }
            using (w.Block("if (product == 1)"))
            {
                LayerScaffold.WeightGradientPart(w, keyGradient, "Units", "keyRows", "parts", "dKeyProjection", "keys", "dKeyWeight", "KeyDim");
                w.WriteLine("return;");
            }
            if (predictive)
            {
                using (w.Block("if (product == 2)"))
                {
                    LayerScaffold.WeightGradientPart(w, queryGradient, "PredictorUnits", "rows", "parts", "dHidden", "query", "PredictorWeight.Gradient", "Dim");
                    w.WriteLine("return;");
                }
            }
            using (w.Block($"if (product == {(predictive ? 3 : 2)})"))
            {
                LayerScaffold.InputGradientPart(w, keyGradient, "Units", "keyRows", "parts", "dKeyProjection", "keyWeight", "dKeys", "KeyDim", overwrite: false, weightIsSpan: true);
                w.WriteLine("return;");
            }
            using (w.Block($"if (product == {(predictive ? 4 : 3)})"))
            {
                w.WriteLine("// ∂Q's rows are written by ∂QP W_a,q (nothing cleared them)" + (predictive ? ", then ∂(W_p H) W_p is added." : "."));
                LayerScaffold.InputGradientPart(w, queryGradient, "Units", "rows", "parts", "dQueryProjection", "queryWeight", "dQuery", "Dim", overwrite: true, weightIsSpan: true);
                if (predictive)
                {
                    w.WriteLine($"{queryGradient}(hi - lo, PredictorUnits, ref Unsafe.Add(ref MemoryMarshal.GetReference(dHidden), lo * PredictorUnits), PredictorUnits, 1, ref MemoryMarshal.GetArrayDataReference(PredictorWeight.Value), ref dQuery[lo * Dim]);");
                }
            }
        }
    }

    // W_a [Units, Dim + KeyDim] = [W_a,q | W_a,k]: the two halves to and from contiguous blocks.
    private static void EmitScoreWeightSplit(SourceWriter w, string T)
    {
        w.WriteLine();
        w.WriteLine("// W_a = [W_a,q | W_a,k], [Units, Dim + KeyDim] with each row's Dim query columns first (as in W_a [hₜ; h̄ₛ]): its halves");
        w.WriteLine("// copied into the contiguous blocks [Units, Dim] and [Units, KeyDim] the projection kernels read (an empty keyHalf is");
        w.WriteLine("// not wanted), and back.");
        using (w.Block($"private static void SplitScoreWeight(ReadOnlySpan<{T}> weight, Span<{T}> queryHalf, Span<{T}> keyHalf)"))
        {
            using (w.Block("for (int u = 0; u < Units; u++)"))
            {
                w.WriteLine("weight.Slice(u * (Dim + KeyDim), Dim).CopyTo(queryHalf.Slice(u * Dim, Dim));");
                w.WriteLine("if (!keyHalf.IsEmpty) weight.Slice(u * (Dim + KeyDim) + Dim, KeyDim).CopyTo(keyHalf.Slice(u * KeyDim, KeyDim));");
            }
        }
        w.WriteLine();
        using (w.Block($"private static void JoinScoreWeight(ReadOnlySpan<{T}> queryHalf, ReadOnlySpan<{T}> keyHalf, Span<{T}> weight)"))
        {
            using (w.Block("for (int u = 0; u < Units; u++)"))
            {
                w.WriteLine("queryHalf.Slice(u * Dim, Dim).CopyTo(weight.Slice(u * (Dim + KeyDim), Dim));");
                w.WriteLine("keyHalf.Slice(u * KeyDim, KeyDim).CopyTo(weight.Slice(u * (Dim + KeyDim) + Dim, KeyDim));");
            }
        }
    }

    // Per query, after ∂aₜ over the window: the softmax backward and the concat score's backward into ∂QP, ∂KP and ∂v_a's row share.
    private static void EmitConcatScoreBackward(SourceWriter w, string T, string concatScoreBackward, string scoreTarget)
    {
        w.WriteLine("// ∂eₜ = α ⊙ (∂α − Σ α ⊙ ∂α): the softmax backward.");
        w.WriteLine($"AttentionMath.SoftmaxBackward<{T}>(alpha, g, g);");
        w.WriteLine();
        w.WriteLine("// eₜ(s) = v_aᵀ zₜₛ, zₜₛ = tanh(qpₜ + kpₛ) recomputed: ∂v_a += ∂eₜ(s) zₜₛ (this batch row's share),");
        w.WriteLine("// ∂qpₜ and ∂kpₛ += ∂eₜ(s) v_a ⊙ (1 − zₜₛ²).");
        w.WriteLine($"ref {T} qp = ref tape.QueryProjection[row * Units];");
        w.WriteLine($"ref {T} dqp = ref {scoreTarget}[tape.Batch * ScoreShareStride + row * Units];");
        w.WriteLine($"ref {T} dScoreVector = ref {scoreTarget}[b * ScoreShareStride];");
        using (w.Block("for (int s = 0; s < count; s++)"))
        {
            w.WriteLine("if (g[s] == 0) continue;");
            w.WriteLine("int key = b * keyLength + start + s;");
            w.WriteLine($"{concatScoreBackward}(g[s], ref qp, ref tape.KeyProjection[key * Units], ref scoreVector, ref dScoreVector, ref dqp, ref {scoreTarget}[tape.Batch * ScoreShareStride + (rows + key) * Units]);");
        }
    }

    // Per query, after ∂aₜ over the window: the softmax backward, the score factor and the dot score's backward into ∂q'ₜ and ∂kₛ.
    private static void EmitProductScoreBackward(SourceWriter w, string T, bool general, string keyAxpy, string queryWidth)
    {
        w.WriteLine("// ∂eₜ = factor · α ⊙ (∂α − Σ α ⊙ ∂α): the softmax backward, then the score factor.");
        w.WriteLine($"AttentionMath.SoftmaxBackward<{T}>(alpha, g, g);");
        w.WriteLine("AttentionMath.Scale(g, ScoreFactor);");
        w.WriteLine();
        w.WriteLine($"// eₜ(s) = q'ₜᵀ kₛ: ∂q'ₜ += ∂eₜ(s) kₛ, ∂kₛ += ∂eₜ(s) q'ₜ (q' = {(general ? "W_a hₜ, from the tape" : "the query itself")}).");
        w.WriteLine($"ref {T} q = ref {(general ? "tape.QueryProjection[row * KeyDim]" : "MemoryMarshal.GetReference(query.Slice(row * Dim, Dim))")};");
        using (w.Block("for (int s = 0; s < count; s++)"))
        {
            w.WriteLine("if (g[s] == 0) continue;");
            w.WriteLine("int key = b * keyLength + start + s;");
            w.WriteLine($"if (!dQueryTarget.IsEmpty) {keyAxpy}(g[s], ref MemoryMarshal.GetReference(keys.Slice(key * KeyDim, KeyDim)), ref dQueryTarget[row * {queryWidth}]);");
            w.WriteLine($"if (!dKeys.IsEmpty) {keyAxpy}(g[s], ref q, ref dKeys[key * KeyDim]);");
        }
    }

    // The predictor's per-query backward, fused over its units: ∂v_p += ∂u z and ∂(W_p h) = ∂u v_p ⊙ (1 − z²).
    private static string PredictorBackwardKernel(Kernels kernels, LocalModel model)
    {
        int units = model.PredictorUnits;
        ElementType element = model.Element;
        string T = element.Keyword;
        return kernels.Custom($"PredictorBackward{units}", writer =>
        {
            writer.Summary($"The position predictor's backward for one query over {units} units, given δ = ∂L/∂u with u = v_pᵀ z, z = tanh(W_p h):\n∂L/∂v_p += δ z and ∂L/∂(W_p h) = δ v_p ⊙ (1 − z²) (written, not added).");
            writer.WriteLine("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            using (writer.Block($"private static void PredictorBackward{units}({T} delta, ref {T} z, ref {T} v, ref {T} dv, ref {T} dPre)"))
            {
                new VectorLoop(units, element,
                    "{VT} zv = {V}.LoadUnsafe(ref z, {o});\n" +
                    "{V}.MultiplyAddEstimate(delta{V}, zv, {V}.LoadUnsafe(ref dv, {o})).StoreUnsafe(ref dv, {o});\n" +
                    "(delta{V} * {V}.LoadUnsafe(ref v, {o}) * ({VT}.One - zv * zv)).StoreUnsafe(ref dPre, {o});",
                    "{T} zs = Unsafe.Add(ref z, {o});\n" +
                    "Unsafe.Add(ref dv, {o}) = {T}.MultiplyAddEstimate(delta, zs, Unsafe.Add(ref dv, {o}));\n" +
                    "Unsafe.Add(ref dPre, {o}) = delta * Unsafe.Add(ref v, {o}) * (1 - zs * zs);")
                { VectorPrologue = "{VT} delta{V} = {V}.Create(delta);", Unroll = 2 }.Emit(writer);
            }
        });
    }

    // The concat score's decoding pair: ProjectKeys computes kpₛ = W_a,k h̄ₛ once per source sequence, and
    // ForwardWithKeyProjection runs the inference forward from it, projecting only the queries (bit-identical to Forward).
    private static void EmitKeyProjectionCalls(SourceWriter w, LocalModel model, string keyProjection, string parameters)
    {
        ElementType element = model.Element;
        string T = element.Keyword;
        w.WriteLine();
        using (LayerScaffold.ProjectKeysBlock(w, element,
            "Computes the concat score's key half kpₛ = W_a,k h̄ₛ for every key: once per source sequence, then reused by\n" +
            "<see cref=\"ForwardWithKeyProjection\"/> at every decoder step, which then projects only the queries (O(Tk·KeyDim·Units) once\n" +
            "instead of at every step).", "KeyDim"))
        {
            LayerScaffold.DeclareScratch(w, element, "scratch", "Units * (Dim + KeyDim)");
            using (w.Block("try"))
            {
                w.WriteLine("// W_a's key half packed as the forward packs it, then every key in one product (each element computed as the forward");
                w.WriteLine("// computes it, whichever rows one call covers).");
                w.WriteLine($"Span<{T}> queryWeight = scratch.Slice(0, Units * Dim), keyWeight = scratch.Slice(Units * Dim, Units * KeyDim);");
                w.WriteLine("SplitScoreWeight(ScoreWeight.Value, queryWeight, keyWeight);");
                w.WriteLine("keyProjection.Clear();");
                w.WriteLine($"{keyProjection}(batch * keyLength, Units, ref MemoryMarshal.GetReference(keys), ref MemoryMarshal.GetReference(keyWeight), ref MemoryMarshal.GetReference(keyProjection));");
            }
            using (w.Block("finally"))
            {
                LayerScaffold.ReturnScratch(w, element, "scratch");
            }
        }
        w.WriteLine();
        w.Summary("Inference forward from a key projection computed once by <see cref=\"ProjectKeys\"/>: the call a decoder makes at every step.\n" +
            "Gives exactly what <c>Forward</c> gives on the keys that projection came from; keeps no state and allocates nothing in steady\nstate.");
        w.WriteLine("/// <param name=\"batch\">B.</param>");
        w.WriteLine("/// <param name=\"queryLength\">Tq.</param>");
        w.WriteLine("/// <param name=\"keyLength\">Tk (the source length S), at least 1.</param>");
        w.WriteLine("/// <param name=\"query\">[B, Tq, Dim].</param>");
        w.WriteLine("/// <param name=\"keyProjection\">[B, Tk, Units], from <see cref=\"ProjectKeys\"/>.</param>");
        w.WriteLine("/// <param name=\"values\">[B, Tk, ValueDim] (pass the keys when they are the values).</param>");
        w.WriteLine("/// <param name=\"context\">[B, Tq, ValueDim], written.</param>");
        w.WriteLine("/// <param name=\"weights\">[B, Tq, Tk], written when not empty: aₜ(s) inside each window, zero outside.</param>");
        w.WriteLine("/// <param name=\"mask\">Which keys each query may attend to (true = may attend).</param>");
        w.WriteLine("/// <param name=\"positions\">[B, Tq], written when not empty: the aligned position pₜ of each query.</param>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the shapes, Tk &lt; 1, or an output overlaps an input.</exception>");
        using (w.Block($"public void ForwardWithKeyProjection({parameters})"))
        {
            w.WriteLine("ThrowIfInvalidForward(batch, queryLength, keyLength, query, keyProjection, values, false, context, weights, mask, positions, keysProjected: true);");
            w.WriteLine("ForwardBatch(null, batch, queryLength, keyLength, query, keyProjection, values, context, weights, mask, positions, keysProjected: true);");
        }
    }

    private static void WriteForwardParamDocs(SourceWriter w, bool tape)
    {
        w.WriteLine("/// <param name=\"batch\">B.</param>");
        w.WriteLine("/// <param name=\"queryLength\">Tq.</param>");
        w.WriteLine("/// <param name=\"keyLength\">Tk (the source length S), at least 1.</param>");
        w.WriteLine("/// <param name=\"query\">[B, Tq, Dim].</param>");
        w.WriteLine("/// <param name=\"keys\">[B, Tk, KeyDim].</param>");
        w.WriteLine("/// <param name=\"values\">[B, Tk, ValueDim], or empty to use the keys as values (needs ValueDim = KeyDim).</param>");
        w.WriteLine("/// <param name=\"context\">[B, Tq, ValueDim], written.</param>");
        w.WriteLine("/// <param name=\"weights\">[B, Tq, Tk], written when not empty: aₜ(s) inside each window, zero outside" + (tape ? " (the tape keeps its own copy of the windows)" : "") + ".</param>");
        w.WriteLine("/// <param name=\"mask\">Which keys each query may attend to (true = may attend); a query with nothing allowed in its window gets zero weights and a zero context.</param>");
        w.WriteLine("/// <param name=\"positions\">[B, Tq], written when not empty: the aligned position pₜ of each query.</param>");
        w.WriteLine("/// <exception cref=\"ArgumentException\">A length does not match the shapes, Tk &lt; 1, or an output overlaps an input.</exception>");
    }
}
