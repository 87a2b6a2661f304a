"""Detector scores on arrays against NumPy written from the definitions (docs/methods.md), in
float64: MSP, MaxLogit, Energy, KNN, Mahalanobis, ReAct; fusions against their components."""
import numpy as np
import pytest

import oodkit


def data(seed=0, n=400, d=24, k=5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    centres = rng.normal(0, 2, (k, d))
    z = np.abs(centres[labels] + rng.normal(0, 1, (n, d))).astype(np.float32)  # ReLU-like features
    w = rng.normal(0, 0.3, (k, d)).astype(np.float32)
    b = rng.normal(0, 0.1, k).astype(np.float32)
    return z, labels, w, b


def logsumexp(x):
    m = x.max(1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(1, keepdims=True)))[:, 0]


def close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_logit_scores():
    z, _, w, b = data(1)
    logits = z.astype(np.float64) @ w.T + b
    close(oodkit.Detector("maxlogit").score(logits=logits.astype(np.float32)), logits.max(1))
    close(oodkit.Detector("energy").score(logits=logits.astype(np.float32)), logsumexp(logits))
    close(oodkit.Detector("msp").score(logits=logits.astype(np.float32)), np.exp(logits.max(1) - logsumexp(logits)))
    # head=(W, b) computes the logits
    close(oodkit.Detector("energy").score(z, head=(w, b)), logsumexp(logits))


@pytest.mark.parametrize("k", [1, 5, 50])
def test_knn(k):
    z, _, _, _ = data(2)
    bank, query = z[:300].astype(np.float64), z[300:].astype(np.float64) + 0.3
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    dist = np.sqrt(np.maximum(((query[:, None, :] - bank[None]) ** 2).sum(-1), 0))
    want = -np.sort(dist, axis=1)[:, k - 1]
    got = oodkit.Detector("knn", k=k).fit(z[:300]).score(z[300:] + 0.3)
    close(got, want)


def test_mahalanobis():
    z, labels, w, b = data(3)
    zf, zq = z[:300].astype(np.float64), z[300:].astype(np.float64)
    y = labels[:300]
    mu = np.stack([zf[y == c].mean(0) for c in range(5)])
    centred = zf - mu[y]
    prec = np.linalg.pinv(centred.T @ centred / len(zf), hermitian=True)
    d = np.stack([np.einsum("nd,de,ne->n", zq - mu[c], prec, zq - mu[c]) for c in range(5)], 1)
    got = oodkit.Detector("mahalanobis").fit(z[:300], labels[:300], head=(w, b)).score(z[300:])
    close(got, -d.min(1))


def test_react():
    z, _, w, b = data(4)
    held = z[:200].astype(np.float64)
    c = np.percentile(held.ravel(), 90)  # ReAct's clip: the 90th percentile of held-out activations
    zq = np.minimum(z[200:].astype(np.float64), c)
    got = oodkit.Detector("react", p=90).fit(z[:100], heldout=z[:200], head=(w, b)).score(z[200:])
    close(got, logsumexp(zq @ w.T.astype(np.float64) + b))


def test_settings_change_scores_and_are_checked():
    z, _, _, _ = data(5)
    d = oodkit.Detector("knn", k=1).fit(z[:300])
    s1 = d.score(z[300:])
    s10 = d.set_params(k=10).score(z[300:])
    assert d.params == {"k": 10.0} and not np.array_equal(s1, s10)
    np.testing.assert_array_equal(s10, oodkit.Detector("knn", k=10).fit(z[:300]).score(z[300:]))


def test_fusion_combines_components(tmp_path):
    rng = np.random.default_rng(6)
    maps = np.abs(rng.normal(0, 1, (50, 8, 4, 4))).astype(np.float32)
    w, b = rng.normal(0, 0.3, (5, 8)).astype(np.float32), np.zeros(5, np.float32)
    fused = oodkit.Detector("nap_e", w=0.3)
    assert fused.components == ["energy", "nap"]
    s = fused.score(maps=maps, head=(w, b))
    e = oodkit.Detector("energy").score(maps=maps, head=(w, b)).astype(np.float64)
    nap = oodkit.Detector("nap").score(maps=maps).astype(np.float64)
    # geometric fusion s_energy^w * s_nap^(1 - w) (docs/methods.md; both positive here)
    assert (e > 0).all() and (nap > 0).all()
    close(s, e ** 0.3 * nap ** 0.7)
    fused.save(tmp_path / "nap_e")  # with its components beside it
    np.testing.assert_array_equal(oodkit.load(tmp_path / "nap_e").score(maps=maps, head=(w, b)), s)


def test_every_array_method_fits_and_scores():
    z, labels, w, b = data(7, n=300)
    maps = np.repeat(np.repeat(z[:, :, None, None], 2, 2), 2, 3)  # [N, D, 2, 2], mean over space = z
    for name in oodkit.methods():
        d = oodkit.Detector(name)
        d.fit(maps=maps[:200], labels=labels[:200], heldout=z[200:250], head=(w, b))
        s = d.score(maps=maps[250:], head=(w, b))
        assert s.shape == (50,) and np.isfinite(s).all(), name
