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
#   BENCH_PARTS="throughput syscalls websocket callgrind"
#                          which measurements to make (idle RSS is always measured)
#   BENCH_WS_N=200         idle WebSockets held open per chain for the RSS-per-WebSocket figure
#   BENCH_EDGE_WORKERS=1   edge-sim serve --workers: 1 by default, as every proxy in ANCHORS.md
#                          runs one worker thread (the comparison is per core)
#   BENCH_PIN=""           "LOAD PROXIES": CPU lists for taskset, e.g. "0 1" runs h2load and
#                          nginx on CPU 0 and every proxy (both chains) on CPU 1, so the load
#                          generator and the origin get a core of their own
#   BENCH_HOP1_WORKERS=1   nghttpx -n for hop 1, the browser-facing proxy (our edge's peer):
#                          with BENCH_EDGE_WORKERS=2 BENCH_HOP1_WORKERS=2 both use every core
#
# Besides throughput it measures, per process (edge-sim, connector, nghttpx hop 1, hop 2;
# a hop is nghttpx's worker plus its master):
#   - idle RSS (after startup and one request), peak RSS (VmHWM) under the throughput runs;
#   - syscalls per request over a fixed h2load run (perf stat, raw_syscalls:sys_enter for
#     the total and a few syscalls:sys_enter_* by name; strace -c -f where perf cannot),
#     minus the idle rate;
#   - RSS per idle WebSocket: on freshly restarted daemons, scripts/bench_ws.py holds
#     BENCH_WS_N open through nginx to tests/integration/ws_echo.py;
#   - instructions per request: each daemon restarted under callgrind (nghttpx with
#     --single-process), counters dumped after two runs of different lengths
#     (callgrind_control -d), scripts/bench_cg.py takes the difference.
# BENCH_KEEP=1 keeps the callgrind dumps (cg/) for callgrind_annotate.
#
# Ports: 18080 origin, 18081 WebSocket echo, 19443 hop2, 18443 hop1, 17443/17844/17845 edge-sim.
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SCALE=${BENCH_SCALE:-1}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-45}
KEEP=${BENCH_KEEP:-0}
SKIP_OURS=${BENCH_SKIP_OURS:-0}
PARTS=" ${BENCH_PARTS:-throughput syscalls websocket callgrind} "
WS_N=${BENCH_WS_N:-200}
PY=/usr/bin/python3     # Debian's python3, with python3-websockets

ORIGIN_PORT=18080
WS_ECHO_PORT=18081
HOP2_PORT=19443
HOP1_PORT=18443
EDGE_HTTPS_PORT=17443
EDGE_TUNNEL_PORT=17844
EDGE_ADMIN_PORT=17845
OURS_HOST=bench.example.test

log() { printf '%s\n' "$*" >&2; }
step() { log "bench: [$((SECONDS / 60))m$((SECONDS % 60))s] $*"; }   # a part starts
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

# The profiling tools are optional: a part whose tool is missing says so and is skipped.
ensure_profile_tools() {
    local missing=()
    part syscalls && ! command -v perf >/dev/null 2>&1 && ! command -v strace >/dev/null 2>&1 &&
        missing+=(strace)
    part callgrind && ! command -v callgrind_control >/dev/null 2>&1 && missing+=(valgrind)
    part websocket && ! "$PY" -c 'import websockets' 2>/dev/null && missing+=(python3-websockets)
    [ ${#missing[@]} -eq 0 ] && return 0
    log "bench: installing ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y -q "${missing[@]}" >&2 ||
        { "${sudo[@]}" apt-get update -q >&2 && "${sudo[@]}" apt-get install -y -q "${missing[@]}" >&2; } ||
        log "bench: could not install ${missing[*]}; the parts needing them are skipped"
}

part() { [[ $PARTS == *" $1 "* ]]; }

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

# BENCH_PIN: the taskset prefix for the load side (h2load, nginx) and the proxies.
PIN_LOAD=(); PIN_PROXY=()
if [ -n "${BENCH_PIN:-}" ]; then
    read -r pin_load pin_proxy <<<"$BENCH_PIN"
    [ -n "${pin_proxy:-}" ] || die "BENCH_PIN wants two CPU lists: \"LOAD PROXIES\""
    PIN_LOAD=(taskset -c "$pin_load"); PIN_PROXY=(taskset -c "$pin_proxy")
fi
pin_for() {   # pin_for ROLE: the taskset prefix for ROLE (none without BENCH_PIN)
    case $1 in
    nginx) PIN=("${PIN_LOAD[@]}") ;;
    edge-sim | connector | hop1 | hop2) PIN=("${PIN_PROXY[@]}") ;;
    *) PIN=() ;;
    esac
}

