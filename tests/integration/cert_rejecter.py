#!/usr/bin/python3
"""A stand-in for an edge front that passes enrolment through to the real edge
but refuses every tunnel connection's client certificate (it trusts another
CA): the connector keeps being told its fresh certificate is refused.
Usage: cert_rejecter.py PORT EDGE_TUNNEL_PORT EDGE_DATA_DIR WRONG_CA_PEM"""
import socket, ssl, sys, threading
port, edge_port, datadir, wrongca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(datadir + "/tunnel-server.pem", datadir + "/tunnel-server.key")
sctx.set_alpn_protocols(["h2", "tunnel-enroll/1"])
sctx.verify_mode = ssl.CERT_OPTIONAL
sctx.load_verify_locations(wrongca)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); cctx.check_hostname = False; cctx.verify_mode = ssl.CERT_NONE
cctx.set_alpn_protocols(["tunnel-enroll/1"])
n = {"enrol": 0, "rejected": 0}
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except Exception: pass
    for x in (a, b):
        try: x.close()
        except Exception: pass
def handle(c):
    try:
        s = sctx.wrap_socket(c, server_side=True)
    except Exception as e:
        n["rejected"] += 1; print("rejected", n["rejected"], e, flush=True); return
    if s.selected_alpn_protocol() == "tunnel-enroll/1":
        n["enrol"] += 1; print("enrol", n["enrol"], flush=True)
        u = cctx.wrap_socket(socket.create_connection(("127.0.0.1", edge_port)), server_hostname="x")
        threading.Thread(target=pipe, args=(s, u), daemon=True).start(); pipe(u, s)
    else:
        # TLS 1.3: verification failure surfaces on first read
        try: s.recv(10)
        except Exception as e: n["rejected"] += 1; print("rejected13", n["rejected"], e, flush=True)
        s.close()
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port)); l.listen(64)
while True:
    c, _ = l.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
