#!/usr/bin/env bash
# Which change made the slower rows slower: old = 5fbb5be (SSE2), noarch = 6cb93bf built with
# -DOODKIT_CPU_ARCH=NONE (today's code, SSE2), new = 6cb93bf with the default x86-64-v3. Three rounds.
set -e
F=global_avg_pool_fwd,linear_fwd/512x1000,linear_bwd/512x1000,cross_entropy_fwd/2048,cross_entropy_bwd/2048,mul/
for r in 1 2 3; do for t in old noarch new; do
  case $t in old) b=/work/wt-old/build/bench_ops;; noarch) b=/work/build-noarch/bench_ops;; new) b=/work/main/build-base/bench_ops;; esac
  OMP_NUM_THREADS=2 $b --device cpu --precision fp32 --repeats 7 --filter $F --json $t.jsonl >/dev/null 2>&1
done; done
