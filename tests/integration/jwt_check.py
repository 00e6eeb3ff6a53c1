#!/usr/bin/python3
"""Verifies an edge identity assertion the way an origin written in Python
would: with Debian's python3-jwt (PyJWT) and python3-cryptography, ES256 only,
against the edge's published JWK Set. Independent of our C code, so it proves
interoperability.

usage: jwt_check.py [--cacert FILE] [--resolve HOST:ADDR] [--leeway S] JWKS TOKEN AUDIENCE ISSUER
  JWKS      a URL (http:// or https://; --cacert trusts that CA) or a file;
            --resolve connects to ADDR for the URL's HOST (as curl's
            --resolve does: SNI, Host and the name checked stay HOST)
  TOKEN     the compact JWT, "@FILE" to read it from FILE, or "-" for stdin
  AUDIENCE  the expected "aud" (a string, or one entry of an array)
  ISSUER    the expected "iss"
Exit 0: prints the verified claims as one line of JSON.
Exit 1: prints the reason ("ExpiredSignatureError: Signature has expired", ...).
"""
import argparse
import http.client
import json
import socket
import ssl
import sys
import urllib.parse
import urllib.request

import jwt


def fetch_resolved(url, ctx, addr):
    """GET url over a connection to addr, with the URL's host everywhere else."""
    u = urllib.parse.urlsplit(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    sock = socket.create_connection((addr, port), timeout=10)
    if u.scheme == "https":
        sock = (ctx or ssl.create_default_context()).wrap_socket(sock, server_hostname=u.hostname)
    conn = http.client.HTTPConnection(u.hostname, port, timeout=10)
    conn.sock = sock
    conn.request("GET", u.path or "/", headers={"Host": u.netloc})
    r = conn.getresponse()
    if r.status != 200:
        raise OSError("GET %s: HTTP %d" % (url, r.status))
    return json.load(r)


def load_jwks(where, cacert, resolve):
    if where.startswith(("http://", "https://")):
        ctx = ssl.create_default_context(cafile=cacert) if cacert else None
        host = urllib.parse.urlsplit(where).hostname
        if resolve and resolve[0] == host:
            return fetch_resolved(where, ctx, resolve[1])
        with urllib.request.urlopen(where, timeout=10, context=ctx) as r:
            return json.load(r)
    with open(where, "rb") as f:
        return json.load(f)


def read_token(arg):
    if arg == "-":
        return sys.stdin.read().strip()
    if arg.startswith("@"):
        with open(arg[1:]) as f:
            return f.read().strip()
    return arg


def verify(jwks, token, audience, issuer, leeway):
    header = jwt.get_unverified_header(token)
    kid = header.get("kid")
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise ValueError("not a JWK Set")
    candidates = [k for k in keys if isinstance(k, dict) and k.get("kid") == kid
                  and k.get("kty") == "EC" and k.get("crv") == "P-256"]
    if not candidates:
        raise LookupError("no P-256 key in the set has kid %r" % (kid,))
    last = None
    for k in candidates:
        try:
            key = jwt.PyJWK(k, algorithm="ES256").key
        except Exception as e:  # an unusable key: try the next one
            last = e
            continue
        try:
            return jwt.decode(token, key=key, algorithms=["ES256"], audience=audience,
                              issuer=issuer, leeway=leeway,
                              options={"require": ["exp", "iss", "aud"]})
        except jwt.InvalidSignatureError as e:
            last = e  # another key under the same kid may still verify
    raise last


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cacert")
    ap.add_argument("--resolve", type=lambda v: v.split(":", 1), metavar="HOST:ADDR")
    ap.add_argument("--leeway", type=float, default=0)
    ap.add_argument("jwks")
    ap.add_argument("token")
    ap.add_argument("audience")
    ap.add_argument("issuer")
    a = ap.parse_args()
    try:
        jwks = load_jwks(a.jwks, a.cacert, a.resolve)
        claims = verify(jwks, read_token(a.token), a.audience, a.issuer, a.leeway)
    except Exception as e:  # every failure is a reason, on one line
        print("%s: %s" % (type(e).__name__, str(e).replace("\n", " ")))
        return 1
    print(json.dumps(claims, sort_keys=True, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
