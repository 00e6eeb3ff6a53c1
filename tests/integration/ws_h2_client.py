#!/usr/bin/python3
"""A WebSocket over HTTP/2 (RFC 8441 extended CONNECT), as Chromium and
Firefox do it, with python3-h2: checks that the edge advertises
SETTINGS_ENABLE_CONNECT_PROTOCOL, opens the WebSocket, echoes messages.
Usage: ws_h2_client.py HOST PORT CA PATH"""
import os
import socket
import ssl
import struct
import sys

import h2.config
import h2.connection
import h2.events
import h2.settings


def ws_frame(payload, opcode=1):
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def parse_frames(buf):
    out = []
    while len(buf) >= 2:
        op, n = buf[0] & 0x0F, buf[1] & 0x7F
        i = 2
        if n == 126:
            if len(buf) < 4:
                break
            n, i = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, i = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < i + n:
            break
        out.append((op, bytes(buf[i:i + n])))
        buf = buf[i + n:]
    return out, buf


def main():
    host, port, ca, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["h2"])
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname=host)
    assert sock.selected_alpn_protocol() == "h2"
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    enabled = None
    while enabled is None:
        for ev in conn.receive_data(sock.recv(65536)):
            if isinstance(ev, h2.events.RemoteSettingsChanged):
                s = ev.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
                enabled = s.new_value if s else 0
        sock.sendall(conn.data_to_send())
    assert enabled == 1, "edge does not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL"
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
                            (":authority", f"{host}:{port}"), (":path", path),
                            ("sec-websocket-version", "13"), ("origin", f"https://{host}")])
    sock.sendall(conn.data_to_send())
    status, buf, echoed = None, b"", []
    msgs = [(1, b"hello over h2"), (2, os.urandom(70000)), (1, b"")]
    sent = False
    while len(echoed) < len(msgs):
        data = sock.recv(65536)
        assert data, "connection closed"
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                status = dict(ev.headers)[b":status"]
                assert status == b"200", status
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                frames, buf = parse_frames(buf + ev.data)
                echoed += [p for _, p in frames]
            elif isinstance(ev, h2.events.StreamReset):
                raise SystemExit(f"stream reset: {ev.error_code}")
        if status and not sent:
            wire = b"".join(ws_frame(p, op) for op, p in msgs)
            for i in range(0, len(wire), 16384):
                conn.send_data(sid, wire[i:i + 16384])
            sent = True
        sock.sendall(conn.data_to_send())
    assert echoed == [p for _, p in msgs], [len(e) for e in echoed]
    conn.send_data(sid, ws_frame(struct.pack("!H", 1000), 8), end_stream=True)
    sock.sendall(conn.data_to_send())
    print("WebSocket over HTTP/2 extended CONNECT: SETTINGS_ENABLE_CONNECT_PROTOCOL=1, "
          f"{len(msgs)} messages echoed")


if __name__ == "__main__":
    main()
