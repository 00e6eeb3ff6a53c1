#!/usr/bin/python3
"""Drives the edge's status page in a running headless Chromium (remote
debugging port): opens URL (with the admin token in its #token= fragment,
read from TOKEN_FILE so it is never on a command line), waits until the
page's text holds every needle, takes a screenshot at desktop size and one at
phone size, reloads without the fragment (the token then comes from
localStorage), forgets the token, and then (review 12.9) serves the page a
fake /api/status whose every string holds markup (CDP Fetch.enable +
Fetch.fulfillRequest; the real answer's string fields must all be in the
fake) and looks at what the page made of it. Prints a JSON report on stdout:
  {"text", "hash_after", "stored", "reload_text", "desktop_columns",
   "phone_columns", "injected", "after_forget", "csp_errors", "desktop_png",
   "phone_png",
   "markup_served"        fake /api/status answers served,
   "markup_schema_missing" string fields of the real /api/status the fake lacks,
   "markup_missing"       markup strings the page should show as text but does not,
   "markup_elements"      elements the markup became ("img", "script#2", ...),
   "markup_pwned"         typeof window.__pwned ("undefined" unless a script ran),
   "markup_csp_errors"    CSP reports while the fake was shown,
   "markup_text"          the page's text then,
   "markup_control"       the elements found once markup IS parsed as HTML
                          (insertAdjacentHTML): proves the probe sees them}
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

# What markup could have become: any element of these kinds (the page itself
# has none), any element with an event handler attribute, any script but the
# page's own (the one inline <script>, whose text starts the page's code) and
# any style element but its one.
PROBE = """JSON.stringify((function () {
  var found = [];
  var tags = 'img, svg, iframe, object, embed, b, i, u, a, link, video, audio, math';
  document.querySelectorAll(tags).forEach(function (e) { found.push(e.tagName.toLowerCase()); });
  var own = 0;
  document.querySelectorAll('script').forEach(function (e, i) {
    if (e.textContent.indexOf("(function () {\\n  'use strict';") !== 0 || own++) found.push('script#' + i);
  });
  document.querySelectorAll('style').forEach(function (e, i) { if (i > 0) found.push('style#' + i); });
  document.querySelectorAll('*').forEach(function (e) {
    for (var k = 0; k < e.attributes.length; k++)
      if (/^on/i.test(e.attributes[k].name)) found.push(e.tagName.toLowerCase() + '[' + e.attributes[k].name + ']');
  });
  return {elements: found, pwned: typeof window.__pwned};
})())"""

# Markup that runs script if it is ever parsed as HTML (were the CSP to let
# it) and makes elements the probe finds (whatever the CSP says).
MARKUP = ('<img src=x onerror=window.__pwned=1>{}<script>window.__pwned=1</script>'
          '<svg onload=window.__pwned=1><b>bold</b>')


def mark(tag):
    return MARKUP.format(tag)


def fake_status(real):
    """An /api/status shaped like the edge's, every string markup tagged with
    its field, and the list of strings the page is meant to show as text.
    Two connectors: one with a version (shown) and one without (its agent is
    shown instead). Numbers stay numbers, as the edge sends them."""
    now_ms = int(time.time() * 1000)
    now = now_ms // 1000
    shown = []

    def s(tag, visible=True):
        v = mark(tag)
        if visible:
            shown.append(v)
        return v

    def conns(k):
        return [{"edge": s("edge%d" % k), "index": 0, "conn_id": s("conn_id%d" % k, False),
                 "dialed": s("dialed%d" % k, False), "since": now - 60}]

    d = {
        "edge": {"version": s("edge.version"), "since": now - 3600,
                 "instance": s("edge.instance"), "tunnel_addr": s("edge.tunnel_addr", False),
                 "draining": False},
        "now": now_ms,
        "tunnels": [{
            "id": s("tunnel.id"), "name": s("tunnel.name"), "connections": 2,
            "hostnames": [s("tunnel.hostname")],
            "allowed_hostnames": [s("tunnel.allowed_hostname", False)],
            "connectors": [
                {"id": s("connector.id"), "agent": s("connector.agent", False),
                 "version": s("connector.version"), "address": s("connector.address"),
                 "since": now - 60, "connections": conns(1)},
                {"id": s("connector2.id"), "agent": s("connector2.agent"),
                 "address": s("connector2.address"), "since": now - 30,
                 "connections": conns(2)}],
            "edges": {mark("edges.key"): 2}}],
        "requests_total": 10,
        "links": 2,
        "hostnames": [{"hostname": s("hostnames.hostname"), "requests_total": 10,
                       "errors_total": 1, "requests_per_min": 10, "errors_per_min": 1}],
        "recent_errors": [{"time": now_ms - 1000, "hostname": s("recent.hostname"),
                           "status": 503, "reason": s("recent.reason"),
                           "request_id": s("recent.request_id")}],
    }
    missing = sorted(string_paths(real) - string_paths(d))
    return d, shown, missing


def string_paths(v, path=""):
    """The paths of v's string values (list items as [], the keys of
    "edges", which are addresses, as *)."""
    out = set()
    if isinstance(v, str):
        out.add(path)
    elif isinstance(v, list):
        for x in v:
            out |= string_paths(x, path + "[]")
    elif isinstance(v, dict):
        for k, x in v.items():
            key = "*" if path.endswith(".edges") else k
            out |= string_paths(x, path + "." + key)
    return out


class Page:
    """One CDP session: a reader task routes answers to their calls, answers
    paused /api/status requests with self.fake (when set) and keeps the
    other events."""

    def __init__(self, ws):
        self.ws = ws
        self.n = 0
        self.pending = {}
        self.events = []
        self.fake = None
        self.served = 0
        self.reader = asyncio.ensure_future(self.read())

    async def read(self):
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                fut = self.pending.pop(msg.get("id"), None)
                if fut is not None:
                    if not fut.done():
                        fut.set_result(msg)
                elif msg.get("method") == "Fetch.requestPaused":
                    asyncio.ensure_future(self.answer(msg["params"]))
                else:
                    self.events.append(msg)
        except websockets.ConnectionClosed:
            pass

    async def answer(self, params):
        rid = params["requestId"]
        if self.fake is None:
            await self.call("Fetch.continueRequest", requestId=rid)
            return
        body = json.dumps(self.fake).encode("utf-8")
        await self.call("Fetch.fulfillRequest", requestId=rid, responseCode=200,
                        responseHeaders=[{"name": "Content-Type", "value": "application/json"},
                                         {"name": "Cache-Control", "value": "no-store"}],
                        body=base64.b64encode(body).decode("ascii"))
        self.served += 1

    async def call(self, method, **params):
        self.n += 1
        n = self.n
        fut = asyncio.get_running_loop().create_future()
        self.pending[n] = fut
        await self.ws.send(json.dumps({"id": n, "method": method, "params": params}))
        msg = await asyncio.wait_for(fut, 30)
        if "error" in msg:
            raise RuntimeError("%s: %s" % (method, msg["error"]))
        return msg.get("result", {})

    async def evaluate(self, expression):
        r = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return json.loads(r.get("result", {}).get("value") or "{}")

    async def state(self):
        return await self.evaluate(STATE)

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

    def csp_errors(self, since=0):
        return [e["params"]["entry"].get("text", "") for e in self.events[since:]
                if e.get("method") == "Log.entryAdded"
                and "Content Security Policy" in e["params"]["entry"].get("text", "")]


def real_status(url, token):
    req = urllib.request.Request(url + "api/status",
                                 headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


async def markup_phase(p, url, token, deadline, report):
    """review 12.9: the page gets markup in every string of /api/status."""
    fake, shown, missing = fake_status(real_status(url, token))
    report["markup_schema_missing"] = missing
    p.fake = fake
    await p.call("Fetch.enable", patterns=[{"urlPattern": "*/api/status*",
                                            "requestStage": "Request"}])
    since = len(p.events)
    # A new document (from the same URL, only a fragment would change: no
    # load), which reads the token from #token= again.
    await p.call("Page.navigate", url="about:blank")
    await asyncio.sleep(0.2)
    await p.call("Page.navigate", url=url + "#token=" + token)
    st = await p.wait_for(shown, deadline)
    await asyncio.sleep(0.5)  # a late onerror / onload would have fired by now
    probe = await p.evaluate(PROBE)
    await p.call("Runtime.evaluate", expression="0")  # collect trailing events
    report["markup_served"] = p.served
    report["markup_text"] = st.get("text", "")
    report["markup_missing"] = [v for v in shown if v not in st.get("text", "")]
    report["markup_elements"] = probe.get("elements")
    report["markup_pwned"] = probe.get("pwned")
    report["markup_csp_errors"] = p.csp_errors(since)
    # The control: the same markup parsed as HTML is seen by the probe.
    await p.call("Runtime.evaluate", expression="document.getElementById('errors')"
                 ".insertAdjacentHTML('beforeend', %s)" % json.dumps(mark("control")))
    report["markup_control"] = (await p.evaluate(PROBE)).get("elements")
    p.fake = None
    await p.call("Fetch.disable")
    # The token leaves the browser's storage, as after the first phase.
    await p.call("Runtime.evaluate", expression="document.getElementById('forget').click()")


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
        report["csp_errors"] = p.csp_errors()
        await markup_phase(p, url, token, min(deadline, time.time() + 15), report)
        p.reader.cancel()
    print(json.dumps(report))


asyncio.run(main())
