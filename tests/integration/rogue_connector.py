#!/usr/bin/python3
"""A misbehaving connector: it holds a valid certificate for a tunnel, dials
the edge's tunnel port and speaks HTTP/2 as the connector does (server side,
control stream, register), then misbehaves as the mode says. Tests use it to
show the edge keeps serving every other tunnel and never keeps a link that
cannot be used.

Usage: rogue_connector.py PORT CERT KEY HOSTNAME MODE
Modes:
  goaway      answer the first request after sending GOAWAY (NO_ERROR), then
              stay connected; prints how long the edge took to close
  garbage     send a malformed frame after registering
  ping-flood  send 100,000 PINGs without reading the answers
  settings-flood  send 10,000 SETTINGS frames
  big-headers answer each request with a 1 MiB response head (CONTINUATIONs)
  no-read     register, then never read again (the edge's writes back up)
  reset-flood answer each request with RST_STREAM, and send 5,000 more on
              streams the edge never opened
  no-window   take requests but never answer them nor grant more window: the
              edge must hold no more than the windows allow
"""
import socket
import ssl
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions


def frame(t, flags, sid, payload):
    return struct.pack("!I", len(payload))[1:] + bytes([t, flags]) + struct.pack("!I", sid) + payload


def main():
    port, cert, key, host, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a test client; the edge's CA is not what is tested
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20),
                        server_hostname="tunnel.edge-sim.internal")
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, validate_inbound_headers=False))
    c.initiate_connection()
    c.update_settings({h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    s.sendall(c.data_to_send())
    control = None
    registered = False
    t_goaway = None
    answered = set()
    while True:
        try:
            d = s.recv(65536)
        except socket.timeout:
            print("timeout: the edge kept the connection open", flush=True)
            return 1
        except (ConnectionResetError, ssl.SSLError, OSError) as e:
            d = b""
        if not d:
            if t_goaway is not None:
                print("edge closed %.1f s after GOAWAY" % (time.time() - t_goaway), flush=True)
            else:
                print("edge closed the connection", flush=True)
            return 0
        try:
            events = c.receive_data(d)
        except h2.exceptions.ProtocolError as e:
            print("protocol error from edge:", e, flush=True)
            return 0
        for e in events:
            if isinstance(e, h2.events.RequestReceived):
                hd = dict((k.decode() if isinstance(k, bytes) else k, v) for k, v in e.headers)
                if "tunnel-control" in hd and control is None:
                    control = e.stream_id
                    c.send_headers(control, [(":status", "200"), ("content-type", "application/x-ndjson")])
                    c.send_data(control, b'{"type":"register","hostnames":["%s"],"agent":"rogue"}\n' % host.encode())
                    continue
                if mode == "goaway":
                    if t_goaway is None:
                        # Raw, so the h2 state machine still lets us answer.
                        s.sendall(c.data_to_send() + frame(7, 0, 0, struct.pack("!II", e.stream_id, 0)))
                        t_goaway = time.time()
                        print("sent GOAWAY", flush=True)
                    s.sendall(c.data_to_send())
                    time.sleep(1)
                    c.send_headers(e.stream_id, [(":status", "200"), ("content-length", "3")])
                    c.send_data(e.stream_id, b"ok\n", end_stream=True)
                elif mode == "big-headers":
                    c.send_headers(e.stream_id, [(":status", "200")] +
                                   [("x-big-%d" % i, "v" * 1000) for i in range(1024)], end_stream=True)
                elif mode == "no-window":
                    pass  # never answer, never credit
                elif mode == "reset-flood":
                    c.reset_stream(e.stream_id)
                    raw = b"".join(frame(3, 0, 2 * i + 1001, struct.pack("!I", 8)) for i in range(5000))
                    s.sendall(c.data_to_send() + raw)
                else:
                    c.send_headers(e.stream_id, [(":status", "200"), ("content-length", "3")])
                    c.send_data(e.stream_id, b"ok\n", end_stream=True)
            elif isinstance(e, h2.events.DataReceived):
                if mode != "no-window" or e.stream_id == control:
                    c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                if e.stream_id == control and not registered and b"registered" in e.data:
                    registered = True
                    print("registered", flush=True)
                    if mode == "garbage":
                        s.sendall(c.data_to_send() + frame(4, 0, 0, b"\x00\x01\x00") + b"\xff" * 64)
                    elif mode == "ping-flood":
                        s.sendall(c.data_to_send())
                        for i in range(100):
                            s.sendall(b"".join(frame(6, 0, 0, b"%08d" % (i * 1000 + k)) for k in range(1000)))
                    elif mode == "settings-flood":
                        s.sendall(c.data_to_send())
                        s.sendall(b"".join(frame(4, 0, 0, b"") for k in range(10000)))
                    elif mode == "no-read":
                        s.sendall(c.data_to_send())
                        print("not reading any more", flush=True)
                        time.sleep(3600)
        out = c.data_to_send()
        if out:
            try:
                s.sendall(out)
            except OSError:
                print("edge closed the connection", flush=True)
                return 0


try:
    sys.exit(main())
except (OSError, ssl.SSLError):
    # The edge cut us off in the middle of a write: that is its answer.
    print("edge closed the connection (while sending)", flush=True)
    sys.exit(0)
