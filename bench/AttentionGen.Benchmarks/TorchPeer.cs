using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace AttentionGen.Benchmarks;

/// <summary>
/// The peer a .NET user would pick: TorchSharp (libtorch CPU) running each workload as plain tensor code, as
/// ../shared/bench/workloads.md describes: additive = tanh(q·W_qᵀ ⊕ k·W_kᵀ + b)·v, softmax, weights·keys;
/// Luong general = (q·Wᵀ)·kᵀ, softmax, ·keys; pooling = HAN; W5/W6 = scaled_dot_product_attention; W7 = Luong local-p
/// with the keys of each window gathered (2D + 1 per query, so it also scores only the window); W8 = monotonic: the
/// additive energy + r, sigmoid, and the expected alignment the way PyTorch ports of TF-Addons compute it: one decoder
/// step at a time in the parallel form (exclusive cumprod, clipped divisor, cumsum), then ·keys; W9 = key-value with the
/// L previous steps of each step gathered; W10 = structured self-attention, r softmaxes over t, then ·H; W11 = W7 with the
/// concat score, W_a split into its query and key columns (each side projected once, as OpenNMT's "mlp" attention does),
/// tanh of their sums over each gathered window, ·v_a; W12 = W11's math as a decoder step, one query per call, the keys'
/// side of W_a projected once in the constructor; W13 = MoChA: W8's alignment, then the chunk energy (a second additive
/// energy) and the expected chunkwise weights by moving sums, ·keys.
/// </summary>
public sealed class TorchPeer : IDisposable
{
    private readonly Workload _workload;
    private readonly Operands _operands;
    // Computed once per sentence for DecoderStep: additive keys·W_kᵀ + b, local concat keys·W_a,kᵀ (the key columns of W_a).
    private readonly Tensor? _stepKeyProjection;

    public TorchPeer(WorkloadData data, int threads)
    {
        // Process-wide in libtorch; BenchmarkDotNet's global setup makes each peer set its own count.
        torch.set_num_threads(threads);
        Workload w = _workload = data.Workload;
        long[] Shape(int length) => w.Layer == "sdpa" ? new long[] { w.Batch, w.Heads, length, w.Dim } : new long[] { w.Batch, length, w.Dim };
        // Weights are [rows, columns]: D columns, or 2D for the concat score's W_a [U, 2D] and U for W_s2 [Hops, U].
        Tensor Matrix(float[] values, int columns) => tensor(values, values.Length == 0 ? new long[] { 0 } : new long[] { values.Length / columns, columns });
        Tensor Vector(float[] values) => tensor(values, new long[] { values.Length });
        _operands = new Operands(
            Query: w.Layer == "sdpa" ? tensor(data.Query, Shape(w.QueryLength)) : tensor(data.Query, new long[] { w.Batch, w.QueryLength, w.InputDim }),
            Keys: tensor(data.Keys, Shape(w.KeyLength)),
            Values: tensor(data.Values, data.Values.Length == 0 ? new long[] { 0 } : Shape(w.KeyLength)),
            QueryWeight: Matrix(data.QueryWeight, w.Layer == "local-concat" ? 2 * w.Dim : w.Dim),
            KeyWeight: Matrix(data.KeyWeight, w.Dim),
            Bias: Vector(data.Bias),
            ScoreVector: Vector(data.ScoreVector),
            EnergyBias: Vector(data.EnergyBias),
            ContextWeight: Matrix(data.ContextWeight, w.Dim),
            InputWeight: Matrix(data.InputWeight, w.Dim),
            HopWeight: Matrix(data.HopWeight, w.Units),
            ConcatVector: Vector(data.ConcatVector),
            ChunkQueryWeight: Matrix(data.ChunkQueryWeight, w.Dim),
            ChunkKeyWeight: Matrix(data.ChunkKeyWeight, w.Dim),
            ChunkBias: Vector(data.ChunkBias),
            ChunkScoreVector: Vector(data.ChunkScoreVector));
        using (no_grad())
        {
            _stepKeyProjection = w.Layer switch
            {
                "additive" => _operands.Keys.matmul(_operands.KeyWeight.t()) + _operands.Bias,
                "local-concat" => ConcatKeyProjection(_operands.Keys, _operands.QueryWeight),
                _ => null,
            };
        }
    }

