"""The stand-in's object store: objects, one global revision, a bounded
history of writes, list snapshots for continue tokens, and watch streams.

Every write (create, replace, delete) bumps the revision by one and appends
one Event to the history; the history keeps the last N events. `compacted`
is the oldest revision a watch (or a continue token) may start from: every
event after it is still in the history.

Everything is guarded by one lock. Each Watch has a queue that writers
append to under that lock (never blocking on the stream); the stream's own
thread pops, filters and serialises outside it.
"""

import base64
import bisect
import collections
import datetime
import itertools
import json
import threading
import time
import uuid

import kdefaults
import kselector
from kdefaults import KINDS

# type: ADDED (create), MODIFIED (replace), DELETED, or SYNTH (an object of
# the initial state sent to a watch from resourceVersion 0: ADDED too).
Event = collections.namedtuple("Event", "rev kind key type obj prev")
# The end of a streaming list's initial state (sendInitialEvents): a
# BOOKMARK at rev annotated k8s.io/initial-events-end.
InitialEnd = collections.namedtuple("InitialEnd", "rev")

GARBAGE_LINE = '{"type":"ADDED","object":{garbage'
POLL = 0.2          # seconds between checks of an idle stream's socket
BATCH = 500         # queue items handed to a stream at once
SNAPSHOTS = 8       # list snapshots kept for continue tokens
TOO_LARGE_WAIT = 3  # seconds a request for a future revision waits


class Expired(Exception):
    """A revision older than the history holds (410)."""

    def __init__(self, rv, oldest):
        super().__init__("too old resource version: %d (%d)" % (rv, oldest))
        self.rv, self.oldest = rv, oldest


class TooLarge(Exception):
    """A revision the store has not reached (504, as the real server)."""


class BadRequest(Exception):
    pass


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def with_rv(obj, rev):
    """A copy of obj with metadata.resourceVersion = rev."""
    out = dict(obj)
    out["metadata"] = dict(obj["metadata"], resourceVersion=str(rev))
    return out


def list_item(obj):
    """obj as a list item: no kind or apiVersion, as the real server."""
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


