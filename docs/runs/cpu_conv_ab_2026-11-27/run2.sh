#!/usr/bin/env bash
set -e
cd /tmp/ab/out2
for r in 1 2 3 4; do
  case $r in 1) order="new head old";; 2) order="head old new";; 3) order="old new head";; 4) order="new old head";; esac
  for t in $order; do
    case $t in old) b=/work/wt-old/build/bench_ops;; head) b=/tmp/ab/head/bench_ops;; new) b=/work/main/build-base/bench_ops;; esac
    OMP_NUM_THREADS=2 $b --device cpu --precision fp32 --repeats 10 --filter conv2d --json ops_$t.jsonl > /dev/null 2>ops_$t.err
  done
  echo "round $r ($order) done $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
done
