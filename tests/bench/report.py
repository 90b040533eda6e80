#!/usr/bin/env python3
"""Summarise a benchmark run (tests/bench/run.sh) and write its report.

    tests/bench/report.py RESULTS [--no-docs] [--docs-dir DIR] [--api-latency PATH]

Reads from RESULTS (all written by run.sh):
  machine.txt, config.txt   "key: value" lines
  traffic.csv     n,round,method,conns,errors,seconds,rate,p50_us,p99_us
                  (short HTTP connections)
  traffic-byte.csv  (optional) the same for the 1-byte request/response
  connect.csv     n,round,program,median_ns,p99_ns,iters
  bpfstats.csv    n,round,workload,program,prog_name,run_cnt,run_time_ns,
                  ns_per_run,bytes_xlated,bytes_jited,load (workload tcp:
                  short TCP connections, udp: the connect() loop; a file
                  without round and workload, from before, is the udp loop;
                  a round's loads, the two programs' in turn, are pooled)
  control.csv     n,method,what,value
  change.csv      n,index,service,kind,sync_ms,source_to_maps_ms,publish_ms,map_writes
  memory.csv      n,when,rss_kb,peak_rss_kb,... (ferryctl status)
  memory-rss.csv  (optional) source,format,n,endpoints,input_bytes,peak_rss_kb,
                  steady_rss_kb,attached_ms,paging,reload_peak_rss_kb,
                  reload_rss_kb (tests/bench/memory.sh); a folder with only
                  it and parse.csv (run.sh --only memory) gets its tables
                  printed, nothing written
  parse.csv       (optional) format,n,endpoints,bytes,best_ms,mb_per_s,peak_rss_kb,
                  split_mb_per_s (memory.sh: build/bench/file_parse)
  checks.csv      n,method,check
  algo_bpfstats.csv, algo_memory.csv, algo_xdp.csv  (optional; run.sh --only
                  algorithms) the connect4 and sock_release programs' run
                  time per call under each --lb-algorithm, ferryd's RSS and
                  the Maglev tables' memory, xdp_ns --algorithm's new flows;
                  a folder with them and no traffic gets only their tables
                  (printed, summary-algorithms.csv, benchmarks.md)
  warnings.txt    (optional) one warning a line
  profile/*.txt   (optional) perf report excerpts
  api-latency.json  (optional) tests/bench/api_latency.sh's summary; with
                  --api-latency PATH (a results folder or the file) it is
                  taken from another run, e.g. one of api_latency.sh alone

Writes to RESULTS: summary-traffic.csv, summary-traffic-byte.csv,
summary-connect.csv, summary-connect-cost.csv, summary-control.csv,
summary-algorithms.csv (with the algo_*.csv), goals.csv
(medians over rounds, ratios taken within a round), summary-api-latency.csv (with api-latency.json), benchmarks.md and
benchmarks.png (gnuplot); and, unless --no-docs,
the same Markdown and PNG as DIR/benchmarks.md and DIR/benchmarks.png
(default DIR: docs/ of the repository).
"""
import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict

METHODS = ["a", "b", "c1", "c2", "d", "e", "r"]
LABEL = {
    "a": "(a) no LB (pod IPs)",
    "b": "(b) ferry",
    "c1": "(c) iptables-legacy",
    "c2": "(c) iptables-nft",
    "d": "(d) nftables",
    "e": "(e) minimal connect4",
    "r": "(r) no LB, random order",
}
SHORT = {"a": "no LB", "b": "ferry", "c1": "iptables-legacy", "c2": "iptables-nft",
         "d": "nftables", "e": "minimal", "r": "no LB, random order"}

GOAL_RATE_FLOOR = 0.97
GOAL_CONNECT = 1.10
COST_WORKLOADS = [("tcp", "short TCP connections"), ("udp1", "UDP, a new socket each"),
                  ("udp", "UDP connect() loop")]
GOAL_COLD = {10000: 300.0, 100000: 3000.0}     # ms
GOAL_CHANGE_MS = 1.0
GOAL_RSS_N, GOAL_RSS_KB = 10000, 30 * 1024
GOAL_PEAK_KB = 80 * 1024    # issue 11: one unpaged list of 10,000 x 10


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_text(path):
    """A table another script of the run wrote (nodeport.md, xdp.md), or ""."""
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        return f.read().rstrip("\n")


def read_kv(path):
    out = {}
    if os.path.exists(path):
        for line in open(path):
            if ":" in line:
                k, v = line.split(":", 1)
                out[k.strip()] = v.strip()
    return out


def fnum(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=0, unit=""):
    if x is None:
        return "–"
    if digits == 0:
        return "{:,.0f}{}".format(x, unit)
    return "{:,.{}f}{}".format(x, digits, unit)


def fmt_ms(x):
    if x is None:
        return "–"
    if x >= 1000:
        return "{:,.2f} s".format(x / 1000)
    if x >= 10:
        return "{:,.0f} ms".format(x)
    if x >= 1:
        return "{:.1f} ms".format(x)
    return "{:.3f} ms".format(x)


def fmt_mb(kb=None, b=None):
    if kb is None and b is None:
        return "–"
    mb = (kb * 1024 if kb is not None else b) / 1048576
    return "{:,.1f} MB".format(mb)


