#!/bin/bash
# Two `edge-sim serve` on one data dir (127.0.0.1 and 127.0.0.2, same
# ports): a token naming both, one connector with 4 connections spread over
# them, what /api/tunnels says from either edge, and a hostname released
# after --hostname-grace once no connection registers it.
source "$(dirname "$0")/lib.sh"

EDGE_ARGS="--hostname-grace 3s"
start_edge
# The second edge, on the same data dir, once the first serves.
"$BIN/edge-sim" serve --data-dir "$EDGE_DIR" --tunnel-addr 127.0.0.2:$TUNNEL_PORT \
    --https-addr 127.0.0.2:$HTTPS_PORT --admin-addr 127.0.0.2:$ADMIN_PORT \
    --hostname-grace 3s >> "$WORK/edge-b.log" 2>&1 &
EDGE_B_PID=$!; PIDS+=($EDGE_B_PID)
wait_port 127.0.0.2 $HTTPS_PORT && wait_port 127.0.0.2 $TUNNEL_PORT
A=127.0.0.1:$TUNNEL_PORT
B=127.0.0.2:$TUNNEL_PORT

# The token names the live edges unless told otherwise.
TOKEN=$(create_tunnel shared)
token_edges() { # token: its edges, one per line
    python3 -c 'import base64,json,sys
t=sys.argv[1]; t+="="*(-len(t)%4)
print("\n".join(json.loads(base64.urlsafe_b64decode(t))["edges"]))' "$1"
}

# figure LINE: a scenario figure, printed at the end (check keeps its output).
figure() { echo "figure: shared edges: $*" | tee -a "$WORK/figures"; }

api() { # edge-ip: /api/tunnels of that edge
    curl -sf -H @"$(admin_auth)" "http://$1:$ADMIN_PORT/api/tunnels"
}

# tunnel_view EDGE-IP: one line "A-count B-count total ids" for tunnel shared.
tunnel_view() {
    api "$1" | python3 -c 'import json,sys
t=[t for t in json.load(sys.stdin)["tunnels"] if t["name"]=="shared"][0]
conns=[(c["id"],x) for c in t["connectors"] for x in c["connections"]]
ids=sorted(set(str(i) for i,_ in conns))
print(t["edges"].get(sys.argv[1],0), t["edges"].get(sys.argv[2],0), len(conns), ",".join(ids))' "$A" "$B"
}

t_token_names_both() {
    token_edges "$TOKEN"
    [ "$(token_edges "$TOKEN" | tr '\n' ' ')" = "$A $B " ] || return 1
    # --edge (repeatable) replaces them.
    local t
    t=$(create_tunnel other --edge 192.0.2.1:7844 --edge 192.0.2.2:7844) || return 1
    [ "$(token_edges "$t" | tr '\n' ' ')" = "192.0.2.1:7844 192.0.2.2:7844 " ] || return 1
    ! "$BIN/edge-sim" tunnel create bad --edge nope --data-dir "$EDGE_DIR" 2>/dev/null
}
check "tunnel create names every live edge of the data dir; --edge is repeatable" t_token_names_both

start_connector "$TOKEN" --ha-connections 4 --hostname keep.example.test --url hello_world \
    --hostname drop.example.test --url hello_world
two_each() { [ "$(tunnel_view 127.0.0.1 | cut -d' ' -f1-3)" = "2 2 4" ]; }

t_two_per_edge() {
    wait_for 30 two_each || { tunnel_view 127.0.0.1; return 1; }
    local va vb
    va=$(tunnel_view 127.0.0.1); vb=$(tunnel_view 127.0.0.2)
    echo "edge A sees: $va"; echo "edge B sees: $vb"
    [ "$va" = "$vb" ] || return 1
    figure "connections per edge A=$(echo "$va" | cut -d' ' -f1) B=$(echo "$va" | cut -d' ' -f2)"
    # Each edge reports only its own links in the old "connections" field.
    api 127.0.0.2 | grep -q '"connections": 2,' &&
        routed keep.example.test &&
        [ "$(curl -sS --cacert "$WORK/ca.pem" --resolve keep.example.test:$HTTPS_PORT:127.0.0.2 \
            -o /dev/null -w '%{http_code}' https://keep.example.test:$HTTPS_PORT/)" = 200 ]
}
check "a connector with --ha-connections 4 has 2 connections on each edge; both edges' /api/tunnels agree" t_two_per_edge

t_connector_id() {
    # REGISTER's connector id (sent by connectors since issue 11): the four
    # connections are one connector, named by the same id on both edges.
    local v
    v=$(tunnel_view 127.0.0.1); echo "$v"
    local ids=${v##* }
    [ -n "$ids" ] && [ "$ids" != None ] && [[ "$ids" != *,* ]]
}
check "/api/tunnels groups the connections under their connector's id" t_connector_id

route_of() { # host: true while edge A lists it among tunnel shared's hostnames
    api 127.0.0.1 | python3 -c 'import json,sys
t=[t for t in json.load(sys.stdin)["tunnels"] if t["name"]=="shared"][0]
sys.exit(0 if sys.argv[1] in t["hostnames"] else 1)' "$1"
}

t_hostname_released() {
    route_of drop.example.test && route_of keep.example.test || return 1
    # Held by live connections: kept past the grace.
    sleep 4
    route_of drop.example.test || return 1
    # drop.example.test leaves the config while the connector is stopped.
    kill "$CONN_PID"; wait "$CONN_PID" 2>/dev/null
    local t0; t0=$(date +%s.%N)
    start_connector "$TOKEN" --ha-connections 4 --hostname keep.example.test --url hello_world
    wait_for 20 routed keep.example.test || return 1
    wait_for 15 eval '! route_of drop.example.test' || { echo "never released"; return 1; }
    figure "hostname released $(elapsed "$t0") s after its connector stopped (grace 3 s)"
    grep -h "hostname drop.example.test released" "$WORK/edge.log" "$WORK/edge-b.log" || return 1
    # Either edge released it (the other's delete found nothing); both stopped routing it.
    route_of keep.example.test &&
        [ "$(tcurl drop.example.test / -o /dev/null -w '%{http_code}')" != 200 ] || return 1
    sleep 4 # keep.example.test is registered again: not released
    route_of keep.example.test && routed keep.example.test
}
check "a hostname no connection registers is released after --hostname-grace; one still registered is not" t_hostname_released

t_clean_exit_leaves_view() {
    # Edge B stops cleanly: edge A no longer counts B's connections at once.
    kill "$EDGE_B_PID"; wait "$EDGE_B_PID" 2>/dev/null
    wait_for 5 eval '[ "$(tunnel_view 127.0.0.1 | cut -d" " -f2)" = 0 ]' || { tunnel_view 127.0.0.1; return 1; }
    "$BIN/edge-sim" tunnel create after --data-dir "$EDGE_DIR" 2>/dev/null > "$WORK/tok-after" || return 1
    [ "$(token_edges "$(cat "$WORK/tok-after")" | tr '\n' ' ')" = "$A " ]
}
check "an edge's clean exit removes it from the live view (tokens name the edges still up)" t_clean_exit_leaves_view

cat "$WORK/figures" 2>/dev/null
finish
