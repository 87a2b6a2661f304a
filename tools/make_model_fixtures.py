#!/usr/bin/env python3
"""Writes tests/fixtures/models/<name>.safetensors: PyTorch's results for oodkit's networks on
inputs and weights that both sides generate from the same rule, so that the fixtures hold only
results (a few kB each), never weights. tests/test_model_fixtures.cpp rebuilds the same weights
and inputs in C++ and compares oodkit's results with these (CPU, float64; CUDA float32 when a GPU
is present).

Run once, with PyTorch from the package index in a local virtual environment:
    python3 -m venv .venv-torch && .venv-torch/bin/pip install torch numpy
    .venv-torch/bin/python tools/make_model_fixtures.py [--out tests/fixtures/models] [--only resnet18,...]

The rule (mirrored by tests/test_model_fixtures.cpp):
  values(key, n): splitmix64 stream seeded with FNV-1a-64(key) (UTF-8 bytes); state += 0x9E3779B97F4A7C15,
      z = mix(state); u = (z >> 11) * 2^-53 in [0, 1); v = 2u - 1 in [-1, 1). One v per element, row-major.
  state-dict entry `name` of shape s (v = values(name, numel)):
      *.running_mean: 0.1 v;  *.running_var: 1 + 0.25 (v + 1);  *.num_batches_tracked: 0
      ndim >= 2 (conv, transposed conv, linear weights): v * sqrt(6 / fan), fan = numel / s[0]
      ndim == 1 and name ends in .weight (BatchNorm gamma): GAMMA + 0.1 v
      ndim == 1 otherwise (biases): 0.1 v
  input "input" [N, 3, 32, 32] = 2 v; labels[i] = (3 i + 1) mod K.
  decoder inputs: z = rows of values("input.z", N D) normalised to unit L2 norm, onehot of labels.

Recorded per network (float64, model in float64 on the CPU):
  eval.logits [N, K] (decoder: eval.output probe), train.logits / train.output probe, train.loss,
  and probes p = [dot(t, values("probe." + name, numel)), ||t||_2] of
  train.input_grad (d loss / d input in train mode), grad.<every parameter>, buffer.<every BN running
  statistic after the one train-mode forward>.
  loss: classifiers cross_entropy(logits, labels) (mean); decoder sum(output * values("loss.r")) / N.
WideResNet is built with dropout 0 (dropout masks are random on both sides).
"""
import argparse
import collections
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
GAMMA = 0.5  # BatchNorm weights 0.5 + 0.1 v keep eval-mode activations of the deep residual nets bounded
BATCH = 3
CLASSES = 10
# name -> (kind, arch); decoder: the 32x32 ResNet preset for a 512-d classifier (ResNet-18's).
NETWORKS = collections.OrderedDict([
    ("resnet20", ("classifier", "resnet20")),
    ("resnet18", ("classifier", "resnet18")),
    ("resnet34", ("classifier", "resnet34")),
    ("resnet50", ("classifier", "resnet50")),
    ("wrn40_2", ("classifier", "wrn40_2")),
    ("densenet100", ("classifier", "densenet100")),
    ("decoder_resnet18", ("decoder", "resnet18")),
])
DECODER_DIM = 512


def fnv1a64(key):
    h = 0xCBF29CE484222325
    for b in key.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def values(key, n):
    """n values in [-1, 1) from the splitmix64 stream of FNV-1a-64(key) (vectorised, wrapping uint64)."""
    with np.errstate(over="ignore"):
        state = np.uint64(fnv1a64(key)) + GOLDEN * np.arange(1, n + 1, dtype=np.uint64)
        z = state
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)
    return 2.0 * u - 1.0


def entry_values(name, shape):
    n = int(np.prod(shape)) if len(shape) else 1
    v = values(name, n)
    if name.endswith("running_mean"):
        out = 0.1 * v
    elif name.endswith("running_var"):
        out = 1.0 + 0.25 * (v + 1.0)
    elif len(shape) >= 2:
        out = v * np.sqrt(6.0 / (n / shape[0]))
    elif name.endswith(".weight"):
        out = GAMMA + 0.1 * v
    else:
        out = 0.1 * v
    return out.reshape(shape)


def fill(model):
    import torch
    state = model.state_dict()
    for name, t in state.items():
        if name.endswith("num_batches_tracked"):
            t.zero_()
        else:
            t.copy_(torch.from_numpy(entry_values(name, tuple(t.shape))))
    model.load_state_dict(state, strict=True)


def probe(name, t):
    a = t.detach().double().flatten().numpy()
    return np.array([np.dot(a, values("probe." + name, a.size)), np.linalg.norm(a)])


def run(name, kind, arch):
    import torch
    import torch.nn.functional as F
    import torch_models
    torch.manual_seed(0)
    labels = torch.tensor([(3 * i + 1) % CLASSES for i in range(BATCH)])
    out = collections.OrderedDict()
    if kind == "classifier":
        model = torch_models.build_model(arch, CLASSES, drop_rate=0.0).double()
        fill(model)
        x = torch.from_numpy(2.0 * values("input", BATCH * 3 * 32 * 32).reshape(BATCH, 3, 32, 32))
        model.eval()
        with torch.no_grad():
            out["eval.logits"] = model(x).numpy()
        model.train()
        xg = x.clone().requires_grad_(True)
        logits = model(xg)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        out["train.logits"] = logits.detach().numpy()
    else:
        c0, ch = torch_models.decoder_channels(arch, CLASSES)
        model = torch_models.Decoder(DECODER_DIM, CLASSES, c0, ch).double()
        fill(model)
        z = torch.from_numpy(values("input.z", BATCH * DECODER_DIM).reshape(BATCH, DECODER_DIM))
        z = z / z.norm(dim=1, keepdim=True)
        onehot = F.one_hot(labels, CLASSES).double()
        model.eval()
        with torch.no_grad():
            out["eval.output"] = probe("eval.output", model(z, onehot))
        model.train()
        xg = z.clone().requires_grad_(True)
        h = model(xg, onehot)
        r = torch.from_numpy(values("loss.r", h.numel()).reshape(h.shape))
        loss = (h * r).sum() / BATCH
        loss.backward()
        out["train.output"] = probe("train.output", h)
    out["train.loss"] = np.array([loss.item()])
    out["train.input_grad"] = probe("train.input_grad", xg.grad)
    for pname, p in model.named_parameters():
        out["grad." + pname] = probe("grad." + pname, p.grad)
    for bname, b in model.named_buffers():
        if bname.endswith("running_mean") or bname.endswith("running_var"):
            out["buffer." + bname] = probe("buffer." + bname, b)
    scale = np.abs(out["eval.logits"]).max() if "eval.logits" in out else out["eval.output"][1]
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, eval |out| max/norm {scale:.4g}, "
          f"train loss {loss.item():.6f}, {len(out)} entries", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "models"))
    ap.add_argument("--only", default="", help="comma-separated subset of " + ",".join(NETWORKS))
    args = ap.parse_args()
    import torch
    from torch_reference import st_write_numpy
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    os.makedirs(args.out, exist_ok=True)
    names = [n for n in args.only.split(",") if n] or list(NETWORKS)
    for name in names:
        kind, arch = NETWORKS[name]
        out = run(name, kind, arch)
        meta = {"network": name, "kind": kind, "arch": arch, "batch": BATCH, "classes": CLASSES,
                "decoder_dim": DECODER_DIM, "gamma": GAMMA, "torch": torch.__version__,
                "made_by": "tools/make_model_fixtures.py"}
        path = os.path.join(args.out, name + ".safetensors")
        st_write_numpy(path + ".tmp", out, meta)
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
