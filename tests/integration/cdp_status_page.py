#!/usr/bin/python3
"""Drives the edge's status page in a running headless Chromium (remote
debugging port): opens URL (with the admin token in its #token= fragment,
read from TOKEN_FILE so it is never on a command line), waits until the
page's text holds every needle, takes a screenshot at desktop size and one at
phone size, reloads without the fragment (the token then comes from
localStorage) and prints a JSON report on stdout:
  {"text", "hash_after", "stored", "reload_text", "desktop_columns",
   "phone_columns", "injected", "after_forget", "csp_errors", "desktop_png",
   "phone_png"}
Usage: cdp_status_page.py DEBUG_PORT URL TOKEN_FILE NEEDLES_JSON OUT_PREFIX TIMEOUT"""
import asyncio
import base64
import json
import sys
import time
import urllib.request

import websockets

STATE = """JSON.stringify({
  text: document.body ? document.body.innerText : '',
  hash: location.hash,
  stored: (function () { try { return !!localStorage.getItem('edge-sim-admin-token'); } catch (e) { return false; } })(),
  shown: !!document.getElementById('main') && !document.getElementById('main').hidden,
  columns: document.getElementById('main') ?
    getComputedStyle(document.getElementById('main')).gridTemplateColumns.split(' ').length : 0,
  injected: document.querySelectorAll('#main i, #main b, #main img, #main script').length
})"""


class Page:
    def __init__(self, ws):
        self.ws = ws
        self.n = 0
        self.events = []

    async def call(self, method, **params):
        self.n += 1
        n = self.n
        await self.ws.send(json.dumps({"id": n, "method": method, "params": params}))
        while True:
            msg = json.loads(await self.ws.recv())
            if msg.get("id") == n:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            self.events.append(msg)

    async def state(self):
        r = await self.call("Runtime.evaluate", expression=STATE, returnByValue=True)
        return json.loads(r.get("result", {}).get("value") or "{}")

    async def wait_for(self, needles, deadline):
        st = {}
        while time.time() < deadline:
            st = await self.state()
            if st.get("shown") and all(n in st.get("text", "") for n in needles):
                return st
            await asyncio.sleep(0.25)
        return st

    async def screenshot(self, path):
        r = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))


async def main():
    port, url, token_file, needles, prefix, timeout = sys.argv[1:7]
    needles = json.loads(needles)
    deadline = time.time() + float(timeout)
    token = open(token_file).read().strip()
    target = None
    while time.time() < deadline and not target:
        try:
            pages = json.load(urllib.request.urlopen("http://127.0.0.1:%s/json" % port))
            target = next((p for p in pages if p.get("type") == "page"), None)
        except OSError:
            pass
        if not target:
            await asyncio.sleep(0.2)
    if not target:
        raise SystemExit("no page")
    report = {}
    async with websockets.connect(target["webSocketDebuggerUrl"], max_size=None) as ws:
        p = Page(ws)
        await p.call("Page.enable")
        await p.call("Runtime.enable")
        await p.call("Log.enable")
        await p.call("Emulation.setDeviceMetricsOverride", width=1280, height=900,
                     deviceScaleFactor=1, mobile=False)
        await p.call("Page.navigate", url=url + "#token=" + token)
        st = await p.wait_for(needles, deadline)
        report["text"] = st.get("text", "")
        report["hash_after"] = st.get("hash")
        report["stored"] = st.get("stored")
        report["desktop_columns"] = st.get("columns")
        report["injected"] = st.get("injected")
        report["desktop_png"] = prefix + ".png"
        await p.screenshot(report["desktop_png"])
        # A phone: one column.
        await p.call("Emulation.setDeviceMetricsOverride", width=390, height=844,
                     deviceScaleFactor=2, mobile=True)
        await asyncio.sleep(0.5)
        st = await p.state()
        report["phone_columns"] = st.get("columns")
        report["phone_png"] = prefix + "-phone.png"
        await p.screenshot(report["phone_png"])
        # Again without the fragment: the token comes from localStorage.
        await p.call("Emulation.setDeviceMetricsOverride", width=1280, height=900,
                     deviceScaleFactor=1, mobile=False)
        await p.call("Page.navigate", url=url)
        st = await p.wait_for(needles, min(deadline, time.time() + 10))
        report["reload_text"] = st.get("text", "")
        # Forgetting the token leaves the paste form, and nothing stored.
        r = await p.call("Runtime.evaluate", returnByValue=True, expression="""
          document.getElementById('forget').click();
          JSON.stringify({form: !document.getElementById('login').hidden,
                          main: !document.getElementById('main').hidden,
                          stored: localStorage.getItem('edge-sim-admin-token')})""")
        report["after_forget"] = json.loads(r["result"]["value"])
        await p.call("Runtime.evaluate", expression="0")  # collect trailing events
        report["csp_errors"] = [
            e["params"]["entry"].get("text", "") for e in p.events
            if e.get("method") == "Log.entryAdded"
            and "Content Security Policy" in e["params"]["entry"].get("text", "")]
    print(json.dumps(report))


asyncio.run(main())
