#!/bin/bash
# What the edge does with a browser's request head before it reaches a tunnel:
# forwarding headers, SNI against Host, duplicate Host, CONNECT, and the size
# of response heads coming back. One check per defect of issue 7.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3 # Debian's, which has python3-h2 and python3-websockets

start_edge
start_origin
WS_PORT=$((PORT_BASE + 9))
$PY "$HERE/ws_echo.py" $WS_PORT >> "$WORK/ws.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 $WS_PORT

ORIGIN=http://127.0.0.1:$ORIGIN_PORT
cat > "$WORK/config.json" <<JSON
{
  "ingress": [
    { "hostname": "app.example.test", "service": "$ORIGIN" },
    { "hostname": "other.example.test", "service": "$ORIGIN" },
    { "hostname": "hh.example.test", "service": "$ORIGIN",
      "originRequest": { "httpHostHeader": "internal.local" } },
    { "hostname": "wsh.example.test", "service": "http://127.0.0.1:$WS_PORT",
      "originRequest": { "httpHostHeader": "internal.local" } },
    { "service": "http_status:404" }
  ]
}
JSON
TOKEN=$(create_tunnel edge-requests)
start_connector "$TOKEN" --config "$WORK/config.json"
wait_for 20 routed app.example.test || log "tunnel never came up"
wait_for 20 routed other.example.test || log "other.example.test never came up"

# Runs python with edge_raw importable: raw PORT CA <<'PY' ... PY
raw() { PYTHONPATH=$HERE $PY - "$HTTPS_PORT" "$WORK/ca.pem" "$@"; }

# headers_of HOST PATH [curl args]: the origin's /headers JSON, as "name: value" lines
headers_of() {
    local host=$1 path=$2; shift 2
    tcurl "$host" "$path" --max-time 20 "$@" | $PY -c '
import json, sys
for k, v in json.load(sys.stdin)["headers"]:
    print(f"{k.lower()}: {v}")'
}

t_xff() {
    # ~30 KB of client X-Forwarded-For: the edge's own entry must still be last.
    local big ver h
    big=$($PY -c 'print(", ".join(["10.0.0.1"] * 3000 + ["10.9.9.9"]))')
    for ver in --http1.1 --http2; do
        h=$(headers_of app.example.test /headers $ver -H "X-Forwarded-For: $big") || return 1
        $PY - "$h" "$ver" <<'PY' || return 1
import sys
h, ver = sys.argv[1], sys.argv[2]
xff = [l.split(": ", 1)[1] for l in h.splitlines() if l.startswith("x-forwarded-for: ")]
assert len(xff) == 1, (ver, len(xff))
entries = [e.strip() for e in xff[0].split(",")]
print(ver, "X-Forwarded-For:", len(xff[0]), "bytes, ends with", entries[-2:])
assert entries[-1] == "127.0.0.1", (ver, entries[-3:])
assert entries[-2] == "10.9.9.9", (ver, entries[-3:])
assert len(xff[0]) <= 4096 + 64, (ver, len(xff[0]))
PY
    done
}
check "defect 4: an oversized X-Forwarded-For keeps the client address last (HTTP/1.1, HTTP/2)" t_xff

SPOOF=(-H 'X-Forwarded-Host: evil.example' -H 'x-forwarded-host: evil2.example'
       -H 'Forwarded: for=6.6.6.6;host=evil.example;proto=http' -H 'X-Forwarded-Port: 1'
       -H 'X-Forwarded-Server: evil.example')

# no_spoof HEADERS WANT_HOST WANT_XFH: exactly one X-Forwarded-Host, the edge's.
no_spoof() {
    $PY - "$@" <<'PY'
import sys
h, want_host, want_xfh = sys.argv[1:4]
lines = h.splitlines()
get = lambda n: [l.split(": ", 1)[1] for l in lines if l.startswith(n + ": ")]
print("host:", get("host"), "x-forwarded-host:", get("x-forwarded-host"))
assert get("host") == [want_host], get("host")
assert get("x-forwarded-host") == [want_xfh], get("x-forwarded-host")
for n in ("forwarded", "x-forwarded-port", "x-forwarded-server"):
    assert get(n) == [], (n, get(n))
PY
}

