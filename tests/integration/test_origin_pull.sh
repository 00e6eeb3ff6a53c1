#!/bin/bash
# Issue 9 with real origins: Caddy from Debian configured as the README says
# (the edge-issued origin certificate with `tls`, client_auth
# require_and_verify with the edge's origin-pull CA), nginx pinning one
# tunnel by its certificate's name, and tunnel credentials that live 20 s:
# renewal while traffic flows, re-enrolment after being offline past expiry.
# Token rotation is in test_rotation.sh.
#
# Timeline (the renewal part dominates): tunnel A carries traffic to Caddy
# from the moment it is up until both of its certificates have renewed
# twice (~30 s); meanwhile tunnel B is checked, stopped, left offline past
# its certificate's expiry and started again.
source "$(dirname "$0")/lib.sh"
source "$HERE/origins.sh"

LIFETIME=20 # seconds; edge-sim's minimum is 10
EDGE_ARGS="--cert-lifetime ${LIFETIME}s" start_edge
es() { "$BIN/edge-sim" "$@" --data-dir "$EDGE_DIR"; }

TOKEN_A=$(create_tunnel home --hostname '*.a.example.test')
TOKEN_B=$(create_tunnel other --hostname '*.b.example.test')
ID_A=$(tunnel_id_of "$TOKEN_A")
ID_B=$(tunnel_id_of "$TOKEN_B")
STATE=$WORK/state
OC=$WORK/origin-cert # what `origin-cert create --out` writes, installed in Caddy and nginx
es origin-ca > "$WORK/origin-ca.pem" 2>>"$WORK/edge-cli.log" || log "edge-sim origin-ca failed"
es origin-pull-ca > "$WORK/pull-ca.pem" 2>>"$WORK/edge-cli.log" || log "edge-sim origin-pull-ca failed"
es origin-cert create --hostname ha.local --out "$OC" > "$WORK/origin-cert.out" 2>&1 ||
    log "edge-sim origin-cert create failed: $(cat "$WORK/origin-cert.out")"

start_caddy "$OC/ha.local.pem" "$OC/ha.local.key" "$WORK/pull-ca.pem" || log "Caddy did not start"
start_nginx_pinned "$OC/ha.local.pem" "$OC/ha.local.key" "$WORK/pull-ca.pem" "$ID_A" ||
    log "nginx did not start"

# start_conn NAME TOKEN args...: a connector logging to $WORK/conn-NAME.log;
# sets CONN_PID. Tunnels A and B share the state dir (one subdir per tunnel).
start_conn() {
    local name=$1 token=$2; shift 2
    "$BIN/connector" run --token "$token" --state-dir "$STATE" --grace-period 1 "$@" \
        >> "$WORK/conn-$name.log" 2>&1 &
    CONN_PID=$!; PIDS+=($CONN_PID)
}
stop_conn() { # pid: SIGTERM and wait for the exit
    kill "$1" 2>/dev/null
    wait_for 10 bash -c "! kill -0 $1" || { echo "connector $1 did not stop"; return 1; }
    wait "$1" 2>/dev/null
    return 0
}

CADDY=https://127.0.0.1:$CADDY_PORT
cat > "$WORK/a.json" <<JSON
{
  "ingress": [
    { "hostname": "caddy.a.example.test", "service": "$CADDY",
      "originRequest": { "originServerName": "ha.local", "httpHostHeader": "ha.local", "originPull": true } },
    { "hostname": "nopull.a.example.test", "service": "$CADDY",
      "originRequest": { "originServerName": "ha.local", "httpHostHeader": "ha.local" } },
    { "hostname": "pinned.a.example.test", "service": "https://127.0.0.1:$NGINX_PIN_PORT",
      "originRequest": { "originServerName": "ha.local", "originPull": true } },
    { "service": "http_status:404" }
  ]
}
JSON
start_conn a "$TOKEN_A" --config "$WORK/a.json"; CONN_A=$CONN_PID
# B uses the --url shorthand with --origin-pull.
start_conn b "$TOKEN_B" --hostname caddy.b.example.test --url "$CADDY" \
    --hostname pinned.b.example.test --url "https://127.0.0.1:$NGINX_PIN_PORT" \
    --origin-server-name ha.local --http-host-header ha.local --origin-pull
