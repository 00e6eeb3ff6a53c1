#!/bin/bash
# serve --workers N: browser connections on N loops, each its own thread; the
# home loop accepts them in turn, keeps the tunnel links and decides every
# request, which es_relay carries between the loops. Whatever a browser does
# must work the same on every loop: many connections at once, large bodies
# both ways (flow control across the loops), WebSockets over HTTP/1.1 and
# HTTP/2, access lines for every request, and a drain that lets requests on
# every loop finish.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

EDGE_DIR=$WORK/edge
EDGE_ARGS="--workers 4"
start_edge
start_origin
WS_PORT=$((PORT_BASE + 9))
$PY "$HERE/ws_echo.py" $WS_PORT >> "$WORK/ws.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 $WS_PORT
TOKEN=$(create_tunnel workers)
start_connector "$TOKEN" --hostname app.example.test --url http://127.0.0.1:$ORIGIN_PORT \
    --hostname ws.example.test --url http://127.0.0.1:$WS_PORT
wait_for 20 routed app.example.test status/200 || log "tunnel never came up"

# CPU ticks (user + system) each worker thread has used so far, one line
# per thread: "NAME TICKS".
worker_ticks() {
    local t
    for t in /proc/$EDGE_PID/task/*; do
        case "$(cat "$t/comm" 2>/dev/null)" in
        edge-worker-*) awk '{ print $2, $14 + $15 }' "$t/stat" ;;
        esac
    done | sort
}

t_threads() {
    grep -q "serving browser connections on 4 loops" "$WORK/edge.log" &&
        [ "$(worker_ticks | wc -l)" = 3 ]
}
check "--workers 4: four loops, three of them threads of their own (edge-worker-N)" t_threads

# One client connection per request, so the home loop deals them out.
burst() { # proto count path: prints one sha256 per response
    local i
    for i in $(seq "$2"); do
        tcurl app.example.test "$3" "--$1" | sha256sum &
    done
    wait
}

t_spread() {
    local before after want n bad
    before=$(worker_ticks)
    want=$(head -c 300000 < <($PY -c 'import random,sys; sys.stdout.buffer.write(random.Random(1234).randbytes(1 << 20))') | sha256sum)
    # Enough work per loop that its thread's CPU ticks move.
    for n in 1 2 3; do
        bad=$( (burst http1.1 24 /gen/300000; burst http2 24 /gen/300000) | grep -cv "^${want%% *}")
        [ "$bad" = 0 ] || { echo "$bad responses wrong"; return 1; }
    done
    after=$(worker_ticks)
    echo "worker CPU ticks before: $(echo $before) after: $(echo $after)"
    # Every worker thread did some of it.
    join <(echo "$before") <(echo "$after") | awk '$3 > $2 { moved++ } END { exit moved == 3 ? 0 : 1 }'
}
check "144 connections (HTTP/1.1 and HTTP/2) all answered intact, and every worker loop served some" t_spread

t_bodies() {
    # Four in a row: each connection lands on the next loop in turn.
    local i got want
    head -c $((10 << 20)) /dev/urandom > "$WORK/up.bin"
    want=$(sha256sum < "$WORK/up.bin" | cut -d' ' -f1)
    for i in 1 2 3 4; do
        got=$(tcurl app.example.test /upload -X POST -T "$WORK/up.bin" --http2) || return 1
        echo "$got" | grep -q "\"sha256\": \"$want\"" || { echo "upload $i: $got"; return 1; }
        got=$(tcurl app.example.test /gen/$((10 << 20)) --http1.1 | sha256sum | cut -d' ' -f1)
        [ "$got" = "$($PY -c 'import random,sys; b=random.Random(1234).randbytes(1 << 20); sys.stdout.buffer.write(b*10)' | sha256sum | cut -d' ' -f1)" ] ||
            { echo "download $i differs"; return 1; }
    done
}
check "10 MiB up (HTTP/2) and down (HTTP/1.1) intact on every loop" t_bodies

t_websockets() {
    local i
    for i in 1 2 3 4; do
        $PY "$HERE/ws_client.py" messages "wss://ws.example.test:$HTTPS_PORT/echo" "$WORK/ca.pem" 300 ||
            return 1
        $PY "$HERE/ws_h2_client.py" ws.example.test $HTTPS_PORT "$WORK/ca.pem" /echo || return 1
    done
}
check "WebSockets over HTTP/1.1 and HTTP/2 echo on every loop" t_websockets

t_local_answers() {
    # Decided on the home loop, answered on the browser's: 404, 421, 405.
    [ "$(tcurl nothing.example.test / -o /dev/null -w '%{http_code}')" = 404 ] &&
        [ "$(curl -sS --cacert "$WORK/ca.pem" --resolve app.example.test:$HTTPS_PORT:127.0.0.1 \
            -H 'Host: other.example.test' "https://app.example.test:$HTTPS_PORT/" -o /dev/null \
            -w '%{http_code}' --http1.1)" = 421 ] &&
        [ "$(tcurl app.example.test / -X CONNECT --http1.1 -o /dev/null -w '%{http_code}')" = 405 ]
}
check "answers the edge gives itself (404, 421, 405) reach browsers on every loop" t_local_answers

t_access_lines() {
    # Every request above has its access line (the home loop writes them):
    # the 144 of the burst and the 8 of the bodies at least.
    local n
    n=$(grep -c "ACC host=app.example.test .*status=200" "$WORK/edge.log")
    echo "$n access lines for app.example.test with status 200"
    [ "$n" -ge 152 ]
}
check "every relayed request has its access line" t_access_lines

t_metrics() {
    local m
    m=$(curl -sS -H @"$(admin_auth)" http://127.0.0.1:$ADMIN_PORT/metrics) || return 1
    # All browser connections counted, from every loop, and none open now
    # but the ones the test keeps (none).
    echo "$m" | grep -E '^edge_browser_connections(_total)?' | head -5
    echo "$m" | awk '/^edge_browser_connections_total/ { s += $2 } END { exit s >= 150 ? 0 : 1 }'
}
check "metrics count browser connections from every loop" t_metrics

t_drain() {
    # Slow requests in flight on every loop when SIGTERM comes: they finish,
    # then serve exits 0.
    local i pids=() ok=0
    for i in 1 2 3 4 5 6 7 8; do
        tcurl app.example.test /slow/2 -o "$WORK/slow.$i" -w '%{http_code}\n' > "$WORK/slow.$i.code" &
        pids+=($!)
    done
    sleep 0.7
    kill -TERM $EDGE_PID
    for i in "${pids[@]}"; do wait "$i"; done
    for i in 1 2 3 4 5 6 7 8; do
        [ "$(cat "$WORK/slow.$i.code")" = 200 ] && ok=$((ok + 1))
    done
    wait $EDGE_PID
    local rc=$?
    echo "$ok of 8 slow requests answered; serve exited $rc"
    [ $ok = 8 ] && [ $rc = 0 ]
}
check "SIGTERM with requests in flight on every loop: all finish, serve exits 0" t_drain

check "no sanitizer reports from edge-sim or connector" sanitizers_clean
finish
