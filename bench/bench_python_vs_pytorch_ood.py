"""Fit + score on the CPU from Python: oodkit's package vs pytorch-ood, same features, same 2 threads.

Issue 24's speed check (not part of CI; needs `pip install pytorch-ood`, torch, scikit-learn, oodkit):
  KNN          k = 50, bank 50,000 x 512, 10,000 queries
  Mahalanobis  fitted on the same 50,000 x 512 with 10 class labels, scores the 10,000 queries
  ViM          fitted on the same 50,000 (head W [10, 512], b [10]; D_p = 256 = oodkit's default
               for D = 512, pytorch-ood's d), scores the 10,000 queries (logits from the head on both
               sides: oodkit's score(z, head=(W, b)), pytorch-ood's predict_features(z))
Features: a seeded ReLU'd Gaussian mixture (10 classes), float32, C-contiguous; pytorch-ood gets
torch.from_numpy views of the same arrays (no copies on either side).

Threads: OMP_NUM_THREADS = MKL_NUM_THREADS = OPENBLAS_NUM_THREADS = 2 (set here before any import;
oodkit's OpenMP, scikit-learn's OpenMP kernels that pytorch-ood's KNN calls), torch.set_num_threads(2).
Each repetition runs every (method, library) pair in turn (interleaved, so that load changes hit
both); the median over --reps repetitions is reported.

Call overhead, measured on the large calls themselves: the package counts the seconds spent in
native detector work (_oodkit._native_seconds(): fit, score, logits from a head), so a call's
overhead is its wall time minus that growth: the Python wrapper, nanobind's argument conversion, the
input checks (dtype, shape, a vectorised finiteness pass over the features) and the result array.
overhead % = overhead / native time. (Until 2026-12-07's fourth session this was estimated from
calls on tiny inputs, which missed a size-dependent cost: the finiteness check was a scalar loop
that took 0.1 s on the 50,000 x 512 features.) The fixed cost of a call on tiny inputs (fit on
64 x 8 features, 10 classes; score 1 row) is still printed.

  OMP_NUM_THREADS=2 python bench/bench_python_vs_pytorch_ood.py [--reps 3] [--json out.json]
"""
import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "2"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import oodkit  # noqa: E402
import pytorch_ood  # noqa: E402
import sklearn  # noqa: E402
from pytorch_ood.detector import KNN, Mahalanobis, ViM  # noqa: E402

torch.set_num_threads(2)


def make_features(n_bank=50000, n_query=10000, dim=512, classes=10, seed=0):
    g = np.random.default_rng(seed)
    means = g.normal(0.0, 1.0, (classes, dim)).astype(np.float32) + 0.5
    y = g.integers(0, classes, n_bank)
    bank = np.maximum(means[y] + g.standard_normal((n_bank, dim), dtype=np.float32), 0)
    yq = g.integers(0, classes, n_query)
    q = np.maximum(means[yq] + 1.3 * g.standard_normal((n_query, dim), dtype=np.float32), 0)
    w = (g.normal(0.0, 1.0, (classes, dim)) / np.sqrt(dim)).astype(np.float32)
    b = g.normal(0.0, 0.1, classes).astype(np.float32)
    return (np.ascontiguousarray(bank), y.astype(np.int64), np.ascontiguousarray(q), w, b)


def runners(bank, y, q, w, b):
    """(method, library) -> (fit, score) callables; fit returns the fitted object score uses."""
    tb, ty, tq, tw, tb_ = (torch.from_numpy(a) for a in (bank, y, q, w, b))
    head = (w, b)
    d = 256
    return {
        ("knn", "oodkit"): (lambda: oodkit.Detector("knn", k=50).fit(bank), lambda det: det.score(q)),
        ("knn", "pytorch-ood"): (lambda: KNN(None, k=50).fit_features(tb, ty), lambda det: det.predict_features(tq)),
        ("mahalanobis", "oodkit"): (lambda: oodkit.Detector("mahalanobis").fit(bank, labels=y, head=head),
                                    lambda det: det.score(q)),
        ("mahalanobis", "pytorch-ood"): (lambda: Mahalanobis(None).fit_features(tb, ty),
                                         lambda det: det.predict_features(tq)),
        ("vim", "oodkit"): (lambda: oodkit.Detector("vim").fit(bank, head=head), lambda det: det.score(q, head=head)),
        ("vim", "pytorch-ood"): (lambda: ViM(None, d=d, w=tw, b=tb_).fit_features(tb, ty),
                                 lambda det: det.predict_features(tq)),
    }


