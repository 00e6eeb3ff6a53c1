#!/bin/bash
# Operating both daemons (issue 12): `service install` writes hardened
# systemd units that pass `systemd-analyze verify` and really run (their
# ExecStart run here as systemd would, with a credential and a state
# directory), the token only as a credential (its file 0600, never on a
# command line), uninstall undoing it; `--help` on every subcommand; the man
# pages render without warnings and name every option the help texts do; the
# bash completions load and complete subcommands and those options.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$HERE/../.." && pwd)
UNITS=$WORK/units
mkdir -p "$UNITS"
# Plain, as an operator runs it: no MANPATH pointing at our man pages (review
# 12.1: the units said Documentation=man:connector(1) wherever they were
# written, and verify failed where the page was not installed).
verify() { systemd-analyze verify "$@"; }
# The connector's operator listener in the units run here; the units'
# default, 127.0.0.1:20241, may be another script's port.
CN_METRICS_PORT=$((PORT_BASE + 8))
EDGE2=$((PORT_BASE + 10)) # the edge-sim unit's listeners

start_edge
TOKEN=$(create_tunnel svc --hostname svc.example.test)
umask 077
printf '%s\n' "$TOKEN" > "$WORK/token"
umask 022
cat > "$WORK/config.json" <<EOF
{ "ingress": [ { "hostname": "svc.example.test", "service": "hello_world" },
               { "service": "http_status:404" } ] }
EOF
chmod 644 "$WORK/config.json"

install_connector() { # [args]: the connector's unit into $UNITS, not started
    "$BIN/connector" service install --token-file "$WORK/token" --config "$WORK/config.json" \
        --unit-dir "$UNITS" --bin "$BIN/connector" --no-start \
        --edge 127.0.0.1:$TUNNEL_PORT --metrics 127.0.0.1:$CN_METRICS_PORT "$@"
}

t_connector_unit() {
    local out u=$UNITS/connector.service line
    out=$(install_connector --grace-period 20) || { echo "$out"; return 1; }
    echo "$out"
    echo "$out" | grep -qx "wrote $u" && echo "$out" | grep -qx "  systemctl enable --now connector.service" || return 1
    cat "$u"
    for line in "DynamicUser=yes" "StateDirectory=connector" "StateDirectoryMode=0700" \
        "ProtectSystem=strict" "NoNewPrivileges=yes" "Restart=on-failure" "ProtectHome=yes" \
        "PrivateTmp=yes" "PrivateDevices=yes" "ProtectKernelTunables=yes" \
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK" "RestrictNamespaces=yes" \
        "SystemCallFilter=@system-service" "CapabilityBoundingSet=" "AmbientCapabilities=" \
        "LoadCredential=token:$WORK/token" "TimeoutStopSec=35s" "ExecReload=kill -HUP \$MAINPID" \
        "WantedBy=multi-user.target"; do
        grep -qxF "$line" "$u" || { echo "missing: $line"; return 1; }
    done
    grep -qxF "ExecStart=$BIN/connector run --token-file %d/token --config $WORK/config.json --edge 127.0.0.1:$TUNNEL_PORT --metrics 127.0.0.1:$CN_METRICS_PORT --grace-period 20" "$u" || return 1
    # The operator's --metrics replaces the unit's default (review 12.6).
    ! grep -qF 20241 "$u" || return 1
    # The token is a credential: not in the unit, never on the command line.
    ! grep -qF "$TOKEN" "$u" && ! grep '^ExecStart=' "$u" | grep -qE -- '--token( |=)'
}
check "connector service install writes a hardened unit; the token only as LoadCredential=" \
    t_connector_unit

t_connector_verify() {
    local out
    out=$(verify "$UNITS/connector.service" 2>&1); local rc=$?
    echo "rc=$rc $out"
    [ $rc = 0 ] && [ -z "$out" ]
}
check "plain systemd-analyze verify (no MANPATH) passes on the connector's unit" t_connector_verify

# Review 12.1: Documentation=man:NAME(1) only where man finds the page, as
# verify will ask it; `service unit` (what packages ship) never names it.
install_edge() { # [args]: edge-sim's unit, not started (listeners not opened)
    "$BIN/edge-sim" service install --bin "$BIN/edge-sim" --no-start --tunnel-addr 127.0.0.1:$EDGE2 \
        --https-addr 127.0.0.1:$((EDGE2 + 1)) --admin-addr 127.0.0.1:$((EDGE2 + 2)) "$@"
}