t_forwarding_headers() {
    local ver h
    for ver in --http1.1 --http2; do
        h=$(headers_of app.example.test /headers $ver "${SPOOF[@]}") || return 1
        no_spoof "$h" "app.example.test:$HTTPS_PORT" "app.example.test:$HTTPS_PORT" || return 1
    done
}
check "defect 7: client X-Forwarded-Host, Forwarded, X-Forwarded-Port/-Server are stripped; the edge sets X-Forwarded-Host" t_forwarding_headers

t_forwarding_host_header() {
    local ver h
    for ver in --http1.1 --http2; do
        h=$(headers_of hh.example.test /headers $ver "${SPOOF[@]}") || return 1
        no_spoof "$h" internal.local "hh.example.test:$HTTPS_PORT" || return 1
    done
}
check "defect 7: with httpHostHeader the origin sees one X-Forwarded-Host, the original host" t_forwarding_host_header

t_forwarding_websocket() {
    $PY - "$HTTPS_PORT" "$WORK/ca.pem" <<'PY'
import asyncio, json, ssl, sys
import websockets
port, ca = int(sys.argv[1]), sys.argv[2]
async def main():
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["http/1.1"])
    async with websockets.connect(f"wss://wsh.example.test:{port}/headers", host="127.0.0.1",
                                  port=port, server_hostname="wsh.example.test", ssl=ctx,
                                  ping_interval=None,
                                  extra_headers=[("X-Forwarded-Host", "evil.example"),
                                                 ("Forwarded", "host=evil.example")]) as ws:
        info = json.loads(await ws.recv())
    h = [(k.lower(), v) for k, v in info["headers"]]
    get = lambda n: [v for k, v in h if k == n]
    print("host:", get("host"), "x-forwarded-host:", get("x-forwarded-host"))
    assert get("host") == ["internal.local"], get("host")
    assert get("x-forwarded-host") == [f"wsh.example.test:{port}"], get("x-forwarded-host")
    assert get("forwarded") == [], get("forwarded")
asyncio.run(main())
PY
}
check "defect 7: with httpHostHeader a WebSocket handshake carries one X-Forwarded-Host" t_forwarding_websocket

t_sni_host() {
    raw <<'PY'
import sys
from edge_raw import h1, h2
port, ca = int(sys.argv[1]), sys.argv[2]
def get1(sni, host):
    return h1(port, ca, sni, b"GET /headers HTTP/1.1\r\nHost: " + host.encode() +
              b"\r\nConnection: close\r\n\r\n")
def get2(sni, host):
    return h2(port, ca, sni, [(":method", "GET"), (":scheme", "https"),
                              (":authority", host), (":path", "/headers")])
cases = [
    ("HTTP/1.1 matching", get1, "app.example.test", "app.example.test", 200),
    ("HTTP/1.1 matching, port and case", get1, "app.example.test", "APP.example.test.:443", 200),
    ("HTTP/1.1 other host", get1, "app.example.test", "other.example.test", 421),
    ("HTTP/1.1 no SNI", get1, None, "other.example.test", 421),
    ("HTTP/2 matching", get2, "app.example.test", "app.example.test", 200),
    ("HTTP/2 other host", get2, "app.example.test", "other.example.test", 421),
    ("HTTP/2 no SNI", get2, None, "app.example.test", 421),
]
for name, fn, sni, host, want in cases:
    status, headers, body = fn(sni, host)
    print(f"{name}: SNI {sni} Host {host} -> {status} {headers.get('tunnel-error')}")
    assert status == want, (name, status)
    if want == 421:
        assert headers.get("tunnel-error") == ["misdirected_request"], headers
PY
}
check "defect 8: a Host or :authority other than the connection's SNI name gets 421 (HTTP/1.1, HTTP/2, no SNI)" t_sni_host

