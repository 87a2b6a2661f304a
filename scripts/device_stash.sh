#!/usr/bin/env bash
# Runs on the GPU machine: collects the parts of a large file carried over several device calls
# (see scripts/stage_deps.sh --cifar-train) and unpacks the result into the shared folder that
# scripts/gpu_check.sh hands to oodkit (OODKIT_SHARED_DIR). The machine keeps /tmp only while it
# stays warm (about 30 s after a call), so the calls must follow each other at once.
#
#   scripts/device_stash.sh put DIR      copy DIR/*.part* and DIR/STASH into the stash
#   scripts/device_stash.sh assemble     join the parts, check the sha256, unpack the CIFAR-10
#                                      training batches into <shared>/datasets/cifar10/
#   scripts/device_stash.sh status       list what the stash holds
#   scripts/device_stash.sh shared-dir   print <shared> (default /tmp/oodkit_shared)
# Environment: OODKIT_STASH_DIR (default /tmp/oodkit_stash), OODKIT_DEVICE_SHARED (default /tmp/oodkit_shared).
set -euo pipefail
stash=${OODKIT_STASH_DIR:-/tmp/oodkit_stash}
shared=${OODKIT_DEVICE_SHARED:-/tmp/oodkit_shared}
cmd=${1:-status}

case "$cmd" in
  put)
    dir=${2:?usage: device_stash.sh put DIR}
    mkdir -p "$stash"
    cp "$dir"/STASH "$stash/STASH"
    cp "$dir"/*.part* "$stash/"
    echo "device_stash: stashed $(find "$dir" -maxdepth 1 -name '*.part*' -printf '%f ')in $stash"
    ;;
  status)
    ls -la "$stash" 2>/dev/null || echo "device_stash: $stash is empty"
    ;;
  shared-dir)
    echo "$shared"
    ;;
  assemble)
    [ -f "$stash/STASH" ] || { echo "device_stash: nothing stashed in $stash (the machine was replaced? put all parts again)" >&2; exit 1; }
    parts=$(sed -n 's/^parts=//p' "$stash/STASH")
    want=$(sed -n 's/^sha256=//p' "$stash/STASH")
    files=()
    for ((i = 1; i <= parts; i++)); do
      f=$(find "$stash" -maxdepth 1 -name "*.part$i" | head -1)
      [ -n "$f" ] || { echo "device_stash: part $i of $parts is missing from $stash (re-run its put call)" >&2; exit 1; }
      files+=("$f")
    done
    joined=$stash/joined.tar.xz
    cat "${files[@]}" > "$joined"
    got=$(sha256sum "$joined" | cut -d' ' -f1)
    [ "$got" = "$want" ] || { echo "device_stash: sha256 mismatch ($got, want $want)" >&2; exit 1; }
    mkdir -p "$shared/datasets/cifar10"
    # Python's tarfile/lzma decode the xz delta filter without needing the xz program.
    python3 - "$joined" "$shared/datasets/cifar10" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1], "r:xz") as t:
    for m in t.getmembers():
        if not m.isfile() or "/" in m.name or m.name.startswith("."):
            raise SystemExit(f"device_stash: unexpected member {m.name!r}")
    try:
        t.extractall(sys.argv[2], filter="data")
    except TypeError:  # Python without extraction filters
        t.extractall(sys.argv[2])
PY
    rm -f "$joined"
    echo "device_stash: unpacked $(find "$shared/datasets/cifar10" -maxdepth 1 -type f -printf '%f ')into $shared/datasets/cifar10"
    ;;
  *)
    echo "device_stash: unknown command '$cmd' (put, assemble, status, shared-dir)" >&2
    exit 2
    ;;
esac
