#!/usr/bin/env python3
"""CI check of `oodkit eval` (Python standard library only).

Runs the command on the CPU with the shipped ResNet-20 on the 1,000 CIFAR-10 test images
against a few hundred iSUN and Tiny ImageNet images, then checks that the results are sane
and that every reported metric equals a recomputation from the dumped per-image scores,
done here independently: AUROC by the Mann-Whitney statistic, average precision as
scikit-learn defines it, and FPR@95TPR with the sort-based function of the Outlier Exposure /
Energy code that the seeds use (and the OpenOOD convention).
"""
import csv
import json
import subprocess
import sys
import tempfile

from st_reader import tensors, values  # the raw safetensors reader of the cli checks (same folder)


def read_safetensors(path):
    """name -> list of floats; every tensor of the scores file is F64."""
    out = {}
    for name, (dtype, _, blob) in tensors(path).items():
        assert dtype == "F64", (name, dtype)
        out[name] = values(dtype, blob)
    return out


def auroc(id_s, ood_s):
    # Mann-Whitney: P(id > ood) + 0.5 P(id == ood), by ranks with ties averaged.
    allv = sorted([(v, 0) for v in id_s] + [(v, 1) for v in ood_s])
    rank_sum, i = 0.0, 0
    while i < len(allv):
        j = i
        while j < len(allv) and allv[j][0] == allv[i][0]:
            j += 1
        avg = (i + 1 + j) / 2.0
        rank_sum += avg * sum(1 for k in range(i, j) if allv[k][1] == 0)
        i = j
    n1, n2 = len(id_s), len(ood_s)
    return (rank_sum - n1 * (n1 + 1) / 2.0) / (n1 * n2)


def average_precision(pos, neg):
    # sklearn: sum over distinct thresholds (descending) of (R_n - R_{n-1}) * P_n.
    pts = sorted([(v, 1) for v in pos] + [(v, 0) for v in neg], key=lambda t: -t[0])
    tp = fp = 0
    ap, prev_r, i = 0.0, 0.0, 0
    while i < len(pts):
        j = i
        while j < len(pts) and pts[j][0] == pts[i][0]:
            tp += pts[j][1]
            fp += 1 - pts[j][1]
            j += 1
        r = tp / len(pos)
        ap += (r - prev_r) * (tp / (tp + fp))
        prev_r = r
        i = j
    return ap


def fpr_classic(id_s, ood_s, recall_level=0.95):
    # fpr_and_fdr_at_recall of the Outlier Exposure / Energy code, ID positive.
    pts = sorted([(v, 1) for v in id_s] + [(v, 0) for v in ood_s], key=lambda t: t[0])
    pts = pts[::-1]  # descending (their argsort(kind="mergesort")[::-1])
    scores = [p[0] for p in pts]
    y = [p[1] for p in pts]
    idxs = [k for k in range(len(scores) - 1) if scores[k] != scores[k + 1]] + [len(scores) - 1]
    cum, tps_all = 0, []
    for v in y:
        cum += v
        tps_all.append(cum)
    tps = [tps_all[k] for k in idxs]
    fps = [1 + k - t for k, t in zip(idxs, tps)]
    recall = [t / tps[-1] for t in tps]
    last = next(k for k, t in enumerate(tps) if t >= tps[-1])
    recall = recall[last::-1] + [1.0]
    fps = fps[last::-1] + [0]
    dist = [abs(r - recall_level) for r in recall]
    cutoff = dist.index(min(dist))
    return fps[cutoff] / len(ood_s)


def fpr_openood(id_s, ood_s):
    # Fraction of ID at or below the first (ascending) threshold that catches >= 95% of OOD.
    for t in sorted(set(id_s) | set(ood_s)):
        if sum(1 for v in ood_s if v <= t) >= 0.95 * len(ood_s):
            return sum(1 for v in id_s if v <= t) / len(id_s)
    return 1.0


