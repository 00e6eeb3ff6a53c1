#!/bin/bash
# TCP services (tcp://, ssh://) through the tunnel, reached with
# `connector access tcp` in listening mode and as an SSH ProxyCommand.
source "$(dirname "$0")/lib.sh"

ECHO_PORT=$((PORT_BASE + 11)); LOCAL_PORT=$((PORT_BASE + 12)); SSH_PORT=$((PORT_BASE + 13))
start_edge
start_origin
python3 "$HERE/tcp_echo.py" $ECHO_PORT >> "$WORK/echo.log" 2>&1 &
PIDS+=($!)

start_sshd $SSH_PORT
wait_port 127.0.0.1 $ECHO_PORT && wait_port 127.0.0.1 $SSH_PORT

TOKEN=$(create_tunnel tcp)
start_connector "$TOKEN" --hostname echo.example.test --url tcp://127.0.0.1:$ECHO_PORT \
    --hostname ssh.example.test --url ssh://127.0.0.1:$SSH_PORT \
    --hostname plain.example.test --url http://127.0.0.1:$ORIGIN_PORT
wait_for 20 routed plain.example.test || log "tunnel never came up"
ACCESS=("$BIN/connector" access tcp --edge 127.0.0.1:$HTTPS_PORT --edge-ca "$WORK/ca.pem")

"${ACCESS[@]}" --hostname echo.example.test --url 127.0.0.1:$LOCAL_PORT >> "$WORK/access.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 $LOCAL_PORT

t_tcp_echo() {
    python3 - $LOCAL_PORT <<'PY'
import hashlib, os, socket, sys, threading
def run(size, results, i):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    data = os.urandom(size)
    got = bytearray()
    def rd():
        while len(got) < len(data):
            d = s.recv(65536)
            if not d:
                break
            got.extend(d)
    t = threading.Thread(target=rd); t.start()
    s.sendall(data); t.join(60); s.close()
    results[i] = bytes(got) == data
results = {}
ts = [threading.Thread(target=run, args=(size, results, i)) for i, size in enumerate([1, 1 << 20, 8 << 20, 3 << 20])]
[t.start() for t in ts]; [t.join() for t in ts]
print("raw TCP echo through --url listening mode:", results)
assert all(results.values()) and len(results) == 4
PY
}
check "raw TCP echo through access tcp --url (4 concurrent connections, up to 8 MiB)" t_tcp_echo

t_stdio() {
    local out
    out=$(printf 'hello over stdio\n' | timeout -k 10 10 "${ACCESS[@]}" --hostname echo.example.test)
    [ "$out" = "hello over stdio" ]
}
check "access tcp without --url carries stdin/stdout" t_stdio

SSH=(ssh -q -i "$SSH_KEY" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
     -o "ProxyCommand=${ACCESS[*]} --hostname ssh.example.test" root@ssh.example.test)

t_ssh_command() {
    [ "$("${SSH[@]}" 'echo hello-from-sshd')" = hello-from-sshd ]
}
check "ssh with ProxyCommand=connector access tcp runs a command on the sshd" t_ssh_command

t_ssh_copy() {
    make_file "$WORK/100m.bin" $((100 << 20))
    local want got
    want=$(sha256sum < "$WORK/100m.bin" | cut -d' ' -f1)
    got=$("${SSH[@]}" 'sha256sum' < "$WORK/100m.bin" | cut -d' ' -f1)
    echo "up: $got"
    [ "$got" = "$want" ] || return 1
    got=$("${SSH[@]}" "cat $WORK/100m.bin" | sha256sum | cut -d' ' -f1)
    echo "down: $got"
    [ "$got" = "$want" ]
}
check "100 MiB copied both ways over ssh through the tunnel, intact" t_ssh_copy

t_http_to_tcp_service() {
    local r
    r=$(tcurl echo.example.test / -w '\n%{http_code}')
    [ "$(echo "$r" | tail -n1)" = 400 ] && echo "$r" | head -n1 | grep -q "TCP service"
}
check "a browser request to a TCP service gets a clear 400" t_http_to_tcp_service

t_unknown_hostname() {
    local out rc
    out=$(echo x | timeout -k 10 10 "${ACCESS[@]}" --hostname nope.example.test 2>&1); rc=$?
    echo "$out"
    [ $rc = 1 ] && echo "$out" | grep -q "the edge answered 404"
}
check "access tcp to an unknown hostname fails with one clear line" t_unknown_hostname

finish
