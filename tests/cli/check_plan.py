#!/usr/bin/env python3
"""CI check of "plan, then run" (issue 28; Python standard library only; about a minute).

Every command first builds and checks its whole plan, then works. Each refusal below used to come
after minutes of feature extraction; now each must come within seconds, with exit status 1, one
stderr line "oodkit: error: ..." naming the option, no "features ..." progress line (no feature
was extracted), and nothing written in --out (the folder not even created).

Then what a run says about itself: `oodkit --version`; results.json's provenance; the warning for a
classifier at chance level; a warning for every method whose validation AUROC is below 50 (and
none for the others); and `oodkit score`'s columns (source, predicted class, every score, each
method's decision), the decision recomputed here from the held-out ID scores eval saved: the
threshold keeping 95% of them is the ceil(0.95 n)-th largest.

Usage: check_plan.py <path to oodkit>
"""
import csv
import json
import math
import os
import shutil
import sys
import tempfile
import time

from cli_check import check, run, write_png, exit_if_failed  # shared by the cli checks (same folder)
import st_reader

TMP = tempfile.mkdtemp(prefix="oodkit_plan_")


def expect_refusal(oodkit, what, args, option, out_dir):
    """`args` must be refused in a few seconds naming `option`, before any work or write."""
    t0 = time.time()
    rc, out, err = run(oodkit, *args, timeout=120)
    took = time.time() - t0
    lines = [l for l in err.splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("oodkit: error:")]
    check(rc == 1, "%s: exit status %d, expected 1 (stderr: %r)" % (what, rc, err[-300:]))
    check(len(errors) == 1, "%s: %d 'oodkit: error:' lines: %r" % (what, len(errors), err[-500:]))
    check(errors and option in errors[0], "%s: the error does not name %s: %r" % (what, option, errors))
    check(not any(l.startswith("features ") or "\rfeatures " in l for l in lines) and "features " not in out,
          "%s: features were extracted before the refusal: %r" % (what, err[-500:]))
    check(not os.path.exists(out_dir), "%s: --out '%s' was created" % (what, out_dir))
    check(took < 30, "%s: refused after %.1f s (the plan should take seconds)" % (what, took))


def refusals(oodkit):
    out = os.path.join(TMP, "never")
    base = ["eval", "--methods", "msp,mahalanobis", "--out", out]
    expect_refusal(oodkit, "an OOD set that is not installed", base + ["--ood", "isun,svhn"], "--ood", out)
    expect_refusal(oodkit, "an unknown validation set", base + ["--val-ood", "nosuch"], "--val-ood", out)
    expect_refusal(oodkit, "--heldout larger than the ID training set", base + ["--heldout", "60000"], "--heldout", out)
    expect_refusal(oodkit, "--fit-limit leaving classes without images", base + ["--fit-limit", "5"], "--fit-limit",
                   out)
    blocker = os.path.join(TMP, "a_file")
    open(blocker, "w").close()
    expect_refusal(oodkit, "--out under a file", ["eval", "--methods", "msp", "--out", os.path.join(blocker, "x")],
                   "--out", os.path.join(blocker, "x"))
    ro = os.path.join(TMP, "read_only")
    os.mkdir(ro)
    os.chmod(ro, 0o555)
    if os.access(ro, os.W_OK):  # root writes anywhere: the permission case cannot be made
        print("check_plan: running as root, the read-only --out case is not checkable here")
    else:
        expect_refusal(oodkit, "--out in a read-only folder", ["eval", "--methods", "msp", "--out",
                                                               os.path.join(ro, "x", "y")], "--out",
                       os.path.join(ro, "x"))
    expect_refusal(oodkit, "heatmap fit validating on its own OE images",
                   ["heatmap", "fit", "--val-ood-limit", "1500", "--out", out], "--val-ood-limit", out)
    expect_refusal(oodkit, "heatmap fit with an unknown loss weight", ["heatmap", "fit", "--loss-weight", "x", "--out",
                                                                       out], "--loss-weight", out)
    expect_refusal(oodkit, "score --data not installed", ["score", "--detectors", os.path.join(TMP, "none"),
                                                          "--data", "svhn"], "--detectors", out)
    # Image path guards: an ASH percentile that keeps none of the network's 64 features, and an ID
    # set with a class the classifier does not have (a label past the per-class statistics).
    expect_refusal(oodkit, "an ASH percentile keeping no feature", ["eval", "--methods", "msp,ash_p", "--set",
                   "ash_p.p=99.9", "--fit-limit", "300", "--heldout", "100", "--val-ood-limit", "50", "--ood", "isun",
                   "--ood-limit", "50", "--test-limit", "50", "--out", out], "--set", out)
    folder = os.path.join(TMP, "eleven_classes")
    for split, n in (("train", 3), ("test", 1)):
        for c in range(11):
            d = os.path.join(folder, split, "c%02d" % c)
            os.makedirs(d)
            for i in range(n):
                write_png(os.path.join(d, "%d.png" % i), 32, 32, 10 * c + i)
    expect_refusal(oodkit, "ID labels outside the classifier's classes",
                   base + ["--id", "folder:" + folder, "--num-classes", "10", "--ood", "isun", "--heldout", "5"],
                   "--id", out)
    # train: the dataset named by its option; a --limit that leaves classes without training images
    # (the first 8 CIFAR-10 images cannot hold 10 classes).
    train = ["train", "--arch", "small_cnn", "--epochs", "1", "--batch", "4", "--out", out]
    expect_refusal(oodkit, "train on a dataset that is not installed", train + ["--dataset", "svhn"], "--dataset", out)
    expect_refusal(oodkit, "train --limit leaving classes without images", train + ["--dataset", "cifar10", "--limit",
                                                                                    "8"], "--limit", out)
    # An option given twice: oodkit's one line, not CLI11's "At Most 1 required but received 2".
    rc, _, err = run(oodkit, "eval", "--ood", "isun", "--ood", "mnist")
    check(rc == 2 and "--ood given 2 times" in err and "At Most" not in err, "--ood twice: %d %r" % (rc, err))
    rc, _, err = run(oodkit, "score", "--data", "isun")
    check(rc == 2 and "missing --detectors" in err, "score without --detectors: %d %r" % (rc, err))


