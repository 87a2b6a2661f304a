#!/usr/bin/env python3
"""CI check of the bad-input catalogue (Python standard library only; about a minute on 2 CPU cores).

Every bad input below must end the command with exit status 1 (not a signal or an abort), one
"oodkit: error:" line on stderr that names the file or the option at fault, and no output left
behind: no result, checkpoint or temporary file. All inputs are written here, in a temporary
folder: PNG images, CIFAR-format and IDX files under a stand-in $OODKIT_SHARED_DIR, safetensors
state dicts, and a small_cnn checkpoint trained for one epoch on the built-in synthetic shapes.

- channel count: an IDX image file with a channel axis ([N, 28, 28, 3]) and a CIFAR-10 batch of
  one-channel records are refused naming the file; grayscale and RGBA PNGs are converted to RGB
  (the documented contract) and score normally.
- size: an ID image folder whose images differ in size names the odd file; one whose images are
  a size no classifier takes names --id.
- labels out of range: a CIFAR-10 label byte of 10 and an MNIST label of 12 name the file and
  the record.
- empty OOD set: an empty folder, an --ood list of no names, --ood-limit 0.
- NaN/Inf: the image loaders give uint8 pixels, which cannot hold NaN or Inf, so non-finite
  values can only enter through the weights: a checkpoint with a NaN and an Inf is refused naming
  the file and the tensor.
- a batch larger than the dataset: train (which drops the last partial batch) refuses it naming
  --batch; score with a batch larger than the set gives the same scores as a small batch.
- an output folder: --out is created with its missing parents; one below a regular file is refused
  naming --out and the folder.
- --device cuda on a machine without a GPU (skipped where `oodkit info` counts a device).
- out of host memory (RLIMIT_AS): an image file larger than the address space left, and an image
  whose pixels are: "out of host memory" naming the file, no std::bad_alloc, no abort.
- a full disk (RLIMIT_FSIZE with SIGXFSZ ignored, so writes fail with EFBIG): score's CSV,
  train's checkpoints and eval's results fail naming the file; nothing complete-looking and no
  temporary file is left.
- a state dict with missing, extra and mis-shaped tensors: counts and the first few names, not
  the whole list.
- unreadable images: without --skip-unreadable the first damaged file is named and the flag
  suggested; with it they are left out, counted on stderr and listed in full (score: <out>.skipped.txt,
  eval: <out>/skipped_images.txt, heatmap fit: <out>/skipped_images.txt, heatmap show:
  <out>.skipped.txt); a folder of nothing but damaged files is still an error. heatmap fit records
  the skipped files: a --resume with another skipped set is refused (nothing in --out changes), and
  its OE targets are recomputed rather than reused under shifted row numbers.
"""
import json
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import zlib

import st_reader  # the raw safetensors reader of the cli checks (same folder)

from cli_check import check, failures, exit_if_failed  # shared by the cli checks (same folder)
OODKIT = None
TMP = None


