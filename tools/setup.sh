#!/usr/bin/env bash
# Installs the Debian packages oodkit builds with, if any is missing. Idempotent.
# CUDA (nvcc, cuDNN, cuBLAS) is not installed here: the build uses it when present.
set -euo pipefail
pkgs=(build-essential cmake pkg-config python3 libeigen3-dev libstb-dev nlohmann-json3-dev libcli11-dev
      libgtest-dev zlib1g-dev)
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
