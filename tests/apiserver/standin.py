#!/usr/bin/env python3
"""A stand-in Kubernetes API server for ferry's tests (stdlib only).

It serves list and watch of Services, EndpointSlices and Nodes over HTTPS
as strictly as the real API server (see shared/spec/apiserver-protocol.md,
lines F1-F12), and a plain-HTTP control API on 127.0.0.1 through which a
test writes objects and injects failures.

  standin.py --cert F --key F [--client-ca F] [--token T | --token-file F]
             [--bind 127.0.0.1] [--port 0] [--control-port 0]
             [--history 1000] [--state-file F] [--ready-file F]
             [--bookmark-interval SECONDS] [--watch-list on|off|ignore] [--log F]

--port/--control-port 0 pick free ports; once both listen, --ready-file gets
{"port": P, "control_port": C, "pid": PID} (written atomically). --history
is how many writes the history keeps for watches and continue tokens.
--state-file: saved on SIGTERM/SIGINT (objects and revision, no history),
loaded at start when it exists; the history then starts at the loaded
revision. Without --token, --token-file and --client-ca every request is
let in; otherwise an API request needs `Authorization: Bearer <token>` or a
client certificate signed by --client-ca (401 otherwise). /version and
/healthz need no authentication, as on a real server.

API (HTTPS, HTTP/1.1 keep-alive): GET /api/v1/services,
/api/v1/namespaces/NS/services, /apis/discovery.k8s.io/v1/endpointslices
(and namespaced), /api/v1/nodes, and single objects below them (a watch on
one is a watch with its metadata.name); query labelSelector, fieldSelector,
limit, continue, resourceVersion, watch, allowWatchBookmarks,
timeoutSeconds, and sendInitialEvents with resourceVersionMatch=NotOlderThan
(a streaming list: ADDED for every object, then a BOOKMARK annotated
k8s.io/initial-events-end: "true", then the watch goes on) when
--watch-list is "on"; "off" (the default, a server with the WatchList
feature gate off) answers them 422, "ignore" (a server that does not know
them) serves an ordinary watch. Strict where the real server is: a non-numeric
resourceVersion is 400; continue with a resourceVersion other than "" or
"0" is 400; a resourceVersion the store has not reached waits 3 s, then 504
"Too large resource version" (Retry-After 1); an Accept header that does
not allow application/json is 406; any other method than GET is 405. Every
error has a Status body. List items carry no kind/apiVersion; watch event
objects do. Objects are defaulted as the real server does (kdefaults.py).

Control API (plain HTTP on 127.0.0.1:CONTROL_PORT, no authentication, JSON
in and out; errors answer {"error": "..."} with 400, 404 or 422):
  PUT    /objects             one object -> created or replaced (one write);
                              answers the stored object
  POST   /objects             {"items": [...]} (a v1 List works) -> one write
                              each, in order; answers {"resourceVersion":
                              "N" (the last), "written": n}; an invalid item
                              stops there (earlier ones stay written)
  GET    /objects/KIND/NS/NAME   the stored object (Nodes: NS is "_")
  DELETE /objects/KIND/NS/NAME   one write; answers the deleted object
  POST   /raw                 {"kind": K, "line": "..."}: that text and "\\n"
                              to every open watch stream of kind K
  POST   /streams             {"action": A, "kind": K (optional), ...} on every
                              open watch stream: end (clean end), cut,
                              cut_mid_event, garbage, stall ("seconds"),
                              fragment ("size", 0 = off; "delay": seconds
                              between pieces, default 0), expire (ERROR 410
                              event, end, and drop the history); answers
                              {"streams": n}. end and expire first send the
                              events written before them (not when stalled)
  POST   /compact             drop the history
  POST   /inject              {"code", "count" (1) | "seconds", "retry_after"
                              (seconds, or a text such as an HTTP-date),
                              "match" (substring of the path, "" = all),
                              "on" ("watch", "list", "" = both)}: queued;
                              the first live matching one answers each API
                              request; DELETE /inject clears them
  POST   /config              switches, answers them all:
                              "expired_watch": "event" (default: 200, then
                              an ERROR 410 event) or "status" (a plain HTTP
                              410 answer) to a watch from a resourceVersion
                              too old;
                              "cache": "frozen" (resourceVersion=0 lists get
                              the state of that moment, unpaged, as a
                              lagging watch cache, kubernetes#59848) or "live";
                              "watch_list": "on", "off" or "ignore" (as
                              --watch-list);
                              "rv0_unpaged": true (resourceVersion=0 lists
                              ignore limit: every item in one answer, as the
                              watch cache of the 1.36 server library) or false
  POST   /token               {"token": T}: only T is valid from now on
  POST   /bookmarks           {"interval": S}: bookmarks every S s, 0 = off
  GET    /requests[?since=ID] API requests so far: [{"id", "method", "path",
                              "query" (decoded), "status", "time", "kind",
                              "watch", "events", "items" (lists), "auth"
                              (token, cert, none, bad-token, anonymous),
                              "accept", "user_agent", "ended", "end_time"}];
                              DELETE clears the list
  GET    /state               {"revision", "oldest", "history", "watches",
                              "bookmark_interval", "counts": {KIND: n}}

"oldest" is the oldest revision a watch may start from. Watch streams end
with "ended" = timeout, end, expire, cut, cut_mid_event or client.
"""

