#!/bin/bash
# Hostname claims between tunnels (defect 5) and probing the enrolment
# exchange (defect 13): edge-sim and connectors on 127.0.0.1, driven by curl
# and a crafted enrolment client (enroll_probe.py).
source "$(dirname "$0")/lib.sh"

start_edge
TOKEN_HOME=$(create_tunnel home)
TOKEN_INTRUDER=$(create_tunnel intruder)
start_connector "$TOKEN_HOME" --hostname '*.apps.example.test' --url hello_world \
    --hostname home.example.test --url hello_world
wait_for 20 routed x.apps.example.test || log "home's tunnel never came up"

status_is() { # host code
    [ "$(tcurl "$1" / -o /dev/null -w '%{http_code}')" = "$2" ]
}

# run_connector NAME TOKEN args...: a connector with its own state dir and
# log ($WORK/connector-NAME.log), in the background; sets CONN_PID.
run_connector() {
    local name=$1 token=$2; shift 2
    "$BIN/connector" run --token "$token" --state-dir "$WORK/state-$name" "$@" \
        >> "$WORK/connector-$name.log" 2>&1 &
    CONN_PID=$!; PIDS+=($CONN_PID)
}

t_create_warns() {
    local err
    err=$("$BIN/edge-sim" tunnel create open --data-dir "$EDGE_DIR" 2>&1 >/dev/null) || return 1
    echo "$err"
    echo "$err" | grep -q "warning: tunnel open has no --hostname: its connector may claim any hostname no other tunnel holds" &&
        echo "$err" | grep -q -- "--hostname" || return 1
    err=$("$BIN/edge-sim" tunnel create closed --hostname closed.example.test --data-dir "$EDGE_DIR" 2>&1 >/dev/null) || return 1
    ! echo "$err" | grep -q warning
}
check "defect 5: tunnel create without --hostname warns that the tunnel may claim any free hostname" t_create_warns

t_exact_under_wildcard() {
    # intruder (created without --hostname) asks for a name, and a narrower
    # wildcard, under home's *.apps.example.test: an exact name would win
    # every request for it. Both are refused, naming home; its free name is not.
    run_connector intruder "$TOKEN_INTRUDER" \
        --hostname victim.apps.example.test --url http_status:418 \
        --hostname '*.y.apps.example.test' --url http_status:418 \
        --hostname x.shared.example.test --url http_status:418
    wait_for 20 status_is x.shared.example.test 418 || { echo "intruder never came up"; return 1; }
    local log=$WORK/connector-intruder.log
    grep "refused" "$log"
    grep -q "hostname victim.apps.example.test refused by the edge: overlaps \*.apps.example.test held by tunnel home" "$log" &&
        grep -q "hostname \*.y.apps.example.test refused by the edge: overlaps \*.apps.example.test held by tunnel home" "$log" || return 1
    # home keeps its traffic.
    tcurl victim.apps.example.test / | grep -q "Hello from your tunnel" &&
        tcurl a.y.apps.example.test / | grep -q "Hello from your tunnel"
}
check "defect 5: an exact name or narrower wildcard under another tunnel's wildcard is refused with the reason" t_exact_under_wildcard

t_wildcard_over_exact() {
    # The other way round: home asks for *.shared.example.test over intruder's
    # x.shared.example.test (a second connector of home, so its first one keeps
    # serving).
    run_connector home2 "$TOKEN_HOME" \
        --hostname '*.shared.example.test' --url hello_world \
        --hostname home.example.test --url hello_world
    local log=$WORK/connector-home2.log
    wait_for 20 grep -q "refused by the edge" "$log" || { cat "$log"; return 1; }
    grep "refused" "$log"
    grep -q "hostname \*.shared.example.test refused by the edge: overlaps x.shared.example.test held by tunnel intruder" "$log" || return 1
    # Nothing moved: intruder keeps its name, the wildcard routes nowhere.
    local ok=0
    status_is x.shared.example.test 418 && status_is other.shared.example.test 404 && ok=1
    # home2 serves other names than home's first connector: stop it, or the
    # edge (which routes to any connection of a tunnel) would send it home's
    # requests too.
    kill $CONN_PID; wait $CONN_PID 2>/dev/null
    [ $ok = 1 ]
}
check "defect 5: a wildcard over another tunnel's name is refused with the reason" t_wildcard_over_exact

# craft_token TOKEN wrong_secret|unknown_id: the token with a random secret,
# or with a random tunnel id (and the same secret).
craft_token() {
    python3 - "$1" "$2" <<'PY'
import base64, json, os, sys
t = sys.argv[1]
j = json.loads(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)))
if sys.argv[2] == "wrong_secret":
    j["secret"] = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
else:
    j["tunnel_id"] = os.urandom(16).hex()
print(base64.urlsafe_b64encode(json.dumps(j).encode()).rstrip(b"=").decode())
PY
}