def run(args, env=None, limits=None, timeout=300):
    """Runs oodkit with `args`; `limits` = {resource.RLIMIT_*: bytes} set in the child only."""
    def preexec():
        # An ignored SIGXFSZ survives exec: a write past RLIMIT_FSIZE then fails with EFBIG
        # instead of killing the process (what a full disk looks like to the writer).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        for which, value in (limits or {}).items():
            resource.setrlimit(which, (value, value))
    full_env = dict(os.environ)
    full_env.setdefault("OMP_NUM_THREADS", "2")  # fixed address-space needs under RLIMIT_AS
    full_env.update(env or {})
    p = subprocess.run([OODKIT] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env,
                       preexec_fn=preexec, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def leftovers(folder):
    """Temporary files the writers use (<name>.tmp.<pid>) anywhere under `folder`."""
    found = []
    for root, _, files in os.walk(folder):
        found += [os.path.join(root, f) for f in files if ".tmp." in f]
    return found


def expect_error(what, args, needles, absent=(), env=None, limits=None, watch=None, early=False):
    """The command must fail cleanly: exit 1, an "oodkit: error:" line containing every needle
    (case-sensitive), no crash text, none of the `absent` paths and no temporary file under `watch`;
    `early`: before any work (nothing on stdout)."""
    rc, out, err = run(args, env=env, limits=limits)
    if early:
        check(out == "", "%s: refused only after starting work (stdout %r)" % (what, out[-300:]))
    line = next((l for l in err.splitlines() if l.startswith("oodkit: error: ")), "")
    ok = check(rc == 1, "%s: exit %d, expected 1 (stderr %r)" % (what, rc, err[-400:]))
    ok &= check(line, "%s: no 'oodkit: error:' line in stderr %r" % (what, err[-400:]))
    for n in needles:
        ok &= check(n in line, "%s: %r not in the error line %r" % (what, n, line))
    for crash in ("terminate called", "std::bad_alloc", "Aborted", "Segmentation"):
        ok &= check(crash not in err, "%s: %r in stderr %r" % (what, crash, err[-400:]))
    for p in absent:
        ok &= check(not os.path.exists(p), "%s: %s was left behind" % (what, p))
    if watch:
        left = leftovers(watch)
        ok &= check(not left, "%s: temporary files left behind: %s" % (what, left))
    return line if ok else None


# ---------------------------------------------------------------- writers of small inputs

def write_png(path, pixels, channels):
    """pixels: rows of bytes, `channels` per pixel (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA)."""
    h, w = len(pixels), len(pixels[0]) // channels
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\0" + bytes(r) for r in pixels)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_blank_png(path, side):
    """A valid side x side black RGB PNG, compressed row by row (its pixels need side^2 * 3 bytes)."""
    c = zlib.compressobj(1)
    row = b"\0" * (1 + side * 3)
    idat = b"".join(c.compress(row) for _ in range(side)) + c.flush()

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def image(w, h, channels, seed):
    return [bytes((x * 7 + y * 13 + c * 31 + seed * 17) % 256 for x in range(w) for c in range(channels))
            for y in range(h)]


def image_folder(name, count, side=32, channels=3):
    d = os.path.join(TMP, name)
    os.makedirs(d, exist_ok=True)
    for i in range(count):
        write_png(os.path.join(d, "img%02d.png" % i), image(side, side, channels, i), channels)
    return d


def write_idx(path, dims, values):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(values))


def read_safetensors(path):
    """([(name, dtype, shape, raw bytes), ...] in file order, metadata)."""
    header, data, meta = st_reader.read(path)
    entries = [(name, info["dtype"], info["shape"], st_reader.raw(header, data, name))
               for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])]
    return entries, meta


def write_safetensors(path, entries, meta):
    st_reader.write(path, entries, meta)


# ---------------------------------------------------------------- the catalogue

def eval_args(ckpt, **over):
    a = {"--checkpoint": ckpt, "--id": "synthetic-id", "--ood": "synthetic-ood-noise", "--val-ood": "synthetic-ood-strokes",
         "--methods": "msp,energy", "--fit-limit": "50", "--heldout": "20", "--val-ood-limit": "20",
         "--test-limit": "30", "--ood-limit": "30"}
    a.update(over)
    out = ["eval"]
    for k, v in a.items():
        if v is not None:
            out += [k, v]
    return out


