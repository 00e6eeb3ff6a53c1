#!/bin/bash
# Who may come in: client certificates per hostname at the edge (edge-issued
# and bring-your-own CA, with revocation), the certificate details and the
# signed identity assertion the origin gets, and the connector enforcing the
# assertion itself. Real binaries, curl, openssl, python3-jwt, sshd.
source "$(dirname "$0")/lib.sh"
source "$HERE/chromium_cert.sh"
PY=/usr/bin/python3 # Debian's, with python3-jwt, -cryptography and -websockets

ECHO_WS_PORT=$((PORT_BASE + 9)); SSH_PORT=$((PORT_BASE + 13)); LOCAL_PORT=$((PORT_BASE + 12))
CLOSED_PORT=$((PORT_BASE + 16)) # nothing listens: a rule pointing here proves the origin was not contacted
start_edge
start_origin
$PY "$HERE/ws_echo.py" $ECHO_WS_PORT >> "$WORK/ws.log" 2>&1 &
PIDS+=($!)
start_sshd $SSH_PORT
wait_port 127.0.0.1 $ECHO_WS_PORT

cli() { "$BIN/edge-sim" "$@" --data-dir "$EDGE_DIR"; }
O=http://127.0.0.1:$ORIGIN_PORT
cat > "$WORK/config.json" <<JSON
{ "ingress": [
    { "hostname": "ha.example.test", "path": "^/ws/", "service": "http://127.0.0.1:$ECHO_WS_PORT" },
    { "hostname": "ha.example.test", "service": "$O" },
    { "hostname": "byo.example.test", "service": "$O" },
    { "hostname": "subj.example.test", "service": "$O" },
    { "hostname": "fp.example.test", "service": "$O" },
    { "hostname": "ssh.example.test", "service": "ssh://127.0.0.1:$SSH_PORT" },
    { "hostname": "req.example.test", "service": "$O",
      "originRequest": { "access": { "required": true } } },
    { "hostname": "aud.example.test", "service": "http://127.0.0.1:$CLOSED_PORT",
      "originRequest": { "access": { "required": true, "audience": "home-assistant" } } },
    { "hostname": "open.example.test", "path": "^/guarded", "service": "http://127.0.0.1:$CLOSED_PORT",
      "originRequest": { "access": { "required": true } } },
    { "hostname": "open.example.test", "service": "$O" },
    { "service": "http_status:404" } ] }
JSON
TOKEN=$(create_tunnel access)
start_connector "$TOKEN" --config "$WORK/config.json"
wait_for 20 routed open.example.test headers || log "tunnel never came up"

C=$WORK/certs
mkdir -p "$C"
# Edge-issued: phone (PKCS#12 with a generated password), tablet (to revoke).
cli client-cert create phone --out "$C" 2> "$WORK/phone.log"
PHONE_PW=$(sed -n 's/^edge-sim: PKCS#12 password: //p' "$WORK/phone.log")
printf 'correct horse battery\n' > "$WORK/pw.txt"
cli client-cert create tablet --out "$C" --p12-password-file "$WORK/pw.txt" 2>> "$WORK/edge-cli.log"
# Bring your own CA: made with openssl, as a team would.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/O=Team/CN=Team Root CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$C/team-ca.key" -out "$C/team-ca.pem" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > "$C/client.ext"
team_cert() { # name [ca prefix]
    local ca=${2:-$C/team-ca}
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=Team/CN=$1" \
        -keyout "$C/$1.key" -out "$C/$1.csr" 2>/dev/null &&
        openssl x509 -req -in "$C/$1.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -days 2 \
            -extfile "$C/client.ext" -out "$C/$1.pem" 2>/dev/null
}
team_cert alice
team_cert bob
$PY "$HERE/make_client_pki.py" expired "$C/team-ca.pem" "$C/team-ca.key" carol "$C/carol"
# A CA nobody trusts here.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=Stranger CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$C/stranger-ca.key" -out "$C/stranger-ca.pem" 2>/dev/null
team_cert mallory "$C/stranger-ca"

