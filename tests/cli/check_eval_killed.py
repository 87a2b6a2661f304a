#!/usr/bin/env python3
"""CI check: `oodkit eval` and `oodkit study` killed (SIGKILL) mid-way leave no results that look
complete (Python standard library only). The contract (tools/eval.cpp): a run first removes an
earlier run's results; detectors/protocol.json, scores.safetensors, results.json, results.csv and
results.md follow the protocol, each atomic, results.md last; the study writes report.md last.

Eval (a small_cnn trained here for one epoch, two synthetic OOD sets, four detectors):
1. a run killed while writing results.md (its temporary "results.md.tmp.<pid>" is made a named
   pipe beforehand, so the writer blocks in it; the kill comes once results.csv is there, or
   once the process is seen waiting in the pipe): no
   results.md, and the files before it are complete (results.json parses and has every method);
2. a second run in the same folder killed right after feature extraction (the detectors are
   being fitted): none of the results files of run 1 and no detectors/protocol.json are left;
Study: a folder holding an earlier report.md and eval/results.md; a study killed during its
evaluation leaves neither.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from check_killed_resume import Run

RESULTS = ("results.md", "results.json", "results.csv", "scores.safetensors", "detectors/protocol.json")
METHODS = ("msp", "energy", "mahalanobis", "knn")


def blocked_in_fifo(pid):
    """Whether the process waits in open() for a named pipe's reader (where /proc shows it)."""
    try:
        with open("/proc/%d/wchan" % pid) as f:
            return f.read().strip() == "wait_for_partner"
    except OSError:
        return False


def present(folder):
    return [f for f in RESULTS if os.path.exists(os.path.join(folder, f))]


def main():
    oodkit = sys.argv[1]
    root = tempfile.mkdtemp(prefix="oodkit_eval_killed_")
    failures = []
    t0 = time.time()
    classifier = os.path.join(root, "classifier")
    subprocess.run([oodkit, "train", "--arch", "small_cnn", "--dataset", "synthetic-id", "--limit", "320", "--batch",
                    "32", "--epochs", "1", "--seed", "7", "--out", classifier], check=True, stdout=subprocess.DEVNULL)
    out = os.path.join(root, "eval")
    ev = [oodkit, "eval", "--checkpoint", os.path.join(classifier, "model.safetensors"), "--id", "synthetic-id",
          "--ood", "synthetic-ood-noise,synthetic-ood-textures", "--val-ood", "synthetic-ood-strokes:val",
          "--heldout", "200", "--val-ood-limit", "200", "--fit-limit", "500", "--test-limit", "500", "--ood-limit",
          "300", "--methods", ",".join(METHODS), "--tuning", "features", "--dump-scores", "--out", out]

    # 1. Killed while writing results.md, the last file.
    run = Run(ev)
    os.makedirs(out, exist_ok=True)
    os.mkfifo(os.path.join(out, "results.md.tmp.%d" % run.proc.pid))
    deadline = time.time() + 300
    while run.proc.poll() is None and not os.path.exists(os.path.join(out, "results.csv")) \
            and not blocked_in_fifo(run.proc.pid) and time.time() < deadline:
        time.sleep(0.01)
    if run.proc.poll() is not None:
        failures.append("eval 1 ended (rc %d) instead of blocking in results.md:\n%s" % run.finish())
    else:
        time.sleep(0.2)  # it cannot get past the pipe: it stays blocked in results.md's write
        alive = run.proc.poll() is None
        run.kill()
        if not alive:
            failures.append("eval 1 got past the write of results.md")
        if present(out) != list(RESULTS[1:]):
            failures.append("eval killed while writing results.md left %s, not everything but results.md"
                            % present(out))
        else:
            j = json.load(open(os.path.join(out, "results.json")))
            if sorted(j.get("methods", {})) != sorted(METHODS):
                failures.append("results.json of the killed run lacks methods: %s" % sorted(j.get("methods", {})))
    for f in os.listdir(out):
        if ".tmp." in f:
            os.remove(os.path.join(out, f))

    # 2. Killed in the middle (after feature extraction): nothing of run 1 may be left.
    run = Run(ev)
    if not run.wait_for(r"^features extracted"):
        failures.append("eval 2 never finished its features:\n" + "".join(run.text))
    run.kill()
    if present(out):
        failures.append("eval killed mid-way left %s" % present(out))

    # Study killed during its evaluation, in a folder with an earlier run's report.
    study = os.path.join(root, "study")
    os.makedirs(os.path.join(study, "eval"))
    for f in ("report.md", "eval/results.md"):
        with open(os.path.join(study, f), "w") as fh:
            fh.write("# an earlier, complete run\n")
    run = Run([oodkit, "study", "--train-limit", "320", "--epochs", "1", "--heatmap-epochs", "0", "--methods",
               "msp,energy", "--out", study])
    if not run.wait_for(r"^== 2/2 evaluating"):
        failures.append("the study never reached its evaluation:\n" + "".join(run.text))
    time.sleep(1)
    run.kill()
    left = [f for f in ("report.md", "eval/results.md", "eval/results.json") if os.path.exists(os.path.join(study, f))]
    if left:
        failures.append("a study killed during its evaluation left %s" % left)

    shutil.rmtree(root, ignore_errors=True)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("check_eval_killed: killed evals and a killed study left no complete-looking results (%.1f s)"
          % (time.time() - t0))


if __name__ == "__main__":
    main()
