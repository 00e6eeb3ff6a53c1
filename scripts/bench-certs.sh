#!/usr/bin/env bash
# Generate the throw-away PKI used by scripts/bench.sh.
#
#   scripts/bench-certs.sh OUTDIR
#
# Creates in OUTDIR (EC P-256 keys, valid 2 days):
#   ca.pem / ca.key       bench CA
#   edge.pem / edge.key   hop 1 frontend: CN=localhost, SAN DNS:localhost, IP:127.0.0.1
#   hop2.pem / hop2.key   hop 2 frontend: CN=tunnel.local, SAN DNS:tunnel.local
#   conn.pem / conn.key   client certificate hop 1 presents to hop 2
# A minimal openssl config is written too, so the system openssl.cnf is not needed.
set -euo pipefail

out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
cd "$out"

cat >openssl.cnf <<'EOF'
[req]
distinguished_name = dn
prompt             = no
[dn]
[v3_ca]
basicConstraints       = critical,CA:TRUE
keyUsage               = critical,keyCertSign,cRLSign
subjectKeyIdentifier   = hash
EOF

genkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

genkey ca.key
openssl req -config openssl.cnf -x509 -new -key ca.key -sha256 -days 2 \
    -subj '/CN=bench CA' -extensions v3_ca -out ca.pem

# leaf NAME CN EKU [SAN]
leaf() {
    local name=$1 cn=$2 eku=$3 san=${4:-}
    genkey "$name.key"
    openssl req -config openssl.cnf -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
    {
        echo 'basicConstraints       = critical,CA:FALSE'
        echo 'keyUsage               = critical,digitalSignature'
        echo "extendedKeyUsage       = $eku"
        echo 'subjectKeyIdentifier   = hash'
        echo 'authorityKeyIdentifier = keyid'
        if [ -n "$san" ]; then echo "subjectAltName         = $san"; fi
    } >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key \
        -set_serial "0x$(openssl rand -hex 8)" -days 2 -sha256 \
        -extfile "$name.ext" -out "$name.pem" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
}

leaf edge localhost    serverAuth 'DNS:localhost,IP:127.0.0.1'
leaf hop2 tunnel.local serverAuth 'DNS:tunnel.local'
leaf conn connector    clientAuth

chmod 600 ./*.key
for c in edge hop2 conn; do
    openssl verify -CAfile ca.pem "$c.pem" >/dev/null
done