t_review_12_1_man_page() {
    local p u found out rc d=$WORK/units-man
    mkdir -p "$d/with" "$d/without"
    install_connector --unit-dir "$d/without" >/dev/null && install_edge --unit-dir "$d/without" \
        >/dev/null || return 1
    for p in connector edge-sim; do
        found=no; man -w 1 $p >/dev/null 2>&1 && found=yes
        echo "man -w 1 $p here: $found"
        u=$d/without/$p.service
        grep '^Documentation=' "$u"
        if [ $found = yes ]; then
            grep -qxF "Documentation=man:$p(1)" "$u" || return 1
        else
            ! grep -q '^Documentation=' "$u" || return 1
        fi
        out=$(verify "$u" 2>&1); rc=$?
        echo "$u: rc=$rc $out"
        [ $rc = 0 ] && [ -z "$out" ] || return 1
    done
    # Where man finds the page (here: MANPATH at ours, for install and
    # verify alike), install names it and verify, asking the same man, passes.
    mkdir -p "$WORK/man/man1" && cp "$ROOT/docs/man/connector.1" "$ROOT/docs/man/edge-sim.1" "$WORK/man/man1/"
    MANPATH=$WORK/man install_connector --unit-dir "$d/with" >/dev/null &&
        MANPATH=$WORK/man install_edge --unit-dir "$d/with" >/dev/null || return 1
    for p in connector edge-sim; do
        grep -qxF "Documentation=man:$p(1)" "$d/with/$p.service" || return 1
        out=$(MANPATH=$WORK/man verify "$d/with/$p.service" 2>&1); rc=$?
        echo "with the page: rc=$rc $out"
        [ $rc = 0 ] && [ -z "$out" ] || return 1
        # `service unit` asks no man: the same text everywhere.
        if [ $p = connector ]; then
            MANPATH=$WORK/man "$BIN/connector" service unit --token-file /etc/connector/token \
                --config "$WORK/config.json" --bin "$BIN/connector" > "$d/unit-$p.service"
        else
            MANPATH=$WORK/man "$BIN/edge-sim" service unit --bin "$BIN/edge-sim" > "$d/unit-$p.service"
        fi || return 1
        ! grep -q '^Documentation=' "$d/unit-$p.service" || return 1
        out=$(verify "$d/unit-$p.service" 2>&1); rc=$?
        echo "service unit: rc=$rc $out"
        [ $rc = 0 ] && [ -z "$out" ] || return 1
    done
}
check "review 12.1: units name Documentation=man: only where man finds the page; plain verify passes on them all" \
    t_review_12_1_man_page

# Review 12.6: run's default operator listener is a free port, a new one at
# every restart; the unit fixes it at 127.0.0.1:20241 unless told otherwise.
t_review_12_6_metrics_port() {
    local d=$WORK/units-metrics u out a base="ExecStart=$BIN/connector run --token-file %d/token --config $WORK/config.json"
    mkdir -p "$d"
    out=$("$BIN/connector" service install --token-file "$WORK/token" --config "$WORK/config.json" \
        --unit-dir "$d" --bin "$BIN/connector" --no-start --edge 127.0.0.1:$TUNNEL_PORT) || { echo "$out"; return 1; }
    u=$d/connector.service
    grep '^ExecStart=' "$u"
    grep -qxF "$base --metrics 127.0.0.1:20241 --edge 127.0.0.1:$TUNNEL_PORT" "$u" || return 1
    verify "$u" || return 1
    out=$("$BIN/connector" service unit --token-file /etc/connector/token --config "$WORK/config.json" \
        --bin "$BIN/connector") || return 1
    echo "$out" | grep -qxF "ExecStart=$BIN/connector run --token-file %d/token --config $WORK/config.json --metrics 127.0.0.1:20241" || return 1
    # The operator's own --metrics (any spelling) is the one in the unit.
    for a in "--metrics 127.0.0.1:9" "--metrics=127.0.0.1:9" "--metrics off" "--metrics=off"; do
        out=$("$BIN/connector" service unit --token-file /etc/connector/token --config "$WORK/config.json" \
            --bin "$BIN/connector" $a | grep '^ExecStart=') || return 1
        echo "$a -> $out"
        [ "$out" = "ExecStart=$BIN/connector run --token-file %d/token --config $WORK/config.json $a" ] ||
            return 1
    done
    # An abbreviation getopt takes as --metrics comes after the default, so it wins.
    out=$("$BIN/connector" service unit --token-file /etc/connector/token --config "$WORK/config.json" \
        --bin "$BIN/connector" --metr 127.0.0.1:9 | grep '^ExecStart=') || return 1
    echo "$out"
    [ "$out" = "ExecStart=$BIN/connector run --token-file %d/token --config $WORK/config.json --metrics 127.0.0.1:20241 --metr 127.0.0.1:9" ]
}
check "review 12.6: the connector's unit serves /metrics on 127.0.0.1:20241 unless --metrics says otherwise" \
    t_review_12_6_metrics_port

