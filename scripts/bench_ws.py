#!/usr/bin/python3
"""Holds N idle WebSockets open through a proxy, for scripts/bench.sh (python3-websockets).

Usage: bench_ws.py URL CA N READY_FILE

Opens N WebSockets to URL over TLS (HTTP/1.1 ALPN, connecting to 127.0.0.1 whatever the
URL's host, SNI and Host from the URL), checks each echoes one message, then writes
"open N" to READY_FILE and keeps them idle until READY_FILE is removed; then closes them
all and exits 0. On any failure it writes "error: ..." to READY_FILE and exits 1.
"""
import asyncio
import os
import ssl
import sys
from urllib.parse import urlsplit

import websockets

PARALLEL = 16  # handshakes in flight at once


def tls_context(ca):
    c = ssl.create_default_context(cafile=ca)
    c.set_alpn_protocols(["http/1.1"])
    return c


async def open_one(url, ctx, i, gate):
    u = urlsplit(url)
    async with gate:
        ws = await websockets.connect(url, host="127.0.0.1", port=u.port,
                                      server_hostname=u.hostname, ssl=ctx,
                                      ping_interval=None, compression=None,
                                      open_timeout=30, close_timeout=5)
        msg = f"hello {i}"
        await ws.send(msg)
        got = await asyncio.wait_for(ws.recv(), 30)
        if got != msg:
            raise RuntimeError(f"connection {i}: echo {got!r} != {msg!r}")
        return ws


async def run(url, ca, n, ready):
    ctx = tls_context(ca)
    gate = asyncio.Semaphore(PARALLEL)
    results = await asyncio.gather(*(open_one(url, ctx, i, gate) for i in range(n)),
                                   return_exceptions=True)
    conns = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    try:
        if errors:
            raise RuntimeError(f"{len(errors)}/{n} WebSockets failed, first: {errors[0]!r}")
        with open(ready + ".tmp", "w") as f:
            f.write(f"open {n}\n")
        os.rename(ready + ".tmp", ready)
        while os.path.exists(ready):
            await asyncio.sleep(0.1)
    finally:
        await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    url, ca, n, ready = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    try:
        asyncio.run(run(url, ca, n, ready))
    except Exception as e:  # reported to the caller through READY_FILE
        with open(ready + ".tmp", "w") as f:
            f.write(f"error: {e}\n")
        os.rename(ready + ".tmp", ready)
        sys.exit(1)


if __name__ == "__main__":
    main()
