#!/usr/bin/env python3
"""CI check of features from any network (Python standard library only): `oodkit eval --features`,
`oodkit score --features` and `oodkit eval --save-features` (docs/data.md, "Features files").

1. The same rows two ways: `oodkit eval` on the shipped ResNet-20 with small limits writes the
   features it extracted (--save-features); `eval --features` on that file gives every detector's
   scores equal to the images run's to 1e-6, with the file's logits and with them removed (then
   computed from the head), and `score --features` gives the same scores again; the method fused and
   a --fuse row give the images run's choices and scores too, and fusions that need images are refused.
2. A small synthetic file (3 classes, 4 features): MSP, MaxLogit and Energy recomputed here from
   features · Wᵀ + b equal oodkit's scores to 1e-6 (the computed-logits path, independently).
   The same for a file written by PyTorch with the snippet of docs/data.md (tests/fixtures/features/,
   against PyTorch's float64 scores of its logits: the given-logits path).
3. Every bad file and option is refused up front: non-zero exit, one line naming the file and the
   tensor (or the option), no --out folder created.
"""
import csv
import io
import json
import math
import os
import random
import shutil
import struct
import sys
import tempfile

from cli_check import check, failures, run
from st_reader import tensors, values, write

FEATURE_METHODS = ["msp", "maxlogit", "energy", "mahalanobis", "react", "ash_p", "ash_b", "ash_s", "dice", "knn",
                   "gradnorm", "vim"]
# The fusions run on the same rows both ways (images, features file): the method fused among
# five detectors and one --fuse row.
FUSION_OPTIONS = ["--fused-from", "msp,energy,knn,mahalanobis,vim", "--fuse", "z:knn+energy"]
FUSED_ROWS = ("fused", "fuse_z(knn+energy)")


def scores_of(path):
    return {name: values(dtype, blob) for name, (dtype, _, blob) in tensors(path).items()}


def max_diff(a, b):
    return max((abs(x - y) for x, y in zip(a, b)), default=0.0) if len(a) == len(b) else float("inf")


def compare_scores(what, ref, got):
    check(sorted(ref) == sorted(got), "%s: score tensors differ: %s vs %s" % (what, sorted(ref), sorted(got)))
    for name in ref:
        if name in got:
            d = max_diff(ref[name], got[name])
            check(d <= 1e-6, "%s: %s differs by %g" % (what, name, d))


def f32(vals):
    return struct.pack("<%df" % len(vals), *vals)


def i64(vals):
    return struct.pack("<%dq" % len(vals), *vals)


def synthetic(rng, k=3, d=4):
    """A valid features file as an ordered dict name -> (dtype, shape, bytes), and its numbers."""
    w = [[rng.uniform(-1, 1) for _ in range(d)] for _ in range(k)]
    b = [rng.uniform(-0.5, 0.5) for _ in range(k)]
    sets = {}
    for name, n, shift in [("fit", 60, 0.0), ("id_val", 20, 0.0), ("id_test", 20, 0.0), ("val_ood.noise", 15, 2.0),
                           ("ood.far", 15, 3.0), ("ood.near", 12, 1.0)]:
        labels = [i % k for i in range(n)]
        rows = [[max(0.0, rng.gauss(shift + (1.5 if j == labels[i] else 0.0), 1.0)) for j in range(d)]
                for i in range(n)]
        sets[name] = (rows, labels)
    entries = {"head.weight": ("F32", [k, d], f32(sum(w, []))), "head.bias": ("F32", [k], f32(b))}
    for name, (rows, labels) in sets.items():
        entries[name + ".features"] = ("F32", [len(rows), d], f32(sum(rows, [])))
        if name in ("fit", "id_test"):
            entries[name + ".labels"] = ("I64", [len(rows)], i64(labels))
    return entries, w, b, sets


def save(path, entries, meta=None):
    write(path, [(n, dt, shape, blob) for n, (dt, shape, blob) in entries.items()], meta)