def check_channels_and_size(ckpt, detectors):
    shared = os.path.join(TMP, "shared_channels")
    mnist = os.path.join(shared, "datasets", "mnist")
    os.makedirs(mnist)
    images = os.path.join(mnist, "t10k-images-idx3-ubyte")
    write_idx(images, [2, 28, 28, 3], [7] * (2 * 28 * 28 * 3))
    write_idx(os.path.join(mnist, "t10k-labels-idx1-ubyte"), [2], [1, 2])
    out = os.path.join(TMP, "ev_channels")
    expect_error("IDX images with a channel axis", eval_args(ckpt, **{"--ood": "mnist", "--out": out}),
                 [images, "dimension"], absent=[out], env={"OODKIT_SHARED_DIR": shared})
    cifar = os.path.join(shared, "datasets", "cifar10")
    os.makedirs(cifar)
    batch = os.path.join(cifar, "test_batch.bin")
    with open(batch, "wb") as f:  # 3 records of 1 label byte + one 32x32 channel
        f.write(b"".join(bytes([1]) + bytes(1024) for _ in range(3)))
    expect_error("CIFAR-10 records of one channel", eval_args(ckpt, **{"--id": "cifar10", "--out": out}),
                 [batch, "3073-byte CIFAR records"], absent=[out], env={"OODKIT_SHARED_DIR": shared})
    # Grayscale and RGBA files are converted to RGB (data/image_folder.h), and score.
    mixed = os.path.join(TMP, "gray_rgba")
    os.makedirs(mixed)
    write_png(os.path.join(mixed, "a_gray.png"), image(32, 32, 1, 1), 1)
    write_png(os.path.join(mixed, "b_gray_alpha.png"), image(20, 20, 2, 2), 2)
    write_png(os.path.join(mixed, "c_rgba.png"), image(40, 40, 4, 3), 4)
    rc, out_text, err = run(["score", "--detectors", detectors, "--data", "folder:" + mixed])
    check(rc == 0 and len(out_text.strip().splitlines()) == 4,
          "score of gray / gray+alpha / RGBA images: exit %d, output %r, stderr %r" % (rc, out_text, err[-300:]))
    # Sizes: an ID folder is read at its stored size, so its images must agree, and be a size the
    # classifiers take.
    odd = image_folder("id_mixed/a", 2)
    image_folder("id_mixed/b", 1)
    write_png(os.path.join(odd, "img99.png"), image(16, 16, 3, 9), 3)
    expect_error("ID images of two sizes", eval_args(ckpt, **{"--id": "folder:" + os.path.dirname(odd), "--out": out}),
                 [os.path.join(odd, "img99.png"), "16x16"], absent=[out])
    image_folder("id_48/a", 2, side=48)
    image_folder("id_48/b", 2, side=48)
    expect_error("ID images of a size no classifier takes",
                 eval_args(ckpt, **{"--id": "folder:" + os.path.join(TMP, "id_48"), "--out": out}),
                 ["--id", "48x48"], absent=[out])


def check_labels(ckpt):
    shared = os.path.join(TMP, "shared_labels")
    cifar = os.path.join(shared, "datasets", "cifar10")
    os.makedirs(cifar)
    batch = os.path.join(cifar, "test_batch.bin")
    with open(batch, "wb") as f:
        f.write(bytes([3]) + bytes(3072) + bytes([10]) + bytes(3072))
    out = os.path.join(TMP, "ev_labels")
    expect_error("CIFAR-10 label 10", eval_args(ckpt, **{"--id": "cifar10", "--out": out}),
                 [batch, "record 1", "label 10", "out of range"], absent=[out], env={"OODKIT_SHARED_DIR": shared})
    mnist = os.path.join(shared, "datasets", "mnist")
    os.makedirs(mnist)
    write_idx(os.path.join(mnist, "t10k-images-idx3-ubyte"), [3, 28, 28], [0] * (3 * 28 * 28))
    labels = os.path.join(mnist, "t10k-labels-idx1-ubyte")
    write_idx(labels, [3], [1, 12, 2])
    expect_error("MNIST label 12", eval_args(ckpt, **{"--ood": "mnist", "--out": out}),
                 [labels, "label 1 is 12", "out of range"], absent=[out], env={"OODKIT_SHARED_DIR": shared})


def check_empty_ood(ckpt):
    empty = os.path.join(TMP, "empty_folder")
    os.makedirs(empty)
    out = os.path.join(TMP, "ev_empty")
    expect_error("an empty OOD folder", eval_args(ckpt, **{"--ood": "folder:" + empty, "--out": out}),
                 [empty, "no image files"], absent=[out])
    expect_error("--ood naming no set", eval_args(ckpt, **{"--ood": ",", "--out": out}), ["--ood"], absent=[out],
                 early=True)
    expect_error("--ood-limit 0", eval_args(ckpt, **{"--ood-limit": "0", "--out": out}), ["--ood-limit"],
                 absent=[out], early=True)


def check_nonfinite_weights(ckpt):
    tensors, meta = read_safetensors(ckpt)
    name, dtype, shape, blob = tensors[0]
    check(dtype == "F32", "first tensor of the checkpoint is %s" % dtype)
    bad = struct.pack("<ff", float("nan"), float("inf")) + blob[8:]
    path = os.path.join(TMP, "nan.safetensors")
    write_safetensors(path, [(name, dtype, shape, bad)] + tensors[1:], meta)
    out = os.path.join(TMP, "ev_nan")
    expect_error("a checkpoint with NaN and Inf", eval_args(path, **{"--out": out}), [path, name, "2 NaN/Inf"],
                 absent=[out])