t_dup_host() {
    raw <<'PY'
import sys
from edge_raw import h1, h2
port, ca = int(sys.argv[1]), sys.argv[2]
sni = "app.example.test"
for hosts in ([sni, "other.example.test"], [sni, sni]):
    req = b"GET /headers HTTP/1.1\r\n" + b"".join(b"Host: " + h.encode() + b"\r\n" for h in hosts)
    status, headers, body = h1(port, ca, sni, req + b"Connection: close\r\n\r\n")
    print("HTTP/1.1 Host", hosts, "->", status)
    assert status == 400, (hosts, status)
req = [(":method", "GET"), (":scheme", "https"), (":authority", sni), (":path", "/headers")]
status, headers, body = h2(port, ca, sni, req + [("host", "other.example.test")])
print("HTTP/2 :authority", sni, "host other.example.test ->", status)
assert status == 400, status
status, headers, body = h2(port, ca, sni, req + [("host", sni)])
print("HTTP/2 :authority", sni, "host", sni, "->", status)
assert status == 200, status
PY
}
check "defect 9: two Host headers (HTTP/1.1), or a Host that is not :authority (HTTP/2), get 400" t_dup_host

t_big_response_head() {
    local out
    out=$(tcurl app.example.test /bigheaders/100 --max-time 20 -o /dev/null -D - -w '%{http_code}') || return 1
    echo "$out" | grep -i '^tunnel-error' ; echo "$out" | tail -n 1
    echo "$out" | grep -qi '^tunnel-error: origin_headers_too_large' || return 1
    [ "$(echo "$out" | tail -n 1)" = 502 ] || return 1
    # Under the cap still passes.
    [ "$(tcurl app.example.test /bigheaders/40 --max-time 20 -o /dev/null -w '%{http_code}')" = 200 ]
}
check "defect 10: an origin's 100 KB response head gets 502 origin_headers_too_large" t_big_response_head

t_connect() {
    raw <<'PY'
import sys
from edge_raw import h1, h2
port, ca = int(sys.argv[1]), sys.argv[2]
sni = "app.example.test"
status, headers, body = h2(port, ca, sni, [(":method", "CONNECT"), (":authority", sni + ":443")],
                           end_stream=False)
print("HTTP/2 CONNECT ->", status, headers.get("allow"), headers.get("tunnel-error"))
assert status == 405, status
assert headers.get("allow") and "GET" in headers["allow"][0], headers
status, headers, body = h1(port, ca, sni, b"CONNECT app.example.test:443 HTTP/1.1\r\n"
                           b"Host: app.example.test:443\r\n\r\n")
print("HTTP/1.1 CONNECT ->", status, headers.get("allow"), headers.get("tunnel-error"))
assert status == 405, status
assert headers.get("allow") and "GET" in headers["allow"][0], headers
PY
}
check "defect 14: a plain CONNECT gets 405 with Allow (HTTP/2 and HTTP/1.1)" t_connect

t_still_serving() {
    routed app.example.test && [ "$(tcurl app.example.test / --http1.1 -o /dev/null -w '%{http_code}')" = 200 ]
}
t_trailer_leak() {
    # Bug (issue 8 review): the last trailer field of a chunked request body
    # was kept and added to the next request on the connection.
    raw <<'PY'
import sys
from edge_raw import h1
raw = (b"POST /upload HTTP/1.1\r\nHost: app.example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
       b"5\r\nhello\r\n0\r\nX-Trailer-Leak: yes\r\n\r\n"
       b"GET /headers HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n")
status, headers, body = h1(int(sys.argv[1]), sys.argv[2], "app.example.test", raw)
print(status, body[-300:])
assert status == 200 and b'"/headers"' in body, body
assert b"trailer-leak" not in body.lower(), "the trailer reached the next request"
PY
}
check "the trailer of a chunked request does not reach the next request on the connection" t_trailer_leak

check "the edge still serves ordinary requests after all of the above" t_still_serving

t_sigterm_idle() {
    # Issue 11: SIGTERM drains the edge; with nothing in flight it exits 0 at once.
    local t0 rc=0 took
    t0=$(date +%s.%N)
    kill -TERM "$EDGE_PID"
    wait "$EDGE_PID" || rc=$?
    took=$(elapsed "$t0")
    echo "edge exit $rc after $took s"; grep 'draining\|drained' "$WORK/edge.log" | tail -n 4
    [ "$rc" = 0 ] && awk -v t="$took" 'BEGIN { exit !(t < 5) }' && grep -q 'drained in' "$WORK/edge.log"
}
check "SIGTERM on an idle edge: it drains and exits 0 promptly" t_sigterm_idle

finish
