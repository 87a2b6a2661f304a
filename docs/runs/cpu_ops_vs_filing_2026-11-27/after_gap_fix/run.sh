#!/usr/bin/env bash
# bench_ops at the issue-12 filing state (5fbb5be, SSE2 build) vs the gap fix, fp32, three alternating rounds.
# old: git worktree add /work/wt-old 5fbb5be; CPU-only Release build (Ninja, ccache) of bench_ops.
set -e
mkdir -p /tmp/abfull && cd /tmp/abfull && rm -f *.jsonl
for r in 1 2 3; do
  for t in old new; do
    case $t in old) b=/work/wt-old/build/bench_ops;; new) b=/work/main/build-base/bench_ops;; esac
    OMP_NUM_THREADS=2 $b --device cpu --precision fp32 --repeats 5 --json ops_$t.jsonl > /dev/null 2>ops_$t.err
  done
  echo "round $r $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
done