def check_output_folder():
    """--out is created with its missing parents (mkdir -p); one that cannot be created (below a
    regular file) is refused naming --out and the folder."""
    args = ["train", "--arch", "small_cnn", "--dataset", "synthetic-id", "--limit", "40", "--epochs", "1",
            "--batch", "20", "--out"]
    nested = os.path.join(TMP, "new", "nested", "run")
    rc, _, err = run(args + [nested])
    check(rc == 0 and os.path.isfile(os.path.join(nested, "model.safetensors")),
          "train --out into new nested folders: exit %d (%s)" % (rc, err[-300:]))
    blocker = os.path.join(TMP, "a_plain_file")
    with open(blocker, "w") as f:
        f.write("not a folder\n")
    target = os.path.join(blocker, "run")
    expect_error("train --out below a file", args + [target],
                 ["--out", "cannot create the folder '%s'" % target, "'%s' is a file, not a folder" % blocker], watch=TMP)


def check_batch(ckpt, detectors):
    out = os.path.join(TMP, "train_big_batch")
    line = expect_error("train --batch larger than the dataset",
                        ["train", "--arch", "small_cnn", "--dataset", "synthetic-id", "--limit", "40", "--epochs", "1",
                         "--batch", "64", "--out", out], ["--batch", "64", "40"], watch=TMP)
    check(not os.path.isdir(out) or not os.listdir(out), "train --batch too large left %s" %
          (os.listdir(out) if os.path.isdir(out) else ""))
    small = run(["score", "--detectors", detectors, "--data", "synthetic-ood-noise", "--limit", "23", "--batch", "5"])
    big = run(["score", "--detectors", detectors, "--data", "synthetic-ood-noise", "--limit", "23", "--batch", "100000"])
    check(small[0] == 0 and big[0] == 0 and small[1] == big[1] and len(big[1].splitlines()) == 24,
          "score with a batch larger than the set: exits %d/%d, outputs equal: %s" % (small[0], big[0], small[1] == big[1]))
    # --features-out (docs/python.md): refused before any work under a file; else the extracted
    # columns, the labels and the head of the scored rows.
    blocker, csv = os.path.join(TMP, "features_blocker"), os.path.join(TMP, "features.csv")
    open(blocker, "w").close()
    refused = ["score", "--detectors", detectors, "--data", "synthetic-ood-noise", "--limit", "23", "--out", csv,
               "--features-out", os.path.join(blocker, "f.safetensors")]
    expect_error("score --features-out under a file", refused, ["--features-out"], absent=[csv], early=True)
    err = run(refused)[2]  # before the extraction: the error line alone, no progress line
    check(len(err.strip().splitlines()) == 1, "score --features-out under a file: refused late (stderr %r)" % err)
    feats = os.path.join(TMP, "features", "f.safetensors")
    rc, _, err = run(["score", "--detectors", detectors, "--data", "synthetic-id", "--limit", "23", "--out", csv,
                      "--features-out", feats])  # a labelled set: the labels are written too
    if check(rc == 0 and os.path.exists(feats), "score --features-out: exit %d, %r" % (rc, err[-300:])):
        with open(feats, "rb") as f:
            header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        shapes = {k: v["shape"] for k, v in header.items() if k != "__metadata__"}
        k, d = shapes.get("head.weight", [0, 0])
        # A features file (docs/data.md): the ID set's rows are id_test, with their labels.
        check(set(shapes) == {"head.weight", "head.bias", "id_test.features", "id_test.logits", "id_test.labels"}
              and shapes["id_test.features"] == [23, d] and shapes["id_test.logits"] == [23, k]
              and shapes["id_test.labels"] == [23] and shapes["head.bias"] == [k] and k > 1 and d > 1,
              "score --features-out: shapes %r" % shapes)
    # Another set: ood.<--data>, without labels (its classes are not the head's).
    ood_feats = os.path.join(TMP, "features", "ood.safetensors")
    rc, _, err = run(["score", "--detectors", detectors, "--data", "synthetic-ood-noise", "--limit", "7", "--out", csv,
                      "--features-out", ood_feats])
    if check(rc == 0 and os.path.exists(ood_feats), "score --features-out (OOD): exit %d, %r" % (rc, err[-300:])):
        with open(ood_feats, "rb") as f:
            header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        check(sorted(k for k in header if k != "__metadata__") ==
              ["head.bias", "head.weight", "ood.synthetic-ood-noise.features", "ood.synthetic-ood-noise.logits"]
              and header["ood.synthetic-ood-noise.features"]["shape"][0] == 7,
              "score --features-out (OOD): tensors %r" % sorted(header))


