#!/usr/bin/env python3
"""CI check of tools/report.py (the eval run's plots and report.html), Python standard library only.

    check_report.py REPORT_PYTHON REPORT_SCRIPT CHROMIUM

Builds a run folder by hand (results.json, scores.safetensors with ties and an infinite score, a
set name with '/' and ':'), runs the script with REPORT_PYTHON (the interpreter oodkit uses, with
matplotlib) and checks:
  - every plot is a PNG of a sane size, one histogram and one ROC picture per OOD set;
  - the ROC points the script draws enclose exactly the AUROC of a naive pair count (ties 1/2),
    for every method and set;
  - report.html lists every method with its figures and links only files that exist;
  - the summary figure's inputs (plots/summary.png; report.summary_matrix): every method once,
    grouped by family, the best of each column as a naive scan finds it, for 3 and for 30 methods
    and for 1; the HTML tables' bold cells are exactly those best values; 30 methods' ROC curves
    get 30 distinct (colour, line style) pairs;
  - headless Chromium renders report.html from disk with every image loaded (a copy with one
    extra broken image must be caught: the check can fail);
  - exit 2 and a message naming results.json when it is missing; exit 3 and a tables-only page
    when matplotlib cannot be imported (python -S);
  - tools/picture_grid.py (beside the report script; `heatmap show`'s labelled grid) draws every
    label its inputs call for: set names, column headers, each image's row within its set, its
    score and the ID/OOD decision recomputed here from the threshold, the colour bars' notes
    (read from the drawn figure's texts); bad arrays exit 2 naming the tensor or key, writing nothing.
"""
import html.parser
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import st_reader  # the raw safetensors reader of the cli checks (same folder)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_safetensors(path, tensors):
    """{name: list of floats} as 1-D F64 tensors, no metadata."""
    st_reader.write(path, [(name, "F64", [len(v)], struct.pack("<%dd" % len(v), *v)) for name, v in tensors.items()])


def naive_auroc(ids, oods):
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in ids for b in oods)
    return wins / (len(ids) * len(oods))


def lcg(seed):
    state = seed
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) % 2 ** 64
        yield (state >> 11) / 2.0 ** 53


def make_run(run_dir):
    """A small eval result: methods a, b (coarse: many ties), c (an infinite ID score); two sets."""
    g = lcg(7)
    ids = {"a": [next(g) + 0.3 for _ in range(200)], "b": [round(3 * next(g)) for _ in range(200)],
           "c": [next(g) for _ in range(199)] + [float("inf")]}
    sets = {"far": {"a": [next(g) - 0.2 for _ in range(150)], "b": [round(2 * next(g)) for _ in range(150)],
                    "c": [next(g) - 0.1 for _ in range(150)]},
            "folder:/data/odd set": {"a": [next(g) for _ in range(120)], "b": [round(3 * next(g)) for _ in range(120)],
                                     "c": [next(g) for _ in range(120)]}}
    results = {"arch": "small_cnn", "checkpoint": "model.safetensors", "id": "synthetic-id", "id_accuracy": 91.25,
               "n_id_test": 200, "validation": {"id": "synthetic-id:heldout", "ood": "pseudo"}, "methods": {}}
    scores = {}
    for m in ids:
        scores["%s/synthetic-id" % m] = ids[m]
        mj = {"family": {"a": "fusion", "b": "logit", "c": "feature"}[m], "chosen": {"k": 5} if m == "b" else {},
              "validation_auroc": 60.0, "sets": {}}
        for s in sets:
            scores["%s/%s" % (m, s)] = sets[s][m]
            au = 100 * naive_auroc(ids[m], sets[s][m])
            mj["sets"][s] = {"auroc": au, "aupr_in": 50.0, "aupr_out": 40.0, "fpr95_tpr": 70.0,
                             "fpr95_tpr_openood": 65.0}
        mj["average"] = {k: sum(mj["sets"][s][k] for s in sets) / len(sets) for k in mj["sets"]["far"]}
        results["methods"][m] = mj
    with open(os.path.join(run_dir, "results.json"), "w") as f:
        json.dump(results, f)
    write_safetensors(os.path.join(run_dir, "scores.safetensors"), scores)
    return results, ids, sets


