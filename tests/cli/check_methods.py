#!/usr/bin/env python3
"""CI check of the method registry on the command line (Python standard library only; seconds).

- `oodkit eval --help` names every method of README.md's generated method block (which
  tests/test_detector_registry.cpp checks against the registry itself), and offers --set.
- `oodkit eval --set` with an unknown method, an unknown key or a bad value exits non-zero before
  anything is loaded, naming the entry and the valid choices.
"""
import os
import re
import sys

from cli_check import check, failures, run  # shared by the cli checks (same folder)


def readme_methods():
    readme = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
    text = open(readme, encoding="utf-8").read()
    m = re.search(r"<!-- methods: generated.*?-->\n(.*?)<!-- /methods -->", text, re.S)
    if not check(m, "README.md has no generated method block"):
        return []
    names = []
    for line in m.group(1).splitlines():
        last = re.findall(r"`([^`]*)`", line)
        if last:
            names += last[-1].split()
    return names


def main():
    oodkit = sys.argv[1]
    names = readme_methods()
    check(len(names) >= 30, "README block lists %d methods" % len(names))
    rc, out, err = run(oodkit, "eval", "--help")
    check(rc == 0, "eval --help: exit %d" % rc)
    listed = re.search(r"--methods\b.*?'all': ([a-z_0-9, ]+)", out)
    if check(listed, "eval --help: no method list after --methods"):
        help_names = [n.strip() for n in listed.group(1).split(",")]
        check(sorted(help_names) == sorted(names), "eval --help lists %s, README %s" % (help_names, names))
    check("--set" in out, "eval --help: no --set option")
    for entry, parts in [("bogus.p=1", ["unknown method 'bogus'", "react"]),
                         ("react.q=1", ["no setting 'q'", "its settings: p"]),
                         ("react.p=abc", ["'abc' is not a finite number"]),
                         ("react", ["expected <method>.<key>="])]:
        rc, out, err = run(oodkit, "eval", "--set", entry)
        check(rc != 0, "eval --set %s: exit 0" % entry)
        for p in parts + ["--set '%s'" % entry]:
            check(p in err, "eval --set %s: %r not in %r" % (entry, p, err.strip()))
    for f in failures:
        print("FAIL:", f)
    print("check_methods: %d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
