/* The status page: one HTML document with its CSS and JavaScript inline
 * (no external assets), served at the admin listener's "/". It holds no
 * data: the script polls GET /api/status with the admin token. Edit the
 * STYLE and SCRIPT text here; their CSP hashes are computed from them. */
#include "es_status_page.h"
#include "px_b64.h"
#include "px_buf.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include <stdlib.h>
#include <string.h>

/* One line of the page per line here. */
/* clang-format off */
#define STYLE \
    ":root{color-scheme:light dark;--bg:#f6f7f9;--fg:#1d2329;--card:#fff;--mute:#66707a;--line:#dde1e6;--ok:#1a7f37;--bad:#c62828;--warn:#b26a00}\n" \
    "@media (prefers-color-scheme:dark){:root{--bg:#111417;--fg:#e6e9ec;--card:#1b1f24;--mute:#98a2ad;--line:#2c333a;--ok:#3fb950;--bad:#f06060;--warn:#e0a030}}\n" \
    "*{box-sizing:border-box}\n" \
    "body{margin:0;font:15px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;background:var(--bg);color:var(--fg)}\n" \
    "header{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:baseline;padding:.8rem 1rem;border-bottom:1px solid var(--line);background:var(--card)}\n" \
    "header h1{font-size:1.15rem;margin:0}\n" \
    ".mute{color:var(--mute)}\n" \
    ".ok{color:var(--ok)}\n" \
    ".bad{color:var(--bad)}\n" \
    ".warn{color:var(--warn)}\n" \
    "main{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:1rem;padding:1rem;max-width:1200px;margin:0 auto}\n" \
    "section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.8rem 1rem;min-width:0}\n" \
    "section.wide{grid-column:1/-1}\n" \
    "h2{font-size:1rem;margin:0 0 .6rem}\n" \
    "h3{font-size:1rem;margin:.2rem 0}\n" \
    ".tunnel{border-top:1px solid var(--line);padding:.6rem 0}\n" \
    ".tunnel:first-of-type{border-top:0;padding-top:0}\n" \
    "table{width:100%;border-collapse:collapse;font-size:.9rem}\n" \
    "th,td{text-align:left;padding:.25rem .4rem;border-bottom:1px solid var(--line);vertical-align:top;overflow-wrap:break-word}\n" \
    "th{color:var(--mute);font-weight:600;white-space:nowrap}\n" \
    "td code{word-break:break-all}\n" \
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\n" \
    "code{font:.85rem ui-monospace,SFMono-Regular,Menlo,monospace}\n" \
    "form{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:.6rem}\n" \
    "input{flex:1 1 16rem;font:inherit;padding:.4rem;border:1px solid var(--line);border-radius:4px;background:var(--bg);color:var(--fg)}\n" \
    "button{font:inherit;padding:.4rem .9rem;border-radius:4px;border:1px solid var(--line);background:var(--bg);color:var(--fg)}\n" \
    "#login{max-width:36rem;margin:2rem auto}\n" \
    "@media (max-width:600px){\n" \
    "main{grid-template-columns:minmax(0,1fr);padding:.5rem}\n" \
    "section.wide{grid-column:auto}\n" \
    "header{padding:.6rem}\n" \
    "th,td{padding:.2rem .25rem}\n" \
    "th{white-space:normal}\n" \
    ".wide-only{display:none}\n" \
    "table.stack thead{display:none}\n" \
    "table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:100%}\n" \
    "table.stack tr{border-bottom:1px solid var(--line);padding:.35rem 0}\n" \
    "table.stack td{border:0;padding:.05rem 0;text-align:left}\n" \
    "table.stack td::before{content:attr(data-label) \": \";color:var(--mute);font-size:.85rem}\n" \
    "}\n"

