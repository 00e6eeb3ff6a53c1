#!/bin/bash
# Connector hardening (issue 7): request paths are normalised before the
# ingress rules see them (defect 6), config values that would end up in
# headers or curl options are refused (defect 11), and state files and
# directories are created and checked like ssh does (defect 12).
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3 # Debian's, which has python3-websockets

start_edge
start_origin
WS_PORT=$((PORT_BASE + 9))
$PY "$HERE/ws_echo.py" $WS_PORT >> "$WORK/ws.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 $WS_PORT

cat > "$WORK/paths.json" <<JSON
{
  "ingress": [
    { "hostname": "paths.example.test", "path": "^/public/", "service": "http://127.0.0.1:$ORIGIN_PORT" },
    { "hostname": "ws.example.test", "path": "^/public/", "service": "http://127.0.0.1:$WS_PORT" },
    { "hostname": "up.example.test", "service": "hello_world" },
    { "service": "http_status:404" }
  ]
}
JSON
TOKEN=$(create_tunnel hard)
start_connector "$TOKEN" --config "$WORK/paths.json"
wait_for 20 routed up.example.test || log "tunnel never came up"

# pcurl PATH [curl args]: the status the origin-or-connector answers for
# PATH, sent verbatim (no client-side dot-segment removal).
pcurl() {
    local path=$1; shift
    tcurl paths.example.test "$path" --path-as-is -o "$WORK/body" -w '%{http_code}' "$@"
}

# ---- defect 6: dot segments ----

t_dotdot_not_routed() {
    local v c
    for v in --http1.1 --http2; do
        # The origin answers 200 to any path: a 404 comes from the catch-all.
        c=$(pcurl /public/../secret/headers $v); echo "$v /public/../secret/headers -> $c"
        [ "$c" = 404 ] || { cat "$WORK/body"; echo; return 1; }
        c=$(pcurl /public/../public/headers $v); echo "$v /public/../public/headers -> $c"
        [ "$c" = 200 ] || return 1
    done
}
check "defect 6: /public/../secret does not reach the origin behind a ^/public/ rule (404), HTTP/1.1 and HTTP/2" t_dotdot_not_routed

t_encoded_dotdot_not_routed() {
    local p c
    for p in /public/%2e%2e/secret/headers /public/%2E%2E/secret/headers /public/.%2e/secret/headers \
             /public/%2e./secret/headers; do
        c=$(pcurl "$p"); echo "$p -> $c"
        [ "$c" = 404 ] || { cat "$WORK/body"; echo; return 1; }
    done
}
check "defect 6: /public/%2e%2e/secret (encoded dots) does not reach the origin (404)" t_encoded_dotdot_not_routed

t_origin_sees_normalised() {
    local c
    c=$(pcurl '/public/a/../b/./c//headers?x=/../y&z=%2e%2E'); echo "-> $c: $(cat "$WORK/body")"
    [ "$c" = 200 ] || return 1
    python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))["path"]
assert p == "/public/b/c/headers?x=/../y&z=%2e%2E", p
' "$WORK/body" || return 1
    # Unreserved escapes are decoded, so an encoded letter still matches the rule.
    c=$(pcurl '/%70ublic/%7euser/headers'); echo "-> $c: $(cat "$WORK/body")"
    [ "$c" = 200 ] && grep -q '"path": "/public/~user/headers"' "$WORK/body"
}
check "defect 6: /public/a/../b reaches the origin as /public/b (query untouched, escapes normalised)" t_origin_sees_normalised

t_encoded_slash_400() {
    local p c
    for p in '/public/..%2Fsecret' '/public/..%2fsecret' '/public/..%5Csecret' '/public/a%00b' '/public/%zz'; do
        c=$(pcurl "$p" -D "$WORK/hdrs"); echo "$p -> $c $(grep -i '^tunnel-error' "$WORK/hdrs" | tr -d '\r')"
        [ "$c" = 400 ] && grep -qi '^tunnel-error: bad_path' "$WORK/hdrs" || { cat "$WORK/body"; echo; return 1; }
    done
    head -n 1 "$WORK/body"
}
check "defect 6: an encoded / or \\ (%2F, %5C), a %00 or a bad escape in the path gets 400 bad_path" t_encoded_slash_400

t_websocket_path() {
    local out
    out=$(timeout -k 10 20 $PY "$HERE/ws_client.py" path "wss://ws.example.test:$HTTPS_PORT/public/a/../headers" "$WORK/ca.pem")
    echo "/public/a/../headers: $out"
    [ "$out" = "path /public/headers" ] || return 1
    out=$(timeout -k 10 20 $PY "$HERE/ws_client.py" path "wss://ws.example.test:$HTTPS_PORT/public/%2e%2e/headers" "$WORK/ca.pem")
    echo "/public/%2e%2e/headers: $out"
    [ "$out" = "status 404" ]
}
check "defect 6: a WebSocket upgrade is routed and sent on by its normalised path" t_websocket_path

