#!/usr/bin/env python3
"""The training figure of an `oodkit study` report (called by `oodkit study`).

    python3 tools/study_figures.py STUDY_DIR [--classes K] [--lines-out LINES.json]
    python3 tools/study_figures.py STUDY_DIR --html

--html renders STUDY_DIR/report.md (written by `oodkit study`) as STUDY_DIR/report.html: headings,
paragraphs, lists, tables and images of the Markdown subset the study writes, relative links only,
no script, opens from disk (md_to_html).

Reads STUDY_DIR/classifier/log.json (one object per epoch: epoch, train_loss, train_accuracy,
test_accuracy as fractions) and, when present, STUDY_DIR/heatmap/log.json (epoch, loss,
validation_auroc in percent or null) and writes STUDY_DIR/figures/training.png (atomically):
  left    the classifier's train and test accuracy (%) per epoch, with the chance level 100/K
          (K from --classes, default: not drawn) as a dotted line
  middle  the classifier's training loss per epoch
  right   the heatmap decoder's training loss and validation AUROC per epoch (only with a decoder)
--lines-out writes every drawn line as {label: [[x...], [y...]]} (for tests).
Exit status: 0 written; 2 bad input (named on stderr); 3 matplotlib missing.
"""
import argparse
import html
import json
import os
import re
import sys

from report import BadInput, atomic_savefig  # the report script beside this one

MaxNLocator = None  # matplotlib.ticker's, imported in main()


def read_log(path, keys):
    try:
        with open(path, encoding="utf-8") as f:
            log = json.load(f)
    except (OSError, ValueError) as e:
        raise BadInput("%s: %s" % (path, e))
    if not isinstance(log, list) or not log or any(not isinstance(e, dict) or any(k not in e for k in keys)
                                                   for e in log):
        raise BadInput("%s: not a list of epochs with %s" % (path, ", ".join(keys)))
    return log


def draw(plt, classifier, decoder, classes):
    panels = 3 if decoder else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.4))
    ep = [e["epoch"] for e in classifier]
    ax = axes[0]
    ax.plot(ep, [100 * e["train_accuracy"] for e in classifier], "o-", label="train accuracy")
    ax.plot(ep, [100 * e["test_accuracy"] for e in classifier], "s--", label="test accuracy")
    if classes:
        ax.axhline(100.0 / classes, color="grey", linestyle=":", label="chance (1/%d)" % classes)
    ax.set_xlabel("epoch"), ax.set_ylabel("accuracy (%)"), ax.set_title("classifier accuracy")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(ep, [e["train_loss"] for e in classifier], "o-", label="training loss")
    ax.set_xlabel("epoch"), ax.set_ylabel("cross-entropy"), ax.set_title("classifier loss")
    ax.legend(fontsize=8)
    if decoder:
        ax = axes[2]
        dep = [e["epoch"] for e in decoder]
        ax.plot(dep, [e["loss"] for e in decoder], "o-", color="tab:red", label="decoder loss")
        ax.set_xlabel("epoch"), ax.set_ylabel("loss"), ax.set_title("heatmap decoder")
        auroc = [(e["epoch"], e["validation_auroc"]) for e in decoder if e["validation_auroc"] is not None]
        if auroc:
            twin = ax.twinx()
            twin.plot([a for a, _ in auroc], [b for _, b in auroc], "s--", color="tab:green",
                      label="validation AUROC")
            twin.set_ylabel("validation AUROC (%)")
            twin.set_ylim(0, 100)
            twin.axhline(50.0, color="grey", linestyle=":", label="chance (50)")
            twin.legend(fontsize=8, loc="lower right")
        ax.legend(fontsize=8, loc="upper right")
    for k, a in enumerate(axes):
        a.grid(alpha=0.3)
        epochs = ep if k < 2 else [e["epoch"] for e in decoder]
        if len(epochs) <= 12:
            a.set_xticks(epochs)
        else:
            a.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


