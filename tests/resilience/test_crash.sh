#!/bin/bash
# Origin crash mid-response (issue 11): an origin sends its head and part of
# the body, then dies (SIGKILL: the kernel closes its socket) or resets the
# socket. The browser must see the cut, never a clean but truncated end:
# over HTTP/2 an RST_STREAM (curl exit 92), over HTTP/1.1 the connection
# closed before the end of the body (curl exit 18: short Content-Length, or
# no final chunk). The origin is tests/resilience/crash_origin.py (one child
# process per connection, so each case kills only its own response).
# An HTTP/2 origin (http2Origin, over TLS) is cut the same way (RST_STREAM
# from it, or killed).
# Not covered, because it cannot be told apart: a close-delimited body (no
# length, no chunking) ended by a plain FIN is a complete answer in HTTP/1.1;
# over TLS the missing close_notify would tell, but libcurl (7.88, OpenSSL 3)
# ignores an unexpected EOF, so the connector sees a clean end there too.
# Usage: BIN=... RESULTS=... bash tests/resilience/test_crash.sh
source "$(dirname "$0")/../integration/lib.sh"
RHERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
H=crash.example.test        # plain HTTP/1.1 origin
H2=h2.crash.example.test    # the same over TLS, HTTP/2 (http2Origin)
TLS_PORT=$((PORT_BASE + 8))
exec 3>&1 # figure: lines go to the script's stdout, past check's capture

start_edge
python3 "$RHERE/crash_origin.py" $ORIGIN_PORT >> "$WORK/origin.log" 2>&1 &
PIDS+=($!)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=crash.local \
    -keyout "$WORK/origin.key" -out "$WORK/origin.pem" 2>/dev/null
/usr/bin/python3 "$RHERE/crash_origin.py" $TLS_PORT --tls "$WORK/origin.pem" "$WORK/origin.key" \
    >> "$WORK/origin-tls.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 $ORIGIN_PORT && wait_port 127.0.0.1 $TLS_PORT
cat > "$WORK/config.json" <<JSON
{
  "ingress": [
    { "hostname": "$H", "service": "http://127.0.0.1:$ORIGIN_PORT" },
    { "hostname": "$H2", "service": "https://127.0.0.1:$TLS_PORT",
      "originRequest": { "noTLSVerify": true, "http2Origin": true } },
    { "service": "http_status:404" }
  ]
}
JSON
TOKEN=$(create_tunnel crash)
start_connector "$TOKEN" --config "$WORK/config.json"
wait_for 30 routed $H whole || log "tunnel never came up"

# fetch HOST PROTO PATH: prints "EXIT BYTES HTTPCODE"
fetch() {
    local out rc
    out=$(tcurl "$1" "$3" "--$2" --max-time 20 -o "$WORK/body" -w '%{http_code}' 2>"$WORK/curl.err")
    rc=$?
    echo "$rc $(stat -c %s "$WORK/body" 2>/dev/null || echo 0) $out"
}

# expect [HOST] PROTO PATH WANT_EXIT: the body started (200, some bytes) and
# curl ended with WANT_EXIT.
expect() {
    local r host=$H
    [ $# = 4 ] && { host=$1; shift; }
    r=$(fetch "$host" "$1" "$2")
    set -- "$1" "$2" "$3" $r
    echo "$host $1 $2: curl exit $4, $5 bytes, status $6 ($(head -c 200 "$WORK/curl.err"))"
    echo "figure: origin crash ${host%%.example.test} $2 over $1: curl exit $4 after $5 body bytes" | tee /dev/fd/3
    [ "$4" = "$3" ] && [ "$6" = 200 ] && [ "$5" -gt 0 ]
}

t_control() {
    local h a b rc=0
    for h in $H $H2; do
        a=$(fetch $h http2 /whole); b=$(fetch $h http1.1 /whole)
        echo "$h: http2: $a; http1.1: $b"
        [ "$a" = "0 65536 200" ] && [ "$b" = "0 65536 200" ] || rc=1
    done
    return $rc
}
check "control: a whole answer arrives whole over both protocols, from each origin" t_control

t_h2_cl_kill() { expect http2 /cl/kill 92; }
check "h2: origin killed after part of a Content-Length body: RST_STREAM (curl 92)" t_h2_cl_kill
t_h2_chunked_kill() { expect http2 /chunked/kill 92; }
check "h2: origin killed mid-chunked body: RST_STREAM (curl 92)" t_h2_chunked_kill
t_h2_close_reset() { expect http2 /close/reset 92; }
check "h2: origin resets a close-delimited body: RST_STREAM (curl 92)" t_h2_close_reset
t_h1_cl_kill() { expect http1.1 /cl/kill 18; }
check "h1: origin killed after part of a Content-Length body: connection cut short (curl 18)" t_h1_cl_kill
t_h1_chunked_kill() { expect http1.1 /chunked/kill 18; }
check "h1: origin killed mid-chunked body: no final chunk (curl 18)" t_h1_chunked_kill
t_h1_chunked_reset() { expect http1.1 /chunked/reset 18; }
check "h1: origin resets mid-chunked body: no final chunk (curl 18)" t_h1_chunked_reset
t_h1_close_reset() { expect http1.1 /close/reset 18; }
check "h1: origin resets a close-delimited body: connection cut short (curl 18)" t_h1_close_reset

t_h2o_reset_h2() { expect $H2 http2 /cl/reset 92; }
check "HTTP/2 origin resets the stream mid-body: RST_STREAM (curl 92)" t_h2o_reset_h2
t_h2o_kill_h1() { expect $H2 http1.1 /cl/kill 18; }
check "HTTP/2 origin killed mid-body: h1 cut short (curl 18)" t_h2o_kill_h1
t_h2o_kill_h2() { expect $H2 http2 /cl/kill 92; }
check "HTTP/2 origin killed mid-body: RST_STREAM (curl 92)" t_h2o_kill_h2

t_nghttp_rst() {
    # The frame itself, as nghttp prints it.
    # nghttp has no --resolve: 127.0.0.1 with the authority set (it does not verify).
    nghttp -v -H ":authority: $H" "https://127.0.0.1:$HTTPS_PORT/cl/reset" > "$WORK/nghttp.out" 2>&1
    grep -E "recv RST_STREAM|error_code=" "$WORK/nghttp.out" | head -n 3
    grep -q "recv RST_STREAM" "$WORK/nghttp.out"
}
check "h2: the client receives an RST_STREAM frame (nghttp -v)" t_nghttp_rst

t_still_serves() { routed $H whole && routed $H2 whole; }
check "the tunnel still serves after the crashes" t_still_serves

finish
