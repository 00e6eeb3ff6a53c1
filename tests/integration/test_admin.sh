#!/bin/bash
# The edge's admin listener (issue 12): the bearer token in the data dir
# (0600, `edge-sim admin token`), the API refusing requests without it,
# /healthz, /ready and /metrics open on loopback only, and the JSON write API
# doing what the CLI does: a tunnel created through it serves a real
# connector at once, deleting it stops its traffic, an access policy set
# through it applies at once. Real edge-sim, connector and curl.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

# The admin address on every interface, so a peer other than loopback can be
# tried (the host's own non-loopback address, when it has one).
EDGE_ARGS="--admin-addr 0.0.0.0:$ADMIN_PORT"
start_edge
wait_port 127.0.0.1 $ADMIN_PORT
ADMIN=http://127.0.0.1:$ADMIN_PORT
OTHER_IP=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+\.' | grep -v '^127\.' | head -n1)

# code METHOD PATH [curl args]: the status code; the body in $WORK/body.
code() {
    local m=$1 p=$2; shift 2
    curl -s -X "$m" -o "$WORK/body" -w '%{http_code}' "$@" "$ADMIN$p"
}
# api METHOD PATH [JSON]: an authenticated call; the status code, body in $WORK/body.
api() {
    if [ $# -ge 3 ]; then
        code "$1" "$2" -H @"$(admin_auth)" -H 'Content-Type: application/json' --data-binary "$3"
    else
        code "$1" "$2" -H @"$(admin_auth)"
    fi
}
jget() { $PY -c 'import json,sys; v=json.load(open(sys.argv[1])); [v:=v[k] if not k.isdigit() else v[int(k)] for k in sys.argv[2:]]; print(v)' "$WORK/body" "$@"; }

t_token_file() {
    local f=$EDGE_DIR/admin.token
    [ "$(stat -c '%a %U' "$f")" = "600 $(id -un)" ] || { stat -c '%a %U' "$f"; return 1; }
    [[ "$(cat "$f")" =~ ^[A-Za-z0-9_-]{43}$ ]] || { echo "not 43 base64url characters"; return 1; }
    [ "$("$BIN/edge-sim" admin token --data-dir "$EDGE_DIR")" = "$(cat "$f")" ] || return 1
    # A data dir without one gets one from the command, the same on each call.
    local d=$WORK/other-edge t1 t2
    t1=$("$BIN/edge-sim" admin token --data-dir "$d" 2>/dev/null) &&
        t2=$("$BIN/edge-sim" admin token --data-dir "$d") || return 1
    [ "$t1" = "$t2" ] && [ "$(stat -c %a "$d/admin.token")" = 600 ]
}
check "admin.token: made by serve, mode 0600, 43 base64url characters; edge-sim admin token prints it" t_token_file

t_refuses_without_token() {
    local c
    c=$(code GET /api/tunnels -D "$WORK/head") || return 1
    [ "$c" = 401 ] && grep -qi '^WWW-Authenticate: Bearer' "$WORK/head" || { echo "$c"; cat "$WORK/head"; return 1; }
    jget error || return 1
    c=$(code GET /api/tunnels -H 'Authorization: Bearer wrong') && [ "$c" = 401 ] || { echo "wrong token: $c"; return 1; }
    c=$(code GET /api/status) && [ "$c" = 401 ] || { echo "status: $c"; return 1; }
    c=$(code POST /api/tunnels --data-binary '{"name":"sneaky"}') && [ "$c" = 401 ] || return 1
    c=$(code DELETE /api/access/x.example.test) && [ "$c" = 401 ] || return 1
    ! "$BIN/edge-sim" tunnel list --data-dir "$EDGE_DIR" | grep -q sneaky
    c=$(api GET /api/tunnels) && [ "$c" = 200 ]
}
check "the admin API refuses requests without the bearer token (401, WWW-Authenticate), and answers with it" t_refuses_without_token

t_open_on_loopback() {
    [ "$(code GET /healthz)" = 200 ] && [ "$(cat "$WORK/body")" = ok ] || return 1
    [ "$(code GET /healthcheck)" = 200 ] || return 1
    [ "$(code GET /ready)" = 200 ] && [ "$(jget status)" = ready ] || { cat "$WORK/body"; return 1; }
    [ "$(code GET /metrics)" = 200 ] && grep -q '^edge_build_info{version="' "$WORK/body" || return 1
    [ "$(code GET /)" = 200 ] && grep -q '<title>edge-sim status</title>' "$WORK/body"
}
check "/healthz, /healthcheck, /ready, /metrics and the status page answer on loopback without a token" t_open_on_loopback

t_other_peer() {
    [ -n "$OTHER_IP" ] || { echo "no address but loopback here: skipped"; return 0; }
    local A=http://$OTHER_IP:$ADMIN_PORT c
    c=$(curl -s -o /dev/null -w '%{http_code}' "$A/metrics") && [ "$c" = 401 ] || { echo "metrics $c"; return 1; }
    c=$(curl -s -o /dev/null -w '%{http_code}' "$A/ready") && [ "$c" = 401 ] || { echo "ready $c"; return 1; }
    c=$(curl -s -o /dev/null -w '%{http_code}' -H @"$(admin_auth)" "$A/metrics") && [ "$c" = 200 ] || return 1
    c=$(curl -s -o /dev/null -w '%{http_code}' "$A/healthz") && [ "$c" = 200 ]
}
check "from a peer other than loopback, /metrics and /ready want the token ($OTHER_IP)" t_other_peer

# review 12.2: a token-less client announcing a 1 MiB body is answered 401
# from the head alone: the answer arrives while the client has sent none of
# the body (it waits for it before sending anything), with no 100 Continue.
# review 12.3: from loopback without the token, /metrics and /ready refuse a
# Host that is a name (a DNS-rebinding page's), and serve localhost, an
# address, or any Host with the token.
t_review_12_2_12_3() {
    local out c
    out=$($PY - "$ADMIN_PORT" <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"POST /api/tunnels HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          b"Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n")
got = b""
try:
    while b"\r\n\r\n" not in got:
        b = s.recv(4096)
        if not b:
            break
        got += b
except socket.timeout:
    print("no answer within 5 s while the body was held back")
    sys.exit(1)
print(got.split(b"\r\n")[0].decode(errors="replace"))
# Send some of the body now: the server reads it away, it does not keep it.
try:
    s.sendall(b" " * 65536)
except OSError:
    pass
s.close()
PYEOF
) || { echo "$out"; return 1; }
    echo "token-less POST of 1 MiB, body held back: $out"
    [ "$out" = "HTTP/1.1 401 Unauthorized" ] || return 1
    local p
    for p in /metrics /ready; do
        c=$(code GET $p -H 'Host: evil.example') && [ "$c" = 421 ] ||
            { echo "$p with Host evil.example: $c"; cat "$WORK/body"; return 1; }
        grep -q localhost "$WORK/body" || { cat "$WORK/body"; return 1; }
        c=$(code GET $p -H "Host: evil.example:$ADMIN_PORT") && [ "$c" = 421 ] || { echo "$p: $c"; return 1; }
        c=$(code GET $p -H "Host: localhost:$ADMIN_PORT") && [ "$c" = 200 ] || { echo "$p localhost: $c"; return 1; }
        c=$(code GET $p -H 'Host: evil.example' -H @"$(admin_auth)") && [ "$c" = 200 ] ||
            { echo "$p evil.example with the token: $c"; return 1; }
    done
    c=$(code GET /healthz -H 'Host: evil.example') && [ "$c" = 200 ]
}
check "review 12.2 and 12.3: a token-less 1 MiB POST gets its 401 before sending any body; Host: evil.example on /metrics and /ready is refused (421) without the token" t_review_12_2_12_3

TOKEN_FILE=$WORK/api1.token
t_api_tunnel_serves() {
    local c t0
    c=$(api POST /api/tunnels '{"name":"api1","hostnames":["api1.example.test"]}')
    [ "$c" = 201 ] || { echo "$c"; cat "$WORK/body"; return 1; }
    (umask 077; jget token > "$TOKEN_FILE")
    # The same store the CLI reads.
    "$BIN/edge-sim" tunnel list --data-dir "$EDGE_DIR" | grep -q '^api1 ' || return 1
    # No poll to wait for: the connector enrols and serves within a second
    # of starting (its own TLS, enrolment and registration included).
    t0=$(date +%s.%N)
    start_connector "$(cat "$TOKEN_FILE")" --hostname api1.example.test --url hello_world
    until routed api1.example.test; do
        awk -v t="$(elapsed "$t0")" 'BEGIN { exit !(t > 1.0) }' && break
        sleep 0.02
    done
    local took; took=$(elapsed "$t0")
    echo "connector started to first 200: $took s"
    routed api1.example.test && awk -v t="$took" 'BEGIN { exit !(t <= 1.0) }' || return 1
    # The connector is on the API's view (as of the next heartbeat), with
    # its version and address.
    has_connector() { api GET /api/tunnels/api1 > /dev/null && [ "$(jget connectors 0 address)" = 127.0.0.1 ]; }
    wait_for 3 has_connector || { cat "$WORK/body"; return 1; }
    [ "$(jget connectors 0 version)" = "$("$BIN/connector" --version | awk '{print $2}')" ]
}
check "a tunnel created through the API (201) takes a real connector's token at once and serves" t_api_tunnel_serves

t_api_delete_stops() {
    routed api1.example.test || return 1
    [ "$(api DELETE /api/tunnels/api1)" = 200 ] || return 1
    local t0; t0=$(date +%s.%N)
    # In effect when answered: no wait for a poll.
    local s; s=$(tcurl api1.example.test / -o /dev/null -w '%{http_code}')
    echo "right after DELETE: $s ($(elapsed "$t0") s)"
    [ "$s" != 200 ] || return 1
    sleep 1
    s=$(tcurl api1.example.test / -o /dev/null -w '%{http_code}')
    [ "$s" != 200 ] && [ "$(api GET /api/tunnels/api1)" = 404 ] &&
        ! "$BIN/edge-sim" tunnel list --data-dir "$EDGE_DIR" | grep -q '^api1 '
}
check "DELETE /api/tunnels/NAME: its traffic stops at once, and it is gone from the CLI's list" t_api_delete_stops

t_api_access_policy() {
    local c s
    c=$(api POST /api/tunnels '{"name":"api2","hostnames":["api2.example.test"]}') && [ "$c" = 201 ] || return 1
    start_connector "$(jget token)" --hostname api2.example.test --url hello_world
    wait_for 20 routed api2.example.test || return 1
    [ "$(api PUT /api/access/api2.example.test '{"require_cert":true}')" = 200 ] || { cat "$WORK/body"; return 1; }
    s=$(tcurl api2.example.test / -o /dev/null -w '%{http_code}')
    echo "without a certificate, right after PUT: $s"
    [ "$s" = 403 ] || return 1
    # A client certificate issued through the API gets in.
    [ "$(api POST /api/client-certs '{"name":"laptop","days":2}')" = 201 ] || { cat "$WORK/body"; return 1; }
    (umask 077; jget cert > "$WORK/laptop.pem"; jget key > "$WORK/laptop.key")
    s=$(tcurl api2.example.test / -o /dev/null -w '%{http_code}' --cert "$WORK/laptop.pem" --key "$WORK/laptop.key")
    echo "with the API-issued certificate: $s"
    [ "$s" = 200 ] || return 1
    "$BIN/edge-sim" access list --data-dir "$EDGE_DIR" | grep -q '^api2.example.test ' || return 1
    [ "$(api DELETE /api/access/api2.example.test)" = 200 ] || return 1
    s=$(tcurl api2.example.test / -o /dev/null -w '%{http_code}')
    echo "after DELETE: $s"
    [ "$s" = 200 ]
}
check "an access policy set through the API applies at once (403 without a certificate, 200 with one the API issued); deleting it reopens" t_api_access_policy

t_cli_change_seen() {
    "$BIN/edge-sim" tunnel create cli1 --hostname cli1.example.test --data-dir "$EDGE_DIR" > /dev/null 2>&1 || return 1
    api_has_cli1() { [ "$(api GET /api/tunnels/cli1)" = 200 ]; }
    wait_for 1 api_has_cli1
}
check "a tunnel the CLI creates is on the API within a second" t_cli_change_seen

t_bad_requests() {
    local c
    c=$(api POST /api/tunnels '{"name":') && [ "$c" = 400 ] || { echo "bad json $c"; return 1; }
    c=$(api POST /api/tunnels '{"name":"x","hostname":["a.test"]}') && [ "$c" = 400 ] || return 1
    c=$(api POST /api/tunnels '{"name":"cli1"}') && [ "$c" = 409 ] || return 1
    c=$(api PUT /api/tunnels '{}') && [ "$c" = 405 ] || return 1
    head -c 1100000 /dev/zero | tr '\0' ' ' > "$WORK/big.json"
    c=$(code POST /api/tunnels -H @"$(admin_auth)" --data-binary @"$WORK/big.json") && [ "$c" = 413 ] ||
        { echo "oversized: $c"; return 1; }
}
check "bad JSON 400, a misspelt field 400, a taken name 409, a wrong method 405, a body over 1 MiB 413" t_bad_requests

t_token_never_logged() {
    local tok; tok=$(cat "$EDGE_DIR/admin.token")
    ! grep -rqF "$tok" "$WORK"/*.log
}
check "the admin token appears in no log" t_token_never_logged

t_ready_draining() {
    kill -TERM $EDGE_PID
    local i c=""
    for i in $(seq 1 20); do
        c=$(code GET /ready); [ "$c" = 503 ] && break
        sleep 0.1
    done
    echo "/ready during the drain: $c $(cat "$WORK/body")"
    [ "$c" = 503 ] && [ "$(jget status)" = draining ]
}
check "/ready answers 503 {\"status\":\"draining\"} once the edge drains" t_ready_draining

finish