t_same_answer() {
    # The raw answers, from their own address so they do not count against
    # the connectors' 127.0.0.1.
    python3 "$HERE/enroll_probe.py" "$TOKEN_HOME" $TUNNEL_PORT 127.0.0.3 wrong_secret > "$WORK/ans-secret" &&
        python3 "$HERE/enroll_probe.py" "$TOKEN_HOME" $TUNNEL_PORT 127.0.0.3 unknown_id > "$WORK/ans-id" || return 1
    cat "$WORK/ans-secret" "$WORK/ans-id"
    grep -q '"ok":false' "$WORK/ans-secret" && cmp "$WORK/ans-secret" "$WORK/ans-id" || return 1
    # The real connector, given either token, exits 1 with the same words.
    local kind rc
    for kind in wrong_secret unknown_id; do
        timeout -k 10 20 "$BIN/connector" run --token "$(craft_token "$TOKEN_HOME" $kind)" \
            --hostname p.example.test --url hello_world --state-dir "$WORK/state-$kind" \
            > "$WORK/connector-$kind.log" 2>&1; rc=$?
        [ $rc = 1 ] || { echo "$kind: exit $rc"; cat "$WORK/connector-$kind.log"; return 1; }
        grep -o "enrolment refused: .*" "$WORK/connector-$kind.log" > "$WORK/refused-$kind"
    done
    cat "$WORK/refused-wrong_secret"
    [ -s "$WORK/refused-wrong_secret" ] && cmp "$WORK/refused-wrong_secret" "$WORK/refused-unknown_id" || return 1
    # The edge's own log tells the two apart.
    local id
    id=$(python3 -c 'import base64,json,sys; t=sys.argv[1]; print(json.loads(base64.urlsafe_b64decode(t+"="*(-len(t)%4)))["tunnel_id"])' "$TOKEN_HOME")
    grep -q "enrolment from 127.0.0.3 refused: wrong secret for tunnel $id" "$WORK/edge.log" &&
        grep -q "enrolment from 127.0.0.3 refused: no such tunnel" "$WORK/edge.log"
}
check "defect 13: an unknown tunnel id and a wrong secret get byte-identical enrolment answers" t_same_answer

t_rate_limited() {
    # 8 failed enrolments in a row from 127.0.0.2: the first 5 are checked and
    # refused, the rest are answered rate_limited.
    python3 "$HERE/enroll_probe.py" "$TOKEN_HOME" $TUNNEL_PORT 127.0.0.2 unknown_id 8 > "$WORK/ans-flood" || return 1
    cat "$WORK/ans-flood"
    local codes
    codes=$(python3 -c '
import json, sys
print(" ".join(json.loads(l)["code"] for l in open(sys.argv[1])))' "$WORK/ans-flood")
    echo "$codes"
    [ "$codes" = "bad_token bad_token bad_token bad_token bad_token rate_limited rate_limited rate_limited" ] || return 1
    grep -q "too many failed enrolments from 127.0.0.2" "$WORK/edge.log" || return 1
    # Connectors already enrolled keep serving, and a valid connector from
    # another address still enrols and serves.
    routed x.apps.example.test || return 1
    local tok
    tok=$(create_tunnel late --hostname late.example.test) || return 1
    run_connector late "$tok" --hostname late.example.test --url hello_world
    wait_for 20 routed late.example.test
}
check "defect 13: many failed enrolments from one address get rate_limited; a valid connector still works" t_rate_limited

t_rate_limited_is_transient() {
    # Exhaust 127.0.0.1's failures, then start a valid connector from it: it is
    # answered rate_limited, keeps retrying with backoff (no exit), and gets in
    # once the address earns a new attempt (one per 12 s).
    local tok pid
    tok=$(create_tunnel patient --hostname patient.example.test) || return 1
    python3 "$HERE/enroll_probe.py" "$TOKEN_HOME" $TUNNEL_PORT 127.0.0.1 unknown_id 6 > "$WORK/ans-local" || return 1
    grep -q rate_limited "$WORK/ans-local" || { cat "$WORK/ans-local"; return 1; }
    run_connector patient "$tok" --hostname patient.example.test --url hello_world
    pid=$CONN_PID
    wait_for 10 grep -q "rate_limited" "$WORK/connector-patient.log" || { cat "$WORK/connector-patient.log"; return 1; }
    grep "rate_limited" "$WORK/connector-patient.log" | head -n 2
    grep -q "rate_limited.*retrying in" "$WORK/connector-patient.log" && kill -0 $pid || return 1
    local t0=$SECONDS
    wait_for 60 routed patient.example.test || { tail -n 5 "$WORK/connector-patient.log"; return 1; }
    echo "enrolled $((SECONDS - t0)) s after the first refusal"
}
check "defect 13: a connector answered rate_limited retries with backoff and gets in later" t_rate_limited_is_transient

finish
