"""The stand-in's control API: plain HTTP on 127.0.0.1, no authentication,
JSON in and out. The calls are listed in standin.py's docstring.

Errors answer {"error": "..."}: 400 for a malformed call or object, 404 for
a missing object or unknown call, 422 for an object the real API server
would refuse (kdefaults.Invalid).
"""

import json
import socket
import socketserver
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kdefaults import KINDS, BadKind, Invalid
from store import BadRequest


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


class Injection:
    """One POST /inject: answers `code` to the next `count` API requests
    whose path holds `match` (and that are watches or lists, when `on`
    says so), or to all of them for `seconds`."""

    def __init__(self, code, count, seconds, retry_after, match, on=""):
        self.code, self.count, self.retry_after, self.match = code, count, retry_after, match
        self.on = on
        self.until = time.monotonic() + seconds if seconds else None

    def live(self, now):
        return (self.count is None or self.count > 0) and (self.until is None or now < self.until)

    def applies(self, path, is_watch):
        return self.match in path and self.on in ("", "watch" if is_watch else "list")


class ControlError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def kind_name(text):
    for k, (_, plural, _, _) in KINDS.items():
        if text in (k, k.lower(), plural):
            return k
    raise ControlError(404, "unknown kind %r" % text)


class ControlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, state):
        self.state = state
        super().__init__(addr, ControlHandler)

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", self.server_address[1]


class ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin-control"
    sys_version = ""

    def setup(self):
        # As on the API side (standin.py): headers and body go out in
        # separate writes, which Nagle and delayed ACKs would hold ~40 ms on
        # a kept-alive connection.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.control("GET")

    def do_PUT(self):
        self.control("PUT")

    def do_POST(self):
        self.control("POST")

    def do_DELETE(self):
        self.control("DELETE")

    def reply(self, code, obj):
        body = dumps(obj)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ControlError(400, "body is not JSON: %s" % e)

    def control(self, method):
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        try:
            body = self.body() if method in ("PUT", "POST") else {}
            self.reply(200, self.dispatch(method, parts, q, body))
        except ControlError as e:
            self.reply(e.code, {"error": str(e)})
        except Invalid as e:
            self.reply(422, {"error": str(e)})
        except (BadKind, BadRequest) as e:
            self.reply(400, {"error": str(e)})
        except Exception as e:  # a bug here must not kill the connection silently
            self.reply(500, {"error": "%s: %s" % (type(e).__name__, e), "trace": traceback.format_exc()})

    def dispatch(self, method, parts, q, body):
        st = self.server.state
        store = st.store
        route_ = (method, parts[0] if parts else "")
        if route_ == ("PUT", "objects") and len(parts) == 1:
            return store.put(body)
        if route_ == ("POST", "objects") and len(parts) == 1:
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise ControlError(400, 'body must be {"items": [...]}')
            for i, obj in enumerate(items):
                try:
                    store.put(obj)
                except (Invalid, BadKind) as e:
                    raise ControlError(422 if isinstance(e, Invalid) else 400,
                                       "items[%d]: %s (items before it were written)" % (i, e))
            return {"resourceVersion": str(store.state()["revision"]), "written": len(items)}
        if parts[:1] == ["objects"] and len(parts) == 4 and method in ("GET", "DELETE"):
            kind = kind_name(parts[1])
            ns = "" if parts[2] == "_" else parts[2]
            obj = store.get(kind, ns, parts[3]) if method == "GET" else store.delete(kind, ns, parts[3])
            if obj is None:
                raise ControlError(404, "%s %s/%s not found" % (kind, parts[2], parts[3]))
            return obj
        if route_ == ("POST", "raw"):
            return {"streams": store.raw(kind_name(body.get("kind", "Service")), str(body.get("line", "")))}
        if route_ == ("POST", "streams"):
            kind = kind_name(body["kind"]) if body.get("kind") else None
            n = store.stream_action(body.get("action"), kind, float(body.get("seconds") or 0),
                                    int(body.get("size") or 0), float(body.get("delay") or 0))
            return {"streams": n}
        if route_ == ("POST", "compact"):
            store.compact()
            return store.state()
        if route_ == ("POST", "inject"):
            return self.inject(body)
        if route_ == ("DELETE", "inject"):
            with st.lock:
                st.injections = []
            return {"queued": 0}
        if route_ == ("POST", "token"):
            if not isinstance(body.get("token"), str) or not body["token"]:
                raise ControlError(400, 'body must be {"token": "..."}')
            st.token = body["token"]
            return {"ok": True}
        if route_ == ("POST", "config"):
            return st.set_config(body)
        if route_ == ("POST", "bookmarks"):
            store.set_bookmarks(float(body.get("interval") or 0))
            return {"interval": store.bookmark_interval}
        if route_ == ("GET", "requests"):
            since = int(q.get("since") or 0)
            with st.lock:
                return [dict(r) for r in st.requests if r["id"] >= since]
        if route_ == ("DELETE", "requests"):
            with st.lock:
                st.requests = []
            return {"ok": True}
        if route_ == ("GET", "state"):
            return store.state()
        raise ControlError(404, "no such control call: %s %s" % (method, self.path))

    def inject(self, body):
        st = self.server.state
        code = body.get("code")
        if not isinstance(code, int) or not 400 <= code <= 599:
            raise ControlError(400, "code must be an HTTP error code (400-599)")
        seconds = float(body.get("seconds") or 0)
        count = None if seconds else int(body.get("count") or 1)
        retry_after = body.get("retry_after")
        if retry_after is not None and not isinstance(retry_after, str) and (
                not isinstance(retry_after, int) or retry_after < 0):
            raise ControlError(400, "retry_after must be a whole number of seconds or a text")
        on = str(body.get("on") or "")
        if on not in ("", "list", "watch"):
            raise ControlError(400, 'on must be "list", "watch" or ""')
        inj = Injection(code, count, seconds, retry_after, str(body.get("match") or ""), on)
        with st.lock:
            st.injections.append(inj)
            return {"queued": len(st.injections)}
