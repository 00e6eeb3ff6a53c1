#!/bin/bash
# Issue 11: two connector replicas of one tunnel over two edges sharing a data
# dir, under h2load (small requests) and one long download (sha256 checked):
#  (a) SIGTERM to one replica, then its restart: zero failures;
#  (b) a rolling restart of both (the second once the first is registered
#      again): zero failures;
#  (c) kill -9 of a replica under load: failures only for requests in flight
#      at the kill, a follow-up h2load has none;
#  (d) kill -9 of an edge mid-download through it: the client sees an error,
#      the connectors reconnect to the other edge, the next request through
#      it succeeds.
# Prints `figure:` lines (failed requests, seconds to reconnect).
# Usage: BIN=build/test/bin RESULTS=/tmp/r bash tests/resilience/test_replicas.sh
. "$(dirname "$0")/../integration/lib.sh"
# `check` keeps a case's output to itself unless it fails: figures go to the
# script's own stdout through fd 3.
exec 3>&1
figure() { echo "figure: $*" >&3; echo "figure: $*"; }

EDGE_A=127.0.0.1:$TUNNEL_PORT
EDGE_B=127.0.0.2:$TUNNEL_PORT
HOST=files.example.test
RATE=${REPLICAS_RPS:-25}   # requests per second per h2load client (4 clients)
DL_SIZE=$((24 << 20))      # the long download: ~12 s at 2 MB/s
DL_RATE=2M

start_edge_b() {
    "$BIN/edge-sim" serve --data-dir "$EDGE_DIR" --tunnel-addr $EDGE_B \
        --https-addr 127.0.0.2:$HTTPS_PORT --admin-addr 127.0.0.2:$ADMIN_PORT \
        >> "$WORK/edge-b.log" 2>&1 &
    EDGE_B_PID=$!; PIDS+=($EDGE_B_PID)
    wait_port 127.0.0.2 $HTTPS_PORT && wait_port 127.0.0.2 $TUNNEL_PORT
}

# start_replica N: connector replica N (1 or 2), its own state dir and a log
# per start ($WORK/rN.K.log); sets R<N>_PID and R<N>_LOG.
declare -A STARTS=()
start_replica() {
    local n=$1 k=$(( ${STARTS[$1]:-0} + 1 ))
    STARTS[$n]=$k
    local logf=$WORK/r$n.$k.log
    "$BIN/connector" run --token "$TOKEN" --state-dir "$WORK/state$n" \
        --edge $EDGE_A --edge $EDGE_B --ha-connections 4 --grace-period 30 \
        --hostname $HOST --url http://127.0.0.1:$NGINX_PORT >> "$logf" 2>&1 &
    local pid=$!; PIDS+=($pid)
    eval "R${n}_PID=$pid R${n}_LOG=$logf"
}

# links_up LOG: the connections up according to the last tally in LOG.
links_up() {
    grep -o '; up: .*' "$1" 2>/dev/null | tail -n1 |
        awk '{ n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^x[0-9]+,?$/) { gsub(/[x,]/, "", $i); n += $i } print n + 0 }'
}
all_up() { [ "$(links_up "$1")" -ge 4 ]; }
# links_on LOG EDGE: connections up to EDGE in LOG's last tally.
links_on() {
    grep -o '; up: .*' "$1" 2>/dev/null | tail -n1 | grep -o "$2 x[0-9]*" | grep -o '[0-9]*$' || echo 0
}

# load SECONDS NAME [EDGE_IP]: h2load in the background through an edge
# (default A), ~SECONDS long.
load() {
    local n=$(( $1 * RATE * 4 ))
    timeout $(( $1 + 60 )) h2load -c 4 -m 1 --rps $RATE -n $n --connect-to=${3:-127.0.0.1}:$HTTPS_PORT \
        "https://$HOST:$HTTPS_PORT/small.txt" > "$WORK/h2load.$2" 2>&1 &
    LOAD_PID=$!
}
# h2load_failed NAME: failed requests (total - succeeded) of that run.
h2load_failed() {
    awk '/^requests:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^total/) t = $i; if ($(i+1) ~ /^succeeded/) s = $i } }
         END { if (t == "") print "none"; else print t - s }' "$WORK/h2load.$1"
}
h2load_total() { awk '/^requests:/ { print $2 }' "$WORK/h2load.$1"; }

