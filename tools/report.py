#!/usr/bin/env python3
"""The pictures and the browser page of an `oodkit eval` run (called by `oodkit eval` / `study`).

    python3 tools/report.py RUN_DIR [--title TEXT]

Reads RUN_DIR/results.json and RUN_DIR/scores.safetensors (float64 [N] per "<method>/<set>", the
ID set named by results.json's "id") and writes, each atomically (temporary name, then rename):
  RUN_DIR/plots/<set>_hist.png  one panel per method: ID and OOD score histograms overlaid
                                (densities, shared bins over the 0.5-99.5 percentile range of both
                                sets; non-finite scores are counted in the panel title, not drawn)
  RUN_DIR/plots/<set>_roc.png   every method's exact ROC step curve (ID positive, "ID iff score >= t"
                                over the distinct scores t: the curve whose area is oodkit's AUROC),
                                legend with the AUROC of results.json
  RUN_DIR/report.html           the result tables (as results.md) and the pictures; one file plus
                                plots/, relative links only, no script, no network: opens from disk.
Exit status: 0 all written; 2 bad input (missing or malformed results.json / scores, named on
stderr); 3 report.html written without pictures because matplotlib is missing (install Debian's
python3-matplotlib; tools/setup.sh does).
"""
import argparse
import html
import json
import math
import os
import re
import struct
import sys

METRICS = [("auroc", "AUROC"), ("aupr_in", "AUPR-In"), ("aupr_out", "AUPR-Out"), ("fpr95_tpr", "FPR95"),
           ("fpr95_tpr_openood", "FPR95*")]


class BadInput(Exception):
    pass


