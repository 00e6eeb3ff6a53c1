#!/bin/bash
# Builds every libFuzzer target (clang, ASan + UBSan) into build/fuzz/ and runs
# each for FUZZ_SECONDS (default 30) on its seed corpus. Fails if any target
# crashes, leaks, trips a sanitizer or breaks one of its checked properties;
# the reproducer is kept in build/fuzz/artifacts/ and printed in hex.
#   FUZZ_SECONDS=20 bash tests/fuzz/run.sh          # all targets
#   bash tests/fuzz/run.sh token control             # some targets
#   FUZZ_BUILD_ONLY=1 bash tests/fuzz/run.sh         # build, do not run
#   FUZZ_PARALLEL=2 FUZZ_SECONDS=20 bash tests/fuzz/run.sh   # two at a time
#   build/fuzz/fuzz_token build/fuzz/artifacts/token-crash-...   # replay one input
# Targets are the tests/fuzz/fuzz_*.c files. Each links the product's objects
# (proto, rt, connector, edge-sim without the mains) and tests/support,
# built once into build/fuzz/libtunnel.a with coverage instrumentation.
# The last line is "fuzz: N passed, M failed" (one count per target).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
SECONDS_PER=${FUZZ_SECONDS:-30}
OUT=build/fuzz
CC=${FUZZ_CC:-clang}
JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
COMMON="-g -O1 -fno-omit-frame-pointer -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -Iproto -Irt -Iconnector -Iedge-sim -Itests/support -Itests/fuzz"
LIBFLAGS="$COMMON $SAN -fsanitize=fuzzer-no-link"
FLAGS="$COMMON $SAN -fsanitize=fuzzer"
PKGS="jansson libnghttp2 libuv libcurl sqlite3 libpq"
# wolfSSL as the Makefile links it: WOLFSSL=source (default) the static
# library built by scripts/wolfssl-src.sh in WOLFSSL_DIR (default
# build/wolfssl; built there first if it is not), with its own headers;
# WOLFSSL=system Debian's shared one.
WOLFSSL=${WOLFSSL:-source}
WOLFSSL_DIR=${WOLFSSL_DIR:-build/wolfssl}

# Extra link flags per target.
declare -A LDX=(
    # The WebSocket answer comes from the harness, not a socket.
    [ws_response]="-Wl,--wrap=cn_upgrade_start"
)
# Dictionary per target (default: none).
declare -A DICT=(
    [token]=tests/fuzz/json.dict [control]=tests/fuzz/json.dict [enroll]=tests/fuzz/json.dict
    [ingress]=tests/fuzz/ingress.dict
    [front_h1]=tests/fuzz/http1.dict [ws_response]=tests/fuzz/http1.dict
    [headers]=tests/fuzz/http1.dict [httpd]=tests/fuzz/http1.dict
    [front_h2]=tests/fuzz/h2.dict [tunnel_edge]=tests/fuzz/h2.dict
    [tunnel_conn]=tests/fuzz/h2.dict
    [path]=tests/fuzz/path.dict
    [jwt]=tests/fuzz/jwt.dict
    [cert]=tests/fuzz/cert.dict
)
ALL=$(for f in tests/fuzz/fuzz_*.c; do f=${f##*/fuzz_}; echo "${f%.c}"; done | tr '\n' ' ')
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

case $WOLFSSL in
source)
    bash scripts/wolfssl-src.sh "$WOLFSSL_DIR" || { echo "fuzz: 0 passed, 1 failed (wolfSSL build)"; exit 1; }
    WOLFSSL_DIR=$(cd "$WOLFSSL_DIR" && pwd)
    WOLFSSL_CFLAGS="-I$WOLFSSL_DIR/include"
    # Its OpenSSL-compatible names stay out of the dynamic symbols (libcurl's libssl).
    WOLFSSL_LIBS="$WOLFSSL_DIR/lib/libwolfssl.a -Wl,--exclude-libs,libwolfssl.a"
    ;;
system) PKGS="wolfssl $PKGS" WOLFSSL_CFLAGS= WOLFSSL_LIBS= ;;
*) echo "fuzz: WOLFSSL=$WOLFSSL: say source or system"; exit 2 ;;
esac
PKG_CFLAGS="$WOLFSSL_CFLAGS $(pkg-config --cflags $PKGS)" &&
    PKG_LIBS="$WOLFSSL_LIBS $(pkg-config --libs $PKGS) -lhttp_parser -lm" ||
    { echo "fuzz: pkg-config failed"; exit 1; }
mkdir -p "$OUT/artifacts" "$OUT/obj"
# Other flags (another wolfSSL: other headers) rebuild every object.
if ! echo "$CC $LIBFLAGS $PKG_CFLAGS" | cmp -s - "$OUT/cflags"; then
    rm -rf "$OUT/obj" "$OUT/libtunnel.a"
    mkdir -p "$OUT/obj"
    echo "$CC $LIBFLAGS $PKG_CFLAGS" >"$OUT/cflags"
