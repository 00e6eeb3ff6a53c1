#!/bin/bash
# The status page at the edge's admin address (issue 12): headless Chromium
# (Debian's) loads http://ADMIN/#token=... while traffic flows, and the page
# names the tunnel and its connector (id, version, address), the hostnames
# with their rates and the recent errors; screenshots at desktop and phone
# size are kept as test artifacts (PNG, paths printed). Also: the token leaves
# the address bar and stays in the browser, the page is one column on a
# phone, the CSP lets its own script run, and what the edge reports is shown
# as text, never as HTML (review 12.9: a fake /api/status, served to the page
# through CDP, holds markup in every string). And (review 12.4) both daemons'
# /metrics read as OpenMetrics: no two families claim one name.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! command -v chromium >/dev/null; then
    echo "chromium is not installed (scripts/deps.sh installs it)"; exit 1
fi
ARTIFACTS=${ARTIFACTS:-$(cd "$HERE/../.." && pwd)/build/test/artifacts}
mkdir -p "$ARTIFACTS"

start_edge
cat > "$WORK/config.json" <<JSON
{ "ingress": [
    { "hostname": "status.example.test", "service": "hello_world" },
    { "hostname": "broken.example.test", "service": "http_status:503" },
    { "service": "http_status:404" } ] }
JSON
TOKEN=$(create_tunnel home --hostname status.example.test --hostname broken.example.test)
start_connector "$TOKEN" --config "$WORK/config.json"
wait_for 20 routed status.example.test || log "tunnel never came up"

# Traffic while the page is open: steady requests, and a 503 now and then.
(
    while :; do
        tcurl status.example.test / -o /dev/null 2>/dev/null
        tcurl broken.example.test /fails -o /dev/null 2>/dev/null
        for _ in 1 2 3 4; do tcurl status.example.test / -o /dev/null 2>/dev/null; sleep 0.1; done
    done
) &
PIDS+=($!)

# The connector as the API sees it (the page must name the same).
status_json() { curl -sf -H @"$(admin_auth)" "http://127.0.0.1:$ADMIN_PORT/api/status"; }
connector_of() {
    status_json | $PY -c 'import json,sys
t=[t for t in json.load(sys.stdin)["tunnels"] if t["name"]=="home"][0]
c=t["connectors"][0]; print(c["id"], c["version"], c["address"])'
}
wait_for 5 connector_of
read -r CONN_ID CONN_VERSION CONN_ADDR < <(connector_of)
log "connector $CONN_ID $CONN_VERSION $CONN_ADDR"

