#!/usr/bin/env python3
"""CI check of `oodkit train --resume` WITH augmentation (random crop + flip on, the default;
Python standard library only). check_train.py checks resume with --no-augment.

A run stopped after epoch 1 and resumed must end with exactly the weights, BatchNorm statistics and
optimiser state of an uninterrupted run, and log the same epoch-2 loss: the batch order and each
image's crop/flip depend only on (seed, epoch, image). A third run without augmentation must end
elsewhere after epoch 1, so the augmentation was really on. Resuming it with another --lr, or
without its --no-augment, is refused with the differing options named.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from st_reader import tensors  # the raw safetensors reader of the cli checks (same folder)


def main():
    oodkit = sys.argv[1]
    root = tempfile.mkdtemp(prefix="oodkit_train_resume_")
    common = ["train", "--arch", "small_cnn", "--dataset", "synthetic-id", "--limit", "320", "--batch", "32",
              "--lr", "0.05", "--seed", "7", "--epochs", "2"]
    full, part, plain = (os.path.join(root, d) for d in ("full", "part", "plain"))
    quiet = {"stdout": subprocess.DEVNULL}
    subprocess.run([oodkit] + common + ["--out", full], check=True, **quiet)
    subprocess.run([oodkit] + common + ["--out", part, "--stop-after", "1"], check=True, **quiet)
    shutil.copy(os.path.join(part, "last.safetensors"), os.path.join(root, "part_epoch1.safetensors"))
    subprocess.run([oodkit] + common + ["--out", part, "--resume"], check=True, **quiet)
    subprocess.run([oodkit] + common + ["--out", plain, "--stop-after", "1", "--no-augment"], check=True, **quiet)

    failures = []
    a, b = tensors(os.path.join(full, "last.safetensors")), tensors(os.path.join(part, "last.safetensors"))
    if sorted(a) != sorted(b):
        failures.append("resumed checkpoint has other tensors")
    differing = [k for k in a if k in b and a[k] != b[k]]
    if differing:
        failures.append("resumed run differs from the uninterrupted one in %d of %d tensors, e.g. %s"
                        % (len(differing), len(a), differing[:3]))
    if not any(k.startswith("optim/") for k in a) or not any("running_mean" in k for k in a):
        failures.append("checkpoint lacks optimiser state or BatchNorm statistics: %s" % sorted(a)[:5])
    flog, plog = (json.load(open(os.path.join(d, "log.json"))) for d in (full, part))
    if [e["epoch"] for e in plog] != [1, 2]:
        failures.append("resumed log epochs %s" % [e["epoch"] for e in plog])
    elif [e["train_loss"] for e in plog] != [e["train_loss"] for e in flog]:
        failures.append("train losses differ: resumed %s, uninterrupted %s"
                        % ([e["train_loss"] for e in plog], [e["train_loss"] for e in flog]))
    # The resumed run really continued from epoch 1 (it did not start over).
    e1 = tensors(os.path.join(root, "part_epoch1.safetensors"))
    if not [k for k in e1 if k.endswith("weight") and e1[k] != b[k]]:
        failures.append("the resumed run did not train after epoch 1")
    # Augmentation was on: without it epoch 1 ends with other weights.
    c = tensors(os.path.join(plain, "last.safetensors"))
    if not [k for k in c if k.endswith("weight") and c[k] != e1[k]]:
        failures.append("--no-augment gives the same epoch-1 weights: augmentation was not on")
    # --resume with options other than the checkpoint's is refused, naming them, and leaves it as it was.
    before = open(os.path.join(plain, "last.safetensors"), "rb").read()
    swapped = [v if v != "0.05" else "0.1" for v in common]
    p = subprocess.run([oodkit] + swapped + ["--out", plain, "--resume", "--no-augment"], capture_output=True,
                       text=True)
    if p.returncode != 1 or "--lr 0.05 (now 0.1)" not in p.stderr or "--no-augment" in p.stderr:
        failures.append("--resume with another --lr: exit %d, stderr %r" % (p.returncode, p.stderr.strip()[-300:]))
    p = subprocess.run([oodkit] + common + ["--out", plain, "--resume"], capture_output=True, text=True)
    if p.returncode != 1 or "--no-augment false (now" in p.stderr or "--no-augment true (now false)" not in p.stderr:
        failures.append("--resume without --no-augment: exit %d, stderr %r" % (p.returncode, p.stderr.strip()[-300:]))
    if open(os.path.join(plain, "last.safetensors"), "rb").read() != before:
        failures.append("a refused --resume changed last.safetensors")
    shutil.rmtree(root, ignore_errors=True)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("check_train_resume: resumed run with augmentation bit-identical in %d tensors" % len(a))


if __name__ == "__main__":
    main()
