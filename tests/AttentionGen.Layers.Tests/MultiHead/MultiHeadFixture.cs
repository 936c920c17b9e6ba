using System;
using System.Linq;
using System.Numerics;

namespace AttentionGen.Layers.Tests.MultiHead;

/// <summary>
/// What the multi-head forward test classes share for one declared layer: its dimensions read from the generated
/// constants, the tolerance against the double reference, a seeded layer with non-zero biases, a KV cache, the reference.
/// </summary>
public abstract class MultiHeadFixture<TLayer, T, TTape, TCache>
    where TLayer : IMultiHeadLayer<T, TTape, TCache>, new()
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TTape : AttentionTape, new()
{
    protected static readonly int ModelDim = Constant("ModelDim"), Heads = Constant("Heads"), HeadDim = Constant("HeadDim"),
        KeyDim = Constant("KeyDim"), ValueDim = Constant("ValueDim");
    protected static readonly double Tolerance = typeof(T) == typeof(float) ? 2e-5 : 1e-12;
    protected abstract bool Causal { get; }

    private static int Constant(string name) => (int)typeof(TLayer).GetField(name)!.GetRawConstantValue()!;

    protected static TLayer CreateLayer(int seed)
    {
        var layer = new TLayer();
        layer.ResetParameters(seed);
        var random = new Random(seed + 100);
        foreach (Parameter<T> p in layer.Parameters.Where(p => p.Name.Contains("bias")))
        {
            // PyTorch starts the biases at zero; give them values so their paths show.
            TestData.Random<T>(random, p.Value.Length, 0.5).CopyTo(p.Value, 0);
        }
        return layer;
    }

    // The cache's constructor through reflection, its own exception (not TargetInvocationException) passed on.
    protected static TCache CreateCache(int batch, int capacity)
    {
        try
        {
            return (TCache)Activator.CreateInstance(typeof(TCache), batch, capacity)!;
        }
        catch (System.Reflection.TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
    }

    protected static MultiHeadReference Reference(TLayer layer) => MultiHeadReference.From(layer, ModelDim, Heads, KeyDim, ValueDim);
}
