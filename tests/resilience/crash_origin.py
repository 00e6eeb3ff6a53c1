#!/usr/bin/env python3
"""An origin that dies mid-response, for tests/resilience/test_crash.sh.

Usage: crash_origin.py PORT [--tls CERT KEY]

With --tls the origin speaks TLS and offers ALPN h2 and http/1.1 (run it
with /usr/bin/python3, which has the h2 package). Over HTTP/2 the paths are /cl/kill (the process dies after 64 KiB of a
1000000-byte body), /cl/reset (RST_STREAM INTERNAL_ERROR after 64 KiB, the
connection stays) and /whole.

Every connection gets its own child process (fork), so a crash ends that
response only and the listener stays up for the next case. The request
path picks how the response is cut:
  /cl/kill       Content-Length: 1000000, 64 KiB of body, then SIGKILL
  /chunked/kill  Transfer-Encoding: chunked, 4 chunks of 16 KiB, then SIGKILL
  /close/reset   no length (ends at close), 64 KiB, then an RST (SO_LINGER 0)
  /cl/reset      Content-Length: 1000000, 64 KiB, then an RST
  /chunked/reset chunked, 64 KiB, then an RST
  /whole         a complete 64 KiB Content-Length answer (the control case)
The child sleeps 0.3 s between the head+first part and the cut, so the
head has reached the client (through the tunnel) before the body stops.
Bodies are b"x" * n, so a client can tell how much it got.
"""
import os
import signal
import socket
import ssl
import struct
import sys
import time

PART = 64 * 1024


def read_head(c):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(65536)
        if not chunk:
            return None
        data += chunk
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    return parts[1] if len(parts) > 1 else "/"


def serve(c):
    path = read_head(c)
    if path is None:
        return
    kind, _, how = path.strip("/").partition("/")
    if kind == "whole":
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % PART
                  + b"x" * PART)
        c.close()
        return
    if kind == "cl":
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * PART)
    elif kind == "chunked":
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(4):
            c.sendall(b"%x\r\n" % (PART // 4) + b"x" * (PART // 4) + b"\r\n")
    elif kind == "close":
        c.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * PART)
    else:
        c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        return
    time.sleep(0.3)
    if how == "reset":
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        os._exit(0)
    os.kill(os.getpid(), signal.SIGKILL)  # the process dies; the kernel closes the socket


def h2_send(c, conn, sid, n, end):
    """Sends n bytes of body on sid in frames the peer's windows allow,
    reading its WINDOW_UPDATEs as needed."""
    while n > 0:
        k = min(n, conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
        if k <= 0:
            data = c.recv(65536)
            if not data:
                return
            conn.receive_data(data)
            continue
        conn.send_data(sid, b"x" * k, end_stream=end and k == n)
        c.sendall(conn.data_to_send())
        n -= k


def serve_h2(c):
    import h2.config
    import h2.connection
    import h2.events
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    c.sendall(conn.data_to_send())
    while True:
        data = c.recv(65536)
        if not data:
            return
        for ev in conn.receive_data(data):
            if not isinstance(ev, h2.events.RequestReceived):
                continue
            sid = ev.stream_id
            path = dict((k.decode() if isinstance(k, bytes) else k, v) for k, v in ev.headers)[":path"]
            path = path.decode() if isinstance(path, bytes) else path
            whole = path == "/whole"
            conn.send_headers(sid, [(":status", "200"),
                                    ("content-length", str(PART if whole else 1000000))])
            c.sendall(conn.data_to_send())
            h2_send(c, conn, sid, PART, whole)
            if whole:
                continue
            time.sleep(0.3)
            if path == "/cl/reset":
                conn.reset_stream(sid, error_code=2)
                c.sendall(conn.data_to_send())
                continue
            os.kill(os.getpid(), signal.SIGKILL)
        c.sendall(conn.data_to_send())


def main():
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # no zombies
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(64)
    ctx = None
    if len(sys.argv) > 4 and sys.argv[2] == "--tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        ctx.set_alpn_protocols(["h2", "http/1.1"])
    while True:
        c, _ = s.accept()
        if os.fork() == 0:
            s.close()
            try:
                if ctx:
                    c = ctx.wrap_socket(c, server_side=True)
                    if c.selected_alpn_protocol() == "h2":
                        serve_h2(c)
                        return
                serve(c)
            except (OSError, ssl.SSLError):
                pass
            finally:
                os._exit(0)
        c.close()


if __name__ == "__main__":
    main()
