"""oodkit from Python: the native post-hoc OOD detectors, exact metrics, the validation-tuned
protocol and the heatmap detector, on NumPy arrays and PyTorch tensors (docs/python.md).

Inputs: anything with the buffer protocol or DLPack (NumPy arrays, PyTorch tensors; CPU, or CUDA
on a CUDA build), float32 or float64. A C-contiguous float32 input is read in place, never copied;
a strided one is made contiguous first (a copy), float64 features are cast to float32 (the
detectors compute in float32, as the command line). Labels are int64 class indices (other
integer arrays are converted). Results are NumPy arrays. Scores: higher = more in-distribution.

Errors: oodkit.Error (a ValueError) with oodkit's one-line message for bad input,
oodkit.InternalError (a RuntimeError) for a broken invariant, MemoryError when out of memory.
"""
from __future__ import annotations

import os

import numpy as _np

from . import _oodkit
from ._oodkit import Error, InternalError, with_cuda

__all__ = ["Detector", "detector", "fuse", "load", "metrics", "evaluate", "methods", "Heatmap", "Error",
           "InternalError", "with_cuda"]
__version__ = "0.1.0"


def _array(x):
    """x as nanobind takes it: torch tensors detached (no copy), lists as NumPy arrays."""
    if x is None:
        return None
    if hasattr(x, "detach") and hasattr(x, "requires_grad"):  # torch.Tensor
        return x.detach()
    if hasattr(x, "__dlpack__") or hasattr(x, "__array_interface__"):
        return x
    return _np.asarray(x)


def _labels(y):
    if y is None:
        return None
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    y = _np.asarray(y)
    if y.dtype.kind not in "iu":
        raise Error("labels: expected integer class indices, got %s" % y.dtype)
    return _np.ascontiguousarray(y, dtype=_np.int64)


def _head(head):
    if head is None:
        return None, None
    if not isinstance(head, (tuple, list)) or len(head) not in (1, 2):
        raise Error("head: expected (W, b) with W [K, D] and b [K] (or (W,) without a bias)")
    w = _array(head[0])
    b = _array(head[1]) if len(head) == 2 and head[1] is not None else None
    return w, b


def _features(what, x, logits=None, maps=None, head=None, allow_empty=False):
    """A set's feature columns: x is features [N, D], or a dict with keys features, logits, maps."""
    if isinstance(x, dict):
        unknown = set(x) - {"features", "logits", "maps"}
        if unknown:
            raise Error("%s: unknown keys %s (features, logits, maps)" % (what, ", ".join(sorted(unknown))))
        logits, maps, x = x.get("logits", logits), x.get("maps", maps), x.get("features")
    w, b = _head(head)
    return _oodkit._features(what, _array(x), _array(logits), _array(maps), w, b, 1.0, allow_empty)


def methods():
    """The registered detectors and fusions that work on arrays (features, logits, feature maps)."""
    return list(_oodkit.methods())


class Detector:
    """A registered detector or fusion, e.g. Detector("knn", k=50), Detector("vim"),
    Detector("nap_e", w=0.5), or a fusion of several as `oodkit eval --fuse` names it:
    Detector("fuse_z(knn+energy)") (see fuse()). Settings not given take the registered default
    (docs/methods.md); a fusion's components take theirs as "component.key", e.g.
    Detector("fuse_p(knn+vim)", **{"knn.k": 10})."""

    def __init__(self, name, **params):
        self._d = _oodkit._Detector(name, {k: float(v) for k, v in params.items()})

    @classmethod
    def _wrap(cls, d):
        self = cls.__new__(cls)
        self._d = d
        return self

    name = property(lambda self: self._d.name)
    params = property(lambda self: dict(self._d.params), doc="the setting in use")
    grid = property(lambda self: dict(self._d.grid), doc="the registered tuning grid")
    components = property(lambda self: list(self._d.components), doc="a fusion's two methods")
    fitted = property(lambda self: self._d.fitted)

    def fit(self, features=None, labels=None, *, logits=None, head=None, heldout=None, maps=None):
        """Fits on ID training data: features [N, D] (penultimate vectors), labels [N], logits [N, K]
        (or head=(W, b) to compute them), maps [N, C, H, W] (the last feature maps), heldout: held-out
        ID features (ReAct's percentile, and the scales of a fuse(): required there; an array or a
        dict like features). A fusion fits its components on the same arguments. Returns self."""
        train = _features("train", features, logits, maps, head, allow_empty=True)
        held = None if heldout is None else _features("heldout", heldout, head=head)
        w, b = _head(head)
        self._d.fit(train, _labels(labels), held, w, b)
        return self

    def set_params(self, **params):
        """Another setting, e.g. knn.set_params(k=10) (re-derives what depends on it). Returns self."""
        self._d.set_params({k: float(v) for k, v in params.items()})
        return self

    def score(self, features=None, *, logits=None, maps=None, head=None):
        """[N] scores (NumPy; float32, float64 for fusions), higher = more ID."""
        return self._d.score(_features("score", features, logits, maps, head))

    __call__ = score

    def save(self, path):
        """Writes <path>.json + <path>.safetensors (+ fitted parts), the format `oodkit eval` writes
        in <out>/detectors/<name>; a fusion also saves its components beside it, by name."""
        self._d.save(os.fspath(path))

    def __repr__(self):
        p = ", ".join("%s=%g" % kv for kv in sorted(self.params.items()))
        return "oodkit.Detector(%r%s)%s" % (self.name, ", " + p if p else "", "" if self.fitted else " [unfitted]")


