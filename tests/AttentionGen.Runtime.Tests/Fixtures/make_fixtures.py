#!/usr/bin/env python3
"""Writes the safetensors fixtures the runtime tests read, in the layout of the reference `save_file`
(safetensors 0.4): an 8-byte little-endian header length, a compact JSON header with "__metadata__" first and the
tensors ordered by dtype size (largest first) then by name, padded with spaces to a multiple of 8 bytes, then the raw
little-endian data packed without gaps. Plain Python: struct and json only.

Values follow simple formulas the C# tests recompute independently: element i of a tensor is
    value(i) = (i * 0.5 - 3) * scale
with scale 1 for "query_weight", 0.25 for "key_weight", 2 for "score_bias", -1 for "score_vector", 0.125 for "extra".
"""
import json, struct, os

SCALES = {"query_weight": 1.0, "key_weight": 0.25, "score_bias": 2.0, "score_vector": -1.0, "extra": 0.125}
SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}

def encode(dtype, values):
    if dtype == "F64": return b"".join(struct.pack("<d", v) for v in values)
    if dtype == "F32": return b"".join(struct.pack("<f", v) for v in values)
    if dtype == "F16": return b"".join(struct.pack("<e", v) for v in values)
    if dtype == "BF16": return b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0])[2:] for v in values)
    raise ValueError(dtype)

def save(path, tensors, metadata=None):
    """tensors: name -> (dtype, shape)"""
    order = sorted(tensors, key=lambda n: (-SIZES[tensors[n][0]], n))
    header, blobs, offset = {}, [], 0
    if metadata: header["__metadata__"] = metadata
    for name in order:
        dtype, shape = tensors[name]
        count = 1
        for d in shape: count *= d
        data = encode(dtype, [(i * 0.5 - 3) * SCALES[name] for i in range(count)])
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data); offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text))); f.write(text)
        for b in blobs: f.write(b)

here = os.path.dirname(os.path.abspath(__file__))
layer = {"query_weight": (4, 3), "key_weight": (4, 3), "score_bias": (4,), "score_vector": (4,)}
for dtype in ("F32", "F64", "F16", "BF16"):
    save(os.path.join(here, f"additive_{dtype.lower()}.safetensors"), {n: (dtype, s) for n, s in layer.items()}, {"format": "pt"})
# A state dict with a prefix, an extra tensor, and mixed dtypes (F64 first in the data, as the reference orders them).
mixed = {"decoder.attention." + n: ("F64" if n.startswith("query") else "F32", s) for n, s in layer.items()}
mixed["decoder.attention.extra"] = ("F16", (2,))
SCALES.update({"decoder.attention." + k: v for k, v in list(SCALES.items())})
save(os.path.join(here, "state_dict_mixed.safetensors"), mixed)
