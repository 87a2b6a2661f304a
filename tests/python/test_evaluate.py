"""oodkit.evaluate (the validation-tuned protocol on arrays) against the same steps done by hand
with Detector and metrics: each method's setting is the grid's best validation AUROC (first on
ties), and the test figures are the metrics of that setting's scores."""
import numpy as np
import pytest

import oodkit


def sets(seed=0, d=16, k=4):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2.5, (k, d))

    def id_set(n):
        y = rng.integers(0, k, n)
        return np.abs(centres[y] + rng.normal(0, 1, (n, d))).astype(np.float32), y

    def ood_set(n, shift):
        return np.abs(rng.normal(shift, 1.5, (n, d))).astype(np.float32)

    train, labels = id_set(400)
    return dict(train=train, labels=labels, val_id=id_set(150)[0], val_ood=ood_set(150, 0.5),
                test_id=id_set(200)[0], test_ood={"near": ood_set(200, 0.8), "far": ood_set(200, 2.0)},
                head=(rng.normal(0, 0.4, (k, d)).astype(np.float32), rng.normal(0, 0.1, k).astype(np.float32)))


def test_evaluate_matches_the_protocol_by_hand(tmp_path):
    s = sets()
    rows = oodkit.evaluate(s["train"], s["labels"], s["val_id"], s["val_ood"], s["test_id"], s["test_ood"],
                           head=s["head"], methods=["knn", "react", "energy", "mahalanobis"], as_frame=False,
                           settings={"knn.k": [1, 5, 20, 50]}, save_dir=tmp_path)
    assert [(r["method"], r["ood_set"]) for r in rows] == [
        (m, o) for m in ("knn", "react", "energy", "mahalanobis") for o in ("near", "far")]
    for r in rows:
        name = r["method"]
        grid = {"knn": [{"k": k} for k in (1, 5, 20, 50)], "react": [{"p": p} for p in (80, 85, 90, 95, 99)]}.get(
            name, [{}])
        best, best_auroc = None, -1
        for p in grid:
            d = oodkit.Detector(name, **p).fit(s["train"], s["labels"], heldout=s["val_id"], head=s["head"])
            a = oodkit.metrics(d.score(s["val_id"], head=s["head"]), d.score(s["val_ood"], head=s["head"]))["auroc"]
            if a > best_auroc:
                best, best_auroc = p, a
        assert r["params"] == {k: float(v) for k, v in best.items()}, name
        assert r["val_auroc"] == pytest.approx(best_auroc, rel=1e-12)
        d = oodkit.Detector(name, **best).fit(s["train"], s["labels"], heldout=s["val_id"], head=s["head"])
        m = oodkit.metrics(d.score(s["test_id"], head=s["head"]), d.score(s["test_ood"][r["ood_set"]], head=s["head"]))
        for key in ("auroc", "aupr_in", "aupr_out", "fpr95", "fpr95_openood"):
            assert r[key] == pytest.approx(m[key], rel=1e-12), (name, key)
    # save_dir holds each method as `oodkit eval` saves it, with the kept setting
    knn = next(r for r in rows if r["method"] == "knn")
    assert oodkit.load(tmp_path / "knn").params == knn["params"]


def test_evaluate_refuses_bad_sets():
    s = sets(1)
    with pytest.raises(oodkit.Error, match="test_ood must be a non-empty dict"):
        oodkit.evaluate(s["train"], s["labels"], s["val_id"], s["val_ood"], s["test_id"], {}, head=s["head"])
    with pytest.raises(oodkit.Error, match="evaluate: train needs features and logits"):
        oodkit.evaluate(s["train"], s["labels"], s["val_id"], {"maps": None, "features": s["val_ood"]}, s["test_id"],
                        s["test_ood"], methods=["knn"])
