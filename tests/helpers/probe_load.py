#!/usr/bin/env python3
"""Probes of ferryd's health server under load (tests/kernel/probes.sh).

  probe_load.py probe COUNT SPACING URL...
      COUNT rounds over the URLs, SPACING seconds apart; each probe is a new
      connection and a GET (5 s timeout). Prints
      "n=N codes=200:N,... p50=S max=S".
  probe_load.py hold HOST PORT IDLE HALF SECONDS READY
      IDLE connections that send nothing and HALF that send half a request
      and stall; one the server closes is opened again, so that as many stay
      held (for at most SECONDS). Writes "IDLE HALF" to READY once all are
      connected; at the end prints how many were opened again.
  probe_load.py during STATE SRC_NEW SRC SECONDS URL...
      (needs StateMap: run after tests/lib.sh's FERRY_STATE_PY.) Renames
      SRC_NEW to SRC, then probes the URLs in turn, 20 ms apart, until ferryd
      publishes a new state (ferry_state's applied time changes; at most
      SECONDS). Prints "during=N window=S codes=... p50=S max=S g0=G g1=G":
      the probes that both started after the rename and ended before the
      publish, and the generations before and after.
  probe_load.py stall PID SECONDS READY
      Stops the thread PID (ferryd's main thread: its loop) with ptrace,
      leaving the process's other threads running; writes READY; resumes it
      on SIGTERM or after SECONDS.
"""
import ctypes
import os
import signal
import socket
import sys
import time
import urllib.parse

TIMEOUT = 5.0


def get(url):
    """(status code, seconds) of one GET on a new connection; 0 when none."""
    u = urllib.parse.urlsplit(url)
    t0 = time.monotonic()
    try:
        with socket.create_connection((u.hostname, u.port), timeout=TIMEOUT) as s:
            s.settimeout(max(0.01, TIMEOUT - (time.monotonic() - t0)))
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                       % (u.path, u.netloc)).encode())
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            parts = data.split(b" ", 2)
            code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    except OSError:
        code = 0
    return code, time.monotonic() - t0


def summary(results):
    """n=, codes=, p50=, max= of (code, seconds) pairs."""
    if not results:
        return "n=0 codes= p50=- max=-"
    times = sorted(t for _, t in results)
    codes = {}
    for c, _ in results:
        codes[c] = codes.get(c, 0) + 1
    return "n=%d codes=%s p50=%.4f max=%.4f" % (
        len(results), ",".join("%03d:%d" % (c, codes[c]) for c in sorted(codes)),
        times[(len(times) - 1) // 2], times[-1])


def probe(count, spacing, urls):
    results = []
    for _ in range(count):
        for url in urls:
            results.append(get(url))
        time.sleep(spacing)
    print(summary(results))


def hold(host, port, idle, half, seconds, ready):
    """Keeps IDLE + HALF connections open until SECONDS pass."""
    import selectors
    sel = selectors.DefaultSelector()
    reopened = 0

    def open_one(kind):
        s = socket.create_connection((host, port), timeout=TIMEOUT)
        if kind == "half":
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, kind)

    for _ in range(idle):
        open_one("idle")
    for _ in range(half):
        open_one("half")
    with open(ready + ".tmp", "w") as f:
        f.write("%d %d\n" % (idle, half))
    os.rename(ready + ".tmp", ready)
    deadline = time.monotonic() + seconds
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if data:
                continue
            sel.unregister(key.fileobj)
            key.fileobj.close()
            try:
                open_one(key.data)
                reopened += 1
            except OSError:
                pass
    print("reopened=%d" % reopened)


def during(state, src_new, src, seconds, urls):
    st = StateMap(state)  # noqa: F821 (prepended by the test)
    g0, t_pub = st.generation(), st.applied_ns()
    inside, results = [], []
    t_rename = time.monotonic()
    os.rename(src_new, src)
    deadline = t_rename + seconds
    i = 0
    while st.applied_ns() == t_pub and time.monotonic() < deadline:
        r = get(urls[i % len(urls)])
        i += 1
        results.append(r)
        if st.applied_ns() == t_pub:
            inside.append(r)
        time.sleep(0.02)
    window = time.monotonic() - t_rename
    # A few after the publish too: the answers stay right.
    for url in urls:
        results.append(get(url))
    print("during=%d window=%.3f %s g0=%d g1=%d inside_max=%s" % (
        len(inside), window, summary(results), g0, st.generation(),
        "%.4f" % max(t for _, t in inside) if inside else "-"))


def stall(pid, seconds, ready):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    libc.ptrace.restype = ctypes.c_long
    seize, interrupt, detach, wall = 0x4206, 0x4207, 17, 0x40000000
    if libc.ptrace(seize, pid, None, None) < 0 or libc.ptrace(interrupt, pid, None, None) < 0:
        sys.exit("ptrace: %s" % os.strerror(ctypes.get_errno()))
    os.waitpid(pid, wall)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % pid)
    os.rename(ready + ".tmp", ready)
    deadline = time.monotonic() + seconds
    while not stop and time.monotonic() < deadline:
        time.sleep(0.05)
    libc.ptrace(detach, pid, None, None)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "probe":
        probe(int(args[0]), float(args[1]), args[2:])
    elif cmd == "hold":
        hold(args[0], int(args[1]), int(args[2]), int(args[3]), float(args[4]), args[5])
    elif cmd == "during":
        during(args[0], args[1], args[2], float(args[3]), args[4:])
    elif cmd == "stall":
        stall(int(args[0]), float(args[1]), args[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
