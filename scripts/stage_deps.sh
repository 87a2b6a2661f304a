#!/usr/bin/env bash
# Stages what a GPU run needs and does not find on the GPU machine (no Debian packages, no
# network, and ../shared does not travel) into the git-ignored folder .device_carry/, then
# prints the exact `run` call(s) of the device tool for scripts/gpu_check.sh.
#
#   .device_carry/deps/             dependency sources, unpacked (for --verify here; not carried)
#   .device_carry/base/deps.tar.xz  the same, compressed: eigen/ stb/ json/ cli11/ googletest/ zlib/
#   .device_carry/base/shared/...   the ../shared files the CUDA tests and benches read
#   .device_carry/base/MANIFEST     sizes and sha256 sums
#   .device_carry/bin/              with --binaries: oodkit, oodkit_tests and the bench programs built
#                                   here for sm_90 (build-gpu/), stripped, plus lib/ with the shared
#                                   libraries they need that the GPU machine lacks (libstb, libgomp,
#                                   libz); CUDA, cuBLAS and cuDNN come from PyTorch's wheels there.
#                                   The way the 2026-11-26 H100 runs were made: no build there.
#   .device_carry/cifar_train_<i>/  with --cifar-train: CIFAR-10 train (5 x 30 MB) as a tar
#                                   compressed with xz (delta filter), split in parts that each fit
#                                   one call; scripts/device_stash.sh joins them on the GPU machine.
#
# Usage: scripts/stage_deps.sh [--shared DIR] [--data "REL ..."] [--cifar-train] [--verify]
#                            [--binaries] [--limit-mib 64]
#   --binaries       build the CUDA programs here (build-gpu/, Release, sm_90) and stage them
#   --shared DIR     the shared folder (default: $OODKIT_SHARED_DIR, else <repo>/../shared)
#   --data LIST      files/folders relative to it (default: the CIFAR-10 test batch + class names
#                    and weights/); e.g. --data "datasets/cifar10/test_batch.bin weights datasets/mnist"
#   --cifar-train    also stage the CIFAR-10 training set for a two-call run (see the printed calls)
#   --verify         configure and build (CPU only, -DOODKIT_DEPS_SRC=.device_carry/deps) in
#                    build-depsverify/ and check that every third-party header came from the carry
# Needs: the Debian packages of tools/setup.sh (libeigen3-dev libstb-dev nlohmann-json3-dev
# libcli11-dev libgtest-dev zlib1g-dev), tar, xz, sha256sum, git.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

shared=${OODKIT_SHARED_DIR:-$repo/../shared}
data="datasets/cifar10/test_batch.bin datasets/cifar10/batches.meta.txt weights"
cifar_train=0
verify=0
binaries=0
limit_mib=64
while (($#)); do
  case "$1" in
    --shared) shared=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --cifar-train) cifar_train=1; shift ;;
    --verify) verify=1; shift ;;
    --binaries) binaries=1; shift ;;
    --limit-mib) limit_mib=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "stage_deps: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

carry=.device_carry
git check-ignore -q "$carry/x" || { echo "stage_deps: $carry/ is not git-ignored; add '/$carry/' to .gitignore" >&2; exit 1; }
rm -rf "$carry/deps" "$carry/base"
((cifar_train)) && rm -rf "$carry"/cifar_train_*
mkdir -p "$carry/deps" "$carry/base/shared"

need() { [ -e "$1" ] || { echo "stage_deps: missing $1 (run tools/setup.sh)" >&2; exit 1; }; }

