#!/bin/bash
# Dead peers and partitions (issue 11): a link whose peer vanishes without a
# FIN is found dead on both ends within 45 s (PINGs every 5 s, 3 missed), and
# a connector with a second edge has its connections replaced there within
# 45 s. Real PING intervals (no TUNNEL_PING_INTERVAL_MS), so this is slow.
#
# Edge A runs in a network namespace we create, reached over a veth pair
# ($A_IP); edge B runs on 127.0.0.1 with the same data dir. Connector C1
# (tunnel p1, 2 connections) knows only A; connector C2 (tunnel p2, 4
# connections) gets `--edge A --edge B` (several edges: issue 11, H1).
#   partitions:    the edge's end of the veth goes down, later the root end
#   frozen peers:  SIGSTOP of C1, then of edge A
# Needs root (ip netns). Usage: BIN=... RESULTS=... bash tests/resilience/test_partition.sh
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/faults_lib.sh"
DETECT=45

NS=h4p$$
VR=h4r$$
VN=h4n$$
# 198.18.0.0/15 is for benchmarks (RFC 2544), routed nowhere here. A
# lower-priority "unreachable" route for it stays when the veth's own route
# goes (the root end down): without it the dials would leave the machine by
# the default route (and did: something out there answered TLS).
SUB=198.18.$((RANDOM % 250 + 1))
R_IP=$SUB.1
A_IP=$SUB.2
A_TUN=$A_IP:$TUNNEL_PORT
B_TUNNEL_PORT=$((PORT_BASE + 11)) B_HTTPS_PORT=$((PORT_BASE + 12)) B_ADMIN_PORT=$((PORT_BASE + 13))
B_TUN=127.0.0.1:$B_TUNNEL_PORT

net_cleanup() {
    ip netns del "$NS" 2>/dev/null
    ip link del "$VR" 2>/dev/null
    ip route del unreachable "$SUB.0/24" metric 4000 2>/dev/null
    return 0
}
trap 'cleanup; net_cleanup' EXIT
trap 'exit 130' INT TERM

ip route add unreachable "$SUB.0/24" metric 4000 ||
    { echo "FAIL cannot add a route for $SUB.0/24 (needs root; in use?)"; exit 1; }
ip netns add "$NS" || { echo "FAIL cannot create a network namespace (needs root)"; exit 1; }
ip link add "$VR" type veth peer name "$VN"
ip link set "$VN" netns "$NS"
ip addr add "$R_IP/24" dev "$VR"
ip link set "$VR" up
ip netns exec "$NS" ip addr add "$A_IP/24" dev "$VN"
ip netns exec "$NS" ip link set "$VN" up
ip netns exec "$NS" ip link set lo up

# Edge A inside the namespace; its admin API on the namespace's loopback, so
# it can be asked during the partition.
ip netns exec "$NS" "$BIN/edge-sim" serve --data-dir "$EDGE_DIR" --tunnel-addr "$A_TUN" \
    --https-addr "$A_IP:$HTTPS_PORT" --admin-addr "127.0.0.1:$ADMIN_PORT" >> "$WORK/edge.log" 2>&1 &
A_PID=$!; PIDS+=($A_PID)
wait_port "$A_IP" "$TUNNEL_PORT" 20 && wait_port "$A_IP" "$HTTPS_PORT"
"$BIN/edge-sim" ca --data-dir "$EDGE_DIR" > "$WORK/ca.pem"
"$BIN/edge-sim" serve --data-dir "$EDGE_DIR" --tunnel-addr "$B_TUN" \
    --https-addr "127.0.0.1:$B_HTTPS_PORT" --admin-addr "127.0.0.1:$B_ADMIN_PORT" >> "$WORK/edgeB.log" 2>&1 &
B_PID=$!; PIDS+=($B_PID)
wait_port 127.0.0.1 "$B_TUNNEL_PORT" 20