def detector(name, **params):
    """Same as Detector(name, **params)."""
    return Detector(name, **params)


def fuse(methods, kind="z", *, weights=None, settings=None):
    """A fusion of 2 to 8 detectors, as `oodkit eval --fuse KIND:A+B...` (docs/methods.md, "Fusing
    any detectors"): Detector("fuse_KIND(A+B...)"). Each component's score is put on one scale
    fitted on held-out ID scores, so fit() needs heldout= (held-out ID images, not the training
    set); the scaled scores are combined with weights on the simplex:
      kind "z":     S = sum_i K w_i (s_i - m_i) / sd_i   (held-out ID mean m_i, population std sd_i)
      kind "p":     S = 2 sum_i K w_i ln p_i             (Fisher's method)
      kind "pmean": S = sum_i w_i p_i
    with p_i = (1 + #{held-out ID scores of component i <= s_i}) / (n + 1). methods: names (a list,
    or "knn+energy"); weights: K weights >= 0 summing to 1 (default equal, 1/K); settings: the
    components' settings, {"knn.k": 10}. Scores are float64. Saved and loaded in eval's format
    (the components beside it, by name)."""
    if isinstance(methods, str):
        methods = methods.split("+")
    methods = [str(m) for m in methods]
    params = dict(settings or {})
    if weights is not None:
        weights = list(weights)
        if len(weights) != len(methods):
            raise Error("fuse: %d weights for %d methods (one per method)" % (len(weights), len(methods)))
        params.update({"w%d" % (i + 1): w for i, w in enumerate(weights)})
    return Detector("fuse_%s(%s)" % (kind, "+".join(methods)), **params)


def load(path):
    """A detector or fusion saved by Detector.save or by `oodkit eval --out DIR` (DIR/detectors/<name>)."""
    return Detector._wrap(_oodkit._Detector.load(os.fspath(path)))


def metrics(id_scores, ood_scores):
    """AUROC, AUPR-In, AUPR-Out and FPR@95TPR in both conventions (fractions in [0, 1]; exact on
    ties; higher score = ID), docs/methods.md "Metrics". Returns a dict: auroc, aupr_in, aupr_out,
    fpr95 (classic: OOD kept at the 95%-of-ID threshold), fpr95_openood (OpenOOD/pytorch-ood: ID
    flagged at 95% of OOD caught), their thresholds and rates, n_id, n_ood."""
    m = dict(_oodkit.metrics(_array(id_scores), _array(ood_scores)))
    m["n_id"], m["n_ood"] = int(m["n_id"]), int(m["n_ood"])
    return m


def evaluate(train, labels, val_id, val_ood, test_id, test_ood, *, head=None, methods=("msp", "energy", "knn"),
             settings=None, tune=True, save_dir=None, as_frame=None):
    """The validation-tuned protocol of `oodkit eval` on arrays: fits each method on `train` (with
    `labels`, `head`), tries every setting of its grid on (val_id, val_ood) and keeps the best
    AUROC (first on ties; tune=False: the defaults), then scores test_id against each OOD test set.
    Each set is features [N, D] or a dict(features=, logits=, maps=); logits come from head=(W, b)
    when not given. test_ood: {name: set}. settings: {"knn.k": [10, 50]} (as --set). save_dir:
    every method saved there (as eval's detectors/). Returns one row per (method, OOD set): a list
    of dicts, or a pandas DataFrame when pandas is installed (as_frame=None) or as_frame=True."""
    sets = [("train", train), ("val_id", val_id), ("val_ood", val_ood), ("test_id", test_id)]
    f = [_features(n, s, head=head) for n, s in sets]
    if not isinstance(test_ood, dict) or not test_ood:
        raise Error("evaluate: test_ood must be a non-empty dict {name: features}")
    ood = [(str(n), _features(str(n), s, head=head)) for n, s in test_ood.items()]
    entries = []
    for key, values in (settings or {}).items():
        values = values if isinstance(values, (list, tuple)) else [values]
        entries.append("%s=%s" % (key, ",".join(repr(float(v)) for v in values)))
    w, b = _head(head)
    rows = _oodkit.evaluate(f[0], _labels(labels), f[1], f[2], f[3], ood, w, b, list(methods), entries, bool(tune),
                            "" if save_dir is None else os.fspath(save_dir))
    if as_frame is False:
        return rows
    try:
        import pandas
    except ImportError:
        if as_frame:
            raise
        return rows
    return pandas.DataFrame(rows)


class Heatmap:
    """The heatmap detector from a decoder trained by `oodkit heatmap fit --out DIR` (DIR, or the
    DIR/decoder.safetensors file): scores (higher = ID) and heatmaps for penultimate features [N, D]
    and logits [N, K] (or head=(W, b)) of the classifier it was trained for."""

    def __init__(self, path):
        self._h = _oodkit._Heatmap(os.fspath(path))

    feature_dim = property(lambda self: self._h.feature_dim)
    num_classes = property(lambda self: self._h.num_classes)

    def score(self, features, *, logits=None, head=None, batch=500):
        return self._h.score(_features("score", features, logits, None, head), int(batch))

    def heatmaps(self, features, *, logits=None, head=None, batch=500):
        """[N, 3, S, S] float32 in [-1, 1]."""
        return self._h.heatmaps(_features("heatmaps", features, logits, None, head), int(batch))
