#!/usr/bin/env python3
"""CI check of the quick commands (Python standard library only; a few seconds on 2 CPU cores).

- `oodkit info`: the build configuration lines, consistent with each other (one line per device
  counted; no device without the CUDA backend); stray arguments are refused.
- `oodkit demo`: a short run that learns the stripe task (exit 0, one line per epoch, loss falls,
  final accuracy >= 90%), repeatable for a seed (identical output but for the times) and different
  for another; a run too short to learn exits 1 saying so; bad options are refused.
- `oodkit eval`: an OOD validation set (--val-ood) that is also an OOD test set (--ood) is refused
  before anything is loaded, including when the two name the same images differently (a default
  split written out); another split of the same dataset is not refused.
"""
import re
import subprocess
import sys

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def run(oodkit, *args):
    p = subprocess.run([oodkit] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def check_info(oodkit):
    rc, out, err = run(oodkit, "info")
    lines = out.splitlines()
    check(rc == 0, "info: exit %d (%s)" % (rc, err.strip()))
    check(len(lines) >= 3 and re.fullmatch(r"oodkit \d+\.\d+\.\d+", lines[0]), "info: first line %r" % lines[:1])
    backend = re.fullmatch(r"CUDA backend: (built|not built)", lines[1]) if len(lines) > 1 else None
    count = re.fullmatch(r"CUDA devices: (\d+)", lines[2]) if len(lines) > 2 else None
    if check(backend and count, "info: lines %r" % lines[1:3]):
        n = int(count.group(1))
        devices = lines[3:]
        check(len(devices) == n, "info: %d devices counted, %d listed" % (n, len(devices)))
        for i, d in enumerate(devices):
            check(re.fullmatch(r"  cuda:%d \S.*" % i, d), "info: device line %r" % d)
        if backend.group(1) == "not built":
            check(n == 0, "info: %d CUDA devices without the CUDA backend" % n)
    rc, _, err = run(oodkit, "info", "--bogus")
    check(rc != 0 and "bogus" in err, "info --bogus: exit %d, stderr %r" % (rc, err.strip()))
    rc, _, _ = run(oodkit)
    check(rc != 0, "no subcommand: exit 0")


EPOCH = re.compile(r"epoch (\d+)  train loss (\d+\.\d+)  test accuracy (\d+\.\d)%  \(\d+\.\d s\)")


def demo_epochs(out):
    return [(int(m.group(1)), float(m.group(2)), float(m.group(3))) for m in EPOCH.finditer(out)]


def check_demo(oodkit):
    args = ["demo", "--epochs", "4", "--train-size", "1024", "--batch", "16", "--lr", "0.05", "--seed", "0"]
    rc, out, err = run(oodkit, *args)
    check(rc == 0, "demo: exit %d (%s)" % (rc, err.strip() or out.strip()[-200:]))
    check(re.match(r"oodkit demo: 1024 training / 1024 test images of 4 stripe classes, device cpu, \d+ parameters\n",
                   out), "demo: header %r" % out.splitlines()[:1])
    ep = demo_epochs(out)
    if check([e[0] for e in ep] == [1, 2, 3, 4], "demo: epoch lines %r" % ep):
        check(ep[-1][1] < ep[0][1], "demo: train loss did not fall: %r" % [e[1] for e in ep])
        check(ep[-1][2] >= 90.0, "demo: final accuracy %.1f%% < 90%%" % ep[-1][2])
    # Too short to learn (4 steps): exit 1 with the reason; repeatable for a seed (the same output
    # but for the times), different for another seed.
    short = ["demo", "--epochs", "1", "--train-size", "256", "--batch", "64", "--seed"]
    strip_times = lambda s: re.sub(r"\(\d+\.\d s\)", "(t)", s)
    outs = []
    for seed in ("0", "0", "1"):
        rc, out, _ = run(oodkit, *(short + [seed]))
        check(rc == 1 and re.search(r"demo: accuracy \d+\.\d% is below the expected 90%", out),
              "demo that cannot learn: exit %d, output %r" % (rc, out[-200:]))
        check(len(demo_epochs(out)) == 1, "demo: epoch lines of the short run %r" % out)
        outs.append(strip_times(out))
    check(outs[0] == outs[1], "demo: a second run with seed 0 differs:\n%s\n%s" % (outs[0], outs[1]))
    check(outs[2] != outs[0], "demo: seed 1 gives the output of seed 0")
    for bad in (["--epochs", "0"], ["--batch", "-4"], ["--lr", "0"]):
        rc, _, err = run(oodkit, "demo", *bad)
        check(rc != 0 and err.strip(), "demo %s: exit %d, stderr %r" % (" ".join(bad), rc, err.strip()))
    rc, _, err = run(oodkit, "demo", "--device", "gpu7")
    check(rc != 0 and "oodkit: error:" in err and "gpu7" in err, "demo --device gpu7: exit %d, %r" % (rc, err.strip()))


def check_eval_refusal(oodkit):
    # (validation, test list, the test entry that collides)
    same = [("isun", "mnist,isun", "isun"),
            ("isun:val", "isun", "isun"),  # isun is one folder: the split is ignored
            ("tinyimagenet:test", "tinyimagenet", "tinyimagenet"),
            ("mnist", "mnist:test", "mnist:test"),
            ("synthetic-ood-strokes", "synthetic-ood-noise,synthetic-ood-strokes:test", "synthetic-ood-strokes:test"),
            ("svhn:test", "svhn", "svhn"),  # the whole folder includes its test/ sub-folder
            ("folder:/tmp/some images", "folder:/tmp/some images", "folder:/tmp/some images")]
    for val, ood, hit in same:
        rc, _, err = run(oodkit, "eval", "--checkpoint", "/nonexistent/model.safetensors", "--val-ood", val,
                         "--ood", ood)
        want = "--val-ood '%s' is also an OOD test set (--ood entry '%s')" % (val, hit)
        check(rc == 1 and "oodkit: error: eval:" in err and want in err and "test images" in err,
              "eval --val-ood %s --ood %s: exit %d, stderr %r" % (val, ood, rc, err.strip()))
    # Another split is allowed: eval goes on (and fails later, at the missing checkpoint).
    for val, ood in [("synthetic-ood-strokes:val", "synthetic-ood-strokes"), ("tinyimagenet:val", "tinyimagenet"),
                     ("mnist:train", "mnist"), ("svhn:extra", "svhn:test")]:
        rc, _, err = run(oodkit, "eval", "--checkpoint", "/nonexistent/model.safetensors", "--id", "synthetic-id",
                         "--val-ood", val, "--ood", ood)
        check(rc == 1 and "also an OOD test set" not in err and "/nonexistent/model.safetensors" in err,
              "eval --val-ood %s --ood %s: exit %d, stderr %r" % (val, ood, rc, err.strip()))


def main():
    oodkit = sys.argv[1]
    check_info(oodkit)
    check_demo(oodkit)
    check_eval_refusal(oodkit)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("check_commands: info, demo and eval's validation/test overlap refusal OK")


if __name__ == "__main__":
    main()
