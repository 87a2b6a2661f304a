#!/usr/bin/env python3
"""CI check of `oodkit explain` (Python standard library only).

A small heatmap decoder (one epoch) and one small CPU evaluation with the shipped ResNet-20 save
the detectors; then:
- refusals, each one line naming the option, exit 1, before any image is read (no feature
  progress on stderr) and with nothing written: an unknown method, a method without a map (a p-value
  fusion), a method that is not saved, heatmap without a saved decoder, --limit 0 and negative, an unknown --data set, a method named
  twice;
- a run over 6 CIFAR-10 test images: maps.safetensors holds maps/<m> float32 [6, 32, 32],
  scores/<m> float64 [6], labels, predictions and the images; every score equals `oodkit score`'s
  for the same images and detectors; the heatmap map (at the decoder's 32x32) has minus the score as
  its mean, each contribution map (nap, nap_mean, fs, fs_ta) the method's decision threshold tau
  (protocol.json) minus the score (exact for the 8x8 -> 32x32 bilinear upsampling, which keeps the mean:
  an independent check of the decomposition against the detectors' own kernels); Grad-CAM maps
  (also odin and mahalanobis_noise on their perturbed images, ash_p, ash_s, dice, gradnorm) are >= 0
  and not all 0 (ash_p, dice and gradnorm may be: MAY_BE_ZERO); ash_b is refused (no map); each
  fusion's map (nap_e geometric, fsta_energy linear, heatmap_nap standardised, a --fuse z fusion) equals
  sum_i c_i m_i of its members' maps with c_i = dS/ds_i from its saved state and the members' scores; explain.png is a PNG and explain.json names every method with its map kind;
- `--benchmark patches` on 6 images (two sources, two sizes, three methods) writes the benchmark's
  files with one row per source x size x method and the averages over the sources; its options are
  refused without --benchmark, and a bad benchmark, size or source before any work;
- with a CUDA device (`oodkit info`), the run again with --device cuda: maps and scores equal the CPU
  run's to 1e-3 of each map's largest value (skipped, and said, without a device).
"""
import csv
import io
import json
import math
import os
import shutil
import sys
import tempfile

from cli_check import check, failures, run
from st_reader import tensors, values

HEATMAP = ("heatmap",)
CONTRIBUTION = ("nap", "nap_mean", "fs", "fs_ta")
GRADCAM = ("msp", "maxlogit", "energy", "odin", "react", "ash_p", "ash_s", "dice", "gradnorm", "knn",
           "mahalanobis", "mahalanobis_noise", "vim")
# Grad-CAM maps that may be 0 everywhere on ID images: with activations >= 0, the kept (ash_p, dice)
# or all (gradnorm: the |z|_1 factor) channels have dS/dz > 0, so no position pulls towards OOD.
MAY_BE_ZERO = ("ash_p", "dice", "gradnorm")
# Fusions: their map is sum_i c_i m_i of the members' maps, c_i = dS/ds_i (docs/methods.md), rebuilt
# here from the members' maps and scores and the saved fusion states.
FUSIONS = ("nap_e", "fsta_energy", "heatmap_nap", "fuse_z(knn+nap)")


def fusion_weights(det, name, member_scores, i):
    """(members, [c_1, ..., c_K]) of fusion `name` for image i, from its saved state (docs/methods.md)."""
    st = json.load(open(os.path.join(det, name + ".json")))["params"]
    if st.get("combination") == "z":
        members = st["components"].split("+")
        k = len(members)
        return members, [k * st["w%d" % (j + 1)] / st["sd%d" % (j + 1)] for j in range(k)]
    a, b = st["a"], st["b"]
    sa, sb = member_scores[a][i], member_scores[b][i]
    if st["fusion_kind"] == "linear":
        return [a, b], [1.0, st["lambda"]]
    w = st["w"]
    if st["fusion_kind"] == "standardized":
        return [a, b], [(1 - w) / st["a_std"], w / st["b_std"]]
    floor = 1e-6
    s = max(sa, floor) ** w * max(sb, floor) ** (1 - w)
    return [a, b], [w * s / sa if sa > floor else 0.0, (1 - w) * s / sb if sb > floor else 0.0]


