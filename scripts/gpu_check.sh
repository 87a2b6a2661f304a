#!/usr/bin/env bash
# GPU validation of oodkit in one call on the lent GPU machine (no Debian packages, no network):
# locates CUDA, cuBLAS and cuDNN (PyTorch's nvidia wheels), builds with the carried dependency
# sources, runs the CUDA tests, runs them again under compute-sanitizer (memcheck, racecheck),
# runs the bench programs and the PyTorch reference (speed and the model-level check), and
# writes a summary.
#
# Usage (from the repository root; stage the carry first with scripts/stage_deps.sh):
#   bash scripts/gpu_check.sh [--carry .device_carry/base] [--out DIR] [--phases LIST] [--budget S]
#                           [--build-dir DIR] [--jobs N] [--cpu-smoke] [--cmake "ARGS"]
#   --carry DIR    what scripts/stage_deps.sh staged (deps.tar.xz, shared/)
#   --out DIR      results (default: $OUT, else /tmp/oodkit_gpu_check_out):
#                  gpu_check.json, gpu_check.md (short tables), gpu_check.log (everything),
#                  bench.jsonl (oodkit + PyTorch measurements), tests_cuda.json (gtest),
#                  model_check.log, sanitizer.log, build.log (8 files: the most a call returns)
#   --phases LIST  comma-separated, in this order: env,build,test,bench,torch,modelcheck,sanitize
#                  (default: all). Phases after a failed build are skipped.
#   --budget S     seconds for the whole script (default 560, for a 600 s call): every phase gets
#                  a timeout from what is left, and the summary is always written.
#   --cpu-smoke    run bench/modelcheck on the CPU with small sizes (to test this script without a GPU)
# Environment: OODKIT_GIT_COMMIT (recorded in every result), GPU_CHECK_TEST_FILTER,
#   GPU_CHECK_RACECHECK_FILTER (gtest filters of the CUDA cases).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

carry=.device_carry/base
out=${OUT:-/tmp/oodkit_gpu_check_out}
phases=env,build,test,bench,torch,modelcheck,sanitize
budget=560
build_dir=build-gpu
jobs=$(nproc)
cpu_smoke=0
extra_cmake=""
while (($#)); do
  case "$1" in
    --carry) carry=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --phases) phases=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --cpu-smoke) cpu_smoke=1; shift ;;
    --cmake) extra_cmake=$2; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

start=$(date +%s)
deadline=$((start + budget))
mkdir -p "$out"
work=/tmp/oodkit_gpu_check
rm -rf "$work"
mkdir -p "$work"
LOG=$out/gpu_check.log
: > "$LOG"
: > "$work/phases.jsonl"
: > "$work/bench.jsonl"
: > "$work/model_check.jsonl"
: > "$out/model_check.log"
: > "$out/sanitizer.log"
export OODKIT_DEVICE_SHARED=${OODKIT_DEVICE_SHARED:-/tmp/oodkit_shared}
export OODKIT_SHARED_DIR=$OODKIT_DEVICE_SHARED
export PYTHONUNBUFFERED=1
# The CUDA tests: every case that must run (and pass, never skip) when a GPU is present: every
# */CUDA instance and every test named *Cuda*/*CUDA*, less the CPU instances of device tests
# (GPU_NOT_CASES: a CPU instance is never a CUDA case) and the cases that skip by design on a GPU
# machine (GPU_BY_DESIGN_SKIPS: the no-device error), excluded by name. tests/check_gpu_gate.py
# (ctest gpu_gate.list, no GPU needed) parses these three lines, lists the tests they select and
# fails when one of them skips on a GPU by its source, or when a by-design name matches no test.
GPU_POSITIVE='*/CUDA:*Cuda*:*CUDA*'
GPU_NOT_CASES='*/CPU'
GPU_BY_DESIGN_SKIPS='*.CudaWithoutDeviceIsAClearError'
GPU_BY_DESIGN_COUNT=1
TEST_FILTER=${GPU_CHECK_TEST_FILTER:-"$GPU_POSITIVE-$GPU_NOT_CASES:$GPU_BY_DESIGN_SKIPS"}
# racecheck is slow on library kernels (cuDNN convolutions, cuBLAS): those suites are left out
# (ModelsTest alone ran past 280 s under racecheck on an H100, 2026-11-26).
RACE_FILTER=${GPU_CHECK_RACECHECK_FILTER:-"$GPU_POSITIVE-$GPU_NOT_CASES:$GPU_BY_DESIGN_SKIPS:*ModelFixture*:*Conv*:*Linear*:*Matmul*:*BatchNorm*:*Resnet*:*ResNet*:*Training*:*ModelsTest*:*HeatmapDecoder*"}