api_a() { ip netns exec "$NS" curl -s --max-time 3 -H @"$(admin_auth)" "http://127.0.0.1:$ADMIN_PORT/api/tunnels"; }
api_b() { curl -s --max-time 3 -H @"$(admin_auth)" "http://127.0.0.1:$B_ADMIN_PORT/api/tunnels"; }
on_a() { tunnel_conns "$(api_a)" "$1" "$A_TUN"; } # TUNNEL: its connections on edge A
on_b() { tunnel_conns "$(api_b)" "$1" "$B_TUN"; }
# via EDGE HOST [curl args]: the HTTP status of / on HOST through edge a or b
via() {
    local ip=$A_IP port=$HTTPS_PORT
    [ "$1" = b ] && ip=127.0.0.1 port=$B_HTTPS_PORT
    curl -s --max-time 5 --cacert "$WORK/ca.pem" --resolve "$2:$port:$ip" "https://$2:$port/" \
        -o /dev/null -w '%{http_code}'
}
is() { [ "$("${@:2}")" = "$1" ]; } # is VALUE CMD...: CMD prints VALUE
ge() { [ "$("${@:2}")" -ge "$1" ]; }
# ids_a TUNNEL: the conn_ids of TUNNEL's connections on edge A, sorted, one per line
ids_a() {
    python3 -c '
import json, sys
doc = json.loads(sys.argv[1] or "{}")
for t in doc.get("tunnels", []):
    if t.get("name") == sys.argv[2]:
        for c in t.get("connectors", []):
            for k in c.get("connections", []):
                if k.get("edge") == sys.argv[3]:
                    print(k.get("conn_id"))
' "$(api_a)" "$1" "$A_TUN" | sort
}
# fresh_on_a TUNNEL OLD: TUNNEL has exactly 2 connections on A and none of them
# is in OLD (the ids before a freeze)
fresh_on_a() {
    local now_ids; now_ids=$(ids_a "$1")
    [ "$(echo "$now_ids" | grep -c .)" = 2 ] && [ -z "$(comm -12 <(echo "$now_ids") <(echo "$2"))" ]
}

T1=$(create_tunnel p1)
T2=$(create_tunnel p2)
"$BIN/connector" run --token "$T1" --state-dir "$WORK/state1" --edge "$A_TUN" --ha-connections 2 \
    --hostname p1.example.test --url hello_world >> "$WORK/connector.log" 2>&1 &
C1_PID=$!; PIDS+=($C1_PID)
"$BIN/connector" run --token "$T2" --state-dir "$WORK/state2" --edge "$A_TUN" --edge "$B_TUN" \
    --ha-connections 4 --hostname p2.example.test --url hello_world >> "$WORK/connector2.log" 2>&1 &
C2_PID=$!; PIDS+=($C2_PID)
C1_LOG=$WORK/connector.log

t_setup() {
    wait_until 40 is 2 on_a p1 || { echo "p1 has $(on_a p1) connection(s) on A"; return 1; }
    wait_until 20 is 200 via a p1.example.test || return 1
    wait_until 20 ge 1 on_b p2 # p2 reaches B only with several edges
    echo "p1: $(on_a p1) on A; p2: $(on_a p2) on A, $(on_b p2) on B"
}
check "setup: edge A in a namespace, edge B on loopback, C1 has 2 connections on A" t_setup

t_setup_spread() {
    p2_up() { [ $(($(on_a p2) + $(on_b p2))) -ge 4 ]; }
    wait_until 30 p2_up
    P2_SETUP_ON_A=$(on_a p2)
    echo "p2: $P2_SETUP_ON_A on A, $(on_b p2) on B"
    [ "$P2_SETUP_ON_A" = 2 ] && [ "$(on_b p2)" = 2 ]
}
check "setup (needs H1: --edge repeatable): C2 spreads its 4 connections 2 on A, 2 on B" t_setup_spread

# c1_found_dead WHAT: C1 logs both its connections to A lost within $DETECT
# s of $T0 (log lines after $M1)
c1_found_dead() {
    if ! wait_until $DETECT ge 2 distinct_lost "$C1_LOG" "$M1" "$A_TUN"; then
        echo "after $(elapsed "$T0") s, C1 reported $(distinct_lost "$C1_LOG" "$M1" "$A_TUN") of 2 lost"
        return 1
    fi
    figure "$1: the connector found both connections to edge A dead after $(elapsed "$T0") s"
    log_since "$C1_LOG" "$M1" | grep -m2 " lost"
}

# c2_replaced WHAT: C2 had connections on A before the fault ($P2_ON_A; else
# "replaced elsewhere" would hold vacuously) and has all 4 on B within
# $DETECT s of $T0, serving
c2_replaced() {
    local left
    if [ "$P2_ON_A" -lt 1 ]; then
        echo "C2 had no connection on edge A before the fault: nothing to replace (needs --edge A --edge B)"
        return 1
    fi
    left=$(awk -v t0="$T0" -v n="$(now)" -v d=$DETECT 'BEGIN { l = t0 + d - n; printf "%d", l < 1 ? 1 : l }')
    wait_until "$left" ge 4 on_b p2 ||
        { echo "after $(elapsed "$T0") s p2 has $(on_b p2) connection(s) on B"; return 1; }
    figure "$1: C2's connections replaced on edge B (4 up there) after $(elapsed "$T0") s"
    [ "$(via b p2.example.test)" = 200 ]
}

