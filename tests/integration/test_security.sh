#!/bin/bash
# Regression tests for the security review (issue 7) that concern the tunnel
# itself: request heads the connector builds, links that must never be left
# attached but unusable, and deadlines on every connection.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

start_edge
ECHO_PORT=$((PORT_BASE + 9))
$PY "$HERE/head_echo.py" $ECHO_PORT >> "$WORK/echo.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 $ECHO_PORT
start_origin
TOKEN=$(create_tunnel sec)
start_connector "$TOKEN" --hostname ok.example.test --url hello_world \
    --hostname echo.example.test --url http://127.0.0.1:$ECHO_PORT \
    --hostname up.example.test --url http://127.0.0.1:$ORIGIN_PORT
wait_for 20 routed ok.example.test || log "tunnel never came up"

t_ws_long_path_no_stack_bytes() {
    # A 3,000-byte path on a WebSocket upgrade: the origin must receive
    # exactly the request head (its 400 echoes it back), nothing more.
    $PY - $HTTPS_PORT "$WORK/ca.pem" <<'PY'
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca); ctx.set_alpn_protocols(["http/1.1"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                    server_hostname="echo.example.test")
path = "/" + "a" * 2999
s.sendall(("GET %s HTTP/1.1\r\nHost: echo.example.test\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n" % path).encode())
data = b""
while True:
    try:
        d = s.recv(65536)
    except (ConnectionResetError, socket.timeout):
        break
    if not d:
        break
    data += d
    if b"\r\n\r\n" in data:
        head, body = data.split(b"\r\n\r\n", 1)
        cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
        if cl and len(body) >= int(cl[0].split(b":")[1]):
            break
head, body = data.split(b"\r\n\r\n", 1)
print(head.split(b"\r\n")[0])
assert head.startswith(b"HTTP/1.1 400"), head[:200]
first = body.split(b"\r\n", 1)[0]
assert first == ("GET %s HTTP/1.1" % path).encode(), first[:100]
bad = [c for c in body if c < 9 or (13 < c < 32) or c > 126]
assert not bad, "non-text bytes reached the origin: %r" % bytes(bad[:32])
assert body.endswith(b"\r\n\r\n")
print("origin got a clean %d-byte head" % len(body))
PY
}
check "defect 1: a 3,000-byte WebSocket path reaches the origin whole, with no connector stack bytes" t_ws_long_path_no_stack_bytes

t_h2_60k_path() {
    # A 60,000-byte :path on an HTTP/2 extended CONNECT: the connector answers
    # 414 (or the edge does), and keeps serving.
    $PY - $HTTPS_PORT "$WORK/ca.pem" <<'PY'
import socket, ssl, sys
import h2.config, h2.connection, h2.events
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca); ctx.set_alpn_protocols(["h2"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                    server_hostname="echo.example.test")
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
c.initiate_connection(); s.sendall(c.data_to_send())
# Wait for the server's SETTINGS (ENABLE_CONNECT_PROTOCOL).
while not c.remote_settings.get(8):
    for e in c.receive_data(s.recv(65536)):
        pass
    s.sendall(c.data_to_send())
sid = c.get_next_available_stream_id()
c.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
                     (":authority", "echo.example.test"), (":path", "/" + "p" * 59999),
                     ("sec-websocket-version", "13")])
s.sendall(c.data_to_send())
status = None
while status is None:
    d = s.recv(65536)
    if not d:
        break
    for e in c.receive_data(d):
        if isinstance(e, h2.events.ResponseReceived):
            status = dict(e.headers).get(":status")
        if isinstance(e, h2.events.StreamReset):
            status = "reset"
    s.sendall(c.data_to_send())
print("status", status)
assert status == "414", status
PY
    sleep 0.5
    kill -0 $CONN_PID && routed ok.example.test
}
check "defect 1: a 60,000-byte :path over HTTP/2 gets 414 and the connector keeps serving" t_h2_60k_path

t_stream_exhaustion_then_close() {
    # The attack from the review: 17 HTTP/2 connections x 128 POSTs whose
    # bodies never come fill the tunnel's streams; then the attacker leaves.
    # The tunnel must keep serving others during the attack (fair share) and
    # be fully usable within seconds after it.
    $PY - $HTTPS_PORT "$WORK/ca.pem" > "$WORK/flood.out" 2>&1 <<'PY' &
import socket, ssl, sys, time
import h2.config, h2.connection, h2.events
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca); ctx.set_alpn_protocols(["h2"])
conns = []
for i in range(17):
    # From 127.0.0.2: one client, apart from the curl checks below.
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10,
                                                 source_address=("127.0.0.2", 0)),
                        server_hostname="up.example.test")
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    for k in range(128):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, [(":method", "POST"), (":scheme", "https"),
                             (":authority", "up.example.test"), (":path", "/upload"),
                             ("content-length", "1000")])
    s.sendall(c.data_to_send())
    conns.append((s, c))
