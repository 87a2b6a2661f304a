"""_oodkit._native_seconds(): the debug hook that bench/bench_python_vs_pytorch_ood.py uses to
measure a call's overhead (wall time minus native time). It must count the native work of fit and
score (so the overhead is not overstated), never more than the call's wall time (so it is not
understated), and nothing for argument conversion alone."""
import time

import numpy as np

import oodkit
from oodkit import _oodkit


def _timed(f):
    n0 = _oodkit._native_seconds()
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0, _oodkit._native_seconds() - n0


def test_native_time_counts_fit_and_score_within_their_wall_time():
    g = np.random.default_rng(3)
    z = np.maximum(g.standard_normal((3000, 64), dtype=np.float32), 0)
    y = np.arange(3000, dtype=np.int64) % 10
    head = (g.standard_normal((10, 64), dtype=np.float32), np.zeros(10, np.float32))
    det, wall, native = _timed(lambda: oodkit.Detector("mahalanobis").fit(z, labels=y, head=head))
    assert 0.0 < native <= wall
    _, wall, native = _timed(lambda: det.score(z))
    assert 0.0 < native <= wall
    # A fusion's components and its combination are counted too.
    fused = oodkit.Detector("fuse_z(knn+energy)")
    fused.fit(z, head=head, heldout=z[:500])
    _, wall, native = _timed(lambda: fused.score(z, head=head))
    assert 0.0 < native <= wall


def test_argument_conversion_alone_is_not_native_time():
    z = np.ones((2000, 32), np.float32)
    _, _, native = _timed(lambda: oodkit._features("x", z, None, None, None))
    assert native == 0.0
