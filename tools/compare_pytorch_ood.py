"""oodkit's Python package against pytorch-ood on identical features (issue 24, "independent reference").

Not part of CI: needs `pip install pytorch-ood` (0.4.0 used; `--no-deps` next to an installed torch,
it imports without torchvision), torch, numpy, scikit-learn and the oodkit package.

For MSP, MaxLogit, Energy, KNN, Mahalanobis, ViM and ReAct both libraries see the same float32
arrays (features z, logits = z W^T + b, the head (W, b)); pytorch-ood's detectors are used through
their `score` / `fit_features` / `predict_features` / `fit_feature_maps` / `predict_feature_maps`.
pytorch-ood returns outlier scores (higher = OOD), oodkit ID scores (higher = ID); each reference is
mapped onto oodkit's definition as printed in the "mapping" column:

  msp, maxlogit, energy, knn, vim, react   oodkit = -pytorch_ood
  mahalanobis                              oodkit = -2 N pytorch_ood  (pytorch-ood scores
        0.5 (z-mu)^T (N Sigma + 1e-6 I)^-1 (z-mu), i.e. it does not divide its pooled scatter
        matrix by N and halves the distance; oodkit: (z-mu)^T Sigma^+ (z-mu), Sigma = scatter / N)

Settings made to coincide: KNN k = 50 (both normalise rows to unit length: oodkit
z / (|z| + 1e-10), pytorch-ood z / max(|z|, 1e-12)); ViM d = oodkit's D_p (D/2 for D < 768);
ReAct percentile = p / 100 with p = 90 taken on the same held-out ID features (both numpy's
'linear' percentile of all entries), the head z W^T + b and Energy on top.

Each reference is computed twice: by pytorch-ood on the float32 arrays (what a user gets), and
by pytorch-ood on the same arrays cast to float64 (torch's default dtype set to float64 so that
its internal buffers are double too; ViM casts to float32 internally, so its float64 column is
pytorch-ood's formula re-evaluated in float64 with its own fitted subspace recomputed in double).
Reported per method, over the scored test rows (ID + OOD):
  max_rel   = max_i |o_i - r_i| / |r_i|  (ViM: / (|LSE(f_i)| + alpha |z_i^P-perp|), the magnitudes of
              the two terms whose difference is the score; plain |o - r| / |r| printed below it)
  scale_rel = max_i |o_i - r_i| / max_i |r_i|
Usage:  python tools/compare_pytorch_ood.py [--real]   (--real: also the shipped ResNet-20's
features on CIFAR-10 / iSUN from $OODKIT_SHARED_DIR, default ../shared next to the repository)
"""
import argparse
import os
import sys

import numpy as np
import torch

import oodkit
import pytorch_ood
from pytorch_ood.detector import KNN, EnergyBased, Mahalanobis, MaxLogit, MaxSoftmax, ReAct, ViM

torch.set_num_threads(2)


def gaussian_mixture(seed=0, n_train=5000, n_held=1000, n_test=1000, dim=128, classes=10):
    """ReLU'd Gaussian-mixture 'penultimate features' and a random linear head, seeded."""
    g = np.random.default_rng(seed)
    means = g.normal(0.0, 1.0, (classes, dim)) + 0.5
    mix = g.normal(0.0, 1.0, (dim, dim)) / np.sqrt(dim)          # correlated noise

    def draw(n, ood=False):
        y = g.integers(0, classes, n)
        mu = g.normal(0.0, 1.5, (n, dim)) + 0.5 if ood else means[y]
        z = np.maximum(mu + g.normal(0.0, 1.0, (n, dim)) @ mix * (1.6 if ood else 1.0), 0.0)
        return z.astype(np.float32), y.astype(np.int64)

    z_tr, y_tr = draw(n_train)
    z_held, _ = draw(n_held)
    z_id, _ = draw(n_test)
    z_ood, _ = draw(n_test, ood=True)
    w = (g.normal(0.0, 1.0, (classes, dim)) / np.sqrt(dim)).astype(np.float32)
    b = g.normal(0.0, 0.1, classes).astype(np.float32)
    return dict(name="gauss (D=128, K=10, N=5000, seed 0)", z_train=z_tr, y_train=y_tr, z_held=z_held,
                z_test=np.concatenate([z_id, z_ood]), w=w, b=b)


