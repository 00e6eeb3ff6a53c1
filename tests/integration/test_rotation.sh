#!/bin/bash
# Rotating credentials and edge-issued certificates, the edge's side (issue 9):
# tunnel rotate-token with a grace period, short-lived enrolment certificates
# with the origin CA in the answer, renewal over the control stream (played by
# renew_client.py: the connector's side of renewal is tested elsewhere),
# origin-cert create, origin-ca and origin-pull-ca.
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3 # Debian's, which has python3-h2 and python3-cryptography
EDGE_ARGS="--cert-lifetime 1h"
start_edge
CLI() { "$BIN/edge-sim" "$@" --data-dir "$EDGE_DIR"; }
CLI origin-ca > "$WORK/origin-ca.pem" 2>>"$WORK/edge-cli.log"
CLI origin-pull-ca > "$WORK/origin-pull-ca.pem" 2>>"$WORK/edge-cli.log"
CLI_CA="$WORK/client-ca.pem"
cp "$EDGE_DIR/client-ca.pem" "$CLI_CA"

# token_field TOKEN FIELD: one field of the token's JSON.
token_field() {
    python3 -c 'import base64, json, sys
t = sys.argv[1]; print(json.loads(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)))[sys.argv[2]])' "$1" "$2"
}

# run_conn NAME TOKEN HOST: a connector with its own state dir; sets CPID_NAME.
run_conn() {
    local name=$1 token=$2 host=$3
    "$BIN/connector" run --token "$token" --state-dir "$WORK/state-$name" \
        --hostname "$host" --url hello_world >> "$WORK/connector-$name.log" 2>&1 &
    local pid=$!
    PIDS+=($pid)
    eval "CPID_$name=$pid"
}

enrolled() { [ -s "$WORK/state-$1/$2/cert.pem" ]; }
# exited_with PID STATUS: the process ended with that status.
exited_with() {
    local pid=$1 want=$2 st
    # Still running (a zombie not yet reaped has ended).
    if kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' /proc/$pid/stat 2>/dev/null)" != Z ]; then
        return 1
    fi
    wait "$pid"; st=$?
    [ "$st" = "$want" ] || { echo "exit status $st, want $want"; return 1; }
}

TOKEN1=$(create_tunnel home --hostname '*.rot.test')
ID=$(token_field "$TOKEN1" tunnel_id)
run_conn a "$TOKEN1" a.rot.test
wait_for 20 routed a.rot.test || log "connector a never came up"

# Requests through the first connector for the whole rotation, one every 0.1 s.
(
    ok=0 bad=0
    while :; do
        if routed a.rot.test; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
        echo "ok=$ok bad=$bad"
        sleep 0.1
    done
) > "$WORK/steady.log" 2>&1 &
STEADY_PID=$!; PIDS+=($STEADY_PID)

T_ROT=$(date +%s.%N)
TOKEN2=$(CLI tunnel rotate-token home --grace 6s 2>>"$WORK/edge-cli.log")

t_token_format() {
    [ -n "$TOKEN2" ] && [ "$TOKEN2" != "$TOKEN1" ] || { echo "no new token"; return 1; }
    local f
    for f in tunnel_id name server_name ca edges v; do
        [ "$(token_field "$TOKEN1" $f)" = "$(token_field "$TOKEN2" $f)" ] || { echo "$f differs"; return 1; }
    done
    [ "$(token_field "$TOKEN1" secret)" != "$(token_field "$TOKEN2" secret)" ] || { echo "same secret"; return 1; }
    grep -q "previous token keeps enrolling until" "$WORK/edge-cli.log"
}
check "rotate-token prints a new token like tunnel create's: same tunnel, new secret" t_token_format

t_old_in_grace() {
    run_conn b "$TOKEN1" b.rot.test
    wait_for 5 enrolled b "$ID" || { tail -5 "$WORK/connector-b.log"; return 1; }
    wait_for 10 routed b.rot.test || return 1
    grep -q "enrolled a connector for tunnel home .* with the previous token" "$WORK/edge.log"
}
check "the old token still enrols during --grace" t_old_in_grace

t_new_token() {
    run_conn d "$TOKEN2" d.rot.test
    wait_for 10 enrolled d "$ID" || { tail -5 "$WORK/connector-d.log"; return 1; }
    wait_for 10 routed d.rot.test
}
check "the new token enrols" t_new_token

