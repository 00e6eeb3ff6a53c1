#!/usr/bin/env python3
"""Writes the small seed corpus for each fuzz target into tests/fuzz/corpus/.
Run from anywhere; the output is deterministic, so re-running is a no-op."""
import base64
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUfake\n-----END CERTIFICATE-----\n"
PUBKEY = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfake\n-----END PUBLIC KEY-----\n"
SECRET = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def token_json(**over):
    t = {"v": 1, "tunnel_id": "0123456789abcdef0123456789abcdef", "name": "home-lab",
         "secret": SECRET, "edges": ["edge.example:7844", "[::1]:7844"],
         "server_name": "tunnel.example", "ca": CA}
    t.update(over)
    return json.dumps({k: v for k, v in t.items() if v is not None},
                      separators=(",", ":")).encode()


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# fuzz_token: first byte even = token text, odd = JSON payload (encoded by the harness)
write("token", "valid_text", b"\x00" + b64url(token_json()))
write("token", "valid_text_newline", b"\x00" + b64url(token_json()) + b"\n")
write("token", "valid_json", b"\x01" + token_json())
write("token", "json_v2", b"\x01" + token_json(v=2))
write("token", "json_8_edges", b"\x01" + token_json(edges=["h%d:%d" % (i, 1000 + i) for i in range(8)]))
write("token", "json_no_ca", b"\x01" + token_json(ca=None))
write("token", "truncated_text", b"\x00" + b64url(token_json())[:77])
write("token", "hostport", b"\x00[2001:db8::1]:443")

