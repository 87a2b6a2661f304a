#!/usr/bin/env python3
"""CI check of `oodkit study` (the README's main job) at a small size (Python standard library only).

Runs train -> heatmap fit -> eval on the built-in synthetic data with few images and epochs, and
checks that the report and every stage's files exist and that the heatmap detector and a fusion
of it are reported with metrics in [0, 100]; the report's data section has one row per set (ID,
validation OOD, each test OOD set) with an example strip that exists, sized 6 images of 32 px
magnified 3x; report.html shows exactly report.md's images, each present; the training figure's drawn lines (tools/study_figures.py --lines-out, run with
REPORT_PYTHON, the interpreter oodkit draws with) are the log.json values.

    check_study.py OODKIT REPORT_PYTHON
"""
import json
import os
import re
import struct
import subprocess
import sys
import tempfile


def check_report_figures(out, report, python, hlog, failures):
    """The data section's strips and the training figure's lines."""
    sets = [("synthetic-id", "ID"), ("synthetic-ood-strokes:val", "OOD validation")] + [
        (s, "OOD test") for s in ("synthetic-ood-unseen-shapes", "synthetic-ood-strokes", "synthetic-ood-textures",
                                  "synthetic-ood-noise")]
    rows = [l for l in report.split("## The data", 1)[-1].split("\n## ", 1)[0].splitlines() if l.startswith("| synth")]
    if len(rows) != len(sets):
        failures.append("report.md data section has %d rows, expected %d: %s" % (len(rows), len(sets), rows))
    for row, (name, role) in zip(rows, sets):
        cells = [c.strip() for c in row.strip("|").split("|")]
        link = re.search(r"\]\((figures/examples_\d+\.png)\)", cells[-1])
        if cells[0] != name or not cells[1].startswith(role) or not link:
            failures.append("report.md data row %r, expected set %s, role %s, an image link" % (row, name, role))
            continue
        with open(os.path.join(out, link.group(1)), "rb") as f:
            head = f.read(24)
        w, h = struct.unpack(">II", head[16:24])
        if (w, h) != (6 * 96 + 5 * 2, 96):
            failures.append("%s is %dx%d, expected %dx96 (6 images of 32 px x3, 2 px gaps)" % (link.group(1), w, h, 586))
    page = os.path.join(out, "report.html")
    srcs = re.findall(r'<img src="([^"]+)"', open(page, encoding="utf-8").read()) if os.path.isfile(page) else None
    md_images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", report)
    if srcs != md_images or not all(os.path.isfile(os.path.join(out, s)) for s in srcs):
        failures.append("report.html images %s, report.md's %s (each must exist)" % (srcs, md_images))
    if "![Training curves" not in report or not os.path.isfile(os.path.join(out, "figures", "training.png")):
        failures.append("report.md lacks the training figure or figures/training.png is missing")
    lines_path = os.path.join(out, "lines.json")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "study_figures.py")
    p = subprocess.run([python, script, out, "--classes", "10", "--lines-out", lines_path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True)
    if p.returncode != 0:
        failures.append("study_figures.py exited %d: %s" % (p.returncode, p.stdout))
        return
    lines = json.load(open(lines_path))
    clog = json.load(open(os.path.join(out, "classifier", "log.json")))
    want = {"train accuracy": [100 * e["train_accuracy"] for e in clog],
            "test accuracy": [100 * e["test_accuracy"] for e in clog],
            "training loss": [e["train_loss"] for e in clog],
            "decoder loss": [e["loss"] for e in hlog],
            "validation AUROC": [e["validation_auroc"] for e in hlog],
            "chance (1/10)": [10.0, 10.0], "chance (50)": [50.0, 50.0]}
    for label, ys in want.items():
        got = lines.get(label, [[], []])[1]
        if len(got) != len(ys) or any(abs(a - b) > 1e-9 * max(1.0, abs(b)) for a, b in zip(got, ys)):
            failures.append("training figure line %r: %s, log.json %s" % (label, got, ys))


def main():
    oodkit, python = sys.argv[1:3]
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
        check_report_figures(out, report, python, hlog, failures)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("check_study: train, heatmap fit and eval ran; report has the heatmap rows")


if __name__ == "__main__":
    main()
