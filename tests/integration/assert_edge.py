#!/usr/bin/python3
"""A stand-in for the edge's tunnel port that sends a real connector requests
carrying identity assertions it chose, for test_access.sh: the real edge only
ever sends good ones, so the connector's refusal of an expired or a badly
signed assertion cannot be seen through it.

It serves TLS with the edge's own tunnel certificate (so the connector, given
--edge PORT, trusts it), speaks HTTP/2 as the edge does (client side, control
stream 1, `registered`, then `access_keys` with a key of its own under issuer
"assert-edge"), and on the first registered connection sends one GET per case
below to HOST (a rule with originRequest.access.required and no audience).
Then it prints one line per case, "NAME STATUS FIRST-BODY-LINE", and exits.

usage: assert_edge.py PORT EDGE_DATA_DIR HOST PATH

Cases (aud HOST, iss "assert-edge", kid the published key's thumbprint):
  good     signed with the published key, valid for 300 s
  leeway   expired 10 s ago (within the connector's 30 s of clock skew)
  expired  expired 120 s ago
  badsig   signed with another key under the published key's kid
  none     no assertion at all
"""
import base64
import hashlib
import json
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

ISSUER = "assert-edge"


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwk(key):
    n = key.public_key().public_numbers()
    x, y = b64url(n.x.to_bytes(32, "big")), b64url(n.y.to_bytes(32, "big"))
    # RFC 7638: the required members, sorted, no white space.
    kid = b64url(hashlib.sha256(json.dumps({"crv": "P-256", "kty": "EC", "x": x, "y": y},
                                           sort_keys=True, separators=(",", ":")).encode()).digest())
    return {"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"}


def token(key, kid, host, exp_in):
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": host, "sub": "CN=stand-in", "iat": now + exp_in - 300,
              "nbf": now + exp_in - 305, "exp": now + exp_in}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})


class Link:
    def __init__(self, sock):
        self.s = sock
        self.c = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8"))
        self.c.initiate_connection()
        self.c.update_settings({h2.settings.SettingCodes.ENABLE_PUSH: 0})
        self.c.increment_flow_control_window(16 << 20)
        self.control = b""
        self.responses = {}  # stream id -> [status, body, ended]
        self.flush()

    def flush(self):
        out = self.c.data_to_send()
        if out:
            self.s.sendall(out)

    def pump(self):
        """Reads once; returns the control lines that arrived."""
        d = self.s.recv(65536)
        if not d:
            raise EOFError("the connector closed the connection")
        lines = []
        for e in self.c.receive_data(d):
            if isinstance(e, h2.events.DataReceived):
                self.c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                if e.stream_id == 1:
                    self.control += e.data
                    while b"\n" in self.control:
                        line, self.control = self.control.split(b"\n", 1)
                        if line.strip():
                            lines.append(json.loads(line))
                elif e.stream_id in self.responses:
                    self.responses[e.stream_id][1] += e.data
            elif isinstance(e, h2.events.ResponseReceived) and e.stream_id in self.responses:
                self.responses[e.stream_id][0] = dict(e.headers).get(":status")
            elif isinstance(e, h2.events.StreamEnded) and e.stream_id in self.responses:
                self.responses[e.stream_id][2] = True
            elif isinstance(e, h2.events.StreamReset) and e.stream_id in self.responses:
                self.responses[e.stream_id][0] = "reset"
                self.responses[e.stream_id][2] = True
        self.flush()
        return lines

    def get(self, host, path, assertion):
        sid = self.c.get_next_available_stream_id()
        hdrs = [(":method", "GET"), (":scheme", "https"), (":authority", host), (":path", path)]
        if assertion is not None:
            hdrs.append(("edge-access-jwt-assertion", assertion))
        self.responses[sid] = [None, b"", False]
        self.c.send_headers(sid, hdrs, end_stream=True)
        self.flush()
        while not self.responses[sid][2]:
            self.pump()
        status, body, _ = self.responses.pop(sid)
        return status, body.decode(errors="replace").split("\n", 1)[0]


def main():
    port, datadir, host, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    pub = jwk(key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(datadir + "/tunnel-server.pem", datadir + "/tunnel-server.key")
    ctx.set_alpn_protocols(["h2"])
    srv = socket.create_server(("127.0.0.1", port))
    srv.settimeout(30)
    while True:  # a port probe (wait_port) connects and leaves first
        raw, _ = srv.accept()
        raw.settimeout(20)
        try:
            tls = ctx.wrap_socket(raw, server_side=True)
            break
        except (ssl.SSLError, OSError):
            raw.close()
    link = Link(tls)
    link.c.send_headers(1, [(":method", "POST"), (":scheme", "https"), (":authority", "tunnel.control"),
                            (":path", "/.tunnel/control"), ("tunnel-control", "1")])
    link.flush()
    registered = False
    while not registered:
        for m in link.pump():
            if m.get("type") != "register":
                continue
            ctl = [{"type": "registered", "tunnel": "stand-in", "conn_id": "0123456789abcdef",
                    "results": [{"hostname": h, "accepted": True} for h in m["hostnames"]]},
                   {"type": "access_keys", "issuer": ISSUER, "jwks": {"keys": [pub]}}]
            link.c.send_data(1, b"".join(json.dumps(x, separators=(",", ":")).encode() + b"\n" for x in ctl))
            link.flush()
            registered = True
    cases = [("good", token(key, pub["kid"], host, 300)),
             ("leeway", token(key, pub["kid"], host, -10)),
             ("expired", token(key, pub["kid"], host, -120)),
             ("badsig", token(other, pub["kid"], host, 300)),
             ("none", None)]
    for name, tok in cases:
        status, line = link.get(host, path, tok)
        print(name, status, line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
