#!/usr/bin/python3
"""failover_client.py: HTTP/2 load that fails over between edges as browsers do.

Several HTTP/2 connections (one thread each), each keeping up to --depth small
GETs in flight for --duration seconds, starting on the first edge of --edges:
  - on GOAWAY: no new requests on that connection; streams above its
    last-stream-id are sent again on a new connection; the others finish;
  - a stream reset with REFUSED_STREAM is sent again;
  - the connection closing before a response: its requests are sent again on
    a connection to the next edge in the list (likewise a refused connect).
A request counts as failed when it gets a status other than 200, another
stream error, or still has no answer after --max-attempts sends.
Prints one JSON object with the counts.

usage: failover_client.py --edges H:P[,H:P...] --host NAME --cafile CA
                          [--conns 4] [--depth 4] [--duration 10] [--path /]
"""
import argparse
import collections
import json
import socket
import ssl
import sys
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
from h2.connection import ConnectionState

lock = threading.Lock()
counts = collections.Counter()
statuses = collections.Counter()
connects = collections.Counter()
answered_by = collections.Counter()
failures = []


def count(key, n=1):
    with lock:
        counts[key] += n


class Conn:
    def __init__(self, args, edge):
        host, port = edge.rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=args.cafile)
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((host, int(port)), timeout=5)
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname=args.host)
        except Exception:
            raw.close()
            raise
        if self.sock.selected_alpn_protocol() != "h2":
            self.sock.close()
            raise OSError("no h2")
        self.sock.settimeout(15)
        self.edge = edge
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.h2.initiate_connection()
        self.flush()
        self.inflight = {}  # stream id -> request
        self.going_away = False

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def worker(args, edges, deadline):
    edge_idx = 0
    pending = collections.deque()  # requests to send again first
    next_id = 0
    conn = None
    down_since = None
    while True:
        more = time.time() < deadline
        if conn is None:
            if not pending and not more:
                return
            try:
                conn = Conn(args, edges[edge_idx])
                with lock:
                    connects[edges[edge_idx]] += 1
                down_since = None
            except OSError:
                count("connect_failed")
                edge_idx = (edge_idx + 1) % len(edges)
                down_since = down_since or time.time()
                if time.time() - down_since > 20:  # no edge at all: give up
                    for req in pending:
                        with lock:
                            failures.append({"req": req, "why": "no edge reachable"})
                        count("failed")
                    return
                time.sleep(0.05)
                continue
        while not conn.going_away and len(conn.inflight) < args.depth and (pending or more):
            if pending:
                req = pending.popleft()
            else:
                req = {"n": next_id, "attempts": 0}
                next_id += 1
                count("requests")
            req["attempts"] += 1
            sid = conn.h2.get_next_available_stream_id()
            conn.h2.send_headers(sid, [(":method", "GET"), (":scheme", "https"),
                                       (":authority", args.host), (":path", args.path)],
                                 end_stream=True)
            conn.inflight[sid] = req
        if not conn.inflight:
            conn.close()  # going away (or done): a new connection, same edge first
            conn = None
            continue
        try:
            conn.flush()
            data = conn.sock.recv(65536)
        except (OSError, ssl.SSLError):
            data = b""
        if not data:
            # Closed before the answers: send them again at the next edge.
            count("retried_after_close", len(conn.inflight))
            retry(args, pending, conn.inflight.values())
            conn.close()
            conn = None
            edge_idx = (edge_idx + 1) % len(edges)
            continue
        try:
            events = conn.h2.receive_data(data)
        except Exception as e:  # a protocol error: like a close
            count("protocol_errors")
            with lock:
                failures.append({"why": "h2: %s" % e})
            retry(args, pending, conn.inflight.values())
            conn.close()
            conn = None
            edge_idx = (edge_idx + 1) % len(edges)
            continue
        for ev in events:
            handle(args, conn, ev, pending)
        try:
            conn.flush()
        except OSError:
            pass


def retry(args, pending, reqs):
    for req in list(reqs):
        if req["attempts"] >= args.max_attempts:
            count("failed")
            with lock:
                failures.append({"req": req, "why": "no answer after %d attempts" % req["attempts"]})
        else:
            pending.append(req)


def handle(args, conn, ev, pending):
    if isinstance(ev, h2.events.ResponseReceived):
        req = conn.inflight.get(ev.stream_id)
        if req is not None:
            req["status"] = dict(ev.headers).get(b":status", b"?").decode()
    elif isinstance(ev, h2.events.DataReceived):
        conn.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
    elif isinstance(ev, h2.events.StreamEnded):
        req = conn.inflight.pop(ev.stream_id, None)
        if req is None:
            return
        st = req.get("status", "?")
        with lock:
            statuses[st] += 1
            answered_by[conn.edge] += 1
        if st == "200":
            count("ok")
        else:
            count("failed")
            with lock:
                failures.append({"req": req, "why": "status %s" % st})
    elif isinstance(ev, h2.events.StreamReset):
        req = conn.inflight.pop(ev.stream_id, None)
        if req is None:
            return
        if ev.error_code == h2.errors.ErrorCodes.REFUSED_STREAM and "status" not in req:
            count("retried_refused")
            retry(args, pending, [req])
        else:
            count("failed")
            with lock:
                failures.append({"req": req, "why": "reset %s" % ev.error_code})
    elif isinstance(ev, h2.events.ConnectionTerminated):
        count("goaways")
        conn.going_away = True
        above = [sid for sid in conn.inflight if sid > ev.last_stream_id]
        count("retried_after_goaway", len(above))
        retry(args, pending, [conn.inflight.pop(sid) for sid in above])
        if ev.error_code != 0:
            count("retried_after_close", len(conn.inflight))
            retry(args, pending, conn.inflight.values())
            conn.inflight.clear()
        else:
            # h2 refuses every frame after a GOAWAY; a browser keeps reading
            # the streams the GOAWAY covers, and so does this client.
            conn.h2.state_machine.state = ConnectionState.CLIENT_OPEN


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edges", required=True)
    ap.add_argument("--host", required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--path", default="/")
    ap.add_argument("--max-attempts", type=int, default=5)
    args = ap.parse_args()
    edges = args.edges.split(",")
    deadline = time.time() + args.duration
    threads = [threading.Thread(target=worker, args=(args, edges, deadline), daemon=True)
               for _ in range(args.conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.duration + 90)
    hung = sum(t.is_alive() for t in threads)
    out = dict(counts)
    out.update({"statuses": dict(statuses), "connects": dict(connects),
                "answered_by": dict(answered_by), "hung_workers": hung,
                "failures": failures[:10]})
    for k in ("requests", "ok", "failed", "goaways", "retried_after_goaway",
              "retried_after_close", "retried_refused", "connect_failed"):
        out.setdefault(k, 0)
    print(json.dumps(out, sort_keys=True))
    sys.exit(0)


if __name__ == "__main__":
    main()
