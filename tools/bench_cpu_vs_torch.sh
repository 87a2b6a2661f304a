#!/usr/bin/env bash
# oodkit's CPU backend beside PyTorch CPU on the same machine, same thread count, fp32, in one run:
#   ResNet-20 training step (batch 64, SGD momentum 0.9, weight decay 5e-4, cross-entropy),
#   ResNet-20 inference (batch 256, eval mode, no grad),
#   heatmap decoder training step (batch 200, Adam, weighted MSE) at widths 1 and 0.25.
# Both sides run the same work (bench/train_step.cpp, tools/torch_reference.py speed --device cpu),
# alternating oodkit / PyTorch for --rounds rounds; the table gives each side's best median
# images/s over the rounds and the ratio oodkit / PyTorch.
#
# Usage: tools/bench_cpu_vs_torch.sh [--build DIR] [--rounds N] [--threads T] [--out FILE.md]
# PyTorch comes from the package index into a local virtual environment (.venv-torch, or
# $OODKIT_TORCH_VENV), created on first use (about 3 GB: the PyPI wheel pulls CUDA libraries it
# does not use here). It is a benchmark dependency only: nothing else in oodkit needs it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build rounds=2 threads=$(nproc) out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "bench_cpu_vs_torch.sh: unknown argument '$1' (--build DIR --rounds N --threads T --out FILE)" >&2; exit 2 ;;
  esac
done
bench="$build/bench_train_step"
[ -x "$bench" ] || { echo "bench_cpu_vs_torch.sh: $bench not found: build first (cmake --build $build --target bench_train_step)" >&2; exit 2; }
venv=${OODKIT_TORCH_VENV:-.venv-torch}
if ! "$venv/bin/python" -c "import torch, numpy" 2>/dev/null; then
  echo "bench_cpu_vs_torch.sh: installing PyTorch into $venv (first use)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch numpy
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(--precision fp32 --repeats 5 --warmup 2)
work=(--arch resnet20 --batch 64 --infer-batch 256 --decoder-width 1,0.25 --decoder-batch 200)
for r in $(seq "$rounds"); do
  echo "round $r/$rounds: oodkit" >&2
  OMP_NUM_THREADS=$threads "$bench" --device cpu "${work[@]}" "${common[@]}" --json "$tmp/oodkit.jsonl" > /dev/null 2> "$tmp/oodkit.err" || { cat "$tmp/oodkit.err" >&2; exit 1; }
  echo "round $r/$rounds: PyTorch" >&2
  "$venv/bin/python" tools/torch_reference.py speed --device cpu --threads "$threads" --knn-q 0 "${work[@]}" \
    "${common[@]}" --json "$tmp/torch.jsonl" > /dev/null 2>&1
done
python3 - "$tmp/oodkit.jsonl" "$tmp/torch.jsonl" "$threads" "$rounds" > "$tmp/table.md" <<'EOF'
import json, sys
def best(path):
    out = {}
    for line in open(path):
        r = json.loads(line)
        out[r["name"]] = max(out.get(r["name"], 0.0), r["rate_median"])
        out.setdefault("_device", r.get("device", "?"))
        if "torch_version" in r:
            out["_torch"] = r["torch_version"]
    return out
o, t = best(sys.argv[1]), best(sys.argv[2])
print(f"CPU: {o['_device']}, {sys.argv[3]} threads, fp32; PyTorch {t.get('_torch', '?')}; best median of {sys.argv[4]} alternating rounds")
print()
print("| measurement | batch | oodkit images/s | PyTorch images/s | oodkit / PyTorch |")
print("|---|---|---|---|---|")
batch = {"train_step": 64, "inference": 256, "decoder_step": 200}
for name in [k for k in o if not k.startswith("_")]:
    if name in t:
        print(f"| {name} | {batch.get(name.split('/')[0], '')} | {o[name]:.1f} | {t[name]:.1f} | {o[name] / t[name]:.2f}x |")
EOF
cat "$tmp/table.md"
if [ -n "$out" ]; then cp "$tmp/table.md" "$out"; fi