    /// <summary>Whether libtorch loads here; <paramref name="reason"/> says why not.</summary>
    public static bool IsAvailable(out string reason)
    {
        try
        {
            using Tensor probe = ones(2, 2).matmul(ones(2, 2));
            reason = "";
            return probe.sum().item<float>() == 8f;
        }
        catch (Exception exception)
        {
            // TypeInitializationException / DllNotFoundException and friends: the innermost message's first line (TorchSharp
            // appends a long loader trace to it).
            Exception inner = exception;
            while (inner.InnerException is not null) inner = inner.InnerException;
            reason = exception.GetType().Name + ": " + inner.Message.Split('\n')[0].Trim();
            return false;
        }
    }

    // The workload's tensors by WorkloadData's names; a training step maps each to a fresh leaf.
    private sealed record Operands(Tensor Query, Tensor Keys, Tensor Values, Tensor QueryWeight, Tensor KeyWeight, Tensor Bias, Tensor ScoreVector,
        Tensor EnergyBias, Tensor ContextWeight, Tensor InputWeight, Tensor HopWeight, Tensor ConcatVector,
        Tensor ChunkQueryWeight, Tensor ChunkKeyWeight, Tensor ChunkBias, Tensor ChunkScoreVector)
    {
        public Operands Map(Func<Tensor, Tensor> map) => new(map(Query), map(Keys), map(Values), map(QueryWeight), map(KeyWeight), map(Bias),
            map(ScoreVector), map(EnergyBias), map(ContextWeight), map(InputWeight), map(HopWeight), map(ConcatVector),
            map(ChunkQueryWeight), map(ChunkKeyWeight), map(ChunkBias), map(ChunkScoreVector));

        public IEnumerable<Tensor> All => new[] { Query, Keys, Values, QueryWeight, KeyWeight, Bias, ScoreVector, EnergyBias, ContextWeight, InputWeight, HopWeight, ConcatVector,
            ChunkQueryWeight, ChunkKeyWeight, ChunkBias, ChunkScoreVector };
    }

    private Tensor Context(Operands x) => _workload.Layer switch
    {
        "monotonic" when _workload.Chunk > 0 => ChunkwiseWeights(MonotonicAlignment(x.Query, x.Keys, x.QueryWeight, x.KeyWeight, x.Bias, x.ScoreVector, x.EnergyBias, closedForm: true),
            AdditiveEnergy(x.Query, x.Keys, x.ChunkQueryWeight, x.ChunkKeyWeight, x.ChunkBias, x.ChunkScoreVector), _workload.Chunk).bmm(x.Keys),
        "monotonic" => MonotonicAlignment(x.Query, x.Keys, x.QueryWeight, x.KeyWeight, x.Bias, x.ScoreVector, x.EnergyBias).bmm(x.Keys),
        "pooling" => PoolingContext(x.Query, x.QueryWeight, x.Bias, x.ScoreVector),
        "luong" => LuongContext(x.Query, x.Keys, x.QueryWeight),
        "sdpa" => nn.functional.scaled_dot_product_attention(x.Query, x.Keys, x.Values, is_casual: _workload.Causal),
        "local" => LocalContext(x.Query, x.Keys, x.KeyWeight, x.ScoreVector, _workload.Window, GeneralScore(x.Query, x.QueryWeight)),
        "local-concat" => LocalContext(x.Query, x.Keys, x.KeyWeight, x.ScoreVector, _workload.Window, ConcatScore(x.Query, x.Keys, x.QueryWeight, x.ConcatVector)),
        "keyvalue" => KeyValueContext(x.Query, x.KeyWeight, x.QueryWeight, x.ScoreVector, x.ContextWeight, x.InputWeight, _workload.Window),
        "structured" => StructuredContext(x.Query, x.QueryWeight, x.HopWeight),
        _ => AdditiveContext(x.Query, x.Keys, x.QueryWeight, x.KeyWeight, x.Bias, x.ScoreVector),
    };

    // HAN pooling: u = tanh(h·Wᵀ + b), α = softmax(u·u_w) over t, s = Σₜ αₜ hₜ.
    private static Tensor PoolingContext(Tensor input, Tensor weight, Tensor bias, Tensor context)
    {
        Tensor alpha = (input.matmul(weight.t()) + bias).tanh().matmul(context).softmax(-1); // [B, T]
        return alpha.unsqueeze(1).bmm(input).squeeze(1);                                    // [B, D]
    }

    // Luong general: (q·Wᵀ)·kᵀ, softmax, ·keys (W [KeyDim, Dim] as the generated layer's ScoreWeight).
    private static Tensor LuongContext(Tensor query, Tensor keys, Tensor weight)
        => query.matmul(weight.t()).bmm(keys.transpose(1, 2)).softmax(-1).bmm(keys);

