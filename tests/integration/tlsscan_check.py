#!/usr/bin/env python3
"""Judges a TLS scan: testssl.sh JSON for each edge listener and the
connector's recorded ClientHellos (tls_hello.py). Prints one table with a
column per endpoint and writes "ok NAME" or "fail NAME" per endpoint to the
verdict file.

Usage: tlsscan_check.py VERDICTS NAME=testssl:FILE... NAME=hello:FILE...

The policy (README "TLS"): TLS 1.2 and 1.3 only; AEAD suites with ECDHE
only (TLS 1.3: ChaCha20-Poly1305 and AES-GCM; TLS 1.2: ECDHE with
ChaCha20-Poly1305 or AES-GCM); ECDHE on X25519, P-256 or P-384 only; no known
vulnerability. The order (px_tls.c), as TLS_ORDER says (tlsscan.sh sets it):
"chacha" (default): ChaCha20-Poly1305 first, in the server's order; "aes" (a
wolfSSL with AES-NI code on a CPU with AES-NI): AES-128-GCM first, in the
client's order (testssl.sh rates "NOT a cipher order configured" HIGH; every
suite offered is an ECDHE AEAD one, so here it is the policy).
"""
import json
import os
import re
import sys

AES_ORDER = os.environ.get("TLS_ORDER", "chacha") == "aes"

TLS13_SUITES = {"1301": "AES128-GCM", "1302": "AES256-GCM", "1303": "CHACHA20"}
TLS12_SUITES = {
    "c02b": "ECDSA-AES128-GCM",
    "c02c": "ECDSA-AES256-GCM",
    "cca9": "ECDSA-CHACHA20",
    "c02f": "RSA-AES128-GCM",
    "c030": "RSA-AES256-GCM",
    "cca8": "RSA-CHACHA20",
}
SCSV = {"00ff"}  # TLS_EMPTY_RENEGOTIATION_INFO_SCSV, a signal, not a suite
CURVE_NAMES = {"X25519": "X25519", "prime256v1": "P-256", "secp384r1": "P-384"}
GROUP_IDS = {29: "X25519", 23: "P-256", 24: "P-384"}

# testssl.sh ids of the vulnerability checks (-U) and their table labels.
VULNS = [
    ("heartbleed", "Heartbleed"),
    ("CCS", "CCS injection"),
    ("ticketbleed", "Ticketbleed"),
    ("ROBOT", "ROBOT"),
    ("secure_renego", "secure renegotiation"),
    ("secure_client_renego", "client renegotiation"),
    ("CRIME_TLS", "CRIME (TLS compression)"),
    ("BREACH", "BREACH (HTTP compression)"),
    ("POODLE_SSL", "POODLE"),
    ("fallback_SCSV", "downgrade (FALLBACK_SCSV)"),
    ("SWEET32", "SWEET32"),
    ("FREAK", "FREAK"),
    ("DROWN", "DROWN"),
    ("LOGJAM", "LOGJAM"),
    ("BEAST", "BEAST"),
    ("LUCKY13", "LUCKY13"),
    ("RC4", "RC4"),
]
# Checks testssl.sh runs only where they apply (HTTP); elsewhere "n/a" is fine.
HTTP_ONLY = {"ticketbleed", "BREACH"}
# Findings about the scanning machine, not the server.
IGNORED_IDS = {"engine_problem"}
BAD_SEVERITIES = {"LOW", "MEDIUM", "HIGH", "CRITICAL", "WARN", "FATAL"}

ROWS = [
    ("protocols", "protocols offered"),
    ("below12", "below TLS 1.2"),
    ("suites13", "TLS 1.3 suites"),
    ("suites12", "TLS 1.2 suites"),
    ("nonaead", "non-AEAD suites"),
    ("curves", "key exchange groups"),
    ("ffdh", "finite-field DH"),
    ("order", "preferred suite"),
] + [(vid, label) for vid, label in VULNS] + [("other", "other findings")]


def suite_names(allowed, got):
    """Short cell text: the ciphers, then the TLS 1.2 authentications."""
    if not got:
        return "none"
    names = [allowed.get(s, "x" + s).split("-", 1) for s in got]
    ciphers = sorted({n[1] if n[0] in ("ECDSA", "RSA") else "-".join(n) for n in names})
    auths = sorted({n[0] for n in names if n[0] in ("ECDSA", "RSA")})
    return " ".join(ciphers) + (" (ECDHE-%s)" % "/".join(auths) if auths else "")