def main():
    oodkit = sys.argv[1]
    out = tempfile.mkdtemp(prefix="oodkit_eval_")
    cmd = [oodkit, "eval", "--fit-limit", "2000", "--heldout", "500", "--val-ood-limit", "300",
           "--ood", "isun,tinyimagenet", "--ood-limit", "300", "--tuning", "features",
           "--out", out, "--dump-scores"]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    res = json.load(open(out + "/results.json"))
    scores = read_safetensors(out + "/scores.safetensors")
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)

    check(abs(res["id_accuracy"] - 91.5) < 1e-9, "ID accuracy %s != 91.5" % res["id_accuracy"])
    check(res["n_id_test"] == 1000, "ID test count")
    checked = 0
    for method, m in res["methods"].items():
        id_s = scores[method + "/cifar10"]
        for ood_set, r in m["sets"].items():
            ood_s = scores[method + "/" + ood_set]
            check(len(id_s) == 1000 and len(ood_s) == 300, "%s/%s sizes" % (method, ood_set))
            expect = {
                "auroc": 100 * auroc(id_s, ood_s),
                "aupr_in": 100 * average_precision(id_s, ood_s),
                "aupr_out": 100 * average_precision([-v for v in ood_s], [-v for v in id_s]),
                "fpr95_tpr": 100 * fpr_classic(id_s, ood_s),
                "fpr95_tpr_openood": 100 * fpr_openood(id_s, ood_s),
            }
            for key, v in expect.items():
                check(abs(r[key] - v) < 1e-7, "%s/%s %s: reported %.9f, recomputed %.9f" % (method, ood_set, key, r[key], v))
                checked += 1
            if method in ("msp", "energy", "odin"):
                check(r["auroc"] > 80, "%s/%s AUROC %.2f is not well above chance" % (method, ood_set, r["auroc"]))
    check(checked >= 25 * 2 * 5, "too few metrics checked: %d" % checked)

    # results.md: in each table (a set, then "average"), the bold cells of a metric column are the
    # rows whose results.json value is the column's best (higher AUROC/AUPR, lower FPR95).
    keys = [("auroc", max), ("aupr_in", max), ("aupr_out", max), ("fpr95_tpr", min), ("fpr95_tpr_openood", min)]
    tables, current = {}, None
    for line in open(out + "/results.md", encoding="utf-8"):
        if line.startswith("## "):
            current = None
            title = line[3:].strip()
        elif line.startswith("| method"):  # a results table (not, e.g., a fused row's component table)
            current = title
            tables[current] = {}
        elif current and line.startswith("| "):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            tables[current][cells[0]] = cells[2:7]
    unseen = ["average without " + res["seen_sets"]] if "seen_sets" in res else []
    check(sorted(tables) == sorted(list(res["methods"]["msp"]["sets"]) + ["average"] + unseen),
          "results.md tables %s" % sorted(tables))

    def row_of(m, table):
        mj = res["methods"][m]
        return mj["average"] if table == "average" else mj["average_unseen"] if table in unseen else mj["sets"][table]
    bolds = 0
    for table, rows in tables.items():
        for k, (key, pick) in enumerate(keys):
            vals = {m: row_of(m, table)[key] for m in rows}
            best = pick(vals.values())
            for m, cells in rows.items():
                bold = cells[k].startswith("**") and cells[k].endswith("**")
                bolds += bold
                check(bold == (vals[m] == best), "results.md %s %s %s: '%s' (best %.4f)" % (table, m, key, cells[k], best))
    check(bolds >= len(tables) * len(keys), "results.md: only %d bold cells" % bolds)

    # The saved detectors score new images without refitting: `oodkit score` on the iSUN images
    # must reproduce the scores the evaluation dumped for them.
    csv_path = out + "/isun_scores.csv"
    subprocess.run([oodkit, "score", "--detectors", out + "/detectors", "--data", "isun", "--limit", "300",
                    "--out", csv_path], check=True)
    rows = list(csv.reader(open(csv_path)))
    header, rows = rows[0], rows[1:]
    check(len(rows) == 300, "score: %d rows" % len(rows))
    # Columns: index, source (the image file), predicted_class, one score per method, then each
    # method's decision (tests/cli/check_plan.py checks those).
    check(header[:3] == ["index", "source", "predicted_class"], "score header %r" % header[:3])
    compared = 0
    for col, method in enumerate(header[3:3 + len(res["methods"])], start=3):
        ref = scores[method + "/isun"]
        for i, row in enumerate(rows):
            v = float(row[col])
            if abs(v - ref[i]) > 1e-7 * max(1.0, abs(ref[i])):
                failures.append("score %s image %d: %r vs evaluated %r" % (method, i, v, ref[i]))
                break
            compared += 1
    check(compared == 300 * len(res["methods"]), "score compared %d values" % compared)
    # --val-ood pseudo: settings chosen on transformed held-out ID images (no real OOD data); the
    # validation pair is held-out ID vs their pseudo-OOD versions, which the classifier separates.
    out2 = tempfile.mkdtemp(prefix="oodkit_eval_pseudo_")
    subprocess.run([oodkit, "eval", "--fit-limit", "500", "--heldout", "120", "--val-ood", "pseudo",
                    "--ood", "mnist", "--ood-limit", "100", "--test-limit", "100", "--methods", "msp,react,nap_e",
                    "--out", out2], check=True, stdout=subprocess.DEVNULL)
    r2 = json.load(open(out2 + "/results.json"))
    check(r2["validation"]["ood"] == "pseudo" and r2["validation"]["n_ood"] == 120 and r2["validation"]["n_id"] == 120,
          "pseudo validation pair %s" % r2["validation"])
    for method, m in r2["methods"].items():
        check(m["validation_auroc"] > 75, "pseudo validation AUROC of %s: %.2f" % (method, m["validation_auroc"]))
    check("pseudo-OOD" in open(out2 + "/results.md").read(), "results.md does not say what pseudo is")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("check_eval: %d metrics equal their recomputation; ID accuracy 91.5%%; %d reloaded-detector scores "
          "equal the evaluated ones" % (checked, compared))


if __name__ == "__main__":
    main()