# run_page: Chromium with a debugging port on a blank page, driven by
# cdp_status_page.py (the token goes over the debugging socket, never on a
# command line); the report in $WORK/page.json.
run_page() {
    local udd=$WORK/chrome-profile port="" c rc
    mkdir -p "$udd"
    (umask 077; cat "$EDGE_DIR/admin.token" > "$WORK/page-token")
    HOME=$WORK chromium --headless=new --no-sandbox --disable-gpu --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$udd" --remote-debugging-port=0 about:blank \
        >> "$WORK/chromium.log" 2>&1 < /dev/null &
    c=$!
    PIDS+=("$c")
    for _ in $(seq 1 200); do
        port=$(head -n1 "$udd/DevToolsActivePort" 2>/dev/null)
        [ -n "$port" ] && break
        sleep 0.1
    done
    local needles
    needles=$($PY -c 'import json,sys; print(json.dumps(sys.argv[1:]))' home "$CONN_ID" "$CONN_VERSION" \
        "$CONN_ADDR" status.example.test)
    $PY "$HERE/cdp_status_page.py" "${port:-0}" "http://127.0.0.1:$ADMIN_PORT/" "$WORK/page-token" \
        "$needles" "$ARTIFACTS/status-page" 40 > "$WORK/page.json"
    rc=$?
    kill $c 2>/dev/null
    for _ in $(seq 1 50); do kill -0 $c 2>/dev/null || break; sleep 0.1; done
    kill -9 $c 2>/dev/null
    wait $c 2>/dev/null
    rm -f "$WORK/page-token"
    # The profile keeps the token in localStorage by design (a LevelDB
    # journal named *.log, which the log sweep in finish would read as a log
    # unless Chromium compacted it on its way out): it goes with the browser.
    rm -rf "$udd"
    return $rc
}
report() { $PY -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(v if not isinstance(v, list) else "\n".join(v))' "$WORK/page.json" "$1"; }

t_page_names_tunnel_and_connector() {
    run_page || return 1
    local text; text=$(report text)
    echo "$text"
    echo "screenshot: $ARTIFACTS/status-page.png"
    local n
    for n in home "$CONN_ID" "$CONN_VERSION" "$CONN_ADDR" status.example.test; do
        grep -qF -- "$n" <<< "$text" || { echo "the page does not name '$n'"; return 1; }
    done
    [ -s "$ARTIFACTS/status-page.png" ] && [ -s "$ARTIFACTS/status-page-phone.png" ] &&
        [ "$(head -c 8 "$ARTIFACTS/status-page.png" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ]
}
check "Chromium loads the status page with #token= while traffic flows: it names the tunnel and its connector (id, version, address); screenshot kept" t_page_names_tunnel_and_connector
echo "artifact: $ARTIFACTS/status-page.png"
echo "artifact: $ARTIFACTS/status-page-phone.png"

t_rates_and_errors() {
    local text; text=$(report text)
    # The hostnames table and the recent errors (the 503s) are there.
    grep -q 'Requests / min' <<< "$text" && grep -q 'broken.example.test' <<< "$text" &&
        grep -qE '(^|[[:space:]])503([[:space:]]|$)' <<< "$text"
}
check "the page shows hostnames with request and error rates and the recent errors" t_rates_and_errors

t_token_handling() {
    [ "$(report hash_after)" = "" ] || { echo "hash left: $(report hash_after)"; return 1; }
    [ "$(report stored)" = True ] || return 1
    grep -qF "$CONN_ID" <<< "$(report reload_text)" || return 1
    echo "after Forget token: $(report after_forget)"
    [ "$(report after_forget)" = "{'form': True, 'main': False, 'stored': None}" ]
}
check "the token leaves the address bar, stays in localStorage, a reload without it still shows the status; Forget token brings the paste form" t_token_handling

t_phone_and_csp() {
    echo "columns: desktop $(report desktop_columns), phone $(report phone_columns)"
    echo "CSP errors: $(report csp_errors)"
    [ "$(report phone_columns)" = 1 ] && [ "$(report desktop_columns)" = 2 ] && [ -z "$(report csp_errors)" ]
}
check "one column on a phone (two on a desktop); no Content-Security-Policy violation" t_phone_and_csp

# review 12.9: the page is served (CDP Fetch.fulfillRequest) an /api/status
# whose every string is markup: <img src=x onerror=window.__pwned=1>,
# <script>window.__pwned=1</script>, <svg onload=...>, <b>. Each shows as
# text, none became an element, no script ran, no CSP report; the probe does
# see the same markup once it is parsed as HTML (the control).
t_markup_is_text() {
    [ -s "$WORK/page.json" ] || run_page || return 1 # when ONLY= skipped the first check
    echo "fake /api/status answers served: $(report markup_served)"
    local missing elements control
    missing=$(report markup_schema_missing)
    [ -z "$missing" ] || { echo "string fields of /api/status the fake lacks:"; echo "$missing"; return 1; }
    [ "$(report markup_served)" -ge 1 ] 2>/dev/null || { echo "the fake /api/status was never served"; return 1; }
    missing=$(report markup_missing)
    [ -z "$missing" ] || { echo "not shown as text:"; echo "$missing"; echo "page text:"; report markup_text; return 1; }
    elements=$(report markup_elements)
    [ -z "$elements" ] || { echo "markup became elements:"; echo "$elements"; return 1; }
    [ "$(report markup_pwned)" = undefined ] || { echo "a script from the data ran: window.__pwned is $(report markup_pwned)"; return 1; }
    [ -z "$(report markup_csp_errors)" ] || { echo "CSP reports:"; report markup_csp_errors; return 1; }
    control=$(report markup_control | sort -u | tr '\n' ' ')
    echo "control (the markup parsed as HTML): $control"
    grep -qw img <<< "$control" && grep -q 'script#' <<< "$control" && grep -q 'onerror' <<< "$control" ||
        { echo "the probe does not see markup parsed as HTML"; return 1; }
}
check "review 12.9 markup in every string of /api/status (<img onerror>, <script>, <svg onload>) is shown as text: no element made, no script run" t_markup_is_text

# review 12.4: each daemon's /metrics, written back as OpenMetrics, passes
# the strict parser (no gauge X next to a counter X_total, ...).
t_metrics_openmetrics_names() {
    local cm
    curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" -o "$WORK/edge.prom" || { echo "no edge /metrics"; return 1; }
    cm=$(grep -o 'metrics on http://127\.0\.0\.1:[0-9]*/metrics' "$WORK/connector.log" | head -n1 | sed 's/^metrics on //')
    [ -n "$cm" ] || { echo "the connector logged no metrics address"; return 1; }
    curl -sf "$cm" -o "$WORK/connector.prom" || { echo "no connector /metrics at $cm"; return 1; }
    grep -q '^edge_browser_connections_open{' "$WORK/edge.prom" || { echo "no edge_browser_connections_open"; return 1; }
    ! grep -q '^edge_browser_connections{' "$WORK/edge.prom" || { echo "the old gauge name is back"; return 1; }
    $PY "$HERE/om_strict.py" "$WORK/edge.prom" "$WORK/connector.prom"
}
check "review 12.4 both daemons' /metrics read as OpenMetrics-strict: no two families claim one name (edge_browser_connections_open)" t_metrics_openmetrics_names

finish
