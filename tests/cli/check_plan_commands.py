#!/usr/bin/env python3
"""CI check of "plan, then run" for `heatmap fit`, `study` and `train` (issue 28; Python standard
library only; about a minute).

Each refusal below used to come after feature extraction or after training had started (or named
no option); now each comes from the command's plan: exit status 1, one stderr line
"oodkit: error: ..." naming the option, no "features ..." progress line, and --out not created.
One refusal cannot come before the features: `heatmap fit --id-limit` leaving an OE image's
predicted class without ID rows (the predicted classes exist only once the features do); it must
still name --id-limit and write nothing (study: --train-limit, after its training).

Usage: check_plan_commands.py <path to oodkit>
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from cli_check import check, run, write_png, exit_if_failed  # shared by the cli checks (same folder)
import st_reader

TMP = tempfile.mkdtemp(prefix="oodkit_plan_commands_")


def expect_refusal(oodkit, what, args, option, out_dir, features_allowed=False, absent=None):
    """`args` must be refused naming `option`, before any feature (unless allowed) or any write."""
    t0 = time.time()
    try:
        rc, out, err = run(oodkit, *args, timeout=120)
    except subprocess.TimeoutExpired as e:  # still working after two minutes: no refusal
        text = lambda b: b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        rc, out, err = None, text(e.stdout), text(e.stderr)
    took = time.time() - t0
    lines = [l for l in err.splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("oodkit: error:")]
    check(rc == 1, "%s: exit status %s, expected 1 (stderr: %r)" % (what, rc, err[-300:]))
    check(len(errors) == 1, "%s: %d 'oodkit: error:' lines: %r" % (what, len(errors), err[-500:]))
    check(errors and option in errors[0], "%s: the error does not name %s: %r" % (what, option, errors))
    for word in absent or []:
        check(errors and word not in errors[0], "%s: the error names %r: %r" % (what, word, errors))
    if not features_allowed:
        check(not any(l.startswith("features ") or "\rfeatures " in l for l in lines) and "features " not in out,
              "%s: features were extracted before the refusal: %r" % (what, err[-500:]))
        check(took < 60, "%s: refused after %.1f s (the plan should take seconds)" % (what, took))
    check(not any(l.startswith("training ") or "\rtraining " in l for l in lines) and "epoch 1/" not in out,
          "%s: training started before the refusal: %r" % (what, out[-300:]))
    if out_dir is not None:
        check(not os.path.exists(out_dir), "%s: --out '%s' was created" % (what, out_dir))
        shutil.rmtree(out_dir, ignore_errors=True)  # the next case starts without it


def image_folder(name, side, classes, per_class):
    """folder:<path> with train/ and test/ class folders of side x side images."""
    root = os.path.join(TMP, name)
    for split in ("train", "test"):
        for c in range(classes):
            d = os.path.join(root, split, "c%02d" % c)
            os.makedirs(d)
            for i in range(per_class):
                write_png(os.path.join(d, "%d.png" % i), side, side, 10 * c + i)
    return "folder:" + root


def heatmap_fit(oodkit):
    out = os.path.join(TMP, "never")
    fit = ["heatmap", "fit", "--id-limit", "300", "--oe-limit", "60", "--heldout", "200", "--val-ood-limit", "100",
           "--width", "0.125", "--epochs", "2", "--batch", "50"]
    expect_refusal(oodkit, "heatmap fit: --oe not installed", fit + ["--oe", "svhn", "--out", out], "--oe 'svhn'",
                   out)
    expect_refusal(oodkit, "heatmap fit: unknown --val-ood", fit + ["--val-ood", "nosuch", "--out", out],
                   "--val-ood 'nosuch'", out)
    blocker = os.path.join(TMP, "a_file")
    open(blocker, "w").close()
    expect_refusal(oodkit, "heatmap fit: --out under a file", fit + ["--out", os.path.join(blocker, "x")], "--out",
                   os.path.join(blocker, "x"))
    small = image_folder("small_images", 28, 10, 2)
    expect_refusal(oodkit, "heatmap fit: --id of 28x28 images", fit + ["--id", small, "--out", out], "--id",
                   out, absent=["make_classifier"])
    # 5 ID rows cannot hold every class the 60 OE images are predicted as: known once the features
    # are (the predicted classes), refused then, naming --id-limit, with nothing written.
    expect_refusal(oodkit, "heatmap fit: --id-limit leaving predicted classes without ID rows",
                   ["heatmap", "fit", "--id-limit", "5", "--oe-limit", "60", "--heldout", "200", "--val-ood-limit",
                    "100", "--width", "0.125", "--epochs", "1", "--batch", "50", "--out", out], "--id-limit", out,
                   features_allowed=True, absent=["knn_search_by_class"])
    # --resume of a decoder of another width, in a checkpoint written before the options were
    # recorded (no "options" metadata): refused by the plan, not after the validation features.
    run_dir = os.path.join(TMP, "fit")
    rc, _, err = run(oodkit, *(fit + ["--stop-after", "1", "--out", run_dir]), timeout=300)
    if not check(rc == 0, "heatmap fit (1 epoch) failed: %r" % err[-500:]):
        return
    last = os.path.join(run_dir, "last.safetensors")
    header, data, meta = st_reader.read(last)
    check("options" in meta, "last.safetensors records no options: %r" % sorted(meta))
    meta.pop("options", None)
    st_reader.write(last, [(k, v["dtype"], v["shape"], st_reader.raw(header, data, k)) for k, v in header.items()],
                    meta)
    before = sorted(os.listdir(run_dir))
    wider = [a if a != "0.125" else "0.25" for a in fit]
    expect_refusal(oodkit, "heatmap fit --resume with another --width", wider + ["--resume", "--out", run_dir],
                   "--width", None)
    check(sorted(os.listdir(run_dir)) == before, "the refused --resume changed --out: %r" % os.listdir(run_dir))


def study(oodkit):
    """Each refusal used to come from the step that needed it: after the classifier's training."""
    out = os.path.join(TMP, "never")
    base = ["study", "--train-limit", "1200", "--epochs", "1", "--heatmap-epochs", "1", "--out", out]
    expect_refusal(oodkit, "study: --ood not installed", base + ["--ood", "synthetic-ood-noise,svhn"], "--ood 'svhn'",
                   out)
    expect_refusal(oodkit, "study: unknown --val-ood", base + ["--val-ood", "nosuch"], "--val-ood 'nosuch'", out)
    expect_refusal(oodkit, "study: unknown method", base + ["--methods", "msp,nosuch"], "--methods", out)
    expect_refusal(oodkit, "study: the heatmap without a decoder", base[:-4] + ["--heatmap-epochs", "0", "--methods",
                   "msp,heatmap", "--out", out], "--heatmap-epochs", out)
    expect_refusal(oodkit, "study: --train-limit leaving the decoder no ID rows",
                   ["study", "--train-limit", "800", "--epochs", "1", "--heatmap-epochs", "1", "--out", out],
                   "--train-limit", out)
    expect_refusal(oodkit, "study: --oe on the validation images", base + ["--oe", "synthetic-ood-strokes:val"],
                   "--oe", out)
    expect_refusal(oodkit, "study: --batch above the training images", base + ["--batch", "5000"], "--batch", out)
    expect_refusal(oodkit, "study: an ASH percentile keeping no feature", base + ["--methods", "msp,ash_p", "--set",
                   "ash_p.p=99.9"], "--set", out)
    big = image_folder("big_images", 48, 3, 2)
    expect_refusal(oodkit, "study: --id of 48x48 images", base + ["--id", big], "--id", out)
    # The decoder's ID rows miss a class the (1-epoch, near-chance) classifier predicts for an OE
    # image: known only after training (the predicted classes), and named as study's own option
    # (--train-limit), not heatmap fit's --id-limit, which study does not have.
    rc, _, err = run(oodkit, *base, timeout=300)
    errors = [l for l in err.splitlines() if l.startswith("oodkit: error:")]
    check(rc == 1 and len(errors) == 1 and "--train-limit" in errors[0] and "--id-limit" not in errors[0],
          "study: a class without decoder ID rows: exit %s, errors %r (wanted one naming --train-limit)" % (rc, errors))
    shutil.rmtree(out, ignore_errors=True)


