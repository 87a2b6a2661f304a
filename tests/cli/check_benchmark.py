#!/usr/bin/env python3
"""CI check of `oodkit eval --benchmark openood-cifar10|openood-cifar100` (Python standard library only).

Lays out a datasets folder from the development copies (cifar10, tinyimagenet, mnist linked) plus
two small sets written here (a CIFAR-100 binary file of random records, an "svhn" image folder of
iSUN files), leaving textures and places365 out, then checks against OpenOOD v1.5's groups written
down here:
  - the run evaluates exactly the installed sets of each group, in the benchmark's order, and says on
    stderr, one line each, that textures and places365 are missing, where to get them and their layout;
  - every group figure in results.json equals the mean of its sets' figures recomputed here from
    results.json's per-set rows, and results.csv / results.md carry the same rows, partial ones marked;
  - openood-cifar100 runs with CIFAR-100 as the ID set (a 100-class head made here from the shipped
    ResNet-20's; its accuracy is meaningless, only the wiring is checked);
  - refusals, each one line before anything is written: --ood beside --benchmark, an --id that is not
    the benchmark's, an unknown name, --features, a missing ID set, a group with no installed set.
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

from cli_check import check, failures
from st_reader import tensors, write

# OpenOOD v1.5 (Zhang et al. 2023): the CIFAR benchmarks' groups.
OPENOOD = {
    "openood-cifar10": ("cifar10", {"near-OOD": ["cifar100", "tinyimagenet"],
                                    "far-OOD": ["mnist", "svhn", "textures", "places365"]}),
    "openood-cifar100": ("cifar100", {"near-OOD": ["cifar10", "tinyimagenet"],
                                      "far-OOD": ["mnist", "svhn", "textures", "places365"]}),
}
METRICS = ["auroc", "aupr_in", "aupr_out", "fpr95_tpr", "fpr95_tpr_openood"]
SMALL = ["--methods", "msp,energy,knn", "--fit-limit", "400", "--heldout", "200", "--val-ood-limit", "100",
         "--test-limit", "200", "--ood-limit", "100"]


def run(oodkit, args, shared, timeout=600):
    env = dict(os.environ, OODKIT_SHARED_DIR=shared)
    p = subprocess.run([oodkit] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def cifar100_file(path, records, seed):
    """`records` CIFAR-100 binary records (coarse, fine label bytes, 3072 pixel bytes); fine = i % 100."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        for i in range(records):
            f.write(bytes([(i % 100) // 5, i % 100]) + bytes(rng.getrandbits(8) for _ in range(3072)))


def make_shared(real, tmp, with_sets):
    """A shared folder: weights and the named development sets linked, cifar100/svhn written here."""
    ds = tmp + "/datasets"
    os.makedirs(ds)
    os.symlink(real + "/weights", tmp + "/weights")
    for name in with_sets:
        if name == "cifar100":
            os.makedirs(ds + "/cifar100")
            cifar100_file(ds + "/cifar100/train.bin", 600, 1)
            cifar100_file(ds + "/cifar100/test.bin", 150, 2)
        elif name == "svhn":  # an image folder: 120 iSUN files under another name
            os.makedirs(ds + "/svhn")
            for f in sorted(os.listdir(real + "/datasets/isun"))[:120]:
                shutil.copy(real + "/datasets/isun/" + f, ds + "/svhn/" + f)
        else:
            os.symlink(real + "/datasets/" + name, ds + "/" + name)
    return tmp


def hundred_class_weights(real, path):
    """The shipped ResNet-20 with a 100-class head (row i: row i % 10 scaled by 1 + i // 10 / 100)."""
    entries = []
    for name, (dtype, shape, blob) in tensors(real + "/weights/resnet20_cifar10.safetensors").items():
        if name in ("linear.weight", "linear.bias"):
            vals = struct.unpack("<%df" % (len(blob) // 4), blob)
            width = shape[1] if len(shape) == 2 else 1
            rows = [vals[(i % 10) * width:(i % 10 + 1) * width] for i in range(100)]
            vals = [v * (1 + (i // 10) / 100) for i, r in enumerate(rows) for v in r]
            shape = [100] + shape[1:]
            blob = struct.pack("<%df" % len(vals), *vals)
        entries.append((name, dtype, shape, blob))
    write(path, entries, {"input_mean": "0.485,0.456,0.406", "input_std": "0.229,0.224,0.225"})


def check_groups(what, out, bench, installed):
    """results.json/csv/md of one --benchmark run against OPENOOD and the installed sets."""
    res = json.load(open(out + "/results.json"))
    want_id, groups = OPENOOD[bench]
    check(res.get("id") == want_id, "%s: id %r" % (what, res.get("id")))
    expect = {g: [s for s in sets if s in installed] for g, sets in groups.items()}
    missing = {g: [s for s in sets if s not in installed] for g, sets in groups.items()}
    evaluated = [s for g in ("near-OOD", "far-OOD") for s in expect[g]]
    check(list(res["data"]["test_ood"]) == evaluated, "%s: evaluated %s, want %s" % (
        what, list(res["data"]["test_ood"]), evaluated))
    b = res.get("benchmark", {})
    check(b.get("name") == bench, "%s: benchmark %r" % (what, b.get("name")))
    for g in groups:
        info = b.get("groups", {}).get(g, {})
        check(info.get("sets") == expect[g] and info.get("missing") == missing[g] and
              info.get("partial") == bool(missing[g]), "%s: %s is %s" % (what, g, info))
    check(any("not OpenOOD v1.5's TIN" in n for n in b.get("notes", [])), "%s: no Tiny ImageNet note" % what)
    csv_rows = {}
    for line in open(out + "/results.csv").read().splitlines()[1:]:
        cells = line.split(",")
        csv_rows[(cells[0], cells[-6])] = [float(c) for c in cells[-5:]]
    md = open(out + "/results.md").read()
    for g in groups:
        label = g + (" (partial)" if missing[g] else "")
        head = "## %s: mean over %s" % (label, ", ".join(expect[g])) + (
            "; not installed: " + ", ".join(missing[g]) if missing[g] else "")
        check(head + "\n" in md, "%s: results.md lacks %r" % (what, head))
    # Sets with different figures, or the mean check below would prove little.
    check(any(len({round(m["sets"][s]["auroc"], 9) for s in evaluated}) > 1 for m in res["methods"].values()),
          "%s: every method has the same AUROC on every set" % what)
    for method, m in res["methods"].items():
        for g in groups:
            got = m.get("groups", {}).get(g)
            if not check(got is not None, "%s: %s has no %s row" % (what, method, g)):
                continue
            label = g + (" (partial)" if missing[g] else "")
            for k, key in enumerate(METRICS):
                mean = sum(m["sets"][s][key] for s in expect[g]) / len(expect[g])
                check(abs(got[key] - mean) <= 1e-9 * max(1.0, abs(mean)),
                      "%s: %s %s %s = %r, mean of its sets %r" % (what, method, g, key, got[key], mean))
                c = csv_rows.get((method, label))
                check(c is not None and abs(c[k] - mean) <= 1e-4 * max(1.0, abs(mean)),
                      "%s: results.csv %s %s %s = %r, want %r" % (what, method, label, key, c and c[k], mean))
            check(got.get("partial") == bool(missing[g]), "%s: %s %s partial %r" % (what, method, g, got.get("partial")))


def refused(what, code, err, out, *parts):
    lines = [l for l in err.strip().splitlines() if l]
    check(code != 0, "%s: exit status 0" % what)
    check(len(lines) == 1 and all(p in lines[-1] for p in parts), "%s: stderr %r lacks %s" % (what, err, parts))
    check(not os.path.exists(out), "%s: --out was created" % what)


def main():
    oodkit = sys.argv[1]
    keep = os.environ.get("CHECK_BENCHMARK_KEEP")  # a folder to copy the runs into (debugging)
    real = os.environ.get("OODKIT_SHARED_DIR", os.path.join(os.path.dirname(__file__), "../../../shared"))
    with tempfile.TemporaryDirectory() as tmp:
        installed = ["cifar10", "cifar100", "tinyimagenet", "mnist", "svhn"]
        shared = make_shared(real, tmp + "/a", installed)
        out = tmp + "/run10"
        code, stdout, err = run(oodkit, ["eval", "--benchmark", "openood-cifar10", "--out", out] + SMALL, shared)
        if check(code == 0, "openood-cifar10 failed: %s" % err[-3000:]):
            notes = [l for l in err.splitlines() if "is not installed" in l]
            check(len(notes) == 2, "want one line per missing set (textures, places365), got %s" % notes)
            for s in ("textures", "places365"):
                line = [l for l in notes if "'%s'" % s in l]
                check(line and line[0].startswith("oodkit eval: --benchmark openood-cifar10: far-OOD set '%s'" % s)
                      and "%s/datasets/%s" % (shared, s) in line[0] and "http" in line[0] and "layout:" in line[0],
                      "missing-set line of %s: %s" % (s, line))
            check_groups("openood-cifar10", out, "openood-cifar10", installed)
            if os.path.exists(out + "/report.html"):
                html = open(out + "/report.html").read()
                check("far-OOD (partial): mean over mnist, svhn" in html, "report.html lacks the far-OOD table")

        # CIFAR-100 as the ID set (its reader, train and test splits) with a 100-class head.
        weights = tmp + "/r20_100.safetensors"
        hundred_class_weights(real, weights)
        out = tmp + "/run100"
        code, _, err = run(oodkit, ["eval", "--benchmark", "openood-cifar100", "--checkpoint", weights, "--arch",
                                    "resnet20", "--out", out] + SMALL[:4] + ["--heldout", "100", "--val-ood-limit",
                                    "100", "--test-limit", "150", "--ood-limit", "100"], shared)
        if check(code == 0, "openood-cifar100 failed: %s" % err[-3000:]):
            check_groups("openood-cifar100", out, "openood-cifar100", installed)

        if keep:
            for r in ("run10", "run100"):
                shutil.rmtree(os.path.join(keep, r), ignore_errors=True)
                if os.path.exists(tmp + "/" + r):
                    shutil.copytree(tmp + "/" + r, os.path.join(keep, r))

        # Refusals: one line, nothing written.
        no = tmp + "/never"
        code, _, err = run(oodkit, ["eval", "--benchmark", "openood-cifar10", "--ood", "isun", "--out", no], shared)
        refused("--ood beside --benchmark", code, err, no, "--benchmark openood-cifar10", "--ood 'isun'",
                "cannot be given with it")
        code, _, err = run(oodkit, ["eval", "--benchmark", "openood-cifar10", "--id", "mnist", "--out", no], shared)
        refused("--id mnist", code, err, no, "has the ID set cifar10", "--id 'mnist'")
        code, _, err = run(oodkit, ["eval", "--benchmark", "openood-imagenet", "--out", no], shared)
        refused("unknown benchmark", code, err, no, "unknown benchmark 'openood-imagenet'", "openood-cifar10")
        code, _, err = run(oodkit, ["eval", "--features", tmp + "/f.safetensors", "--benchmark", "openood-cifar10",
                                    "--out", no], shared)
        refused("--features", code, err, no, "--benchmark does not apply with --features")
        few = make_shared(real, tmp + "/b", ["cifar10", "tinyimagenet", "isun"])
        code, _, err = run(oodkit, ["eval", "--benchmark", "openood-cifar10", "--out", no], few)
        refused("no far-OOD set", code, err, no, "none of the far-OOD sets (mnist, svhn, textures, places365)")
        code, _, err = run(oodkit, ["eval", "--benchmark", "openood-cifar100", "--out", no], few)
        refused("no cifar100", code, err, no, "ID set 'cifar100' is not installed", few + "/datasets/cifar100",
                "train.bin, test.bin")

    for f in failures:
        print("FAIL:", f)
    print("check_benchmark: %d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
