using System;
using System.Text;

namespace AttentionGen.Generator.Emit;

/// <summary>
/// Writes C# source with consistent four-space indentation. <see cref="Block"/> opens a brace block and
/// closes it when disposed, so emitters read like the code they write.
/// </summary>
internal sealed class SourceWriter
{
    private readonly StringBuilder _builder = new();
    private int _indent;

    public void WriteLine() => _builder.Append('\n');

    /// <summary>Writes each line of <paramref name="text"/> at the current indentation.</summary>
    public void WriteLine(string text)
    {
        foreach (string line in text.Split('\n'))
        {
            if (line.Length == 0)
            {
                _builder.Append('\n');
                continue;
            }
            _builder.Append(' ', _indent * 4).Append(line.TrimEnd('\r')).Append('\n');
        }
    }

    /// <summary>Writes <c>header</c>, an opening brace, and indents until the returned scope is disposed.</summary>
    public Scope Block(string header)
    {
        WriteLine(header);
        return Block();
    }

    /// <summary>An opening brace; the closing brace comes when the returned scope is disposed.</summary>
    public Scope Block(bool closeWithSemicolon = false)
    {
        WriteLine("{");
        _indent++;
        return new Scope(this, closeWithSemicolon);
    }

    /// <summary>A doc comment summary, one <c>///</c> line per line of text.</summary>
    public void Summary(string text)
    {
        WriteLine("/// <summary>");
        foreach (string line in text.Split('\n'))
        {
            WriteLine("/// " + line);
        }
        WriteLine("/// </summary>");
    }

    public override string ToString() => _builder.ToString();

    internal readonly struct Scope : IDisposable
    {
        private readonly SourceWriter _writer;
        private readonly bool _semicolon;

        public Scope(SourceWriter writer, bool semicolon)
        {
            _writer = writer;
            _semicolon = semicolon;
        }

        public void Dispose()
        {
            if (_writer is null)
            {
                return; // a default scope: nothing was opened
            }
            _writer._indent--;
            _writer.WriteLine(_semicolon ? "};" : "}");
        }
    }
}
