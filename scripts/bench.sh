#!/usr/bin/env bash
# Benchmark our tunnel against the nghttpx chain described in ANCHORS.md.
#
# Topology (all on 127.0.0.1):
#   direct : h2load ──h1──▶ nginx :18080
#   nghttpx: h2load ──TLS──▶ hop1 :18443 ══TLS+client cert, h2══▶ hop2 :19443 ──h1──▶ nginx :18080
#   ours   : h2load ──TLS──▶ edge-sim :17443 ══tunnel :17844══ connector ──h1──▶ nginx :18080
#
# Environment:
#   BENCH_SCALE=1          multiply all request counts (e.g. 0.1 for a quick run)
#   BENCH_RUN_TIMEOUT=45   seconds one h2load run may take before it is killed
#   BENCH_KEEP=0           1 = keep the work dir (certs, configs, logs, raw h2load output)
#   BENCH_SKIP_OURS=0      1 = benchmark the peers only
#
# Ports: 18080 origin, 19443 hop2, 18443 hop1, 17443/17844/17845 edge-sim.
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SCALE=${BENCH_SCALE:-1}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-45}
KEEP=${BENCH_KEEP:-0}
SKIP_OURS=${BENCH_SKIP_OURS:-0}

ORIGIN_PORT=18080
HOP2_PORT=19443
HOP1_PORT=18443
EDGE_HTTPS_PORT=17443
EDGE_TUNNEL_PORT=17844
EDGE_ADMIN_PORT=17845
OURS_HOST=bench.example.test

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }

# ---------------------------------------------------------------- install ---

