#!/usr/bin/python3
"""Fails when a secret appears in any log a test left behind.

usage: secrets_sweep.py WORK

The secrets are every tunnel token the test handed out or used (lib.sh
records them in WORK/.tokens, one per line; files named *.token or tok-*
hold more), each token's enrolment secret
(the "secret" field of its base64url JSON), and every admin bearer token
(admin.token files under WORK). The logs are every file under WORK whose name
ends in .log or .out, or that sits in a logs/ directory: daemon stderr, CLI
stderr, access logs. Prints each finding as FILE: which secret; exit 1 if any.
"""
import base64
import json
import os
import sys


def token_secret(tok):
    try:
        raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
        return json.loads(raw).get("secret")
    except Exception:
        return None


def main():
    work = sys.argv[1]
    secrets = {}
    path = os.path.join(work, ".tokens")
    if os.path.exists(path):
        for line in open(path, encoding="utf-8", errors="replace"):
            tok = line.strip()
            if len(tok) < 40:
                continue
            secrets[tok] = "a tunnel token"
            s = token_secret(tok)
            if s and len(s) >= 16:
                secrets[s] = "a token's enrolment secret"
    logs = []
    for root, _dirs, files in os.walk(work):
        for f in files:
            p = os.path.join(root, f)
            if f == "admin.token":
                t = open(p, encoding="utf-8", errors="replace").read().strip()
                if len(t) >= 20:
                    secrets[t] = "the admin bearer token (" + p + ")"
            elif f.endswith(".token") or f.startswith("tok-"):
                t = open(p, encoding="utf-8", errors="replace").read().strip()
                if len(t) >= 40:
                    secrets[t] = "a tunnel token (" + p + ")"
                    s = token_secret(t)
                    if s and len(s) >= 16:
                        secrets[s] = "a token's enrolment secret"
            elif f.endswith(".log") or f.endswith(".out") or os.path.basename(root) == "logs":
                logs.append(p)
    bad = 0
    for p in logs:
        try:
            data = open(p, "rb").read().decode("utf-8", "replace")
        except OSError:
            continue
        for s, what in secrets.items():
            if s in data:
                print("%s: holds %s" % (p, what))
                bad = 1
    print("swept %d logs for %d secrets" % (len(logs), len(secrets)))
    return bad


if __name__ == "__main__":
    sys.exit(main())