CONN_B=$CONN_PID
# 200 from Caddy needs the origin-pull certificate, which comes after the link.
wait_for 20 routed caddy.a.example.test || log "tunnel A never reached Caddy"
cp "$STATE/$ID_A/cert.pem" "$WORK/a-cert0.pem" 2>/dev/null
cp "$STATE/$ID_A/origin-pull.pem" "$WORK/a-pull0.pem" 2>/dev/null

# Traffic for the renewal check, from now until $WORK/traffic.stop (or 75 s):
# one request per 100 ms (keep-alive to the edge) to Caddy's /fresh through an
# originPull rule, so a new TLS handshake with Caddy each time.
renewals() { # kind: how many renewals conn-a.log shows
    grep -c "renewed the $1 certificate" "$WORK/conn-a.log"
}
RENEWALS_BEFORE_TRAFFIC=$(($(renewals tunnel) + $(renewals origin-pull)))
python3 "$HERE/steady_client.py" "$WORK/ca.pem" caddy.a.example.test $HTTPS_PORT /fresh \
    "$WORK/traffic.log" "$WORK/traffic.stop" 0.1 75 >> "$WORK/traffic.err" 2>&1 &
TRAFFIC_PID=$!; PIDS+=($TRAFFIC_PID)

# --- the edge's certificates ---------------------------------------------

t_origin_cert_create() {
    local crt=$OC/ha.local.pem key=$OC/ha.local.key now left
    cat "$WORK/origin-cert.out"
    ls -l "$OC" || return 1
    [ "$(grep -c 'BEGIN CERTIFICATE' "$crt")" = 1 ] || { echo "not exactly one certificate"; return 1; }
    openssl verify -CAfile "$WORK/origin-ca.pem" -purpose sslserver "$crt" || return 1
    openssl x509 -in "$crt" -noout -ext subjectAltName | grep -q 'DNS:ha.local' || return 1
    [ "$(stat -c %a "$key")" = 600 ] || { echo "key mode $(stat -c %a "$key")"; return 1; }
    [ "$(openssl pkey -in "$key" -pubout | sha256sum)" = "$(openssl x509 -in "$crt" -noout -pubkey | sha256sum)" ] ||
        { echo "key does not match the certificate"; return 1; }
    now=$(date +%s); left=$(($(cert_field "$crt" enddate) - now))
    echo "valid for $((left / 86400)) more days"
    [ $((left / 86400)) -ge 5477 ] && [ $((left / 86400)) -le 5479 ] # 15 years = 5479 days
}
check "origin-cert create --hostname ha.local --out DIR: one certificate under the origin CA for DNS:ha.local, 15 years, key 0600" t_origin_cert_create

t_pull_ca_distinct() {
    local pull origin edge
    pull=$(openssl x509 -in "$WORK/pull-ca.pem" -noout -fingerprint -sha256) || return 1
    origin=$(openssl x509 -in "$WORK/origin-ca.pem" -noout -fingerprint -sha256) || return 1
    edge=$(openssl x509 -in "$WORK/ca.pem" -noout -fingerprint -sha256) || return 1
    echo "pull $pull"; echo "origin $origin"; echo "edge $edge"
    [ "$pull" != "$origin" ] && [ "$pull" != "$edge" ] && [ "$origin" != "$edge" ] || return 1
    openssl x509 -in "$WORK/pull-ca.pem" -noout -ext basicConstraints | grep -q 'CA:TRUE' &&
        openssl x509 -in "$WORK/origin-ca.pem" -noout -ext basicConstraints | grep -q 'CA:TRUE' || return 1
    # The tunnel's own client certificate is not one an origin-pull origin accepts.
    ! openssl verify -CAfile "$WORK/pull-ca.pem" "$STATE/$ID_A/cert.pem"
}
check "origin-pull-ca and origin-ca are CAs of their own (not the edge's CA; the tunnel certificate is not under the pull CA)" t_pull_ca_distinct

