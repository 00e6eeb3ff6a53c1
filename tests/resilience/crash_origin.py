#!/usr/bin/env python3
"""An origin that dies mid-response, for tests/resilience/test_crash.sh.

Usage: crash_origin.py PORT

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


def main():
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # no zombies
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(64)
    while True:
        c, _ = s.accept()
        if os.fork() == 0:
            s.close()
            try:
                serve(c)
            finally:
                os._exit(0)
        c.close()


if __name__ == "__main__":
    main()
