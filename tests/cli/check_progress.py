#!/usr/bin/env python3
"""CI check of the progress lines (tools/progress.h) of `oodkit train` (Python standard library only).

Runs the same short training (small_cnn on 256 synthetic images, 2 epochs of 8 batches, a few
seconds on the CPU) twice:
- stderr on a pseudo-terminal (Python's pty): the progress of each epoch is one updating line, each
  state starting with "\\r\\033[K" (carriage return, erase line) and giving done/total batches;
- stderr to a pipe: plain newline-terminated lines without any '\\r', one final line per step
  with done == total and its total time.
Both runs must print the same epoch lines on stdout.
"""
import os
import pty
import re
import subprocess
import sys
import tempfile

ARGS = ["train", "--arch", "small_cnn", "--dataset", "synthetic-id", "--limit", "256", "--batch", "32",
        "--epochs", "2", "--lr", "0.05", "--no-augment", "--seed", "0"]
# "training epoch 1/2 8/8  123.4 batches/s  0:01  loss 2.2961  acc 12.50%"
TRAIN = r"training epoch (\d)/2 (\d+)/(\d+)  \d+\.\d batches/s  (?:ETA )?\d+:\d\d  loss \d+\.\d{4}  acc \d+\.\d\d%"
TEST = r"testing epoch (\d)/2 (\d+)/(\d+)  \d+\.\d images/s  (?:ETA )?\d+:\d\d"


def run_with_pty(oodkit, out):
    """stderr on a pseudo-terminal (what the program sees as a terminal), stdout to a pipe."""
    master, slave = pty.openpty()
    p = subprocess.Popen([oodkit] + ARGS + ["--out", out], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    stdout = p.stdout.read()
    p.wait(timeout=120)
    return p.returncode, stdout.decode(), err.decode()


def run_with_pipe(oodkit, out):
    p = subprocess.run([oodkit] + ARGS + ["--out", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def epoch_lines(stdout):
    return [re.sub(r"\d+\.\d s \(\d+ img/s\)", "(t)", l) for l in stdout.splitlines() if l.startswith("epoch ")]


def main():
    oodkit = sys.argv[1]
    root = tempfile.mkdtemp(prefix="oodkit_progress_")
    failures = []

    rc, tty_out, tty_err = run_with_pty(oodkit, os.path.join(root, "tty"))
    if rc != 0:
        failures.append("train on a terminal: exit %d: %r" % (rc, tty_err[-400:]))
    # Every state of the line starts with "\r\033[K" (the terminal may turn the final "\n" into "\r\n").
    states = tty_err.replace("\r\n", "\n").split("\r\033[K")[1:]
    for epoch in (1, 2):
        train = [m for s in states for m in [re.match(TRAIN + r"\n?$", s)] if m and m.group(1) == str(epoch)]
        if not train:
            failures.append("terminal: no updating training line for epoch %d in %r" % (epoch, tty_err[-600:]))
        elif not (train[-1].group(2) == train[-1].group(3) == "8" and s_end(states, TRAIN, epoch)):
            failures.append("terminal: epoch %d's training line does not end at 8/8 with a newline: %r"
                            % (epoch, [m.group(0) for m in train]))
        if not any(re.match(TEST + r"\n?$", s) for s in states if s.startswith("testing epoch %d/" % epoch)):
            failures.append("terminal: no updating test line for epoch %d in %r" % (epoch, tty_err[-600:]))

    rc, pipe_out, pipe_err = run_with_pipe(oodkit, os.path.join(root, "pipe"))
    if rc != 0:
        failures.append("train to a pipe: exit %d: %r" % (rc, pipe_err[-400:]))
    if "\r" in pipe_err or "\033" in pipe_err:
        failures.append("pipe: '\\r' or an escape sequence in %r" % pipe_err[-600:])
    if not pipe_err.endswith("\n"):
        failures.append("pipe: stderr does not end with a newline: %r" % pipe_err[-200:])
    lines = pipe_err.splitlines()
    for epoch in (1, 2):
        done = [l for l in lines if re.fullmatch(TRAIN.replace(r"(\d)/2", str(epoch) + "/2"), l)]
        if not done or not done[-1].startswith("training epoch %d/2 8/8 " % epoch):
            failures.append("pipe: no final 8/8 training line for epoch %d in %r" % (epoch, lines))
        if not any(re.fullmatch(TEST, l) and l.startswith("testing epoch %d/2 " % epoch) for l in lines):
            failures.append("pipe: no test line for epoch %d in %r" % (epoch, lines))

    if epoch_lines(tty_out) != epoch_lines(pipe_out) or len(epoch_lines(pipe_out)) != 2:
        failures.append("stdout epoch lines differ or are not 2:\n%r\n%r" % (epoch_lines(tty_out),
                                                                           epoch_lines(pipe_out)))
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("check_progress: updating lines on a terminal, plain lines to a pipe, done/total in both OK")


def s_end(states, pattern, epoch):
    """The last training state of `epoch` ends with a newline (the line is finished)."""
    last = [s for s in states if s.startswith("training epoch %d/" % epoch)]
    return bool(last) and last[-1].endswith("\n")


if __name__ == "__main__":
    main()
