#!/usr/bin/env python3
"""CI check: training killed with SIGKILL at arbitrary moments resumes bit-identically (Python
standard library only). Usage: check_killed_resume.py OODKIT {train|heatmap}

  train    `oodkit train` (small_cnn on synthetic-id, 3 epochs of 4 steps)
  heatmap  `oodkit heatmap fit` (a tiny decoder for a small_cnn trained here, 3 epochs of 6 steps)

One uninterrupted run is the reference. A second run in another folder is killed (SIGKILL) three
times and resumed with --resume after each kill:
  1. during epoch 1, before any checkpoint exists (the heatmap: while the targets are computed);
  2. in the middle of epoch 2 (epoch 1 committed, epoch 2 not yet logged);
  3. while epoch 2's last.safetensors is being written (its temporary "last.safetensors.tmp.<pid>"
     is made a named pipe, so the writer blocks in it after its first bytes and the kill lands
     mid-write), so the folder keeps that temporary and the epoch-1 last.safetensors, while the
     model/decoder file and log.json already hold epoch 2 (they are written before the commit).
Each kill is checked to have landed where it was meant to (kills 1 and 2 come after a delay
and are retried from the same folder state when the script woke too late). The last resume must
finish with every tensor of last.safetensors and
of the model file byte-identical to the reference, the same log (epochs 1..3 once each, same
losses) and no temporary file left.
"""
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from st_reader import metadata, tensors  # the raw safetensors reader of the cli checks (same folder)

EPOCHS = 3


def temporaries(folder):
    return sorted(f for f in os.listdir(folder) if ".tmp." in f)


