#!/usr/bin/env python3
"""The measuring half of tests/bench/api_latency.sh (which starts and stops
the processes); stdlib only.

  api_latency.py objects N ENDPOINTS            {"items": [...]} on stdout
  api_latency.py stamp URL CACERT HEADERS OUT   curl -N a watch; every line
                                                that arrives: "t_ns rv type name"
  api_latency.py first PIN START_NS PID SECONDS  ms from START_NS to
                                                generation 1 (or a word)
  api_latency.py measure ARGS...                (--help) the changes
  api_latency.py summary OUT_JSON CONFIG_JSON SIZE_JSON...

Objects: scripts/gen-cluster.py's Services (svc-I in namespace bench,
ClusterIP 10.96.0.0/12 + I + 1, port 80) with one EndpointSlice each of
ENDPOINTS endpoints in 198.18.0.0/15, distinct over the whole state, and the
Node node-a. A change replaces the last endpoint of one slice by an address
no slice uses (198.18.0.0/15 + 1 + N * ENDPOINTS + I), the next one puts it
back: pairs over services spread evenly along the list. The burst (measure
--burst B) then changes the first B slices at once, each to a second spare
address (198.18.0.0/15 + 1 + N * ENDPOINTS + N + I).

All times are CLOCK_REALTIME (time.time_ns() here, clock_gettime in ferryd
for ferry_state's applied_unix_ns): one clock on one host.
"""
import argparse
import json
import math
import os
import random
import re
import runpy
import signal
import subprocess
import sys
import time
import http.client
import urllib.request

sys.dont_write_bytecode = True

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GENPY = os.path.join(REPO, "scripts", "gen-cluster.py")
NS = "bench"


def state_map_class():
    """StateMap from tests/lib.sh (FERRY_STATE_PY): one bpf(2) syscall a read."""
    src = open(os.path.join(REPO, "tests", "lib.sh")).read()
    m = re.search(r"^FERRY_STATE_PY='\n(.*?)^'$", src, re.S | re.M)
    if not m:
        sys.exit("api_latency.py: FERRY_STATE_PY not found in tests/lib.sh")
    g = {}
    exec(m.group(1), g)
    return g["StateMap"]


def gen():
    return runpy.run_path(GENPY)


def spare_ip(g, n, e, i):
    return str(g["POD_NET"][1 + n * e + i])


def cmd_objects(n, e):
    g = gen()
    if 1 + n * e + 2 * n >= g["POD_NET"].num_addresses:
        sys.exit("api_latency.py: %d x %d endpoints (and spares) do not fit 198.18.0.0/15" % (n, e))
    items = [g["service"](i) for i in range(n)]
    items += [g["slice_"](i, e, 0) for i in range(n)]
    items.append({"kind": "Node", "apiVersion": "v1",
                  "metadata": {"name": "node-a",
                               "labels": {"topology.kubernetes.io/zone": "zone-a"}},
                  "status": {"addresses": [{"type": "InternalIP", "address": "198.18.0.1"}]}})
    sys.stdout.write(json.dumps({"items": items}))


