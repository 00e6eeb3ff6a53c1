#!/usr/bin/python3
"""Steady traffic through the edge: one GET every INTERVAL seconds on a
keep-alive HTTPS connection to 127.0.0.1:PORT (SNI and Host = HOST, the
edge's CA trusted), until STOP_FILE exists or MAX_SECONDS pass. Appends one
line per request to OUT: "STATUS FIRST-LINE-OF-BODY", or "ERR <exception>"
(then it reconnects).

usage: steady_client.py CA HOST PORT PATH OUT STOP_FILE [INTERVAL] [MAX_SECONDS]
"""
import http.client
import os
import socket
import ssl
import sys
import time

ca, host, port, path, out, stop = sys.argv[1:7]
interval = float(sys.argv[7]) if len(sys.argv) > 7 else 0.1
limit = float(sys.argv[8]) if len(sys.argv) > 8 else 75
ctx = ssl.create_default_context(cafile=ca)


class Conn(http.client.HTTPSConnection):
    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = ctx.wrap_socket(s, server_hostname=self.host)


end = time.monotonic() + limit
conn = None
with open(out, "a", buffering=1) as f:
    while not os.path.exists(stop) and time.monotonic() < end:
        try:
            if conn is None:
                conn = Conn(host, int(port), timeout=5)
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read().decode("utf-8", "replace").splitlines()
            f.write("%d %s\n" % (r.status, body[0] if body else ""))
        except Exception as e:  # noqa: BLE001 - every failure is a line
            f.write("ERR %r\n" % (e,))
            if conn is not None:
                conn.close()
            conn = None
        time.sleep(interval)
