#!/usr/bin/env bash
# Packs AttentionGen, then restores and runs a throwaway consumer project from the local folder feed — real package
# consumption (no ProjectReference), with an isolated package cache so an older cached package cannot hide a problem.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props")
dotnet pack "$repo/runtime/AttentionGen/AttentionGen.csproj" -c Release -o "$work/feed" --nologo -v q
test -f "$work/feed/AttentionGen.$version.nupkg"
unzip -l "$work/feed/AttentionGen.$version.nupkg" | tee "$work/contents.txt" | grep -E 'lib/net10.0/AttentionGen.dll|analyzers/dotnet/cs/AttentionGen.*.dll|README.md|AttentionGen.xml' | sed 's/^/  package holds: /'
for entry in lib/net10.0/AttentionGen.dll lib/net10.0/AttentionGen.xml analyzers/dotnet/cs/AttentionGen.Generator.dll analyzers/dotnet/cs/AttentionGen.CodeFixes.dll README.md; do
  grep -q "$entry" "$work/contents.txt" || { echo "the package lacks $entry" >&2; exit 1; }
done

mkdir -p "$work/consumer"
cat > "$work/consumer/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$work/feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
XML
cat > "$work/consumer/Consumer.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
    <NuGetAudit>false</NuGetAudit>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="AttentionGen" Version="$version" />
  </ItemGroup>
</Project>
XML
cat > "$work/consumer/Program.cs" <<'CS'
using System;
using System.Linq;
using AttentionGen;

var layer = new Aligner(seed: 1);
var random = new Random(2);
float[] query = Enumerable.Range(0, 2 * 8).Select(_ => (float)random.NextDouble()).ToArray();
float[] keys = Enumerable.Range(0, 5 * 8).Select(_ => (float)random.NextDouble()).ToArray();
var context = new float[2 * 8];
var weights = new float[2 * 5];
layer.Forward(1, 2, 5, query, keys, default, context, weights);
double rowSum = weights.Take(5).Sum();
Console.WriteLine($"consumer: {layer.Parameters.Count} parameters, first weights row sums to {rowSum:F6}, context[0] = {context[0]:F6}");
return Math.Abs(rowSum - 1) < 1e-5 && context.All(float.IsFinite) ? 0 : 1;

[AdditiveAttention(Dim = 8)]
public partial class Aligner;
CS
cd "$work/consumer"
NUGET_PACKAGES="$work/packages" dotnet run -c Release --nologo -v q
echo "package check: packed, restored from the local feed, generated and ran a layer"
