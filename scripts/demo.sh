#!/bin/bash
# make demo: a fresh edge-sim, a tunnel, and a connector serving the built-in
# hello_world page, all on 127.0.0.1; prints a curl command; Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
TUNNEL_ADDR=${TUNNEL_ADDR:-127.0.0.1:7844}
HTTPS_ADDR=${HTTPS_ADDR:-127.0.0.1:8443}
ADMIN_ADDR=${ADMIN_ADDR:-127.0.0.1:7845}
HOST=${DEMO_HOSTNAME:-hello.demo.test}
DEMO=$(mktemp -d /tmp/tunnel-demo.XXXXXX)
PIDS=()
stop() {
    trap - INT TERM EXIT
    echo; echo "demo: stopping"
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DEMO"
}
trap stop INT TERM EXIT

bin/edge-sim serve --data-dir "$DEMO/edge" --tunnel-addr "$TUNNEL_ADDR" --https-addr "$HTTPS_ADDR" \
    --admin-addr "$ADMIN_ADDR" 2> >(sed 's/^/[edge-sim] /' >&2) &
PIDS+=($!)
port=${HTTPS_ADDR##*:}
for _ in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
TOKEN=$(bin/edge-sim tunnel create demo --data-dir "$DEMO/edge" 2>/dev/null)
bin/edge-sim ca --data-dir "$DEMO/edge" > "$DEMO/ca.pem"
bin/connector run --token "$TOKEN" --state-dir "$DEMO/connector" --hostname "$HOST" --url hello_world \
    2> >(sed 's/^/[connector] /' >&2) &
PIDS+=($!)
CURL="curl --cacert $DEMO/ca.pem --resolve $HOST:$port:127.0.0.1 https://$HOST:$port/"
for _ in $(seq 1 100); do $CURL -sf -o /dev/null 2>/dev/null && break; sleep 0.1; done
cat <<TXT

  The tunnel is up. URL: https://$HOST:$port/
  Reach it through the tunnel with:

    $CURL

  (A browser works too: trust $DEMO/ca.pem and map $HOST to 127.0.0.1.)
  Status page: http://$ADMIN_ADDR/#token=$(cat "$DEMO/edge/admin.token")
  Admin API: curl -H "Authorization: Bearer \$(bin/edge-sim admin token --data-dir $DEMO/edge)" \\
               http://$ADMIN_ADDR/api/tunnels
  Press Ctrl-C to stop everything.

TXT
wait -n "${PIDS[@]}" || true