def train(oodkit):
    out = os.path.join(TMP, "never")
    base = ["train", "--arch", "small_cnn", "--dataset", "cifar10", "--limit", "100", "--epochs", "2"]
    expect_refusal(oodkit, "train: --batch above the training images", base + ["--batch", "200", "--out", out],
                   "--batch", out)
    expect_refusal(oodkit, "train: --val-fraction holding out whole classes", base + ["--batch", "4",
                   "--val-fraction", "0.95", "--out", out], "--val-fraction", out)
    expect_refusal(oodkit, "train: unknown --optimizer", base + ["--batch", "4", "--optimizer", "x", "--out", out],
                   "--optimizer", out)
    run_dir = os.path.join(TMP, "train")
    rc, _, err = run(oodkit, *(base + ["--batch", "20", "--stop-after", "1", "--out", run_dir]), timeout=300)
    if not check(rc == 0, "train (1 epoch) failed: %r" % err[-500:]):
        return
    before = {f: os.path.getmtime(os.path.join(run_dir, f)) for f in os.listdir(run_dir)}
    for what, extra, option in (("another --lr", ["--batch", "20", "--lr", "0.5"], "--lr"),
                                ("another --batch", ["--batch", "10"], "--batch"),
                                ("impossible split sizes", ["--batch", "20", "--val-fraction", "0.95"],
                                 "--val-fraction")):
        expect_refusal(oodkit, "train --resume with " + what, base + extra + ["--resume", "--out", run_dir], option,
                       None)
        check({f: os.path.getmtime(os.path.join(run_dir, f)) for f in os.listdir(run_dir)} == before,
              "train --resume with %s changed --out" % what)


def main():
    oodkit = os.path.abspath(sys.argv[1])
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    try:
        heatmap_fit(oodkit)
        study(oodkit)
        train(oodkit)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    exit_if_failed()
    print("check_plan_commands: every refusal early (or, for --id-limit, before any write) and named")


if __name__ == "__main__":
    main()
