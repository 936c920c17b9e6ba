using System;
using System.Diagnostics;
using System.Linq;
using AttentionGen;
using AttentionGen.Numerics;

// Runs the same generated layer under the JIT (`dotnet run`) and as a Native AOT binary (`dotnet publish`), printing
// which SIMD path it took, a checksum of the forward pass (equal in both) and its time per call.
var layer = new DecoderAttention(seed: 7);
var random = new Random(3);
const int batch = 8, queries = 4, keys = 30;
float[] query = Enumerable.Range(0, batch * queries * DecoderAttention.Dim).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
float[] keyStates = Enumerable.Range(0, batch * keys * DecoderAttention.Dim).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
var context = new float[batch * queries * DecoderAttention.Dim];
layer.MaxDegreeOfParallelism = 1;
layer.Forward(batch, queries, keys, query, keyStates, default, context);
double checksum = context.Sum(x => (double)x);

// Warm up first, so the JIT run is timed in its optimised (tier-1) code rather than its first, unoptimised one.
var warmUp = Stopwatch.StartNew();
while (warmUp.ElapsedMilliseconds < 1000)
{
    layer.Forward(batch, queries, keys, query, keyStates, default, context);
}
var watch = Stopwatch.StartNew();
int calls = 0;
while (watch.ElapsedMilliseconds < 500)
{
    layer.Forward(batch, queries, keys, query, keyStates, default, context);
    calls++;
}
string mode = System.Runtime.JitInfo.GetCompiledMethodCount() > 0 ? "JIT" : "Native AOT"; // Native AOT compiles nothing at run time
Console.WriteLine($"{mode}: SIMD path {SimdPaths.Widest}, checksum {checksum:R}, {watch.Elapsed.TotalMilliseconds * 1000 / calls:F1} µs per forward");

[AdditiveAttention(Dim = 64)]
public partial class DecoderAttention;