def inline_html(text):
    """Escapes `text`, then **bold**, `code` and [label](link) (link kept relative)."""
    t = html.escape(text, quote=False)
    t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    return re.sub(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', t)


def image_html(text):
    """Replaces ![alt](src) by <img>, the rest inline_html."""
    parts, last = [], 0
    for m in re.finditer(r"!\[([^\]]*)\]\(([^)\s]+)\)", text):
        parts.append(inline_html(text[last:m.start()]))
        parts.append('<img src="%s" alt="%s">' % (html.escape(m.group(2)), html.escape(m.group(1))))
        last = m.end()
    return "".join(parts) + inline_html(text[last:])


def md_to_html(md, title):
    """The Markdown subset of report.md: #..#### headings, '- ' lists, '|' tables (the second row
    '|---|' dropped, the first a header), image lines, paragraphs separated by blank lines."""
    out, table, items, para = [], [], [], []

    def flush():
        if table:
            rows = [[c.strip() for c in r.strip().strip("|").split("|")] for r in table if not re.match(r"^\|[-| :]+\|$", r.strip())]
            out.append("<table>\n<tr>" + "".join("<th>%s</th>" % image_html(c) for c in rows[0]) + "</tr>\n" +
                       "".join("<tr>" + "".join("<td>%s</td>" % image_html(c) for c in r) + "</tr>\n" for r in rows[1:]) +
                       "</table>")
        if items:
            out.append("<ul>\n" + "".join("<li>%s</li>\n" % image_html(i) for i in items) + "</ul>")
        if para:
            out.append("<p>%s</p>" % image_html(" ".join(para)))
        del table[:], items[:], para[:]

    for line in md.splitlines():
        h = re.match(r"^(#{1,4}) (.*)$", line)
        if h:
            flush()
            out.append("<h%d>%s</h%d>" % (len(h.group(1)), inline_html(h.group(2)), len(h.group(1))))
        elif line.startswith("|"):
            if items or para:
                flush()
            table.append(line)
        elif line.startswith("- "):
            if table or para:
                flush()
            items.append(line[2:])
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
        elif not line.strip():
            flush()
        else:
            if table or items:
                flush()
            para.append(line.strip())
    flush()
    style = ("body{font-family:sans-serif;max-width:1250px;margin:1em auto;line-height:1.4}"
             "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:2px 6px;"
             "font-size:13px}img{max-width:100%}code{background:#f3f3f3}")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title><style>%s</style></head>"
            "<body>\n%s\n</body></html>\n" % (html.escape(title), style, "\n".join(out)))


def write_html(study_dir):
    src = os.path.join(study_dir, "report.md")
    try:
        with open(src, encoding="utf-8") as f:
            md = f.read()
    except OSError as e:
        raise BadInput("%s: %s" % (src, e.strerror))
    out = os.path.join(study_dir, "report.html")
    tmp = out + ".tmp.%d" % os.getpid()
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(md_to_html(md, "oodkit study"))
    os.replace(tmp, out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study_dir")
    ap.add_argument("--classes", type=int, default=0)
    ap.add_argument("--lines-out")
    ap.add_argument("--html", action="store_true")
    a = ap.parse_args()
    if a.html:
        try:
            write_html(a.study_dir)
        except BadInput as e:
            print("study_figures: %s" % e, file=sys.stderr)
            return 2
        return 0
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        global MaxNLocator
        from matplotlib.ticker import MaxNLocator
    except ImportError as e:
        print("study_figures: %s (Debian: python3-matplotlib; tools/setup.sh installs it)" % e, file=sys.stderr)
        return 3
    try:
        classifier = read_log(os.path.join(a.study_dir, "classifier", "log.json"),
                              ("epoch", "train_loss", "train_accuracy", "test_accuracy"))
        hpath = os.path.join(a.study_dir, "heatmap", "log.json")
        decoder = read_log(hpath, ("epoch", "loss", "validation_auroc")) if os.path.exists(hpath) else None
    except BadInput as e:
        print("study_figures: %s" % e, file=sys.stderr)
        return 2
    fig = draw(plt, classifier, decoder, a.classes)
    out_dir = os.path.join(a.study_dir, "figures")
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, "training.png")
    atomic_savefig(fig, out, dpi=100)
    if a.lines_out:
        lines = {}
        for ax in fig.axes:
            for line in ax.get_lines():
                x, y = line.get_data()
                lines[line.get_label()] = [[float(v) for v in x], [float(v) for v in y]]
        with open(a.lines_out, "w", encoding="utf-8") as f:
            json.dump(lines, f, indent=1)
    plt.close(fig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