def refused(oodkit, args, must_name, what, out=None):
    code, stdout, stderr = run(oodkit, *args)
    lines = [l for l in stderr.strip().splitlines() if l.strip()]
    ok = check(code != 0, "%s: exit status 0 (stdout %r)" % (what, stdout[-300:]))
    ok = ok and check(len(lines) == 1, "%s: not one line on stderr: %r" % (what, stderr))
    for word in must_name:
        ok = ok and check(word in stderr, "%s: the error does not name %r: %r" % (what, word, stderr))
    if out is not None and not check(not os.path.exists(out), "%s: --out %s was created" % (what, out)):
        shutil.rmtree(out)  # so that the next check starts without it
    return stderr


def same_rows(oodkit, tmp):
    """Part 1: an images run and a features run of the same rows."""
    a, b, feats = tmp + "/a", tmp + "/b", tmp + "/rows.safetensors"
    code, out, err = run(oodkit, "eval", "--fit-limit", "1000", "--heldout", "200", "--val-ood-limit", "200",
                         "--ood", "isun,mnist", "--ood-limit", "200", "--test-limit", "300", "--methods",
                         ",".join(FEATURE_METHODS + ["fused"]), *FUSION_OPTIONS, "--out", a, "--save-features", feats,
                         timeout=900)
    if not check(code == 0, "eval --save-features failed: %s" % err[-2000:]):
        return
    names = sorted(tensors(feats))
    check("head.weight" in names and "ood.isun.features" in names and "val_ood.tinyimagenet:val.logits" in names
          and "fit.labels" in names and "id_val.features" in names and "id_test.labels" in names,
          "--save-features wrote %s" % names)
    code, out, err = run(oodkit, "eval", "--features", feats, "--out", b, timeout=900)
    if not check(code == 0, "eval --features failed: %s" % err[-2000:]):
        return
    ra, rb = json.load(open(a + "/results.json")), json.load(open(b + "/results.json"))
    check(list(rb["methods"]) == FEATURE_METHODS, "--methods all on features ran %s" % list(rb["methods"]))
    for m in ("odin", "nap", "fs", "fs_ta", "heatmap", "mahalanobis_noise"):
        check(m in rb.get("not_run", {}) and "not run: " + m in out, "%s is not listed as not run" % m)
    for m in FEATURE_METHODS:
        check(ra["methods"][m]["chosen"] == rb["methods"][m]["chosen"], "%s chose %s on images, %s on features"
              % (m, ra["methods"][m]["chosen"], rb["methods"][m]["chosen"]))
    check(abs(ra["id_accuracy"] - rb["id_accuracy"]) < 1e-9, "accuracy %s vs %s" % (ra["id_accuracy"], rb["id_accuracy"]))
    for f in ("results.md", "results.csv", "scores.safetensors", "detectors/protocol.json"):
        check(os.path.exists(b + "/" + f), "eval --features wrote no %s" % f)
    ref_all = scores_of(a + "/scores.safetensors")
    ref = {k: v for k, v in ref_all.items() if k.split("/")[0] in FEATURE_METHODS}
    compare_scores("features file with logits", ref, scores_of(b + "/scores.safetensors"))

    # Fusions on the same rows: the method fused (its components chosen on the validation pair) and
    # a --fuse row give the images run's scores and choices.
    d = tmp + "/d"
    code, out, err = run(oodkit, "eval", "--features", feats, "--methods", ",".join(FEATURE_METHODS + ["fused"]),
                         *FUSION_OPTIONS, "--out", d, timeout=900)
    if check(code == 0, "eval --features with fusions failed: %s" % err[-2000:]):
        rd = json.load(open(d + "/results.json"))
        for m in FUSED_ROWS:
            check(m in rd["methods"] and rd["methods"][m]["chosen"] == ra["methods"][m]["chosen"],
                  "%s: chose %s on features, %s on images" % (m, rd["methods"].get(m, {}).get("chosen"),
                                                               ra["methods"][m]["chosen"]))
        fused_ref = {k: v for k, v in ref_all.items() if k.split("/")[0] in FUSED_ROWS}
        got = {k: v for k, v in scores_of(d + "/scores.safetensors").items() if k.split("/")[0] in FUSED_ROWS}
        check(len(fused_ref) == 2 * 3, "the images run wrote %s" % sorted(fused_ref))
        compare_scores("fusions on the features file", fused_ref, got)
    for args, names in [(["--methods", "msp,fused", "--fused-from", "knn,odin"], ["odin", "--fused-from", "images"]),
                        (["--methods", "msp", "--fuse", "z:knn+nap"], ["nap", "--fuse", "feature maps"])]:
        refused(oodkit, ["eval", "--features", feats, "--out", tmp + "/e"] + args, names,
                "eval --features %s" % " ".join(args), tmp + "/e")

    # Without the logits: computed from the head.
    stripped, c = tmp + "/no_logits.safetensors", tmp + "/c"
    header = tensors(feats)
    write(stripped, [(n, dt, shape, blob) for n, (dt, shape, blob) in header.items() if not n.endswith(".logits")],
          {"id": "cifar10"})
    code, out, err = run(oodkit, "eval", "--features", stripped, "--out", c, timeout=900)
    if check(code == 0, "eval --features without logits failed: %s" % err[-2000:]):
        compare_scores("features file without logits", ref, scores_of(c + "/scores.safetensors"))

    # score --features: the OOD test rows again, through the saved detectors.
    code, out, err = run(oodkit, "score", "--detectors", b + "/detectors", "--features", feats, "--data", "ood.isun")
    if check(code == 0, "score --features failed: %s" % err[-2000:]):
        rows = list(csv.DictReader(io.StringIO(out)))
        check(len(rows) == 200, "score --features gave %d rows" % len(rows))
        for m in FEATURE_METHODS:
            d = max_diff([float(r[m]) for r in rows], ref[m + "/isun"])
            check(d <= 1e-6 * max(1.0, max(abs(v) for v in ref[m + "/isun"])), "score --features %s differs by %g" % (m, d))
        check(rows and rows[0]["source"] == "ood.isun:0" and "msp:decision" in rows[0], "score columns: %s" % rows[:1])
    # Detectors and rows that do not belong together.
    refused(oodkit, ["score", "--detectors", a + "/detectors", "--features", feats, "--data", "ood.isun"],
            ["--features", "eval --features"], "score --features with image detectors")
    refused(oodkit, ["score", "--detectors", b + "/detectors", "--data", "isun"], ["--features", feats],
            "score of images with features detectors")
    return b