# download NAME [EDGE_IP]: the big file in the background, rate-limited.
download() {
    local ip=${2:-127.0.0.1}
    curl -sS --cacert "$WORK/ca.pem" --resolve "$HOST:$HTTPS_PORT:$ip" --limit-rate $DL_RATE \
        "https://$HOST:$HTTPS_PORT/big.bin" -o "$WORK/dl.$1" 2> "$WORK/dl.$1.err" &
    DL_PID=$!
}
download_ok() { # NAME: the file arrived whole
    [ "$(sha256sum < "$WORK/dl.$1" | cut -d' ' -f1)" = "$WANT" ]
}

# stop_replica N: SIGTERM, waits for the exit (drain); STOP_RC is its
# status. (Run in this shell, never in $(...): only the parent can wait.)
stop_replica() {
    local pid; eval "pid=\$R$1_PID"
    kill -TERM "$pid"
    STOP_RC=0
    wait "$pid" || STOP_RC=$?
}

setup() {
    start_nginx
    printf 'ok\n' > "$WORK/www/small.txt"
    make_file "$WORK/www/big.bin" $DL_SIZE
    WANT=$(sha256sum < "$WORK/www/big.bin" | cut -d' ' -f1)
    start_edge
    start_edge_b
    TOKEN=$(create_tunnel replicas --hostname $HOST)
    [ -n "$TOKEN" ] || { echo "no token"; return 1; }
    start_replica 1
    start_replica 2
    wait_for 30 all_up "$R1_LOG" && wait_for 30 all_up "$R2_LOG" || {
        echo "replicas not registered"; tail -n 5 "$R1_LOG" "$R2_LOG"; return 1; }
    echo "replica 1: $(grep -o 'up: .*' "$R1_LOG" | tail -n1)"
    echo "replica 2: $(grep -o 'up: .*' "$R2_LOG" | tail -n1)"
    # Spread over both edges: two connections each, per replica.
    [ "$(links_on "$R1_LOG" $EDGE_A)" = 2 ] && [ "$(links_on "$R1_LOG" $EDGE_B)" = 2 ] || return 1
    wait_for 10 routed $HOST small.txt && tcurl $HOST /small.txt --resolve "$HOST:$HTTPS_PORT:127.0.0.2" | grep -q ok
}
check "setup: two edges on one data dir, two replicas, 2+2 connections each" setup

# restart_replica N: SIGTERM (drain), start again, wait until registered.
# RESTARTED says "exit=RC drain=S back=S" (seconds to exit, then to be
# registered again).
restart_replica() {
    local t0 t1
    t0=$(date +%s.%N)
    stop_replica "$1"
    t1=$(date +%s.%N)
    start_replica "$1"
    local logf; eval "logf=\$R$1_LOG"
    wait_for 30 all_up "$logf" || { echo "replica $1 not back"; return 1; }
    RESTARTED="exit=$STOP_RC drain=$(awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.1f", b-a}') back=$(elapsed $t1)"
}

t_sigterm_restart() {
    load 20 a; download a
    sleep 3
    restart_replica 1 || return 1
    local r=$RESTARTED
    wait $LOAD_PID; wait $DL_PID
    local failed; failed=$(h2load_failed a)
    local dl=intact; download_ok a || dl=BROKEN
    figure "(a) SIGTERM+restart of a replica: $failed failed of $(h2load_total a) requests, download $dl, replica $r s"
    [ "$failed" = 0 ] && [ $dl = intact ] && [[ "$r" == exit=0* ]]
}
check "(a) SIGTERM to a replica and its restart: zero failed requests, download intact" t_sigterm_restart

