using System.Collections.Generic;
using System.Globalization;
using AttentionGen.Generator.Model;

namespace AttentionGen.Generator.Emit;

/// <summary>
/// Writes a <c>[MultiHeadAttention]</c> layer (Vaswani et al. 2017, with PyTorch <c>nn.MultiheadAttention</c>'s
/// semantics and parameter names) whose attention core is tiled with an online softmax (FlashAttention-2, Dao 2023):
/// per head, query blocks of <see cref="QueryBlock"/> rows meet key tiles of <see cref="KeyTile"/> keys; each tile's
/// scores live only in a small scratch, the running maximum and sum rescale the output accumulator, and the forward
/// keeps the row log-sum-exp so that the backward recomputes the weights tile by tile. The T × T matrix is never held.
/// Every product is one of the shared register-blocked blocks, specialised to the head dimension and the tile width.
/// </summary>
internal static class MultiHeadEmitter
{
    /// <summary>Query rows per block: the block's tile of scores, its outputs and one key tile stay in the L1 cache.</summary>
    public const int QueryBlock = 32;

    /// <summary>Keys per tile: a multiple of every vector width (16, 8 and 4 floats), so the score products have no column tail; 64 measured fastest (against 32 and 48) at T = 64 and T = 1024.</summary>
    public const int KeyTile = 64;

