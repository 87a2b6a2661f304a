"""Bad inputs raise oodkit.Error (a ValueError) with oodkit's one-line message, naming the input;
internal errors map to RuntimeError; nothing crashes the interpreter."""
import ctypes

import numpy as np
import pytest

import oodkit
from oodkit import _oodkit

rng = np.random.default_rng(0)
Z = rng.normal(size=(50, 8)).astype(np.float32)
W, B = rng.normal(size=(3, 8)).astype(np.float32), np.zeros(3, np.float32)


def raises(match, f, *a, **kw):
    with pytest.raises(ValueError, match=match) as e:
        f(*a, **kw)
    assert isinstance(e.value, oodkit.Error) and "\n" not in str(e.value)
    return str(e.value)


def test_wrong_dtype():
    raises(r"train features: expected float32 or float64 values, got int32",
           oodkit.Detector("knn").fit, Z.astype(np.int32))
    raises(r"id_scores: expected float32 or float64 scores", oodkit.metrics, np.arange(5), np.ones(3))
    raises(r"labels: expected integer class indices, got float", oodkit.Detector("mahalanobis").fit, Z,
           np.zeros(50), head=(W, B))


def test_wrong_rank():
    raises(r"score features: expected 2-D features \[N, D\], got shape \[50\]",
           oodkit.Detector("msp").score, Z[:, 0], logits=Z[:, :3])
    raises(r"train maps: expected 4-D feature maps", oodkit.Detector("knn").fit, maps=Z)
    raises(r"ood_scores: expected a 1-D array of scores", oodkit.metrics, np.ones(4), np.ones((2, 2)))


def test_nan_rows():
    bad = Z.copy()
    bad[17, 3] = np.nan
    raises(r"train features: row 17 holds a non-finite value \(nan\)", oodkit.Detector("knn").fit, bad)
    raises(r"score logits: row 17 holds a non-finite value", oodkit.Detector("msp").score, logits=bad)
    raises(r"NaN|nan", oodkit.metrics, np.array([1.0, np.nan]), np.ones(3))
    # The last element, an infinity, in float64 (cast to float32 first) and in a 4-D maps array
    # (row = image index): the first bad element is located after the vectorised check fails.
    bad64 = Z.astype(np.float64)
    bad64[-1, -1] = -np.inf
    raises(r"train features: row 49 holds a non-finite value \(-inf\)", oodkit.Detector("knn").fit, bad64)
    maps = np.ones((6, 2, 3, 3), np.float32)
    maps[4, 1, 2, 0] = np.inf
    raises(r"score maps: row 4 holds a non-finite value \(inf\)", oodkit.Detector("nap").score, maps=maps)


def test_mismatched_lengths():
    raises(r"labels: 40 entries but the training features have 50 rows",
           oodkit.Detector("mahalanobis").fit, Z, np.zeros(40, np.int64), head=(W, B))
    raises(r"score: logits has 49 rows but the other inputs have 50",
           oodkit.Detector("gradnorm").score, Z, logits=Z[:49, :3])
    raises(r"head weight: shape \[3, 7\] does not match score features of dimension 8",
           oodkit.Detector("energy").score, Z, head=(W[:, :7], B))
    raises(r"labels: entry 0 is 5, outside the 3 classes",
           oodkit.Detector("mahalanobis").fit, Z, np.full(50, 5), head=(W, B))


def test_unfitted_and_unknown():
    raises(r"knn: not fitted; call fit\(\) first", oodkit.Detector("knn").score, Z)
    raises(r"knn: not fitted; nothing to save", oodkit.Detector("knn").save, "/tmp/never")
    raises(r"unknown detector 'knnn'", oodkit.Detector, "knnn")
    raises(r"knn: no setting 'kk'; its settings: k", oodkit.Detector, "knn", kk=3)
    raises(r"detector 'odin' runs the network", oodkit.Detector, "odin")
    raises(r"react.fit: needs head=\(W, b\)", oodkit.Detector("react").fit, Z, heldout=Z)
    raises(r"vim.score: needs logits=", oodkit.Detector("vim").fit(Z, head=(W, B)).score, Z)
    raises(r"knn: k = 60 but the feature bank holds 50", oodkit.Detector("knn", k=60).fit(Z).score, Z)