cli client-ca add team --cert "$C/team-ca.pem" 2>> "$WORK/edge-cli.log"
cli access set ha.example.test --require-cert 2>> "$WORK/edge-cli.log"
cli access set req.example.test --require-cert 2>> "$WORK/edge-cli.log"
cli access set aud.example.test --require-cert 2>> "$WORK/edge-cli.log"
cli access set byo.example.test --require-cert --ca team 2>> "$WORK/edge-cli.log"
cli access set '*.example.test' --require-cert --ca team 2>> "$WORK/edge-cli.log" # never wins over an exact name
cli access delete '*.example.test' 2>> "$WORK/edge-cli.log"
cli access set subj.example.test --require-cert --ca edge --ca team --allow-subject '^CN=alice,O=Team$' \
    2>> "$WORK/edge-cli.log"
sleep 1 # policies apply within a second

# status HOST PATH [curl args]: CODE gets the status code, BODY1 the body's
# first line ($WORK/body holds the body).
CODE= BODY1=
status() {
    local host=$1 path=$2; shift 2
    CODE=$(tcurl "$host" "$path" -o "$WORK/body" -w '%{http_code}' "$@")
    BODY1=$(head -n1 "$WORK/body" 2>/dev/null)
}
with() { echo --cert "$C/$1.pem" --key "$C/$1.key"; }
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f; }
hdr() { # name < headers JSON from origin.py: the value(s) of that header, one per line
    $PY -c 'import json,sys; n=sys.argv[1].lower(); [print(v) for k,v in json.load(sys.stdin)["headers"] if k.lower()==n]' "$1"
}

t_no_cert() {
    local s; status ha.example.test /headers; s=$CODE
    echo "$s $BODY1"
    [ "$s" = 403 ] && [ "$BODY1" = "403 Forbidden: no client certificate" ]
}
check "curl: no client certificate gets 403 with the plain reason first" t_no_cert

t_edge_cert() {
    local s; status ha.example.test /headers $(with phone); s=$CODE
    [ "$s" = 200 ] || { echo "status $s"; return 1; }
    local want; want=$(fp "$C/phone.pem")
    echo "fingerprint at origin: $(hdr x-client-cert-fingerprint-sha256 < "$WORK/body") want $want"
    [ "$(hdr x-client-cert-fingerprint-sha256 < "$WORK/body")" = "$want" ] &&
        [ "$(hdr x-client-cert-verified < "$WORK/body")" = SUCCESS ] &&
        [ "$(hdr x-client-cert-subject-dn < "$WORK/body")" = "CN=phone,O=tunnel edge-sim" ] &&
        [ -n "$(hdr x-client-cert-issuer-dn < "$WORK/body")" ] &&
        [ "$(hdr x-client-cert-serial < "$WORK/body" | sed 's/^0*//')" = "$(openssl x509 -in "$C/phone.pem" -noout -serial | sed 's/.*=//' | tr A-F a-f | sed 's/^0*//')" ] &&
        [ -n "$(hdr x-client-cert-not-before < "$WORK/body")" ] &&
        [ -n "$(hdr x-client-cert-not-after < "$WORK/body")" ] &&
        [ "$(hdr client-cert < "$WORK/body")" = ":$(openssl x509 -in "$C/phone.pem" -outform DER | base64 -w0):" ] &&
        [ "$(hdr edge-access-jwt-assertion < "$WORK/body" | tr -cd . | wc -c)" = 2 ]
}
check "curl: an edge-issued certificate gets 200; the origin sees its fingerprint, DNs, serial, dates, RFC 9440 Client-Cert and an assertion" t_edge_cert

t_chromium() {
    command -v chromium >/dev/null || { echo "chromium is not installed (scripts/deps.sh installs it)"; return 1; }
    local js='performance.getEntriesByType("navigation")[0].responseStatus + " " + document.body.innerText'
    local url="https://ha.example.test:$HTTPS_PORT/headers" with_cert without
    # The Home Assistant user: the .p12 imported into the browser's NSS store,
    # chosen automatically by the AutoSelectCertificateForUrls policy.
    chromium_home phone && chromium_nssdb_import "$C/phone.p12" "$PHONE_PW" || return 1
    chromium_autoselect_policy "https://[*.]example.test" "edge-sim client access CA"
    with_cert=$(chromium_fetch_text "$url" "$js" 30)
    chromium_home nocert || return 1
    without=$(chromium_fetch_text "$url" "$js" 30)
    echo "with the certificate: ${with_cert:0:60}...; without: ${without:0:60}"
    [[ "$with_cert" == "200 "* ]] && [[ "$with_cert" == *"$(fp "$C/phone.pem")"* ]] &&
        [[ "$without" == "403 403 Forbidden: no client certificate"* ]]
}
check "Chromium: the imported .p12 is chosen by policy and the page loads (the origin sees its fingerprint); without it, the 403 page" t_chromium