# --- partitions ------------------------------------------------------------
# Twice: first the edge's end of the veth goes down (from the connector's
# side the route stays and packets vanish: new dials hang until their
# timeout), then the connector's end (its route goes away: dials fail at
# once). Between them, C2 goes home to A (H1's rebalance) if it can.
link_set() { # edge|connector up|down
    if [ "$1" = edge ]; then ip netns exec "$NS" ip link set "$VN" "$2"; else ip link set "$VR" "$2"; fi
}
t_part_edge() {
    none_on_a() { [ "$(on_a p1)/$(on_a p2)" = 0/0 ]; }
    wait_until $DETECT none_on_a ||
        { echo "after $(elapsed "$T0") s edge A still has p1: $(on_a p1), p2: $(on_a p2)"; return 1; }
    figure "$1: edge A dropped the partitioned connectors' links after $(elapsed "$T0") s"
    grep -m2 "stopped answering pings" "$WORK/edge.log"
    return 0
}
t_heal() {
    wait_until $DETECT is 2 on_a p1 || { echo "p1 has $(on_a p1) connection(s) on A"; return 1; }
    figure "$1 healed: C1 registered again on edge A after $(elapsed "$T0") s"
    [ "$(via a p1.example.test)" = 200 ]
}
for SIDE in edge connector; do
    P="partition ($SIDE side down)"
    [ "${P2_SETUP_ON_A:-0}" -ge 1 ] && wait_until 60 is 2 on_a p2
    M1=$(lines "$C1_LOG")
    P2_ON_A=$(on_a p2)
    T0=$(now)
    link_set $SIDE down
    log "$P"
    check "$P: the connector finds its links dead within $DETECT s" c1_found_dead "$P"
    check "$P: the edge drops the links (api/tunnels count 0) within $DETECT s" t_part_edge "$P"
    check "$P (needs H1): the connections are replaced on the other edge within $DETECT s" c2_replaced "$P"
    T0=$(now)
    link_set $SIDE up
    log "$P healed"
    check "$P healed: the connector is back on the edge within $DETECT s" t_heal "$P"
done

# --- frozen connector ------------------------------------------------------
T0=$(now)
kill -STOP $C1_PID
t_frozen_connector() {
    local rc=0 code
    if wait_until $DETECT is 0 on_a p1; then
        figure "frozen connector: edge A dropped its links after $(elapsed "$T0") s"
        code=$(via a p1.example.test)
        echo "request for the frozen connector's hostname: $code"
        [ "$code" = 530 ] || rc=1
    else
        echo "after $(elapsed "$T0") s edge A still lists $(on_a p1) link(s) of the frozen connector"; rc=1
    fi
    kill -CONT $C1_PID
    return $rc
}
check "frozen connector (SIGSTOP): the edge drops it within $DETECT s and answers 530" t_frozen_connector

T0=$(now)
t_thawed_connector() {
    wait_until $DETECT is 2 on_a p1 || { echo "p1 has $(on_a p1) connection(s) on A"; return 1; }
    figure "frozen connector thawed: registered again after $(elapsed "$T0") s"
    [ "$(via a p1.example.test)" = 200 ]
}
check "frozen connector thawed: it registers again within $DETECT s" t_thawed_connector

# --- frozen edge -----------------------------------------------------------
M1=$(lines "$C1_LOG")
# back home after the partition (H1's rebalance), if it ever was there
[ "${P2_SETUP_ON_A:-0}" -ge 1 ] && wait_until 45 is 2 on_a p2
P2_ON_A=$(on_a p2)
OLD_A_IDS=$(ids_a p1)
T0=$(now)
kill -STOP $A_PID
check "frozen edge (SIGSTOP): the connector drops its links within $DETECT s" c1_found_dead "frozen edge"

check "frozen edge (needs H1): the connections are replaced on the other edge within $DETECT s" c2_replaced "frozen edge"

kill -CONT $A_PID
T0=$(now)
t_thawed_edge() {
    # Back means two connections on A that are not the ones from before the
    # freeze (those the connector gave up on must be gone, not counted).
    echo "before the freeze: $(echo $OLD_A_IDS)"
    wait_until $DETECT fresh_on_a p1 "$OLD_A_IDS" || { echo "p1 on A: $(echo $(ids_a p1))"; return 1; }
    figure "frozen edge thawed: C1 registered there again after $(elapsed "$T0") s"
    echo "p1 on A: $(echo $(ids_a p1))"
    [ -n "$OLD_A_IDS" ] && [ "$(via a p1.example.test)" = 200 ]
}
check "frozen edge thawed: the connector is back, and no stale link stays attached" t_thawed_edge

t_no_stranger() {
    # A TLS failure other than a timeout means a dial reached something else.
    ! grep -h "not signed by a trusted CA\|certificate verify\|handshake failed" "$C1_LOG" "$WORK/connector2.log"
}
check "every dial reached one of our edges or nothing (no foreign TLS peer)" t_no_stranger

finish