# ---- dependency sources, laid out as third_party/dependencies.cmake expects -----------------
d=$carry/deps
need /usr/include/eigen3/Eigen/Core
mkdir -p "$d/eigen"
cp -r /usr/include/eigen3/Eigen "$d/eigen/"                   # <Eigen/...>; unsupported/ is not used
need /usr/include/stb/stb_image.h
cp -r /usr/include/stb "$d/stb"                               # "stb_image.h" (+ write/resize)
need /usr/include/nlohmann/json.hpp
mkdir -p "$d/json/single_include"
cp -r /usr/include/nlohmann "$d/json/single_include/"          # <nlohmann/json.hpp> (multi-header)
need /usr/include/CLI/CLI.hpp
mkdir -p "$d/cli11/include"
cp -r /usr/include/CLI "$d/cli11/include/"                     # <CLI/CLI.hpp>
need /usr/src/googletest/CMakeLists.txt
mkdir -p "$d/googletest"
cp /usr/src/googletest/CMakeLists.txt "$d/googletest/"         # BUILD_GMOCK=OFF: googlemock unused
cp -r /usr/src/googletest/googletest "$d/googletest/"
# googletest >= 1.11 defines the alias GTest::gtest itself, and third_party/dependencies.cmake
# then fails to create it again ("another target with the same name already exists"). Drop
# googletest's own <package>::<name> aliases in the carried copy (oodkit uses only GTest::gtest,
# which dependencies.cmake creates); harmless once dependencies.cmake guards its alias.
# shellcheck disable=SC2016  # the CMake ${...} are literal text here
sed -i '/add_library(${cmake_package_name}::${name} ALIAS ${name})/d' "$d/googletest/googletest/cmake/internal_utils.cmake"
# shellcheck disable=SC2016
grep -q 'cmake_package_name}::${name} ALIAS' "$d/googletest/googletest/cmake/internal_utils.cmake" \
  && { echo "stage_deps: could not patch googletest's alias" >&2; exit 1; }
need /usr/include/zlib.h
mkdir -p "$d/zlib/include" "$d/zlib/lib"                       # for a zlib-less GPU image
cp /usr/include/zlib.h /usr/include/zconf.h "$d/zlib/include/"
cp "/usr/lib/$(gcc -print-multiarch)/libz.a" "$d/zlib/lib/"
tar -C "$d" -cf - eigen stb json cli11 googletest zlib | xz -T2 -6 > "$carry/base/deps.tar.xz"

# ---- shared data ------------------------------------------------------------------------------
[ -d "$shared" ] || { echo "stage_deps: shared folder $shared not found (set --shared)" >&2; exit 1; }
for rel in $data; do
  [ -e "$shared/$rel" ] || { echo "stage_deps: $shared/$rel not found" >&2; exit 1; }
  mkdir -p "$carry/base/shared/$(dirname "$rel")"
  cp -r "$shared/$rel" "$carry/base/shared/$rel"
done
chmod -R u+w "$carry/base/shared"

commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
{
  echo "# staged $(date -u +%Y-%m-%dT%H:%M:%SZ) from commit $commit by scripts/stage_deps.sh"
  (cd "$carry/base" && find . -type f ! -name MANIFEST -print0 | sort -z | xargs -0 sha256sum)
} > "$carry/base/MANIFEST"

