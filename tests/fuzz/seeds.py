#!/usr/bin/env python3
"""Seed corpus of the fuzz targets (tests/fuzz/fuzz_*.c), from the fixtures
(../shared/fixtures) and the YAML of the kernel tests: one folder per target
under OUT (a build folder; nothing here is committed).

    seeds.py [--fixtures DIR] OUT
"""
import argparse
import base64
import glob
import json
import os
import re
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?\s*$")


def heredocs():
    """The YAML bodies of the kernel tests' here-documents (shell expansions
    replaced by a plain word)."""
    out = []
    for path in sorted(glob.glob(os.path.join(REPO, "tests/kernel/*.sh"))):
        lines = open(path, encoding="utf-8").read().split("\n")
        i = 0
        while i < len(lines):
            m = HEREDOC.search(lines[i])
            i += 1
            if not m:
                continue
            body = []
            while i < len(lines) and lines[i].strip() != m.group(1):
                body.append(lines[i])
                i += 1
            text = re.sub(r"\$\{?\w+\}?|\$\([^)]*\)", "1", "\n".join(body) + "\n")
            if "kind:" in text:
                out.append(text)
    return out


def objects(texts):
    """Every API object of the YAML or JSON texts (Lists flattened)."""
    objs = []
    for text in texts:
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            continue
        for doc in docs:
            if isinstance(doc, dict) and isinstance(doc.get("items"), list):
                objs.extend(o for o in doc["items"] if isinstance(o, dict))
            elif isinstance(doc, dict):
                objs.append(doc)
    return objs


def north_south():
    """A Node and Services whose NodePort, LoadBalancer and externalIPs fields
    are partly bad (each such field is left out, never the Service)."""
    svc = {"kind": "Service", "metadata": {"name": "ns", "namespace": "n"},
           "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.1", "fd00::1"],
                    "externalTrafficPolicy": "Local", "healthCheckNodePort": 31999,
                    "allocateLoadBalancerNodePorts": True,
                    "externalIPs": ["203.0.113.5", "not-an-ip", "2001:db8::5"],
                    "loadBalancerSourceRanges": ["10.0.0.0/8", "bogus", "2001:db8::/33"],
                    "ports": [{"name": "a", "port": 80, "nodePort": 30080},
                              {"name": "b", "port": 81, "nodePort": 8080}]},
           "status": {"loadBalancer": {"ingress": [
               {"ip": "198.51.100.1"}, {"ip": "198.51.100.2", "ipMode": "Proxy"},
               {"hostname": "lb.example.com"}, {"ip": "2001:db8::10", "ipMode": "VIP"}]}}}
    node = {"kind": "Node", "metadata": {"name": "node-a",
                                         "labels": {"topology.kubernetes.io/zone": "zone-1"}},
            "status": {"addresses": [{"type": "InternalIP", "address": "198.51.100.1"},
                                     {"type": "ExternalIP", "address": "2001:db8::1"},
                                     {"type": "Hostname", "address": "node-a"}]}}
    return [svc, node]


def stream(objs):
    """A watch stream over objs: each one added, modified and deleted, with a
    bookmark and an expiry."""
    lines = []
    for i, o in enumerate(objs):
        for t in ("ADDED", "MODIFIED", "DELETED"):
            o = dict(o, metadata=dict(o.get("metadata") or {}, resourceVersion=str(100 + i)))
            lines.append(json.dumps({"type": t, "object": o}, separators=(",", ":"), default=str))
    lines.append('{"type":"BOOKMARK","object":{"kind":"Service","metadata":{"resourceVersion":"999"}}}')
    lines.append('{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}')
    return "\n".join(lines) + "\n"


def answer(status, body="", headers=(), result=0):
    """One scripted answer of fuzz_watch: "STATUS RESULT", the header lines
    as curl hands them over, the body."""
    lines = ["HTTP/1.1 %d X\r\n" % status] + ["%s\r\n" % h for h in headers] + ["\r\n"]
    return "%d %d\n" % (status, result) + "".join(lines) + body


def status_body(code, reason):
    return json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                       "reason": reason, "code": code})