class Endpoint:
    def __init__(self, name):
        self.name = name
        self.cells = {}
        self.violations = []

    def cell(self, row, text, ok=True, why=None):
        self.cells[row] = text if ok else "FAIL " + text
        if not ok:
            self.violations.append("%s: %s: %s" % (self.name, dict(ROWS)[row], why or text))


def judge_testssl(ep, path):
    try:
        with open(path) as f:
            records = json.load(f)
    except (OSError, ValueError) as e:
        ep.cell("protocols", "no scan", False, "cannot read %s: %s" % (path, e))
        return
    by_id = {}
    for r in records:
        by_id.setdefault(r["id"], []).append(r)

    def finding(i):
        return by_id[i][0]["finding"] if i in by_id else None

    # Protocols.
    offered, old = [], []
    for pid, label in [("TLS1_2", "TLS1.2"), ("TLS1_3", "TLS1.3")]:
        f = finding(pid)
        if f is None or not f.startswith("offered"):
            ep.cell("protocols", label + " missing", False, "%s: %s" % (pid, f))
            break
        offered.append(label)
    else:
        ep.cell("protocols", " ".join(offered))
    for pid in ["SSLv2", "SSLv3", "TLS1", "TLS1_1"]:
        f = finding(pid)
        if f is None or not f.startswith("not offered"):
            old.append("%s (%s)" % (pid, f or "not tested"))
    ep.cell("below12", ", ".join(old) if old else "none", not old)

    # Cipher suites, per protocol (-E: ids cipher-<proto>_x<hex>).
    suites = {}
    for i in by_id:
        m = re.match(r"cipher-(\w+?)_x([0-9a-f]+)$", i)
        if m:
            suites.setdefault(m.group(1), []).append(m.group(2).rjust(4, "0"))
    for proto, allowed, row in [("tls1_3", TLS13_SUITES, "suites13"),
                                ("tls1_2", TLS12_SUITES, "suites12")]:
        got = sorted(suites.pop(proto, []))
        bad = [s for s in got if s not in allowed]
        names = suite_names(allowed, got)
        ok = bool(got) and not bad and any("CHACHA20" in allowed.get(s, "") for s in got) \
            and any("GCM" in allowed.get(s, "") for s in got)
        ep.cell(row, names or "none", ok, "offered %s; allowed %s" % (got, sorted(allowed)))
    for proto, got in suites.items():
        ep.cell("suites12", "%s suites %s" % (proto, got), False)
    cats = ["cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW",
            "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"]
    bad = [c[11:] + ": " + str(finding(c)) for c in cats
           if finding(c) is None or not finding(c).startswith("not offered")]
    ep.cell("nonaead", ", ".join(bad) if bad else "none (NULL, EXPORT, LOW, 3DES, CBC)", not bad)

    # Key exchange.
    curves = (finding("PFS_ECDHE_curves") or "").split()
    bad = [c for c in curves if c not in CURVE_NAMES]
    ep.cell("curves", " ".join(CURVE_NAMES.get(c, c) for c in curves) or "none",
            bool(curves) and not bad, "curves %s" % curves)
    ep.cell("ffdh", finding("DH_groups") or "none", finding("DH_groups") is None)

    # Server preference: ChaCha20-Poly1305 first in both protocols; or, with
    # AES in hardware, the client's.
    o13 = (finding("cipherorder_TLSv1_3") or "").split()
    o12 = (finding("cipherorder_TLSv1_2") or "").split()
    if AES_ORDER:
        ok = (finding("cipher_order") or "").startswith("NOT a cipher order configured")
        ep.cell("order", "the client's" if ok else "%s: %s / %s" % (
            finding("cipher_order"), o13[:1], o12[:1]), ok)
    else:
        ok = (finding("cipher_order") == "server"
              and o13[:1] == ["TLS_CHACHA20_POLY1305_SHA256"]
              and bool(o12) and "CHACHA20-POLY1305" in o12[0])
        ep.cell("order", "CHACHA20 (1.3, 1.2)" if ok else "%s / %s" % (o13[:1], o12[:1]), ok)

    # Vulnerabilities: every check ran and found nothing.
    for vid, _label in VULNS:
        if vid not in by_id:
            # testssl.sh leaves BREACH out where the service is not HTTP.
            ep.cell(vid, "n/a (not HTTP)" if vid in HTTP_ONLY else "not tested",
                    vid in HTTP_ONLY and finding("service") != "HTTP")
            continue
        r = by_id[vid][0]
        sev, f = r["severity"], r["finding"]
        if sev == "OK":
            ep.cell(vid, "ok")
        elif sev == "INFO" and vid in HTTP_ONLY and f.startswith("not applicable"):
            ep.cell(vid, "n/a (not HTTP)")
        else:
            ep.cell(vid, "%s: %s" % (sev, f), False)

    # Anything else testssl.sh rated below OK.
    other = ["%s %s: %s" % (r["id"], r["severity"], r["finding"]) for r in records
             if r["severity"] in BAD_SEVERITIES and r["id"] not in IGNORED_IDS
             and r["id"] not in dict(VULNS) and not (AES_ORDER and r["id"] == "cipher_order")]
    ep.cell("other", "; ".join(other) if other else "none", not other)


