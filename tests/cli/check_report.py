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
  - headless Chromium renders report.html from disk with every image loaded (a copy with one
    extra broken image must be caught: the check can fail);
  - exit 2 and a message naming results.json when it is missing; exit 3 and a tables-only page
    when matplotlib cannot be imported (python -S).
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
        mj = {"chosen": {"k": 5} if m == "b" else {}, "validation_auroc": 60.0, "sets": {}}
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


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.cells = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.imgs.append(dict(attrs).get("src"))

    def handle_data(self, data):
        self.cells.append(data.strip())


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

    page = os.path.join(run, "report.html")
    parser = Page()
    parser.feed(open(page, encoding="utf-8").read())
    if len(parser.imgs) != 2 * len(sets):
        failures.append("report.html has %d images, want %d" % (len(parser.imgs), 2 * len(sets)))
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
        if got["total"] != 2 * len(sets) or got["loaded"] != got["total"] or got["broken"]:
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

    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    for d in (run, empty, bare):
        shutil.rmtree(d, ignore_errors=True)
    print("check_report: plots, exact ROC areas, report.html tables and links, rendered by Chromium with every image")


if __name__ == "__main__":
    main()
