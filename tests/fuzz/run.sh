#!/bin/bash
# Builds every libFuzzer target (clang, ASan + UBSan) into build/fuzz/ and runs
# each for FUZZ_SECONDS (default 30) on its seed corpus. Fails if any target
# crashes, leaks, trips a sanitizer or breaks one of its checked properties;
# the reproducer is kept in build/fuzz/artifacts/ and printed in hex.
#   FUZZ_SECONDS=20 bash tests/fuzz/run.sh          # all targets
#   bash tests/fuzz/run.sh token control             # some targets
#   build/fuzz/fuzz_token build/fuzz/artifacts/token-crash-...   # replay one input
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
SECONDS_PER=${FUZZ_SECONDS:-30}
OUT=build/fuzz
CC=${FUZZ_CC:-clang}
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -Iproto"

# Sources each target needs besides its own file.
declare -A SRCS=(
    [token]="proto/px_token.c proto/px_b64.c proto/px_err.c"
    [control]="proto/px_control.c proto/px_json.c proto/px_buf.c proto/px_err.c"
    [enroll]="proto/px_enroll.c proto/px_json.c proto/px_b64.c proto/px_err.c"
    [hostname]="proto/px_hostname.c proto/px_headers.c proto/px_err.c"
    [b64]="proto/px_b64.c proto/px_err.c"
    [path]="proto/px_path.c proto/px_err.c"
)
ALL="token control enroll hostname b64 path"
TARGETS=${*:-$ALL}

have_fuzzer() {
    command -v "$CC" >/dev/null 2>&1 || return 1
    local t
    t=$(mktemp -d)
    printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n){(void)d;(void)n;return 0;}\n' >"$t/t.c"
    "$CC" -fsanitize=fuzzer,address,undefined "$t/t.c" -o "$t/t" >/dev/null 2>&1
    local rc=$?
    rm -rf "$t"
    return $rc
}

if ! have_fuzzer; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing clang and libFuzzer runtime"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang libclang-rt-14-dev >/dev/null ||
            { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang libclang-rt-14-dev >/dev/null; }
    fi
    have_fuzzer || { echo "fuzz: $CC with -fsanitize=fuzzer is not available (apt-get install clang libclang-rt-14-dev)"; exit 1; }
fi

PKG=$(pkg-config --cflags --libs wolfssl jansson libnghttp2) || { echo "fuzz: pkg-config failed"; exit 1; }
mkdir -p "$OUT/artifacts"

fail=0
for t in $TARGETS; do
    if [ -z "${SRCS[$t]:-}" ]; then
        echo "fuzz: unknown target $t (known: $ALL)"
        exit 2
    fi
    echo "== fuzz_$t: build"
    # shellcheck disable=SC2086
    if ! $CC $FLAGS "tests/fuzz/fuzz_$t.c" ${SRCS[$t]} $PKG -o "$OUT/fuzz_$t"; then
        echo "FAIL fuzz_$t: build"
        fail=$((fail + 1))
        continue
    fi
    # New inputs go to the first (scratch) directory; the seeds stay untouched.
    work="$OUT/corpus/$t"
    mkdir -p "$work"
    rm -f "$OUT/artifacts/$t"-*
    dict=()
    case $t in
    token | control | enroll) dict=(-dict=tests/fuzz/json.dict) ;;
    path) dict=(-dict=tests/fuzz/path.dict) ;;
    esac
    echo "== fuzz_$t: run ${SECONDS_PER}s"
    "$OUT/fuzz_$t" -max_total_time="$SECONDS_PER" -print_final_stats=1 -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix="$OUT/artifacts/$t-" "${dict[@]}" \
        "$work" "tests/fuzz/corpus/$t" >"$OUT/fuzz_$t.log" 2>&1
    rc=$?
    grep -E '^stat::(number_of_executed_units|new_units_added)|^Done|cov:' "$OUT/fuzz_$t.log" | tail -3 | sed 's/^/   /'
    if [ $rc != 0 ]; then
        fail=$((fail + 1))
        echo "FAIL fuzz_$t (exit $rc); log: $OUT/fuzz_$t.log"
        grep -E 'property violated|ERROR|SUMMARY|runtime error' "$OUT/fuzz_$t.log" | head -5 | sed 's/^/   | /'
        for a in "$OUT/artifacts/$t"-*; do
            [ -f "$a" ] || continue
            echo "   reproducer $a ($(wc -c <"$a") bytes):"
            od -An -v -tx1 "$a" | head -20 | tr -s ' ' | sed 's/^/     /'
        done
    else
        echo "ok   fuzz_$t"
    fi
done
echo
echo "fuzz: $fail target(s) failed"
[ $fail = 0 ]