def synthetic_checks(oodkit, tmp):
    """Part 2: scores recomputed here; part 3: refusals."""
    rng = random.Random(7)
    entries, w, b, sets = synthetic(rng)
    good = tmp + "/good.safetensors"
    save(good, entries, {"id": "toy", "model": "mlp"})
    out = tmp + "/syn"
    code, stdout, err = run(oodkit, "eval", "--features", good, "--methods", "msp,maxlogit,energy,knn,vim", "--out", out)
    if check(code == 0, "eval --features on the synthetic file failed: %s" % err[-2000:]):
        got = scores_of(out + "/scores.safetensors")
        for set_name, key in [("id_test", "toy"), ("ood.far", "far"), ("ood.near", "near")]:
            logits = [[sum(wk[j] * row[j] for j in range(len(row))) + bk for wk, bk in zip(w, b)]
                      for row in sets[set_name][0]]
            # f32 inputs: the file holds the rounded values; logits in double here.
            msp = [1.0 / sum(math.exp(v - max(l)) for v in l) for l in logits]
            maxlogit = [max(l) for l in logits]
            energy = [max(l) + math.log(sum(math.exp(v - max(l)) for v in l)) for l in logits]
            for m, ref in [("msp", msp), ("maxlogit", maxlogit), ("energy", energy)]:
                d = max_diff(ref, got.get(m + "/" + key, []))
                check(d <= 1e-6, "synthetic %s/%s differs from the recomputation by %g" % (m, key, d))
        md = open(out + "/results.md").read()
        check("mlp on toy" in md and "Not run on features alone" not in md, "results.md header: %s" % md[:300])

    # ASH needs percentiles that keep a feature of D = 4: out of "all" (listed), refused by name, runs when set.
    code, stdout, err = run(oodkit, "eval", "--features", good)
    check(code == 0 and "not run: ash_p (its percentile p = 90 keeps none of the 4 features" in stdout
          and "| knn |" in stdout and "| ash_s |" not in stdout, "ash on D = 4 in --methods all: %s" % (stdout + err)[-1500:])
    code, stdout, err = run(oodkit, "eval", "--features", good, "--methods", "ash_b", "--set", "ash_b.p=50,70")
    check(code == 0 and "| ash_b | p=" in stdout, "ash_b with --set ash_b.p=50,70 on D = 4: %s" % err[-800:])

    bad_out = tmp + "/never"

    def variant(what, change, must_name, args=()):
        e = dict(entries)
        change(e)
        path = tmp + "/bad_%d.safetensors" % len(os.listdir(tmp))
        save(path, e)
        refused(oodkit, ["eval", "--features", path, "--out", bad_out] + list(args), [path] + must_name, what, bad_out)

    def drop(name):
        return lambda e: e.pop(name)

    def replace(name, dtype=None, shape=None, blob=None):
        def f(e):
            dt, sh, bl = e[name]
            e[name] = (dtype or dt, shape or sh, bl if blob is None else blob)
        return f

    fit_rows = entries["fit.features"][1][0]
    variant("missing head.bias", drop("head.bias"), ["head.bias"])
    variant("missing head.weight", drop("head.weight"), ["head.weight"])
    variant("missing id_val", drop("id_val.features"), ["id_val.features"])
    variant("missing fit labels", drop("fit.labels"), ["fit.labels"])
    variant("missing id_test labels", drop("id_test.labels"), ["id_test.labels"])
    variant("missing val_ood", drop("val_ood.noise.features"), ["val_ood.<name>.features"])
    variant("no OOD test set", lambda e: (e.pop("ood.far.features"), e.pop("ood.near.features")), ["ood.<name>.features"])
    variant("unknown tensor", lambda e: e.update({"fit.feature": e["fit.features"]}), ["fit.feature'"])
    variant("features wider than the head", replace("ood.far.features", shape=[12, 5]), ["ood.far.features", "5"])
    variant("head bias shape", replace("head.bias", shape=[1, 3]), ["head.bias"])
    variant("labels rows", replace("fit.labels", shape=[fit_rows - 1], blob=i64([0, 1, 2] * 19 + [0, 1])),
            ["fit.labels"])
    variant("features as int64", replace("id_test.features", dtype="I64", shape=[10, 4]), ["id_test.features", "I64"])
    variant("labels as float", replace("fit.labels", dtype="F32", blob=f32([0.0] * fit_rows)), ["fit.labels", "F32"])
    variant("features as float64", replace("fit.features", dtype="F64", shape=[30, 4]), ["fit.features", "F64"])
    nan_rows = [1.0] * (15 * 4)
    nan_rows[9] = float("nan")
    variant("NaN", replace("val_ood.noise.features", blob=f32(nan_rows)), ["val_ood.noise.features", "NaN", "row 2"])
    inf_w = [0.5] * 12
    inf_w[3] = float("inf")
    variant("infinite weight", replace("head.weight", blob=f32(inf_w)), ["head.weight", "infinity"])
    variant("label out of range", replace("fit.labels", blob=i64([i % 4 for i in range(fit_rows)])),
            ["fit.labels", "class 3"])
    variant("negative label", replace("id_test.labels", blob=i64([-1] + [0] * 19)), ["id_test.labels", "class -1"])
    variant("class without fitting rows", replace("fit.labels", blob=i64([i % 2 for i in range(fit_rows)])),
            ["fit.labels", "class 2"])
    variant("validation set is a test set", lambda e: e.update({"ood.noise.features": e["val_ood.noise.features"]}),
            ["val_ood.noise", "ood.noise"])
    variant("two validation sets", lambda e: e.update({"val_ood.other.features": e["val_ood.noise.features"]}),
            ["val_ood.noise", "val_ood.other"])
    variant("labels on an OOD set", lambda e: e.update({"ood.far.labels": ("I64", [15], i64([0] * 15))}),
            ["ood.far.labels"])
    # Logits: wrong shape, and logits that are not the head's (a temperature of 2).
    rows = sets["ood.far"][0]
    logits = [[sum(wk[j] * row[j] for j in range(4)) + bk for wk, bk in zip(w, b)] for row in rows]
    variant("logits shape", lambda e: e.update({"ood.far.logits": ("F32", [15, 2], f32([0.0] * 30))}),
            ["ood.far.logits", "[15, 2]"])
    variant("logits of another layer", lambda e: e.update({"ood.far.logits": ("F32", [15, 3], f32([v / 2 for l in logits for v in l]))}),
            ["ood.far.logits", "head"])
    # Logits within the tolerance (0.005 off: rounding of half precision, say) pass and are used as given.
    e = dict(entries)
    given = [[v + 0.005 * (j + 1) for j, v in enumerate(l)] for l in logits]
    e["ood.far.logits"] = ("F32", [15, 3], f32([v for l in given for v in l]))
    save(tmp + "/with_logits.safetensors", e)
    code, _, err = run(oodkit, "eval", "--features", tmp + "/with_logits.safetensors", "--methods", "msp,maxlogit",
                       "--out", tmp + "/with_logits")
    if check(code == 0, "matching logits refused: %s" % err):
        got = scores_of(tmp + "/with_logits/scores.safetensors")["maxlogit/far"]
        d = max_diff([max(l) for l in given], got)
        check(d <= 1e-6, "the file's logits were not used as given (maxlogit off by %g)" % d)

    # Options and methods that need more than the file.
    for args, names, what in [(["--id", "cifar10"], ["--id", "--features"], "--id with --features"),
                              (["--checkpoint", "x.safetensors"], ["--checkpoint"], "--checkpoint with --features"),
                              (["--save-features", tmp + "/x.safetensors"], ["--save-features"], "--save-features with --features"),
                              (["--methods", "odin"], ["odin", "images"], "odin on features"),
                              (["--methods", "msp,fs"], ["'fs'", "feature maps"], "fs on features"),
                              (["--methods", "heatmap"], ["heatmap", "decoder"], "heatmap on features"),
                              (["--methods", "fsta_msp"], ["fsta_msp", "fs_ta"], "a fusion with fs_ta on features"),
                              (["--methods", "nosuch"], ["nosuch"], "unknown method"),
                              (["--methods", "msp,ash_s"], ["ash_s", "p = 90", "4 features"], "ash_s on D = 4"),
                              # The default --methods all is quoted as given (not its expansion).
                              (["--fused-kind", "p"], ["--fused-kind", "--methods 'all' does not name"],
                               "--fused-kind without fused"),
                              # fused's default candidates on a features file exclude odin (images):
                              # a setting for it would do nothing.
                              (["--methods", "fused", "--set", "odin.T=10"], ["--set names 'odin'", "--methods fused"],
                               "--set for a candidate that needs images")]:
        refused(oodkit, ["eval", "--features", good, "--out", bad_out] + args, names, what, bad_out)
    refused(oodkit, ["eval", "--features", tmp + "/missing.safetensors", "--out", bad_out], ["missing.safetensors"],
            "missing file", bad_out)
    with open(tmp + "/garbage.safetensors", "wb") as f:
        f.write(b"not a safetensors file at all")
    refused(oodkit, ["eval", "--features", tmp + "/garbage.safetensors", "--out", bad_out], ["garbage.safetensors"],
            "corrupt file", bad_out)
    return good, out