def make_wide_run(run_dir, n):
    """n methods (families in turn, reversed order), one OOD set; returns results."""
    g = lcg(11 + n)
    fams = ["fusion", "heatmap", "feature map", "feature", "logit"]
    results = {"arch": "small_cnn", "checkpoint": "m.safetensors", "id": "id", "id_accuracy": 90.0, "n_id_test": 50,
               "validation": {"id": "id:heldout", "ood": "pseudo"}, "methods": {}}
    scores = {}
    for k in range(n):
        m = "method_%02d" % k
        ids, oods = [next(g) + 0.1 * (k % 7) for _ in range(50)], [next(g) for _ in range(40)]
        scores[m + "/id"], scores[m + "/far"] = ids, oods
        cell = {"auroc": round(100 * naive_auroc(ids, oods), 1), "aupr_in": 50.0, "aupr_out": 40.0,
                "fpr95_tpr": float(k % 5 * 10), "fpr95_tpr_openood": 65.0}
        results["methods"][m] = {"family": fams[k % len(fams)], "chosen": {}, "validation_auroc": 60.0,
                                 "sets": {"far": cell}, "average": dict(cell)}
    with open(os.path.join(run_dir, "results.json"), "w") as f:
        json.dump(results, f)
    write_safetensors(os.path.join(run_dir, "scores.safetensors"), scores)
    return results


FAMILY_ORDER = ["logit", "feature", "feature map", "heatmap", "fusion"]


def check_summary(report, results, failures, what):
    """The summary figure's inputs against a naive scan of results.json."""
    for key, higher in (("auroc", True), ("fpr95_tpr", False)):
        methods, cols, values, best = report.summary_matrix(results, key)
        if sorted(methods) != sorted(results["methods"]) or len(methods) != len(results["methods"]):
            failures.append("%s: summary rows %s are not the methods once each" % (what, methods))
        ranks = [FAMILY_ORDER.index(results["methods"][m]["family"]) for m in methods]
        if ranks != sorted(ranks):
            failures.append("%s: summary rows not grouped by family: %s" % (what, methods))
        sets = list(next(iter(results["methods"].values()))["sets"])
        if cols != sets + ["average"]:
            failures.append("%s: summary columns %s" % (what, cols))
        for j, c in enumerate(cols):
            col = [(results["methods"][m]["average"] if c == "average" else results["methods"][m]["sets"][c])[key]
                   for m in methods]
            if [row[j] for row in values] != col:
                failures.append("%s: summary %s column %s differs from results.json" % (what, key, c))
            want = [i for i, v in enumerate(col) if v == (max(col) if higher else min(col))]
            if best[j] != want:
                failures.append("%s: best %s of column %s: %s, want rows %s" % (what, key, c, best[j], want))


