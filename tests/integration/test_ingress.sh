#!/bin/bash
# Origins as people run them: a config file with ingress rules, HTTPS origins
# with self-signed or mismatched certificates, origins demanding a client
# certificate, Unix sockets, validation errors, SIGHUP reloads.
source "$(dirname "$0")/lib.sh"

start_edge
start_origin
start_nginx
make_file "$WORK/www/1.bin" 1
make_file "$WORK/www/100m.bin" $((100 << 20))
UNIX_SOCK=$WORK/api.sock
python3 "$HERE/origin.py" "unix:$UNIX_SOCK" >> "$WORK/origin-unix.log" 2>&1 &
PIDS+=($!)

# An HTTPS origin that requires a client certificate from our test CA.
MTLS_PORT=$((PORT_BASE + 8))
make_client_cert
python3 "$HERE/origin.py" $MTLS_PORT --tls "$WORK/origin.pem" "$WORK/origin.key" \
    --client-ca "$WORK/cca.pem" >> "$WORK/origin-mtls.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 $MTLS_PORT
for _ in $(seq 1 50); do [ -S "$UNIX_SOCK" ] && break; sleep 0.1; done

TLS=https://127.0.0.1:$NGINX_TLS_PORT
cat > "$WORK/config.json" <<JSON
{
  "originRequest": { "connectTimeout": 5 },
  "ingress": [
    { "hostname": "default.example.test", "service": "$TLS" },
    { "hostname": "noverify.example.test", "service": "$TLS", "originRequest": { "noTLSVerify": true } },
    { "hostname": "pool.example.test", "service": "$TLS",
      "originRequest": { "caPool": "$WORK/origin.pem", "originServerName": "portainer.local" } },
    { "hostname": "poolonly.example.test", "service": "$TLS", "originRequest": { "caPool": "$WORK/origin.pem" } },
    { "hostname": "mtls.example.test", "service": "https://127.0.0.1:$MTLS_PORT",
      "originRequest": { "noTLSVerify": true, "originCert": "$WORK/client.pem", "originKey": "$WORK/client.key" } },
    { "hostname": "nocert.example.test", "service": "https://127.0.0.1:$MTLS_PORT",
      "originRequest": { "noTLSVerify": true } },
    { "hostname": "*.apps.example.test", "path": "^/api/", "service": "unix:$UNIX_SOCK" },
    { "hostname": "*.apps.example.test", "service": "http://127.0.0.1:$NGINX_PORT" },
    { "hostname": "only-api.example.test", "path": "^/api/", "service": "http://127.0.0.1:$ORIGIN_PORT" },
    { "hostname": "hh.example.test", "service": "http://127.0.0.1:$ORIGIN_PORT",
      "originRequest": { "httpHostHeader": "internal.local" } },
    { "hostname": "big.example.test", "service": "http://127.0.0.1:$NGINX_PORT" },
    { "hostname": "stays.example.test", "service": "hello_world" },
    { "service": "http_status:418" }
  ]
}
JSON

TOKEN=$(create_tunnel home)
start_connector "$TOKEN" --config "$WORK/config.json"
wait_for 20 routed stays.example.test || log "tunnel never came up"

code_and_first_line() { # host path -> "CODE|first line"
    local out
    out=$(tcurl "$1" "$2" -w '\n%{http_code}')
    echo "$(echo "$out" | tail -n1)|$(echo "$out" | head -n1)"
}

t_self_signed() {
    local r; r=$(code_and_first_line default.example.test /1.bin); echo "$r"
    [[ "$r" == "502|"*"origin certificate for 127.0.0.1 is self-signed — set noTLSVerify, or caPool with originServerName"* ]] &&
        grep -q "default.example.test.*-> 502: origin certificate for 127.0.0.1 is self-signed" "$WORK/connector.log"
}
check "self-signed HTTPS origin: 502 naming the cause and the settings that fix it" t_self_signed

t_no_verify() {
    [ "$(tcurl noverify.example.test /1.bin -o /dev/null -w '%{http_code}')" = 200 ]
}
check "noTLSVerify: 200" t_no_verify

t_ca_pool_server_name() {
    [ "$(tcurl pool.example.test /1.bin -o /dev/null -w '%{http_code}')" = 200 ]
}
check "caPool + originServerName portainer.local: 200" t_ca_pool_server_name

t_ca_pool_mismatch() {
    local r; r=$(code_and_first_line poolonly.example.test /1.bin); echo "$r"
    [[ "$r" == "502|"*"origin certificate is for portainer.local, not 127.0.0.1 — set originServerName"* ]]
}
check "caPool alone: 502, certificate is for portainer.local, not 127.0.0.1" t_ca_pool_mismatch

t_client_cert() {
    [ "$(tcurl mtls.example.test /headers -o /dev/null -w '%{http_code}')" = 200 ]
}
check "origin requiring a client certificate: 200 with originCert/originKey" t_client_cert