t_old_after_grace() {
    # The grace (6 s from the rotation) is over.
    local left
    left=$(awk -v a="$T_ROT" -v b="$(date +%s.%N)" 'BEGIN { s = a + 7 - b; print (s > 0 ? s : 0) }')
    sleep "$left"
    run_conn c "$TOKEN1" c.rot.test
    wait_for 15 exited_with "$CPID_c" 1 || { echo "connector c still running"; return 1; }
    enrolled c "$ID" && { echo "enrolled"; return 1; }
    grep -q "wrong secret for tunnel $ID (answered as bad_token)" "$WORK/edge.log"
}
check "the old token is refused once --grace is over (bad_token, connector exits 1)" t_old_after_grace

t_running_kept_working() {
    routed a.rot.test && routed b.rot.test || return 1
    kill "$STEADY_PID"; wait "$STEADY_PID" 2>/dev/null
    local last
    last=$(tail -n 1 "$WORK/steady.log")
    echo "$last"
    [[ "$last" == ok=* ]] && [[ "$last" == *" bad=0" ]] && [ "${last#ok=}" != "0 bad=0" ]
}
check "connectors already running keep serving across the rotation (no failed request)" t_running_kept_working

t_zero_grace() {
    local t1 t2
    t1=$(create_tunnel zero --hostname '*.zero.test')
    t2=$(CLI tunnel rotate-token zero 2>>"$WORK/edge-cli.log") || return 1
    grep -q "previous token no longer enrols" "$WORK/edge-cli.log" || return 1
    run_conn z1 "$t1" x.zero.test
    wait_for 15 exited_with "$CPID_z1" 1 || { echo "old token still running"; return 1; }
    run_conn z2 "$t2" y.zero.test
    wait_for 10 routed y.zero.test
}
check "without --grace the old token stops at once, the new one works" t_zero_grace

t_rotate_errors() {
    CLI tunnel rotate-token nobody 2>&1 | grep -q "no tunnel named nobody" || return 1
    CLI tunnel rotate-token home --grace 1w 2>/dev/null; [ $? = 2 ] || return 1
    CLI tunnel create other --grace 1h 2>/dev/null; [ $? = 2 ]
}
check "rotate-token: unknown tunnel, bad --grace, --grace elsewhere refused" t_rotate_errors

# ---- enrolment and renewal, the edge's side ----

# A tunnel enrolled by renew_client.py, for the checks below (whichever run).
PROBE_TOKEN=$(create_tunnel probe --hostname probe.test)
$PY "$HERE/renew_client.py" enroll "$PROBE_TOKEN" "$WORK/probe" > "$WORK/probe.out" 2>&1

t_enrol_lifetime_and_origin_ca() {
    local nb na
    [ "$(cat "$WORK/probe.out")" = "ok origin_ca" ] || { cat "$WORK/probe.out"; return 1; }
    cmp "$WORK/probe/origin-ca.pem" "$WORK/origin-ca.pem" || return 1
    nb=$(date -d "$(openssl x509 -in "$WORK/probe/cert.pem" -noout -startdate | cut -d= -f2)" +%s)
    na=$(date -d "$(openssl x509 -in "$WORK/probe/cert.pem" -noout -enddate | cut -d= -f2)" +%s)
    # --cert-lifetime 1h, from 60 s before now.
    [ $((na - nb)) = 3660 ] || { echo "lifetime $((na - nb))"; return 1; }
    [ $((na - $(date +%s))) -le 3600 ] && [ $((na - $(date +%s))) -ge 3590 ] || return 1
    openssl verify -CAfile "$CLI_CA" "$WORK/probe/cert.pem" >/dev/null || return 1
    grep -q "tunnel probe: issued a certificate (kind tunnel, enrolment), valid until" "$WORK/edge.log"
}
check "enrolment: the certificate lasts --cert-lifetime (from now-60s); the answer carries origin_ca" \
    t_enrol_lifetime_and_origin_ca

PROBE_ID=$(openssl x509 -in "$WORK/probe/cert.pem" -noout -subject 2>/dev/null | sed 's/.*CN = //')

