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
TOKEN=$(create_tunnel sec)
start_connector "$TOKEN" --hostname ok.example.test --url hello_world \
    --hostname echo.example.test --url http://127.0.0.1:$ECHO_PORT
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

finish
