"""No copies of contiguous float32 inputs: the oodkit tensor an input becomes reads the caller's
memory (the debug hook _oodkit._tensor_address converts exactly as every function does); strided
and float64 inputs are converted and give the same scores as their contiguous float32 form."""
import numpy as np
import pytest

import oodkit
from oodkit import _oodkit


def test_contiguous_float32_numpy_is_not_copied():
    x = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)
    assert _oodkit._tensor_address(x) == x.ctypes.data
    assert _oodkit._float_address(x) == x.ctypes.data  # the float32 path too (no cast, no copy)
    y = np.random.default_rng(1).normal(size=1000)  # float64 metrics input: read as is
    assert _oodkit._tensor_address(y) == y.ctypes.data


def test_contiguous_float32_torch_is_not_copied():
    torch = pytest.importorskip("torch")
    x = torch.randn(64, 16)
    assert _oodkit._float_address(x) == x.data_ptr()
    x.requires_grad_(True)
    z = oodkit._array(x)  # detached view, same memory
    assert _oodkit._float_address(z) == x.data_ptr()


def test_strided_and_float64_inputs_are_converted_correctly():
    rng = np.random.default_rng(2)
    big = rng.normal(size=(200, 48)).astype(np.float32)
    strided = big[:, ::2]  # not contiguous
    assert not strided.flags.c_contiguous
    assert _oodkit._tensor_address(strided) != big.ctypes.data  # a contiguous copy
    dense = np.ascontiguousarray(strided)
    knn = oodkit.Detector("knn", k=5).fit(dense[:150])
    np.testing.assert_array_equal(knn.score(strided[150:]), knn.score(dense[150:]))
    np.testing.assert_array_equal(oodkit.Detector("knn", k=5).fit(strided[:150]).score(dense[150:]),
                                  knn.score(dense[150:]))
    np.testing.assert_array_equal(knn.score(dense[150:].astype(np.float64)), knn.score(dense[150:]))
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(big)[:, ::2]
    np.testing.assert_array_equal(knn.score(t[150:]), knn.score(dense[150:]))


def test_results_are_numpy_arrays_that_own_their_memory():
    z = np.random.default_rng(3).normal(size=(30, 8)).astype(np.float32)
    s = oodkit.Detector("knn", k=3).fit(z).score(z)
    assert isinstance(s, np.ndarray) and s.dtype == np.float32 and s.shape == (30,)
    del z
    assert np.isfinite(s).all()


def test_fitted_state_does_not_alias_the_callers_arrays():
    # Detectors that keep inputs (the head; ReAct's held-out features; DICE's training features)
    # keep copies: reusing the arrays after fit() changes nothing.
    rng = np.random.default_rng(4)
    z = np.abs(rng.normal(size=(100, 8))).astype(np.float32)
    w, b = rng.normal(size=(3, 8)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    query = np.abs(rng.normal(size=(10, 8))).astype(np.float32)
    for name in ("react", "dice", "ash_s", "vim"):
        ref = oodkit.Detector(name).fit(z.copy(), heldout=z.copy(), head=(w.copy(), b.copy()))
        d = oodkit.Detector(name).fit(z2 := z.copy(), heldout=(h2 := z.copy()), head=(w2 := w.copy(), b2 := b.copy()))
        for a in (z2, h2, w2, b2):
            a[:] = 0
        d.set_params(**d.params)  # re-derives what depends on the setting from the kept state
        np.testing.assert_array_equal(d.score(query, head=(w, b)), ref.score(query, head=(w, b)), err_msg=name)
