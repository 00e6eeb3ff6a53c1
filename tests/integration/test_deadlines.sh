#!/bin/bash
# Defect 3 of the security review: every connection on every listener has
# deadlines (handshake, request head, body inactivity, idle) and there are
# connection caps. With a 5 s idle timeout, each slow client below used to
# stay open past 20 s; now each is closed (or its stream reset) within a few
# seconds of its deadline.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

EDGE_ARGS="--idle-timeout 5 --max-connections-per-ip 20"
start_edge
start_origin
TOKEN=$(create_tunnel dl)
start_connector "$TOKEN" --hostname ok.example.test --url http://127.0.0.1:$ORIGIN_PORT
wait_for 20 routed ok.example.test || log "tunnel never came up"

slow() { # MODE PORT: closed within 12 s
    local out
    out=$($PY "$HERE/slow_client.py" "$1" "$2" "$WORK/ca.pem" 20)
    echo "$out"
    echo "$out" | grep -qE "after ([0-9]|1[01])\.[0-9] s" && routed ok.example.test
}

t_h2_half_headers() { slow h2-half-headers $HTTPS_PORT; }
check "defect 3: half an HTTP/2 HEADERS block is cut off at the header timeout" t_h2_half_headers
t_h2_no_body() { slow h2-no-body $HTTPS_PORT; }
check "defect 3: HTTP/2 request headers whose body never comes: the stream is reset at the body timeout" t_h2_no_body
t_h1_half_head() { slow h1-half-head $HTTPS_PORT; }
check "defect 3: half an HTTP/1.1 request head gets 408 at the header timeout" t_h1_half_head
t_h1_no_body() { slow h1-no-body $HTTPS_PORT; }
check "defect 3: an HTTP/1.1 request body that never comes gets 408 at the body timeout" t_h1_no_body
t_enroll_silent() { slow enroll-silent $TUNNEL_PORT; }
check "defect 3: the tunnel port after the enrolment ALPN, with nothing sent, is closed" t_enroll_silent
t_admin_partial() { slow admin-partial $ADMIN_PORT; }
check "defect 3: the admin port with a partial request is closed" t_admin_partial

t_slow_upload_progressing() {
    # A slow but steady upload (1 KB every 2 s, under the 5 s body timeout)
    # is not cut off.
    local got
    got=$( (for i in 1 2 3 4 5; do head -c 1000 /dev/zero; sleep 2; done) |
        tcurl ok.example.test /upload -X POST -H 'Content-Type: application/octet-stream' \
            --data-binary @- --max-time 30)
    echo "$got"
    echo "$got" | grep -q '"len": 5000'
}
check "defect 3: a slow upload that keeps progressing is not cut off" t_slow_upload_progressing

t_per_ip_cap() {
    # 25 idle connections from one address with --max-connections-per-ip 20:
    # 5 are refused before TLS, with a clear log line; another address is
    # served meanwhile.
    $PY - $HTTPS_PORT <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
socks, refused = [], 0
for i in range(25):
    s = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.9", 0))
    socks.append(s)
time.sleep(1)
for s in socks:
    s.settimeout(0.2)
    try:
        if s.recv(1) == b"":
            refused += 1
    except socket.timeout:
        pass
    except OSError:
        refused += 1
print("refused", refused, flush=True)
time.sleep(2)
PY
    local p=$!
    sleep 1.5
    local other; other=$(tcurl ok.example.test / -o /dev/null -w '%{http_code}' --max-time 5)
    wait $p
    log "another address meanwhile: $other"
    grep "max-connections-per-ip" "$WORK/edge.log" | tail -1
    [ "$other" = 200 ] && grep -q "connection from 127.0.0.9 refused: --max-connections-per-ip (20)" "$WORK/edge.log"
}
check "defect 3: a per-IP connection cap refuses the excess with a clear log line" t_per_ip_cap

finish
