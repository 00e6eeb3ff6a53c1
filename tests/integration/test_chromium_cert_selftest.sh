#!/bin/bash
# Proves chromium_cert.sh against a TLS server that asks for an optional client
# certificate and answers "cert:<subject CN>" or "nocert".
source "$(dirname "$0")/lib.sh"
source "$HERE/chromium_cert.sh"
SRV_PORT=$((PORT_BASE + 15))
C=$WORK/certs
mkdir -p "$C"
ec() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "$@" 2>/dev/null; }
ec -x509 -days 2 -subj "/CN=Selftest Client CA" -keyout "$C/ca.key" -out "$C/ca.pem"
ec -subj "/CN=alice phone" -keyout "$C/alice.key" -out "$C/alice.csr"
openssl x509 -req -in "$C/alice.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" -CAcreateserial \
    -days 2 -extfile <(printf 'extendedKeyUsage=clientAuth\n') -out "$C/alice.pem" 2>/dev/null
openssl pkcs12 -export -inkey "$C/alice.key" -in "$C/alice.pem" -name alice \
    -passout pass:'p w"1' -out "$C/alice.p12"
ec -x509 -days 2 -subj /CN=site.example.test -addext subjectAltName=DNS:site.example.test \
    -keyout "$C/srv.key" -out "$C/srv.pem"
cat > "$WORK/cert_echo.py" <<'PY'
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        c = self.connection.getpeercert()
        body = (f"cert:{dict(x[0] for x in c['subject'])['commonName']}" if c else "nocert").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3]); ctx.load_verify_locations(sys.argv[4])
ctx.verify_mode = ssl.CERT_OPTIONAL
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
PY
/usr/bin/python3 "$WORK/cert_echo.py" $SRV_PORT "$C/srv.pem" "$C/srv.key" "$C/ca.pem" >> "$WORK/srv.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 $SRV_PORT
URL=https://site.example.test:$SRV_PORT/
PAGE='performance.getEntriesByType("navigation")[0].responseStatus + " " + document.body.innerText'

chromium_home with-cert
chromium_nssdb_import "$C/alice.p12" 'p w"1'
chromium_home with-cert-strict
chromium_nssdb_import "$C/alice.p12" 'p w"1'
chromium_nssdb_trust_ca "$C/srv.pem"
chromium_home without-cert

expect_page() { # HOME_NAME WANT [SECONDS]; WANT "" = nothing loaded in time
    CHROMIUM_HOME=$WORK/chrome-home-$1
    local t0 out took
    t0=$(date +%s.%N)
    out=$(chromium_fetch_text "$URL" "$PAGE" "${3:-20}")
    took=$(elapsed "$t0")
    echo "page: '$out' ($took s)"
    [ "$out" = "$2" ] && { [ -n "$2" ] || awk -v t="$took" -v s="$3" 'BEGIN { exit !(t >= s) }'; }
}
t_no_policy_waits() { expect_page with-cert "" 5; }
t_wrong_issuer_waits() {
    chromium_autoselect_policy "https://[*.]example.test" "Another CA"
    expect_page with-cert "" 5
}
t_policy_selects() {
    CHROMIUM_AUTOSELECT=()
    chromium_autoselect_policy "https://[*.]example.test" "Selftest Client CA"
    expect_page with-cert "200 cert:alice phone"
}
t_trusted_server_ca() { expect_page with-cert-strict "200 cert:alice phone"; }
t_without_cert() { expect_page without-cert "200 nocert"; }
t_etc_policy() {
    [ "$(id -u)" = 0 ] || { echo "skipped: not root"; return 0; }
    local CHROMIUM_POLICY_ETC=1
    CHROMIUM_AUTOSELECT=()
    chromium_autoselect_policy "https://[*.]example.test" "Selftest Client CA"
    ls "$CHROMIUM_POLICY_FILE"
    expect_page with-cert "200 cert:alice phone"
    local rc=$?
    _chromium_policy_remove
    return $rc
}
check "a certificate and no policy: Chromium waits for a dialog" t_no_policy_waits
check "a policy for another issuer: Chromium waits for a dialog" t_wrong_issuer_waits
check "AutoSelectCertificateForUrls picks the imported PKCS#12 certificate" t_policy_selects
check "the same with the server CA trusted in NSS (no --ignore-certificate-errors)" t_trusted_server_ca
check "an NSS DB without the certificate sends none" t_without_cert
check "the policy from /etc/chromium/policies/managed (root)" t_etc_policy

finish
