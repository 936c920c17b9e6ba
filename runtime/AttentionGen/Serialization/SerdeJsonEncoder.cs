using System;
using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;

namespace AttentionGen.Serialization;

/// <summary>
/// Escapes JSON strings exactly as serde_json (the reference implementation's serializer) does, so that saved headers are
/// byte for byte what <c>save_file</c> writes: only <c>"</c>, <c>\</c> and control characters below U+0020 are escaped
/// (<c>\b \f \n \r \t</c> in short form, the rest as <c>\u00xx</c> in lower-case hex); everything else, non-ASCII
/// included, is written as UTF-8. System.Text.Json's built-in encoders escape more (HTML-sensitive and non-ASCII
/// characters, upper-case hex), which would give a different header for the same tensors.
/// </summary>
internal sealed class SerdeJsonEncoder : JavaScriptEncoder
{
    public static readonly SerdeJsonEncoder Instance = new();

    private static readonly SearchValues<byte> s_bytesToEscape = SearchValues.Create(
        "\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000A\u000B\u000C\u000D\u000E\u000F\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001A\u001B\u001C\u001D\u001E\u001F\"\\"u8);

    private SerdeJsonEncoder()
    {
    }

    // "\u00xx" is the longest escape.
    public override int MaxOutputCharactersPerInputCharacter => 6;

    public override bool WillEncode(int unicodeScalar) => unicodeScalar < 0x20 || unicodeScalar == '"' || unicodeScalar == '\\';

    // Multi-byte UTF-8 sequences only contain bytes ≥ 0x80, so a byte search finds exactly the characters to escape.
    public override int FindFirstCharacterToEncodeUtf8(ReadOnlySpan<byte> utf8Text) => utf8Text.IndexOfAny(s_bytesToEscape);

    public override unsafe int FindFirstCharacterToEncode(char* text, int textLength)
    {
        ReadOnlySpan<char> span = new(text, textLength);
        for (int i = 0; i < span.Length; i++)
        {
            if (WillEncode(span[i]))
            {
                return i;
            }
        }
        return -1;
    }

    public override unsafe bool TryEncodeUnicodeScalar(int unicodeScalar, char* buffer, int bufferLength, out int numberOfCharactersWritten)
    {
        Span<char> destination = new(buffer, bufferLength);
        if (!WillEncode(unicodeScalar))
        {
            return new Rune(unicodeScalar).TryEncodeToUtf16(destination, out numberOfCharactersWritten);
        }
        string escape = unicodeScalar switch
        {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\b' => "\\b",
            '\f' => "\\f",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            _ => "\\u00" + unicodeScalar.ToString("x2", System.Globalization.CultureInfo.InvariantCulture),
        };
        if (escape.Length > bufferLength)
        {
            numberOfCharactersWritten = 0;
            return false;
        }
        escape.CopyTo(destination);
        numberOfCharactersWritten = escape.Length;
        return true;
    }
}
