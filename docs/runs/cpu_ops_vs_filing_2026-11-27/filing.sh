#!/usr/bin/env bash
# bench_ops at the issue-12 filing state (5fbb5be, SSE2 build) vs now, fp32, alternating.
set -e
mkdir -p /tmp/ab/filing && cd /tmp/ab/filing && rm -f *.jsonl
for r in 1 2; do
  for t in old new; do
    case $t in old) b=/work/wt-old/build/bench_ops;; new) b=/work/main/build-base/bench_ops;; esac
    OMP_NUM_THREADS=2 $b --device cpu --precision fp32 --repeats 5 --json ops_$t.jsonl > /dev/null 2>ops_$t.err
  done
  echo "round $r done $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
done
