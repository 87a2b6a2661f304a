#!/usr/bin/env python3
"""CI check of `oodkit heatmap fit | show | lighting` and `oodkit eval --heatmap` / `oodkit score`
on the CPU with the shipped ResNet-20 and the shared data (Python standard library only).

- fit (a small decoder, few images): the audit file's neighbours equal a brute-force search
  written here (nearest ID row of the same predicted class in z), its predicted classes equal
  argmax W z + b with the checkpoint's last layer (also for a classifier with its last layer's rows
  rotated by one class, whose predictions differ from the labels), the decoder's feature
  normalisation is the min-max of the ID training rows' z, OE rows avoid eval's validation images,
  ID rows avoid the held-out ones;
- a run stopped after epoch 1 and resumed ends bit-identical to an uninterrupted one; a --resume
  with another --lr and --seed is refused naming both (not --epochs) and changes no file in --out;
  one with a larger --epochs continues;
- eval --heatmap reports the heatmap detector and its fusions; `score` reproduces eval's scores;
  a decoder is refused with another classifier (one weight changed);
- show writes a labelled PNG (tools/picture_grid.py) whose arrays agree with heatmap_score and with
  eval's held-out threshold, or the unlabelled grid of the documented size without the script;
  lighting flags ~5% of unchanged images.
"""
import csv
import json
import os
import struct
import subprocess
import sys
import tempfile

from st_reader import metadata, raw, tensors, values  # the raw safetensors reader of the cli checks
from st_reader import read as read_safetensors
from st_reader import write as write_safetensors


def tensor(header, data, name):
    return header[name]["shape"], values(header[name]["dtype"], raw(header, data, name))


SHARED = os.environ.get("OODKIT_SHARED_DIR", "../shared")