class Run:
    """One oodkit process; its output (stdout + stderr) is read line by line by a thread."""

    def __init__(self, args):
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     universal_newlines=True)
        self.lines, self.text = queue.Queue(), []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.text.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern, timeout=120):
        """Blocks until a line matches `pattern`; False when the process ended first."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=deadline - time.time())
            except queue.Empty:
                break
            if line is None:
                return False
            if re.search(pattern, line):
                return True
        return False

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def finish(self):
        rc = self.proc.wait(timeout=300)
        time.sleep(0.05)  # let the reader thread take the last lines
        return rc, "".join(self.text)


def kill_while_writing(args, folder, failures):
    """Starts `args` and kills it in the middle of writing last.safetensors. The temporary it
    writes first, "last.safetensors.tmp.<pid>", is made a named pipe beforehand: the writer blocks
    in it, the first bytes are read, and the kill comes while the rest is unwritten (a plain
    file would be written too fast to hit reliably). True when the kill landed there."""
    run = Run(args)
    fifo = os.path.join(folder, "last.safetensors.tmp.%d" % run.proc.pid)
    os.makedirs(folder, exist_ok=True)
    os.mkfifo(fifo)
    got = []

    def read_some():
        fd = os.open(fifo, os.O_RDONLY)  # blocks until the writer opens it
        got.append(os.read(fd, 4096))
        got.append(fd)

    reader = threading.Thread(target=read_some, daemon=True)
    reader.start()
    while reader.is_alive() and run.proc.poll() is None:
        reader.join(timeout=0.05)
    if not got or not got[0]:
        rc, out = run.finish()
        try:  # release the reader if it still waits
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
        failures.append("kill 3: the run ended (rc %d) without writing last.safetensors:\n%s" % (rc, out))
        return False
    run.kill()
    os.close(got[1])
    return True


def kill_after(args, folder, pattern, delay, landed, what, failures, attempts=3):
    """Starts `args`, kills it `delay` s after a line matches `pattern` and checks with
    landed(folder) that the kill hit the intended phase. A kill that came too late (a loaded
    machine can wake this script late) is a miss, not a failure: the folder is put back as it
    was and the kill retried sooner. True when one landed."""
    snapshot = folder + ".before"
    if os.path.isdir(folder):
        shutil.copytree(folder, snapshot)
    for _ in range(attempts):
        run = Run(args)
        if not run.wait_for(pattern):
            failures.append("%s: no line matched /%s/:\n%s" % (what, pattern, "".join(run.text)))
            return False
        time.sleep(delay)
        run.kill()
        if run.proc.returncode == -signal.SIGKILL and landed(folder):
            shutil.rmtree(snapshot, ignore_errors=True)
            return True
        shutil.rmtree(folder)
        if os.path.isdir(snapshot):
            shutil.copytree(snapshot, folder)
        delay /= 4
    failures.append("%s: no kill landed in %d attempts" % (what, attempts))
    return False


def checkpoint_epoch(folder):
    path = os.path.join(folder, "last.safetensors")
    return metadata(path).get("epoch") if os.path.exists(path) else None


def logged_epochs(folder):
    path = os.path.join(folder, "log.json")
    return [e["epoch"] for e in json.load(open(path))] if os.path.exists(path) else []


def killed_and_resumed(args, folder, started, epoch_seconds, failures):
    """The three kills of the module docstring, each followed by a resume; returns the output of
    the last, completing resume. `started` matches the line printed when the work begins;
    `epoch_seconds` is how long an epoch took in the reference run (kills land inside one)."""
    # 1. During epoch 1 (or the targets): nothing committed yet.
    if not kill_after(args, folder, started, 0.3 * epoch_seconds, lambda f: checkpoint_epoch(f) is None,
                      "kill 1 (in epoch 1)", failures):
        return ""
    # 2. In the middle of epoch 2: epoch 1 committed, epoch 2 not logged.
    if not kill_after(args + ["--resume"], folder, r"^epoch 1/%d " % EPOCHS, 0.4 * epoch_seconds,
                      lambda f: checkpoint_epoch(f) == "1" and logged_epochs(f) == [1], "kill 2 (in epoch 2)",
                      failures):
        return ""
    # 3. While writing epoch 2's checkpoint (epoch 1 committed, epoch 2 logged, commit in flight).
    if kill_while_writing(args + ["--resume"], folder, failures):
        ckpt = os.path.join(folder, "last.safetensors")
        epoch = metadata(ckpt).get("epoch") if os.path.exists(ckpt) else None
        if epoch != "1":
            failures.append("a kill during the write of epoch 2's checkpoint left last.safetensors at epoch %s, "
                            "not the intact epoch-1 one" % epoch)
    run = Run(args + ["--resume"])
    rc, out = run.finish()
    if rc != 0:
        failures.append("the final resume failed (rc %d):\n%s" % (rc, out))
    elif "resuming from" not in out:
        failures.append("the final resume did not continue from a checkpoint:\n" + out)
    return out


def compare(ref, got, files, loss_keys, failures):
    for name in files:
        a, b = tensors(os.path.join(ref, name)), tensors(os.path.join(got, name))
        if sorted(a) != sorted(b):
            failures.append("%s: other tensors after the kills: %s vs %s" % (name, sorted(b)[:5], sorted(a)[:5]))
        differing = [k for k in a if k in b and a[k] != b[k]]
        if differing:
            failures.append("%s differs from the uninterrupted run in %d of %d tensors, e.g. %s"
                            % (name, len(differing), len(a), differing[:3]))
        if "last" in name and not any(k.startswith("optim/") for k in a):
            failures.append("%s holds no optimiser state" % name)
    rlog, glog = (json.load(open(os.path.join(d, "log.json"))) for d in (ref, got))
    if [e["epoch"] for e in glog] != list(range(1, EPOCHS + 1)):
        failures.append("log epochs after the kills: %s" % [e["epoch"] for e in glog])
    elif [[e[k] for k in loss_keys] for e in glog] != [[e[k] for k in loss_keys] for e in rlog]:
        failures.append("logged losses differ: %s vs %s" % ([[e[k] for k in loss_keys] for e in glog],
                                                          [[e[k] for k in loss_keys] for e in rlog]))
    left = temporaries(got)
    if left:
        failures.append("temporary files left after the final resume: %s" % left)


def main():
    oodkit, what = sys.argv[1], sys.argv[2]
    root = tempfile.mkdtemp(prefix="oodkit_killed_%s_" % what)
    failures = []
    t0 = time.time()
    train = [oodkit, "train", "--arch", "small_cnn", "--dataset", "synthetic-id", "--batch", "32", "--lr", "0.05",
             "--seed", "7"]
    if what == "train":
        args = train + ["--limit", "128", "--epochs", str(EPOCHS)]
        files, loss_keys, started = ("last.safetensors", "model.safetensors"), ("train_loss",), r"^oodkit train:"
    elif what == "heatmap":
        classifier = os.path.join(root, "classifier")
        subprocess.run(train + ["--limit", "320", "--epochs", "1", "--out", classifier], check=True,
                       stdout=subprocess.DEVNULL)
        args = [oodkit, "heatmap", "fit", "--checkpoint", os.path.join(classifier, "model.safetensors"), "--id",
                "synthetic-id", "--oe", "synthetic-ood-strokes:train", "--oe-skip", "0", "--id-limit", "200",
                "--oe-limit", "40", "--heldout", "100", "--val-ood", "", "--width", "0.125", "--batch", "40",
                "--seed", "5", "--epochs", str(EPOCHS)]
        files, loss_keys, started = ("last.safetensors", "decoder.safetensors"), ("loss", "id_loss", "oe_loss"), \
            r"^oodkit heatmap fit:"
    else:
        sys.exit("usage: check_killed_resume.py OODKIT {train|heatmap}")
    ref, got = os.path.join(root, "reference"), os.path.join(root, "killed")
    subprocess.run(args + ["--out", ref], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    epoch_seconds = min(e["seconds"] for e in json.load(open(os.path.join(ref, "log.json"))))
    killed_and_resumed(args + ["--out", got], got, started, epoch_seconds, failures)
    if not failures:
        compare(ref, got, files, loss_keys, failures)
    shutil.rmtree(root, ignore_errors=True)
    if failures:
        print("FAILED (%s):\n  " % what + "\n  ".join(failures))
        sys.exit(1)
    print("check_killed_resume %s: killed in epoch 1, mid-epoch 2 and during a checkpoint write, resumed "
          "bit-identically (%.1f s)" % (what, time.time() - t0))


if __name__ == "__main__":
    main()