log() { echo "[gpu_check +$(($(date +%s) - start))s] $*" | tee -a "$LOG"; }
left() { echo $((deadline - $(date +%s))); }
# cap SECONDS [RESERVE]: a timeout of at most SECONDS that leaves RESERVE (default 20) seconds.
cap() {
  local l
  l=$(($(left) - ${2:-20}))
  ((l > $1)) && l=$1
  ((l < 1)) && l=1
  echo "$l"
}
# record PHASE STATUS SECONDS DETAIL
record() {
  python3 -c 'import json,sys; print(json.dumps({"phase": sys.argv[1], "status": sys.argv[2], "seconds": int(sys.argv[3]), "detail": sys.argv[4]}))' \
    "$1" "$2" "$3" "$4" >> "$work/phases.jsonl"
  log "phase $1: $2 ($3 s) $4"
}
want() { [[ ",$phases," == *",$1,"* ]]; }
# run_logged TIMEOUT LOGFILE CMD...: runs CMD with a timeout, appending its output to LOGFILE and
# to the main log; returns the command's status (124 on timeout).
run_logged() {
  local t=$1 f=$2
  shift 2
  echo "\$ $*" >> "$f"
  timeout --kill-after=10 "$t" "$@" >> "$f" 2>&1
  local rc=$?
  [ "$f" = "$LOG" ] || tail -n 40 "$f" >> "$LOG"
  return $rc
}

if [ -z "${OODKIT_GIT_COMMIT:-}" ]; then
  OODKIT_GIT_COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || sed -n 's/.*from commit \([^ ]*\).*/\1/p' "$carry/MANIFEST" 2>/dev/null | head -1)
  OODKIT_GIT_COMMIT=${OODKIT_GIT_COMMIT:-unknown}
fi
export OODKIT_GIT_COMMIT
log "oodkit gpu_check: commit $OODKIT_GIT_COMMIT, phases $phases, budget ${budget}s, out $out"

# ---- shared data: the carried ../shared files (plus anything device_stash.sh unpacked) -------
mkdir -p "$OODKIT_DEVICE_SHARED"
if [ -d "$carry/shared" ]; then
  cp -r "$carry/shared/." "$OODKIT_DEVICE_SHARED/"
fi

# ---- env: locate the toolkit, cuDNN and cuBLAS ------------------------------------------
t0=$(date +%s)
NVCC=""
for c in "$(command -v nvcc 2>/dev/null)" /usr/local/cuda/bin/nvcc; do
  if [ -n "$c" ] && [ -x "$c" ]; then NVCC=$c; break; fi
done
nv_dirs=$(python3 -c 'import importlib.util as u; s = u.find_spec("nvidia"); print("\n".join(s.submodule_search_locations) if s else "")' 2>/dev/null || true)
if [ -z "$NVCC" ]; then
  for d in $nv_dirs; do
    for c in "$d/cu13/bin/nvcc" "$d/cuda_nvcc/bin/nvcc"; do
      if [ -x "$c" ]; then NVCC=$c; break 2; fi
    done
  done