def test_bad_files(tmp_path):
    raises(r"cannot open detector state '.*/missing.json'", oodkit.load, tmp_path / "missing")
    (tmp_path / "bad.json").write_text("{not json")
    raises(r"'.*/bad.json' is not valid JSON", oodkit.load, tmp_path / "bad")
    oodkit.Detector("knn", k=3).fit(Z).save(tmp_path / "knn")
    (tmp_path / "knn.bank.safetensors").write_bytes(b"\x01")
    raises(r"knn.bank.safetensors", oodkit.load, tmp_path / "knn")
    raises(r"decoder.safetensors", oodkit.Heatmap, tmp_path)


def test_error_kinds_map_to_python_exceptions():
    assert issubclass(oodkit.Error, ValueError) and issubclass(oodkit.InternalError, RuntimeError)
    with pytest.raises(RuntimeError, match=r"internal error: planted \(.*\); please report this"):
        _oodkit._raise("internal")
    with pytest.raises(MemoryError, match="planted"):
        _oodkit._raise("memory")
    with pytest.raises(oodkit.Error, match="^planted$"):
        _oodkit._raise("user")


class _FakeCudaArray:
    """A DLPack producer that reports device CUDA (kDLCUDA = 2, device 0) for host memory: what a
    torch CUDA tensor looks like to the module, without a GPU. Only for a CPU build, which must
    refuse it before reading the memory."""

    class _Tensor(ctypes.Structure):
        _fields_ = [("data", ctypes.c_void_p), ("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32),
                    ("ndim", ctypes.c_int32), ("code", ctypes.c_uint8), ("bits", ctypes.c_uint8),
                    ("lanes", ctypes.c_uint16), ("shape", ctypes.POINTER(ctypes.c_int64)),
                    ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64),
                    ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p)]

    def __init__(self, host):
        self.host = np.ascontiguousarray(host)
        self.shape = (ctypes.c_int64 * host.ndim)(*host.shape)
        self.kept = []

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, **kw):
        code = {"f": 2, "i": 0}[self.host.dtype.kind]  # kDLFloat, kDLInt
        t = self._Tensor(self.host.ctypes.data, 2, 0, self.host.ndim, code, self.host.dtype.itemsize * 8, 1,
                         self.shape, None, 0, None, None)
        self.kept.append(t)
        new = ctypes.pythonapi.PyCapsule_New
        new.restype, new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        return new(ctypes.addressof(t), b"dltensor", None)


@pytest.mark.skipif(oodkit.with_cuda, reason="a CUDA build reads CUDA tensors (the fake points at host memory)")
def test_cuda_tensor_on_a_cpu_build():
    cuda = (r"a CUDA tensor, but this oodkit build has no CUDA backend "
            r"\(build with -DOODKIT_CUDA=ON, or pass \.cpu\(\)\)")
    raises(r"train features: " + cuda, oodkit.Detector("knn").fit, _FakeCudaArray(Z))
    knn = oodkit.Detector("knn").fit(Z)
    raises(r"score features: " + cuda, knn.score, _FakeCudaArray(Z))
    raises(r"score logits: " + cuda, oodkit.Detector("msp").score, logits=_FakeCudaArray(Z[:, :3]))
    raises(r"id_scores: " + cuda, oodkit.metrics, _FakeCudaArray(Z[:, 0]), Z[:, 1])
    raises(r"head weight: " + cuda, oodkit.Detector("energy").score, Z, head=(_FakeCudaArray(W), B))
    # the CPU copy of the same values is accepted
    np.testing.assert_array_equal(knn.score(Z), oodkit.Detector("knn").fit(Z).score(Z))
