#!/bin/bash
# Three `edge-sim serve` sharing one PostgreSQL store (started here from
# Debian's packages in a temp directory, on loopback), on 127.0.0.1 (A),
# 127.0.0.2 (B) and 127.0.0.3 (C), with connectors: schema migration, a
# tunnel made on A that enrols on B, hostname races between edges, a delete
# and a revocation on C seen by A and B, an edge killed under load, the
# database stopped for 30 s, and an SQLite edge moved into PostgreSQL.
source "$(dirname "$0")/lib.sh"
source "$HERE/../support/pg.sh"
trap 'pg_destroy; cleanup' EXIT

A=127.0.0.1 B=127.0.0.2 C=127.0.0.3
KEY=$WORK/ca-seal.key
figure() { echo "figure: multi-edge: $*" | tee -a "$WORK/figures"; }
now() { date +%s.%N; }

pg_start $((PORT_BASE + 20)) || { echo "FAIL cannot start PostgreSQL"; exit 1; }
STORE=$PG_URL
es() { "$BIN/edge-sim" "$@" --store "$STORE" --ca-key-file "$KEY"; }

declare -A EPID
start_at() { # X IP: an edge on IP with data dir $WORK/X
    "$BIN/edge-sim" serve --store "$STORE" --ca-key-file "$KEY" --data-dir "$WORK/$1" \
        --tunnel-addr $2:$TUNNEL_PORT --https-addr $2:$HTTPS_PORT --admin-addr $2:$ADMIN_PORT \
        --hostname-grace 2s >> "$WORK/edge-$1.log" 2>&1 &
    EPID[$1]=$!; PIDS+=($!)
    wait_port $2 $HTTPS_PORT && wait_port $2 $TUNNEL_PORT
}

# curl_at IP HOST [curl args]: a request for HOST at the edge on IP.
curl_at() {
    local ip=$1 host=$2; shift 2
    curl -s --max-time 5 --cacert "$WORK/ca.pem" --resolve "$host:$HTTPS_PORT:$ip" \
        "https://$host:$HTTPS_PORT/" "$@"
}
code_at() { curl_at "$1" "$2" -o /dev/null -w '%{http_code}' "${@:3}"; }
api_at() { # IP METHOD PATH [JSON]
    local d=$WORK/A; [ "$1" = $B ] && d=$WORK/B; [ "$1" = $C ] && d=$WORK/C
    curl -s -X "$2" -H @"$(admin_auth "$d")" -H 'content-type: application/json' \
        ${4:+--data "$4"} "http://$1:$ADMIN_PORT/api$3"
}
token_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }

declare -A CPID
connect() { # NAME TOKEN args...: a connector with its own state dir and log
    local n=$1 t=$2; shift 2
    remember_token "$t"
    "$BIN/connector" run --token "$t" --state-dir "$WORK/st-$n" "$@" \
        >> "$WORK/conn-$n.log" 2>&1 &
    CPID[$n]=$!; PIDS+=($!)
}

t_migrate() {
    es store keygen "$KEY" || return 1
    remember_token "$(head -c 64 "$KEY")"
    # Before the schema exists, every command says what to run.
    ! es tunnel list 2> "$WORK/premigrate.err" || return 1
    grep -q 'edge-sim store migrate' "$WORK/premigrate.err" || return 1
    es store migrate 2>&1 | tee "$WORK/migrate.out"
    grep -q 'from version 0 to 1' "$WORK/migrate.out" || return 1
    es store migrate 2>&1 | grep -q 'already at version 1' || return 1
    # Without the key file the CAs cannot be opened: a clear refusal.
    ! "$BIN/edge-sim" tunnel list --store "$STORE" 2> "$WORK/nokey.err" &&
        grep -q 'ca-key-file' "$WORK/nokey.err"
}
check "store migrate makes the schema once; commands before it, or without the key file, say what to do" t_migrate

