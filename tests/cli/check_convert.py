#!/usr/bin/env python3
"""CI check of PyTorch checkpoints on the command line (Python standard library only).

The shipped ResNet-20 weights are written here as a torch.save-style ZIP archive (the layout
framework/torch_file.h reads: <archive>/data.pkl, a protocol-2 pickle of
{"epoch": 7, "state_dict": OrderedDict(name -> torch._utils._rebuild_tensor_v2(...))}, plus
<archive>/data/<key> storages), under a name ending in .bin: checkpoints are told by their ZIP
magic, not their extension. Then:
- `oodkit convert X.bin OUT.safetensors --arch resnet20` writes the same tensors, bit for bit, with
  the arch in the metadata; converting onto the input itself, a malicious pickle (os.system) and a
  safetensors input are refused with one error line naming the file (the payload does not run).
- `oodkit eval --checkpoint X.bin --arch resnet20` gives the same results as the safetensors
  original; without --arch it is refused (a PyTorch checkpoint records no architecture).
- The same weights in torch.save's legacy layout (five pickles, then each storage's element count
  and bytes), named .th like the original akamaster file: `convert --arch resnet20` writes the same
  tensors bit for bit; a legacy file with os.system in its object pickle is refused the same way.
Real torch.save files (written by PyTorch) are read in tests/test_torch_file.cpp.
"""
import json
import os
import shutil
import struct
import sys
import tempfile
import zipfile

import st_reader
from cli_check import check, run, exit_if_failed

PWNED = "/tmp/oodkit_torch_pwned_cli"


def pk_str(text):
    b = text.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def pk_int(n):
    return b"J" + struct.pack("<i", n) if n < 2 ** 31 else b"\x8a\x08" + struct.pack("<q", n)


def pk_tuple(xs):
    return b"(" + b"".join(pk_int(x) for x in xs) + b"t"


