#!/bin/bash
# Says which Debian packages a build is missing, and how to install them,
# instead of letting the compiler stop at the first missing header.
# Exit 0: everything is there; 1: something is missing (said on stderr).
# Run by the Makefile before the first object of a build directory.
set -u
missing=()
why=()
need_tool() { # TOOL PACKAGE
    command -v "$1" >/dev/null 2>&1 || { missing+=("$2"); why+=("$1"); }
}
need_tool cc build-essential
need_tool make build-essential
need_tool pkg-config pkg-config
if command -v pkg-config >/dev/null 2>&1; then
    # pkg-config module -> Debian package (scripts/deps.sh's BUILD list)
    # WOLFSSL=source (the Makefile passes it) builds wolfSSL itself.
    wolfssl=wolfssl:libwolfssl-dev
    [ "${WOLFSSL:-source}" = source ] && wolfssl=
    for pair in $wolfssl libnghttp2:libnghttp2-dev libcurl:libcurl4-openssl-dev \
                jansson:libjansson-dev libuv:libuv1-dev sqlite3:libsqlite3-dev; do
        mod=${pair%%:*} pkg=${pair#*:}
        pkg-config --exists "$mod" 2>/dev/null || { missing+=("$pkg"); why+=("$mod"); }
    done
fi
# http-parser ships no pkg-config file: look for its header.
if command -v cc >/dev/null 2>&1; then
    echo '#include <http_parser.h>' | cc -E -x c - >/dev/null 2>&1 ||
        { missing+=("libhttp-parser-dev"); why+=("http_parser.h"); }
fi
[ ${#missing[@]} = 0 ] && exit 0
pkgs=$(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++' | paste -sd' ')
{
    echo "make: cannot build: missing ${why[*]}"
    echo "make: Debian packages to install: $pkgs"
    echo "make: run  sudo bash scripts/deps.sh build   (everything the build needs)"
    echo "make:  or  sudo apt-get install $pkgs"
} >&2
exit 1