t_three_edges() {
    start_at A $A && start_at B $B && start_at C $C || return 1
    es ca > "$WORK/ca.pem" || return 1
    # One set of CAs for all three, sealed in the database: no clear key in it.
    [ "$(pg_psql -c "SELECT count(*) FROM cas WHERE key_sealed LIKE 'es-seal-v1:%'")" = 6 ] &&
        [ "$(pg_psql -c "SELECT count(*) FROM cas WHERE key_sealed LIKE '%PRIVATE KEY%'")" = 0 ] ||
        return 1
    # The assertion signing key too: sealed, and the same for every edge.
    [ "$(pg_psql -c "SELECT count(*) FROM signing_keys WHERE key_pem LIKE 'es-seal-v1:%'")" -ge 1 ] &&
        [ "$(pg_psql -c "SELECT count(*) FROM signing_keys WHERE key_pem LIKE '%PRIVATE%'")" = 0 ] ||
        return 1
    local jwks=()
    for ip in $A $B $C; do
        jwks+=("$(curl -s --cacert "$WORK/ca.pem" --resolve x.multi.test:$HTTPS_PORT:$ip \
            https://x.multi.test:$HTTPS_PORT/.well-known/edge-sim/jwks.json | md5sum)")
    done
    echo "jwks: ${jwks[*]}"
    [ "${jwks[0]}" = "${jwks[1]}" ] && [ "${jwks[1]}" = "${jwks[2]}" ] || return 1
    local pem=$WORK/ca.pem
    for ip in $A $B $C; do
        echo | openssl s_client -connect $ip:$HTTPS_PORT -servername x.multi.test -CAfile "$pem" \
            2>/dev/null | grep -q 'Verify return code: 0' || { echo "edge $ip: bad cert"; return 1; }
    done
}
check "three edges start on one store; one browser CA, CA keys sealed in the database" t_three_edges

t_create_on_a_enrol_on_b() {
    ONE_TOKEN=$(api_at $A POST /tunnels \
        "{\"name\":\"one\",\"hostnames\":[\"one.multi.test\"],\"edges\":[\"$B:$TUNNEL_PORT\"]}" |
        token_of) || return 1
    connect one "$ONE_TOKEN" --ha-connections 1 --hostname one.multi.test --url hello_world
    wait_for 20 bash -c "[ \"\$(curl -s --cacert '$WORK/ca.pem' --resolve one.multi.test:$HTTPS_PORT:$B https://one.multi.test:$HTTPS_PORT/ -o /dev/null -w '%{http_code}')\" = 200 ]" ||
        return 1
    grep -q "enrol" "$WORK/edge-B.log" && ! grep -q "enrolment from" "$WORK/edge-A.log" || return 1
    # A and C hold no link to it: 530, naming the edge that has one (as of
    # its next heartbeat).
    local hdr
    wait_for 5 bash -c "curl -s -D - -o /dev/null --cacert '$WORK/ca.pem' --resolve one.multi.test:$HTTPS_PORT:$A https://one.multi.test:$HTTPS_PORT/ | grep -qi 'edge-sim-tunnel-at: $B:$HTTPS_PORT'" ||
        return 1
    hdr=$(curl_at $C one.multi.test -D - -o /dev/null)
    echo "$hdr"
    echo "$hdr" | grep -q '^HTTP/2 530' && echo "$hdr" | grep -qi "edge-sim-tunnel-at: $B:$HTTPS_PORT"
}
check "a tunnel created through edge A's API enrols on edge B; A and C answer 530 naming B" \
    t_create_on_a_enrol_on_b

# Two tunnels allowed any name; each round, one connector on A and one on B
# claim the same new hostname at the same moment.
t_hostname_race() {
    local ta tb i owners won lost
    ta=$(es tunnel create racer-a --edge $A:$TUNNEL_PORT) || return 1
    tb=$(es tunnel create racer-b --edge $B:$TUNNEL_PORT) || return 1
    remember_token "$ta"; remember_token "$tb"
    for i in 1 2 3 4 5; do
        local h=race$i.multi.test
        connect ra$i "$ta" --ha-connections 1 --hostname $h --url hello_world
        connect rb$i "$tb" --ha-connections 1 --hostname $h --url hello_world
        wait_for 20 bash -c "grep -qs 'hostname $h \(registered\|refused\)' '$WORK/conn-ra$i.log' && grep -qs 'hostname $h \(registered\|refused\)' '$WORK/conn-rb$i.log'" ||
            { echo "round $i: no answer"; return 1; }
        owners=$(pg_psql -c "SELECT count(*) FROM routes WHERE hostname='$h'")
        won=$(grep -l "hostname $h registered" "$WORK/conn-ra$i.log" "$WORK/conn-rb$i.log" | wc -l)
        lost=$(grep -l "hostname $h refused" "$WORK/conn-ra$i.log" "$WORK/conn-rb$i.log" | wc -l)
        echo "round $i: owners in the store $owners, connectors registered $won, refused $lost"
        [ "$owners" = 1 ] && [ "$won" = 1 ] && [ "$lost" = 1 ] || return 1
        kill ${CPID[ra$i]} ${CPID[rb$i]} 2>/dev/null
    done
    figure "hostname race between edges A and B: 5 rounds, one owner each"
}
check "two connectors racing for one hostname through two edges: exactly one owner, every round" \
    t_hostname_race