# ---- sizes ------------------------------------------------------------------------------------
limit=$((limit_mib * 1024 * 1024))
tree_bytes=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
base_bytes=$(du -sb "$carry/base" | cut -f1)
deps_raw=$(du -sb "$carry/deps" | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "stage_deps: working tree $(mib "$tree_bytes"), $carry/base $(mib "$base_bytes") (deps $(mib "$deps_raw") unpacked, $(mib "$(stat -c %s "$carry/base/deps.tar.xz")") as deps.tar.xz)"
total=$((tree_bytes + base_bytes))
echo "stage_deps: one call carries $(mib "$total") of the $limit_mib MiB limit"
if ((total > limit)); then
  echo "stage_deps: over the limit: stage less --data" >&2
  exit 1
fi

# ---- CIFAR-10 training set in parts -------------------------------------------------------
parts=0
if ((!cifar_train)) && [ -f "$carry/cifar_train_1/STASH" ]; then
  parts=$(sed -n 's/^parts=//p' "$carry/cifar_train_1/STASH")
  last=$(du -sb "$carry/cifar_train_$parts" | cut -f1)
  echo "stage_deps: keeping the CIFAR-10 train parts staged earlier ($parts part(s))"
  if ((tree_bytes + base_bytes + last > limit)); then
    echo "stage_deps: but base/ + the last part are now over the limit: run again with --cifar-train" >&2
    exit 1
  fi
fi
if ((cifar_train)); then
  for i in 1 2 3 4 5; do [ -f "$shared/datasets/cifar10/data_batch_$i.bin" ] || { echo "stage_deps: no $shared/datasets/cifar10/data_batch_$i.bin" >&2; exit 1; }; done
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "stage_deps: compressing CIFAR-10 train (about 2-4 minutes on 2 cores)..."
  tar -C "$shared/datasets/cifar10" -cf - data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin \
    | xz -T2 --delta=dist=32 --lzma2=preset=6 > "$work/cifar_train.tar.xz"
  T=$(stat -c %s "$work/cifar_train.tar.xz")
  sum=$(sha256sum "$work/cifar_train.tar.xz" | cut -d' ' -f1)
  margin=$((2 * 1024 * 1024))
  chunk=$((limit - tree_bytes - margin))             # a call that carries only a part
  last_max=$((limit - tree_bytes - base_bytes - margin))  # the last call also carries base/
  if ((T <= last_max)); then
    parts=1
  else
    parts=$((1 + (T - last_max + chunk - 1) / chunk))
  fi
  # Parts 1..parts-1 hold `size` bytes each, the last one the rest (<= last_max by construction).
  size=$(( parts > 1 ? (T - (T < last_max ? T : last_max) + parts - 2) / (parts - 1) : T ))
  offset=0
  for ((i = 1; i <= parts; i++)); do
    dir=$carry/cifar_train_$i
    mkdir -p "$dir"
    n=$(( i < parts ? size : T - offset ))
    dd if="$work/cifar_train.tar.xz" of="$dir/cifar_train.tar.xz.part$i" bs=1M iflag=skip_bytes,count_bytes \
      skip="$offset" count="$n" status=none
    printf 'parts=%d\nsha256=%s\nbytes=%d\n' "$parts" "$sum" "$T" > "$dir/STASH"
    offset=$((offset + n))
  done
  echo "stage_deps: CIFAR-10 train: $(mib "$T") compressed (sha256 $sum) in $parts part(s)"
fi

# ---- prebuilt CUDA programs -----------------------------------------------------------------
if ((binaries)); then
  bdir=build-gpu
  command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "stage_deps: --binaries needs nvcc" >&2; exit 1; }
  echo "stage_deps: building the CUDA programs in $bdir (Release, sm_90)"
  gen=()
  command -v ninja >/dev/null && [ ! -f "$bdir/CMakeCache.txt" ] && gen=(-G Ninja)
  cmake -S . -B "$bdir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DOODKIT_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    > /tmp/stage_deps_configure.log 2>&1 || { tail -30 /tmp/stage_deps_configure.log; exit 1; }
  cmake --build "$bdir" -j "$(nproc)" > /tmp/stage_deps_build.log 2>&1 \
    || { grep -E "error|Error" /tmp/stage_deps_build.log | head -30; exit 1; }
  b=$carry/bin
  rm -rf "$b"
  mkdir -p "$b/tests" "$b/lib"
  progs=("$bdir/oodkit" "$bdir"/bench_*)
  cp "${progs[@]}" "$b/"
  cp "$bdir/tests/oodkit_tests" "$b/tests/"
  strip "$b/oodkit" "$b"/bench_* "$b/tests/oodkit_tests"
  # Libraries outside CUDA and the C/C++ runtime that the GPU image may lack.
  for f in "${progs[@]}" "$bdir/tests/oodkit_tests"; do ldd "$f"; done | awk '$2 == "=>" {print $3}' | sort -u \
    | grep -E '/lib(stb|gomp|z)\.so' | while read -r lib; do cp -L "$lib" "$b/lib/"; done
  echo "stage_deps: $b: $(du -sh "$b" | cut -f1) ($(ls "$b/lib" | tr '\n' ' '))"
fi

