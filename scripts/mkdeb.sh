#!/bin/bash
# Builds the Debian packages of both binaries from the release build (`make
# deb` runs it after `make build`):
#   build/deb/connector_<version>_<arch>.deb, build/deb/edge-sim_<version>_<arch>.deb
# Each holds /usr/bin/<binary>, its man page, bash completion, systemd unit
# (/lib/systemd/system, not enabled by default) and default configuration
# (conffiles), with Depends computed by dpkg-shlibdeps. The units are written
# by the binaries themselves (`service unit`), so a package's unit is the one
# `service install` would write for the packaged paths, but for its
# Documentation=: README.Debian (a file: URI), not man:NAME(1), which
# `systemd-analyze verify` fails wherever man or the page is missing (images
# that drop /usr/share/man, a unit checked before the package is installed).
# Usage: scripts/mkdeb.sh [BINDIR]   (default build/release/bin)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BINDIR=$(cd "${1:-$ROOT/build/release/bin}" && pwd)
OUT=$ROOT/build/deb
VERSION=$(sed -n 's/^#define PX_VERSION "\(.*\)"$/\1/p' "$ROOT/proto/px_version.h")
ARCH=$(dpkg --print-architecture)
MAINTAINER="tunnel maintainers <maintainers@tunnel.invalid>"
for t in dpkg-deb dpkg-shlibdeps gzip strip; do
    command -v "$t" >/dev/null || { echo "mkdeb: $t is missing (apt-get install dpkg-dev binutils)" >&2; exit 1; }
done
[ -n "$VERSION" ] || { echo "mkdeb: no PX_VERSION in proto/px_version.h" >&2; exit 1; }
for b in connector edge-sim; do
    [ -x "$BINDIR/$b" ] || { echo "mkdeb: $BINDIR/$b is missing: run make build" >&2; exit 1; }
done

