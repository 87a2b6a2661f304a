#!/usr/bin/env bash
# Issue 25 measurements: CPU-sized decoders for the shipped ResNet-20 (width 0.25, 15 epochs,
# 10,000 ID + 2,000 OE images, the paper's 1:5), three recipe variants and five seeds of the default.
set -e
cd /work/main
B=/work/runs/oodkit
common="--width 0.25 --epochs 15 --id-limit 10000 --oe-limit 2000"
for v in "box_target_s0:" "pil_target_s0:--oe-resize pil-bilinear" "box_heatmap_s0:--loss-weight heatmap" \
         "box_target_s1:--seed 1" "box_target_s2:--seed 2" "box_target_s3:--seed 3" "box_target_s4:--seed 4"; do
  name=${v%%:*}; extra=${v#*:}
  [ -f /work/runs/$name/decoder.safetensors ] && continue
  /usr/bin/time -f "$name %e s" $B heatmap fit $common $extra --out /work/runs/$name > /work/runs/$name.log 2>&1
done
echo fits done
