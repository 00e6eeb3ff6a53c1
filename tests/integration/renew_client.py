#!/usr/bin/python3
"""Plays a connector against the edge's tunnel port to exercise the edge's
side of enrolment and certificate renewal (docs/protocol.md 4 and 6.5),
without the connector binary.

  renew_client.py enroll TOKEN OUTDIR
      enrols with a fresh P-256 key; writes OUTDIR/key.pem, cert.pem and
      origin-ca.pem (the answer's origin_ca); prints the answer's "ok"/code.
  renew_client.py link PORT CERT KEY HOSTNAME OUTDIR ACTION...
      connects with CERT/KEY, registers HOSTNAME, then performs each ACTION in
      turn, printing one line per answer:
        tunnel | pull      renew that kind for KEY's public key (pull: for a
                           new key, written to OUTDIR/origin-pull.key)
        p384               renew "tunnel" for a P-384 key
        sleep:N            wait N seconds
        watch:N            read for up to N seconds, printing each error
                           the edge sends, until it closes the connection
                           ("edge closed the connection after S s", S counted
                           from the start of the watch) or N runs out
      Prints "origin_ca" once the edge sent its CA (written to
      OUTDIR/origin-ca-link.pem), "renewed KIND" (the PEM goes to
      OUTDIR/KIND.N.pem) or "error CODE MESSAGE permanent=BOOL" (then
      " reason=REASON" when the edge gave one).
"""
import base64
import json
import os
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def pub_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def enroll(token, outdir):
    t = json.loads(b64url_decode(token.strip()))
    host, port = t["edges"][0].rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=t["ca"])
    ctx.set_alpn_protocols(["tunnel-enroll/1"])
    key = ec.generate_private_key(ec.SECP256R1())
    conn = ctx.wrap_socket(socket.create_connection((host.strip("[]"), int(port)), timeout=10),
                           server_hostname=t["server_name"])
    req = {"tunnel_id": t["tunnel_id"], "secret": t["secret"], "public_key": pub_pem(key)}
    conn.sendall((json.dumps(req, separators=(",", ":")) + "\n").encode())
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    conn.close()
    ans = json.loads(data.split(b"\n")[0])
    os.makedirs(outdir, exist_ok=True)
    if ans.get("ok"):
        write(os.path.join(outdir, "key.pem"), key_pem(key))
        write(os.path.join(outdir, "cert.pem"), ans["cert"])
        if "origin_ca" in ans:
            write(os.path.join(outdir, "origin-ca.pem"), ans["origin_ca"])
        print("ok" + (" origin_ca" if "origin_ca" in ans else ""))
        return 0
    print("refused", ans.get("code"), ans.get("message"))
    return 1


def link(port, cert, key_file, hostname, outdir, actions):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the edge's chain is not what is tested here
    ctx.load_cert_chain(cert, key_file)
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                        server_hostname="tunnel.edge-sim.internal")
    with open(key_file, "rb") as f:
        own = serialization.load_pem_private_key(f.read(), None)
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    c.initiate_connection()
    s.sendall(c.data_to_send())
    control = None
    buf = b""
    msgs = []

    def pump(until, deadline=None):
        """Reads until until() is true (or the deadline passes); returns
        False if the edge closed."""
        nonlocal control, buf
        while not until():
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                s.settimeout(left)
            try:
                d = s.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, ssl.SSLError):
                d = b""
            finally:
                s.settimeout(10)
            if not d:
                return False
            for e in c.receive_data(d):
                if isinstance(e, h2.events.RequestReceived):
                    hd = dict((k.decode() if isinstance(k, bytes) else k, v) for k, v in e.headers)
                    if "tunnel-control" in hd and control is None:
                        control = e.stream_id
                        c.send_headers(control, [(":status", "200"),
                                                 ("content-type", "application/x-ndjson")])
                        c.send_data(control, (json.dumps({"type": "register", "hostnames": [hostname],
                                                          "agent": "renew-client"}) + "\n").encode())
                    else:
                        c.send_headers(e.stream_id, [(":status", "204")], end_stream=True)
                elif isinstance(e, h2.events.DataReceived):
                    c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                    if e.stream_id == control:
                        buf += e.data
                        while b"\n" in buf:
                            line, buf = buf.split(b"\n", 1)
                            if line:
                                msgs.append(json.loads(line))
            out = c.data_to_send()
            if out:
                s.sendall(out)
        return True

    def say_error(m):
        line = "error %s %s permanent=%s" % (m["code"], m.get("message"), m.get("permanent"))
        if "reason" in m:
            line += " reason=%s" % m["reason"]
        print(line, flush=True)

    def send(msg):
        c.send_data(control, (json.dumps(msg, separators=(",", ":")) + "\n").encode())
        s.sendall(c.data_to_send())

    if not pump(lambda: any(m["type"] == "registered" for m in msgs)):
        print("edge closed before registered")
        return 1
    print("registered")
    # origin_ca comes right after registered, before access_keys.
    pump(lambda: any(m["type"] in ("origin_ca", "access_keys") for m in msgs))
    first = next(m for m in msgs if m["type"] in ("origin_ca", "access_keys"))
    if first["type"] == "origin_ca":
        write(os.path.join(outdir, "origin-ca-link.pem"), first["pem"])
        print("origin_ca")
    seen = len(msgs)
    n = 0
    for a in actions:
        if a.startswith("sleep:"):
            time.sleep(float(a[6:]))
            continue
        if a.startswith("watch:"):
            t0 = time.monotonic()
            shown = seen

            def show():
                nonlocal shown
                for m in msgs[shown:]:
                    if m["type"] == "error":
                        say_error(m)
                shown = len(msgs)
                return False
            up = pump(show, t0 + float(a[6:]))
            show()
            seen = len(msgs)
            if not up:
                print("edge closed the connection after %.1f s" % (time.monotonic() - t0))
                return 1
            continue
        n += 1
        if a == "tunnel":
            send({"type": "renew", "kind": "tunnel", "pem": pub_pem(own)})
        elif a == "pull":
            k = ec.generate_private_key(ec.SECP256R1())
            write(os.path.join(outdir, "origin-pull.key"), key_pem(k))
            send({"type": "renew", "kind": "origin_pull", "pem": pub_pem(k)})
        elif a == "p384":
            send({"type": "renew", "kind": "tunnel",
                  "pem": pub_pem(ec.generate_private_key(ec.SECP384R1()))})
        else:
            print("unknown action", a)
            return 2
        want = lambda: any(m["type"] in ("renewed", "error") for m in msgs[seen:])
        if not pump(want):
            print("edge closed the connection")
            return 1
        m = next(m for m in msgs[seen:] if m["type"] in ("renewed", "error"))
        seen = msgs.index(m) + 1
        if m["type"] == "renewed":
            write(os.path.join(outdir, "%s.%d.pem" % (m["kind"], n)), m["pem"])
            print("renewed", m["kind"], n)
        else:
            say_error(m)
    # The link is still usable: a ping round trip.
    c.ping(b"12345678")
    s.sendall(c.data_to_send())
    got = []
    while not got:
        d = s.recv(65536)
        if not d:
            print("edge closed the connection")
            return 1
        for e in c.receive_data(d):
            if isinstance(e, h2.events.PingAckReceived):
                got.append(e)
        out = c.data_to_send()
        if out:
            s.sendall(out)
    print("link up")
    return 0


def main():
    if sys.argv[1] == "enroll":
        return enroll(sys.argv[2], sys.argv[3])
    if sys.argv[1] == "link":
        return link(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7:])
    print(__doc__)
    return 2


sys.exit(main())
