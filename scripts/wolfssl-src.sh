#!/bin/bash
# Builds wolfSSL with its x86-64 assembly (AES-NI, AVX, SP-math) from Debian
# 12's own source package, as a static library with the headers of that same
# build (its wolfssl/options.h: the struct layouts differ from Debian's shared
# build, so these headers must never meet libwolfssl.so, nor the system
# headers this library).
#
#   scripts/wolfssl-src.sh OUT      e.g. build/wolfssl (the Makefile's WOLFSSL=source)
#   scripts/wolfssl-src.sh --sources   step 1 below only (scripts/deps.sh runs it)
#
# Leaves OUT/include/wolfssl/..., OUT/lib/libwolfssl.a, OUT/stamp (the
# Debian source version and the configure flags) and OUT/build.log. When the
# stamp matches, it does nothing (but check the headers, below), so a second
# `make` rebuilds nothing. Otherwise it:
#   1. adds deb-src entries mirroring Debian's binary sources (same URIs,
#      suites, components and key: deb822 debian.sources or a one-line
#      sources.list) unless apt already knows wolfssl's source; needs root;
#   2. installs the tools the build needs, as Debian packages (scripts/deps.sh
#      build has them too); needs root;
#   3. `apt-get source wolfssl` (Debian's patches applied), autoreconf,
#      configure with Debian's flags plus the assembly ones, make, install;
#      needs the Debian mirror, not root.
# Without root, steps 1 and 2 must have been done (`sudo bash
# scripts/deps.sh build` does both); if not, or if the mirror cannot be
# reached, it fails saying why and that `make WOLFSSL=system` builds with
# Debian's shared libwolfssl instead. It never falls back by itself.
# Prints nothing when the stamp matches; its progress while it builds.
set -euo pipefail

if [ "${1:-}" = --sources ]; then
    SOURCES_ONLY=1
else
    SOURCES_ONLY=
    OUT=${1:?usage: scripts/wolfssl-src.sh OUTDIR | --sources}
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
fi

# Debian's configure flags (debian/rules of wolfssl 5.5.4-2: --enable-distro
# --enable-pkcs11 --disable-examples --disable-silent-rules, with what
# dh_auto_configure adds, and dpkg-buildflags with hardening=+all), then what
# Debian leaves out: the x86-64 assembly (AES-NI, AVX/AVX2, runtime checked
# by wolfSSL, so the library still runs on CPUs without them) and the
# single-precision math with its assembly. SAKKE is off: nothing here uses
# it and its static cache costs 1.4 MB per thread. Only the static library
# is built (MAKE_FLAGS); its objects are Debian's default PIE code, so they
# link into PIE executables.
# (Less the -f*-prefix-map of the current directory, which would key the
# stamp on where make ran.)
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
buildflags() { dpkg-buildflags --get "$1" 2>/dev/null | sed 's/ *-f[a-z]*-prefix-map=[^ ]*//g'; }
set_flags() {
    MEM_DEFINES="-DMAX_CHAIN_DEPTH=4" # see MEM_FLAGS below
    DEBIAN_FLAGS=(--enable-distro --enable-pkcs11 --disable-examples --disable-silent-rules
              --disable-dependency-tracking --disable-maintainer-mode
              "CFLAGS=$(buildflags CFLAGS)"
              "CPPFLAGS=$(buildflags CPPFLAGS) $MEM_DEFINES"
              "LDFLAGS=$(buildflags LDFLAGS)")
    # Without the fixed-point ECC cache: with SP math it only costs memory
    # (366 KB of thread-local tables per thread that ever multiplied a point,
    # against 2.7 KB without; no measurable handshake cost).
    ASM_FLAGS=(--enable-intelasm --enable-aesni --enable-sp --enable-sp-asm --disable-sakke
               --disable-fpecc)
    # Memory per connection (each idle browser WebSocket holds one WOLFSSL):
    # - MAX_CHAIN_DEPTH=4 (wolfSSL's default is 9): every session keeps the
    #   peer's chain twice (chain and altChain, SESSION_CERTS and
    #   ALT_CERT_CHAINS), MAX_CHAIN_DEPTH static 2 KB slots each: 37.5 KB
    #   per session at 9, 17 KB at 4, for each connection and each of the
    #   session cache's 33 entries. A peer may send at most 4 certificates
    #   (a leaf and 3 above it); a longer chain fails the handshake, which
    #   px_tls reports as such (PX_TLS_MAX_CHAIN; docs/protocol.md, section
    #   12, for browsers' client certificates). It goes with Debian's
    #   CPPFLAGS (MEM_DEFINES, above): configure copies -D flags into
    #   options.h, so every file that includes it sees the library's struct
    #   layouts.
    # - --disable-postauth: TLS 1.3 post-handshake client authentication
    #   (nothing here asks for it) keeps the handshake hashes (2.6 KB) for
    #   the connection's life; without it they are freed after the handshake
    #   as in TLS 1.2.
    MEM_FLAGS=(--disable-postauth)
    # --enable-distro turns the shared library on whatever configure is
    # told; libtool's own switch compiles and links the static one only
    # (half the compiles).
    MAKE_FLAGS=(LIBTOOLFLAGS=--tag=disable-shared)
    FLAGS="${DEBIAN_FLAGS[*]} ${ASM_FLAGS[*]} ${MEM_FLAGS[*]} ${MAKE_FLAGS[*]}"
}
set_flags

