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
    for j in range(endpoints):
        ip = POD_NET[1 + (i * endpoints + j) % (pods or POD_NET.num_addresses - 2)]
        eps.append({"addresses": [str(ip)], "conditions": {"ready": True}, "nodeName": "node-a"})
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"svc-{i}-1", "namespace": "bench",
                     "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": eps,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("services", type=int)
    ap.add_argument("endpoints", type=int)
    ap.add_argument("--pods", type=int, default=0,
                    help="reuse this many pod IPs round-robin (0: the whole pod range)")
    args = ap.parse_args()
    if args.services + 1 >= SVC_NET.num_addresses:
        sys.exit("too many services for 10.96.0.0/12")
    items = [service(i) for i in range(args.services)]
    items += [slice_(i, args.endpoints, args.pods) for i in range(args.services)]
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout)


if __name__ == "__main__":
    main()
