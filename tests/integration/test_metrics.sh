#!/bin/bash
# Issue 12, the connector's part: the operator listener (/metrics parsed by
# prometheus_client's own parser, /ready, /healthcheck) while requests flow
# through edge-sim to real origins; readiness across an edge outage;
# --metrics off; --log-format json and the access log; no token in any log.
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3

start_edge
start_origin
TOKEN=$(create_tunnel ops)
# Rules from the flags: 0 app (the origin), 1 down (refused), 2 hello, 3 the
# catch-all 404.
start_connector "$TOKEN" --hostname app.example.test --url http://127.0.0.1:$ORIGIN_PORT \
    --hostname down.example.test --url http://127.0.0.1:1 \
    --hostname hello.example.test --url hello_world \
    --log-format json --access-log
wait_for 20 routed app.example.test || log "tunnel never came up"
EDGE_ADDR=127.0.0.1:$TUNNEL_PORT

# The address the connector printed: "metrics on http://127.0.0.1:PORT/metrics".
METRICS=$(grep -o 'metrics on http://127\.0\.0\.1:[0-9]*/metrics' "$WORK/connector.log" | head -n1 |
    sed 's/^metrics on //')
BASE=${METRICS%/metrics}
log "connector metrics at ${METRICS:-nowhere}"

# scrape NAME: saves /metrics into $WORK/NAME.prom.
scrape() { curl -sS --max-time 5 -o "$WORK/$1.prom" -w '%{http_code}' "$METRICS" | grep -qx 200; }

# metric NAME SAMPLE [label=value...]: the sum of the samples called SAMPLE
# whose labels match, in scrape NAME (0 when none), as parsed by
# prometheus_client (a text it cannot parse fails the call).
metric() {
    $PY - "$WORK/$1.prom" "${@:2}" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
path, name, *labels = sys.argv[1:]
want = dict(l.split("=", 1) for l in labels)
total = 0.0
for fam in text_string_to_metric_families(open(path).read()):
    for s in fam.samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in want.items()):
            total += s.value
print("%g" % total)
PY
}

# delta SAMPLE [label=value...]: after - before.
delta() {
    local a b
    a=$(metric after "$@") && b=$(metric before "$@") || return 1
    $PY -c "print('%g' % ($a - $b))"
}

t_metrics_parse() {
    [ -n "$METRICS" ] || { echo "no 'metrics on' line"; grep metrics "$WORK/connector.log"; return 1; }
    scrape first || return 1
    grep -q '^content-type: text/plain; version=0.0.4' <(curl -sSI "$METRICS" | tr 'A-Z' 'a-z') || {
        curl -sSI "$METRICS"; return 1; }
    $PY - "$WORK/first.prom" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
want = {
    "connector_build_info": "gauge", "connector_start_time_seconds": "gauge",
    "connector_links_up": "gauge", "connector_reconnects": "counter",
    "connector_registration_failures": "counter", "connector_requests": "counter",
    "connector_ingress_rule_info": "gauge", "connector_active_streams": "gauge",
    "connector_active_websockets": "gauge", "connector_bytes": "counter",
    "connector_origin_response_seconds": "histogram", "connector_origin_errors": "counter",
    "process_resident_memory_bytes": "gauge", "process_open_fds": "gauge",
}
for name, typ in want.items():
    assert name in fams, (name, sorted(fams))
    assert fams[name].type == typ, (name, fams[name].type)
info = fams["connector_build_info"].samples
assert len(info) == 1 and info[0].value == 1 and info[0].labels["version"], info
rules = {s.labels["rule"]: s.labels for s in fams["connector_ingress_rule_info"].samples}
assert rules["0"]["hostname"] == "app.example.test", rules
assert rules["2"]["hostname"] == "hello.example.test", rules
causes = {s.labels["cause"] for s in fams["connector_origin_errors"].samples}
assert causes >= {"refused", "resolve", "tls_verify", "tls", "timeout", "reset",
                  "bad_response", "other"}, causes
assert fams["process_open_fds"].samples[0].value > 3
assert fams["process_resident_memory_bytes"].samples[0].value > 1 << 20
PY
}
check "the metrics address is logged at start; /metrics parses as Prometheus text with every family" t_metrics_parse

t_healthcheck() {
    [ "$(curl -sS -o "$WORK/hc" -w '%{http_code}' "$BASE/healthcheck")" = 200 ] &&
    grep -qx ok "$WORK/hc" &&
    [ "$(curl -sS -o /dev/null -w '%{http_code}' "$BASE/nothing-here")" = 404 ]
}
check "/healthcheck answers 200 ok (and other paths 404)" t_healthcheck

t_links_up() {
    scrape links || return 1
    [ "$(metric links connector_links_up edge=$EDGE_ADDR)" = 4 ] || {
        grep links_up "$WORK/links.prom"; return 1; }
}
check "links_up counts the 4 registered links of the edge" wait_for 20 t_links_up