def resnet20_features():
    """The shipped CIFAR-10 ResNet-20's penultimate features (as python/examples/torch_quickstart.py):
    fit = data_batch_1[:5000], held-out = data_batch_2[:1000], test = test_batch[:1000] + 1000 iSUN."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    shared = os.environ.get("OODKIT_SHARED_DIR", os.path.join(root, "..", "shared"))
    sys.path.insert(0, os.path.join(root, "tools"))
    from PIL import Image
    from safetensors.torch import load_file
    from torch_models import build_model

    def cifar(f, n):
        raw = np.fromfile(os.path.join(shared, "datasets", "cifar10", f), np.uint8).reshape(-1, 3073)[:n]
        return torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32) / 255.0).float(), raw[:, 0].astype(np.int64)

    def isun(n):
        folder = os.path.join(shared, "datasets", "isun")
        files = sorted(os.listdir(folder))[:n]
        imgs = [np.asarray(Image.open(os.path.join(folder, f)).convert("RGB").resize((32, 32))) for f in files]
        return torch.from_numpy(np.stack(imgs).transpose(0, 3, 1, 2) / 255.0).float()

    model = build_model("resnet20", num_classes=10)
    model.load_state_dict(load_file(os.path.join(shared, "weights", "resnet20_cifar10.safetensors")))
    model.eval()
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    pen = {}
    model.linear.register_forward_hook(lambda m, inp, out: pen.update(z=inp[0]))

    @torch.no_grad()
    def feats(x):
        out = []
        for i in range(0, len(x), 500):
            model((x[i:i + 500] - mean) / std)
            out.append(pen["z"])
        return torch.cat(out).numpy().astype(np.float32)

    x_tr, y_tr = cifar("data_batch_1.bin", 5000)
    x_held, _ = cifar("data_batch_2.bin", 1000)
    x_id, _ = cifar("test_batch.bin", 1000)
    return dict(name="ResNet-20 CIFAR-10 (D=64, K=10, N=5000) vs iSUN", z_train=feats(x_tr), y_train=y_tr,
                z_held=feats(x_held), z_test=np.concatenate([feats(x_id), feats(isun(1000))]),
                w=model.linear.weight.detach().numpy().copy(), b=model.linear.bias.detach().numpy().copy())


def oodkit_scores(s):
    z, y, zt, held = s["z_train"], s["y_train"], s["z_test"], s["z_held"]
    head = (s["w"], s["b"])
    logits = zt @ s["w"].T + s["b"]
    out = {}
    for m in ("msp", "maxlogit", "energy"):
        out[m] = oodkit.Detector(m).score(zt, logits=logits)
    out["knn"] = oodkit.Detector("knn", k=50).fit(z).score(zt)
    out["mahalanobis"] = oodkit.Detector("mahalanobis").fit(z, labels=y, head=head).score(zt)
    out["vim"] = oodkit.Detector("vim").fit(z, head=head).score(zt, logits=logits)
    out["react"] = oodkit.Detector("react", p=90).fit(z, head=head, heldout=held).score(zt, head=head)
    return out


def vim_principal_dim(d):
    return 1000 if d >= 2048 else 512 if d >= 768 else d // 2


def pytorch_ood_scores(s, dtype):
    """pytorch-ood's scores mapped to oodkit's convention (see the module docstring), computed on the
    float32 arrays (dtype=float32) or on them cast to float64 (dtype=float64)."""
    torch.set_default_dtype(dtype)
    try:
        z = torch.from_numpy(s["z_train"]).to(dtype)
        y = torch.from_numpy(s["y_train"])
        zt = torch.from_numpy(s["z_test"]).to(dtype)
        held = torch.from_numpy(s["z_held"]).to(dtype)
        w = torch.from_numpy(s["w"]).to(dtype)
        b = torch.from_numpy(s["b"]).to(dtype)
        logits = zt @ w.T + b
        out = {}
        out["msp"] = -MaxSoftmax.score(logits)
        out["maxlogit"] = -MaxLogit.score(logits)
        out["energy"] = -EnergyBased.score(logits)
        out["knn"] = -KNN(None, k=50).fit_features(z, y).predict_features(zt)
        out["mahalanobis"] = -2.0 * z.shape[0] * Mahalanobis(None).fit_features(z, y).predict_features(zt)
        d = vim_principal_dim(z.shape[1])
        vim = ViM(None, d=d, w=w, b=b).fit_features(z, y)
        if dtype == torch.float32:
            out["vim"] = -vim.predict_features(zt)
        else:  # ViM casts to float32 internally: pytorch-ood's own formula (vim.py), in float64
            u = -(torch.linalg.pinv(w) @ b)
            x = z - u
            vals, vecs = torch.linalg.eigh(x.T @ x / x.shape[0])
            ns = vecs[:, : vecs.shape[1] - d]
            alpha = ((z @ w.T + b).max(dim=-1).values.mean() / (x @ ns).norm(dim=-1).mean()).item()
            lse, vlogit = torch.logsumexp(logits, dim=-1), alpha * ((zt - u) @ ns).norm(dim=-1)
            out["vim"] = lse - vlogit
            out["vim_terms"] = lse.abs() + vlogit  # the score is a difference of these two terms
        react = ReAct(backbone=None, head=lambda x: x @ w.T + b, percentile=0.90)
        react.fit_feature_maps(held, torch.zeros(len(held), dtype=torch.long))
        out["react"] = -react.predict_feature_maps(zt)
        return {k: v.double().numpy() for k, v in out.items()}
    finally:
        torch.set_default_dtype(torch.float32)


MAPPING = {"msp": "-MaxSoftmax.score", "maxlogit": "-MaxLogit.score", "energy": "-EnergyBased.score",
           "knn": "-KNN(k=50)", "mahalanobis": "-2N Mahalanobis", "vim": "-ViM(d=D_p)",
           "react": "-ReAct(percentile=0.9)"}


def rel(o, r, denom=None):
    o = np.asarray(o, np.float64)
    d = np.abs(o - r)
    denom = np.abs(r) if denom is None else denom
    return float(np.max(d / np.maximum(denom, 1e-300))), float(d.max() / np.abs(r).max())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--real", action="store_true", help="also the shipped ResNet-20's features")
    args = ap.parse_args()
    print("pytorch-ood %s, torch %s, oodkit %s" % (pytorch_ood.__version__ if hasattr(pytorch_ood, "__version__")
                                                   else "?", torch.__version__, oodkit.__version__))
    sets = [gaussian_mixture()]
    if args.real:
        sets.append(resnet20_features())
    worst = 0.0
    for s in sets:
        o = oodkit_scores(s)
        r32 = pytorch_ood_scores(s, torch.float32)
        r64 = pytorch_ood_scores(s, torch.float64)
        print("\n%s: %d test rows (ID + OOD)" % (s["name"], len(s["z_test"])))
        print("%-12s %-24s %12s %12s %12s %12s %14s" % ("method", "mapping", "max_rel f32", "scale_rel f32",
                                                         "max_rel f64", "scale_rel f64", "pood f32 vs f64"))
        for m in MAPPING:
            den = r64.get(m + "_terms")
            a32, b32 = rel(o[m], r32[m], den)
            a64, b64 = rel(o[m], r64[m], den)
            p, _ = rel(r32[m], r64[m], den)
            worst = max(worst, a64)
            print("%-12s %-24s %12.2e %12.2e %12.2e %12.2e %14.2e" % (m, MAPPING[m], a32, b32, a64, b64, p))
            if den is not None:
                print("%-12s %-24s %12.2e %12s %12.2e %12s %14.2e   <- max_i |o_i - r_i| / |r_i| (near-zero scores)"
                      % ("", "", rel(o[m], r32[m])[0], "", rel(o[m], r64[m])[0], "", rel(r32[m], r64[m])[0]))
        print("vim's max_rel is relative to |LSE(f)| + alpha |z^P-perp| (ViM's score is the difference of these"
              " two terms, so near-zero scores have no relative precision in either library); the line under it"
              " is the plain |o - r| / |r|")
    print("\nworst max_rel against the float64 reference: %.2e (%s 1e-5)" % (worst, "<=" if worst <= 1e-5 else ">"))
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
