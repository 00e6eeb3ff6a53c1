#!/bin/bash
# The edge's logs (issue 12): --log-format json gives one JSON object per
# line, an access line per browser request (on by default) with the fields
# a person greps for, and no secret in any line: not the token, not an
# Authorization, Cookie or query value. --no-access-log turns access lines off.
source "$(dirname "$0")/lib.sh"

EDGE_ARGS="--log-format json"
start_edge
start_origin
TOKEN=$(create_tunnel home --hostname '*.example.test')
start_connector "$TOKEN" --hostname app.example.test --url http://127.0.0.1:$ORIGIN_PORT \
    --hostname hello.example.test --url hello_world
wait_for 20 routed hello.example.test || log "tunnel never came up"

# Requests carrying secrets where a careless log would show them.
SECRETS=(QUERYSECRET1 BEARERSECRET2 COOKIESECRET3)
traffic() {
    tcurl app.example.test '/headers?token=QUERYSECRET1' -H 'Authorization: Bearer BEARERSECRET2' \
        -H 'Cookie: sid=COOKIESECRET3' -o "$WORK/h2.json" || return 1
    tcurl app.example.test '/headers?token=QUERYSECRET1' --http1.1 \
        -H 'Authorization: Bearer BEARERSECRET2' -H 'Cookie: sid=COOKIESECRET3' \
        -o "$WORK/h1.json" || return 1
    tcurl app.example.test /upload -X POST --data-binary 'twelve bytes' -o /dev/null || return 1
    # Unrouted (404) and misdirected (421: a Host other than the SNI name).
    [ "$(tcurl nowhere.other.test / -o /dev/null -w '%{http_code}')" = 404 ] || return 1
    [ "$(tcurl hello.example.test / --http1.1 -H 'Host: app.example.test' -o /dev/null \
        -w '%{http_code}')" = 421 ]
}
check "requests through the edge (h2, h1, upload, 404, 421)" traffic
sleep 0.5 # the access line is written when the browser side lets go

t_json_lines() {
    /usr/bin/python3 - "$WORK/edge.log" <<'PY'
import json, sys
n = 0
for i, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    o = json.loads(line)
    assert isinstance(o, dict) and "time" in o and "level" in o, (i, line)
    assert "msg" in o or o.get("type") == "access", (i, line)
    n += 1
assert n > 3, n
PY
}
check "every edge log line is one JSON object" t_json_lines

t_access_lines() {
    /usr/bin/python3 - "$WORK/edge.log" "$WORK/h2.json" "$WORK/h1.json" <<'PY'
import json, re, sys
acc = [o for o in map(json.loads, open(sys.argv[1])) if o.get("type") == "access"]
def seen_id(path):
    for k, v in json.load(open(path))["headers"]:
        if k.lower() == "x-request-id":
            return v
for path in sys.argv[2:4]:
    rid = seen_id(path)
    a = [o for o in acc if o["request_id"] == rid]
    assert len(a) == 1, (rid, acc)
    a = a[0]
    assert a["hostname"] == "app.example.test", a
    assert a["method"] == "GET" and a["path"] == "/headers", a
    assert a["status"] == 200 and a["bytes_in"] == 0 and a["bytes_out"] > 0, a
    assert a["client"] == "127.0.0.1" and a["rule"] == "home", a
    assert a["duration_ms"] >= 0, a
    assert re.fullmatch("[0-9a-f]{32}", a["request_id"]), a
up = [o for o in acc if o["path"] == "/upload"]
assert len(up) == 1 and up[0]["method"] == "POST" and up[0]["bytes_in"] == 12, up
nf = [o for o in acc if o["hostname"] == "nowhere.other.test"]
assert len(nf) == 1 and nf[0]["status"] == 404 and nf[0]["rule"] == "-", nf
mis = [o for o in acc if o["status"] == 421]
assert len(mis) == 1 and mis[0]["rule"] == "-", mis
PY
}
check "one access line per request: host, method, path without query, status, bytes, id, client, rule" t_access_lines

t_no_secrets() {
    local s
    for s in "${SECRETS[@]}" "${TOKEN:20:40}" "${TOKEN: -40}"; do
        ! grep -qF -- "$s" "$WORK/edge.log" || { echo "found $s"; return 1; }
    done
}
check "no token, Authorization, Cookie or query value in the edge's log" t_no_secrets

# A second edge: text lines, access log off.
t_no_access_log() {
    local dir=$WORK/edge2 p=$((PORT_BASE + 10))
    "$BIN/edge-sim" serve --data-dir "$dir" --tunnel-addr 127.0.0.1:$((p + 1)) \
        --https-addr 127.0.0.1:$((p + 2)) --admin-addr 127.0.0.1:$((p + 3)) --no-access-log \
        >> "$WORK/edge2.log" 2>&1 &
    PIDS+=($!)
    wait_port 127.0.0.1 $((p + 2)) || return 1
    "$BIN/edge-sim" ca --data-dir "$dir" > "$WORK/ca2.pem"
    local code
    code=$(curl -sS --cacert "$WORK/ca2.pem" --resolve "x.example.test:$((p + 2)):127.0.0.1" \
        "https://x.example.test:$((p + 2))/" -o /dev/null -w '%{http_code}')
    [ "$code" = 404 ] || return 1
    sleep 0.3
    grep -q ' INF edge-sim serving' "$WORK/edge2.log" && ! grep -q ' ACC ' "$WORK/edge2.log"
}
check "--no-access-log: no access line (and text lines by default)" t_no_access_log

t_bad_format() {
    local out rc
    out=$("$BIN/edge-sim" serve --data-dir "$WORK/edge3" --log-format xml 2>&1); rc=$?
    [ $rc = 2 ] && echo "$out" | grep -q -- "--log-format must be text or json"
}
check "--log-format refuses anything but text and json" t_bad_format

finish
