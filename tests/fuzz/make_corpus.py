#!/usr/bin/env python3
"""Writes the small seed corpus for each fuzz target into tests/fuzz/corpus/.
Run from anywhere; the output is deterministic, so re-running is a no-op."""
import base64
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUfake\n-----END CERTIFICATE-----\n"
SECRET = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def token_json(**over):
    t = {"v": 1, "tunnel_id": "0123456789abcdef0123456789abcdef", "name": "home-lab",
         "secret": SECRET, "edges": ["edge.example:7844", "[::1]:7844"],
         "server_name": "tunnel.example", "ca": CA}
    t.update(over)
    return json.dumps({k: v for k, v in t.items() if v is not None},
                      separators=(",", ":")).encode()


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# fuzz_token: first byte even = token text, odd = JSON payload (encoded by the harness)
write("token", "valid_text", b"\x00" + b64url(token_json()))
write("token", "valid_text_newline", b"\x00" + b64url(token_json()) + b"\n")
write("token", "valid_json", b"\x01" + token_json())
write("token", "json_v2", b"\x01" + token_json(v=2))
write("token", "json_8_edges", b"\x01" + token_json(edges=["h%d:%d" % (i, 1000 + i) for i in range(8)]))
write("token", "json_no_ca", b"\x01" + token_json(ca=None))
write("token", "truncated_text", b"\x00" + b64url(token_json())[:77])
write("token", "hostport", b"\x00[2001:db8::1]:443")

# fuzz_control: an NDJSON byte stream
ctl = [
    {"type": "register", "hostnames": ["app.example.com", "*.example.org"], "agent": "connector/1"},
    {"type": "registered", "results": [
        {"hostname": "app.example.com", "accepted": True},
        {"hostname": "*.example.org", "accepted": False, "reason": "held by another tunnel (x)"}],
     "tunnel": "home-lab", "conn_id": "0123456789abcdef"},
    {"type": "unregister", "hostnames": ["app.example.com"]},
    {"type": "error", "code": "tunnel_deleted", "message": "deleted", "permanent": True},
    {"type": "drain"},
]
lines = [json.dumps(m, separators=(",", ":")).encode() + b"\n" for m in ctl]
write("control", "all_types", b"".join(lines))
for i, l in enumerate(lines):
    write("control", "msg%d" % i, l)
write("control", "empty_lines_crlf", b"\n\n" + lines[4].replace(b"\n", b"\r\n") + b"\n")
write("control", "partial", lines[0] + lines[1][:40])

# fuzz_enroll: one line offered to both decoders
write("enroll", "req", json.dumps({"tunnel_id": "0123456789abcdef0123456789abcdef",
                                   "secret": SECRET,
                                   "public_key": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"},
                                  separators=(",", ":")).encode())
write("enroll", "resp_ok", json.dumps({"ok": True, "cert": CA}, separators=(",", ":")).encode())
write("enroll", "resp_refused", json.dumps({"ok": False, "code": "bad_secret", "message": "wrong secret"},
                                           separators=(",", ":")).encode())

# fuzz_hostname: an authority, or "pattern\nhost"
for i, s in enumerate([b"App.Example.COM:443", b"[2001:db8::1]:8443", b"example.com.",
                       b"*.example.com\nx.y.example.com", b"app.example.com\nAPP.EXAMPLE.COM",
                       b"*.deep.example.com\ndeep.example.com", b"Tunnel-Foo\nclose, Tunnel-Foo"]):
    write("hostname", "seed%d" % i, s)

# fuzz_b64
for i, s in enumerate([b"Zm9vYmFy", b"Zm9vYg==", b"-_-__g", b"+/+//g==", SECRET.encode(), b""]):
    write("b64", "seed%d" % i, s)

# fuzz_path: a request target (path, then an optional ?query)
for name, s in [("dotdot", b"/public/../secret"), ("encoded_dotdot", b"/public/%2e%2e/secret"),
                ("mixed_dotdot_query", b"/public/.%2E/secret?x=/../y"),
                ("dot_and_slashes", b"/a/./b//c/"), ("encoded_slash", b"/a%2Fb"),
                ("encoded_backslash_nul", b"/a%5cb%00"),
                ("escapes_bad", b"/%7euser/%e2%82%ac/%41%zz"), ("root", b"/"),
                ("trailing_dotdot", b"/a/b/../.."), ("api_query", b"/api/v1/items?sort=name&q=%2e%2e"),
                ("asterisk", b"*"), ("utf8_double_encoded", "/café/%252e".encode())]:
    write("path", name, s)
