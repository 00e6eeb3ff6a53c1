# Headless Chromium (Debian's) presenting a client certificate from a PKCS#12
# file. Source after lib.sh (uses WORK, PIDS, HERE, log).
#
#   chromium_home NAME                   fresh $WORK/chrome-home-NAME with an
#                                        empty NSS DB; sets CHROMIUM_HOME
#   chromium_nssdb_import P12 PASSWORD   imports key+certs into CHROMIUM_HOME
#                                        (makes the home "default" if unset)
#   chromium_nssdb_trust_ca PEM          trusts PEM for server certificates in
#                                        CHROMIUM_HOME; that home's runs then
#                                        drop --ignore-certificate-errors
#   chromium_autoselect_policy URL_PATTERN ISSUER_CN
#                                        adds an AutoSelectCertificateForUrls
#                                        entry for all later runs
#   chromium_fetch_text URL JS_EXPR [SECONDS]
#                                        loads URL in a fresh headless Chromium
#                                        (HOME=CHROMIUM_HOME), prints JS_EXPR's
#                                        value once the page has loaded, kills it;
#                                        fails after SECONDS (default 20). E.g.
#   'performance.getEntriesByType("navigation")[0].responseStatus + " " + document.body.innerText'
#   gives "200 <body>" or "403 <body>". Every host resolves to 127.0.0.1
#   (CHROMIUM_HOST_RULES overrides the --host-resolver-rules value).
#
# How it works (Chromium 156 on Debian 12):
# - Chromium on Linux reads client certificates from the NSS DB at
#   $HOME/.pki/nssdb (never from --user-data-dir), so each home is a temp HOME;
#   pk12util accepts OpenSSL 3's default PKCS#12 (AES-256/PBKDF2), -legacy and
#   3DES/SHA-1-MAC bundles alike.
# - The policy is applied per process, not via /etc: Debian's unbranded build
#   honours the "local test policies" of chrome://policy/test, which Chromium
#   reads once at startup from "local_test_policies_for_next_startup" in
#   <user-data-dir>/Local State (and then clears, so every run gets a fresh
#   --user-data-dir). They replace all other policy sources, /etc included,
#   for that process.
#   CHROMIUM_POLICY_ETC=1 writes /etc/chromium/policies/managed/ instead (root
#   only, global while the script runs; removed on exit).
# - With a certificate in the DB and no matching policy entry Chromium waits
#   for a selection dialog that headless never shows: the run times out. For
#   "no certificate" use a home without one (then nothing is sent, no wait).
# - --ignore-certificate-errors does not stop the client certificate being sent.

CHROMIUM_HOME=${CHROMIUM_HOME:-}
CHROMIUM_AUTOSELECT=() # JSON strings, one per policy list entry
CHROMIUM_RUNS=0

chromium_home() { # NAME
    CHROMIUM_HOME=$WORK/chrome-home-$1
    rm -rf "$CHROMIUM_HOME"
    mkdir -p "$CHROMIUM_HOME/.pki/nssdb" &&
        certutil -N -d "sql:$CHROMIUM_HOME/.pki/nssdb" --empty-password
}

chromium_nssdb_import() { # P12 PASSWORD
    [ -n "$CHROMIUM_HOME" ] || chromium_home default || return 1
    local pw=$WORK/chrome-p12-password
    local out rc
    printf '%s' "$2" > "$pw"
    out=$(pk12util -i "$1" -d "sql:$CHROMIUM_HOME/.pki/nssdb" -w "$pw" 2>&1)
    rc=$?
    rm -f "$pw"
    [ $rc = 0 ] || echo "pk12util: $out" >&2
    return $rc
}

chromium_nssdb_trust_ca() { # PEM
    [ -n "$CHROMIUM_HOME" ] || chromium_home default || return 1
    certutil -A -d "sql:$CHROMIUM_HOME/.pki/nssdb" -n "server-ca-$RANDOM" -t C,, -i "$1" &&
        touch "$CHROMIUM_HOME/.server-ca-trusted"
}

