#!/usr/bin/env python3
"""Speaks the enrolment exchange (ALPN tunnel-enroll/1) with a crafted request,
as a prober would, and prints each raw answer line exactly as received.

usage: enroll_probe.py TOKEN PORT SOURCE_IP MODE [COUNT]
  MODE wrong_secret: the token's tunnel id with a random secret
       unknown_id:   a random tunnel id with a random secret
  SOURCE_IP: a loopback address to connect from (127.0.0.2, ...), so that
  probes are counted against their own address at the edge.
"""
import base64
import json
import os
import socket
import ssl
import sys

# The edge looks at the key only after the secret, so any PEM-shaped key will do.
PUBLIC_KEY = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def probe(ctx, server_name, port, src, tunnel_id, secret):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0))
    conn = ctx.wrap_socket(raw, server_hostname=server_name)
    assert conn.selected_alpn_protocol() == "tunnel-enroll/1", conn.selected_alpn_protocol()
    req = {"tunnel_id": tunnel_id, "secret": b64url(secret), "public_key": PUBLIC_KEY}
    conn.sendall((json.dumps(req, separators=(",", ":")) + "\n").encode())
    data = b""
    while True:
        try:
            chunk = conn.recv(65536)
        except (ssl.SSLError, OSError):
            break
        if not chunk:
            break
        data += chunk
    conn.close()
    return data


def main():
    tok = json.loads(b64url_decode(sys.argv[1]))
    port, src, mode = int(sys.argv[2]), sys.argv[3], sys.argv[4]
    count = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    ctx = ssl.create_default_context(cadata=tok["ca"])
    ctx.set_alpn_protocols(["tunnel-enroll/1"])
    for _ in range(count):
        if mode == "wrong_secret":
            tid = tok["tunnel_id"]
        elif mode == "unknown_id":
            tid = os.urandom(16).hex()
        else:
            sys.exit("unknown mode " + mode)
        sys.stdout.buffer.write(probe(ctx, tok["server_name"], port, src, tid, os.urandom(32)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