def score_compat(oodkit, tmp, good, syn_out):
    """score --features refuses rows of another head or width, and names a missing set."""
    rng = random.Random(8)
    other, _, _, _ = synthetic(rng)  # another head, same shapes
    save(tmp + "/other.safetensors", other)
    refused(oodkit, ["score", "--detectors", syn_out + "/detectors", "--features", tmp + "/other.safetensors",
                     "--data", "ood.far"], ["other.safetensors", "head"], "score with another head")
    wide, _, _, _ = synthetic(rng, k=3, d=5)
    save(tmp + "/wide.safetensors", wide)
    refused(oodkit, ["score", "--detectors", syn_out + "/detectors", "--features", tmp + "/wide.safetensors",
                     "--data", "ood.far"], ["wide.safetensors", "5 features"], "score with another width")
    refused(oodkit, ["score", "--detectors", syn_out + "/detectors", "--features", good, "--data", "ood.nosuch"],
            ["ood.nosuch", "ood.far"], "score of a missing set")
    refused(oodkit, ["score", "--detectors", syn_out + "/detectors", "--features", good, "--data", "ood.far",
                     "--limit", "3"], ["--limit"], "score --limit with --features")
    # A file of new rows needs only the head and that set.
    e = {k: v for k, v in synthetic(random.Random(7))[0].items() if k.startswith("head.") or k.startswith("ood.near.")}
    save(tmp + "/new_rows.safetensors", e)
    code, out, err = run(oodkit, "score", "--detectors", syn_out + "/detectors", "--features",
                         tmp + "/new_rows.safetensors", "--data", "ood.near")
    if check(code == 0, "score of a file of new rows failed: %s" % err):
        got = scores_of(syn_out + "/scores.safetensors")["msp/near"]
        rows = list(csv.DictReader(io.StringIO(out)))
        check(max_diff([float(r["msp"]) for r in rows], got) <= 1e-6, "score --features msp differs from eval's")


