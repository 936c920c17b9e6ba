using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace AttentionGen.Generator.Model;

/// <summary>A source location as plain data (file path and spans), so that models stay comparable across compilations.</summary>
internal sealed record LocationInfo(string FilePath, TextSpan TextSpan, LinePositionSpan LineSpan)
{
    public Location ToLocation() => Location.Create(FilePath, TextSpan, LineSpan);

    public static LocationInfo? From(Location? location)
    {
        if (location is null || location.SourceTree is null)
        {
            return null;
        }
        return new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);
    }
}

/// <summary>
/// A diagnostic as plain data: it travels through the pipeline and becomes a <see cref="Diagnostic"/> only at
/// output, so it never holds a symbol or a syntax tree.
/// </summary>
internal sealed record DiagnosticInfo(DiagnosticDescriptor Descriptor, LocationInfo? Location, EquatableArray<string> MessageArguments)
{
    public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, Location? location, params string[] messageArguments)
        => new(descriptor, LocationInfo.From(location), new EquatableArray<string>(messageArguments));

    public Diagnostic ToDiagnostic()
        => Diagnostic.Create(Descriptor, Location?.ToLocation(), MessageArguments.Length == 0 ? null : System.Linq.Enumerable.ToArray<object?>(MessageArguments));
}
