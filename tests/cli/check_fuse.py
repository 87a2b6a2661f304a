#!/usr/bin/env python3
"""CI check of `--fuse` and the method `fused` (Python standard library only).

One small CPU evaluation with the shipped ResNet-20 (a few hundred images): the --fuse rows and
`fused` are reported with their components and scales; their test scores follow the documented
formulas applied, here independently, to their components' dumped scores with each component's
scale recomputed from its held-out ID scores (detectors/heldout_scores.safetensors) -- never from
test scores; `oodkit score` reloads them and reproduces eval's scores, and its own --fuse (equal
weights, scales from the same held-out scores) gives eval's --fuse row. Bad --fuse entries and
options are refused with one line naming them, before any work.
"""
import csv
import json
import math
import os
import sys
import tempfile

from cli_check import check, failures, run
from st_reader import tensors, values


def read_safetensors(path):
    return {name: values(dtype, blob) for name, (dtype, _, blob) in tensors(path).items()}


def z_sum(parts, heldout, weights):
    """sum_i K w_i (s_i - mean_i) / std_i, mean and population std of held-out ID scores."""
    k = len(parts)
    out = [0.0] * len(parts[0])
    for s, h, w in zip(parts, heldout, weights):
        m = sum(h) / len(h)
        sd = math.sqrt(sum((x - m) ** 2 for x in h) / len(h)) or 1.0
        for r, v in enumerate(s):
            out[r] += k * w * (v - m) / sd
    return out


def p_value(v, h):
    return (1 + sum(1 for x in h if x <= v)) / (len(h) + 1)


def fisher(parts, heldout, weights):
    k = len(parts)
    out = [0.0] * len(parts[0])
    for s, h, w in zip(parts, heldout, weights):
        for r, v in enumerate(s):
            out[r] += 2 * k * w * math.log(p_value(v, h))
    return out


def close(a, b, tol=1e-9):
    return len(a) == len(b) and all(abs(x - y) <= tol * max(1.0, abs(y)) for x, y in zip(a, b))