# start ROLE CMD... : run CMD in the background, output to $W/ROLE.log
start() {
    local role=$1; shift
    pin_for "$role"
    "${PIN[@]}" "$@" </dev/null >"$W/$role.log" 2>&1 &
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
    # WebSockets under /ws/ go on to the echo origin (the RSS-per-WebSocket part)
    local ws=""
    if part websocket && ! nginx -V 2>&1 | grep -q -- --without-http_proxy_module; then
        ws="location /ws/ {
            proxy_pass http://127.0.0.1:$WS_ECHO_PORT;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection upgrade;
            proxy_read_timeout 1h;
        }"
    fi
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
        $ws
    }
}
EOF
    start nginx nginx -p "$W" -e "$W/nginx.log" -c "$W/nginx.conf"
    wait_port $ORIGIN_PORT nginx
    if [ -n "$ws" ] && "$PY" -c 'import websockets' 2>/dev/null; then
        start ws-echo "$PY" "$ROOT/tests/integration/ws_echo.py" $WS_ECHO_PORT
        wait_port $WS_ECHO_PORT ws-echo || PID_OF[ws-echo]=""
    fi
}

# The daemons run as they are, or under callgrind when PROFILE=callgrind (slow: longer waits).
PROFILE=""
WRAP=()
set_wrap() {   # set_wrap ROLE: WRAP=(command prefix for ROLE)
    WRAP=()
    [ "$PROFILE" = callgrind ] &&
        WRAP=(valgrind --tool=callgrind --callgrind-out-file="$W/cg/$1.%p.out" --log-file="$W/cg/$1.%p.vg.log")
    return 0
}
start_wait() { [ "$PROFILE" = callgrind ] && echo 120 || echo "${1:-10}"; }

setup_nghttpx() {
    local c=$W/certs single=()
    [ "$PROFILE" = callgrind ] && single=(--single-process)   # one process to count (no master)
    set_wrap hop2
    start hop2 "${WRAP[@]}" nghttpx "${single[@]}" --conf=/dev/null -n1 --no-ocsp \
        -f"127.0.0.1,$HOP2_PORT" -b"127.0.0.1,$ORIGIN_PORT" \
        --verify-client --verify-client-cacert="$c/ca.pem" \
        --errorlog-file="$W/hop2.log" \
        "$c/hop2.key" "$c/hop2.pem"
    wait_port $HOP2_PORT hop2 "$(start_wait)"
    set_wrap hop1
    start hop1 "${WRAP[@]}" nghttpx "${single[@]}" --conf=/dev/null -n"${BENCH_HOP1_WORKERS:-1}" --no-ocsp \
        -f"127.0.0.1,$HOP1_PORT" -b"127.0.0.1,$HOP2_PORT;;proto=h2;tls;sni=tunnel.local" \
        --client-private-key-file="$c/conn.key" --client-cert-file="$c/conn.pem" \
        --cacert="$c/ca.pem" \
        --errorlog-file="$W/hop1.log" \
        "$c/edge.key" "$c/edge.pem"
    wait_port $HOP1_PORT hop1 "$(start_wait)"
    local got
    got=$(curl -sf --cacert "$c/ca.pem" --resolve "localhost:$HOP1_PORT:127.0.0.1" \
        --max-time 30 -o /dev/null -w '%{size_download} %{http_version}' "https://localhost:$HOP1_PORT/1k.bin") ||
        { log "bench: nghttpx chain does not serve /1k.bin"; return 1; }
    [ "${got%% *}" = 1024 ] || { log "bench: nghttpx chain returned ${got%% *} bytes for /1k.bin"; return 1; }
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
    local data=$W/edge-data state=$W/connector-state
    mkdir -p "$data" "$state" && chmod 700 "$data" "$state" # both binaries refuse a dir others can read
    start_edge || return 1

    OURS_TOKEN=$(bin/edge-sim tunnel create bench --data-dir "$data" 2>>"$W/edge-cli.log" |
            awk 'NF {t=$0} END {print t}') || true
    [ -n "$OURS_TOKEN" ] || { log "ours: 'edge-sim tunnel create' printed no token"; return 1; }
    if ! bin/edge-sim ca --data-dir "$data" >"$W/browser-ca.pem" 2>>"$W/edge-cli.log" ||
       ! grep -q 'BEGIN CERTIFICATE' "$W/browser-ca.pem"; then
        log "ours: 'edge-sim ca' printed no certificate"; return 1
    fi
    start_connector
}

