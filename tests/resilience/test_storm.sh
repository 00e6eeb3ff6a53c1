#!/bin/bash
# Reconnect storm (issue 11): 50 connectors (one tunnel each,
# --ha-connections 4: 200 links) on one edge; the edge is restarted (SIGTERM,
# a few seconds down, started again on the same data dir and ports):
#   - every connector is registered again within 35 s of the edge coming back;
#   - no 1-s window (sliding) holds more than 25 % of the connection attempts
#     the edge sees (dialed once it listens again; before, the kernel refuses
#     them) -- counted from the connectors' debug lines "connection N:
#     connecting to EDGE", one per dial (the edge's log lines of connections
#     registered or refused are printed alongside, as a cross-check);
#   - the edge answers /healthz and a routed request within 1 s throughout.
# storm_report.py computes the figures. STORM_CONNECTORS / STORM_DOWN change
# the size and the downtime.
#
# Why 2 s down: a real edge restart takes a second or two, and short outages
# are the hard case: the first dials after an outage of D s bunch up right
# after D while the ceilings are still small. With the connector's ceilings
# of 10, 20, 30 s, a simulation of 200 links puts at most ~21 % into the
# busiest second for any D from 0.5 to 40 s (with 1, 2, 4 ... s it was
# 30-80 % for D < 5 s), and the last link is back at most ~30 s after the
# edge. Usage: BIN=... RESULTS=... bash tests/resilience/test_storm.sh
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/faults_lib.sh"
RHERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
N=${STORM_CONNECTORS:-50}
HA=4
DOWN=${STORM_DOWN:-2}
BACK_WITHIN=35
MAX_SHARE=0.25
ulimit -n 65536 2>/dev/null || true

api() { curl -s --max-time 3 -H @"$(admin_auth)" "http://127.0.0.1:$ADMIN_PORT/api/tunnels"; }
# all_up: every tunnel s1..sN has HA connections on the edge
all_up() {
    api | python3 -c '
import json, sys
n, ha = int(sys.argv[1]), int(sys.argv[2])
doc = json.load(sys.stdin)
up = {t["name"]: t.get("connections", 0) for t in doc.get("tunnels", [])}
sys.exit(0 if all(up.get("s%d" % i, 0) >= ha for i in range(1, n + 1)) else 1)
' $N $HA
}
links() { api | python3 -c 'import json, sys; print(json.load(sys.stdin).get("links", 0))' 2>/dev/null || echo 0; }
# the epoch time of the edge's last "edge-sim serving" line
served_at() {
    grep "edge-sim serving" "$WORK/edge.log" | tail -n1 | python3 -c '
import calendar, sys, time
l = sys.stdin.read()
print("%.3f" % (calendar.timegm(time.strptime(l[:19], "%Y-%m-%dT%H:%M:%S")) + int(l[20:23]) / 1000))'
}

start_edge
mkdir -p "$WORK/c"
t_setup() {
    local i tok
    for i in $(seq 1 $N); do
        tok=$(create_tunnel s$i) || return 1
        "$BIN/connector" run --token "$tok" --state-dir "$WORK/c/state$i" --ha-connections $HA \
            --loglevel debug --hostname s$i.example.test --url hello_world >> "$WORK/c/$i.log" 2>&1 &
        PIDS+=($!)
        sleep 0.1
    done
    wait_until 120 all_up || { echo "only $(links) link(s) up"; return 1; }
    echo "$(links) links up"
    routed s1.example.test
}
check "setup: $N connectors x $HA connections registered on one edge" t_setup

# The poller: every 0.3 s, /healthz and a routed request (cycling over the
# tunnels), each with its time; "EPOCH KIND CODE SECONDS" lines.
poll() {
    local i=0 t
    while [ ! -e "$WORK/poll.stop" ]; do
        i=$((i % N + 1))
        t=$(now)
        echo "$t healthz $(curl -s -o /dev/null --max-time 3 -w '%{http_code} %{time_total}' \
            "http://127.0.0.1:$ADMIN_PORT/healthz")" >> "$WORK/poll"
        t=$(now)
        echo "$t routed $(tcurl s$i.example.test / -o /dev/null --max-time 3 \
            -w '%{http_code} %{time_total}' 2>/dev/null)" >> "$WORK/poll"
        sleep 0.3
    done
}
: > "$WORK/poll"
poll &
POLL_PID=$!; PIDS+=($POLL_PID)

T_TERM=$(now)
kill -TERM $EDGE_PID
log "edge sent SIGTERM"
wait_until 40 bash -c "! kill -0 $EDGE_PID" || log "edge still running 40 s after SIGTERM"
wait $EDGE_PID 2>/dev/null
T_EXIT=$(now)
figure "storm: the edge exited $(awk -v a="$T_TERM" -v b="$T_EXIT" 'BEGIN { printf "%.2f", b - a }') s after SIGTERM; down for $DOWN s more"
sleep "$DOWN"
start_edge
T_BACK=$(served_at)
log "edge back (serving since $T_BACK)"

t_back() {
    local ok=0
    wait_until $((BACK_WITHIN + 25)) all_up && ok=1
    echo "$(links) links up $(elapsed "$T_BACK") s after the edge came back"
    [ $ok = 1 ]
}
check "storm: all connectors registered again (measured below: within $BACK_WITHIN s)" t_back
sleep 2
touch "$WORK/poll.stop"
wait $POLL_PID 2>/dev/null
T_END=$(now)

python3 "$RHERE/storm_report.py" "$T_TERM" "$T_BACK" "$T_END" "$WORK/poll" "$WORK/edge.log" "$WORK"/c/*.log > "$WORK/report"
grep '^figure:' "$WORK/report" | tee -a "$WORK/figures" >&3
field() { tail -n1 "$WORK/report" | python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

t_within() {
    local s
    s=$(field last_registration_s)
    echo "last registration $s s after the edge came back; connectors back: $(field connectors_back) of $N"
    [ "$(field connectors_back)" = $N ] && awk -v s="$s" -v m=$BACK_WITHIN 'BEGIN { exit !(s != "None" && s <= m) }'
}
check "storm: every connector registered again within $BACK_WITHIN s of the edge coming back" t_within

t_spread() {
    echo "attempts the edge saw: $(field attempts_seen), most in one 1-s window: $(field attempts_max_1s_seen) ($(field share_max_1s_seen))"
    awk -v s="$(field share_max_1s_seen)" -v m=$MAX_SHARE 'BEGIN { exit !(s <= m) }'
}
check "storm: no 1-s window holds more than 25 % of the attempts the edge sees" t_spread

t_responsive() {
    echo "healthz worst $(field healthz_worst_s) s ($(field healthz_slow_or_failed) slow/failed of $(field healthz_samples));" \
        "routed worst $(field routed_worst_s) s ($(field routed_slow_or_failed) slow/failed of $(field routed_samples))"
    [ "$(field healthz_slow_or_failed)" = 0 ] && [ "$(field routed_slow_or_failed)" = 0 ] &&
        [ "$(field healthz_samples)" -gt 5 ] && [ "$(field routed_200)" -gt 0 ]
}
check "storm: the edge answers /healthz and routed requests within 1 s throughout" t_responsive

finish