print("attack open", flush=True)
time.sleep(4)
for s, c in conns:
    s.close()
print("attack closed", flush=True)
PY
    local apid=$!
    sleep 3
    # During the attack: others are still served (fair share per client).
    local during
    during=$(tcurl ok.example.test / -o /dev/null -w '%{http_code}' --max-time 5)
    log "during the attack: $during"
    wait $apid
    cat "$WORK/flood.out"
    # After it: the tunnel answers within seconds, on every connection.
    local ok=0 i code
    for i in $(seq 1 50); do
        code=$(tcurl ok.example.test / -o /dev/null -w '%{http_code}' --max-time 5)
        if [ "$code" = 200 ]; then ok=$((ok + 1)); else ok=0; fi
        [ $ok -ge 20 ] && break
        sleep 0.2
    done
    log "after the attack: $ok consecutive 200s (last $code)"
    [ "$during" = 200 ] && [ $ok -ge 20 ]
}
check "defect 2: 17x128 stalled POSTs then a mass close do not take the tunnel offline" t_stream_exhaustion_then_close

t_edge_resets_not_a_flood() {
    # 17 clients (17 addresses), 128 stalled POSTs each: about 2,000 tunnel
    # streams, then all leave at once. The edge resets them all; the
    # connector must not take that for a rapid-reset attack (GOAWAY).
    local before
    before=$(grep -c "sent GOAWAY" "$WORK/connector.log")
    $PY - $HTTPS_PORT "$WORK/ca.pem" <<'PY'
import socket, ssl, sys, time
import h2.config, h2.connection
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca); ctx.set_alpn_protocols(["h2"])
conns = []
for i in range(17):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10,
                                                 source_address=("127.0.1.%d" % (i + 1), 0)),
                        server_hostname="up.example.test")
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    for k in range(128):
        c.send_headers(c.get_next_available_stream_id(),
                       [(":method", "POST"), (":scheme", "https"), (":authority", "up.example.test"),
                        (":path", "/upload"), ("content-length", "1000")])
    s.sendall(c.data_to_send())
    conns.append(s)
time.sleep(4)
for s in conns:
    s.close()
print("17 clients opened 2,176 streams and left")
PY
    sleep 2
    local after
    after=$(grep -c "sent GOAWAY" "$WORK/connector.log")
    log "GOAWAYs in the connector log: before $before, after $after"
    [ "$after" = "$before" ] && routed ok.example.test
}
check "defect 2d: the edge's resets of 2,000 abandoned streams do not trip the connector's flood protection" t_edge_resets_not_a_flood

# A certificate for a second tunnel, for a misbehaving connector: enrol a real
# connector once, then stop it and use its key and certificate.
ROGUE_TOKEN=$(create_tunnel rogue --hostname '*.rogue.example.test')
"$BIN/connector" run --token "$ROGUE_TOKEN" --state-dir "$WORK/state-rogue" \
    --hostname a.rogue.example.test --url hello_world >> "$WORK/connector-rogue.log" 2>&1 &
RPID=$!
wait_for 20 routed a.rogue.example.test
kill $RPID; wait $RPID 2>/dev/null
ROGUE_CERT=$(ls "$WORK"/state-rogue/*/cert.pem); ROGUE_KEY=$(ls "$WORK"/state-rogue/*/key.pem)
rogue() { # MODE HOST: runs the misbehaving connector in the background
    $PY "$HERE/rogue_connector.py" $TUNNEL_PORT "$ROGUE_CERT" "$ROGUE_KEY" "$2" "$1" \
        > "$WORK/rogue-$1.out" 2>&1 &
    ROGUE_PID=$!; PIDS+=($ROGUE_PID)
}

t_edge_closes_after_connector_goaway() {
    # The connector sends GOAWAY with a request in flight: the edge lets that
    # request finish, then closes the link (it must not stay attached but
    # unusable, nor open but idle).
    rogue goaway g.rogue.example.test
    wait_for 10 grep -q registered "$WORK/rogue-goaway.out" || return 1
    local code
    code=$(tcurl g.rogue.example.test / -o /dev/null -w '%{http_code}' --max-time 10)
    log "request in flight across the GOAWAY: $code"
    wait_for 15 grep -q "edge closed" "$WORK/rogue-goaway.out"
    cat "$WORK/rogue-goaway.out"
    [ "$code" = 200 ] && grep -q "edge closed [0-9.]* s after GOAWAY" "$WORK/rogue-goaway.out" &&
        routed ok.example.test
}
check "defect 2a: after a connector's GOAWAY the edge finishes the streams in flight, then closes the link" t_edge_closes_after_connector_goaway