t_p12() {
    [ -n "$PHONE_PW" ] || { echo "no password printed"; return 1; }
    openssl pkcs12 -in "$C/phone.p12" -passin "pass:$PHONE_PW" -nokeys 2>/dev/null |
        openssl x509 -noout -subject | grep -q "CN *= *phone" || return 1
    ! openssl pkcs12 -in "$C/phone.p12" -passin pass:wrong -nokeys >/dev/null 2>&1 || return 1
    openssl pkcs12 -in "$C/tablet.p12" -passin "pass:correct horse battery" -nokeys 2>/dev/null | grep -q CERTIFICATE || return 1
    [ "$(stat -c %a "$C/phone.key") $(stat -c %a "$C/phone.p12")" = "600 600" ] || return 1
    { status ha.example.test /headers --cert-type P12 --cert "$C/phone.p12:$PHONE_PW"; [ "$CODE" = 200 ]; }
}
check "client-cert create: a PKCS#12 with the printed (or given) password, private files, usable by curl" t_p12

t_csr() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=whatever \
        -keyout "$WORK/laptop-own.key" -out "$WORK/laptop.csr" 2>/dev/null
    cli client-cert create laptop --csr "$WORK/laptop.csr" --out "$C" 2>> "$WORK/edge-cli.log" || return 1
    [ ! -e "$C/laptop.key" ] && [ ! -e "$C/laptop.p12" ] || { echo "a key or .p12 was written"; return 1; }
    cp "$WORK/laptop-own.key" "$C/laptop.key"
    # A request whose signature does not verify is refused.
    sed 's/^\(M[A-Za-z0-9]\{10\}\)[A-Za-z0-9]/\1A/' "$WORK/laptop.csr" > "$WORK/bad.csr"
    ! cli client-cert create bad --csr "$WORK/bad.csr" --out "$C" 2>> "$WORK/edge-cli.log" || return 1
    { status ha.example.test /headers $(with laptop); [ "$CODE" = 200 ]; }
}
check "client-cert create --csr signs the device's request; its own key works, nothing else is written" t_csr

t_byo() {
    local a b
    status byo.example.test /headers $(with alice); a=$CODE
    [ "$(hdr x-client-cert-subject-dn < "$WORK/body")" = "CN=alice,O=Team" ] || a="$a(dn $(hdr x-client-cert-subject-dn < "$WORK/body"))"
    status byo.example.test /headers $(with phone); b=$CODE; local b1=$BODY1
    echo "team cert: $a; edge-issued cert on a team-only host: $b $b1"
    [ "$a" = 200 ] && [ "$b" = 403 ] &&
        [ "$b1" = "403 Forbidden: client certificate issued by a CA this hostname does not trust" ]
}
check "curl: a certificate from the team's own CA (openssl, client-ca add) gets 200; the edge's own does not" t_byo

t_expired() {
    local s; status byo.example.test /headers $(with carol); s=$CODE; echo "$s $BODY1"
    [ "$s" = 403 ] && [ "$BODY1" = "403 Forbidden: client certificate expired" ]
}
check "curl: an expired certificate gets 403 (client certificate expired)" t_expired

t_other_ca() {
    local s; status ha.example.test /headers $(with mallory); s=$CODE; echo "$s $BODY1"
    [ "$s" = 403 ] && [ "$BODY1" = "403 Forbidden: client certificate issued by a CA this hostname does not trust" ]
}
check "curl: a certificate from another CA gets 403" t_other_ca

