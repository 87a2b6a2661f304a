#!/usr/bin/env bash
# Installs the Debian packages oodkit builds and runs with, if any is missing. Idempotent.
#   tools/setup.sh          build and run: compiler, CMake, Eigen, stb, JSON, CLI11, GoogleTest, zlib,
#                           Python 3 with matplotlib (the eval report's plots, tools/report.py)
#   tools/setup.sh --test   also what only the tests need: headless Chromium (renders report.html)
#   tools/setup.sh --fuzz   also what tools/fuzz.sh needs: clang, its libFuzzer/sanitizer runtime
#                           (libclang-rt-dev) and OpenMP for clang (libomp-dev)
# CUDA (nvcc, cuDNN, cuBLAS) is not installed here: the build uses it when present.
set -euo pipefail
pkgs=(build-essential cmake pkg-config python3 python3-matplotlib libeigen3-dev libstb-dev nlohmann-json3-dev
      libcli11-dev libgtest-dev zlib1g-dev)
case "${1:-}" in
  --test) pkgs+=(chromium-headless-shell) ;;
  --fuzz) pkgs+=(clang libclang-rt-dev libomp-dev) ;;
  "") ;;
  *) echo "setup.sh: unknown argument '$1' (use --test, --fuzz or nothing)" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