def _body(obj):
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def encode_continue(kind, rv, key):
    raw = json.dumps({"v": "standin/v1", "kind": kind, "rv": rv, "start": list(key)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        d = json.loads(raw)
        return d["kind"], int(d["rv"]), tuple(d["start"])
    except (ValueError, KeyError, TypeError):
        raise BadRequest("continue key is not valid: %r" % token)


class Watch:
    """One open watch stream: what it watches, its queue, and the control
    flags a test sets on it (POST /streams)."""

    def __init__(self, store, kind, namespace, labels, fields, bookmarks, timeout):
        self.store = store
        self.kind, self.namespace = kind, namespace
        self.labels, self.fields = labels, fields
        self.bookmarks = bookmarks
        self.cond = threading.Condition(store.lock)
        self.queue = collections.deque()   # Event, InitialEnd or str (a raw line)
        started = time.monotonic()
        self.timeout_at = started + timeout if timeout else None
        self.last_bookmark = started
        self.end = self.cut = self.expire = self.cut_mid = False
        self.end_after = 0   # items still to send before an end or expire
        self.stall_until = 0.0
        self.fragment, self.fragment_delay = 0, 0.0

    def push(self, item):
        self.queue.append(item)
        self.cond.notify()

    def matches(self, key, obj):
        if self.namespace is not None and key[0] != self.namespace:
            return False
        return kselector.matches(self.labels, obj) and kselector.matches(self.fields, obj)

    def render(self, ev):
        """(type, object) to send for ev, or None when it concerns nothing
        this watch selects. An update that makes an object stop matching is
        DELETED (last matching state, the event's revision); one that makes
        it start matching is ADDED."""
        new = ev.obj is not None and self.matches(ev.key, ev.obj)
        if ev.type == "SYNTH":
            return ("ADDED", ev.obj) if new else None
        old = ev.prev is not None and self.matches(ev.key, ev.prev)
        if new and old:
            return "MODIFIED", ev.obj
        if new:
            return "ADDED", ev.obj
        if old:
            return "DELETED", with_rv(ev.prev, ev.rev)
        return None

    def next_step(self):
        """What the stream does next; waits at most POLL seconds. Called by
        the stream's thread. Returns (what, data): ("cut"|"end"|"expire"|
        "timeout", None), ("items", (items, cut_mid, fragment, delay)),
        ("bookmark", revision) or ("idle", None)."""
        with self.cond:
            now = time.monotonic()
            if self.cut:
                return "cut", None
            if self.timeout_at is not None and now >= self.timeout_at:
                return "timeout", None
            stalled = now < self.stall_until
            ending = self.end or self.expire
            if ending and (stalled or not self.end_after):
                return ("end" if self.end else "expire"), None
            if not stalled and self.queue:
                n = min(BATCH, len(self.queue), self.end_after if ending else BATCH)
                self.end_after -= n if ending else 0
                items = [self.queue.popleft() for _ in range(n)]
                cut_mid, self.cut_mid = self.cut_mid, False
                return "items", (items, cut_mid, self.fragment, self.fragment_delay)
            wake = now + POLL
            interval = self.store.bookmark_interval
            if self.bookmarks and interval > 0 and not stalled:
                due = self.last_bookmark + interval
                if now >= due:
                    self.last_bookmark = now
                    return "bookmark", self.store.revision
                wake = min(wake, due)
            if stalled:
                wake = min(wake, self.stall_until)
            if self.timeout_at is not None:
                wake = min(wake, self.timeout_at)
            if wake > now:
                self.cond.wait(wake - now)
            return "idle", None

    def rearm_cut_mid(self):
        with self.cond:
            self.cut_mid = True


class Store:
    def __init__(self, history=1000, bookmark_interval=0.0):
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.objects = {k: {} for k in KINDS}   # kind -> {(ns, name): obj}
        self.revision = 0
        self.compacted = 0
        self.max_history = max(0, history)
        self.history = collections.deque()
        self.watches = set()
        self.alloc = kdefaults.Allocator()
        self.snapshots = collections.OrderedDict()   # (kind, rv) -> (keys, objs)
        self.bookmark_interval = bookmark_interval
        self.frozen = None   # (revision, {kind: {key: obj}}): a lagging watch cache

    # --- writes ------------------------------------------------------------

    def put(self, obj):
        """Create or replace obj (checked and defaulted); returns it stored."""
        kind, ns, name = kdefaults.check_object(obj)
        key = (ns, name)
        owner = (kind, key)
        with self.lock:
            old = self.objects[kind].get(key)
            held = None
            if kind == "Service":
                held = kdefaults.service(obj, old, owner, self.alloc)
            elif kind == "EndpointSlice":
                kdefaults.endpointslice(obj)
            rev = self.revision + 1
            meta = obj["metadata"]
            meta["resourceVersion"] = str(rev)
            if old is not None:
                ometa = old["metadata"]
                meta["uid"] = ometa["uid"]
                meta["creationTimestamp"] = ometa["creationTimestamp"]
                meta["generation"] = ometa["generation"] + (_body(obj) != _body(old))
            else:
                meta["uid"] = str(uuid.uuid4())
                meta["creationTimestamp"] = now_rfc3339()
                meta["generation"] = 1
            if held is not None:
                self.alloc.hold(owner, *held)
            self.revision = rev
            self.objects[kind][key] = obj
            self._record(Event(rev, kind, key, "MODIFIED" if old is not None else "ADDED", obj, old))
            return obj

    def delete(self, kind, ns, name):
        """Delete; returns the last state with the new revision, or None."""
        key = ("" if not KINDS[kind][2] else ns, name)
        with self.lock:
            old = self.objects[kind].pop(key, None)
            if old is None:
                return None
            self.revision += 1
            self.alloc.release((kind, key))
            self._record(Event(self.revision, kind, key, "DELETED", None, old))
            return with_rv(old, self.revision)

    def _record(self, ev):
        self.history.append(ev)
        while len(self.history) > self.max_history:
            self.compacted = self.history.popleft().rev
        for w in self.watches:
            if w.kind == ev.kind:
                w.push(ev)
        self.changed.notify_all()

    def compact(self):
        """Drop the history: only the current revision can be watched from."""
        with self.lock:
            self._compact()

    def _compact(self):
        self.history.clear()
        self.compacted = self.revision
        self.snapshots.clear()

    # --- reads -------------------------------------------------------------

    def get(self, kind, ns, name):
        with self.lock:
            return self.objects[kind].get((ns or "", name))

    def _wait_for(self, rv):
        """Under the lock: wait a little for a revision not reached yet."""
        deadline = time.monotonic() + TOO_LARGE_WAIT
        while self.revision < rv:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TooLarge("Too large resource version: %d, current: %d" % (rv, self.revision))
            self.changed.wait(left)

    def _snapshot(self, kind, rv):
        """Under the lock: (keys, objs) of kind as of rv, sorted by key. rv
        must be >= compacted: the history then holds every later event."""
        ck = (kind, rv)
        if ck in self.snapshots:
            self.snapshots.move_to_end(ck)
            return self.snapshots[ck]
        state = dict(self.objects[kind])
        for ev in reversed(self.history):
            if ev.rev <= rv:
                break
            if ev.kind != kind:
                continue
            if ev.prev is None:
                state.pop(ev.key, None)
            else:
                state[ev.key] = ev.prev
        keys = sorted(state)
        snap = (keys, [state[k] for k in keys])
        self.snapshots[ck] = snap
        while len(self.snapshots) > SNAPSHOTS:
            self.snapshots.popitem(last=False)
        return snap

    def _list_view(self, kind, limit, token, min_rv):
        """Under the lock: (revision, start key, keys, objects) of a list."""
        if token:
            tkind, rv, start = decode_continue(token)
            if tkind != kind:
                raise BadRequest("continue key is not valid: it belongs to another resource")
            if rv < self.compacted:
                raise Expired(rv, self.compacted)
            if rv > self.revision:
                raise BadRequest("continue key is not valid: unknown revision")
        else:
            if min_rv:
                self._wait_for(min_rv)
            rv, start = self.revision, None
        if limit > 0 or token:
            keys, objs = self._snapshot(kind, rv)
        else:
            d = self.objects[kind]
            keys = sorted(d)
            objs = [d[k] for k in keys]
        return rv, start, keys, objs

    def freeze(self, on):
        """Lists that the watch cache answers (resourceVersion=0) get the
        state of now until unfrozen: all of it, in one page."""
        with self.lock:
            self.frozen = (self.revision, {k: dict(v) for k, v in self.objects.items()}) if on else None

    def list(self, kind, namespace, labels, fields, limit=0, token=None, min_rv=None, cached=False):
        """One page: (revision, items, continue token or "", remaining count
        or None). Items are the stored objects (not copies). cached: a
        resourceVersion=0 list, which a frozen cache answers."""
        with self.lock:
            if cached and self.frozen:
                rv, start, limit = self.frozen[0], None, 0
                d = self.frozen[1][kind]
                keys = sorted(d)
                objs = [d[k] for k in keys]
            else:
                rv, start, keys, objs = self._list_view(kind, limit, token, min_rv)
        lo, hi = 0, len(keys)
        if namespace is not None:
            lo = bisect.bisect_left(keys, (namespace, ""))
            hi = bisect.bisect_left(keys, (namespace + "\x00", ""))
        if start is not None:
            lo = max(lo, bisect.bisect_right(keys, start))
        items, more, last = [], False, lo
        for i in range(lo, hi):
            if kselector.matches(labels, objs[i]) and kselector.matches(fields, objs[i]):
                if limit > 0 and len(items) == limit:
                    more = True
                    break
                items.append(objs[i])
                last = i
        cont = encode_continue(kind, rv, keys[last]) if more else ""
        remaining = None
        if more and not labels and not fields:
            remaining = hi - last - 1
        return rv, items, cont, remaining

    # --- watches -----------------------------------------------------------

    def open_watch(self, w, rv, initial=False):
        """Register w and queue its first events: every current object
        (rv None) or every event after rv. Raises Expired or TooLarge.
        initial (sendInitialEvents, resourceVersionMatch=NotOlderThan rv):
        every current object once the store has reached rv, then the end
        of the initial state."""
        with self.lock:
            if rv is not None:
                self._wait_for(rv)
                if rv < self.compacted and not initial:
                    raise Expired(rv, self.compacted)
            if rv is None or initial:
                objs = self.objects[w.kind]
                for key in sorted(objs):
                    o = objs[key]
                    w.queue.append(Event(int(o["metadata"]["resourceVersion"]), w.kind, key, "SYNTH", o, None))
                if initial:
                    w.queue.append(InitialEnd(self.revision))
            else:
                newer = self.revision - rv
                for ev in itertools.islice(self.history, len(self.history) - newer, None):
                    if ev.kind == w.kind:
                        w.queue.append(ev)
            self.watches.add(w)

    def close_watch(self, w):
        with self.lock:
            self.watches.discard(w)

    def _streams(self, kind):
        return [w for w in self.watches if not kind or w.kind == kind]

    def stream_action(self, action, kind=None, seconds=0.0, size=0, delay=0.0):
        """Apply a POST /streams action; returns how many streams it hit."""
        with self.lock:
            ws = self._streams(kind)
            for w in ws:
                if action in ("end", "expire"):
                    # What was written before still goes out (unless stalled).
                    if not (w.end or w.expire):
                        w.end_after = len(w.queue)
                    setattr(w, action, True)
                elif action == "cut":
                    w.cut = True
                elif action == "cut_mid_event":
                    w.cut_mid = True
                elif action == "garbage":
                    w.queue.append(GARBAGE_LINE)
                elif action == "stall":
                    w.stall_until = time.monotonic() + seconds
                elif action == "fragment":
                    w.fragment, w.fragment_delay = size, delay
                else:
                    raise BadRequest("unknown action %r" % action)
                w.cond.notify()
            if action == "expire":
                self._compact()
            return len(ws)

    def raw(self, kind, line):
        with self.lock:
            ws = self._streams(kind)
            for w in ws:
                w.push(line)
            return len(ws)

    def set_bookmarks(self, interval):
        with self.lock:
            self.bookmark_interval = interval
            for w in self.watches:
                w.cond.notify()

    # --- state -------------------------------------------------------------

    def state(self):
        with self.lock:
            return {"revision": self.revision, "oldest": self.compacted,
                    "history": len(self.history), "watches": len(self.watches),
                    "bookmark_interval": self.bookmark_interval,
                    "counts": {k: len(v) for k, v in self.objects.items()}}

    def save(self, path):
        """Objects and revision (not the history) to path, atomically."""
        import os
        with self.lock:
            data = {"revision": self.revision,
                    "objects": [o for kind in KINDS for o in self.objects[kind].values()]}
            text = json.dumps(data, separators=(",", ":"))
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)

    def load(self, path):
        """The saved objects and revision; the history starts empty there."""
        with open(path) as f:
            data = json.load(f)
        with self.lock:
            for obj in data["objects"]:
                kind, ns, name = kdefaults.check_object(obj)
                key = (ns, name)
                self.objects[kind][key] = obj
                if kind == "Service":
                    spec = obj.get("spec") or {}
                    ips = [ip for ip in spec.get("clusterIPs") or [] if ip != "None"]
                    ports = [p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort")]
                    if spec.get("healthCheckNodePort"):
                        ports.append(spec["healthCheckNodePort"])
                    self.alloc.hold((kind, key), ips, ports)
            self.revision = self.compacted = int(data["revision"])