# Polls until every edge in IPS answers HOST with a status in WANT (a
# regex); prints the seconds it took per edge. Fails after 5 s.
until_all() { # WANT HOST T0 IPS... [-- curl args]
    local want=$1 host=$2 t0=$3; shift 3
    local ips=() extra=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do ips+=("$1"); shift; done
    [ "${1:-}" = -- ] && { shift; extra=("$@"); }
    local ip c
    for ip in "${ips[@]}"; do
        while :; do
            c=$(code_at $ip $host "${extra[@]}")
            [[ "$c" =~ ^($want)$ ]] && break
            [ "$(awk -v a=$t0 -v b=$(now) 'BEGIN{print (b-a > 5)}')" = 1 ] && { echo "$ip: still $c"; return 1; }
            sleep 0.02
        done
        echo "$ip $(awk -v a=$t0 -v b=$(now) 'BEGIN{printf "%.3f", b-a}')"
    done
}

t_delete_on_c() {
    local tok
    tok=$(es tunnel create gone --hostname gone.multi.test --edge $A:$TUNNEL_PORT \
        --edge $B:$TUNNEL_PORT) || return 1
    connect gone "$tok" --ha-connections 2 --hostname gone.multi.test --url hello_world
    wait_for 20 bash -c "[ \"\$(curl -s --cacert '$WORK/ca.pem' --resolve gone.multi.test:$HTTPS_PORT:$A https://gone.multi.test:$HTTPS_PORT/ -o /dev/null -w '%{http_code}')\" = 200 ] && [ \"\$(curl -s --cacert '$WORK/ca.pem' --resolve gone.multi.test:$HTTPS_PORT:$B https://gone.multi.test:$HTTPS_PORT/ -o /dev/null -w '%{http_code}')\" = 200 ]" ||
        return 1
    local t0; t0=$(now)
    api_at $C DELETE /tunnels/gone > /dev/null || return 1
    until_all '404|530' gone.multi.test $t0 $A $B > "$WORK/delete.times" || return 1
    cat "$WORK/delete.times"
    figure "tunnel deleted through C: refused at A after $(awk '$1=="'$A'"{print $2}' "$WORK/delete.times") s, at B after $(awk '$1=="'$B'"{print $2}' "$WORK/delete.times") s"
    awk '{ if ($2 > 1.0) bad=1 } END { exit bad }' "$WORK/delete.times"
}
check "a tunnel deleted through edge C stops on A and B within a second" t_delete_on_c

t_revoke_on_c() {
    es access set sec.multi.test --require-cert || return 1
    es client-cert create alice --out "$WORK/alice" --days 2 || return 1
    local tok cert=(--cert "$WORK/alice/alice.pem" --key "$WORK/alice/alice.key")
    tok=$(es tunnel create sec --hostname sec.multi.test --edge $A:$TUNNEL_PORT \
        --edge $B:$TUNNEL_PORT) || return 1
    connect sec "$tok" --ha-connections 2 --hostname sec.multi.test --url hello_world
    wait_for 20 bash -c "[ \"\$(curl -s --cacert '$WORK/ca.pem' --cert '$WORK/alice/alice.pem' --key '$WORK/alice/alice.key' --resolve sec.multi.test:$HTTPS_PORT:$B https://sec.multi.test:$HTTPS_PORT/ -o /dev/null -w '%{http_code}')\" = 200 ]" ||
        return 1
    [ "$(code_at $A sec.multi.test "${cert[@]}")" = 200 ] || return 1
    [ "$(code_at $A sec.multi.test)" = 403 ] || return 1 # no certificate
    local t0; t0=$(now)
    api_at $C POST /client-certs/alice/revoke > /dev/null || return 1
    until_all '403' sec.multi.test $t0 $A $B -- "${cert[@]}" > "$WORK/revoke.times" || return 1
    cat "$WORK/revoke.times"
    figure "client certificate revoked through C: refused at A after $(awk '$1=="'$A'"{print $2}' "$WORK/revoke.times") s, at B after $(awk '$1=="'$B'"{print $2}' "$WORK/revoke.times") s"
    awk '{ if ($2 > 1.0) bad=1 } END { exit bad }' "$WORK/revoke.times"
}
check "a client certificate revoked through edge C is refused by A and B within a second" \
    t_revoke_on_c

