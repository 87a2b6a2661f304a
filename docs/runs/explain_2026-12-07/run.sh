#!/bin/bash
# The commands of the docs/results.md section "Localisation benchmark" (explain helper, 2026-12-07).
set -e
export OODKIT_SHARED_DIR=/work/shared
OODKIT=./oodkit
M=heatmap,nap,fs,fs_ta,msp,energy,react,knn,mahalanobis,vim
time $OODKIT eval --heatmap ./decoder --methods $M --fit-limit 5000 --test-limit 1000 \
    --ood isun --ood-limit 500 --tuning features --out ./eval
time $OODKIT explain --detectors ./eval/detectors --data cifar10:test --limit 100 \
    --benchmark patches --sources mnist,tinyimagenet,synthetic-ood-unseen-shapes --sizes 8,16 \
    --out ./patches
time $OODKIT explain --detectors ./eval/detectors --data cifar10:test --limit 6 \
    --out ./explain_cifar10
time $OODKIT explain --detectors ./eval/detectors --data mnist --limit 6 \
    --out ./explain_mnist