# fuzz_control: an NDJSON byte stream
ctl = [
    {"type": "register", "hostnames": ["app.example.com", "*.example.org"], "agent": "connector/1"},
    {"type": "registered", "results": [
        {"hostname": "app.example.com", "accepted": True},
        {"hostname": "*.example.org", "accepted": False, "reason": "held by another tunnel (x)"}],
     "tunnel": "home-lab", "conn_id": "0123456789abcdef"},
    {"type": "unregister", "hostnames": ["app.example.com"]},
    {"type": "error", "code": "tunnel_deleted", "message": "deleted", "permanent": True},
    {"type": "drain"},
    {"type": "access_keys", "issuer": "https://edge.example", "jwks": {"keys": [
        {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
         "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "kid": "k1", "use": "sig", "alg": "ES256"}]}},
    {"type": "origin_ca", "pem": CA},
    {"type": "renew", "kind": "tunnel", "pem": PUBKEY},
    {"type": "renew", "kind": "origin_pull", "pem": PUBKEY},
    {"type": "renewed", "kind": "tunnel", "pem": CA},
    {"type": "renewed", "kind": "origin_pull", "pem": CA + CA},
    {"type": "error", "code": "renew_failed", "message": "too frequent", "permanent": False},
]
lines = [json.dumps(m, separators=(",", ":")).encode() + b"\n" for m in ctl]
write("control", "all_types", b"".join(lines))
for i, l in enumerate(lines):
    write("control", "msg%d" % i, l)
write("control", "empty_lines_crlf", b"\n\n" + lines[4].replace(b"\n", b"\r\n") + b"\n")
write("control", "partial", lines[0] + lines[1][:40])
# ACCESS_KEYS the decoder must refuse, each after a good one (the stream stops there).
write("control", "access_keys_hostile", lines[5] + b"".join(
    ctl_bad + b"\n" for ctl_bad in [
        b'{"type":"access_keys","issuer":"e","jwks":"{\\"keys\\":[]}"}',
        b'{"type":"access_keys","issuer":"","jwks":{"keys":[]}}',
        b'{"type":"access_keys","issuer":"e","jwks":{"keys":{}}}',
        b'{"type":"access_keys","issuer":"e","jwks":{"keys":[1e400]}}',
    ]))
# ORIGIN_CA / RENEW / RENEWED the decoder must refuse, after a good one.
write("control", "renew_hostile", lines[7] + b"".join(
    ctl_bad + b"\n" for ctl_bad in [
        b'{"type":"renew","kind":"server","pem":"-----BEGIN PUBLIC KEY-----"}',
        b'{"type":"renew","kind":"tunnel","pem":"-----BEGIN CERTIFICATE-----"}',
        b'{"type":"renewed","pem":"-----BEGIN CERTIFICATE-----"}',
        b'{"type":"origin_ca","pem":""}',
        b'{"type":"origin_ca","pem":["-----BEGIN CERTIFICATE-----"]}',
    ]))
write("control", "renew_big_pem", json.dumps(
    {"type": "renewed", "kind": "tunnel", "pem": CA + "A" * (16384 - len(CA))},
    separators=(",", ":")).encode() + b"\n")
write("control", "access_keys_numbers",
      b'{"type":"access_keys","issuer":"e","jwks":{"keys":[{"n":1e2,"m":-0.1,"u":"\\u00e9\\/"}],"x":[]}}\n')

# fuzz_enroll: one line offered to both decoders
write("enroll", "req", json.dumps({"tunnel_id": "0123456789abcdef0123456789abcdef",
                                   "secret": SECRET,
                                   "public_key": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"},
                                  separators=(",", ":")).encode())
write("enroll", "resp_ok", json.dumps({"ok": True, "cert": CA}, separators=(",", ":")).encode())
write("enroll", "resp_ok_origin_ca", json.dumps({"ok": True, "cert": CA, "origin_ca": CA},
                                                separators=(",", ":")).encode())
write("enroll", "resp_ok_origin_ca_bad", json.dumps({"ok": True, "cert": CA, "origin_ca": 7},
                                                    separators=(",", ":")).encode())
write("enroll", "resp_refused", json.dumps({"ok": False, "code": "bad_secret", "message": "wrong secret"},
                                           separators=(",", ":")).encode())

# fuzz_hostname: an authority, or "pattern\nhost"
for i, s in enumerate([b"App.Example.COM:443", b"[2001:db8::1]:8443", b"example.com.",
                       b"*.example.com\nx.y.example.com", b"app.example.com\nAPP.EXAMPLE.COM",
                       b"*.deep.example.com\ndeep.example.com", b"Tunnel-Foo\nclose, Tunnel-Foo"]):
    write("hostname", "seed%d" % i, s)

# fuzz_b64
for i, s in enumerate([b"Zm9vYmFy", b"Zm9vYg==", b"-_-__g", b"+/+//g==", SECRET.encode(), b""]):
    write("b64", "seed%d" % i, s)

# fuzz_path: a request target (path, then an optional ?query)
for name, s in [("dotdot", b"/public/../secret"), ("encoded_dotdot", b"/public/%2e%2e/secret"),
                ("mixed_dotdot_query", b"/public/.%2E/secret?x=/../y"),
                ("dot_and_slashes", b"/a/./b//c/"), ("encoded_slash", b"/a%2Fb"),
                ("encoded_backslash_nul", b"/a%5cb%00"),
                ("escapes_bad", b"/%7euser/%e2%82%ac/%41%zz"), ("root", b"/"),
                ("trailing_dotdot", b"/a/b/../.."), ("api_query", b"/api/v1/items?sort=name&q=%2e%2e"),
                ("asterisk", b"*"), ("utf8_double_encoded", "/café/%252e".encode())]:
    write("path", name, s)

# ---- HTTP/2 by hand (no library: the bytes must not change under us) ----

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WINUP, CONT = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20


def frame(ftype, flags, sid, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack(headers):
    """Literal header fields without indexing, new names, no Huffman."""
    out = b""
    for name, value in headers:
        n, v = name.encode() if isinstance(name, str) else name, value.encode() if isinstance(value, str) else value
        out += b"\x00" + hpack_int(len(n), 7) + n + hpack_int(len(v), 7) + v
    return out


def settings(*pairs):
    return frame(SETTINGS, 0, 0, b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in pairs))


def req(method, authority, path, *extra, scheme="https"):
    h = [(":method", method), (":scheme", scheme), (":authority", authority), (":path", path)]
    return h + list(extra)


def ctl_line(**m):
    return json.dumps(m, separators=(",", ":")).encode() + b"\n"


SETTINGS_ACK = frame(SETTINGS, ACK, 0)
CLIENT_START = PREFACE + settings((3, 100), (4, 1 << 20))

# fuzz_front_h2: a browser's HTTP/2 connection
h2 = {
    "get": CLIENT_START + frame(HEADERS, END_STREAM | END_HEADERS, 1, hpack(req("GET", "app.fuzz.test", "/"))),
    "get_status_418": CLIENT_START + frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                           hpack(req("GET", "status.fuzz.test", "/x"))),
    "post_body": CLIENT_START + SETTINGS_ACK
    + frame(HEADERS, END_HEADERS, 1, hpack(req("POST", "app.fuzz.test", "/up", ("content-length", "11"))))
    + frame(DATA, 0, 1, b"hello ") + frame(DATA, END_STREAM, 1, b"world"),
    "two_streams_rst": CLIENT_START
    + frame(HEADERS, END_HEADERS, 1, hpack(req("POST", "app.fuzz.test", "/a")))
    + frame(HEADERS, END_STREAM | END_HEADERS, 3, hpack(req("GET", "x.fuzz.test", "/hello/there")))
    + frame(RST, 0, 1, (8).to_bytes(4, "big")),
    "continuation": CLIENT_START
    + frame(HEADERS, END_STREAM, 1, hpack(req("GET", "app.fuzz.test", "/c")[:2]))
    + frame(CONT, END_HEADERS, 1, hpack(req("GET", "app.fuzz.test", "/c")[2:] + [("x-extra", "1")])),
    "half_headers": CLIENT_START + frame(HEADERS, 0, 1, hpack(req("GET", "app.fuzz.test", "/")[:3])),
    "websocket": CLIENT_START
    + frame(HEADERS, END_HEADERS, 1, hpack(req("CONNECT", "app.fuzz.test", "/chat", (":protocol", "websocket"),
                                               ("sec-websocket-version", "13"))))
    + frame(DATA, 0, 1, b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"),
    "plain_connect": CLIENT_START
    + frame(HEADERS, END_HEADERS, 1, hpack([(":method", "CONNECT"), (":authority", "app.fuzz.test:443")])),
    "control_frames": CLIENT_START + SETTINGS_ACK + frame(PING, 0, 0, b"12345678")
    + frame(WINUP, 0, 0, (65536).to_bytes(4, "big"))
    + frame(PRIORITY, 0, 1, (0).to_bytes(4, "big") + b"\x10")
    + frame(HEADERS, END_STREAM | END_HEADERS, 1, hpack(req("HEAD", "app.fuzz.test", "/")))
    + frame(GOAWAY, 0, 0, (1).to_bytes(4, "big") + (0).to_bytes(4, "big")),
    "trailers": CLIENT_START
    + frame(HEADERS, END_HEADERS, 1, hpack(req("POST", "app.fuzz.test", "/t")))
    + frame(DATA, 0, 1, b"body") + frame(HEADERS, END_STREAM | END_HEADERS, 1, hpack([("x-trailer", "1")])),
    "forwarding_headers": CLIENT_START
    + frame(HEADERS, END_STREAM | END_HEADERS, 1, hpack(req(
        "GET", "app.fuzz.test", "/f", ("x-forwarded-for", "1.2.3.4"), ("x-real-ip", "6.6.6.6"),
        ("tunnel-id", "x"), ("forwarded", "for=1.2.3.4"), ("cookie", "a=1"), ("cookie", "b=2")))),
    "padded": CLIENT_START
    + frame(HEADERS, END_STREAM | END_HEADERS | PADDED, 1, b"\x03" + hpack(req("GET", "app.fuzz.test", "/p")) + b"\0\0\0"),
}
for name, data in h2.items():
    write("front_h2", name, data)

# fuzz_front_h1: a browser's HTTP/1.1 connection
h1 = {
    "get": b"GET / HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n",
    "get_418": b"GET /x HTTP/1.1\r\nHost: status.fuzz.test\r\nAccept: */*\r\n\r\n",
    "pipelined": b"GET /1 HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\nGET /hello HTTP/1.1\r\nHost: b.fuzz.test\r\n\r\n"
                 b"HEAD /3 HTTP/1.1\r\nHost: app.fuzz.test\r\nConnection: close\r\n\r\n",
    "post_length": b"POST /up HTTP/1.1\r\nHost: app.fuzz.test\r\nContent-Length: 11\r\n\r\nhello world",
    "post_chunked": b"POST /up HTTP/1.1\r\nHost: app.fuzz.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
    "expect_continue": b"PUT /e HTTP/1.1\r\nHost: app.fuzz.test\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "http10": b"GET / HTTP/1.0\r\n\r\n",
    "absolute_form": b"GET http://app.fuzz.test/abs?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n",
    "websocket": b"GET /chat HTTP/1.1\r\nHost: app.fuzz.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                 b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58",
    "h2c_upgrade": b"GET / HTTP/1.1\r\nHost: app.fuzz.test\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                   b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    "garbage": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    "connect": b"CONNECT app.fuzz.test:443 HTTP/1.1\r\nHost: app.fuzz.test:443\r\n\r\n",
    "options_star": b"OPTIONS * HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n",
    "duplicate_host": b"GET / HTTP/1.1\r\nHost: app.fuzz.test\r\nHost: status.fuzz.test\r\n\r\n",
    "forwarding": b"GET /f HTTP/1.1\r\nHost: app.fuzz.test\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n"
                  b"X-Real-IP: 6.6.6.6\r\nForwarded: for=1.2.3.4\r\nX-Forwarded-Host: evil\r\n"
                  b"Connection: keep-alive, X-Drop\r\nX-Drop: 1\r\nTunnel-Id: x\r\n\r\n",
    "unknown_host": b"GET / HTTP/1.1\r\nHost: nobody.example\r\n\r\n",
    "folded_header": b"GET / HTTP/1.1\r\nHost: app.fuzz.test\r\nX-Folded: a\r\n b\r\n\r\n",
    "bad_length": b"POST / HTTP/1.1\r\nHost: app.fuzz.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
}
for name, data in h1.items():
    write("front_h1", name, data)

# fuzz_httpd: [mode byte: bit 0 loopback client, bit 1 hangs up at once] +
# one request to the operator endpoints' server (rt_httpd)
httpd = {
    "get_metrics": b"\x01GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nAccept: text/plain\r\n\r\n",
    "head": b"\x00HEAD /healthcheck HTTP/1.1\r\nHost: h\r\n\r\n",
    "post_json": b"\x00POST /api/tunnels?x=1 HTTP/1.1\r\nHost: e\r\nAuthorization: Bearer abc\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"name\":\"one\"}",
    "expect": b"\x02PUT /api/access/x HTTP/1.1\r\nHost: e\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
    "too_big": b"\x00POST / HTTP/1.1\r\nHost: e\r\nContent-Length: 513\r\n\r\n" + b"a" * 64,
    "chunked": b"\x00POST / HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "no_answer": b"\x01GET /none HTTP/1.1\r\nHost: e\r\n\r\n",
    "no_content": b"\x01DELETE /204 HTTP/1.1\r\nHost: e\r\n\r\n",
    "big_answer": b"\x01GET /big HTTP/1.1\r\nHost: e\r\n\r\n",
    "absolute": b"\x00GET http://e:1/abs?q#f HTTP/1.1\r\nHost: e\r\n\r\n",
    "http10": b"\x00GET / HTTP/1.0\r\n\r\n",
    "pipelined": b"\x00GET /a HTTP/1.1\r\nHost: e\r\n\r\nGET /b HTTP/1.1\r\nHost: e\r\n\r\n",
    "long_head": b"\x00GET / HTTP/1.1\r\nHost: e\r\nX: " + b"v" * 2100 + b"\r\n\r\n",
    "duplicate_host": b"\x00GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "partial": b"\x02GET /slow HTTP/1.1\r\nHo",
    # Answered by the head hook: before the body (a part of it, then all of it).
    "early_body": b"\x00POST /early HTTP/1.1\r\nHost: e\r\nExpect: 100-continue\r\nContent-Length: 300\r\n\r\nab",
    "early_get": b"\x03GET /early/x HTTP/1.1\r\nHost: e\r\nContent-Length: 3\r\n\r\nabc",
}
for name, data in httpd.items():
    write("httpd", name, data)

# fuzz_tunnel_edge: [scenario byte] + what a connector sends to the edge.
# Bit 0: streams 3 (GET) and 5 (POST) are open when the input starts.
SERVER_START = settings((3, 1000), (4, 1 << 20), (5, 65536), (8, 1)) + SETTINGS_ACK
CTL_OK = frame(HEADERS, END_HEADERS, 1, hpack([(":status", "200"), ("content-type", "application/x-ndjson")]))
REGISTER = ctl_line(type="register", hostnames=["app.fuzz.test", "*.other.test"], agent="connector/0.1")
edge = {
    "register": b"\x00" + SERVER_START + CTL_OK + frame(DATA, 0, 1, REGISTER),
    "control_all": b"\x00" + SERVER_START + CTL_OK + frame(DATA, 0, 1, REGISTER
        + ctl_line(type="unregister", hostnames=["*.other.test"]) + ctl_line(type="drain")
        + ctl_line(type="error", code="x", message="m", permanent=False)),
    "answers": b"\x01" + SERVER_START + CTL_OK + frame(DATA, 0, 1, REGISTER)
    + frame(HEADERS, END_HEADERS, 3, hpack([(":status", "200"), ("content-length", "2"), ("x-a", "b")]))
    + frame(DATA, END_STREAM, 3, b"ok")
    + frame(WINUP, 0, 5, (100).to_bytes(4, "big"))
    + frame(HEADERS, END_HEADERS | END_STREAM, 5, hpack([(":status", "201"), ("connection", "close")])),
    "interim_and_trailers": b"\x01" + SERVER_START + CTL_OK
    + frame(HEADERS, END_HEADERS, 3, hpack([(":status", "100")]))
    + frame(HEADERS, END_HEADERS, 3, hpack([(":status", "200"), ("transfer-encoding", "chunked")]))
    + frame(DATA, 0, 3, b"part") + frame(HEADERS, END_HEADERS | END_STREAM, 3, hpack([("x-t", "1")])),
    "goaway_rst": b"\x01" + SERVER_START + CTL_OK
    + frame(RST, 0, 5, (2).to_bytes(4, "big"))
    + frame(GOAWAY, 0, 0, (3).to_bytes(4, "big") + (0).to_bytes(4, "big") + b"bye"),
    "ping_push": b"\x01" + SERVER_START + frame(PING, 0, 0, b"abcdefgh") + frame(PING, ACK, 0, b"\0" * 8)
    + frame(PUSH, END_HEADERS, 3, (2).to_bytes(4, "big") + hpack(req("GET", "app.fuzz.test", "/p"))),
    "control_closed": b"\x01" + SERVER_START + frame(HEADERS, END_HEADERS | END_STREAM, 1, hpack([(":status", "500")])),
    # Renewals: the second of a kind within 5 s is refused ("too frequent"); the link stays.
    "renew": b"\x00" + SERVER_START + CTL_OK + frame(DATA, 0, 1, REGISTER
        + ctl_line(type="renew", kind="tunnel", pem=PUBKEY) + ctl_line(type="renew", kind="origin_pull", pem=PUBKEY)
        + ctl_line(type="renew", kind="tunnel", pem=PUBKEY)),
}
for name, data in edge.items():
    write("tunnel_edge", name, data)

# fuzz_tunnel_conn: what an edge sends to the connector.
CONTROL = frame(HEADERS, END_HEADERS, 1, hpack(req("POST", "tunnel.control", "/.tunnel/control", ("tunnel-control", "1"))))
REGISTERED = ctl_line(type="registered", results=[{"hostname": "app.fuzz.test", "accepted": True},
                                                  {"hostname": "*.fuzz.test", "accepted": False, "reason": "no"}],
                      tunnel="fuzz", conn_id="0123456789abcdef")
EDGE_START = PREFACE + settings((2, 0), (4, 1 << 20), (5, 65536)) + SETTINGS_ACK + CONTROL
conn = {
    "control": EDGE_START + frame(DATA, 0, 1, REGISTERED),
    "get_hello": EDGE_START + frame(DATA, 0, 1, REGISTERED)
    + frame(HEADERS, END_STREAM | END_HEADERS, 3, hpack(req("GET", "app.fuzz.test", "/", ("x-forwarded-for", "1.2.3.4")))),
    "post_status": EDGE_START
    + frame(HEADERS, END_HEADERS, 3, hpack(req("POST", "status.fuzz.test", "/up", ("content-length", "5"))))
    + frame(DATA, END_STREAM, 3, b"hello"),
    "websocket_hello": EDGE_START
    + frame(HEADERS, END_HEADERS, 3, hpack(req("CONNECT", "app.fuzz.test", "/ws", (":protocol", "websocket"))))
    + frame(DATA, 0, 3, b"\x81\x00") + frame(RST, 0, 3, (8).to_bytes(4, "big")),
    "missing_path": EDGE_START + frame(HEADERS, END_STREAM | END_HEADERS, 3,
                                       hpack([(":method", "GET"), (":scheme", "https"), (":authority", "app.fuzz.test")])),
    "error_goaway": EDGE_START + frame(DATA, 0, 1, ctl_line(type="error", code="tunnel_deleted", message="gone", permanent=True))
    + frame(PING, 0, 0, b"12345678") + frame(GOAWAY, 0, 0, (0).to_bytes(8, "big")),
    "many_streams": EDGE_START + b"".join(
        frame(HEADERS, END_STREAM | END_HEADERS, sid, hpack(req("GET", "x.fuzz.test", "/hello/%d" % sid)))
        for sid in range(3, 40, 2)),
    # ACCESS_KEYS, then requests to a rule with access.required: without an
    # assertion, with one the keys do not verify, and with a repeated field.
    "access_keys": EDGE_START + frame(DATA, 0, 1, REGISTERED + ctl_line(
        type="access_keys", issuer="https://edge.fuzz.test", jwks={"keys": [
            {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "kid": "k1", "use": "sig",
             "alg": "ES256"}]}))
    + frame(HEADERS, END_STREAM | END_HEADERS, 3, hpack(req("GET", "locked.fuzz.test", "/")))
    + frame(HEADERS, END_STREAM | END_HEADERS, 5, hpack(req(
        "GET", "locked.fuzz.test", "/", ("edge-access-jwt-assertion",
                                         "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJhdWQiOiJsb2NrZWQuZnV6ei50ZXN0In0.AAAA"))))
    + frame(HEADERS, END_STREAM | END_HEADERS, 7, hpack(req(
        "CONNECT", "locked.fuzz.test", "/ws", (":protocol", "websocket"),
        ("edge-access-jwt-assertion", "a.b.c"), ("edge-access-jwt-assertion", "a.b.c"))))
    + frame(DATA, 0, 1, ctl_line(type="access_keys", issuer="e", jwks={"keys": []})),
    "second_control": EDGE_START + frame(HEADERS, END_HEADERS, 3, hpack(req("POST", "tunnel.control", "/c", ("tunnel-control", "1")))),
}
for name, data in conn.items():
    write("tunnel_conn", name, data)

# fuzz_ingress: connector configuration files
ingress = {
    "minimal": {"ingress": [{"service": "http_status:404"}]},
    "full": {"originRequest": {"connectTimeout": "10s", "noTLSVerify": False, "keepAliveConnections": 10},
             "ingress": [
                 {"hostname": "app.example.com", "path": "^/api/", "service": "http://127.0.0.1:8080",
                  "originRequest": {"httpHostHeader": "internal", "originServerName": "int.example", "http2Origin": True}},
                 {"hostname": "*.example.com", "service": "https://localhost:8443",
                  "originRequest": {"tlsTimeout": 5, "disableChunkedEncoding": True, "keepAliveTimeout": "2m"}},
                 {"hostname": "sock.example.com", "service": "unix:/run/app.sock"},
                 {"hostname": "tls-sock.example.com", "service": "unix+tls:/run/app.sock"},
                 {"hostname": "ssh.example.com", "service": "ssh://127.0.0.1:22"},
                 {"hostname": "tcp.example.com", "service": "tcp://[::1]:5432"},
                 {"hostname": "hello.example.com", "service": "hello_world"},
                 {"hostname": "locked.example.com", "service": "http://127.0.0.1:8081",
                  "originRequest": {"access": {"required": True, "audience": "locked-aud"}}},
                 {"service": "http_status:404"}]},
    "errors": {"ingres": [], "ingress": [
        {"service": "http_status:404"}, {"hostname": "*bad", "service": "ftp://x"},
        {"hostname": "x.example", "path": "([", "service": "http://h:99999/path"},
        {"hostname": 5, "service": "http_status:99"},
        {"originRequest": {"caPool": "/nonexistent/ca.pem", "originCert": "c.pem", "bogus": 1}, "service": "tcp://h"}]},
}
for name, cfg in ingress.items():
    write("ingress", name, json.dumps(cfg, indent=1).encode())
write("ingress", "syntax_error", b'{"ingress": [ {"service": "hello_world"} ')
write("ingress", "duplicate_key", b'{"ingress": [], "ingress": []}')

# fuzz_headers: lines "Kname:value" (q edge request, r edge response, c connector request)
hdr = {
    "request": b"q:method:GET\nq:scheme:https\nq:authority:a.fuzz.test\nq:path:/\n"
               b"quser-agent:fuzz\nqx-forwarded-for:1.2.3.4\nqconnection:keep-alive, x-drop\nqx-drop:1\n"
               b"qx-real-ip:6.6.6.6\nqtunnel-secret:x\nqte:trailers\nqexpect:100-continue\n",
    "websocket": b"q:method:GET\nq:authority:ws.fuzz.test\nq:path:/chat\nqupgrade:websocket\n"
                 b"qsec-websocket-key:dGhlIHNhbXBsZSBub25jZQ==\nqhost:other.fuzz.test\n",
    "response": b"r:status:200\nrcontent-length:12\nrset-cookie:a=1\nrconnection:close\nrkeep-alive:5\n"
                b"r:status:103\nrlink:</a>\nr:status:204\n",
    "connector": b"c:method:POST\nc:path:/x\nc:authority:app.fuzz.test\nc:scheme:https\nccontent-length:12\n"
                 b"chost:h\ncexpect:100-continue\ncaccept:*/*\nctransfer-encoding:chunked\nctunnel-control:1\n"
                 b"c:protocol:websocket\n",
    "predicates": b"xConnection:close, Keep-Alive\nxKEEP-ALIVE:a\nxX-Forwarded-Proto:http\nxbad name:v\n"
                  b"xok:bad\rvalue\n",
    "head": b"q:method:HEAD\nq:scheme:https\nq:authority:app.fuzz.test\nq:path:/\nqaccept:*/*\n",
    # Defect 4, as fuzz_headers found it: client X-Forwarded-For fields adding
    # up past 1 KiB pushed the edge's own entry (the client's address) out.
    "xff_over_1k": b"q:method:GET\nq:scheme:https\nq:authority:app.fuzz.test\nq:path:/\n"
                   + b"".join(b"qx-forwarded-for:198.51.100.%d, 192.0.2.%d\n" % (i, i) for i in range(40)),
}
for name, data in hdr.items():
    write("headers", name, data)

# fuzz_ws_response: [scenario byte] + what the origin answers to the upgrade
ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
ws = {
    "switching": b"\x00HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: " + ACCEPT + b"\r\nSec-WebSocket-Protocol: chat\r\n\r\n\x81\x02hi",
    "switching_then_close": b"\x03HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            b"Sec-WebSocket-Accept: " + ACCEPT + b"\r\n\r\n\x88\x00",
    "bad_accept": b"\x00HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
    "ok_not_upgrade": b"\x01HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "refused_body": b"\x01HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nX-Reason: no\r\n\r\nnope!\n",
    "refused_chunked": b"\x00HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ngone\r\n0\r\n\r\n",
    "refused_close_delimited": b"\x01HTTP/1.0 400 Bad Request\r\n\r\nclose-delimited body",
    "garbage": b"\x01SSH-2.0-OpenSSH_9.2\r\n",
    "interim": b"\x00HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
               b"Sec-WebSocket-Accept: " + ACCEPT + b"\r\n\r\n",
}
for name, data in ws.items():
    write("ws_response", name, data)

# fuzz_jwt: [mode byte] + 0 a JWK Set, 1 a compact token, 2 claims (signed by
# the harness), 3 a header. JWT_GOOD is PyJWT 2.6's token for key A of
# tests/unit/proto/test_px_jwt.c (the harness carries the same one).
JWT_X = "vtgec4rfGEXk0HSXo4B1yCBcr96xKX6qRhZcpWRjaRk"
JWT_Y = "ggZjsLTk1piaHvn7GN-i_wR9I2gOt_Deybgnis5CosI"
JWT_KID = "HDq7E79zR4h0UmHyPW1vudgSMDRMLrK1O7qOTczeSG0"
JWT_GOOD = (b"eyJhbGciOiJFUzI1NiIsImtpZCI6IkhEcTdFNzl6UjRoMFVtSHlQVzF2dWRnU01EUk1McksxTzdxT1RjemVTRzAiLCJ0"
            b"eXAiOiJKV1QifQ."
            b"eyJpc3MiOiJlZGdlLmV4YW1wbGUiLCJhdWQiOiJhcHAuZXhhbXBsZSIsInN1YiI6IkNOPWxhcHRvcCIsImlhdCI6MTc1"
            b"MDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwLCJjbmYiOnsieDV0I1MyNTYiOiJxODN2RWpSV2VKQSJ9fQ."
            b"rCrpR804IDNm-zrEGyrjZ0_xT0_sD17t7lt1-E4MeYBbpy-W2xa3f7yoJ3g5Lud8d8h0xHNtq3fMvCrSJv-aag")


def jdump(o):
    return json.dumps(o, separators=(",", ":")).encode()


ec_a = {"kty": "EC", "crv": "P-256", "x": JWT_X, "y": JWT_Y, "kid": JWT_KID, "use": "sig", "alg": "ES256"}
write("jwt", "jwks_one", b"\x00" + jdump({"keys": [ec_a]}))
write("jwt", "jwks_mixed", b"\x00" + jdump({"keys": [
    {"kty": "RSA", "kid": "r", "n": "0vx7agoebGcQSuu", "e": "AQAB"},
    {"kty": "EC", "crv": "P-384", "kid": "p", "x": "AA", "y": "AA"},
    {"kty": "oct", "kid": JWT_KID, "k": "c2VjcmV0"}, dict(ec_a, use="enc"), ec_a]}))
write("jwt", "jwks_off_curve", b"\x00" + jdump({"keys": [dict(ec_a, y=JWT_Y[:-1] + "M")]}))
write("jwt", "jwks_missing_y", b"\x00" + jdump({"keys": [{k: v for k, v in ec_a.items() if k != "y"}]}))
write("jwt", "token_good", b"\x01" + JWT_GOOD)
h, p, s = JWT_GOOD.split(b".")
write("jwt", "token_none", b"\x01" + b64url(jdump({"alg": "none", "kid": JWT_KID})) + b"." + p + b".")
write("jwt", "token_hs256", b"\x01" + b64url(jdump({"alg": "HS256", "kid": JWT_KID})) + b"." + p + b"." + s[:43])
write("jwt", "token_four_parts", b"\x01" + JWT_GOOD + b"." + s)
write("jwt", "token_short_sig", b"\x01" + h + b"." + p + b"." + s[:80])
write("jwt", "claims_ok", b"\x02" + jdump({"iss": "edge.example", "aud": ["x", "app.example"], "sub": "CN=a",
                                           "iat": 1750000000, "nbf": 1749999990, "exp": 1750000300,
                                           "cnf": {"x5t#S256": "q83vEjRWeJA"}}))
write("jwt", "claims_expired", b"\x02" + jdump({"iss": "edge.example", "aud": "app.example", "exp": 1749999970}))
write("jwt", "claims_real_times", b"\x02" + jdump({"iss": "edge.example", "aud": "app.example",
                                                   "exp": 1750000000.5, "iat": 1750000030.25}))
write("jwt", "claims_bad_types", b"\x02" + jdump({"iss": 1, "aud": [1], "exp": "1750000300"}))
write("jwt", "header_es256", b"\x03" + jdump({"alg": "ES256", "typ": "JWT", "kid": JWT_KID}))
write("jwt", "header_crit", b"\x03" + jdump({"alg": "ES256", "kid": JWT_KID, "crit": ["b64"], "b64": False}))
write("jwt", "header_dup", b'\x03{"alg":"none","alg":"ES256","kid":"' + JWT_KID.encode() + b'"}')
# fuzz_cert: the certificates and requests of the px_cert unit test, as DER
# and as PEM text (a bundle of two certificates with a request between them).
import re

fixtures = open(os.path.join(HERE, "..", "unit", "proto", "px_cert_fixtures.h")).read()
blocks = []
for m in re.finditer(r'"(-----BEGIN ([A-Z ]+)-----\\n)"(.*?)"(-----END \2-----\\n)"', fixtures, re.S):
    body = "".join(re.findall(r'"([A-Za-z0-9+/=]*)\\n"', m.group(3)))
    blocks.append((m.group(2), body))
seen = set()
pems = []
for label, body in blocks:
    if body in seen:
        continue
    seen.add(body)
    pem = "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (
        label, "\n".join(body[i:i + 64] for i in range(0, len(body), 64)), label)
    pems.append((label, pem.encode()))
    kind = {"CERTIFICATE": "cert", "CERTIFICATE REQUEST": "csr"}.get(label, "key")
    write("cert", "%s%d.der" % (kind, len(pems)), base64.b64decode(body))
certs_pem = [p for label, p in pems if label == "CERTIFICATE"]
reqs_pem = [p for label, p in pems if "REQUEST" in label]
write("cert", "bundle.pem", b"subject=x\n" + certs_pem[0] + reqs_pem[0] + certs_pem[1])
write("cert", "request.pem", reqs_pem[0])
