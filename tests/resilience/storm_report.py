#!/usr/bin/env python3
"""Figures of a reconnect storm, from connector logs (--loglevel debug) and
a poller's samples. Used by tests/resilience/test_storm.sh.

Usage: storm_report.py T_TERM T_BACK T_DEADLINE POLL_FILE EDGE_LOG LOG...
  T_TERM      epoch seconds: the edge was sent SIGTERM
  T_BACK      epoch seconds: the restarted edge listens again
  T_DEADLINE  epoch seconds: end of the responsiveness window
  POLL_FILE   lines "EPOCH KIND HTTP_CODE TIME_TOTAL" (KIND healthz/routed)
  EDGE_LOG    the edge's log: its own count of the tunnel connections it
              registered or refused after T_BACK, as a cross-check
  LOG...      one connector log per connector

A connection attempt is the connector's debug line "connection N: connecting
to EDGE" (one per dial). Attempts "the edge sees" are those dialed from
T_BACK on: before that the port is closed and the kernel refuses them.
Windows are sliding: the most attempts in any [t, t + 1 s).

Prints `figure:` lines and one JSON line (key=value pairs are in it too);
exits 0 always: the script asserts.
"""
import calendar
import json
import re
import sys
import time

# today "connection 2 registered with edge E (...)"; issue 11's tally line
# "connection 2 to edge E registered; up: ..." matches
# too (a connector may log both for one registration: counted once)
REG = re.compile(r"\bconnection (\d+) (to edge \S+ )?registered\b")
TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z ")


def epoch(line):
    m = TS.match(line)
    if not m:
        return None
    t = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    return t + int(m.group(2)) / 1000.0


def max_window(ts, width=1.0):
    ts = sorted(ts)
    best, j = 0, 0
    for i in range(len(ts)):
        while ts[i] - ts[j] >= width:
            j += 1
        best = max(best, i - j + 1)
    return best


def main():
    t_term, t_back, t_deadline = (float(a) for a in sys.argv[1:4])
    poll_file, edge_log = sys.argv[4], sys.argv[5]
    edge_seen = []
    with open(edge_log, errors="replace") as f:
        for line in f:
            t = epoch(line)
            if t is not None and t >= t_back and (
                    re.search(r"connector connection \S+ from \S+ registered", line)
                    or "tunnel connection from" in line):
                edge_seen.append(t)
    dials, regs = [], []
    last_reg = {}  # log -> time of its last registration after T_BACK
    seen_reg = {}  # (log, connection index) -> time of its last registration
    for path in sys.argv[6:]:
        with open(path, errors="replace") as f:
            for line in f:
                t = epoch(line)
                if t is None or t < t_term:
                    continue
                if ": connecting to " in line:
                    dials.append(t)
                elif REG.search(line):
                    key = (path, REG.search(line).group(1))
                    if t - seen_reg.get(key, -1e9) < 0.5:
                        continue  # the same registration, logged twice
                    seen_reg[key] = t
                    regs.append(t)
                    if t >= t_back:
                        last_reg[path] = max(last_reg.get(path, 0), t)
    seen = [t for t in dials if t >= t_back]
    out = {
        "attempts_total": len(dials),
        "attempts_max_1s_total": max_window(dials),
        "attempts_seen": len(seen),
        "attempts_max_1s_seen": max_window(seen),
        "edge_log_seen": len(edge_seen),
        "edge_log_max_1s": max_window(edge_seen),
        "registrations": len(regs),
        "registrations_max_1s": max_window(regs),
        "connectors_back": len(last_reg),
        "last_registration_s": round(max(regs) - t_back, 2) if regs else None,
    }
    out["share_max_1s_seen"] = round(out["attempts_max_1s_seen"] / max(1, len(seen)), 3)
    out["share_max_1s_total"] = round(out["attempts_max_1s_total"] / max(1, len(dials)), 3)
    # attempts per second after the edge came back (fixed bins, for the note)
    bins = {}
    for t in seen:
        k = int(t - t_back)
        bins[k] = bins.get(k, 0) + 1
    out["seen_per_second"] = [bins.get(k, 0) for k in range(0, max(bins) + 1)] if bins else []
    worst = {"healthz": 0.0, "routed": 0.0}
    slow = {"healthz": 0, "routed": 0}
    samples = {"healthz": 0, "routed": 0}
    ok200 = 0
    with open(poll_file) as f:
        for line in f:
            p = line.split()
            if len(p) != 4:
                continue
            t, kind, code, took = float(p[0]), p[1], p[2], float(p[3])
            if t < t_back or t > t_deadline or kind not in worst:
                continue
            samples[kind] += 1
            worst[kind] = max(worst[kind], took)
            if code == "000" or took > 1.0:
                slow[kind] += 1
            if kind == "routed" and code == "200":
                ok200 += 1
    out.update({"healthz_samples": samples["healthz"], "healthz_worst_s": worst["healthz"],
                "healthz_slow_or_failed": slow["healthz"], "routed_samples": samples["routed"],
                "routed_worst_s": worst["routed"], "routed_slow_or_failed": slow["routed"],
                "routed_200": ok200})
    print("figure: storm: %d attempts from SIGTERM on, most in one 1-s window %d (%.0f %%)"
          % (len(dials), out["attempts_max_1s_total"], 100 * out["share_max_1s_total"]))
    print("figure: storm: %d attempts reached the restarted edge, most in one 1-s window %d (%.0f %%);"
          " per second after it came back: %s"
          % (len(seen), out["attempts_max_1s_seen"], 100 * out["share_max_1s_seen"],
             " ".join(map(str, out["seen_per_second"]))))
    print("figure: storm: the edge's own log: %d tunnel connections registered or refused after it came back,"
          " most in one 1-s window %d (%.0f %%)"
          % (len(edge_seen), out["edge_log_max_1s"], 100 * out["edge_log_max_1s"] / max(1, len(edge_seen))))
    print("figure: storm: %d registrations, most in one 1-s window %d; last one %s s after the edge came back"
          % (len(regs), out["registrations_max_1s"], out["last_registration_s"]))
    print("figure: storm: edge responsiveness after it came back: /healthz worst %.3f s (%d samples, %d slow/failed),"
          " routed worst %.3f s (%d samples, %d slow/failed, %d answered 200)"
          % (worst["healthz"], samples["healthz"], slow["healthz"], worst["routed"], samples["routed"],
             slow["routed"], ok200))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
