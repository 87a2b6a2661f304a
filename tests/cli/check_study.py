#!/usr/bin/env python3
"""CI check of `oodkit study` (the README's main job) at a small size (Python standard library only).

Runs train -> heatmap fit -> eval on the built-in synthetic data with few images and epochs, and
checks that the report and every stage's files exist and that the heatmap detector and a fusion
of it are reported with metrics in [0, 100].
"""
import json
import os
import re
import subprocess
import sys
import tempfile


def main():
    oodkit = sys.argv[1]
    out = os.path.join(tempfile.mkdtemp(prefix="oodkit_study_"), "study")
    p = subprocess.run([oodkit, "study", "--train-limit", "2000", "--epochs", "1", "--heatmap-epochs", "2",
                        "--methods", "msp,energy,heatmap,heatmap_energy", "--out", out],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    print(p.stdout[-3000:])
    failures = []
    if p.returncode != 0:
        failures.append("study exited with %d" % p.returncode)
    for f in ("report.md", "classifier/model.safetensors", "heatmap/decoder.safetensors",
              "heatmap/targets.safetensors", "eval/results.json", "eval/detectors/heatmap.decoder.safetensors",
              "eval/scores.safetensors", "eval/report.html"):
        if not os.path.exists(os.path.join(out, f)):
            failures.append("missing %s" % f)
    if not failures:
        report = open(os.path.join(out, "report.md")).read()
        for needle in ("Heatmap decoder: width 0.25", "| heatmap |", "| heatmap_energy |",
                       "average without synthetic-ood-strokes"):
            if needle not in report:
                failures.append("report.md lacks '%s'" % needle)
        res = json.load(open(os.path.join(out, "eval", "results.json")))
        page = open(os.path.join(out, "eval", "report.html"), encoding="utf-8").read()
        for s in res["methods"]["msp"]["sets"]:  # the set names as report.py turns them into file names
            for kind in ("hist", "roc"):
                png = "%s_%s.png" % (re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_"), kind)
                if not os.path.isfile(os.path.join(out, "eval", "plots", png)) or "plots/" + png not in page:
                    failures.append("eval/plots/%s missing or not in report.html" % png)
        for m in ("msp", "energy", "heatmap", "heatmap_energy"):
            a = res["methods"].get(m, {}).get("average", {}).get("auroc")
            if a is None or not 0 <= a <= 100:
                failures.append("%s average AUROC %s" % (m, a))
        hlog = json.load(open(os.path.join(out, "heatmap", "log.json")))
        if [e["epoch"] for e in hlog] != [1, 2]:
            failures.append("heatmap log epochs %s" % [e["epoch"] for e in hlog])
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("check_study: train, heatmap fit and eval ran; report has the heatmap rows")


if __name__ == "__main__":
    main()
