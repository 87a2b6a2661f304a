"""CUDA tensors on a CUDA build (skipped without one, or without torch and a visible GPU): read in
place like CPU arrays, checked for NaN/Inf on the device (the bad row still named), and scored as
their CPU copies are (within float32 rounding: the GPU kernels sum in another order)."""
import numpy as np
import pytest

import oodkit
from oodkit import _oodkit

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not (oodkit.with_cuda and torch.cuda.is_available()),
                                reason="needs a CUDA build of oodkit and a visible GPU")


def test_cuda_tensors_are_read_in_place():
    x = torch.randn(64, 16, device="cuda")
    assert _oodkit._float_address(x) == x.data_ptr()


def test_cuda_non_finite_rows_are_named():
    x = torch.randn(50, 8, device="cuda")
    x[17, 3] = float("nan")
    with pytest.raises(ValueError, match=r"train features: row 17 holds a non-finite value \(nan\)"):
        oodkit.Detector("knn").fit(x)


def test_cuda_scores_match_the_cpu():
    g = torch.Generator().manual_seed(0)
    bank, q = torch.randn(300, 32, generator=g), torch.randn(40, 32, generator=g)
    w, b = torch.randn(5, 32, generator=g), torch.zeros(5)
    for name, fit in (("knn", {}), ("energy", {})):
        cpu = oodkit.Detector(name).fit(bank, head=(w, b), **fit).score(q, head=(w, b))
        gpu = oodkit.Detector(name).fit(bank.cuda(), head=(w.cuda(), b.cuda()), **fit).score(
            q.cuda(), head=(w.cuda(), b.cuda()))
        np.testing.assert_allclose(np.asarray(gpu), cpu, rtol=1e-4, atol=1e-5, err_msg=name)