t_kill_edge() {
    local tok
    tok=$(es tunnel create ha --hostname ha.multi.test --edge $A:$TUNNEL_PORT \
        --edge $B:$TUNNEL_PORT --edge $C:$TUNNEL_PORT) || return 1
    connect ha "$tok" --ha-connections 3 --hostname ha.multi.test --url hello_world
    wait_for 20 bash -c "for ip in $A $B $C; do [ \"\$(curl -s --cacert '$WORK/ca.pem' --resolve ha.multi.test:$HTTPS_PORT:\$ip https://ha.multi.test:$HTTPS_PORT/ -o /dev/null -w '%{http_code}')\" = 200 ] || exit 1; done" ||
        return 1
    /usr/bin/python3 "$HERE/../resilience/failover_client.py" \
        --edges $A:$HTTPS_PORT,$B:$HTTPS_PORT,$C:$HTTPS_PORT --host ha.multi.test \
        --cafile "$WORK/ca.pem" --conns 4 --depth 4 --duration 8 > "$WORK/failover.json" \
        2> "$WORK/failover.err" &
    local fc=$!
    sleep 3
    kill -9 ${EPID[A]} # the host dies: no goodbye to anyone
    wait $fc
    cat "$WORK/failover.json"
    local req fail
    read -r req fail < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["requests"], d["failed"])' "$WORK/failover.json")
    figure "edge A killed (SIGKILL) under load: $req requests through A, B and C, $fail failed"
    [ "$fail" = 0 ] && [ "$req" -gt 100 ] || return 1
    # B and C go on serving the tunnel; A comes back on the same store.
    [ "$(code_at $B ha.multi.test)" = 200 ] && [ "$(code_at $C ha.multi.test)" = 200 ] &&
        start_at A $A
}
check "edge A killed under load: a client retrying another address sees no failed request" \
    t_kill_edge

served_at() { # IP HOST: true once HOST answers 200 there
    [ "$(code_at $1 $2)" = 200 ]
}

t_database_outage() {
    # Tunnel late holds late1 before the outage; its connector comes back
    # during the outage asking for late2 as well.
    LATE_TOKEN=$(es tunnel create late --hostname '*.late.multi.test' --edge $B:$TUNNEL_PORT) ||
        return 1
    connect late "$LATE_TOKEN" --ha-connections 1 --hostname late1.late.multi.test \
        --url hello_world
    wait_for 20 served_at $B late1.late.multi.test || return 1
    # A steady client on B for the whole outage: one request every 100 ms.
    local log=$WORK/outage.codes
    : > "$log"
    ( while [ ! -e "$WORK/outage.stop" ]; do
          code_at $B ha.multi.test >> "$log"; echo >> "$log"; sleep 0.1
      done ) &
    local steady=$!
    local t0; t0=$(now)
    pg_stop
    sleep 2
    # What needs the database is refused, clearly, and nothing is granted.
    ! es tunnel create late 2> "$WORK/outage-create.err" &&
        grep -q 'cannot connect' "$WORK/outage-create.err" || { kill $steady; return 1; }
    # A connector restarting during the outage gets back the names its
    # tunnel holds (no database needed, nothing granted twice): tunnel
    # one's, on B.
    kill ${CPID[one]}; wait ${CPID[one]} 2>/dev/null
    connect one "$ONE_TOKEN" --ha-connections 1 --hostname one.multi.test --url hello_world
    local t1; t1=$(now)
    wait_for 15 bash -c "[ \"\$(curl -s --cacert '$WORK/ca.pem' --resolve one.multi.test:$HTTPS_PORT:$B https://one.multi.test:$HTTPS_PORT/ -o /dev/null -w '%{http_code}')\" = 200 ]" ||
        { echo "tunnel one not back during the outage"; kill $steady; return 1; }
    figure "connector restarted during the outage: serving again after $(elapsed $t1) s"
    # A name held before is granted without the database; a new one waits,
    # refused with the reason, and is claimed once the database is back.
    kill ${CPID[late]}; wait ${CPID[late]} 2>/dev/null
    connect late "$LATE_TOKEN" --ha-connections 1 --hostname late1.late.multi.test \
        --url hello_world --hostname late2.late.multi.test --url hello_world
    wait_for 15 served_at $B late1.late.multi.test || { kill $steady; return 1; }
    wait_for 5 grep -q 'late2.late.multi.test refused by the edge: the edge cannot reach its database now; it claims this hostname as soon as the database is back' "$WORK/conn-late.log" ||
        { kill $steady; return 1; }
    [ "$(code_at $B late2.late.multi.test)" != 200 ] || { kill $steady; return 1; }
    local left; left=$(awk -v a=$t0 -v b=$(now) 'BEGIN{printf "%d", 30 - (b-a)}')
    [ "$left" -gt 0 ] && sleep "$left"
    pg_restart || { kill $steady; return 1; }
    local back t2; back=$(elapsed $t0); t2=$(now)
    wait_for 10 served_at $B late2.late.multi.test || { kill $steady; return 1; }
    figure "a hostname registered during the outage: claimed and served $(elapsed $t2) s after PostgreSQL came back"
    grep -q 'hostname late2.late.multi.test registered' "$WORK/conn-late.log" || { kill $steady; return 1; }
    sleep 1
    touch "$WORK/outage.stop"; wait $steady
    local total ok
    total=$(grep -c . "$log"); ok=$(grep -c '^200$' "$log")
    figure "PostgreSQL stopped ${back%.*} s: $ok of $total requests through B answered 200"
    grep -h 'unreachable\|is back' "$WORK"/edge-[ABC].log | tail -n 6
    [ "$total" -gt 150 ] && [ "$ok" = "$total" ] || return 1
    # Every edge logged the outage once and caught up, its live view too
    # (defect: the live view's reconnection advanced one step a heartbeat
    # and gave up after three, so its heartbeats never resumed).
    for x in A B C; do
        [ "$(grep -c 'ERR shared database postgres://.* unreachable' "$WORK/edge-$x.log")" = 1 ] &&
            [ "$(grep -c 'live view: the shared database is unreachable' "$WORK/edge-$x.log")" = 1 ] &&
            grep -q 'is back: catching up' "$WORK/edge-$x.log" &&
            grep -q 'live view: heartbeats resumed' "$WORK/edge-$x.log" ||
            { echo "edge $x"; return 1; }
    done
    # And changes flow again: a tunnel made now serves through A.
    local tok
    tok=$(es tunnel create after --hostname after.multi.test --edge $A:$TUNNEL_PORT) || return 1
    connect after "$tok" --ha-connections 1 --hostname after.multi.test --url hello_world
    wait_for 20 bash -c "[ \"\$(curl -s --cacert '$WORK/ca.pem' --resolve after.multi.test:$HTTPS_PORT:$A https://after.multi.test:$HTTPS_PORT/ -o /dev/null -w '%{http_code}')\" = 200 ]"
}
check "PostgreSQL stopped for 30 s: routes keep serving, changes refused clearly, all catch up" \
    t_database_outage