fi
CUDA_HOME_DIR=""
[ -n "$NVCC" ] && CUDA_HOME_DIR=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
tk_libdirs="$CUDA_HOME_DIR/lib64 $CUDA_HOME_DIR/lib $CUDA_HOME_DIR/targets/x86_64-linux/lib"
tk_incdirs="$CUDA_HOME_DIR/include $CUDA_HOME_DIR/targets/x86_64-linux/include"
tk_has_lib() { local d; for d in $tk_libdirs; do [ -e "$d/lib$1.so" ] && return 0; done; return 1; }
tk_has_header() { local d; for d in $tk_incdirs; do [ -e "$d/$1" ] && return 0; done; return 1; }
# first wheel file matching a glob under the nvidia package folders
wheel_file() { local d f; for d in $nv_dirs; do for f in $d/$1; do [ -e "$f" ] && { echo "$f"; return 0; }; done; done; return 1; }

CUDNN_ROOT_DIR=""
if h=$(wheel_file 'cudnn/include/cudnn.h'); then CUDNN_ROOT_DIR=$(dirname "$(dirname "$h")"); fi
if [ -z "$CUDNN_ROOT_DIR" ] && tk_has_header cudnn.h; then CUDNN_ROOT_DIR=$CUDA_HOME_DIR; fi
cmake_args=()
shim=$work/cudalibs   # unversioned .so links for libraries that only come versioned from wheels
mkdir -p "$shim"
notes=""
for lib in cudart cublas cublasLt; do
  if ! tk_has_lib "$lib"; then
    if f=$(wheel_file "cu13/lib/lib$lib.so.*") || f=$(wheel_file "cu12/lib/lib$lib.so.*") \
       || f=$(wheel_file "cublas/lib/lib$lib.so.*") || f=$(wheel_file "cuda_runtime/lib/lib$lib.so.*"); then
      ln -sf "$f" "$shim/lib$lib.so"
      notes="$notes lib$lib from wheel ($f);"
      LD_LIBRARY_PATH="$(dirname "$f")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      export LD_LIBRARY_PATH
    else
      notes="$notes lib$lib NOT FOUND;"
    fi
  fi
done
if ! tk_has_header cublas_v2.h; then
  if h=$(wheel_file 'cu13/include/cublas_v2.h') || h=$(wheel_file 'cublas/include/cublas_v2.h'); then
    CPATH="$(dirname "$h")${CPATH:+:$CPATH}"
    export CPATH
    notes="$notes cublas headers from wheel ($(dirname "$h"));"
  else
    notes="$notes cublas_v2.h NOT FOUND;"
  fi
fi
if [ -n "$(ls -A "$shim")" ]; then
  export LIBRARY_PATH="$shim${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export CMAKE_LIBRARY_PATH="$shim${CMAKE_LIBRARY_PATH:+:$CMAKE_LIBRARY_PATH}"
fi
for d in $tk_libdirs; do   # the toolkit's libraries for anything loaded by name at run time
  if [ -e "$d/libcudart.so" ]; then
    LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export LD_LIBRARY_PATH
    break
  fi
done
if [ -n "$CUDNN_ROOT_DIR" ]; then
  cmake_args+=("-DCUDNN_ROOT=$CUDNN_ROOT_DIR")
  for d in "$CUDNN_ROOT_DIR/lib" "$CUDNN_ROOT_DIR/lib64"; do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  done
fi
# Prebuilt programs (scripts/stage_deps.sh --binaries) bring the non-CUDA libraries they need in lib/.
if [ -d "$build_dir/lib" ]; then
  LD_LIBRARY_PATH="$(readlink -f "$build_dir/lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LD_LIBRARY_PATH
fi
if [ -n "$NVCC" ]; then
  PATH="$(dirname "$NVCC"):$PATH"
  export PATH