def threshold_95(scores):
    """The ceil(0.95 n)-th largest held-out score, computed here independently of oodkit."""
    s = sorted(scores, reverse=True)
    return s[math.ceil(len(s) * 95 / 100) - 1]


def provenance_and_decisions(oodkit):
    rc, out, err = run(oodkit, "--version")
    check(rc == 0 and out.startswith("oodkit ") and "commit " in out and "build" in out,
          "--version: %d %r %r" % (rc, out, err))
    # A classifier at chance level: one epoch on 30 CIFAR-10 images (the first 30 hold every class).
    clf = os.path.join(TMP, "chance")
    rc, _, err = run(oodkit, "train", "--arch", "resnet20", "--dataset", "cifar10", "--limit", "30", "--epochs", "1",
                     "--batch", "10", "--out", clf, timeout=300)
    check(rc == 0, "train for the chance-level classifier failed: %r" % err[-500:])
    ev = os.path.join(TMP, "eval")
    rc, _, err = run(oodkit, "eval", "--checkpoint", os.path.join(clf, "model.safetensors"), "--methods",
                     "msp,energy,knn,react,nap_e", "--fit-limit", "400", "--heldout", "200", "--val-ood-limit",
                     "100", "--test-limit", "100", "--ood", "mnist", "--ood-limit", "100", "--out", ev, timeout=600)
    if not check(rc == 0, "eval of the chance-level classifier failed: %r" % err[-800:]):
        return
    res = json.load(open(os.path.join(ev, "results.json")))
    md = open(os.path.join(ev, "results.md")).read()
    prov = res.get("provenance", {})
    for key in ("oodkit", "commit", "build", "libraries", "command", "date"):
        check(prov.get(key), "results.json provenance lacks %s: %r" % (key, prov))
    check("eval" in prov.get("command", "") and "--fit-limit 400" in prov.get("command", ""),
          "provenance command %r" % prov.get("command"))
    check(res.get("seed") == 0 and res.get("classifier_fingerprint"), "seed / fingerprint: %r" % res.keys())
    check(res["data"]["fit"]["count"] == 400 and res["data"]["test_ood"]["mnist"] == 100, "data counts %r" % res["data"])
    warnings = res.get("warnings", [])
    check(res["id_accuracy"] < 15, "the 1-epoch classifier is at %.1f%%: not a chance-level case" % res["id_accuracy"])
    check(any("chance level" in w for w in warnings) and "chance level" in err and "chance level" in md,
          "no chance-level warning (stderr, results.json, results.md): %r" % warnings)
    for m, r in res["methods"].items():
        low = r["validation_auroc"] < 50
        said = any(w.startswith(m + ": validation AUROC") for w in warnings)
        check(low == said, "%s: validation AUROC %.2f, warned: %s" % (m, r["validation_auroc"], said))
    proto = json.load(open(os.path.join(ev, "detectors", "protocol.json")))
    check(proto.get("provenance", {}).get("commit"), "protocol.json has no provenance")
    held = {k: st_reader.values(d, b) for k, (d, _, b) in
            st_reader.tensors(os.path.join(ev, "detectors", "heldout_scores.safetensors")).items()}
    # score: every column, and each decision against the threshold recomputed from the held-out scores.
    csv_path = os.path.join(TMP, "new", "folder", "scores.csv")  # its folder is created
    rc, _, err = run(oodkit, "score", "--detectors", os.path.join(ev, "detectors"), "--data", "isun", "--limit", "40",
                     "--out", csv_path, timeout=300)
    if not check(rc == 0, "score failed: %r" % err[-500:]):
        return
    rows = list(csv.reader(open(csv_path)))
    header, rows = rows[0], rows[1:]
    methods = list(res["methods"])
    check(header[:3] == ["index", "source", "predicted_class"], "score header %r" % header[:3])
    check(header[3:] == methods + [m + ":decision" for m in methods], "score columns %r" % header)
    check(len(rows) == 40, "score wrote %d rows" % len(rows))
    decided = 0
    for m in methods:
        t = threshold_95(held[m])
        check(abs(proto["thresholds"][m] - t) <= 1e-12 * max(1, abs(t)),
              "%s: protocol.json threshold %r, recomputed %r" % (m, proto["thresholds"][m], t))
        col, dcol = header.index(m), header.index(m + ":decision")
        for r in rows:
            want = "id" if float(r[col]) >= t else "ood"
            # A score printed with 9 digits may round across t: only clear cases are compared.
            if abs(float(r[col]) - t) > 1e-6 * max(1, abs(t)):
                check(r[dcol] == want, "%s: decision %s for score %s at threshold %r" % (m, r[dcol], r[col], t))
                decided += 1
    check(decided > 100, "only %d decisions compared" % decided)
    check(all(os.path.isfile(r[1]) for r in rows), "score sources are not the image files: %r" % rows[0][:2])
    check(all(0 <= int(r[2]) < 10 for r in rows), "predicted classes out of range")