def timed(fit, score):
    """Wall seconds of fit and score, the scores, and the native seconds of both calls (the growth
    of oodkit's _native_seconds() counter: 0 for pytorch-ood)."""
    n0 = oodkit._oodkit._native_seconds()
    t0 = time.perf_counter()
    det = fit()
    t1 = time.perf_counter()
    s = score(det)
    t2 = time.perf_counter()
    native = oodkit._oodkit._native_seconds() - n0
    return t1 - t0, t2 - t1, np.asarray(s, np.float64), native


def overhead(calls=2000):
    """Median seconds per call on tiny inputs (fit on 64 x 8 with a 10-class head, score 1 row) for
    each oodkit method: the fixed cost of a call (a tiny D, because fitting Mahalanobis and ViM
    eigen-decomposes a D x D matrix whatever N is)."""
    g = np.random.default_rng(1)
    small = np.maximum(g.standard_normal((64, 8), dtype=np.float32), 0)
    ys = np.arange(64, dtype=np.int64) % 10
    one = np.ascontiguousarray(small[:1])
    head = (g.standard_normal((10, 8), dtype=np.float32), g.standard_normal(10, dtype=np.float32))
    dets = {"knn": oodkit.Detector("knn", k=50).fit(small),
            "mahalanobis": oodkit.Detector("mahalanobis").fit(small, labels=ys, head=head),
            "vim": oodkit.Detector("vim").fit(small, head=head)}
    calls_of = {"knn": lambda: dets["knn"].score(one),
                "mahalanobis": lambda: dets["mahalanobis"].score(one),
                "vim": lambda: dets["vim"].score(one, head=head)}
    fits_of = {"knn": lambda: oodkit.Detector("knn", k=50).fit(small),
               "mahalanobis": lambda: oodkit.Detector("mahalanobis").fit(small, labels=ys, head=head),
               "vim": lambda: oodkit.Detector("vim").fit(small, head=head)}
    out = {}
    for m in dets:
        ts = []
        for _ in range(calls):
            t = time.perf_counter()
            calls_of[m]()
            ts.append(time.perf_counter() - t)
        tf = []
        for _ in range(max(20, calls // 20)):
            t = time.perf_counter()
            fits_of[m]()
            tf.append(time.perf_counter() - t)
        out[m] = {"score_call_s": statistics.median(ts), "fit_call_s": statistics.median(tf)}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", default=None)
    ap.add_argument("--bank", type=int, default=50000, help="bank rows (issue 24: 50,000)")
    ap.add_argument("--queries", type=int, default=10000, help="query rows (issue 24: 10,000)")
    args = ap.parse_args()
    bank, y, q, w, b = make_features(args.bank, args.queries)
    print("oodkit %s (CUDA build: %s), pytorch-ood %s, torch %s, scikit-learn %s, numpy %s, python %s"
          % (oodkit.__version__, oodkit.with_cuda, getattr(pytorch_ood, "__version__", "?"), torch.__version__,
             sklearn.__version__, np.__version__, platform.python_version()))
    print("threads: torch %d, OMP_NUM_THREADS=%s; cpu: %s, %d cores visible; load %s"
          % (torch.get_num_threads(), os.environ["OMP_NUM_THREADS"], platform.processor() or platform.machine(),
             os.cpu_count(), " ".join("%.2f" % x for x in os.getloadavg())))
    print("bank %s, queries %s, float32" % (bank.shape, q.shape))
    run = runners(bank, y, q, w, b)
    times = {k: {"fit": [], "score": [], "native": []} for k in run}
    scores = {}
    for rep in range(args.reps):
        for key, (fit, score) in run.items():
            tf, ts, s, native = timed(fit, score)
            times[key]["fit"].append(tf)
            times[key]["score"].append(ts)
            times[key]["native"].append(native)
            scores[key] = s
            print("rep %d %-12s %-12s fit %8.3f s  score %8.3f s%s" % (
                rep, key[0], key[1], tf, ts, "  native %8.3f s" % native if key[1] == "oodkit" else ""), flush=True)
    sign = {"knn": -1.0, "mahalanobis": -2.0 * len(bank), "vim": -1.0}  # see tools/compare_pytorch_ood.py
    ov = overhead()
    rows = []
    print("\nmedian of %d (seconds)" % args.reps)
    print("%-12s %9s %9s %9s | %9s %9s %9s | %7s %7s %7s | %10s %9s" % (
        "method", "ok fit", "ok score", "ok total", "po fit", "po score", "po total", "fit x", "score x", "total x",
        "overhead", "agree"))
    for m in ("knn", "mahalanobis", "vim"):
        o = {k: statistics.median(v) for k, v in times[(m, "oodkit")].items()}
        p = {k: statistics.median(v) for k, v in times[(m, "pytorch-ood")].items()}
        ot, pt = o["fit"] + o["score"], p["fit"] + p["score"]
        # The overhead of the large calls themselves: wall time of fit + score minus the native time
        # inside them (median over the repetitions of each repetition's difference).
        ok = times[(m, "oodkit")]
        ovh = statistics.median(f + s - n for f, s, n in zip(ok["fit"], ok["score"], ok["native"]))
        native = statistics.median(ok["native"])
        ovh_pct = 100.0 * ovh / native
        ref = sign[m] * scores[(m, "pytorch-ood")]
        agree = float(np.max(np.abs(scores[(m, "oodkit")] - ref)) / np.max(np.abs(ref)))
        rows.append(dict(method=m, oodkit_fit_s=o["fit"], oodkit_score_s=o["score"], oodkit_total_s=ot,
                         pytorch_ood_fit_s=p["fit"], pytorch_ood_score_s=p["score"], pytorch_ood_total_s=pt,
                         speedup_fit=p["fit"] / o["fit"], speedup_score=p["score"] / o["score"],
                         speedup_total=pt / ot, native_s=native, overhead_s=ovh, overhead_fit_call_s=ov[m]["fit_call_s"],
                         overhead_score_call_s=ov[m]["score_call_s"], overhead_pct=ovh_pct, scale_rel_diff=agree,
                         raw={"oodkit": times[(m, "oodkit")], "pytorch-ood": times[(m, "pytorch-ood")]}))
        print("%-12s %9.3f %9.3f %9.3f | %9.3f %9.3f %9.3f | %7.2f %7.2f %7.2f | %7.0f us %8.1e  (%.4f%%)" % (
            m, o["fit"], o["score"], ot, p["fit"], p["score"], pt, p["fit"] / o["fit"], p["score"] / o["score"],
            pt / ot, 1e6 * ovh, agree, ovh_pct))
    print("\noverhead = oodkit's fit + score wall time minus the native time inside the two calls"
          "\n  (_oodkit._native_seconds(): the detector's fit, score and the logits from the head, without the"
          "\n  argument conversion, input checks and result wrapping); % = overhead / native time."
          "\nfixed cost per call on tiny inputs (fit on 64 x 8, score 1 row; wall time, tiny work included):")
    for m in ov:
        print("  %-12s fit call %7.1f us, score call %7.1f us" % (m, 1e6 * ov[m]["fit_call_s"],
                                                                  1e6 * ov[m]["score_call_s"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