# The counters a burst of requests must move, and by how much (waiting for
# the streams to end: a request is counted when its stream closes).
counters_moved() {
    scrape after || return 1
    local d
    for want in "6 connector_requests_total rule=0 status_class=2xx" \
                "2 connector_requests_total rule=0 status_class=4xx" \
                "1 connector_requests_total rule=0 status_class=5xx" \
                "3 connector_requests_total rule=1 status_class=5xx" \
                "2 connector_requests_total rule=2 status_class=2xx" \
                "9 connector_origin_response_seconds_count rule=0" \
                "0 connector_origin_response_seconds_count rule=1" \
                "3 connector_origin_errors_total cause=refused" \
                "0 connector_origin_errors_total cause=timeout"; do
        set -- $want
        d=$(delta "${@:2}") || return 1
        [ "$d" = "$1" ] || { echo "$*: moved by $d"; return 1; }
    done
    d=$(delta connector_bytes_total direction=to_origin)
    $PY -c "import sys; sys.exit(0 if $d >= 100000 else 1)" || { echo "to_origin moved by $d"; return 1; }
    d=$(delta connector_bytes_total direction=from_origin)
    $PY -c "import sys; sys.exit(0 if $d >= 5 * 18 else 1)" || { echo "from_origin moved by $d"; return 1; }
    [ "$(metric after connector_active_streams)" = 0 ]
}

t_counters() {
    scrape before || return 1
    local i
    for i in 1 2 3 4 5; do tcurl app.example.test /ok -o /dev/null || return 1; done
    head -c 100000 /dev/zero | tcurl app.example.test /upload -X POST --data-binary @- -o /dev/null || return 1
    tcurl app.example.test /status/404 -o /dev/null && tcurl app.example.test /status/404 -o /dev/null &&
    tcurl app.example.test /status/503 -o /dev/null || return 1
    for i in 1 2 3; do
        [ "$(tcurl down.example.test / -o /dev/null -w '%{http_code}')" = 502 ] || return 1
    done
    tcurl hello.example.test / -o /dev/null && tcurl hello.example.test /x -o /dev/null || return 1
    wait_for 10 counters_moved || { counters_moved; return 1; }
}
check "requests, bytes, response times and origin errors (refused) move as requests flow" t_counters