def cmd_stamp(url, cacert, headers, out):
    """curl -N on a watch; each line as it arrives: the wall clock right after
    the read returned, the object's resourceVersion, the event type, name."""
    proc = subprocess.Popen(["curl", "-sSN", "--cacert", cacert, "-H", "@" + headers,
                             "-H", "Accept: application/json", url],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def stop(*_):
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with open(out, "w") as f:
        while True:
            line = proc.stdout.readline()
            t = time.time_ns()
            if not line:
                break
            try:
                ev = json.loads(line)
                md = ev["object"]["metadata"]
                f.write("%d %s %s %s\n" % (t, md.get("resourceVersion", "-"), ev.get("type", "-"),
                                           md.get("name", "-")))
            except (ValueError, KeyError, TypeError):
                f.write("%d - garbage -\n" % t)
            f.flush()
    proc.wait()


def cmd_first(pin, start_ns, pid, seconds):
    StateMap = state_map_class()
    deadline = time.monotonic() + seconds
    st = None
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return "exited"
        if st is None and os.path.exists(pin):
            try:
                st = StateMap(pin)
            except OSError:
                st = None
        if st is not None and st.generation() >= 1:
            return "%.3f" % ((st.applied_ns() - start_ns) / 1e6)
        time.sleep(0.002)
    return "timeout"


# --- the changes ---------------------------------------------------------------

GEN_RE = re.compile(r"generation (\d+): (\d+) service ports changed, (\d+) removed, (\d+) map "
                    r"writes; event to maps ([0-9.]+) ms(?:; watch events read: (\d+), flushed "
                    r"([a-z ]+))?")


def ferryd_lines(log):
    """{generation: (changed, removed, writes, event_to_maps_ms, events, why)}
    from the log (events and why: None from a ferryd that does not say)."""
    out = {}
    for line in open(log, errors="replace"):
        m = GEN_RE.search(line)
        if m:
            out[int(m.group(1))] = (int(m.group(2)), int(m.group(3)), int(m.group(4)),
                                    float(m.group(5)),
                                    int(m.group(6)) if m.group(6) else None, m.group(7))
    return out


class Arrivals:
    """The stamp file, read as it grows: resourceVersion -> arrival t_ns."""

    def __init__(self, path):
        self.path, self.f, self.rv, self.part = path, None, {}, ""

    def poll(self):
        if self.f is None:
            if not os.path.exists(self.path):
                return
            self.f = open(self.path)
        data = self.f.read()
        if not data:
            return
        data = self.part + data
        lines = data.split("\n")
        self.part = lines.pop()
        for line in lines:
            p = line.split()
            if len(p) >= 2 and p[1] != "-":
                self.rv.setdefault(p[1], int(p[0]))


HISTOGRAMS = ("ferry_event_to_datapath_seconds", "ferry_sync_duration_seconds")


def metrics(port):
    """{histogram: {"count", "sum"}} from ferryd's /metrics."""
    if not port:
        return None
    try:
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
    except OSError as e:
        return {"error": str(e)}
    out = {h: {} for h in HISTOGRAMS}
    for line in text.splitlines():
        for h in HISTOGRAMS:
            for k in ("count", "sum"):
                if line.startswith("%s_%s " % (h, k)):
                    out[h][k] = float(line.split()[1])
    return out


def metrics_delta(before, after):
    """Count, sum (s) and mean (ms) of each histogram between two scrapes."""
    if not before or not after or "error" in before or "error" in after:
        return {"error": (before or {}).get("error") or (after or {}).get("error") or "no scrape"}
    out = {}
    for h in HISTOGRAMS:
        try:
            c = after[h]["count"] - before[h]["count"]
            s = after[h]["sum"] - before[h]["sum"]
        except KeyError:
            out[h] = None
            continue
        out[h] = {"count": c, "sum_s": round(s, 6), "mean_ms": round(s / c * 1e3, 4) if c else None}
    return out


def cmd_measure(a):
    StateMap = state_map_class()
    g = gen()
    st = StateMap(a.pin)
    rnd = random.Random(a.n * 7919 + a.samples)
    conn = http.client.HTTPConnection("127.0.0.1", a.cport, timeout=30)
    arr = Arrivals(a.arrivals)
    pairs = (a.samples + 1) // 2
    # Services spread evenly over the list; the warm-up uses svc-0, which
    # the spread never picks (N >= 2 pairs).
    svcs = [round((j + 0.5) * (a.n - 1) / pairs) for j in range(pairs)]
    plan = [(0, k % 2 == 0, True) for k in range(2 * a.warmup)]
    for k in range(a.samples):
        plan.append((svcs[k // 2], k % 2 == 0, False))
    rows, bad = [], 0
    load0 = os.getloadavg()
    out = open(a.csv, "w")
    out.write("index,service,kind,t_send_ns,t_return_ns,t_stream_ns,t_applied_ns,g0,g1,"
              "resource_version,write_ms,stream_ms,e2e_ms,after_stream_ms\n")
    k = 0
    scrape0 = None
    for i, change, warm in plan:
        if not warm and scrape0 is None:
            scrape0 = metrics(a.metrics_port)
            time.sleep(a.gap)
        obj = g["slice_"](i, a.endpoints, 0)
        if change:
            obj["endpoints"][-1]["addresses"] = [spare_ip(g, a.n, a.endpoints, i)]
        body = json.dumps(obj).encode()
        g0, app0 = st.generation(), st.applied_ns()
        t_send = time.time_ns()
        conn.request("PUT", "/objects", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        answer = resp.read()
        t_ret = time.time_ns()
        if resp.status != 200:
            sys.exit("api_latency.py: PUT /objects answered %d: %s" % (resp.status, answer[:300]))
        rv = json.loads(answer)["metadata"]["resourceVersion"]
        # Until the change is in the maps (a new publish), and the stamping
        # watch has seen it; both bounded.
        deadline = time.monotonic() + a.timeout
        while st.applied_ns() == app0:
            if time.monotonic() > deadline:
                sys.exit("api_latency.py: svc-%d change (rv %s): no publish within %g s (generation %d)"
                         % (i, rv, a.timeout, st.generation()))
            time.sleep(0.0005)
        t_app, g1 = st.applied_ns(), st.generation()
        deadline = time.monotonic() + a.timeout
        arr.poll()
        while rv not in arr.rv:
            if time.monotonic() > deadline:
                sys.exit("api_latency.py: the stamping watch did not see rv %s within %g s" % (rv, a.timeout))
            time.sleep(0.0005)
            arr.poll()
        t_str = arr.rv[rv]
        if not warm:
            k += 1
            if g1 != g0 + 1:
                bad += 1
            r = [k, i, "change" if change else "restore", t_send, t_ret, t_str, t_app, g0, g1, rv,
                 "%.3f" % ((t_ret - t_send) / 1e6), "%.3f" % ((t_str - t_send) / 1e6),
                 "%.3f" % ((t_app - t_send) / 1e6), "%.3f" % ((t_app - t_str) / 1e6)]
            rows.append(r)
            out.write(",".join(map(str, r)) + "\n")
        # Quiet between writes (ferryd idle again), with jitter so that the
        # writes do not fall in step with anything periodic.
        time.sleep(a.gap + rnd.random() * a.gap)
    out.close()
    conn.close()
    scrape1 = metrics(a.metrics_port)
    # ferryd logs a generation's line just after publishing it.
    last = rows[-1][8] if rows else 0
    deadline = time.monotonic() + a.timeout
    lines = ferryd_lines(a.log)
    while last not in lines and time.monotonic() < deadline:
        time.sleep(0.05)
        lines = ferryd_lines(a.log)
    ev = []
    with open(a.csv) as f:
        head = f.readline().rstrip("\n") + ",ferryd_event_to_maps_ms,map_writes\n"
        body = f.read().splitlines()
    with open(a.csv, "w") as f:
        f.write(head)
        for r, line in zip(rows, body):
            x = lines.get(r[8])
            f.write(line + ",%s,%s\n" % (("%.3f" % x[3], x[2]) if x else ("", "")))
            if x:
                ev.append(x)
    res = {
        "n": a.n, "endpoints": a.endpoints, "samples": len(rows), "warmup": 2 * a.warmup,
        "first_list_ms": a.first_ms, "load_objects_ms": a.load_ms,
        "not_one_generation": bad,
        "ferryd_lines": len(ev),
        "e2e_ms": pct([(r[6] - r[3]) / 1e6 for r in rows]),
        "event_to_maps_ms": pct([x[3] for x in ev]),
        "stream_ms": pct([(r[5] - r[3]) / 1e6 for r in rows]),
        "after_stream_ms": pct([(r[6] - r[5]) / 1e6 for r in rows]),
        "write_return_ms": pct([(r[4] - r[3]) / 1e6 for r in rows]),
        "map_writes": pct([x[2] for x in ev]),
        # Why ferryd flushed each change then (its log line; ferryd since
        # the flush at once says it): at once, after quiet, at the cap.
        "flushed": {w: sum(1 for x in ev if x[5] == w) for w in sorted(set(x[5] for x in ev if x[5]))},
        # ferryd's histograms over the measured changes (scraped before the
        # first and after the last): event to datapath, a cross-check of
        # its log lines, and the apply alone (sync engine to map writes).
        "histograms": metrics_delta(scrape0, scrape1),
        # The machine's load average (1, 5, 15 min) before and after.
        "loadavg": [[round(x, 2) for x in load0], [round(x, 2) for x in os.getloadavg()]],
    }
    if a.burst:
        res["burst"] = burst(a, g, st, arr)
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)
    print("N=%d: %d changes; end to end p50 %.2f p99 %.2f ms; ferryd event to maps p50 %.2f p99 "
          "%.2f ms; watch stream p50 %.2f ms" % (a.n, len(rows), res["e2e_ms"]["p50"],
                                                 res["e2e_ms"]["p99"], res["event_to_maps_ms"]["p50"],
                                                 res["event_to_maps_ms"]["p99"], res["stream_ms"]["p50"]))
    return 0 if rows and len(ev) == len(rows) else 1


def burst(a, g, st, arr):
    """a.burst slice changes (one per slice, from svc-0 on) written at once
    with one POST /objects: how many applies (generations) ferryd makes of
    them, and when. Done when ferryd's generation lines after the burst's
    start count every changed service port (each slice's Service has one);
    each change moves the slice's last endpoint to a second spare address,
    so it differs from whatever the single changes left."""
    n = min(a.burst, a.n)
    items = []
    for i in range(n):
        obj = g["slice_"](i, a.endpoints, 0)
        obj["endpoints"][-1]["addresses"] = [spare_ip(g, a.n, a.endpoints, a.n + i)]
        items.append(obj)
    body = json.dumps({"items": items}).encode()
    del items
    g0 = st.generation()
    conn = http.client.HTTPConnection("127.0.0.1", a.cport, timeout=300)
    t_send = time.time_ns()
    conn.request("POST", "/objects", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    answer = resp.read()
    t_ret = time.time_ns()
    conn.close()
    if resp.status != 200:
        sys.exit("api_latency.py: burst: POST /objects answered %d: %s" % (resp.status, answer[:300]))
    last_rv = int(json.loads(answer)["resourceVersion"])
    first_rv = last_rv - n + 1
    deadline = time.monotonic() + max(60, a.timeout)
    while True:
        lines = {k: v for k, v in ferryd_lines(a.log).items() if k > g0}
        if sum(v[0] for v in lines.values()) >= n:
            break
        if time.monotonic() > deadline:
            sys.exit("api_latency.py: burst: %d of %d service ports applied within the time"
                     % (sum(v[0] for v in lines.values()), n))
        time.sleep(0.05)
    t_app, g1 = st.applied_ns(), st.generation()
    deadline = time.monotonic() + a.timeout
    arr.poll()
    while str(last_rv) not in arr.rv and time.monotonic() < deadline:
        time.sleep(0.01)
        arr.poll()
    t_first, t_last = arr.rv.get(str(first_rv)), arr.rv.get(str(last_rv))
    per = sorted(v[0] for v in lines.values())
    res = {"events": n, "applies": g1 - g0, "generation_lines": len(lines),
           "ports_per_apply": pct(per),
           "post_ms": round((t_ret - t_send) / 1e6, 3),
           "send_to_last_apply_ms": round((t_app - t_send) / 1e6, 3),
           "first_arrival_ms": round((t_first - t_send) / 1e6, 3) if t_first else None,
           "last_arrival_ms": round((t_last - t_send) / 1e6, 3) if t_last else None,
           "last_arrival_to_last_apply_ms": round((t_app - t_last) / 1e6, 3) if t_last else None,
           "event_to_maps_ms": pct([v[3] for v in lines.values()]),
           "flushed": {w: sum(1 for v in lines.values() if v[5] == w)
                       for w in sorted(set(v[5] for v in lines.values() if v[5]))}}
    print("N=%d: burst of %d slice changes (one POST /objects, %.0f ms): %d applies, %s service "
          "ports each (p50), last event seen by the watch %s ms after the send, last apply %.1f ms "
          "after the send" % (a.n, n, res["post_ms"], res["applies"], res["ports_per_apply"]["p50"],
                              res["last_arrival_ms"], res["send_to_last_apply_ms"]))
    return res


def pct(xs):
    """p50, p90, p99 (nearest rank), max, mean, min and the count."""
    xs = sorted(xs)
    if not xs:
        return {"count": 0}
    def rank(p):
        return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]
    return {"count": len(xs), "min": round(xs[0], 4), "p50": round(rank(50), 4),
            "p90": round(rank(90), 4), "p99": round(rank(99), 4), "max": round(xs[-1], 4),
            "mean": round(sum(xs) / len(xs), 4)}


def cmd_summary(out, config, parts):
    res = json.load(open(config))
    res["sizes"] = []
    for p in parts:
        res["sizes"].append(json.load(open(p)))
    with open(out, "w") as f:
        json.dump(res, f, indent=1)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "objects":
        cmd_objects(int(args[0]), int(args[1]))
    elif cmd == "stamp":
        cmd_stamp(*args)
    elif cmd == "first":
        print(cmd_first(args[0], int(args[1]), int(args[2]), float(args[3])))
    elif cmd == "measure":
        ap = argparse.ArgumentParser(prog="api_latency.py measure")
        ap.add_argument("--pin", required=True, help="ferryd's pinned ferry_state")
        ap.add_argument("--cport", type=int, required=True, help="the stand-in's control port")
        ap.add_argument("--arrivals", required=True, help="the stamp file")
        ap.add_argument("--log", required=True, help="ferryd's log")
        ap.add_argument("--n", type=int, required=True)
        ap.add_argument("--endpoints", type=int, required=True)
        ap.add_argument("--samples", type=int, required=True)
        ap.add_argument("--warmup", type=int, default=2, help="pairs of changes not counted")
        ap.add_argument("--gap", type=float, default=0.02, help="seconds between writes (+ up to as much)")
        ap.add_argument("--timeout", type=float, default=10)
        ap.add_argument("--metrics-port", type=int, default=0)
        ap.add_argument("--first-ms", type=float)
        ap.add_argument("--load-ms", type=float)
        ap.add_argument("--burst", type=int, default=0,
                        help="then that many slice changes at once (at most N; 0 = none)")
        ap.add_argument("--csv", required=True)
        ap.add_argument("--json", required=True)
        sys.exit(cmd_measure(ap.parse_args(args)))
    elif cmd == "summary":
        cmd_summary(args[0], args[1], args[2:])
    else:
        sys.exit("api_latency.py: unknown command " + cmd)


if __name__ == "__main__":
    main()
