#!/usr/bin/python3
"""Slow or stalled clients, one per mode; prints how long the edge took to
close the connection (or reset the stream), or that it never did.
Usage: slow_client.py MODE PORT CA_PEM [LIMIT_SECONDS]
Modes:
  h2-half-headers  HTTP/2 HEADERS without END_HEADERS; CONTINUATION never comes
  h2-no-body       HTTP/2 POST with content-length; the body never comes
  h1-half-head     HTTP/1.1 request head cut in the middle
  h1-no-body       HTTP/1.1 POST with content-length; the body never comes
  enroll-silent    the tunnel port with the enrolment ALPN; nothing sent
  admin-partial    the admin port (plain HTTP) with half a request
"""
import socket
import ssl
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events


def frame(t, flags, sid, payload):
    return struct.pack("!I", len(payload))[1:] + bytes([t, flags]) + struct.pack("!I", sid) + payload


def tls(port, ca, alpn, name="ok.example.test"):
    ctx = ssl.create_default_context(cafile=ca) if ca != "-" else ssl._create_unverified_context()
    if ca == "-":
        ctx.check_hostname = False
    ctx.set_alpn_protocols([alpn])
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=2),
                           server_hostname=name)


def wait_closed(s, limit, h2c=None):
    """Seconds until the peer closed (or reset our stream), or None."""
    t0 = time.time()
    while time.time() - t0 < limit:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            return time.time() - t0, "reset"
        if not d:
            return time.time() - t0, "closed"
        if h2c is not None:
            for e in h2c.receive_data(d):
                if isinstance(e, h2.events.StreamReset):
                    return time.time() - t0, "stream reset"
                if isinstance(e, h2.events.ResponseReceived):
                    st = dict(e.headers).get(b":status")
                    return time.time() - t0, "answered %s" % st
                if isinstance(e, h2.events.ConnectionTerminated):
                    return time.time() - t0, "GOAWAY"
            out = h2c.data_to_send()
            if out:
                s.sendall(out)
        elif d.startswith(b"HTTP/1.1 "):
            return time.time() - t0, "answered " + d.split(b"\r\n")[0].decode()
    return None, None


def main():
    mode, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    limit = float(sys.argv[4]) if len(sys.argv) > 4 else 20
    h2c = None
    if mode.startswith("h2-"):
        s = tls(port, ca, "h2")
        h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        h2c.initiate_connection()
        s.sendall(h2c.data_to_send())
        if mode == "h2-half-headers":
            # A hand-made HEADERS frame without END_HEADERS (literal fields).
            block = b"\x82\x87\x84" + b"\x41\x0fok.example.test"
            s.sendall(frame(1, 0x0, 1, block))
            h2c = None  # the raw frame is outside h2's state machine
        else:
            h2c.send_headers(1, [(":method", "POST"), (":scheme", "https"),
                                 (":authority", "ok.example.test"), (":path", "/"),
                                 ("content-length", "100")])
            s.sendall(h2c.data_to_send())
    elif mode.startswith("h1-"):
        s = tls(port, ca, "http/1.1")
        if mode == "h1-half-head":
            s.sendall(b"GET / HTTP/1.1\r\nHost: ok.example.test\r\nX-Slow: ")
        else:
            s.sendall(b"POST / HTTP/1.1\r\nHost: ok.example.test\r\nContent-Length: 100\r\n\r\n")
    elif mode == "enroll-silent":
        s = tls(port, "-", "tunnel-enroll/1", "tunnel.edge-sim.internal")
    elif mode == "admin-partial":
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(b"GET /api/tun")
    else:
        sys.exit("unknown mode " + mode)
    t, how = wait_closed(s, limit, h2c)
    if t is None:
        print("%s: still open after %.0f s" % (mode, limit))
        return 1
    print("%s: %s after %.1f s" % (mode, how, t))
    return 0


sys.exit(main())