def judge_hello(ep, path):
    try:
        with open(path) as f:
            hellos = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        ep.cell("protocols", "no ClientHello", False, "cannot read %s: %s" % (path, e))
        return
    alpns = sorted({a for h in hellos for a in h.get("alpn", [])})
    errors = [h["error"] for h in hellos if "error" in h]
    hellos = [h for h in hellos if "error" not in h]
    # Both of the connector's contexts: enrolment and the tunnel link.
    if not hellos or "h2" not in alpns or "tunnel-enroll/1" not in alpns or errors:
        ep.cell("protocols", "ClientHellos %s" % alpns, False,
                "want one for enrolment and one for the link (ALPN %s, errors %s)" %
                (alpns, errors))
        return
    names = {"0304": "TLS1.3", "0303": "TLS1.2"}
    versions = sorted({v for h in hellos for v in h.get("versions", [])})
    legacy = {h["legacy_version"] for h in hellos}
    ok = set(versions) <= set(names) and legacy == {"0303"}
    ep.cell("protocols", " ".join(names.get(v, v) for v in versions), ok,
            "supported_versions %s, legacy %s" % (versions, legacy))
    ep.cell("below12", "none" if ok else "offered", ok)
    offered = sorted({s for h in hellos for s in h["cipher_suites"]} - SCSV)
    for allowed, row in [(TLS13_SUITES, "suites13"), (TLS12_SUITES, "suites12")]:
        mine = [s for s in offered if s in allowed]
        ep.cell(row, suite_names(allowed, mine), bool(mine))
    bad = [s for s in offered if s not in TLS13_SUITES and s not in TLS12_SUITES]
    ep.cell("nonaead", ("offers " + " ".join(bad)) if bad else "none", not bad)
    groups = sorted({g for h in hellos for g in h.get("groups", []) + h.get("key_shares", [])})
    bad = [g for g in groups if g not in GROUP_IDS]
    ep.cell("curves", " ".join(GROUP_IDS.get(g, str(g)) for g in groups), not bad and groups,
            "groups %s" % groups)
    ffdh = [g for g in groups if 256 <= g <= 511]
    ep.cell("ffdh", "offers %s" % ffdh if ffdh else "none", not ffdh)
    first = {h["cipher_suites"][0] for h in hellos}
    want, label = ({"1301"}, "AES128-GCM") if AES_ORDER else ({"1303"}, "CHACHA20")
    ep.cell("order", label if first == want else str(first), first == want)
    comp = {c for h in hellos for c in h["compression"]}
    ep.cell("CRIME_TLS", "ok (null only)" if comp == {0} else "compression %s" % comp, comp == {0})
    exts = {e for h in hellos for e in h["extensions"]}
    ep.cell("heartbleed", "ok (no heartbeat ext)" if 15 not in exts else "heartbeat offered",
            15 not in exts)
    for vid, _label in VULNS:
        ep.cells.setdefault(vid, "-")
    ep.cell("other", "none")


def main():
    verdicts = sys.argv[1]
    eps = []
    for arg in sys.argv[2:]:
        name, rest = arg.split("=", 1)
        kind, path = rest.split(":", 1)
        ep = Endpoint(name)
        (judge_testssl if kind == "testssl" else judge_hello)(ep, path)
        eps.append(ep)
    w0 = max(len(label) for _, label in ROWS)
    widths = [max([len(ep.name)] + [len(v) for v in ep.cells.values()]) for ep in eps]
    widths = [min(w, 48) for w in widths]
    print("%-*s  %s" % (w0, "check", "  ".join("%-*s" % (w, ep.name) for w, ep in zip(widths, eps))))
    for row, label in ROWS:
        vals = [ep.cells.get(row, "-") for ep in eps]
        print("%-*s  %s" % (w0, label, "  ".join("%-*s" % (w, v[:w]) for w, v in zip(widths, vals))))
    with open(verdicts, "w") as f:
        for ep in eps:
            f.write("%s %s\n" % ("fail" if ep.violations else "ok", ep.name))
            for v in ep.violations:
                print("VIOLATION " + v)
    return 1 if any(ep.violations for ep in eps) else 0


if __name__ == "__main__":
    sys.exit(main())