def percentile(sorted_vals, p):
    """numpy.percentile(v, p) with its default 'linear' method, for sorted values."""
    h = (len(sorted_vals) - 1) * p / 100.0
    i = int(math.floor(h))
    if i >= len(sorted_vals) - 1:
        return sorted_vals[-1]
    return sorted_vals[i] + (h - i) * (sorted_vals[i + 1] - sorted_vals[i])


def main():
    oodkit = sys.argv[1]
    root = tempfile.mkdtemp(prefix="oodkit_explain_")
    dec = os.path.join(root, "decoder")
    code, _, err = run(oodkit, "heatmap", "fit", "--id-limit", "300", "--oe-limit", "60", "--heldout", "200",
                       "--val-ood-limit", "100", "--width", "0.125", "--epochs", "1", "--batch", "50", "--seed", "3",
                       "--out", dec, timeout=600)
    if not check(code == 0, "heatmap fit exited %d: %s" % (code, err[-2000:])):
        return
    ev = os.path.join(root, "eval")
    methods = ",".join(HEATMAP + CONTRIBUTION + GRADCAM + FUSIONS[:-1])
    code, _, err = run(oodkit, "eval", "--heatmap", dec, "--fit-limit", "600", "--heldout", "200", "--val-ood-limit", "100",
                       "--test-limit", "100", "--ood", "isun", "--ood-limit", "100", "--tuning", "none",
                       "--set", "mahalanobis_noise.eps=0.0014", "--fuse", "z:knn+nap", "--fuse", "p:knn+energy",
                       "--methods", methods, "--out", ev, timeout=600)
    methods = ",".join(HEATMAP + CONTRIBUTION + GRADCAM + FUSIONS)
    if not check(code == 0, "eval exited %d: %s" % (code, err[-2000:])):
        return
    det = os.path.join(ev, "detectors")
    thresholds = json.load(open(os.path.join(det, "protocol.json")))["thresholds"]
    # The same saved detectors without the decoder (heatmap.* removed): heatmap must be refused.
    nodec = os.path.join(root, "no_decoder")
    shutil.copytree(det, nodec)
    for f in os.listdir(nodec):
        if f.startswith("heatmap."):
            os.remove(os.path.join(nodec, f))

    # ---- refusals before any work
    bad = [(["--methods", "nosuch"], ["--methods", "nosuch", "unknown method"]),
           (["--methods", "msp,fuse_p(knn+energy)"], ["--methods", "fuse_p(knn+energy)", "has no map", "step function"]),
           (["--methods", "fsta_msp"], ["--methods", "fsta_msp", "not saved"]),
           (["--methods", "knn,ash_b"], ["--methods", "ash_b", "has no map", "sum"]),
           (["--detectors", nodec, "--methods", "heatmap"], ["--methods", "heatmap", "not saved", "--heatmap"]),
           (["--methods", "msp,msp"], ["--methods", "msp", "twice"]),
           (["--limit", "0"], ["--limit"]),
           (["--limit", "-3"], ["--limit"]),
           (["--data", "nosuchset"], ["--data", "nosuchset"]),
           (["--sizes", "8"], ["--sizes", "--benchmark"]),
           (["--benchmark", "nope"], ["--benchmark", "nope"]),
           (["--benchmark", "patches", "--sizes", "8,0"], ["--sizes", "'0'"]),
           (["--benchmark", "patches", "--sources", "nosuchsource"], ["--sources", "nosuchsource"]),
           (["--colour-percentile", "40"], ["--colour-percentile"])]
    for extra, words in bad:
        out = os.path.join(root, "refused")
        data = [] if "--data" in extra else ["--data", "cifar10:test"]
        where = [] if "--detectors" in extra else ["--detectors", det]
        args = ["explain", "--out", out] + where + data + extra
        code, stdout, stderr = run(oodkit, *args)
        line = stderr.strip()
        check(code == 1 and len(line.splitlines()) == 1 and all(w in line for w in words),
              "explain %s: exit %d, stderr %r (wanted one line with %r)" % (" ".join(extra), code, line, words))
        check("features" not in stderr, "explain %s: work started before the refusal: %r" % (" ".join(extra), stderr))
        check(not os.path.exists(out), "explain %s: left %s behind" % (" ".join(extra), out))

    # ---- a run
    out = os.path.join(root, "explain")
    code, stdout, stderr = run(oodkit, "explain", "--detectors", det, "--data", "cifar10:test", "--limit", "6",
                               "--methods", methods, "--out", out, timeout=600)
    if not check(code == 0, "explain exited %d: %s" % (code, stderr[-2000:])):
        return
    st = tensors(os.path.join(out, "maps.safetensors"))
    code, csv_text, err = run(oodkit, "score", "--detectors", det, "--data", "cifar10:test", "--limit", "6",
                              "--methods", methods, timeout=600)
    if not check(code == 0, "score exited %d: %s" % (code, err[-2000:])):
        return
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    check(len(rows) == 6, "score printed %d rows" % len(rows))
    check(st["images"][0] == "U8" and st["images"][1] == [6, 3, 32, 32], "images %r" % (st["images"][:2],))
    for name in ("labels", "predictions"):
        check(st[name][0] == "I64" and st[name][1] == [6], "%s %r" % (name, st[name][:2]))
    pred = values("I64", st["predictions"][2])
    check(pred == [int(r["predicted_class"]) for r in rows], "predictions %r differ from score's" % pred)
    all_maps, all_scores = {}, {}
    for m in HEATMAP + CONTRIBUTION + GRADCAM + FUSIONS:
        mk, sk = "maps/" + m, "scores/" + m
        if not check(mk in st and sk in st, "maps.safetensors lacks %s or %s" % (mk, sk)):
            continue
        check(st[mk][0] == "F32" and st[mk][1] == [6, 32, 32], "%s: %r" % (mk, st[mk][:2]))
        maps, scores = values("F32", st[mk][2]), values("F64", st[sk][2])
        all_maps[m], all_scores[m] = maps, scores
        want = [float(r[m]) for r in rows]
        check(all(abs(a - b) <= 1e-6 * max(1.0, abs(b)) for a, b in zip(scores, want)),
              "%s: explain scores %r, score's %r" % (m, scores, want))
        if m in HEATMAP + CONTRIBUTION:
            # heatmap: mean(map) = -S; contribution maps: mean(map) = tau - S, tau the decision
            # threshold of protocol.json
            tau = 0.0 if m in HEATMAP else thresholds[m]
            means = [sum(maps[i * 1024:(i + 1) * 1024]) / 1024 for i in range(6)]
            want = [tau - x for x in scores]
            check(all(abs(a - b) <= 1e-4 * max(1.0, abs(b)) for a, b in zip(means, want)),
                  "%s: mean(map) %r differs from tau - score %r" % (m, means, want))
        elif m in GRADCAM:
            check(min(maps) >= 0 and (max(maps) > 0 or m in MAY_BE_ZERO),
                  "%s: Grad-CAM map range [%g, %g]" % (m, min(maps), max(maps)))
    for m in FUSIONS:
        if m not in all_maps:
            continue
        for i in range(6):
            members, c = fusion_weights(det, m, all_scores, i)
            if not check(all(x in all_maps for x in members), "%s: members %r not all explained" % (m, members)):
                break
            want = [sum(c[j] * all_maps[x][i * 1024 + p] for j, x in enumerate(members)) for p in range(1024)]
            got = all_maps[m][i * 1024:(i + 1) * 1024]
            tol = 1e-5 * max(1.0, max(abs(v) for v in want))
            check(all(abs(a - b) <= tol for a, b in zip(got, want)),
                  "%s image %d: map differs from sum c_i m_i of %r (c %r)" % (m, i, members, c))
    with open(os.path.join(out, "explain.png"), "rb") as f:
        check(f.read(8) == b"\x89PNG\r\n\x1a\n", "explain.png is not a PNG")
    info = json.load(open(os.path.join(out, "explain.json")))
    kinds = {m: v.get("map") for m, v in info.get("methods", {}).items()}
    check(kinds == {"heatmap": "heatmap", **{m: "contribution" for m in CONTRIBUTION}, **{m: "grad-cam" for m in GRADCAM},
                    **{m: "fusion" for m in FUSIONS}},
          "explain.json methods %r" % kinds)
    check("command" in info.get("provenance", {}), "explain.json has no provenance")
    # Each method's colour range: percentiles 1 and 99 of its finite map values (numpy's 'linear',
    # computed here by hand from the saved maps).
    for m, v in info.get("methods", {}).items():
        dtype, _, blob = st["maps/" + m]
        vals = sorted(x for x in values(dtype, blob) if math.isfinite(x))
        want = (percentile(vals, 1), percentile(vals, 99))
        got = (v.get("colour_lo"), v.get("colour_hi"))
        check(v.get("colour_percentile") == 99 and all(g is not None and abs(g - w) <= 1e-6 * max(1.0, abs(w))
                                                       for g, w in zip(got, want)),
              "%s: colour range %r (percentile %r), wanted %r" % (m, got, v.get("colour_percentile"), want))

    # ---- the same run with --device cuda, when this machine has a CUDA device (`oodkit info`):
    # scores and maps against the CPU run's (float32 cuDNN/cuBLAS vs the CPU reference: the
    # tolerance of the model's CPU-vs-CUDA tests, relative to each map's largest value)
    code, info_text, _ = run(oodkit, "info")
    devices = [l for l in info_text.splitlines() if l.startswith("CUDA devices:")]
    if devices and int(devices[0].split(":")[1]) > 0:
        gout = os.path.join(root, "explain_cuda")
        code, _, stderr = run(oodkit, "explain", "--detectors", det, "--data", "cifar10:test", "--limit", "6",
                              "--methods", methods, "--device", "cuda", "--out", gout, timeout=600)
        if check(code == 0, "explain --device cuda exited %d: %s" % (code, stderr[-2000:])):
            gst = tensors(os.path.join(gout, "maps.safetensors"))
            for m in all_maps:
                gmaps, gscores = values("F32", gst["maps/" + m][2]), values("F64", gst["scores/" + m][2])
                tol = 1e-3 * max(1.0, max(abs(v) for v in all_maps[m]))
                worst = max(abs(a - b) for a, b in zip(gmaps, all_maps[m]))
                check(worst <= tol, "%s: CUDA map differs from the CPU's by %g (tolerance %g)" % (m, worst, tol))
                check(all(abs(a - b) <= 1e-3 * max(1.0, abs(b)) for a, b in zip(gscores, all_scores[m])),
                      "%s: CUDA scores %r, CPU %r" % (m, gscores, all_scores[m]))
    else:
        print("check_explain: no CUDA device, --device cuda not checked")

    # ---- --benchmark patches: the runner of run/patch_benchmark.h with these explainers
    bench = os.path.join(root, "bench")
    code, stdout, stderr = run(oodkit, "explain", "--detectors", det, "--data", "cifar10:test", "--limit", "6",
                               "--methods", "heatmap,fs,energy", "--benchmark", "patches", "--sources",
                               "synthetic-ood-noise,mnist", "--sizes", "8,16", "--out", bench, timeout=600)
    if check(code == 0, "explain --benchmark patches exited %d: %s" % (code, stderr[-2000:])):
        rows = list(csv.DictReader(open(os.path.join(bench, "patches.csv"))))
        got = sorted((r["source"], r["size"], r["method"]) for r in rows)
        want = sorted((s, z, m) for s in ("synthetic-ood-noise", "mnist", "average") for z in ("8", "16")
                      for m in ("heatmap", "fs", "energy"))
        check(got == want, "patches.csv rows %r" % got)
        for f in ("patches.md", "patches.json", "patches.png", "explain.json"):
            check(os.path.exists(os.path.join(bench, f)), "--benchmark patches wrote no %s" % f)
        info = json.load(open(os.path.join(bench, "explain.json")))
        check(info.get("benchmark") == "patches" and info.get("methods") == ["heatmap", "fs", "energy"] and
              "command" in info.get("provenance", {}), "benchmark explain.json %r" % info)


if __name__ == "__main__":
    main()
    if failures:
        print("check_explain: %d failures:\n  %s" % (len(failures), "\n  ".join(failures)))
        sys.exit(1)
    print("check_explain: refusals, maps, scores equal to `oodkit score`, contribution means, picture OK")