#define SCRIPT \
    "(function () {\n" \
    "  'use strict';\n" \
    "  var KEY = 'edge-sim-admin-token';\n" \
    "  var POLL_MS = 2000;\n" \
    "  var token = null;\n" \
    "  var timer = null;\n" \
    "\n" \
    "  function $(id) { return document.getElementById(id); }\n" \
    "  /* Every piece of data reaches the page through textContent: nothing the\n" \
    "   * edge reports (hostnames, agents, reasons) is ever parsed as HTML. */\n" \
    "  function el(tag, cls, text) {\n" \
    "    var e = document.createElement(tag);\n" \
    "    if (cls) e.className = cls;\n" \
    "    if (text !== undefined && text !== null) e.textContent = String(text);\n" \
    "    return e;\n" \
    "  }\n" \
    "  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }\n" \
    "  function store(t) { try { if (t) localStorage.setItem(KEY, t); else localStorage.removeItem(KEY); } catch (e) { } }\n" \
    "  function stored() { try { return localStorage.getItem(KEY); } catch (e) { return null; } }\n" \
    "\n" \
    "  function readToken() {\n" \
    "    var h = location.hash;\n" \
    "    if (h.indexOf('#token=') === 0) {\n" \
    "      var t = '';\n" \
    "      try { t = decodeURIComponent(h.slice(7)); } catch (e) { t = h.slice(7); }\n" \
    "      /* Out of the address bar and the history before anything else. */\n" \
    "      history.replaceState(null, '', location.pathname + location.search);\n" \
    "      if (t) { store(t); return t; }\n" \
    "    }\n" \
    "    return stored();\n" \
    "  }\n" \
    "\n" \
    "  function duration(s) {\n" \
    "    if (!(s >= 0)) return '';\n" \
    "    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);\n" \
    "    if (d) return d + 'd ' + h + 'h';\n" \
    "    if (h) return h + 'h ' + m + 'm';\n" \
    "    if (m) return m + 'm ' + Math.floor(s % 60) + 's';\n" \
    "    return Math.floor(s) + 's';\n" \
    "  }\n" \
    "  function when(unix, nowMs) {\n" \
    "    if (typeof unix !== 'number' || unix <= 0) return '';\n" \
    "    var d = new Date(unix * 1000);\n" \
    "    return d.toLocaleString() + ' (' + duration(nowMs / 1000 - unix) + ' ago)';\n" \
    "  }\n" \
    "  /* The metrics' own series names, in words. */\n" \
    "  function hostLabel(h) { return h === '_unrouted' ? '(no route)' : h === '_other' ? '(others)' : h; }\n" \
    "  function rate(v) { return typeof v === 'number' ? (Math.round(v * 10) / 10).toString() : '-'; }\n" \
    "\n" \
    "  /* cls: 'stack' (rows become cards on a phone); numeric[i]: right-aligned;\n" \
    "   * wideOnly[i]: hidden on a phone. */\n" \
    "  function table(head, rows, numeric, cls, wideOnly) {\n" \
    "    var t = el('table', cls || ''), tr = el('tr');\n" \
    "    wideOnly = wideOnly || [];\n" \
    "    function cellClass(i) { return (numeric[i] ? 'num ' : '') + (wideOnly[i] ? 'wide-only' : ''); }\n" \
    "    head.forEach(function (h, i) { tr.appendChild(el('th', cellClass(i), h)); });\n" \
    "    var th = el('thead'); th.appendChild(tr); t.appendChild(th);\n" \
    "    var tb = el('tbody');\n" \
    "    rows.forEach(function (r) {\n" \
    "      var row = el('tr');\n" \
    "      r.forEach(function (c, i) {\n" \
    "        var td = el('td', cellClass(i));\n" \
    "        td.setAttribute('data-label', head[i]);\n" \
    "        if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? '' : String(c);\n" \
    "        row.appendChild(td);\n" \
    "      });\n" \
    "      tb.appendChild(row);\n" \
    "    });\n" \
    "    t.appendChild(tb);\n" \
    "    return t;\n" \
    "  }\n" \
    "\n" \
    "  function linksPerEdge(conns) {\n" \
    "    var per = {}, order = [];\n" \
    "    (conns || []).forEach(function (c) {\n" \
    "      var k = c.edge || '?';\n" \
    "      if (!(k in per)) { per[k] = 0; order.push(k); }\n" \
    "      per[k]++;\n" \
    "    });\n" \
    "    return order.map(function (k) { return k + ' \\u00d7' + per[k]; }).join(', ');\n" \
    "  }\n" \
    "\n" \
    "  function renderTunnels(d, nowMs) {\n" \
    "    var box = $('tunnels');\n" \
    "    clear(box);\n" \
    "    var list = d.tunnels || [];\n" \
    "    $('tunnel-count').textContent = '(' + list.length + ')';\n" \
    "    if (!list.length) { box.appendChild(el('p', 'mute', 'No tunnels yet.')); return; }\n" \
    "    list.forEach(function (t) {\n" \
    "      var div = el('div', 'tunnel');\n" \
    "      var h = el('h3', '', t.name);\n" \
    "      var up = (t.connectors || []).length;\n" \
    "      h.appendChild(document.createTextNode(' '));\n" \
    "      h.appendChild(el('span', up ? 'ok' : 'bad', up ? '\\u25cf connected' : '\\u25cb no connector'));\n" \
    "      div.appendChild(h);\n" \
    "      div.appendChild(el('div', 'mute', 'id ' + t.id + ' \\u00b7 ' + (t.connections || 0) + ' link(s) here'));\n" \
    "      var hosts = (t.hostnames || []).join(', ');\n" \
    "      div.appendChild(el('div', '', 'Hostnames: ' + (hosts || '(none registered)')));\n" \
    "      if (up) {\n" \
    "        var rows = t.connectors.map(function (c) {\n" \
    "          var who = el('code', '', c.id || '(no id)');\n" \
    "          return [who, c.version || c.agent || '', c.address || '', when(c.since, nowMs), linksPerEdge(c.connections)];\n" \
    "        });\n" \
    "        div.appendChild(table(['Connector', 'Version', 'Address', 'Connected since', 'Links per edge'], rows, [], 'stack'));\n" \
    "      }\n" \
    "      box.appendChild(div);\n" \
    "    });\n" \
    "  }\n" \
    "\n" \
    "  function renderHostnames(d) {\n" \
    "    var box = $('hostnames');\n" \
    "    clear(box);\n" \
    "    var list = d.hostnames || [];\n" \
    "    if (!list.length) { box.appendChild(el('p', 'mute', 'No requests yet.')); return; }\n" \
    "    var rows = list.map(function (h) {\n" \
    "      var err = el('span', h.errors_per_min > 0 ? 'bad' : '', rate(h.errors_per_min));\n" \
    "      return [hostLabel(h.hostname), rate(h.requests_per_min), err, h.requests_total, h.errors_total];\n" \
    "    });\n" \
    "    box.appendChild(table(['Hostname', 'Requests / min', 'Errors / min', 'Requests', 'Errors'], rows,\n" \
    "      [false, true, true, true, true], '', [false, false, false, true, true]));\n" \
    "  }\n" \
    "\n" \
    "  function renderErrors(d) {\n" \
    "    var box = $('errors');\n" \
    "    clear(box);\n" \
    "    var list = d.recent_errors || []; /* newest first */\n" \
    "    if (!list.length) { box.appendChild(el('p', 'mute', 'No recent errors.')); return; }\n" \
    "    var rows = list.map(function (e) {\n" \
    "      var t = typeof e.time === 'number' ? new Date(e.time).toLocaleTimeString() : '';\n" \
    "      return [t, e.hostname, e.status, e.reason, el('code', '', e.request_id || '')];\n" \
    "    });\n" \
    "    box.appendChild(table(['Time', 'Hostname', 'Status', 'Reason', 'Request id'], rows, [], 'stack'));\n" \
    "  }\n" \
    "\n" \
    "  function render(d) {\n" \
    "    var nowMs = typeof d.now === 'number' ? d.now : Date.now();\n" \
    "    var e = d.edge || {};\n" \
    "    var info = 'edge-sim ' + (e.version || '?');\n" \
    "    if (e.instance) info += ' \\u00b7 instance ' + e.instance;\n" \
    "    if (e.since) info += ' \\u00b7 up ' + duration(nowMs / 1000 - e.since);\n" \
    "    info += ' \\u00b7 ' + (d.links || 0) + ' link(s)';\n" \
    "    $('edge').textContent = info;\n" \
    "    var st = $('state');\n" \
    "    st.textContent = e.draining ? 'draining' : 'serving';\n" \
    "    st.className = e.draining ? 'warn' : 'ok';\n" \
    "    renderTunnels(d, nowMs);\n" \
    "    renderHostnames(d);\n" \
    "    renderErrors(d);\n" \
    "    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();\n" \
    "    $('updated').className = 'mute';\n" \
    "  }\n" \
    "\n" \
    "  function showLogin(msg) {\n" \
    "    $('login').hidden = false;\n" \
    "    $('main').hidden = true;\n" \
    "    $('login-msg').textContent = msg || '';\n" \
    "  }\n" \
    "\n" \
    "  function schedule() { clearTimeout(timer); timer = setTimeout(poll, POLL_MS); }\n" \
    "\n" \
    "  function poll() {\n" \
    "    if (!token) { showLogin(''); return; }\n" \
    "    fetch('/api/status', { headers: { 'Authorization': 'Bearer ' + token }, cache: 'no-store' })\n" \
    "      .then(function (r) {\n" \
    "        if (r.status === 401) { token = null; store(null); showLogin('The edge refused that token.'); return null; }\n" \
    "        if (!r.ok) throw new Error('HTTP ' + r.status);\n" \
    "        return r.json();\n" \
    "      })\n" \
    "      .then(function (d) {\n" \
    "        if (!d) return;\n" \
    "        $('login').hidden = true;\n" \
    "        $('main').hidden = false;\n" \
    "        render(d);\n" \
    "        schedule();\n" \
    "      })\n" \
    "      .catch(function (err) {\n" \
    "        $('updated').textContent = 'update failed (' + (err && err.message ? err.message : 'network') + '); retrying';\n" \
    "        $('updated').className = 'bad';\n" \
    "        schedule();\n" \
    "      });\n" \
    "  }\n" \
    "\n" \
    "  $('login-form').addEventListener('submit', function (ev) {\n" \
    "    ev.preventDefault();\n" \
    "    var t = $('token-input').value.trim();\n" \
    "    $('token-input').value = '';\n" \
    "    if (!t) return;\n" \
    "    token = t;\n" \
    "    store(t);\n" \
    "    poll();\n" \
    "  });\n" \
    "  $('forget').addEventListener('click', function () {\n" \
    "    token = null; store(null); clearTimeout(timer); showLogin('Token forgotten.');\n" \
    "  });\n" \
    "\n" \
    "  token = readToken();\n" \
    "  poll();\n" \
    "})();\n"

