"""oodkit.metrics against scikit-learn (AUROC, AUPR-In/Out, the OpenOOD FPR@95) and against the
sort-based fpr_and_fdr_at_recall of the Outlier-Exposure code (classic FPR@95), with and without ties."""
import numpy as np
import pytest

import oodkit

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def classic_fpr95(id_s, ood_s):
    """fpr_and_fdr_at_recall (Hendrycks et al.), ID positive, written out in NumPy."""
    y = np.r_[np.ones(len(id_s)), np.zeros(len(ood_s))]
    s = np.r_[id_s, ood_s].astype(np.float64)
    order = np.argsort(s, kind="mergesort")[::-1]
    s, y = s[order], y[order]
    distinct = np.where(np.diff(s))[0]
    thr_idx = np.r_[distinct, y.size - 1]
    tps = np.cumsum(y)[thr_idx]
    fps = 1 + thr_idx - tps
    recall = tps / tps[-1]
    last = tps.searchsorted(tps[-1])
    sl = slice(last, None, -1)
    recall, fps = np.r_[recall[sl], 1], np.r_[fps[sl], 0]
    cutoff = np.argmin(np.abs(recall - 0.95))
    return fps[cutoff] / np.sum(np.logical_not(y))


def openood_fpr95(id_s, ood_s):
    y = np.r_[np.zeros(len(id_s)), np.ones(len(ood_s))]
    fpr, tpr, _ = sklearn_metrics.roc_curve(y, -np.r_[id_s, ood_s], drop_intermediate=False)
    return fpr[np.argmax(tpr >= 0.95)]


def reference(id_s, ood_s):
    y = np.r_[np.ones(len(id_s)), np.zeros(len(ood_s))]
    s = np.r_[id_s, ood_s].astype(np.float64)
    return {"auroc": sklearn_metrics.roc_auc_score(y, s),
            "aupr_in": sklearn_metrics.average_precision_score(y, s),
            "aupr_out": sklearn_metrics.average_precision_score(1 - y, -s),
            "fpr95": classic_fpr95(id_s, ood_s),
            "fpr95_openood": openood_fpr95(id_s, ood_s)}


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_metrics_equal_sklearn(tied, dtype):
    rng = np.random.default_rng(7 + tied)
    for n, m in [(1000, 700), (40, 400), (100, 100), (57, 33)]:
        id_s = rng.normal(1.0, 1.0, n)
        ood_s = rng.normal(0.0, 1.2, m)
        if tied:  # heavy ties within and across the sets
            id_s, ood_s = np.round(id_s * 2) / 2, np.round(ood_s * 2) / 2
        id_s, ood_s = id_s.astype(dtype), ood_s.astype(dtype)
        got = oodkit.metrics(id_s, ood_s)
        want = reference(id_s, ood_s)
        for k, v in want.items():
            assert got[k] == pytest.approx(v, rel=1e-12, abs=1e-12), (k, n, m, tied)
        assert got["n_id"] == n and got["n_ood"] == m


def test_metrics_take_torch_tensors():
    torch = pytest.importorskip("torch")
    a, b = torch.randn(300) + 1, torch.randn(200)
    got = oodkit.metrics(a, b)
    assert got["auroc"] == pytest.approx(reference(a.numpy(), b.numpy())["auroc"], rel=1e-12)


def test_metrics_hand_worked_ties():
    # id {3, 2, 2}, ood {2, 1}: pairs (3>2, 3>1, 2=2, 2>1, 2=2, 2>1) -> (4 + 2 * 0.5) / 6
    assert oodkit.metrics([3.0, 2.0, 2.0], [2.0, 1.0])["auroc"] == pytest.approx(5 / 6, rel=1e-15)
