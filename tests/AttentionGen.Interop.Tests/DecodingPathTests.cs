using System;
using System.Linq;
using AttentionGen.Serialization;
using Xunit;

namespace AttentionGen.Interop.Tests;

/// <summary>
/// Loading decodes through reinterpreted spans on little-endian hosts and through BinaryPrimitives otherwise. This
/// machine is little-endian, so the second path runs here directly and must give the same bits as the first.
/// </summary>
public sealed class DecodingPathTests
{
    // Bytes covering normal, subnormal, infinite and NaN encodings of every width.
    private static byte[] Bytes(int count)
    {
        var random = new Random(11);
        var bytes = new byte[count];
        random.NextBytes(bytes);
        return bytes;
    }

    [Theory]
    [InlineData(SafeTensorsDType.F32, 4)]
    [InlineData(SafeTensorsDType.F64, 8)]
    [InlineData(SafeTensorsDType.F16, 2)]
    [InlineData(SafeTensorsDType.BF16, 2)]
    public void Both_paths_give_the_same_values(SafeTensorsDType type, int size)
    {
        const int Count = 4099;
        byte[] data = Bytes(Count * size);

        var fastFloat = new float[Count];
        var portableFloat = new float[Count];
        SafeTensors.Decode<float>(data, type, fastFloat);
        SafeTensors.DecodeAnyEndian<float>(data, type, portableFloat);
        Assert.Equal(fastFloat.Select(BitConverter.SingleToInt32Bits), portableFloat.Select(BitConverter.SingleToInt32Bits));

        var fastDouble = new double[Count];
        var portableDouble = new double[Count];
        SafeTensors.Decode<double>(data, type, fastDouble);
        SafeTensors.DecodeAnyEndian<double>(data, type, portableDouble);
        Assert.Equal(fastDouble.Select(BitConverter.DoubleToInt64Bits), portableDouble.Select(BitConverter.DoubleToInt64Bits));
    }

    [Fact]
    public void The_portable_path_reads_little_endian_bytes()
    {
        // 1.5f is 0x3FC00000: little-endian bytes 00 00 C0 3F. 1.5 in binary16 is 0x3E00: bytes 00 3E.
        var single = new float[1];
        SafeTensors.DecodeAnyEndian<float>(new byte[] { 0x00, 0x00, 0xC0, 0x3F }, SafeTensorsDType.F32, single);
        Assert.Equal(1.5f, single[0]);
        var half = new double[1];
        SafeTensors.DecodeAnyEndian<double>(new byte[] { 0x00, 0x3E }, SafeTensorsDType.F16, half);
        Assert.Equal(1.5, half[0]);
        var bf16 = new double[1];
        SafeTensors.DecodeAnyEndian<double>(new byte[] { 0xC0, 0x3F }, SafeTensorsDType.BF16, bf16);
        Assert.Equal(1.5, bf16[0]);
    }
}