    public static string Emit(MultiHeadModel model)
    {
        ElementType element = model.Element;
        string T = element.Keyword;
        var constants = new[]
        {
            new LayerConstant("ModelDim", model.ModelDim, "E: the dimension of each query and of each output (PyTorch <c>embed_dim</c>)."),
            new LayerConstant("Heads", model.Heads, "H: the number of heads (PyTorch <c>num_heads</c>)."),
            new LayerConstant("HeadDim", model.HeadDim, "d = E / H: each head's dimension."),
            new LayerConstant("KeyDim", model.KeyDim, "The dimension of each key as given (PyTorch <c>kdim</c>)."),
            new LayerConstant("ValueDim", model.ValueDim, "The dimension of each value as given (PyTorch <c>vdim</c>)."),
            new LayerConstant("QueryBlock", QueryBlock, "Query rows processed together by the tiled kernel."),
            new LayerConstant("KeyTile", KeyTile, "Keys per tile of the tiled kernel; the scores of one block × tile are all that is ever held."),
        };
        if (model.ExtraKeys > 0)
        {
            constants = [.. constants, new LayerConstant("ExtraKeys", model.ExtraKeys,
                "Keys every query sees after the given ones (" + (model.AddBiasKeyValue ? "bias_k" + (model.AddZeroAttention ? ", then a zero key" : "") : "a zero key") + "): the weights have Tk + ExtraKeys columns.")];
        }
        var parameters = new List<LayerParameter>();
        // PyTorch's _reset_parameters: xavier_uniform_ on in_proj_weight (or each of q/k/v_proj_weight), zero biases;
        // out_proj is an nn.Linear, U(−1/√E, 1/√E), with its bias then zeroed.
        if (model.PackedProjection)
        {
            parameters.Add(new("InProjectionWeight", "in_proj_weight", new[] { "3 * ModelDim", "ModelDim" },
                "[W_Q; W_K; W_V] stacked by rows, each [E, E]; rows h·d … (h+1)·d − 1 of each belong to head h (PyTorch <c>in_proj_weight</c>).",
                $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: ModelDim, fanOut: 3 * ModelDim, random);"));
        }
        else
        {
            parameters.Add(new("QueryProjectionWeight", "q_proj_weight", new[] { "ModelDim", "ModelDim" },
                "W_Q [E, E] (PyTorch <c>q_proj_weight</c>, used when kdim or vdim differs from E).",
                $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: ModelDim, fanOut: ModelDim, random);"));
            parameters.Add(new("KeyProjectionWeight", "k_proj_weight", new[] { "ModelDim", "KeyDim" },
                "W_K [E, KeyDim] (PyTorch <c>k_proj_weight</c>).",
                $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: KeyDim, fanOut: ModelDim, random);"));
            parameters.Add(new("ValueProjectionWeight", "v_proj_weight", new[] { "ModelDim", "ValueDim" },
                "W_V [E, ValueDim] (PyTorch <c>v_proj_weight</c>).",
                $"Initializers.GlorotUniform<{T}>({{p}}, fanIn: ValueDim, fanOut: ModelDim, random);"));
        }
        if (model.Bias)
        {
            parameters.Add(new("InProjectionBias", "in_proj_bias", new[] { "3 * ModelDim" },
                "[b_Q; b_K; b_V], each [E]; starts at zero (PyTorch <c>in_proj_bias</c>).",
                $"Initializers.Zeros<{T}>({{p}});"));
        }
        if (model.AddBiasKeyValue)
        {
            // PyTorch: xavier_normal_ on the [1, 1, E] tensors (fan-in = fan-out = E).
            parameters.Add(new("KeyBias", "bias_k", new[] { "1", "1", "ModelDim" },
                "k_b [E]: one more key after the projected keys of every sequence, split by heads (PyTorch <c>bias_k</c>, <c>add_bias_kv</c>).",
                $"Initializers.GlorotNormal<{T}>({{p}}, fanIn: ModelDim, fanOut: ModelDim, random);"));
            parameters.Add(new("ValueBias", "bias_v", new[] { "1", "1", "ModelDim" },
                "v_b [E]: the value of that key (PyTorch <c>bias_v</c>).",
                $"Initializers.GlorotNormal<{T}>({{p}}, fanIn: ModelDim, fanOut: ModelDim, random);"));
        }
        parameters.Add(new("OutProjectionWeight", "out_proj.weight", new[] { "ModelDim", "ModelDim" },
            "W_O [E, E]: output = concat(O₁ … O_H) W_Oᵀ + b_O (PyTorch <c>out_proj.weight</c>).",
            $"Initializers.Uniform<{T}>({{p}}, -1 / Math.Sqrt(ModelDim), 1 / Math.Sqrt(ModelDim), random);"));
        if (model.Bias)
        {
            parameters.Add(new("OutProjectionBias", "out_proj.bias", new[] { "ModelDim" },
                "b_O [E]; starts at zero (PyTorch <c>out_proj.bias</c>).",
                $"Initializers.Zeros<{T}>({{p}});"));
        }

        string summary =
            $"Multi-head attention, generated for E = {model.ModelDim}, H = {model.Heads} heads of d = {model.HeadDim}, keys of {model.KeyDim}, values of {model.ValueDim}, {T}" +
            $"{(model.Bias ? "" : ", no biases")}{(model.Causal ? ", causal" : "")}{(model.AddBiasKeyValue ? ", add_bias_kv" : "")}{(model.AddZeroAttention ? ", add_zero_attn" : "")}\n" +
            "(PyTorch <c>nn.MultiheadAttention(batch_first=True)</c>): Q = X_q W_Qᵀ + b_Q, K = X_k W_Kᵀ + b_K, V = X_v W_Vᵀ + b_V;\n" +
            "per head Oₕ = softmax(Qₕ Kₕᵀ / √d + mask) Vₕ; output = concat(O₁ … O_H) W_Oᵀ + b_O.\n" +
            "The core is tiled with an online softmax (FlashAttention-2): memory O(T·d) per head, never the T × T weights unless asked for.\n" +
            "Shapes: query [B, Tq, ModelDim], keys [B, Tk, KeyDim], values [B, Tk, ValueDim], output [B, Tq, ModelDim],\n" +
            (model.ExtraKeys > 0
                ? "weights [B, Tq, Tk + ExtraKeys] (averaged over heads) or [B, H, Tq, Tk + ExtraKeys], the extra keys last, as PyTorch. A <see cref=\"KeyValueCache\"/> serves incremental decoding."
                : "weights [B, Tq, Tk] (averaged over heads) or [B, H, Tq, Tk]. A <see cref=\"KeyValueCache\"/> serves incremental decoding.");

        return LayerScaffold.Write(model.Target, element, summary, constants, parameters, (writer, kernels) => EmitBody(writer, kernels, model));
    }

    // The weights' columns per query: the keys given, then the extra keys (add_bias_kv, add_zero_attn) as PyTorch returns them.
    private static string WeightColumns(MultiHeadModel model) => model.ExtraKeys > 0 ? "(keyLength + ExtraKeys)" : "keyLength";

    private static string Literal(ElementType element, double value)
        => element.Size == 4
            ? ((float)value).ToString("R", CultureInfo.InvariantCulture) + "f"
            : value.ToString("R", CultureInfo.InvariantCulture);

    private static void EmitBody(SourceWriter w, Kernels kernels, MultiHeadModel model)
    {
        ElementType element = model.Element;
        string T = element.Keyword;
        string name = model.Target.Name;
        string queryProjection = kernels.ProductTransposedAdd(model.ModelDim);   // Qₕ = X_q W_Q,ₕᵀ, and output = concat W_Oᵀ
        string keyProjection = kernels.ProductTransposedAdd(model.KeyDim);       // Kₕ = X_k W_K,ₕᵀ
        string valueProjection = kernels.ProductTransposedAdd(model.ValueDim);   // Vₕ = X_v W_V,ₕᵀ
        string scoreTile = kernels.MatrixProductAdd(KeyTile);                    // S = Qₕ Kₕᵀ for one block × tile (Kₕᵀ packed by tiles)
        string halfScoreTile = kernels.MatrixProductAdd(KeyTile / 2, KeyTile);   // its first half, when no row of the block sees past it
        string headProduct = kernels.MatrixProductAdd(model.HeadDim);            // O += P V, ∂V += Pᵀ ∂O, ∂Q += ∂S K, ∂K += ∂Sᵀ Q
        string modelProduct = kernels.MatrixProductAdd(model.ModelDim);          // ∂concat = ∂out W_O, weight gradients, ∂X_q
        string keyProduct = kernels.MatrixProductAdd(model.KeyDim);              // ∂X_k, ∂W_K
        string valueProduct = kernels.MatrixProductAdd(model.ValueDim);          // ∂X_v, ∂W_V
        string headDot = kernels.Dot(model.HeadDim);                             // Dᵢ = ∂Oᵢ · Oᵢ
        // bias rows copied by fixed-length kernels (a Span.CopyTo per row would be a Memmove call each)
        string copyHead = model.Bias ? kernels.Copy(model.HeadDim) : "";
        string copyModel = model.Bias ? kernels.Copy(model.ModelDim) : "";
        string scoreFactor = Literal(element, 1 / System.Math.Sqrt(model.HeadDim));

        string weightArray(string part) => model.PackedProjection ? "InProjectionWeight" : part + "ProjectionWeight";
        string weightOffset(string part) => !model.PackedProjection ? "0" : part switch { "Query" => "0", "Key" => "ModelDim * ModelDim", _ => "2 * ModelDim * ModelDim" };
        string inputDim(string part) => part switch { "Query" => "ModelDim", "Key" => "KeyDim", _ => "ValueDim" };
        string biasOffset(string part) => part switch { "Query" => "0", "Key" => "ModelDim", _ => "2 * ModelDim" };

        w.WriteLine();
        w.WriteLine("// 1/√d: the scores are (qᵢ/√d)ᵀ kⱼ; each head's queries are scaled once, as they are projected.");
        w.WriteLine($"private const {T} ScoreFactor = {scoreFactor};");
        w.WriteLine();
        w.WriteLine("// Head h's rows of W_Q, W_K, W_V (and of their gradients): rows h·d … (h+1)·d − 1.");
        foreach (string part in new[] { "Query", "Key", "Value" })
        {
            w.WriteLine($"private Span<{T}> {part}Weights(int head) => {weightArray(part)}.Value.AsSpan({weightOffset(part)} + head * HeadDim * {inputDim(part)}, HeadDim * {inputDim(part)});");
            w.WriteLine($"private Span<{T}> {part}WeightGradients(int head) => {weightArray(part)}.Gradient.AsSpan({weightOffset(part)} + head * HeadDim * {inputDim(part)}, HeadDim * {inputDim(part)});");
            if (model.Bias)
            {
                w.WriteLine($"private Span<{T}> {part}Biases(int head) => InProjectionBias.Value.AsSpan({biasOffset(part)} + head * HeadDim, HeadDim);");
                w.WriteLine($"private Span<{T}> {part}BiasGradients(int head) => InProjectionBias.Gradient.AsSpan({biasOffset(part)} + head * HeadDim, HeadDim);");
            }
        }

        if (model.AddBiasKeyValue)
        {
            w.WriteLine("// Head h's d entries of bias_k and bias_v (and of their gradients).");
            w.WriteLine($"private Span<{T}> KeyBiasOf(int head) => KeyBias.Value.AsSpan(head * HeadDim, HeadDim);");
            w.WriteLine($"private Span<{T}> ValueBiasOf(int head) => ValueBias.Value.AsSpan(head * HeadDim, HeadDim);");
        }

        EmitTape(w, model, T);
        EmitCache(w, T);
        EmitForwards(w, model, T, name, queryProjection, copyModel);
        EmitHeadForward(w, model, T, queryProjection, keyProjection, valueProjection, copyHead);
        // y += α x over one head's d entries, for the backward of bias_k and bias_v (requested only by layers that have them)
        string headMultiplyAdd = model.AddBiasKeyValue ? kernels.MultiplyAdd(model.HeadDim) : "";
        EmitAttend(w, model, T, scoreTile, halfScoreTile, headProduct, headDot);
        EmitBackward(w, model, T, modelProduct, keyProduct, valueProduct, headProduct, scoreTile, halfScoreTile, headDot, headMultiplyAdd);
        EmitChecks(w, model, T);
    }

    private static void EmitTape(SourceWriter w, MultiHeadModel model, string T)
    {
        string extraField = model.AddBiasKeyValue
            ? $"\n    // Each head's (index b·H + h) share of ∂bias_k and ∂bias_v [B·H, 2·d]: added over batch rows in order afterwards.\n    internal AlignedBuffer<{T}> ExtraKeyGradients;"
            : "";
        string extraGrow = model.AddBiasKeyValue ? "\n        Grow(ref ExtraKeyGradients, heads * 2 * HeadDim);" : "";
        w.WriteLine();
        w.WriteLine($$"""
            /// <summary>
            /// What a training forward records for <see cref="Backward"/>, per head (index b·H + h): the scaled queries Qₕ/√d, the keys Kₕ
            /// (by rows and, transposed, by tiles), the values Vₕ (by rows and by tiles), the outputs Oₕ and each query's log-sum-exp,
            /// plus concat(O₁ … O_H) and a copy of the mask and of the additive bias. O(T·E) in all (plus the bias's own size when one is
            /// given): the weights are recomputed by the backward, not stored.
            /// Owned by the caller, reused across steps, grown as needed.
            /// </summary>
            public sealed class Tape : AttentionTape
            {
                internal object? ParallelCallState; // the layer's CallState for calls with this tape on several threads
                internal AlignedBuffer<{{T}}> Queries;
                internal AlignedBuffer<{{T}}> Keys;
                internal AlignedBuffer<{{T}}> KeyTiles;
                internal AlignedBuffer<{{T}}> Values;
                internal AlignedBuffer<{{T}}> ValueTiles;
                internal AlignedBuffer<{{T}}> Outputs;
                internal AlignedBuffer<{{T}}> LogSumExp;
                // When every key fits in one tile (Tk ≤ KeyTile), the forward's final weights [B·H, Tq, KeyTile]: the backward
                // reads them instead of recomputing S = QKᵀ and e^{S − L} (one product and one exp pass fewer per block).
                internal AlignedBuffer<{{T}}> Weights;
                internal AlignedBuffer<{{T}}> Concatenated;
                internal AlignedBuffer<{{T}}> ConcatenatedGradient;
                internal AlignedBuffer<{{T}}> OutputGradients;
                internal AlignedBuffer<{{T}}> QueryGradients;
                internal AlignedBuffer<{{T}}> KeyGradients;
                internal AlignedBuffer<{{T}}> ValueGradients;
                internal bool[] KeyPadding = Array.Empty<bool>();
                internal bool[] PerQuery = Array.Empty<bool>();
                internal int KeyPaddingLength, PerQueryLength;
                internal bool Causal;
                // A copy of the additive bias ([Tq, Tk] or [B, H, Tq, Tk], empty when none): the backward recomputes S = QKᵀ/√d + bias.
                internal AlignedBuffer<{{T}}> Bias;
                internal int BiasLength;
                // ∂S of every head [B·H, Tq, Tk], only when ∂bias is asked for the broadcast shape [Tq, Tk]: summed over heads in order
                // after the parallel phase, so that the sum does not depend on the thread count.
                internal AlignedBuffer<{{T}}> HeadBiasGradients;{{extraField}}

                internal void Prepare(int batch, int queryLength, int keyLength, in AttentionMask mask, ReadOnlySpan<{{T}}> bias)
                {
                    int heads = batch * Heads;
                    int tiles = (keyLength + KeyTile - 1) / KeyTile;
                    Grow(ref Queries, heads * queryLength * HeadDim);
                    Grow(ref Keys, heads * keyLength * HeadDim);
                    Grow(ref KeyTiles, heads * tiles * KeyTile * HeadDim);
                    Grow(ref Values, heads * keyLength * HeadDim);
                    Grow(ref ValueTiles, heads * tiles * KeyTile * HeadDim);
                    Grow(ref Outputs, heads * queryLength * HeadDim);
                    Grow(ref LogSumExp, heads * queryLength);
                    if (keyLength <= KeyTile)
                    {
                        Grow(ref Weights, heads * queryLength * KeyTile);
                    }
                    Grow(ref Concatenated, batch * queryLength * ModelDim);
                    Grow(ref KeyPadding, mask.KeyPadding.Length);
                    Grow(ref PerQuery, mask.PerQuery.Length);
                    mask.KeyPadding.CopyTo(KeyPadding);
                    mask.PerQuery.CopyTo(PerQuery);
                    (KeyPaddingLength, PerQueryLength, Causal) = (mask.KeyPadding.Length, mask.PerQuery.Length, mask.Causal);
                    Grow(ref Bias, bias.Length);
                    bias.CopyTo(Bias);
                    BiasLength = bias.Length;
                    (Batch, QueryLength, KeyLength, IsRecorded) = (batch, queryLength, keyLength, true);
                }

                // Head `head`'s [Tq, Tk] of the recorded bias, or empty.
                internal ReadOnlySpan<{{T}}> HeadBias(int head) => BiasOfHead(Bias.AsSpan(0, BiasLength), head, QueryLength, KeyLength);

                // Scratch for every head's ∂S when ∂bias has the broadcast shape.
                internal Span<{{T}}> HeadBiasGradientScratch(int length)
                {
                    Grow(ref HeadBiasGradients, length);
                    return HeadBiasGradients.AsSpan(0, length);
                }

                // The stored weights of one head, or empty when the keys span more than one tile (the backward recomputes them).
                internal Span<{{T}}> StoredWeights(int head) => KeyLength <= KeyTile ? Weights.AsSpan(head * QueryLength * KeyTile, QueryLength * KeyTile) : default;

                internal void PrepareBackward()
                {
                    int heads = Batch * Heads;
                    Grow(ref ConcatenatedGradient, Batch * QueryLength * ModelDim);
                    Grow(ref OutputGradients, heads * QueryLength * HeadDim);
                    Grow(ref QueryGradients, heads * QueryLength * HeadDim);
                    Grow(ref KeyGradients, heads * KeyLength * HeadDim);
                    Grow(ref ValueGradients, heads * KeyLength * HeadDim);{{extraGrow}}
                }

                // The mask of the recorded forward (already including the layer's own causal flag).
                internal AttentionMask Mask => new()
                {
                    KeyPadding = KeyPadding.AsSpan(0, KeyPaddingLength),
                    PerQuery = PerQuery.AsSpan(0, PerQueryLength),
                    Causal = Causal,
                };
            }
            """);
    }

    private static void EmitCache(SourceWriter w, string T)
    {
        w.WriteLine();
        w.WriteLine($$"""
            /// <summary>
            /// A key-value cache for incremental decoding: the projected keys and values of every token appended so far, per head,
            /// laid out as the tiled kernel reads them (keys transposed by tiles). <see cref="Append"/> adds tokens in O(t·E·(KeyDim + ValueDim));
            /// <see cref="Forward(KeyValueCache, int, ReadOnlySpan{{{T}}}, Span{{{T}}}, Span{{{T}}}, AttentionMask, bool, ReadOnlySpan{{{T}}})"/> attends with new queries to
            /// every cached key in O(Tq·T·E), giving the same numbers as the full computation. Grows by doubling; not thread-safe.
            /// </summary>
            public sealed class KeyValueCache
            {
                internal {{T}}[] KeyTiles = Array.Empty<{{T}}>(); // [B, H, Capacity / KeyTile tiles, d, KeyTile]
                internal {{T}}[] Values = Array.Empty<{{T}}>();   // [B, H, Capacity, d]
                internal object? ParallelCallState; // the CallState of the last layer that attended to this cache on several threads

                /// <summary>Creates an empty cache for <paramref name="batch"/> sequences, with room for <paramref name="capacity"/> tokens before it grows.</summary>
                /// <exception cref="ArgumentException"><paramref name="batch"/> &lt; 1 or <paramref name="capacity"/> &lt; 0.</exception>
                public KeyValueCache(int batch, int capacity = KeyTile)
                {
                    Shapes.RequireAtLeast(batch, 1, nameof(batch));
                    Shapes.RequireAtLeast(capacity, 0, nameof(capacity));
                    Batch = batch;
                    Reserve(capacity);
                }

                /// <summary>B, the number of sequences.</summary>
                public int Batch { get; }

                /// <summary>How many tokens each sequence holds.</summary>
                public int Length { get; internal set; }

                /// <summary>How many tokens fit before the cache grows.</summary>
                public int Capacity { get; private set; }

                /// <summary>Forgets every token (keeps the memory).</summary>
                public void Clear() => Length = 0;

                internal void Reserve(int length)
                {
                    if (length <= Capacity)
                    {
                        return;
                    }
                    int capacity = Math.Max((length + KeyTile - 1) / KeyTile * KeyTile, 2 * Capacity);
                    var keyTiles = new {{T}}[(long)Batch * Heads * capacity * HeadDim];
                    var values = new {{T}}[(long)Batch * Heads * capacity * HeadDim];
                    for (int head = 0; head < Batch * Heads; head++)
                    {
                        // The tiles of a head are contiguous and keep their layout, so each head's part is one copy.
                        KeyTiles.AsSpan(head * Capacity * HeadDim, Capacity * HeadDim).CopyTo(keyTiles.AsSpan(head * capacity * HeadDim));
                        Values.AsSpan(head * Capacity * HeadDim, Capacity * HeadDim).CopyTo(values.AsSpan(head * capacity * HeadDim));
                    }
                    (KeyTiles, Values, Capacity) = (keyTiles, values, capacity);
                }

                internal Span<{{T}}> KeyTilesOf(int head) => KeyTiles.AsSpan(head * Capacity * HeadDim, Capacity * HeadDim);

                internal Span<{{T}}> ValuesOf(int head) => Values.AsSpan(head * Capacity * HeadDim, Capacity * HeadDim);
            }
            """);
    }

    private static void EmitForwards(SourceWriter w, MultiHeadModel model, string T, string name, string outputProjection, string copyModel)
    {
        string causal = model.Causal ? "true" : "mask.Causal";
        string weightColumns = WeightColumns(model);
        w.WriteLine();
        w.WriteLine($$"""
            /// <summary>
            /// Inference forward: output = concat(O₁ … O_H) W_Oᵀ + b_O with Oₕ = softmax(Qₕ Kₕᵀ / √d + mask) Vₕ. Keeps no state; allocates nothing
            /// in steady state (scratch comes from the array pool), so one layer serves many threads at once.
            /// </summary>
            /// <param name="batch">B.</param>
            /// <param name="queryLength">Tq.</param>
            /// <param name="keyLength">Tk, at least 1.</param>
            /// <param name="query">[B, Tq, ModelDim].</param>
            /// <param name="keys">[B, Tk, KeyDim] (for self-attention, the query again).</param>
            /// <param name="values">[B, Tk, ValueDim] (for self-attention, the query again).</param>
            /// <param name="output">[B, Tq, ModelDim], written.</param>
            /// <param name="weights">Written when not empty: [B, Tq, Tk] averaged over heads, or [B, H, Tq, Tk] when <paramref name="averageWeights"/> is false.</param>
            /// <param name="mask">Which keys each query may attend to (true = may attend); a fully masked query gets zero weights and a zero head output.</param>
            /// <param name="averageWeights">PyTorch's <c>average_attn_weights</c>: whether <paramref name="weights"/> is the mean over heads.</param>
            /// <param name="attentionBias">Optional additive bias (PyTorch's float <c>attn_mask</c>), added to the scaled scores before the softmax:
            /// [Tq, Tk] (shared by every batch row and head) or [B, H, Tq, Tk]; −∞ forbids a key. Empty: none.</param>
            /// <exception cref="ArgumentException">A length does not match the shapes, Tk &lt; 1, or an output overlaps an input.</exception>
            public void Forward(int batch, int queryLength, int keyLength, ReadOnlySpan<{{T}}> query, ReadOnlySpan<{{T}}> keys, ReadOnlySpan<{{T}}> values, Span<{{T}}> output, Span<{{T}}> weights = default, AttentionMask mask = default, bool averageWeights = true, ReadOnlySpan<{{T}}> attentionBias = default)
            {
                ThrowIfInvalidForward(batch, queryLength, keyLength, query, keys, values, output, weights, mask, averageWeights, attentionBias);
                ForwardCore(null, null, batch, queryLength, keyLength, query, keys, values, output, weights, mask, averageWeights, attentionBias);
            }

            /// <summary>Training forward: the inference result, and records in <paramref name="tape"/> what <see cref="Backward"/> needs.</summary>
            /// <param name="tape">The caller's reusable tape; grown to these lengths if needed.</param>
            /// <param name="batch">B.</param>
            /// <param name="queryLength">Tq.</param>
            /// <param name="keyLength">Tk, at least 1.</param>
            /// <param name="query">[B, Tq, ModelDim].</param>
            /// <param name="keys">[B, Tk, KeyDim].</param>
            /// <param name="values">[B, Tk, ValueDim].</param>
            /// <param name="output">[B, Tq, ModelDim], written.</param>
            /// <param name="weights">Written when not empty: [B, Tq, Tk] averaged over heads, or [B, H, Tq, Tk].</param>
            /// <param name="mask">Which keys each query may attend to (true = may attend); the tape keeps a copy.</param>
            /// <param name="averageWeights">Whether <paramref name="weights"/> is the mean over heads.</param>
            /// <param name="attentionBias">Optional additive bias [Tq, Tk] or [B, H, Tq, Tk] (PyTorch's float <c>attn_mask</c>); the tape keeps a copy.</param>
            /// <exception cref="ArgumentException">A length does not match the shapes, Tk &lt; 1, or an output overlaps an input.</exception>
            public void Forward(Tape tape, int batch, int queryLength, int keyLength, ReadOnlySpan<{{T}}> query, ReadOnlySpan<{{T}}> keys, ReadOnlySpan<{{T}}> values, Span<{{T}}> output, Span<{{T}}> weights = default, AttentionMask mask = default, bool averageWeights = true, ReadOnlySpan<{{T}}> attentionBias = default)
            {
                ArgumentNullException.ThrowIfNull(tape);
                ThrowIfInvalidForward(batch, queryLength, keyLength, query, keys, values, output, weights, mask, averageWeights, attentionBias);
                tape.Prepare(batch, queryLength, keyLength, new AttentionMask { KeyPadding = mask.KeyPadding, PerQuery = mask.PerQuery, Causal = {{causal}} }, attentionBias);
                ForwardCore(tape, null, batch, queryLength, keyLength, query, keys, values, output, weights, mask, averageWeights, attentionBias);
            }

            /// <summary>
            /// Appends <paramref name="length"/> tokens to every sequence of <paramref name="cache"/>: their keys and values are projected per head
            /// (Kₕ = X_k W_K,ₕᵀ + b_K,ₕ, Vₕ = X_v W_V,ₕᵀ + b_V,ₕ) and stored.
            /// </summary>
            /// <param name="cache">The cache, created for this layer's kind with the call's batch size.</param>
            /// <param name="length">t, the number of new tokens per sequence.</param>
            /// <param name="keys">[B, t, KeyDim].</param>
            /// <param name="values">[B, t, ValueDim].</param>
            /// <exception cref="ArgumentException">A length does not match the shapes.</exception>
            public void Append(KeyValueCache cache, int length, ReadOnlySpan<{{T}}> keys, ReadOnlySpan<{{T}}> values)
            {
                ArgumentNullException.ThrowIfNull(cache);
                Shapes.RequireAtLeast(length, 0, nameof(length));
                int batch = cache.Batch;
                Shapes.RequireLength(keys.Length, (long)batch * length * KeyDim, nameof(keys), $"[B={batch}, t={length}, KeyDim={KeyDim}]");
                Shapes.RequireLength(values.Length, (long)batch * length * ValueDim, nameof(values), $"[B={batch}, t={length}, ValueDim={ValueDim}]");
                cache.Reserve(cache.Length + length);
                for (int head = 0; head < batch * Heads; head++)
                {
                    AppendHead(cache, head, length, keys, values);
                }
                cache.Length += length;
            }

            /// <summary>
            /// Decoding forward: new queries attend to every token in <paramref name="cache"/> (Tk = cache.Length, at least 1), causally aligned to
            /// the end when the layer or the mask is causal (query i sees the cached tokens up to Tk − Tq + i). Equal to the full forward's rows.
            /// </summary>
            /// <param name="cache">The cache holding the keys and values.</param>
            /// <param name="queryLength">Tq, the number of new queries per sequence.</param>
            /// <param name="query">[B, Tq, ModelDim].</param>
            /// <param name="output">[B, Tq, ModelDim], written.</param>
            /// <param name="weights">Written when not empty: [B, Tq, Tk] averaged over heads, or [B, H, Tq, Tk].</param>
            /// <param name="mask">Masks over the cached tokens: key padding [B, Tk], per query [B, Tq, Tk].</param>
            /// <param name="averageWeights">Whether <paramref name="weights"/> is the mean over heads.</param>
            /// <param name="attentionBias">Optional additive bias over the cached tokens: [Tq, Tk] or [B, H, Tq, Tk] with Tk = cache.Length.</param>
            /// <exception cref="ArgumentException">A length does not match the shapes, or the cache is empty.</exception>
            public void Forward(KeyValueCache cache, int queryLength, ReadOnlySpan<{{T}}> query, Span<{{T}}> output, Span<{{T}}> weights = default, AttentionMask mask = default, bool averageWeights = true, ReadOnlySpan<{{T}}> attentionBias = default)
            {
                ArgumentNullException.ThrowIfNull(cache);
                if (cache.Length < 1)
                {
                    throw new ArgumentException("The cache holds no tokens: Append keys and values before attending to them.", nameof(cache));
                }
                ThrowIfInvalidForward(cache.Batch, queryLength, cache.Length, query, default, default, output, weights, mask, averageWeights, attentionBias, checkKeys: false);
                ForwardCore(null, cache, cache.Batch, queryLength, cache.Length, query, default, default, output, weights, mask, averageWeights, attentionBias);
            }

            /// <summary>
            /// The attention core alone, PyTorch's <c>scaled_dot_product_attention(q, k, v)</c> on [B, H, T, d] tensors: per head
            /// Oₕ = softmax(Qₕ Kₕᵀ / √d + mask) Vₕ, with no projections (causal when the layer or the mask is).
            /// </summary>
            /// <param name="batch">B.</param>
            /// <param name="queryLength">Tq.</param>
            /// <param name="keyLength">Tk, at least 1.</param>
            /// <param name="queries">[B, H, Tq, HeadDim].</param>
            /// <param name="keys">[B, H, Tk, HeadDim].</param>
            /// <param name="values">[B, H, Tk, HeadDim].</param>
            /// <param name="output">[B, H, Tq, HeadDim], written.</param>
            /// <param name="mask">Which keys each query may attend to (true = may attend), shared by the heads.</param>
            /// <param name="attentionBias">Optional additive bias (a float <c>attn_mask</c>) added to the scaled scores: [Tq, Tk] or [B, H, Tq, Tk].</param>
            /// <exception cref="ArgumentException">A length does not match the shapes, or Tk &lt; 1.</exception>
            public void ScaledDotProductAttention(int batch, int queryLength, int keyLength, ReadOnlySpan<{{T}}> queries, ReadOnlySpan<{{T}}> keys, ReadOnlySpan<{{T}}> values, Span<{{T}}> output, AttentionMask mask = default, ReadOnlySpan<{{T}}> attentionBias = default)
            {
                ThrowIfInvalidCore(batch, queryLength, keyLength, queries, keys, values, output, mask, attentionBias);
                AttentionMask effective = new() { KeyPadding = mask.KeyPadding, PerQuery = mask.PerQuery, Causal = {{causal}} };
                long work = (long)batch * Heads * queryLength * keyLength * HeadDim * 2;
                if (BatchParallel.ShouldSplit(batch * Heads, MaxDegreeOfParallelism, work, ParallelWorkThreshold))
                {
                    BatchParallel.For<{{T}}>(batch * Heads, MaxDegreeOfParallelism, this,
                        static (int head, object state, in ChunkSpans<{{T}}> s) => (({{name}})state).CoreHead(head, s.QueryLength, s.KeyLength, s.R0, s.R1, s.R2, s.W0, s.Mask, s.R3),
                        (batch, queryLength, keyLength), effective, r0: queries, r1: keys, r2: values, r3: attentionBias, w0: output);
                }
                else
                {
                    for (int head = 0; head < batch * Heads; head++)
                    {
                        CoreHead(head, queryLength, keyLength, queries, keys, values, output, effective, attentionBias);
                    }
                }
            }

            /// <summary>
            /// The attention core alone, training forward: as <see cref="ScaledDotProductAttention(int, int, int, ReadOnlySpan{{{T}}}, ReadOnlySpan{{{T}}}, ReadOnlySpan{{{T}}}, Span{{{T}}}, AttentionMask, ReadOnlySpan{{{T}}})"/>,
            /// and records in <paramref name="tape"/> what <see cref="ScaledDotProductAttentionBackward"/> needs (O(T·d) per head: no weights).
            /// </summary>
            /// <param name="tape">The caller's reusable tape.</param>
            /// <param name="batch">B.</param>
            /// <param name="queryLength">Tq.</param>
            /// <param name="keyLength">Tk, at least 1.</param>
            /// <param name="queries">[B, H, Tq, HeadDim].</param>
            /// <param name="keys">[B, H, Tk, HeadDim].</param>
            /// <param name="values">[B, H, Tk, HeadDim].</param>
            /// <param name="output">[B, H, Tq, HeadDim], written.</param>
            /// <param name="mask">Which keys each query may attend to (true = may attend); the tape keeps a copy.</param>
            /// <param name="attentionBias">Optional additive bias [Tq, Tk] or [B, H, Tq, Tk]; the tape keeps a copy.</param>
            /// <exception cref="ArgumentException">A length does not match the shapes, or Tk &lt; 1.</exception>
            public void ScaledDotProductAttention(Tape tape, int batch, int queryLength, int keyLength, ReadOnlySpan<{{T}}> queries, ReadOnlySpan<{{T}}> keys, ReadOnlySpan<{{T}}> values, Span<{{T}}> output, AttentionMask mask = default, ReadOnlySpan<{{T}}> attentionBias = default)
            {
                ArgumentNullException.ThrowIfNull(tape);
                ThrowIfInvalidCore(batch, queryLength, keyLength, queries, keys, values, output, mask, attentionBias);
                AttentionMask effective = new() { KeyPadding = mask.KeyPadding, PerQuery = mask.PerQuery, Causal = {{causal}} };
                tape.Prepare(batch, queryLength, keyLength, effective, attentionBias);
                long work = (long)batch * Heads * queryLength * keyLength * HeadDim * 2;
                if (BatchParallel.ShouldSplit(batch * Heads, MaxDegreeOfParallelism, work, ParallelWorkThreshold))
                {
                    BatchParallel.For<{{T}}>(batch * Heads, MaxDegreeOfParallelism, tape,
                        static (int head, object state, in ChunkSpans<{{T}}> s) => CoreHeadRecorded((Tape)state, head, s.R0, s.R1, s.R2, s.W0),
                        (batch, queryLength, keyLength), effective, r0: queries, r1: keys, r2: values, w0: output);
                }
                else
                {
                    for (int head = 0; head < batch * Heads; head++)
                    {
                        CoreHeadRecorded(tape, head, queries, keys, values, output);
                    }
                }
            }

            // One head of the recorded core: the tape keeps Qₕ/√d, Kₕ (rows and tiles), Vₕ (tiles only: the forward reads the caller's
            // rows, the backward only the tiles), Oₕ and L.
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private static void CoreHeadRecorded(Tape tape, int head, ReadOnlySpan<{{T}}> queries, ReadOnlySpan<{{T}}> keys, ReadOnlySpan<{{T}}> values, Span<{{T}}> output)
            {
                int queryLength = tape.QueryLength, keyLength = tape.KeyLength;
                int tiles = (keyLength + KeyTile - 1) / KeyTile;
                int queryLength_d = queryLength * HeadDim, keyLength_d = keyLength * HeadDim, tileLength = tiles * KeyTile * HeadDim;
                Span<{{T}}> scaled = tape.Queries.AsSpan(head * queryLength_d, queryLength_d);
                FlashSoftmax.Scale(queries.Slice(head * queryLength_d, queryLength_d), ScoreFactor, scaled);
                Span<{{T}}> headKeys = tape.Keys.AsSpan(head * keyLength_d, keyLength_d);
                keys.Slice(head * keyLength_d, keyLength_d).CopyTo(headKeys);
                Span<{{T}}> keyTiles = tape.KeyTiles.AsSpan(head * tileLength, tileLength);
                PackTiles(headKeys, keyLength, keyTiles);
                ReadOnlySpan<{{T}}> headValues = values.Slice(head * keyLength_d, keyLength_d);
                PackTiles(headValues, keyLength, tape.ValueTiles.AsSpan(head * tileLength, tileLength));
                Span<{{T}}> outputs = tape.Outputs.AsSpan(head * queryLength_d, queryLength_d);
                Attend(head / Heads, queryLength, keyLength, scaled, keyTiles, headValues, outputs, tape.LogSumExp.AsSpan(head * queryLength, queryLength), tape.Mask, tape.HeadBias(head), tape.StoredWeights(head));
                outputs.CopyTo(output.Slice(head * queryLength_d, queryLength_d));
            }

            /// <summary>
            /// The attention core's backward (FlashAttention-2): from ∂L/∂O [B, H, Tq, HeadDim] writes ∂L/∂Q, ∂L/∂K, ∂L/∂V (each [B, H, T, HeadDim]),
            /// recomputing the weights tile by tile from the recorded log-sum-exp.
            /// </summary>
            /// <param name="tape">The tape the recorded <c>ScaledDotProductAttention(tape, …)</c> wrote.</param>
            /// <param name="dOutput">∂L/∂O, [B, H, Tq, HeadDim].</param>
            /// <param name="dQueries">∂L/∂Q, [B, H, Tq, HeadDim], written.</param>
            /// <param name="dKeys">∂L/∂K, [B, H, Tk, HeadDim], written.</param>
            /// <param name="dValues">∂L/∂V, [B, H, Tk, HeadDim], written.</param>
            /// <param name="dAttentionBias">∂L/∂bias, written when not empty: [B, H, Tq, Tk], or [Tq, Tk] for the sum over batch rows and heads.</param>
            /// <exception cref="ArgumentException">A length does not match the recorded shapes, or the tape holds no forward.</exception>
            public void ScaledDotProductAttentionBackward(Tape tape, ReadOnlySpan<{{T}}> dOutput, Span<{{T}}> dQueries, Span<{{T}}> dKeys, Span<{{T}}> dValues, Span<{{T}}> dAttentionBias = default)
            {
                ArgumentNullException.ThrowIfNull(tape);
                if (!tape.IsRecorded)
                {
                    throw new ArgumentException("The tape holds no recorded forward: call ScaledDotProductAttention(tape, ...) first.", nameof(tape));
                }
                int batch = tape.Batch, queryLength = tape.QueryLength, keyLength = tape.KeyLength;
                Shapes.RequireLength(dOutput.Length, (long)batch * Heads * queryLength * HeadDim, nameof(dOutput), $"[B={batch}, H={Heads}, Tq={queryLength}, d={HeadDim}]");
                Shapes.RequireLength(dQueries.Length, (long)batch * Heads * queryLength * HeadDim, nameof(dQueries), $"[B={batch}, H={Heads}, Tq={queryLength}, d={HeadDim}]");
                Shapes.RequireLength(dKeys.Length, (long)batch * Heads * keyLength * HeadDim, nameof(dKeys), $"[B={batch}, H={Heads}, Tk={keyLength}, d={HeadDim}]");
                Shapes.RequireLength(dValues.Length, (long)batch * Heads * keyLength * HeadDim, nameof(dValues), $"[B={batch}, H={Heads}, Tk={keyLength}, d={HeadDim}]");
                RequireBiasLength(dAttentionBias.Length, batch, queryLength, keyLength, nameof(dAttentionBias));
                RequireNoBiasGradientOverlap(dAttentionBias, dQueries, dKeys, dValues);
                Span<{{T}}> headBiasGradients = HeadBiasGradientTarget(tape, dAttentionBias);
                long work = (long)batch * Heads * queryLength * keyLength * HeadDim * 4;
                if (BatchParallel.ShouldSplit(batch * Heads, MaxDegreeOfParallelism, work, ParallelWorkThreshold))
                {
                    BatchParallel.For<{{T}}>(batch * Heads, MaxDegreeOfParallelism, tape,
                        static (int head, object state, in ChunkSpans<{{T}}> s) => CoreHeadBackward((Tape)state, head, s.R0, s.W0, s.W1, s.W2, s.W3),
                        (batch, queryLength, keyLength), default, r0: dOutput, w0: dQueries, w1: dKeys, w2: dValues, w3: headBiasGradients);
                }
                else
                {
                    for (int head = 0; head < batch * Heads; head++)
                    {
                        CoreHeadBackward(tape, head, dOutput, dQueries, dKeys, dValues, headBiasGradients);
                    }
                }
                SumHeadBiasGradients(batch, queryLength * keyLength, headBiasGradients, dAttentionBias);
            }

            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private static void CoreHeadBackward(Tape tape, int head, ReadOnlySpan<{{T}}> dOutput, Span<{{T}}> dQueries, Span<{{T}}> dKeys, Span<{{T}}> dValues, Span<{{T}}> headBiasGradients)
            {
                int queryLength = tape.QueryLength, keyLength = tape.KeyLength;
                int tiles = (keyLength + KeyTile - 1) / KeyTile;
                int queryLength_d = queryLength * HeadDim, keyLength_d = keyLength * HeadDim, tileLength = tiles * KeyTile * HeadDim;
                Span<{{T}}> dQuery = dQueries.Slice(head * queryLength_d, queryLength_d);
                AttendBackward(head / Heads, queryLength, keyLength,
                    tape.Queries.AsSpan(head * queryLength_d, queryLength_d), tape.Keys.AsSpan(head * keyLength_d, keyLength_d),
                    tape.KeyTiles.AsSpan(head * tileLength, tileLength), tape.ValueTiles.AsSpan(head * tileLength, tileLength),
                    tape.Outputs.AsSpan(head * queryLength_d, queryLength_d), tape.LogSumExp.AsSpan(head * queryLength, queryLength),
                    dOutput.Slice(head * queryLength_d, queryLength_d), dQuery, dKeys.Slice(head * keyLength_d, keyLength_d), dValues.Slice(head * keyLength_d, keyLength_d), tape.Mask, tape.StoredWeights(head),
                    tape.HeadBias(head), headBiasGradients.IsEmpty ? default : headBiasGradients.Slice(head * queryLength * keyLength, queryLength * keyLength));
                // S = (Q/√d) Kᵀ: ∂Q = ∂(Q/√d) / √d.
                FlashSoftmax.Scale(dQuery, ScoreFactor);
            }

            private static void ThrowIfInvalidCore(int batch, int queryLength, int keyLength, ReadOnlySpan<{{T}}> queries, ReadOnlySpan<{{T}}> keys, ReadOnlySpan<{{T}}> values, Span<{{T}}> output, AttentionMask mask, ReadOnlySpan<{{T}}> attentionBias)
            {
                Shapes.RequireAtLeast(batch, 0, nameof(batch));
                Shapes.RequireAtLeast(queryLength, 0, nameof(queryLength));
                Shapes.RequireAtLeast(keyLength, 1, nameof(keyLength));
                Shapes.RequireLength(queries.Length, (long)batch * Heads * queryLength * HeadDim, nameof(queries), $"[B={batch}, H={Heads}, Tq={queryLength}, d={HeadDim}]");
                Shapes.RequireLength(keys.Length, (long)batch * Heads * keyLength * HeadDim, nameof(keys), $"[B={batch}, H={Heads}, Tk={keyLength}, d={HeadDim}]");
                Shapes.RequireLength(values.Length, (long)batch * Heads * keyLength * HeadDim, nameof(values), $"[B={batch}, H={Heads}, Tk={keyLength}, d={HeadDim}]");
                Shapes.RequireLength(output.Length, (long)batch * Heads * queryLength * HeadDim, nameof(output), $"[B={batch}, H={Heads}, Tq={queryLength}, d={HeadDim}]");
                mask.Validate(batch, queryLength, keyLength, nameof(mask));
                RequireBiasLength(attentionBias.Length, batch, queryLength, keyLength, nameof(attentionBias));
                Shapes.RequireNoOverlap<{{T}}, {{T}}>(output, attentionBias, nameof(output), nameof(attentionBias));
                Shapes.RequireNoOverlap<{{T}}, {{T}}>(output, queries, nameof(output), nameof(queries));
                Shapes.RequireNoOverlap<{{T}}, {{T}}>(output, keys, nameof(output), nameof(keys));
                Shapes.RequireNoOverlap<{{T}}, {{T}}>(output, values, nameof(output), nameof(values));
            }

            // One head of ScaledDotProductAttention: scale the queries, pack the keys by tiles, attend.
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private void CoreHead(int head, int queryLength, int keyLength, ReadOnlySpan<{{T}}> queries, ReadOnlySpan<{{T}}> keys, ReadOnlySpan<{{T}}> values, Span<{{T}}> output, AttentionMask mask, ReadOnlySpan<{{T}}> attentionBias)
            {
                int tiles = (keyLength + KeyTile - 1) / KeyTile;
                {{T}}[] rented = ArrayPool<{{T}}>.Shared.Rent(queryLength * HeadDim + tiles * KeyTile * HeadDim);
                try
                {
                    Span<{{T}}> scaled = rented.AsSpan(0, queryLength * HeadDim);
                    Span<{{T}}> keyTiles = rented.AsSpan(queryLength * HeadDim, tiles * KeyTile * HeadDim);
                    FlashSoftmax.Scale(queries.Slice(head * queryLength * HeadDim, queryLength * HeadDim), ScoreFactor, scaled);
                    PackTiles(keys.Slice(head * keyLength * HeadDim, keyLength * HeadDim), keyLength, keyTiles);
                    Attend(head / Heads, queryLength, keyLength, scaled, keyTiles, values.Slice(head * keyLength * HeadDim, keyLength * HeadDim),
                        output.Slice(head * queryLength * HeadDim, queryLength * HeadDim), default, mask, BiasOfHead(attentionBias, head, queryLength, keyLength));
                }
                finally
                {
                    ArrayPool<{{T}}>.Shared.Return(rented);
                }
            }

            // Calls with a key-value cache take CallStateWith's record, the others CallStateFor's.
            private sealed record CallState({{name}} Layer, Tape? Tape, KeyValueCache? Cache);
            """);
        LayerScaffold.DeclareCallStateFor(w, ", null");
        w.WriteLine();
        w.WriteLine("// The record of a decoding call on several threads (no tape), kept in its key-value cache as CallStateFor keeps a tape's, so");
        w.WriteLine("// that a decoder's steps allocate nothing in steady state.");
        using (w.Block("private CallState CallStateWith(KeyValueCache cache)"))
        {
            LayerScaffold.ReturnKeptCallState(w, "cache", "new CallState(this, null, cache)");
        }
        w.WriteLine();
        w.WriteLine($$"""
            // Heads are independent: large calls spread the B·H heads over threads, then the output projection over batch rows.
            // Each head and each row is computed the same way whatever the thread count, so the result is too.
            private void ForwardCore(Tape? tape, KeyValueCache? cache, int batch, int queryLength, int keyLength, ReadOnlySpan<{{T}}> query, ReadOnlySpan<{{T}}> keys, ReadOnlySpan<{{T}}> values, Span<{{T}}> output, Span<{{T}}> weights, AttentionMask mask, bool averageWeights, ReadOnlySpan<{{T}}> attentionBias)
            {
                AttentionMask effective = new() { KeyPadding = mask.KeyPadding, PerQuery = mask.PerQuery, Causal = {{causal}} };
                int headCount = batch * Heads;
                int concatenatedLength = batch * queryLength * ModelDim;
                int headWeightsLength = !weights.IsEmpty && averageWeights ? headCount * queryLength * {{weightColumns}} : 0;
                // Scratch: concat(O₁ … O_H) (unless the tape keeps it) and, for averaged weights, each head's weights.
                {{T}}[] rented = ArrayPool<{{T}}>.Shared.Rent((tape is null ? concatenatedLength : 0) + headWeightsLength);
                try
                {
                    Span<{{T}}> concatenated = tape is not null ? tape.Concatenated.AsSpan(0, concatenatedLength) : rented.AsSpan(0, concatenatedLength);
                    Span<{{T}}> headWeights = weights.IsEmpty ? default : averageWeights ? rented.AsSpan(tape is null ? concatenatedLength : 0, headWeightsLength) : weights;
                    long work = (long)batch * queryLength * keyLength * ModelDim * 2 + (long)batch * (queryLength + keyLength) * ModelDim * ModelDim;
                    if (BatchParallel.ShouldSplit(headCount, MaxDegreeOfParallelism, work, ParallelWorkThreshold))
                    {
                        BatchParallel.For<{{T}}>(headCount, MaxDegreeOfParallelism, cache is null ? CallStateFor(tape) : CallStateWith(cache),
                            static (int head, object state, in ChunkSpans<{{T}}> s) => ((CallState)state).Layer.HeadForward(((CallState)state).Tape, ((CallState)state).Cache, head, s.QueryLength, s.KeyLength, s.R0, s.R1, s.R2, s.W0, s.W1, s.Mask, s.R3),
                            (batch, queryLength, keyLength), effective, r0: query, r1: keys, r2: values, r3: attentionBias, w0: concatenated, w1: headWeights);
                        BatchParallel.For<{{T}}>(batch, MaxDegreeOfParallelism, this,
                            static (int b, object state, in ChunkSpans<{{T}}> s) => (({{name}})state).ProjectOutput(s.R0.Slice(b * s.QueryLength * ModelDim, s.QueryLength * ModelDim), s.W0.Slice(b * s.QueryLength * ModelDim, s.QueryLength * ModelDim), s.QueryLength),
                            (batch, queryLength, keyLength), default, r0: concatenated, w0: output);
                    }
                    else
                    {
                        for (int head = 0; head < headCount; head++)
                        {
                            HeadForward(tape, cache, head, queryLength, keyLength, query, keys, values, concatenated, headWeights, effective, attentionBias);
                        }
                        ProjectOutput(concatenated, output, batch * queryLength);
                    }
                    if (headWeightsLength > 0)
                    {
                        AverageHeads(batch, queryLength * {{weightColumns}}, headWeights, weights);
                    }
                }
                finally
                {
                    ArrayPool<{{T}}>.Shared.Return(rented);
                }
            }

            // output = concat(O₁ … O_H) W_Oᵀ + b_O over `rows` rows.
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private void ProjectOutput(ReadOnlySpan<{{T}}> concatenated, Span<{{T}}> output, int rows)
            {
                {{(model.Bias ? $"for (int r = 0; r < rows; r++) {copyModel}(ref MemoryMarshal.GetArrayDataReference(OutProjectionBias.Value), ref output[r * ModelDim]);" : "output.Slice(0, rows * ModelDim).Clear();")}}
                {{outputProjection}}(rows, ModelDim, ref MemoryMarshal.GetReference(concatenated), ref MemoryMarshal.GetArrayDataReference(OutProjectionWeight.Value), ref MemoryMarshal.GetReference(output));
            }

            // weights[b] = (1/H) Σₕ weightsₕ[b], heads added in order.
            private static void AverageHeads(int batch, int size, ReadOnlySpan<{{T}}> headWeights, Span<{{T}}> weights)
            {
                for (int b = 0; b < batch; b++)
                {
                    Span<{{T}}> target = weights.Slice(b * size, size);
                    headWeights.Slice(b * Heads * size, size).CopyTo(target);
                    for (int h = 1; h < Heads; h++)
                    {
                        ReadOnlySpan<{{T}}> head = headWeights.Slice((b * Heads + h) * size, size);
                        for (int k = 0; k < size; k++) target[k] += head[k];
                    }
                    FlashSoftmax.Scale(target, ({{T}})1 / Heads);
                }
            }
            """);
    }

    private static void EmitHeadForward(SourceWriter w, MultiHeadModel model, string T, string queryProjection, string keyProjection, string valueProjection, string copyHead)
    {
        string weightColumns = WeightColumns(model);
        string extraArguments = model.ExtraKeys == 0 ? "" : model.AddBiasKeyValue ? ", withExtraKeys: true, KeyBiasOf(h), ValueBiasOf(h)" : ", withExtraKeys: true";
        string weightsExtraArgument = model.AddBiasKeyValue ? ", KeyBiasOf(h)" : "";
        string Project(string part, string projection, string input, string rows, string target, string inputDimName)
        {
            string fill = model.Bias
                ? $"for (int t = 0; t < {rows}; t++) {copyHead}(ref MemoryMarshal.GetReference({part}Biases(h)), ref {target}[t * HeadDim]);"
                : $"{target}.Slice(0, {rows} * HeadDim).Clear();";
            return fill + "\n" +
                $"{projection}({rows}, HeadDim, ref MemoryMarshal.GetReference({input}), ref MemoryMarshal.GetReference({part}Weights(h)), ref MemoryMarshal.GetReference({target}));";
        }
        w.WriteLine();
        w.WriteLine($$"""
            // One head (index b·H + h) of a forward:
            //   Qₕ = (X_q W_Q,ₕᵀ + b_Q,ₕ) / √d          [Tq, d]
            //   Kₕ = X_k W_K,ₕᵀ + b_K,ₕ, Vₕ likewise    [Tk, d]  (from the cache when decoding)
            //   Oₕ = softmax(Qₕ Kₕᵀ + bias + mask) Vₕ   [Tq, d], by tiles; written into its columns of concat(O₁ … O_H)
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private void HeadForward(Tape? tape, KeyValueCache? cache, int head, int queryLength, int keyLength, ReadOnlySpan<{{T}}> query, ReadOnlySpan<{{T}}> keys, ReadOnlySpan<{{T}}> values, Span<{{T}}> concatenated, Span<{{T}}> headWeights, AttentionMask mask, ReadOnlySpan<{{T}}> attentionBias)
            {
                int b = head / Heads, h = head % Heads;
                int tiles = (keyLength + KeyTile - 1) / KeyTile;
                int queryLength_d = queryLength * HeadDim, keyLength_d = keyLength * HeadDim, tileLength = tiles * KeyTile * HeadDim;
                {{T}}[]? rented = tape is not null ? null
                    : ArrayPool<{{T}}>.Shared.Rent(2 * queryLength_d + queryLength + (cache is null ? 2 * keyLength_d + tileLength : 0));
                try
                {
                    Span<{{T}}> queries, outputs, logSumExp, projectedKeys = default, keyTiles, projectedValues;
                    if (tape is not null)
                    {
                        queries = tape.Queries.AsSpan(head * queryLength_d, queryLength_d);
                        outputs = tape.Outputs.AsSpan(head * queryLength_d, queryLength_d);
                        logSumExp = tape.LogSumExp.AsSpan(head * queryLength, queryLength);
                        projectedKeys = tape.Keys.AsSpan(head * keyLength_d, keyLength_d);
                        keyTiles = tape.KeyTiles.AsSpan(head * tileLength, tileLength);
                        projectedValues = tape.Values.AsSpan(head * keyLength_d, keyLength_d);
                    }
                    else
                    {
                        Span<{{T}}> scratch = rented!;
                        queries = scratch.Slice(0, queryLength_d);
                        outputs = scratch.Slice(queryLength_d, queryLength_d);
                        logSumExp = scratch.Slice(2 * queryLength_d, queryLength);
                        if (cache is null)
                        {
                            int start = 2 * queryLength_d + queryLength;
                            projectedKeys = scratch.Slice(start, keyLength_d);
                            projectedValues = scratch.Slice(start + keyLength_d, keyLength_d);
                            keyTiles = scratch.Slice(start + 2 * keyLength_d, tileLength);
                        }
                        else
                        {
                            keyTiles = cache.KeyTilesOf(head);
                            projectedValues = cache.ValuesOf(head);
                        }
                    }

                    // Qₕ = (X_q W_Q,ₕᵀ + b_Q,ₕ) / √d
                    ReadOnlySpan<{{T}}> rowQuery = query.Slice(b * queryLength * ModelDim, queryLength * ModelDim);
                    {{Project("Query", queryProjection, "rowQuery", "queryLength", "queries", "ModelDim").Replace("\n", "\n        ")}}
                    FlashSoftmax.Scale(queries, ScoreFactor);

                    if (cache is null)
                    {
                        // Kₕ = X_k W_K,ₕᵀ + b_K,ₕ, kept by rows and packed transposed by tiles; Vₕ = X_v W_V,ₕᵀ + b_V,ₕ.
                        ReadOnlySpan<{{T}}> rowKeys = keys.Slice(b * keyLength * KeyDim, keyLength * KeyDim);
                        ReadOnlySpan<{{T}}> rowValues = values.Slice(b * keyLength * ValueDim, keyLength * ValueDim);
                        {{Project("Key", keyProjection, "rowKeys", "keyLength", "projectedKeys", "KeyDim").Replace("\n", "\n            ")}}
                        PackTiles(projectedKeys, keyLength, keyTiles);
                        {{Project("Value", valueProjection, "rowValues", "keyLength", "projectedValues", "ValueDim").Replace("\n", "\n            ")}}
                        if (tape is not null)
                        {
                            PackTiles(projectedValues, keyLength, tape.ValueTiles.AsSpan(head * tileLength, tileLength));
                        }
                    }

                    ReadOnlySpan<{{T}}> headBias = BiasOfHead(attentionBias, head, queryLength, keyLength);
                    Attend(b, queryLength, keyLength, queries, keyTiles, projectedValues, outputs, logSumExp, mask, headBias, tape is null ? default : tape.StoredWeights(head){{extraArguments}});

                    // Head h's columns of concat(O₁ … O_H).
                    for (int t = 0; t < queryLength; t++)
                    {
                        outputs.Slice(t * HeadDim, HeadDim).CopyTo(concatenated.Slice((b * queryLength + t) * ModelDim + h * HeadDim, HeadDim));
                    }
                    if (!headWeights.IsEmpty)
                    {
                        WriteWeights(b, queryLength, keyLength, queries, keyTiles, logSumExp, headWeights.Slice(head * queryLength * {{weightColumns}}, queryLength * {{weightColumns}}), mask, headBias{{weightsExtraArgument}});
                    }
                }
                finally
                {
                    if (rented is not null)
                    {
                        ArrayPool<{{T}}>.Shared.Return(rented);
                    }
                }
            }

            // Projects `length` new tokens of one head into the cache: Kₕ by tiles at positions Length … Length + t − 1, Vₕ by rows.
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private void AppendHead(KeyValueCache cache, int head, int length, ReadOnlySpan<{{T}}> keys, ReadOnlySpan<{{T}}> values)
            {
                if (length == 0)
                {
                    return;
                }
                int b = head / Heads, h = head % Heads;
                int start = cache.Length;
                ReadOnlySpan<{{T}}> rowKeys = keys.Slice(b * length * KeyDim, length * KeyDim);
                ReadOnlySpan<{{T}}> rowValues = values.Slice(b * length * ValueDim, length * ValueDim);
                {{T}}[] rented = ArrayPool<{{T}}>.Shared.Rent(length * HeadDim);
                try
                {
                    Span<{{T}}> projectedKeys = rented.AsSpan(0, length * HeadDim);
                    {{Project("Key", keyProjection, "rowKeys", "length", "projectedKeys", "KeyDim").Replace("\n", "\n        ")}}
                    Span<{{T}}> keyTiles = cache.KeyTilesOf(head);
                    for (int t = 0; t < length; t++)
                    {
                        int position = start + t;
                        ref {{T}} column = ref keyTiles[position / KeyTile * KeyTile * HeadDim + position % KeyTile];
                        for (int k = 0; k < HeadDim; k++)
                        {
                            Unsafe.Add(ref column, k * KeyTile) = projectedKeys[t * HeadDim + k];
                        }
                    }
                    Span<{{T}}> projectedValues = cache.ValuesOf(head).Slice(start * HeadDim, length * HeadDim);
                    {{Project("Value", valueProjection, "rowValues", "length", "projectedValues", "ValueDim").Replace("\n", "\n        ")}}
                }
                finally
                {
                    ArrayPool<{{T}}>.Shared.Return(rented);
                }
            }

            // Rows [T, d] → tiles [⌈T / KeyTile⌉, d, KeyTile]: tile j holds the transposed rows j·KeyTile …, padded with zeros,
            // so a block of queries times one tile is a plain product with KeyTile columns.
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private static void PackTiles(ReadOnlySpan<{{T}}> rows, int length, Span<{{T}}> tiles)
            {
                int tileCount = (length + KeyTile - 1) / KeyTile;
                for (int tile = 0; tile < tileCount; tile++)
                {
                    int first = tile * KeyTile, count = Math.Min(KeyTile, length - first);
                    Span<{{T}}> target = tiles.Slice(tile * KeyTile * HeadDim, KeyTile * HeadDim);
                    if (count < KeyTile)
                    {
                        target.Clear();
                    }
                    // [count, d] → [d, KeyTile]: the runtime transposes in register blocks (8 × 8 floats, 4 × 4 doubles).
                    MatrixOps.Transpose<{{T}}>(rows.Slice(first * HeadDim, count * HeadDim), count, HeadDim, target, KeyTile);
                }
            }
            """);
    }

    private static void EmitAttend(SourceWriter w, MultiHeadModel model, string T, string scoreTile, string halfScoreTile, string headProduct, string headDot)
    {
        bool extras = model.ExtraKeys > 0, kv = model.AddBiasKeyValue, zero = model.AddZeroAttention;
        string extraParameters = !extras ? "" : kv
            ? $", bool withExtraKeys = false, ReadOnlySpan<{T}> keyBias = default, ReadOnlySpan<{T}> valueBias = default"
            : ", bool withExtraKeys = false";
        string extraStart = !extras ? "" : $$"""

                    if (withExtraKeys)
                    {
                        StartWithExtraKeys(rows, ref queryBlock, {{(kv ? "keyBias, valueBias, " : "")}}rowMax, rowSum, outputs.Slice(i0 * HeadDim, rows * HeadDim));
                    }
            """;
        string firstTileWrites = extras ? "j0 > 0 || withExtraKeys" : "j0 > 0";
        string weightsRow = extras ? "stride" : "keyLength";
        string weightsStride = extras ? "\n        int stride = keyLength + ExtraKeys;" : "";
        string weightsExtraParameter = kv ? $", ReadOnlySpan<{T}> keyBias" : "";
        string weightsExtraComment = !extras ? "" : "\n// Rows have Tk + ExtraKeys columns: the extra keys' weights e^{s − Lᵢ} come last" + (kv ? ", sᵢ = (qᵢ/√d) · k_b for bias_k" : "") + (zero ? ", s = 0 for the zero key" : "") + ".";
        string extraColumns = (kv ? $"\n        weights[i * stride + keyLength] = {T}.Exp({headDot}(ref Unsafe.Add(ref MemoryMarshal.GetReference(queries), i * HeadDim), ref MemoryMarshal.GetReference(keyBias)) - logSumExp[i]);" : "")
            + (zero ? $"\n        weights[i * stride + keyLength + ExtraKeys - 1] = {T}.Exp(-logSumExp[i]);" : "");
        string weightsExtraColumns = !extras ? "" : $$"""

                for (int i = 0; i < queryLength; i++)
                {{{extraColumns}}
                }
            """;
        string firstTileComment = "// O += P Vₕ for the tile: [rows, valid] · [valid, d]; the first tile writes O" + (extras ? " unless the extra keys started it" : "") +
            " (the rescale above leaves a row alone\n            // until it has a maximum, so nothing reads O before), and a block that sees no tile has ℓ = 0 and is cleared below.";
        w.WriteLine();
        w.WriteLine($$"""
            /// <summary>
            /// The tiled core of one head (FlashAttention-2's forward): for each block of query rows, for each tile of keys,
            /// S = Qₕ Kₕᵀ (+ bias) for the block × tile, masked; the online softmax folds S into each row's running maximum mᵢ and sum ℓᵢ and
            /// rescales the row's output by e^{m_old − m_new}; then O += P Vₕ for the tile. At the end Oᵢ ← Oᵢ / ℓᵢ (zero when nothing was
            /// allowed) and Lᵢ = mᵢ + log ℓᵢ. Causal blocks stop at their last visible tile. With <paramref name="storedWeights"/> (only
            /// when every key fits in one tile, so mᵢ is final after it) the weights e^{S − mᵢ} / ℓᵢ are kept for the backward.
            /// </summary>
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private static void Attend(int b, int queryLength, int keyLength, ReadOnlySpan<{{T}}> queries, ReadOnlySpan<{{T}}> keyTiles, ReadOnlySpan<{{T}}> values, Span<{{T}}> outputs, Span<{{T}}> logSumExp, in AttentionMask mask,
                ReadOnlySpan<{{T}}> bias, Span<{{T}}> storedWeights = default{{extraParameters}})
            {
                Span<{{T}}> scores = stackalloc {{T}}[QueryBlock * KeyTile];
                Span<{{T}}> rowMax = stackalloc {{T}}[QueryBlock];
                Span<{{T}}> rowSum = stackalloc {{T}}[QueryBlock];
                int shift = keyLength - queryLength;
                for (int i0 = 0; i0 < queryLength; i0 += QueryBlock)
                {
                    int rows = Math.Min(QueryBlock, queryLength - i0);
                    rowMax.Fill({{T}}.NegativeInfinity);
                    rowSum.Clear();
                    int keyEnd = mask.Causal ? (int)Math.Clamp((long)i0 + rows + shift, 0, keyLength) : keyLength;
                    ref {{T}} queryBlock = ref Unsafe.Add(ref MemoryMarshal.GetReference(queries), i0 * HeadDim);
                    ref {{T}} outputBlock = ref Unsafe.Add(ref MemoryMarshal.GetReference(outputs), i0 * HeadDim);{{extraStart}}
                    for (int j0 = 0; j0 < keyEnd; j0 += KeyTile)
                    {
                        // the tile's keys that some row of the block may see; past them every row's P is 0
                        int visible = Math.Min(KeyTile, keyEnd - j0);
                        Span<{{T}}> tile = scores.Slice(0, rows * KeyTile);
                        MaskedScores(b, i0, rows, j0, queryLength, keyLength, ref queryBlock, keyTiles, tile, mask, bias);
                        // Each row: m' = max(m, max S), P = e^{S − m'}, ℓ ← ℓ e^{m − m'} + Σ P, and O rescaled by e^{m − m'}.
                        FlashSoftmax.UpdateBlock(tile, rows, KeyTile, rowMax, rowSum, outputs.Slice(i0 * HeadDim, rows * HeadDim), HeadDim);
                        {{firstTileComment}}
                        {{headProduct}}(rows, visible, ref MemoryMarshal.GetReference(tile), KeyTile, 1, ref Unsafe.Add(ref MemoryMarshal.GetReference(values), j0 * HeadDim), ref outputBlock, accumulate: {{firstTileWrites}}, inDepthOrder: true);
                    }
                    for (int r = 0; r < rows; r++)
                    {
                        int i = i0 + r;
                        Span<{{T}}> output = outputs.Slice(i * HeadDim, HeadDim);
                        if (rowSum[r] > 0)
                        {
                            FlashSoftmax.Scale(output, 1 / rowSum[r]);
                        }
                        else if (rowSum[r] == 0)
                        {
                            output.Clear(); // nothing allowed: a zero output, never NaN
                        }
                        else
                        {
                            output.Fill({{T}}.NaN); // a NaN score propagates to its own row only
                        }
                        if (!logSumExp.IsEmpty)
                        {
                            logSumExp[i] = FlashSoftmax.LogSumExp(rowMax[r], rowSum[r]);
                        }
                        if (!storedWeights.IsEmpty)
                        {
                            // The row's weights, as the backward would recompute them: zero when nothing was allowed, NaN with a NaN score.
                            Span<{{T}}> stored = storedWeights.Slice(i * KeyTile, KeyTile);
                            if (rowSum[r] > 0)
                            {
                                FlashSoftmax.Scale(scores.Slice(r * KeyTile, KeyTile), 1 / rowSum[r], stored);
                            }
                            else if (rowSum[r] == 0)
                            {
                                stored.Clear();
                            }
                            else
                            {
                                stored.Fill({{T}}.NaN);
                            }
                        }
                    }
                }
            }

            // C = A Bᵀ for a block × tile ([rows, d] · [d, KeyTile], B's rows packed transposed by tiles: S from Qₕ and the keys, ∂P from ∂Oₕ
            // and the values) over the tile's first `visible` keys: all KeyTile columns, the first half when no row sees past it (each
            // element the same sum either way), none when no key is visible; the other columns of C are left as they were.
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            private static void TileProduct(int rows, int visible, ref {{T}} a, ref {{T}} packedTile, ref {{T}} c)
            {
                if (visible > KeyTile / 2)
                {
                    {{scoreTile}}(rows, HeadDim, ref a, HeadDim, 1, ref packedTile, ref c, accumulate: false);
                }
                else if (visible > 0)
                {
                    {{halfScoreTile}}(rows, HeadDim, ref a, HeadDim, 1, ref packedTile, ref c, accumulate: false);
                }
            }

            // One block × tile of scores, S = Qₕ Kₕᵀ ([rows, d] · [d, KeyTile], the keys packed transposed) plus the head's additive bias
            // [Tq, Tk] when there is one, with −∞ wherever a query may not look: past the last key, past its causal limit, padded keys, and
            // what the per-query mask forbids (whatever the bias says there). Shared by the forward, the weights and the backward, so all
            // three see the same scores. Only the keys some row of the block may see are multiplied out: none of a tile past the block's
            // causal end, the first half when no row sees past it (the diagonal tile of every other block); each score computed is the
            // same sum either way.
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private static void MaskedScores(int b, int i0, int rows, int j0, int queryLength, int keyLength, ref {{T}} queryBlock, ReadOnlySpan<{{T}}> keyTiles, Span<{{T}}> tile, in AttentionMask mask,
                ReadOnlySpan<{{T}}> bias)
            {
                int valid = Math.Min(KeyTile, keyLength - j0), shift = keyLength - queryLength;
                int keyEnd = mask.Causal ? (int)Math.Clamp((long)i0 + rows + shift, 0, keyLength) : keyLength;
                int visible = Math.Clamp(keyEnd - j0, 0, valid);
                ReadOnlySpan<bool> keyPadding = mask.KeyPadding.IsEmpty ? default : mask.KeyPadding.Slice(b * keyLength, keyLength);
                TileProduct(rows, visible, ref queryBlock, ref Unsafe.Add(ref MemoryMarshal.GetReference(keyTiles), j0 * HeadDim), ref MemoryMarshal.GetReference(tile));
                if (!bias.IsEmpty)
                {
                    // S += bias (PyTorch's float attn_mask) for the keys computed, after the 1/√d (already in the queries) and before the masks.
                    for (int r = 0; r < rows; r++)
                    {
                        Span<{{T}}> row = tile.Slice(r * KeyTile, visible);
                        System.Numerics.Tensors.TensorPrimitives.Add<{{T}}>(row, bias.Slice((i0 + r) * keyLength + j0, visible), row);
                    }
                }
                // A full tile that every row of the block may see whole (no masks, and causally even the block's first row
                // sees its last key) has nothing to mask.
                if (valid == KeyTile && keyPadding.IsEmpty && mask.PerQuery.IsEmpty && (!mask.Causal || (long)i0 + shift >= j0 + KeyTile - 1))
                {
                    return;
                }
                for (int r = 0; r < rows; r++)
                {
                    int i = i0 + r;
                    FlashSoftmax.MaskRow(tile.Slice(r * KeyTile, KeyTile), j0, valid, mask.Causal ? i + shift : int.MaxValue, keyPadding,
                        mask.PerQuery.IsEmpty ? default : mask.PerQuery.Slice((b * queryLength + i) * keyLength, keyLength));
                }
            }

            // The weights of one head, materialised only when asked for: pᵢⱼ = e^{sᵢⱼ − Lᵢ}, recomputed tile by tile.{{weightsExtraComment}}
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private static void WriteWeights(int b, int queryLength, int keyLength, ReadOnlySpan<{{T}}> queries, ReadOnlySpan<{{T}}> keyTiles, ReadOnlySpan<{{T}}> logSumExp, Span<{{T}}> weights, in AttentionMask mask, ReadOnlySpan<{{T}}> bias{{weightsExtraParameter}})
            {
                Span<{{T}}> scores = stackalloc {{T}}[QueryBlock * KeyTile];{{weightsStride}}
                for (int i0 = 0; i0 < queryLength; i0 += QueryBlock)
                {
                    int rows = Math.Min(QueryBlock, queryLength - i0);
                    ref {{T}} queryBlock = ref Unsafe.Add(ref MemoryMarshal.GetReference(queries), i0 * HeadDim);
                    for (int j0 = 0; j0 < keyLength; j0 += KeyTile)
                    {
                        int valid = Math.Min(KeyTile, keyLength - j0);
                        Span<{{T}}> tile = scores.Slice(0, rows * KeyTile);
                        MaskedScores(b, i0, rows, j0, queryLength, keyLength, ref queryBlock, keyTiles, tile, mask, bias);
                        for (int r = 0; r < rows; r++)
                        {
                            int i = i0 + r;
                            Span<{{T}}> row = tile.Slice(r * KeyTile, KeyTile);
                            FlashSoftmax.Recompute(row, logSumExp[i]);
                            row.Slice(0, valid).CopyTo(weights.Slice(i * {{weightsRow}} + j0, valid));
                        }
                    }
                }{{weightsExtraColumns}}
            }
            """);
        if (extras)
        {
            EmitExtraKeysStart(w, model, T, headDot);
        }
    }

    // PyTorch appends the extra keys after the given ones; every query sees them, so the online softmax can take them first:
    // each row's mᵢ, ℓᵢ and Oᵢ start from them instead of from −∞, 0 and 0, and the tiles then fold in as before.
    private static void EmitExtraKeysStart(SourceWriter w, MultiHeadModel model, string T, string headDot)
    {
        bool kv = model.AddBiasKeyValue, zero = model.AddZeroAttention;
        string body = kv && zero
            ? $$"""
                        // sᵢ = (qᵢ/√d) · k_b, and the zero key's score 0
                        {{T}} score = {{headDot}}(ref Unsafe.Add(ref queryBlock, r * HeadDim), ref MemoryMarshal.GetReference(keyBias));
                        {{T}} max = {{T}}.Max(score, 0);
                        {{T}} weight = {{T}}.Exp(score - max);
                        rowMax[r] = max;
                        rowSum[r] = weight + {{T}}.Exp(-max);
                        // Oᵢ = e^{sᵢ − mᵢ} v_b (the zero value adds nothing)
                        FlashSoftmax.Scale(valueBias, weight, outputs.Slice(r * HeadDim, HeadDim));
                """
            : kv
            ? $$"""
                        // sᵢ = (qᵢ/√d) · k_b: mᵢ = sᵢ, ℓᵢ = 1, Oᵢ = v_b
                        rowMax[r] = {{headDot}}(ref Unsafe.Add(ref queryBlock, r * HeadDim), ref MemoryMarshal.GetReference(keyBias));
                        rowSum[r] = 1;
                        valueBias.CopyTo(outputs.Slice(r * HeadDim, HeadDim));
                """
            : $$"""
                        // the zero key: score 0, value 0
                        rowMax[r] = 0;
                        rowSum[r] = 1;
                """;
        string parameters = kv ? $"ReadOnlySpan<{T}> keyBias, ReadOnlySpan<{T}> valueBias, " : "";
        string clear = kv ? "" : "\n    outputs.Slice(0, rows * HeadDim).Clear();";
        w.WriteLine();
        w.WriteLine($$"""
            // The extra keys (PyTorch's {{(kv ? "add_bias_kv" + (zero ? " and add_zero_attn" : "") : "add_zero_attn")}}), which every query sees whatever the masks say,
            // enter each row's online softmax first: mᵢ, ℓᵢ and Oᵢ of the block's rows start from them.
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private static void StartWithExtraKeys(int rows, ref {{T}} queryBlock, {{parameters}}Span<{{T}}> rowMax, Span<{{T}}> rowSum, Span<{{T}}> outputs)
            {{{clear}}
                for (int r = 0; r < rows; r++)
                {
            {{body}}
                }
            }
            """);
    }

    private static void EmitBackward(SourceWriter w, MultiHeadModel model, string T, string modelProduct, string keyProduct, string valueProduct, string headProduct, string scoreTile, string halfScoreTile, string headDot, string headMultiplyAdd)
    {
        bool kv = model.AddBiasKeyValue;
        string extraBackwardParameters = kv ? $",\n    bool withExtraKeys = false, ReadOnlySpan<{T}> keyBias = default, ReadOnlySpan<{T}> valueBias = default, Span<{T}> extraGradients = default" : "";
        string extraBackwardArguments = kv ? ",\n        withExtraKeys: true, KeyBiasOf(h), ValueBiasOf(h), tape.ExtraKeyGradients.AsSpan(head * 2 * HeadDim, 2 * HeadDim)" : "";
        string extraBackwardStart = kv ? "\n    extraGradients.Clear();" : "";
        string extraBackwardBlock = !kv ? "" : $$"""

                    if (withExtraKeys)
                    {
                        // bias_k and bias_v, after the tiles (which write ∂Q): with sᵢ = (qᵢ/√d) · k_b, pᵢ = e^{sᵢ − Lᵢ}, ∂pᵢ = ∂Oᵢ · v_b,
                        // ∂sᵢ = pᵢ (∂pᵢ − Dᵢ): ∂qᵢ += ∂sᵢ k_b, ∂k_b += ∂sᵢ qᵢ, ∂v_b += pᵢ ∂Oᵢ. (The zero key has no parameter and adds 0 · k to ∂q.)
                        ref {{T}} dKeyBias = ref MemoryMarshal.GetReference(extraGradients), dValueBias = ref Unsafe.Add(ref dKeyBias, HeadDim);
                        for (int r = 0; r < rows; r++)
                        {
                            int i = i0 + r;
                            ref {{T}} query = ref Unsafe.Add(ref queryBlock, r * HeadDim);
                            ref {{T}} dOutput = ref Unsafe.Add(ref dOutputBlock, r * HeadDim);
                            {{T}} p = {{T}}.Exp({{headDot}}(ref query, ref MemoryMarshal.GetReference(keyBias)) - logSumExp[i]);
                            {{T}} dScore = p * ({{headDot}}(ref dOutput, ref MemoryMarshal.GetReference(valueBias)) - delta[r]);
                            {{headMultiplyAdd}}(dScore, ref MemoryMarshal.GetReference(keyBias), ref dQueries[i * HeadDim]);
                            {{headMultiplyAdd}}(dScore, ref query, ref dKeyBias);
                            {{headMultiplyAdd}}(p, ref dOutput, ref dValueBias);
                        }
                    }
            """;
        string extraParameterGradients = !kv ? "" : $$"""

                    // ∂bias_k and ∂bias_v, head h's entries: each batch row's share, in order.
                    ReadOnlySpan<{{T}}> extra = tape.ExtraKeyGradients.AsSpan(head * 2 * HeadDim, 2 * HeadDim);
                    AddTo(KeyBias.Gradient.AsSpan(h * HeadDim, HeadDim), extra.Slice(0, HeadDim));
                    AddTo(ValueBias.Gradient.AsSpan(h * HeadDim, HeadDim), extra.Slice(HeadDim, HeadDim));
            """;
        string name = model.Target.Name;
        string outputBias = model.Bias
            ? "for (int r = 0; r < rows; r++) AddTo(OutProjectionBias.Gradient, dOutput.Slice(r * ModelDim, ModelDim));"
            : "";
        string ParameterGradients(string part, string product, string input, string length, string gradients, string inputDim)
        {
            string bias = model.Bias ? $"\n    for (int t = 0; t < {length}; t++) AddTo({part}BiasGradients(h), {gradients}.Slice(t * HeadDim, HeadDim));" : "";
            return $$"""
                {
                    ReadOnlySpan<{{T}}> {{gradients}} = tape.{{part}}Gradients.AsSpan(head * {{length}} * HeadDim, {{length}} * HeadDim);
                    {{product}}(HeadDim, {{length}}, ref MemoryMarshal.GetReference({{gradients}}), 1, HeadDim, ref MemoryMarshal.GetReference({{input}}.Slice(b * {{length}} * {{inputDim}}, {{length}} * {{inputDim}})), ref MemoryMarshal.GetReference({{part}}WeightGradients(h)));{{bias}}
                }
                """;
        }
        string InputGradients(string part, string product, string target, string length, string inputDim)
            => $$"""
                if (!{{target}}.IsEmpty)
                {
                    for (int h = 0; h < Heads; h++)
                    {
                        int head = b * Heads + h;
                        {{product}}({{length}}, HeadDim, ref MemoryMarshal.GetReference(tape.{{part}}Gradients.AsSpan(head * {{length}} * HeadDim, {{length}} * HeadDim)), HeadDim, 1, ref MemoryMarshal.GetReference({{part}}Weights(h)), ref MemoryMarshal.GetReference({{target}}.Slice(b * {{length}} * {{inputDim}}, {{length}} * {{inputDim}})));
                    }
                }
                """;
        string Indent(string text, int levels) => text.Replace("\n", "\n" + new string(' ', 4 * levels));

        w.WriteLine();
        w.WriteLine($$"""
            /// <summary>
            /// Backward: from ∂L/∂output writes ∂L/∂query, ∂L/∂keys, ∂L/∂values (each only when its span is not empty) and adds every parameter
            /// gradient. ∂concat = ∂out W_O, ∂W_O += ∂outᵀ concat; per head the tiled backward of FlashAttention-2 (Dᵢ = ∂Oᵢ · Oᵢ; per tile
            /// P = e^{S − L} recomputed, ∂V += Pᵀ ∂O, ∂P = ∂O Vᵀ, ∂S = P ⊙ (∂P − D), ∂Q += ∂S K / √d, ∂K += ∂Sᵀ Q / √d); then the input projections'
            /// gradients. For self-attention pass the same input three times and add the three gradients. A fully masked query contributes nothing.
            /// </summary>
            /// <param name="tape">The tape the training <c>Forward</c> recorded into.</param>
            /// <param name="query">The query given to the forward, [B, Tq, ModelDim].</param>
            /// <param name="keys">The keys given to the forward, [B, Tk, KeyDim].</param>
            /// <param name="values">The values given to the forward, [B, Tk, ValueDim].</param>
            /// <param name="dOutput">∂L/∂output, [B, Tq, ModelDim].</param>
            /// <param name="dQuery">∂L/∂query, [B, Tq, ModelDim]: written when not empty.</param>
            /// <param name="dKeys">∂L/∂keys, [B, Tk, KeyDim]: written when not empty.</param>
            /// <param name="dValues">∂L/∂values, [B, Tk, ValueDim]: written when not empty.</param>
            /// <param name="dAttentionBias">∂L/∂bias for the additive bias (constant or not, given or not), written when not empty: [B, H, Tq, Tk] (each head's ∂S),
            /// or [Tq, Tk] (their sum over batch rows and heads, added in head order).</param>
            /// <exception cref="ArgumentException">A length does not match the recorded shapes, or the tape holds no forward.</exception>
            public void Backward(Tape tape, ReadOnlySpan<{{T}}> query, ReadOnlySpan<{{T}}> keys, ReadOnlySpan<{{T}}> values, ReadOnlySpan<{{T}}> dOutput, Span<{{T}}> dQuery = default, Span<{{T}}> dKeys = default, Span<{{T}}> dValues = default, Span<{{T}}> dAttentionBias = default)
            {
                ArgumentNullException.ThrowIfNull(tape);
                if (!tape.IsRecorded)
                {
                    throw new ArgumentException("The tape holds no recorded forward: call the training Forward(tape, ...) first.", nameof(tape));
                }
                int batch = tape.Batch, queryLength = tape.QueryLength, keyLength = tape.KeyLength;
                Shapes.RequireLength(query.Length, (long)batch * queryLength * ModelDim, nameof(query), $"[B={batch}, Tq={queryLength}, ModelDim={ModelDim}]");
                Shapes.RequireLength(keys.Length, (long)batch * keyLength * KeyDim, nameof(keys), $"[B={batch}, Tk={keyLength}, KeyDim={KeyDim}]");
                Shapes.RequireLength(values.Length, (long)batch * keyLength * ValueDim, nameof(values), $"[B={batch}, Tk={keyLength}, ValueDim={ValueDim}]");
                Shapes.RequireLength(dOutput.Length, (long)batch * queryLength * ModelDim, nameof(dOutput), $"[B={batch}, Tq={queryLength}, ModelDim={ModelDim}]");
                Shapes.RequireOptionalLength(dQuery.Length, (long)batch * queryLength * ModelDim, nameof(dQuery), $"[B={batch}, Tq={queryLength}, ModelDim={ModelDim}]");
                Shapes.RequireOptionalLength(dKeys.Length, (long)batch * keyLength * KeyDim, nameof(dKeys), $"[B={batch}, Tk={keyLength}, KeyDim={KeyDim}]");
                Shapes.RequireOptionalLength(dValues.Length, (long)batch * keyLength * ValueDim, nameof(dValues), $"[B={batch}, Tk={keyLength}, ValueDim={ValueDim}]");
                RequireBiasLength(dAttentionBias.Length, batch, queryLength, keyLength, nameof(dAttentionBias));
                RequireNoBiasGradientOverlap(dAttentionBias, dQuery, dKeys, dValues);
                tape.PrepareBackward();
                Span<{{T}}> headBiasGradients = HeadBiasGradientTarget(tape, dAttentionBias);
                int rows = batch * queryLength;

                // output = concat W_Oᵀ + b_O: ∂concat = ∂out W_O, ∂W_O += ∂outᵀ concat, ∂b_O += Σ ∂out.
                Span<{{T}}> dConcatenated = tape.ConcatenatedGradient.AsSpan(0, rows * ModelDim);
                {{modelProduct}}(rows, ModelDim, ref MemoryMarshal.GetReference(dOutput), ModelDim, 1, ref MemoryMarshal.GetArrayDataReference(OutProjectionWeight.Value), ref MemoryMarshal.GetReference(dConcatenated), accumulate: false); // written, not added to
                {{modelProduct}}(ModelDim, rows, ref MemoryMarshal.GetReference(dOutput), 1, ModelDim, ref MemoryMarshal.GetReference(tape.Concatenated.AsSpan()), ref MemoryMarshal.GetArrayDataReference(OutProjectionWeight.Gradient));
                {{outputBias}}

                // Three phases, each spread over threads with disjoint outputs: the heads' cores (B·H), the projection weights'
                // gradients per head (H; batch rows added in order), the input gradients per batch row (B; heads added in order).
                long work = (long)batch * queryLength * keyLength * ModelDim * 4 + (long)batch * (queryLength + keyLength) * ModelDim * ModelDim * 2;
                bool split = BatchParallel.ShouldSplit(batch * Heads, MaxDegreeOfParallelism, work, ParallelWorkThreshold);
                if (split)
                {
                    CallState callState = CallStateFor(tape);
                    BatchParallel.For<{{T}}>(batch * Heads, MaxDegreeOfParallelism, callState,
                        static (int head, object state, in ChunkSpans<{{T}}> s) => ((CallState)state).Layer.HeadBackward(((CallState)state).Tape!, head, s.W0),
                        (batch, queryLength, keyLength), default, w0: headBiasGradients);
                    BatchParallel.For<{{T}}>(Heads, MaxDegreeOfParallelism, callState,
                        static (int h, object state, in ChunkSpans<{{T}}> s) => ((CallState)state).Layer.HeadParameterGradients(((CallState)state).Tape!, h, s.R0, s.R1, s.R2),
                        (batch, queryLength, keyLength), default, r0: query, r1: keys, r2: values);
                    BatchParallel.For<{{T}}>(batch, MaxDegreeOfParallelism, callState,
                        static (int b, object state, in ChunkSpans<{{T}}> s) => ((CallState)state).Layer.InputGradients(((CallState)state).Tape!, b, s.W0, s.W1, s.W2),
                        (batch, queryLength, keyLength), default, w0: dQuery, w1: dKeys, w2: dValues);
                }
                else
                {
                    for (int head = 0; head < batch * Heads; head++) HeadBackward(tape, head, headBiasGradients);
                    for (int h = 0; h < Heads; h++) HeadParameterGradients(tape, h, query, keys, values);
                    for (int b = 0; b < batch; b++) InputGradients(tape, b, dQuery, dKeys, dValues);
                }
                SumHeadBiasGradients(batch, queryLength * keyLength, headBiasGradients, dAttentionBias);
            }

            private static void AddTo(Span<{{T}}> target, ReadOnlySpan<{{T}}> source)
            {
                for (int k = 0; k < target.Length; k++) target[k] += source[k];
            }

            // One head's core backward: ∂Oₕ from its columns of ∂concat, then the tiled backward into ∂Qₕ (of the unscaled projection), ∂Kₕ, ∂Vₕ,
            // and ∂Sₕ into this head's [Tq, Tk] of `headBiasGradients` ([B·H, Tq, Tk]) when that is not empty.
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private void HeadBackward(Tape tape, int head, Span<{{T}}> headBiasGradients)
            {
                int b = head / Heads, h = head % Heads;
                int queryLength = tape.QueryLength, keyLength = tape.KeyLength;
                int tiles = (keyLength + KeyTile - 1) / KeyTile;
                int queryLength_d = queryLength * HeadDim, keyLength_d = keyLength * HeadDim, tileLength = tiles * KeyTile * HeadDim;
                Span<{{T}}> dOutputs = tape.OutputGradients.AsSpan(head * queryLength_d, queryLength_d);
                for (int t = 0; t < queryLength; t++)
                {
                    tape.ConcatenatedGradient.AsSpan((b * queryLength + t) * ModelDim + h * HeadDim, HeadDim).CopyTo(dOutputs.Slice(t * HeadDim, HeadDim));
                }
                Span<{{T}}> dQueries = tape.QueryGradients.AsSpan(head * queryLength_d, queryLength_d);
                AttendBackward(b, queryLength, keyLength,
                    tape.Queries.AsSpan(head * queryLength_d, queryLength_d), tape.Keys.AsSpan(head * keyLength_d, keyLength_d),
                    tape.KeyTiles.AsSpan(head * tileLength, tileLength), tape.ValueTiles.AsSpan(head * tileLength, tileLength),
                    tape.Outputs.AsSpan(head * queryLength_d, queryLength_d), tape.LogSumExp.AsSpan(head * queryLength, queryLength), dOutputs,
                    dQueries, tape.KeyGradients.AsSpan(head * keyLength_d, keyLength_d), tape.ValueGradients.AsSpan(head * keyLength_d, keyLength_d), tape.Mask, tape.StoredWeights(head),
                    tape.HeadBias(head), headBiasGradients.IsEmpty ? default : headBiasGradients.Slice(head * queryLength * keyLength, queryLength * keyLength){{extraBackwardArguments}});
                // The forward scaled Qₕ by 1/√d after projecting: the projection's gradient carries the same factor.
                FlashSoftmax.Scale(dQueries, ScoreFactor);
            }

            /// <summary>
            /// The tiled backward of one head (FlashAttention-2): Dᵢ = ∂Oᵢ · Oᵢ; per block × tile, P = e^{S − L} (S recomputed from the packed keys),
            /// ∂V += Pᵀ ∂O, ∂P = ∂O Vᵀ, ∂S = P ⊙ (∂P − D), ∂Q += ∂S K, ∂K += ∂Sᵀ Q (Q already scaled by 1/√d). The additive bias enters S
            /// as a constant; since S = QKᵀ/√d + bias, ∂bias = ∂S, written into <paramref name="dBias"/> ([Tq, Tk], zero where nothing was visited).
            /// </summary>
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private static void AttendBackward(int b, int queryLength, int keyLength, ReadOnlySpan<{{T}}> queries, ReadOnlySpan<{{T}}> keys, ReadOnlySpan<{{T}}> keyTiles, ReadOnlySpan<{{T}}> valueTiles,
                ReadOnlySpan<{{T}}> outputs, ReadOnlySpan<{{T}}> logSumExp, ReadOnlySpan<{{T}}> dOutputs, Span<{{T}}> dQueries, Span<{{T}}> dKeys, Span<{{T}}> dValues, in AttentionMask mask,
                ReadOnlySpan<{{T}}> storedWeights, ReadOnlySpan<{{T}}> bias, Span<{{T}}> dBias{{extraBackwardParameters}})
            {
                Span<{{T}}> weights = stackalloc {{T}}[QueryBlock * KeyTile];
                Span<{{T}}> dWeights = stackalloc {{T}}[QueryBlock * KeyTile];
                Span<{{T}}> delta = stackalloc {{T}}[QueryBlock];
                int shift = keyLength - queryLength;
                dBias.Clear();{{extraBackwardStart}}
                // ∂Q, ∂K and ∂V are written, not cleared then added to: a block's ∂Q rows by its first tile, a key's ∂K and ∂V rows by the
                // first block that sees it (the blocks' key ends never decrease); rows nothing reaches are cleared. A tile's keys past the
                // block's causal end have P = 0 for every row of the block: the products leave them out.
                int previousKeyEnd = 0;
                for (int i0 = 0; i0 < queryLength; i0 += QueryBlock)
                {
                    int rows = Math.Min(QueryBlock, queryLength - i0);
                    for (int r = 0; r < rows; r++)
                    {
                        int i = i0 + r;
                        delta[r] = {{headDot}}(ref MemoryMarshal.GetReference(dOutputs.Slice(i * HeadDim, HeadDim)), ref MemoryMarshal.GetReference(outputs.Slice(i * HeadDim, HeadDim)));
                    }
                    int keyEnd = mask.Causal ? (int)Math.Clamp((long)i0 + rows + shift, 0, keyLength) : keyLength;
                    ref {{T}} queryBlock = ref Unsafe.Add(ref MemoryMarshal.GetReference(queries), i0 * HeadDim);
                    ref {{T}} dOutputBlock = ref Unsafe.Add(ref MemoryMarshal.GetReference(dOutputs), i0 * HeadDim);
                    if (keyEnd == 0)
                    {
                        dQueries.Slice(i0 * HeadDim, rows * HeadDim).Clear();
                    }
                    for (int j0 = 0; j0 < keyEnd; j0 += KeyTile)
                    {
                        // the tile's keys some row of the block may see, and of those the ones an earlier block saw (their ∂K, ∂V rows are written)
                        int visible = Math.Min(KeyTile, keyEnd - j0), seen = Math.Clamp(previousKeyEnd - j0, 0, visible);
                        Span<{{T}}> dp = dWeights.Slice(0, rows * KeyTile);
                        Span<{{T}}> recomputed = weights.Slice(0, rows * KeyTile);
                        ReadOnlySpan<{{T}}> p = recomputed;
                        if (storedWeights.IsEmpty)
                        {
                            MaskedScores(b, i0, rows, j0, queryLength, keyLength, ref queryBlock, keyTiles, recomputed, mask, bias);
                            for (int r = 0; r < rows; r++)
                            {
                                FlashSoftmax.Recompute(recomputed.Slice(r * KeyTile, visible), logSumExp[i0 + r]);
                            }
                        }
                        else
                        {
                            p = storedWeights.Slice(i0 * KeyTile, rows * KeyTile); // one tile: j0 = 0
                        }
                        // ∂Vⱼ += Σᵢ pᵢⱼ ∂Oᵢ for the visible keys
                        KeyRowsProduct(seen, visible, rows, ref MemoryMarshal.GetReference(p), ref dOutputBlock, ref dValues[j0 * HeadDim]);
                        // ∂pᵢⱼ = ∂Oᵢ · vⱼ: [rows, d] · [d, KeyTile], over the visible keys as S
                        TileProduct(rows, visible, ref dOutputBlock, ref Unsafe.Add(ref MemoryMarshal.GetReference(valueTiles), j0 * HeadDim), ref MemoryMarshal.GetReference(dp));
                        // ∂sᵢⱼ = pᵢⱼ (∂pᵢⱼ − Dᵢ) for the visible keys (the others' ∂s, 0, is never read)
                        for (int r = 0; r < rows; r++)
                        {
                            FlashSoftmax.SoftmaxGradient<{{T}}>(p.Slice(r * KeyTile, visible), dp.Slice(r * KeyTile, visible), delta[r]);
                        }
                        if (!dBias.IsEmpty)
                        {
                            // ∂biasᵢⱼ = ∂sᵢⱼ for the visible keys (the rest of ∂bias stays 0).
                            for (int r = 0; r < rows; r++)
                            {
                                dp.Slice(r * KeyTile, visible).CopyTo(dBias.Slice((i0 + r) * keyLength + j0, visible));
                            }
                        }
                        // ∂qᵢ += Σⱼ ∂sᵢⱼ kⱼ and ∂kⱼ += Σᵢ ∂sᵢⱼ qᵢ (∂K as ∂V above)
                        {{headProduct}}(rows, visible, ref MemoryMarshal.GetReference(dp), KeyTile, 1, ref Unsafe.Add(ref MemoryMarshal.GetReference(keys), j0 * HeadDim), ref dQueries[i0 * HeadDim], accumulate: j0 > 0);
                        KeyRowsProduct(seen, visible, rows, ref MemoryMarshal.GetReference(dp), ref queryBlock, ref dKeys[j0 * HeadDim]);
                    }
                    previousKeyEnd = Math.Max(previousKeyEnd, keyEnd);{{extraBackwardBlock}}
                }
                // keys no block sees (none unless there are no queries: the causal diagonal ends at the last key): their rows were never written
                dKeys.Slice(previousKeyEnd * HeadDim).Clear();
                dValues.Slice(previousKeyEnd * HeadDim).Clear();
            }

            // ∂K or ∂V rows of a tile's visible keys, Σᵢ wᵢⱼ bᵢ ([visible, rows] · [rows, d], W = P or ∂S read transposed): added to the first
            // `seen` rows, which an earlier block wrote, and written to the others (a row's sum does not depend on the rows beside it in
            // the call).
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            private static void KeyRowsProduct(int seen, int visible, int rows, ref {{T}} weights, ref {{T}} b, ref {{T}} target)
            {
                if (seen > 0)
                {
                    {{headProduct}}(seen, rows, ref weights, 1, KeyTile, ref b, ref target, accumulate: true);
                }
                if (visible > seen)
                {
                    {{headProduct}}(visible - seen, rows, ref Unsafe.Add(ref weights, seen), 1, KeyTile, ref b, ref Unsafe.Add(ref target, seen * HeadDim), accumulate: false);
                }
            }

            // Head h's rows of ∂W_Q, ∂W_K, ∂W_V (and of ∂b): ∂W_Q,ₕ += Σ_b ∂Qₕᵀ X_q, batch rows in order.
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private void HeadParameterGradients(Tape tape, int h, ReadOnlySpan<{{T}}> query, ReadOnlySpan<{{T}}> keys, ReadOnlySpan<{{T}}> values)
            {
                int queryLength = tape.QueryLength, keyLength = tape.KeyLength;
                for (int b = 0; b < tape.Batch; b++)
                {
                    int head = b * Heads + h;
                    {{Indent(ParameterGradients("Query", modelProduct, "query", "queryLength", "dQueries", "ModelDim"), 2)}}
                    {{Indent(ParameterGradients("Key", keyProduct, "keys", "keyLength", "dKeys", "KeyDim"), 2)}}
                    {{Indent(ParameterGradients("Value", valueProduct, "values", "keyLength", "dValues", "ValueDim"), 2)}}{{extraParameterGradients}}
                }
            }

            // Batch row b of ∂X_q = Σₕ ∂Qₕ W_Q,ₕ (likewise keys and values), heads added in order.
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private void InputGradients(Tape tape, int b, Span<{{T}}> dQuery, Span<{{T}}> dKeys, Span<{{T}}> dValues)
            {
                int queryLength = tape.QueryLength, keyLength = tape.KeyLength;
                {{Indent(InputGradients("Query", modelProduct, "dQuery", "queryLength", "ModelDim"), 1)}}
                {{Indent(InputGradients("Key", keyProduct, "dKeys", "keyLength", "KeyDim"), 1)}}
                {{Indent(InputGradients("Value", valueProduct, "dValues", "keyLength", "ValueDim"), 1)}}
            }
            """);
    }

    private static void EmitChecks(SourceWriter w, MultiHeadModel model, string T)
    {
        string columns = WeightColumns(model);
        string columnsLabel = model.ExtraKeys > 0 ? "Tk + ExtraKeys={keyLength + ExtraKeys}" : "Tk={keyLength}";
        w.WriteLine();
        w.WriteLine($$"""
            private static void ThrowIfInvalidForward(int batch, int queryLength, int keyLength, ReadOnlySpan<{{T}}> query, ReadOnlySpan<{{T}}> keys, ReadOnlySpan<{{T}}> values, Span<{{T}}> output, Span<{{T}}> weights, AttentionMask mask, bool averageWeights, ReadOnlySpan<{{T}}> attentionBias, bool checkKeys = true)
            {
                Shapes.RequireAtLeast(batch, 0, nameof(batch));
                Shapes.RequireAtLeast(queryLength, 0, nameof(queryLength));
                Shapes.RequireAtLeast(keyLength, 1, nameof(keyLength));
                Shapes.RequireLength(query.Length, (long)batch * queryLength * ModelDim, nameof(query), $"[B={batch}, Tq={queryLength}, ModelDim={ModelDim}]");
                if (checkKeys)
                {
                    Shapes.RequireLength(keys.Length, (long)batch * keyLength * KeyDim, nameof(keys), $"[B={batch}, Tk={keyLength}, KeyDim={KeyDim}]");
                    Shapes.RequireLength(values.Length, (long)batch * keyLength * ValueDim, nameof(values), $"[B={batch}, Tk={keyLength}, ValueDim={ValueDim}]");
                }
                Shapes.RequireLength(output.Length, (long)batch * queryLength * ModelDim, nameof(output), $"[B={batch}, Tq={queryLength}, ModelDim={ModelDim}]");
                if (averageWeights)
                {
                    Shapes.RequireOptionalLength(weights.Length, (long)batch * queryLength * {{columns}}, nameof(weights), $"[B={batch}, Tq={queryLength}, {{columnsLabel}}] (averaged over heads)");
                }
                else
                {
                    Shapes.RequireOptionalLength(weights.Length, (long)batch * Heads * queryLength * {{columns}}, nameof(weights), $"[B={batch}, H={Heads}, Tq={queryLength}, {{columnsLabel}}] (per head)");
                }
                mask.Validate(batch, queryLength, keyLength, nameof(mask));
                RequireBiasLength(attentionBias.Length, batch, queryLength, keyLength, nameof(attentionBias));
                Shapes.RequireNoOverlap<{{T}}, {{T}}>(output, attentionBias, nameof(output), nameof(attentionBias));
                Shapes.RequireNoOverlap<{{T}}, {{T}}>(weights, attentionBias, nameof(weights), nameof(attentionBias));
                Shapes.RequireNoOverlap<{{T}}, {{T}}>(output, query, nameof(output), nameof(query));
                Shapes.RequireNoOverlap<{{T}}, {{T}}>(output, keys, nameof(output), nameof(keys));
                Shapes.RequireNoOverlap<{{T}}, {{T}}>(output, values, nameof(output), nameof(values));
                Shapes.RequireNoOverlap<{{T}}, {{T}}>(weights, query, nameof(weights), nameof(query));
                Shapes.RequireNoOverlap<{{T}}, {{T}}>(weights, keys, nameof(weights), nameof(keys));
                Shapes.RequireNoOverlap<{{T}}, {{T}}>(weights, values, nameof(weights), nameof(values));
                Shapes.RequireNoOverlap<{{T}}, {{T}}>(weights, output, nameof(weights), nameof(output));
            }

            // An additive bias (or its gradient) is empty, [Tq, Tk] (shared by every batch row and head) or [B, H, Tq, Tk] (PyTorch's
            // [B·H, Tq, Tk]); the length decides which. When B·H = 1 the two shapes are the same.
            private static void RequireBiasLength(int length, int batch, int queryLength, int keyLength, string argument)
            {
                long shared = (long)queryLength * keyLength, perHead = (long)batch * Heads * shared;
                if (length != 0 && length != shared && length != perHead)
                {
                    throw new ArgumentException(
                        $"'{argument}' must be empty (none), have {shared} elements for shape [Tq={queryLength}, Tk={keyLength}] or {perHead} for shape [B={batch}, H={Heads}, Tq={queryLength}, Tk={keyLength}], but has {length}.",
                        argument);
                }
            }

            private static void RequireNoBiasGradientOverlap(Span<{{T}}> dAttentionBias, Span<{{T}}> dQuery, Span<{{T}}> dKeys, Span<{{T}}> dValues)
            {
                Shapes.RequireNoOverlap<{{T}}, {{T}}>(dAttentionBias, dQuery, nameof(dAttentionBias), nameof(dQuery));
                Shapes.RequireNoOverlap<{{T}}, {{T}}>(dAttentionBias, dKeys, nameof(dAttentionBias), nameof(dKeys));
                Shapes.RequireNoOverlap<{{T}}, {{T}}>(dAttentionBias, dValues, nameof(dAttentionBias), nameof(dValues));
            }

            // Head `head`'s [Tq, Tk] of a bias: all of it when shared by the heads, its own slice of [B, H, Tq, Tk], or empty.
            private static ReadOnlySpan<{{T}}> BiasOfHead(ReadOnlySpan<{{T}}> bias, int head, int queryLength, int keyLength)
            {
                int size = queryLength * keyLength;
                return bias.IsEmpty || bias.Length == size ? bias : bias.Slice(head * size, size);
            }

            // Where the heads write ∂S: the caller's ∂bias when it is [B, H, Tq, Tk] (each head its own part), the tape's per-head scratch
            // when it is [Tq, Tk] (summed afterwards), nothing when it is empty.
            private static Span<{{T}}> HeadBiasGradientTarget(Tape tape, Span<{{T}}> dAttentionBias)
            {
                int perHead = tape.Batch * Heads * tape.QueryLength * tape.KeyLength;
                return dAttentionBias.IsEmpty ? default : dAttentionBias.Length == perHead ? dAttentionBias : tape.HeadBiasGradientScratch(perHead);
            }

            // ∂bias [Tq, Tk] = Σ_{b,h} ∂Sₕ, added in head order after the parallel phase (the same sum for every thread count); nothing to do
            // when the heads wrote the caller's [B, H, Tq, Tk] directly.
            private static void SumHeadBiasGradients(int batch, int size, ReadOnlySpan<{{T}}> headBiasGradients, Span<{{T}}> dAttentionBias)
            {
                if (dAttentionBias.IsEmpty || dAttentionBias.Length == headBiasGradients.Length)
                {
                    return;
                }
                if (batch == 0)
                {
                    dAttentionBias.Clear(); // no heads: nothing depends on the bias
                    return;
                }
                headBiasGradients.Slice(0, size).CopyTo(dAttentionBias);
                for (int head = 1; head < batch * Heads; head++)
                {
                    System.Numerics.Tensors.TensorPrimitives.Add<{{T}}>(dAttentionBias, headBiasGradients.Slice(head * size, size), dAttentionBias);
                }
            }
            """);
    }
}