say() { echo "wolfssl-src: $*" >&2; }
die() {
    say "cannot build wolfSSL from Debian's source: $*"
    say "to build with Debian's shared libwolfssl instead (no AES-NI/AVX: TLS several times slower):"
    say "    make WOLFSSL=system"
    exit 1
}
is_root() { [ "$(id -u)" = 0 ]; }

# The source version apt would fetch: the highest it knows ('' when apt has
# no deb-src for wolfssl). apt-cache reads local lists only: fast, offline.
source_version() {
    local v best=
    for v in $(apt-cache showsrc --only-source wolfssl 2>/dev/null | sed -n 's/^Version: //p'); do
        if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then
            best=$v
        fi
    done
    echo "$best"
}

stamp_ok() { # VERSION
    [ -f "$OUT/lib/libwolfssl.a" ] && [ -f "$OUT/include/wolfssl/options.h" ] &&
        [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$1 $FLAGS" ]
}

# The Makefile puts -I OUT/include before the system directories, so a
# header both have is always this build's; one that only Debian's
# libwolfssl-dev has would be Debian's build's, with its struct layouts. Say
# so rather than let a compile mix the two.
check_headers() {
    local d h extra=
    for d in wolfssl cyassl; do
        [ -d "/usr/include/$d" ] || continue
        while IFS= read -r h; do
            [ -f "$OUT/include/$h" ] || extra+=" /usr/include/$h"
        done < <(cd /usr/include && find "$d" -name '*.h')
    done
    [ -z "$extra" ] || die "headers only Debian's wolfSSL has, which a compile would mix with $OUT/include:$extra"
}

# A build to use: quiet, so `make` prints one line per file (its own rule
# says which wolfSSL a program links).
use() {
    check_headers
    exit 0
}

if [ -z "$SOURCES_ONLY" ]; then
    # One build at a time (a release and a test build may start together).
    # Read-only is enough for the lock, for a tree that only uses a build.
    { exec 9>>"$OUT/.lock"; } 2>/dev/null || exec 9<"$OUT/.lock"
    flock 9

    # Up to date: the stamp names the version apt offers, or apt cannot say
    # (offline, no lists) and a build is there.
    version=$(source_version)
    if [ -z "$version" ] && [ -f "$OUT/stamp" ]; then
        built=$(cut -d' ' -f1 "$OUT/stamp")
        if stamp_ok "$built"; then
            use
        fi
    fi
    if [ -n "$version" ] && stamp_ok "$version"; then
        use
    fi
    # Otherwise (none yet, other flags, or Debian has a new source version:
    # a security update) it is built again.
fi
command -v apt-get >/dev/null || die "no apt-get: this needs Debian 12's source package"

# 1. deb-src entries: one for each Debian binary entry, in our own file.
# Only Debian's own lists (debian.sources, sources.list); others are left.
write_if_changed() { # FILE CONTENT -> 0 if it changed
    if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then
        return 1
    fi
    printf '%s\n' "$2" > "$1"
}

add_deb_src() {
    local changed=1 deb822=/etc/apt/sources.list.d/debian.sources list=/etc/apt/sources.list
    local head="# Written by scripts/wolfssl-src.sh: Debian's sources, for apt-get source wolfssl."
    if [ -f "$deb822" ]; then
        # Each stanza whose Types has deb but not deb-src, with Types: deb-src
        # and every other field (continuation lines too, as an inline key) kept.
        local stanzas
        stanzas=$(awk '
            function flush() {
                if (n && has_deb && !has_src && !disabled) {
                    if (out) printf "\n"
                    printf "Types: deb-src\n"
                    for (i = 1; i <= n; i++) printf "%s\n", f[i]
                    out = 1
                }
                n = 0; has_deb = has_src = disabled = 0; skip = 0
            }
            /^[ \t]*$/ { flush(); next }
            /^#/ { next }
            /^[Tt]ypes:/ {
                for (i = 2; i <= NF; i++) { if ($i == "deb") has_deb = 1; if ($i == "deb-src") has_src = 1 }
                skip = 1; next
            }
            /^[Ee]nabled:[ \t]*[Nn]o/ { disabled = 1 }
            /^[ \t]/ { if (!skip) f[++n] = $0; next }
            { skip = 0; f[++n] = $0 }
            END { flush() }' "$deb822")
        if [ -n "$stanzas" ] &&
            write_if_changed /etc/apt/sources.list.d/debian-src.sources "$head
$stanzas"; then
            changed=0
        fi
    fi
    if [ -f "$list" ]; then
        local lines
        lines=$(sed -n 's/^[ \t]*deb[ \t]\+/deb-src /p' "$list" |
            while IFS= read -r l; do grep -qxF "$l" "$list" || echo "$l"; done)
        if [ -n "$lines" ] && write_if_changed /etc/apt/sources.list.d/debian-src.list "$head
$lines"; then
            changed=0
        fi
    fi
    return $changed
}

if [ -n "$SOURCES_ONLY" ]; then
    version=$(source_version)
fi
if [ -z "$version" ]; then
    is_root || die "apt knows no source package for wolfssl, and adding deb-src entries for it
    needs root once:  sudo bash scripts/deps.sh build   (then make again)"
    add_deb_src || true
    say "apt-get update (deb-src for wolfssl)"
    apt-get update -qq >/dev/null || die "apt-get update failed (no network to the Debian mirror?)"
    version=$(source_version)
    [ -n "$version" ] || die "apt has no source package for wolfssl after adding deb-src entries
    and apt-get update (no network to the Debian mirror? see apt's warnings above)"
fi
[ -z "$SOURCES_ONLY" ] || exit 0

# From here on a failure (no mirror, a source version the mirror dropped, a
# build that breaks) keeps a build of an older source version that is there
# with the same flags: Debian published an update this machine cannot get
# now, and the build it has still works. Without one it stops.
cached=
if [ -f "$OUT/stamp" ] && [ -f "$OUT/lib/libwolfssl.a" ]; then
    built=$(cut -d' ' -f1 "$OUT/stamp")
    stamp_ok "$built" && cached=$built
fi
fail() {
    if [ -n "$cached" ]; then
        echo "wolfssl-src.sh: $1" >&2
        echo "wolfssl-src.sh: keeping the build of wolfssl $cached that is there (Debian offers $version)" >&2
        use
    fi
    die "$1"
}

# 2. Build tools, as Debian packages (scripts/deps.sh's build list has them).
need=()
for p in dpkg-dev autoconf automake libtool make gcc; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    is_root || fail "missing the build tools ${need[*]}; installing them needs root once:
    sudo bash scripts/deps.sh build   (then make again)"
    say "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" \
        >"$OUT/apt.log" 2>&1 || { cat "$OUT/apt.log" >&2; fail "installing ${need[*]} failed"; }
    set_flags # dpkg-buildflags may have just arrived with dpkg-dev
fi

# 3. Fetch, configure, build, install into a staging directory, then move
# the headers and the library into place and write the stamp last.
start=$(date +%s)
say "building wolfssl $version from Debian's source (a minute or two)"
rm -rf "$OUT/src" "$OUT/stage"
mkdir -p "$OUT/src"
cd "$OUT/src"
# Root downloads as root: the build tree need not be writable by _apt.
sandbox=()
is_root && sandbox=(-o APT::Sandbox::User=root)
apt-get source -qq "${sandbox[@]}" "wolfssl=$version" >"$OUT/src/fetch.log" 2>&1 ||
    { tail -n 20 "$OUT/src/fetch.log" >&2
      fail "apt-get source wolfssl=$version failed (no network to the Debian mirror?)"; }
dir=$(find "$OUT/src" -mindepth 1 -maxdepth 1 -type d -name 'wolfssl-*' | head -n1)
[ -n "$dir" ] || fail "apt-get source left no wolfssl-* directory in $OUT/src"
cd "$dir"
log="$OUT/src/build.log"
{
    autoreconf -fi &&
        ./configure --prefix="$OUT/stage" "${DEBIAN_FLAGS[@]}" "${ASM_FLAGS[@]}" \
            "${MEM_FLAGS[@]}" &&
        make -j"${WOLFSSL_JOBS:-$(nproc)}" "${MAKE_FLAGS[@]}" &&
        make install "${MAKE_FLAGS[@]}"
} >"$log" 2>&1 || { tail -n 40 "$log" >&2; fail "building wolfSSL failed; the log is $log"; }
# A distro build does not install wolfssl/options.h nor cyassl/options.h
# (Debian ships its own): take the ones this configure wrote, the defines
# the library was built with.
cp wolfssl/options.h "$OUT/stage/include/wolfssl/options.h"
cp cyassl/options.h "$OUT/stage/include/cyassl/options.h"
rm -rf "$OUT/include" "$OUT/lib"
mkdir -p "$OUT/lib"
mv "$OUT/stage/include" "$OUT/include"
mv "$OUT/stage/lib/libwolfssl.a" "$OUT/lib/libwolfssl.a"
rm -rf "$OUT/stage"
# The source tree (tens of MB) goes; its log stays.
cd "$OUT"
mv "$log" "$OUT/build.log"
rm -rf "$OUT/src"
echo "$version $FLAGS" > "$OUT/stamp"
say "built wolfssl $version into $OUT in $(($(date +%s) - start)) s"
check_headers
