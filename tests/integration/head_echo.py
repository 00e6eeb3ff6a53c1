#!/usr/bin/env python3
"""An origin that refuses every request with 400 and echoes the request head
it received as the body, byte for byte (what many origins do with a bad
WebSocket upgrade). Tests use it to see exactly what the connector sent.
Usage: head_echo.py PORT"""
import socket
import sys
import threading


def serve(conn):
    data = b""
    try:
        conn.settimeout(10)
        while b"\r\n\r\n" not in data and len(data) < (1 << 20):
            d = conn.recv(65536)
            if not d:
                break
            data += d
        head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(head) + head)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


main()
