#!/usr/bin/env python3
"""Test origin for integration tests: deterministic bodies, upload digests,
server-sent events, slow answers, header echo. Usage: origin.py PORT"""
import hashlib
import json
import os
import socketserver
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def gen_block():
    """The 1 MiB block /gen/ repeats (also used by tests to compute digests)."""
    import random
    return random.Random(1234).randbytes(1 << 20)


def gen_stream(n):
    block = gen_block()
    while n > 0:
        k = min(n, len(block))
        yield block[:k]
        n -= k


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body, ctype="application/json", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self):
        h = hashlib.sha256()
        total = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    h.update(chunk)
                    total += len(chunk)
                    left -= len(chunk)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                h.update(chunk)
                total += len(chunk)
                left -= len(chunk)
        return total, h.hexdigest()

    def handle_any(self):
        path = self.path.split("?")[0]
        if path.startswith("/upload") or self.command in ("POST", "PUT", "PATCH"):
            total, digest = self._read_body()
            body = json.dumps({"method": self.command, "len": total, "sha256": digest,
                               "chunked": self.headers.get("Transfer-Encoding") is not None}).encode()
            return self._send(200, body)
        if path.endswith("/headers"):
            body = json.dumps({"path": self.path, "method": self.command,
                               "headers": [[k, v] for k, v in self.headers.items()]}).encode()
            return self._send(200, body)
        if path.startswith("/bigheaders/"):
            # /bigheaders/N: N response header fields of 1000 bytes each.
            extra = {"X-Big-%d" % i: "b" * 1000 for i in range(int(path.split("/")[2]))}
            return self._send(200, b"big\n", "text/plain", extra)
        if path.startswith("/status/"):
            return self._send(int(path.split("/")[2]), b"status\n", "text/plain")
        if path.startswith("/slow/"):
            time.sleep(float(path.split("/")[2]))
            return self._send(200, b"slow\n", "text/plain")
        if path.startswith("/gen/"):
            # /gen/N: N bytes of a repeating pseudo-random 1 MiB block, streamed
            # with a Content-Length (for multi-GiB tests without disk files).
            n = int(path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            block = gen_block()
            while n > 0:
                k = min(n, len(block))
                self.wfile.write(block[:k])
                n -= k
            return
        if path == "/sse":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(3):
                data = ("data: event %d %.3f\n\n" % (i, time.time())).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                time.sleep(1.0)
            self.wfile.write(b"0\r\n\r\n")
            return
        if path == "/close-mid":
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            self.close_connection = True
            return
        return self._send(200, b"hello from origin\n", "text/plain")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class UnixHandler(Handler):
    def address_string(self):
        return "unix"


def main():
    """origin.py PORT | origin.py unix:/path | origin.py PORT --tls CERT KEY [--client-ca CA]"""
    args = sys.argv[1:]
    if args[0] == "gen":
        # origin.py gen N: write the /gen/N stream to stdout (for uploads and digests)
        out = sys.stdout.buffer
        for chunk in gen_stream(int(args[1])):
            out.write(chunk)
        return
    if args[0].startswith("unix:"):
        path = args[0][5:]
        if os.path.exists(path):
            os.unlink(path)
        UnixServer(path, UnixHandler).serve_forever()
        return
    srv = Server(("127.0.0.1", int(args[0])), Handler)
    if "--tls" in args:
        i = args.index("--tls")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args[i + 1], args[i + 2])
        if "--client-ca" in args:
            # Like Caddy's client_auth require_and_verify: no valid client
            # certificate, no handshake.
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args[args.index("--client-ca") + 1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
