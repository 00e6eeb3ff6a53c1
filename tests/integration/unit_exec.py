#!/usr/bin/python3
"""Prints the command a systemd unit's ExecStart= runs, one word per line
(NUL-separated with -0), as systemd would hand it to the program: words split
on spaces, double quotes with \\ escapes removed, specifiers resolved (%% %d
%S %n), $$ made $ and ${VAR}/$VAR taken from --env (a $VAR word of its own is
split on spaces, as systemd does). Lets a test run exactly what the unit runs,
with the credential and state directories it chooses.

usage: unit_exec.py UNIT [--cred DIR] [--state DIR] [--env NAME=VALUE]... [-0]
"""
import re
import sys


def words(line):
    out, cur, i, quoted, have = [], [], 0, False, False
    while i < len(line):
        c = line[i]
        if quoted:
            if c == '\\' and i + 1 < len(line):
                cur.append(line[i + 1])
                i += 1
            elif c == '"':
                quoted = False
            else:
                cur.append(c)
        elif c == '"':
            quoted, have = True, True
        elif c == ' ':
            if cur or have:
                out.append(''.join(cur))
            cur, have = [], False
        else:
            cur.append(c)
        i += 1
    if quoted:
        sys.exit('unit_exec: unterminated quote in ExecStart')
    if cur or have:
        out.append(''.join(cur))
    return out


def main():
    args = sys.argv[1:]
    unit, spec, env, sep = None, {'%': '%'}, {}, '\n'
    while args:
        a = args.pop(0)
        if a == '--cred':
            spec['d'] = args.pop(0)
        elif a == '--state':
            spec['S'] = args.pop(0)
        elif a == '--env':
            k, v = args.pop(0).split('=', 1)
            env[k] = v
        elif a == '-0':
            sep = '\0'
        else:
            unit = a
    text = open(unit).read()
    spec['n'] = unit.rsplit('/', 1)[-1]
    lines = [l[len('ExecStart='):] for l in text.splitlines() if l.startswith('ExecStart=')]
    if len(lines) != 1:
        sys.exit('unit_exec: want one ExecStart= line, found %d' % len(lines))
    out = []
    for w in words(lines[0]):
        w = re.sub(r'%(.)', lambda m: spec[m.group(1)], w)
        m = re.fullmatch(r'\$(\w+)', w)
        if m:
            out.extend(env.get(m.group(1), '').split())
            continue
        w = re.sub(r'\$\$|\$\{(\w+)\}', lambda m: '$' if m.group(0) == '$$'
                   else env.get(m.group(1), ''), w)
        out.append(w)
    sys.stdout.write(''.join(w + sep for w in out))


main()