def cifar10_train_labels(rows):
    """The labels of CIFAR-10 training rows (load order: data_batch_1..5, records of 1 + 3072 bytes)."""
    labels = []
    for r in rows:
        with open(os.path.join(SHARED, "datasets", "cifar10", "data_batch_%d.bin" % (r // 10000 + 1)), "rb") as f:
            f.seek((r % 10000) * 3073)
            labels.append(f.read(1)[0])
    return labels


def fit_failures(out, weights):
    """What is wrong with the `heatmap fit` in `out` (classifier file `weights`), against computations
    written here from its audit file (targets.safetensors), its decoder and the classifier's last layer:
    - each OE row's neighbour is the nearest ID row of the same predicted class in z (brute force);
    - id_pred and oe_pred are argmax W z + b with the classifier's linear.weight and linear.bias (the
      logits are that layer of z alone), up to float rounding (1e-4 on a logit): not the file's own;
    - the decoder's norm.min and norm.max are the min and max over every entry of the ID training
      rows' z (docs/heatmap.md, "Feature normalisation"): the file's id_features, not the held-out,
      the OE or all rows.
    Returns (failures, the audit file's tensors by name as flat lists)."""
    failures = []
    h, d, _ = read_safetensors(os.path.join(out, "targets.safetensors"))
    t = {name: tensor(h, d, name)[1] for name in h}
    (n_id, dim), _ = tensor(h, d, "id_features")
    (n_oe, _), _ = tensor(h, d, "oe_features")
    idf, oef, id_pred, oe_pred, id_rows = (t["id_features"], t["oe_features"], t["id_pred"], t["oe_pred"],
                                           t["id_rows"])
    for i in range(n_oe):
        best, best_d = None, None
        for j in range(n_id):
            if id_pred[j] != oe_pred[i]:
                continue
            dist = sum((oef[i * dim + k] - idf[j * dim + k]) ** 2 for k in range(dim))
            if best_d is None or dist < best_d:
                best, best_d = j, dist
        if best is None or id_rows[best] != t["oe_nn_index"][i]:
            failures.append("%s: OE row %d: neighbour %s, brute force says %s"
                            % (out, i, t["oe_nn_index"][i], best and id_rows[best]))
            break

    wh, wd, _ = read_safetensors(weights)
    (n_cls, _), lw = tensor(wh, wd, "linear.weight")
    _, lb = tensor(wh, wd, "linear.bias")
    for what, feats, preds, rows in (("ID", idf, id_pred, n_id), ("OE", oef, oe_pred, n_oe)):
        bad = []
        for i in range(rows):
            logits = [lb[c] + sum(lw[c * dim + k] * feats[i * dim + k] for k in range(dim)) for c in range(n_cls)]
            if not 0 <= preds[i] < n_cls or logits[preds[i]] < max(logits) - 1e-4:
                bad.append(i)
        if bad:
            failures.append("%s: %s rows %s (%d of %d): recorded class is not argmax W z + b"
                            % (out, what, bad[:5], len(bad), rows))

    nh, nd, _ = read_safetensors(os.path.join(out, "decoder.safetensors"))
    norm = (tensor(nh, nd, "norm.min")[1][0], tensor(nh, nd, "norm.max")[1][0])
    if norm != (min(idf), max(idf)):
        failures.append("%s: decoder norm (min, max) = %r, but the ID training rows' z spans %r"
                        % (out, norm, (min(idf), max(idf))))
    return failures, t


def run(args, **kw):
    print("+ oodkit " + " ".join(args), flush=True)
    return subprocess.run([OODKIT] + args, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, **kw).stdout


def main():
    global OODKIT
    OODKIT = sys.argv[1]
    root = tempfile.mkdtemp(prefix="oodkit_heatmap_")
    weights = os.path.join(SHARED, "weights", "resnet20_cifar10.safetensors")
    failures = []
    fit = ["heatmap", "fit", "--id-limit", "300", "--oe-limit", "60", "--heldout", "200", "--val-ood-limit", "100",
           "--width", "0.125", "--epochs", "2", "--batch", "50", "--seed", "3"]
    full, part = os.path.join(root, "full"), os.path.join(root, "part")
    out = run(fit + ["--out", full])
    if "validation AUROC" not in out:
        failures.append("fit printed no validation AUROC:\n" + out)
    run(fit + ["--out", part, "--stop-after", "1"])
    resumed = run(fit + ["--out", part, "--resume"])
    if "targets: reusing" not in resumed or "resuming from" not in resumed:
        failures.append("resume did not reuse the targets and the checkpoint:\n" + resumed)

    # ---- what wrote the decoder (provenance): the command line of the run that wrote its last epoch
    for folder, want in ((full, "--out " + full), (part, "--resume")):
        prov = json.loads(metadata(os.path.join(folder, "decoder.safetensors")).get("provenance", "{}"))
        if "heatmap fit" not in prov.get("command", "") or want not in prov.get("command", "") or \
                not prov.get("oodkit") or not prov.get("commit"):
            failures.append("%s/decoder.safetensors: provenance %s lacks the command (%s), version or commit" % (
                folder, prov, want))

    # ---- the audit file: its rows, then (fit_failures) its neighbours, predictions and the decoder's
    # normalisation against computations written here
    h, d, meta = read_safetensors(os.path.join(full, "targets.safetensors"))
    (n_id, _), _ = tensor(h, d, "id_features")
    _, id_rows = tensor(h, d, "id_rows")
    (n_oe, _), _ = tensor(h, d, "oe_features")
    names = json.loads(meta["oe_images"])
    if (n_id, n_oe) != (300, 60) or len(names) != 60:
        failures.append("targets hold %d ID and %d OE rows (%d names), expected 300 and 60" % (n_id, n_oe, len(names)))
    if any(b <= a for a, b in zip(id_rows, id_rows[1:])):
        failures.append("id_rows are not increasing")
    if any(int(n.split("/")[-1]) < 1000 or not n.startswith("tinyimagenet:val/") for n in names):
        failures.append("an OE image is one of eval's validation images (first 1000 of tinyimagenet:val)")

    fit_errors, _ = fit_failures(full, weights)
    failures += fit_errors

    # ---- a classifier whose last layer's rows are rotated by one class (class c gets the weights and
    # bias of class c - 1): it predicts (label + 1) mod 10 wherever the shipped one is right, so its
    # predicted classes and the true labels differ on nearly every ID row. (The shipped classifier is
    # right on all 300 ID rows of the fit above, where labels written for predictions would pass.)
    # Few ID rows and many OE rows: the OE rows' z reaches higher than the ID rows', so a feature
    # normalisation over both, or over the OE rows, differs from the ID rows' own.
    rotated = os.path.join(root, "rotated.safetensors")
    entries = []
    for name, (dtype, shape, blob) in tensors(weights).items():
        if name in ("linear.weight", "linear.bias"):
            row = len(blob) // shape[0]
            blob = blob[-row:] + blob[:-row]  # row c <- row c - 1 (mod K)
        entries.append((name, dtype, shape, blob))
    write_safetensors(rotated, entries, metadata(weights))
    rot = os.path.join(root, "rotated")
    run(["heatmap", "fit", "--checkpoint", rotated, "--arch", "resnet20", "--id-limit", "20", "--oe-limit", "200",
         "--heldout", "200", "--val-ood", "", "--width", "0.125", "--epochs", "1", "--batch", "50", "--seed", "3",
         "--split-seed", "3", "--out", rot])  # rows whose predicted classes cover every class (k-NN by class)
    fit_errors, rt = fit_failures(rot, rotated)
    failures += fit_errors
    labels = cifar10_train_labels(rt["id_rows"])
    differ = sum(1 for a, b in zip(labels, rt["id_pred"]) if a != b)
    if differ < 0.9 * len(labels):
        failures.append("rotated classifier: labels differ from predictions on %d of %d ID rows only"
                        % (differ, len(labels)))
    if not max(rt["oe_features"]) > max(rt["id_features"]):
        failures.append("rotated fit: the OE rows' z does not reach above the ID rows' (%g <= %g): the norm check "
                        "cannot tell the two apart" % (max(rt["oe_features"]), max(rt["id_features"])))

    # ---- resume is bit-exact
    ha, da, _ = read_safetensors(os.path.join(full, "last.safetensors"))
    hb, db, _ = read_safetensors(os.path.join(part, "last.safetensors"))
    differing = [k for k in ha if k not in hb or raw(ha, da, k) != raw(hb, db, k)]
    if sorted(ha) != sorted(hb) or differing:
        failures.append("resumed decoder differs from the uninterrupted one in %s" % differing[:3])

    # ---- --resume with other trajectory options is refused, naming each, and changes nothing in
    # --out; a larger --epochs alone is what resume is for.
    before = {f: (open(os.path.join(part, f), "rb").read(), os.stat(os.path.join(part, f)).st_mtime_ns)
              for f in sorted(os.listdir(part))}
    other = [{"3": "4", "2": "3"}.get(a, a) if i and fit[i - 1] in ("--seed", "--epochs") else a
             for i, a in enumerate(fit)]  # --seed 4, --epochs 3
    p = subprocess.run([OODKIT] + other + ["--lr", "0.001", "--out", part, "--resume"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True)
    line = (p.stderr.strip().splitlines() or [""])[-1]
    if (p.returncode != 1 or not line.startswith("oodkit: error: heatmap fit --resume:")
            or "--lr 0.0002 (now 0.001)" not in line or "--seed 3 (now 4)" not in line or "--epochs" in line):
        failures.append("--resume with another --lr and --seed: exit %d, stderr %r" % (p.returncode, line[-500:]))
    after = {f: (open(os.path.join(part, f), "rb").read(), os.stat(os.path.join(part, f)).st_mtime_ns)
             for f in sorted(os.listdir(part))}
    if after != before:
        failures.append("a refused --resume changed %s" % [f for f in set(before) | set(after)
                                                           if before.get(f) != after.get(f)])
    grown = run([{"2": "3"}.get(a, a) if i and fit[i - 1] == "--epochs" else a for i, a in enumerate(fit)]
                + ["--out", part, "--resume"])
    if "resuming from" not in grown or "epoch 3/3" not in grown:
        failures.append("--resume with a larger --epochs did not continue:\n" + grown)

    # ---- eval --heatmap, score
    ev = os.path.join(root, "eval")
    common = ["--fit-limit", "500", "--heldout", "200", "--val-ood-limit", "100", "--test-limit", "300",
              "--ood", "isun", "--ood-limit", "200", "--tuning", "features"]
    run(["eval", "--heatmap", full, "--methods", "msp,nap,heatmap,heatmap_msp,heatmap_nap", "--out", ev,
         "--dump-scores"] + common)
    res = json.load(open(os.path.join(ev, "results.json")))
    for m in ("heatmap", "heatmap_msp", "heatmap_nap"):
        if m not in res["methods"]:
            failures.append("eval results lack %s" % m)
    w = res["methods"].get("heatmap_msp", {}).get("chosen", {}).get("w")
    if w is None or not 0 <= w <= 1:
        failures.append("heatmap_msp chose w = %s" % w)
    csv_path = os.path.join(root, "scores.csv")
    run(["score", "--detectors", os.path.join(ev, "detectors"), "--data", "isun", "--limit", "50",
         "--methods", "heatmap,heatmap_msp", "--out", csv_path])
    table = list(csv.reader(open(csv_path)))
    header, rows = table[0], table[1:]
    sh, sd, _ = read_safetensors(os.path.join(ev, "scores.safetensors"))
    for m in ("heatmap", "heatmap_msp"):
        col = header.index(m)
        _, ref = tensor(sh, sd, m + "/isun")
        worst = max(abs(float(r[col]) - ref[i]) / max(1e-6, abs(ref[i])) for i, r in enumerate(rows))
        if worst > 1e-5:
            failures.append("score's %s differs from eval's by %.2e (relative)" % (m, worst))

    # Several decoders (the paper averages five): the heatmap methods run once per decoder and are
    # reported as the mean with the sample standard deviation; the first decoder's run equals the
    # single-decoder eval above, figure for figure; methods without a decoder run once.
    ev2 = os.path.join(root, "eval2")
    run(["eval", "--heatmap", full + "," + part, "--methods", "msp,heatmap,heatmap_msp", "--out", ev2] + common)
    res2 = json.load(open(os.path.join(ev2, "results.json")))
    for m in ("heatmap", "heatmap_msp"):
        r = res2["methods"][m]
        runs = r.get("per_run", [])
        if r.get("runs") != 2 or len(runs) != 2:
            failures.append("two decoders: %s reports runs %r" % (m, r.get("runs")))
            continue
        for key in ("auroc", "fpr95_tpr", "aupr_in"):
            vals = [x["sets"]["isun"][key] for x in runs]
            mean = sum(vals) / 2
            sd = abs(vals[0] - vals[1]) / 2 ** 0.5  # sample standard deviation of two values
            if abs(r["sets"]["isun"][key] - mean) > 1e-9 or abs(r["std"]["sets"]["isun"][key] - sd) > 1e-9:
                failures.append("two decoders: %s %s mean/std %r/%r, recomputed %r/%r" % (
                    m, key, r["sets"]["isun"][key], r["std"]["sets"]["isun"][key], mean, sd))
            if abs(runs[0]["sets"]["isun"][key] - res["methods"][m]["sets"]["isun"][key]) > 1e-9:
                failures.append("two decoders: %s run 1 %s %r differs from the single-decoder eval's %r" % (
                    m, key, runs[0]["sets"]["isun"][key], res["methods"][m]["sets"]["isun"][key]))
        if runs[0]["sets"]["isun"]["auroc"] == runs[1]["sets"]["isun"]["auroc"]:
            failures.append("two decoders: %s has the same AUROC with both (not two runs?)" % m)
    if "runs" in res2["methods"]["msp"] or res2["methods"]["msp"]["sets"]["isun"] != res["methods"]["msp"]["sets"]["isun"]:
        failures.append("two decoders: msp was not run once as without decoders")
    if " ± " not in open(os.path.join(ev2, "results.md")).read():
        failures.append("two decoders: results.md shows no mean ± std")

    # A decoder that trained on eval's validation images is refused before any work (issue 25): another
    # held-out split (--heldout or --split-seed), or validation OOD rows past the decoder's --oe-skip
    # (1000) in its OE set (tinyimagenet:val). Each names the options of both sides.
    for what, extra, needles in (
            ("another --heldout", ["--heldout", "300"], ["--heldout 300", "--heldout 200", "training images"]),
            ("another --split-seed", ["--split-seed", "1"], ["--split-seed 1", "--split-seed 0"]),
            ("validation OOD inside the OE", ["--val-ood-limit", "1500"], ["--val-ood-limit 1500", "--oe-skip 1000"])):
        args = ["eval", "--heatmap", full, "--methods", "msp,heatmap", "--out", os.path.join(root, "refused")] + common
        for i in range(0, len(extra), 2):
            if extra[i] in args:
                args[args.index(extra[i]) + 1] = extra[i + 1]
            else:
                args += extra[i:i + 2]
        p = subprocess.run([OODKIT] + args, capture_output=True, text=True)
        if (p.returncode != 1 or not all(n in p.stderr for n in needles) or "features " in p.stderr
                or os.path.exists(os.path.join(root, "refused"))):
            failures.append("eval with a decoder and %s: exit %d, stderr %r" % (what, p.returncode, p.stderr[-400:]))

    # A classifier with one weight changed: the decoder is refused.
    wh, wd, wmeta = read_safetensors(weights)
    first = sorted(wh, key=lambda k: wh[k]["data_offsets"][0])[0]
    off = wh[first]["data_offsets"][0]
    wd = wd[:off] + bytes([wd[off] ^ 1]) + wd[off + 1:]
    header = dict(wh)
    if wmeta:
        header["__metadata__"] = wmeta
    hj = json.dumps(header).encode()
    other = os.path.join(root, "other.safetensors")
    with open(other, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + wd)
    p = subprocess.run([OODKIT, "eval", "--checkpoint", other, "--arch", "resnet20", "--heatmap", full,
                        "--methods", "heatmap"] + common, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    if p.returncode == 0 or "was trained for another classifier" not in p.stdout:
        failures.append("a decoder was not refused with another classifier (rc %d):\n%s" % (p.returncode, p.stdout))

    # ---- show: the labelled picture (tools/picture_grid.py) from the arrays beside it. The map is
    # max_c |h|, so each score is minus the mean of its map (heatmap_score, another code path); the
    # ID/OOD threshold comes from the decoder's held-out images, which are eval's (--heldout 200, same
    # seed): it equals eval's heatmap threshold in protocol.json, and each decision is score >= it.
    png = os.path.join(root, "grid.png")
    shown = run(["heatmap", "show", "--heatmap", full, "--data", "cifar10,isun", "--limit", "4", "--out", png])
    with open(png, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or "(labelled)" not in shown:
        failures.append("heatmap show wrote no labelled PNG:\n" + shown)
    gh, gd, gmeta = read_safetensors(png + ".safetensors")
    gshape, gmaps = tensor(gh, gd, "map/heatmap")
    _, gscores = tensor(gh, gd, "score/heatmap")
    _, gset = tensor(gh, gd, "set")
    if gshape != [8, 32, 32] or gset != [0] * 4 + [1] * 4 or json.loads(gmeta.get("sets", "[]")) != ["cifar10", "isun"]:
        failures.append("heatmap show arrays: map %s, set %s, sets %s" % (gshape, gset, gmeta.get("sets")))
    for i, sc in enumerate(gscores):
        mean = sum(gmaps[i * 1024:(i + 1) * 1024]) / 1024.0
        if abs(sc + mean) > 1e-6 * max(1e-6, abs(sc)):
            failures.append("heatmap show image %d: score %.9g is not minus its map's mean %.9g" % (i, sc, mean))
    thr = float(gmeta.get("threshold/heatmap", "nan"))
    eval_thr = json.load(open(os.path.join(ev, "detectors", "protocol.json")))["thresholds"]["heatmap"]
    if not abs(thr - eval_thr) <= 1e-6 * abs(eval_thr):
        failures.append("heatmap show threshold %.9g, eval's (same held-out rows) %.9g" % (thr, eval_thr))
    md_rows = [r.split("|") for r in open(png + ".md").read().splitlines() if r.startswith("| cifar10 |")
               or r.startswith("| isun |")]
    decisions = [r[4].strip() for r in md_rows]
    if decisions != ["ID" if sc >= eval_thr else "OOD" for sc in gscores]:
        failures.append("heatmap show decisions %s, scores %s, threshold %.9g" % (decisions, gscores, eval_thr))
    if not float(gmeta.get("vmax/heatmap", "0")) > 0 or "held-out cifar10" not in gmeta.get("scale_note/heatmap", ""):
        failures.append("heatmap show colour scale: %s" % gmeta)
    # Without the picture script's interpreter: the unlabelled grid, 4 per row, 3 tiles of 32 * 3 px,
    # 4 px gaps; two blocks of one row each.
    env = dict(os.environ, OODKIT_PYTHON="/nonexistent/python3")
    bare = run(["heatmap", "show", "--heatmap", full, "--data", "cifar10,isun", "--limit", "4", "--out", png], env=env)
    with open(png, "rb") as f:
        head = f.read(24)
    width, height = struct.unpack(">II", head[16:24])
    if head[:8] != b"\x89PNG\r\n\x1a\n" or (width, height) != (4 * 288 + 5 * 4, 4 + 2 * (96 + 4 + 8)) \
            or "(unlabelled)" not in bare:
        failures.append("unlabelled grid.png is %dx%d, expected %dx%d:\n%s" % (width, height, 4 * 288 + 20, 220, bare))

    # ---- lighting: the threshold comes from the unchanged images (at most 5% flagged)
    light = os.path.join(root, "light")
    run(["heatmap", "lighting", "--heatmap", full, "--limit", "200", "--brightness", "1.5", "--contrast", "0.5",
         "--out", light])
    lj = json.load(open(os.path.join(light, "lighting.json")))
    flagged = lj["flagged_percent"]
    if set(flagged) != {"none", "brightness x1.50", "contrast x0.50"}:
        failures.append("lighting rows %s" % sorted(flagged))
    for m, v in flagged.get("none", {}).items():
        if not 0 <= v <= 5.0:
            failures.append("%s flags %.2f%% of unchanged images (threshold at 95%% TPR)" % (m, v))

    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("check_heatmap: neighbours match brute force (%d OE rows), predicted classes argmax W z + b and the "
          "norm the ID rows' min-max in both fits (%d of %d labels differ under the rotated classifier), resume "
          "bit-exact in %d tensors, eval/score/show/lighting consistent" % (n_oe, differ, len(labels), len(ha)))


if __name__ == "__main__":
    main()