t_subject() {
    local a b
    status subj.example.test /headers $(with alice); a=$CODE
    status subj.example.test /headers $(with bob); b=$CODE; echo "alice $a, bob $b $BODY1"
    [ "$a" = 200 ] && [ "$b" = 403 ] && [ "$BODY1" = "403 Forbidden: client certificate subject not allowed" ] || return 1
    cli access set fp.example.test --require-cert --ca team --allow-fingerprint "$(openssl x509 -in "$C/bob.pem" -noout -fingerprint -sha256 | sed 's/.*=//')" 2>> "$WORK/edge-cli.log"
    sleep 1
    status fp.example.test /headers $(with alice); a=$CODE; status fp.example.test /headers $(with bob); b=$CODE
    echo "by fingerprint: alice $a, bob $b"
    [ "$a" = 403 ] && [ "$b" = 200 ]
}
check "--allow-subject and --allow-fingerprint narrow a policy to named certificates" t_subject

t_not_a_ca() {
    # Defect (review): wolfSSL loads any certificate it is given as a CA, so
    # bob, a plain client certificate of the team CA, could sign a leaf
    # claiming to be alice and pass --allow-subject.
    $PY "$HERE/make_client_pki.py" sign "$C/bob.pem" "$C/bob.key" "CN=alice,O=Team" "$C/forged" || return 1
    local s; status subj.example.test /headers $(with forged); s=$CODE; echo "leaf signed by bob: $s $BODY1"
    [ "$s" = 403 ] && [ "$BODY1" = "403 Forbidden: client certificate issued by a CA this hostname does not trust" ]
}
check "defect 8.1: a client certificate that is not a CA cannot sign one that passes (chain leaf+bob)" t_not_a_ca

t_intermediate() {
    # A team sub-CA the client sends with its leaf is used to build the path.
    $PY "$HERE/make_client_pki.py" sign "$C/team-ca.pem" "$C/team-ca.key" "CN=Team Devices CA,O=Team" "$C/sub" ca &&
        head -n "$(grep -n 'END CERTIFICATE' "$C/sub.pem" | head -1 | cut -d: -f1)" "$C/sub.pem" > "$C/sub-only.pem" &&
        $PY "$HERE/make_client_pki.py" sign "$C/sub-only.pem" "$C/sub.key" "CN=dave,O=Team" "$C/dave" || return 1
    local s; status byo.example.test /headers $(with dave); s=$CODE
    echo "leaf under an intermediate the client sends: $s $BODY1"
    [ "$s" = 200 ] && [ "$(hdr x-client-cert-subject-dn < "$WORK/body")" = "CN=dave,O=Team" ]
}
check "a leaf issued by a team sub-CA that the client sends along gets 200" t_intermediate

t_resume_tls12() {
    local out; out=$($PY "$HERE/access_client.py" resume ha.example.test $HTTPS_PORT "$WORK/ca.pem" "$C/phone.pem" "$C/phone.key" /headers)
    echo "TLS 1.2: $out"
    [ "$out" = "full 200 resumed 200" ]
}
check "defect 8.4: a resumed TLS 1.2 session keeps its client certificate (no 1.2 tickets)" t_resume_tls12

t_revoke_edge() {
    { status ha.example.test /headers $(with tablet); [ "$CODE" = 200 ]; } || return 1
    # One connection: a request before the revoke, one after it.
    local out; out=$($PY "$HERE/access_client.py" keepalive ha.example.test $HTTPS_PORT "$WORK/ca.pem" \
        "$C/tablet.pem" "$C/tablet.key" /headers -- "$BIN/edge-sim" client-cert revoke tablet --data-dir "$EDGE_DIR")
    echo "open connection: $out"
    local s; status ha.example.test /headers $(with tablet); s=$CODE; echo "new connection: $s $BODY1"
    [ "$out" = "200 403 403 Forbidden: client certificate revoked" ] && [ "$s" = 403 ] &&
        [ "$BODY1" = "403 Forbidden: client certificate revoked" ] &&
        cli client-cert list | grep -E "^tablet .* revoked " >/dev/null &&
        { status ha.example.test /headers $(with phone); [ "$CODE" = 200 ]; }
}
check "client-cert revoke: within a second, on a new connection and at the next request of an open one" t_revoke_edge

