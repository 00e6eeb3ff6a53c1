#!/usr/bin/python3
"""Checks the system calls in strace -f logs against a systemd
SystemCallFilter: the sets named (e.g. @system-service), minus those after a
~ (e.g. ~@privileged), expanded by `systemd-analyze syscall-filter`. Prints
each call the daemon (from its execve on) made and is not allowed; exits 1 if there is one, 2 if a log shows no
call at all.

usage: syscall_filter.py 'ALLOW ...' 'DENY ...' STRACE_LOG...
"""
import re
import subprocess
import sys

_sets = {}


def expand(name):
    if not name.startswith('@'):
        return {name}
    if name not in _sets:
        out = subprocess.run(['systemd-analyze', 'syscall-filter', name], check=True,
                             capture_output=True, text=True).stdout
        calls = set()
        for line in out.splitlines()[1:]:
            line = line.strip()
            if line and not line.startswith('#'):
                calls |= expand(line)
        _sets[name] = calls
    return _sets[name]


def main():
    allow = set().union(*(expand(n) for n in sys.argv[1].split()))
    deny = set().union(*(expand(n) for n in sys.argv[2].split())) if sys.argv[2] else set()
    allowed = allow - deny
    bad = {}
    for log in sys.argv[3:]:
        # The daemon's calls: from the last successful execve on (what ran
        # before it, e.g. setpriv, is not the daemon).
        lines = open(log).read().splitlines()
        start = max([i for i, l in enumerate(lines)
                     if re.match(r'\d+\s+execve\(.*\) = 0$', l)] or [0])
        calls = set()
        for line in lines[start:]:
            m = re.match(r'\d+\s+([a-z_0-9]+)\(', line)
            if m:
                calls.add(m.group(1))
        if not calls:
            print('%s: no system calls recorded' % log)
            sys.exit(2)
        print('%s: %d distinct calls' % (log, len(calls)))
        for c in sorted(calls - allowed):
            bad.setdefault(c, log)
    for c, log in sorted(bad.items()):
        print('not allowed: %s (%s)' % (c, log))
    sys.exit(1 if bad else 0)


main()
