#!/usr/bin/env python3
"""CI check of `oodkit train` on the CPU (Python standard library only).

Trains the small CNN on the built-in synthetic shapes for a few seconds and checks that the
test accuracy rises well above chance (10 classes) while the loss falls; then checks --resume:
a run stopped after epoch 1 and resumed must end with exactly the weights and optimiser state
of an uninterrupted run (the batch order and augmentation depend only on seed and epoch).
The resume pair trains on fewer images (--limit 1000: 15 full batches and a partial one, as
6000 has) than the accuracy run: bit-identity does not need the accuracy run's 280 steps.
"""
import json
import os
import subprocess
import sys
import tempfile

from st_reader import tensors  # the raw safetensors reader of the cli checks (same folder)


def main():
    oodkit = sys.argv[1]
    root = tempfile.mkdtemp(prefix="oodkit_train_")
    common = ["train", "--arch", "small_cnn", "--dataset", "synthetic-id", "--batch", "64",
              "--lr", "0.05", "--nesterov", "--seed", "0", "--no-augment", "--epochs", "3"]
    full, small, part = (os.path.join(root, d) for d in ("full", "small", "part"))
    subprocess.run([oodkit] + common + ["--limit", "6000", "--out", full], check=True)
    # The resume pair: an uninterrupted run, and one "killed" after epoch 1 that --resume must
    # continue at epoch 2.
    resume_common = common + ["--limit", "1000"]
    subprocess.run([oodkit] + resume_common + ["--out", small], check=True)
    subprocess.run([oodkit] + resume_common + ["--out", part, "--stop-after", "1"], check=True)
    subprocess.run([oodkit] + resume_common + ["--out", part, "--resume"], check=True)

    failures = []
    log = json.load(open(os.path.join(full, "log.json")))
    first, last = log[0], log[-1]
    # ~280 SGD steps: the shapes need a while to leave the initial plateau; 20% on 2,000 test
    # images is more than 10 standard deviations above chance.
    if not last["test_accuracy"] >= 0.2:
        failures.append("test accuracy %.3f is not well above chance (0.1)" % last["test_accuracy"])
    if not last["train_loss"] < first["train_loss"]:
        failures.append("train loss did not fall: %.4f -> %.4f" % (first["train_loss"], last["train_loss"]))

    a, b = tensors(os.path.join(small, "last.safetensors")), tensors(os.path.join(part, "last.safetensors"))
    if sorted(a) != sorted(b):
        failures.append("resumed checkpoint has other tensors")
    differing = [k for k in a if k in b and a[k] != b[k]]
    if differing:
        failures.append("resumed run differs from the uninterrupted one in %d tensors, e.g. %s"
                        % (len(differing), differing[:3]))
    plog = json.load(open(os.path.join(part, "log.json")))
    if [e["epoch"] for e in plog] != [1, 2, 3]:
        failures.append("resumed log epochs %s" % [e["epoch"] for e in plog])
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("check_train: test accuracy %.1f%% after %d epochs (chance 10%%); resumed run bit-identical in %d tensors"
          % (100 * last["test_accuracy"], len(log), len(a)))


if __name__ == "__main__":
    main()