t_revoke_crl() {
    $PY "$HERE/make_client_pki.py" crl "$C/team-ca.pem" "$C/team-ca.key" "$C/team.crl" "$C/bob.pem" || return 1
    { status byo.example.test /headers $(with bob); [ "$CODE" = 200 ]; } || return 1
    cli client-ca update team --crl "$C/team.crl" 2>> "$WORK/edge-cli.log" || return 1
    sleep 1
    local b a; status byo.example.test /headers $(with bob); b=$CODE; local b1=$BODY1
    status byo.example.test /headers $(with alice); a=$CODE
    echo "after the CRL: bob $b $b1, alice $a"
    [ "$b" = 403 ] && [ "$b1" = "403 Forbidden: client certificate revoked" ] && [ "$a" = 200 ] || return 1
    # Defect (review): only the leaf was checked, so a revoked sub-CA's
    # leaves kept passing. Now every certificate on the path is, and with
    # CRLs a leaf whose issuer has none is refused.
    status byo.example.test /headers $(with dave); local d=$CODE d1=$BODY1
    $PY "$HERE/make_client_pki.py" crl "$C/team-ca.pem" "$C/team-ca.key" "$C/team2.crl" "$C/bob.pem" "$C/sub-only.pem" || return 1
    cli client-ca update team --crl "$C/team2.crl" 2>> "$WORK/edge-cli.log" || return 1
    sleep 1
    status byo.example.test /headers $(with dave); local r=$CODE r1=$BODY1
    echo "dave (sub-CA has no CRL here): $d $d1; after the sub-CA is revoked: $r $r1"
    [ "$d" = 403 ] && [ "$d1" = "403 Forbidden: client certificate revocation status unknown: no CRL for its issuer" ] &&
        [ "$r" = 403 ] && [ "$r1" = "403 Forbidden: client certificate revoked" ]
}
check "client-ca update --crl: a listed certificate, or one under a listed sub-CA (defect 8.3), gets 403 within a second" t_revoke_crl

t_cert_request_only_with_policy() {
    local open ha
    open=$(openssl s_client -connect 127.0.0.1:$HTTPS_PORT -servername open.example.test -msg </dev/null 2>&1 | grep -c CertificateRequest)
    ha=$(openssl s_client -connect 127.0.0.1:$HTTPS_PORT -servername ha.example.test -msg </dev/null 2>&1 | grep -c CertificateRequest)
    echo "CertificateRequest messages: open host $open, protected host $ha"
    [ "$open" = 0 ] && [ "$ha" -ge 1 ]
}
check "handshake: a hostname without a policy sends no CertificateRequest (openssl s_client)" t_cert_request_only_with_policy

t_421() {
    local h1 h2 back
    h1=$(tcurl open.example.test /headers --http1.1 -H "Host: ha.example.test" -o /dev/null -w '%{http_code}')
    h2=$(tcurl open.example.test /headers --http2 -H "Host: ha.example.test" -o /dev/null -w '%{http_code}')
    back=$(tcurl ha.example.test /headers --http2 $(with phone) -H "Host: open.example.test" -o /dev/null -w '%{http_code}')
    echo "open connection asking for ha: HTTP/1.1 $h1, HTTP/2 $h2; ha connection asking for open: $back"
    [ "$h1" = 421 ] && [ "$h2" = 421 ] && [ "$back" = 421 ]
}
check "SNI/Host mismatch gets 421 over HTTP/1.1 and HTTP/2 (no way from an open connection to a protected host)" t_421

