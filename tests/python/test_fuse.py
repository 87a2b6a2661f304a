"""Fusions of several detectors from Python (oodkit.fuse, Detector("fuse_z(knn+energy)"), the rows
`oodkit eval --fuse` adds): against the formulas of docs/methods.md ("Fusing any detectors")
recomputed in NumPy from the components' own scores, saved and loaded in eval's format, and
refused with one-line errors. The command-line round trip is in test_cli_roundtrip.py."""
import re

import numpy as np
import pytest

import oodkit
from test_detectors import data


def sets():
    z, labels, w, b = data(11, n=500)
    return dict(train=z[:250], labels=labels[:250], heldout=z[250:400], query=z[400:] * 1.1, head=(w, b))


def component_scores(s, names, settings=None):
    """Each component fitted alone (as the fusion fits it) and scored on heldout and query, float64."""
    out = {}
    for n in names:
        p = {k.split(".", 1)[1]: v for k, v in (settings or {}).items() if k.startswith(n + ".")}
        d = oodkit.Detector(n, **p).fit(s["train"], s["labels"], heldout=s["heldout"], head=s["head"])
        out[n] = (d.score(s["heldout"], head=s["head"]).astype(np.float64),
                  d.score(s["query"], head=s["head"]).astype(np.float64))
    return out


def p_value(x, held):
    """(1 + #{held <= x}) / (n + 1), the conservative empirical p-value, by a plain loop."""
    return np.array([(1 + np.sum(held <= v)) / (len(held) + 1) for v in x])


@pytest.mark.parametrize("kind", ["z", "p", "pmean"])
def test_fuse_matches_the_formulas(kind):
    s = sets()
    names, wts = ["knn", "energy", "mahalanobis"], [0.5, 0.2, 0.3]
    f = oodkit.fuse(names, kind, weights=wts, settings={"knn.k": 7}).fit(
        s["train"], s["labels"], heldout=s["heldout"], head=s["head"])
    assert f.name == "fuse_%s(knn+energy+mahalanobis)" % kind and f.components == names and f.fitted
    assert f.params == {"w1": 0.5, "w2": 0.2, "w3": 0.3}
    got = f.score(s["query"], head=s["head"])
    assert got.dtype == np.float64 and got.shape == (100,)
    parts = component_scores(s, names, {"knn.k": 7})
    want = np.zeros(100)
    for w, n in zip(wts, names):
        held, q = parts[n]
        if kind == "z":
            want += 3 * w * (q - held.mean()) / held.std()  # population std
        elif kind == "p":
            want += 2 * 3 * w * np.log(p_value(q, held))
        else:
            want += w * p_value(q, held)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_fuse_default_weights_are_equal_and_names_agree():
    s = sets()
    a = oodkit.fuse("knn+energy").fit(s["train"], heldout=s["heldout"], head=s["head"])
    b = oodkit.Detector("fuse_z(knn+energy)").fit(s["train"], heldout=s["heldout"], head=s["head"])
    assert a.params == {"w1": 0.5, "w2": 0.5}
    np.testing.assert_array_equal(a.score(s["query"], head=s["head"]), b.score(s["query"], head=s["head"]))
    parts = component_scores(s, ["knn", "energy"])
    want = sum((q - h.mean()) / h.std() for h, q in parts.values())  # K w_i = 1
    np.testing.assert_allclose(a.score(s["query"], head=s["head"]), want, rtol=1e-12, atol=1e-12)
    # Other weights afterwards (set_params), and eval's weight-tuned name with given weights.
    a.set_params(w1=0.8, w2=0.2)
    h0, q0 = parts["knn"]
    h1, q1 = parts["energy"]
    want = 2 * (0.8 * (q0 - h0.mean()) / h0.std() + 0.2 * (q1 - h1.mean()) / h1.std())
    np.testing.assert_allclose(a.score(s["query"], head=s["head"]), want, rtol=1e-12, atol=1e-12)
    c = oodkit.fuse(["knn", "energy"], "zw", weights=[0.8, 0.2]).fit(s["train"], heldout=s["heldout"], head=s["head"])
    assert c.name == "fuse_zw(knn+energy)"
    np.testing.assert_allclose(c.score(s["query"], head=s["head"]), want, rtol=1e-12, atol=1e-12)