# The tunnel port under attack: a connector with a valid certificate that
# misbehaves. Each time the edge must drop (or contain) that connection and
# keep serving the other tunnel.
rogue_case() { # MODE EXPECT_CLOSE(0/1) [REQUEST_CODE]
    local mode=$1 want_close=$2 want_code=${3:-}
    local host="x-$mode.rogue.example.test"
    rogue "$mode" "$host"
    wait_for 10 grep -q registered "$WORK/rogue-$mode.out" || { cat "$WORK/rogue-$mode.out"; return 1; }
    local code=""
    if [ -n "$want_code" ]; then
        code=$(tcurl "$host" / -o /dev/null -w '%{http_code}' --max-time 4)
        log "request to the misbehaving connector's host: $code"
    fi
    if [ "$want_close" = 1 ]; then
        wait_for 15 grep -q "edge closed" "$WORK/rogue-$mode.out" || { cat "$WORK/rogue-$mode.out"; return 1; }
    fi
    cat "$WORK/rogue-$mode.out"
    kill $ROGUE_PID 2>/dev/null
    kill -0 $EDGE_PID && routed ok.example.test && { [ -z "$want_code" ] || [ "$code" = "$want_code" ]; }
}
t_rogue_garbage() { rogue_case garbage 1; }
check "tunnel port: a malformed frame from a connector closes its link; others are served" t_rogue_garbage
t_rogue_ping_flood() { rogue_case ping-flood 1; }
check "tunnel port: a PING flood closes that link; others are served" t_rogue_ping_flood
t_rogue_settings_flood() { rogue_case settings-flood 1; }
check "tunnel port: a SETTINGS flood closes that link; others are served" t_rogue_settings_flood
t_rogue_reset_flood() { rogue_case reset-flood 1 502; }
check "tunnel port: resets on streams the edge never opened close that link; others are served" t_rogue_reset_flood
t_rogue_big_headers() { rogue_case big-headers 0 502; }
check "tunnel port: a 1 MiB response head gets 502; others are served" t_rogue_big_headers
t_rogue_no_read() { rogue_case no-read 0 000; }
check "tunnel port: a connector that never reads stalls only its own tunnel" t_rogue_no_read

t_rogue_no_window() {
    # Five 64 MiB uploads towards a connector that never reads its streams:
    # the edge holds about a window per stream, not the uploads.
    local host=x-no-window.rogue.example.test before after
    rogue no-window $host
    wait_for 10 grep -q registered "$WORK/rogue-no-window.out" || return 1
    before=$(awk '/VmRSS/ {print $2}' /proc/$EDGE_PID/status)
    local pids=() i
    for i in 1 2 3 4 5; do
        head -c $((64 << 20)) /dev/zero | tcurl $host /up -X POST --data-binary @- \
            -o /dev/null --max-time 6 2>/dev/null &
        pids+=($!)
    done
    wait "${pids[@]}"
    after=$(awk '/VmRSS/ {print $2}' /proc/$EDGE_PID/status)
    log "edge RSS before $before KiB, after five stalled 64 MiB uploads $after KiB"
    kill $ROGUE_PID 2>/dev/null
    [ $((after - before)) -lt 40000 ] && routed ok.example.test
}
check "tunnel port: a connector that never grants window holds the edge to its windows" t_rogue_no_window

t_connector_redials_after_edge_goaway() {
    # The edge restarts (SIGTERM sends GOAWAY): the connector dials again
    # (with a single edge after its full-jitter backoff, from the first
    # ceiling of 10 s, so a fleet does not hit it in one burst: issue 11), and
    # the tunnel is back within seconds (the first of its connections, 2 s
    # after the edge on average; all of them within 10 s unless they dialed
    # while the edge was down).
    kill $EDGE_PID; wait $EDGE_PID 2>/dev/null
    local t0; t0=$(date +%s.%N)
    start_edge
    wait_for 25 routed ok.example.test || return 1
    log "tunnel back $(elapsed $t0) s after the edge restarted"
    grep -E "the edge sent GOAWAY \(NO_ERROR\)" "$WORK/connector.log" | tail -2
    grep -q "going away; dialing its replacement to" "$WORK/connector.log"
}
check "defect 2a: after the edge's GOAWAY the connector dials a replacement" t_connector_redials_after_edge_goaway

finish
