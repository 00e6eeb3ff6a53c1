#!/bin/bash
# Issue 11: SIGTERM to one of two edges sharing a data dir, under load, drops
# nothing. Edge A and edge B (same --data-dir, different ports), the tunnel's
# connector(s) on both; load: failover_client.py (HTTP/2 browsers on A that
# fail over to B on GOAWAY / close), h2load on B, one long rate-limited
# download through A (sha256 checked). SIGTERM A: zero failed requests, the
# download intact, A exits 0 within its grace period, the connector's links
# to A moved to B on the first GOAWAY (its log). Then: a second signal stops
# an edge at once (exit 1), and a grace period ends a stuck request (exit 0).
# Prints `figure:` lines for the note.
. "$(dirname "$0")/../integration/lib.sh"
RES=$(cd "$(dirname "$0")" && pwd)

GRACE=20
A_TUNNEL=$TUNNEL_PORT A_HTTPS=$HTTPS_PORT A_ADMIN=$ADMIN_PORT
B_TUNNEL=$((PORT_BASE + 11)) B_HTTPS=$((PORT_BASE + 12)) B_ADMIN=$((PORT_BASE + 13))
C_TUNNEL=$((PORT_BASE + 21)) C_HTTPS=$((PORT_BASE + 22)) C_ADMIN=$((PORT_BASE + 23))

serve() { # name tunnel https admin [args]: starts an edge on $EDGE_DIR, sets SERVE_PID
    local name=$1 t=$2 h=$3 a=$4; shift 4
    "$BIN/edge-sim" serve --data-dir "$EDGE_DIR" --tunnel-addr 127.0.0.1:$t \
        --https-addr 127.0.0.1:$h --admin-addr 127.0.0.1:$a "$@" >> "$WORK/edge-$name.log" 2>&1 &
    SERVE_PID=$!; PIDS+=($SERVE_PID)
    wait_port 127.0.0.1 $h && wait_port 127.0.0.1 $t
}
curl_at() { # https-port path [curl args]
    local port=$1 path=$2; shift 2
    curl -sS --cacert "$WORK/ca.pem" --resolve "app.example.test:$port:127.0.0.1" \
        "https://app.example.test:$port$path" "$@"
}
routed_at() { [ "$(curl_at "$1" /status/200 -o /dev/null -w '%{http_code}')" = 200 ]; }
# Waits for pid to exit (at most $2 s); sets RC and TOOK.
wait_exit() {
    local pid=$1 limit=$2 t0 i
    t0=$(date +%s.%N); RC=timeout
    for i in $(seq 1 $((limit * 20))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if ! kill -0 "$pid" 2>/dev/null; then RC=0; wait "$pid" || RC=$?; fi
    TOOK=$(elapsed "$t0")
}

start_origin
serve a $A_TUNNEL $A_HTTPS $A_ADMIN --grace-period ${GRACE}s
EDGE_A=$SERVE_PID
serve b $B_TUNNEL $B_HTTPS $B_ADMIN
EDGE_B=$SERVE_PID
"$BIN/edge-sim" ca --data-dir "$EDGE_DIR" > "$WORK/ca.pem"
TOKEN=$(create_tunnel drain --hostname app.example.test --edge 127.0.0.1:$A_TUNNEL)
URL=http://127.0.0.1:$ORIGIN_PORT
# Links on both edges: one connector given both (--ha-connections 4: two on each).
start_connector "$TOKEN" --edge 127.0.0.1:$A_TUNNEL --edge 127.0.0.1:$B_TUNNEL \
    --hostname app.example.test --url $URL
# fig TEXT: a figure for the note, printed after the check that measured it.
fig() { echo "figure: $*" | tee -a "$WORK/figures"; }
show_figures() { [ -f "$WORK/figures" ] && cat "$WORK/figures" && rm -f "$WORK/figures"; return 0; }
wait_for 30 routed_at $A_HTTPS && wait_for 30 routed_at $B_HTTPS || log "not routed on both edges"

t_sigterm_under_load() {
    local size=$((24 * 1024 * 1024)) want got
    want=$(curl -s "http://127.0.0.1:$ORIGIN_PORT/gen/$size" | sha256sum | cut -d' ' -f1)
    curl_at $A_HTTPS /gen/$size --limit-rate 1500k -o "$WORK/download" \
        -w '%{http_code}\n' > "$WORK/download.code" 2> "$WORK/download.err" &
    local dl=$!
    /usr/bin/python3 "$RES/failover_client.py" --edges 127.0.0.1:$A_HTTPS,127.0.0.1:$B_HTTPS \
        --host app.example.test --cafile "$WORK/ca.pem" --conns 4 --depth 4 --duration 12 \
        --path /status/200 > "$WORK/failover.json" 2> "$WORK/failover.err" &
    local fc=$!
    h2load --connect-to=127.0.0.1:$B_HTTPS -c 4 -m 4 -D 12 \
        https://app.example.test:$B_HTTPS/status/200 > "$WORK/h2load.out" 2>&1 &
    local hl=$!
    sleep 3
    local sent=$(date +%s.%N)
    kill -TERM $EDGE_A
    wait_exit $EDGE_A $((GRACE + 10))
    echo "edge A: exit $RC after $TOOK s"
    wait $fc; wait $hl; wait $dl
    got=$(sha256sum < "$WORK/download" | cut -d' ' -f1)
    local fj; fj=$(cat "$WORK/failover.json")
    echo "failover client: $fj"
    grep -E '^requests:|^finished in' "$WORK/h2load.out"
    local h_ok h_fail
    h_ok=$(awk '/^requests:/ {print $8}' "$WORK/h2load.out")
    h_fail=$(awk '/^requests:/ {print $10}' "$WORK/h2load.out")
    local f_req f_fail f_ga f_cl f_ref
    read -r f_req f_fail f_ga f_cl f_ref < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["requests"], d["failed"], d["retried_after_goaway"], d["retried_after_close"], d["retried_refused"])' "$fj")
    # When the connector heard the notice, and when its links to A were gone.
    local clog="$WORK/connector.log"
    echo "connector log after the signal:"
    grep -E 'GOAWAY|registered|closed|connection [0-9]' "$clog" | tail -n 12
    grep 'draining\|drained\|grace' "$WORK/edge-a.log"
    fig "edge_drain sigterm A under load: failover_client requests=$f_req failed=$f_fail retried_after_goaway=$f_ga retried_after_close=$f_cl retried_refused=$f_ref"
    fig "edge_drain h2load on B during A's drain: succeeded=$h_ok failed=$h_fail"
    fig "edge_drain download through A: http=$(cat "$WORK/download.code") sha256 $([ "$got" = "$want" ] && echo intact || echo CORRUPT)"
    fig "edge_drain edge A exit=$RC after ${TOOK}s (grace ${GRACE}s)"
    local moved
    moved=$(grep -c "going away; dialing its replacement to 127.0.0.1:$B_TUNNEL in 0 ms" "$clog")
    fig "edge_drain connector: $moved connection(s) to A moved to B at A's first GOAWAY"
    [ "$RC" = 0 ] && [ "$got" = "$want" ] && [ "$(cat "$WORK/download.code")" = 200 ] &&
        [ "$f_fail" = 0 ] && [ "$f_req" -gt 0 ] && [ "${h_fail:-1}" = 0 ] && [ "${h_ok:-0}" -gt 0 ] &&
        awk -v t="$TOOK" -v g=$GRACE 'BEGIN { exit !(t < g + 2) }' &&
        grep -q 'draining: stopped accepting' "$WORK/edge-a.log" &&
        [ "$moved" -ge 2 ]
}
check "SIGTERM to edge A under load: zero failed requests, download intact, exit 0 within the grace, links moved to B at the first GOAWAY" t_sigterm_under_load
show_figures