# dpkg-shlibdeps wants a source tree: debian/control, and each package's
# files in debian/<package>/.
WORK=$(mktemp -d /tmp/mkdeb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
umask 022
mkdir -p "$WORK/debian" "$OUT"
cat > "$WORK/debian/control" <<EOF
Source: tunnel
Maintainer: $MAINTAINER

Package: connector
Architecture: any

Package: edge-sim
Architecture: any
EOF

# Files every package has: binary, man page, completion, unit, docs.
common() { # NAME ROOT
    local name=$1 root=$2
    install -d "$root/usr/bin" "$root/usr/share/man/man1" "$root/lib/systemd/system" \
        "$root/usr/share/bash-completion/completions" "$root/usr/share/doc/$name" "$root/DEBIAN"
    install -m 0755 "$BINDIR/$name" "$root/usr/bin/$name"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/$name"
    gzip -9n < "$ROOT/docs/man/$name.1" > "$root/usr/share/man/man1/$name.1.gz"
    install -m 0644 "$ROOT/scripts/completion/$name" \
        "$root/usr/share/bash-completion/completions/$name"
    cat > "$root/usr/share/doc/$name/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: tunnel
Comment: Built from the tunnel source tree (connector, edge-sim), which does
 not state a license; ask its maintainers before redistributing.

Files: *
Copyright: the tunnel authors
License: unstated
 The source tree carries no license statement.
EOF
    gzip -9n > "$root/usr/share/doc/$name/changelog.gz" <<EOF
$name ($VERSION) unstable; urgency=medium

  * Release $VERSION, built from the tunnel source tree (make deb).

 -- $MAINTAINER  $(date -R -d @"${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}")
EOF
}

# The unit on stdin, with Documentation= pointing at the package's README.Debian.
unit_doc() { # NAME
    sed "/^Description=/a Documentation=file:/usr/share/doc/$1/README.Debian"
}

# Maintainer scripts: systemd learns about the unit; an upgrade restarts a
# running service; removal stops it. Nothing is enabled or started on install.
scripts() { # NAME ROOT
    local name=$1 root=$2
    cat > "$root/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
if [ "\$1" = configure ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    if [ -n "\$2" ]; then
        systemctl try-restart $name.service >/dev/null 2>&1 || true
    fi
fi
EOF
    cat > "$root/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
if [ "\$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop $name.service >/dev/null 2>&1 || true
fi
EOF
    cat > "$root/DEBIAN/postrm" <<EOF
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
EOF
    chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
}

package() { # NAME SUMMARY DESCRIPTION
    local name=$1 summary=$2 desc=$3 root=$WORK/debian/$1 deps size
    deps=$(cd "$WORK" && dpkg-shlibdeps -O -e"debian/$name/usr/bin/$name" | sed -n 's/^shlibs:Depends=//p')
    [ -n "$deps" ] || { echo "mkdeb: dpkg-shlibdeps found no dependencies for $name" >&2; exit 1; }
    # The connector loads libcurl when an origin first needs it (dlopen,
    # connector/cn_curl.h), which dpkg-shlibdeps cannot see.
    [ "$name" != connector ] || deps="$deps, libcurl4 (>= 7.88.0)"
    find "$root" -path "$root/DEBIAN" -prune -o -type f -print | sort | while read -r f; do
        (cd "$root" && md5sum "${f#$root/}")
    done > "$root/DEBIAN/md5sums"
    find "$root/etc" -type f 2>/dev/null | sed "s|^$root||" | sort > "$root/DEBIAN/conffiles"
    size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
    cat > "$root/DEBIAN/control" <<EOF
Package: $name
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $size
Depends: $deps
Section: net
Priority: optional
Description: $summary
$desc
EOF
    find "$root" -type d -exec chmod 0755 {} +
    find "$root" -type f ! -path "*/DEBIAN/p*" ! -path "*/usr/bin/*" -exec chmod 0644 {} +
    dpkg-deb --root-owner-group -Zxz --build "$root" "$OUT/${name}_${VERSION}_${ARCH}.deb" >/dev/null
    echo "  DEB     build/deb/${name}_${VERSION}_${ARCH}.deb"
}

# ---- connector
R=$WORK/debian/connector
common connector "$R"
scripts connector "$R"
install -d "$R/etc/connector"
# JSON has no comments: the example is a working configuration to edit, and
# README.Debian says what to do with it.
cat > "$R/etc/connector/config.json" <<'EOF'
{
  "ingress": [
    { "hostname": "app.example.com", "service": "http://127.0.0.1:8080" },
    { "service": "http_status:404" }
  ]
}
EOF
"$BINDIR/connector" service unit --bin /usr/bin/connector --token-file /etc/connector/token \
    --config /etc/connector/config.json | unit_doc connector > "$R/lib/systemd/system/connector.service"
cat > "$R/usr/share/doc/connector/README.Debian" <<'EOF'
connector as a service
----------------------

The package installs connector.service but neither enables nor starts it.

1. Put the tunnel's token (from `edge-sim tunnel create`) in /etc/connector/token,
   readable by root only:
       install -m 600 /dev/null /etc/connector/token && cat > /etc/connector/token
2. Edit /etc/connector/config.json (JSON: the ingress rules, the last one matching
   everything) and check it:
       connector ingress validate --config /etc/connector/config.json
3. systemctl enable --now connector
   systemctl reload connector     re-reads the configuration
   journalctl -u connector        its log
   curl http://127.0.0.1:20241/metrics    Prometheus metrics; /ready, /healthcheck

The unit's operator listener (metrics, readiness) is fixed at 127.0.0.1:20241
(`--metrics 127.0.0.1:20241` in ExecStart); to move it, `systemctl edit
--full connector` and change that option (`--metrics off` disables it).

The unit runs as a dynamic user with its state (key and certificates) in
/var/lib/private/connector, and gets the token through LoadCredential=.
`connector service install` writes a unit of its own into /etc/systemd/system,
which takes precedence over this one. Removing the package keeps the state.
See connector(1).
EOF
package connector "outbound tunnel connector: publish local services through an edge" \
" The connector dials out to an edge over mutually authenticated TLS (HTTP/2),
 registers public hostnames and serves the requests the edge sends over that
 connection from local HTTP, HTTPS, Unix-socket and TCP services. Nothing
 listens on the machine. Includes a hardened systemd unit (not enabled)."

# ---- edge-sim
R=$WORK/debian/edge-sim
common edge-sim "$R"
scripts edge-sim "$R"
install -d "$R/etc/default"
cat > "$R/etc/default/edge-sim" <<'EOF'
# Options for `edge-sim serve` in edge-sim.service (see edge-sim(1)); the data
# dir is the service's state directory, /var/lib/edge-sim. Listening on a port
# below 1024 needs CAP_NET_BIND_SERVICE: `systemctl edit edge-sim` and add
#   [Service]
#   CapabilityBoundingSet=CAP_NET_BIND_SERVICE
#   AmbientCapabilities=CAP_NET_BIND_SERVICE
# (or write a unit with `edge-sim service install --https-addr 0.0.0.0:443 ...`).
EDGE_SIM_OPTS="--tunnel-addr 127.0.0.1:7844 --https-addr 127.0.0.1:8443 --admin-addr 127.0.0.1:7845"
EOF
"$BINDIR/edge-sim" service unit --bin /usr/bin/edge-sim --env-file /etc/default/edge-sim |
    unit_doc edge-sim > "$R/lib/systemd/system/edge-sim.service"
cat > "$R/usr/share/doc/edge-sim/README.Debian" <<'EOF'
edge-sim as a service
---------------------

The package installs edge-sim.service but neither enables nor starts it.

1. Set the listeners in /etc/default/edge-sim (EDGE_SIM_OPTS).
2. systemctl enable --now edge-sim
   journalctl -u edge-sim         its log

The unit runs as a dynamic user; its data dir is /var/lib/edge-sim
(/var/lib/private/edge-sim from outside the service). Manage tunnels through
the admin API with the token in /var/lib/private/edge-sim/admin.token, or run
the subcommands as the service's user:
    systemd-run --pipe --wait -p DynamicUser=yes -p User=edge-sim \
        -p StateDirectory=edge-sim edge-sim tunnel list --data-dir /var/lib/edge-sim
`edge-sim service install` writes a unit of its own into /etc/systemd/system,
which takes precedence over this one. Removing the package keeps the data.
See edge-sim(1).
EOF
package edge-sim "tunnel edge: terminates browsers' TLS and routes requests to connectors" \
" edge-sim is the edge that tunnel connectors dial out to. It terminates the
 browsers' TLS (HTTP/1.1 and HTTP/2), routes each request by hostname to a
 tunnel, and manages tunnels, certificates and client-certificate access
 policies. Includes a hardened systemd unit (not enabled)."
