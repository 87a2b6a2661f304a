#!/usr/bin/env python3
"""One Markdown summary table from an `oodkit eval --out DIR` run: python3 tools/results_table.py DIR/results.json

Per OOD set AUROC / FPR95 (classic), then the averages; the kept setting with its validation AUROC.
"""
import json, sys
r = json.load(open(sys.argv[1]))
sets = list(next(iter(r["methods"].values()))["sets"].keys())
print("| method | setting (val AUROC) | " + " | ".join("%s AUROC / FPR95" % s for s in sets) + " | avg AUROC | avg AUPR-In | avg AUPR-Out | avg FPR95 | avg FPR95* |")
print("|---|---|" + "---|" * len(sets) + "---|---|---|---|---|")
for name, m in r["methods"].items():
    ch = ", ".join("%s=%g" % kv for kv in m["chosen"].items()) or "-"
    cells = ["%.2f / %.2f" % (m["sets"][s]["auroc"], m["sets"][s]["fpr95_tpr"]) for s in sets]
    a = m["average"]
    print("| %s | %s (%.2f) | %s | %.2f | %.2f | %.2f | %.2f | %.2f |" % (name, ch, m["validation_auroc"], " | ".join(cells),
          a["auroc"], a["aupr_in"], a["aupr_out"], a["fpr95_tpr"], a["fpr95_tpr_openood"]))
