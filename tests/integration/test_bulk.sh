#!/bin/bash
# 1 GiB down and 1 GiB up through the tunnel with bounded memory: peak RSS of
# edge-sim and of connector each stays under 96 MiB. Checksums compared.
source "$(dirname "$0")/lib.sh"
# Memory limits are about the binaries people run: use the release build
# (ASan's quarantine alone holds 256 MiB of freed memory).
BIN=$(cd "$(dirname "$0")/../.." && pwd)/build/release/bin

SIZE=${BULK_SIZE:-$((1 << 30))}
# The 1 GiB file lives in /tmp: on a machine short of disk, use 256 MiB (the
# 5 GiB test below streams generated data and needs no disk).
avail_kib=$(df -Pk "$WORK" | awk 'NR == 2 {print $4}')
if [ "${avail_kib:-0}" -lt $((3 << 20)) ] && [ -z "${BULK_SIZE:-}" ]; then
    SIZE=$((256 << 20))
    log "only $((avail_kib >> 10)) MiB free in $WORK: using a $((SIZE >> 20)) MiB file"
fi
LIMIT_KIB=$((96 * 1024))

start_edge
start_origin
start_nginx
make_file "$WORK/www/big.bin" "$SIZE"
WANT=$(sha256sum < "$WORK/www/big.bin" | cut -d' ' -f1)

TOKEN=$(create_tunnel bulk)
# One tunnel connection: every stream below shares one HTTP/2 connection.
start_connector "$TOKEN" --hostname files.example.test --url http://127.0.0.1:$NGINX_PORT \
    --hostname up.example.test --url http://127.0.0.1:$ORIGIN_PORT --ha-connections 1
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

HUGE=${BULK_HUGE:-$((5 << 30))}
t_huge() {
    # 5 GiB each way, generated on the fly (no disk), compared by SHA-256.
    local want got t0 out
    want=$(python3 "$HERE/origin.py" gen $HUGE | sha256sum | cut -d' ' -f1)
    t0=$(date +%s.%N)
    got=$(tcurl up.example.test /gen/$HUGE | sha256sum | cut -d' ' -f1)
    echo "rates: $((HUGE >> 30)) GiB download in $(elapsed $t0) s"
    [ "$got" = "$want" ] || { echo "download digest $got != $want"; return 1; }
    t0=$(date +%s.%N)
    out=$(python3 "$HERE/origin.py" gen $HUGE | tcurl up.example.test /upload -T -) || return 1
    echo "rates: $((HUGE >> 30)) GiB upload (chunked) in $(elapsed $t0) s"
    echo "$out" | grep -q "\"sha256\": \"$want\"" || { echo "upload: $out"; return 1; }
    rss_report
}
check "5 GiB download and 5 GiB upload intact (SHA-256), memory bounded" t_huge

t_slow_beside_fast() {
    # A client reading at 100 KB/s holds back only its own stream: a second
    # download on the same tunnel connection runs at full speed beside it.
    local t0 fast_got slow_bytes slow_secs
    t0=$(date +%s.%N)
    tcurl files.example.test /big.bin --limit-rate 100K -o "$WORK/slow.out" &
    local slow=$!
    sleep 2
    local f0; f0=$(date +%s.%N)
    fast_got=$(tcurl files.example.test /big.bin | sha256sum | cut -d' ' -f1)
    local fast_secs; fast_secs=$(elapsed $f0)
    slow_bytes=$(stat -c %s "$WORK/slow.out")
    slow_secs=$(elapsed $t0)
    kill $slow 2>/dev/null; wait $slow 2>/dev/null
    awk -v fb=$SIZE -v fs=$fast_secs -v sb=$slow_bytes -v ss=$slow_secs 'BEGIN {
        printf "rates: fast reader %.1f MB/s (1 GiB in %.1f s) beside a slow reader at %.1f KB/s\n",
               fb / fs / 1e6, fs, sb / ss / 1e3 }'
    [ "$fast_got" = "$WANT" ] || return 1
    awk -v sb=$slow_bytes -v ss=$slow_secs 'BEGIN { exit !(sb / ss > 50e3) }' || { echo "slow reader stalled"; return 1; }
    rss_report
}
check "a slow reader (100 KB/s) holds back only its own stream; a fast one beside it completes" t_slow_beside_fast

finish