class Results:
    def __init__(self, d, api=None):
        self.dir = d
        self.load_api(api or d)
        self.machine = read_kv(os.path.join(d, "machine.txt"))
        self.config = read_kv(os.path.join(d, "config.txt"))
        self.traffic = read_csv(os.path.join(d, "traffic.csv"))
        self.traffic_byte = read_csv(os.path.join(d, "traffic-byte.csv"))
        self.connect = read_csv(os.path.join(d, "connect.csv"))
        self.bpfstats = read_csv(os.path.join(d, "bpfstats.csv"))
        self.control = read_csv(os.path.join(d, "control.csv"))
        self.change = read_csv(os.path.join(d, "change.csv"))
        self.memory = read_csv(os.path.join(d, "memory.csv"))
        self.rss = read_csv(os.path.join(d, "memory-rss.csv"))
        self.parse = read_csv(os.path.join(d, "parse.csv"))
        self.nodeport_md = read_text(os.path.join(d, "nodeport.md"))
        self.xdp_md = read_text(os.path.join(d, "xdp.md"))
        self.checks = read_csv(os.path.join(d, "checks.csv"))
        w = os.path.join(d, "warnings.txt")
        self.warnings = [l.rstrip("\n") for l in open(w)] if os.path.exists(w) else []
        self.sizes = sorted({int(r["n"]) for r in self.traffic + self.traffic_byte + self.control
                             + self.connect + self.bpfstats})
        self.summarise()

    # --- summaries -----------------------------------------------------------

    def traffic_summary(self, rows_in):
        """Per (n, method): medians over rounds; ratios to (a) per round."""
        by = defaultdict(list)
        rate = {}
        cpu = {}
        tck = fnum(self.machine.get("clk_tck")) or 100.0
        for r in rows_in:
            b, c = fnum(r.get("busy_ticks")), fnum(r.get("conns"))
            r["cpu_us"] = b * 1e6 / tck / c if b is not None and c else None
            a = fnum(r.get("all_ticks"))
            r["idle"] = 1 - b / a if b is not None and a else None
            cpu[(int(r["n"]), r["method"], int(r["round"]))] = r["cpu_us"]
        for r in rows_in:
            n, m, rd = int(r["n"]), r["method"], int(r["round"])
            by[(n, m)].append(r)
            rate[(n, m, rd)] = fnum(r["rate"])
        tr = {}
        for (n, m), rows in by.items():
            ratios, ratios_b, cratios = [], [], []
            for r in rows:
                rd = int(r["round"])
                ca = cpu.get((n, "a", rd))
                if ca and r["cpu_us"] is not None:
                    cratios.append(r["cpu_us"] / ca)
                a = rate.get((n, "a", rd))
                b = rate.get((n, "b", rd))
                x = fnum(r["rate"])
                if a and x is not None:
                    ratios.append(x / a)
                if b and x:
                    ratios_b.append(b / x)
            tr[(n, m)] = {
                "rounds": len(rows),
                "rate": med(fnum(r["rate"]) for r in rows),
                "p50": med(fnum(r["p50_us"]) for r in rows),
                "p99": med(fnum(r["p99_us"]) for r in rows),
                "errors": sum(int(fnum(r["errors"]) or 0) for r in rows),
                "conns": sum(int(fnum(r["conns"]) or 0) for r in rows),
                "ratio": med(ratios),
                "ratio_min": min(ratios) if ratios else None,
                "ratio_max": max(ratios) if ratios else None,
                "ferry_over": med(ratios_b),   # (b) / this method, per round
                "cpu_us": med(r["cpu_us"] for r in rows),
                "cpu_ratio": med(cratios),
                "idle": med(r["idle"] for r in rows),
            }
        return tr

    def summarise(self):
        self.tr = self.traffic_summary(self.traffic)
        self.tr1 = self.traffic_summary(self.traffic_byte)
        # connect(): per (n, program); ferry / minimal per round.
        cb = defaultdict(list)
        cval = {}
        for r in self.connect:
            n, p, rd = int(r["n"]), r["program"], int(r["round"])
            cb[(n, p)].append(fnum(r["median_ns"]))
            cval[(n, p, rd)] = fnum(r["median_ns"])
        self.cb = {}
        for n in self.sizes:
            rounds = sorted({rd for (nn, _, rd) in cval if nn == n})
            ratio = med(cval[(n, "ferry", rd)] / cval[(n, "minimal", rd)] for rd in rounds
                        if cval.get((n, "ferry", rd)) and cval.get((n, "minimal", rd)))
            over_f = med(cval[(n, "ferry", rd)] - cval[(n, "none", rd)] for rd in rounds
                         if cval.get((n, "ferry", rd)) and cval.get((n, "none", rd)))
            over_m = med(cval[(n, "minimal", rd)] - cval[(n, "none", rd)] for rd in rounds
                         if cval.get((n, "minimal", rd)) and cval.get((n, "none", rd)))
            if not rounds:
                continue
            self.cb[n] = {
                "none": med(cb[(n, "none")]), "minimal": med(cb[(n, "minimal")]),
                "ferry": med(cb[(n, "ferry")]), "ratio": ratio,
                "over_ferry": over_f, "over_minimal": over_m,
                "rounds": len(rounds),
            }
        self.cost = self.cost_summary()
        self.bs = {(n, p): c[p] for (n, wl), c in self.cost.items() if wl == "udp"
                   for p in ("minimal", "ferry")}
        self.bsize = {r["program"]: (fnum(r.get("bytes_xlated")), fnum(r.get("bytes_jited")))
                      for r in self.bpfstats}
        # control plane
        # Control plane: the median where a load was repeated (ferry's cold start).
        ctl = defaultdict(list)
        for r in self.control:
            ctl[(int(r["n"]), r["method"], r["what"])].append(fnum(r["value"]))
        self.ct = {k: med(v) for k, v in ctl.items()}
        self.ct_n = {k: len(v) for k, v in ctl.items()}
        ch = defaultdict(list)
        for r in self.change:
            ch[int(r["n"])].append(r)
        self.ch = {}
        for n, rows in ch.items():
            s = [fnum(r["sync_ms"]) for r in rows]
            self.ch[n] = {
                "count": len(rows),
                "sync": med(s), "sync_max": max(x for x in s if x is not None) if any(
                    x is not None for x in s) else None,
                "source": med(fnum(r["source_to_maps_ms"]) for r in rows),
                "publish": med(fnum(r["publish_ms"]) for r in rows),
                "writes": med(fnum(r["map_writes"]) for r in rows),
            }
        self.mem = {}
        for r in self.memory:
            self.mem[(int(r["n"]), r["when"])] = {k: fnum(v) for k, v in r.items()}

    def cost_summary(self):
        """bpf_stats per (n, workload): each program's ns per call (median of
        the rounds), calls per round (median), ferry / minimal per round; a
        round's loads pooled (their run time over their calls)."""
        pooled = defaultdict(lambda: [0.0, 0.0])
        for r in self.bpfstats:
            n, wl, p = int(r["n"]), r.get("workload") or "udp", r["program"]
            rd = int(r.get("round") or 1)
            c, t = fnum(r["run_cnt"]), fnum(r["run_time_ns"])
            if c and t is not None:
                pooled[(n, wl, p, rd)][0] += c
                pooled[(n, wl, p, rd)][1] += t
        ns, calls, val = defaultdict(list), defaultdict(list), {}
        for (n, wl, p, rd), (c, t) in pooled.items():
            ns[(n, wl, p)].append(t / c)
            calls[(n, wl, p)].append(c)
            val[(n, wl, p, rd)] = t / c
        out = {}
        for n, wl in sorted({(k[0], k[1]) for k in ns}):
            rounds = sorted({k[3] for k in val if k[:2] == (n, wl)})
            ratios = [val[(n, wl, "ferry", rd)] / val[(n, wl, "minimal", rd)] for rd in rounds
                      if val.get((n, wl, "ferry", rd)) and val.get((n, wl, "minimal", rd))]
            out[(n, wl)] = {
                "minimal": med(ns[(n, wl, "minimal")]), "ferry": med(ns[(n, wl, "ferry")]),
                "calls_minimal": med(calls[(n, wl, "minimal")]),
                "calls_ferry": med(calls[(n, wl, "ferry")]),
                "ratio": med(ratios),
                "ratio_min": min(ratios, default=None), "ratio_max": max(ratios, default=None),
                "rounds": len(rounds),
            }
        return out

    # --- API event to datapath (tests/bench/api_latency.sh) -----------------

    def load_api(self, path):
        """api-latency.json from PATH (a results folder or the file); its
        folder's warnings of api_latency.sh when that is another run."""
        f = os.path.join(path, "api-latency.json") if os.path.isdir(path) else path
        self.api, self.api_file, self.api_warnings = None, f, []
        if not os.path.exists(f):
            return
        with open(f) as fp:
            self.api = json.load(fp)
        wf = os.path.join(os.path.dirname(os.path.abspath(f)), "warnings.txt")
        if os.path.dirname(os.path.abspath(f)) != os.path.abspath(self.dir) and os.path.exists(wf):
            self.api_warnings = [l.rstrip("\n") for l in open(wf) if l.startswith("api latency:")]

    def api_sizes(self):
        return sorted((s for s in (self.api or {}).get("sizes", []) if s.get("samples")),
                      key=lambda s: s["n"])

    def write_api_summary(self):
        sizes = self.api_sizes()
        if not sizes:
            return
        with open(os.path.join(self.dir, "summary-api-latency.csv"), "w", newline="") as f:
            w = csv.writer(f)
            head = ["n", "changes", "first_list_ms"]
            for k in API_FIGURES:
                head += ["%s_%s" % (k[0], q) for q in ("p50", "p90", "p99", "max")]
            w.writerow(head)
            for s in sizes:
                row = [s["n"], s["samples"], r3(s.get("first_list_ms"))]
                for k in API_FIGURES:
                    row += [r3(s.get(k[0], {}).get(q)) for q in ("p50", "p90", "p99", "max")]
                w.writerow(row)

    def api_section(self, results_name):
        sizes = self.api_sizes()
        if not sizes:
            return []
        out = []
        w = out.append
        a = self.api
        repo = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
        src = os.path.dirname(os.path.abspath(self.api_file))
        src = os.path.relpath(src, repo) if src.startswith(repo + os.sep) else src
        e = sizes[0].get("endpoints", a.get("endpoints"))
        m = max(s["samples"] for s in sizes)
        warm = sizes[0].get("warmup", 0)
        w("## API event to datapath")
        w("")
        if src != results_name:
            w("From `{}`: a separate {} run of `tests/bench/api_latency.sh` on the same machine "
              "({}, ferry {}), not the run above.".format(src, a.get("mode", "?"), a.get("date", "?"),
                                                         a.get("ferry", "?")))
        else:
            w("From `tests/bench/api_latency.sh`, the last step of this run ({}).".format(
                a.get("date", "?")))
        w("")
        w("ferryd `--source k8s` lists and watches the stand-in API server "
          "(`tests/apiserver/standin.py`: Python, HTTPS with a bearer token, as the kernel tests "
          "run it) holding N Services, each with one EndpointSlice of {e} endpoints "
          "(ClusterIPs in 10.96.0.0/12, endpoints in 198.18.0.0/15; no traffic), and this Node. "
          "After ferryd's first list, {m} single changes go through the stand-in's control API, "
          "one at a time, each written once the previous one is in the maps: one EndpointSlice's "
          "endpoint set changed (its last endpoint replaced by an address no slice uses), then put "
          "back, on services spread along the list ({warm} more before them as a warm-up, not "
          "counted). Percentiles are nearest-rank over the changes: with {m} changes p99 is "
          "{r99}.".format(e=e, m=m, warm=warm, r99="the largest" if -(-99 * m // 100) >= m else
                          "the {}th smallest".format(-(-99 * m // 100))))
        w("")
        w("- **End to end**: `ferry_state`'s `applied_unix_ns` (ferryd's publish after the map "
          "writes) minus the wall clock just before the write was sent, both CLOCK_REALTIME on "
          "this host. **It includes the stand-in's own delay**: taking the write on its control "
          "API, storing it and streaming the watch event over TLS, all in Python threads; a real "
          "API server (and etcd) spends that time differently.")
        w("- **Stand-in → watch line**: when a plain `curl -N` watch of the same EndpointSlices, "
          "opened beside ferryd's, delivered the event line, stamped by a small Python reader of "
          "curl's output: the stand-in's share, plus curl's and the reader's wake-ups.")
        w("- **After the watch line**: end to end minus that, ferry's share as near as this "
          "setup can isolate it (ferryd's receive and TLS, JSON decode, its flush window, the "
          "map writes, the publish). The curl stamp comes a little late itself, so this slightly "
          "understates ferry's share; a single change can even come out negative.")
        w("- **ferryd event to maps**: ferryd's own figure, from its log line for the change's "
          "generation (the same value goes into the `ferry_event_to_datapath_seconds` "
          "histogram): from the decoded object entering ferryd's store to the map writes "
          "returning. A change is applied as soon as the API connections have nothing more to "
          "read; one that comes within 5 ms of the last apply is part of a burst and waits for "
          "1 ms of quiet on the connections, at most 5 ms after the first change, so that a "
          "burst of events becomes few applies.")
        w("- **Write returned**: when the answer to the control-API write had been read. The "
          "stand-in answers the write and streams the event from different threads, so the "
          "watch line can come before or after it.")
        w("")
        w("| N | first list: ferryd start → generation 1 | changes | map writes per change "
          "| apply alone, mean | histogram: changes, mean | load average before → after |")
        w("|---:|---:|---:|---:|---:|---:|---:|")
        for s in sizes:
            h = s.get("histograms") or {}
            ev = h.get("ferry_event_to_datapath_seconds") or {}
            sy = h.get("ferry_sync_duration_seconds") or {}
            la = s.get("loadavg") or [[None], [None]]
            w("| {:,} | {} | {} | {} | {} | {} | {} |".format(
                s["n"], fmt_ms(s.get("first_list_ms")), s["samples"],
                fmt(s.get("map_writes", {}).get("p50")),
                "%.3f ms" % sy["mean_ms"] if sy.get("mean_ms") is not None else "–",
                "%d, %.2f ms" % (ev["count"], ev["mean_ms"]) if ev.get("mean_ms") is not None else "–",
                "%.2f → %.2f" % (la[0][0], la[1][0]) if la[0][0] is not None else "–"))
        w("")
        w("Latency of one change, in ms:")
        w("")
        w("| N | figure | p50 | p90 | p99 | max |")
        w("|---:|---|---:|---:|---:|---:|")
        for s in sizes:
            for key, label in API_FIGURES:
                v = s.get(key) or {}
                if not v.get("count"):
                    continue
                w("| {:,} | {} | {} | {} | {} | {} |".format(
                    s["n"], label, *("%.2f" % v[q] for q in ("p50", "p90", "p99", "max"))))
        w("")
        w("The first list covers ferryd's start (BPF load and verification, maps), the paged "
          "lists of Services and EndpointSlices (500 a page) from the stand-in, the first apply "
          "of all N service ports and the attach.")
        w("")
        p = lambda s, k, q="p50": (s.get(k) or {}).get(q)
        s0, s1 = sizes[0], sizes[-1]
        txt = ("At N={:,} the end-to-end p50 is {:.2f} ms: the curl watch has the event after "
               "{:.2f} ms, and {:.2f} ms pass after it. ferryd's own event to maps is {:.2f} ms at "
               "p50, of which the flush window is 1 ms; the apply itself is the small remainder "
               "(*apply alone* above).".format(
                   s0["n"], p(s0, "e2e_ms"), p(s0, "stream_ms"), p(s0, "after_stream_ms"),
                   p(s0, "event_to_maps_ms")))
        if s1 is not s0:
            g0, g1 = p(s0, "event_to_maps_ms"), p(s1, "event_to_maps_ms")
            txt += (" At N={:,}: end to end {:.2f} ms, event to maps {:.2f} ms (p50). ".format(
                s1["n"], p(s1, "e2e_ms"), g1))
            if g1 <= 1.2 * g0:
                txt += ("ferry's figure does not grow with N: each event recomputes and rewrites "
                        "only the Service it touches.")
            else:
                txt += ("ferry's figure grows with N, from {:.2f} to {:.2f} ms.".format(g0, g1))
        txt += " From p50 to p99, " + "; ".join(
            "at N={:,} end to end adds {:.2f} ms, the watch line {:.2f}, the part after it {:.2f}, "
            "ferryd's event to maps {:.2f}".format(
                s["n"], *(p(s, k, "p99") - p(s, k) for k in
                          ("e2e_ms", "stream_ms", "after_stream_ms", "event_to_maps_ms")))
            for s in sizes) + (" (on {} cores that also run the stand-in, curl and the "
                               "driver).".format(a.get("cores", "?")))
        w(txt)
        w("")
        bad = [s for s in sizes if s.get("not_one_generation")]
        if bad:
            w("Changes that did not publish exactly one generation: " + "; ".join(
                "N={:,}: {}".format(s["n"], s["not_one_generation"]) for s in bad) + ".")
            w("")
        if self.api_warnings:
            w("Warnings of that run: " + "; ".join(x.split(": ", 1)[-1] for x in self.api_warnings))
            w("")
        return out

    # --- goals ---------------------------------------------------------------

    def goals(self):
        """[(goal, n, measured text, target text, met: True/False/None)]"""
        g = []
        for n in self.sizes:
            t = self.tr.get((n, "b"))
            if t and t["ratio"] is not None:
                g.append(("ferry's connection rate / no-LB floor", n, "%.3f" % t["ratio"],
                          ">= %.2f" % GOAL_RATE_FLOOR, t["ratio"] >= GOAL_RATE_FLOOR))
        for n in self.sizes:
            t = self.tr1.get((n, "b"))
            if t and t["ratio"] is not None:
                g.append(("ferry's 1-byte request/response rate / no-LB floor", n,
                          "%.3f" % t["ratio"], ">= %.2f" % GOAL_RATE_FLOOR,
                          t["ratio"] >= GOAL_RATE_FLOOR))
        for m in ("c1", "c2"):
            pts = [(n, self.tr[(n, m)]["ferry_over"]) for n in self.sizes
                   if (n, m) in self.tr and self.tr[(n, m)]["ferry_over"] is not None]
            for n, x in pts:
                g.append(("ferry ahead of %s (rate ferry / %s)" % (SHORT[m], SHORT[m]), n,
                          "%.2fx" % x, "> 1", x > 1))
            if len(pts) >= 2:
                grows = pts[-1][1] > pts[0][1]
                g.append(("gap to %s grows with N (N=%d -> N=%d)" % (SHORT[m], pts[0][0], pts[-1][0]),
                          None, "%.2fx -> %.2fx" % (pts[0][1], pts[-1][1]), "grows", grows))
        for n in self.sizes:
            t = self.tr.get((n, "r"))
            if t and t["ferry_over"] is not None:
                g.append(("rate ferry / no LB in random order (r) (reported)", n,
                          "%.3f" % t["ferry_over"], "–", None))
        pts = [(n, self.tr[(n, "d")]["ferry_over"]) for n in self.sizes
               if (n, "d") in self.tr and self.tr[(n, "d")]["ferry_over"] is not None]
        for n, x in pts:
            g.append(("rate ferry / nftables (reported)", n, "%.2fx" % x, "–", None))
        for n in self.sizes:
            c = self.cb.get(n)
            if c and c["ratio"] is not None:
                g.append(("ferry's median connect() / minimal program's", n, "%.3f" % c["ratio"],
                          "<= %.2f" % GOAL_CONNECT, c["ratio"] <= GOAL_CONNECT))
        for wl, what in COST_WORKLOADS:
            for n in self.sizes:
                c = self.cost.get((n, wl))
                if c and c["ratio"] is not None:
                    g.append(("ferry_connect4 run time per call / min_connect4's (bpf_stats), " + what,
                              n, "%.2f" % c["ratio"], "<= %.2f" % GOAL_CONNECT,
                              c["ratio"] <= GOAL_CONNECT))
        for n, lim in sorted(GOAL_COLD.items()):
            v = self.ct.get((n, "ferry", "cold_start_to_published_ms"))
            if v is not None:
                g.append(("full programming from cold (ferryd start -> published generation)", n,
                          fmt_ms(v), "< " + fmt_ms(lim), v < lim))
        for n in self.sizes:
            c = self.ch.get(n)
            if c and c["sync_max"] is not None:
                g.append(("one change, sync engine -> map writes returned (max of %d)" % c["count"],
                          n, fmt_ms(c["sync_max"]), "< 1 ms", c["sync_max"] < GOAL_CHANGE_MS))
        m = self.mem.get((GOAL_RSS_N, "loaded"))
        if m and m.get("rss_kb") is not None:
            g.append(("ferryd RSS after the full load", GOAL_RSS_N, fmt_mb(kb=m["rss_kb"]), "< 30 MB",
                      m["rss_kb"] < GOAL_RSS_KB))
            peak = max(x["peak_rss_kb"] for (n, w), x in self.mem.items()
                       if n == GOAL_RSS_N and x.get("peak_rss_kb") is not None)
            # Issue 13: the peak under twice the steady state.
            g.append(("ferryd peak RSS (VmHWM, includes the cold load)", GOAL_RSS_N, fmt_mb(kb=peak),
                      "< 2 x " + fmt_mb(kb=m["rss_kb"]), peak < 2 * m["rss_kb"]))
        for r in self.rss:
            if int(r["n"]) != GOAL_RSS_N or int(r["endpoints"]) != 10:
                continue
            peak = max(x for x in (fnum(r["peak_rss_kb"]), fnum(r.get("reload_peak_rss_kb")))
                       if x is not None)
            steady = fnum(r["steady_rss_kb"])
            what = "VmHWM, load and a reload" if r["source"] == "file" else "VmHWM"
            g.append(("ferryd peak RSS (%s), %s" % (what, rss_label(r)), GOAL_RSS_N,
                      fmt_mb(kb=peak), "< 80 MB", peak < GOAL_PEAK_KB))
            g.append(("ferryd steady RSS, " + rss_label(r), GOAL_RSS_N, fmt_mb(kb=steady),
                      "< 30 MB", steady < GOAL_RSS_KB))
            g.append(("ferryd peak RSS / steady RSS, " + rss_label(r), GOAL_RSS_N,
                      "%.2f" % (peak / steady), "< 2", peak < 2 * steady))
        return g

    def rss_table(self):
        """tests/bench/memory.sh's rows as Markdown tables."""
        out = ["| source | N x endpoints | input | peak RSS | steady RSS | attached after "
               "| peak over a reload | steady after it |",
               "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in self.rss:
            size, p2, s2 = (fnum(r.get(k)) for k in ("input_bytes", "reload_peak_rss_kb",
                                                      "reload_rss_kb"))
            out.append("| {} | {:,} x {} | {} | {} | {} | {} | {} | {} |".format(
                rss_label(r), int(r["n"]), r["endpoints"], fmt_mb(b=size) if size else "–",
                fmt_mb(kb=fnum(r["peak_rss_kb"])), fmt_mb(kb=fnum(r["steady_rss_kb"])),
                fmt_ms(fnum(r["attached_ms"])), fmt_mb(kb=p2) if p2 else "–",
                fmt_mb(kb=s2) if s2 else "–"))
        if self.parse:
            out += ["", "| file | N x endpoints | size | read (parse and decode), best of 3 "
                    "| throughput | peak RSS of the read alone | json_items split alone |",
                    "|---|---:|---:|---:|---:|---:|---:|"]
            for r in self.parse:
                split = r.get("split_mb_per_s") or "-"
                out.append("| {} | {:,} x {} | {} | {} | {} MB/s | {} | {} |".format(
                    r["format"].upper(), int(r["n"]), r["endpoints"], fmt_mb(b=fnum(r["bytes"])),
                    fmt_ms(fnum(r["best_ms"])), r["mb_per_s"], fmt_mb(kb=fnum(r["peak_rss_kb"])),
                    "–" if split == "-" else split + " MB/s"))
        return out

    # --- outputs -------------------------------------------------------------

    def write_traffic_summary(self, path, tr):
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["n", "method", "rounds", "conns_total", "errors_total", "rate_median",
                        "p50_us_median", "p99_us_median", "ratio_to_a_median", "ratio_to_a_min",
                        "ratio_to_a_max", "ferry_rate_over_this_median", "cpu_us_per_conn_median",
                        "cpu_per_conn_ratio_to_a_median", "idle_share_median"])
            for n in self.sizes:
                for m in METHODS:
                    t = tr.get((n, m))
                    if t:
                        w.writerow([n, m, t["rounds"], t["conns"], t["errors"], r2(t["rate"]),
                                    r2(t["p50"]), r2(t["p99"]), r4(t["ratio"]), r4(t["ratio_min"]),
                                    r4(t["ratio_max"]), r4(t["ferry_over"]), r2(t["cpu_us"]),
                                    r4(t["cpu_ratio"]), r4(t["idle"])])

    def write_summaries(self):
        d = self.dir
        self.write_traffic_summary(os.path.join(d, "summary-traffic.csv"), self.tr)
        if self.tr1:
            self.write_traffic_summary(os.path.join(d, "summary-traffic-byte.csv"), self.tr1)
        if self.cost:
            with open(os.path.join(d, "summary-connect-cost.csv"), "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["n", "workload", "rounds", "minimal_ns_per_call", "ferry_ns_per_call",
                            "ferry_over_minimal", "minimal_calls_per_run", "ferry_calls_per_run"])
                for (n, wl), c in sorted(self.cost.items()):
                    w.writerow([n, wl, c["rounds"], r2(c["minimal"]), r2(c["ferry"]), r4(c["ratio"]),
                                r0(c["calls_minimal"]), r0(c["calls_ferry"])])
        with open(os.path.join(d, "summary-connect.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["n", "rounds", "none_median_ns", "minimal_median_ns", "ferry_median_ns",
                        "ferry_over_minimal", "ferry_minus_none_ns", "minimal_minus_none_ns",
                        "bpf_ns_per_run_minimal", "bpf_ns_per_run_ferry"])
            for n in self.sizes:
                c = self.cb.get(n)
                if c:
                    w.writerow([n, c["rounds"], r2(c["none"]), r2(c["minimal"]), r2(c["ferry"]),
                                r4(c["ratio"]), r2(c["over_ferry"]), r2(c["over_minimal"]),
                                r2(self.bs.get((n, "minimal"))), r2(self.bs.get((n, "ferry")))])
        with open(os.path.join(d, "summary-control.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["n", "ferry_cold_ms", "ferry_source_to_maps_ms", "ferry_sync_ms",
                        "iptables_legacy_restore_ms", "iptables_nft_restore_ms", "nft_f_ms",
                        "minimal_fill_ms", "change_sync_median_ms", "change_sync_max_ms",
                        "change_publish_median_ms", "ferryd_rss_kb", "ferryd_peak_rss_kb",
                        "maps_bytes"] + [k for _, k in STATUS_COLS])
            for n in self.sizes:
                c = self.ch.get(n, {})
                m = self.mem.get((n, "loaded"), {})
                ma = self.mem.get((n, "after_changes"), {})
                peak = max([x for x in (m.get("peak_rss_kb"), ma.get("peak_rss_kb")) if x is not None],
                           default=None)
                w.writerow([n] + [r2(self.ct.get((n, mm, k))) for mm, k in CONTROL_COLS] +
                           [r3(c.get("sync")), r3(c.get("sync_max")), r2(c.get("publish")),
                            r0(m.get("rss_kb")), r0(peak), r0(m.get("maps_total_bytes"))] +
                           [r2(self.ct.get((n, mm, k))) for mm, k in STATUS_COLS])
        self.write_api_summary()
        with open(os.path.join(d, "goals.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["goal", "n", "measured", "target", "met"])
            for goal, n, meas, tgt, met in self.goals():
                w.writerow([goal, n if n is not None else "", meas, tgt,
                            "" if met is None else ("yes" if met else "no")])

    def plot(self, png):
        dat = os.path.join(self.dir, "plot.dat")
        present = [m for m in METHODS if any((n, m) in self.tr for n in self.sizes)]
        with open(dat, "w") as f:
            f.write("# n " + " ".join("rate_" + m for m in present) + " " +
                    " ".join("ratio_" + m for m in present) + "\n")
            for n in self.sizes:
                row = [str(n)]
                for m in present:
                    t = self.tr.get((n, m))
                    row.append("%.1f" % t["rate"] if t and t["rate"] is not None else "?")
                for m in present:
                    t = self.tr.get((n, m))
                    row.append("%.4f" % t["ratio"] if t and t["ratio"] is not None else "?")
                f.write(" ".join(row) + "\n")
        colors = {"a": "#000000", "b": "#d62728", "c1": "#1f77b4", "c2": "#17becf",
                  "d": "#2ca02c", "e": "#ff7f0e", "r": "#7f7f7f"}
        k = len(present)
        p1 = ", ".join("'%s' using 1:%d with linespoints lw 2 pt 7 lc rgb '%s' title '%s'"
                       % (dat, 2 + i, colors[m], LABEL[m]) for i, m in enumerate(present))
        p2 = ", ".join("'%s' using 1:%d with linespoints lw 2 pt 7 lc rgb '%s' title '%s'"
                       % (dat, 2 + k + i, colors[m], LABEL[m]) for i, m in enumerate(present))
        script = """
set terminal pngcairo size 1400,560 font 'DejaVu Sans,10'
set output '{png}'
set datafile missing '?'
set multiplot layout 1,2 title 'ferry benchmark: short TCP connections ({conc}), {cpu}, {cores} cores'
set logscale x
set grid
set key bottom left
set xlabel 'services (x 10 endpoints)'
set ylabel 'connections/s (median of rounds)'
set yrange [0:*]
set format x '%.0s%c'
plot {p1}
set ylabel 'rate / no-LB floor (median of per-round ratios)'
set yrange [0:1.15]
set arrow from graph 0, first {floor} to graph 1, first {floor} nohead dt 2 lc rgb '#888888'
set label 'goal {floor}' at graph 0.86, first {floor} offset 0,-0.9 tc rgb '#888888'
plot {p2}
unset multiplot
""".format(png=png, p1=p1, p2=p2, floor=GOAL_RATE_FLOOR,
           conc=self.config.get("loadgen", "").split(" -n")[0],
           cpu=self.machine.get("cpu", "?"), cores=self.machine.get("cores", "?"))
        gp = os.path.join(self.dir, "plot.gp")
        with open(gp, "w") as f:
            f.write(script)
        r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
        if r.returncode != 0:
            print("report.py: gnuplot failed: " + r.stderr.strip(), file=sys.stderr)
            return False
        return True

    def method_table(self, w, present, cell, tr=None):
        """One row per N, one column per method; cell(m, t) formats a run of
        tr (default: the HTTP runs)."""
        tr = self.tr if tr is None else tr
        w("| N | " + " | ".join(LABEL[m] for m in present) + " |")
        w("|---:|" + "---:|" * len(present))
        for n in self.sizes:
            if not any((n, m) in tr for m in present):
                continue
            cells = []
            for m in present:
                t = tr.get((n, m))
                cells.append(cell(m, t) if t else "")
            w("| {:,} | ".format(n) + " | ".join(cells) + " |")

    def interleave_text(self):
        """How the rate runs took turns (run.sh --slice)."""
        ms = self.config.get("slice_ms", "0")
        if ms == "0":
            return "The turns: one load generator run per method (a b c1 c2 d e r a b ...)."
        return ("The turns: one load generator moves itself from method to method (into "
                "its cgroup and namespace) every %s ms, in a new random order each turn, "
                "each method getting the same time a round; at a slice's end it waits for "
                "its connections to finish, so a slice holds only its method's. The "
                "machine's slow spells, which last seconds, fall on every method alike." % ms)

    def markdown(self, results_name):
        out = []
        w = out.append
        mode = self.config.get("mode", "?")
        only = self.config.get("only", "all")
        if only != "all":
            mode += " `--only %s`" % only
        w("# ferry benchmarks")
        w("")
        w("Generated by `tests/bench/report.py` from `%s` (a %s run of `tests/bench/run.sh`; "
          "`make bench` reruns it, `make bench-quick` is the short version and writes only "
          "under `results/`). Medians of %s rounds (the connection rates: %s); ratios are "
          "taken within a round, then the median over rounds."
          % (results_name, mode, self.config.get("rounds", "?"),
             self.config.get("rate_rounds", self.config.get("rounds", "?"))))
        w("")
        w("## Machine")
        w("")
        w("| | |")
        w("|---|---|")
        for k in ("date", "kernel", "cpu", "cores", "hypervisor", "memory", "os", "clang", "gcc",
                  "libbpf", "bpftool", "iptables", "nftables", "python", "ferry"):
            if self.machine.get(k):
                w("| %s | %s |" % (k, self.machine[k].replace("|", "/")))
        w("")
        w("## What runs")
        w("")
        w(METHOD_TEXT.format(
            sizes=", ".join("{:,}".format(int(x)) for x in self.config.get("sizes", "").split()),
            fsizes=", ".join("{:,}".format(int(x)) for x in self.config.get("ferry_sizes", "").split())
            or "none in this run",
            rounds=self.config.get("rounds", "?"), loadgen=self.config.get("loadgen", "?"),
            rate_rounds=self.config.get("rate_rounds", self.config.get("rounds", "?")),
            cb=self.config.get("connect_bench", "?"), pairs=self.config.get("change_pairs", "?"),
            byte=self.config.get("loadgen_byte", "?"), cost=self.config.get("connect_cost", "?"),
            interleave=self.interleave_text()))
        w("")
        # goals
        w("## Goals")
        w("")
        w("| goal | N | measured | target | met |")
        w("|---|---:|---:|---:|:---:|")
        for goal, n, meas, tgt, met in self.goals():
            w("| %s | %s | %s | %s | %s |" % (goal, "{:,}".format(n) if n else "", meas, tgt,
                                             "–" if met is None else ("yes" if met else "**no**")))
        w("")
        # traffic
        w("## Connection rate")
        w("")
        w("![connections/s and ratio to the no-LB floor against N](benchmarks.png)")
        w("")
        present = [m for m in METHODS if any((n, m) in self.tr for n in self.sizes)]
        w("Connections/s, median of the rounds, and in parentheses the median of the per-round "
          "ratios to (a), the no-LB floor:")
        w("")
        def rate_cell(m, t):
            c = fmt(t["rate"])
            if m != "a" and t["ratio"] is not None:
                c += " (%.3f)" % t["ratio"]
            if t["errors"]:
                c += " ⚠ %d errors" % t["errors"]
            return c
        self.method_table(w, present, rate_cell)
        w("")
        w("Latency from connect() to the server's EOF, p50 / p99 in µs (median of the rounds):")
        w("")
        self.method_table(w, present, lambda m, t: "%s / %s" % (fmt(t["p50"]), fmt(t["p99"])))
        w("")
        if any(t.get("cpu_us") for t in self.tr.values()):
            w("CPU time of the whole machine per connection (busy ticks of all CPUs in "
              "`/proc/stat` over the run, divided by the connections; µs, median of the rounds), "
              "in parentheses the per-round ratio to (a), and the machine's idle share during "
              "the run. It counts everything the machine did, the load generator, the servers, "
              "the kernel on both ends (and any other tenant of a shared machine):")
            w("")
            def cpu_cell(m, t):
                if t["cpu_us"] is None:
                    return ""
                c = "%.1f" % t["cpu_us"]
                if m != "a" and t["cpu_ratio"] is not None:
                    c += " (%.3f)" % t["cpu_ratio"]
                if t["idle"] is not None:
                    c += ", idle %.0f%%" % (100 * t["idle"])
                return c
            self.method_table(w, present, cpu_cell)
            w("")
        rng = [(n, self.tr[(n, "b")]) for n in self.sizes if (n, "b") in self.tr]
        if rng:
            w("Spread of ferry's per-round ratio to (a), min – max: " + "; ".join(
                "N={:,}: {:.3f} – {:.3f}".format(n, t["ratio_min"], t["ratio_max"])
                for n, t in rng if t["ratio_min"] is not None) + ".")
            w("")
        out.extend(self.byte_section(rate_cell))
        out.extend(self.connect_section())
        out.extend(self.cost_section())
        out.extend(self.control_section())
        out.extend(self.api_section(results_name))
        out.extend(self.memory_section())
        for title, text, table in (("NodePort from outside (north-south)", NODEPORT_TEXT,
                                     self.nodeport_md),
                                    ("Per-packet path: ns per packet through XDP", XDP_TEXT,
                                     self.xdp_md)):
            if table:
                w("## " + title)
                w("")
                w(text)
                w("")
                w(table)
                w("")
        algo = Algorithms(self.dir)
        if algo.present():
            out.extend(algo.markdown())
        prof = self.profile_section()
        if prof:
            w("## Where the time goes (profiles)")
            w("")
            out.extend(prof)
        # analysis
        notes = self.analysis()
        if notes:
            w("## Where ferry misses, and why")
            w("")
            out.extend(notes)
        obs = self.observations()
        if obs:
            w("## Other observations")
            w("")
            out.extend(obs)
        bad = [r for r in self.checks if r.get("check") != "ok"]
        if bad or self.warnings:
            w("## Warnings from this run")
            w("")
            for r in bad:
                w("- N={}: method {} failed its functional check".format(r["n"], r["method"]))
            for l in self.warnings:
                w("- " + l)
            w("")
        return "\n".join(out) + "\n"

    def connect_section(self):
        out = []
        w = out.append
        if not self.cb:
            return out
        w("## connect() overhead")
        w("")
        w("UDP connect() in a tight loop (`connect_bench`, median per connect over batches of "
          "64, then the median of the rounds). *bpf run time* is the connect4 program's own "
          "`run_time_ns / run_cnt` in the same loop with run-time stats on (the "
          "median of the rounds of the next section).")
        w("")
        w("| N | no program | minimal | ferry | ferry / minimal | ferry − none | minimal − none "
          "| bpf run time minimal | bpf run time ferry |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in self.sizes:
            c = self.cb.get(n)
            if not c:
                continue
            w("| {:,} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                n, fmt(c["none"], 0, " ns"), fmt(c["minimal"], 0, " ns"), fmt(c["ferry"], 0, " ns"),
                "%.3f" % c["ratio"] if c["ratio"] else "–", fmt(c["over_ferry"], 0, " ns"),
                fmt(c["over_minimal"], 0, " ns"), fmt(self.bs.get((n, "minimal")), 1, " ns"),
                fmt(self.bs.get((n, "ferry")), 1, " ns")))
        w("")
        sz = ["%s: %d bytes translated, %d JITed" % (p, self.bsize[p][0], self.bsize[p][1])
              for p in ("minimal", "ferry") if p in self.bsize and self.bsize[p][0]]
        if sz:
            w("The connect4 programs' sizes (bpftool): " + "; ".join(sz) + ".")
            w("")
        return out

    def byte_section(self, rate_cell):
        """The 1-byte request/response rates, and both workloads' ratios to
        (a) side by side."""
        out = []
        w = out.append
        if not self.tr1:
            return out
        present = [m for m in METHODS if any((n, m) in self.tr1 for n in self.sizes)]
        w("### 1-byte request/response")
        w("")
        w("`build/bench/loadgen {}`: like the HTTP runs (a new socket per connection, the "
          "server closes first), but each connection writes one byte and reads the one-byte "
          "answer (`httpd` sends a 1-byte request its byte back): with less work in the server "
          "and the payload, what a load balancer adds at connect() weighs more. Connections/s, "
          "median of the rounds, and the median of the per-round ratios to (a):".format(
              self.config.get("loadgen_byte", "-1")))
        w("")
        self.method_table(w, present, rate_cell, self.tr1)
        w("")
        w("Ratio to the direct floor (a), median of the per-round ratios, HTTP and 1-byte "
          "(goal for ferry: at least %.2f at every N):" % GOAL_RATE_FLOOR)
        w("")
        cols = [m for m in ("b", "e", "r") if m in present]
        w("| N | " + " | ".join("HTTP: " + SHORT[m] for m in cols) + " | " +
          " | ".join("1-byte: " + SHORT[m] for m in cols) + " |")
        w("|---:|" + "---:|" * (2 * len(cols)))
        for n in self.sizes:
            if not any((n, m) in self.tr1 for m in cols):
                continue
            cell = lambda tr, m: r3f(tr[(n, m)]["ratio"]) if (n, m) in tr else "–"
            w("| {:,} | ".format(n) + " | ".join(cell(self.tr, m) for m in cols) + " | " +
              " | ".join(cell(self.tr1, m) for m in cols) + " |")
        w("")
        rng = [(n, self.tr1[(n, "b")]) for n in self.sizes if (n, "b") in self.tr1]
        if rng:
            w("Spread of ferry's per-round 1-byte ratio to (a), min – max: " + "; ".join(
                "N={:,}: {:.3f} – {:.3f}".format(n, t["ratio_min"], t["ratio_max"])
                for n, t in rng if t["ratio_min"] is not None) + ".")
            w("")
        return out

    def cost_section(self):
        """The connect4 programs' run time per call (bpf_stats), short TCP
        connections beside the UDP connect() loop."""
        out = []
        w = out.append
        if not self.cost:
            return out
        w("## connect4 program run time per call (bpf_stats)")
        w("")
        w("With run-time stats on (a `BPF_ENABLE_STATS` fd held for the part), each connect4 "
          "program's own `run_time_ns / run_cnt`, read by program id from the cgroups this run attached them to "
          "(`ferry_connect4` on (b)'s, `min_connect4` on (e)'s), over the run of one load: "
          "**short TCP connections** (`loadgen -1`, a new socket per connection, as clients "
          "connect), **UDP with a new socket each** (`connect_bench -s`, as a resolver sends "
          "a query) and the **UDP loop** (`connect_bench`, connect() again and again on one "
          "socket). Each round runs the three loads, each several times under the minimal "
          "program and under ferry in turn ({}), and pools a program's runs (their run time "
          "over their calls), so that a drift in the machine's speed falls on both; figures "
          "are the median of the rounds, the ratio the median of the "
          "per-round ratios (goal: at most {:.2f}). The run time includes what the program's "
          "helpers do (a socket-storage allocation among them) and the stats' own clock reads "
          "(both programs alike); it does not include what the socket's close costs later "
          "(freeing that storage through RCU).".format(
              self.config.get("connect_cost", "?"), GOAL_CONNECT))
        w("")
        w("| N | " + " | ".join("{}: minimal | ferry | ferry / minimal".format(what)
                                for _, what in COST_WORKLOADS) + " | calls per TCP round |")
        w("|---:|" + "---:|" * (3 * len(COST_WORKLOADS) + 1))
        for n in self.sizes:
            cells = [self.cost.get((n, wl), {}) for wl, _ in COST_WORKLOADS]
            if not any(cells):
                continue
            w("| {:,} | ".format(n) + " | ".join(
                "{} | {} | {}".format(fmt(c.get("minimal"), 1, " ns"), fmt(c.get("ferry"), 1, " ns"),
                                      r2f(c.get("ratio"))) for c in cells)
              + " | {} |".format(fmt(self.cost.get((n, "tcp"), {}).get("calls_ferry"))))
        w("")
        w("Spread of the per-round ratio ferry / minimal, min – max: " + "; ".join(
            "{} N={:,}: {} – {}".format(wl.upper(), n, r2f(c["ratio_min"]), r2f(c["ratio_max"]))
            for wl, _ in COST_WORKLOADS for (n, w2), c in sorted(self.cost.items())
            if w2 == wl and c["ratio_min"] is not None) + ". The TCP figures move most between "
          "rounds and with the machine's other load: between two connects the load generator "
          "runs much other kernel code, so the programs' map lookups are likely to meet cold "
          "caches, and an interrupt that lands in a program's run counts in its time.")
        w("")
        return out

    def status_table(self):
        """What reading the published generation costs (control.csv)."""
        out = []
        w = out.append
        rows = [n for n in self.sizes if any(self.ct.get((n,) + c) is not None for c in STATUS_COLS)]
        if not rows:
            return out
        w("Reading the published generation, as tests and scripts poll it (median of 11 runs "
          "each): `ferryctl status` (no map entry counts), `bpftool map lookup` of the pinned "
          "`ferry_state` (a process of its own, like the status command), and `ferryctl status "
          "--maps` (every map's entries counted):")
        w("")
        w("| N | ferryctl status | bpftool map lookup ferry_state | ferryctl status --maps |")
        w("|---:|---:|---:|---:|")
        for n in rows:
            w("| {:,} | {} | {} | {} |".format(n, *(fmt_ms(self.ct.get((n,) + c)) for c in STATUS_COLS)))
        w("")
        return out

    def control_section(self):
        out = []
        w = out.append
        if not (self.ct or self.ch):
            return out
        w("## Control plane")
        w("")
        reps = max((v for (n, m, k), v in self.ct_n.items() if m == "ferry"), default=1)
        w("Programming the full state from cold (each from empty; ferry: from ferryd's start to "
          "its first published generation, with ferryd's own *source to maps* (read + parse + "
          "model + sync) and *sync* (the sync engine's map writes) from its log{}; the "
          "rule sets and the minimal program's map: one load each):".format(
              ", median of %d cold starts" % reps if reps > 1 else ""))
        w("")
        w("| N | ferry (start → published) | ferryd source → maps | ferryd sync | map writes "
          "| iptables-legacy-restore | iptables-nft-restore | nft -f | minimal fill (bpftool batch) |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in self.sizes:
            g = lambda m, k: self.ct.get((n, m, k))
            w("| {:,} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                n, fmt_ms(g("ferry", "cold_start_to_published_ms")),
                fmt_ms(g("ferry", "cold_source_to_maps_ms")), fmt_ms(g("ferry", "cold_sync_ms")),
                fmt(g("ferry", "cold_map_writes")),
                fmt_ms(g("c1", "iptables_legacy_restore_ms")),
                fmt_ms(g("c2", "iptables_nft_restore_ms")), fmt_ms(g("d", "nft_f_ms")),
                fmt_ms(g("e", "minimal_fill_ms"))))
        w("")
        out.extend(self.status_table())
        if not self.ch:
            return out
        w("One change (one EndpointSlice: one endpoint replaced by the pod the service lacks, "
          "then put back; services spread over the list): *sync* is ferryd's logged time from "
          "the desired state reaching the sync engine to its map writes returning; *rename → "
          "published* is from the rename of the rewritten file to the new generation in "
          "`ferry_state` (it includes inotify, ferryd's 5 ms quiet period and re-reading the "
          "whole file).")
        w("")
        w("| N | changes | sync, median | sync, max | source → maps, median "
          "| rename → published, median | map writes |")
        w("|---:|---:|---:|---:|---:|---:|---:|")
        for n in self.sizes:
            c = self.ch.get(n)
            if c:
                w("| {:,} | {} | {} | {} | {} | {} | {} |".format(
                    n, c["count"], fmt_ms(c["sync"]), fmt_ms(c["sync_max"]), fmt_ms(c["source"]),
                    fmt_ms(c["publish"]), fmt(c["writes"])))
        w("")
        return out

    def memory_section(self):
        out = []
        w = out.append
        if not (self.mem or self.rss):
            return out
        w("## Memory")
        w("")
        w("ferryd's RSS and peak RSS (VmHWM) from `ferryctl status`, once right after the cold "
          "load and once after the one-change tests; the BPF maps' memory is the kernel's "
          "(`memlock` in fdinfo). Maps are sized `--max-services max(65,536, N + 16)` and "
          "`--max-backends max(262,144, 10 (N + 16))` (room for the UDP probe service).")
        w("")
        w("| N | RSS after load | peak after load | RSS after changes | peak after changes "
          "| ferry_services4/6 | ferry_slots | ferry_backends | all maps |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in self.sizes:
            m = self.mem.get((n, "loaded"))
            a = self.mem.get((n, "after_changes"), {})
            if not m:
                continue
            w("| {:,} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                n, fmt_mb(kb=m.get("rss_kb")), fmt_mb(kb=m.get("peak_rss_kb")),
                fmt_mb(kb=a.get("rss_kb")) if a else "–",
                fmt_mb(kb=a.get("peak_rss_kb")) if a else "–",
                fmt_mb(b=m.get("services_bytes")), fmt_mb(b=m.get("slots_bytes")),
                fmt_mb(b=m.get("backends_bytes")), fmt_mb(b=m.get("maps_total_bytes"))))
        w("")
        if self.rss:
            w("By source (`tests/bench/memory.sh`): one fresh ferryd per row on "
              "`scripts/gen-cluster.py`'s state; peak is VmHWM, steady is VmRSS once the first "
              "generation is published and the programs attached (two readings 50 ms apart "
              "agreeing), both from /proc/PID/status; for the file source, again after one "
              "endpoint of the file changed and ferryd reloaded it. The file is read in chunks "
              "and a List's items decoded one at a time; the API source lists from the stand-in "
              "API server, its resourceVersion=0 lists answered in one unpaged response when the "
              "stand-in has that switch. `build/bench/file_parse` times the file source's read "
              "of the same file alone.")
            w("")
            out.extend(self.rss_table())
            w("")
        return out

    def profile(self, name, k=12):
        p = os.path.join(self.dir, "profile", name)
        if not os.path.exists(p):
            return []
        lines = [l.rstrip() for l in open(p) if l.strip()][:k]
        return lines

    # --- profiles ------------------------------------------------------------

    def perf_symbols(self, name):
        """traffic-M-N.txt: ({symbol: samples}, conns, header)"""
        p = os.path.join(self.dir, "profile", name)
        if not os.path.exists(p):
            return None
        syms, conns, head = {}, None, ""
        for line in open(p):
            if line.startswith("# ") and "conns=" in line:
                head = line[2:].strip()
                for kv in line.split():
                    if kv.startswith("conns="):
                        conns = int(kv.split("=")[1])
                continue
            parts = line.split(None, 3)
            if len(parts) == 4 and parts[0].endswith("%") and parts[1].isdigit():
                sym = parts[3].strip()
                syms[sym] = syms.get(sym, 0) + int(parts[1])
        return syms, conns, head

    def traffic_profile(self):
        """Per-connection CPU (µs) by symbol from the perf -a profiles, or None."""
        pdir = os.path.join(self.dir, "profile")
        if not os.path.isdir(pdir):
            return None
        ns = sorted({int(f.split("-")[2].split(".")[0]) for f in os.listdir(pdir)
                     if f.startswith("traffic-") and f.endswith(".txt")})
        if not ns:
            return None
        n = ns[-1]
        prof = {}
        for m in ("a", "e", "b"):
            r = self.perf_symbols("traffic-%s-%d.txt" % (m, n))
            if r and r[1]:
                syms, conns, head = r
                per = {k: v / PERF_HZ / conns * 1e6 for k, v in syms.items() if k not in IDLE_SYMS}
                prof[m] = {"per": per, "busy": sum(per.values()), "head": head,
                           "idle": sum(v for k, v in syms.items() if k in IDLE_SYMS) / max(1, sum(syms.values()))}
        return (n, prof) if prof else None

    def profile_section(self):
        out = []
        w = out.append
        tp = self.traffic_profile()
        if tp:
            n, prof = tp
            w("**Short connections, N={:,}.** `perf record -a -e cpu-clock -F {}` over one "
              "{}-second loadgen run each of (a), (e) and (b), the whole machine; samples outside "
              "the idle loop, converted to CPU time per connection:".format(
                  n, PERF_HZ, self.config.get("loadgen", "-t ?").split("-t ")[-1].split()[0]))
            w("")
            w("| method | run | busy CPU per connection |")
            w("|---|---|---:|")
            for m in ("a", "e", "b"):
                if m in prof:
                    w("| %s | %s | %.1f µs |" % (LABEL[m], prof[m]["head"].split(": ", 1)[-1],
                                                prof[m]["busy"]))
            w("")
            if "b" in prof and "e" in prof:
                b, e = prof["b"]["per"], prof["e"]["per"]
                own = {k: v for k, v in b.items() if ferry_own(k)}
                w("The socket LB's own symbols (BPF programs and their dispatch, hash lookups, "
                  "socket-local storage), per connection under ferry (b) and under the minimal "
                  "program (e): " + ", ".join(
                      "`%s` %.3f / %.3f µs" % (k, v, e.get(k, 0.0))
                      for k, v in sorted(own.items(), key=lambda kv: -kv[1])[:10]) + "; in all "
                  "%.2f µs under ferry, %.2f µs under the minimal program." % (
                      sum(own.values()), sum(v for k, v in e.items() if ferry_own(k))))
                w("")
        pdir = os.path.join(self.dir, "profile")
        if os.path.isdir(pdir):
            cf = sorted(f for f in os.listdir(pdir) if f.startswith("connect-ferry-"))
            if cf:
                n = cf[-1].split("-")[2].split(".")[0]
                w("**connect(), N={:,}.** `perf record -e cpu-clock` of connect_bench, self time, "
                  "top entries under the minimal program and under ferry:".format(int(n)))
                w("")
                w("```")
                w("minimal:")
                out.extend(self.profile("connect-minimal-%s.txt" % n, 12))
                w("ferry:")
                out.extend(self.profile("connect-ferry-%s.txt" % n, 12))
                w("```")
                w("")
            for f in sorted((f for f in os.listdir(pdir) if f.startswith("ferryd-cold-")
                             and f.endswith(".txt") and "dso" not in f),
                            key=lambda f: int(f.split("-")[2].split(".")[0])):
                n = int(f.split("-")[2].split(".")[0])
                w("**Cold ferryd, N={:,}.** `perf record -e cpu-clock -g` of ferryd from its "
                  "start to its first published generation; self time by binary, then the top "
                  "symbols:".format(n))
                w("")
                w("```")
                out.extend(self.profile("ferryd-cold-%d-dso.txt" % n, 8))
                w("")
                out.extend(self.profile(f, 20))
                w("```")
                w("")
        return out

    def rate_text(self, own):
        """Why ferry's rate is under (a): numbers first, then the reading."""
        def m_over(key, m):
            return [self.tr[(n, m)][key] for n in self.sizes
                    if (n, m) in self.tr and self.tr[(n, m)][key] is not None]
        b_a, cpu_b = m_over("ratio", "b"), m_over("cpu_ratio", "b")
        r_a, e_a = m_over("ratio", "r"), m_over("ratio", "e")
        a_rate = med(m_over("rate", "a"))
        client_us = 1e6 / a_rate if a_rate else None
        out = []
        out.append(
            "ferry's rate, as a median of per-round ratios to (a), is {} over N ({} to {}), "
            "with no trend in N; the machine's CPU time per connection under ferry is at {} "
            "of (a)'s (median over N, last column).".format(
                r3f(med(b_a)), r3f(min(b_a)), r3f(max(b_a)), r3f(med(cpu_b))))
        ref = r_a + e_a
        if ref:
            out.append(
                " How much of that is noise: (r), which does (a)'s work with the pods in random "
                "order, and the minimal program (e) land between {} and {} of (a) over N, so a "
                "median of {} rounds on this shared 2-core VM moves by a few percent either "
                "way.".format(r3f(min(ref)), r3f(max(ref)), self.config.get("rounds", "?")))
        out.append("\n\n")
        out.append(
            "What bounds the rate: the load generator is one thread, and the machine is about a "
            "fifth idle in every run, so the rate is set by the load generator's core, about "
            "{} µs per connection; that core also runs the receive side of the packets the "
            "load generator sends over veth. What ferry adds on that core, per connection: "
            "its connect4 program and its hash lookup (`lookup_nulls_elem_raw`), and socket-"
            "local storage only for a socket ferry_revnat cannot answer getpeername() for "
            "(`bpf_sk_storage_get` with F_CREATE: `bpf_local_storage_alloc`, "
            "`bpf_map_kzalloc`, `bpf_sk_storage_charge`, freed by "
            "`bpf_local_storage_destroy`; none for these services, each backend serving "
            "one ClusterIP)"
            .format("%.0f" % client_us if client_us else "?"))
        if own and client_us:
            d = own[0] - own[1]
            out.append(
                ": in the perf -a profile at N={:,}, {:.2f} µs per connection in these "
                "symbols under ferry against {:.2f} µs under the minimal program, {:.2f} µs more, "
                "{:.1f}% of the load generator's time per connection. That puts ferry's "
                "expected ratio near {:.3f}, above the goal by little more than the "
                "noise.".format(own[2], own[0], own[1], d, 100 * d / client_us,
                                1 - d / client_us))
        else:
            out.append(".")
        if r_a:
            if med(r_a) < 0.985:
                out.append(
                    " Picking the backend at random also costs: (r), the floor in random order, "
                    "is at {} of (a) (median over N), and ferry against (r) at {}.".format(
                        r3f(med(r_a)), r3f(med(self.tr[(n, "r")]["ferry_over"]
                                              for n in self.sizes if (n, "r") in self.tr))))
            else:
                out.append(
                    " Picking the backend at random does not cost measurably here: (r), the "
                    "floor in random order, is at {} of (a) (median over N).".format(
                        r3f(med(r_a))))
        out.append("\n\n")
        out.append(
            "What stands in the way of a clear margin over 0.97x: the rounds more than "
            "ferry. ferry's own share of a connection is the fraction above; a round "
            "spreads by ±15% on this machine, and 9 rounds instead of 3 put N = 1,000 and "
            "10,000 at 0.997 and 1.013 of the floor (2026-12-06, 22:00). The program's own "
            "cost is in the connect() section.")
        return "".join(out)

    def analysis(self):
        """For each missed goal: the numbers, what the profiles say, and what
        stands in the way."""
        out = []
        w = out.append
        goals = self.goals()
        missed = {g[0] for g in goals if g[4] is False}
        tp = self.traffic_profile()
        if any(k.startswith("ferry's connection rate") for k in missed):
            pts = ", ".join("N={:,}: {:.3f}".format(g[1], float(g[2])) for g in goals
                            if g[0].startswith("ferry's connection rate") and g[4] is False)
            w("### Connection rate below 0.97x the floor (%s)" % pts)
            w("")
            rows = [(n, self.tr.get((n, "b")), self.tr.get((n, "e")), self.tr.get((n, "r")))
                    for n in self.sizes if (n, "b") in self.tr]
            w("| N | ferry / (a) | minimal / (a) | (r) / (a) | ferry / (r) | machine CPU per "
              "connection, ferry / (a) |")
            w("|---:|---:|---:|---:|---:|---:|")
            for n, b, e, r in rows:
                w("| {:,} | {} | {} | {} | {} | {} |".format(
                    n, r3f(b["ratio"]), r3f(e["ratio"]) if e else "–",
                    r3f(r["ratio"]) if r else "–",
                    r3f(r["ferry_over"]) if r else "–",
                    r3f(b["cpu_ratio"])))
            w("")
            own = None
            if tp and "b" in tp[1] and "e" in tp[1]:
                pb, pe = tp[1]["b"]["per"], tp[1]["e"]["per"]
                own = (sum(v for k, v in pb.items() if ferry_own(k)),
                       sum(v for k, v in pe.items() if ferry_own(k)), tp[0])
            w(self.rate_text(own))
            w("")
        if any(k.startswith("ferry's median connect()") for k in missed):
            pts = ", ".join("N={:,}: {}".format(g[1], g[2]) for g in goals
                            if g[0].startswith("ferry's median connect()") and g[4] is False)
            w("### connect() above 1.10x the minimal program (%s)" % pts)
            w("")
            d_conn = med(c["ferry"] - c["minimal"] for c in self.cb.values()
                         if c["ferry"] and c["minimal"])
            mins = med(c["minimal"] for c in self.cb.values() if c["minimal"])
            bf = med(v for (n, p), v in self.bs.items() if p == "ferry")
            bm = med(v for (n, p), v in self.bs.items() if p == "minimal")
            fields = dict(
                d_conn="%.0f ns %s" % (abs(d_conn), "more" if d_conn > 0 else "less")
                if d_conn else "? ns more",
                budget="%.0f" % (0.10 * mins) if mins else "?",
                minimal="%.0f" % mins if mins else "?",
                bf="%.0f" % bf if bf else "?", bm="%.0f" % bm if bm else "?",
                xf="%d" % self.bsize["ferry"][0] if "ferry" in self.bsize else "?",
                xm="%d" % self.bsize["minimal"][0] if "minimal" in self.bsize else "?",
                pdiff="%.0f" % (bf - bm) if bf and bm else "?",
                rmin=r3f(min(c["ratio"] for c in self.cb.values() if c["ratio"])),
                rmax=r3f(max(c["ratio"] for c in self.cb.values() if c["ratio"])))
            cause = CONNECT_CAUSE_SPREAD if bf and bm and bf < bm else CONNECT_CAUSE_PROGRAM
            w(CONNECT_TEXT.format(cause=cause.format(**fields), **fields))
            w("")
        if any(k.startswith("full programming") for k in missed):
            w("### Cold programming slower than the goal")
            w("")
            w("| N | start → published | source → maps | of which sync (map writes) | map writes "
              "| µs per map write | read, parse, model | before and after (load, verify, "
              "create maps, attach) |")
            w("|---:|---:|---:|---:|---:|---:|---:|---:|")
            for n in self.sizes:
                v = self.ct.get((n, "ferry", "cold_start_to_published_ms"))
                sy = self.ct.get((n, "ferry", "cold_sync_ms"))
                t = self.ct.get((n, "ferry", "cold_source_to_maps_ms"))
                wr = self.ct.get((n, "ferry", "cold_map_writes"))
                if None in (v, sy, t) or n < 1000:
                    continue
                w("| {:,} | {} | {} | {} | {} | {} | {} | {} |".format(
                    n, fmt_ms(v), fmt_ms(t), fmt_ms(sy), fmt(wr),
                    "%.2f" % (sy * 1000 / wr) if wr else "–", fmt_ms(t - sy), fmt_ms(v - t)))
            w("")
            shares = {}
            pdir = os.path.join(self.dir, "profile")
            for f in sorted(os.listdir(pdir)) if os.path.isdir(pdir) else []:
                if f.startswith("ferryd-cold-") and f.endswith("-dso.txt"):
                    n = int(f.split("-")[2])
                    d = {}
                    for line in open(os.path.join(pdir, f)):
                        parts = line.split()
                        if len(parts) >= 2 and parts[0].endswith("%"):
                            d[parts[1]] = float(parts[0][:-1])
                    shares[n] = d
            if shares:
                w("Self time of a cold ferryd by binary: " + "; ".join(
                    "N={:,}: kernel {:.0f}%, libc {:.0f}%, libcjson {:.0f}%, ferryd {:.0f}%".format(
                        n, d.get("[kernel.kallsyms]", 0),
                        sum(v for k, v in d.items() if k.startswith("libc.so")),
                        sum(v for k, v in d.items() if k.startswith("libcjson")), d.get("ferryd", 0))
                    for n, d in sorted(shares.items())) + ".")
                w("")
            s10 = self.ct.get((10000, "ferry", "cold_sync_ms"))
            t10 = self.ct.get((10000, "ferry", "cold_source_to_maps_ms"))
            w(COLD_TEXT.format(sync10=fmt_ms(s10), parse10=fmt_ms(t10 - s10) if s10 and t10 else "?"))
            w("")
        if any(k.startswith("one change") for k in missed):
            pts = ", ".join("N={:,}: {}".format(n, fmt_ms(c["sync"])) for n, c in sorted(self.ch.items()))
            w("### One change slower than 1 ms in the sync engine")
            w("")
            w("Median sync time of one change, by N: %s; map writes per change: %s." % (
                pts, ", ".join(sorted({fmt(c["writes"]) for c in self.ch.values()}))))
            w("")
            per = med(c["sync"] * 1000 / n for n, c in self.ch.items() if n >= 1000 and c["sync"])
            w(CHANGE_TEXT.format(per_svc="%.2f" % per if per else "?",
                                 n_1ms="{:,}".format(int(round(1000 / per, -2))) if per else "?"))
            w("")
        if any(k.startswith("ferryd RSS") or k.startswith("ferryd peak RSS") for k in missed):
            m = self.mem.get((GOAL_RSS_N, "loaded"), {})
            a = self.mem.get((GOAL_RSS_N, "after_changes"), {})
            w("### ferryd's memory at 10,000 services")
            w("")
            w("RSS right after the cold load {}, after the one-change tests {}; peak (VmHWM) {} "
              "and {}.".format(fmt_mb(kb=m.get("rss_kb")), fmt_mb(kb=a.get("rss_kb")),
                               fmt_mb(kb=m.get("peak_rss_kb")), fmt_mb(kb=a.get("peak_rss_kb"))))
            w("")
            w(RSS_TEXT)
            w("")
        return out

    def observations(self):
        out = []
        w = out.append
        big = [n for n in self.sizes if self.ct.get((n, "d", "nft_f_ms"))]
        if big:
            w("- **Loading kube-proxy's layouts.** " + "; ".join(
                "N={:,}: iptables-legacy-restore {}, iptables-nft-restore {}, nft -f {}".format(
                    n, fmt_ms(self.ct.get((n, "c1", "iptables_legacy_restore_ms"))),
                    fmt_ms(self.ct.get((n, "c2", "iptables_nft_restore_ms"))),
                    fmt_ms(self.ct.get((n, "d", "nft_f_ms")))) for n in big[-2:]) + ". " + NFT_TEXT)
        cc = [(n, self.tr.get((n, "c1")), self.tr.get((n, "c2")), self.tr.get((n, "d")))
              for n in self.sizes if (n, "c1") in self.tr]
        if len(cc) >= 2:
            (n0, l0, f0, d0), (n1, l1, f1, d1) = cc[0], cc[-1]
            w("- **Rule traversal per connection.** From N={:,} to N={:,} the rate through "
              "iptables-legacy goes from {} to {} of the floor, through iptables-nft from {} to {}, "
              "through nftables from {} to {}. kube-proxy's iptables layout matches a new "
              "connection against KUBE-SERVICES one rule per service, so its cost grows with N "
              "(the targets are spread over the whole chain); iptables-nft evaluates the same rules "
              "as nf_tables rules (several expressions each, some matches and targets through "
              "the xtables compatibility layer), slower per rule than legacy's. The nftables layout looks the ClusterIP up in a verdict map, which does "
              "not grow with N; what it costs over the floor is conntrack and NAT, as for "
              "iptables.".format(n0, n1, r3f(l0["ratio"]), r3f(l1["ratio"]), r3f(f0["ratio"]),
                                 r3f(f1["ratio"]), r3f(d0["ratio"]), r3f(d1["ratio"])))
        w("- **Setup notes.** In the (c) and (d) client namespaces conntrack's TCP TIME_WAIT "
          "timeout is 60 s (the servers' own TIME_WAIT) instead of 120 s: at these rates the "
          "default fills the conntrack table (262,144 entries here) over two N and drops SYNs; "
          "much shorter would let a source port reused through another ClusterIP meet a "
          "server's TIME_WAIT that NAT no longer knows about, and wait a second for the SYN's "
          "retransmission. A node doing this would need a larger table. br_netfilter is off on "
          "the benchmark's bridge (it would run every bridged frame through the IP hooks, for "
          "every method alike). The load generator is a single thread; during every run the "
          "machine is about a fifth idle, so the rate is bound by the load generator's core, "
          "which also runs the receive processing of the packets it sends over the veth pairs.")
        w("")
        return out


API_FIGURES = [("e2e_ms", "end to end (write sent → published)"),
               ("event_to_maps_ms", "ferryd event to maps (its log)"),
               ("stream_ms", "stand-in → watch line (curl -N)"),
               ("after_stream_ms", "after the watch line (ferry's share)"),
               ("write_return_ms", "write sent → write returned")]


def r3f(x):
    return "–" if x is None else "%.3f" % x


def r2f(x):
    return "–" if x is None else "%.2f" % x


PERF_HZ = 1999
IDLE_SYMS = {"pv_native_safe_halt", "default_idle", "native_safe_halt", "acpi_safe_halt",
             "cpuidle_idle_call", "do_idle", "poll_idle", "intel_idle", "mwait_idle"}


def ferry_own(sym):
    return (sym.startswith("bpf_prog_") or "local_storage" in sym or "sk_storage" in sym
            or sym.startswith("htab_") or sym.startswith("__htab_") or sym == "lookup_nulls_elem_raw"
            or sym in ("bpf_map_kzalloc", "bpf_user_rnd_u32", "__cgroup_bpf_run_filter_sock_addr",
                       "bpf_sk_storage_get", "bpf_selem_alloc", "bpf_map_kmalloc_node"))


CONTROL_COLS = [("ferry", "cold_start_to_published_ms"), ("ferry", "cold_source_to_maps_ms"),
                ("ferry", "cold_sync_ms"), ("c1", "iptables_legacy_restore_ms"),
                ("c2", "iptables_nft_restore_ms"), ("d", "nft_f_ms"), ("e", "minimal_fill_ms")]


STATUS_COLS = [("ferry", "status_ms"), ("ferry", "bpftool_state_lookup_ms"),
               ("ferry", "status_maps_ms")]


def rss_label(r):
    if r["source"] == "api":
        return "API source, " + ("one unpaged list" if r["paging"] == "unpaged"
                                 else "pages of %s" % r["paging"])
    return "file source, " + r["format"].upper()


def r0(x):
    return "" if x is None else "%.0f" % x


def r2(x):
    return "" if x is None else "%.2f" % x


def r3(x):
    return "" if x is None else "%.3f" % x


def r4(x):
    return "" if x is None else "%.4f" % x


METHOD_TEXT = """\
States: `scripts/gen-cluster.py N 10 --pods 11`, N services x 10 endpoints, for N = {sizes}
with every method and N = {fsizes} with ferry and the two floors (a) and (r) only.
The 11 pods are real: 11 network namespaces on one bridge, each running
`build/bench/httpd` on port 8080, and every endpoint of every state is one of
them (each service has 10 of the 11, and the first endpoints rotate over all
11; the maps and rule sets still grow with N). The 32 services the clients
connect to (below) have backends of their own: their EndpointSlices name port
9000 + k (k = the service's position among them) on the same pods, where
`httpd` listens too, so no other service shares their backends, as in a
cluster where a pod backs one Service; the other services share port 8080.

Clients: one network namespace per method on the same bridge, and one cgroup v2
each; the load generator runs inside its method's cgroup and namespace.

- **(a) no LB**: connections straight to the 32 target services' own backends
  (pod IP, port 9000 + k), each service's endpoints in turn. The floor: the
  servers do the same work as behind a load balancer. (The floor until
  2026-12-07, the 11 pods at port 8080, read 2-4 % faster than this one:
  fewer listeners for each server to accept from.)
- **(b) ferry**: `ferryd` attached to (b)'s cgroup, its source a folder with the
  generated state (and one UDP Service for the connect() test); its connect4
  program picks a backend at connect().
- **(c) iptables**: `tests/bench/rules.py iptables` (kube-proxy's iptables-mode
  nat layout: KUBE-SERVICES with one rule per service, one KUBE-SVC chain per
  service with a `statistic` cascade, one KUBE-SEP chain per endpoint, DNAT;
  hooked in OUTPUT), loaded with `iptables-legacy-restore` into one namespace
  and with `iptables-nft-restore` into another.
- **(d) nftables**: `tests/bench/rules.py nft` (kube-proxy's nftables-mode
  layout, `table ip kube-proxy`: a service-ips verdict map, a `numgen random`
  vmap per service), `nft -f`.
- **(e) minimal**: `tests/bench/minimal.sh`: a connect4 program doing one hash
  lookup, ClusterIP:port -> the service's first endpoint. The floor for any
  socket load balancer.
- **(r) no LB, random order** (a control, not in the issue): like (a), but each
  service's backend picked at random (4,096 fixed picks), as a load balancer
  sends them; (a) takes them in turn.

Connection cost: `build/bench/loadgen {loadgen}`: short connections (connect,
GET, read to EOF, close; the server closes first) round-robin over 32 ClusterIPs
spread evenly from the first service to the last (port 80), and over their
backends for (a) and (r). All states of one N are loaded once, then {rate_rounds} rounds
run the methods interleaved, and each method's rate is divided by (a)'s rate of
the same round. {interleave}

connect() overhead: `build/bench/connect_bench {cb}`, UDP connect() in a tight
loop, with no program ((a)'s cgroup, to a pod IP), with the minimal program ((e)'s
cgroup) and with ferry ((b)'s cgroup); the latter two to the ClusterIP of a UDP
Service (the generated Services are TCP only, and ferry refuses UDP to a
TCP-only service, as kube-proxy does); {rounds} rounds, interleaved.

1-byte request/response: the same rate comparison for (a), (b), (e) and (r)
with `build/bench/loadgen {byte}`: each connection writes one byte and reads
one byte back (the same `httpd` answers a 1-byte request with its byte).

connect4 run time per call: run-time stats on (`BPF_ENABLE_STATS`) for {rounds} rounds of
{cost}, each under the minimal program and under ferry, interleaved; the
programs' `run_time_ns / run_cnt` by the ids attached to (e)'s and (b)'s
cgroups (`tests/bench/run.sh --only connect` runs these parts alone, `--only
cost` this one).

Control plane: each state loaded from empty and timed; then {pairs} pairs of
one-endpoint changes to ferry's file (replace, then restore), each written
to a temporary file and renamed into the source folder."""

CONNECT_TEXT = """\
ferry's connect() costs about {d_conn} than the minimal program's (median
over N); the goal allows {budget} ns (10% of the minimal program's
{minimal} ns, most of which is the kernel's own UDP connect: syscall, socket
lock, route lookup). bpf_stats gives {bf} ns per run for ferry's connect4
against {bm} ns for the minimal one (both including the stats' own clock
reads; {xf} bytes of BPF against {xm}). {cause}"""

# CONNECT_TEXT's last sentences: ferry's program the dearer of the two, or not.
CONNECT_CAUSE_PROGRAM = """\
The difference is the program itself. Per connect() to a common ClusterIP
port, ferry's reads the port's ferry_fast4 entry (one cache line of an array
whose lookup the verifier inlines), draws from the per-CPU count of
translations, checks the entry's version, checks ferry_peer_mark and counts;
the minimal program does one hash lookup and two stores. ferry's runs {pdiff}
ns longer, against a budget of {budget} ns (ratios from {rmin} to {rmax} over
N in this run)."""

CONNECT_CAUSE_SPREAD = """\
ferry's program is the cheaper of the two ({pdiff} ns), so this miss is the
wall-clock figure's spread between rounds (ratios from {rmin} to {rmax} over
N in this run), not what ferry does: a connect() to a common ClusterIP port
reads one line of ferry_fast4, where the minimal program's hash lookup reads
the bucket and the element."""

COLD_TEXT = """\
Where the time goes (the profiles above): most of the samples are in the
kernel, and the largest single item is `htab_map_update_elem`, the hash
map insert that each map write is: ferryd already writes the cold state in
batches (`generic_map_update_batch`), but the kernel still inserts the batch
element by element, and each insert into a map created with
`BPF_F_NO_PREALLOC` allocates and memcg-charges its element. Most of libc's
share is malloc and free (`_int_malloc`, `malloc_consolidate`, `unlink_chunk`):
each item's JSON tree and the model's objects are many small allocations.

What stands in the way: at 10,000 services the map writes alone (per
10-endpoint service its frontend and its VIP marker, hash inserts at the
kernel's per-entry cost, and ten backends, copies into the ferry_backends
array; the set rides in the frontend entry, so no slots) take {sync10}, and
reading the file (a List's items parsed into a tree and decoded one at a
time) and computing the state take {parse10}, against a budget of 300 ms for
everything, while the kernel verifies the socket LB's programs beside them
(about 80 ms of the other core). Preallocated hash maps (faster inserts,
memory up front) and a decoder that reads the model's fields straight from
the bytes, without a tree per item, are the levers."""

CHANGE_TEXT = """\
The time grows linearly with N while the map writes per change stay the same:
it is not the writes. `sync_apply` receives the whole desired state on every
change and walks it: for every service port a lookup of its string ID in the
engine's record (`hmap_get`) and a comparison with what was written, then a walk
over the record for removals: about {per_svc} µs per service port, so the 1 ms
is spent at about {n_1ms} service ports. What stands in the way: the file source hands the engine a complete new state; a
change set (the service ports whose objects changed, which the source knows when
it re-reads a file) would let the engine touch only those. The rename-to-publish
time is larger still, since ferryd re-reads and re-parses the whole file on
every change."""

RSS_TEXT = """\
The file source reads in chunks and decodes a List's items one at a time, so
neither the document nor its parse tree is ever whole in memory: the peak is
the first apply, when the model's objects, the desired state, the sync
engine's record of what it wrote (per service port and backend, with string
IDs) and the staged map writes of the batched first apply are alive at once.
After it, the staging and the desired state are freed, but malloc keeps most
of that heap: the file source's `malloc_trim` runs after its read, before the
apply. What stands in the way of 30 MB: that kept heap (a `malloc_trim` after
the first apply returns it), then the model's per-endpoint strings (a copy of
the node name for each endpoint) and the libraries' mapped pages."""

NODEPORT_TEXT = """\
`tests/bench/nodeport_rate.sh` (alone: `tests/bench/run.sh --only nodeport`): an
external client namespace opens a new TCP connection per request (`loadgen -c
100`) to node 1's address, which serves them from 10 pods behind it (routed
veths); N NodePort Services, each with the 10 pods as endpoints
(externalTrafficPolicy Cluster). Four methods, interleaved in each round: the
pods' own addresses (node 1 only routing); ferry with XDP in native mode on
node 1's LAN veth; ferry with `--xdp=off` (tc only); kube-proxy's iptables
NodePort layout (KUBE-SERVICES, KUBE-NODEPORTS, KUBE-EXT-* marking for
MASQUERADE, DNAT in KUBE-SEP-*) in node 1's namespace, loaded before its run and
deleted after. Connections/s, median of the rounds (min-max), and the median of
the per-round ratios. Goals: ahead of iptables with a gap that grows with N;
within 5% of direct. On a veth, native XDP takes each frame out of its skb and
back, and XDP_REDIRECT into a pod's veth goes through that veth's NAPI: two
steps the routed path does not take, and a NIC driver's XDP has neither."""

XDP_TEXT = """\
`tests/bench/run.sh --only xdp`: `build/bench/xdp_ns` (tests/bench/xdp_ns.c)
loads `ferry_xdp_nodeport` with maps of its own, fills them (a NodePort with 16
backends on another node in TCP, SCTP and IPv6; an externalTrafficPolicy=Local
NodePort; one without endpoints) and runs it with BPF_PROG_TEST_RUN on one CPU.
Every figure is the kernel-reported duration against an empty XDP program
measured the same way in the same run: repeat 1 called in a loop (Katran's
way), and repeat 1,000,000 (only est-local, whose output equals its input, can
be measured so); the floor is measured in a block right before each of a
case's blocks. Cases: established, est-udp, est-v6 (a flow in `ferry_ct` to a
remote backend: DNAT, SNAT, next hop, XDP_TX), new, new-v6 (a new source port
every call: backend choice, SNAT port claim, two `ferry_ct` entries, FIB) with
`ferry_ct` full (every new flow evicts, as under churn) and new-room with room
in it, est-local/new-local/new-local-room (externalTrafficPolicy=Local: DNAT
only, XDP_PASS), est-sctp (the CRC32c over 1,480 bytes), no-backend (the ICMP
port unreachable built in place). Goals: at most 100 ns above the floor for an
established flow, 200 ns for a new one."""

ALGORITHMS = ["random", "round-robin", "maglev", "least-conn"]
ALGO_WORKLOADS = {"tcp": "short TCP connections", "udp": "UDP connect() loop"}
ALGO_XDP_CASES = ["new", "new-room", "new-v6"]
ALGO_TEXT = """\
Each algorithm against `random` in the same run (run.sh's last part, or
`run.sh --only algorithms` alone):
per N, ferryd started cold with `--lb-algorithm` set to each algorithm in
turn, the order rotated every round; under each, the programs' own run time
per call from bpf_stats (held on by a BPF_ENABLE_STATS fd, read by the
ids attached to the client's cgroup), over short TCP connections (a new socket
each) and over the UDP connect() loop. The ratio to random is taken within a
round; figures are the median over rounds with the range in brackets.
`sock_release` takes a closed socket off least-conn's count. ferryd attaches
it only once a Service uses least-conn (every socket's close in the cgroup
runs it), so only least-conn has its row."""
ALGO_XDP_TEXT = """\
XDP, ns per new flow over the empty program (BPF_PROG_TEST_RUN, repeat 1 in a
loop, median over the calls; `xdp_ns --algorithm`, the four interleaved): a
16-backend Cluster NodePort, so Maglev's table is 2,801 entries. The
algorithm runs for a flow's first packet only; established flows take their
backend from ferry_ct."""


def span(xs, digits=1):
    """median (min-max) of xs, or '–'."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    m = statistics.median(xs)
    if len(xs) == 1:
        return fmt(m, digits)
    return "%s (%s–%s)" % (fmt(m, digits), fmt(min(xs), digits), fmt(max(xs), digits))


def ratio_span(vals, base):
    """Ratios to base's value of the same round: median (min-max)."""
    rs = [v / base[r] for r, v in vals.items() if r in base and base[r]]
    return span(rs, 2)


class Algorithms:
    """run.sh --only algorithms: per algorithm against random."""

    def __init__(self, d):
        self.dir = d
        self.cost = read_csv(os.path.join(d, "algo_bpfstats.csv"))
        self.mem = read_csv(os.path.join(d, "algo_memory.csv"))
        self.xdp = read_csv(os.path.join(d, "algo_xdp.csv"))

    def present(self):
        return bool(self.cost or self.mem or self.xdp)

    def cost_rows(self):
        """(n, workload, program, algorithm, {round: ns}) in order."""
        by = defaultdict(dict)
        for r in self.cost:
            by[(int(r["n"]), r["workload"], r["program"], r["algorithm"])][r["round"]] = \
                fnum(r["ns_per_run"])
        keys = sorted({k[:3] for k in by}, key=lambda k: (k[0], k[1] != "tcp", k[2]))
        for n, wl, prog in keys:
            for a in ALGORITHMS:
                if (n, wl, prog, a) in by:
                    yield n, wl, prog, a, by[(n, wl, prog, a)], by.get((n, wl, prog, "random"), {})

    def xdp_rows(self):
        by = defaultdict(dict)
        for r in self.xdp:
            if r["method"].startswith("repeat 1"):
                by[(r["case"], r["algorithm"])][r["round"]] = (fnum(r["over_p50"]), fnum(r["ns_p50"]),
                                                               r["check"])
        for c in ALGO_XDP_CASES:
            for a in ALGORITHMS:
                if (c, a) in by:
                    yield c, a, by[(c, a)], by.get((c, "random"), {})

    def mem_rows(self):
        by = defaultdict(list)
        for r in self.mem:
            by[(int(r["n"]), r["algorithm"])].append(r)
        for n in sorted({k[0] for k in by}):
            for a in ALGORITHMS:
                if (n, a) in by:
                    yield n, a, by[(n, a)]

    def tables(self):
        out = []
        w = out.append
        if self.cost:
            w("| N | workload | program | algorithm | rounds | ns per call | ratio to random |")
            w("|---:|---|---|---|---:|---:|---:|")
            for n, wl, prog, a, vals, base in self.cost_rows():
                w("| {:,} | {} | {} | {} | {} | {} | {} |".format(
                    n, ALGO_WORKLOADS.get(wl, wl), prog, a, len(vals), span(vals.values()),
                    ratio_span(vals, base)))
            w("")
        if self.xdp:
            w("| case | algorithm | rounds | ns over empty (p50) | ratio to random | ns (p50) | check |")
            w("|---|---|---:|---:|---:|---:|---|")
            for c, a, vals, base in self.xdp_rows():
                over = {r: v[0] for r, v in vals.items()}
                checks = sorted({v[2] for v in vals.values()})
                w("| {} | {} | {} | {} | {} | {} | {} |".format(
                    c, a, len(vals), span(over.values()),
                    ratio_span(over, {r: v[0] for r, v in base.items()}),
                    span([v[1] for v in vals.values()]), " ".join(checks)))
            w("")
        if self.mem:
            w("| N | algorithm | rounds | ferryd RSS | peak RSS | cold sync | Maglev tables "
              "| entries used | at 2 B/entry | ferry_maglev as sized |")
            w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            for n, a, rows in self.mem_rows():
                used = [fnum(r["maglev_entries_used"]) for r in rows if fnum(r["maglev_entries_used"])]
                tables = [fnum(r["maglev_tables"]) for r in rows if fnum(r["maglev_tables"])]
                mb = [fnum(r["maglev_bytes"]) for r in rows]
                w("| {:,} | {} | {} | {} MB | {} MB | {} ms | {} | {} | {} | {} |".format(
                    n, a, len(rows), span([fnum(r["rss_kb"]) / 1024 for r in rows if fnum(r["rss_kb"])]),
                    span([fnum(r["peak_rss_kb"]) / 1024 for r in rows if fnum(r["peak_rss_kb"])]),
                    span([fnum(r["cold_sync_ms"]) for r in rows], 0),
                    fmt(med(tables)) if tables else "–", fmt(med(used)) if used else "–",
                    fmt_mb(b=2 * med(used)) if used else "–",
                    fmt_mb(b=med(mb)) if a == "maglev" and med(mb) else "–"))
            w("")
        return out

    def markdown(self):
        out = ["## Backend selection: each algorithm against random", "", ALGO_TEXT, ""]
        t = self.tables()
        xdp_at = next((i for i, x in enumerate(t) if x.startswith("| case |")), None)
        if xdp_at is None:
            return out + t
        return out + t[:xdp_at] + [ALGO_XDP_TEXT, ""] + t[xdp_at:]

    def write_summary(self):
        with open(os.path.join(self.dir, "summary-algorithms.csv"), "w", newline="") as f:
            cw = csv.writer(f)
            cw.writerow(["part", "n", "workload_or_case", "program", "algorithm", "rounds",
                         "median", "min", "max", "ratio_to_random_median"])
            for n, wl, prog, a, vals, base in self.cost_rows():
                xs = list(vals.values())
                rs = [v / base[r] for r, v in vals.items() if r in base and base[r]]
                cw.writerow(["connect_ns_per_call", n, wl, prog, a, len(xs), r2(med(xs)),
                             r2(min(xs)), r2(max(xs)), r4(med(rs))])
            for c, a, vals, base in self.xdp_rows():
                xs = [v[0] for v in vals.values()]
                rs = [v[0] / base[r][0] for r, v in vals.items() if r in base and base[r][0]]
                cw.writerow(["xdp_ns_over_empty", "", c, "ferry_xdp_nodeport", a, len(xs), r2(med(xs)),
                             r2(min(xs)), r2(max(xs)), r4(med(rs))])
            for n, a, rows in self.mem_rows():
                xs = [fnum(r["rss_kb"]) for r in rows]
                cw.writerow(["ferryd_rss_kb", n, "", "", a, len(xs), r0(med(xs)), r0(min(xs)),
                             r0(max(xs)), ""])


NFT_TEXT = """\
`nft -f` is superlinear in N: a `perf record -e cpu-clock` of `nft -f` at 5,000
services (taken by hand on this machine, not by the harness) puts about half of
the time in the kernel's `__nft_set_trans_bind`:
each per-service anonymous verdict map (`numgen random mod 10 vmap {...}`) is
bound by walking the transaction so far, which makes one big transaction
quadratic in the number of services. kube-proxy's nftables mode writes its whole
state as one transaction when it syncs everything, at start for example."""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results")
    ap.add_argument("--no-docs", action="store_true", help="write only under RESULTS")
    ap.add_argument("--docs-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "..", "..", "docs"))
    ap.add_argument("--api-latency", metavar="PATH",
                    help="api-latency.json, or a results folder holding it, from another run "
                    "(default: RESULTS's own)")
    args = ap.parse_args()
    d = os.path.abspath(args.results)
    algo = Algorithms(d)
    if algo.present() and not read_csv(os.path.join(d, "traffic.csv")):
        md = algo.markdown()
        print("\n".join(md))
        algo.write_summary()
        with open(os.path.join(d, "benchmarks.md"), "w") as f:
            f.write("# ferry: backend-selection algorithms\n\n" + "\n".join(md) + "\n")
        print("report.py: wrote %s/{summary-algorithms.csv,benchmarks.md}" % d)
        return
    res = Results(d, args.api_latency and os.path.abspath(args.api_latency))
    if not res.sizes and (res.rss or res.parse):
        print("\n".join(res.rss_table()))
        return
    if not res.sizes:
        sys.exit("report.py: no results in " + d)
    res.write_summaries()
    if algo.present():
        algo.write_summary()
    png = os.path.join(d, "benchmarks.png")
    res.plot(png)
    repo = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    name = os.path.relpath(d, repo) if d.startswith(repo + os.sep) else d
    md = res.markdown(name)
    with open(os.path.join(d, "benchmarks.md"), "w") as f:
        f.write(md)
    if not args.no_docs:
        os.makedirs(args.docs_dir, exist_ok=True)
        with open(os.path.join(args.docs_dir, "benchmarks.md"), "w") as f:
            f.write(md)
        if os.path.exists(png):
            shutil.copyfile(png, os.path.join(args.docs_dir, "benchmarks.png"))
        print("report.py: wrote %s/benchmarks.md and benchmarks.png" % os.path.normpath(args.docs_dir))
    print("report.py: wrote %s/{summary-*.csv,goals.csv,benchmarks.md,benchmarks.png}" % d)


if __name__ == "__main__":
    main()
