#!/usr/bin/env python3
"""Acts while ferryd pages through a list: waits (20 s at most) until
ferryd has asked the stand-in for a continue page of both Services and
EndpointSlices since request MARK, then at once PUTs each object given and,
with --compact, compacts the history (which makes the continue tokens too
old). Prints the time of the writes. Exit 1 when no such page came.

  mid_paging.py CONTROL_URL MARK [--compact] [OBJECT_JSON...]
"""
import json
import sys
import time
import urllib.request


def call(base, path, method, body):
    req = urllib.request.Request(base + path, data=body.encode(), method=method)
    urllib.request.urlopen(req, timeout=10).read()


def paging(base, mark):
    url = base + "/requests?since=%d" % (mark + 1)
    r = json.load(urllib.request.urlopen(url, timeout=10))
    kinds = set(x["kind"] for x in r
                if x.get("user_agent") == "ferryd" and x["query"].get("continue"))
    return {"Service", "EndpointSlice"} <= kinds


def main():
    base, mark, rest = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    compact = "--compact" in rest
    objs = [a for a in rest if a != "--compact"]
    deadline = time.time() + 20
    while not paging(base, mark):
        if time.time() > deadline:
            sys.exit("no list page with a continue token within 20 s")
        time.sleep(0.005)
    for o in objs:
        call(base, "/objects", "PUT", o)
    if compact:
        call(base, "/compact", "POST", "{}")
    print("%.6f" % time.time())


main()