t_access_log_json() {
    # A request with a query: the access line carries the path only.
    local j rid
    j=$(tcurl app.example.test '/headers?token=secret-query' --http1.1) || return 1
    rid=$(echo "$j" | $PY -c '
import json, sys
h = {k.lower(): v for k, v in json.load(sys.stdin)["headers"]}
print(h["x-request-id"])')
    [ -n "$rid" ] || return 1
    wait_for 5 grep -q "$rid" "$WORK/connector.log" || { echo "no line names $rid"; return 1; }
    $PY - "$WORK/connector.log" "$rid" <<'PY'
import json, sys
path, rid = sys.argv[1:]
lines = open(path, encoding="utf-8").read().splitlines()
assert lines, "empty log"
records = []
for n, line in enumerate(lines, 1):
    try:
        records.append(json.loads(line))
    except ValueError as e:
        raise SystemExit("line %d is not JSON (%s): %r" % (n, e, line))
for r in records:
    assert {"time", "level"} <= set(r), r
access = [r for r in records if r.get("type") == "access"]
assert len(access) >= 15, len(access)
mine = [r for r in access if r.get("request_id") == rid]
assert len(mine) == 1, mine
a = mine[0]
for k in ("time", "hostname", "method", "path", "status", "bytes_in", "bytes_out",
          "duration_ms", "request_id", "client", "rule"):
    assert k in a and a[k] is not None, (k, a)
assert a["hostname"] == "app.example.test", a
assert a["method"] == "GET" and a["path"] == "/headers" and a["status"] == 200, a
assert a["bytes_in"] == 0 and a["bytes_out"] > 100 and a["duration_ms"] >= 0, a
assert a["client"] == "127.0.0.1" and a["rule"] == "0", a
assert "secret-query" not in json.dumps(access), "a query reached the access log"
# Every request of the burst has its line: the refused origin's 502s too.
assert sum(1 for r in access if r["hostname"] == "down.example.test" and r["status"] == 502) == 3
assert any(r["rule"] == "1" for r in access)
PY
}
check "--log-format json: every line parses; --access-log: one line per request with every field" t_access_log_json

ready() { # ready CODE: /ready answers CODE
    [ "$(curl -sS --max-time 3 -o "$WORK/ready.json" -w '%{http_code}' "$BASE/ready")" = "$1" ]
}

TUNNEL_ID=$(grep -o 'starting: tunnel ops ([0-9a-f]*)' "$WORK/connector.log" | head -n1 | grep -o '[0-9a-f]\{32\}')
ready_json() { # ready_json STATUS CONNECTIONS-TEST
    $PY - "$WORK/ready.json" "$TUNNEL_ID" "$1" "$2" <<'PY'
import json, sys
path, tid, status, test = sys.argv[1:]
j = json.load(open(path))
assert j["status"] == status, j
assert j["tunnel_id"] == tid and len(tid) == 32, (j, tid)
n = j["connections"]
assert isinstance(n, int) and eval(test), j
PY
}

registration_failed() { # a dial to the stopped edge failed (connection refused)
    scrape down &&
    [ "$(metric down connector_registration_failures_total edge=$EDGE_ADDR reason=connect)" != 0 ]
}

t_ready_cycle() {
    ready 200 && ready_json ready "n == 4" || { cat "$WORK/ready.json"; return 1; }
    scrape before_outage || return 1
    kill -9 $EDGE_PID; wait $EDGE_PID 2>/dev/null
    wait_for 20 ready 503 || { echo "still ready with the edge gone"; cat "$WORK/ready.json"; return 1; }
    ready_json not_ready "n == 0" || { cat "$WORK/ready.json"; return 1; }
    # While the edge is down the slots dial and fail (each within its first
    # backoff ceiling, 10 s): counted by reason.
    wait_for 30 registration_failed || { grep registration_failures "$WORK/down.prom"; return 1; }
    start_edge
    wait_for 60 ready 200 || { echo "not ready again after the edge came back"; return 1; }
    ready_json ready "n >= 1" || return 1
    wait_for 20 routed app.example.test || return 1
    scrape after_outage || return 1
    local r f
    r=$($PY -c "print($(metric after_outage connector_reconnects_total edge=$EDGE_ADDR) - $(metric before_outage connector_reconnects_total edge=$EDGE_ADDR))")
    f=$(metric after_outage connector_registration_failures_total edge=$EDGE_ADDR reason=connect)
    echo "reconnects +$r, registration failures (connect) $f"
    $PY -c "import sys; sys.exit(0 if $r >= 4 else 1)" || return 1
    $PY -c "import sys; sys.exit(0 if $f >= 1 else 1)" || return 1
    [ "$(metric after_outage connector_links_up edge=$EDGE_ADDR)" != 0 ]
}
check "/ready: 200 with connections and tunnel id, 503 once the edge is stopped, 200 after reconnect" t_ready_cycle

# Another tunnel's connector with --metrics off: it serves, and listens on
# nothing (the first connector, as a control, listens on its metrics port).
listening_ports() { # PID: the TCP ports the process listens on
    $PY - "$1" <<'PY'
import os, sys
pid = sys.argv[1]
inodes = set()
for fd in os.listdir("/proc/%s/fd" % pid):
    try:
        t = os.readlink("/proc/%s/fd/%s" % (pid, fd))
    except OSError:
        continue
    if t.startswith("socket:["):
        inodes.add(t[8:-1])
for f in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(f).read().splitlines()[1:]:
        p = line.split()
        if p[3] == "0A" and p[9] in inodes:
            print(int(p[1].rsplit(":", 1)[1], 16))
PY
}

t_metrics_off() {
    local token2 pid2 ports
    token2=$(create_tunnel quiet) || return 1
    "$BIN/connector" run --token "$token2" --state-dir "$WORK/state2" \
        --hostname quiet.example.test --url hello_world --metrics off \
        >> "$WORK/connector-off.log" 2>&1 &
    pid2=$!; PIDS+=($pid2)
    wait_for 30 routed quiet.example.test || { tail "$WORK/connector-off.log"; return 1; }
    ! grep -q 'metrics on' "$WORK/connector-off.log" || return 1
    ports=$(listening_ports $pid2)
    [ -z "$ports" ] || { echo "--metrics off listens on: $ports"; return 1; }
    ports=$(listening_ports $CONN_PID)
    [ "$ports" = "${BASE##*:}" ] || { echo "the first connector listens on: $ports (metrics ${BASE##*:})"; return 1; }
}
check "--metrics off opens no listener" t_metrics_off

t_metrics_addr_in_use() {
    local out rc
    out=$(timeout 20 "$BIN/connector" run --token "$TOKEN" --state-dir "$WORK/state3" \
        --hostname app.example.test --url hello_world --metrics 127.0.0.1:$HTTPS_PORT 2>&1); rc=$?
    [ $rc = 1 ] && echo "$out" | grep -q "cannot listen for metrics on 127.0.0.1:$HTTPS_PORT" || {
        echo "rc $rc: $out"; return 1; }
}
check "--metrics on an address in use: the connector says so and exits 1" t_metrics_addr_in_use

t_no_token_in_logs() {
    local f t bad=0
    for f in "$WORK"/*.log; do
        for t in "$TOKEN" "${TOKEN:40:40}"; do
            if grep -qF -- "$t" "$f"; then echo "token in $(basename "$f")"; bad=1; fi
        done
    done
    [ $bad = 0 ]
}
check "no log holds the tunnel token" t_no_token_in_logs

finish
