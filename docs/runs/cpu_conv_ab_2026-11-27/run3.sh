#!/usr/bin/env bash
# Per-row interleaved A/B: for each row, old and new alternate 6 times (order flipped each time).
set -e
cd /tmp/ab/out3
rows="r18_conv1_3x64x32 r18_l2a_64x128x32s2 r18_l2_128x128x16 r18_l2sc_64x128x32s2_1x1 r18_l3a_128x256x16s2 r18_l3_256x256x8 r18_l3sc_128x256x16s2_1x1 r20_l1_16x16x32 r20_l2_32x32x16 r20_l3_64x64x8"
for row in $rows; do
  for i in 1 2 3 4 5 6; do
    if [ $((i % 2)) = 1 ]; then order="old new"; else order="new old"; fi
    for t in $order; do
      case $t in old) b=/work/wt-old/build/bench_ops;; new) b=/work/main/build-base/bench_ops;; esac
      OMP_NUM_THREADS=2 $b --device cpu --precision fp32 --repeats 10 --filter "conv2d_fwd/$row,conv2d_bwd/$row" --json ops_$t.jsonl > /dev/null 2>>ops_$t.err
    done
  done
  echo "$row done $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
done
