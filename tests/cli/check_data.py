#!/usr/bin/env python3
"""CI check of `oodkit data` (Python standard library only): every dataset name the registry knows
is listed; the development copies' image counts are those of $OODKIT_SHARED_DIR/datasets/README.md;
sets laid out here in a temporary folder are counted from the files made (complete, incomplete,
not installed), and --digest equals FNV-1a 64 over the files computed here."""
import os
import re
import struct
import subprocess
import sys
import tempfile

from cli_check import check, failures


def run(oodkit, args, shared):
    env = dict(os.environ, OODKIT_SHARED_DIR=shared)
    p = subprocess.run([oodkit] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    return p.returncode, p.stdout, p.stderr


def table(stdout):
    """dataset -> the row's cells."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] not in ("dataset",) and not cells[0].startswith("---"):
            rows[cells[0]] = cells
    return rows


def fnv_folder(root):
    h = 1469598103934665603
    files = sorted(os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
                   for d, _, fs in os.walk(root) for f in fs)
    for rel in files:
        data = open(os.path.join(root, rel), "rb").read()
        for b in rel.encode() + b"\0" + struct.pack("<Q", len(data)) + data:
            h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "fnv1a64:%016x" % h


def touch(path, data=b"x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def main():
    oodkit, shared = sys.argv[1], os.environ.get("OODKIT_SHARED_DIR", "")
    # The registry's names, as the unknown-name error lists them.
    code, _, err = run(oodkit, ["eval", "--id", "nosuch"], shared or "/nonexistent")
    m = re.search(r"known: ([^)]*)\)", err)
    known = m.group(1).split(", ") if check(m, "no list of known datasets in: %r" % err) else []
    check("cifar10" in known and "synthetic-id" in known, "known datasets: %s" % known)

    if shared:
        code, out, err = run(oodkit, ["data"], shared)
        rows = table(out)
        check(code == 0, "oodkit data failed: %s" % err)
        for name in known:
            check(name in rows, "%s is not listed" % name)
        # The development copies (datasets/README.md's counts).
        for name, images in [("cifar10", "train 50000, test 1000"), ("mnist", "test 3000"),
                             ("fashion-mnist", "test 10000"), ("isun", "all 8925"),
                             ("tinyimagenet", "test 10000, val 10000")]:
            check(rows.get(name, ["", ""])[1:3] == ["installed", images], "%s: %s" % (name, rows.get(name)))
        check(rows.get("synthetic-id", ["", ""])[1] == "built in", "synthetic-id: %s" % rows.get("synthetic-id"))

    with tempfile.TemporaryDirectory() as tmp:
        ds = tmp + "/datasets"
        for cls, n in [("a", 3), ("b", 2)]:
            for i in range(n):
                touch("%s/svhn/train/%s/%d.png" % (ds, cls, i), bytes([i, n]))
        touch(ds + "/svhn/train/stray.png")           # beside class folders: the loader ignores it
        touch(ds + "/svhn/test/a/0.jpg")
        touch(ds + "/svhn/test/a/notes.txt")          # not an image: not counted
        for i in range(4):
            touch("%s/places365/%d.JPG" % (ds, i))     # flat, any case of the extension
        touch(ds + "/cifar100/train.bin", b"\0" * 3074 * 2)
        touch(ds + "/cifar100/test.bin", b"\0" * 3073)  # not a whole number of 3074-byte records
        for i in (1, 2, 4, 5):                          # data_batch_3.bin missing
            touch("%s/cifar10/data_batch_%d.bin" % (ds, i), b"\0" * 3073)
        touch(ds + "/cifar10/test_batch.bin", b"\0" * 3073)
        code, out, err = run(oodkit, ["data", "--digest"], tmp)
        rows = table(out)
        check(code == 0, "oodkit data --digest failed: %s" % err)
        check(rows.get("svhn", [""] * 6)[1:3] == ["installed", "train 5, test 1"], "svhn: %s" % rows.get("svhn"))
        check(rows.get("svhn", [""] * 6)[5] == fnv_folder(ds + "/svhn"), "svhn digest %s, computed here %s"
              % (rows.get("svhn"), fnv_folder(ds + "/svhn")))
        check(rows.get("places365", [""] * 6)[1:3] == ["installed", "all 4"], "places365: %s" % rows.get("places365"))
        check(rows.get("cifar100", [""] * 6)[1].startswith("incomplete: test.bin is not a whole number"),
              "cifar100: %s" % rows.get("cifar100"))
        check(rows.get("cifar10", [""] * 6)[1] == "incomplete: missing data_batch_3.bin", "cifar10: %s" % rows.get("cifar10"))
        check(rows.get("isun", [""] * 6)[1:3] == ["not installed", "-"] and rows["isun"][5] == "-",
              "isun: %s" % rows.get("isun"))
        check(ds + "/svhn" in out, "the folder is not shown")
    for f in failures:
        print("FAIL:", f)
    print("%d failures" % len(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
