"""Raw HTTP/1.1 and HTTP/2 requests to the edge's browser port, for requests
curl will not make: a Host other than the TLS server name, no server name at
all, two Host fields, a plain CONNECT. Import it (python3-h2 from Debian):

    from edge_raw import h1, h2
    status, headers, body = h1(port, ca, "a.example.test", b"GET / HTTP/1.1\\r\\n...")
    status, headers, body = h2(port, ca, "a.example.test", [(":method", "GET"), ...])

headers maps lower-case names to lists of values. sni=None sends no server name."""
import socket
import ssl

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2 import events


def _connect(port, ca, sni, alpn):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = sni is not None  # the chain is still verified
    ctx.set_alpn_protocols([alpn])
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=sni)


def h1(port, ca, sni, raw):
    """Sends raw (add Connection: close) and reads the answer until the edge closes."""
    s = _connect(port, ca, sni, "http/1.1")
    s.sendall(raw)
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except (ConnectionResetError, socket.timeout, ssl.SSLError):
        pass
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return status, headers, body


def h2(port, ca, sni, request, end_stream=True):
    """Sends one request on stream 1. Returns the response, or ("reset", code, b"")."""
    s = _connect(port, ca, sni, "h2")
    c = H2Connection(H2Configuration(
        client_side=True, header_encoding="utf-8", validate_outbound_headers=False,
        normalize_outbound_headers=False))
    c.initiate_connection()
    c.send_headers(1, request, end_stream=end_stream)
    s.sendall(c.data_to_send())
    status, headers, body = None, {}, b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            for ev in c.receive_data(d):
                if isinstance(ev, events.ResponseReceived) and ev.stream_id == 1:
                    for k, v in ev.headers:
                        if k == ":status":
                            status = int(v)
                        else:
                            headers.setdefault(k.lower(), []).append(v)
                elif isinstance(ev, events.DataReceived) and ev.stream_id == 1:
                    body += ev.data
                    c.acknowledge_received_data(ev.flow_controlled_length, 1)
                elif isinstance(ev, events.StreamEnded) and ev.stream_id == 1:
                    s.close()
                    return status, headers, body
                elif isinstance(ev, events.StreamReset) and ev.stream_id == 1:
                    s.close()
                    return "reset", ev.error_code, b""
            s.sendall(c.data_to_send())
    except (ConnectionResetError, socket.timeout, ssl.SSLError):
        pass
    s.close()
    return status, headers, body