def read_safetensors(path):
    """name -> list of float for every F64/F32 tensor of a safetensors file (standard library only)."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise BadInput("%s: cannot read (%s)" % (path, e.strerror))
    if len(blob) < 8:
        raise BadInput("%s: truncated (no header length)" % path)
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise BadInput("%s: header of %d bytes exceeds the file" % (path, n))
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except ValueError as e:
        raise BadInput("%s: header is not JSON (%s)" % (path, e))
    data = blob[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        fmt = {"F64": "d", "F32": "f"}.get(t.get("dtype"))
        if fmt is None:
            raise BadInput("%s: tensor '%s' has dtype %s (want F64 or F32)" % (path, name, t.get("dtype")))
        a, b = t["data_offsets"]
        size = struct.calcsize(fmt)
        if not 0 <= a <= b <= len(data) or (b - a) % size:
            raise BadInput("%s: tensor '%s' has bad data offsets %s" % (path, name, t["data_offsets"]))
        out[name] = list(struct.unpack("<%d%s" % ((b - a) // size, fmt), data[a:b]))
    return out


def roc_points(id_scores, ood_scores):
    """Exact ROC of "ID iff score >= t" over the distinct scores t (descending), from (0, 0) to (1, 1):
    lists fpr, tpr. Ties between ID and OOD give one diagonal segment (area counts them half)."""
    events = sorted([(s, 1) for s in id_scores] + [(s, 0) for s in ood_scores], key=lambda e: e[0], reverse=True)
    n, m = len(id_scores), len(ood_scores)
    fpr, tpr = [0.0], [0.0]
    tp = fp = 0
    i = 0
    while i < len(events):
        t = events[i][0]
        while i < len(events) and events[i][0] == t:  # one point per distinct score (+-inf included)
            tp += events[i][1]
            fp += 1 - events[i][1]
            i += 1
        fpr.append(fp / m if m else 0.0)
        tpr.append(tp / n if n else 0.0)
    return fpr, tpr


def safe_name(s):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_") or "set"


def atomic_savefig(fig, path):
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=90)
    os.replace(tmp, path)


def plot_set(plt, results, scores, set_name, plots_dir):
    """Writes <set>_hist.png and <set>_roc.png; returns their file names (relative to plots_dir)."""
    id_name = results["id"]
    methods = [m for m in results["methods"] if "%s/%s" % (m, set_name) in scores]
    base = safe_name(set_name)
    cols = min(4, max(1, len(methods)))
    rows = max(1, math.ceil(len(methods) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for k, m in enumerate(methods):
        ax = axes[k // cols][k % cols]
        ids = scores["%s/%s" % (m, id_name)]
        oods = scores["%s/%s" % (m, set_name)]
        fin_id = sorted(s for s in ids if math.isfinite(s))
        fin_ood = sorted(s for s in oods if math.isfinite(s))
        both = sorted(fin_id + fin_ood)
        title = m
        dropped = len(ids) + len(oods) - len(both)
        if dropped:
            title += " (%d non-finite)" % dropped
        if both:
            lo = both[int(0.005 * (len(both) - 1))]
            hi = both[int(math.ceil(0.995 * (len(both) - 1)))]
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            ax.hist(fin_id, bins=50, range=(lo, hi), density=True, histtype="stepfilled", alpha=0.45,
                    color="tab:blue", label="ID: " + id_name)
            ax.hist(fin_ood, bins=50, range=(lo, hi), density=True, histtype="stepfilled", alpha=0.45,
                    color="tab:red", label="OOD: " + set_name)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    for k in range(len(methods), rows * cols):
        axes[k // cols][k % cols].axis("off")
    if methods:
        axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Scores (higher = more ID): %s vs %s" % (id_name, set_name), fontsize=11)
    fig.tight_layout()
    hist = base + "_hist.png"
    atomic_savefig(fig, os.path.join(plots_dir, hist))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    cmap = plt.get_cmap("tab20")  # dark shades first (even indices), then the light ones
    for k, m in enumerate(methods):
        fpr, tpr = roc_points(scores["%s/%s" % (m, id_name)], scores["%s/%s" % (m, set_name)])
        auroc = results["methods"][m]["sets"][set_name]["auroc"]
        ax.plot(fpr, tpr, color=cmap((2 * k) % 20 + (k // 10) % 2), linewidth=1.2, label="%s (%.2f)" % (m, auroc))
    ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle=":")
    ax.set_xlabel("OOD called ID (FPR)")
    ax.set_ylabel("ID called ID (TPR)")
    ax.set_title("ROC: %s vs %s (legend: AUROC %%)" % (id_name, set_name), fontsize=10)
    ax.legend(fontsize=6.5, loc="lower right", ncol=2 if len(methods) > 12 else 1)
    fig.tight_layout()
    roc = base + "_roc.png"
    atomic_savefig(fig, os.path.join(plots_dir, roc))
    plt.close(fig)
    return hist, roc


def table_html(results, key, set_name=None):
    e = html.escape
    rows = ["<tr><th>method</th><th>setting</th>" + "".join("<th>%s</th>" % e(t) for _, t in METRICS) + "</tr>"]
    for name, m in results["methods"].items():
        cell = m["sets"][set_name] if set_name is not None else m.get(key)
        if cell is None:
            continue
        setting = ", ".join("%s=%g" % (k, v) if isinstance(v, (int, float)) else "%s=%s" % (k, v)
                            for k, v in m.get("chosen", {}).items()) or "-"
        rows.append("<tr><td>%s</td><td>%s</td>%s</tr>" % (
            e(name), e(setting), "".join("<td>%.2f</td>" % cell[k] for k, _ in METRICS)))
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def write_html(results, title, pictures, path, note):
    e = html.escape
    sets = list(next(iter(results["methods"].values()))["sets"].keys()) if results["methods"] else []
    v = results.get("validation", {})
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title>" % e(title),
             "<style>body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;"
             "margin:0.5em 0 1.5em}td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}"
             "td:first-child,td:nth-child(2),th{text-align:left}img{max-width:100%;border:1px solid #ddd;"
             "margin:0.3em 0}</style></head><body>",
             "<h1>%s</h1>" % e(title),
             "<p>%s on %s (%s): ID test accuracy %.2f%%, %s ID test images. Hyper-parameters chosen on %s vs %s "
             "(AUROC). Scores are higher for ID. FPR95: OOD at or above the 95%%-TPR threshold; FPR95*: ID flagged "
             "at 95%% OOD caught. All figures in %%.</p>" % (
                 e(str(results.get("arch"))), e(str(results.get("id"))), e(str(results.get("checkpoint"))),
                 results.get("id_accuracy", float("nan")), e(str(results.get("n_id_test"))),
                 e(str(v.get("id"))), e(str(v.get("ood"))))]
    if note:
        parts.append("<p><b>%s</b></p>" % e(note))
    parts.append("<h2>average over the OOD sets</h2>" + table_html(results, "average"))
    if "seen_sets" in results:
        parts.append("<h2>average without %s (seen distribution)</h2>" % e(results["seen_sets"]) +
                     table_html(results, "average_unseen"))
    for s in sets:
        parts.append("<h2>%s</h2>" % e(s) + table_html(results, None, s))
        for pic in pictures.get(s, ()):
            parts.append("<img src=\"plots/%s\" alt=\"%s\">" % (e(pic, quote=True), e(pic, quote=True)))
    parts.append("</body></html>\n")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--title", default="oodkit eval")
    a = ap.parse_args()
    try:
        rpath = os.path.join(a.run_dir, "results.json")
        try:
            with open(rpath, encoding="utf-8") as f:
                results = json.load(f)
        except (OSError, ValueError) as e:
            raise BadInput("%s: %s" % (rpath, e))
        if not isinstance(results.get("methods"), dict) or "id" not in results:
            raise BadInput("%s: no 'methods' / 'id' (not an oodkit eval result)" % rpath)
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            plt = None
        pictures = {}
        if plt is not None:
            scores = read_safetensors(os.path.join(a.run_dir, "scores.safetensors"))
            plots_dir = os.path.join(a.run_dir, "plots")
            os.makedirs(plots_dir, exist_ok=True)
            sets = list(next(iter(results["methods"].values()))["sets"].keys()) if results["methods"] else []
            for s in sets:
                pictures[s] = plot_set(plt, results, scores, s, plots_dir)
        note = None if plt is not None else "No pictures: matplotlib is not installed (python3-matplotlib)."
        write_html(results, a.title, pictures, os.path.join(a.run_dir, "report.html"), note)
    except BadInput as e:
        print("report: %s" % e, file=sys.stderr)
        return 2
    if not pictures and plt is None:
        print("report: matplotlib is not installed (Debian: python3-matplotlib; tools/setup.sh installs it): "
              "report.html has the tables only", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