t_connector_has_origin_ca() {
    local f=$STATE/$ID_A/origin-ca.pem
    ls -l "$STATE/$ID_A" || return 1
    [ "$(stat -c %a "$f")" = 600 ] && cmp "$f" "$WORK/origin-ca.pem"
}
check "the connector stores the edge's origin CA as <state>/<tunnel>/origin-ca.pem (0600), the one origin-ca prints" t_connector_has_origin_ca

t_pull_cert_on_disk() {
    local crt=$STATE/$ID_A/origin-pull.pem key=$STATE/$ID_A/origin-pull.key span
    openssl x509 -in "$crt" -noout -subject -ext subjectAltName,extendedKeyUsage -dates || return 1
    openssl verify -CAfile "$WORK/pull-ca.pem" -purpose sslclient "$crt" || return 1
    openssl x509 -in "$crt" -noout -subject -nameopt RFC2253 | grep -qE "^subject=(.*,)?CN=$ID_A(,|$)" || return 1
    openssl x509 -in "$crt" -noout -ext subjectAltName | grep -q "URI:tunnel:$ID_A" || return 1
    openssl x509 -in "$crt" -noout -ext extendedKeyUsage | grep -q 'TLS Web Client Authentication' || return 1
    [ "$(stat -c %a "$key")" = 600 ] || { echo "key mode $(stat -c %a "$key")"; return 1; }
    openssl pkey -in "$key" -noout -text | grep -q 'P-256' || return 1
    # not_before = issue - 60 s, not_after = issue + lifetime
    span=$(($(cert_field "$crt" enddate) - $(cert_field "$crt" startdate)))
    echo "not_after - not_before = $span s"
    [ $span -ge $((LIFETIME + 59)) ] && [ $span -le $((LIFETIME + 61)) ]
}
check "origin-pull certificate: CN=<tunnel id>, URI SAN tunnel:<id>, clientAuth, under the pull CA, lifetime ${LIFETIME}s; key P-256 0600" t_pull_cert_on_disk

# --- Caddy ------------------------------------------------------------------

t_caddy_origin_pull() {
    local out
    out=$(tcurl caddy.a.example.test / -w '\n%{http_code}'); echo "$out"
    [ "$(echo "$out" | tail -n1)" = 200 ] &&
        echo "$out" | head -n1 | grep -qE "^caddy ok (.*,)?CN=$ID_A(,.*)? serial=.* uris=\[tunnel:$ID_A\]"
}
check "Caddy (edge-issued certificate, client_auth require_and_verify with the pull CA) through the tunnel with originPull, no caPool: 200, Caddy saw CN=<tunnel> URI tunnel:<id>" t_caddy_origin_pull

t_caddy_without_pull() {
    local out
    out=$(tcurl nopull.a.example.test / -w '\n%{http_code}'); echo "$out"
    [ "$(echo "$out" | tail -n1)" = 502 ] &&
        echo "$out" | grep -qiE 'requires? a client certificate|client certificate (is )?required' &&
        ! echo "$out" | grep -q 'caddy ok'
}
check "the same Caddy without originPull: 502 saying the origin requires a client certificate" t_caddy_without_pull

direct() { # port [curl args]: straight to the origin as ha.local, trusting the origin CA
    local port=$1; shift
    curl -sS --http1.1 -m 5 --cacert "$WORK/origin-ca.pem" --resolve "ha.local:$port:127.0.0.1" \
        "https://ha.local:$port/" -w '\n%{http_code}' "$@" 2>&1
}

t_caddy_direct_refused() {
    local out rc
    out=$(direct $CADDY_PORT); rc=$?; echo "$out (curl exit $rc)"
    # Go's TLS 1.3 server refuses after the handshake with an alert (bad
    # certificate in Debian 12's Caddy): curl gets no HTTP answer at all.
    [ $rc != 0 ] && [ "$(echo "$out" | tail -n1)" = 000 ] &&
        echo "$out" | grep -qE 'alert (bad certificate|certificate required)' || return 1
    # The tunnel's own client certificate is from another CA: refused too.
    out=$(direct $CADDY_PORT --cert "$STATE/$ID_A/cert.pem" --key "$STATE/$ID_A/key.pem"); rc=$?
    echo "$out (curl exit $rc)"
    [ $rc != 0 ] && [ "$(echo "$out" | tail -n1)" = 000 ] || return 1
    # The connector's origin-pull credential itself works (it is what was presented).
    out=$(direct $CADDY_PORT -H 'Host: ha.local' --cert "$STATE/$ID_A/origin-pull.pem" \
        --key "$STATE/$ID_A/origin-pull.key"); echo "$out"
    [ "$(echo "$out" | tail -n1)" = 200 ]
}
check "direct to Caddy: no client certificate → TLS alert, no HTTP answer; the tunnel certificate → refused; origin-pull.pem/key → 200" t_caddy_direct_refused

