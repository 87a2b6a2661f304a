#!/usr/bin/env bash
# Usage: baseline.sh BIN OUTDIR — the refactor's before/after results.
set -e
B=$1; O=$2; mkdir -p $O
$B eval --methods all --tuning all --fit-limit 2000 --heldout 500 --val-ood-limit 200 --test-limit 300 --ood-limit 200 --ood isun,mnist --out $O/eval > $O/eval.stdout 2> $O/eval.stderr
$B score --detectors $O/eval/detectors --data isun --limit 50 --out $O/score.csv > $O/score.stdout 2>&1
$B heatmap fit --epochs 2 --width 0.125 --id-limit 600 --oe-limit 200 --heldout 500 --val-ood-limit 100 --out $O/hm > $O/hm.stdout 2> $O/hm.stderr