t_strip() {
    local spoof=(-H "X-Client-Cert-Verified: SUCCESS" -H "X-Client-Cert-Subject-DN: CN=admin"
                 -H "Client-Cert: :AAAA:" -H "Client-Cert-Chain: :AAAA:" -H "Edge-Access-Jwt-Assertion: forged.x.y"
                 -H "X-Client-Cert-Fingerprint-SHA256: 00" -H "X_Client_Cert_Verified: SUCCESS"
                 -H "Edge_Access_Jwt_Assertion: forged.x.y")
    { status open.example.test /headers "${spoof[@]}"; [ "$CODE" = 200 ]; } || return 1
    cp "$WORK/body" "$WORK/open.json"
    { status ha.example.test /headers $(with phone) "${spoof[@]}"; [ "$CODE" = 200 ]; } || return 1
    echo "open: verified=$(hdr x-client-cert-verified < "$WORK/open.json") dn=[$(hdr x-client-cert-subject-dn < "$WORK/open.json")]" \
         "protected: dn=[$(hdr x-client-cert-subject-dn < "$WORK/body")]"
    [ "$(hdr x-client-cert-verified < "$WORK/open.json")" = NONE ] &&
        [ -z "$(hdr x-client-cert-subject-dn < "$WORK/open.json")$(hdr client-cert < "$WORK/open.json")$(hdr client-cert-chain < "$WORK/open.json")$(hdr edge-access-jwt-assertion < "$WORK/open.json")$(hdr x-client-cert-fingerprint-sha256 < "$WORK/open.json")" ] &&
        [ "$(hdr x-client-cert-subject-dn < "$WORK/body")" = "CN=phone,O=tunnel edge-sim" ] &&
        [ "$(hdr x-client-cert-verified < "$WORK/body")" = SUCCESS ] &&
        [ "$(hdr edge-access-jwt-assertion < "$WORK/body" | wc -l)" = 1 ] &&
        [ "$(hdr edge-access-jwt-assertion < "$WORK/body")" != forged.x.y ] &&
        [ -z "$(hdr client-cert-chain < "$WORK/body")" ] &&
        # CGI, WSGI, PHP and Rack read '_' as '-': those spellings go too.
        [ -z "$(hdr x_client_cert_verified < "$WORK/open.json")$(hdr edge_access_jwt_assertion < "$WORK/open.json")$(hdr x_client_cert_verified < "$WORK/body")" ]
}
check "spoofed certificate headers and a spoofed assertion never reach the origin (also spelled with underscores)" t_strip

ISSUER=$(cli access list | sed -n 's/^issuer: //p')
jwt_of() { status "$1" /headers $(with phone); hdr edge-access-jwt-assertion < "$WORK/body"; }

t_jwt_python() {
    local tok; tok=$(jwt_of ha.example.test)
    curl -sS "http://127.0.0.1:$ADMIN_PORT/.well-known/jwks.json" -o "$WORK/jwks-admin.json" || return 1
    tcurl open.example.test /.well-known/edge-sim/jwks.json -o "$WORK/jwks-edge.json" || return 1
    # Served by the edge on a protected hostname too, without a certificate.
    { status ha.example.test /.well-known/edge-sim/jwks.json; [ "$CODE" = 200 ]; } || return 1
    cmp -s "$WORK/jwks-admin.json" "$WORK/jwks-edge.json" || { echo "the two JWKS differ"; return 1; }
    echo "issuer $ISSUER"
    $PY "$HERE/jwt_check.py" "$WORK/jwks-admin.json" "$tok" ha.example.test "$ISSUER" > "$WORK/claims.json" || return 1
    cat "$WORK/claims.json"
    $PY - "$WORK/claims.json" "$(fp "$C/phone.pem")" <<'PY'
import base64, json, sys
c = json.load(open(sys.argv[1]))
x5t = base64.urlsafe_b64encode(bytes.fromhex(sys.argv[2])).rstrip(b"=").decode()
assert c["sub"] == "CN=phone,O=tunnel edge-sim", c
assert c["cnf"]["x5t#S256"] == x5t, (c["cnf"], x5t)
assert 0 < c["exp"] - c["iat"] <= 600, c
PY
    # The wrong audience fails in PyJWT too.
    ! $PY "$HERE/jwt_check.py" "$WORK/jwks-admin.json" "$tok" other.example.test "$ISSUER" >/dev/null
}
check "an origin in Python (python3-jwt) fetches the JWKS (admin and through the edge) and verifies the assertion" t_jwt_python

t_connector_enforces() {
    local ok missing aud
    status req.example.test /headers $(with phone); ok=$CODE
    status open.example.test /guarded; missing=$CODE; local m1=$BODY1
    status aud.example.test /headers $(with phone); aud=$CODE; local a1=$BODY1
    echo "good: $ok; no assertion: $missing $m1; wrong audience: $aud $a1"
    [ "$ok" = 200 ] && [ "$missing" = 403 ] && [[ "$m1" == *"no assertion"* ]] &&
        [ "$aud" = 403 ] && [[ "$a1" == *"wrong audience"* ]]
}
check "connector access.required: a good assertion passes; missing or for another audience gets 403 before the origin" t_connector_enforces

