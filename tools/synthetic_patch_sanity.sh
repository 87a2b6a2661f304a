#!/usr/bin/env bash
# The synthetic sanity case of the localisation benchmark (docs/methods.md, "Localisation
# benchmark"; issue 23): a case where the answer is known. A small_cnn is trained on the built-in
# synthetic shapes (synthetic-id: 10 classes of filled shapes), its detectors are fitted with
# `oodkit eval`, and `oodkit explain --benchmark patches` pastes patches cut from
# synthetic-ood-unseen-shapes (hearts, crescents, arrows, L-shapes, hourglasses: shapes the network
# never saw, on the same kind of backgrounds) into synthetic-id test images. A map that localises
# must put its maximum on the patch more often than the shuffled baseline (the same maps scored
# against other images' patches: what the map's position prior alone earns).
#
# Usage: tools/synthetic_patch_sanity.sh OODKIT OUT_DIR [IMAGES]
#   OODKIT   the oodkit binary (e.g. build-cpu/oodkit); OUT_DIR must not exist; IMAGES [300] the ID
#   test images patched. The classifier is `oodkit study`'s (8,000 images, 8 epochs, SGD 0.05
#   cosine, batch 64: ~90% test accuracy, docs/results.md); CHECKPOINT=path skips the training and
#   uses that small_cnn. Measured on the shared 2-core machine (load ~20): training 40 min, eval 16-23 s,
#   the benchmark 28-49 s (`oodkit study` trains the same recipe in ~100 s when the machine is idle).
# Prints OUT_DIR/patches/patches.md's average table and, per method, pointing vs its shuffled
# baseline; exits 0 when at least one feature-map map (fs, fs_ta, nap) beats its shuffled baseline
# at every patch size, 1 otherwise (the result is reported either way).
set -euo pipefail
oodkit=${1:?usage: $0 OODKIT OUT_DIR [IMAGES]}
out=${2:?usage: $0 OODKIT OUT_DIR [IMAGES]}
images=${3:-300}
[[ -x "$oodkit" ]] || { echo "synthetic_patch_sanity: '$oodkit' is not an executable" >&2; exit 2; }
[[ ! -e "$out" ]] || { echo "synthetic_patch_sanity: OUT_DIR '$out' exists" >&2; exit 2; }
mkdir -p "$out"
methods=fs,fs_ta,nap,msp,energy,knn,mahalanobis

step() { local t0=$SECONDS; "$@"; echo "  ($(( SECONDS - t0 )) s)" >&2; }

echo "1/3 train small_cnn on synthetic-id" >&2
checkpoint=${CHECKPOINT:-$out/classifier/model.safetensors}
if [[ -z "${CHECKPOINT:-}" ]]; then
  step "$oodkit" train --arch small_cnn --dataset synthetic-id --limit 8000 --epochs 8 --batch 64 --lr 0.05 \
    --seed 0 --out "$out/classifier" > "$out/train.log"
  tail -1 "$out/train.log" >&2
fi
echo "2/3 fit the detectors (oodkit eval)" >&2
step "$oodkit" eval --checkpoint "$checkpoint" --arch small_cnn --id synthetic-id \
  --val-ood synthetic-ood-strokes:val --val-ood-limit 300 --ood synthetic-ood-unseen-shapes --ood-limit 500 \
  --fit-limit 3000 --heldout 500 --test-limit 500 --tuning features --methods "$methods" --out "$out/eval" \
  > "$out/eval.log"
echo "3/3 the patch benchmark: unseen shapes pasted into synthetic-id test images" >&2
step "$oodkit" explain --detectors "$out/eval/detectors" --data synthetic-id:test --limit "$images" \
  --benchmark patches --sources synthetic-ood-unseen-shapes --sizes 8,12,16 --methods "$methods" \
  --out "$out/patches" > "$out/explain.log"

python3 - "$out/patches/patches.csv" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["source"] == "synthetic-ood-unseen-shapes"]
print("method  size  image_auroc  pointing  shuffled  chance  pixel_auroc  shuffled")
beats = {}
for r in rows:
    f = lambda k: float(r[k])
    print("%-12s %3s px  %6.2f  %6.2f  %6.2f  %6.2f  %6.2f  %6.2f" % (
        r["method"], r["size_px"], f("image_auroc"), f("pointing"), f("pointing_shuffled"), f("pointing_chance"),
        f("pixel_auroc"), f("pixel_auroc_shuffled")))
    beats.setdefault(r["method"], []).append(f("pointing") > f("pointing_shuffled"))
ok = [m for m in ("fs", "fs_ta", "nap") if m in beats and all(beats[m])]
print("feature-map maps above their shuffled pointing baseline at every size: %s" % (", ".join(ok) or "none"))
print("all maps above it at every size: %s" % (", ".join(m for m in beats if all(beats[m])) or "none"))
sys.exit(0 if ok else 1)
PY