# The policy value is a list of JSON strings:
#   ["{\"pattern\":\"https://[*.]example.test\",\"filter\":{\"ISSUER\":{\"CN\":\"...\"}}}"]
chromium_autoselect_policy() { # URL_PATTERN ISSUER_CN
    CHROMIUM_AUTOSELECT+=("$("${PY:-/usr/bin/python3}" -c 'import json, sys
print(json.dumps({"pattern": sys.argv[1], "filter": {"ISSUER": {"CN": sys.argv[2]}}}))' "$1" "$2")")
    [ -n "${CHROMIUM_POLICY_ETC:-}" ] || return 0
    CHROMIUM_POLICY_FILE=${CHROMIUM_POLICY_FILE:-/etc/chromium/policies/managed/tunnel-test-$$-$RANDOM.json}
    trap '_chromium_policy_remove; cleanup' EXIT
    trap 'exit 130' INT TERM HUP
    mkdir -p "$(dirname "$CHROMIUM_POLICY_FILE")" &&
        "${PY:-/usr/bin/python3}" -c 'import json, sys
json.dump({"AutoSelectCertificateForUrls": sys.argv[2:]}, open(sys.argv[1], "w"))' \
            "$CHROMIUM_POLICY_FILE" "${CHROMIUM_AUTOSELECT[@]}"
}

_chromium_policy_remove() { [ -z "${CHROMIUM_POLICY_FILE:-}" ] || rm -f "$CHROMIUM_POLICY_FILE"; }

chromium_fetch_text() { # URL JS_EXPR [SECONDS]
    local url=$1 expr=$2 secs=${3:-20}
    [ -n "$CHROMIUM_HOME" ] || chromium_home default || return 1
    CHROMIUM_RUNS=$((CHROMIUM_RUNS + 1))
    local udd=$WORK/chrome-profile-$CHROMIUM_RUNS
    rm -rf "$udd"
    mkdir -p "$udd"
    if [ ${#CHROMIUM_AUTOSELECT[@]} -gt 0 ] && [ -z "${CHROMIUM_POLICY_ETC:-}" ]; then
        "${PY:-/usr/bin/python3}" -c 'import json, sys
pol = [{"level": 1, "scope": 1, "source": 0, "name": "AutoSelectCertificateForUrls",
        "value": sys.argv[2:]}]
json.dump({"local_test_policies_for_next_startup": json.dumps(pol)}, open(sys.argv[1], "w"))' \
            "$udd/Local State" "${CHROMIUM_AUTOSELECT[@]}" || return 1
    fi
    local flags=(--headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run
        --disable-background-networking --disable-component-update --disable-sync
        --user-data-dir="$udd" --remote-debugging-port=0
        --host-resolver-rules="${CHROMIUM_HOST_RULES:-MAP * 127.0.0.1}")
    [ -e "$CHROMIUM_HOME/.server-ca-trusted" ] || flags+=(--ignore-certificate-errors)
    HOME=$CHROMIUM_HOME chromium "${flags[@]}" "$url" >> "$WORK/chromium.log" 2>&1 < /dev/null &
    local c=$! port="" out rc
    PIDS+=("$c")
    for _ in $(seq 1 $((secs * 10))); do
        port=$(head -n1 "$udd/DevToolsActivePort" 2>/dev/null)
        [ -n "$port" ] && break
        sleep 0.1
    done
    # The first evaluations may still see the initial about:blank document.
    local host=${url#*://}
    host=${host%%[/:]*}
    out=$("${PY:-/usr/bin/python3}" "$HERE/cdp_eval.py" "${port:-0}" "$host" \
        "(location.href === 'about:blank' || document.readyState !== 'complete') ? 'pending' : String($expr)" \
        "$secs")
    rc=$?
    kill $c 2>/dev/null
    for _ in $(seq 1 50); do kill -0 $c 2>/dev/null || break; sleep 0.1; done
    kill -9 $c 2>/dev/null
    wait $c 2>/dev/null
    rm -rf "$udd"
    printf '%s\n' "$out"
    return $rc
}
