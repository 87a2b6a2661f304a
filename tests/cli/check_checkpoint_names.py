#!/usr/bin/env python3
"""CI check of PyTorch's names on the command line (models/checkpoint_names.h; Python standard
library only).

A torchvision ResNet-18 state dict (its names and shapes as torchvision lists them, from
tests/fixtures/torchvision/tv_resnet18.safetensors; values from a seeded random.Random) is written
with a "module." prefix, as nn.DataParallel saves it, both as safetensors and as a torch.save-style
ZIP archive; the same values under oodkit's names (renamed here by hand: downsample -> shortcut,
fc -> linear, no prefix) as a third file. Then:
- `oodkit eval --checkpoint tv.safetensors --arch resnet18` maps the names, picks resnet18_imagenet
  from the 7x7 conv1 and says so in one stderr line; its results equal those of the oodkit-named
  file with --arch resnet18_imagenet.
- `oodkit convert tv.pt out.safetensors --arch resnet18` writes oodkit's names, bit for bit the
  hand-renamed tensors, with arch resnet18_imagenet in the metadata; eval of it needs no --arch
  and gives the same results.
- refusals, one line naming the file, nothing written: the ResNet-18 under --arch resnet50 (the
  message says what differs, that the names look like resnet18_imagenet and the --arch choices);
  the narrow torchvision ResNet of tests/fixtures/torchvision/tiny_resnet_module.pt under
  --arch resnet18 (missing blocks, wrong shapes, "which no oodkit architecture has").
"""
import array
import json
import math
import os
import random
import shutil
import sys
import tempfile

import st_reader
from check_convert import torch_pickle, write_torch_zip
from cli_check import check, run, exit_if_failed

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "torchvision")


def torchvision_state():
    """[(torchvision name, dtype, shape, raw bytes)] of a ResNet-18 with seeded weights."""
    names = json.loads(st_reader.metadata(os.path.join(FIXTURES, "tv_resnet18.safetensors"))["state_dict"])
    rng = random.Random(22)
    out = []
    for name, shape in names:
        n = math.prod(shape)
        if name.endswith("num_batches_tracked"):
            out.append((name, "I64", shape, array.array("q", [0] * n).tobytes()))
            continue
        u = [rng.uniform(-1.0, 1.0) for _ in range(n)]
        if name.endswith("running_var"):
            v = [1.0 + 0.25 * (x + 1.0) for x in u]
        elif len(shape) >= 2:
            s = math.sqrt(6.0 / (n / shape[0]))
            v = [x * s for x in u]
        elif name.endswith(".weight"):
            v = [0.5 + 0.1 * x for x in u]
        else:
            v = [0.1 * x for x in u]
        out.append((name, "F32", shape, array.array("f", v).tobytes()))
    return out


def oodkit_name(tv):
    if tv.startswith("fc."):
        return "linear." + tv[3:]
    return tv.replace(".downsample.", ".shortcut.")