    // Luong local-p: pₜ = S·sigmoid(v_p·tanh(W_p q)), the 2D + 1 keys around ⌊pₜ + ½⌋ gathered (positions outside [0, S − 1]
    // masked), α = softmax of the score over them, a = α·exp(−(s − pₜ)²/(2σ²)), σ = D/2, context = Σ a kₛ. The score gets the
    // window's positions [B, Tq, 2D+1] (clamped into the sequence) and its keys [B, Tq, 2D+1, D].
    private static Tensor LocalContext(Tensor query, Tensor keys, Tensor predictorWeight, Tensor predictorVector, int window, Func<Tensor, Tensor, Tensor> score)
    {
        long length = keys.shape[1];
        using Scalar zero = 0L, half = 0.5, sequenceLength = length, last = length - 1, windowStart = (long)-window, windowEnd = (long)window + 1,
            negativeInfinity = double.NegativeInfinity, gaussianFactor = -2.0 / (window * window); // see KeptScalars
        Tensor positions = query.matmul(predictorWeight.t()).tanh().matmul(predictorVector).sigmoid() * sequenceLength; // [B, Tq]
        Tensor centers = (positions.detach() + half).floor().to_type(ScalarType.Int64).clamp(zero, sequenceLength);
        Tensor index = centers.unsqueeze(-1) + arange(windowStart, windowEnd, dtype: ScalarType.Int64);     // [B, Tq, 2D+1]
        Tensor inside = index.ge(zero).logical_and(index.lt(sequenceLength));
        Tensor clamped = index.clamp(zero, last);
        Tensor gathered = Gather(keys, clamped);                                                              // [B, Tq, 2D+1, D]
        Tensor scores = score(clamped, gathered).masked_fill(inside.logical_not(), negativeInfinity);
        Tensor distance = index.to_type(ScalarType.Float32) - positions.unsqueeze(-1);
        Tensor weights = scores.softmax(-1) * (distance * distance * gaussianFactor).exp();                   // σ = D/2
        return weights.unsqueeze(-2).matmul(gathered).squeeze(-2);                                            // [B, Tq, D]
    }

    // Luong's general score inside the window: (W_a q)·kₛ.
    private static Func<Tensor, Tensor, Tensor> GeneralScore(Tensor query, Tensor scoreWeight)
    {
        Tensor projected = query.matmul(scoreWeight.t()); // [B, Tq, D]
        return (_, gathered) => gathered.matmul(projected.unsqueeze(-1)).squeeze(-1);
    }

    // Luong's concat score inside the window: v_a·tanh(W_a [q; kₛ]) = v_a·tanh(W_a,q q + W_a,k kₛ), each side projected once.
    private static Func<Tensor, Tensor, Tensor> ConcatScore(Tensor query, Tensor keys, Tensor scoreWeight, Tensor scoreVector)
        => ConcatScoreFromKeyProjection(query, ConcatKeyProjection(keys, scoreWeight), scoreWeight, scoreVector);

    // The key side of the concat score, kpₛ = W_a,k kₛ (W_a's last KeyDim columns): [B, Tk, U].
    private static Tensor ConcatKeyProjection(Tensor keys, Tensor scoreWeight)
        => keys.matmul(scoreWeight.narrow(1, scoreWeight.shape[1] - keys.shape[2], keys.shape[2]).t());

    // The concat score from a key projection kp [B, Tk, U]: what a decoder step computes when kp is kept per sentence.
    private static Func<Tensor, Tensor, Tensor> ConcatScoreFromKeyProjection(Tensor query, Tensor keyProjection, Tensor scoreWeight, Tensor scoreVector)
    {
        Tensor queryProjection = query.matmul(scoreWeight.narrow(1, 0, query.shape[2]).t()); // [B, Tq, U]
        return (index, _) => (queryProjection.unsqueeze(2) + Gather(keyProjection, index)).tanh().matmul(scoreVector);
    }

    // rows [B, T, X] at the positions index [B, Tq, S]: [B, Tq, S, X].
    private static Tensor Gather(Tensor rows, Tensor index)
    {
        long batch = index.shape[0], queries = index.shape[1], size = index.shape[2], width = rows.shape[2];
        return rows.gather(1, index.reshape(batch, queries * size, 1).expand(batch, queries * size, width)).reshape(batch, queries, size, width);
    }

