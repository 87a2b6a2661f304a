#!/usr/bin/env python3
"""CI check: a training step that goes non-finite stops `oodkit train` / `oodkit heatmap fit` with a
clear error and a non-zero exit, and the last good checkpoint stays intact (Python standard
library only). The divergence is provoked the natural way, with a learning rate that explodes
after a good first epoch:

1. train, `--schedule step --step-size 1 --gamma 1e20`: epoch 2 runs at lr 5e18, the loss turns
   NaN a few steps in. The error names the loss, epoch 2 and the step; last.safetensors and
   model.safetensors are byte-identical to those of the same run stopped after epoch 1
   (--stop-after 1), log.json holds epoch 1 only, and no temporary file is left.
2. train, one step per epoch and `--gamma 1e300`: epoch 2's only step has a finite loss and finite
   gradients but an infinite update (lr * gradient overflows float32). Nothing can be seen before
   the epoch ends: the state check refuses to save it, naming the tensor and epoch 2; the
   checkpoint stays at epoch 1 with finite tensors.
3. heatmap fit: one epoch, then --resume with --lr 1e30 (Adam's first step moves every weight by
   ~1e30, the next loss overflows): the error names the loss, epoch 2 and the step;
   decoder.safetensors and last.safetensors are byte-identical to their epoch-1 copies. The
   decoder's learning rate is constant and --resume refuses another one than the checkpoint
   records, so the epoch-1 checkpoint's recorded --lr is set to 1e30 first (its tensors untouched),
   as if the run had been started so and its first epoch had stayed finite.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from st_reader import metadata, raw, read, tensors, values, write  # the raw safetensors reader of the cli checks (same folder)


def nonfinite(path):
    """Names of the F32/F64 tensors of a safetensors file holding a NaN or an infinity."""
    bad = []
    for name, (dtype, _, raw) in tensors(path).items():
        if dtype in ("F32", "F64") and not all(math.isfinite(v) for v in values(dtype, raw)):
            bad.append(name)
    return bad


def run(args):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    return p.returncode, p.stdout


def check_diverged(what, rc, out, pattern, folder, failures):
    """rc != 0, an error matching `pattern`, a checkpoint at epoch 1 with finite tensors, no temporaries."""
    if rc == 0:
        failures.append("%s: a diverging run exited with 0:\n%s" % (what, out))
    if not re.search(pattern, out):
        failures.append("%s: no error matching /%s/:\n%s" % (what, pattern, out))
    last = os.path.join(folder, "last.safetensors")
    if not os.path.exists(last) or metadata(last).get("epoch") != "1":
        failures.append("%s: last.safetensors is not the epoch-1 checkpoint any more" % what)
    else:
        for f in sorted(os.listdir(folder)):
            if f.endswith(".safetensors") and nonfinite(os.path.join(folder, f)):
                failures.append("%s: %s holds non-finite tensors %s" % (what, f, nonfinite(os.path.join(folder, f))[:3]))
    left = [f for f in os.listdir(folder) if ".tmp." in f]
    if left:
        failures.append("%s: temporary files left: %s" % (what, left))


def same_files(what, ref, got, names, failures):
    for name in names:
        a, b = tensors(os.path.join(ref, name)), tensors(os.path.join(got, name))
        if a != b:
            failures.append("%s: %s differs from the last good epoch's (%d of %d tensors)"
                            % (what, name, len([k for k in a if a.get(k) != b.get(k)]), len(a)))


def main():
    oodkit = sys.argv[1]
    root = tempfile.mkdtemp(prefix="oodkit_nonfinite_")
    failures = []
    t0 = time.time()
    train = [oodkit, "train", "--arch", "small_cnn", "--dataset", "synthetic-id", "--batch", "32", "--lr", "0.05",
             "--seed", "7", "--epochs", "3", "--schedule", "step", "--step-size", "1"]

    # 1. The loss goes NaN in the middle of epoch 2.
    good, bad = os.path.join(root, "good"), os.path.join(root, "bad")
    exploding = train + ["--limit", "192", "--gamma", "1e20"]
    subprocess.run(exploding + ["--out", good, "--stop-after", "1"], check=True, stdout=subprocess.DEVNULL)
    rc, out = run(exploding + ["--out", bad])
    check_diverged("train (loss)", rc, out, r"error: train: the loss became -?nan at epoch 2 step \d+ ", bad, failures)
    same_files("train (loss)", good, bad, ("last.safetensors", "model.safetensors"), failures)
    log = json.load(open(os.path.join(bad, "log.json")))
    if [e["epoch"] for e in log] != [1]:
        failures.append("train (loss): log.json holds epochs %s, not [1]" % [e["epoch"] for e in log])

    # 2. A finite step whose update overflows: only the state check before saving sees it.
    overflow = os.path.join(root, "overflow")
    rc, out = run(train + ["--limit", "32", "--gamma", "1e300", "--out", overflow])
    check_diverged("train (state)", rc, out, r"error: train: '[^']+' became non-finite \(NaN or Inf\) in epoch 2 "
                   r".*not saved", overflow, failures)

    # 3. The heatmap decoder: a good epoch, then a resume with an exploding learning rate.
    hm = os.path.join(root, "heatmap")
    fit = [oodkit, "heatmap", "fit", "--checkpoint", os.path.join(good, "model.safetensors"), "--id", "synthetic-id",
           "--oe", "synthetic-ood-strokes:train", "--oe-skip", "0", "--id-limit", "200", "--oe-limit", "40",
           "--heldout", "100", "--val-ood", "", "--width", "0.125", "--batch", "40", "--seed", "5", "--epochs", "2",
           "--out", hm]
    subprocess.run(fit + ["--stop-after", "1"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = os.path.join(hm, "last.safetensors")
    header, data, meta = read(last)
    options = json.loads(meta["options"])
    options["--lr"] = 1e30
    meta["options"] = json.dumps(options)
    write(last, [(k, v["dtype"], v["shape"], raw(header, data, k))
                 for k, v in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])], meta)
    epoch1 = os.path.join(root, "heatmap_epoch1")
    os.mkdir(epoch1)
    for name in ("decoder.safetensors", "last.safetensors"):
        shutil.copy(os.path.join(hm, name), epoch1)
    rc, out = run(fit + ["--resume", "--lr", "1e30"])
    check_diverged("heatmap fit", rc, out, r"error: heatmap decoder training: the loss became -?(nan|inf) at epoch 2 "
                   r"step \d+ ", hm, failures)
    same_files("heatmap fit", epoch1, hm, ("decoder.safetensors", "last.safetensors"), failures)

    shutil.rmtree(root, ignore_errors=True)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("check_train_nonfinite: train (loss, state) and heatmap fit stopped with the epoch-1 checkpoint "
          "intact (%.1f s)" % (time.time() - t0))


if __name__ == "__main__":
    main()
