"""The raw safetensors reading and writing shared by the command-line checks (Python standard
library only; imported from the same folder). Format: an 8-byte little-endian header length, a
JSON header {name: {"dtype", "shape", "data_offsets": [begin, end)}, "__metadata__": {...}}, then
the data block the offsets index into (huggingface.co/docs/safetensors).
"""
import json
import struct

FORMATS = {"F32": "f", "F64": "d", "I64": "q"}  # the struct letters of the dtypes the checks decode


def read(path):
    """(header without "__metadata__", data block as bytes, metadata dict or {})."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    return header, data, meta


def metadata(path):
    """The "__metadata__" dict only (the data block is not read)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


def raw(header, data, name):
    """The bytes of one tensor."""
    begin, end = header[name]["data_offsets"]
    return data[begin:end]


def tensors(path):
    """name -> (dtype, shape, raw bytes), every tensor of the file."""
    header, data, _ = read(path)
    return {k: (v["dtype"], v["shape"], raw(header, data, k)) for k, v in header.items()}


def values(dtype, blob):
    """The elements of a F32/F64/I64 tensor's bytes as a Python list."""
    fmt = FORMATS[dtype]
    return list(struct.unpack("<%d%s" % (len(blob) // struct.calcsize(fmt), fmt), blob))


def write(path, entries, meta=None):
    """Writes [(name, dtype, shape, raw bytes), ...] in that order (header padded to 8 bytes)."""
    header, offset, blobs = ({"__metadata__": meta} if meta is not None else {}), 0, []
    for name, dtype, shape, blob in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
