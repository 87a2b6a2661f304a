#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/: a few small valid files per parser and a few
slightly broken ones (truncated, wrong sizes, bad types). Deterministic; run from anywhere:
    python3 fuzz/make_corpus.py
JPEG seeds are written by stb_image_write through a throw-away C++ program (needs c++ and
libstb-dev); every other format is written here. Files are kept small (a few kB at most)."""
import gzip
import io
import json
import os
import shutil
import struct
import subprocess
import tempfile
import zipfile
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ------------------------------------------------------------------ safetensors
def safetensors(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, off, blob = {}, 0, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blob += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + blob


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


def f64(*v):
    return struct.pack("<%dd" % len(v), *v)


def i64(*v):
    return struct.pack("<%dq" % len(v), *v)


def seeds_safetensors():
    put("safetensors", "ok_f32", safetensors([("w", "F32", [2, 3], f32(1, 2, 3, 4, 5, 6)),
                                              ("b", "F32", [3], f32(0.5, -1, 2))], {"format": "pt"}))
    put("safetensors", "ok_mixed", safetensors([("a", "F16", [2], b"\x00\x3c\x00\xc0"),
                                                ("c", "BF16", [1], b"\x80\x3f"),
                                                ("d", "U8", [4], b"\x01\x02\x03\x04"),
                                                ("e", "I32", [1], b"\x07\x00\x00\x00"),
                                                ("f", "I64", [1], i64(-3)), ("g", "F64", [], f64(2.5)),
                                                ("z", "F32", [0, 4], b"")]))
    put("safetensors", "ok_empty", safetensors([]))
    good = safetensors([("w", "F32", [2, 2], f32(1, 2, 3, 4))])
    put("safetensors", "err_truncated", good[:-3])
    put("safetensors", "err_trailing", good + b"xx")
    put("safetensors", "err_overlap", safetensors([("a", "F32", [1], f32(1)), ("b", "F32", [1], f32(2))])
        .replace(b"[4,8]", b"[0,4]"))
    put("safetensors", "err_dtype", safetensors([("a", "Q8", [1], b"\x01")]))
    put("safetensors", "err_len", struct.pack("<Q", 1 << 40) + b"{}")


# ------------------------------------------------------------------ CIFAR
def seeds_cifar():
    rec10 = lambda label, v: bytes([label]) + bytes((v + i) % 256 for i in range(3072))
    rec100 = lambda coarse, fine, v: bytes([coarse, fine]) + bytes((v * i) % 256 for i in range(3072))
    put("cifar", "ok_cifar10_2", rec10(3, 0) + rec10(9, 7))
    put("cifar", "ok_cifar100_1", rec100(19, 99, 3))
    put("cifar", "err_label", rec10(200, 1))
    put("cifar", "err_truncated", rec10(1, 2)[:-10])
    put("cifar", "ok_names", "airplane\nautomobile\r\n\nbird \n")


# ------------------------------------------------------------------ IDX
def idx(dims, values, code=0x08):
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(values)


def seeds_idx():
    images = idx([2, 4, 4], range(32))
    labels = idx([5], [0, 1, 9, 3, 4])
    put("idx", "ok_images", images)
    put("idx", "ok_labels", labels)
    put("idx", "ok_images_gz", gzip.compress(images, mtime=0))
    put("idx", "ok_labels_gz2", gzip.compress(labels[:6], mtime=0) + gzip.compress(labels[6:], mtime=0))
    put("idx", "err_truncated", images[:-1])
    put("idx", "err_float", idx([1], [0, 0, 0, 0], code=0x0D))
    put("idx", "err_gz_truncated", gzip.compress(images, mtime=0)[:-5])
    put("idx", "err_huge_dims", bytes([0, 0, 8, 3]) + struct.pack(">III", 0xFFFFFFFF, 0xFFFFFFFF, 2))


# ------------------------------------------------------------------ images
def png(w, h, color_type=2, bit_depth=8, rows=None):
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    bpp = channels * bit_depth // 8
    if rows is None:
        rows = [bytes((x * 37 + y * 11 + c) % 256 for x in range(w) for c in range(bpp)) for y in range(h)]
    raw = b"".join(b"\x00" + r for r in rows)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def bmp(w, h):
    row = bytes((x * 50) % 256 for x in range(w * 3))
    row += b"\x00" * ((4 - len(row) % 4) % 4)
    pixels = row * h
    header = b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


def tga(w, h):
    return struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, w, h, 24, 0) + bytes(range(w * h * 3))


def gif_1x1():
    return (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\x00\x00\x00\x00\xff"
            b"!\xf9\x04\x00\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def jpegs():
    """{name: bytes} written by stb_image_write (empty when no compiler or stb headers)."""
    src = r'''
#include <stb/stb_image_write.h>
#include <cstdio>
int main(int, char** argv) {
  unsigned char px[40 * 24 * 3];
  for (int i = 0; i < 40 * 24 * 3; ++i) px[i] = (unsigned char)(i * 7);
  stbi_write_jpg(argv[1], 40, 24, 3, px, 80);
  stbi_write_jpg(argv[2], 8, 8, 1, px, 50);
}
'''
    d = tempfile.mkdtemp()
    try:
        with open(os.path.join(d, "w.cpp"), "w") as f:
            f.write("#define STB_IMAGE_WRITE_IMPLEMENTATION\n" + src)
        exe = os.path.join(d, "w")
        subprocess.run(["c++", "-O1", "-o", exe, os.path.join(d, "w.cpp")], check=True, capture_output=True)
        a, b = os.path.join(d, "a.jpg"), os.path.join(d, "b.jpg")
        subprocess.run([exe, a, b], check=True)
        return {"ok_rgb.jpg": open(a, "rb").read(), "ok_gray.jpg": open(b, "rb").read()}
    except (OSError, subprocess.CalledProcessError) as e:
        print("make_corpus: no JPEG seeds (%s)" % e)
        return {}
    finally:
        shutil.rmtree(d)


def seeds_image():
    put("image", "ok_rgb.png", png(12, 9))
    put("image", "ok_gray16.png", png(5, 7, color_type=0, bit_depth=16))
    put("image", "ok_rgba_wide.png", png(40, 3, color_type=6))
    put("image", "ok_24bit.bmp", bmp(6, 5))
    put("image", "ok_rgb.tga", tga(4, 3))
    put("image", "ok_rgb.ppm", b"P6\n3 2\n255\n" + bytes(range(18)))
    put("image", "ok_gray.pgm", b"P5 4 4 255\n" + bytes(range(0, 160, 10)))
    put("image", "ok_1x1.gif", gif_1x1())
    for name, data in jpegs().items():
        put("image", name, data)
    put("image", "err_truncated.png", png(12, 9)[:-30])
    put("image", "err_huge.ppm", b"P6\n60000 60000\n255\n" + bytes(64))
    put("image", "err_huge.png", png(20000, 15000, rows=[bytes(1)]))
    put("image", "err_garbage", b"not an image at all")


# ------------------------------------------------------------------ Tiny ImageNet
def seeds_tiny_imagenet():
    put("tiny_imagenet", "ok_annotations", "val_0.JPEG\tn01443537\t0\t10\t62\t63\n"
        "val_1.JPEG\tn01629819\t1\t2\t3\t4\nval_2.JPEG\tn01641577\t5\t6\t7\t8\n")
    put("tiny_imagenet", "ok_wnids", "n01443537\nn01629819\r\n\nn01641577\n")
    put("tiny_imagenet", "err_notab", "val_0.JPEG n01443537\n")
    put("tiny_imagenet", "err_twice", "val_0.JPEG\tn01443537\nval_0.JPEG\tn01629819\n")


# ------------------------------------------------------------------ detector states
def state(kind, params, tensors, save_id="00112233445566778899aabbccddeeff"):
    doc = {"format": "oodkit-detector-state", "format_version": 1, "kind": kind,
           "tensors": "state.safetensors", "save_id": save_id, "params": params}
    meta = {"format": "oodkit-detector-state", "format_version": "1", "kind": kind, "save_id": save_id}
    return json.dumps(doc, indent=2).encode() + b"\n\x00" + safetensors(tensors, meta)


def seeds_detector_state():
    put("detector_state", "ok_react", state("react", {"threshold": 1.5, "percentile": 90.0}, []))
    put("detector_state", "ok_knn_base", state("knn", {"param.k": 50.0, "param_keys": "k"}, []))
    eye = f64(1, 0, 0, 1)
    put("detector_state", "ok_mahalanobis", state(
        "mahalanobis", {"feature_dim": 2, "num_classes": 2, "rank": 2, "rcond": 1e-12},
        [("means", "F64", [2, 2], f64(1, 0, 0, 1)), ("center", "F64", [2], f64(0.5, 0.5)),
         ("covariance", "F64", [2, 2], eye), ("precision", "F64", [2, 2], eye),
         ("class_counts", "I64", [2], i64(3, 4))]))
    put("detector_state", "ok_vim", state(
        "vim", {"feature_dim": 2, "principal_dim": 1, "num_classes": 3, "alpha": 0.7},
        [("origin", "F64", [2], f64(0, 0)), ("null_space", "F64", [2, 1], f64(0, 1)),
         ("eigenvalues", "F64", [2], f64(2, 1))]))
    put("detector_state", "ok_dice", state(
        "dice", {"feature_dim": 2, "num_classes": 2, "has_bias": 1, "sparsity": 0.5,
                 "contribution_threshold": 0.1, "kept": 2},
        [("mean_feature", "F64", [2], f64(1, 2)), ("mask", "U8", [2, 2], b"\x01\x00\x00\x01"),
         ("masked_weight", "F64", [2, 2], f64(1, 0, 0, 2)), ("bias", "F64", [2], f64(0, 0))]))
    put("detector_state", "err_save_id", state("react", {"threshold": 1.0}, [])
        .replace(b'"save_id": "0011', b'"save_id": "9911'))
    put("detector_state", "err_vim_dims", state(
        "vim", {"feature_dim": 2, "principal_dim": 2, "num_classes": 3, "alpha": 0.7}, []))


# ------------------------------------------------------------------ protocol.json
def seeds_protocol():
    good = {"arch": "resnet20", "num_classes": 10, "checkpoint": "w.safetensors", "id": "cifar10",
            "image_size": 32, "image_fit": "short-crop", "ta_thresholds": [0.5, 0.9], "nap_eps": 1e-6,
            "methods": ["msp", "energy", "nap_e"]}
    put("protocol", "ok_protocol.json", json.dumps(good, indent=2))
    old = dict(good)
    del old["image_fit"]
    put("protocol", "ok_no_fit.json", json.dumps(old))
    bad = dict(good, num_classes="10")
    put("protocol", "err_type.json", json.dumps(bad))
    put("protocol", "err_missing.json", json.dumps({"arch": "resnet20"}))
    put("protocol", "err_syntax.json", json.dumps(good)[:-7])
    # `oodkit eval --features` runs: the file, its width and head fingerprint instead of a classifier.
    feats = {"features": "rows.safetensors", "model": "vit", "num_classes": 10, "feature_dim": 768,
             "head_fingerprint": "fnv1a64:0123456789abcdef", "id": "cifar10", "methods": ["msp", "knn"],
             "thresholds": {"msp": 0.5, "knn": -0.7}}
    put("protocol", "ok_features.json", json.dumps(feats, indent=2))
    put("protocol", "err_features_dim.json", json.dumps(dict(feats, feature_dim=0)))


# ------------------------------------------------------------------ PyTorch checkpoints
TORCH_FIXTURES = os.path.join(os.path.dirname(ROOT), "..", "tests", "fixtures", "torch")


def pk_int(n):
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    if -(2 ** 31) <= n < 2 ** 31:
        return b"J" + struct.pack("<i", n)
    return b"\x8a\x08" + struct.pack("<q", n)  # LONG1


def pk_str(text):
    b = text.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def pk_tensor(key, numel, offset, size, stride, storage="FloatStorage"):
    """torch._utils._rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict())."""
    tup = lambda xs: b"(" + b"".join(pk_int(x) for x in xs) + b"t"
    return (b"ctorch._utils\n_rebuild_tensor_v2\n((" + pk_str("storage") + b"ctorch\n" + storage.encode() + b"\n" +
            pk_str(key) + pk_str("cpu") + pk_int(numel) + b"tQ" + pk_int(offset) + tup(size) + tup(stride) +
            b"\x89ccollections\nOrderedDict\n)Rt" + b"R")


def torch_zip(pickle, storages, archive="archive"):
    """A torch.save-like ZIP: <archive>/data.pkl, byteorder, data/<key>, version (stored, fixed dates)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        def add(name, data):
            z.writestr(zipfile.ZipInfo(archive + "/" + name, date_time=(2024, 1, 1, 0, 0, 0)), data)
        add("data.pkl", pickle)
        add("byteorder", b"little")
        for key, data in storages.items():
            add("data/" + key, data)
        add("version", b"3\n")
    return buf.getvalue()


