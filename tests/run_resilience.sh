#!/bin/bash
# Runs the long resilience scenarios (tests/resilience/test_*.sh: restarts
# under load, partitions, reconnect storms) against BINDIR; prints their
# `figure:` lines and one combined line "N passed, N failed" at the end.
# Usage: tests/run_resilience.sh BINDIR [SUBSTR]   (e.g. build/test/bin)
set -u
BINDIR=${1:-build/test/bin}
ONLY_SCRIPT=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
pass=0; fail=0
RES=$(mktemp)
trap 'rm -f "$RES"' EXIT
for s in "$ROOT"/tests/resilience/test_*.sh; do
    [ -e "$s" ] || continue
    case "$(basename "$s")" in *"$ONLY_SCRIPT"*) ;; *) continue ;; esac
    echo "-- $(basename "$s")"
    : > "$RES"
    start=$(date +%s)
    BIN="$ROOT/$BINDIR" RESULTS="$RES" bash "$s"
    rc=$?
    p=$(grep -c '^pass' "$RES"); f=$(grep -c '^fail' "$RES")
    if [ $rc != 0 ] && [ "$f" = 0 ]; then f=1; echo "FAIL $(basename "$s") exited $rc"; fi
    echo "   ($(( $(date +%s) - start )) s)"
    pass=$((pass + p)); fail=$((fail + f))
done
echo
echo "resilience: $pass passed, $fail failed"
[ "$fail" = 0 ]
