#!/usr/bin/env python3
"""check_cycles.py -- no call or include cycle between files or subsystems.

Usage: check_cycles.py SOURCE_DIR OBJECT_DIR=SOURCE_SUBDIR...

Calls: for every object file under each OBJECT_DIR (CMake's directory of a
target's objects: lib/CMakeFiles/presence.dir=lib, the command's), `nm` gives the global symbols it defines and the ones it needs;
an edge runs from the file that needs a symbol to the file that defines it.
Includes: every `#include "..."` under lib/ and cmd/ that names a file of
the tree. A strongly connected component of more than one file is a cycle
(two files that call each other are one module cut in the wrong place), and
so is one of more than one subsystem (lib/<subsystem>/, cmd/). Prints each
cycle found and exits 1; prints the subsystems in dependency order and
exits 0 when there is none.
"""
import os
import re
import subprocess
import sys


def sccs(graph):
    """Tarjan's strongly connected components of {node: set(node)}."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def call_graph(src, objdirs):
    defined, needed = {}, {}
    for pair in objdirs:
        objdir, _, subdir = pair.partition("=")
        for dirpath, _, files in os.walk(objdir):
            for f in files:
                if not f.endswith(".o"):
                    continue
                path = os.path.join(dirpath, f)
                # CMake names an object after its source, relative to the
                # target's source directory; generated sources (the
                # embedded migrations) are under the build tree instead.
                rel = os.path.join(subdir, os.path.relpath(path[:-2], objdir))
                node = os.path.normpath(rel)
                if not os.path.exists(os.path.join(src, node)):
                    built = os.path.join(os.path.dirname(os.path.dirname(
                        os.path.normpath(objdir))), os.path.basename(node))
                    if not os.path.exists(built):
                        continue  # left over from a source moved away
                    node = "(generated) " + os.path.basename(node)
                out = subprocess.run(["nm", "-P", path], check=True,
                                     capture_output=True, text=True).stdout
                for line in out.splitlines():
                    parts = line.split()
                    if len(parts) < 2:
                        continue
                    sym, kind = parts[0], parts[1]
                    if kind == "U":
                        needed.setdefault(node, set()).add(sym)
                    elif kind in "TDBRCVW":
                        defined[sym] = node
    graph = {}
    for node, syms in needed.items():
        graph.setdefault(node, set())
        for sym in syms:
            owner = defined.get(sym)
            if owner and owner != node:
                graph[node].add(owner)
    for node in set(defined.values()):
        graph.setdefault(node, set())
    return graph


INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def include_graph(src):
    graph = {}
    for top in ("lib", "cmd"):
        for dirpath, _, files in os.walk(os.path.join(src, top)):
            for f in files:
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, f)
                node = os.path.relpath(path, src)
                graph.setdefault(node, set())
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
                for inc in INCLUDE.findall(text):
                    for base in (dirpath, os.path.join(src, "lib"),
                                 os.path.join(src, "lib", "include")):
                        cand = os.path.normpath(os.path.join(base, inc))
                        if os.path.exists(cand):
                            graph[node].add(os.path.relpath(cand, src))
                            break
    return graph


def subsystem(node):
    parts = node.split(" ")[-1].split("/")
    if parts[0] == "cmd":
        return "cmd"
    if parts[0] == "lib" and len(parts) > 2 and parts[1] != "include":
        return "lib/" + parts[1]
    if parts[0] == "lib" and parts[1] == "include":
        return "lib/include"
    return "/".join(parts[:-1]) or node


def lift(graph):
    up = {}
    for a, outs in graph.items():
        sa = subsystem(a)
        up.setdefault(sa, set())
        for b in outs:
            sb = subsystem(b)
            if sb != sa:
                up[sa].add(sb)
    return up


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src, objdirs = sys.argv[1], sys.argv[2:]
    calls = call_graph(src, objdirs)
    if len(calls) < 10:
        sys.exit("check_cycles: found %d object files under %s: build first"
                 % (len(calls), " ".join(objdirs)))
    includes = include_graph(src)
    bad = 0
    for what, graph in (("call", calls), ("include", includes),
                        ("subsystem call", lift(calls))):
        for comp in sccs(graph):
            if len(comp) > 1:
                bad += 1
                print("%s cycle: %s" % (what, " <-> ".join(comp)))
    if bad:
        return 1
    order = [c[0] for c in sccs(lift(calls))]
    print("no cycles: %d files, %d subsystems, lowest first: %s"
          % (len(calls), len(order), " ".join(order)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
