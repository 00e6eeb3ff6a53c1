#!/bin/bash
# Runs every unit test binary (the allocation-failure sweeps in unit/alloc
# among them), every integration script and every fuzz target for
# FUZZ_SECONDS (default 10, two at a time: a smoke run that keeps `make test`
# in budget; `make fuzz` is the campaign); prints one combined line
# "N passed, N failed" at the end (CI reads it). WOLFSSL and WOLFSSL_DIR
# (the Makefile passes them) say which wolfSSL the fuzz targets and
# test_build's copies of the tree link.
# Usage: tests/run.sh BINDIR   (e.g. build/test/bin)
set -u
BINDIR=${1:-build/test/bin}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
pass=0; fail=0
RES=$(mktemp)
trap 'rm -f "$RES"' EXIT

# One PostgreSQL server for the unit tests' PostgreSQL cases (es_sql,
# es_store on PostgreSQL), started here from Debian's packages in a temp
# directory; the integration tests that need one start their own.
source "$ROOT/tests/support/pg.sh"
if pg_start "${ES_TEST_PG_PORT:-$((16000 + RANDOM % 3000))}"; then
    export ES_TEST_PG=$PG_URL
    trap 'pg_destroy; rm -f "$RES"' EXIT
else
    echo "FAIL cannot start PostgreSQL for the unit tests"
    fail=$((fail + 1))
fi

echo "== unit tests"
for t in $(find "$BINDIR/unit" -type f -perm -u+x 2>/dev/null | sort); do
    out=$("$t" 2>&1); rc=$?
    p=$(echo "$out" | sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
    f=$(echo "$out" | sed -n 's/.*\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
    p=${p:-0}; f=${f:-0}
    if [ $rc != 0 ] && [ "$f" = 0 ]; then f=1; fi   # crashed or sanitizer abort
    pass=$((pass + p)); fail=$((fail + f))
    printf '%-50s %3s passed, %s failed\n' "${t#$BINDIR/unit/}" "$p" "$f"
    [ "$f" != 0 ] && echo "$out" | grep -E 'FAILED|ERROR|runtime error|AddressSanitizer|LeakSanitizer' | head -20 | sed 's/^/   | /'
done

echo "== integration tests"
for s in "$ROOT"/tests/integration/test_*.sh; do
    echo "-- $(basename "$s")"
    : > "$RES"
    BIN="$ROOT/$BINDIR" RESULTS="$RES" bash "$s"
    rc=$?
    p=$(grep -c '^pass' "$RES"); f=$(grep -c '^fail' "$RES")
    if [ $rc != 0 ] && [ "$f" = 0 ]; then f=1; echo "FAIL $(basename "$s") exited $rc"; fi
    pass=$((pass + p)); fail=$((fail + f))
done

# Every fuzz target briefly (FUZZ_SECONDS each, two at a time on two cores;
# FUZZ_SECONDS=0 skips them). Each target counts as one test.
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
if [ "$FUZZ_SECONDS" != 0 ]; then
    echo "== fuzz targets (${FUZZ_SECONDS} s each)"
    out=$(FUZZ_SECONDS=$FUZZ_SECONDS FUZZ_PARALLEL=${FUZZ_PARALLEL:-2} bash "$ROOT/tests/fuzz/run.sh" 2>&1)
    rc=$?
    echo "$out" | grep -E '^(ok|FAIL) |^   (\||reproducer)' | head -60
    p=$(echo "$out" | sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' | tail -n1)
    f=$(echo "$out" | sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' | tail -n1)
    p=${p:-0}; f=${f:-0}
    if [ $rc != 0 ] && [ "$f" = 0 ]; then
        f=1
        echo "FAIL fuzz run exited $rc"
        echo "$out" | tail -5 | sed 's/^/   | /'
    fi
    pass=$((pass + p)); fail=$((fail + f))
fi

echo
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