def test_fuse_saves_and_loads_with_its_components(tmp_path):
    s = sets()
    f = oodkit.fuse(["knn", "vim"], "p", weights=[0.25, 0.75], settings={"knn.k": 3}).fit(
        s["train"], heldout=s["heldout"], head=s["head"])
    f.save(tmp_path / f.name)
    for n in ("fuse_p(knn+vim)", "knn", "vim"):  # eval's detectors/ layout: components by name
        assert (tmp_path / (n + ".json")).exists(), n
    g = oodkit.load(tmp_path / f.name)
    assert g.name == f.name and g.fitted and g.params == {"w1": 0.25, "w2": 0.75}
    np.testing.assert_array_equal(g.score(s["query"], head=s["head"]), f.score(s["query"], head=s["head"]))
    assert oodkit.load(tmp_path / "knn").params == {"k": 3.0}


def test_loaded_fusion_set_params_changes_only_the_given_keys(tmp_path):
    # A loaded detector keeps its saved setting: set_params(w1, w2) leaves the saved w3 (0.2), not
    # the registered default (1/3, which would also break the sum-to-one check).
    s = sets()
    names = ["knn", "energy", "mahalanobis"]
    f = oodkit.fuse(names, "z", weights=[0.5, 0.3, 0.2]).fit(s["train"], s["labels"], heldout=s["heldout"],
                                                              head=s["head"])
    f.save(tmp_path / f.name)
    g = oodkit.load(tmp_path / f.name).set_params(w1=0.3, w2=0.5)
    assert g.params == {"w1": 0.3, "w2": 0.5, "w3": 0.2}
    want = oodkit.fuse(names, "z", weights=[0.3, 0.5, 0.2]).fit(s["train"], s["labels"], heldout=s["heldout"],
                                                                 head=s["head"])
    np.testing.assert_array_equal(g.score(s["query"], head=s["head"]), want.score(s["query"], head=s["head"]))


def test_fuse_in_evaluate():
    s = sets()
    z, _, _, _ = data(12, n=200)
    rows = oodkit.evaluate(s["train"], s["labels"], s["heldout"], z[:100] + 1.0, s["query"], {"far": z[100:] + 2.0},
                           head=s["head"], methods=["knn", "energy", "fuse_z(knn+energy)"], as_frame=False)
    assert [r["method"] for r in rows] == ["knn", "energy", "fuse_z(knn+energy)"]


def raises(pattern, fn, *a, **k):
    with pytest.raises(oodkit.Error, match=pattern):
        fn(*a, **k)


def test_fuse_refusals():
    s = sets()
    raises(r"needs heldout=", oodkit.fuse(["knn", "energy"]).fit, s["train"], head=s["head"])
    raises(r"not fitted", oodkit.fuse(["knn", "energy"]).score, s["query"], head=s["head"])
    raises(r"unknown method 'nope'", oodkit.fuse, ["knn", "nope"])
    raises(r"unknown combination 'q'", oodkit.fuse, ["knn", "energy"], "q")
    raises(r"named twice", oodkit.fuse, ["knn", "knn"])
    raises(r"1 component", oodkit.fuse, ["knn"])
    raises(r"3 weights for 2 methods", oodkit.fuse, ["knn", "energy"], weights=[0.2, 0.3, 0.5])
    raises(r"sum to 0\.7, not 1", oodkit.fuse, ["knn", "energy"], weights=[0.2, 0.5])
    raises(r"w1 = -0\.5 is negative", oodkit.fuse, ["knn", "energy"], weights=[-0.5, 1.5])
    raises(r"no setting 'w3'", oodkit.Detector, "fuse_z(knn+energy)", w3=0.1)
    raises(r"setting 'dice\.p' names 'dice', which is not one of its components: knn, energy",
           oodkit.Detector, "fuse_z(knn+energy)", **{"dice.p": 0.5})
    raises(re.escape("fuse_z(knn+odin)") + r"' runs the network", oodkit.fuse, ["knn", "odin"])
    f = oodkit.fuse(["knn", "energy"]).fit(s["train"], heldout=s["heldout"], head=s["head"])
    raises(r"sum to 1\.2", f.set_params, w1=0.7)
    assert f.params == {"w1": 0.5, "w2": 0.5}  # a refused setting changes nothing
    # a component needing logits on held-out rows without them names the set
    raises(r"energy\.heldout: needs logits=", oodkit.fuse(["knn", "energy"]).fit, s["train"], logits=s["train"][:, :5],
           heldout=s["heldout"])
