#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""filedeps.py: which source file of a library calls a function defined in which other.

Usage: filedeps.py [--check] [--layers] [--dot] OBJECT...

Reads each object file's symbols with nm: a global function or object it defines (T, D,
B, R) and one it uses undefined (U). A use in file A of a symbol defined in file B is an
edge A -> B. Prints each file's edges, then every circle (a strongly connected component
of more than one file). With --layers, the same again with each file replaced by its
folder (lib/net/transport.c -> net): layers must not call each other in a circle either.
With --check, exits 1 if there is any circle. The file of an object is its name less the
CMake suffixes (dir/loop.c.o -> dir/loop.c).
"""
import os
import subprocess
import sys


def source_name(obj, common):
    name = os.path.relpath(obj, common)
    for suffix in (".o", ".obj"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    # CMake's object dirs: .../CMakeFiles/<target>.dir/<path>.c.o
    parts = name.split(os.sep)
    for i, p in enumerate(parts):
        if p.endswith(".dir"):
            parts = parts[i + 1:]
            break
    return "/".join(parts)


def symbols(obj):
    out = subprocess.run(["nm", "--defined-only", "-g", obj], capture_output=True,
                         text=True, check=True).stdout
    defined = {line.split()[-1] for line in out.splitlines()
               if len(line.split()) >= 3 and line.split()[1] in "TDBRVW"}
    out = subprocess.run(["nm", "-u", obj], capture_output=True, text=True,
                         check=True).stdout
    used = {line.split()[-1] for line in out.splitlines() if line.split()}
    return defined, used


def circles(graph):
    """Tarjan's strongly connected components of more than one node."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
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

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def main(argv):
    check = "--check" in argv
    dot = "--dot" in argv
    layers = "--layers" in argv
    objs = [a for a in argv if not a.startswith("--")]
    if not objs:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    common = os.path.commonpath([os.path.abspath(o) for o in objs])
    if len(objs) == 1:
        common = os.path.dirname(common)
    files = {source_name(os.path.abspath(o), common): o for o in objs}
    defs, uses = {}, {}
    for f, o in files.items():
        defs[f], uses[f] = symbols(o)
    owner = {}
    for f in sorted(defs):
        for s in defs[f]:
            owner.setdefault(s, f)
    graph = {f: set() for f in files}
    why = {}
    for f in files:
        for s in uses[f]:
            g = owner.get(s)
            if g is not None and g != f:
                graph[f].add(g)
                why.setdefault((f, g), s)
    if dot:
        print("digraph deps {")
        for f in sorted(graph):
            for g in sorted(graph[f]):
                print(f'  "{f}" -> "{g}";')
        print("}")
    else:
        for f in sorted(graph):
            print(f"{f} -> {', '.join(sorted(graph[f])) or '(nothing)'}")
    found = circles(graph)
    for comp in found:
        print(f"circle of {len(comp)}: {' '.join(comp)}", file=sys.stderr)
        members = set(comp)
        for f in comp:
            for g in sorted(graph[f] & members):
                print(f"  {f} -> {g} (e.g. {why[(f, g)]})", file=sys.stderr)
    print(f"{len(files)} files, {sum(len(v) for v in graph.values())} edges, "
          f"{len(found)} circle(s)", file=sys.stderr)
    if layers:
        folder = {f: (f.rsplit("/", 1)[0] if "/" in f else ".") for f in graph}
        lgraph = {}
        for f, targets in graph.items():
            lgraph.setdefault(folder[f], set())
            for g in targets:
                if folder[g] != folder[f]:
                    lgraph[folder[f]].add(folder[g])
                    why.setdefault((folder[f], folder[g]), f"{f} -> {g}")
        for layer in sorted(lgraph):
            print(f"layer {layer} -> {', '.join(sorted(lgraph[layer])) or '(nothing)'}")
        lfound = circles(lgraph)
        for comp in lfound:
            print(f"circle of layers: {' '.join(comp)}", file=sys.stderr)
            members = set(comp)
            for f in comp:
                for g in sorted(lgraph[f] & members):
                    print(f"  {f} -> {g} (e.g. {why[(f, g)]})", file=sys.stderr)
        print(f"{len(lgraph)} layers, {len(lfound)} circle(s) of layers", file=sys.stderr)
        found = found + lfound
    return 1 if check and found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