# Review 12.7: systemd expands specifiers in LoadCredential= and
# EnvironmentFile=, and quotes nothing there.
t_review_12_7_paths() {
    local d=$WORK/units-pct tokdir="$WORK/100%d" u out rc v
    mkdir -p "$d" "$tokdir" "$WORK/my dir"
    install -m 600 "$WORK/token" "$tokdir/token"
    out=$("$BIN/connector" service install --token-file "$tokdir/token" --config "$WORK/config.json" \
        --unit-dir "$d" --bin "$BIN/connector" --no-start --edge 127.0.0.1:$TUNNEL_PORT) || { echo "$out"; return 1; }
    u=$d/connector.service
    grep '^LoadCredential=' "$u"
    grep -qxF "LoadCredential=token:$WORK/100%%d/token" "$u" || return 1
    # Resolved as systemd resolves it: the token file itself.
    v=$(sed -n 's/^LoadCredential=token://p' "$u" | /usr/bin/python3 -c 'import re, sys
print(re.sub(r"%(.)", lambda m: "%" if m.group(1) == "%" else sys.exit("specifier %" + m.group(1)),
             sys.stdin.read().rstrip("\n")))') || return 1
    echo "resolves to $v"
    [ "$v" = "$tokdir/token" ] || return 1
    out=$(verify "$u" 2>&1); rc=$?
    echo "verify: rc=$rc $out"
    [ $rc = 0 ] && [ -z "$out" ] || return 1
    out=$("$BIN/edge-sim" service unit --bin "$BIN/edge-sim" --env-file "/etc/default/edge%sim") || return 1
    echo "$out" | grep -qxF "EnvironmentFile=-/etc/default/edge%%sim" || return 1
    # A path with a space: refused, nothing written.
    install -m 600 "$WORK/token" "$WORK/my dir/token"
    rm -f "$u"
    out=$("$BIN/connector" service install --token-file "$WORK/my dir/token" --config "$WORK/config.json" \
        --unit-dir "$d" --bin "$BIN/connector" --no-start --edge 127.0.0.1:$TUNNEL_PORT 2>&1); rc=$?
    echo "rc=$rc $out"
    [ $rc = 2 ] && [ ! -e "$u" ] &&
        echo "$out" | grep -qF "the path for LoadCredential= holds a space, which a unit cannot name" || return 1
    out=$("$BIN/edge-sim" service unit --bin "$BIN/edge-sim" --env-file "/etc/default/edge sim" 2>&1); rc=$?
    echo "rc=$rc $out"
    [ $rc = 2 ] && echo "$out" | grep -qF "the path for EnvironmentFile= holds a space"
}
check "review 12.7: % in LoadCredential=/EnvironmentFile= paths is written %%; a path with a space is refused" \
    t_review_12_7_paths

t_token_mode_refused() {
    local out rc
    cp "$WORK/token" "$WORK/token644" && chmod 644 "$WORK/token644"
    mkdir -p "$WORK/units644"
    out=$("$BIN/connector" service install --token-file "$WORK/token644" --config "$WORK/config.json" \
        --unit-dir "$WORK/units644" --bin "$BIN/connector" --no-start 2>&1); rc=$?
    echo "rc=$rc: $out"
    [ $rc = 1 ] && [ ! -e "$WORK/units644/connector.service" ] &&
        echo "$out" | grep -qF "connector: token file $WORK/token644 is readable by others (mode 0644); it must be mode 0600 or stricter; run: chmod 600 $WORK/token644" || return 1
    chmod 640 "$WORK/token644"
    out=$("$BIN/connector" service install --token-file "$WORK/token644" --config "$WORK/config.json" \
        --unit-dir "$WORK/units644" --bin "$BIN/connector" --no-start 2>&1); rc=$?
    echo "rc=$rc: $out"
    [ $rc = 1 ] && [ ! -e "$WORK/units644/connector.service" ]
}
check "a token file others can read (0644, 0640) is refused, saying how to fix it" t_token_mode_refused

t_token_argv_refused() {
    local out rc a
    for a in "--token $TOKEN" "--token=$TOKEN" "--tok $TOKEN" "--state-dir /srv/x"; do
        out=$("$BIN/connector" service install --token-file "$WORK/token" --unit-dir "$WORK/units644" \
            --no-start $a 2>&1); rc=$?
        echo "$a -> rc=$rc: $out"
        [ $rc = 2 ] && [ ! -e "$WORK/units644/connector.service" ] || return 1
        ! echo "$out" | grep -qF "$TOKEN" || return 1
    done
    "$BIN/connector" service install --token "$TOKEN" --unit-dir "$WORK/units644" 2>&1 |
        grep -q "the token never goes on a command line"
}
check "service install refuses --token (and abbreviations of it) and --state-dir" t_token_argv_refused

t_connector_options_checked() {
    local out rc
    # What `run` would refuse is refused before anything is written.
    out=$("$BIN/connector" service install --token-file "$WORK/token" --unit-dir "$WORK/units644" \
        --no-start --ha-connections 99 2>&1); rc=$?
    echo "rc=$rc: $out"
    [ $rc = 2 ] && echo "$out" | grep -q "ha-connections must be 1-16" || return 1
    out=$("$BIN/connector" service install --token-file "$WORK/token" --unit-dir "$WORK/units644" \
        --no-start 2>&1); rc=$?
    echo "rc=$rc: $out"
    [ $rc = 2 ] && echo "$out" | grep -q "no route" && [ ! -e "$WORK/units644/connector.service" ]
}
check "service install checks the run options as run does (no unit for a connector that cannot run)" \
    t_connector_options_checked

# What systemd would do at start: the credential (a copy of the token, the
# service's), the state directory (0700, empty), ExecStart as written.
t_connector_unit_runs() {
    local cred=$WORK/cred state=$WORK/statedirs
    mkdir -p "$cred" "$state" && install -m 0400 "$WORK/token" "$cred/token"
    install -d -m 0700 "$state/connector"
    mapfile -d '' -t cmd < <(python3 "$HERE/unit_exec.py" "$UNITS/connector.service" \
        --cred "$cred" --state "$state" -0)
    echo "ExecStart: ${cmd[*]}"
    [ "${cmd[0]}" = "$BIN/connector" ] || return 1
    env -u HOME STATE_DIRECTORY="$state/connector" CREDENTIALS_DIRECTORY="$cred" \
        "${cmd[@]}" >> "$WORK/unit-connector.log" 2>&1 &
    UNIT_CONN_PID=$!; PIDS+=($UNIT_CONN_PID)
    wait_for 20 routed svc.example.test || { tail "$WORK/unit-connector.log"; return 1; }
    tcurl svc.example.test / | grep -qi "hello" || return 1
    # Its identity went to $STATE_DIRECTORY, the unit's state directory.
    ls -R "$state/connector"
    ls "$state"/connector/*/key.pem >/dev/null || return 1
    # Its operator listener is where the unit says (review 12.6).
    curl -sf http://127.0.0.1:$CN_METRICS_PORT/metrics | grep -q '^connector_build_info'
}
check "the connector's unit runs: token from the credential, state in \$STATE_DIRECTORY, requests served" \
    t_connector_unit_runs

t_connector_unit_reload() {
    # systemctl reload = ExecReload: SIGHUP re-reads --config.
    cat > "$WORK/config.json" <<EOF
{ "ingress": [ { "hostname": "svc.example.test", "service": "http_status:418" },
               { "service": "http_status:404" } ] }
EOF
    kill -HUP "$UNIT_CONN_PID"
    wait_for 10 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --cacert '$WORK/ca.pem' \
        --resolve svc.example.test:$HTTPS_PORT:127.0.0.1 https://svc.example.test:$HTTPS_PORT/)\" = 418 ]"
}
check "systemctl reload (SIGHUP) makes the unit's connector re-read its config" t_connector_unit_reload

t_connector_unit_stops() {
    # systemctl stop: SIGTERM drains and exits 0 within TimeoutStopSec.
    kill -TERM "$UNIT_CONN_PID"
    local i
    for i in $(seq 1 100); do kill -0 "$UNIT_CONN_PID" 2>/dev/null || break; sleep 0.1; done
    wait "$UNIT_CONN_PID"; local rc=$?
    echo "exit $rc"
    [ $rc = 0 ]
}
check "systemctl stop (SIGTERM) drains the unit's connector, exit 0" t_connector_unit_stops

t_edge_unit() {
    local out u=$UNITS/edge-sim.service
    out=$("$BIN/edge-sim" service install --unit-dir "$UNITS" --bin "$BIN/edge-sim" --no-start \
        --tunnel-addr 127.0.0.1:$EDGE2 --https-addr 127.0.0.1:$((EDGE2 + 1)) \
        --admin-addr 127.0.0.1:$((EDGE2 + 2)) --grace-period 1m) || { echo "$out"; return 1; }
    echo "$out"
    cat "$u"
    for line in "DynamicUser=yes" "StateDirectory=edge-sim" "StateDirectoryMode=0700" \
        "ProtectSystem=strict" "NoNewPrivileges=yes" "Restart=on-failure" "PrivateTmp=yes" \
        "CapabilityBoundingSet=" "AmbientCapabilities=" "TimeoutStopSec=75s"; do
        grep -qxF "$line" "$u" || { echo "missing: $line"; return 1; }
    done
    grep -qxF "ExecStart=$BIN/edge-sim serve --data-dir %S/edge-sim --tunnel-addr 127.0.0.1:$EDGE2 --https-addr 127.0.0.1:$((EDGE2 + 1)) --admin-addr 127.0.0.1:$((EDGE2 + 2)) --grace-period 1m" "$u" &&
        ! grep -q "LoadCredential\|CAP_NET_BIND_SERVICE\|ExecReload" "$u"
}
check "edge-sim service install writes a hardened unit, its data dir the state directory" t_edge_unit

t_edge_verify() {
    local out
    out=$(verify "$UNITS/edge-sim.service" 2>&1); local rc=$?
    echo "rc=$rc $out"
    [ $rc = 0 ] && [ -z "$out" ]
}
check "plain systemd-analyze verify (no MANPATH) passes on edge-sim's unit" t_edge_verify

t_edge_unit_runs() {
    local state=$WORK/statedirs
    install -d -m 0700 "$state/edge-sim"
    mapfile -d '' -t cmd < <(python3 "$HERE/unit_exec.py" "$UNITS/edge-sim.service" --state "$state" -0)
    echo "ExecStart: ${cmd[*]}"
    env -u HOME STATE_DIRECTORY="$state/edge-sim" "${cmd[@]}" >> "$WORK/unit-edge.log" 2>&1 &
    PIDS+=($!)
    wait_port 127.0.0.1 $((EDGE2 + 1)) && wait_port 127.0.0.1 $EDGE2 || return 1
    "$BIN/edge-sim" ca --data-dir "$state/edge-sim" | grep -q "BEGIN CERTIFICATE"
}
check "edge-sim's unit runs: it serves with its data in the state directory" t_edge_unit_runs

t_edge_low_port() {
    local u=$WORK/units-low/edge-sim.service
    mkdir -p "$WORK/units-low"
    "$BIN/edge-sim" service install --unit-dir "$WORK/units-low" --bin "$BIN/edge-sim" --no-start \
        --https-addr 0.0.0.0:443 || return 1
    grep -qxF "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" "$u" &&
        grep -qxF "AmbientCapabilities=CAP_NET_BIND_SERVICE" "$u" && verify "$u"
}
check "a listener below 1024 gives edge-sim's unit CAP_NET_BIND_SERVICE, and only then" t_edge_low_port

t_edge_refusals() {
    local out rc
    out=$("$BIN/edge-sim" service install --unit-dir "$WORK/units644" --no-start --data-dir /srv/e 2>&1); rc=$?
    echo "rc=$rc $out"
    [ $rc = 2 ] && echo "$out" | grep -q "leave out --data-dir" || return 1
    out=$("$BIN/edge-sim" service install --unit-dir "$WORK/units644" --no-start --idle-timeout 0 2>&1); rc=$?
    echo "rc=$rc $out"
    [ $rc = 2 ] && [ ! -e "$WORK/units644/edge-sim.service" ]
}
check "edge-sim service install refuses --data-dir and what serve refuses" t_edge_refusals

# Both daemons under strace, each started as its unit starts it, through
# enrolment, a request, a reload and a drain: no system call they make is one
# the units' SystemCallFilter refuses (systemd would fail it with EPERM).
t_syscalls_allowed() {
    local d=$WORK/sc u=$WORK/sc/edge-sim.service allow deny i p=$((PORT_BASE + 20)) cn en
    # As the service's dynamic user would (root's SQLite chowns its journals):
    # a uid of no one, owning the state directories and credential.
    local as=() asan="$ASAN_OPTIONS:detect_leaks=0:log_path=$d/san/asan"
    install -d -m 0700 "$d/state/edge-sim" "$d/state/connector" && install -d "$d/cred"
    install -d -m 1777 "$d/san"
    if [ "$(id -u)" = 0 ]; then
        as=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
        chown 65534:65534 "$d/state/edge-sim" "$d/state/connector"
    fi
    "$BIN/edge-sim" service unit --bin "$BIN/edge-sim" --tunnel-addr 127.0.0.1:$p \
        --https-addr 127.0.0.1:$((p + 1)) --admin-addr 127.0.0.1:$((p + 2)) > "$u" || return 1
    "$BIN/connector" service unit --token-file /etc/connector/token --config "$WORK/config.json" \
        --bin "$BIN/connector" --metrics 127.0.0.1:$((p + 3)) > "$d/connector.service" || return 1
    allow=$(sed -n 's/^SystemCallFilter=\([^~].*\)/\1/p' "$u" | tr '\n' ' ')
    deny=$(sed -n 's/^SystemCallFilter=~//p' "$u" | tr '\n' ' ')
    echo "filter: $allow minus $deny"
    [ -n "$allow" ] && diff <(grep ^SystemCallFilter "$u") <(grep ^SystemCallFilter "$d/connector.service") ||
        return 1
    # LeakSanitizer cannot run under ptrace.
    mapfile -d '' -t ecmd < <(python3 "$HERE/unit_exec.py" "$u" --state "$d/state" -0)
    ASAN_OPTIONS=$asan STATE_DIRECTORY="$d/state/edge-sim" \
        strace -f -qq -o "$d/edge.strace" "${as[@]}" "${ecmd[@]}" >> "$WORK/sc-edge.log" 2>&1 &
    local es=$!; PIDS+=($es)
    wait_port 127.0.0.1 $((p + 1)) || return 1
    en=$(pgrep -P "$es"); PIDS+=($en)
    "${as[@]}" "$BIN/edge-sim" ca --data-dir "$d/state/edge-sim" > "$d/ca.pem"
    (umask 077; "${as[@]}" "$BIN/edge-sim" tunnel create sc --hostname svc.example.test \
        --edge 127.0.0.1:$p --data-dir "$d/state/edge-sim" > "$d/cred/token" 2>/dev/null) || return 1
    [ "$(id -u)" != 0 ] || chown 65534 "$d/cred/token"
    mapfile -d '' -t ccmd < <(python3 "$HERE/unit_exec.py" "$d/connector.service" \
        --cred "$d/cred" --state "$d/state" -0)
    ASAN_OPTIONS=$asan STATE_DIRECTORY="$d/state/connector" CREDENTIALS_DIRECTORY="$d/cred" \
        strace -f -qq -o "$d/connector.strace" "${as[@]}" "${ccmd[@]}" >> "$WORK/sc-connector.log" 2>&1 &
    local cs=$!; PIDS+=($cs)
    sleep 0.5
    cn=$(pgrep -P "$cs"); PIDS+=($cn)
    code() { curl -s -o /dev/null -w '%{http_code}' --cacert "$d/ca.pem" \
        --resolve svc.example.test:$((p + 1)):127.0.0.1 https://svc.example.test:$((p + 1))/; }
    for i in $(seq 1 100); do [ "$(code)" = 418 ] && break; sleep 0.2; done
    [ "$(code)" = 418 ] || { tail -n 5 "$WORK/sc-connector.log"; return 1; }
    # The daemons are strace's children: signal them, as systemd would.
    kill -HUP "$cn"; sleep 0.5
    [ "$(code)" = 418 ] || return 1
    kill -TERM "$cn" "$en"
    for i in $(seq 1 100); do kill -0 "$cs" 2>/dev/null || kill -0 "$es" 2>/dev/null || break; sleep 0.1; done
    python3 "$HERE/syscall_filter.py" "$allow" "$deny" "$d/edge.strace" "$d/connector.strace" &&
        [ -z "$(ls "$d/san")" ]
}
check "the daemons make no system call their units' SystemCallFilter refuses (strace)" t_syscalls_allowed

t_uninstall() {
    local out rc p
    for p in connector edge-sim; do
        out=$("$BIN/$p" service uninstall --unit-dir "$UNITS") || { echo "$out"; return 1; }
        echo "$out"
        [ ! -e "$UNITS/$p.service" ] && echo "$out" | grep -qx "removed $UNITS/$p.service" || return 1
        out=$("$BIN/$p" service uninstall --unit-dir "$UNITS" 2>&1); rc=$?
        echo "again: rc=$rc $out"
        [ $rc = 1 ] && echo "$out" | grep -q "nothing to uninstall" || return 1
    done
    # A unit it did not write (a package's) is left alone.
    printf '[Unit]\nDescription=packaged\n' > "$UNITS/connector.service"
    out=$("$BIN/connector" service uninstall --unit-dir "$UNITS" 2>&1); rc=$?
    echo "foreign: rc=$rc $out"
    [ $rc = 1 ] && [ -e "$UNITS/connector.service" ]
}
check "service uninstall removes the unit it wrote, and only that" t_uninstall

# Every subcommand and what its usage must name.
HELP_CASES=(
    "connector run|connector run" "connector tunnel run|connector run"
    "connector ingress validate|connector ingress validate"
    "connector ingress rule|connector ingress rule" "connector access tcp|connector access tcp"
    "connector service install|connector service install"
    "connector service uninstall|connector service uninstall"
    "connector service unit|connector service unit"
    "edge-sim serve|edge-sim serve" "edge-sim tunnel create|edge-sim tunnel create"
    "edge-sim tunnel list|edge-sim tunnel list" "edge-sim tunnel delete|edge-sim tunnel delete"
    "edge-sim tunnel rotate-token|edge-sim tunnel rotate-token" "edge-sim ca|edge-sim ca"
    "edge-sim origin-ca|edge-sim origin-ca" "edge-sim origin-pull-ca|edge-sim origin-pull-ca"
    "edge-sim origin-cert create|edge-sim origin-cert create"
    "edge-sim client-cert create|edge-sim client-cert create"
    "edge-sim client-cert list|edge-sim client-cert list"
    "edge-sim client-cert revoke|edge-sim client-cert revoke"
    "edge-sim client-ca add|edge-sim client-ca add" "edge-sim client-ca update|edge-sim client-ca update"
    "edge-sim client-ca list|edge-sim client-ca list" "edge-sim client-ca delete|edge-sim client-ca delete"
    "edge-sim access set|edge-sim access set" "edge-sim access list|edge-sim access list"
    "edge-sim access delete|edge-sim access delete" "edge-sim access rotate-key|edge-sim access rotate-key"
    "edge-sim admin token|edge-sim admin token"
    "edge-sim service install|edge-sim service install"
    "edge-sim service uninstall|edge-sim service uninstall" "edge-sim service unit|edge-sim service unit"
)

t_help_everywhere() {
    local c cmd want out err rc flag
    for c in "${HELP_CASES[@]}"; do
        cmd=${c%%|*}; want=${c#*|}
        for flag in --help -h; do
            out=$("$BIN/"$cmd $flag 2>"$WORK/help.err"); rc=$?
            err=$(cat "$WORK/help.err")
            if [ $rc != 0 ] || [ -n "$err" ] || ! echo "$out" | grep -q "^usage: .*" ||
                ! echo "$out" | grep -qF "$want"; then
                echo "$cmd $flag: rc=$rc stderr=$err"; echo "$out" | head -5; return 1
            fi
        done
    done
    # In any position, and as `help COMMAND`.
    out=$("$BIN/edge-sim" tunnel create NAME --data-dir /nonexistent --help) &&
        echo "$out" | grep -q "^usage: edge-sim tunnel create" || return 1
    out=$("$BIN/connector" help service install) &&
        echo "$out" | grep -q "^usage: connector service install" || return 1
    "$BIN/connector" --help | grep -q "^usage: connector run" &&
        "$BIN/edge-sim" --help | grep -q "^usage: edge-sim serve"
}
check "--help and -h on every subcommand print its usage on stdout and exit 0 (edge-sim tunnel create --help said \"unknown or incomplete option\")" \
    t_help_everywhere

# The options a help text names: in its synopsis (up to the first empty
# line) and in its option list (lines "  --name ...").
help_opts() { # prog words...
    "$BIN/$1" "${@:2}" --help | awk 'NR == 1, /^$/ { print; next } /^  --/' |
        grep -oE -- '--[a-z0-9][a-z0-9-]*' | sort -u
}

t_man_names_every_option() {
    local c cmd prog o missing=""
    for c in "${HELP_CASES[@]}"; do
        cmd=${c%%|*}; prog=${cmd%% *}
        for o in $(help_opts $cmd); do
            # roff writes a hyphen as \-
            grep -qF -- "$(echo "$o" | sed 's/-/\\-/g')" "$ROOT/docs/man/$prog.1" ||
                missing="$missing $prog:$o"
        done
    done
    echo "missing from the man pages:${missing:- none}"
    [ -z "$missing" ]
}
check "the man pages describe every option the --help texts name" t_man_names_every_option

t_man_renders() {
    local p out
    for p in connector edge-sim; do
        out=$(MANWIDTH=80 man --warnings -l "$ROOT/docs/man/$p.1" 2>&1 >/dev/null)
        [ -z "$out" ] || { echo "$p.1: $out"; return 1; }
        out=$(MANWIDTH=80 man -l "$ROOT/docs/man/$p.1" 2>/dev/null)
        for s in NAME SYNOPSIS DESCRIPTION FILES ENVIRONMENT SIGNALS "EXIT STATUS" EXAMPLES; do
            echo "$out" | grep -q "^$s" || { echo "$p.1: no $s section"; return 1; }
        done
    done
}
check "man -l renders both man pages without warnings, with every section" t_man_renders

# complete PROG WORDS... : what the completion offers for the last word.
complete_words() {
    local prog=$1; shift
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        f=$(complete -p "$1" | sed -n "s/.*-F \([^ ]*\).*/\1/p"); "$f"; printf "%s\n" "${COMPREPLY[@]}"' \
        _ "$ROOT/scripts/completion/$prog" "$prog" "$@"
}

t_completion() {
    local got c cmd prog o opts missing=""
    bash -n "$ROOT/scripts/completion/connector" && bash -n "$ROOT/scripts/completion/edge-sim" || return 1
    got=$(complete_words connector se); echo "connector se -> $got"; [ "$got" = service ] || return 1
    got=$(complete_words connector service un | tr '\n' ' '); echo "$got"; [ "$got" = "uninstall unit " ] || return 1
    got=$(complete_words edge-sim client-c | tr '\n' ' '); echo "$got"; [ "$got" = "client-cert client-ca " ] || return 1
    got=$(complete_words edge-sim tunnel rot); [ "$got" = rotate-token ] || return 1
    got=$(complete_words connector run --loglevel w); [ "$got" = warn ] || return 1
    # Loaded the way bash-completion loads it, by name.
    if [ -r /usr/share/bash-completion/bash_completion ]; then
        bash -c 'source /usr/share/bash-completion/bash_completion; source "$1"; complete -p connector' \
            _ "$ROOT/scripts/completion/connector" | grep -q _connector || return 1
    fi
    # Every option of every subcommand's help is offered after the subcommand
    # (serve's usage is the program's: only its own synopsis counts; --token
    # and --data-dir are named by service's help as refused).
    for c in "${HELP_CASES[@]}"; do
        cmd=${c%%|*}; prog=${cmd%% *}
        got=" $(complete_words $cmd -- | tr '\n' ' ') "
        if [ "$cmd" = "edge-sim serve" ]; then
            opts=$("$BIN/edge-sim" serve --help | sed -n '1p; 2,/^       edge-sim /{/^       edge-sim /!p}' |
                grep -oE -- '--[a-z0-9][a-z0-9-]*' | sort -u)
        else
            opts=$(help_opts $cmd)
        fi
        for o in $opts; do
            case "$cmd $o" in
            *" --version" | *"service install --token" | *"service unit --token" | \
                *"service install --data-dir" | *"service unit --data-dir") continue ;;
            esac
            [[ $got == *" $o "* ]] || missing="$missing [$cmd $o]"
        done
    done
    echo "not completed:${missing:- none}"
    [ -z "$missing" ]
}
check "the bash completions load and complete subcommands and every option --help names" t_completion

finish
