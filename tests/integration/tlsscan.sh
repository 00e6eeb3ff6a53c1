#!/bin/bash
# TLS scan (issue 7): Debian's testssl.sh against both edge listeners, the
# browser HTTPS port and the tunnel port, and the connector's ClientHellos
# recorded by tls_hello.py (the connector has no listener to scan). Findings
# come out as JSON and tlsscan_check.py judges them: TLS 1.2 and 1.3 only,
# ECDHE AEAD suites only, ChaCha20-Poly1305 preferred (AES-128-GCM and the
# client's order with AES in hardware, below), ECDHE on X25519, P-256,
# P-384 only, no known vulnerability. Prints one table; fails on any violation.
# Run by `make tlsscan` and, through test_tlsscan.sh, by `make test`.
# Only 127.0.0.1 is contacted: testssl gets --ip 127.0.0.1 and -n none.
. "$(dirname "$0")/lib.sh"
HELLO_PORT=$((PORT_BASE + 8))

if ! command -v testssl >/dev/null; then
    echo "FAIL testssl.sh is not installed (make deps installs Debian's testssl.sh)"
    echo "fail TLS scan: testssl.sh installed" >> "$RESULTS"
    exit 1
fi

# testssl.sh options: -p protocols, -s cipher categories, -f forward secrecy
# (curves, FFDHE groups), -P server order, -E every suite per protocol, -U every
# vulnerability check. Left out as irrelevant here: -S (certificate: the edge's
# private CAs fail public-trust checks by design), -h (HTTP headers), -c
# (client simulation). About 30 s per port.
scan() { # name port
    local name=$1 port=$2
    testssl --quiet --color 0 --warnings off -n none --ip 127.0.0.1 \
        --connect-timeout 5 --openssl-timeout 5 -p -s -f -P -E -U \
        --jsonfile "$WORK/$name.json" "localhost:$port" > "$WORK/$name.txt" 2>&1
    [ -s "$WORK/$name.json" ] || { tail -n 20 "$WORK/$name.txt"; return 1; }
}

hellos_seen() { # alpn: a ClientHello with that ALPN was recorded
    grep -q "\"alpn\": \[\"$1\"\]" "$WORK/connector.jsonl" 2>/dev/null
}

stop_connector() {
    kill "$CONN_PID" 2>/dev/null
    wait "$CONN_PID" 2>/dev/null
}

# Both of the connector's TLS client contexts: enrolment (no certificate yet)
# and the tunnel link (with the certificate enrolment gave it). Each is
# pointed at tls_hello.py with --edge.
connector_hellos() {
    local token
    python3 "$HERE/tls_hello.py" $HELLO_PORT "$WORK/connector.jsonl" >> "$WORK/hello.log" 2>&1 &
    PIDS+=($!)
    wait_port 127.0.0.1 $HELLO_PORT || return 1
    token=$(create_tunnel scan --hostname scan.example.test) || return 1
    local route=(--hostname scan.example.test --url hello_world --loglevel warn --grace-period 1)
    start_connector "$token" --edge 127.0.0.1:$HELLO_PORT "${route[@]}"
    wait_for 10 hellos_seen tunnel-enroll/1 || { echo "no enrolment ClientHello"; return 1; }
    stop_connector
    start_connector "$token" "${route[@]}" # enrols with the real edge
    wait_for 20 routed scan.example.test || { echo "connector never routed"; return 1; }
    stop_connector
    start_connector "$token" --edge 127.0.0.1:$HELLO_PORT "${route[@]}"
    wait_for 10 hellos_seen h2 || { echo "no tunnel-link ClientHello"; return 1; }
    stop_connector
}

verdict() { grep -qx "ok $1" "$WORK/verdicts"; }

start=$(date +%s.%N)
start_edge
check "TLS scan: testssl.sh ran against the browser HTTPS port" scan https $HTTPS_PORT
check "TLS scan: testssl.sh ran against the tunnel port" scan tunnel $TUNNEL_PORT
check "TLS scan: the connector's ClientHellos were recorded" connector_hellos

# The order px_tls chose (px_tls_aes_fast): with AES in hardware (a wolfSSL
# with AES-NI code, as the WOLFSSL=source build the binaries' build directory
# names, on a CPU with AES-NI and PCLMULQDQ) AES-128-GCM first in the
# client's order, else ChaCha20-Poly1305 first in the server's.
TLS_ORDER=chacha
if grep -qs '^wolfssl: source' "$BIN/../wolfssl-used" && grep -qw aes /proc/cpuinfo &&
    grep -qw pclmulqdq /proc/cpuinfo; then
    TLS_ORDER=aes
fi
TLS_ORDER=$TLS_ORDER python3 "$HERE/tlsscan_check.py" "$WORK/verdicts" https=testssl:"$WORK/https.json" \
    tunnel=testssl:"$WORK/tunnel.json" connector=hello:"$WORK/connector.jsonl" \
    > "$WORK/table.txt" 2>&1
sed 's/^/     /' "$WORK/table.txt"
check "TLS scan: browser HTTPS port: TLS 1.2+, ECDHE AEAD only, no known vulnerability" \
    verdict https
check "TLS scan: tunnel port: TLS 1.2+, ECDHE AEAD only, no known vulnerability" verdict tunnel
check "TLS scan: connector offers TLS 1.2+, ECDHE AEAD only" verdict connector
log "TLS scan took $(elapsed "$start") s"
finish
! grep -q '^fail' "$RESULTS"