def main():
    oodkit = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="oodkit_names_")
    common = ["--id", "cifar10", "--fit-limit", "300", "--heldout", "100", "--val-ood-limit", "100", "--ood",
              "isun", "--ood-limit", "150", "--test-limit", "150", "--methods", "msp,energy,mahalanobis",
              "--tuning", "none"]
    try:
        tv = torchvision_state()
        tv_st = os.path.join(tmp, "tv.safetensors")
        st_reader.write(tv_st, [("module." + n, d, s, b) for n, d, s, b in tv])
        ours = os.path.join(tmp, "ours.safetensors")
        st_reader.write(ours, [(oodkit_name(n), d, s, b) for n, d, s, b in tv])
        tv_pt = os.path.join(tmp, "tv.pt")
        write_torch_zip(tv_pt, torch_pickle([("module." + n, d, s, b) for n, d, s, b in tv]), [b for _, _, _, b in tv])

        results = {}
        for key, args in (("tv", ["--checkpoint", tv_st, "--arch", "resnet18"]),
                          ("ours", ["--checkpoint", ours, "--arch", "resnet18_imagenet"])):
            d = os.path.join(tmp, "eval_" + key)
            rc, _, err = run(oodkit, "eval", *args, "--out", d, *common, timeout=600)
            check(rc == 0, "eval %s: exit %d, %r" % (key, rc, err[-600:]))
            note = "oodkit: checkpoint '%s': prefix 'module.' removed; torchvision names (20 renamed: downsample -> " \
                   "shortcut, fc -> linear); 7x7 stem: resnet18_imagenet (--arch resnet18_imagenet)" % tv_st
            if key == "tv":
                check(note in err.splitlines(), "eval tv: the mapping note is missing: %r" % err[-600:])
            else:
                check("oodkit: checkpoint" not in err, "eval ours: a mapping note for oodkit's own names: %r" % err)
            results[key] = json.load(open(os.path.join(d, "results.json")))["methods"] if rc == 0 else None
        check(results["tv"] is not None and results["tv"] == results["ours"],
              "eval: torchvision names give other results than oodkit's names")

        conv = os.path.join(tmp, "converted.safetensors")
        rc, stdout, err = run(oodkit, "convert", tv_pt, conv, "--arch", "resnet18")
        check(rc == 0 and "(arch resnet18_imagenet)" in stdout, "convert --arch resnet18: %d %r %r" % (rc, stdout, err))
        if rc == 0:
            got, want = st_reader.tensors(conv), st_reader.tensors(ours)
            check(list(got) == list(want) and all(got[n] == want[n] for n in want),
                  "convert: not oodkit's names and tensors: %r" % list(got)[:6])
            check(st_reader.metadata(conv).get("arch") == "resnet18_imagenet", "convert: metadata %r" %
                  st_reader.metadata(conv))
            d = os.path.join(tmp, "eval_converted")
            rc, _, err = run(oodkit, "eval", "--checkpoint", conv, "--out", d, *common, timeout=600)
            check(rc == 0 and json.load(open(os.path.join(d, "results.json")))["methods"] == results["tv"],
                  "eval of the converted file without --arch: exit %d, %r" % (rc, err[-400:]))

        # Refusals: one error line naming the file, what differs and the choices; nothing written.
        d = os.path.join(tmp, "eval_wrong")
        rc, _, err = run(oodkit, "eval", "--checkpoint", tv_st, "--arch", "resnet50", "--out", d, *common)
        line = err.strip() if err.count("\n") == 1 else ""
        for part in ("'%s' does not fit architecture resnet50_imagenet (prefix 'module.' removed; " % tv_st,
                     "names fit; missing ", "layer1.0.conv3.weight", "wrong shape ",
                     "its names look like resnet18_imagenet (--arch resnet18 picks it from the 7x7 conv1): 4 stages "
                     "of 2,2,2,2 basic blocks, 7x7 stem", "--arch is one of resnet20, ",
                     "resnet18_imagenet, resnet34_imagenet, resnet50_imagenet"):
            check(rc == 1 and part in line, "eval --arch resnet50 on a ResNet-18: %r not in %d %r" % (part, rc, err))
        check(len(line) < 1500 and not os.path.exists(d), "eval --arch resnet50: %d chars, out %s" %
              (len(line), os.path.exists(d)))
        tiny = os.path.join(FIXTURES, "tiny_resnet_module.pt")
        out = os.path.join(tmp, "tiny.safetensors")
        rc, _, err = run(oodkit, "convert", tiny, out, "--arch", "resnet18")
        for part in ("'%s' does not fit architecture resnet18 (prefix 'module.' removed; torchvision names" % tiny,
                     "missing ", "layer1.1.bn1.{weight,bias,running_mean,running_var}", "wrong shape ",
                     "conv1.weight (checkpoint [4, 3, 7, 7], model [64, 3, 3, 3])",
                     "a ResNet of 4 stages of 1,1,1,1 basic blocks, 7x7 stem, which no oodkit architecture has"):
            check(rc == 1 and part in err and err.count("\n") == 1, "convert tiny --arch resnet18: %r not in %d %r"
                  % (part, rc, err))
        check(not os.path.exists(out), "convert tiny: an output was written")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    exit_if_failed()
    print("check_checkpoint_names: torchvision ResNet-18 names (module. prefix, 7x7 stem) load as resnet18_imagenet "
          "with the results of oodkit's names; convert maps them; mismatches are summarised")


if __name__ == "__main__":
    main()
