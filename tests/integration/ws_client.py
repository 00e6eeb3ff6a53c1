#!/usr/bin/python3
"""Drives WebSockets through the edge over HTTP/1.1 (python3-websockets).
Usage: ws_client.py MODE URL CA [ARGS]   -- prints results, exits non-zero on failure."""
import asyncio
import json
import os
import random
import ssl
import sys
import time

import websockets


def ctx(ca):
    c = ssl.create_default_context(cafile=ca)
    c.set_alpn_protocols(["http/1.1"])
    return c


_connect = websockets.connect


def connect(url, **kw):
    """Connects to 127.0.0.1 whatever the URL's host (like curl --resolve)."""
    from urllib.parse import urlsplit
    u = urlsplit(url)
    return _connect(url, host="127.0.0.1", port=u.port, server_hostname=u.hostname, **kw)


async def messages(url, ca, count, maxsize):
    rnd = random.Random(7)
    async with connect(url, ssl=ctx(ca), max_size=None, ping_interval=None,
                                  compression=None) as ws:
        t0 = time.time()
        total = 0
        for i in range(count):
            size = 0 if i == 0 else (maxsize if i == 1 else rnd.randint(0, 4096) if i % 50 else rnd.randint(0, maxsize))
            if i % 2:
                msg = os.urandom(size)
            else:
                msg = "".join(rnd.choice("abcdefé€𝄞") for _ in range(size // 4))
            await ws.send(msg)
            got = await ws.recv()
            assert got == msg, (i, type(msg), len(msg), len(got))
            total += len(msg)
        print(f"{count} messages, {total} bytes echoed intact in {time.time() - t0:.2f}s")


async def close_codes(base, ca):
    # origin closes with a code
    async with connect(base + "/close/4001", ssl=ctx(ca), ping_interval=None) as ws:
        await ws.send("hi")
        try:
            await ws.recv()
        except websockets.ConnectionClosed as e:
            assert e.rcvd.code == 4001 and e.rcvd.reason == "origin says bye", e
            print("origin-initiated close seen with code", e.rcvd.code)
    # client closes with a code: the echo origin answers with the same code
    async with connect(base + "/echo", ssl=ctx(ca), ping_interval=None) as ws:
        await ws.send("x")
        assert await ws.recv() == "x"
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)  # the origin's pong came back through the tunnel
        print("ping answered by the origin's pong")
        await ws.close(code=4002, reason="client says bye")
        assert ws.close_rcvd.code == 4002, ws.close_rcvd
        print("client-initiated close echoed with code", ws.close_rcvd.code)


async def handshake(base, ca):
    async with connect(base + "/headers", ssl=ctx(ca), ping_interval=None,
                                  subprotocols=["superchat"], origin="https://app.example.test",
                                  extra_headers={"Cookie": "session=abc"},
                                  compression="deflate") as ws:
        info = json.loads(await ws.recv())
        h = {k.lower(): v for k, v in info["headers"]}
        assert info["subprotocol"] == "superchat", info
        assert ws.subprotocol == "superchat", ws.subprotocol
        assert h.get("origin") == "https://app.example.test", h
        assert h.get("cookie") == "session=abc", h
        assert "permessage-deflate" in h.get("sec-websocket-extensions", ""), h
        ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
        assert "permessage-deflate" in ext, ext
        print("handshake headers reached the origin; subprotocol and permessage-deflate negotiated")


async def many(url, ca, n):
    conns = []
    for i in range(n):
        conns.append(await connect(url, ssl=ctx(ca), ping_interval=None, compression=None))
    for i, ws in enumerate(conns):
        await ws.send(f"hello {i}")
    for i, ws in enumerate(conns):
        assert await ws.recv() == f"hello {i}"
    print(f"{n} concurrent WebSockets open and echoing")
    if len(sys.argv) > 5:
        open(sys.argv[5], "w").write("open\n")
        while os.path.exists(sys.argv[5]):
            await asyncio.sleep(0.2)
    await asyncio.gather(*(ws.close() for ws in conns))


async def origin_dies(url, ca, marker):
    async with connect(url, ssl=ctx(ca), ping_interval=None) as ws:
        await ws.send("before")
        assert await ws.recv() == "before"
        open(marker, "w").write("kill\n")
        t0 = time.time()
        try:
            await asyncio.wait_for(ws.recv(), 20)
            raise AssertionError("still open")
        except websockets.ConnectionClosed as e:
            print(f"origin death seen after {time.time() - t0:.2f}s: {e}")


async def status(url, ca):
    try:
        async with connect(url, ssl=ctx(ca), ping_interval=None):
            pass
    except websockets.InvalidStatusCode as e:
        print("status", e.status_code)
        return
    raise SystemExit("upgraded unexpectedly")


async def origin_path(url, ca):
    """Prints the path the origin's /headers endpoint saw, or the refusal status."""
    try:
        async with connect(url, ssl=ctx(ca), ping_interval=None) as ws:
            print("path", json.loads(await ws.recv())["path"])
    except websockets.InvalidStatusCode as e:
        print("status", e.status_code)


def main():
    mode, url, ca = sys.argv[1:4]
    if mode == "messages":
        asyncio.run(messages(url, ca, int(sys.argv[4]), 1 << 20))
    elif mode == "close":
        asyncio.run(close_codes(url, ca))
    elif mode == "handshake":
        asyncio.run(handshake(url, ca))
    elif mode == "many":
        asyncio.run(many(url, ca, int(sys.argv[4])))
    elif mode == "dies":
        asyncio.run(origin_dies(url, ca, sys.argv[4]))
    elif mode == "status":
        asyncio.run(status(url, ca))
    elif mode == "path":
        asyncio.run(origin_path(url, ca))


if __name__ == "__main__":
    main()
