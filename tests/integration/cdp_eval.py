#!/usr/bin/python3
"""Waits for a page in a running headless Chromium (remote debugging port)
and polls a JavaScript expression until it returns a non-pending value.
Usage: cdp_eval.py DEBUG_PORT URL_SUBSTRING EXPRESSION TIMEOUT"""
import asyncio
import json
import sys
import time
import urllib.request

import websockets


async def main():
    port, needle, expr, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    deadline = time.time() + timeout
    target = None
    while time.time() < deadline and not target:
        try:
            pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
            target = next((p for p in pages if p.get("type") == "page" and needle in p.get("url", "")), None)
        except OSError:
            pass
        if not target:
            await asyncio.sleep(0.2)
    if not target:
        raise SystemExit("no page")
    async with websockets.connect(target["webSocketDebuggerUrl"], max_size=None) as ws:
        n = 0
        while time.time() < deadline:
            n += 1
            await ws.send(json.dumps({"id": n, "method": "Runtime.evaluate",
                                      "params": {"expression": expr, "returnByValue": True}}))
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("id") == n:
                    break
            value = msg.get("result", {}).get("result", {}).get("value")
            if value not in (None, "pending"):
                print(value)
                return
            await asyncio.sleep(0.2)
    raise SystemExit("timed out waiting for the page")


asyncio.run(main())
