#!/usr/bin/python3
"""WebSocket echo origin (Debian's python3-websockets): echoes every message;
the path /close/CODE closes with that code after the first message; .../headers
answers with a JSON dump of the handshake headers. Usage: ws_echo.py PORT"""
import asyncio
import json
import sys

import websockets


async def handler(ws, path=None):
    path = path or ws.path
    if path.split("?")[0].endswith("/headers"):
        await ws.send(json.dumps({"path": path, "headers": list(ws.request_headers.raw_items()),
                                  "subprotocol": ws.subprotocol}))
        await ws.wait_closed()
        return
    if path.startswith("/close/"):
        await ws.recv()
        await ws.close(code=int(path.split("/")[2]), reason="origin says bye")
        return
    async for msg in ws:
        await ws.send(msg)


async def main():
    """ws_echo.py PORT [--tls CERT KEY]"""
    port = int(sys.argv[1])
    ssl_ctx = None
    if "--tls" in sys.argv:
        import ssl
        i = sys.argv.index("--tls")
        ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_ctx.load_cert_chain(sys.argv[i + 1], sys.argv[i + 2])
    async with websockets.serve(handler, "127.0.0.1", port, max_size=None, ping_interval=None,
                                subprotocols=["chat", "superchat"], compression="deflate",
                                ssl=ssl_ctx):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
