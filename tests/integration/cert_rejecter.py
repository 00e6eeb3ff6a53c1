#!/usr/bin/python3
"""A stand-in for an edge front that passes enrolment through to the real edge
but refuses every tunnel connection's client certificate (it trusts another
CA): the connector keeps being told its fresh certificate is refused.
Usage: cert_rejecter.py PORT EDGE_TUNNEL_PORT EDGE_DATA_DIR WRONG_CA_PEM"""
import select, socket, ssl, sys, threading
port, edge_port, datadir, wrongca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(datadir + "/tunnel-server.pem", datadir + "/tunnel-server.key")
sctx.set_alpn_protocols(["h2", "tunnel-enroll/1"])
sctx.verify_mode = ssl.CERT_OPTIONAL
sctx.load_verify_locations(wrongca)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); cctx.check_hostname = False; cctx.verify_mode = ssl.CERT_NONE
cctx.set_alpn_protocols(["tunnel-enroll/1"])
n = {"enrol": 0, "rejected": 0}
def relay(a, b):
    """Copy bytes both ways on one thread. Two threads, each reading one
    TLS socket while the other writes it, run SSL_read and SSL_write on the
    same OpenSSL object at once (CPython drops the GIL around both): that
    crashed this script on a CI machine (bug: cert_rejecter segfault)."""
    peers = {a: b, b: a}
    for x in peers:
        x.setblocking(False)
    try:
        while True:
            ready = [x for x in peers if x.pending()]
            if not ready:
                ready, _, _ = select.select(list(peers), [], [], 10)
                if not ready:
                    return
            for x in ready:
                try:
                    d = x.recv(65536)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    continue
                if not d:
                    return
                y = peers[x]
                y.setblocking(True)
                y.sendall(d)
                y.setblocking(False)
    except (OSError, ssl.SSLError):
        pass
    finally:
        for x in peers:
            try:
                x.close()
            except OSError:
                pass
def handle(c):
    try:
        s = sctx.wrap_socket(c, server_side=True)
    except Exception as e:
        n["rejected"] += 1; print("rejected", n["rejected"], e, flush=True); return
    if s.selected_alpn_protocol() == "tunnel-enroll/1":
        n["enrol"] += 1; print("enrol", n["enrol"], flush=True)
        u = cctx.wrap_socket(socket.create_connection(("127.0.0.1", edge_port)), server_hostname="x")
        relay(s, u)
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
