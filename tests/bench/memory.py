#!/usr/bin/env python3
"""Helpers of tests/bench/memory.sh.

  memory.py state N E json|yaml OUT   scripts/gen-cluster.py's N x E state:
      the JSON it writes, or the same List as YAML in kubectl's block style
      (keys sorted, "- " items at their key's indent, strings plain unless
      YAML would read them as something else)
  memory.py objects N E OUT           the same objects and the Node, for the
      stand-in API server's POST /objects
  memory.py change PATH               one endpoint of PATH's first slice moved
      to another address, written beside it and renamed over it (a change
      ferryd's file source reloads the file for)
"""
import json
import os
import re
import runpy
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
GEN = os.path.join(REPO, "scripts/gen-cluster.py")

PLAIN = re.compile(r"[A-Za-z0-9_./-]+")
NUMBER = re.compile(r"[-+]?[0-9_]*\.?[0-9_]*([eE][-+]?[0-9]+)?|0x[0-9a-fA-F]+|0o[0-7]+")
WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def scalar(v):
    if v is True or v is False:
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    if v == {}:
        return "{}"
    if v == []:
        return "[]"
    if PLAIN.fullmatch(v) and not NUMBER.fullmatch(v) and v.lower() not in WORDS:
        return v
    return json.dumps(v)


def emit(out, v, ind):
    pad = " " * ind
    if isinstance(v, dict):
        for k in sorted(v):
            x = v[k]
            if isinstance(x, dict) and x:
                out.append("%s%s:" % (pad, scalar(k)))
                emit(out, x, ind + 2)
            elif isinstance(x, list) and x:
                out.append("%s%s:" % (pad, scalar(k)))
                emit(out, x, ind)
            else:
                out.append("%s%s: %s" % (pad, scalar(k), scalar(x)))
        return
    for x in v:
        if isinstance(x, (dict, list)) and x:
            sub = []
            emit(sub, x, ind + 2)
            sub[0] = pad + "- " + sub[0][ind + 2:]
            out.extend(sub)
        else:
            out.append("%s- %s" % (pad, scalar(x)))


def items(n, e):
    g = runpy.run_path(GEN)
    return [g["service"](i) for i in range(n)] + [g["slice_"](i, e, 0) for i in range(n)]


def objects(n, e, path):
    node = {"kind": "Node", "apiVersion": "v1",
            "metadata": {"name": "node-a", "labels": {"topology.kubernetes.io/zone": "zone-a"}},
            "status": {"addresses": [{"type": "InternalIP", "address": "198.18.0.1"}]}}
    with open(path, "w") as f:
        f.write(json.dumps({"items": items(n, e) + [node]}))


def state(n, e, fmt, path):
    doc = {"apiVersion": "v1", "kind": "List", "items": items(n, e)}
    with open(path, "w") as f:
        if fmt == "json":
            f.write(json.dumps(doc))
        else:
            out = []
            emit(out, doc, 0)
            f.write("\n".join(out) + "\n")


def change(path):
    with open(path, "rb") as f:
        data = f.read()
    data, n = re.subn(rb"198\.18\.0\.1(?![0-9])", b"198.19.255.254", data, count=1)
    if n != 1:
        sys.exit("memory.py: no endpoint 198.18.0.1 in %s" % path)
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.rename(path + ".tmp", path)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "state":
        state(int(args[0]), int(args[1]), args[2], args[3])
    elif cmd == "objects":
        objects(int(args[0]), int(args[1]), args[2])
    elif cmd == "change":
        change(args[0])
    else:
        sys.exit("memory.py: unknown command %s" % cmd)
