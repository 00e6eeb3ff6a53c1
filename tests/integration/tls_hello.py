#!/usr/bin/env python3
"""Records the TLS ClientHellos sent to 127.0.0.1:PORT, one JSON line each.

The connector has no listener a scanner could probe, so tlsscan.sh points it
here instead and judges what it offers. Each connection is closed right after
its ClientHello, so the client never completes a handshake.

Usage: tls_hello.py PORT OUTFILE
"""
import json
import socket
import struct
import sys


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed before the ClientHello ended")
        data += chunk
    return data


def read_client_hello(conn):
    """Returns the ClientHello body (may span several handshake records)."""
    body = b""
    need = None
    while need is None or len(body) < need:
        try:
            head = read_exact(conn, 5)
        except EOFError:
            if need is None:
                raise EOFError("probe")
            raise
        ctype, _ver, length = struct.unpack("!BHH", head)
        if ctype != 22:
            raise ValueError("record type %d is not a handshake" % ctype)
        body += read_exact(conn, length)
        if need is None and len(body) >= 4:
            if body[0] != 1:
                raise ValueError("handshake type %d is not a ClientHello" % body[0])
            need = 4 + int.from_bytes(body[1:4], "big")
    return body[4:need]


def parse(hello):
    p = 0

    def take(n):
        nonlocal p
        v = hello[p:p + n]
        if len(v) != n:
            raise ValueError("ClientHello truncated")
        p += n
        return v

    def vec(lenbytes):
        return take(int.from_bytes(take(lenbytes), "big"))

    legacy_version = int.from_bytes(take(2), "big")
    take(32)  # random
    vec(1)  # session id
    suites = vec(2)
    compression = list(vec(1))
    exts = {}
    if p < len(hello):
        raw = vec(2)
        q = 0
        while q < len(raw):
            etype, elen = struct.unpack("!HH", raw[q:q + 4])
            exts[etype] = raw[q + 4:q + 4 + elen]
            q += 4 + elen

    def u16s(b):
        return [int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2)]

    out = {
        "legacy_version": "%04x" % legacy_version,
        "cipher_suites": ["%04x" % c for c in u16s(suites)],
        "compression": compression,
        "extensions": sorted(exts),
    }
    if 43 in exts:  # supported_versions
        out["versions"] = ["%04x" % v for v in u16s(exts[43][1:])]
    if 10 in exts:  # supported_groups
        out["groups"] = u16s(exts[10][2:])
    if 51 in exts:  # key_share
        ks, r, shares = exts[51][2:], 0, []
        while r + 4 <= len(ks):
            g, n = struct.unpack("!HH", ks[r:r + 4])
            shares.append(g)
            r += 4 + n
        out["key_shares"] = shares
    if 16 in exts:  # ALPN
        a, r, names = exts[16][2:], 0, []
        while r < len(a):
            names.append(a[r + 1:r + 1 + a[r]].decode("ascii", "replace"))
            r += 1 + a[r]
        out["alpn"] = names
    return out


def main():
    port, outfile = int(sys.argv[1]), sys.argv[2]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(8)
    while True:
        conn, _ = srv.accept()
        conn.settimeout(5)
        try:
            rec = parse(read_client_hello(conn))
        except EOFError as e:
            # A port probe (wait_port) sends a newline or nothing at all.
            rec = None if e.args[0] == "probe" else {"error": str(e)}
        except (ValueError, OSError) as e:
            rec = {"error": str(e)}
        finally:
            conn.close()
        if rec is None:
            continue
        with open(outfile, "a") as f:
            f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
