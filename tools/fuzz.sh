#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang + ASan + UBSan) and runs each for a bounded time from
# a copy of its seed corpus fuzz/corpus/<target>/ (the repository is never written).
#   bash tools/fuzz.sh [--seconds N] [--build DIR] [--jobs J] [--targets "a b ..."]
# N: seconds per target (default 20); DIR: build folder (default build-fuzz); J: targets run at
# once (default: the number of CPUs). Prints per target the executions, exec/s and libFuzzer's
# final coverage (cov: edges, ft: features). Exits non-zero on any crash, sanitizer report, leak,
# timeout (an input running over 25 s) or out-of-memory (over 2 GB), keeping the offending input
# under DIR/fuzz-run/<target>/ (replay it with DIR/fuzz/fuzz_<target> <file>).
# Installs clang, the libFuzzer runtime and OpenMP for clang when missing (tools/setup.sh --fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=20
build=build-fuzz
jobs=$(nproc)
targets="safetensors cifar idx image tiny_imagenet detector_state protocol torch_file"
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --targets) targets="$2"; shift 2 ;;
    *) echo "fuzz.sh: unknown argument '$1' (--seconds N, --build DIR, --jobs J, --targets LIST)" >&2; exit 2 ;;
  esac
done

bash tools/setup.sh --fuzz

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
start=$SECONDS
cmake -S . -B "$build" "${generator[@]}" -DOODKIT_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOODKIT_CUDA=OFF -DOODKIT_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
cmake --build "$build" --target oodkit_fuzz -j"$(nproc)"
echo "fuzz: built in $((SECONDS - start)) s; running each target for $seconds s, $jobs at a time"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export OMP_NUM_THREADS=1  # the parsers decode one image at a time; no thread pool noise
run_one() {  # <target>: fuzzes it from a fresh copy of its seeds; the exit status is libFuzzer's
  local t=$1 dir="$build/fuzz-run/$1"
  rm -rf "$dir" && mkdir -p "$dir/corpus" "$dir/artifacts"
  cp fuzz/corpus/"$t"/* "$dir/corpus/"
  "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1
}

pids=() names=()
for t in $targets; do
  run_one "$t" & pids+=($!) names+=("$t")
  while (($(jobs -rp | wc -l) >= jobs)); do sleep 1; done
done
fail=0
printf '%-16s %10s %8s %7s %7s  %s\n' target executions exec/s cov ft result
for i in "${!pids[@]}"; do
  t=${names[$i]} log="$build/fuzz-run/${names[$i]}/log"
  if wait "${pids[$i]}"; then result=ok; else result=FAILED; fail=1; fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  printf '%-16s %10s %8s %7s %7s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$result"
  if [ "$result" = FAILED ]; then
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written|uncaught' "$log" | head -8 | sed 's/^/    /'
    echo "    full log: $log; inputs kept: $(ls "$build/fuzz-run/$t/artifacts" | tr '\n' ' ')"
  fi
done
echo "fuzz: done in $((SECONDS - start)) s"
exit $fail
