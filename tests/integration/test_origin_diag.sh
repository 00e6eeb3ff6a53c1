#!/bin/bash
# Why an origin failed, when the connector presents a client certificate
# (originCert): the cause comes from the failing connection's own TLS
# records (an alert refusing the certificate), never from curl's message
# text, and an origin that accepted the certificate is not blamed on it.
# (An origin that refuses the certificate is named when its alert reaches
# the connector; one that resets at once can lose the alert with the reset,
# so that case is not asserted here.)
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

start_edge
MTLS_PORT=$((PORT_BASE + 8))
make_client_cert
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -keyout "$WORK/srv.key" -out "$WORK/srv.pem" 2>/dev/null
# The origin trusts the connector's client CA.
$PY "$HERE/mtls_origin.py" $MTLS_PORT "$WORK/srv.pem" "$WORK/srv.key" "$WORK/cca.pem" \
    >> "$WORK/mtls.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 $MTLS_PORT
cat > "$WORK/config.json" <<JSON
{
  "ingress": [
    { "hostname": "mute.example.test", "service": "https://127.0.0.1:$MTLS_PORT",
      "originRequest": { "noTLSVerify": true, "originCert": "$WORK/client.pem", "originKey": "$WORK/client.key" } },
    { "hostname": "up.example.test", "service": "hello_world" },
    { "service": "http_status:418" }
  ]
}
JSON
TOKEN=$(create_tunnel home)
start_connector "$TOKEN" --config "$WORK/config.json"
wait_for 20 routed up.example.test || log "tunnel never came up"

error_code() { # host path -> the tunnel-error field of the answer
    tcurl "$1" "$2" -D - -o /dev/null | tr -d '\r' | sed -n 's/^tunnel-error: //Ip'
}

t_accepted_then_nothing() {
    local c; c=$(error_code mute.example.test /nothing); echo "tunnel-error: $c"
    [ "$c" = origin_empty ] && grep -q "request: b'GET /nothing HTTP/1.1' certificate: True" "$WORK/mtls.log"
}
check "review 10.1: an mTLS origin that accepted the certificate and closed without answering gets 502 origin_empty, not a certificate error" \
    t_accepted_then_nothing

t_accepted_then_reset() {
    local c; c=$(error_code mute.example.test /reset); echo "tunnel-error: $c"
    [ "$c" = origin_error ]
}
check "review 10.1: an mTLS origin that accepted the certificate and reset gets 502 origin_error" \
    t_accepted_then_reset

finish