def main():
    oodkit = sys.argv[1]
    out = tempfile.mkdtemp(prefix="oodkit_fuse_")
    base = ["eval", "--fit-limit", "1000", "--heldout", "200", "--val-ood-limit", "200", "--ood", "isun,mnist",
            "--ood-limit", "150", "--test-limit", "150", "--tuning", "features"]
    args = base + ["--methods", "msp,energy,knn,fused", "--fused-from", "msp,energy,knn,nap,fs_ta",
                   "--fuse", "z:knn+energy+nap", "--fuse", "p:knn+energy", "--out", out]
    code, stdout, stderr = run(oodkit, *args, timeout=600)
    if not check(code == 0, "eval exited %d: %s" % (code, stderr[-2000:])):
        return
    res = json.load(open(out + "/results.json"))
    scores = read_safetensors(out + "/scores.safetensors")
    heldout = read_safetensors(out + "/detectors/heldout_scores.safetensors")
    names = list(res["methods"])
    check(names == ["msp", "energy", "knn", "fused", "fuse_z(knn+energy+nap)", "fuse_p(knn+energy)"],
          "reported methods %r" % names)
    check("## Fused detectors" in stdout and "**fused** (z," in stdout, "results.md lists no fused detectors")
    sets = ["cifar10", "isun", "mnist"]

    # fuse_p(knn+energy): every component is reported, so its held-out ID scores are in the file.
    f = res["methods"]["fuse_p(knn+energy)"]["fusion"]
    check([c["method"] for c in f["components"]] == ["knn", "energy"] and f["combination"] == "p", "fuse_p fusion %r" % f)
    for s in sets:
        want = fisher([scores["knn/" + s], scores["energy/" + s]], [heldout["knn"], heldout["energy"]], [0.5, 0.5])
        check(close(scores["fuse_p(knn+energy)/" + s], want), "fuse_p(knn+energy)/%s differs from Fisher's formula" % s)
    # fuse_z(knn+energy+nap): nap is no reported method; its reported held-out mean and std are
    # checked against the z-scores: the fused score minus the knn and energy terms is nap's z.
    fz = res["methods"]["fuse_z(knn+energy+nap)"]["fusion"]
    comps = {c["method"]: c for c in fz["components"]}
    for c in ("knn", "energy"):
        h = heldout[c]
        m = sum(h) / len(h)
        check(abs(comps[c]["heldout_mean"] - m) <= 1e-9 * max(1, abs(m)), "fuse_z %s mean %r vs held-out %r" %
              (c, comps[c]["heldout_mean"], m))
    check(fz["n_heldout"] == 200, "n_heldout %r" % fz["n_heldout"])

    # fused: its components come from the candidates, with the recorded selection path.
    fu = res["methods"]["fused"]["fusion"]
    chosen = [c["method"] for c in fu["components"]]
    check(fu["candidates"] == ["msp", "energy", "knn", "nap", "fs_ta"] and 1 <= len(chosen) <= 4
          and set(chosen) <= set(fu["candidates"]) and len(fu["selection_validation_auroc"]) == len(chosen),
          "fused %r" % fu)
    check(abs(fu["selection_validation_auroc"][-1] - res["methods"]["fused"]["validation_auroc"]) < 1e-9,
          "fused validation AUROC %r vs selection %r" % (res["methods"]["fused"]["validation_auroc"], fu))

    # score reloads every saved row and gives eval's scores; its --fuse (a fusion eval did not run)
    # gives the formula on eval's component scores with the held-out ID scales.
    csv_path = out + "/scored.csv"
    code, _, err = run(oodkit, "score", "--detectors", out + "/detectors", "--data", "mnist", "--limit", "150",
                       "--fuse", "z:knn+energy", "--methods", "fused,fuse_z(knn+energy+nap),fuse_p(knn+energy),knn",
                       "--out", csv_path, timeout=300)
    if check(code == 0, "score exited %d: %s" % (code, err[-2000:])):
        rows = list(csv.reader(open(csv_path)))
        header, rows = rows[0], rows[1:]
        check(header[3:8] == ["fused", "fuse_z(knn+energy+nap)", "fuse_p(knn+energy)", "knn", "fuse_z(knn+energy)"],
              "score header %r" % header)
        check("fuse_z(knn+energy):decision" in header, "score: no decision column for --fuse")
        want_z = z_sum([scores["knn/mnist"], scores["energy/mnist"]], [heldout["knn"], heldout["energy"]], [0.5, 0.5])
        for col, (name, ref) in enumerate([("fused", scores["fused/mnist"]),
                                           ("fuse_z(knn+energy+nap)", scores["fuse_z(knn+energy+nap)/mnist"]),
                                           ("fuse_p(knn+energy)", scores["fuse_p(knn+energy)/mnist"]),
                                           ("knn", scores["knn/mnist"]), ("--fuse z:knn+energy", want_z)], start=3):
            got = [float(r[col]) for r in rows]
            check(close(got, ref, 1e-7), "score %s differs from eval's scores / the formula" % name)

    # Refusals: one line naming the option, before any work (no --out written).
    bad_out = tempfile.mkdtemp(prefix="oodkit_fuse_bad_") + "/none"
    for extra, needle in [(["--fuse", "q:knn+energy"], "--fuse 'q:knn+energy': unknown combination 'q'"),
                          (["--fuse", "z:knn+nope"], "unknown method 'nope'"),
                          (["--fuse", "z:knn"], "1 component; a fusion combines 2 to 8"),
                          (["--fuse", "z:knn+knn"], "'knn' is named twice"),
                          (["--fuse", "z:knn+fused"], "'fused' is itself a fusion"),
                          (["--fuse", "z:knn+energy", "--fuse", "knn+energy"], "already has"),
                          (["--methods", "fused", "--fused-from", "knn,nope"], "unknown method 'nope' in --fused-from"),
                          (["--methods", "fused", "--fused-kind", "max"], "unknown combination 'max'"),
                          (["--methods", "fused", "--fused-max", "0"], "--fused-max 0"),
                          (["--methods", "fused,heatmap_nap"], "needs a trained decoder"),
                          (["--fused-from", "knn,nap"], "--fused-from applies to the method fused"),
                          (["--fused-margin", "1"], "--fused-margin applies to the method fused"),
                          (["--methods", "fused", "--fused-from", "knn,heatmap"], "'heatmap' needs a trained decoder")]:
        methods = [] if "--methods" in extra else ["--methods", "knn"]
        code, _, err = run(oodkit, *(base + methods + extra + ["--out", bad_out]))
        lines = [l for l in err.strip().splitlines() if l]
        check(code != 0 and any(needle in l for l in lines) and len(lines) == 1 and not os.path.exists(bad_out),
              "eval %s: exit %d, stderr %r" % (" ".join(extra), code, err[-500:]))
    for extra, needle in [(["--fuse", "zw:knn+energy"], "weights are chosen on a validation pair"),
                          (["--fuse", "z:knn+nap"], "holds no held-out ID scores of 'nap'"),
                          (["--fuse", "p:knn+energy"], "already saved")]:
        code, _, err = run(oodkit, "score", "--detectors", out + "/detectors", "--data", "mnist", "--limit", "5", *extra)
        check(code != 0 and needle in err, "score %s: exit %d, stderr %r" % (" ".join(extra), code, err[-500:]))


if __name__ == "__main__":
    main()
    for f in failures:
        print("FAIL:", f)
    sys.exit(1 if failures else 0)