def seeds_torch_file():
    # The test fixtures (tests/fixtures/torch/, written by PyTorch) that fit libFuzzer's -max_len.
    for name in sorted(os.listdir(TORCH_FIXTURES)):
        path = os.path.join(TORCH_FIXTURES, name)
        if name.endswith(".pt") and os.path.getsize(path) <= 8192:
            ok = name.split(".")[0] in ("dtypes", "protocol4", "views", "checkpoint", "module", "deflated", "zip64",
                                        "legacy", "legacy_dtypes", "legacy_protocol4", "legacy_views",
                                        "legacy_checkpoint")
            with open(path, "rb") as f:
                put("torch_file", ("ok_" if ok else "err_") + name, f.read())
    # Hand-made pickles: opcodes torch.save does not write (DICT, LIST, APPENDS, POP, DUP, LONG1,
    # BINFLOAT, bytes, memo by 4-byte ids), views of one storage, an int64 storage.
    w = f32(*range(6))
    body = (b"\x80\x02}q\x00(" +
            pk_str("w") + pk_tensor("0", 6, 0, [2, 3], [3, 1]) +
            pk_str("wt") + pk_tensor("0", 6, 1, [2, 2], [1, 3]) +
            pk_str("n") + pk_tensor("1", 2, 1, [], [], "LongStorage") +
            pk_str("lst") + b"](" + pk_int(-5) + pk_int(70000) + pk_int(2 ** 40) + b"G" + struct.pack(">d", 0.25) +
            b"N\x88\x89C\x03abce" +
            pk_str("d") + b"(" + pk_str("a") + pk_int(1) + b"dr\x05\x00\x00\x00" +
            pk_str("again") + b"j\x05\x00\x00\x00" +
            pk_str("l") + b"(" + pk_int(1) + pk_int(2) + b"l2\x30" +
            b"u.")
    put("torch_file", "ok_handmade", torch_zip(body, {"0": w, "1": i64(7, 9)}))
    put("torch_file", "err_global", torch_zip(b"\x80\x02}(" + pk_str("x") + b"cos\nsystem\n" + pk_str("ls") +
                                              b"\x85Ru.", {}))
    put("torch_file", "err_view_oob", torch_zip(b"\x80\x02}(" + pk_str("w") + pk_tensor("0", 6, 4, [2, 2], [2, 1]) +
                                                b"u.", {"0": w}))
    # 300 views of one 4 kB storage: 1.2 MB to materialise from a 10 kB file (over the 64x budget).
    many = b"".join(pk_str("v%d" % k) + b"h\x01" for k in range(300))
    put("torch_file", "err_budget", torch_zip(b"\x80\x02}(" + pk_str("w") + pk_tensor("0", 1000, 0, [1000], [1]) +
                                              b"q\x01" + many + b"u.", {"0": f32(*range(1000))}))
    put("torch_file", "err_truncated", torch_zip(body, {"0": w, "1": i64(7, 9)})[:-30])


if __name__ == "__main__":
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    for f in (seeds_safetensors, seeds_cifar, seeds_idx, seeds_image, seeds_tiny_imagenet, seeds_detector_state,
              seeds_protocol, seeds_torch_file):
        f()
    for t in sorted(os.listdir(ROOT)):
        files = os.listdir(os.path.join(ROOT, t))
        size = sum(os.path.getsize(os.path.join(ROOT, t, n)) for n in files)
        print("%-16s %2d files %6d bytes" % (t, len(files), size))
