#!/bin/bash
# Byte-identity outputs for issue 28 (plan-then-run of heatmap fit / study / train).
# Usage: tests/golden/golden_outputs.sh OODKIT OUTDIR; then tests/golden/compare_outputs.py OUT_BEFORE OUT_AFTER   (OODKIT_SHARED_DIR must point at the real data)
set -euo pipefail
B=$1; O=$2; rm -rf "$O"; mkdir -p "$O"
export OMP_NUM_THREADS=2
# (a) the embedded study, small
nice -n 5 "$B" study --train-limit 2000 --epochs 1 --heatmap-epochs 2 \
  --methods msp,energy,knn,mahalanobis,heatmap,heatmap_energy --out "$O/study" > "$O/study.log" 2>&1
# (b) a 2-epoch heatmap fit on real data (shipped ResNet-20, CIFAR-10 vs Tiny ImageNet OE)
nice -n 5 "$B" heatmap fit --id-limit 300 --oe-limit 60 --heldout 200 --val-ood-limit 100 --width 0.125 \
  --epochs 2 --batch 50 --seed 3 --out "$O/fit" > "$O/fit.log" 2>&1
# (c) eval with the heatmap detector, then score on saved detectors
nice -n 5 "$B" eval --heatmap "$O/fit" --methods msp,heatmap,heatmap_energy --fit-limit 300 --heldout 200 \
  --val-ood-limit 100 --test-limit 200 --ood isun --ood-limit 100 --out "$O/eval" > "$O/eval.log" 2>&1
nice -n 5 "$B" score --detectors "$O/eval/detectors" --data isun --limit 40 --out "$O/score/scores.csv" > "$O/score.log" 2>&1
echo ok
