#!/usr/bin/env bash
# Issue 25 measurements, evaluations (after fits.sh): each recipe variant, the five seeds together,
# and the default decoder validated on pseudo-OOD instead of its OE distribution.
set -e
cd /work/main
B=/work/runs/oodkit2
while ! grep -q "fits done" /work/runs/fits.out; do sleep 10; done
M=msp,energy,knn,nap,fs_ta,heatmap,heatmap_nap,heatmap_fs_ta,heatmap_msp,heatmap_energy
common="--methods $M --fit-limit 5000 --test-limit 2000 --ood-limit 2000"
for v in box_target_s0 pil_target_s0 box_heatmap_s0; do
  [ -f /work/runs/eval_$v/results.md ] || /usr/bin/time -f "eval $v %e s" $B eval --heatmap /work/runs/$v $common --out /work/runs/eval_$v > /work/runs/eval_$v.log 2>&1
done
seeds=/work/runs/box_target_s0,/work/runs/box_target_s1,/work/runs/box_target_s2,/work/runs/box_target_s3,/work/runs/box_target_s4
[ -f /work/runs/eval_five/results.md ] || /usr/bin/time -f "eval five %e s" $B eval --heatmap $seeds $common --out /work/runs/eval_five > /work/runs/eval_five.log 2>&1
[ -f /work/runs/eval_pseudo/results.md ] || /usr/bin/time -f "eval pseudo %e s" $B eval --heatmap /work/runs/box_target_s0 $common --val-ood pseudo --out /work/runs/eval_pseudo > /work/runs/eval_pseudo.log 2>&1
echo evals done