def pytorch_fixture(oodkit, tmp):
    """The features file the docs' snippet wrote with PyTorch: read as is, scores as PyTorch's."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "features")
    out = tmp + "/torch"
    code, stdout, err = run(oodkit, "eval", "--features", here + "/tiny.safetensors", "--out", out)
    if not check(code == 0, "eval --features on the PyTorch fixture failed: %s" % err[-2000:]):
        return
    got = scores_of(out + "/scores.safetensors")
    for name, ref in scores_of(here + "/tiny_expected.safetensors").items():
        d = max_diff(ref, got.get(name, []))
        check(d <= 1e-6, "PyTorch fixture: %s differs from PyTorch's by %g" % (name, d))
    r = json.load(open(out + "/results.json"))
    check(list(r["methods"]) == FEATURE_METHODS and r["data"]["fit"]["count"] == 80 and
          list(r["data"]["test_ood"]) == ["far", "near"], "PyTorch fixture results: %s" % r["data"])


def snippet(path):
    """The PyTorch block between the features-snippet markers, without the README's list indent."""
    text = open(path).read()
    start = text.index("<!-- features-snippet")
    body = text[text.index("```python\n", start) + 10:text.index("```", text.index("```python\n", start) + 10)]
    return "\n".join(l[2:] if l.startswith("  ") and path.endswith("README.md") else l
                     for l in body.splitlines()).rstrip()


def readme_snippet():
    """README.md's copy of the docs' snippet (the one the PyTorch fixture ran) is the same code."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    check(snippet(root + "/README.md") == snippet(root + "/docs/data.md"),
          "README.md's features snippet differs from docs/data.md's")


def main():
    oodkit = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        good, syn_out = synthetic_checks(oodkit, tmp)
        score_compat(oodkit, tmp, good, syn_out)
        pytorch_fixture(oodkit, tmp)
        readme_snippet()
        if "--quick" not in sys.argv:
            same_rows(oodkit, tmp)
    for f in failures:
        print("FAIL:", f)
    print("%d failures" % len(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