    // Key-value (Daniluk et al.): the input [B, T, 2D] split into keys and values; each step's L previous steps gathered (those
    // before the start masked; step 0 has none and reads 0): e = w·tanh(W^Y kₛ + W^h kₜ), α = softmax(e), r = Σ α vₛ,
    // h* = tanh(r·W^rᵀ + vₜ·W^xᵀ).
    private static Tensor KeyValueContext(Tensor input, Tensor memoryWeight, Tensor queryWeight, Tensor scoreVector, Tensor contextWeight, Tensor inputWeight, int window)
    {
        long batch = input.shape[0], length = input.shape[1], dim = input.shape[2] / 2;
        Tensor keys = input.narrow(2, 0, dim), values = input.narrow(2, dim, dim);
        using Scalar zero = 0L, sequenceLength = length, windowStart = (long)-window, lowest = float.MinValue, zeroWeight = 0.0; // see KeptScalars
        Tensor index = (arange(zero, sequenceLength, dtype: ScalarType.Int64).unsqueeze(-1) + arange(windowStart, zero, dtype: ScalarType.Int64)).expand(batch, length, window);
        Tensor before = index.lt(zero);
        Tensor clamped = index.clamp_min(zero);
        Tensor hidden = (Gather(keys.matmul(memoryWeight.t()), clamped) + keys.matmul(queryWeight.t()).unsqueeze(2)).tanh(); // [B, T, L, D]
        // A finite fill, not −∞: step 0's row is all masked, and the softmax of an all −∞ row is NaN; its weights are zeroed after.
        Tensor alpha = hidden.matmul(scoreVector).masked_fill(before, lowest).softmax(-1).masked_fill(before, zeroWeight);
        Tensor read = alpha.unsqueeze(-2).matmul(Gather(values, clamped)).squeeze(-2);                                      // [B, T, D]
        return (read.matmul(contextWeight.t()) + values.matmul(inputWeight.t())).tanh();
    }

    // Structured self-attention (Lin et al.): A = softmax over t of W_s2 tanh(W_s1 Hᵀ), one row per hop, M = A H [B, r, D]; no penalty.
    private static Tensor StructuredContext(Tensor input, Tensor firstWeight, Tensor secondWeight)
        => input.matmul(firstWeight.t()).tanh().matmul(secondWeight.t()).softmax(1).transpose(1, 2).bmm(input);

    private static Tensor AdditiveContext(Tensor query, Tensor keys, Tensor queryWeight, Tensor keyWeight, Tensor bias, Tensor scoreVector)
        => AdditiveFromKeyProjection(query, keys.matmul(keyWeight.t()) + bias, keys, queryWeight, scoreVector); // key projection [B, Tk, U]

    // The additive context from a key projection kp = keys·W_kᵀ + b: what a decoder step computes when kp is kept per sentence.
    private static Tensor AdditiveFromKeyProjection(Tensor query, Tensor keyProjection, Tensor keys, Tensor queryWeight, Tensor scoreVector)
    {
        Tensor queryProjection = query.matmul(queryWeight.t());                             // [B, Tq, U]
        Tensor hidden = (queryProjection.unsqueeze(2) + keyProjection.unsqueeze(1)).tanh(); // [B, Tq, Tk, U]
        Tensor scores = hidden.matmul(scoreVector);                                         // [B, Tq, Tk]
        return scores.softmax(-1).bmm(keys);                                                // [B, Tq, D]
    }

    // The additive energy v·tanh(q·W_qᵀ ⊕ k·W_kᵀ + b): [B, Tq, Tk].
    private static Tensor AdditiveEnergy(Tensor query, Tensor keys, Tensor queryWeight, Tensor keyWeight, Tensor bias, Tensor scoreVector)
    {
        Tensor queryProjection = query.matmul(queryWeight.t());                             // [B, Tq, U]
        Tensor keyProjection = keys.matmul(keyWeight.t()) + bias;                           // [B, Tk, U]
        Tensor hidden = (queryProjection.unsqueeze(2) + keyProjection.unsqueeze(1)).tanh(); // [B, Tq, Tk, U]
        return hidden.matmul(scoreVector);
    }

    // MoChA's expected chunkwise weights as PyTorch ports of the paper's code compute them, with moving sums:
    // β = exp(u) ⊙ MovingSum(α / MovingSum(exp(u), w − 1 back, 0 ahead), 0 back, w − 1 ahead), each row of u shifted by its
    // maximum first (the softmax of every chunk is unchanged).
    private static Tensor ChunkwiseWeights(Tensor alignment, Tensor chunkEnergy, int chunk)
    {
        Tensor exponentials = (chunkEnergy - chunkEnergy.amax(new long[] { -1 }, keepdim: true)).exp();
        Tensor denominators = MovingSum(exponentials, back: chunk - 1, ahead: 0);
        return exponentials * MovingSum(alignment / denominators, back: 0, ahead: chunk - 1);
    }

