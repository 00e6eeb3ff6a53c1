#!/bin/bash
# What a browser actually does: headless Chromium (Debian's) loads a page
# through the tunnel over HTTP/2, then opens a WebSocket on the same
# connection (extended CONNECT) and echoes a message.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! command -v chromium >/dev/null; then
    echo "chromium is not installed (scripts/deps.sh installs it)"; exit 1
fi

start_edge
start_nginx
WS_PORT=$((PORT_BASE + 9)); CDP_PORT=$((PORT_BASE + 14))
$PY "$HERE/ws_echo.py" $WS_PORT >> "$WORK/ws.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 $WS_PORT
cat > "$WORK/www/page.html" <<'HTML'
<!doctype html><html><head><meta charset="utf-8"><title>tunnel ws</title></head><body>
<div id="out">pending</div>
<script>
const out = document.getElementById("out");
const ws = new WebSocket("wss://" + location.host + "/ws/echo");
ws.onopen = () => ws.send("hello from chromium");
ws.onmessage = (e) => { out.textContent = "echo:" + e.data; ws.close(1000); };
ws.onerror = () => { out.textContent = "error"; };
</script></body></html>
HTML
cat > "$WORK/config.json" <<JSON
{ "ingress": [
    { "hostname": "page.example.test", "path": "^/ws/", "service": "http://127.0.0.1:$WS_PORT" },
    { "hostname": "page.example.test", "service": "http://127.0.0.1:$NGINX_PORT" },
    { "service": "http_status:404" } ] }
JSON
TOKEN=$(create_tunnel browser)
start_connector "$TOKEN" --config "$WORK/config.json"
wait_for 20 routed page.example.test page.html || log "tunnel never came up"

t_chromium_ws_over_h2() {
    chromium --headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$WORK/chrome" --ignore-certificate-errors \
        --host-resolver-rules="MAP page.example.test 127.0.0.1" \
        --remote-debugging-port=$CDP_PORT \
        "https://page.example.test:$HTTPS_PORT/page.html" >> "$WORK/chromium.log" 2>&1 &
    local c=$!
    PIDS+=($c)
    local out
    out=$($PY "$HERE/cdp_eval.py" $CDP_PORT page.html 'document.getElementById("out").textContent' 30)
    kill $c 2>/dev/null
    echo "page says: $out"
    grep "WebSocket for page.example.test" "$WORK/edge.log" | tail -n1
    [ "$out" = "echo:hello from chromium" ] &&
        grep -q "WebSocket for page.example.test over HTTP/2" "$WORK/edge.log"
}
check "Chromium loads a page through the tunnel and echoes over a WebSocket on HTTP/2" t_chromium_ws_over_h2

finish
