#!/usr/bin/env bash
# Usage: whole_refactor.sh BIN OUT — the outputs compared across the issue-28 refactor (8e31548 vs main).
set -euo pipefail
BIN=$1; OUT=$2; rm -rf "$OUT"; mkdir -p "$OUT"
export OODKIT_SHARED_DIR=${OODKIT_SHARED_DIR:-../shared} OMP_NUM_THREADS=1
"$BIN" study --train-limit 2000 --epochs 2 --heatmap-epochs 2 --out "$OUT/study" > "$OUT/study.log" 2>&1
"$BIN" heatmap fit --id-limit 2000 --heldout 200 --oe-limit 400 --val-ood-limit 200 --epochs 2 --width 0.25 \
  --out "$OUT/hm" > "$OUT/hm.log" 2>&1
"$BIN" eval --heatmap "$OUT/hm" --heldout 200 --fit-limit 2000 --val-ood-limit 200 --ood isun,mnist --ood-limit 300 \
  --test-limit 300 --methods all --tuning all --out "$OUT/eval" > "$OUT/eval.log" 2>&1
"$BIN" score --detectors "$OUT/eval/detectors" --data isun --limit 200 --out "$OUT/score.csv" > "$OUT/score.log" 2>&1
echo ok