    // Σ of x[…, j − back … j + ahead] along the last dimension, zeros beyond the ends.
    private static Tensor MovingSum(Tensor x, int back, int ahead)
    {
        long length = x.shape[^1];
        Tensor padded = nn.functional.pad(x, new long[] { back, ahead });
        Tensor sum = padded.narrow(-1, 0, length);
        for (int shift = 1; shift <= back + ahead; shift++) sum = sum + padded.narrow(-1, shift, length);
        return sum;
    }

    // Monotonic: p = σ(v·tanh(q·W_qᵀ ⊕ k·W_kᵀ + b) + r), α₀ = one-hot(0), then α [B, Tq, Tk] (context = α·keys, or MoChA's
    // β·keys). W8, as PyTorch ports of TF-Addons: per step αᵢ = pᵢ ⊙ c ⊙ cumsum(αᵢ₋₁ / clamp(c, 1e-10, 1)), c = exclusive
    // cumprod(1 − pᵢ). W13 (closedForm): αᵢ = pᵢ ⊙ (Tᵢ αᵢ₋₁) with Tᵢ[j, k] = Πₗ₌ₖ^{j−1}(1 − pᵢₗ) = exp(Lⱼ − Lₖ) for k ≤ j and 0
    // above, L the exclusive cumsum of log(1 − pᵢ): no division, so no clip, at O(Tk²) per step (one batched matrix-vector
    // product). The clipped divisor loses mass once the alignment has moved past keys where c < 1e-10, which W13's
    // alignment does (in trials at Tk = 60, the clipped form's context differed from the recursion's by 1.3 % with r = −2
    // and 16 % with W13's r = −1).
    private static Tensor MonotonicAlignment(Tensor query, Tensor keys, Tensor queryWeight, Tensor keyWeight, Tensor bias, Tensor scoreVector, Tensor energyBias, bool closedForm = false)
    {
        Tensor p = (AdditiveEnergy(query, keys, queryWeight, keyWeight, bias, scoreVector) + energyBias).sigmoid(); // [B, Tq, Tk]
        using Scalar one = 1.0, tiny = 1e-30, clip = 1e-10, negativeInfinity = double.NegativeInfinity; // see KeptScalars
        long batch = p.shape[0], tq = p.shape[1], tk = p.shape[2];
        Tensor previous = cat(new[] { ones(batch, 1), zeros(batch, tk - 1) }, 1);        // α₀ = one-hot(0)
        Tensor? transition = null;
        if (closedForm)
        {
            Tensor logs = p.neg().add(one).clamp_min(tiny).log();                               // as TF's safe_cumprod clips before the log
            Tensor exclusive = logs.cumsum(-1) - logs;                                       // Lⱼ = Σₗ<ⱼ log(1 − pₗ)
            Tensor above = ones(tk, tk, dtype: ScalarType.Bool).triu(1);                     // k > j
            transition = (exclusive.unsqueeze(-1) - exclusive.unsqueeze(-2)).masked_fill(above, negativeInfinity).exp(); // [B, Tq, Tk, Tk]
        }
        var rows = new Tensor[tq];
        for (long i = 0; i < tq; i++)
        {
            Tensor pi = p.select(1, i);                                                      // [B, Tk]
            if (transition is not null)
            {
                previous = rows[i] = pi * transition.select(1, i).bmm(previous.unsqueeze(-1)).squeeze(-1);
                continue;
            }
            Tensor product = cat(new[] { ones(batch, 1), pi.neg().add(one).cumprod(1).narrow(1, 0, tk - 1) }, 1);
            previous = rows[i] = pi * product * (previous / product.clamp(clip, one)).cumsum(1);
        }
        return stack(rows, 1);                                                               // [B, Tq, Tk]
    }