ensure_tools() {
    # command -> Debian 12 package
    local -A pkg_of=([nginx]=nginx-light [nghttpx]=nghttp2-proxy [h2load]=nghttp2-client
                     [openssl]=openssl [curl]=curl [timeout]=coreutils)
    local missing=() c
    for c in "${!pkg_of[@]}"; do
        command -v "$c" >/dev/null 2>&1 || missing+=("${pkg_of[$c]}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "bench: installing ${missing[*]}"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install: ${missing[*]}"
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y -q "${missing[@]}" >&2 ||
        { "${sudo[@]}" apt-get update -q >&2 && "${sudo[@]}" apt-get install -y -q "${missing[@]}" >&2; } ||
        die "apt-get install failed"
}

# -------------------------------------------------------------- processes ---

W=""                # work dir
RUN_PID=""          # the h2load run in progress
PIDS=()             # every background process we started
declare -A PID_OF   # role -> pid

children_of() {     # direct children of $1 (no pgrep patterns)
    local parent=$1 f stat ppid t
    for t in /proc/"$parent"/task/*/children; do   # cheap path (CONFIG_PROC_CHILDREN)
        [ -r "$t" ] || break
        cat /proc/"$parent"/task/*/children 2>/dev/null | tr ' ' '\n' | sed '/^$/d'
        return 0
    done
    for f in /proc/[0-9]*/stat; do                # fallback: scan ppid fields
        read -r stat <"$f" 2>/dev/null || continue
        read -r _ ppid _ <<<"${stat##*) }"    # fields after "(comm) ": state ppid ...
        if [ "$ppid" = "$parent" ]; then f=${f#/proc/}; echo "${f%/stat}"; fi
    done
}

alive() { kill -0 "$1" 2>/dev/null; }

cleanup() {
    local rc=$? pid all=() kids=() _
    trap - EXIT INT TERM
    for pid in $RUN_PID "${PIDS[@]}"; do
        all+=("$pid")
        if alive "$pid"; then mapfile -t kids < <(children_of "$pid"); all+=("${kids[@]}"); fi
    done
    for pid in "${all[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 30); do       # up to 3 s for a graceful exit
        local left=0
        for pid in "${all[@]}"; do alive "$pid" && left=1; done
        [ $left -eq 0 ] && break
        sleep 0.1
    done
    for pid in "${all[@]}"; do alive "$pid" && kill -KILL "$pid" 2>/dev/null; done
    wait 2>/dev/null || true
    if [ -n "$W" ] && [ -d "$W" ]; then
        if [ $rc -ne 0 ]; then dump_logs "$W"/*.log; fi
        if [ "$KEEP" = 1 ]; then log "bench: work dir kept: $W"; else rm -rf "$W"; fi
    fi
    exit $rc
}

dump_logs() {   # dump_logs FILE...
    local f
    for f in "$@"; do
        [ -s "$f" ] || continue
        log "---- tail of $(basename "$f") ----"
        tail -n 15 "$f" >&2
    done
}

# stop ROLE: TERM the process and its children, KILL after 3 s
stop() {
    local pid=${PID_OF[$1]:-} all=() _
    [ -n "$pid" ] || return 0
    all=("$pid"); mapfile -t -O 1 all < <(children_of "$pid")
    kill -TERM "${all[@]}" 2>/dev/null || true
    for _ in $(seq 30); do alive "$pid" || break; sleep 0.1; done
    for _ in "${all[@]}"; do alive "$_" && kill -KILL "$_" 2>/dev/null; done
    wait "$pid" 2>/dev/null || true
}

# start ROLE CMD... : run CMD in the background, output to $W/ROLE.log
start() {
    local role=$1; shift
    "$@" </dev/null >"$W/$role.log" 2>&1 &
    PIDS+=($!)
    PID_OF[$role]=$!
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT ROLE [TIMEOUT_S]: wait until PORT accepts, fail early if ROLE died
wait_port() {
    local port=$1 role=$2 deadline=$((SECONDS + ${3:-10}))
    while ! port_busy "$port"; do
        alive "${PID_OF[$role]}" || { log "bench: $role exited before listening on :$port"; return 1; }
        [ $SECONDS -ge $deadline ] && { log "bench: timeout waiting for $role on :$port"; return 1; }
        sleep 0.05
    done
}

check_ports_free() {
    local p
    for p in "$@"; do
        port_busy "$p" && die "port 127.0.0.1:$p is already in use (stale benchmark process?)"
    done
    return 0
}

# peak RSS "12.3 MiB" of one pid (VmHWM)
hwm() {
    local kb
    kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null) || true
    [ -n "$kb" ] && awk -v k="$kb" 'BEGIN {printf "%.1f MiB", k/1024}' || echo "?"
}

# ------------------------------------------------------------------ setup ---

setup_origin() {
    mkdir -p "$W/www" "$W/nginx-tmp"
    head -c 1024 /dev/urandom >"$W/www/1k.bin"
    head -c $((100 * 1024)) /dev/urandom >"$W/www/100k.bin"
    head -c $((10 * 1024 * 1024)) /dev/urandom >"$W/www/10m.bin"
    chmod 755 "$W" "$W/www"; chmod 644 "$W"/www/*   # nginx worker may run as another user

    local temps="" m
    temps+="client_body_temp_path $W/nginx-tmp/body;"$'\n'
    for m in proxy fastcgi uwsgi scgi; do   # only modules this nginx was built with
        nginx -V 2>&1 | grep -q -- "--without-http_${m}_module" ||
            temps+="    ${m}_temp_path $W/nginx-tmp/$m;"$'\n'
    done
    cat >"$W/nginx.conf" <<EOF
worker_processes 1;
user $(id -un) $(id -gn);
daemon off;
pid $W/nginx.pid;
error_log $W/nginx.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    $temps
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $W/www;
    }
}
EOF
    start nginx nginx -p "$W" -e "$W/nginx.log" -c "$W/nginx.conf"
    wait_port $ORIGIN_PORT nginx
}

setup_nghttpx() {
    local c=$W/certs
    start hop2 nghttpx --conf=/dev/null -n1 --no-ocsp \
        -f"127.0.0.1,$HOP2_PORT" -b"127.0.0.1,$ORIGIN_PORT" \
        --verify-client --verify-client-cacert="$c/ca.pem" \
        --errorlog-file="$W/hop2.log" \
        "$c/hop2.key" "$c/hop2.pem"
    wait_port $HOP2_PORT hop2
    start hop1 nghttpx --conf=/dev/null -n1 --no-ocsp \
        -f"127.0.0.1,$HOP1_PORT" -b"127.0.0.1,$HOP2_PORT;;proto=h2;tls;sni=tunnel.local" \
        --client-private-key-file="$c/conn.key" --client-cert-file="$c/conn.pem" \
        --cacert="$c/ca.pem" \
        --errorlog-file="$W/hop1.log" \
        "$c/edge.key" "$c/edge.pem"
    wait_port $HOP1_PORT hop1
    local got
    got=$(curl -sf --cacert "$c/ca.pem" --resolve "localhost:$HOP1_PORT:127.0.0.1" \
        -o /dev/null -w '%{size_download} %{http_version}' "https://localhost:$HOP1_PORT/1k.bin") ||
        die "nghttpx chain does not serve /1k.bin"
    [ "${got%% *}" = 1024 ] || die "nghttpx chain returned ${got%% *} bytes for /1k.bin"
}

# Returns non-zero (never exits) so the peers are still reported.
setup_ours() {
    if [ "$SKIP_OURS" = 1 ]; then log "ours: skipped (BENCH_SKIP_OURS=1)"; return 1; fi
    if [ -f Makefile ] && ! make -s >"$W/build.log" 2>&1; then
        log "bench: build failed:"; tail -n 20 "$W/build.log" >&2
    fi
    if ! { [ -x bin/edge-sim ] && [ -x bin/connector ]; }; then
        log "ours: not built"; return 1
    fi
    local p
    for p in $EDGE_HTTPS_PORT $EDGE_TUNNEL_PORT $EDGE_ADMIN_PORT; do
        if port_busy "$p"; then log "ours: port 127.0.0.1:$p is already in use"; return 1; fi
    done
    local data=$W/edge-data state=$W/connector-state token
    mkdir -p "$data" "$state" && chmod 700 "$data" "$state" # both binaries refuse a dir others can read
    start edge-sim bin/edge-sim serve --data-dir "$data" \
        --tunnel-addr "127.0.0.1:$EDGE_TUNNEL_PORT" \
        --https-addr "127.0.0.1:$EDGE_HTTPS_PORT" \
        --admin-addr "127.0.0.1:$EDGE_ADMIN_PORT"
    wait_port $EDGE_HTTPS_PORT edge-sim 20 || return 1

    token=$(bin/edge-sim tunnel create bench --data-dir "$data" 2>>"$W/edge-cli.log" |
            awk 'NF {t=$0} END {print t}') || true
    [ -n "$token" ] || { log "ours: 'edge-sim tunnel create' printed no token"; return 1; }
    if ! bin/edge-sim ca --data-dir "$data" >"$W/browser-ca.pem" 2>>"$W/edge-cli.log" ||
       ! grep -q 'BEGIN CERTIFICATE' "$W/browser-ca.pem"; then
        log "ours: 'edge-sim ca' printed no certificate"; return 1
    fi

    start connector bin/connector run --token "$token" --hostname "$OURS_HOST" \
        --url "http://127.0.0.1:$ORIGIN_PORT" --state-dir "$state" --loglevel warn
    local deadline=$((SECONDS + 20)) got=""
    while :; do
        got=$(curl -sf --max-time 2 --cacert "$W/browser-ca.pem" \
              --resolve "$OURS_HOST:$EDGE_HTTPS_PORT:127.0.0.1" -o /dev/null \
              -w '%{size_download}' "https://$OURS_HOST:$EDGE_HTTPS_PORT/1k.bin") && break
        alive "${PID_OF[connector]}" || { log "ours: connector exited"; return 1; }
        alive "${PID_OF[edge-sim]}" || { log "ours: edge-sim exited"; return 1; }
        [ $SECONDS -ge $deadline ] && { log "ours: tunnel not serving /1k.bin after 20 s"; return 1; }
        sleep 0.2
    done
    [ "$got" = 1024 ] || { log "ours: /1k.bin returned $got bytes"; return 1; }
    alive "${PID_OF[connector]}" || { log "ours: connector exited"; return 1; }
    }

# ------------------------------------------------------------ workloads ---

HAVE_CONNECT_TO=0
h2load --help 2>&1 | grep -q -- '--connect-to' && HAVE_CONNECT_TO=1

# target -> "URL-prefix connect-addr"
declare -A BASE=(
    [direct]="http://127.0.0.1:$ORIGIN_PORT 127.0.0.1:$ORIGIN_PORT"
    [nghttpx]="https://localhost:$HOP1_PORT 127.0.0.1:$HOP1_PORT"
    [ours]="https://$OURS_HOST:$EDGE_HTTPS_PORT 127.0.0.1:$EDGE_HTTPS_PORT"
)

# h2load_args TARGET PATH: URI plus how to reach it
h2load_args() {
    local base=${BASE[$1]%% *} addr=${BASE[$1]##* } path=$2 hostport
    if [ $HAVE_CONNECT_TO = 1 ]; then
        echo "$base$path --connect-to=$addr"
    else
        # old h2load: connect to the IP, set :authority/Host explicitly (SNI is then the IP;
        # h2load does not verify certificates and routing is by :authority)
        hostport=${base#*://}
        echo "${base%%://*}://$addr$path -H :authority:$hostport"
    fi
}

n_scaled() {   # n_scaled BASE MIN
    awk -v b="$1" -v s="$SCALE" -v m="$2" 'BEGIN {n = int(b * s + 0.5); print (n < m ? m : n)}'
}

# duration "1.23ms" -> microseconds
to_us() {
    awk -v d="$1" 'BEGIN {
        if (d ~ /us$/) f = 1; else if (d ~ /ms$/) f = 1000; else if (d ~ /s$/) f = 1000000; else f = -1
        sub(/[a-z]+$/, "", d); print (f < 0 ? "" : d * f) }'
}

# run_h2load OUT TARGET PATH h2load-options... ; raw output in $W/out/OUT.txt
# Sets R_RPS, R_MEAN_US, R_DATA_BYTES, R_SECS, R_ERR (empty when all requests got 2xx)
run_h2load() {
    local out=$W/out/$1.txt target=$2 path=$3; shift 3
    local rc=0
    # shellcheck disable=SC2046
    timeout "$RUN_TIMEOUT" h2load -t1 "$@" $(h2load_args "$target" "$path") >"$out" 2>&1 &
    RUN_PID=$!              # in the background so INT/TERM traps fire at once
    wait "$RUN_PID" || rc=$?
    RUN_PID=""
    R_RPS="" R_MEAN_US="" R_DATA_BYTES="" R_SECS="" R_ERR=""
    if [ $rc -eq 124 ]; then R_ERR="timeout >${RUN_TIMEOUT}s"; return; fi
    local fin
    fin=$(awk '/^finished in/ {sub(/,$/, "", $3); print $3, $4}' "$out")
    [ -n "$fin" ] || { R_ERR="h2load failed"; return; }
    R_SECS=$(awk -v u="$(to_us "${fin% *}")" 'BEGIN {print u / 1e6}')
    R_RPS=${fin#* }
    R_MEAN_US=$(to_us "$(awk '/^time for request:/ {print $6}' "$out")")
    R_DATA_BYTES=$(awk '/^traffic:/ {d = $(NF-1); gsub(/[()]/, "", d); print d}' "$out")
    local total ok two
    total=$(awk '/^requests:/ {print $2}' "$out")
    ok=$(awk '/^requests:/ {for (i = 1; i < NF; i++) if ($(i+1) ~ /^succeeded/) print $i}' "$out")
    two=$(awk '/^status codes:/ {print $3}' "$out")
    if [ "$ok" != "$total" ] || [ "$two" != "$total" ]; then
        R_ERR="only ${two:-0}/${total:-?} 2xx"
    fi
}

declare -A RES      # "workload,target" -> cell text
declare -A NUM      # "workload,target" -> number (for the ratio)

record() {   # record WORKLOAD TARGET VALUE UNIT (VALUE empty = no result)
    local key="$1,$2"
    [ -z "$3" ] && [ -z "$R_ERR" ] && R_ERR="no result"
    if [ -z "$3" ]; then
        RES[$key]="ERR: $R_ERR"
    elif [ -n "$R_ERR" ]; then
        RES[$key]="$3 $4 ⚠ $R_ERR"      # shown, but kept out of the ratio
    else
        RES[$key]="$3 $4"
        NUM[$key]=$3
    fi
    log "  $1 / $2: ${RES[$key]}"
}

fmt_int() { [ -n "$1" ] && awk -v x="$1" 'BEGIN {printf "%d", x + 0.5}'; return 0; }

bench_target() {   # bench_target WORKLOAD TARGET
    local wl=$1 t=$2 h1=()
    [ "$t" = direct ] && h1=(--h1)   # nginx :18080 speaks plain HTTP/1.1 only
    case $wl in
    h2)
        if [ "$t" = direct ]; then RES[$wl,$t]="—"; return; fi
        run_h2load "$wl-$t" "$t" /1k.bin -c32 -m10 -n "$(n_scaled 100000 320)"
        record "$wl" "$t" "$(fmt_int "$R_RPS")" "req/s"
        ;;
    h1)
        run_h2load "$wl-$t" "$t" /1k.bin --h1 -c32 -m1 -n "$(n_scaled 50000 320)"
        record "$wl" "$t" "$(fmt_int "$R_RPS")" "req/s"
        ;;
    lat)
        run_h2load "$wl-$t" "$t" /1k.bin "${h1[@]}" -c1 -m1 -n "$(n_scaled 2000 50)"
        record "$wl" "$t" "$(fmt_int "$R_MEAN_US")" "µs"
        ;;
    big)
        run_h2load "$wl-$t" "$t" /10m.bin "${h1[@]}" -c4 -m1 -n "$(n_scaled 200 8)"
        local mbs=""
        if [ -n "$R_DATA_BYTES" ] && [ -n "$R_SECS" ]; then
            mbs=$(awk -v b="$R_DATA_BYTES" -v s="$R_SECS" 'BEGIN {printf "%.1f", b / 1e6 / s}')
        fi
        record "$wl" "$t" "$mbs" "MB/s"
        ;;
    esac
}

ratio() {   # ours/nghttpx for one workload
    local a=${NUM[$1,ours]:-} b=${NUM[$1,nghttpx]:-}
    if [ -z "$a" ] || [ -z "$b" ]; then echo "—"; return; fi
    awk -v a="$a" -v b="$b" 'BEGIN {if (b > 0) printf "%.2f×", a / b; else print "—"}'
}

# ------------------------------------------------------------------- main ---

ensure_tools
check_ports_free $ORIGIN_PORT $HOP2_PORT $HOP1_PORT

W=$(mktemp -d "${TMPDIR:-/tmp}/bench.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$W/out"

log "bench: work dir $W, scale $SCALE"
bash "$ROOT/scripts/bench-certs.sh" "$W/certs"
setup_origin
setup_nghttpx
TARGETS=(direct nghttpx)
if setup_ours; then
    TARGETS+=(ours); OURS_STATE="ok"
else
    OURS_STATE="not run"
    if [ -n "${PID_OF[edge-sim]:-}" ]; then
        dump_logs "$W"/edge-sim.log "$W"/edge-cli.log "$W"/connector.log
        stop connector; stop edge-sim    # keep the peer runs undisturbed
    fi
fi

# a short warm-up per target (TLS, connection pools, page cache)
for t in "${TARGETS[@]}"; do
    h1=(); [ "$t" = direct ] && h1=(--h1)
    run_h2load "warmup-$t" "$t" /1k.bin "${h1[@]}" -c4 -m1 -n 400
done

WORKLOADS=(h2 h1 lat big)
declare -A TITLE=(
    [h2]="1 KiB GET, HTTP/2, h2load -c32 -m10"
    [h1]="1 KiB GET, HTTP/1.1, h2load --h1 -c32"
    [lat]="1 KiB GET, 1 connection sequential, mean latency (HTTP/2; direct HTTP/1.1)"
    [big]="10 MiB GET, 4 connections (HTTP/2; direct HTTP/1.1)"
)
for wl in "${WORKLOADS[@]}"; do
    log "bench: ${TITLE[$wl]}"
    for t in "${TARGETS[@]}"; do bench_target "$wl" "$t"; done
done

cell() { echo "${RES[$1,$2]:-—}"; }

echo
echo "Benchmark $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, BENCH_SCALE=$SCALE, ours: $OURS_STATE"
echo
echo "| workload | direct (no TLS) | nghttpx chain | ours | ours/nghttpx |"
echo "|---|---|---|---|---|"
for wl in "${WORKLOADS[@]}"; do
    if [ "$OURS_STATE" = ok ]; then r=$(ratio "$wl"); else r="—"; fi
    echo "| ${TITLE[$wl]} | $(cell "$wl" direct) | $(cell "$wl" nghttpx) | $(cell "$wl" ours) | $r |"
done
echo
echo "Ratio > 1 is better for req/s and MB/s, worse for latency. MB = 10^6 bytes of response body."
echo

rss_cell() {   # rss_cell PID CHILD-LABEL: the process and its children
    local pid=$1 c s
    alive "$pid" || { echo "exited"; return; }
    s="$(hwm "$pid")"
    for c in $(children_of "$pid"); do s+=", $2 $(hwm "$c")"; done
    echo "$s"
}
echo "| process | peak RSS (VmHWM) |"
echo "|---|---|"
echo "| nghttpx hop 1 | master $(rss_cell "${PID_OF[hop1]}" worker) |"
echo "| nghttpx hop 2 | master $(rss_cell "${PID_OF[hop2]}" worker) |"
if [ "$OURS_STATE" = ok ]; then
    echo "| edge-sim | $(rss_cell "${PID_OF[edge-sim]}" child) |"
    echo "| connector | $(rss_cell "${PID_OF[connector]}" child) |"
else
    echo "| edge-sim | — |"
    echo "| connector | — |"
fi