OURS_TOKEN=""
start_edge() {
    set_wrap edge-sim
    start edge-sim "${WRAP[@]}" bin/edge-sim serve --data-dir "$W/edge-data" \
        --tunnel-addr "127.0.0.1:$EDGE_TUNNEL_PORT" \
        --https-addr "127.0.0.1:$EDGE_HTTPS_PORT" \
        --admin-addr "127.0.0.1:$EDGE_ADMIN_PORT" --workers "${BENCH_EDGE_WORKERS:-1}"
    wait_port $EDGE_HTTPS_PORT edge-sim "$(start_wait 20)"
}

# start_connector: start it and wait until /1k.bin comes through the tunnel
start_connector() {
    set_wrap connector
    start connector "${WRAP[@]}" bin/connector run --token "$OURS_TOKEN" --hostname "$OURS_HOST" \
        --url "http://127.0.0.1:$ORIGIN_PORT" --state-dir "$W/connector-state" --loglevel warn
    local wait_s deadline got=""
    wait_s=$(start_wait 20); deadline=$((SECONDS + wait_s))
    while :; do
        got=$(curl -sf --max-time 5 --cacert "$W/browser-ca.pem" \
              --resolve "$OURS_HOST:$EDGE_HTTPS_PORT:127.0.0.1" -o /dev/null \
              -w '%{size_download}' "https://$OURS_HOST:$EDGE_HTTPS_PORT/1k.bin") && break
        alive "${PID_OF[connector]}" || { log "ours: connector exited"; return 1; }
        alive "${PID_OF[edge-sim]}" || { log "ours: edge-sim exited"; return 1; }
        [ $SECONDS -ge $deadline ] && { log "ours: tunnel not serving /1k.bin after $wait_s s"; return 1; }
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
    timeout "$RUN_TIMEOUT" "${PIN_LOAD[@]}" h2load -t1 "$@" $(h2load_args "$target" "$path") >"$out" 2>&1 &
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

# --------------------------------------------------------------- profiles ---
# Per process: memory, syscalls and instructions. A "role" is a daemon: hop1 and hop2
# (nghttpx: a master and its worker, summed), edge-sim, connector.

PROFILE_H2=(-c4 -m10)    # the per-request profiles: 1 KiB GETs over HTTP/2
PROFILE_TITLE="1 KiB GET over HTTP/2, h2load -c4 -m10"
NG_ROLES=(hop1 hop2)
OURS_ROLES=(edge-sim connector)

kb_of() { awk -v f="$2:" '$1 == f {print $2; exit}' "/proc/$1/status" 2>/dev/null || true; }

# role_mem ROLE FIELD: "TOTAL_KB CHILDREN_KB MAIN_KB" of the role's processes (empty if gone)
role_mem() {
    local pid=${PID_OF[$1]:-} m c k tot kid_kb=0
    [ -n "$pid" ] && alive "$pid" || return 0
    m=$(kb_of "$pid" "$2"); [ -n "$m" ] || return 0
    tot=$m
    for c in $(children_of "$pid"); do
        k=$(kb_of "$c" "$2"); [ -n "$k" ] && { kid_kb=$((kid_kb + k)); tot=$((tot + k)); }
    done
    echo "$tot $kid_kb $m"
}

declare -A MEM      # "idle|peak,ROLE" -> role_mem output
capture_mem() {     # capture_mem idle|peak FIELD
    local r
    for r in "${NG_ROLES[@]}" "${OURS_ROLES[@]}"; do MEM[$1,$r]=$(role_mem "$r" "$2"); done
}

pid_list() {   # pid_list ROLE: its processes, comma-separated
    local pid=${PID_OF[$1]} c s
    s=$pid
    for c in $(children_of "$pid"); do s+=",$c"; done
    echo "$s"
}

# ---- syscalls

SYS_TOOL=${BENCH_SYSCALLS_TOOL:-}
# perf counts every syscall with raw_syscalls:sys_enter, and these by name (the rest is
# "other"): all of syscalls:sys_enter_* would take perf ~40 ms per event and thread to close
SYS_NAMED=(read write readv writev sendto recvfrom sendmsg recvmsg epoll_wait epoll_pwait
           epoll_ctl poll ppoll futex accept4 connect close mmap munmap madvise brk mprotect
           getpid getrandom openat ioctl)
SYS_EVENTS=raw_syscalls:sys_enter
pick_sys_tool() {
    local d s
    if [ -z "$SYS_TOOL" ] && command -v perf >/dev/null 2>&1 &&
       perf stat -x, -D -1 -e raw_syscalls:sys_enter -o /dev/null -- true >/dev/null 2>&1; then
        SYS_TOOL=perf
    elif [ -z "$SYS_TOOL" ] && command -v strace >/dev/null 2>&1; then
        SYS_TOOL=strace
    fi
    for d in /sys/kernel/tracing/events/syscalls /sys/kernel/debug/tracing/events/syscalls; do
        [ -d "$d" ] || continue
        for s in "${SYS_NAMED[@]}"; do
            [ -d "$d/sys_enter_$s" ] && SYS_EVENTS+=",syscalls:sys_enter_$s"
        done
        break
    done
    return 0
}

# count_syscalls TAG ROLE... -- CMD...: count the syscalls of the roles' processes (and
# their threads) while CMD runs. Writes "COUNT NAME" lines to $W/sys/TAG-ROLE.txt and
# sets SYS_SECS to the length of the counted window.
count_syscalls() {
    local tag=$1 roles=() r i a fd t0 t1 pp=() ctl=() ack=() args pids
    shift
    while [ "$1" != -- ]; do roles+=("$1"); shift; done
    shift
    mkdir -p "$W/sys"
    if [ "$SYS_TOOL" = perf ]; then
        # events start disabled; enabled through a control FIFO once perf has attached
        for r in "${roles[@]}"; do
            local base=$W/sys/$tag-$r
            mkfifo "$base.ctl" "$base.ack"
            perf stat -x, -D -1 --control "fifo:$base.ctl,$base.ack" -e "$SYS_EVENTS" \
                -p "$(pid_list "$r")" -o "$base.raw" 2>>"$W/perf.log" &
            PIDS+=($!); pp+=($!)
            exec {fd}<>"$base.ctl"; ctl+=("$fd")
            exec {fd}<>"$base.ack"; ack+=("$fd")
        done
        for i in "${!roles[@]}"; do
            echo enable >&"${ctl[$i]}"
            read -r -t 60 -u "${ack[$i]}" a || log "bench: perf for ${roles[$i]} did not start"
        done
        t0=$EPOCHREALTIME
        "$@" || true
        t1=$EPOCHREALTIME
        for i in "${!roles[@]}"; do
            echo disable >&"${ctl[$i]}"
            read -r -t 60 -u "${ack[$i]}" a || true
        done
        kill -INT "${pp[@]}" 2>/dev/null || true
        wait "${pp[@]}" 2>/dev/null || true
        for fd in "${ctl[@]}" "${ack[@]}"; do exec {fd}>&-; done
        for r in "${roles[@]}"; do
            awk -F, '$1 ~ /^[0-9]+$/ && $3 ~ /sys_enter/ {
                     n = $3; sub(/^syscalls:sys_enter_/, "", n); sub(/^raw_syscalls:sys_enter$/, "*total*", n)
                     print $1, n }' \
                "$W/sys/$tag-$r.raw" >"$W/sys/$tag-$r.txt" 2>/dev/null || true
        done
    else
        # strace stops the process at every syscall: slower, same counts
        for r in "${roles[@]}"; do
            args=()
            IFS=, read -r -a pids <<<"$(pid_list "$r")"
            for a in "${pids[@]}"; do args+=(-p "$a"); done
            strace -c -f -q -o "$W/sys/$tag-$r.raw" "${args[@]}" 2>>"$W/strace.log" &
            PIDS+=($!); pp+=($!)
        done
        sleep 1    # attaching
        t0=$EPOCHREALTIME
        "$@" || true
        t1=$EPOCHREALTIME
        kill -INT "${pp[@]}" 2>/dev/null || true
        wait "${pp[@]}" 2>/dev/null || true
        for r in "${roles[@]}"; do    # % time, seconds, usecs/call, calls, [errors,] syscall
            awk '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {print $4, $NF; t += $4}
                 END {print t + 0, "*total*"}' \
                "$W/sys/$tag-$r.raw" >"$W/sys/$tag-$r.txt" 2>/dev/null || true
        done
    fi
    SYS_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
}