t_shorthand_origin_pull() {
    local out
    wait_for 20 routed caddy.b.example.test
    out=$(tcurl caddy.b.example.test / -w '\n%{http_code}'); echo "$out"
    [ "$(echo "$out" | tail -n1)" = 200 ] &&
        echo "$out" | head -n1 | grep -qE "^caddy ok (.*,)?CN=$ID_B(,.*)? serial=.* uris=\[tunnel:$ID_B\]"
}
check "--url shorthand with --origin-pull (tunnel B): Caddy trusts every tunnel of the edge, saw CN=<B>" t_shorthand_origin_pull

# --- nginx pinning one tunnel -------------------------------------------------

t_nginx_pins_a() {
    local out
    out=$(tcurl pinned.a.example.test / -w '\n%{http_code}'); echo "$out"
    [ "$(echo "$out" | tail -n1)" = 200 ] && echo "$out" | grep -qE "^nginx ok (.*,)?CN=$ID_A(,|$)"
}
check "nginx pinning tunnel A (ssl_verify_client with the pull CA, CN=<A>): A's connector → 200" t_nginx_pins_a

t_nginx_refuses_b() {
    local out
    out=$(tcurl pinned.b.example.test / -w '\n%{http_code}'); echo "$out"
    [ "$(echo "$out" | tail -n1)" = 403 ] && echo "$out" | grep -qE "^not the pinned tunnel: (.*,)?CN=$ID_B(,|$)"
}
check "nginx pinning tunnel A: B's connector (a valid pull certificate, another tunnel) → 403" t_nginx_refuses_b

t_nginx_direct() {
    local out
    out=$(direct $NGINX_PIN_PORT); echo "$out"
    [ "$(echo "$out" | tail -n1)" = 400 ] && echo "$out" | grep -q 'No required SSL certificate was sent'
}
check "nginx direct without a client certificate → 400 No required SSL certificate was sent" t_nginx_direct

# --- re-enrolment after being offline past expiry ----------------------------

t_reenrol() {
    local end now
    stop_conn $CONN_B || return 1
    grep -c 'enrolling with edge' "$WORK/conn-b.log"
    end=$(cert_field "$STATE/$ID_B/cert.pem" enddate) || return 1
    now=$(date +%s)
    echo "B's certificate expires in $((end - now)) s; waiting past that"
    [ $((end - now)) -le $((LIFETIME + 1)) ] || return 1
    sleep $((end - now + 2))
    cp "$STATE/$ID_B/cert.pem" "$WORK/b-cert-expired.pem"
    start_conn b2 "$TOKEN_B" --hostname caddy.b.example.test --url "$CADDY" \
        --hostname pinned.b.example.test --url "https://127.0.0.1:$NGINX_PIN_PORT" \
        --origin-server-name ha.local --http-host-header ha.local --origin-pull
    CONN_B=$CONN_PID
    wait_for 20 routed caddy.b.example.test || { echo "B never served again"; return 1; }
    cat "$WORK/conn-b2.log"
    grep -q 'enrolled with the edge' "$WORK/conn-b2.log" || return 1
    [ "$(cert_field "$STATE/$ID_B/cert.pem" enddate)" -gt "$(date +%s)" ] &&
        [ "$(tcurl pinned.b.example.test / -o /dev/null -w '%{http_code}')" = 403 ]
}
check "re-enrolment: B stopped until its ${LIFETIME}s certificate expired, started again with the same token and state → enrols again and serves" t_reenrol

# --- renewal while traffic flows ---------------------------------------------

