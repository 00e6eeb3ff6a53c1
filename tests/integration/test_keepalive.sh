#!/bin/bash
# Dead-peer detection: both ends PING the tunnel connection and drop it after
# three unanswered PINGs. The interval is shortened to 300 ms for the test
# (TUNNEL_PING_INTERVAL_MS; 15 s by default).
source "$(dirname "$0")/lib.sh"
export TUNNEL_PING_INTERVAL_MS=300

start_edge
start_origin
TOKEN=$(create_tunnel keepalive)
start_connector "$TOKEN" --loglevel ${CONN_LOGLEVEL:-info} --hostname ka.example.test --url hello_world \
    --hostname slow.example.test --url http://127.0.0.1:$ORIGIN_PORT
wait_for 20 routed ka.example.test || log "tunnel never came up"

code() { tcurl ka.example.test / -o /dev/null -w '%{http_code}' --max-time 3; }

t_connector_frozen() {
    kill -STOP $CONN_PID
    wait_for 5 bash -c "[ \"\$(curl -s --max-time 2 --cacert $WORK/ca.pem --resolve ka.example.test:$HTTPS_PORT:127.0.0.1 https://ka.example.test:$HTTPS_PORT/ -o /dev/null -w '%{http_code}')\" = 530 ]"
    local rc=$?
    grep "stopped answering pings" "$WORK/edge.log" | tail -n1
    kill -CONT $CONN_PID
    [ $rc = 0 ] || { echo "edge kept routing to a frozen connector"; return 1; }
    wait_for 15 routed ka.example.test || { echo "no reconnect after thaw"; return 1; }
}
check "a frozen connector is detected by the edge (530), and it reconnects when thawed" t_connector_frozen

t_edge_frozen() {
    kill -STOP $EDGE_PID
    wait_for 5 grep -q "the edge stopped answering pings" "$WORK/connector.log"
    local rc=$?
    kill -CONT $EDGE_PID
    grep "stopped answering pings" "$WORK/connector.log" | tail -n1
    [ $rc = 0 ] || return 1
    wait_for 15 routed ka.example.test
}
check "a frozen edge is detected by the connector, which reconnects when it is back" t_edge_frozen

t_graceful_drain() {
    # SIGTERM: requests in flight finish, nothing new is routed here, then exit 0.
    tcurl slow.example.test /slow/3 -o "$WORK/slow.out" -w '%{http_code}' > "$WORK/slow.code" &
    local c=$!
    sleep 0.7
    kill -TERM $CONN_PID
    sleep 0.5
    local during
    during=$(tcurl ka.example.test / -o /dev/null -w '%{http_code}')
    wait $c
    echo "in-flight request: $(cat "$WORK/slow.code") $(cat "$WORK/slow.out"), new request during the drain: $during"
    [ "$(cat "$WORK/slow.code")" = 200 ] && [ "$(cat "$WORK/slow.out")" = slow ] && [ "$during" = 530 ] || return 1
    wait_for 5 bash -c "! kill -0 $CONN_PID" || { echo "connector did not exit after draining"; return 1; }
    wait $CONN_PID; local rc=$?
    echo "connector exit status $rc"
    [ $rc = 0 ] && grep -q "draining (1 request(s) in flight" "$WORK/connector.log"
}
check "SIGTERM drains: the request in flight completes, new ones are not routed here, exit 0" t_graceful_drain

finish
