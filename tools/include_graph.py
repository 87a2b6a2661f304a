#!/usr/bin/env python3
"""The include arrows inside source folders, and their cycles (Python standard library only).

    tools/include_graph.py ROOT FOLDER...           print each folder's edges "a -> b", then any cycle
    tools/include_graph.py --check ROOT FOLDER...   print only the cycles; exit 1 when there is one

A node is a module: a file's name without its extension, so fusion.h and fusion.cpp are one node
"fusion" and `#include "ood/protocol.h"` in fusion.cpp is the arrow fusion -> protocol. Only
includes of the same folder count ("ood/..." inside ood/). A cycle is a strongly connected set of
two or more modules (Tarjan); the layering wants none (tests/CMakeLists.txt runs --check on
ood, data, models and run).
"""
import os
import re
import sys

SOURCE = re.compile(r"\.(h|cpp|cu|cuh)$")


def edges_of(root, folder):
    """Sorted (module, included module) pairs of `folder`, self-includes left out."""
    edges = set()
    d = os.path.join(root, folder)
    for f in sorted(os.listdir(d)):
        if not SOURCE.search(f):
            continue
        src = os.path.splitext(f)[0]
        with open(os.path.join(d, f), encoding="utf-8") as fh:
            for line in fh:
                m = re.match(r'\s*#\s*include\s+"%s/([^"]+)"' % re.escape(folder), line)
                if m and os.path.splitext(m.group(1))[0] != src:
                    edges.add((src, os.path.splitext(m.group(1))[0]))
    return sorted(edges)


def cycles_of(edges):
    """The strongly connected sets of 2+ nodes, each sorted (Tarjan, iterative)."""
    graph = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index, low, on, stack, out = {}, {}, set(), [], []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return sorted(out)


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    if len(args) < 2:
        sys.exit("usage: include_graph.py [--check] ROOT FOLDER...")
    root, found = args[0], False
    for folder in args[1:]:
        if not os.path.isdir(os.path.join(root, folder)):
            sys.exit("include_graph.py: no folder '%s' under '%s'" % (folder, root))
        edges = edges_of(root, folder)
        if not check:
            for a, b in edges:
                print("%s/%s -> %s/%s" % (folder, a, folder, b))
        for c in cycles_of(edges):
            found = True
            print("cycle in %s/: %s" % (folder, " <-> ".join(c)))
    return 1 if check and found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