t_import_sqlite_edge() {
    local lite=$WORK/lite
    "$BIN/edge-sim" tunnel create old --hostname old.multi.test --data-dir "$lite" \
        --edge 127.0.0.1:1 > /dev/null 2>&1 || return 1
    "$BIN/edge-sim" client-cert create bob --out "$WORK/bob" --data-dir "$lite" 2>/dev/null ||
        return 1
    "$BIN/edge-sim" store export --data-dir "$lite" --out "$WORK/lite.json" || return 1
    [ "$(stat -c %a "$WORK/lite.json")" = 600 ] || return 1
    pg_psql -c "CREATE DATABASE moved" || return 1
    local moved=postgres://edge@127.0.0.1:$PG_PORT/moved
    "$BIN/edge-sim" store migrate --store $moved || return 1
    "$BIN/edge-sim" store import --store $moved --ca-key-file "$KEY" "$WORK/lite.json" || return 1
    "$BIN/edge-sim" tunnel list --store $moved --ca-key-file "$KEY" | tee "$WORK/moved.list"
    local id; id=$("$BIN/edge-sim" tunnel list --data-dir "$lite" | awk '$1=="old"{print $2}')
    grep -q "^old  *$id .*old.multi.test" "$WORK/moved.list" || return 1
    "$BIN/edge-sim" client-cert list --store $moved --ca-key-file "$KEY" | grep -q '^bob ' ||
        return 1
    # The same CAs, sealed: the browser CA is the data dir's.
    cmp <("$BIN/edge-sim" ca --data-dir "$lite") \
        <("$BIN/edge-sim" ca --store $moved --ca-key-file "$KEY") || return 1
    [ "$(pg_psql -d moved -c "SELECT count(*) FROM signing_keys WHERE key_pem LIKE '%PRIVATE%'")" = 0 ] ||
        return 1
    # Twice is refused: the store already has tunnels.
    ! "$BIN/edge-sim" store import --store $moved --ca-key-file "$KEY" "$WORK/lite.json"
}
check "store export / import moves an SQLite edge (tunnels, certificates, CAs) into PostgreSQL" \
    t_import_sqlite_edge

finish