def normalisation(oodkit):
    """The checkpoint's input_mean/input_std metadata decide the normalisation (else --mean/--std, else
    the dataset default), and the choice is printed and recorded: a copy of the shipped ResNet-20 whose
    metadata claims CIFAR-10's statistics gives another accuracy than the original (ImageNet's), and
    --mean/--std with ImageNet's values give the original's back."""
    shared = os.environ.get("OODKIT_SHARED_DIR", "../shared")
    weights = os.path.join(shared, "weights", "resnet20_cifar10.safetensors")
    header, data, meta = st_reader.read(weights)
    check(meta.get("input_mean") == "0.485,0.456,0.406", "shipped metadata %r" % meta)
    cifar = dict(meta, input_mean="0.4914,0.4822,0.4465", input_std="0.2470,0.2435,0.2616")
    planted = os.path.join(TMP, "cifar_stats.safetensors")
    st_reader.write(planted, [(k, v["dtype"], v["shape"], st_reader.raw(header, data, k)) for k, v in header.items()],
                    cifar)
    small = ["--methods", "msp", "--fit-limit", "200", "--heldout", "100", "--val-ood-limit", "100", "--test-limit",
             "400", "--ood", "mnist", "--ood-limit", "100"]
    acc = {}
    for name, extra in (("shipped", ["--checkpoint", weights]), ("cifar", ["--checkpoint", planted]),
                        ("override", ["--checkpoint", planted, "--mean", "0.485,0.456,0.406", "--std",
                                      "0.229,0.224,0.225"])):
        out = os.path.join(TMP, "norm_" + name)
        rc, _, err = run(oodkit, "eval", *(small + extra + ["--arch", "resnet20", "--out", out]), timeout=300)
        if not check(rc == 0, "eval (%s) failed: %r" % (name, err[-400:])):
            return
        res = json.load(open(os.path.join(out, "results.json")))
        acc[name] = res["id_accuracy"]
        src = res["normalization"]["source"]
        want = "--mean/--std" if name == "override" else "checkpoint metadata"
        check(src == want and "input normalisation" in err and want in err, "%s: normalisation source %r, stderr %r"
              % (name, src, err[-300:]))
        proto = json.load(open(os.path.join(out, "detectors", "protocol.json")))
        check(proto["input_mean"] == res["normalization"]["mean"], "%s: protocol.json does not record the mean" % name)
    check(abs(acc["cifar"] - acc["shipped"]) > 0.1, "CIFAR statistics gave the same accuracy: %r" % acc)
    check(acc["override"] == acc["shipped"], "--mean/--std with ImageNet's values: %r" % acc)
    rc, _, err = run(oodkit, "eval", "--mean", "0.5,0.5,0.5")
    check(rc == 1 and "--mean given without --std" in err, "--mean alone: %d %r" % (rc, err))
    rc, _, err = run(oodkit, "eval", "--mean", "0.5,0.5", "--std", "1,1,1")
    check(rc == 1 and "three comma-separated values" in err, "--mean with two values: %d %r" % (rc, err))
    print("check_plan: accuracy with the checkpoint's ImageNet statistics %.1f%%, with CIFAR-10's planted in the "
          "metadata %.1f%%" % (acc["shipped"], acc["cifar"]))


def main():
    oodkit = os.path.abspath(sys.argv[1])
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    try:
        refusals(oodkit)
        provenance_and_decisions(oodkit)
        normalisation(oodkit)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    exit_if_failed()
    print("check_plan: every refusal early and named, provenance recorded, warnings and decisions agree")


if __name__ == "__main__":
    main()
