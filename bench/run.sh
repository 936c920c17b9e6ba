#!/usr/bin/env bash
# Builds the benchmark suite in Release, makes TorchSharp's native library load on Debian 12 (see
# ../shared/tools/torchsharp-debian12/enable.sh), and runs the suite with the given arguments:
#   bash bench/run.sh --quick                      # the CI smoke run
#   bash bench/run.sh                              # the full BenchmarkDotNet run, W0–W13 at 1 and 2 threads, W0/W1/W12 decoder steps (about 13 minutes)
#   bash bench/run.sh --workloads W11,W12 --threads 1   # local-p concat, and W12 as a decoder step (pass Step)
#   bash bench/run.sh --workloads W8,W13           # monotonic attention and MoChA (W13), forward and training
#   bash bench/run.sh --workloads W0,W3 --threads 1   # a part of it; other arguments go to BenchmarkDotNet
#   bash bench/run.sh --no-pin                     # one-thread benchmarks not pinned to the vCPU with the higher FMA peak
# The suite runs BenchmarkDotNet in-process (see Program.cs), so the LD_PRELOAD set here reaches every benchmark.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
dotnet build "$here/AttentionGen.Benchmarks/AttentionGen.Benchmarks.csproj" -c Release --nologo -v q
out="$here/AttentionGen.Benchmarks/bin/Release/net10.0"
enable="$repo/../shared/tools/torchsharp-debian12/enable.sh"
if [ -x "$enable" ]; then eval "$("$enable" "$out")" || echo "TorchSharp enable script failed; TorchSharp columns will be empty" >&2; fi
# The quick mode times only a few calls after a 100 ms warm-up: without tiering every method is fully optimised from its
# first call, instead of timing tier-0 code while a busy machine delays the background tier-1 compilation.
case " $* " in *" --quick "*) export DOTNET_TieredCompilation=0 ;; esac
# The full run keeps tiered compilation (and its dynamic PGO) but without the 100 ms quiet period each tier-up waits
# for: BenchmarkDotNet jits new methods at every benchmark's start, which kept pushing the large generated backward
# methods' tier-1 code back (a W4 training step drifted from 9.8 to 5.5 ms across one benchmark's iterations).
export DOTNET_TC_CallCountingDelayMs=0
cd "$here/AttentionGen.Benchmarks"
exec dotnet "$out/AttentionGen.Benchmarks.dll" "$@"
