#!/usr/bin/python3
"""Clients with (or without) a client certificate, for test_access.sh.

  access_client.py keepalive HOST PORT CA CERT KEY PATH -- CMD...
      GETs PATH on one TLS connection (HTTP/1.1, SNI HOST), runs CMD, waits
      1.0 s (the edge promises a change within a second), GETs PATH again on
      the same connection. Prints both statuses and the second body's first
      line, e.g. "200 403 403 Forbidden: ...".
  resume HOST PORT CA CERT KEY PATH
      Two TLS 1.2 connections (HTTP/1.1), the second resuming the first's
      session. Prints "full STATUS resumed STATUS" ("full" if the server did
      not resume).
  ws-hold HOST PORT CA CERT KEY PATH -- CMD...
      Opens a WebSocket with the certificate, echoes one message, runs CMD,
      then keeps echoing for up to 5 s. Prints "echo:<msg> then closed after
      N s" or "echo:<msg> then still open".
  ws HOST PORT CA CERT|- KEY|- PATH
      Opens a WebSocket (HTTP/1.1 Upgrade) with the certificate (or none:
      "-") and echoes one message. Prints "echo:<msg>" or "refused:<status>".
"""
import asyncio
import http.client
import socket
import ssl
import subprocess
import sys
import time


def context(ca, cert, key, alpn):
    c = ssl.create_default_context(cafile=ca)
    if cert != "-":
        c.load_cert_chain(cert, key)
    c.set_alpn_protocols([alpn])
    return c


def get(conn, host, path):
    conn.request("GET", path, headers={"Host": host})
    r = conn.getresponse()
    body = r.read().decode(errors="replace")
    return r.status, body.split("\n", 1)[0]


def keepalive(host, port, ca, cert, key, path, cmd):
    ctx = context(ca, cert, key, "http/1.1")
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port))), server_hostname=host)
    conn = http.client.HTTPConnection(host, int(port))
    conn.sock = sock
    s1, _ = get(conn, host, path)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    time.sleep(1.0)
    s2, line = get(conn, host, path)
    print(s1, s2, line)


def resume(host, port, ca, cert, key, path):
    ctx = context(ca, cert, key, "http/1.1")
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    out, session = [], None
    for _ in range(2):
        sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port))),
                               server_hostname=host, session=session)
        conn = http.client.HTTPConnection(host, int(port))
        conn.sock = sock
        status, _ = get(conn, host, path)
        out += ["resumed" if sock.session_reused else "full", str(status)]
        session = sock.session
        sock.close()
    print(" ".join(out))


async def ws(host, port, ca, cert, key, path):
    import websockets
    ctx = context(ca, cert, key, "http/1.1")
    url = f"wss://{host}:{port}{path}"
    try:
        async with websockets.connect(url, host="127.0.0.1", port=int(port), server_hostname=host,
                                      ssl=ctx, ping_interval=None) as w:
            await w.send("hello through a policy")
            print("echo:" + await asyncio.wait_for(w.recv(), 10))
    except websockets.exceptions.InvalidStatusCode as e:
        print(f"refused:{e.status_code}")


async def ws_hold(host, port, ca, cert, key, path, cmd):
    import websockets
    ctx = context(ca, cert, key, "http/1.1")
    url = f"wss://{host}:{port}{path}"
    async with websockets.connect(url, host="127.0.0.1", port=int(port), server_hostname=host,
                                  ssl=ctx, ping_interval=None) as w:
        await w.send("before")
        first = await asyncio.wait_for(w.recv(), 10)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        t0 = time.time()
        try:
            while time.time() - t0 < 5:
                await w.send("still there?")
                await asyncio.wait_for(w.recv(), 5)
                await asyncio.sleep(0.1)
            print(f"echo:{first} then still open")
        except (websockets.exceptions.ConnectionClosed, asyncio.TimeoutError):
            print(f"echo:{first} then closed after {time.time() - t0:.1f} s")


def main():
    mode = sys.argv[1]
    if mode == "keepalive":
        sep = sys.argv.index("--")
        keepalive(*sys.argv[2:8], sys.argv[sep + 1:])
    elif mode == "resume":
        resume(*sys.argv[2:8])
    elif mode == "ws-hold":
        sep = sys.argv.index("--")
        asyncio.run(ws_hold(*sys.argv[2:8], sys.argv[sep + 1:]))
    elif mode == "ws":
        asyncio.run(ws(*sys.argv[2:8]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