t_rotate() {
    local t1 t2 k1 k2
    t1=$(jwt_of ha.example.test)
    cli access rotate-key 2>> "$WORK/edge-cli.log" || return 1
    sleep 1.2
    t2=$(jwt_of ha.example.test)
    k1=$($PY -c 'import base64,json,sys; h=sys.argv[1].split(".")[0]; print(json.loads(base64.urlsafe_b64decode(h+"="*(-len(h)%4)))["kid"])' "$t1")
    k2=$($PY -c 'import base64,json,sys; h=sys.argv[1].split(".")[0]; print(json.loads(base64.urlsafe_b64decode(h+"="*(-len(h)%4)))["kid"])' "$t2")
    curl -sS "http://127.0.0.1:$ADMIN_PORT/.well-known/jwks.json" -o "$WORK/jwks2.json" || return 1
    echo "kids: $k1 -> $k2; keys published: $($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["keys"]))' "$WORK/jwks2.json")"
    [ "$k1" != "$k2" ] &&
        $PY "$HERE/jwt_check.py" "$WORK/jwks2.json" "$t1" ha.example.test "$ISSUER" >/dev/null &&
        $PY "$HERE/jwt_check.py" "$WORK/jwks2.json" "$t2" ha.example.test "$ISSUER" >/dev/null &&
        { status req.example.test /headers $(with phone); [ "$CODE" = 200 ]; } # the connector got the new key
}
check "access rotate-key: old and new assertions both verify; the connector takes the new key" t_rotate

t_websocket() {
    local with_cert without
    with_cert=$($PY "$HERE/access_client.py" ws ha.example.test $HTTPS_PORT "$WORK/ca.pem" "$C/phone.pem" "$C/phone.key" /ws/echo)
    without=$($PY "$HERE/access_client.py" ws ha.example.test $HTTPS_PORT "$WORK/ca.pem" - - /ws/echo)
    echo "with a certificate: $with_cert; without: $without"
    [ "$with_cert" = "echo:hello through a policy" ] && [ "$without" = "refused:403" ]
}
check "a WebSocket through a policy: echoes with a certificate, 403 without" t_websocket

t_ws_revoked() {
    cli client-cert create watch --out "$C" 2>> "$WORK/edge-cli.log" || return 1
    local out; out=$($PY "$HERE/access_client.py" ws-hold ha.example.test $HTTPS_PORT "$WORK/ca.pem" \
        "$C/watch.pem" "$C/watch.key" /ws/echo -- "$BIN/edge-sim" client-cert revoke watch --data-dir "$EDGE_DIR")
    echo "$out"
    [[ "$out" == "echo:before then closed after "* ]] && grep -q "access to ha.example.test withdrawn from an open WebSocket" "$WORK/edge.log"
}
check "a revocation also ends an open WebSocket of that certificate within a second or so" t_ws_revoked

t_tcp() {
    cli access set ssh.example.test --require-cert 2>> "$WORK/edge-cli.log"
    sleep 1
    local access=("$BIN/connector" access tcp --edge 127.0.0.1:$HTTPS_PORT --edge-ca "$WORK/ca.pem" --hostname ssh.example.test)
    local ssh=(ssh -q -i "$SSH_KEY" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10)
    local yes no
    yes=$(timeout -k 5 30 "${ssh[@]}" -o "ProxyCommand=${access[*]} --cert $C/phone.pem --key $C/phone.key" root@ssh.example.test 'echo hello-with-cert' 2>>"$WORK/ssh.err")
    no=$(timeout -k 5 30 "${ssh[@]}" -o "ProxyCommand=${access[*]}" root@ssh.example.test 'echo hello-without' 2>&1)
    echo "with a certificate: $yes; without: $(echo "$no" | tail -n1)"
    [ "$yes" = hello-with-cert ] && [[ "$no" != *hello-without* ]] && [[ "$no" == *403* ]]
}
check "ssh through access tcp to a protected hostname: works with --cert/--key, refused (403) without" t_tcp

finish
