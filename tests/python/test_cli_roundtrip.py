"""Detectors cross the command line / Python boundary both ways, with bitwise-equal scores:
fitted by `oodkit eval` and scored in Python, fitted in Python and scored by `oodkit score`, on
the features `oodkit score --features-out` extracted for the same images."""
import os
import shutil
import subprocess

import numpy as np

import oodkit
from conftest import CLI_FUSE, CLI_METHODS, read_score_csv, read_scored_rows


def as_f32(column):
    # The CSV has 9 significant digits: float32 scores round-trip exactly.
    return column.astype(np.float32)


def test_cli_fitted_detectors_score_bitwise_equal_in_python(cli):
    _, out, sets, _ = cli
    for tag, (feats, csv) in sets.items():
        f, ref = read_scored_rows(feats), read_score_csv(csv)
        for m in CLI_METHODS:
            d = oodkit.load(os.path.join(out, "detectors", m))
            assert d.name == m and d.fitted
            s = d.score(f["z"], logits=f["logits"])
            assert s.dtype == np.float32 and s.shape == (300,)
            np.testing.assert_array_equal(s, as_f32(ref[m]), err_msg="%s on %s" % (m, tag))


def test_cli_fusions_score_equal_in_python(cli):
    # eval's --fuse rows (scales fitted on its held-out ID set), loaded with their components;
    # the CSV holds float64 scores to 9 significant digits.
    _, out, sets, _ = cli
    for tag, (feats, csv) in sets.items():
        f, ref = read_scored_rows(feats), read_score_csv(csv)
        for m in CLI_FUSE.values():
            d = oodkit.load(os.path.join(out, "detectors", m))
            assert d.name == m and d.fitted and len(d.components) == m.count("+") + 1
            s = d.score(f["z"], logits=f["logits"])
            assert s.dtype == np.float64 and s.shape == (300,)
            np.testing.assert_allclose(s, ref[m], rtol=1e-8, atol=0, err_msg="%s on %s" % (m, tag))


def test_python_fitted_fusion_scores_equal_in_the_cli(cli, tmp_path):
    binary, out, sets, _ = cli
    train, query = read_scored_rows(sets["cifar10"][0]), read_scored_rows(sets["isun"][0])
    head = (train["head.weight"], train["head.bias"])
    f = oodkit.fuse(["knn", "energy"], "p", weights=[0.7, 0.3], settings={"knn.k": 5}).fit(
        train["z"][:200], heldout=train["z"][200:], head=head)
    folder = tmp_path / "detectors"
    shutil.copytree(os.path.join(out, "detectors"), folder)
    f.save(folder / f.name)  # and its components knn (k = 5), energy beside it
    csv = tmp_path / "f.csv"
    subprocess.run([binary, "score", "--detectors", str(folder), "--data", "isun", "--limit", "300", "--methods",
                    f.name, "--out", str(csv)], check=True, stdout=subprocess.DEVNULL)
    np.testing.assert_allclose(f.score(query["z"], logits=query["logits"]), read_score_csv(csv)[f.name], rtol=1e-8,
                               atol=0)


def test_python_fitted_detectors_score_bitwise_equal_in_the_cli(cli, tmp_path):
    binary, out, sets, _ = cli
    train, query = read_scored_rows(sets["cifar10"][0]), read_scored_rows(sets["isun"][0])
    head = (train["head.weight"], train["head.bias"])
    fitted = {
        "knn": oodkit.Detector("knn", k=7).fit(train["z"]),
        "mahalanobis": oodkit.Detector("mahalanobis").fit(train["z"], train["labels"], head=head),
        "vim": oodkit.Detector("vim").fit(train["z"], head=head),
        "react": oodkit.Detector("react", p=85).fit(train["z"], heldout=train["z"][:150], head=head),
        "dice": oodkit.Detector("dice", p=0.5).fit(train["z"], head=head),
        "ash_s": oodkit.Detector("ash_s", p=80).fit(head=head),
    }
    folder = tmp_path / "detectors"
    shutil.copytree(os.path.join(out, "detectors"), folder)  # protocol.json, classifier, thresholds
    for m, d in fitted.items():
        d.save(folder / m)
    csv = tmp_path / "s.csv"
    subprocess.run([binary, "score", "--detectors", str(folder), "--data", "isun", "--limit", "300", "--methods",
                    ",".join(fitted), "--out", str(csv)], check=True, stdout=subprocess.DEVNULL)
    ref, cli_fitted = read_score_csv(csv), read_score_csv(sets["isun"][1])
    for m, d in fitted.items():
        np.testing.assert_array_equal(d.score(query["z"], logits=query["logits"]), as_f32(ref[m]), err_msg=m)
        # The CLI used the Python-fitted state, not eval's (other fit set or setting).
        assert not np.array_equal(ref[m], cli_fitted[m]), m
    # And what Python saved loads back in Python with its setting.
    again = oodkit.load(folder / "knn")
    assert again.params == {"k": 7.0}
    np.testing.assert_array_equal(again.score(query["z"]), fitted["knn"].score(query["z"]))


def test_heatmap_scores_bitwise_equal_the_cli(cli):
    _, out, sets, hm = cli
    f, ref = read_scored_rows(sets["isun"][0]), read_score_csv(sets["isun"][1])
    h = oodkit.Heatmap(hm)
    assert (h.feature_dim, h.num_classes) == (64, 10)
    s = h.score(f["z"], logits=f["logits"])
    np.testing.assert_array_equal(s, as_f32(ref["heatmap"]))
    # the saved heatmap detector (eval's detectors/heatmap + its decoder) loads too
    np.testing.assert_array_equal(oodkit.load(os.path.join(out, "detectors", "heatmap")).score(
        f["z"], logits=f["logits"]), s)
    # the score is -(1/(H W)) sum over pixels of max over channels |h| (docs/heatmap.md)
    maps = h.heatmaps(f["z"][:20], logits=f["logits"][:20])
    assert maps.shape[:2] == (20, 3) and maps.dtype == np.float32 and np.abs(maps).max() <= 1
    want = -np.abs(maps.astype(np.float64)).max(1).mean((1, 2))
    np.testing.assert_allclose(s[:20], want, rtol=1e-6)
    head = (f["head.weight"], f["head.bias"])  # logits from the head: the same scores
    np.testing.assert_array_equal(h.score(f["z"], head=head), s)
