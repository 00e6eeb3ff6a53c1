#!/usr/bin/env python3
"""A stand-in for the edge's browser port that requires a client certificate:
TLS (ALPN h2) verifying the client against CA, then HTTP/2 that answers an
extended CONNECT with 200 and echoes the stream's bytes, as the edge would
carry them to a tcp:// service. One line per connection goes to LOG:
"client CN=<name>" once the handshake verified a certificate, or
"handshake failed: <why>".

usage: client_cert_edge.py PORT CERT KEY CA LOG"""
import socket
import ssl
import sys
import threading

import h2.config
import h2.connection
import h2.events

port, cert, key, ca, log_path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
log_lock = threading.Lock()


def log(line):
    with log_lock, open(log_path, "a") as f:
        f.write(line + "\n")


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.set_alpn_protocols(["h2"])


def serve(raw):
    raw.settimeout(20)
    try:
        tls = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError) as e:
        log("handshake failed: %s" % e)
        raw.close()
        return
    peer = tls.getpeercert() or {}
    cn = [v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"]
    log("client CN=%s" % (cn[0] if cn else "?"))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.local_settings.update({h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())
    try:
        while True:
            data = tls.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    conn.send_headers(ev.stream_id, [(":status", "200")])
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    if ev.data:
                        conn.send_data(ev.stream_id, ev.data)
                elif isinstance(ev, h2.events.StreamEnded):
                    conn.end_stream(ev.stream_id)
            tls.sendall(conn.data_to_send())
    except (ssl.SSLError, OSError, h2.exceptions.ProtocolError) as e:
        # A TLS 1.3 server refuses a missing certificate after the client
        # already thinks the handshake is done: it shows up here.
        log("handshake failed: %s" % e)
    finally:
        tls.close()


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(16)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