def watch_scripts(objs):
    """Answers of a server with streaming lists, and of one without."""
    svcs = [o for o in objs if o.get("kind") == "Service"][:4]
    json_h = ["Content-Type: application/json"]
    events = stream(svcs)
    end = ('{"type":"BOOKMARK","object":{"kind":"Service","metadata":{"resourceVersion":"50",'
           '"annotations":{"k8s.io/initial-events-end":"true"}}}}\n')
    initial = "".join('{"type":"ADDED","object":%s}\n' % json.dumps(o, default=str) for o in svcs)
    page = {"kind": "ServiceList", "apiVersion": "v1",
            "metadata": {"resourceVersion": "10", "continue": "next"}, "items": svcs[:2]}
    last = dict(page, metadata={"resourceVersion": "11"}, items=svcs[2:])
    streaming = [answer(200, initial + end, json_h), answer(200, events, json_h),
                 answer(410, status_body(410, "Expired"), json_h),
                 answer(200, initial + end, json_h)]
    paged = [answer(422, status_body(422, "Invalid"), json_h),
             answer(200, json.dumps(page, default=str), json_h),
             answer(200, json.dumps(last, default=str), json_h),
             answer(200, events, json_h),
             answer(429, status_body(429, "TooManyRequests"), json_h + ["Retry-After: 86400"]),
             answer(503, "busy", ["Retry-After: Wed, 21 Oct 2037 07:28:00 GMT"]),
             answer(401, status_body(401, "Unauthorized"), json_h),
             answer(0, "", (), 1), answer(200, events[:200], json_h, 2),
             answer(200, events[:100], json_h, 3)]
    return ["\0".join(streaming), "\0".join(paged)]


KUBECONFIG = """apiVersion: v1
kind: Config
current-context: c
clusters:
- name: k
  cluster:
    server: {server}
{cluster}
users:
- name: u
  user:
{user}
contexts:
- name: c
  context: {{cluster: k, user: u}}
"""
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def kubeconfigs():
    b64 = base64.b64encode(PEM.encode()).decode()
    variants = [
        ("https://127.0.0.1:6443", "    certificate-authority: pki/ca.crt", "    tokenFile: token"),
        ("https://[::1]:6443/prefix", "    certificate-authority-data: " + b64, "    token: abc"),
        ("https://api.example:443", "    insecure-skip-tls-verify: true\n    tls-server-name: kubernetes",
         "    client-certificate-data: %s\n    client-key-data: %s" % (b64, b64)),
        ("127.0.0.1:6443", "    certificate-authority: ca.crt",
         "    client-certificate: ca.crt\n    client-key: ca.crt"),
        ("http://localhost", "    certificate-authority: /nonexistent", "    exec: {command: x}"),
    ]
    out = [KUBECONFIG.format(server=s, cluster=c, user=u) for s, c, u in variants]
    out.append('{"apiVersion":"v1","kind":"Config","current-context":"c","contexts":'
               '[{"name":"c","context":{"cluster":"k"}}],"clusters":[{"name":"k",'
               '"cluster":{"server":"https://10.0.0.1"}}]}\n')
    return out


def write(out, target, seeds):
    folder = os.path.join(out, target)
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):
        os.unlink(os.path.join(folder, old))
    for i, seed in enumerate(seeds):
        data = seed if isinstance(seed, bytes) else seed.encode()
        with open(os.path.join(folder, "seed-%03d" % i), "wb") as f:
            f.write(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default=os.path.join(REPO, "../shared/fixtures"))
    ap.add_argument("out")
    args = ap.parse_args()

    files = sorted(glob.glob(os.path.join(args.fixtures, "*.yaml")) +
                   glob.glob(os.path.join(args.fixtures, "*.json")))
    if not files:
        sys.exit("seeds.py: no fixtures in %s" % args.fixtures)
    texts = [open(p, encoding="utf-8").read() for p in files] + heredocs()
    objs = objects(texts) + north_south()
    compact = [json.dumps(o, separators=(",", ":"), default=str) for o in objs]
    doc_texts = texts + [json.dumps(objs, default=str)]

    write(args.out, "fuzz_decode", compact + [json.dumps(objs, default=str)])
    write(args.out, "fuzz_watch_event", [stream([o]) for o in objs] + [stream(objs[:8])])
    write(args.out, "fuzz_linebuf", [bytes([255, 7]) + stream(objs[:4]).encode(),
                                     bytes([40, 3]) + b"ab\r\ncd\n\n" + b"x" * 50 + b"\n"])
    write(args.out, "fuzz_watch", watch_scripts(objs))
    write(args.out, "fuzz_kubeconfig", kubeconfigs())
    write(args.out, "fuzz_yaml", [b"\x07" + t.encode() for t in doc_texts])
    write(args.out, "fuzz_file_docs", doc_texts)
    write(args.out, "fuzz_json_tree", compact[:40] + [
        '{"s": "a\\"b\\\\c\\/\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00\\u0000x"}',
        '[0, -0, 1.5e3, -12345678901234567, 1e999, 007, 1., true, false, null, "", [], {}]',
        '\ufeff {"a" : [ {"b": {"c": []}} ] } '])
    write(args.out, "fuzz_json_items", [t for t in doc_texts if t.lstrip()[:1] in "[{"] +
          [json.dumps({"kind": "ServiceList", "metadata": {"resourceVersion": "7"}, "items": objs},
                      default=str)])


if __name__ == "__main__":
    main()
