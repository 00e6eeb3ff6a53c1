#!/bin/bash
# Hostile inputs at both edge ports: each gets a clear refusal, the edge
# keeps serving everyone else, and the sanitizers stay quiet.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

start_edge
TOKEN=$(create_tunnel hostile)
start_connector "$TOKEN" --hostname ok.example.test --url hello_world
wait_for 20 routed ok.example.test || log "tunnel never came up"

still_serving() { routed ok.example.test; }

t_garbage_plaintext() {
    # Not TLS at all, at both ports.
    $PY - $HTTPS_PORT $TUNNEL_PORT <<'PY'
import os, socket, sys
for port in map(int, sys.argv[1:]):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(4000))
    try:
        while s.recv(4096):
            pass
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
print("plaintext garbage: connections closed")
PY
    still_serving
}
check "plaintext garbage at the browser and tunnel ports is dropped" t_garbage_plaintext

t_bad_h1() {
    $PY - $HTTPS_PORT "$WORK/ca.pem" <<'PY'
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca); ctx.set_alpn_protocols(["http/1.1"])
def ask(raw):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="ok.example.test")
    s.sendall(raw)
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except (ConnectionResetError, socket.timeout):
        pass
    return data.split(b"\r\n", 1)[0]
cases = {
    "bare CR in a header": b"GET / HTTP/1.1\r\nHost: ok.example.test\r\nX-A: a\rb\r\n\r\n",
    "no Host": b"GET / HTTP/1.1\r\n\r\n",
    "100 KiB header": b"GET / HTTP/1.1\r\nHost: ok.example.test\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n",
    "bad chunk size": b"POST / HTTP/1.1\r\nHost: ok.example.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "CL and TE both": b"POST / HTTP/1.1\r\nHost: ok.example.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bad request line": b"GET /\x00 HTTP/1.1\r\nHost: ok.example.test\r\n\r\n",
}
for name, raw in cases.items():
    line = ask(raw)
    print(f"{name}: {line!r}")
    want = b"HTTP/1.1 431" if name == "100 KiB header" else b"HTTP/1.1 400"
    assert line.startswith(want), (name, line)
PY
    still_serving
}
check "malformed HTTP/1.1 (bare CR, no Host, bad chunk, CL+TE, NUL) gets 400; a 100 KiB header 431" t_bad_h1

t_bad_h2_frames() {
    $PY - $HTTPS_PORT "$WORK/ca.pem" <<'PY'
import socket, ssl, struct, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca); ctx.set_alpn_protocols(["h2"])
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
def frame(t, flags, sid, payload):
    return struct.pack("!I", len(payload))[1:] + bytes([t, flags]) + struct.pack("!I", sid) + payload
def goaway_after(raw):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="ok.example.test")
    s.sendall(PREFACE + frame(4, 0, 0, b"") + raw)
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except (ConnectionResetError, socket.timeout):
        pass
    # find a GOAWAY (type 7) frame
    i = 0
    while i + 9 <= len(data):
        n = int.from_bytes(data[i:i + 3], "big"); t = data[i + 3]
        if t == 7:
            return int.from_bytes(data[i + 13:i + 17], "big")
        i += 9 + n
    return None
cases = {
    "HEADERS on stream 0": frame(1, 4, 0, b"\x82"),
    "garbage HPACK": frame(1, 5, 1, b"\xff\xff\xff\xff\xff\xff"),
    "oversized SETTINGS frame size": frame(4, 0, 0, struct.pack("!HI", 5, 1 << 30)),
    "WINDOW_UPDATE of 0": frame(8, 0, 0, struct.pack("!I", 0)),
    "DATA on an idle stream": frame(0, 1, 7, b"x"),
}
for name, raw in cases.items():
    code = goaway_after(raw)
    print(f"{name}: GOAWAY error code {code}")
    assert code is not None and code != 0, name
PY
    still_serving
}
check "malformed HTTP/2 frames get GOAWAY with an error code" t_bad_h2_frames

t_reset_flood() {
    # Many streams opened and reset at once (rapid reset): bounded, no crash.
    $PY - $HTTPS_PORT "$WORK/ca.pem" <<'PY'
import socket, ssl, sys
import h2.config, h2.connection, h2.errors
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca); ctx.set_alpn_protocols(["h2"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="ok.example.test")
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
c.initiate_connection(); s.sendall(c.data_to_send())
c.receive_data(s.recv(65536)); s.sendall(c.data_to_send())
sent = 0
try:
    for i in range(5000):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, [(":method", "GET"), (":scheme", "https"), (":authority", "ok.example.test"), (":path", "/")], end_stream=True)
        c.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        s.sendall(c.data_to_send())
        sent += 1
except Exception as e:
    print("edge cut the flood after", sent, "streams:", type(e).__name__)
else:
    print("edge absorbed", sent, "reset streams")
PY
    still_serving
}
check "a rapid-reset flood is absorbed or cut off, and the edge keeps serving" t_reset_flood

finish
