"""Shared fixtures of the Python package tests (tests/python; docs/python.md, "Tests").

The command-line comparisons need the oodkit binary (OODKIT_BIN, set by the ctest python.package)
and the CIFAR-10 / iSUN data of OODKIT_SHARED_DIR; they skip without them."""
import json
import os
import shutil
import struct
import subprocess
import tempfile

import numpy as np
import pytest

NP = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


def read_safetensors(path):
    """name -> NumPy array (an independent reader: the format's 8-byte header length + JSON)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for k, v in header.items():
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(data[b:e], dtype=NP[v["dtype"]]).reshape(v["shape"]).copy()
    return out


def read_scored_rows(path):
    """The one set of a features file `oodkit score --features-out` wrote (docs/data.md: id_test
    for the ID dataset's images, else ood.<data>) as {"z", "logits", "labels" (id_test only),
    "head.weight", "head.bias"}."""
    t = read_safetensors(path)
    prefixes = {k.rsplit(".", 1)[0] for k in t if not k.startswith("head.")}
    assert len(prefixes) == 1, sorted(t)
    p = prefixes.pop()
    out = {"z": t[p + ".features"], "logits": t[p + ".logits"], "head.weight": t["head.weight"],
           "head.bias": t["head.bias"]}
    if p + ".labels" in t:
        out["labels"] = t[p + ".labels"]
    return out


def read_score_csv(path):
    """`oodkit score --out` CSV: method -> float64 column."""
    with open(path) as f:
        head = f.readline().strip().split(",")
        rows = [line.strip().split(",") for line in f if line.strip()]
    return {h: np.array([float(r[i]) for r in rows]) for i, h in enumerate(head)
            if i >= 3 and not h.endswith(":decision")}


# Methods `oodkit eval` runs for the comparisons: every detector on features and logits, one fusion.
CLI_METHODS = ["msp", "maxlogit", "energy", "mahalanobis", "react", "ash_p", "ash_b", "ash_s", "dice", "knn",
               "gradnorm", "vim"]
# The --fuse rows the eval run adds (fusions of several detectors, float64 scores).
CLI_FUSE = {"z:knn+energy": "fuse_z(knn+energy)", "p:knn+vim+mahalanobis": "fuse_p(knn+vim+mahalanobis)"}


@pytest.fixture(scope="session")
def cli():
    """A small `oodkit eval` run (shipped ResNet-20, CIFAR-10 vs iSUN), then `oodkit score` on 300
    iSUN and 300 CIFAR-10 test images with --features-out: (binary, eval folder, {set: (features
    file, csv)}, heatmap decoder folder)."""
    binary = os.environ.get("OODKIT_BIN")
    shared = os.environ.get("OODKIT_SHARED_DIR")
    if not binary or not os.path.exists(binary):
        pytest.skip("OODKIT_BIN (the oodkit binary) is not set")
    if not shared or not os.path.isdir(os.path.join(shared, "datasets")):
        pytest.skip("OODKIT_SHARED_DIR (the datasets) is not set")
    root = tempfile.mkdtemp(prefix="oodkit_py_")
    out, hm = os.path.join(root, "eval"), os.path.join(root, "hm")
    # A small heatmap decoder (tests/cli/check_heatmap.py's settings), evaluated with the rest.
    subprocess.run([binary, "heatmap", "fit", "--id-limit", "300", "--oe-limit", "60", "--heldout", "300",
                    "--val-ood-limit", "100", "--width", "0.125", "--epochs", "1", "--batch", "50", "--seed", "3",
                    "--out", hm], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([binary, "eval", "--fit-limit", "1000", "--heldout", "300", "--val-ood-limit", "200",
                    "--ood", "isun", "--ood-limit", "200", "--test-limit", "200", "--tuning", "features",
                    "--methods", ",".join(CLI_METHODS + ["heatmap"]), "--heatmap", hm, "--out", out]
                   + [a for f in CLI_FUSE for a in ("--fuse", f)], check=True,
                   stdout=subprocess.DEVNULL)
    sets = {}
    for data in ("isun", "cifar10:test"):
        tag = data.split(":")[0]
        feats, csv = os.path.join(root, tag + ".safetensors"), os.path.join(root, tag + ".csv")
        subprocess.run([binary, "score", "--detectors", out + "/detectors", "--data", data, "--limit", "300",
                        "--methods", ",".join(CLI_METHODS + ["heatmap"] + list(CLI_FUSE.values())), "--out", csv,
                        "--features-out", feats], check=True,
                       stdout=subprocess.DEVNULL)
        sets[tag] = (feats, csv)
    yield binary, out, sets, hm
    shutil.rmtree(root, ignore_errors=True)
