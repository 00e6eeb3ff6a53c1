# Shared helpers for integration tests: real binaries on 127.0.0.1.
# Each test script sources this, calls `check NAME COMMAND...` per case and
# `finish` at the end; results are appended to $RESULTS (one line per case).
set -u
BIN=${BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/test/bin}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$(mktemp -d /tmp/tunnel-it.XXXXXX)
chmod 755 "$WORK" # nginx workers run as another user
RESULTS=${RESULTS:-$WORK/results}
PIDS=()
# Sanitizer reports go to files so every script can assert there were none.
mkdir -p "$WORK/san"
export ASAN_OPTIONS=detect_leaks=1:log_path=$WORK/san/asan
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$WORK/san/ubsan

# Ports: a base per script so scripts can run one after another without clashes.
# Below the kernel's ephemeral range (32768 and up by default), where an
# outgoing connection's source port can take a listener's port: it did, once
# ("cannot listen on 127.0.0.1:35186: address already in use").
PORT_BASE=${PORT_BASE:-$((20000 + RANDOM % 12700))}
TUNNEL_PORT=$((PORT_BASE + 1)); HTTPS_PORT=$((PORT_BASE + 2)); ADMIN_PORT=$((PORT_BASE + 3))
ORIGIN_PORT=$((PORT_BASE + 4)); NGINX_PORT=$((PORT_BASE + 5)); NGINX_TLS_PORT=$((PORT_BASE + 6))
BLACKHOLE_PORT=$((PORT_BASE + 7))

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.2
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "  [$(date +%H:%M:%S)] $*" >&2; }

# check NAME CMD...: runs CMD; records pass/fail.
check() {
    local name=$1; shift
    if [ -n "${ONLY:-}" ] && [[ "$name" != *$ONLY* ]]; then return 0; fi
    # Run in this shell (not a subshell) so started processes are tracked.
    if "$@" > "$WORK/check.out" 2>&1; then
        echo "ok   $name"; echo "pass $name" >> "$RESULTS"
        [ -n "${VERBOSE:-}" ] && sed 's/^/     | /' "$WORK/check.out"
    else
        echo "FAIL $name"; tail -n 15 "$WORK/check.out" | sed 's/^/     | /'
        echo "fail $name" >> "$RESULTS"
    fi
    grep -h '^peak RSS\|^1 GiB\|^rates\|^memory per\|messages,' "$WORK/check.out" 2>/dev/null | sed 's/^/     > /'
    return 0
}

wait_port() { # host port [seconds]
    local i
    for i in $(seq 1 $(( ${3:-10} * 20 ))); do
        (echo > /dev/tcp/$1/$2) 2>/dev/null && return 0
        sleep 0.05
    done
    echo "port $1:$2 never opened" >&2; return 1
}