def check_cuda(ckpt, detectors):
    rc, out, _ = run(["info"])
    m = re.search(r"CUDA devices: (\d+)", out)
    if rc != 0 or not m or int(m.group(1)) > 0:
        print("check_bad_inputs: a CUDA device is present: --device cuda checks skipped")
        return
    ev = os.path.join(TMP, "ev_cuda")
    expect_error("eval --device cuda", eval_args(ckpt, **{"--device": "cuda", "--out": ev}), ["--device cuda"],
                 absent=[ev], early=True)
    tr = os.path.join(TMP, "train_cuda")
    expect_error("train --device cuda", ["train", "--arch", "small_cnn", "--dataset", "synthetic-id", "--limit", "64",
                                         "--epochs", "1", "--device", "cuda", "--out", tr], ["--device cuda"],
                 absent=[tr], early=True)
    csv = os.path.join(TMP, "cuda.csv")
    expect_error("score --device cuda:1", ["score", "--detectors", detectors, "--data", "synthetic-ood-noise",
                                           "--device", "cuda:1", "--out", csv], ["--device cuda:1"], absent=[csv], early=True)


def address_space_needed(args):
    """The smallest RLIMIT_AS (to 32 MiB) under which `args` succeeds: what the program itself
    needs (libraries, threads, the model), which differs between builds (the CUDA libraries alone
    map gigabytes)."""
    lo, hi = 0, 128 << 20
    while run(args, limits={resource.RLIMIT_AS: hi})[0] != 0:
        lo, hi = hi, hi * 2
        if hi > 64 << 30:
            return None
    while hi - lo > 32 << 20:
        mid = (lo + hi) // 2
        if run(args, limits={resource.RLIMIT_AS: mid})[0] == 0:
            hi = mid
        else:
            lo = mid
    return hi


def check_out_of_memory(detectors):
    small = image_folder("oom_small", 2)
    need = address_space_needed(["score", "--detectors", detectors, "--data", "folder:" + small])
    if not check(need, "score of 2 small images fails under any address-space limit"):
        return
    # 96 MiB more than the program needs: room for small images, not for the inputs below.
    limit = {resource.RLIMIT_AS: need + (96 << 20)}
    big_file = os.path.join(TMP, "oom_file")
    os.makedirs(big_file)
    path = os.path.join(big_file, "huge.png")
    with open(path, "wb") as f:  # sparse: more bytes than the limit, taking no disk
        f.truncate(need + (512 << 20))
    csv = os.path.join(TMP, "oom.csv")
    expect_error("an image file larger than the memory left",
                 ["score", "--detectors", detectors, "--data", "folder:" + big_file, "--out", csv],
                 ["out of host memory", path], absent=[csv], limits=limit, watch=TMP)
    big_pixels = os.path.join(TMP, "oom_pixels")
    os.makedirs(big_pixels)
    path = os.path.join(big_pixels, "wide.png")
    write_blank_png(path, 8192)  # a 0.2 MB file of 192 MiB of pixels (stb needs twice that)
    expect_error("an image whose pixels do not fit",
                 ["score", "--detectors", detectors, "--data", "folder:" + big_pixels, "--out", csv],
                 ["out of host memory", path, "8192x8192"], absent=[csv], limits=limit, watch=TMP)