t_rolling() {
    load 30 b; download b
    sleep 3
    restart_replica 1 || return 1
    local r1=$RESTARTED
    restart_replica 2 || return 1
    local r2=$RESTARTED
    wait $LOAD_PID; wait $DL_PID
    local failed; failed=$(h2load_failed b)
    local dl=intact; download_ok b || dl=BROKEN
    figure "(b) rolling restart: $failed failed of $(h2load_total b) requests, download $dl, replica 1 $r1 s, replica 2 $r2 s"
    [ "$failed" = 0 ] && [ $dl = intact ] && [[ "$r1" == exit=0* ]] && [[ "$r2" == exit=0* ]]
}
check "(b) rolling restart of both replicas: zero failed requests, download intact" t_rolling

t_kill9_replica() {
    load 12 c
    sleep 3
    kill -9 "$R1_PID"; wait "$R1_PID" 2>/dev/null
    wait $LOAD_PID
    local failed; failed=$(h2load_failed c)
    load 5 c2; wait $LOAD_PID
    local after; after=$(h2load_failed c2)
    # At most one request per h2load client is in flight (-m 1, 4 clients).
    figure "(c) kill -9 of a replica: $failed failed of $(h2load_total c) (in flight at most 4), follow-up: $after failed of $(h2load_total c2)"
    start_replica 1
    wait_for 30 all_up "$R1_LOG" || return 1
    [ "$failed" != none ] && [ "$failed" -le 4 ] && [ "$after" = 0 ]
}
check "(c) kill -9 of a replica: only requests in flight fail, the next load has none" t_kill9_replica

t_kill9_edge() {
    download d 127.0.0.1
    sleep 3
    local t0; t0=$(date +%s.%N)
    kill -9 "$EDGE_PID"; wait "$EDGE_PID" 2>/dev/null
    local rc=0; wait $DL_PID || rc=$?
    local dl=intact; download_ok d || dl=BROKEN
    # Both replicas end with all four connections on edge B.
    wait_for 40 eval '[ "$(links_on "$R1_LOG" $EDGE_B)" = 4 ] && [ "$(links_on "$R2_LOG" $EDGE_B)" = 4 ]' || {
        echo "not all on B: $(grep -o 'up: .*' "$R1_LOG" | tail -n1) / $(grep -o 'up: .*' "$R2_LOG" | tail -n1)"; return 1; }
    local back; back=$(elapsed $t0)
    local code; code=$(tcurl $HOST /small.txt --resolve "$HOST:$HTTPS_PORT:127.0.0.2" -o /dev/null -w '%{http_code}')
    figure "(d) edge kill -9 mid-download: curl exit $rc ($(head -c 80 "$WORK/dl.d.err")), download $dl; all 8 connections on the other edge after $back s; next request via it: $code"
    [ $rc != 0 ] && [ $dl = BROKEN ] && [ "$code" = 200 ]
}
check "(d) edge kill -9 mid-download: client error, connectors move to the other edge, next request succeeds" t_kill9_edge

# (e) Edge A back: each slot whose home is A returns to it 30-40 s after
# registering on B (make before break): no failures under load through B,
# whose links to the connectors are the ones drained. (Edge A routes only
# to its own links: until they are back it has none for this tunnel.)
t_back_home() {
    start_edge
    local t0; t0=$(date +%s.%N)
    load 50 e 127.0.0.2
    wait_for 70 eval '[ "$(links_on "$R1_LOG" $EDGE_A)" = 2 ] && [ "$(links_on "$R2_LOG" $EDGE_A)" = 2 ]' || {
        echo "not home: $(grep -o 'up: .*' "$R1_LOG" | tail -n1) / $(grep -o 'up: .*' "$R2_LOG" | tail -n1)"; return 1; }
    local home; home=$(elapsed $t0)
    wait $LOAD_PID
    local failed; failed=$(h2load_failed e)
    figure "(e) edge back: both replicas 2+2 again after $home s; $failed failed of $(h2load_total e) requests meanwhile"
    [ "$failed" = 0 ]
}
check "(e) edge back: connections go home (make before break) with zero failed requests" t_back_home

finish
