#!/usr/bin/env python3
"""Write a deterministic cluster state: N Services x M endpoints, as a v1 List
in JSON (what `kubectl get services,endpointslices -A -o json` prints).

Service i gets ClusterIP 10.96.0.0/12 + i + 1 and port 80/TCP (named http);
its endpoints live in 198.18.0.0/15 and listen on 8080.
"""
import argparse
import ipaddress
import json
import sys

SVC_NET = ipaddress.ip_network("10.96.0.0/12")
POD_NET = ipaddress.ip_network("198.18.0.0/15")
POD_BASE = int(POD_NET.network_address)


def ipv4_text(n):
    """The dotted quad of n; ipaddress's objects would cost most of the run."""
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def service(i):
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": f"svc-{i}", "namespace": "bench"},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": str(SVC_NET[i + 1]),
            "clusterIPs": [str(SVC_NET[i + 1])],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
        },
    }


def slice_(i, endpoints, pods):
    eps = []
    wrap = pods or POD_NET.num_addresses - 2
    for j in range(endpoints):
        ip = ipv4_text(POD_BASE + 1 + (i * endpoints + j) % wrap)
        eps.append({"addresses": [ip], "conditions": {"ready": True}, "nodeName": "node-a"})
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"svc-{i}-1", "namespace": "bench",
                     "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": eps,
    }


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("services", type=int)
    ap.add_argument("endpoints", type=int)
    ap.add_argument("--pods", type=int, default=0,
                    help="reuse this many pod IPs round-robin (0: the whole pod range)")
    args = ap.parse_args(argv)
    if args.services + 1 >= SVC_NET.num_addresses:
        sys.exit("too many services for 10.96.0.0/12")
    return args


def cluster(services, endpoints, pods):
    """The v1 List, as a dict."""
    items = [service(i) for i in range(services)]
    items += [slice_(i, endpoints, pods) for i in range(services)]
    return {"apiVersion": "v1", "kind": "List", "items": items}


def main():
    args = parse_args()
    # dumps, not dump: only the one-shot encoder is the C one (3-4x faster).
    sys.stdout.write(json.dumps(cluster(args.services, args.endpoints, args.pods)))


if __name__ == "__main__":
    main()