declare -A SYSREQ SYSTOP
SYS_NOTE=""
# sys_per_request ROLE LOAD-TAG N LOAD-SECS IDLE-SECS: the load's count minus the idle
# rate over the same time, per request; sets SYSREQ[ROLE] and SYSTOP[ROLE] (top 5)
sys_per_request() {
    local out
    out=$(awk -v n="$3" -v ls="$4" -v is="$5" '
        FILENAME == ARGV[1] {idle[$2] += $1; next}
        {load[$2] += $1}
        END {
            for (k in load) {
                v = (load[k] - (is > 0 ? idle[k] * ls / is : 0)) / n
                if (v < 0) v = 0
                if (k == "*total*") tot = v; else {named += v; per[k] = v}
            }
            if (tot - named >= 0.005) per["other"] = tot - named
            printf "%.2f;", tot
            for (j = 0; j < 5; j++) {      # top 5, largest first
                best = ""; bv = 0.005
                for (k in per) if (per[k] >= bv) {best = k; bv = per[k]}
                if (best == "") break
                printf "%s%s %.2f", (j ? ", " : ""), best, per[best]; delete per[best]
            }
        }' "$W/sys/idle-$1.txt" "$W/sys/$2-$1.txt") || true
    if ! grep -q '\*total\*' "$W/sys/$2-$1.txt" 2>/dev/null; then
        SYSREQ[$1]=""; SYSTOP[$1]="not counted (perf.log in the work dir, BENCH_KEEP=1)"; return 0
    fi
    SYSREQ[$1]=${out%%;*}
    SYSTOP[$1]=${out#*;}
}

syscalls_part() {
    pick_sys_tool
    if [ -z "$SYS_TOOL" ]; then SYS_NOTE="no perf or strace: syscalls not counted"; return; fi
    local roles=("${NG_ROLES[@]}") n idle_s r
    [ "$OURS_STATE" = ok ] && roles+=("${OURS_ROLES[@]}")
    n=$(n_scaled 20000 2000)
    step "syscalls per request ($SYS_TOOL), $PROFILE_TITLE -n $n"
    count_syscalls idle "${roles[@]}" -- sleep 2
    idle_s=$SYS_SECS
    local t
    for t in nghttpx ours; do
        [ "$t" = ours ] && [ "$OURS_STATE" != ok ] && continue
        local tr=("${NG_ROLES[@]}"); [ "$t" = ours ] && tr=("${OURS_ROLES[@]}")
        count_syscalls "load-$t" "${tr[@]}" -- run_h2load "sys-$t" "$t" /1k.bin "${PROFILE_H2[@]}" -n "$n"
        for r in "${tr[@]}"; do
            sys_per_request "$r" "load-$t" "$n" "$SYS_SECS" "$idle_s"
            [ -n "$R_ERR" ] && SYSTOP[$r]+=" ⚠ $R_ERR"
            log "  $r: ${SYSREQ[$r]} syscalls/request (${SYSTOP[$r]})"
        done
    done
}

# ---- RSS per idle WebSocket

declare -A WS_KB
WS_NOTE=""
WS_PID=""
ws_open() {   # ws_open URL CA N READY LOG: returns once N are open (0) or on failure (1)
    rm -f "$4"
    "$PY" "$ROOT/scripts/bench_ws.py" "$1" "$2" "$3" "$4" >"$5" 2>&1 &
    WS_PID=$!; PIDS+=("$WS_PID")
    local deadline=$((SECONDS + 120))
    while [ ! -e "$4" ] && alive "$WS_PID" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    grep -q '^open' "$4" 2>/dev/null && return 0
    log "bench: WebSockets to $1: $(cat "$4" 2>/dev/null || echo "no answer, see $(basename "$5")")"
    kill "$WS_PID" 2>/dev/null || true; wait "$WS_PID" 2>/dev/null || true
    return 1
}
ws_close() { rm -f "$1"; wait "$WS_PID" 2>/dev/null || true; }

ws_chain() {   # ws_chain TARGET URL CA ROLE...
    local t=$1 url=$2 ca=$3 ready=$W/ws-$1.ready r; shift 3
    local -A before=()
    ws_open "$url" "$ca" 4 "$ready" "$W/ws-$t-warmup.log" || return 0   # code paths, pools
    ws_close "$ready"
    sleep 0.5
    for r; do before[$r]=$(role_mem "$r" VmRSS); before[$r]=${before[$r]%% *}; done
    ws_open "$url" "$ca" "$WS_N" "$ready" "$W/ws-$t.log" || return 0
    sleep 1
    local now
    for r; do
        now=$(role_mem "$r" VmRSS); now=${now%% *}
        [ -n "$now" ] && [ -n "${before[$r]}" ] &&
            WS_KB[$r]=$(awk -v a="$now" -v b="${before[$r]}" -v n="$WS_N" 'BEGIN {printf "%.1f", (a - b) / n}')
        log "  $r: ${WS_KB[$r]:-?} KiB per idle WebSocket"
    done
    ws_close "$ready"
}

websocket_part() {
    if [ -z "${PID_OF[ws-echo]:-}" ]; then
        WS_NOTE="no WebSocket echo origin (python3-websockets or nginx's proxy module missing)"
        return
    fi
    step "RSS per idle WebSocket, $WS_N held open"
    # on fresh daemons: after the load above their heaps hold freed memory that new
    # connections would reuse without growing the RSS
    stop hop1; stop hop2
    if setup_nghttpx; then
        ws_chain nghttpx "wss://localhost:$HOP1_PORT/ws/echo" "$W/certs/ca.pem" "${NG_ROLES[@]}"
    else
        log "bench: nghttpx chain did not restart"
    fi
    [ "$OURS_STATE" = ok ] || return 0
    stop connector; stop edge-sim
    if start_edge && start_connector; then
        ws_chain ours "wss://$OURS_HOST:$EDGE_HTTPS_PORT/ws/echo" "$W/browser-ca.pem" "${OURS_ROLES[@]}"
    else
        log "bench: ours did not restart"
    fi
    return 0
}

# ---- instructions per request

declare -A CGREQ CGTOP
CG_NOTE=""
cg_dump() {   # cg_dump ROLE: dump its counters (since the last dump or zeroing); prints the file
    local pid=${PID_OF[$1]}
    callgrind_control -d "$pid" >>"$W/cg/control.log" 2>&1 || true
    ls -v "$W/cg/$1.$pid.out."* 2>/dev/null | tail -n 1 || true
}

cg_chain() {   # cg_chain TARGET ROLE...: the daemons already run under callgrind
    local t=$1 r n1 n2 out; shift
    local -A a=() b=()
    local RUN_TIMEOUT=$((RUN_TIMEOUT * 8))
    n1=$(n_scaled 500 200); n2=$((n1 + $(n_scaled 1500 300)))
    step "instructions per request (callgrind), $t, $PROFILE_TITLE, -n $n1 and -n $n2"
    run_h2load "cg-warmup-$t" "$t" /1k.bin "${PROFILE_H2[@]}" -n "$n1"
    for r; do callgrind_control -z "${PID_OF[$r]}" >>"$W/cg/control.log" 2>&1 || true; done
    run_h2load "cg-a-$t" "$t" /1k.bin "${PROFILE_H2[@]}" -n "$n1"
    [ -z "$R_ERR" ] || { log "  $t: $R_ERR"; return 0; }
    for r; do a[$r]=$(cg_dump "$r"); done
    run_h2load "cg-b-$t" "$t" /1k.bin "${PROFILE_H2[@]}" -n "$n2"
    [ -z "$R_ERR" ] || { log "  $t: $R_ERR"; return 0; }
    for r; do b[$r]=$(cg_dump "$r"); done
    for r; do
        if [ -z "${a[$r]}" ] || [ -z "${b[$r]}" ] || [ "${a[$r]}" = "${b[$r]}" ]; then
            log "  $r: no callgrind dump (see $W/cg/control.log)"; continue
        fi
        out=$("$PY" "$ROOT/scripts/bench_cg.py" "${a[$r]}" "$n1" "${b[$r]}" "$n2" 4) || continue
        CGREQ[$r]=${out%% *}; CGTOP[$r]=${out#* }
        log "  $r: ${CGREQ[$r]} instructions/request (${CGTOP[$r]})"
    done
}

callgrind_part() {
    if ! command -v callgrind_control >/dev/null 2>&1; then
        CG_NOTE="no valgrind: instructions not counted"; return
    fi
    mkdir -p "$W/cg"
    PROFILE=callgrind
    stop hop1; stop hop2
    if setup_nghttpx; then cg_chain nghttpx "${NG_ROLES[@]}"; else log "bench: nghttpx under callgrind failed"; fi
    stop hop1; stop hop2
    if [ "$OURS_STATE" = ok ]; then
        stop connector; stop edge-sim
        if start_edge && start_connector; then cg_chain ours "${OURS_ROLES[@]}"
        else log "bench: ours under callgrind failed"; dump_logs "$W"/cg/*.vg.log; fi
        stop connector; stop edge-sim
    fi
    PROFILE=""
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
setup_nghttpx || die "the nghttpx chain does not work"
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

capture_mem idle VmRSS      # after startup and the one request each setup made

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
if part throughput; then
    for wl in "${WORKLOADS[@]}"; do
        step "${TITLE[$wl]}"
        for t in "${TARGETS[@]}"; do bench_target "$wl" "$t"; done
    done
    capture_mem peak VmHWM  # before the parts below start other processes
fi

ensure_profile_tools
part syscalls && syscalls_part
part websocket && websocket_part
part callgrind && callgrind_part

cell() { echo "${RES[$1,$2]:-—}"; }

echo
echo "Benchmark $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, BENCH_SCALE=$SCALE, ours: $OURS_STATE," \
     "measured in $((SECONDS / 60)) min $((SECONDS % 60)) s"
echo "edge-sim --workers ${BENCH_EDGE_WORKERS:-1}, nghttpx hop 1 -n${BENCH_HOP1_WORKERS:-1}" \
     "(hop 2 and the connector: one loop each)${BENCH_PIN:+; pinned (taskset): h2load and nginx on CPU ${PIN_LOAD[2]}, proxies on CPU ${PIN_PROXY[2]}}"
if part throughput; then
    echo
    echo "| workload | direct (no TLS) | nghttpx chain | ours | ours/nghttpx |"
    echo "|---|---|---|---|---|"
    for wl in "${WORKLOADS[@]}"; do
        if [ "$OURS_STATE" = ok ]; then r=$(ratio "$wl"); else r="—"; fi
        echo "| ${TITLE[$wl]} | $(cell "$wl" direct) | $(cell "$wl" nghttpx) | $(cell "$wl" ours) | $r |"
    done
    echo
    echo "Ratio > 1 is better for req/s and MB/s, worse for latency. MB = 10^6 bytes of response body."
fi

# ---- per-process tables: edge-sim, connector, ours, hop 1, hop 2, nghttpx, ours/nghttpx

ROW_ROLES=(edge-sim connector ours hop1 hop2 nghttpx)
declare -A SUM_OF=([ours]="edge-sim connector" [nghttpx]="hop1 hop2")
declare -A V        # role -> number for the current row ("" = none)

sum_row() {   # fills V[ours], V[nghttpx] when both parts are there
    local g r s ok
    for g in ours nghttpx; do
        s=0; ok=1
        for r in ${SUM_OF[$g]}; do
            if [ -n "${V[$r]:-}" ]; then s=$(awk -v a="$s" -v b="${V[$r]}" 'BEGIN {print a + b}'); else ok=0; fi
        done
        if [ $ok = 1 ]; then V[$g]=$s; else V[$g]=""; fi
    done
}

# print_row TITLE FORMAT-FUNCTION [CELL-FUNCTION]: one table row from V
print_row() {
    local title=$1 fmt=$2 r line ratio="—"
    line="| $title |"
    for r in "${ROW_ROLES[@]}"; do
        if [ -n "${V[$r]:-}" ]; then line+=" $($fmt "${V[$r]}" "$r") |"; else line+=" — |"; fi
    done
    if [ -n "${V[ours]:-}" ] && [ -n "${V[nghttpx]:-}" ]; then
        ratio=$(awk -v a="${V[ours]}" -v b="${V[nghttpx]}" 'BEGIN {if (b > 0) printf "%.2f×", a / b; else print "—"}')
    fi
    echo "$line $ratio |"
}

fmt_kinst() { awk -v x="$1" 'BEGIN {printf "%.1fk", x / 1000}'; }
fmt_2() { awk -v x="$1" 'BEGIN {printf "%.2f", x}'; }
fmt_kib() { awk -v x="$1" 'BEGIN {printf "%.1f KiB", x}'; }
fmt_mib() {   # fmt_mib KB ROLE: nghttpx hops also show "w WORKER + m MASTER"
    local s
    s=$(awk -v x="$1" 'BEGIN {printf "%.1f MiB", x / 1024}')
    case $2 in hop1 | hop2)
        set -- ${MEMROW[$2]:-}
        [ $# -eq 3 ] && s+=$(awk -v w="$2" -v m="$3" 'BEGIN {printf " (w %.1f + m %.1f)", w / 1024, m / 1024}')
        ;;
    esac
    echo "$s"
}

declare -A MEMROW
mem_row() {   # mem_row idle|peak TITLE
    local r
    V=(); MEMROW=()
    for r in "${NG_ROLES[@]}" "${OURS_ROLES[@]}"; do
        MEMROW[$r]=${MEM[$1,$r]:-}
        V[$r]=${MEMROW[$r]%% *}
    done
    sum_row
    print_row "$2" fmt_mib
}

HEAD="| edge-sim | connector | ours | nghttpx hop 1 | nghttpx hop 2 | nghttpx chain | ours/nghttpx |"
echo
echo "Per process: ours = edge-sim + connector; a nghttpx hop = its worker (w) + master (m)."
echo
echo "| per request, $PROFILE_TITLE $HEAD"
echo "|---|---|---|---|---|---|---|---|"
V=(); for r in "${NG_ROLES[@]}" "${OURS_ROLES[@]}"; do V[$r]=${CGREQ[$r]:-}; done
sum_row; print_row "instructions (callgrind, nghttpx as --single-process)" fmt_kinst
V=(); for r in "${NG_ROLES[@]}" "${OURS_ROLES[@]}"; do V[$r]=${SYSREQ[$r]:-}; done
case $SYS_TOOL in
perf) how="perf stat on the raw_syscalls:sys_enter tracepoint" ;;
strace) how="strace -c -f" ;;
*) how="not counted" ;;
esac
sum_row; print_row "syscalls ($how, idle rate subtracted)" fmt_2
echo
echo "| memory $HEAD"
echo "|---|---|---|---|---|---|---|---|"
mem_row idle "idle RSS (after startup and one request)"
mem_row peak "peak RSS (VmHWM) under the throughput runs (sum of peaks)"
V=(); for r in "${NG_ROLES[@]}" "${OURS_ROLES[@]}"; do V[$r]=${WS_KB[$r]:-}; done
sum_row; print_row "RSS per idle WebSocket, $WS_N held open" fmt_kib
echo
echo "| process | instructions per request | self cost by object (top 4) | syscalls per request | top syscalls per request |"
echo "|---|---|---|---|---|"
declare -A NAME=([edge-sim]=edge-sim [connector]=connector [hop1]="nghttpx hop 1" [hop2]="nghttpx hop 2")
for r in "${OURS_ROLES[@]}" "${NG_ROLES[@]}"; do
    top=""
    for kv in ${CGTOP[$r]:-}; do
        top+="${top:+, }${kv%%=*} $(fmt_kinst "${kv#*=}")"
    done
    ci=${CGREQ[$r]:-}; [ -n "$ci" ] && ci=$(fmt_kinst "$ci")
    echo "| ${NAME[$r]} | ${ci:-—} | ${top:-—} | ${SYSREQ[$r]:-—} | ${SYSTOP[$r]:-—} |"
done
for note in "$SYS_NOTE" "$WS_NOTE" "$CG_NOTE"; do [ -n "$note" ] && echo "Note: $note"; done
echo
echo "Instructions: two runs of the same shape (-n N1, -n N2) under callgrind, (I2 - I1) / (N2 - N1),"
echo "so startup, handshakes and idle cost cancel. Syscalls: one native run, minus the idle rate."
