#!/usr/bin/env python3
"""longest_functions.py REPO [N]: the N longest functions in REPO/tools/*.cpp by brace counting: a top-level (namespace-level) '{' opened on a
line that looks like a function header starts a function; its length is lines to the matching '}'."""
import re, sys, glob, os
res = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], "tools", "*.cpp"))):
    lines = open(path).read().split("\n")
    depth = 0; start = None; name = None; ns_depth = 0
    for i, line in enumerate(lines):
        code = re.sub(r'"([^"\\]|\\.)*"', '""', line); code = re.sub(r"'([^'\\]|\\.)*'", "''", code)
        code = code.split("//")[0]
        for ch in code:
            if ch == "{":
                if depth == ns_depth and start is None:
                    hdr = " ".join(l.split("//")[0] for l in lines[max(0, i - 3):i + 1] if not l.lstrip().startswith("//"))
                    if re.match(r"\s*namespace\b", line) or line.rstrip().endswith("namespace {"):
                        ns_depth += 1
                    else:
                        m = re.findall(r"([A-Za-z_][A-Za-z_0-9:]*)\s*\(", hdr)
                        m = [x for x in m if x not in ("if", "for", "while", "switch", "return", "sizeof")]
                        if m and not re.search(r"\b(struct|class|enum)\b", line):
                            start, name, sdepth = i, m[0], depth
                depth += 1
            elif ch == "}":
                depth -= 1
                if start is not None and depth == sdepth:
                    res.append((i - start + 1, os.path.basename(path), name, start + 1)); start = None
                elif depth < ns_depth:
                    ns_depth = depth
for n, f, name, line in sorted(res, reverse=True)[:int(sys.argv[2]) if len(sys.argv) > 2 else 8]:
    print("%4d lines  %s:%d  %s" % (n, f, line, name))
