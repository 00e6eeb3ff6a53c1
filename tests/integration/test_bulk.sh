#!/bin/bash
# 1 GiB down and 1 GiB up through the tunnel with bounded memory: peak RSS of
# edge-sim and of connector each stays under 96 MiB. Checksums compared.
source "$(dirname "$0")/lib.sh"
# Memory limits are about the binaries people run: use the release build
# (ASan's quarantine alone holds 256 MiB of freed memory).
BIN=$(cd "$(dirname "$0")/../.." && pwd)/build/release/bin

SIZE=${BULK_SIZE:-$((1 << 30))}
LIMIT_KIB=$((96 * 1024))

start_edge
start_origin
start_nginx
make_file "$WORK/www/big.bin" "$SIZE"
WANT=$(sha256sum < "$WORK/www/big.bin" | cut -d' ' -f1)

TOKEN=$(create_tunnel bulk)
start_connector "$TOKEN" --hostname files.example.test --url http://127.0.0.1:$NGINX_PORT \
    --hostname up.example.test --url http://127.0.0.1:$ORIGIN_PORT
wait_for 20 routed up.example.test || log "tunnel never came up"

rss_report() {
    local e c
    e=$(peak_rss_kib $EDGE_PID); c=$(peak_rss_kib $CONN_PID)
    echo "peak RSS: edge-sim $((e / 1024)) MiB, connector $((c / 1024)) MiB (limit 96 MiB)"
    [ "$e" -lt $LIMIT_KIB ] && [ "$c" -lt $LIMIT_KIB ]
}

t_download() {
    local t0 got
    t0=$(date +%s.%N)
    got=$(tcurl files.example.test /big.bin | sha256sum | cut -d' ' -f1)
    echo "1 GiB download in $(elapsed $t0) s"
    [ "$got" = "$WANT" ] && rss_report
}
check "1 GiB download intact with edge-sim and connector under 96 MiB RSS" t_download

t_download_h1_slow_reader() {
    # A client reading at 20 MB/s must not make either side buffer the file.
    local got
    got=$(tcurl files.example.test /big.bin --http1.1 --limit-rate 20M -r 0-209715199 | sha256sum | cut -d' ' -f1)
    local want
    want=$(head -c 209715200 "$WORK/www/big.bin" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$want" ] && rss_report
}
check "200 MiB ranged download by a slow HTTP/1.1 reader stays bounded" t_download_h1_slow_reader

t_upload() {
    local out t0
    t0=$(date +%s.%N)
    out=$(tcurl up.example.test /upload -X POST -T "$WORK/www/big.bin") || return 1
    echo "1 GiB upload in $(elapsed $t0) s: $out"
    echo "$out" | grep -q "\"sha256\": \"$WANT\"" && rss_report
}
check "1 GiB upload intact with edge-sim and connector under 96 MiB RSS" t_upload

finish