def check_findings(report, failures):
    """findings() on a hand-made result: a logit detector inverted on noise, a feature one not."""
    def cell(a, f):
        return {"auroc": a, "aupr_in": 0.0, "aupr_out": 0.0, "fpr95_tpr": f, "fpr95_tpr_openood": 0.0}
    results = {"id": "id", "methods": {
        "msp": {"family": "logit", "sets": {"noise": cell(30.0, 99.0), "shapes": cell(80.0, 60.0)},
                "average": cell(55.0, 79.5)},
        "knn": {"family": "feature", "sets": {"noise": cell(90.0, 20.0), "shapes": cell(70.0, 70.0)},
                "average": cell(80.0, 45.0)},
        "nap": {"family": "feature map", "sets": {"noise": cell(40.0, 90.0), "shapes": cell(96.0, 10.0)},
                "average": cell(68.0, 50.0)}}}
    want = [
        "Best on average over the 2 OOD sets: knn (AUROC 80.0, FPR95 45.0).",
        "Best of each family (average AUROC): logit msp 55.0; feature knn 80.0; feature map nap 68.0.",
        "Hardest set: noise (best AUROC 90.0, by knn); easiest: shapes (96.0, by nap).",
        "On noise, 2 of 3 detectors score the OOD images as more ID than the ID test images (AUROC below 50: msp "
        "30.0, nap 40.0): used as they are, they would flag the ID images instead. msp reads the logits: the "
        "classifier is more confident on noise than on its own test images, a known weakness of confidence scores "
        "far from the training data (Hein et al., CVPR 2019), not a fault of the implementation. Detectors that "
        "read the features do not rely on that confidence: knn reaches 90.0.",
        "Near chance on average (AUROC 45-55): msp 55.0."]
    got = report.findings(results)
    if got != want:
        failures.append("findings:\n    got  %s\n    want %s" % (got, want))


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.cells, self.bold = [], [], []
        self.in_bold = False

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.imgs.append(dict(attrs).get("src"))
        self.in_bold = tag == "b"

    def handle_endtag(self, tag):
        if tag == "b":
            self.in_bold = False

    def handle_data(self, data):
        self.cells.append(data.strip())
        if self.in_bold:
            self.bold.append(data.strip())


CHECK_JS = """<script>
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0, bad = [];
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++; else bad.push(imgs[i].getAttribute('src'));
  }
  var pre = document.createElement('pre');
  pre.textContent = 'IMGCHECK ' + JSON.stringify({total: imgs.length, loaded: ok, broken: bad});
  document.body.appendChild(pre);
});
</script>"""


def render(chromium, page):
    """Loads `page` in headless Chromium; returns the IMGCHECK object the page's load handler wrote."""
    p = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                        "--virtual-time-budget=10000", "--dump-dom", "file://" + page],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    for line in p.stdout.splitlines():
        i = line.find("<pre>IMGCHECK ")  # the handler's output, not its source text
        if i >= 0:
            return json.loads(line[i + 14:].split("</pre>")[0].replace("&amp;", "&"))
    raise RuntimeError("chromium printed no IMGCHECK (exit %d): %s" % (p.returncode, p.stderr[-500:]))