fi
SANITIZER=""
for c in "$(command -v compute-sanitizer 2>/dev/null)" "$CUDA_HOME_DIR/bin/compute-sanitizer" \
         "$CUDA_HOME_DIR/compute-sanitizer/compute-sanitizer" /usr/local/cuda/bin/compute-sanitizer; do
  if [ -n "$c" ] && [ -x "$c" ]; then SANITIZER=$c; break; fi
done
if want env; then
  {
    echo "== nvidia-smi"; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1
    echo "== nvcc ($NVCC)"; [ -n "$NVCC" ] && "$NVCC" --version 2>&1 | tail -2
    echo "== cmake"; cmake --version 2>&1 | head -1
    echo "== c++"; c++ --version 2>&1 | head -1
    echo "== ninja"; ninja --version 2>&1
    echo "== python3 $(command -v python3)"; python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>&1 | tail -1
    echo "== nvidia wheel folders"; echo "$nv_dirs"
    echo "== CUDA_HOME=$CUDA_HOME_DIR CUDNN_ROOT=$CUDNN_ROOT_DIR sanitizer=$SANITIZER"
    echo "== notes:$notes"
    echo "== LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
    echo "== zlib.h: $(ls /usr/include/zlib.h 2>&1)"
  } > "$work/env.txt" 2>&1
  cat "$work/env.txt" >> "$LOG"
  gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
  record env "$([ -n "$NVCC" ] && [ -n "$CUDNN_ROOT_DIR" ] && echo ok || echo fail)" $(($(date +%s) - t0)) \
    "gpu: ${gpu:-none}; nvcc: ${NVCC:-none}; cudnn: ${CUDNN_ROOT_DIR:-none};$notes"
fi

# ---- build ----------------------------------------------------------------------------------
built=0
tests_bin=$build_dir/tests/oodkit_tests
if want build; then
  t0=$(date +%s)
  deps=/tmp/oodkit_deps
  if [ ! -f "$deps/.unpacked" ] || ! cmp -s "$deps/.unpacked" <(sha256sum "$carry/deps.tar.xz" | cut -d' ' -f1); then
    rm -rf "$deps"
    mkdir -p "$deps"
    python3 - "$carry/deps.tar.xz" "$deps" <<'PY' >> "$LOG" 2>&1
import sys, tarfile
with tarfile.open(sys.argv[1], "r:xz") as t:
    try:
        t.extractall(sys.argv[2], filter="data")
    except TypeError:
        t.extractall(sys.argv[2])
PY
    sha256sum "$carry/deps.tar.xz" | cut -d' ' -f1 > "$deps/.unpacked"
  fi
  gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  # An existing build dir made with another generator cannot be reused.
  if [ -f "$build_dir/CMakeCache.txt" ] && ! grep -q "CMAKE_GENERATOR:INTERNAL=${gen[1]:-Unix Makefiles}" "$build_dir/CMakeCache.txt"; then
    rm -rf "$build_dir"
  fi
  [ -e /usr/include/zlib.h ] || cmake_args+=("-DZLIB_INCLUDE_DIR=$deps/zlib/include" "-DZLIB_LIBRARY=$deps/zlib/lib/libz.a")
  cuda_mode=ON
  ((cpu_smoke)) && [ -z "$NVCC" ] && cuda_mode=OFF
  [ -n "$NVCC" ] && cmake_args+=("-DCMAKE_CUDA_COMPILER=$NVCC")
  # shellcheck disable=SC2206  # --cmake "ARGS" is meant to be split
  extra=($extra_cmake)
  if run_logged "$(cap 60)" "$work/build.log" cmake -S . -B "$build_dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
       -DCMAKE_CUDA_ARCHITECTURES=90 "-DOODKIT_CUDA=$cuda_mode" "-DOODKIT_DEPS_SRC=$deps" \
       -DCMAKE_POLICY_VERSION_MINIMUM=3.5 "-DPython3_EXECUTABLE=$(command -v python3)" "${cmake_args[@]}" "${extra[@]}" \
     && run_logged "$(cap 400 120)" "$work/build.log" cmake --build "$build_dir" -j "$jobs"; then
    built=1
    record build ok $(($(date +%s) - t0)) "$(grep -m1 'oodkit: CUDA backend' "$work/build.log" | sed 's/^-- //')"
  else
    rc=$?
    record build "$([ $rc = 124 ] && echo timeout || echo fail)" $(($(date +%s) - t0)) \
      "$(grep -E 'error|Error' "$work/build.log" | head -3 | tr '\n' ' ' | cut -c1-400)"
  fi