t_renewal_under_traffic() {
    local total bad serials t o
    echo "renewals before the traffic started: $RENEWALS_BEFORE_TRAFFIC"
    wait_for 60 bash -c "[ \$(grep -c 'renewed the tunnel certificate' '$WORK/conn-a.log') -ge 2 ] &&
        [ \$(grep -c 'renewed the origin-pull certificate' '$WORK/conn-a.log') -ge 2 ]"
    sleep 1 # traffic after the last renewal too
    touch "$WORK/traffic.stop"; wait $TRAFFIC_PID 2>/dev/null
    t=$(renewals tunnel); o=$(renewals origin-pull)
    total=$(wc -l < "$WORK/traffic.log")
    bad=$(grep -vc '^200 caddy ok' "$WORK/traffic.log")
    serials=$(grep -o 'serial=[0-9A-Fa-f:]*' "$WORK/traffic.log" | sort -u | wc -l)
    echo "renewals: tunnel $t, origin-pull $o; requests $total, failed $bad; pull certificates seen by Caddy $serials"
    grep -v '^200 caddy ok' "$WORK/traffic.log" | head -n 5
    grep -E 'renew|lost' "$WORK/conn-a.log" | head -n 20
    [ "$RENEWALS_BEFORE_TRAFFIC" = 0 ] && [ "$t" -ge 2 ] && [ "$o" -ge 2 ] || return 1
    # 2/3 of a 20 s lifetime: about one renewal per kind per 13 s, not a loop.
    [ "$t" -le 6 ] && [ "$o" -le 6 ] || { echo "too many renewals"; return 1; }
    [ "$total" -ge 50 ] && [ "$bad" = 0 ] && [ "$serials" -ge 3 ] || return 1
    ! grep -q 'certificate renewal failed' "$WORK/conn-a.log" &&
        ! grep -qE 'connection [0-9]+ to edge .* lost' "$WORK/conn-a.log" || return 1
    # Same keys, new certificates, still under their CAs.
    ! cmp -s "$WORK/a-cert0.pem" "$STATE/$ID_A/cert.pem" &&
        ! cmp -s "$WORK/a-pull0.pem" "$STATE/$ID_A/origin-pull.pem" || return 1
    [ "$(cert_field "$WORK/a-cert0.pem" pubkey)" = "$(cert_field "$STATE/$ID_A/cert.pem" pubkey)" ] &&
        [ "$(cert_field "$WORK/a-pull0.pem" pubkey)" = "$(cert_field "$STATE/$ID_A/origin-pull.pem" pubkey)" ] ||
        return 1
    openssl verify -CAfile "$WORK/pull-ca.pem" "$STATE/$ID_A/origin-pull.pem"
}
check "renewal under traffic (lifetime ${LIFETIME}s): ≥2 renewals of each kind, no failed request, links kept, renewed pull certificates presented, same keys" t_renewal_under_traffic

t_restart_renewed() {
    local now
    now=$(date +%s)
    echo "first certificate expired $((now - $(cert_field "$WORK/a-cert0.pem" enddate))) s ago; stored one expires in $(($(cert_field "$STATE/$ID_A/cert.pem" enddate) - now)) s"
    [ "$(cert_field "$WORK/a-cert0.pem" enddate)" -lt "$now" ] || return 1
    stop_conn $CONN_A || return 1
    start_conn a2 "$TOKEN_A" --config "$WORK/a.json"; CONN_A=$CONN_PID
    wait_for 10 routed caddy.a.example.test || { cat "$WORK/conn-a2.log"; return 1; }
    cat "$WORK/conn-a2.log"
    ! grep -q 'enrolling with edge' "$WORK/conn-a2.log"
}
check "a restart after renewals connects with the renewed certificate (the first one has expired): no re-enrolment, serves" t_restart_renewed

[ -f "$WORK/traffic.stop" ] || touch "$WORK/traffic.stop"
finish
if grep -q '^fail' "$RESULTS" 2>/dev/null; then
    for f in conn-a conn-b conn-b2 conn-a2 caddy; do
        [ -f "$WORK/$f.log" ] && { echo "--- $f.log"; tail -n 15 "$WORK/$f.log" | cut -c1-300 | sed 's/^/     | /'; }
    done
fi
