#!/bin/bash
# Installs the Debian 12 packages the project needs (idempotent).
#   scripts/deps.sh build   what building and running needs (make, make demo)
#   scripts/deps.sh test    plus the real peers the tests drive (make test)
# As root it also adds the deb-src entries `make` needs to build wolfSSL from
# Debian's source package (scripts/wolfssl-src.sh --sources), so a later
# `make` as any user can build it. Not root: it only says what is missing.
set -euo pipefail
# dpkg-dev (dpkg-source, dpkg-buildflags) to `apt-get source`, autotools to
# build the wolfSSL that `make` links (WOLFSSL=source); libwolfssl-dev for
# the WOLFSSL=system fallback.
BUILD=(build-essential pkg-config libwolfssl-dev libnghttp2-dev libcurl4-openssl-dev
       libjansson-dev libuv1-dev libsqlite3-dev libpq-dev libhttp-parser-dev curl ca-certificates
       dpkg-dev autoconf automake libtool)
TEST=(libcmocka-dev nghttp2-client nghttp2-proxy nginx-light python3 python3-h2
      python3-websockets openssl sqlite3 procps openssh-server openssh-client chromium
      testssl.sh clang clang-format libclang-rt-14-dev libnss3-tools python3-jwt
      python3-cryptography caddy python3-prometheus-client systemd dpkg-dev
      man-db groff-base bash-completion strace postgresql)
PKGS=("${BUILD[@]}")
[ "${1:-test}" = test ] && PKGS+=("${TEST[@]}")
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "deps: missing packages: ${missing[*]} (run as root or install them)" >&2
        exit 1
    fi
    echo "deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Caddy, nginx and PostgreSQL are test peers started by the tests
    # themselves: do not leave the packages' own services holding ports.
    for svc in caddy nginx postgresql; do
        if [[ " ${missing[*]} " == *" $svc"* ]] && command -v systemctl >/dev/null; then
            systemctl disable --now "$svc" >/dev/null 2>&1 || true
        fi
    done
fi

# The deb-src entries for wolfssl (quick when apt already knows its source).
if [ "$(id -u)" = 0 ] && [ "${WOLFSSL:-source}" != system ]; then
    bash "$(dirname "$0")/wolfssl-src.sh" --sources
fi