# ---- verification here --------------------------------------------------------------------
if ((verify)); then
  bdir=build-depsverify
  echo "stage_deps: verifying: CPU-only configure + build in $bdir with -DOODKIT_DEPS_SRC=$carry/deps"
  launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  mkdir -p "$bdir"
  cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DOODKIT_CUDA=OFF "-DOODKIT_DEPS_SRC=$repo/$carry/deps" \
    "-DZLIB_INCLUDE_DIR=$repo/$carry/deps/zlib/include" "-DZLIB_LIBRARY=$repo/$carry/deps/zlib/lib/libz.a" \
    "${launcher[@]}" > "$bdir/configure.log" 2>&1 || { tail -30 "$bdir/configure.log"; exit 1; }
  cmake --build "$bdir" -j "$(nproc)" > "$bdir/build.log" 2>&1 || { grep -E "error|Error" "$bdir/build.log" | head -30; exit 1; }
  # Every third-party header must have come from the carry, not from /usr/include.
  leaked=$(find "$bdir" -name '*.d' -print0 | xargs -0 cat | tr ' ' '\n' \
    | grep -E '^/usr/(include/(eigen3|stb|nlohmann|CLI|gtest|zlib\.h|zconf\.h)|src/googletest)' | sort -u || true)
  used=$(find "$bdir" -name '*.d' -print0 | xargs -0 cat | tr ' ' '\n' | grep -c "$carry/deps/" || true)
  if ((used == 0)); then
    echo "stage_deps: verify FAILED: no compiler dependency file names a header of $carry/deps" >&2
    exit 1
  fi
  if [ -n "$leaked" ]; then
    echo "stage_deps: verify FAILED: these headers came from the system, not from $carry/deps:" >&2
    echo "$leaked" >&2
    exit 1
  fi
  echo "stage_deps: verify ok: $used header uses from $carry/deps, $(find "$bdir" -maxdepth 2 -type f -executable \( -name 'bench_*' -o -name oodkit -o -name oodkit_tests \) | wc -l) programs built, all third-party headers from $carry/deps"
fi

# ---- the calls to make ------------------------------------------------------------------------
dirty=""
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && dirty="-dirty"
cat <<EOF

== device tool calls (the session's own checkout travels: stage there; the machine starts bare) ==
With --binaries (no build on the GPU machine; the proven way):
  run(command: "OODKIT_GIT_COMMIT=$commit$dirty bash scripts/gpu_check.sh --carry .device_carry/base --build-dir .device_carry/bin --phases env,test,bench,torch,modelcheck,sanitize --budget 520",
      carry: [".device_carry/base", ".device_carry/bin"], timeout_s: 560)
Without (builds there from the carried sources, about a minute on its 16 cores):
One call: build + CUDA tests + benches + PyTorch comparison + model check + sanitizers
(scripts/gpu_check.sh keeps within its --budget; results in \$OUT/gpu_check.{json,md}, logs beside):
  run(command: "OODKIT_GIT_COMMIT=$commit$dirty bash scripts/gpu_check.sh --carry .device_carry/base --budget 560",
      carry: [".device_carry/base"], timeout_s: 600)
If the sanitizers did not fit, a second call while the machine is still warm (the build is kept):
  run(command: "OODKIT_GIT_COMMIT=$commit$dirty bash scripts/gpu_check.sh --carry .device_carry/base --phases env,build,sanitize --budget 560",
      carry: [".device_carry/base"], timeout_s: 600)
EOF
if ((parts > 0)); then
  echo
  echo "CIFAR-10 train ($parts part(s)); issue the calls back to back: the machine forgets everything ~30 s after a call."
  for ((i = 1; i < parts; i++)); do
    echo "  run(command: \"bash scripts/device_stash.sh put .device_carry/cifar_train_$i\", carry: [\".device_carry/cifar_train_$i\"], timeout_s: 120)"
  done
  echo "  run(command: \"bash scripts/device_stash.sh put .device_carry/cifar_train_$parts && bash scripts/device_stash.sh assemble && <job>\","
  echo "      carry: [\".device_carry/base\", \".device_carry/cifar_train_$parts\"])"
  echo "  where <job> finds the full CIFAR-10 under \$(bash scripts/device_stash.sh shared-dir)/datasets/cifar10,"
  echo "  e.g. 'bash scripts/gpu_check.sh --carry .device_carry/base --phases env,build,test'."
fi