#define BODY \
    "<header><h1>edge-sim</h1><span id=\"state\" class=\"mute\">connecting</span><span id=\"edge\" class=\"mute\"></span><span id=\"updated\" class=\"mute\"></span><button id=\"forget\" type=\"button\">Forget token</button></header>\n" \
    "<div id=\"login\" hidden><section><h2>Admin token</h2><p>Paste the edge's admin token (<code>edge-sim admin token</code> prints it). It is kept in this browser only.</p><p id=\"login-msg\" class=\"bad\"></p><form id=\"login-form\" autocomplete=\"off\"><input id=\"token-input\" type=\"password\" placeholder=\"admin token\" aria-label=\"admin token\"><button type=\"submit\">Show status</button></form></section></div>\n" \
    "<main id=\"main\" hidden>\n" \
    "<section class=\"wide\"><h2>Tunnels <span id=\"tunnel-count\" class=\"mute\"></span></h2><div id=\"tunnels\"></div></section>\n" \
    "<section><h2>Hostnames</h2><div id=\"hostnames\"></div></section>\n" \
    "<section><h2>Recent errors</h2><div id=\"errors\"></div></section>\n" \
    "</main>\n"
/* clang-format on */

static const char page[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<meta name=\"referrer\" content=\"no-referrer\">\n"
    "<title>edge-sim status</title>\n"
    "<style>" STYLE "</style>\n"
    "</head>\n"
    "<body>\n" BODY "<script>" SCRIPT "</script>\n"
    "</body>\n"
    "</html>\n";

static const char style[] = STYLE;
static const char script[] = SCRIPT;

const char *es_status_page_html(size_t *len)
{
    if (len)
        *len = sizeof(page) - 1;
    return page;
}

/* "'sha256-<base64>'" of s into out. Returns 0 or -1. */
static int hash_source(struct px_buf *out, const char *s)
{
    unsigned char h[WC_SHA256_DIGEST_SIZE];
    if (wc_Sha256Hash((const unsigned char *)s, (word32)strlen(s), h) != 0)
        return -1;
    char *b = px_b64_encode(h, sizeof(h), 0);
    int rc = b && px_buf_appendf(out, "'sha256-%s'", b) == 0 ? 0 : -1;
    free(b);
    return rc;
}

char *es_status_page_headers(void)
{
    struct px_buf b;
    px_buf_init(&b);
    char *s = NULL;
    if (px_buf_appendf(&b, "Content-Security-Policy: default-src 'none'; script-src ") < 0 ||
        hash_source(&b, script) < 0 || px_buf_appendf(&b, "; style-src ") < 0 ||
        hash_source(&b, style) < 0 ||
        px_buf_appendf(&b, "; connect-src 'self'; img-src 'self'; base-uri 'none'; "
                           "form-action 'none'; frame-ancestors 'none'\r\n"
                           "Referrer-Policy: no-referrer\r\n"
                           "X-Frame-Options: DENY\r\n") < 0)
        goto out;
    s = strndup((const char *)px_buf_head(&b), px_buf_len(&b));
out:
    px_buf_cleanup(&b);
    return s;
}