t_after() {
    # B serves on; A is gone.
    routed_at $B_HTTPS && ! routed_at $A_HTTPS
}
check "edge B still serves after A drained" t_after

t_second_signal() {
    serve c $C_TUNNEL $C_HTTPS $C_ADMIN --grace-period 60s
    local pid=$SERVE_PID
    # A request held open on C (the connector is on A/B only: C answers 530
    # quickly, so hold a browser connection open instead).
    python3 - "$C_HTTPS" > "$WORK/hold.out" 2>&1 <<'PY' &
import socket, ssl, sys, time
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="app.example.test")
s.sendall(b"GET /status/200 HTTP/1.1\r\nHost: app.example.test\r\n")  # a head never finished
time.sleep(30)
PY
    local holder=$!
    sleep 1
    kill -TERM $pid; sleep 1
    kill -0 $pid || { echo "exited on the first signal"; kill $holder; return 1; }
    kill -TERM $pid
    wait_exit $pid 10
    kill $holder 2>/dev/null; wait $holder 2>/dev/null
    echo "second signal: exit $RC after $TOOK s"
    grep 'draining\|again' "$WORK/edge-c.log"
    fig "edge_drain second signal: exit=$RC after ${TOOK}s"
    [ "$RC" = 1 ] && awk -v t="$TOOK" 'BEGIN { exit !(t < 3) }'
}
check "a second signal stops a draining edge at once (exit 1)" t_second_signal

t_grace_expires() {
    # A request through edge B that takes far longer than B's grace: B exits
    # 0 at its --grace-period. (B restarted with a short grace for this.)
    kill -TERM $EDGE_B; wait_exit $EDGE_B 30
    serve b2 $B_TUNNEL $B_HTTPS $B_ADMIN --grace-period 3s
    local pid=$SERVE_PID
    wait_for 40 routed_at $B_HTTPS || { echo "not routed on B again"; return 1; }
    curl_at $B_HTTPS /slow/30 -o /dev/null -w '%{http_code}\n' > "$WORK/stuck.code" 2>&1 &
    local stuck=$!
    sleep 1
    kill -TERM $pid
    wait_exit $pid 15
    wait $stuck
    echo "grace expiry: exit $RC after $TOOK s; stuck request: $(cat "$WORK/stuck.code")"
    grep 'draining\|grace' "$WORK/edge-b2.log"
    fig "edge_drain grace 3s with a stuck request: exit=$RC after ${TOOK}s"
    [ "$RC" = 0 ] && awk -v t="$TOOK" 'BEGIN { exit !(t >= 2.8 && t < 6) }' &&
        grep -q 'grace period (3 s) over' "$WORK/edge-b2.log"
}
check "grace period expiry with a stuck request: exit 0 at --grace-period" t_grace_expires

cat "$WORK"/edge-*.log >> "$WORK/edge.log"
finish
