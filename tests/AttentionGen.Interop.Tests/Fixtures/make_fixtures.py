#!/usr/bin/env python3
"""Writes the .safetensors fixtures that AttentionGen.Interop.Tests read, in exactly the layout of the reference
implementation's `save_file` (huggingface/safetensors, safetensors/src/tensor.rs `prepare`/`serialize`):

  * 8-byte little-endian unsigned header length N, then N bytes of header, then the data;
  * the header is serde_json's compact output: "__metadata__" first (when given; its keys in UTF-8 byte order, see
    save()), then the tensors in data order;
    strings escape only '"', '\\' and control characters (\\b \\f \\n \\r \\t, others as \\u00xx), everything else is
    raw UTF-8 -- what json.dumps(..., separators=(",", ":"), ensure_ascii=False) writes;
  * tensors sorted by dtype, descending in the reference's enum order (... F16 < BF16 < I32 < U32 < F32 < C64 < F64 <
    I64 < U64), then by name in UTF-8 byte order; data packed without gaps;
  * the header padded with spaces to a multiple of 8 bytes.

Plain Python 3 (struct, json, os): no third-party packages. Run it from anywhere; it writes next to itself.

Values follow formulas the C# tests recompute independently. Element i of tensor t is
    (i * 0.5 - 3) * SCALE[base name of t]
(every such value is exact in F16 and BF16), except the tensors of special_values.safetensors, listed there.
"""
import json
import os
import struct

SCALE = {"query_weight": 1.0, "key_weight": 0.25, "score_bias": 2.0, "score_vector": -1.0, "extra": 0.125}

# The reference's Dtype enum order (later = sorted first) and element sizes in bytes.
DTYPE_ORDER = ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"]
SIZE = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4,
        "C64": 8, "F64": 8, "I64": 8, "U64": 8}


def encode(dtype, values):
    if dtype == "F64":
        return b"".join(struct.pack("<d", v) for v in values)
    if dtype == "F32":
        return b"".join(struct.pack("<f", v) for v in values)
    if dtype == "F16":
        return b"".join(struct.pack("<e", v) for v in values)
    if dtype == "BF16":  # the upper 16 bits of the binary32 (every value used here is exact, so no rounding question)
        return b"".join(struct.pack("<f", v)[2:] for v in values)
    if dtype == "I64":
        return b"".join(struct.pack("<q", int(v)) for v in values)
    raise ValueError(dtype)


def formula(name, count):
    base = name.rsplit(".", 1)[-1] if name.rsplit(".", 1)[-1] in SCALE else name.split(".")[-2]
    return [(i * 0.5 - 3) * SCALE[base] for i in range(count)]


def save(path, tensors, metadata=None):
    """tensors: name -> (dtype, shape, values); values None means the formula."""
    order = sorted(tensors, key=lambda n: (-DTYPE_ORDER.index(tensors[n][0]), n.encode("utf-8")))
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        # The reference keeps metadata in a HashMap, so its key order is arbitrary; AttentionGen writes keys in UTF-8
        # byte order, one of the orders the reference may produce, and so do these fixtures.
        header["__metadata__"] = dict(sorted(metadata.items(), key=lambda kv: kv[0].encode("utf-8")))
    for name in order:
        dtype, shape, values = tensors[name]
        count = 1
        for d in shape:
            count *= d
        data = encode(dtype, formula(name, count) if values is None else values)
        assert len(data) == count * SIZE[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


here = os.path.dirname(os.path.abspath(__file__))
# The additive layer with Dim = 3, Units = 4.
LAYER = {"query_weight": (4, 3), "key_weight": (4, 3), "score_bias": (4,), "score_vector": (4,)}

for dtype in ("F32", "F64", "F16", "BF16"):
    save(os.path.join(here, f"additive_{dtype.lower()}.safetensors"),
         {n: (dtype, s, None) for n, s in LAYER.items()}, {"format": "pt"})

# Part of a whole model's state dict: a prefix, every float dtype, an extra F16 tensor and an I64 scalar (as
# BatchNorm's num_batches_tracked), no metadata.
p = "decoder.attention."
save(os.path.join(here, "state_dict_mixed.safetensors"), {
    p + "query_weight": ("F64", (4, 3), None),
    p + "key_weight": ("F32", (4, 3), None),
    p + "score_bias": ("BF16", (4,), None),
    p + "score_vector": ("F16", (4,), None),
    p + "extra": ("F16", (2,), None),
    "decoder.norm.num_batches_tracked": ("I64", (), [7]),
})

# PyTorch module names (nn.Linear layers W_q, W_k with the bias on W_k, v with shape [1, Units]), needing Rename,
# Prefix and IgnoreSizeOneDimensions. Values: the formula of the parameter each one becomes.
save(os.path.join(here, "pytorch_names.safetensors"), {
    "attn.W_q.weight": ("F32", (4, 3), formula("query_weight", 12)),
    "attn.W_k.weight": ("F32", (4, 3), formula("key_weight", 12)),
    "attn.W_k.bias": ("F32", (4,), formula("score_bias", 4)),
    "attn.v.weight": ("F32", (1, 4), formula("score_vector", 4)),
}, {"format": "pt", "source": "torch.save_file of an nn.Module"})

# Values whose conversion the tests check bit for bit:
#   f16: 65504 (largest), 2^-24 (smallest subnormal), 2^-14 (smallest normal), -0.0, -inf, 1/3 rounded to binary16
#   bf16: 2^127 * 1.5, 2^-133 (a subnormal), -inf, 1 + 2^-7, -2.5
#   f64: 0.1, 1/3, 1e-300, 3.4028234663852886e38 * 2 (overflows binary32)
save(os.path.join(here, "special_values.safetensors"), {
    "f16": ("F16", (6,), [65504.0, 2.0 ** -24, 2.0 ** -14, -0.0, float("-inf"), 1.0 / 3.0]),
    "bf16": ("BF16", (5,), [2.0 ** 127 * 1.5, 2.0 ** -133, float("-inf"), 1.0 + 2.0 ** -7, -2.5]),
    "f64": ("F64", (4,), [0.1, 1.0 / 3.0, 1e-300, 3.4028234663852886e38 * 2]),
}, {})

# Names and metadata that need escaping, non-ASCII text, and an order where UTF-8 and UTF-16 disagree
# (U+FF01 sorts before U+1F600 by code point, after it by UTF-16 code unit). Values: 1, 2, 3, ... in name order.
names = ["plain", "quote\"d", "back\\slash", "new\nline", "tab\there", "bell\x07", "caf\u00e9", "<tag>&amp;",
         "\uff01wide", "\U0001f600smile", "slash/ok", "del\x7f"]
save(os.path.join(here, "escaped_names.safetensors"),
     {n: ("F32", (1,), [float(i + 1)]) for i, n in enumerate(names)},
     {"note": "line\nbreak \u00fc \"q\" <b>", "a\x01": "ctrl"})