elif [ -x "$tests_bin" ]; then
  built=1
fi

device=cuda
((cpu_smoke)) && device=cpu

# ---- CUDA tests -----------------------------------------------------------------------------
if want test; then
  t0=$(date +%s)
  if ((built)); then
    # OODKIT_CUDA_SYNC=1: every launch and library call synchronises and checks, so a fault is
    # reported at the op that caused it.
    run_logged "$(cap 240 60)" "$work/test.log" env OODKIT_CUDA_SYNC=1 "$tests_bin" "--gtest_filter=$TEST_FILTER" \
      "--gtest_output=json:$out/tests_cuda.json"
    rc=$?
    # The by-design skips, by name: on a GPU machine each must report SKIPPED.
    by_design=$("$tests_bin" "--gtest_filter=$GPU_BY_DESIGN_SKIPS" 2>&1 | grep -cE '^\[  SKIPPED \] .* \([0-9]+ ms\)$' || true)
    summary=$(python3 - "$out/tests_cuda.json" <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"no gtest json ({e})"); sys.exit(0)
cases = [c for s in d.get("testsuites", []) for c in s.get("testsuite", [])]
skipped = [c for c in cases if c.get("result") == "SKIPPED"]
failed = [f'{c["classname"]}.{c["name"]}' for c in cases if c.get("failures")]
print(f"{len(cases)} run, {len(cases) - len(failed) - len(skipped)} passed, {len(failed)} failed, {len(skipped)} skipped"
      + (f"; failed: {', '.join(failed[:20])}" if failed else ""))
PY
)
    status=ok
    [ $rc = 0 ] || status=fail
    [ $rc = 124 ] && status=timeout
    [[ "$summary" == *" 0 skipped"* ]] || { [ "$device" = cuda ] && status=fail; }
    [ "$device" = cuda ] && [ "$by_design" != "$GPU_BY_DESIGN_COUNT" ] && status=fail
    record test "$status" $(($(date +%s) - t0)) "filter $TEST_FILTER: $summary; by-design skips: $by_design of $GPU_BY_DESIGN_COUNT skipped"
  else
    record test skipped 0 "no build"
  fi
fi

# ---- oodkit benches ---------------------------------------------------------------------------
bench_flags=()
((cpu_smoke)) && bench_flags=(--repeats 3 --warmup 1 --min-ms 5)
if want bench; then
  t0=$(date +%s)
  if ((built)); then
    fails=""
    small=()
    ((cpu_smoke)) && small=(--max-mb 16)
    run_logged "$(cap 60)" "$work/bench.log" "$build_dir/bench_copy" --device "$device" --json "$work/bench.jsonl" \
      "${bench_flags[@]}" "${small[@]}" || fails="$fails copy"
    small=()
    ((cpu_smoke)) && small=(--batch 4 --elems 1048576 --gemm 256 --rows 512 --filter "r20_,add,linear_fwd/64,softmax_fwd")
    ops_flags=(--repeats 10)
    ((cpu_smoke)) && ops_flags=("${bench_flags[@]}")
    run_logged "$(cap 150)" "$work/bench.log" "$build_dir/bench_ops" --device "$device" --json "$work/bench.jsonl" \
      "${ops_flags[@]}" "${small[@]}" || fails="$fails ops"
    small=()
    ((cpu_smoke)) && small=(--batch 8 --infer-batch 16)
    run_logged "$(cap 90)" "$work/bench.log" "$build_dir/bench_train_step" --device "$device" --arch resnet20 \
      --json "$work/bench.jsonl" "${bench_flags[@]}" "${small[@]}" || fails="$fails train_step/resnet20"
    if ((!cpu_smoke)); then
      # ResNet-18 needs models/registry.h (make_classifier); a build without it says so and is recorded.
      run_logged "$(cap 90)" "$work/bench.log" "$build_dir/bench_train_step" --device "$device" --arch resnet18 \
        --json "$work/bench.jsonl" || fails="$fails train_step/resnet18"
    fi
    record bench "$([ -z "$fails" ] && echo ok || echo fail)" $(($(date +%s) - t0)) \
      "$(grep -c '"source": *"oodkit"' "$work/bench.jsonl") measurements${fails:+; failed:$fails}"
  else
    record bench skipped 0 "no build"
  fi
