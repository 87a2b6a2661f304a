#!/usr/bin/env python3
"""compare_outputs.py A B (tests/golden/golden_outputs.sh writes A and B): every output file under A against B, the output folders' own paths read as <OUT>. safetensors: tensors byte-compared, metadata
keys listed where they differ; json: compared with the provenance fields dropped (listed); log.json:
timing fields dropped; others: bytes."""
import json, os, re, struct, sys
PROV = {"provenance", "save_id"}  # run identity: the provenance, the id a save shares with its files
TIMING = {"seconds", "images_per_second", "training_seconds_total"}
def st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); d = f.read()
    meta = h.pop("__metadata__", {})
    return {k: (v["dtype"], v["shape"], d[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items()}, meta
def strip(x, drop):
    if isinstance(x, dict): return {k: strip(v, drop) for k, v in x.items() if k not in drop}
    if isinstance(x, list): return [strip(v, drop) for v in x]
    return x
def timeless(text):
    """A report without its provenance block (<dl class="prov">) and the last (seconds) column of
    its training tables (rows '| <epoch> | ... | <s> |')."""
    out = []
    for line in text.decode(errors="replace").split("\n"):
        if 'class="prov"' in line: continue
        line = re.sub(r"^(\| \d+ \|.*\|) [0-9.]+ \|$", r"\1 <s> |", line)
        line = re.sub(r"(<tr><td>\d+</td>.*<td>)[0-9.]+(</td></tr>)$", r"\1<s>\2", line)
        out.append(line)
    return out
a, b = sys.argv[1:3]; bad = 0; n = 0; notes = set()
for root, _, files in os.walk(a):
    for f in sorted(files):
        pa = os.path.join(root, f); rel = os.path.relpath(pa, a); pb = os.path.join(b, rel)
        if f.endswith(".log") or ".tmp." in f: continue
        n += 1
        if not os.path.exists(pb): print("MISSING", rel); bad += 1; continue
        if f.endswith(".safetensors"):
            (ta, ma), (tb, mb) = st(pa), st(pb)
            if ta != tb: print("TENSORS DIFFER", rel); bad += 1
            for k in sorted(set(ma) | set(mb)):
                if ma.get(k) != mb.get(k): notes.add("%s metadata %s" % (f, k))
        elif f.endswith(".json"):
            ja = json.loads(open(pa).read().replace(os.path.abspath(a), "<OUT>"))
            jb = json.loads(open(pb).read().replace(os.path.abspath(b), "<OUT>"))
            drop = PROV | (TIMING if f == "log.json" else set())
            if strip(ja, drop) != strip(jb, drop): print("JSON DIFFERS", rel); bad += 1
            elif ja != jb: notes.add("%s: differs only in %s" % (f, ",".join(sorted(drop))))
        else:
            ba = open(pa, "rb").read().replace(os.path.abspath(a).encode(), b"<OUT>")
            bb = open(pb, "rb").read().replace(os.path.abspath(b).encode(), b"<OUT>")
            if ba != bb and f.startswith("report.") and timeless(ba) == timeless(bb):
                notes.add("%s: differs only in the provenance block and the seconds column" % rel)
            elif ba != bb: print("BYTES DIFFER", rel); bad += 1
            elif ba != open(pa, "rb").read(): notes.add("%s: the same once the output folder's path is <OUT>" % f)
for s in sorted(notes): print("note:", s)
print("%d files compared, %d differ" % (n, bad)); sys.exit(1 if bad else 0)
