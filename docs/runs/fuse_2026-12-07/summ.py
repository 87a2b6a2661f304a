import json, sys
r = json.load(open(sys.argv[1]))
M = r["methods"]
sets = list(next(iter(M.values()))["sets"])
def row(n):
    m = M[n]
    cells = " | ".join("%.2f / %.2f" % (m["sets"][s]["auroc"], m["sets"][s]["fpr95_tpr"]) for s in sets)
    a = m["average"]
    setting = ", ".join("%s=%g" % kv for kv in m["chosen"].items()) or "-"
    if n.startswith("fuse") or n == "fused": setting = "equal" if len(set(m["chosen"].values()))==1 else setting
    if n == "fused": setting = "+".join(c["method"] for c in m["fusion"]["components"])
    return "| %s | %s | %.2f | %s | %.2f / %.2f |" % (n, setting, m["validation_auroc"], cells, a["auroc"], a["fpr95_tpr"])
head = "| method | setting | val AUROC | " + " | ".join(sets) + " | average AUROC / FPR95 |\n|" + "---|" * (4 + len(sets))
multi = [n for n in M if n.startswith("fuse_") or n == "fused"]
single = [n for n in M if n not in multi and M[n].get("fusion") is None]
import itertools
pair_builtin = [n for n in single if n.startswith(("nap_", "fsta_", "heatmap_"))]
singles = [n for n in single if n not in pair_builtin]
def best(ns, key): return max(ns, key=key)
val = lambda n: M[n]["validation_auroc"]; test = lambda n: M[n]["average"]["auroc"]
print("sets:", sets)
print("## selected rows")
print(head)
picks = []
picks += [best(singles, val), best(singles, test)]
if pair_builtin: picks += [best(pair_builtin, val), best(pair_builtin, test)]
zs = [n for n in multi if n != "fused" and n.count("+") >= 1]
picks += ["fused"]
picks += [n for n in M if n.startswith(("fuse_p(", "fuse_pmean("))]
picks += [best(zs, val), best(zs, test)]
seen = set()
for n in picks:
    if n in seen: continue
    seen.add(n); print(row(n))
print()
print("best single on val:", best(singles, val), "on test:", best(singles, test))
if pair_builtin: print("best builtin pair on val:", best(pair_builtin, val), "on test:", best(pair_builtin, test))
for k in (1, 2):
    g = [n for n in zs if n.count("+") == k and n.startswith("fuse_z(")]
    if not g: continue
    bv, bt = best(g, val), best(g, test)
    rank = sorted(g, key=test, reverse=True)
    print("%d-way z (%d rows): best on val %s (test avg %.2f, rank %d by test), best on test %s (test avg %.2f, val %.2f)" % (
        k + 1, len(g), bv, test(bv), rank.index(bv) + 1, bt, test(bt), val(bt)))
print("fused:", json.dumps(M["fused"]["fusion"]))
allr = sorted(M, key=test, reverse=True)
print("fused rank by test avg among all %d rows: %d" % (len(allr), allr.index("fused") + 1))
print("top 5 by test:", [(n, round(test(n), 2), round(val(n), 2)) for n in allr[:5]])
allv = sorted(M, key=val, reverse=True)
print("top 5 by val:", [(n, round(test(n), 2), round(val(n), 2)) for n in allv[:5]])