fi

# ---- PyTorch reference speed ----------------------------------------------------------------
if want torch; then
  t0=$(date +%s)
  if ((cpu_smoke)); then
    record torch skipped 0 "cpu smoke run"
  else
    run_logged 30 "$work/torch.log" python3 tools/torch_reference.py info
    run_logged "$(cap 150)" "$work/torch.log" python3 tools/torch_reference.py speed --json "$work/bench.jsonl"
    rc=$?
    status=ok
    [ $rc = 0 ] || status=fail
    [ $rc = 124 ] && status=timeout
    record torch "$status" $(($(date +%s) - t0)) \
      "$(grep -c '"source": *"torch"' "$work/bench.jsonl") measurements"
  fi
fi

# ---- model-level check against PyTorch ------------------------------------------------------
if want modelcheck; then
  t0=$(date +%s)
  if ((built)); then
    mc=$build_dir/bench_model_check
    mlog=$out/model_check.log
    results=""
    for arch in resnet20 resnet18; do
      in=$work/mc_${arch}_in.safetensors
      ref=$work/mc_${arch}_torch.safetensors
      own=$work/mc_${arch}_oodkit_cpu.safetensors
      w=()
      [ "$arch" = resnet20 ] && [ -f "$OODKIT_SHARED_DIR/weights/resnet20_cifar10.safetensors" ] \
        && w=(--weights "$OODKIT_SHARED_DIR/weights/resnet20_cifar10.safetensors")
      img=()
      [ -f "$OODKIT_SHARED_DIR/datasets/cifar10/test_batch.bin" ] && img=(--images "$OODKIT_SHARED_DIR/datasets/cifar10/test_batch.bin")
      batch=128
      ((cpu_smoke)) && batch=16
      if ! run_logged "$(cap 60)" "$mlog" "$mc" --mode write --arch "$arch" "${w[@]}" "${img[@]}" --batch "$batch" --out "$in"; then
        results="$results $arch:unavailable"
        continue
      fi
      # oodkit CUDA vs oodkit's float64 CPU run, with oodkit's float32 CPU run as the peer (no
      # PyTorch involved; CPU vs CPU in a --cpu-smoke run)
      if run_logged "$(cap 120)" "$mlog" "$mc" --mode reference --inputs "$in" --device cpu --out "$own" \
        && run_logged "$(cap 60)" "$mlog" "$mc" --mode compare --inputs "$in" --reference "$own" \
             --ref-variant oodkit_cpu64 --peer-variant oodkit_cpu \
             --device "$device" --precision fp32 --json "$work/model_check.jsonl"; then
        results="$results $arch/$device-vs-cpu:pass"
      else
        results="$results $arch/$device-vs-cpu:FAIL"
      fi
      if ((cpu_smoke)); then continue; fi
      if ! run_logged "$(cap 120)" "$mlog" python3 tools/torch_reference.py check --inputs "$in" --out "$ref"; then
        results="$results $arch/torch:FAIL"
        continue
      fi
      for dp in cuda:fp32 cuda:tf32 cpu:fp32; do
        if run_logged "$(cap 120)" "$mlog" "$mc" --mode compare --inputs "$in" --reference "$ref" --device "${dp%%:*}" \
             --precision "${dp##*:}" --json "$work/model_check.jsonl"; then
          results="$results $arch/$dp:pass"
        else
          results="$results $arch/$dp:FAIL"
        fi
      done
    done
    tail -n 60 "$mlog" >> "$LOG"
    record modelcheck "$([[ "$results" == *FAIL* ]] && echo fail || echo ok)" $(($(date +%s) - t0)) "${results# }"
  else
    record modelcheck skipped 0 "no build"
  fi
