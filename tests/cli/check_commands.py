#!/usr/bin/env python3
"""CI check of the quick commands (Python standard library only; a few seconds on 2 CPU cores).

- `oodkit info`: the build configuration lines, consistent with each other (one line per device
  counted; no device without the CUDA backend); stray arguments are refused.
- `oodkit demo` is gone (an unknown command, `oodkit study` replaced it); a command-line mistake
  CLI11 finds is one line with the --help to read, exit 2; bad options
  of `oodkit study` are refused.
- every command that runs a network has the one --device option (the same help line) and refuses
  an unknown device before any work with an error naming it; `info` has none.
- `oodkit eval`: an OOD validation set (--val-ood) that is also an OOD test set (--ood) is refused
  before anything is loaded, including when the two name the same images differently (a default
  split written out); another split of the same dataset is not refused.
"""
import re
import sys

from cli_check import check, run, exit_if_failed  # shared by the cli checks (same folder)


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


# Every command that runs a network, with the options it requires: each has the one shared
# --device option (tools/command.h), checked before any work starts.
DEVICE_COMMANDS = [["eval"], ["train"], ["score", "--detectors", "x", "--data", "y"], ["heatmap", "fit"],
                   ["heatmap", "show", "--heatmap", "x"], ["heatmap", "lighting", "--heatmap", "x"],
                   ["heatmap", "oe-size"], ["study"]]


def check_commands(oodkit):
    # `oodkit demo` is retired (`oodkit study` replaces it): refused by CLI11 as any unknown name is.
    rc, out, err = run(oodkit, "demo")
    unknown = run(oodkit, "no-such-command")
    check(rc == 2 and not out and err.count("\n") == 1 and "oodkit: error: unknown command 'demo'" in err
          and "study" in err and (rc, out, err.replace("'demo'", "'no-such-command'")) == unknown,
          "demo: exit %d, stdout %r, stderr %r; an unknown command: %r" % (rc, out[-200:], err.strip(), unknown))
    # Any command-line mistake CLI11 finds is one line naming it and the --help to read, exit 2.
    rc, out, err = run(oodkit, "eval", "--batch", "abc")
    check(rc == 2 and err.count("\n") == 1 and err.startswith("oodkit: error: ") and "--batch" in err
          and "`oodkit eval --help`" in err, "eval --batch abc: exit %d, stderr %r" % (rc, err))
    # Count options (tools/command.h positive_count) name the refused value in one short line.
    for value in ("abc", "0", "-4", "2.5", "8x"):
        rc, _, err = run(oodkit, "train", "--batch", value)
        want = "oodkit: error: --batch: must be a whole number greater than 0, got '%s'; " % value
        check(rc == 2 and err.startswith(want) and len(err) < 160,
              "train --batch %s: exit %d, stderr %r" % (value, rc, err))
    for value in ("0", "-1", "nan", "inf", "x"):  # real options (positive_number)
        rc, _, err = run(oodkit, "heatmap", "fit", "--width", value)
        want = "oodkit: error: --width: must be a finite number greater than 0, got '%s'; " % value
        check(rc == 2 and err.startswith(want), "heatmap fit --width %s: exit %d, stderr %r" % (value, rc, err))
    rc, out, _ = run(oodkit, "--help")
    check(rc == 0 and "study" in out and "demo" not in out, "--help lists demo or lacks study: %r" % out)
    for bad in (["--epochs", "0"], ["--batch", "-4"]):
        rc, _, err = run(oodkit, "study", *bad)
        check(rc != 0 and err.strip(), "study %s: exit %d, stderr %r" % (" ".join(bad), rc, err.strip()))
    helps = set()
    for cmd in DEVICE_COMMANDS:
        rc, _, err = run(oodkit, *(cmd + ["--device", "gpu7"]))
        check(rc == 1 and "oodkit: error:" in err and "--device" in err and "gpu7" in err,
              "%s --device gpu7: exit %d, %r" % (" ".join(cmd), rc, err.strip()))
        rc, out, _ = run(oodkit, *(cmd[:2] if cmd[0] == "heatmap" else cmd[:1]), "--help")
        line = [l.strip() for l in out.splitlines() if l.strip().startswith("--device")]
        check(rc == 0 and len(line) == 1, "%s --help: exit %d, --device lines %r" % (" ".join(cmd), rc, line))
        helps.update(re.sub(r"\s+", " ", l) for l in line)
    check(len(helps) == 1, "--device help differs between commands: %r" % sorted(helps))
    rc, out, _ = run(oodkit, "info", "--help")
    check(rc == 0 and "--device" not in out, "info has a --device option: %r" % out)


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
    check_commands(oodkit)
    check_eval_refusal(oodkit)
    exit_if_failed()
    print("check_commands: info, the retired demo, the shared --device and eval's validation/test overlap refusal OK")


if __name__ == "__main__":
    main()
