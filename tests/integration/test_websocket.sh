#!/bin/bash
# Long-lived traffic: WebSockets through the tunnel (HTTP/1.1 Upgrade at the
# browser side, extended CONNECT on the tunnel), driven by python3-websockets
# against a real WebSocket echo origin.
source "$(dirname "$0")/lib.sh"
ulimit -n 8192 2>/dev/null || true
PY=/usr/bin/python3 # Debian's, which has python3-websockets

EDGE_ARGS="--idle-timeout 3"
start_edge
start_origin
WS_PORT=$((PORT_BASE + 9)); WS2_PORT=$((PORT_BASE + 10))
$PY "$HERE/ws_echo.py" $WS_PORT >> "$WORK/ws.log" 2>&1 &
PIDS+=($!)
$PY "$HERE/ws_echo.py" $WS2_PORT >> "$WORK/ws2.log" 2>&1 &
WS2_PID=$!; PIDS+=($WS2_PID)
wait_port 127.0.0.1 $WS_PORT && wait_port 127.0.0.1 $WS2_PORT

TOKEN=$(create_tunnel ws)
start_connector "$TOKEN" --hostname ws.example.test --url http://127.0.0.1:$WS_PORT \
    --hostname dies.example.test --url http://127.0.0.1:$WS2_PORT \
    --hostname plain.example.test --url http://127.0.0.1:$ORIGIN_PORT
wait_for 20 routed plain.example.test || log "tunnel never came up"
WS=wss://ws.example.test:$HTTPS_PORT
client() { $PY "$HERE/ws_client.py" "$@"; }

t_wss_origin() {
    # A wss:// origin (self-signed for portainer.local), reached with the
    # rule's origin settings: caPool + originServerName.
    local port=$((PORT_BASE + 15)) tok
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=portainer.local -addext subjectAltName=DNS:portainer.local \
        -keyout "$WORK/wss.key" -out "$WORK/wss.pem" 2>/dev/null
    $PY "$HERE/ws_echo.py" $port --tls "$WORK/wss.pem" "$WORK/wss.key" >> "$WORK/wss.log" 2>&1 &
    PIDS+=($!)
    wait_port 127.0.0.1 $port || return 1
    tok=$(create_tunnel wss)
    "$BIN/connector" run --token "$tok" --state-dir "$WORK/state-wss" --hostname wss.example.test \
        --url https://127.0.0.1:$port --origin-ca "$WORK/wss.pem" --origin-server-name portainer.local \
        >> "$WORK/connector-wss.log" 2>&1 &
    local c=$!; PIDS+=($c)
    wait_for 20 bash -c "curl -s --cacert $WORK/ca.pem --resolve wss.example.test:$HTTPS_PORT:127.0.0.1 https://wss.example.test:$HTTPS_PORT/ -o /dev/null -w '%{http_code}' | grep -qv '404\|530'"
    client messages "wss://wss.example.test:$HTTPS_PORT/echo" "$WORK/ca.pem" 200
    local rc=$?
    kill $c 2>/dev/null
    return $rc
}
check "a wss:// origin with caPool + originServerName carries a WebSocket" t_wss_origin

t_messages() {
    client messages "$WS/echo" "$WORK/ca.pem" 10000
}
check "10,000 messages from 0 B to 1 MiB, text and binary, echoed intact" t_messages

t_h2_extended_connect() {
    $PY "$HERE/ws_h2_client.py" ws.example.test $HTTPS_PORT "$WORK/ca.pem" /echo
}
check "WebSocket over HTTP/2 from the browser side (extended CONNECT, RFC 8441)" t_h2_extended_connect

t_handshake() {
    client handshake "$WS" "$WORK/ca.pem"
}
check "handshake headers reach the origin: subprotocol, permessage-deflate, Origin, Cookie" t_handshake

t_close_codes() {
    client close "$WS" "$WORK/ca.pem"
}
check "ping/pong pass through; close from either side arrives with its code and reason" t_close_codes

t_no_upgrade() {
    local out
    out=$(client status "wss://plain.example.test:$HTTPS_PORT/status/403" "$WORK/ca.pem") || return 1
    echo "$out"; [ "$out" = "status 403" ] || return 1
    out=$(client status "wss://plain.example.test:$HTTPS_PORT/" "$WORK/ca.pem") || return 1
    echo "$out"; [ "$out" = "status 502" ]
}
check "an origin that does not upgrade: its 4xx passes through, a 2xx becomes 502" t_no_upgrade

t_idle_stays_open() {
    # Longer than the edge's idle timeout (3 s here): an open WebSocket is not idle.
    $PY - "$WS/echo" "$WORK/ca.pem" <<'PY'
import asyncio, ssl, sys
sys.path.insert(0, __import__("os").path.dirname(sys.argv[0]) or ".")
import websockets
from urllib.parse import urlsplit
async def main():
    u = urlsplit(sys.argv[1]); c = ssl.create_default_context(cafile=sys.argv[2])
    async with websockets.connect(sys.argv[1], ssl=c, host="127.0.0.1", port=u.port,
                                  server_hostname=u.hostname, ping_interval=None) as ws:
        await asyncio.sleep(8)
        await ws.send("still here"); assert await ws.recv() == "still here"
        print("idle 8 s, still open")
asyncio.run(main())
PY
}
check "an idle WebSocket stays open past the edge's idle timeout" t_idle_stays_open

t_origin_dies() {
    rm -f "$WORK/kill.marker"
    client dies "wss://dies.example.test:$HTTPS_PORT/echo" "$WORK/ca.pem" "$WORK/kill.marker" &
    local c=$!
    for _ in $(seq 1 100); do [ -f "$WORK/kill.marker" ] && break; sleep 0.1; done
    kill -9 $WS2_PID
    wait $c
}
check "the origin killed mid-stream: the client sees the connection end promptly" t_origin_dies

t_many() {
    local marker=$WORK/many.open e0 c0 e1 c1
    e0=$(awk '/VmRSS/ {print $2}' /proc/$EDGE_PID/status); c0=$(awk '/VmRSS/ {print $2}' /proc/$CONN_PID/status)
    rm -f "$marker"
    client many "$WS/echo" "$WORK/ca.pem" 1000 "$marker" &
    local p=$!
    for _ in $(seq 1 600); do [ -f "$marker" ] && break; sleep 0.1; done
    [ -f "$marker" ] || { wait $p; return 1; }
    e1=$(awk '/VmRSS/ {print $2}' /proc/$EDGE_PID/status); c1=$(awk '/VmRSS/ {print $2}' /proc/$CONN_PID/status)
    echo "memory per idle WebSocket: edge-sim $(( (e1 - e0) * 1024 / 1000 )) B, connector $(( (c1 - c0) * 1024 / 1000 )) B (this build)"
    rm -f "$marker"
    wait $p
}
check "1,000 concurrent WebSockets on one tunnel" t_many

finish