t_renew() {
    local out
    out=$($PY "$HERE/renew_client.py" link $TUNNEL_PORT "$WORK/probe/cert.pem" "$WORK/probe/key.pem" \
        probe.test "$WORK/probe" tunnel tunnel pull) || { echo "$out"; return 1; }
    echo "$out"
    [ "$out" = "registered
origin_ca
renewed tunnel 1
error renew_failed too frequent permanent=False reason=too_frequent
renewed origin_pull 3
link up" ] || return 1
    cmp "$WORK/probe/origin-ca-link.pem" "$WORK/origin-ca.pem" || return 1
    # The renewed tunnel certificate: client-ca, CN = tunnel id, the same key, 1 h.
    local c=$WORK/probe/tunnel.1.pem
    openssl verify -CAfile "$CLI_CA" -purpose sslclient "$c" >/dev/null || return 1
    openssl x509 -in "$c" -noout -subject | grep -q "CN = $PROBE_ID" || return 1
    [ "$(openssl x509 -in "$c" -noout -pubkey)" = "$(openssl pkey -in "$WORK/probe/key.pem" -pubout)" ] || return 1
    # The origin-pull certificate: origin-pull-ca, SAN URI tunnel:<id>, clientAuth, its own key.
    c=$WORK/probe/origin_pull.3.pem
    openssl verify -CAfile "$WORK/origin-pull-ca.pem" -purpose sslclient "$c" >/dev/null || return 1
    openssl verify -CAfile "$CLI_CA" "$c" >/dev/null 2>&1 && { echo "origin-pull cert under client-ca"; return 1; }
    openssl x509 -in "$c" -noout -ext subjectAltName | grep -q "URI:tunnel:$PROBE_ID" || return 1
    openssl x509 -in "$c" -noout -ext extendedKeyUsage | grep -q "TLS Web Client Authentication" || return 1
    [ "$(openssl x509 -in "$c" -noout -pubkey)" = "$(openssl pkey -in "$WORK/probe/origin-pull.key" -pubout)" ] || return 1
    grep -q "tunnel probe: issued a certificate (kind origin_pull, renewal on connection" "$WORK/edge.log"
}
check "renew: tunnel and origin_pull certificates, one per kind per 5 s, the link stays up" t_renew

t_renewed_cert_connects() {
    local out
    out=$($PY "$HERE/renew_client.py" link $TUNNEL_PORT "$WORK/probe/tunnel.1.pem" "$WORK/probe/key.pem" \
        probe.test "$WORK/probe" sleep:0) || { echo "$out"; return 1; }
    echo "$out" | grep -q "^registered$"
}
check "a renewed tunnel certificate is accepted by the tunnel port" t_renewed_cert_connects

t_renew_refusals() {
    local out
    out=$($PY "$HERE/renew_client.py" link $TUNNEL_PORT "$WORK/probe/cert.pem" "$WORK/probe/key.pem" \
        probe.test "$WORK/probe" p384 sleep:5.2 tunnel) || { echo "$out"; return 1; }
    echo "$out"
    echo "$out" | grep -q "^error renew_failed not a P-256 public key permanent=False reason=bad_key$" &&
    echo "$out" | grep -q "^renewed tunnel 2$" && echo "$out" | grep -q "^link up$"
}
check "renew: a P-384 key is refused with its reason (not permanent); after 5 s renewals work again" \
    t_renew_refusals

# ---- origin certificates ----

t_renew_after_rotation() {
    # Defect 9.2 (review): renewals only checked that the tunnel existed, so
    # whoever enrolled with a leaked token kept renewing after the rotation.
    local tok out
    tok=$(create_tunnel probe2 --hostname probe2.test)
    $PY "$HERE/renew_client.py" enroll "$tok" "$WORK/probe2" > /dev/null 2>&1 || return 1
    "$BIN/edge-sim" tunnel rotate-token probe2 --data-dir "$EDGE_DIR" > "$WORK/probe2.token" 2>/dev/null || return 1
    out=$($PY "$HERE/renew_client.py" link $TUNNEL_PORT "$WORK/probe2/cert.pem" "$WORK/probe2/key.pem" \
        probe2.test "$WORK/probe2" tunnel)
    echo "$out"
    echo "$out" | grep -q "^error renew_failed this connector enrolled with a token that has been replaced.* reason=token_replaced$" || return 1
    # Enrolled with the new token, the line renews (at once: defect 9.6).
    $PY "$HERE/renew_client.py" enroll "$(cat "$WORK/probe2.token")" "$WORK/probe3" > /dev/null 2>&1 || return 1
    out=$($PY "$HERE/renew_client.py" link $TUNNEL_PORT "$WORK/probe3/cert.pem" "$WORK/probe3/key.pem" \
        probe2.test "$WORK/probe3" tunnel)
    echo "$out"
    echo "$out" | grep -q "^renewed tunnel"
}
check "defect 9.2: after a rotation's grace, a connector enrolled with the old token cannot renew" t_renew_after_rotation

t_old_token_in_grace_stops_renewing() {
    # Defect 9.4 (audit): an enrolment with the old token during the grace
    # was stamped like any other, so its line renewed after the grace as if
    # it had begun with the new token: rotating a leaked token evicted
    # nobody who enrolled with it in the grace. Now its certificate says it
    # began with the previous generation.
    local tok out
    tok=$(create_tunnel probe4 --hostname probe4.test)
    CLI tunnel rotate-token probe4 --grace 4s > "$WORK/probe4.token" 2>/dev/null || return 1
    $PY "$HERE/renew_client.py" enroll "$tok" "$WORK/probe4" > /dev/null 2>&1 || { echo "old token refused in the grace"; return 1; }
    openssl x509 -in "$WORK/probe4/cert.pem" -noout -subject | grep -q "OU = enrolled [0-9]* rotation 0" || return 1
    $PY "$HERE/renew_client.py" enroll "$(cat "$WORK/probe4.token")" "$WORK/probe4new" > /dev/null 2>&1 || return 1
    openssl x509 -in "$WORK/probe4new/cert.pem" -noout -subject | grep -q "OU = enrolled [0-9]* rotation 1" || return 1
    # In the grace it renews (and the renewal keeps its generation); after, not.
    out=$($PY "$HERE/renew_client.py" link $TUNNEL_PORT "$WORK/probe4/cert.pem" "$WORK/probe4/key.pem" \
        probe4.test "$WORK/probe4" tunnel sleep:5.5 tunnel)
    echo "$out"
    echo "$out" | grep -q "^renewed tunnel 1$" || return 1
    openssl x509 -in "$WORK/probe4/tunnel.1.pem" -noout -subject | grep -q "OU = enrolled [0-9]* rotation 0" || return 1
    echo "$out" | grep -q "^error renew_failed this connector enrolled with a token that has been replaced.* reason=token_replaced$" || return 1
    # The new token's line renews after the grace.
    out=$($PY "$HERE/renew_client.py" link $TUNNEL_PORT "$WORK/probe4new/cert.pem" "$WORK/probe4new/key.pem" \
        probe4.test "$WORK/probe4new" tunnel)
    echo "$out"
    echo "$out" | grep -q "^renewed tunnel 1$"
}
check "defect 9.4 old-token enrolment in the grace keeps renewing: it renews only while the old token enrols" \
    t_old_token_in_grace_stops_renewing

t_new_token_same_second() {
    # Defect 9.6 (audit): the edge compared whole seconds, so an enrolment
    # with the new token in the rotation's own second counted as one with
    # the old: its renewals were refused. Rotate and enrol at once, three
    # times: each enrolment's line renews.
    local i tok out
    create_tunnel probe5 --hostname probe5.test > /dev/null || return 1
    for i in 1 2 3; do
        tok=$(CLI tunnel rotate-token probe5 2>/dev/null) || return 1
        $PY "$HERE/renew_client.py" enroll "$tok" "$WORK/probe5.$i" > /dev/null 2>&1 || return 1
        out=$($PY "$HERE/renew_client.py" link $TUNNEL_PORT "$WORK/probe5.$i/cert.pem" "$WORK/probe5.$i/key.pem" \
            probe5.test "$WORK/probe5.$i" tunnel)
        echo "$i: $out" | tr '\n' ' '; echo
        echo "$out" | grep -q "^renewed tunnel 1$" || return 1
        openssl x509 -in "$WORK/probe5.$i/cert.pem" -noout -subject | grep -q "OU = enrolled [0-9]* rotation $i" || return 1
    done
}
check "defect 9.6 new-token enrolment in the rotation's second: rotate, enrol at once, it renews" t_new_token_same_second

# A second edge whose certificates last 10 s (started once, for the checks below).
EDGE2_DIR=$WORK/edge2 EDGE2_PORT=$((PORT_BASE + 19))
edge2_up() {
    [ -n "${EDGE2_PID:-}" ] && kill -0 "$EDGE2_PID" 2>/dev/null && return 0
    "$BIN/edge-sim" serve --data-dir "$EDGE2_DIR" --tunnel-addr 127.0.0.1:$EDGE2_PORT \
        --https-addr 127.0.0.1:$((EDGE2_PORT + 1)) --admin-addr 127.0.0.1:$((EDGE2_PORT + 2)) \
        --cert-lifetime 10s >> "$WORK/edge2.log" 2>&1 &
    EDGE2_PID=$!; PIDS+=($EDGE2_PID)
    wait_port 127.0.0.1 $EDGE2_PORT && wait_port 127.0.0.1 $((EDGE2_PORT + 1)) || return 1
    "$BIN/edge-sim" ca --data-dir "$EDGE2_DIR" > "$WORK/edge2-ca.pem"
}
CLI2() { "$BIN/edge-sim" "$@" --data-dir "$EDGE2_DIR"; }
routed2() { # host: a request through the second edge returns 200
    [ "$(curl -sS --cacert "$WORK/edge2-ca.pem" --resolve "$1:$((EDGE2_PORT + 1)):127.0.0.1" \
        "https://$1:$((EDGE2_PORT + 1))/" -o /dev/null -w '%{http_code}')" = 200 ]
}
# run_conn2 NAME TOKEN HOST: a connector of the second edge; sets CPID_NAME.
run_conn2() {
    local name=$1 token=$2 host=$3
    "$BIN/connector" run --token "$token" --state-dir "$WORK/state2-$name" \
        --hostname "$host" --url hello_world >> "$WORK/connector2-$name.log" 2>&1 &
    local pid=$!
    PIDS+=($pid)
    eval "CPID_$name=$pid"
}
# steady2 HOST LOG: requests to HOST through the second edge, one every 0.1 s,
# counted in LOG ("ok=N bad=M" per line); sets STEADY2_PID.
steady2() {
    (
        ok=0 bad=0
        while :; do
            if routed2 "$1"; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
            echo "ok=$ok bad=$bad"
            sleep 0.1
        done
    ) > "$2" 2>&1 &
    STEADY2_PID=$!; PIDS+=($STEADY2_PID)
}
steady2_stop() { # LOG: stops the requests; true if some went and none failed
    kill "$STEADY2_PID" 2>/dev/null; wait "$STEADY2_PID" 2>/dev/null
    local last
    last=$(tail -n 1 "$1")
    echo "requests: $last"
    [[ "$last" == ok=* ]] && [[ "$last" == *" bad=0" ]] && [ "${last#ok=}" != "0 bad=0" ]
}

t_renew_expired_link() {
    # Defect 9.2 (review): a connection kept open renewed past its own
    # certificate's expiry. Defect 9.5 (audit): and nothing closed it once
    # that certificate had run out. Now the edge says so (cert_expired, not
    # permanent) and closes it as its certificate ends (10 s here).
    local tok out t
    edge2_up || return 1
    tok=$(CLI2 tunnel create short --hostname short.test 2>/dev/null)
    $PY "$HERE/renew_client.py" enroll "$tok" "$WORK/short" > /dev/null 2>&1 || return 1
    out=$($PY "$HERE/renew_client.py" link $EDGE2_PORT "$WORK/short/cert.pem" "$WORK/short/key.pem" \
        short.test "$WORK/short" watch:20)
    echo "$out"
    echo "$out" | grep -q "^error cert_expired this connection's tunnel certificate has expired and was not renewed: reconnect (or enrol again) permanent=False$" || return 1
    t=$(echo "$out" | sed -n 's/^edge closed the connection after \([0-9.]*\) s$/\1/p')
    [ -n "$t" ] && awk -v t="$t" 'BEGIN { exit !(t >= 8 && t <= 11) }' || { echo "closed after ${t:-never} s"; return 1; }
    grep -q "tunnel [0-9a-f]*: connection [0-9a-f]*: its certificate expired at .* and was not renewed; closing it" "$WORK/edge2.log"
}
check "defect 9.5 a link whose certificate has run out stays open: told cert_expired and closed as it ends (9.2: it cannot renew)" \
    t_renew_expired_link

t_old_link_cut_new_serves() {
    # Defect 9.5 (audit), with real connectors and 10 s certificates: a
    # connector enrolled before a rotation (grace 0) cannot renew; its
    # connections are cut soon after its certificate ends, and it exits
    # (its token is refused). The connector with the new token renews and
    # serves throughout, no request failing, none of its connections cut.
    local t1 t2 t0
    edge2_up || return 1
    t1=$(CLI2 tunnel create cut --hostname '*.cut.test' 2>/dev/null)
    t0=$(date +%s.%N)
    run_conn2 old "$t1" a.cut.test
    wait_for 10 routed2 a.cut.test || { echo "the old connector never came up"; return 1; }
    t2=$(CLI2 tunnel rotate-token cut 2>/dev/null) || return 1
    run_conn2 new "$t2" b.cut.test
    wait_for 10 routed2 b.cut.test || { echo "the new connector never came up"; return 1; }
    steady2 b.cut.test "$WORK/steady2.log"
    # The old one: refused renewal, tries its token at once, cut, exits 1.
    wait_for 25 exited_with "$CPID_old" 1 || { echo "the old connector still runs"; tail -n 5 "$WORK/connector2-old.log"; return 1; }
    echo "the old connector exited after $(elapsed "$t0") s"
    routed2 a.cut.test && { echo "a.cut.test still served"; return 1; }
    grep -q "certificate renewal refused: this connector enrolled with a token that has been replaced" "$WORK/connector2-old.log" || return 1
    # Cut within a second of its certificate's end.
    local until cut
    until=$(sed -n 's/.*enrolled with the edge; certificate stored in .*, valid until \(.*\)$/\1/p' "$WORK/connector2-old.log" | head -n 1)
    cut=$(grep -m1 "edge reports: this connection's tunnel certificate has expired and was not renewed.*(cert_expired)" "$WORK/connector2-old.log" | cut -d' ' -f1)
    [ -n "$until" ] && [ -n "$cut" ] || { echo "no expiry ($until) or no cut ($cut)"; return 1; }
    echo "certificate until $until, cut at $cut"
    awk -v d="$(( $(date -d "$cut" +%s%3N) - $(date -d "$until" +%s%3N) ))" 'BEGIN { exit !(d >= 0 && d <= 1000) }' || return 1
    # The new one: two renewals at least while the old one went, and on.
    wait_for 20 bash -c "[ \$(grep -c 'renewed the tunnel certificate' '$WORK/connector2-new.log') -ge 2 ]" || { echo "the new connector did not renew twice"; return 1; }
    steady2_stop "$WORK/steady2.log" || return 1
    kill -0 "$CPID_new" || return 1
    ! grep -E "cert_expired|lost:|going away|renewal (failed|refused)" "$WORK/connector2-new.log"
}
check "defect 9.5 a link enrolled before a rotation is cut once its certificate ends; the new token's connector serves on" \
    t_old_link_cut_new_serves

t_reenrol_with_new_token() {
    # Defect 9.8 (audit): a connector refused renewal because its token was
    # replaced retried every 60 s until its certificate expired. Given the
    # new token (a restart, keeping its state dir and certificate from the
    # old one), it now enrols with it as soon as the edge refuses, replaces
    # its connections, and serves on without a failed request.
    local t1 t2
    edge2_up || return 1
    t1=$(CLI2 tunnel create swap --hostname '*.swap.test' 2>/dev/null)
    run_conn2 swap "$t1" a.swap.test
    wait_for 10 routed2 a.swap.test || { echo "never came up"; return 1; }
    t2=$(CLI2 tunnel rotate-token swap 2>/dev/null) || return 1
    kill "$CPID_swap"; wait "$CPID_swap" 2>/dev/null
    run_conn2 swap "$t2" a.swap.test
    wait_for 10 routed2 a.swap.test || { echo "never came back"; return 1; }
    steady2 a.swap.test "$WORK/steady2-swap.log"
    wait_for 20 grep -q "replacing [0-9]* connection(s) that present the previous certificate" "$WORK/connector2-swap.log" || { tail -n 8 "$WORK/connector2-swap.log"; return 1; }
    # Its new line renews (10 s certificates: due after 6.7 s).
    wait_for 15 grep -q "renewed the tunnel certificate" "$WORK/connector2-swap.log" || { tail -n 8 "$WORK/connector2-swap.log"; return 1; }
    steady2_stop "$WORK/steady2-swap.log" || return 1
    kill -0 "$CPID_swap" || return 1
    grep -q "certificate renewal refused: .*enrolling again with this connector's token" "$WORK/connector2-swap.log" &&
        [ "$(grep -c "enrolled with the edge; certificate stored" "$WORK/connector2-swap.log")" = 2 ] &&
        ! grep -q "certificate renewal failed" "$WORK/connector2-swap.log"
}
check "defect 9.8 a connector refused renewal for a replaced token enrols at once with its new token and serves on" \
    t_reenrol_with_new_token

t_reenrol_backoff() {
    # Defect 9.3 (review): a certificate refused right after a fresh
    # enrolment sent the connector straight back to enrol: a loop (29
    # enrolments in 10 s). Now the enrolment backoff applies.
    local rport=$((PORT_BASE + 22)) tok before after
    tok=$(create_tunnel rejected --hostname '*.rej.test')
    $PY "$HERE/cert_rejecter.py" $rport $TUNNEL_PORT "$EDGE_DIR" "$WORK/origin-ca.pem" >> "$WORK/rejecter.log" 2>&1 &
    PIDS+=($!)
    wait_port 127.0.0.1 $rport || return 1
    before=$(grep -c "enrolled a connector for tunnel rejected" "$WORK/edge.log")
    "$BIN/connector" run --token "$tok" --state-dir "$WORK/state-rej" --edge 127.0.0.1:$rport \
        --hostname a.rej.test --url hello_world >> "$WORK/connector-rej.log" 2>&1 &
    local pid=$!
    PIDS+=($pid)
    sleep 8
    kill $pid 2>/dev/null
    after=$(grep -c "enrolled a connector for tunnel rejected" "$WORK/edge.log")
    echo "enrolments in 8 s: $((after - before))"
    [ $((after - before)) -ge 2 ] && [ $((after - before)) -le 8 ] # the loop made about 23
}
check "defect 9.3: a connector whose fresh certificates are refused re-enrols with backoff, not in a loop" t_reenrol_backoff

t_origin_cert() {
    CLI origin-cert create --hostname HA.local --hostname '*.home.lan' --hostname 127.0.0.1 \
        --out "$WORK/oc" 2>>"$WORK/edge-cli.log" || return 1
    local c=$WORK/oc/ha.local.pem k=$WORK/oc/ha.local.key na
    [ "$(stat -c %a "$k")" = 600 ] || return 1
    openssl verify -CAfile "$WORK/origin-ca.pem" -purpose sslserver "$c" >/dev/null || return 1
    openssl x509 -in "$c" -noout -issuer | grep -q "CN = edge-sim origin CA" || return 1
    openssl x509 -in "$c" -noout -ext subjectAltName | tr -d ' \n' |
        grep -q "DNS:ha.local,DNS:\*.home.lan,IPAddress:127.0.0.1" || return 1
    [ "$(openssl x509 -in "$c" -noout -pubkey)" = "$(openssl pkey -in "$k" -pubout)" ] || return 1
    # 15 years: 5479 days from now.
    na=$(date -d "$(openssl x509 -in "$c" -noout -enddate | cut -d= -f2)" +%s)
    [ $(( (na - $(date +%s)) / 86400 )) = 5478 ] || [ $(( (na - $(date +%s)) / 86400 )) = 5479 ] ||
        { echo "days: $(( (na - $(date +%s)) / 86400 ))"; return 1; }
    # Only PEM certificate blocks in the .pem.
    [ "$(grep -c BEGIN "$c")" = 1 ] && grep -q "BEGIN CERTIFICATE" "$c"
}
check "origin-cert create: SANs, 15 years, issued by the origin CA, key 0600" t_origin_cert

t_origin_ca_outlives() {
    # Defect 9.1 (review): the origin CA lived 10 years, its certificates 15.
    local f=$WORK/oc/ha.local.pem
    [ -f "$f" ] || CLI origin-cert create --hostname ha.local --out "$WORK/oc" 2>>"$WORK/edge-cli.log" || return 1
    openssl verify -attime $(( $(date +%s) + 14 * 365 * 86400 + 300 * 86400 )) -CAfile "$WORK/origin-ca.pem" "$f"
}
check "defect 9.1: the origin CA outlives a 15-year origin certificate (verifies 14.8 years from now)" t_origin_ca_outlives

t_origin_cert_csr() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/own.key" \
        -subj /CN=ignored -out "$WORK/own.csr" 2>/dev/null || return 1
    CLI origin-cert create --hostname ha.local --csr "$WORK/own.csr" --days 30 --out "$WORK/oc2" \
        2>>"$WORK/edge-cli.log" || return 1
    [ -s "$WORK/oc2/ha.local.pem" ] && [ ! -e "$WORK/oc2/ha.local.key" ] || return 1
    [ "$(openssl x509 -in "$WORK/oc2/ha.local.pem" -noout -pubkey)" = "$(openssl pkey -in "$WORK/own.key" -pubout)" ] || return 1
    openssl verify -CAfile "$WORK/origin-ca.pem" "$WORK/oc2/ha.local.pem" >/dev/null || return 1
    openssl x509 -in "$WORK/oc2/ha.local.pem" -noout -checkend $((31 * 86400)) >/dev/null && return 1
    # An RSA request and a file that is no request: refused, nothing written.
    openssl req -new -newkey rsa:2048 -nodes -keyout "$WORK/rsa.key" -subj /CN=x -out "$WORK/rsa.csr" 2>/dev/null
    CLI origin-cert create --hostname a.test --csr "$WORK/rsa.csr" --out "$WORK/oc3" 2>&1 | grep -q "P-256" || return 1
    echo junk > "$WORK/junk.csr"
    CLI origin-cert create --hostname a.test --csr "$WORK/junk.csr" --out "$WORK/oc3" 2>/dev/null && return 1
    [ ! -e "$WORK/oc3" ]
}
check "origin-cert create --csr: the request's key, no key file written; RSA and junk refused" t_origin_cert_csr

t_origin_cert_usage() {
    CLI origin-cert create --out "$WORK/x" 2>/dev/null; [ $? = 2 ] || return 1
    CLI origin-cert create --hostname 'bad name' --out "$WORK/x" 2>/dev/null; [ $? = 2 ] || return 1
    CLI origin-cert create --hostname a.test --out "$WORK/x" --days 0 2>/dev/null; [ $? = 2 ] || return 1
    CLI origin-cert create --hostname a.test 2>/dev/null; [ $? = 2 ] || return 1
    [ ! -e "$WORK/x" ]
}
check "origin-cert create: usage errors exit 2" t_origin_cert_usage

t_pull_ca() {
    openssl x509 -in "$WORK/origin-pull-ca.pem" -noout -subject | grep -q "CN = edge-sim origin-pull CA" || return 1
    openssl x509 -in "$WORK/origin-pull-ca.pem" -noout -ext basicConstraints | grep -q "CA:TRUE" || return 1
    openssl x509 -in "$WORK/origin-ca.pem" -noout -subject | grep -q "CN = edge-sim origin CA" || return 1
    # Stable: printed again, the same CA.
    CLI origin-pull-ca 2>/dev/null | cmp - "$WORK/origin-pull-ca.pem"
}
check "origin-pull-ca and origin-ca print the edge's CAs" t_pull_ca

t_protocol_doc_matches() {
    # Defect 9.7 (audit): docs/protocol.md lacked the certificate's OU line,
    # said rotation touched no certificate, listed no renew_failed reasons,
    # and gave every CA 3650 days. What this edge did in the checks above is
    # what the document says.
    local doc=$HERE/../../docs/protocol.md r msg days ca
    [ -f "$doc" ] || { echo "no $doc"; return 1; }
    # Every reason the codec names is listed (protocol 6.4).
    for r in $(sed -n 's/^#define PX_CTL_RENEW_[A-Z_]* "\([a-z_]*\)".*/\1/p' "$HERE/../../proto/px_control.h"); do
        grep -qF "| \`$r\` |" "$doc" || { echo "reason $r not in protocol.md"; return 1; }
    done
    # Every renewal refusal the edges logged here, word for word.
    grep -ho "certificate renewal for connection [0-9a-f]* refused: .*" "$WORK"/edge*.log |
        sed 's/^certificate renewal for connection [0-9a-f]* refused: //' | sort -u > "$WORK/refusals.txt"
    [ -s "$WORK/refusals.txt" ] || { echo "no refusal logged"; return 1; }
    while IFS= read -r msg; do
        grep -qF "$msg" "$doc" || { echo "refusal not in protocol.md: $msg"; return 1; }
    done < "$WORK/refusals.txt"
    msg=$(grep -ho "edge reports: .* (cert_expired)" "$WORK"/connector2-old.log | head -n 1 | sed 's/^edge reports: //; s/ (cert_expired)$//')
    [ -n "$msg" ] && grep -qF "$msg" "$doc" || { echo "cert_expired message not in protocol.md: $msg"; return 1; }
    # The OU line, as issued.
    openssl x509 -in "$WORK/probe4/cert.pem" -noout -subject | grep -q "OU = enrolled [0-9]* rotation 0" &&
        grep -qF 'OU=enrolled <T> rotation <G>' "$doc" || { echo "OU line"; return 1; }
    # CA validities, as created (notBefore is a day before that).
    for ca in origin-ca:36866 origin-pull-ca:36866 client-ca:3650 server-ca:3650; do
        days=$(( ($(date -d "$(openssl x509 -in "$EDGE_DIR/${ca%%:*}.pem" -noout -enddate | cut -d= -f2)" +%s) -
            $(date -d "$(openssl x509 -in "$EDGE_DIR/${ca%%:*}.pem" -noout -startdate | cut -d= -f2)" +%s)) / 86400 - 1 ))
        [ "$days" = "${ca#*:}" ] || { echo "${ca%%:*} lasts $days days"; return 1; }
    done
    tr '\n' ' ' < "$doc" | grep -q "valid 3650 days, except .origin-ca. and .origin-pull-ca.: 36866 days"
}
check "defect 9.7 protocol.md matches the code: the OU line, renew_failed reasons and messages, CA validities" \
    t_protocol_doc_matches

# ---- deletion still cuts everything ----

t_delete_cuts() {
    routed a.rot.test && routed d.rot.test || return 1
    local t0 cut=""
    t0=$(date +%s.%N)
    CLI tunnel delete home 2>>"$WORK/edge-cli.log" || return 1
    local i
    for i in $(seq 1 30); do
        if ! routed a.rot.test && ! routed b.rot.test && ! routed d.rot.test; then cut=$(elapsed "$t0"); break; fi
        sleep 0.05
    done
    echo "cut after ${cut:-never} s"
    [ -n "$cut" ] && awk -v c="$cut" 'BEGIN { exit !(c <= 1.0) }' || return 1
    # Every connector of the tunnel is told (tunnel_deleted, permanent) and exits 1.
    wait_for 10 exited_with "$CPID_a" 1 && wait_for 10 exited_with "$CPID_b" 1 &&
        wait_for 10 exited_with "$CPID_d" 1
}
check "deleting the tunnel cuts every connector, old token's and new's, within a second" t_delete_cuts

finish