def check_disk_full(ckpt, detectors):
    csv = os.path.join(TMP, "full", "scores.csv")
    os.makedirs(os.path.dirname(csv))
    expect_error("score --out on a full disk",
                 ["score", "--detectors", detectors, "--data", "synthetic-ood-noise", "--limit", "50", "--out", csv],
                 [csv, "File too large"], absent=[csv], limits={resource.RLIMIT_FSIZE: 256},
                 watch=os.path.dirname(csv))
    ck = os.path.join(TMP, "full", "ck")
    expect_error("train checkpoints on a full disk",
                 ["train", "--arch", "small_cnn", "--dataset", "synthetic-id", "--limit", "64", "--epochs", "1",
                  "--batch", "32", "--out", ck], [os.path.join(ck, "model.safetensors"), "File too large"],
                 absent=[os.path.join(ck, f) for f in ("model.safetensors", "last.safetensors", "log.json")],
                 limits={resource.RLIMIT_FSIZE: 100 << 10}, watch=os.path.dirname(csv))
    ev = os.path.join(TMP, "full", "ev")
    expect_error("eval --out on a full disk", eval_args(ckpt, **{"--out": ev}), [ev, "File too large"],
                 absent=[os.path.join(ev, f) for f in ("results.json", "results.csv", "results.md")],
                 limits={resource.RLIMIT_FSIZE: 1024}, watch=os.path.dirname(csv))