wait_for() { # seconds cmd...: polls until cmd succeeds
    local t=$1; shift
    local i
    for i in $(seq 1 $((t * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

EDGE_DIR=$WORK/edge
start_edge() {
    "$BIN/edge-sim" serve --data-dir "$EDGE_DIR" --tunnel-addr 127.0.0.1:$TUNNEL_PORT \
        --https-addr 127.0.0.1:$HTTPS_PORT --admin-addr 127.0.0.1:$ADMIN_PORT \
        ${EDGE_ARGS:-} >> "$WORK/edge.log" 2>&1 &
    EDGE_PID=$!; PIDS+=($EDGE_PID)
    wait_port 127.0.0.1 $HTTPS_PORT && wait_port 127.0.0.1 $TUNNEL_PORT
    "$BIN/edge-sim" ca --data-dir "$EDGE_DIR" > "$WORK/ca.pem"
}

# admin_auth [DATA_DIR]: a curl header file (curl -H @FILE) with the edge's
# admin bearer token (DATA_DIR/admin.token, default EDGE_DIR, which serve
# makes at start), so the token is never on a command line. Prints its path.
admin_auth() {
    local d=${1:-$EDGE_DIR}
    local f=$WORK/admin-auth-$(echo "$d" | md5sum | cut -c1-8).hdr
    if [ ! -s "$f" ]; then
        [ -s "$d/admin.token" ] || { echo "no admin token in $d" >&2; return 1; }
        (umask 077; printf 'Authorization: Bearer %s\n' "$(cat "$d/admin.token")" > "$f")
    fi
    echo "$f"
}

# Every token a test hands out is recorded, so finish can sweep the logs for it.
remember_token() { [ -n "${1:-}" ] && printf '%s\n' "$1" >> "$WORK/.tokens"; return 0; }

create_tunnel() { # name [args]: prints the token
    local t rc
    t=$("$BIN/edge-sim" tunnel create "$@" --data-dir "$EDGE_DIR" 2>>"$WORK/edge-cli.log")
    rc=$?
    remember_token "$t"
    [ -n "$t" ] && printf '%s\n' "$t"
    return $rc
}

# start_connector TOKEN args...: sets CONN_PID
start_connector() {
    local token=$1; shift
    remember_token "$token"
    "$BIN/connector" run --token "$token" --state-dir "$WORK/state" "$@" \
        >> "$WORK/connector.log" 2>&1 &
    CONN_PID=$!; PIDS+=($CONN_PID)
}

# A listener that never accepts, with its backlog full: connects to it time out.
start_blackhole() {
    python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(0)
fill = []
for _ in range(4):
    c = socket.socket(); c.setblocking(False); c.connect_ex(("127.0.0.1", int(sys.argv[1]))); fill.append(c)
time.sleep(3600)
' $BLACKHOLE_PORT >> "$WORK/blackhole.log" 2>&1 &
    PIDS+=($!)
    sleep 0.3
}

start_origin() {
    python3 "$HERE/origin.py" $ORIGIN_PORT >> "$WORK/origin.log" 2>&1 &
    PIDS+=($!)
    wait_port 127.0.0.1 $ORIGIN_PORT
}

# start_sshd PORT: a private sshd on 127.0.0.1 with throwaway keys; root
# logs in with $SSH_KEY.
start_sshd() {
    local port=$1
    mkdir -p /run/sshd "$WORK/ssh"
    ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/id"
    cp "$WORK/ssh/id.pub" "$WORK/ssh/authorized_keys"
    cat > "$WORK/ssh/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $WORK/ssh/host_key
AuthorizedKeysFile $WORK/ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PidFile $WORK/ssh/sshd.pid
CONF
    /usr/sbin/sshd -D -e -f "$WORK/ssh/sshd_config" >> "$WORK/sshd.log" 2>&1 &
    PIDS+=($!)
    SSH_KEY=$WORK/ssh/id
    wait_port 127.0.0.1 "$port"
}

# curl through the edge for HOST: tcurl HOST PATH [curl args]
tcurl() {
    local host=$1 path=$2; shift 2
    curl -sS --cacert "$WORK/ca.pem" --resolve "$host:$HTTPS_PORT:127.0.0.1" \
        "https://$host:$HTTPS_PORT$path" "$@"
}

# A test client CA ($WORK/cca.pem, .key) and a client certificate it issued
# for CN=tunnel-connector ($WORK/client.pem, .key), P-256, two days.
make_client_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=test-client-ca \
        -keyout "$WORK/cca.key" -out "$WORK/cca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=tunnel-connector \
        -keyout "$WORK/client.key" -out "$WORK/client.csr" 2>/dev/null
    openssl x509 -req -in "$WORK/client.csr" -CA "$WORK/cca.pem" -CAkey "$WORK/cca.key" -CAcreateserial \
        -days 2 -out "$WORK/client.pem" 2>/dev/null
}

routed() { # host: true once a request returns 200
    [ "$(tcurl "$1" /${2:-} -o /dev/null -w '%{http_code}')" = 200 ]
}

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

peak_rss_kib() { awk '/VmHWM/ {print $2}' /proc/$1/status; }

sanitizers_clean() {
    local f
    f=$(ls "$WORK/san" 2>/dev/null)
    [ -z "$f" ] && return 0
    head -n 40 "$WORK"/san/* ; return 1
}

finish() {
    local pass fail
    # Stop everything gracefully so LeakSanitizer reports at exit are seen,
    # but never wait forever: a process still there after 60 s is killed and
    # reported (a hung exit must fail the script, not hang CI).
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    local i hung=""
    for i in $(seq 1 600); do
        local alive=""
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
        [ -z "$alive" ] && break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            hung="$hung $(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null | cut -c1-60)"
            kill -9 "$p" 2>/dev/null
        fi
        wait "$p" 2>/dev/null
    done
    PIDS=()
    [ -n "$hung" ] && { echo "fail processes did not exit within 60 s:$hung" >> "$RESULTS"; echo "FAIL processes did not exit within 60 s:$hung"; }
    ONLY= check "no sanitizer reports from edge-sim or connector" sanitizers_clean
    ONLY= check "no token, enrolment secret or admin token in any log" \
        /usr/bin/python3 "$HERE/secrets_sweep.py" "$WORK"
    pass=$(grep -c '^pass' "$RESULTS" 2>/dev/null || true)
    fail=$(grep -c '^fail' "$RESULTS" 2>/dev/null || true)
    if [ "${fail:-0}" != 0 ] || [ -n "${KEEP_WORK:-}" ]; then
        echo "--- logs kept in $WORK"; KEEP_WORK=1
        tail -n 20 "$WORK/edge.log" "$WORK/connector.log" 2>/dev/null | sed 's/^/     | /'
    fi
}

start_nginx() { # serves $WORK/www on $NGINX_PORT (and HTTPS on $NGINX_TLS_PORT, self-signed)
    mkdir -p "$WORK/www" "$WORK/nginx-tmp"
    cat > "$WORK/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx-tmp/body;
    proxy_temp_path $WORK/nginx-tmp/proxy;
    fastcgi_temp_path $WORK/nginx-tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx-tmp/uwsgi;
    scgi_temp_path $WORK/nginx-tmp/scgi;
    keepalive_requests 100000;
    server { listen 127.0.0.1:$NGINX_PORT; root $WORK/www; }
    server { listen 127.0.0.1:$NGINX_TLS_PORT ssl; root $WORK/www;
             ssl_certificate $WORK/origin.pem; ssl_certificate_key $WORK/origin.key; }
}
NGX
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=portainer.local -addext subjectAltName=DNS:portainer.local \
        -keyout "$WORK/origin.key" -out "$WORK/origin.pem" 2>/dev/null
    nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" >> "$WORK/nginx.log" 2>&1 &
    PIDS+=($!)
    wait_port 127.0.0.1 $NGINX_PORT
}

# make_file PATH SIZE: pseudo-random content, fast
make_file() {
    openssl enc -aes-128-ctr -pass pass:tunnel -nosalt -pbkdf2 < /dev/zero 2>/dev/null \
        | head -c "$2" > "$1"
}
