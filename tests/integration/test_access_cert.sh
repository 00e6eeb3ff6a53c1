#!/bin/bash
# `connector access tcp --cert FILE --key FILE`: the client certificate is
# presented to the edge, checked against a stand-in edge that requires one
# (client_cert_edge.py: Python ssl with CERT_REQUIRED, then HTTP/2 echoing
# the CONNECT stream). Bad combinations and files are refused with exit
# status 2 before anything is listened on or dialled.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3 # Debian's, which has python3-h2

EDGE_PORT=$((PORT_BASE + 21)); LOCAL_PORT=$((PORT_BASE + 22))
C=$WORK/certs
mkdir -p "$C"

# A CA the stand-in edge trusts for clients (and uses for its own name), a
# client certificate from it, and one from a CA it does not trust.
make_certs() {
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    openssl req -x509 "${ec[@]}" -keyout "$C/ca.key" -out "$C/ca.pem" -subj /CN=test-client-ca -days 2
    openssl req -x509 "${ec[@]}" -keyout "$C/other-ca.key" -out "$C/other-ca.pem" -subj /CN=other-ca -days 2
    issue() { # name ca cn ext
        openssl req "${ec[@]}" -keyout "$C/$1.key" -out "$C/$1.csr" -subj "/CN=$3"
        printf '%s\n' "$4" > "$C/$1.ext"
        openssl x509 -req -in "$C/$1.csr" -CA "$C/$2.pem" -CAkey "$C/$2.key" -CAcreateserial \
            -days 2 -extfile "$C/$1.ext" -out "$C/$1.pem"
    }
    issue edge ca svc.example.test "subjectAltName=DNS:svc.example.test"
    issue laptop ca laptop "extendedKeyUsage=clientAuth"
    issue stranger other-ca stranger "extendedKeyUsage=clientAuth"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$C/unrelated.key"
    printf 'not a certificate\n' > "$C/garbage.pem"
    cp "$C/laptop.pem" "$C/cert-as.key"
    chmod 600 "$C"/*.key
    cp "$C/laptop.key" "$C/laptop-open.key" && chmod 644 "$C/laptop-open.key"
}
make_certs > "$WORK/openssl.log" 2>&1 || { cat "$WORK/openssl.log" >&2; exit 1; }

$PY "$HERE/client_cert_edge.py" $EDGE_PORT "$C/edge.pem" "$C/edge.key" "$C/ca.pem" \
    "$WORK/edge-seen.log" >> "$WORK/edge-py.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 $EDGE_PORT
: > "$WORK/edge-seen.log"

ACCESS=("$BIN/connector" access tcp --hostname svc.example.test --edge 127.0.0.1:$EDGE_PORT
        --edge-ca "$C/ca.pem")

# through STDIN: runs access tcp in stdio mode; prints its output.
through() {
    printf 'hello through the edge\n' | timeout -k 5 15 "${ACCESS[@]}" "$@" 2>"$WORK/access.err"
}

t_cert_presented() {
    : > "$WORK/edge-seen.log"
    local out
    out=$(through --cert "$C/laptop.pem" --key "$C/laptop.key")
    cat "$WORK/access.err" "$WORK/edge-seen.log"
    [ "$out" = "hello through the edge" ] || { echo "echo came back as: $out"; return 1; }
    grep -qx 'client CN=laptop' "$WORK/edge-seen.log"
}
check "access tcp --cert/--key: the edge verifies the certificate (CN=laptop) and the stream works" \
    t_cert_presented

t_no_cert_refused() {
    : > "$WORK/edge-seen.log"
    local out
    out=$(through)
    cat "$WORK/access.err" "$WORK/edge-seen.log"
    [ -z "$out" ] || return 1
    wait_for 5 grep -q 'handshake failed' "$WORK/edge-seen.log" || return 1
    ! grep -q 'client CN=' "$WORK/edge-seen.log"
}
check "access tcp without --cert: an edge requiring a certificate refuses the handshake" \
    t_no_cert_refused

t_other_ca_refused() {
    : > "$WORK/edge-seen.log"
    local out
    out=$(through --cert "$C/stranger.pem" --key "$C/stranger.key")
    cat "$WORK/access.err" "$WORK/edge-seen.log"
    [ -z "$out" ] || return 1
    wait_for 5 grep -q 'handshake failed' "$WORK/edge-seen.log" || return 1
    ! grep -q 'client CN=' "$WORK/edge-seen.log"
}
check "access tcp with a certificate from a CA the edge does not trust is refused by the edge" \
    t_other_ca_refused

# refused WANT ARGS...: exit status 2, stderr holds WANT, the edge saw no
# connection, and (with --url) nothing was listening.
refused() {
    local want=$1; shift
    : > "$WORK/edge-seen.log"
    local rc=0
    timeout -k 5 10 "${ACCESS[@]}" --url 127.0.0.1:$LOCAL_PORT "$@" \
        </dev/null >/dev/null 2>"$WORK/access.err" || rc=$?
    cat "$WORK/access.err"
    [ "$rc" = 2 ] || { echo "exit status $rc, want 2"; return 1; }
    grep -qF -- "$want" "$WORK/access.err" || { echo "stderr lacks: $want"; return 1; }
    grep -q 'forwarding' "$WORK/access.err" && { echo "it listened first"; return 1; }
    [ ! -s "$WORK/edge-seen.log" ] || { echo "it dialled the edge"; return 1; }
    ! (echo > /dev/tcp/127.0.0.1/$LOCAL_PORT) 2>/dev/null
}

check "--cert without --key: usage error (exit 2)" \
    refused "--cert and --key go together" --cert "$C/laptop.pem"
check "--key without --cert: usage error (exit 2)" \
    refused "--cert and --key go together" --key "$C/laptop.key"
check "--cert naming a missing file: exit 2 naming it" \
    refused "cannot read --cert $C/missing.pem: No such file" --cert "$C/missing.pem" \
    --key "$C/laptop.key"
check "--key naming a missing file: exit 2 naming it" \
    refused "cannot read --key $C/missing.key: No such file" --cert "$C/laptop.pem" \
    --key "$C/missing.key"
check "--cert that holds no certificate: exit 2" \
    refused "--cert $C/garbage.pem holds no PEM certificate" --cert "$C/garbage.pem" \
    --key "$C/laptop.key"
check "--key that holds no key: exit 2" \
    refused "--key $C/cert-as.key holds no PEM private key" --cert "$C/laptop.pem" \
    --key "$C/cert-as.key"
check "--key that is not the certificate's key: exit 2" \
    refused "--key $C/unrelated.key is not the key of the certificate in --cert $C/laptop.pem" \
    --cert "$C/laptop.pem" --key "$C/unrelated.key"
check "--key of another certificate: exit 2" \
    refused "is not the key of the certificate" --cert "$C/laptop.pem" --key "$C/stranger.key"
check "--key readable by others: exit 2 naming the fix (chmod 600)" \
    refused "chmod 600 $C/laptop-open.key" --cert "$C/laptop.pem" --key "$C/laptop-open.key"

t_usage_lists_options() {
    "$BIN/connector" access 2>&1 | grep -q -- '--cert FILE --key FILE'
}
check "access usage text names --cert FILE --key FILE" t_usage_lists_options

finish