def torch_pickle(tensors, legacy=False):
    """{"epoch": 7, "state_dict": OrderedDict(...)} for tensors [(name, dtype, shape, raw)]; storage keys 0, 1, ...
    (legacy: persistent ids end with view_metadata None)"""
    storage_type = {"F32": b"FloatStorage", "I64": b"LongStorage"}
    size = {"F32": 4, "I64": 8}
    out = b"\x80\x02}(" + pk_str("epoch") + pk_int(7) + pk_str("state_dict")
    out += b"ccollections\nOrderedDict\n)R("
    for key, (name, dtype, shape, raw) in enumerate(tensors):
        stride, s = [], 1
        for d in reversed(shape):
            stride.insert(0, s)
            s *= d
        out += pk_str(name) + b"ctorch._utils\n_rebuild_tensor_v2\n(("
        out += pk_str("storage") + b"ctorch\n" + storage_type[dtype] + b"\n" + pk_str(str(key)) + pk_str("cpu")
        out += pk_int(len(raw) // size[dtype]) + (b"N" if legacy else b"") + b"tQ" + pk_int(0) + pk_tuple(shape)
        out += pk_tuple(stride)
        out += b"\x89ccollections\nOrderedDict\n)RtR"
    return out + b"uu."


def write_torch_zip(path, pickle, storages, archive="archive"):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(archive + "/data.pkl", pickle)
        z.writestr(archive + "/byteorder", b"little")
        for key, raw in enumerate(storages):
            z.writestr(archive + "/data/%d" % key, raw)
        z.writestr(archive + "/version", b"3\n")


def write_torch_legacy(path, pickle, storages, elem_size):
    """torch.save's legacy layout: magic number, protocol version, system information, `pickle`, the
    storage keys "0", "1", ..., then each storage as its element count (8 bytes) and raw bytes."""
    out = b"\x80\x02\x8a\x0a" + (0x1950a86a20f9469cfc6c).to_bytes(10, "little") + b"."
    out += b"\x80\x02M\xe9\x03."
    out += (b"\x80\x02}(" + pk_str("protocol_version") + b"M\xe9\x03" + pk_str("little_endian") + b"\x88" +
            pk_str("type_sizes") + b"}(" + pk_str("short") + b"K\x02" + pk_str("int") + b"K\x04" + pk_str("long") +
            b"K\x04uu.")
    out += pickle
    out += b"\x80\x02](" + b"".join(pk_str(str(k)) for k in range(len(storages))) + b"e."
    for raw, es in zip(storages, elem_size):
        out += struct.pack("<q", len(raw) // es) + raw
    with open(path, "wb") as f:
        f.write(out)


def main():
    oodkit = sys.argv[1]
    shared = os.environ.get("OODKIT_SHARED_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
    weights = os.path.join(shared, "weights", "resnet20_cifar10.safetensors")
    tmp = tempfile.mkdtemp(prefix="oodkit_convert_")
    try:
        shipped = st_reader.tensors(weights)
        order = list(shipped)
        ckpt = os.path.join(tmp, "resnet20_ckpt.bin")
        write_torch_zip(ckpt, torch_pickle([(n,) + shipped[n] for n in order]), [shipped[n][2] for n in order])

        out = os.path.join(tmp, "converted.safetensors")
        rc, stdout, err = run(oodkit, "convert", ckpt, out, "--arch", "resnet20")
        check(rc == 0 and "%d tensors" % len(order) in stdout, "convert: exit %d, %r %r" % (rc, stdout, err))
        if rc == 0:
            got = st_reader.tensors(out)
            check(list(got) == order, "convert: names/order differ: %r" % list(got)[:5])
            check(all(got[n] == shipped[n] for n in order), "convert: tensors differ from the shipped weights")
            meta = st_reader.metadata(out)
            check(meta.get("arch") == "resnet20" and meta.get("converted_from") == "resnet20_ckpt.bin",
                  "convert: metadata %r" % meta)

        # The legacy layout: the same tensors.
        legacy = os.path.join(tmp, "resnet20-legacy.th")
        write_torch_legacy(legacy, torch_pickle([(n,) + shipped[n] for n in order], legacy=True),
                           [shipped[n][2] for n in order], [8 if shipped[n][0] == "I64" else 4 for n in order])
        out = os.path.join(tmp, "converted_legacy.safetensors")
        rc, stdout, err = run(oodkit, "convert", legacy, out, "--arch", "resnet20")
        check(rc == 0 and "%d tensors" % len(order) in stdout, "convert legacy: exit %d, %r %r" % (rc, stdout, err))
        if rc == 0:
            got = st_reader.tensors(out)
            check(list(got) == order and all(got[n] == shipped[n] for n in order),
                  "convert legacy: tensors differ from the shipped weights")
        evil = os.path.join(tmp, "evil.th")
        write_torch_legacy(evil, b"\x80\x02}(" + pk_str("x") + b"cposix\nsystem\n" + pk_str("touch " + PWNED) +
                           b"\x85Ru.", [], [])
        if os.path.exists(PWNED):
            os.unlink(PWNED)
        rc, _, err = run(oodkit, "convert", evil, os.path.join(tmp, "evil_th.safetensors"))
        check(rc == 1 and "PyTorch file '%s'" % evil in err and "'posix.system', which is not allowed" in err
              and err.count("\n") == 1, "convert evil.th: exit %d, %r" % (rc, err))
        check(not os.path.exists(PWNED) and not os.path.exists(os.path.join(tmp, "evil_th.safetensors")),
              "convert evil.th ran its payload or wrote an output")

        # Refusals: one error line naming the file.
        rc, _, err = run(oodkit, "convert", ckpt, ckpt)
        check(rc == 1 and "is the input file" in err and err.count("\n") == 1, "convert onto itself: %d %r" % (rc, err))
        evil = os.path.join(tmp, "evil.pt")
        write_torch_zip(evil, b"\x80\x02}(" + pk_str("x") + b"cposix\nsystem\n" + pk_str("touch " + PWNED) +
                        b"\x85Ru.", [])
        if os.path.exists(PWNED):
            os.unlink(PWNED)
        rc, _, err = run(oodkit, "convert", evil, os.path.join(tmp, "evil.safetensors"))
        check(rc == 1 and "PyTorch file '%s'" % evil in err and "'posix.system', which is not allowed" in err
              and err.count("\n") == 1, "convert evil.pt: exit %d, %r" % (rc, err))
        check(not os.path.exists(PWNED) and not os.path.exists(os.path.join(tmp, "evil.safetensors")),
              "convert evil.pt ran its payload or wrote an output")
        rc, _, err = run(oodkit, "convert", weights, os.path.join(tmp, "x.safetensors"))
        check(rc == 1 and "not a PyTorch checkpoint" in err, "convert of a safetensors file: %d %r" % (rc, err))

        # eval reads the checkpoint through load_classifier: the same results as the original.
        common = ["--id", "cifar10", "--fit-limit", "300", "--heldout", "100", "--val-ood-limit", "100", "--ood",
                  "isun", "--ood-limit", "150", "--test-limit", "150", "--methods", "msp,energy,mahalanobis",
                  "--tuning", "none"]
        rc, _, err = run(oodkit, "eval", "--checkpoint", ckpt, *common)
        check(rc == 1 and "is a PyTorch checkpoint, which records no oodkit architecture; pass --arch" in err,
              "eval of a .pt without --arch: exit %d, %r" % (rc, err.strip()))
        results = []
        for cp in (ckpt, weights):
            d = os.path.join(tmp, "eval_" + os.path.basename(cp))
            rc, _, err = run(oodkit, "eval", "--checkpoint", cp, "--arch", "resnet20", "--out", d, *common,
                             timeout=600)
            check(rc == 0, "eval --checkpoint %s: exit %d, %r" % (cp, rc, err[-400:]))
            results.append(json.load(open(os.path.join(d, "results.json")))["methods"] if rc == 0 else None)
        check(results[0] is not None and results[0] == results[1],
              "eval: the .pt checkpoint gives other results than the safetensors one")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    exit_if_failed()
    print("check_convert: %d tensors converted bit for bit; eval on the .pt equals eval on the safetensors"
          % len(order))


if __name__ == "__main__":
    main()
