#!/usr/bin/env python3
"""Checks scripts/gpu_check.sh's CUDA test gate without a GPU (ctest gpu_gate.list).

The gate runs every test its filter selects on the GPU machine and marks the phase failed when
one of them is skipped. A test that skips by design on a GPU (a CPU-only float64 case written as a
device test, the no-device error) must therefore be excluded by name, and a CPU instance of a
device test must not be selected at all (it compares the CPU with itself). This script:
  1. reads GPU_POSITIVE, GPU_NOT_CASES, GPU_BY_DESIGN_SKIPS and GPU_BY_DESIGN_COUNT from the script;
  2. lists the tests the gate's filter selects (oodkit_tests --gtest_list_tests);
  3. reads every TEST/TEST_F/TEST_P body under tests/ and finds the ones that skip when a GPU is
     present: `if (on_cuda()) GTEST_SKIP` (their CUDA instance) and `if (cuda_available())
     GTEST_SKIP` (every instance);
  4. fails when a selected test skips on a GPU by its source, when a selected test is a /CPU
     instance, or when the by-design list does not name exactly GPU_BY_DESIGN_COUNT tests.
Usage: check_gpu_gate.py OODKIT_TESTS_BINARY SOURCE_DIR
"""
import pathlib
import re
import subprocess
import sys

SKIP_ON_CUDA_INSTANCE = re.compile(r"if\s*\(\s*(on_cuda\(\)|device\(\)\.is_cuda\(\)|GetParam\(\)\.is_cuda\(\))\s*\)\s*GTEST_SKIP")
SKIP_WITH_A_GPU = re.compile(r"if\s*\(\s*cuda_available\(\)\s*\)\s*GTEST_SKIP")
TEST_MACRO = re.compile(r"^(TEST|TEST_F|TEST_P)\(\s*(\w+)\s*,\s*(\w+)\s*\)", re.M)


def gate_variables(script):
    text = script.read_text()
    out = {}
    for name in ("GPU_POSITIVE", "GPU_NOT_CASES", "GPU_BY_DESIGN_SKIPS", "GPU_BY_DESIGN_COUNT"):
        m = re.search(rf"^{name}='?([^'\n]*)'?$", text, re.M)
        if not m:
            sys.exit(f"check_gpu_gate: {script} has no {name}= line")
        out[name] = m.group(1)
    return out


def listed(binary, gtest_filter):
    """Full names (Suite.Name, with any /param parts) of the tests the filter selects."""
    r = subprocess.run([binary, "--gtest_list_tests", f"--gtest_filter={gtest_filter}"],
                       capture_output=True, text=True, check=True)
    names, suite = [], None
    for line in r.stdout.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            suite = line.split("#")[0].strip()
        else:
            names.append(suite + line.split("#")[0].strip())
    return names


def skips_on_a_gpu(source_dir):
    """(fixture, test) -> 'cuda-instance' or 'all', from the test sources."""
    out = {}
    for f in sorted((source_dir / "tests").glob("*.cpp")):
        text = f.read_text()
        heads = list(TEST_MACRO.finditer(text))
        for i, m in enumerate(heads):
            body = text[m.end():heads[i + 1].start() if i + 1 < len(heads) else len(text)]
            key = (m.group(2), m.group(3))
            if SKIP_WITH_A_GPU.search(body):
                out[key] = ("all", f.name)
            elif SKIP_ON_CUDA_INSTANCE.search(body):
                out[key] = ("cuda-instance", f.name)
    return out


def split(full):
    """'Devices/ReduceTest.Name/CUDA' -> ('ReduceTest', 'Name', 'CUDA')."""
    suite, name = full.split(".", 1)
    fixture = suite.split("/")[-1]
    base, _, param = name.partition("/")
    return fixture, base, param


def main():
    binary, source_dir = sys.argv[1], pathlib.Path(sys.argv[2])
    v = gate_variables(source_dir / "scripts" / "gpu_check.sh")
    gate = f"{v['GPU_POSITIVE']}-{v['GPU_NOT_CASES']}:{v['GPU_BY_DESIGN_SKIPS']}"
    selected = listed(binary, gate)
    skips = skips_on_a_gpu(source_dir)
    problems = []
    for full in selected:
        fixture, base, param = split(full)
        if param == "CPU":
            problems.append(f"{full}: a CPU instance is selected as a CUDA case")
        kind = skips.get((fixture, base))
        if kind and (kind[0] == "all" or param == "CUDA"):
            problems.append(f"{full} ({kind[1]}): skips when a GPU is present, yet the gate requires it to run; "
                            "make it a CPU-only test or list it in GPU_BY_DESIGN_SKIPS")
    by_design = listed(binary, v["GPU_BY_DESIGN_SKIPS"])
    if len(by_design) != int(v["GPU_BY_DESIGN_COUNT"]):
        problems.append(f"GPU_BY_DESIGN_SKIPS selects {len(by_design)} tests ({', '.join(by_design) or 'none'}), "
                        f"GPU_BY_DESIGN_COUNT says {v['GPU_BY_DESIGN_COUNT']}")
    for full in by_design:
        fixture, base, param = split(full)
        kind = skips.get((fixture, base))
        if not kind or (kind[0] == "cuda-instance" and param != "CUDA"):
            problems.append(f"{full} is listed as a by-design skip but does not skip when a GPU is present")
    cuda_instances = [n for n in selected if n.endswith("/CUDA")]
    print(f"gate filter {gate}: {len(selected)} CUDA cases ({len(cuda_instances)} */CUDA instances, "
          f"{len(selected) - len(cuda_instances)} named *Cuda*/*CUDA*); by-design skips: {', '.join(by_design)}")
    if not selected:
        problems.append("the gate selects no test")
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