t_rule_command_normalises() {
    local out
    out=$("$BIN/connector" ingress rule --config "$WORK/paths.json" https://paths.example.test/public/../x) || return 1
    echo "$out"; [[ "$out" == "rule #4:"* ]] || return 1
    out=$("$BIN/connector" ingress rule --config "$WORK/paths.json" https://paths.example.test/public/a%2Fb 2>&1)
    echo "$out"; [[ "$out" == *"refused with 400"* ]]
}
check "defect 6: connector ingress rule matches the normalised path, as a request does" t_rule_command_normalises

# ---- defect 11: config values that reach headers and curl options ----

t_validate_header_values() {
    local out rc
    # JSON strings can carry "\r\n": each bad value is named with its rule.
    cat > "$WORK/crlf.json" <<JSON
{ "ingress": [
    { "hostname": "a.example.test", "service": "http://127.0.0.1:$ORIGIN_PORT" },
    { "hostname": "b.example.test", "service": "http://127.0.0.1:$ORIGIN_PORT",
      "originRequest": { "httpHostHeader": "internal.local\r\nX-Injected: 1" } },
    { "hostname": "c.example.test", "service": "https://127.0.0.1:$ORIGIN_PORT",
      "originRequest": { "originServerName": "portainer.local:443" } },
    { "hostname": "d.example.test", "service": "http://127.0.0.1 x:$ORIGIN_PORT" },
    { "service": "http_status:404" } ] }
JSON
    out=$("$BIN/connector" ingress validate --config "$WORK/crlf.json" 2>&1); rc=$?
    echo "$out"
    [ $rc = 1 ] &&
    echo "$out" | grep -qF 'rule #2: originRequest.httpHostHeader "internal.local\x0d\x0aX-Injected: 1" is not a valid Host value' &&
    echo "$out" | grep -qF 'rule #3: originRequest.originServerName "portainer.local:443" is not a valid hostname' &&
    echo "$out" | grep -qF 'rule #4: service "http://127.0.0.1 x:' &&
    ! echo "$out" | grep -q '^X-Injected'
}
check "defect 11: ingress validate refuses CR/LF, spaces and ':' in httpHostHeader, originServerName and service hosts, naming the rule" t_validate_header_values

t_flags_header_values() {
    local out rc
    out=$(timeout -k 10 10 "$BIN/connector" run --token "$TOKEN" --state-dir "$WORK/st-flags" --hostname a.example.test \
          --url "http://127.0.0.1:$ORIGIN_PORT" --http-host-header $'internal.local\r\nX-Injected: 1' 2>&1); rc=$?
    echo "$out"
    [ $rc = 2 ] && echo "$out" | grep -qF -- '--http-host-header "internal.local\x0d\x0aX-Injected: 1" is not a valid Host value' || return 1
    out=$(timeout -k 10 10 "$BIN/connector" run --token "$TOKEN" --state-dir "$WORK/st-flags" --hostname a.example.test \
          --url "https://127.0.0.1:$ORIGIN_PORT" --origin-server-name 'a.local:443' 2>&1); rc=$?
    echo "$out"
    [ $rc = 2 ] && echo "$out" | grep -qF -- '--origin-server-name "a.local:443" is not a valid hostname' || return 1
    out=$(timeout -k 10 10 "$BIN/connector" run --token "$TOKEN" --state-dir "$WORK/st-flags" --hostname a.example.test \
          --url $'http://127.0.0.1\r\nX-Injected: 1:80' 2>&1); rc=$?
    echo "$out"
    [ $rc = 2 ] && echo "$out" | grep -qF -- '--hostname a.example.test: service "http://127.0.0.1\x0d\x0aX-Injected: 1:80" has a control character'
}
check "defect 11: connector run refuses the same values given as --http-host-header, --origin-server-name and --url" t_flags_header_values

# ---- defect 12: state files and directories ----

TID=$(ls "$WORK/state" | head -n1) # the tunnel's directory under a state dir

t_state_dir_loose() {
    local d=$WORK/st-loose out rc
    mkdir -p "$d"; chmod 755 "$d"
    out=$(timeout -k 10 10 "$BIN/connector" run --token "$TOKEN" --state-dir "$d" --hostname loose.example.test \
          --url hello_world 2>&1); rc=$?
    echo "exit $rc: $out"
    [ $rc = 1 ] && echo "$out" | grep -qF "state directory $d is readable by others (mode 0755); run: chmod 700 $d" || return 1
    [ "$(stat -c %a "$d")" = 755 ] || return 1 # told, not silently changed
    # The tunnel's own directory inside a private state dir is checked too.
    d=$WORK/st-loose2; mkdir -m 700 "$d"; mkdir -m 775 "$d/$TID"; chmod 775 "$d/$TID"
    out=$(timeout -k 10 10 "$BIN/connector" run --token "$TOKEN" --state-dir "$d" --hostname loose.example.test \
          --url hello_world 2>&1); rc=$?
    echo "exit $rc: $out"
    [ $rc = 1 ] && echo "$out" | grep -qF "state directory $d/$TID is writable by others (mode 0775); run: chmod 700 $d/$TID"
}
check "defect 12: the connector refuses a 0755 state directory, naming the chmod that fixes it" t_state_dir_loose

t_key_file_loose() {
    local d=$WORK/st-key out rc
    mkdir -m 700 "$d" "$d/$TID"
    cp "$WORK/state/$TID/key.pem" "$d/$TID/key.pem"; chmod 644 "$d/$TID/key.pem"
    out=$(timeout -k 10 10 "$BIN/connector" run --token "$TOKEN" --state-dir "$d" --hostname loose.example.test \
          --url hello_world 2>&1); rc=$?
    echo "exit $rc: $out"
    [ $rc = 1 ] && echo "$out" | grep -qF "key file $d/$TID/key.pem is readable by others (mode 0644); run: chmod 600 $d/$TID/key.pem"
}
check "defect 12: the connector refuses a key file others can read (chmod 600 hint)" t_key_file_loose

t_edge_data_dir_loose() {
    local d=$WORK/edge-loose out rc
    mkdir -p "$d"; chmod 755 "$d"
    out=$("$BIN/edge-sim" ca --data-dir "$d" 2>&1); rc=$?
    echo "exit $rc: $out"
    [ $rc != 0 ] && echo "$out" | grep -qF "data directory $d is readable by others (mode 0755); run: chmod 700 $d" || return 1
    out=$(timeout -k 10 10 "$BIN/edge-sim" serve --data-dir "$d" --tunnel-addr 127.0.0.1:$((PORT_BASE + 11)) \
          --https-addr 127.0.0.1:$((PORT_BASE + 12)) --admin-addr 127.0.0.1:$((PORT_BASE + 13)) 2>&1); rc=$?
    echo "exit $rc: $out"
    [ $rc = 1 ] && echo "$out" | grep -qF "data directory $d is readable by others (mode 0755); run: chmod 700 $d" || return 1
    [ "$(stat -c %a "$d")" = 755 ] && [ -z "$(ls -A "$d")" ] || return 1
    # A CA key others can read, in a private data dir.
    d=$WORK/edge-keys; "$BIN/edge-sim" ca --data-dir "$d" >/dev/null || return 1
    chmod 640 "$d/client-ca.key"
    out=$("$BIN/edge-sim" ca --data-dir "$d" 2>&1); rc=$?
    echo "exit $rc: $out"
    [ $rc != 0 ] && echo "$out" | grep -qF "key file $d/client-ca.key is readable by others (mode 0640); run: chmod 600 $d/client-ca.key"
}
check "defect 12: the edge refuses a 0755 data directory and a CA key others can read, naming the chmod" t_edge_data_dir_loose

t_planted_symlink() {
    # Someone plants symlinks at the names the old code used for its temp
    # files: the connector must write its new key and certificate beside
    # them, never through them.
    local d=$WORK/st-plant f c
    mkdir -m 700 "$d" "$d/$TID"
    echo "not yours" > "$WORK/victim"; chmod 644 "$WORK/victim"
    ln -s "$WORK/victim" "$d/$TID/key.pem.tmp"
    ln -s "$WORK/victim" "$d/$TID/cert.pem.tmp"
    ln -s "$WORK/victim" "$d/$TID/origin-ca.pem.tmp"
    "$BIN/connector" run --token "$TOKEN" --state-dir "$d" --hostname plant.example.test --url hello_world \
        >> "$WORK/connector-plant.log" 2>&1 &
    c=$!; PIDS+=("$c")
    wait_for 20 test -s "$d/$TID/cert.pem" -a -s "$d/$TID/origin-ca.pem"; local ok=$?
    kill $c 2>/dev/null; wait $c 2>/dev/null
    [ $ok = 0 ] || { tail -5 "$WORK/connector-plant.log"; return 1; }
    ls -la "$d/$TID"
    [ "$(cat "$WORK/victim")" = "not yours" ] || { echo "victim overwritten"; return 1; }
    for f in key.pem cert.pem origin-ca.pem; do
        [ -f "$d/$TID/$f" ] && [ ! -L "$d/$TID/$f" ] && [ "$(stat -c %a "$d/$TID/$f")" = 600 ] || return 1
    done
    # Only the planted links and the three files: no temp file left behind.
    [ "$(ls -A "$d/$TID" | wc -l)" = 6 ]
}
check "defect 12: a symlink planted at the old temp-file name is not followed when the key and certificate are written" t_planted_symlink

finish