fi

# An object is stale when it is missing or older than its source or any
# header its dependency file names.
stale() {
    local o=$1 d=${1%.o}.d f
    [ -f "$o" ] && [ -f "$d" ] || return 0
    for f in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$d"); do
        [ "$f" -nt "$o" ] && return 0
    done
    return 1
}

echo "== fuzz: building the library"
LIBSRC=$(ls proto/*.c rt/*.c connector/*.c edge-sim/*.c tests/support/*.c | grep -v -e cn_main.c -e es_main.c)
todo=()
objs=()
for s in $LIBSRC; do
    o="$OUT/obj/${s%.c}.o"
    objs+=("$o")
    stale "$o" && todo+=("$s")
done
build_one() {
    local s=$1 o="$OUT/obj/${1%.c}.o"
    mkdir -p "$(dirname "$o")"
    # shellcheck disable=SC2086
    $CC $LIBFLAGS $PKG_CFLAGS -MMD -MP -c "$s" -o "$o"
}
export -f build_one
export CC LIBFLAGS PKG_CFLAGS OUT
if [ ${#todo[@]} -gt 0 ]; then
    printf '%s\n' "${todo[@]}" | xargs -P "$JOBS" -I{} bash -c 'build_one {}' ||
        { echo "fuzz: 0 passed, 1 failed (library build)"; exit 1; }
    rm -f "$OUT/libtunnel.a"
fi
[ -f "$OUT/libtunnel.a" ] || ar rcs "$OUT/libtunnel.a" "${objs[@]}" ||
    { echo "fuzz: 0 passed, 1 failed (archive)"; exit 1; }

# Build every target first (linking is quick), then run them, FUZZ_PARALLEL
# at a time (default 1; `make test` runs two on two cores).
built=()
fail=0
for t in $TARGETS; do
    if [ ! -f "tests/fuzz/fuzz_$t.c" ]; then
        echo "fuzz: unknown target $t (known: $ALL)"
        exit 2
    fi
    echo "== fuzz_$t: build"
    # shellcheck disable=SC2086
    if $CC $FLAGS $PKG_CFLAGS "tests/fuzz/fuzz_$t.c" "$OUT/libtunnel.a" ${LDX[$t]:-} $PKG_LIBS \
        -o "$OUT/fuzz_$t"; then
        built+=("$t")
    else
        echo "FAIL fuzz_$t: build"
        fail=$((fail + 1))
    fi
done
if [ -n "${FUZZ_BUILD_ONLY:-}" ]; then
    echo "fuzz: ${#built[@]} built, $fail failed"
    [ $fail = 0 ]
    exit
fi

# Runs one target; its verdict goes to $OUT/fuzz_$t.result ("ok" or the exit code).
run_one() {
    local t=$1 work="$OUT/corpus/$1" dict=()
    # New inputs go to the first (scratch) directory; the seeds stay untouched.
    mkdir -p "$work" "tests/fuzz/corpus/$t"
    rm -f "$OUT/artifacts/$t"-*
    [ -n "${DICT[$t]:-}" ] && dict=(-dict="${DICT[$t]}")
    "$OUT/fuzz_$t" -max_total_time="$SECONDS_PER" -print_final_stats=1 -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix="$OUT/artifacts/$t-" "${dict[@]}" \
        "$work" "tests/fuzz/corpus/$t" </dev/null >"$OUT/fuzz_$t.log" 2>&1
    echo $? >"$OUT/fuzz_$t.result"
}

report() {
    local t=$1 rc
    rc=$(cat "$OUT/fuzz_$t.result" 2>/dev/null || echo missing)
    echo "== fuzz_$t: ran ${SECONDS_PER}s"
    # "#runs DONE cov: edges ft: features corp: inputs/size ..." and the run count
    grep -aE '[[:space:]]DONE[[:space:]]|^stat::number_of_executed_units' "$OUT/fuzz_$t.log" | tail -2 | sed 's/^/   /'
    if [ "$rc" != 0 ]; then
        echo "FAIL fuzz_$t (exit $rc); log: $OUT/fuzz_$t.log"
        grep -aE 'property violated|ERROR|SUMMARY|runtime error' "$OUT/fuzz_$t.log" | head -5 | sed 's/^/   | /'
        for a in "$OUT/artifacts/$t"-*; do
            [ -f "$a" ] || continue
            echo "   reproducer $a ($(wc -c <"$a") bytes):"
            od -An -v -tx1 "$a" | head -20 | tr -s ' ' | sed 's/^/     /'
        done
        return 1
    fi
    echo "ok   fuzz_$t"
}

PAR=${FUZZ_PARALLEL:-1}
running=0
for t in "${built[@]}"; do
    rm -f "$OUT/fuzz_$t.result"
    if [ "$running" -ge "$PAR" ]; then
        wait -n
        running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
done
wait
pass=0
for t in "${built[@]}"; do
    if report "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
echo
echo "fuzz: $pass passed, $fail failed"
[ $fail = 0 ]
