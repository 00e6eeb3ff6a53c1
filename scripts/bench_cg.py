#!/usr/bin/python3
"""Instructions per request from two callgrind dumps, for scripts/bench.sh.

Usage: bench_cg.py DUMP_A N_A DUMP_B N_B [TOP]

DUMP_A and DUMP_B are `callgrind_control -d` dumps taken after runs of N_A and N_B
requests (each dump holds the cost since the previous one), so fixed costs (the
client's TLS handshakes, idle timers) cancel in (B - A) / (N_B - N_A).
Prints one line: the instructions per request, then the TOP objects (executable or
library) by self cost per request, e.g.
  183412 libwolfssl=70210 connector=40112 libc=30001 ...
A wolfSSL linked statically (make WOLFSSL=source) is told apart from the executable by
its source files and counted as "wolfssl-static".
"""
import os
import re
import sys


def short_name(path):
    base = os.path.basename(path)
    m = re.match(r"(.+?)\.so(\.|$)", base)  # libwolfssl.so.35.4.0 -> libwolfssl
    if m:
        base = m.group(1)
    return base.removeprefix("vgpreload_") or "?"


STATIC_WOLFSSL = re.compile(r"/wolfssl[-/]|/wolfcrypt/")


def self_cost_by_object(path):
    """Self Ir per object; the total equals the dump's `totals:` line."""
    names = {}  # "(id)" -> object path, callgrind's name compression for ob=
    files = {}  # the same for fl=, fi=, fe= (and cfi=, cfl=)
    costs = {}
    ob = "?"
    in_wolfssl = False  # the current source file is wolfSSL's
    skip_next_cost = False  # the cost line after calls= is the call's inclusive cost
    ob_re = re.compile(r"ob=(\(\d+\))?\s*(.*)")
    fl_re = re.compile(r"c?f[lie]=(\(\d+\))?\s*(.*)")
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            c = line[:1]
            if c.isdigit() or c in "+-*":
                if skip_next_cost:
                    skip_next_cost = False
                    continue
                fields = line.split()
                if len(fields) >= 2:
                    k = "wolfssl-static" if in_wolfssl and not ob.startswith("libwolfssl") else ob
                    costs[k] = costs.get(k, 0) + int(fields[1])
            elif line.startswith("ob="):
                m = ob_re.match(line.rstrip("\n"))
                ref, name = m.group(1), m.group(2)
                if ref and name:
                    names[ref] = name
                ob = short_name(names.get(ref, name) if ref else name)
            elif line.startswith("cob="):  # also defines names for ob=
                m = ob_re.match(line[1:].rstrip("\n"))
                if m.group(1) and m.group(2):
                    names[m.group(1)] = m.group(2)
            elif line.startswith(("fl=", "fi=", "fe=", "cfi=", "cfl=")):
                m = fl_re.match(line.rstrip("\n"))
                ref, name = m.group(1), m.group(2)
                if ref and name:
                    files[ref] = name
                if not line.startswith("c"):
                    in_wolfssl = bool(STATIC_WOLFSSL.search(files.get(ref, name) if ref else name))
            elif line.startswith("calls="):
                skip_next_cost = True
    return costs


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    a, na, b, nb = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    top = int(sys.argv[5]) if len(sys.argv) == 6 else 4
    if nb <= na:
        sys.exit("bench_cg.py: N_B must be larger than N_A")
    ca, cb = self_cost_by_object(a), self_cost_by_object(b)
    per = {k: (cb.get(k, 0) - ca.get(k, 0)) / (nb - na) for k in set(ca) | set(cb)}
    total = sum(per.values())
    parts = sorted(per.items(), key=lambda kv: -kv[1])[:top]
    print(round(total), " ".join(f"{k}={round(v)}" for k, v in parts if v >= 0.5))


if __name__ == "__main__":
    main()