fi

# ---- compute-sanitizer --------------------------------------------------------------------------
if want sanitize; then
  if ((built)) && [ -n "$SANITIZER" ] && [ "$device" = cuda ]; then
    slog=$out/sanitizer.log
    for tool in memcheck racecheck; do
      t0=$(date +%s)
      # The allocator's out-of-memory case fills 75% of the device: under a sanitizer, which holds
      # device memory of its own, it would measure the tool. It runs in the test phase.
      filter=$TEST_FILTER
      [ $tool = racecheck ] && filter=$RACE_FILTER
      if [[ "$filter" == *-* ]]; then filter="$filter:*CudaAllocator.OutOfMemory*"; else filter="$filter-*CudaAllocator.OutOfMemory*"; fi
      # memcheck gets up to 2/3 of what is left, racecheck the rest
      share=$(( $(left) - 25 ))
      [ $tool = memcheck ] && share=$(( share * 2 / 3 ))
      if ((share < 30)); then
        record "sanitize_$tool" skipped 0 "no time left (run again with --phases env,build,sanitize)"
        continue
      fi
      echo "===== $tool ($filter)" >> "$slog"
      run_logged "$share" "$slog" "$SANITIZER" --tool "$tool" --error-exitcode 99 --print-limit 100 \
        "$tests_bin" "--gtest_filter=$filter"
      rc=$?
      errors=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$slog" | tail -1)
      passed=$(awk -v t="===== $tool" 'index($0, t) == 1 { c = 0; on = 1 } on && /^\[ +OK +\]/ { c++ } END { print c + 0 }' "$slog")
      status=ok
      [ $rc = 0 ] || status=fail
      [ $rc = 124 ] && status=timeout
      record "sanitize_$tool" "$status" $(($(date +%s) - t0)) \
        "rc $rc; ${errors:-no summary line}; $passed tests passed; filter $filter"
    done
    # keep the log within the 16 MB a returned file may have
    if [ "$(stat -c %s "$slog")" -gt 8000000 ]; then
      tail -c 8000000 "$slog" > "$slog.tmp" && mv "$slog.tmp" "$slog"
    fi
  else
    record sanitize skipped 0 "$([ -z "$SANITIZER" ] && echo 'compute-sanitizer not found' || echo 'no build or no GPU')"
  fi
fi

# ---- summary --------------------------------------------------------------------------------------
cp "$work/bench.jsonl" "$out/bench.jsonl"
[ -f "$work/build.log" ] && cp "$work/build.log" "$out/build.log"
python3 - "$work" "$out" "$OODKIT_GIT_COMMIT" "$(($(date +%s) - start))" <<'PY' 2>&1 | tee -a "$LOG"
import json, os, sys, datetime
work, out, commit, seconds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def lines(path):
    try:
        return [json.loads(l) for l in open(path) if l.strip()]
    except Exception:
        return []

phases = lines(os.path.join(work, "phases.jsonl"))
bench = lines(os.path.join(work, "bench.jsonl"))
checks = lines(os.path.join(work, "model_check.jsonl"))
env = open(os.path.join(work, "env.txt")).read() if os.path.exists(os.path.join(work, "env.txt")) else ""
device = next((b["device"] for b in bench if b.get("device_kind") == "cuda"), None) or \
         next((p["detail"].split(";")[0] for p in phases if p["phase"] == "env"), "unknown")