t_client_cert_missing() {
    local r; r=$(code_and_first_line nocert.example.test /headers); echo "$r"
    [[ "$r" == "502|"*"origin requires a client certificate — set originPull (or originCert/originKey)"* ]]
}
check "origin requiring a client certificate: 502 without one, saying so" t_client_cert_missing

t_no_secrets_in_pages() {
    local p
    for h in default poolonly nocert; do
        p=$(tcurl $h.example.test /1.bin)
        if echo "$p" | grep -q "$WORK\|PRIVATE KEY\|/etc/"; then echo "$h leaks: $p"; return 1; fi
    done
}
check "error pages carry no file paths or key material" t_no_secrets_in_pages

t_unix_and_rules() {
    local j
    j=$(tcurl x.apps.example.test /api/headers) || return 1
    echo "$j" | grep -q '"path": "/api/headers"' || { echo "unix: $j"; return 1; }
    [ "$(tcurl deep.x.apps.example.test /1.bin | wc -c)" = 1 ] || { echo "wildcard->nginx failed"; return 1; }
    local r; r=$(code_and_first_line only-api.example.test /other); echo "$r"
    [[ "$r" == "418|"* ]] || return 1
    tcurl only-api.example.test /api/headers | grep -q '"path": "/api/headers"'
}
check "wildcard + path rules choose between a Unix-socket origin and nginx; http_status catch-all" t_unix_and_rules

t_host_header() {
    local j
    j=$(tcurl hh.example.test /headers) || return 1
    echo "$j" | python3 -c '
import json, sys
h = {k.lower(): v for k, v in json.load(sys.stdin)["headers"]}
assert h["host"] == "internal.local", h
assert h["x-forwarded-host"].startswith("hh.example.test"), h
'
}
check "httpHostHeader: origin sees Host internal.local and X-Forwarded-Host hh.example.test" t_host_header

validate_err() { # name json expected-text
    echo "$2" > "$WORK/bad-$1.json"
    local out rc
    out=$("$BIN/connector" ingress validate --config "$WORK/bad-$1.json" 2>&1); rc=$?
    echo "$out"
    [ $rc = 1 ] && echo "$out" | grep -qF "$3"
}
t_validation_errors() {
    validate_err nocatch '{"ingress":[{"hostname":"a.test","service":"hello_world"}]}' \
        'the last rule (#1) must match every request' &&
    validate_err early '{"ingress":[{"service":"hello_world"},{"hostname":"a.test","service":"hello_world"},{"service":"http_status:404"}]}' \
        'rule #1 matches every request, so the rules after it can never match: move it to the end' &&
    validate_err wildcard '{"ingress":[{"hostname":"a*.test","service":"hello_world"},{"service":"http_status:404"}]}' \
        'rule #1: hostname "a*.test" is not valid: a wildcard must be a leading "*."' &&
    validate_err regex '{"ingress":[{"hostname":"a.test","path":"(","service":"hello_world"},{"service":"http_status:404"}]}' \
        'rule #1: path "(" is not a valid regular expression' &&
    validate_err scheme '{"ingress":[{"hostname":"a.test","service":"localhost:8080"},{"service":"http_status:404"}]}' \
        'rule #1: service "localhost:8080" has no scheme' &&
    validate_err path '{"ingress":[{"hostname":"a.test","service":"http://localhost:8080/app"},{"service":"http_status:404"}]}' \
        'rule #1: service "http://localhost:8080/app" has a path' &&
    validate_err key '{"ingress":[{"hostname":"a.test","servce":"hello_world"},{"service":"http_status:404"}]}' \
        'rule #1: unknown key "servce" (a typo?' &&
    validate_err status '{"ingress":[{"service":"http_status:700"}]}' \
        'rule #1: service "http_status:700": the status must be a number from 100 to 599' &&
    { out=$("$BIN/connector" ingress validate --config "$WORK/missing.json" 2>&1); rc=$?; echo "$out";
      [ $rc = 1 ] && echo "$out" | grep -q "cannot read $WORK/missing.json"; } &&
    "$BIN/connector" ingress validate --config "$WORK/config.json"
}
check "ingress validate: every error with its rule and the fix, exit 1; valid file exit 0" t_validation_errors

t_rule_command() {
    "$BIN/connector" ingress rule --config "$WORK/config.json" https://a.apps.example.test/api/x | grep -q "^rule #7:" &&
    "$BIN/connector" ingress rule --config "$WORK/config.json" https://a.apps.example.test/x | grep -q "^rule #8:" &&
    "$BIN/connector" ingress rule --config "$WORK/config.json" https://nowhere.test/ | grep -q "^rule #13:"
}
check "ingress rule prints which rule a URL matches" t_rule_command