def check_state_dict(ckpt):
    tensors, meta = read_safetensors(ckpt)
    # Keep the first 3 tensors (the first mis-shaped), drop the rest, add 300 unknown ones.
    name, dtype, shape, blob = tensors[0]
    wrong = (name, dtype, [shape[0] + 1] + shape[1:], blob + blob[:len(blob) // shape[0]])
    extra = [("extra.%03d" % i, "F32", [1], struct.pack("<f", 0.0)) for i in range(300)]
    path = os.path.join(TMP, "mismatch.safetensors")
    write_safetensors(path, [wrong] + tensors[1:3] + extra, meta)
    n_missing = sum(1 for t in tensors[3:] if not t[0].endswith("num_batches_tracked"))  # optional ones
    out = os.path.join(TMP, "ev_mismatch")
    line = expect_error("a state dict with missing, extra and mis-shaped tensors", eval_args(path, **{"--out": out}),
                        [path, "wrong shape 1: %s (checkpoint [%d" % (name, shape[0] + 1),
                         "missing %d: %s." % (n_missing, tensors[3][0].rsplit(".", 1)[0]),
                         "unexpected 300: extra.{000,001,002,003,004,005 and 294 more}", "--arch is one of "],
                        absent=[out])
    if line:
        check("extra.299" not in line and len(line) < 1500, "the state-dict error lists too much (%d chars)" % len(line))


def check_unreadable(detectors, ckpt):
    d = image_folder("damaged", 5)
    bad1, bad2 = os.path.join(d, "img01.png"), os.path.join(d, "img03.png")
    with open(bad1, "r+b") as f:  # a PNG cut short inside its image data
        f.truncate(60)
    with open(bad2, "wb") as f:
        f.write(b"not an image at all")
    csv = os.path.join(TMP, "damaged.csv")
    expect_error("an unreadable image without --skip-unreadable",
                 ["score", "--detectors", detectors, "--data", "folder:" + d, "--out", csv],
                 [bad1, "--skip-unreadable"], absent=[csv])
    rc, out, err = run(["score", "--detectors", detectors, "--data", "folder:" + d, "--out", csv, "--skip-unreadable"])
    if check(rc == 0, "score --skip-unreadable: exit %d (%s)" % (rc, err[-400:])):
        check(len(open(csv).read().splitlines()) == 4, "score --skip-unreadable: %r" % open(csv).read())
        check(re.search(r"skipped 2 unreadable image files of 'folder:%s' \(the first: '%s'\)" % (re.escape(d), re.escape(bad1)),
                        err), "score --skip-unreadable: no summary line in %r" % err)
        listed = [l.split("\t") for l in open(csv + ".skipped.txt").read().splitlines()]
        check([l[1] for l in listed] == [bad1, bad2] and all(len(l) == 3 and l[2] for l in listed),
              "score --skip-unreadable: listed %r" % listed)
    ev = os.path.join(TMP, "ev_damaged")
    rc, out, err = run(eval_args(ckpt, **{"--ood": "folder:" + d, "--out": ev}) + ["--skip-unreadable"])
    if check(rc == 0, "eval --skip-unreadable: exit %d (%s)" % (rc, err[-400:])):
        listed = [l.split("\t")[1] for l in open(os.path.join(ev, "skipped_images.txt")).read().splitlines()]
        check(listed == [bad1, bad2], "eval --skip-unreadable listed %r" % listed)
        res = json.load(open(os.path.join(ev, "results.json")))
        n = res["methods"]["msp"]["sets"]["folder:" + d]["n_ood"]
        check(n == 3, "eval --skip-unreadable scored %d OOD images, expected 3" % n)
    rc, out, err = run(eval_args(ckpt, **{"--ood": "folder:" + d}) + ["--skip-unreadable"])
    check(rc == 0 and bad1 in err and bad2 in err, "eval --skip-unreadable without --out: list not on stderr %r" % err)
    all_bad = os.path.join(TMP, "all_damaged")
    os.makedirs(all_bad)
    shutil.copy(bad2, os.path.join(all_bad, "x.png"))
    expect_error("a folder of only unreadable images", ["score", "--detectors", detectors, "--data",
                                                        "folder:" + all_bad, "--out", csv + "2", "--skip-unreadable"],
                 ["all 1 image files", "unreadable"], absent=[csv + "2"])


def folder_state(folder):
    """Every file under `folder` with its bytes and modification time (to see that nothing changed)."""
    state = {}
    for root, _, files in os.walk(folder):
        for f in files:
            path = os.path.join(root, f)
            state[path] = (open(path, "rb").read(), os.stat(path).st_mtime_ns)
    return state


def listed_files(path, column=1):
    """Column `column` of a skipped-files list (set, file, reason per line); [] when it does not exist."""
    return [l.split("\t")[column] for l in open(path).read().splitlines()] if os.path.exists(path) else []


def check_heatmap_unreadable(ckpt):
    """heatmap fit and show with a damaged file in an image folder (the OE set, a shown set)."""
    d = image_folder("hm_damaged", 8)
    bad = os.path.join(d, "img02.png")
    good = open(bad, "rb").read()
    with open(bad, "r+b") as f:  # a PNG cut short inside its image data
        f.truncate(60)
    out = os.path.join(TMP, "hm_fit")
    def fit_args(epochs):
        return ["heatmap", "fit", "--checkpoint", ckpt, "--id", "synthetic-id", "--id-limit", "40", "--heldout", "10",
                "--val-ood-limit", "0", "--oe", "folder:" + d, "--oe-skip", "0", "--width", "0.125", "--epochs",
                str(epochs), "--batch", "8", "--out", out]
    fit = fit_args(1)
    expect_error("heatmap fit: an unreadable OE image without --skip-unreadable", fit, [bad, "--skip-unreadable"],
                 absent=[out])
    rc, stdout, err = run(fit + ["--skip-unreadable"])
    if not check(rc == 0, "heatmap fit --skip-unreadable: exit %d (%s)" % (rc, err[-400:])):
        return
    check("skipped 1 unreadable image file of 'folder:%s' (the first: '%s')" % (d, bad) in err,
          "heatmap fit --skip-unreadable: no summary line in %r" % err)
    listed = [listed_files(os.path.join(out, "skipped_images.txt"), c) for c in (0, 1, 2)]
    check(listed[:2] == [["folder:" + d], [bad]] and all(listed[2]),
          "heatmap fit --skip-unreadable listed %r" % listed)
    targets = os.path.join(out, "targets.safetensors")
    n_oe = len(json.loads(st_reader.read(targets)[2]["oe_images"]))
    check(n_oe == 7, "heatmap fit --skip-unreadable: %d OE rows in the targets, expected 7" % n_oe)
    # img02 repaired and img05 damaged: 7 images again under the same row numbers, but other ones. A
    # --resume of the checkpoint is refused, naming both skipped sets, and changes nothing in --out ...
    with open(bad, "wb") as f:
        f.write(good)
    bad2 = os.path.join(d, "img05.png")
    with open(bad2, "r+b") as f:
        f.truncate(60)
    before = folder_state(out)
    line = expect_error("heatmap fit --resume with another set of skipped files",
                        fit_args(2) + ["--resume", "--skip-unreadable"],
                        ['--skip-unreadable ["%s"] (now ["%s"])' % (bad, bad2)])
    check(line is None or "--epochs" not in line, "heatmap fit --resume: --epochs named as a difference in %r" % line)
    check(folder_state(out) == before, "a refused heatmap fit --resume changed files in --out")
    # ... and without a checkpoint the targets are recomputed, not reused for other images.
    os.remove(os.path.join(out, "last.safetensors"))
    rc, stdout, err = run(fit + ["--resume", "--skip-unreadable"])
    if check(rc == 0, "heatmap fit --resume with img05 skipped: exit %d (%s)" % (rc, err[-400:])):
        check("recomputing" in stdout and "targets: reusing" not in stdout,
              "heatmap fit --resume reused the targets of another skipped set: %r" % stdout[-600:])
        listed = listed_files(os.path.join(out, "skipped_images.txt"))
        check(listed == [bad2], "heatmap fit --resume with img05 skipped listed %r" % listed)
    # heatmap show on a damaged folder.
    shown = image_folder("hm_show_damaged", 5)
    bad = os.path.join(shown, "img01.png")
    with open(bad, "wb") as f:
        f.write(b"not an image at all")
    png = os.path.join(TMP, "hm_show.png")
    show = ["heatmap", "show", "--heatmap", out, "--data", "folder:" + shown, "--limit", "8", "--out", png]
    expect_error("heatmap show: an unreadable image without --skip-unreadable", show, [bad, "--skip-unreadable"],
                 absent=[png])
    rc, stdout, err = run(show + ["--skip-unreadable"])
    if check(rc == 0, "heatmap show --skip-unreadable: exit %d (%s)" % (rc, err[-400:])):
        check(os.path.exists(png), "heatmap show --skip-unreadable wrote no %s" % png)
        listed = listed_files(png + ".skipped.txt")
        check(listed == [bad], "heatmap show --skip-unreadable listed %r" % listed)
        rows = [l for l in open(png + ".md").read().splitlines() if l.startswith("| folder:")]
        check(len(rows) == 4, "heatmap show --skip-unreadable showed %d images, expected 4" % len(rows))


def main():
    global OODKIT, TMP
    OODKIT = os.path.abspath(sys.argv[1])
    TMP = tempfile.mkdtemp(prefix="oodkit_bad_inputs_")
    try:
        ck = os.path.join(TMP, "ck")
        rc, out, err = run(["train", "--arch", "small_cnn", "--dataset", "synthetic-id", "--limit", "64", "--epochs",
                            "1", "--batch", "32", "--out", ck])
        if not check(rc == 0, "train for the checkpoint: exit %d (%s)" % (rc, err[-400:])):
            raise SystemExit("FAILED:\n  " + "\n  ".join(failures))
        ckpt = os.path.join(ck, "model.safetensors")
        ev = os.path.join(TMP, "ev")
        rc, out, err = run(eval_args(ckpt, **{"--out": ev}))
        if not check(rc == 0, "eval for the detectors: exit %d (%s)" % (rc, err[-400:])):
            raise SystemExit("FAILED:\n  " + "\n  ".join(failures))
        detectors = os.path.join(ev, "detectors")
        for name, f in [("channels/size", lambda: check_channels_and_size(ckpt, detectors)),
                        ("labels", lambda: check_labels(ckpt)),
                        ("empty OOD", lambda: check_empty_ood(ckpt)),
                        ("NaN/Inf", lambda: check_nonfinite_weights(ckpt)),
                        ("batch", lambda: check_batch(ckpt, detectors)),
                        ("output folder", check_output_folder),
                        ("cuda", lambda: check_cuda(ckpt, detectors)),
                        ("out of memory", lambda: check_out_of_memory(detectors)),
                        ("disk full", lambda: check_disk_full(ckpt, detectors)),
                        ("state dict", lambda: check_state_dict(ckpt)),
                        ("unreadable", lambda: check_unreadable(detectors, ckpt)),
                        ("heatmap folder", lambda: check_heatmap_unreadable(ckpt))]:
            before = len(failures)
            f()
            print("check_bad_inputs: %-14s %s" % (name, "ok" if len(failures) == before else "FAILED"), flush=True)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    exit_if_failed()
    print("check_bad_inputs: every bad input ends with a clear error and no output")


if __name__ == "__main__":
    main()