summary = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "commit": commit,
           "device": device, "seconds": seconds, "phases": phases, "model_check": checks, "bench": bench, "env": env}
json.dump(summary, open(os.path.join(out, "gpu_check.json"), "w"), indent=1)

md = [f"# oodkit gpu_check {summary['date']}", "", f"device: {device}; commit: {commit}; {seconds} s", "",
      "| phase | status | s | detail |", "|---|---|---|---|"]
for p in phases:
    md.append(f"| {p['phase']} | {p['status']} | {p['seconds']} | {p['detail'][:300].replace('|', '/')} |")

def rate(source, name, prec):
    for b in bench:
        if b.get("source") == source and b["name"] == name and b.get("precision") == prec:
            return b.get("rate_median")
    return None

names = sorted({b["name"] for b in bench if b["name"].startswith(("train_step/", "inference/"))})
if names:
    md += ["", "| model step | prec | oodkit images/s | torch images/s | oodkit/torch |", "|---|---|---|---|---|"]
    for n in names:
        for prec in ("fp32", "tf32"):
            o, t = rate("oodkit", n, prec), rate("torch", n, prec)
            if o is None and t is None:
                continue
            ratio = f"{o / t:.2f}" if o and t else "-"
            md.append(f"| {n} | {prec} | {o and round(o)} | {t and round(t)} | {ratio} |")
copy = [b for b in bench if b["name"].startswith("copy_d2d/") and b.get("source") == "oodkit"]
if copy:
    best = max(copy, key=lambda b: b["rate_median"])
    md += ["", f"copy bandwidth (read+write): {best['rate_median']:.0f} GB/s ({best['name']})"]
ops = [b for b in bench if b.get("program") == "bench_ops"]
if ops:
    md += ["", "| op | prec | batch | median ms | rate | unit | % copy bw |", "|---|---|---|---|---|---|---|"]
    for b in ops:
        pct = f"{b['pct_copy_bw']:.0f}%" if "pct_copy_bw" in b else ""
        md.append(f"| {b['name']} | {b['precision']} | {b['batch']} | {b['median']:.4f} | "
                  f"{b.get('rate_median', 0):.4g} | {b.get('rate_unit', '')} | {pct} |")
knn = [b for b in bench if b["name"].startswith(("knn_", "knn/"))]
if knn:
    md += ["", "| k-NN | source | prec | median ms | oodkit speed-up vs torch.cdist + topk (same k, fp32) |",
           "|---|---|---|---|---|"]
    for b in knn:
        ratio = ""
        if b["name"].startswith("knn/"):
            ref = next((t for t in knn if t["name"] == "knn_cdist_topk/" + b["name"][4:] and t["precision"] == "fp32"), None)
            ratio = f"{ref['median'] / b['median']:.2f}x" if ref else ""
        md.append(f"| {b['name']} | {b.get('source', '')} | {b['precision']} | {b['median']:.3f} | {ratio} |")
if checks:
    md += ["", "| model check | reference | device | prec | pass | worst (rel L2) |", "|---|---|---|---|---|---|"]
    for c in checks:
        worst = ", ".join(f"{k}: {v['rel_l2']:.1e}" for k, v in c.get("worst", {}).items())
        md.append(f"| {c['name']} | {c.get('reference', '')} | {c['device_kind']} | {c['precision']} | "
                  f"{'PASS' if c['pass'] else 'FAIL'} | {worst} |")
open(os.path.join(out, "gpu_check.md"), "w").write("\n".join(md) + "\n")
print("\n".join(md[:6 + len(phases)]))
bad = [p["phase"] for p in phases if p["status"] not in ("ok", "skipped")]
print(f"gpu_check: {'all phases ok' if not bad else 'NOT ok: ' + ', '.join(bad)}; results in {out}")
PY
