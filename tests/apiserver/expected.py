#!/usr/bin/env python3
"""What ferry's service map must hold for the stand-in's objects, and what it
holds, in one comparable form (for tests/apilib.sh: maps_equal_api).

  expected.py expected --control http://127.0.0.1:C --names FILE
  expected.py expected --api https://127.0.0.1:P --ca F --token-file F
  expected.py actual   < `ferryctl service list -o json`

Both print one line per frontend, sorted: "ADDR:PORT/PROTO B1 B2 ..." with
the backends "ADDR:PORT" sorted (IPv6 addresses in brackets), nothing after
the frontend when it has no backend.

Where the objects come from:
  --control: GET /objects/KIND/NS/NAME of the control API for every
    "KIND NS NAME" line of FILE (the objects a test wrote; a 404 is an
    object deleted since). The control API is not an API request: it
    neither appears in GET /requests nor takes an injected failure.
  --api: the paged list of /api/v1/services and
    /apis/discovery.k8s.io/v1/endpointslices through the API itself, with
    User-Agent "ferry-test-expected" (tests filter ferryd's requests on
    "ferryd"). Only for groups that inject no failure: an injection with a
    count would be spent on these requests.

Rules: only the ones the tests' objects exercise, not all of
shared/spec/kube-proxy-behaviour.md:
  - Services and EndpointSlices labelled service.kubernetes.io/service-proxy-name
    or service.kubernetes.io/headless are ignored (B2).
  - Only type ClusterIP (or absent) Services count; headless ones
    (clusterIP "None" or empty) are ignored (B1). clusterIPs[i] pairs with
    its own family (B3); absent clusterIPs means [clusterIP].
  - A frontend per cluster IP and service port (port, protocol: B4).
  - Its backends: EndpointSlices of the same namespace whose
    kubernetes.io/service-name label names the Service and whose addressType
    is the cluster IP's family (B6); the slice port with the same name and
    protocol as the service port ("" and TCP when absent), skipping ports
    without a number (B7); endpoints whose addresses[0] is set (B8) and whose
    conditions.ready is not false (B10, B11: no terminating fallback, no
    topology, no traffic policies: the tests' objects use none of them).
    The same address:port from several slices is one backend (B9).
"""

import argparse
import ipaddress
import json
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

IGNORE_LABELS = ("service.kubernetes.io/service-proxy-name", "service.kubernetes.io/headless")
SERVICE_NAME = "kubernetes.io/service-name"
KIND_PATHS = {"Service": "/api/v1/services",
              "EndpointSlice": "/apis/discovery.k8s.io/v1/endpointslices"}


def hostport(addr, port):
    ip = ipaddress.ip_address(addr)
    return ("[%s]:%d" if ip.version == 6 else "%s:%d") % (ip, port)


def labels(obj):
    return (obj.get("metadata") or {}).get("labels") or {}


def ignored(obj):
    return any(k in labels(obj) for k in IGNORE_LABELS)


def family(addr):
    try:
        return ipaddress.ip_address(addr).version
    except ValueError:
        return None


def expected(services, slices):
    by_service = {}
    for sl in slices:
        if ignored(sl):
            continue
        md = sl.get("metadata") or {}
        owner = labels(sl).get(SERVICE_NAME)
        if owner:
            by_service.setdefault((md.get("namespace") or "default", owner), []).append(sl)
    lines = []
    for svc in services:
        if ignored(svc):
            continue
        md, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        if spec.get("type", "ClusterIP") != "ClusterIP":
            continue
        ips = spec.get("clusterIPs") or [spec.get("clusterIP") or ""]
        mine = by_service.get((md.get("namespace") or "default", md["name"]), [])
        for ip in ips:
            fam = family(ip) if ip not in ("", "None") else None
            if fam is None:
                break
            for p in spec.get("ports") or []:
                name, proto = p.get("name") or "", p.get("protocol") or "TCP"
                backends = set()
                for sl in mine:
                    if sl.get("addressType") != "IPv%d" % fam:
                        continue
                    ports = [sp.get("port") for sp in sl.get("ports") or []
                             if (sp.get("name") or "") == name
                             and (sp.get("protocol") or "TCP") == proto and sp.get("port")]
                    if not ports:
                        continue
                    for ep in sl.get("endpoints") or []:
                        addrs = ep.get("addresses") or []
                        if not addrs or (ep.get("conditions") or {}).get("ready") is False:
                            continue
                        backends.add(hostport(addrs[0], ports[0]))
                lines.append(" ".join(["%s/%s" % (hostport(ip, p["port"]), proto)]
                                      + sorted(backends)))
    return sorted(lines)


def actual(rows):
    lines = []
    for s in rows:
        backends = sorted(hostport(b["address"], b["port"]) for b in s.get("backends") or [])
        lines.append(" ".join(["%s/%s" % (hostport(s["address"], s["port"]), s["protocol"])]
                              + backends))
    return sorted(lines)


def from_control(base, names_file):
    seen, objs = set(), {"Service": [], "EndpointSlice": []}
    with open(names_file) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 3 or tuple(parts) in seen or parts[0] not in objs:
                continue
            seen.add(tuple(parts))
            kind, ns, name = parts
            url = "%s/objects/%s/%s/%s" % (base, kind, urllib.parse.quote(ns), urllib.parse.quote(name))
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    objs[kind].append(json.load(r))
            except urllib.error.HTTPError as e:
                if e.code != 404:
                    raise
    return objs["Service"], objs["EndpointSlice"]


def from_api(base, ca, token_file):
    ctx = ssl.create_default_context(cafile=ca)
    with open(token_file) as f:
        token = f.read().strip()
    out = []
    for kind in ("Service", "EndpointSlice"):
        items, cont = [], ""
        while True:
            q = {"limit": "500"}
            if cont:
                q["continue"] = cont
            req = urllib.request.Request(base + KIND_PATHS[kind] + "?" + urllib.parse.urlencode(q), headers={
                "Authorization": "Bearer " + token, "Accept": "application/json",
                "User-Agent": "ferry-test-expected"})
            with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
                page = json.load(r)
            items += page["items"]
            cont = page["metadata"].get("continue") or ""
            if not cont:
                break
        out.append(items)
    return out[0], out[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("expected", "actual"))
    p.add_argument("--control")
    p.add_argument("--names")
    p.add_argument("--api")
    p.add_argument("--ca")
    p.add_argument("--token-file")
    a = p.parse_args()
    if a.mode == "actual":
        lines = actual(json.load(sys.stdin))
    elif a.control:
        lines = expected(*from_control(a.control, a.names))
    else:
        lines = expected(*from_api(a.api, a.ca, a.token_file))
    sys.stdout.write("".join(line + "\n" for line in lines))


if __name__ == "__main__":
    main()
