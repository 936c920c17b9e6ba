namespace AttentionGen.Generator.Model;

/// <summary>One enclosing type of the attributed class, outermost first: its keyword (<c>class</c>, <c>struct</c>, <c>record</c>…) and name.</summary>
internal sealed record ContainingType(string Keyword, string Name);

/// <summary>
/// Where a layer's code goes: the attributed partial class, as names only.
/// </summary>
/// <param name="Namespace">The namespace, empty for the global namespace.</param>
/// <param name="ContainingTypes">Enclosing types, outermost first.</param>
/// <param name="Keyword">The declaration keyword of the class itself (<c>class</c> or <c>record</c>).</param>
/// <param name="Name">The class name.</param>
/// <param name="FullName">The fully qualified metadata-style name, for the generated file's hint name.</param>
internal sealed record LayerTarget(string Namespace, EquatableArray<ContainingType> ContainingTypes, string Keyword, string Name, string FullName);

/// <summary>The element type of a layer: its C# keyword and its size in bytes.</summary>
internal sealed record ElementType(string Keyword, int Size)
{
    public static readonly ElementType Single = new("float", 4);
    public static readonly ElementType Double = new("double", 8);

    /// <summary>How many lanes a vector of <paramref name="bits"/> bits holds.</summary>
    public int Lanes(int bits) => bits / 8 / Size;
}
