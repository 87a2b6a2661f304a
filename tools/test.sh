#!/usr/bin/env bash
# Sets up, builds (with the CUDA backend when nvcc/cuDNN/cuBLAS are found) and runs every test.
# Usage: tools/test.sh [build-dir]   (extra CMake flags via OODKIT_CMAKE_FLAGS, extra ctest
# arguments via OODKIT_CTEST_ARGS)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bash tools/setup.sh --test   # build deps + what only the tests need (headless Chromium)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${OODKIT_CMAKE_FLAGS:-}
cmake --build "$build" -j "$(nproc)"
# shellcheck disable=SC2086
ctest --test-dir "$build" -j "$(nproc)" --output-on-failure ${OODKIT_CTEST_ARGS:-}
