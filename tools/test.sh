#!/usr/bin/env bash
# Sets up, builds (with the CUDA backend when nvcc/cuDNN/cuBLAS are found) and runs every test.
# Usage: tools/test.sh [build-dir]   (extra CMake flags via OODKIT_CMAKE_FLAGS, extra ctest
# arguments via OODKIT_CTEST_ARGS). OODKIT_TEST_PYTHON=1 also builds the Python package's module
# and runs tests/python (ctest python.package; docs/python.md) in a virtual environment made in
# the build folder, with nanobind, numpy, pytest and scikit-learn from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bash tools/setup.sh --test   # build deps + what only the tests need (headless Chromium)
python_flags=""
if [ "${OODKIT_TEST_PYTHON:-0}" = 1 ]; then
  mkdir -p "$build"
  [ -x "$build/venv-py/bin/python" ] || python3 -m venv "$build/venv-py"
  "$build/venv-py/bin/pip" install -q nanobind numpy pytest scikit-learn
  python_flags="-DOODKIT_BUILD_PYTHON=ON -DPython_EXECUTABLE=$(cd "$build" && pwd)/venv-py/bin/python"
fi
# shellcheck disable=SC2086
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release $python_flags ${OODKIT_CMAKE_FLAGS:-}
cmake --build "$build" -j "$(nproc)"
# shellcheck disable=SC2086
ctest --test-dir "$build" -j "$(nproc)" --output-on-failure ${OODKIT_CTEST_ARGS:-}
