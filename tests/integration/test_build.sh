#!/bin/bash
# First contact with the build (issue 12): `make` on a machine without the
# libraries names the missing Debian packages and scripts/deps.sh instead of
# stopping at a missing header; a build prints one short line per file unless
# V=1 (make runs on a copy of the tree's Makefile, scripts and proto/); both
# binaries say their version.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$HERE/../.." && pwd)

# The copies link the wolfSSL this tree was built with (tests/run.sh passes
# WOLFSSL and WOLFSSL_DIR): the source build already made (WOLFSSL_DIR at the
# original's), never a new one per copy; Debian's shared one when this tree
# has no source build (these checks are about messages, not wolfSSL).
WOLFSSL=${WOLFSSL:-source}
WOLFSSL_DIR=${WOLFSSL_DIR:-$ROOT/build/wolfssl}
case $WOLFSSL_DIR in /*) ;; *) WOLFSSL_DIR=$ROOT/$WOLFSSL_DIR ;; esac
[ -f "$WOLFSSL_DIR/stamp" ] || WOLFSSL=system

# make as a person types it, not as a sub-make of `make test` (which would
# add "Entering directory" lines and pass its flags down).
topmake() {
    env -u MAKELEVEL -u MAKEFLAGS -u MFLAGS WOLFSSL="$WOLFSSL" WOLFSSL_DIR="$WOLFSSL_DIR" make "$@"
}

copy_tree() { # DIR: a minimal tree make can build proto/px_b64.o in
    mkdir -p "$1" && cp -r "$ROOT/Makefile" "$ROOT/scripts" "$ROOT/proto" "$1/"
}

t_missing_libraries_named() {
    local d=$WORK/nolibs out rc
    copy_tree "$d"
    mkdir -p "$WORK/empty-pc"
    # No pkg-config module can be found: as on a machine without the -dev
    # packages. WOLFSSL=system needs libwolfssl-dev too.
    out=$(cd "$d" && WOLFSSL=system && PKG_CONFIG_LIBDIR=$WORK/empty-pc \
        topmake build/release/obj/proto/px_b64.o 2>&1); rc=$?
    echo "exit $rc: $out"
    [ $rc != 0 ] || return 1
    for p in libwolfssl-dev libnghttp2-dev libcurl4-openssl-dev libjansson-dev libuv1-dev \
             libsqlite3-dev; do
        echo "$out" | grep -q "Debian packages to install:.*$p" || { echo "no $p"; return 1; }
    done
    echo "$out" | grep -qF "sudo bash scripts/deps.sh build" || return 1
    # Said before the compiler ran: no missing-header error, no object.
    ! echo "$out" | grep -q "fatal error" && [ ! -e "$d/build/release/obj/proto/px_b64.o" ]
}
check "make without the libraries names the missing Debian packages and scripts/deps.sh" \
    t_missing_libraries_named

t_quiet_build() {
    local d=$WORK/quiet out
    copy_tree "$d"
    out=$(cd "$d" && topmake build/release/obj/proto/px_b64.o 2>&1) || { echo "$out"; return 1; }
    echo "quiet: $out"
    [ "$out" = "  CC      proto/px_b64.c" ] || return 1
    rm -rf "$d/build"
    out=$(cd "$d" && topmake V=1 build/release/obj/proto/px_b64.o 2>&1) || { echo "$out"; return 1; }
    echo "V=1: $out"
    echo "$out" | grep -q -- "-c -o build/release/obj/proto/px_b64.o proto/px_b64.c"
}
check "a build prints one short line per file, the commands with V=1" t_quiet_build

t_versions() {
    local want c e
    want=$(sed -n 's/^#define PX_VERSION "\(.*\)"$/\1/p' "$ROOT/proto/px_version.h")
    c=$("$BIN/connector" --version) && e=$("$BIN/edge-sim" --version) || return 1
    echo "$c / $e (px_version.h: $want)"
    [ -n "$want" ] && [ "$c" = "connector $want" ] && [ "$e" = "edge-sim $want" ]
}
check "connector --version and edge-sim --version report px_version.h's release" t_versions

finish
