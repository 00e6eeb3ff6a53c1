#!/usr/bin/python3
"""An HTTPS origin that demands a client certificate from CLIENT_CA, reads the
request head, then misbehaves on purpose: /nothing closes without answering,
/reset resets the connection. A certificate from another CA is refused by the
TLS handshake itself (TLS 1.3: an alert after the client's Finished).
Usage: mtls_origin.py PORT CERT KEY CLIENT_CA"""
import socket, ssl, struct, sys, threading

port, cert, key, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.load_verify_locations(ca)
ctx.num_tickets = 0  # every connection does a full handshake, as a probe would
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(64)


def serve(c):
    try:
        s = ctx.wrap_socket(c, server_side=True)
    except (OSError, ssl.SSLError) as e:
        print("handshake failed:", e, flush=True)
        c.close()
        return
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            d = s.recv(4096)
            if not d:
                break
            data += d
        line = data.split(b"\r\n", 1)[0]
        print("request:", line, "certificate:", s.getpeercert() is not None, flush=True)
        if b"/reset" in line:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    except (OSError, ssl.SSLError) as e:
        print("error:", e, flush=True)


while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
