#!/usr/bin/env python3
"""The pictures and the browser page of an `oodkit eval` run (called by `oodkit eval` / `study`).

    python3 tools/report.py RUN_DIR [--title TEXT]

Reads RUN_DIR/results.json and RUN_DIR/scores.safetensors (float64 [N] per "<method>/<set>", the
ID set named by results.json's "id") and writes, each atomically (temporary name, then rename):
  RUN_DIR/plots/summary.png     methods x OOD sets (and their average) as two colour matrices, AUROC
                                and FPR95, methods grouped by family (results.json "family": logit,
                                feature, feature map, heatmap, fusion), the best value of each column
                                framed and bold
  RUN_DIR/plots/<set>_hist.png  one panel per method: ID and OOD score histograms overlaid
                                (densities, shared bins over the 0.5-99.5 percentile range of both
                                sets; a log density axis where one set's peak is 10x the other's;
                                non-finite scores are counted in the panel title, not drawn); axis
                                labels, the colours named in the figure title
  RUN_DIR/plots/<set>_roc.png   every method's exact ROC step curve (ID positive, "ID iff score >= t"
                                over the distinct scores t: the curve whose area is oodkit's AUROC),
                                one panel per family, each method its own colour and line style
                                (curve_styles), the 95%-TPR line and each curve's FPR there marked;
                                legends with the AUROC and FPR95 of results.json
  RUN_DIR/findings.md           "What this shows": sentences generated from the numbers (findings())
  RUN_DIR/report.html           provenance (version, commit, command, date, data counts), warnings,
                                what this shows, the summary figure, the result tables (as results.md, the best value
                                of each column bold) and the pictures; one file plus plots/,
                                relative links only, no script, no network: opens from disk.
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


def read_header(path):
    """(header dict with "__metadata__" if any, data block bytes) of a safetensors file; BadInput
    naming the file when it cannot be read or is not one (standard library only)."""
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
    return header, blob[8 + n:]


def read_safetensors(path):
    """name -> list of float for every F64/F32 tensor of a safetensors file (standard library only)."""
    header, data = read_header(path)
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


def atomic_savefig(fig, path, dpi=90):
    """fig as the PNG `path`, written whole or not at all: drawn into a temporary file beside it,
    renamed over `path`; the temporary file is removed if drawing fails."""
    tmp = path + ".tmp.%d.png" % os.getpid()
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# Report order of the families (results.json "family"; ood/registry.h); unknown ones come last.
FAMILIES = ["logit", "feature", "feature map", "heatmap", "fusion"]
LINESTYLES = ["-", "--", "-.", ":"]
# Whether a larger value of a metric is better (the best value of a column is marked by it).
HIGHER_IS_BETTER = {"auroc": True, "aupr_in": True, "aupr_out": True, "fpr95_tpr": False, "fpr95_tpr_openood": False}


def set_names(results):
    return list(next(iter(results["methods"].values()))["sets"].keys()) if results["methods"] else []


def family_of(results, method):
    return results["methods"][method].get("family", "other")


def grouped_methods(results):
    """The method names grouped by family in FAMILIES order (others last), results.json order within."""
    names = list(results["methods"])
    rank = {f: i for i, f in enumerate(FAMILIES)}
    return sorted(names, key=lambda m: (rank.get(family_of(results, m), len(FAMILIES)), names.index(m)))


def curve_styles(n):
    """n (colour, line style) pairs, pairwise distinct for n <= 40: tab10's ten colours with the first
    line style, then again with the next one."""
    return [("C%d" % (k % 10), LINESTYLES[(k // 10) % len(LINESTYLES)]) for k in range(n)]


def best_rows(values, higher):
    """Indices of the best finite value(s) of a column (all of them on a tie); [] if none is finite."""
    fin = [v for v in values if v is not None and math.isfinite(v)]
    if not fin:
        return []
    best = max(fin) if higher else min(fin)
    return [i for i, v in enumerate(values) if v == best]


def metric_of(results, method, column, key):
    m = results["methods"][method]
    return (m["average"] if column == "average" else m["sets"][column])[key]


def summary_matrix(results, key):
    """(methods grouped by family, columns = OOD sets + "average", values[row][col] of `key`, the
    best rows of each column): what plot_summary draws."""
    methods = grouped_methods(results)
    cols = set_names(results) + ["average"]
    values = [[metric_of(results, m, c, key) for c in cols] for m in methods]
    best = [best_rows([row[j] for row in values], HIGHER_IS_BETTER[key]) for j in range(len(cols))]
    return methods, cols, values, best


def plot_summary(plt, results, plots_dir):
    """Writes summary.png (AUROC and FPR95 matrices side by side); returns its file name."""
    panels = [("auroc", "AUROC %  (higher is better; 50 = chance)", "RdYlGn"),
              ("fpr95_tpr", "FPR95 %  (lower is better)", "RdYlGn_r")]
    methods, cols, _, _ = summary_matrix(results, "auroc")
    fig, axes = plt.subplots(1, 2, figsize=(2 * (2.6 + 0.75 * len(cols)) + 1.2, 1.4 + 0.3 * len(methods)),
                             constrained_layout=True)
    small = 7 if len(methods) > 20 else 8
    for ax, (key, title, cmap) in zip(axes, panels):
        _, _, values, best = summary_matrix(results, key)
        shown = [[v if math.isfinite(v) else float("nan") for v in row] for row in values]
        im = ax.imshow(shown, cmap=cmap, vmin=0, vmax=100, aspect="auto")
        for i, row in enumerate(values):
            for j, v in enumerate(row):
                top = i in best[j]
                ax.text(j, i, "%.1f" % v, ha="center", va="center", fontsize=small,
                        fontweight="bold" if top else "normal", color="black")
                if top:
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.6))
        ax.set_xticks(range(len(cols)))
        ax.set_xticklabels(cols, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(methods)))
        ax.set_yticklabels(methods, fontsize=small)
        ax.axvline(len(cols) - 1.5, color="black", linewidth=1.2)  # the average column apart
        start = 0
        for i in range(1, len(methods) + 1):  # family bands: a line between, the name beside
            if i == len(methods) or family_of(results, methods[i]) != family_of(results, methods[start]):
                if i < len(methods):
                    ax.axhline(i - 0.5, color="black", linewidth=1.0)
                if ax is axes[1]:
                    ax.text(len(cols) - 0.35, (start + i - 1) / 2, family_of(results, methods[start]), rotation=90,
                            ha="left", va="center", fontsize=8, clip_on=False)
                start = i
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.05, pad=0.09 if ax is axes[1] else 0.02)
    fig.suptitle("%s vs each OOD set (best of each column framed)" % results["id"], fontsize=11)
    name = "summary.png"
    atomic_savefig(fig, os.path.join(plots_dir, name))
    plt.close(fig)
    return name


def plot_set(plt, results, scores, set_name, plots_dir):
    """Writes <set>_hist.png and <set>_roc.png; returns their file names (relative to plots_dir)."""
    id_name = results["id"]
    methods = [m for m in grouped_methods(results) if "%s/%s" % (m, set_name) in scores]
    base = safe_name(set_name)
    cols = min(4, max(1, len(methods)))
    rows = max(1, math.ceil(len(methods) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.5 * rows + 0.8), squeeze=False,
                             constrained_layout=True)
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
            n_id, _, _ = ax.hist(fin_id, bins=50, range=(lo, hi), density=True, histtype="stepfilled", alpha=0.45,
                                    color="tab:blue", label="ID: " + id_name)
            n_ood, _, _ = ax.hist(fin_ood, bins=50, range=(lo, hi), density=True, histtype="stepfilled",
                                      alpha=0.45, color="tab:red", label="OOD: " + set_name)
            peaks = [max(n) for n in (n_id, n_ood) if len(n) and max(n) > 0]
            if len(peaks) == 2 and max(peaks) > 10 * min(peaks):  # one set would flatten the other
                ax.set_yscale("log")
                title += " (log density)"
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        if k // cols == rows - 1 or k + cols >= len(methods):
            ax.set_xlabel("score (higher = more ID)", fontsize=8)
        if k % cols == 0:
            ax.set_ylabel("density", fontsize=8)
    for k in range(len(methods), rows * cols):
        axes[k // cols][k % cols].axis("off")
    # One legend for all panels, in the title (matplotlib 3.6 lays out no figure legend).
    fig.suptitle("Score histograms: ID %s (blue) vs OOD %s (red)" % (id_name, set_name), fontsize=11)
    hist = base + "_hist.png"
    atomic_savefig(fig, os.path.join(plots_dir, hist))
    plt.close(fig)

    families = []
    for m in methods:
        if family_of(results, m) not in families:
            families.append(family_of(results, m))
    pcols = min(3, max(1, len(families)))
    prows = max(1, math.ceil(len(families) / pcols))
    fig, axes = plt.subplots(prows, pcols, figsize=(4.4 * pcols, 4.2 * prows + 0.5), squeeze=False,
                             constrained_layout=True)
    styles = dict(zip(methods, curve_styles(len(methods))))
    for f_i, family in enumerate(families):
        ax = axes[f_i // pcols][f_i % pcols]
        ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle=":")
        ax.axhline(0.95, color="0.35", linewidth=0.8, linestyle="--")
        ax.text(0.99, 0.935, "95% TPR", ha="right", va="top", fontsize=7, color="0.35")
        for m in methods:
            if family_of(results, m) != family:
                continue
            fpr, tpr = roc_points(scores["%s/%s" % (m, id_name)], scores["%s/%s" % (m, set_name)])
            cell = results["methods"][m]["sets"][set_name]
            colour, style = styles[m]
            ax.plot(fpr, tpr, color=colour, linestyle=style, linewidth=1.3,
                    label="%s (%.1f, %.1f)" % (m, cell["auroc"], cell["fpr95_tpr"]))
            ax.plot([cell["fpr95_tpr"] / 100], [0.95], marker="o", markersize=4, color=colour)
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_xlabel("OOD called ID (FPR)", fontsize=8)
        ax.set_ylabel("ID called ID (TPR)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_title(family, fontsize=10)
        ax.legend(fontsize=6.5, loc="lower right", title="method (AUROC, FPR95)", title_fontsize=6.5)
    for k in range(len(families), prows * pcols):
        axes[k // pcols][k % pcols].axis("off")
    fig.suptitle("ROC: %s vs %s\n(dots: each curve's FPR at 95%% TPR)" % (id_name, set_name), fontsize=10)
    roc = base + "_roc.png"
    atomic_savefig(fig, os.path.join(plots_dir, roc))
    plt.close(fig)
    return hist, roc


def table_html(results, key, set_name=None, group=None):
    """One result table (as results.md's): method, family, setting and the metrics of `key`
    ("average", "average_unseen"), of `set_name` or of a benchmark `group` ("near-OOD"); the best
    value of each metric column bold."""
    e = html.escape
    rows = ["<tr><th>method</th><th>family</th><th>setting</th>" + "".join("<th>%s</th>" % e(t) for _, t in METRICS) +
            "</tr>"]
    names, cells = [], []
    for name in grouped_methods(results):
        m = results["methods"][name]
        cell = (m["sets"][set_name] if set_name is not None else
                m.get("groups", {}).get(group) if group is not None else m.get(key))
        if cell is not None:
            names.append(name)
            cells.append(cell)
    best = {k: best_rows([c[k] for c in cells], HIGHER_IS_BETTER[k]) for k, _ in METRICS}
    for i, (name, cell) in enumerate(zip(names, cells)):
        m = results["methods"][name]
        setting = ", ".join("%s=%g" % (k, v) if isinstance(v, (int, float)) else "%s=%s" % (k, v)
                            for k, v in m.get("chosen", {}).items()) or "-"
        rows.append("<tr><td>%s</td><td>%s</td><td>%s</td>%s</tr>" % (
            e(name), e(family_of(results, name)), e(setting),
            "".join(("<td><b>%.2f</b></td>" if i in best[k] else "<td>%.2f</td>") % cell[k] for k, _ in METRICS)))
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def findings(results):
    """"What this shows": sentences built from results.json's numbers only (never written for one
    run): the best detector on average and per family, the hardest set, detectors that invert (AUROC
    below 50) on a set, with the known reason when they read the logits, and detectors at chance."""
    methods = grouped_methods(results)
    if not methods:
        return []
    sets = set_names(results)
    out = []
    avg = {m: results["methods"][m]["average"] for m in methods}
    best = max(methods, key=lambda m: avg[m]["auroc"])
    out.append("Best on average over the %d OOD set%s: %s (AUROC %.1f, FPR95 %.1f)." % (
        len(sets), "" if len(sets) == 1 else "s", best, avg[best]["auroc"], avg[best]["fpr95_tpr"]))
    per_family = []
    for fam in FAMILIES + sorted({family_of(results, m) for m in methods} - set(FAMILIES)):
        members = [m for m in methods if family_of(results, m) == fam]
        if members:
            top = max(members, key=lambda m: avg[m]["auroc"])
            per_family.append("%s %s %.1f" % (fam, top, avg[top]["auroc"]))
    if len(per_family) > 1:
        out.append("Best of each family (average AUROC): " + "; ".join(per_family) + ".")
    if len(sets) > 1:
        best_on = {s: max(methods, key=lambda m: results["methods"][m]["sets"][s]["auroc"]) for s in sets}
        hardest = min(sets, key=lambda s: results["methods"][best_on[s]]["sets"][s]["auroc"])
        easiest = max(sets, key=lambda s: results["methods"][best_on[s]]["sets"][s]["auroc"])
        out.append("Hardest set: %s (best AUROC %.1f, by %s); easiest: %s (%.1f, by %s)." % (
            hardest, results["methods"][best_on[hardest]]["sets"][hardest]["auroc"], best_on[hardest], easiest,
            results["methods"][best_on[easiest]]["sets"][easiest]["auroc"], best_on[easiest]))
    for s in sets:
        inverted = [m for m in methods if results["methods"][m]["sets"][s]["auroc"] < 50]
        if not inverted:
            continue
        listed = ", ".join("%s %.1f" % (m, results["methods"][m]["sets"][s]["auroc"]) for m in inverted)
        text = ("On %s, %d of %d detectors score the OOD images as more ID than the ID test images (AUROC below 50: "
                "%s): used as they are, they would flag the ID images instead." % (s, len(inverted), len(methods), listed))
        logit = [m for m in inverted if family_of(results, m) == "logit"]
        if logit:
            text += (" %s read%s the logits: the classifier is more confident on %s than on its own test images, a "
                     "known weakness of confidence scores far from the training data (Hein et al., CVPR 2019), not a "
                     "fault of the implementation." % (", ".join(logit), "s" if len(logit) == 1 else "", s))
        others = [m for m in methods if m not in inverted and family_of(results, m) in ("feature", "feature map")]
        if logit and others:
            top = max(others, key=lambda m: results["methods"][m]["sets"][s]["auroc"])
            text += " Detectors that read the features do not rely on that confidence: %s reaches %.1f." % (
                top, results["methods"][top]["sets"][s]["auroc"])
        out.append(text)
    chance = [m for m in methods if 45 <= avg[m]["auroc"] <= 55]
    if chance:
        out.append("Near chance on average (AUROC 45-55): %s." % ", ".join("%s %.1f" % (m, avg[m]["auroc"])
                                                                          for m in chance))
    return out


def write_findings(results, path):
    """findings.md: the sentences of findings() as one Markdown section (atomically)."""
    text = "## What this shows\n\n" + "\n".join("- " + f for f in findings(results)) + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def provenance_html(results):
    """What made the run (results.json "provenance" and "data"), as a definition list; "" if absent."""
    e = html.escape
    p = results.get("provenance") or {}
    items = [("oodkit", p.get("oodkit")), ("commit", p.get("commit")), ("build", p.get("build")),
             ("libraries", p.get("libraries")), ("date", p.get("date")), ("command", p.get("command"))]
    data = results.get("data")
    if isinstance(data, dict) and data:
        items.append(("data", ", ".join("%s: %s" % (k, v if not isinstance(v, dict) else
                                                    ", ".join("%s %s" % kv for kv in v.items()))
                                         for k, v in data.items())))
    items = [(k, v) for k, v in items if v not in (None, "")]
    if not items:
        return ""
    return "<dl class=\"prov\">" + "".join("<dt>%s</dt><dd>%s</dd>" % (e(k), e(str(v))) for k, v in items) + "</dl>"


def write_html(results, title, pictures, path, note, summary=None):
    e = html.escape
    sets = set_names(results)
    v = results.get("validation", {})
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title>" % e(title),
             "<style>body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;"
             "margin:0.5em 0 1.5em}td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}"
             "td:first-child,td:nth-child(2),td:nth-child(3),th{text-align:left}img{max-width:100%;"
             "border:1px solid #ddd;margin:0.3em 0}dl.prov{display:grid;grid-template-columns:max-content auto;"
             "gap:0 1em;font-size:90%}dl.prov dt{font-weight:bold}dl.prov dd{margin:0;font-family:monospace;"
             "word-break:break-all}.warn{color:#a00}</style></head><body>",
             "<h1>%s</h1>" % e(title),
             "<p>%s on %s (%s): ID test accuracy %.2f%%, %s ID test images. Hyper-parameters chosen on %s vs %s "
             "(AUROC). Scores are higher for ID. FPR95: OOD at or above the 95%%-TPR threshold; FPR95*: ID flagged "
             "at 95%% OOD caught. All figures in %%; the best of each column in bold.</p>" % (
                 e(str(results.get("arch"))), e(str(results.get("id"))), e(str(results.get("checkpoint"))),
                 results.get("id_accuracy", float("nan")), e(str(results.get("n_id_test"))),
                 e(str(v.get("id"))), e(str(v.get("ood"))))]
    parts.append(provenance_html(results))
    for w in results.get("warnings") or []:
        parts.append("<p class=\"warn\"><b>warning:</b> %s</p>" % e(str(w)))
    if note:
        parts.append("<p><b>%s</b></p>" % e(note))
    found = findings(results)
    if found:
        parts.append("<h2>what this shows</h2><ul>" + "".join("<li>%s</li>" % e(f) for f in found) + "</ul>")
    if summary:
        parts.append("<h2>summary</h2><img src=\"plots/%s\" alt=\"summary: AUROC and FPR95 of every method on every "
                     "set\">" % e(summary, quote=True))
    parts.append("<h2>average over the OOD sets</h2>" + table_html(results, "average"))
    if "seen_sets" in results:
        parts.append("<h2>average without %s (seen distribution)</h2>" % e(results["seen_sets"]) +
                     table_html(results, "average_unseen"))
    bench = results.get("benchmark")
    if bench:  # `eval --benchmark`: one average per group, partial ones marked, then the notes
        for g, info in bench.get("groups", {}).items():
            missing = info.get("missing") or []
            parts.append("<h2>%s%s: mean over %s%s</h2>" % (
                e(g), " (partial)" if missing else "", e(", ".join(info.get("sets", []))),
                "; not installed: " + e(", ".join(missing)) if missing else "") + table_html(results, None, group=g))
        parts.append("<p>Benchmark %s (OpenOOD v1.5 groups).</p><ul>%s</ul>" % (
            e(str(bench.get("name"))), "".join("<li>%s</li>" % e(n) for n in bench.get("notes", []))))
    for s in sets:
        parts.append("<h2>%s</h2>" % e(s) + table_html(results, None, s))
        for pic in pictures.get(s, ()):
            parts.append("<img src=\"plots/%s\" alt=\"%s\">" % (e(pic, quote=True), e(pic, quote=True)))
    parts.append("</body></html>\n")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(p for p in parts if p))
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
        pictures, summary = {}, None
        if plt is not None:
            scores = read_safetensors(os.path.join(a.run_dir, "scores.safetensors"))
            plots_dir = os.path.join(a.run_dir, "plots")
            os.makedirs(plots_dir, exist_ok=True)
            for s in set_names(results):
                pictures[s] = plot_set(plt, results, scores, s, plots_dir)
            summary = plot_summary(plt, results, plots_dir) if results["methods"] else None
        note = None if plt is not None else "No pictures: matplotlib is not installed (python3-matplotlib)."
        write_findings(results, os.path.join(a.run_dir, "findings.md"))
        write_html(results, a.title, pictures, os.path.join(a.run_dir, "report.html"), note, summary)
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