import argparse
import hmac
import json
import os
import select
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kselector  # noqa: E402
from control import ControlServer, dumps  # noqa: E402
from kdefaults import KINDS  # noqa: E402
from store import BadRequest, Expired, InitialEnd, Store, TooLarge, Watch, list_item  # noqa: E402

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 406: "NotAcceptable", 410: "Expired", 422: "Invalid", 429: "TooManyRequests",
           500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
INJECTED_MESSAGES = {
    401: "Unauthorized",
    403: '{plural} is forbidden: User "system:serviceaccount:kube-system:ferry" cannot '
         '{verb} resource "{plural}" in API group "{group}" at the cluster scope',
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected by the test",
    503: "The server is currently unable to handle the request (injected by the test)",
}
PLURALS = {(KINDS[k][0], KINDS[k][1]): k for k in KINDS}
STREAM_WRITE_TIMEOUT = 30
TRUE = ("1", "t", "T", "true", "TRUE", "True")
FALSE = ("", "0", "f", "F", "false", "FALSE", "False")


def status_body(code, message, reason=None, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason or REASONS.get(code, "Unknown"), "code": code}
    if details:
        body["details"] = details
    return body


def route(path):
    """(kind, namespace or None, name or None) for an API path, or None."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        gv, rest = "v1", parts[2:]
    elif parts[:3] == ["apis", "discovery.k8s.io", "v1"]:
        gv, rest = "discovery.k8s.io/v1", parts[3:]
    else:
        return None
    ns = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        ns, rest = urllib.parse.unquote(rest[1]), rest[2:]
    if not 1 <= len(rest) <= 2 or (gv, rest[0]) not in PLURALS:
        return None
    kind = PLURALS[(gv, rest[0])]
    namespaced = KINDS[kind][2]
    name = urllib.parse.unquote(rest[1]) if len(rest) == 2 else None
    if ns is not None and not namespaced:
        return None
    if name is not None and namespaced and ns is None:
        return None
    return kind, ns, name


def accepts_json(accept):
    """Whether an Accept header lets the answer be application/json."""
    if not accept:
        return True
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("application/json", "application/*", "*/*"):
            return True
    return False


class ParamError(Exception):
    pass


def qbool(q, name):
    v = q.get(name, "")
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise ParamError("%s: Invalid value: %r: not a boolean" % (name, v))


def qint(q, name):
    v = q.get(name, "")
    if v == "":
        return None
    try:
        n = int(v)
    except ValueError:
        raise ParamError("%s: Invalid value: %r: not an integer" % (name, v))
    return n


def qrv(q):
    """resourceVersion: None for unset or "0", else a revision (400 when not
    a number: resourceVersions are opaque to clients, not to this server)."""
    v = q.get("resourceVersion", "")
    if v in ("", "0"):
        return None
    if not v.isdigit():
        raise ParamError('resourceVersion: Invalid value: "%s": strconv.ParseUint: parsing "%s": '
                         'invalid syntax' % (v, v))
    return int(v)


class State:
    """What the API and control handlers share, besides the store."""

    def __init__(self, store, token, client_ca, log):
        self.store = store
        self.token = token
        self.client_ca = client_ca
        self.lock = threading.Lock()
        self.injections = []
        self.requests = []
        self.next_id = 1
        self.logf = log
        self.expired_watch = "event"
        self.watch_list = "off"
        self.rv0_unpaged = False

    def set_config(self, body):
        """POST /config: the switches that make the stand-in behave as one
        real server or another; answers the whole configuration."""
        from control import ControlError
        for key, value in body.items():
            if key == "expired_watch" and value in ("event", "status"):
                self.expired_watch = value
            elif key == "cache" and value in ("live", "frozen"):
                self.store.freeze(value == "frozen")
            elif key == "watch_list" and value in ("on", "off", "ignore"):
                self.watch_list = value
            elif key == "rv0_unpaged" and isinstance(value, bool):
                self.rv0_unpaged = value
            else:
                raise ControlError(400, "unknown setting or value: %s=%r" % (key, value))
        return self.config()

    def config(self):
        return {"expired_watch": self.expired_watch,
                "cache": "frozen" if self.store.frozen else "live",
                "watch_list": self.watch_list, "rv0_unpaged": self.rv0_unpaged}

    def log(self, line):
        with self.lock:
            self.logf.write("%s %s\n" % (time.strftime("%H:%M:%S"), line))
            self.logf.flush()

    def take_injection(self, path, is_watch):
        with self.lock:
            now = time.monotonic()
            self.injections = [i for i in self.injections if i.live(now)]
            for inj in self.injections:
                if inj.applies(path, is_watch):
                    if inj.count is not None:
                        inj.count -= 1
                    return inj
        return None

    def new_request(self, rec):
        with self.lock:
            rec["id"] = self.next_id
            self.next_id += 1
            self.requests.append(rec)


class APIServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, addr, state, ctx):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.state, self.ctx = state, ctx
        super().__init__(addr, APIHandler)

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)  # no reverse lookup of the name
        self.server_name, self.server_port = "localhost", self.server_address[1]

    def get_request(self):
        sock, addr = self.socket.accept()
        # The handshake runs in the connection's own thread (setup()).
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        self.state.log("connection from %s: %s: %s" % (client_address[0], type(exc).__name__, exc))


class APIHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin-apiserver"
    sys_version = ""
    timeout = 300  # an idle keep-alive connection is closed after this

    def setup(self):
        self.request.settimeout(10)
        self.request.do_handshake()
        # Headers and body go out in separate writes: without this, Nagle
        # and delayed ACKs hold every answer ~40 ms on a kept-alive link.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def log_message(self, fmt, *args):
        self.server.state.log("%s: %s" % (self.client_address[0], fmt % args))

    def log_request(self, code="-", size="-"):
        pass  # api() logs one line per request itself

    def version_string(self):
        return self.server_version

    def do_GET(self):
        self.api("GET")

    def do_POST(self):
        self.api("POST")

    def do_PUT(self):
        self.api("PUT")

    def do_PATCH(self):
        self.api("PATCH")

    def do_DELETE(self):
        self.api("DELETE")

    # --- responses ---------------------------------------------------------

    def send_json(self, code, obj, headers=()):
        body = dumps(obj)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.rec["status"] = code

    def send_status(self, code, message, reason=None, details=None, retry_after=None):
        headers = []
        if retry_after is not None:
            headers.append(("Retry-After", str(retry_after)))
            if isinstance(retry_after, int):
                details = dict(details or {}, retryAfterSeconds=retry_after)
        self.send_json(code, status_body(code, message, reason, details), headers)

    # --- requests ----------------------------------------------------------

    def authenticate(self):
        """"cert", "token" or "anonymous" when let in; else None."""
        st = self.server.state
        if st.client_ca and self.connection.getpeercert():
            return "cert"
        auth = self.headers.get("Authorization", "")
        token = st.token
        if auth.startswith("Bearer ") and token is not None:
            if hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
                return "token"
        if token is None and not st.client_ca:
            return "anonymous"
        return None

    def api(self, method):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        self.rec = rec = {"method": method, "path": url.path, "query": q, "status": None,
                          "time": time.time(), "kind": None, "watch": False, "events": 0,
                          "auth": None, "accept": self.headers.get("Accept"),
                          "user_agent": self.headers.get("User-Agent")}
        st.new_request(rec)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        try:
            self.serve(method, url.path, q)
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError) as e:
            self.close_connection = True
            if rec["watch"]:
                rec.setdefault("ended", "client")
            st.log("%s %s: connection lost: %s" % (method, self.path, e))
        except Exception:  # a bug of the stand-in: say so, loudly
            st.log("%s %s: internal error:\n%s" % (method, self.path, traceback.format_exc()))
            self.close_connection = True
            if rec["status"] is None:
                self.send_status(500, "Internal error occurred: the stand-in failed, see its log")
        finally:
            if rec["watch"] and not self.close_connection:
                self.connection.settimeout(self.timeout)  # idle keep-alive again
            extra = ""
            if rec["watch"]:
                extra = " events=%d ended=%s %.2fs" % (rec["events"], rec.get("ended"),
                                                     time.time() - rec["time"])
            st.log("%s %s %s%s auth=%s" % (method, self.path, rec["status"], extra, rec["auth"]))

    def serve(self, method, path, q):
        st = self.server.state
        inj = st.take_injection(path, q.get("watch") in TRUE)
        r = route(path)
        if r:
            self.rec["kind"] = r[0]
        if inj:
            plural, group = (KINDS[r[0]][1], KINDS[r[0]][0].rpartition("/")[0]) if r else ("", "")
            msg = INJECTED_MESSAGES.get(inj.code, "injected by the test").format(
                plural=plural, group=group, verb="watch" if q.get("watch") in TRUE else "list")
            details = {"kind": plural} if r and inj.code == 403 else None
            return self.send_status(inj.code, msg, details=details, retry_after=inj.retry_after)
        if path in ("/version", "/healthz", "/livez", "/readyz"):
            self.rec["auth"] = "anonymous"
            if path == "/version":
                return self.send_json(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0-standin"})
            return self.send_json(200, "ok")
        self.rec["auth"] = self.authenticate()
        if self.rec["auth"] is None:
            self.rec["auth"] = "bad-token" if self.headers.get("Authorization") else "none"
            return self.send_status(401, "Unauthorized")
        if r is None:
            return self.send_status(404, "the server could not find the requested resource")
        if not accepts_json(self.headers.get("Accept")):
            return self.send_status(406, "only the following media types are accepted: "
                                    "application/json (this stand-in serves no other)")
        if method != "GET":
            return self.send_status(405, "the server does not allow this method on the requested resource")
        kind, ns, name = r
        try:
            labels = kselector.parse_labels(q.get("labelSelector"))
            fields = kselector.parse_fields(q.get("fieldSelector"))
            watch = qbool(q, "watch")
            if name is not None and not watch:
                return self.get_one(kind, ns, name)
            if name is not None:
                fields = fields + kselector.parse_fields("metadata.name=" + name)
            if watch:
                return self.watch(kind, ns, labels, fields, q)
            return self.list(kind, ns, labels, fields, q)
        except (kselector.SelectorError, ParamError, BadRequest) as e:
            return self.send_status(400, str(e))
        except TooLarge as e:
            return self.send_status(504, str(e), "Timeout",
                                    {"causes": [{"reason": "ResourceVersionTooLarge",
                                                 "message": "Too large resource version"}]}, 1)

    def get_one(self, kind, ns, name):
        obj = self.server.state.store.get(kind, ns, name)
        if obj is None:
            plural = KINDS[kind][1]
            return self.send_status(404, '%s "%s" not found' % (plural, name),
                                    details={"name": name, "kind": plural})
        self.send_json(200, obj)

    def list(self, kind, ns, labels, fields, q):
        store = self.server.state.store
        token = q.get("continue", "")
        limit = qint(q, "limit") or 0
        if q.get("resourceVersion") == "0" and self.server.state.rv0_unpaged:
            limit = 0  # the watch cache ignores limit (1.36 server library)
        if token and q.get("resourceVersion", "") not in ("", "0"):
            raise ParamError("specifying resource version is not allowed when using continue")
        # resourceVersion=0: served by the watch cache, which may lag
        # (POST /config {"cache": "frozen"}, kubernetes#59848).
        cached = q.get("resourceVersion") == "0" and not token
        try:
            rv, items, cont, remaining = store.list(kind, ns, labels, fields, limit, token, qrv(q),
                                                    cached)
        except Expired:
            return self.send_status(410, "The provided continue parameter is too old to display a "
                                    "consistent list result. You can start a new list without the "
                                    "continue parameter.", "Expired")
        api_version, _, _, list_kind = KINDS[kind]
        meta = {"resourceVersion": str(rv)}
        if cont:
            meta["continue"] = cont
        if remaining is not None:
            meta["remainingItemCount"] = remaining
        self.rec["items"] = len(items)
        self.send_json(200, {"kind": list_kind, "apiVersion": api_version, "metadata": meta,
                             "items": [list_item(o) for o in items]})

    # --- watch -------------------------------------------------------------

    def initial_events(self, q):
        """Whether the watch is a streaming list (sendInitialEvents); a
        message for a 422 when the request is refused, as the real server's
        validation does (ignored, as by a server that does not know the
        parameters, with watch_list "ignore")."""
        mode = self.server.state.watch_list
        sie, match = q.get("sendInitialEvents", ""), q.get("resourceVersionMatch", "")
        if mode == "ignore" or (not sie and not match):
            return False, None
        if not sie:
            return False, "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
        if mode == "off":
            return False, "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"
        initial = qbool(q, "sendInitialEvents")
        if match != "NotOlderThan":
            return False, "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
        if initial and not qbool(q, "allowWatchBookmarks"):
            return False, "allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true"
        return initial, None

    def watch(self, kind, ns, labels, fields, q):
        store = self.server.state.store
        rv = qrv(q)
        timeout = qint(q, "timeoutSeconds")
        if timeout is not None and timeout < 0:
            raise ParamError("timeoutSeconds: Invalid value: must not be negative")
        initial, refused = self.initial_events(q)
        if refused:
            return self.send_status(422, "ListOptions.meta.k8s.io \"\" is invalid: " + refused, "Invalid")
        w = Watch(store, kind, ns, labels, fields, qbool(q, "allowWatchBookmarks"), timeout)
        self.rec["watch"] = True
        self.stream_rv = rv or 0
        try:
            store.open_watch(w, rv, initial)
        except Expired as e:
            if self.server.state.expired_watch == "status":
                return self.send_status(410, "too old resource version: %d (%d)" % (e.rv, e.oldest),
                                        "Expired")
            self.start_stream()
            self.send_lines([self.expired_line(e.rv, e.oldest)])
            self.rec["events"] = 1
            return self.end_stream("expired")
        try:
            self.start_stream()
            self.stream(w)
        finally:
            store.close_watch(w)

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.rec["status"] = 200
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection.settimeout(STREAM_WRITE_TIMEOUT)

    def send_lines(self, lines):
        """Each line (bytes, with its newline) as its own HTTP chunk."""
        self.wfile.write(b"".join(b"%x\r\n%s\r\n" % (len(x), x) for x in lines))

    def send_fragmented(self, line, size, delay):
        for i in range(0, len(line), size):
            self.send_lines([line[i:i + size]])
            if delay:
                time.sleep(delay)

    def end_stream(self, how):
        self.wfile.write(b"0\r\n\r\n")
        self.rec["ended"] = how
        self.rec["end_time"] = time.time()

    def cut(self, how):
        """Drop the connection: no final chunk, no TLS close_notify."""
        self.close_connection = True
        self.rec["ended"] = how
        self.rec["end_time"] = time.time()
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def expired_line(self, rv, oldest):
        return dumps({"type": "ERROR", "object": status_body(
            410, "too old resource version: %d (%d)" % (rv, oldest), "Expired")}) + b"\n"

    def client_gone(self):
        """True when the client closed its side (EOF or TLS close_notify)."""
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        if not readable:
            return False
        try:
            sock.setblocking(False)
            try:
                data = sock.recv(4096)
            finally:
                sock.settimeout(STREAM_WRITE_TIMEOUT)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return False
        except OSError:
            return True
        return not data

    def stream(self, w):
        kind = w.kind
        api_version = KINDS[kind][0]
        while True:
            what, data = w.next_step()
            if what == "idle":
                if self.client_gone():
                    self.close_connection = True
                    self.rec["ended"] = "client"
                    return
            elif what == "items":
                if self.send_items(w, *data):
                    return
            elif what == "bookmark":
                obj = {"kind": kind, "apiVersion": api_version,
                       "metadata": {"resourceVersion": str(data)}}
                self.send_lines([dumps({"type": "BOOKMARK", "object": obj}) + b"\n"])
                self.rec["events"] += 1
                self.stream_rv = data
            elif what in ("timeout", "end"):
                return self.end_stream(what)
            elif what == "expire":
                oldest = self.server.state.store.state()["oldest"]
                self.send_lines([self.expired_line(self.stream_rv, oldest)])
                self.rec["events"] += 1
                return self.end_stream("expire")
            elif what == "cut":
                return self.cut("cut")

    def send_items(self, w, items, cut_mid, fragment, delay):
        """Send queued items; True when the stream was cut mid-event."""
        lines = []
        for item in items:
            if isinstance(item, str):
                lines.append(item.encode() + b"\n")
                continue
            if isinstance(item, InitialEnd):
                lines.append(self.initial_end_line(w.kind, item.rev))
                self.stream_rv = max(self.stream_rv, item.rev)
                self.rec["events"] += 1
                continue
            ev = w.render(item)
            self.stream_rv = max(self.stream_rv, item.rev)
            if ev is None:
                continue
            line = dumps({"type": ev[0], "object": ev[1]}) + b"\n"
            if cut_mid:
                self.flush_lines(lines, fragment, delay)
                self.send_lines([line[:len(line) // 2]])
                self.cut("cut_mid_event")
                return True
            lines.append(line)
            self.rec["events"] += 1
        if cut_mid:
            w.rearm_cut_mid()
        self.flush_lines(lines, fragment, delay)
        return False

    def initial_end_line(self, kind, rev):
        obj = {"kind": kind, "apiVersion": KINDS[kind][0],
               "metadata": {"resourceVersion": str(rev),
                            "annotations": {"k8s.io/initial-events-end": "true"}}}
        return dumps({"type": "BOOKMARK", "object": obj}) + b"\n"

    def flush_lines(self, lines, fragment, delay):
        if fragment > 0:
            for line in lines:
                self.send_fragmented(line, fragment, delay)
            return
        batch, size = [], 0
        for line in lines:
            batch.append(line)
            size += len(line)
            if size >= 65536:
                self.send_lines(batch)
                batch, size = [], 0
        if batch:
            self.send_lines(batch)


# --- main ------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description="stand-in Kubernetes API server for tests")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--token")
    g.add_argument("--token-file")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--control-port", type=int, default=0)
    p.add_argument("--history", type=int, default=1000)
    p.add_argument("--state-file")
    p.add_argument("--ready-file")
    p.add_argument("--bookmark-interval", type=float, default=0.0)
    p.add_argument("--watch-list", choices=("on", "off", "ignore"), default="off")
    p.add_argument("--log")
    return p.parse_args(argv)


def tls_context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["http/1.1"])
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(args.client_ca)
    return ctx


def write_ready(path, info):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, path)


def main(argv):
    args = parse_args(argv)
    token = args.token
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().strip()
    log = open(args.log, "a") if args.log else sys.stderr
    store = Store(args.history, args.bookmark_interval)
    if args.state_file and os.path.exists(args.state_file):
        store.load(args.state_file)
    state = State(store, token, bool(args.client_ca), log)
    state.watch_list = args.watch_list
    api = APIServer((args.bind, args.port), state, tls_context(args))
    ctl = ControlServer(("127.0.0.1", args.control_port), state)
    for srv in (api, ctl):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    info = {"port": api.server_address[1], "control_port": ctl.server_address[1], "pid": os.getpid()}
    state.log("listening: %s revision %d" % (json.dumps(info), store.revision))
    if args.ready_file:
        write_ready(args.ready_file, info)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1):
        pass
    if args.state_file:
        store.save(args.state_file)
    state.log("stopped at revision %d%s" % (store.revision, " (saved)" if args.state_file else ""))
    log.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