t_access_config() {
    validate_err access-typo '{"ingress":[{"hostname":"a.test","service":"hello_world","originRequest":{"access":{"requird":true}}},{"service":"http_status:404"}]}' \
        'rule #1: unknown originRequest.access setting "requird" (a typo? known: required, audience)' &&
    validate_err access-type '{"ingress":[{"hostname":"a.test","service":"hello_world","originRequest":{"access":{"required":"yes"}}},{"service":"http_status:404"}]}' \
        'rule #1: originRequest.access.required must be true or false' &&
    validate_err access-aud '{"ingress":[{"hostname":"a.test","service":"hello_world","originRequest":{"access":{"required":true,"audience":""}}},{"service":"http_status:404"}]}' \
        'rule #1: originRequest.access.audience must be a non-empty string' &&
    echo '{"originRequest":{"access":{"required":true}},"ingress":[{"hostname":"a.test","service":"hello_world"},{"hostname":"b.test","service":"hello_world","originRequest":{"access":{"audience":"bee"}}},{"service":"http_status:404"}]}' > "$WORK/access.json" &&
    "$BIN/connector" ingress rule --config "$WORK/access.json" https://A.test:8443/x |
        grep -qx 'rule #1: hostname a.test, path (any), service hello_world, identity assertion required for audience a.test' &&
    "$BIN/connector" ingress rule --config "$WORK/access.json" https://b.test/ | grep -q 'required for audience bee$'
}
check "originRequest.access: typos and bad types refused; ingress rule says what a rule requires" t_access_config

t_origin_pull_config() {
    validate_err pull-http '{"ingress":[{"hostname":"a.test","service":"http://127.0.0.1:1","originRequest":{"originPull":true}},{"service":"http_status:404"}]}' \
        'rule #1: originRequest.originPull needs an https:// or unix+tls: service' &&
    validate_err pull-type '{"ingress":[{"hostname":"a.test","service":"https://127.0.0.1:1","originRequest":{"originPull":1}},{"service":"http_status:404"}]}' \
        'rule #1: originRequest.originPull must be true or false' &&
    echo '{"originRequest":{"originPull":true},"ingress":[{"hostname":"a.test","service":"https://127.0.0.1:1"},{"hostname":"b.test","service":"http://127.0.0.1:2"},{"service":"http_status:404"}]}' > "$WORK/pull.json" &&
    "$BIN/connector" ingress rule --config "$WORK/pull.json" https://a.test/ |
        grep -qx "rule #1: hostname a.test, path (any), service https://127.0.0.1:1, presents the tunnel's origin-pull certificate (originPull)" &&
    "$BIN/connector" ingress rule --config "$WORK/pull.json" https://b.test/ |
        grep -qx 'rule #2: hostname b.test, path (any), service http://127.0.0.1:2'
}
check "originRequest.originPull: TLS services only; ingress rule says which rules present the origin-pull certificate" t_origin_pull_config

t_run_rejects_bad_config() {
    local out rc
    out=$("$BIN/connector" run --token "$TOKEN" --config "$WORK/bad-regex.json" --state-dir "$WORK/st2" 2>&1); rc=$?
    echo "$out"
    [ $rc = 2 ] && echo "$out" | grep -q "not a valid regular expression"
}
check "connector run validates the config before connecting" t_run_rejects_bad_config

t_sighup() {
    # A 100 MiB download from big.example.test runs while the config drops
    # big.example.test, adds new.example.test, and later a broken file is sent.
    local want out
    want=$(sha256sum < "$WORK/www/100m.bin" | cut -d' ' -f1)
    (tcurl big.example.test /100m.bin --limit-rate 25M | sha256sum | cut -d' ' -f1 > "$WORK/dl.sum") &
    local dl=$!
    sleep 1
    python3 - "$WORK/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["ingress"] = [r for r in c["ingress"] if r.get("hostname") != "big.example.test"]
c["ingress"].insert(0, {"hostname": "new.example.test", "service": "hello_world"})
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
    kill -HUP $CONN_PID
    wait_for 5 routed new.example.test || { echo "new hostname not routed"; return 1; }
    wait_for 5 bash -c "[ \"\$(curl -s --cacert $WORK/ca.pem --resolve big.example.test:$HTTPS_PORT:127.0.0.1 https://big.example.test:$HTTPS_PORT/1.bin -o /dev/null -w '%{http_code}')\" = 404 ]" ||
        { echo "removed hostname still routed"; return 1; }
    routed stays.example.test || { echo "untouched hostname broken"; return 1; }
    cp "$WORK/config.json" "$WORK/config.good"
    echo '{"ingress": [ {"hostname": "x.test", "service": "nope"} ]}' > "$WORK/config.json"
    kill -HUP $CONN_PID
    sleep 1
    grep -q "SIGHUP: .* is not valid; keeping the current rules" "$WORK/connector.log" || { echo "bad reload not reported"; return 1; }
    routed new.example.test || { echo "old rules lost after a bad reload"; return 1; }
    cp "$WORK/config.good" "$WORK/config.json"
    wait $dl
    echo "download sha256 $(cat "$WORK/dl.sum") want $want"
    [ "$(cat "$WORK/dl.sum")" = "$want" ]
}
check "SIGHUP adds and removes hostnames while a long download completes intact; a bad file keeps the old rules" t_sighup

finish