def check_picture_grid(python, script, failures):
    """tools/picture_grid.py on hand-made arrays: 5 images of 4x4 px in sets "in" (3) and "out/x" (2),
    maps "heatmap" (scores, threshold 0) and "nap" (scores, no threshold), overlays on."""
    root = tempfile.mkdtemp(prefix="oodkit_grid_")
    n, hw = 5, 16
    scores = {"heatmap": [0.25, -1.5, 0.0, 3.0, -0.125], "nap": [1.0, 2.0, 3.0, 4.0, 5.0]}
    entries = [("images", "U8", [n, 3, 4, 4], bytes((7 * k) % 256 for k in range(n * 3 * hw)))]
    for col in ("heatmap", "nap"):
        entries.append(("map/" + col, "F32", [n, 4, 4], struct.pack("<%df" % (n * hw), *[k / 80.0 for k in range(n * hw)])))
        entries.append(("score/" + col, "F64", [n], struct.pack("<%dd" % n, *scores[col])))
    entries.append(("set", "I64", [n], struct.pack("<5q", 0, 0, 0, 1, 1)))
    meta = {"sets": json.dumps(["in", "out/x"]), "title": "grid check", "vmax/heatmap": "0.5", "vmax/nap": "2",
            "scale_note/heatmap": "note one", "threshold/heatmap": "0", "overlay": "1"}
    arrays, png, labels = (os.path.join(root, f) for f in ("a.safetensors", "g.png", "labels.json"))
    st_reader.write(arrays, entries, meta)
    grid = os.path.join(os.path.dirname(script), "picture_grid.py")
    p = subprocess.run([python, grid, arrays, "--out", png, "--labels-out", labels], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True)
    if p.returncode != 0:
        failures.append("picture_grid.py exited with %d: %s" % (p.returncode, p.stdout))
        return
    with open(png, "rb") as f:
        if f.read(8) != PNG_MAGIC:
            failures.append("picture_grid.py wrote no PNG")
    drawn = json.load(open(labels))
    want = ["in", "out/x", "input", "heatmap", "nap", "overlay", "grid check"]
    want += ["#%d" % k for k in (0, 1, 2)]  # rows within each set: 0..2 and 0..1
    for i, sc in enumerate(scores["heatmap"]):
        want.append("%.4g %s" % (sc, "ID" if sc >= 0 else "OOD"))
    want += ["%.4g" % sc for sc in scores["nap"]]
    missing = [w for w in want if w not in drawn]
    counts = {w: drawn.count(w) for w in ("#0", "#1", "#2", "in", "out/x")}
    if missing or counts != {"#0": 2, "#1": 2, "#2": 1, "in": 2, "out/x": 1}:
        failures.append("picture_grid labels: missing %s, counts %s, drawn %s" % (missing, counts, drawn))
    bars = [t for t in drawn if "(0 = looks ID)" in t]
    if len(bars) != 2 or not any("note one" in b and "0.5" in b for b in bars):
        failures.append("picture_grid colour bar labels: %s" % bars)
    for bad_meta, bad_entries, named in (
            (dict(meta, **{"vmax/nap": "x"}), entries, "vmax/nap"),
            (meta, entries[:-1] + [("set", "I64", [n], struct.pack("<5q", 0, 0, 0, 1, 2))], "'set'"),
            (meta, [e for e in entries if not e[0].startswith("map/")], "map/")):
        if os.path.exists(png):
            os.remove(png)
        st_reader.write(arrays, bad_entries, bad_meta)
        p = subprocess.run([python, grid, arrays, "--out", png], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
        if p.returncode != 2 or named not in p.stdout or os.path.exists(png):
            failures.append("picture_grid.py on bad arrays (%s): exit %d, '%s'" % (named, p.returncode, p.stdout))
    shutil.rmtree(root, ignore_errors=True)


def main():
    python, script, chromium = sys.argv[1:4]
    failures = []
    run = tempfile.mkdtemp(prefix="oodkit_report_")
    results, ids, sets = make_run(run)
    p = subprocess.run([python, script, run, "--title", "check"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    print(p.stdout)
    if p.returncode != 0:
        failures.append("report.py exited with %d" % p.returncode)

    spec = importlib.util.spec_from_file_location("report", script)
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    for s in sets:
        for kind in ("hist", "roc"):
            path = os.path.join(run, "plots", "%s_%s.png" % (report.safe_name(s), kind))
            try:
                with open(path, "rb") as f:
                    head = f.read(24)
                w, h = struct.unpack(">II", head[16:24])
                if head[:8] != PNG_MAGIC or not (300 <= w <= 4000 and 200 <= h <= 4000):
                    failures.append("%s: not a sane PNG (%dx%d)" % (path, w, h))
            except (OSError, struct.error) as e:
                failures.append("%s: %s" % (path, e))
        for m in ids:
            fpr, tpr = report.roc_points(ids[m], sets[s][m])
            area = sum((fpr[i + 1] - fpr[i]) * (tpr[i + 1] + tpr[i]) / 2 for i in range(len(fpr) - 1))
            want = naive_auroc(ids[m], sets[s][m])
            if abs(area - want) > 1e-12 or fpr[-1] != 1.0 or tpr[-1] != 1.0:
                failures.append("ROC of %s on %s: area %.15f, naive AUROC %.15f" % (m, s, area, want))

    check_summary(report, results, failures, "3 methods")
    check_findings(report, failures)
    styles = report.curve_styles(30)
    if len(set(styles)) != 30:
        failures.append("30 methods' ROC curves share a colour and style: %s" % styles)
    for n in (1, 30):
        wide = tempfile.mkdtemp(prefix="oodkit_report_%d_" % n)
        wide_results = make_wide_run(wide, n)
        p = subprocess.run([python, script, wide], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
        if p.returncode != 0 or not os.path.isfile(os.path.join(wide, "plots", "summary.png")):
            failures.append("%d methods: exit %d, summary.png %s: %s" % (
                n, p.returncode, os.path.isfile(os.path.join(wide, "plots", "summary.png")), p.stdout[-300:]))
        check_summary(report, wide_results, failures, "%d methods" % n)
        shutil.rmtree(wide, ignore_errors=True)

    page = os.path.join(run, "report.html")
    parser = Page()
    parser.feed(open(page, encoding="utf-8").read())
    if len(parser.imgs) != 2 * len(sets) + 1 or parser.imgs[0] != "plots/summary.png":
        failures.append("report.html has images %s, want the summary first and 2 per set" % parser.imgs)
    # Bold cells: per table (average, then each set), each metric column's best value(s), as text.
    want_bold = []
    for where in [None] + list(sets):
        cells = [(mj["average"] if where is None else mj["sets"][where]) for mj in results["methods"].values()]
        for key, higher in (("auroc", True), ("aupr_in", True), ("aupr_out", True), ("fpr95_tpr", False),
                            ("fpr95_tpr_openood", False)):
            col = [c[key] for c in cells]
            best = max(col) if higher else min(col)
            want_bold += ["%.2f" % v for v in col if v == best]
    if sorted(parser.bold) != sorted(want_bold):
        failures.append("report.html's bold cells %s, want the best per column %s" % (sorted(parser.bold),
                                                                                      sorted(want_bold)))
    for src in parser.imgs:
        if not os.path.isfile(os.path.join(run, src)):
            failures.append("report.html links a missing file %s" % src)
    for m, mj in results["methods"].items():
        for s in sets:
            if "%.2f" % mj["sets"][s]["auroc"] not in parser.cells:
                failures.append("report.html lacks %s's AUROC on %s (%.2f)" % (m, s, mj["sets"][s]["auroc"]))
        if m not in parser.cells:
            failures.append("report.html lacks method %s" % m)

    text = open(page, encoding="utf-8").read()
    checked = os.path.join(run, "check.html")
    broken = os.path.join(run, "check_broken.html")
    with open(checked, "w", encoding="utf-8") as f:
        f.write(text.replace("</body>", CHECK_JS + "</body>"))
    with open(broken, "w", encoding="utf-8") as f:
        f.write(text.replace("</body>", "<img src=\"plots/missing.png\">" + CHECK_JS + "</body>"))
    try:
        got = render(chromium, checked)
        print("chromium:", got)
        if got["total"] != 2 * len(sets) + 1 or got["loaded"] != got["total"] or got["broken"]:
            failures.append("chromium: %s" % got)
        got = render(chromium, broken)
        if got["broken"] != ["plots/missing.png"]:
            failures.append("chromium did not catch the broken image: %s" % got)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        failures.append("chromium (%s): %s" % (chromium, e))

    empty = tempfile.mkdtemp(prefix="oodkit_report_empty_")
    p = subprocess.run([python, script, empty], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    if p.returncode != 2 or "results.json" not in p.stdout:
        failures.append("missing results.json: exit %d, '%s'" % (p.returncode, p.stdout.strip()))
    bare = tempfile.mkdtemp(prefix="oodkit_report_bare_")
    make_run(bare)
    p = subprocess.run([python, "-S", script, bare], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    bare_page = os.path.join(bare, "report.html")
    if p.returncode != 3 or "matplotlib" not in p.stdout or not os.path.isfile(bare_page) or \
            "<img" in open(bare_page).read() or os.path.exists(os.path.join(bare, "plots")):
        failures.append("without matplotlib: exit %d, '%s'" % (p.returncode, p.stdout.strip()))

    check_picture_grid(python, script, failures)

    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    for d in (run, empty, bare):
        shutil.rmtree(d, ignore_errors=True)
    print("check_report: plots, exact ROC areas, report.html tables and links, rendered by Chromium with every image")


if __name__ == "__main__":
    main()