    /// <summary>Inference: the context under no_grad, copied out.</summary>
    public float[] Forward()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return Context(_operands).data<float>().ToArray();
    }

    /// <summary>Whether <see cref="DecoderStep"/> exists: additive and local-concat workloads.</summary>
    public bool HasDecoderStep => _stepKeyProjection is not null;

    /// <summary>
    /// The inference forward as a decoder step makes it, from the key projection kept since the constructor (outside any
    /// timed call, as a decoder caches it per sentence). Additive (keys·W_kᵀ + b): q·W_qᵀ, tanh of the broadcast sum, ·v,
    /// softmax, ·keys. Local concat (keys·W_a,kᵀ): the predictor, the window, q·W_a,qᵀ plus the window's gathered key
    /// projections, tanh, ·v_a, the window softmax times the Gaussian, ·keys. The context, copied out.
    /// </summary>
    public float[] DecoderStep()
    {
        if (_stepKeyProjection is null) throw new InvalidOperationException($"{_workload.Id} is neither an additive nor a local-concat workload");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Operands x = _operands;
        Tensor context = _workload.Layer == "local-concat"
            ? LocalContext(x.Query, x.Keys, x.KeyWeight, x.ScoreVector, _workload.Window, ConcatScoreFromKeyProjection(x.Query, _stepKeyProjection, x.QueryWeight, x.ConcatVector))
            : AdditiveFromKeyProjection(x.Query, _stepKeyProjection, x.Keys, x.QueryWeight, x.ScoreVector);
        return context.data<float>().ToArray();
    }

    /// <summary>
    /// A training step: forward keeping the graph, then context.sum().backward() into every input and parameter.
    /// Fresh leaves each call (detach().requires_grad_()), so gradients never accumulate across calls.
    /// </summary>
    public void ForwardBackward() => Step(null);

    /// <summary>One training step, returning the gradients under the names the baselines use.</summary>
    public IReadOnlyDictionary<string, float[]> Gradients()
    {
        var gradients = new Dictionary<string, float[]>();
        Step(gradients);
        return gradients;
    }

    private void Step(Dictionary<string, float[]>? gradients)
    {
        using var scope = NewDisposeScope();
        Operands x = _operands.Map(t => t.numel() == 0 ? t : t.detach().requires_grad_());
        Context(x).sum().backward();
        if (gradients is null) return;
        void Add(string name, Tensor t) { if (t.numel() > 0 && t.grad is not null) gradients[name] = t.grad.data<float>().ToArray(); }
        Tensor q = x.Query, k = x.Keys, v = x.Values, wq = x.QueryWeight, wk = x.KeyWeight, b = x.Bias, u = x.ScoreVector, r = x.EnergyBias;
        switch (_workload.Layer)
        {
            case "pooling": Add("input", q); Add("weight", wq); Add("bias", b); Add("context_vector", u); break;
            case "luong": Add("query", q); Add("keys", k); Add("score_weight", wq); break;
            case "sdpa": Add("query", q); Add("keys", k); Add("values", v); break;
            case "local": Add("query", q); Add("keys", k); Add("score_weight", wq); Add("predictor_weight", wk); Add("predictor_vector", u); break;
            case "local-concat":
                Add("query", q); Add("keys", k); Add("score_weight", wq); Add("score_vector", x.ConcatVector); Add("predictor_weight", wk); Add("predictor_vector", u);
                break;
            case "keyvalue":
                Add("input", q); Add("memory_weight", wk); Add("query_weight", wq); Add("score_vector", u); Add("context_weight", x.ContextWeight); Add("input_weight", x.InputWeight);
                break;
            case "structured": Add("input", q); Add("ws1", wq); Add("ws2", x.HopWeight); break;
            case "monotonic":
                Add("query", q); Add("keys", k); Add("query_weight", wq); Add("key_weight", wk); Add("score_bias", b); Add("score_vector", u); Add("energy_bias", r);
                Add("chunk_query_weight", x.ChunkQueryWeight); Add("chunk_key_weight", x.ChunkKeyWeight); Add("chunk_score_bias", x.ChunkBias); Add("chunk_score_vector", x.ChunkScoreVector);
                break;
            default: Add("query", q); Add("keys", k); Add("query_weight", wq); Add("key_weight", wk); Add("score_bias", b); Add("score_vector", u); break;
        }
    }

    // KeptScalars: the per-call code passes named Scalars in `using` declarations, never a number where TorchSharp takes a
    // Scalar. A number there becomes a temporary Scalar whose last reference ends when its native handle is read, so the GC's
    // finalizer thread can free it while libtorch still reads it: the paired comparisons of 2026-12-07 03:55 UTC crashed once
    // in W9's clamp_min(0) ("Expected false to be true", from c10::Scalar::toLong). A `using` keeps each to the method's end.

    public void Dispose()
    {
        foreach (Tensor t in _operands.All) t.Dispose();
        _stepKeyProjection?.Dispose();
    }
}
