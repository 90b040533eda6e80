#!/usr/bin/env bash
# The shared cluster fixtures (../shared/fixtures, see its README): ferryd
# reads kubectl's v1 List as YAML and JSON and the multi-document YAML that
# created the objects; `ferryctl service list -o json` must equal the
# README's table; and traffic to the snapshot's ClusterIPs reaches pods that
# hold the snapshot's endpoint addresses.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
pod dns-a 198.18.1.53 "" --udp 53 --tcp 53
pod dns-b 198.18.2.53 "" --udp 53 --tcp 53
pod web-11 198.18.1.11 "" --tcp 8080 --tcp 9090
pod web-12 198.18.2.12 "" --tcp 8080 --tcp 9090
pod web-13 198.18.1.13 "" --tcp 8080 --tcp 9090
pod api-21 198.18.1.21 fd00:198:18:1::21 --tcp 8443
pod edge-31 198.18.1.31 "" --tcp 8080

# compare_table MODE: ferryctl's service list (stdin) against the README's
# table. MODE "snapshot": every row of the table. MODE "objects": the
# objects as created, before the API server allocated ClusterIPs: only
# kube-dns (10.96.0.10 is written in the object) can be programmed (B3).
# Prints "equal", or what is missing and what is unexpected.
compare_table() {
	"$PYTHON" -c '
import json, sys

def row(kind, addr, port, proto, backends, scope="all"):
    return (kind, addr, port, proto, scope, tuple(sorted(backends)))

A = "active"
dns = [("198.18.1.53", 53, A), ("198.18.2.53", 53, A)]
web = lambda port: [("198.18.1.11", port, A), ("198.18.2.12", port, A)]
api4, api6 = [("198.18.1.21", 8443, A)], [("fd00:198:18:1::21", 8443, A)]
edge = [("198.18.1.31", 8080, A)]
table = [
    row("ClusterIP", "10.96.0.10", 53, "UDP", dns),
    row("ClusterIP", "10.96.0.10", 53, "TCP", dns),
    row("ClusterIP", "10.96.83.231", 80, "TCP", web(8080)),
    row("ClusterIP", "10.96.83.231", 9090, "TCP", web(9090)),
    row("ClusterIP", "10.96.243.168", 443, "TCP", api4),
    row("NodePort", "0.0.0.0", 30443, "TCP", api4),
    row("ClusterIP", "fd00:10:96::279f", 443, "TCP", api6),
    row("NodePort", "::", 30443, "TCP", api6),
    row("ClusterIP", "10.96.102.20", 80, "TCP", edge),
    row("ClusterIP", "10.96.19.140", 80, "TCP", []),
]
# shop/edge is externalTrafficPolicy Local: its NodePort, VIP-mode LB IP
# and externalIP carry the Cluster set for the node itself (B23) and the
# local set (198.18.1.31 is on node-a) for traffic from outside (B16).
for scope in ("all", "external"):
    table += [row("NodePort", "0.0.0.0", 32752, "TCP", edge, scope),
              row("LoadBalancer", "192.0.2.10", 80, "TCP", edge, scope),
              row("ExternalIP", "192.0.2.50", 80, "TCP", edge, scope)]
want = set(table[:2] if sys.argv[1] == "objects" else table)
got = set()
for s in json.load(sys.stdin):
    backends = [(b["address"], b["port"], b["state"]) for b in s["backends"]]
    for f in s["frontends"]:
        got.add(row(f["kind"], f["address"], f["port"], s["protocol"], backends, f["scope"]))
fmt = lambda r: "%s %s:%d/%s(%s)->%s" % (r[0], r[1], r[2], r[3], r[4],
                                          ",".join("%s:%d(%s)" % b for b in r[5]) or "none")
missing, unexpected = sorted(want - got), sorted(got - want)
if not missing and not unexpected:
    print("equal")
for r in missing:
    print("missing " + fmt(r))
for r in unexpected:
    print("unexpected " + fmt(r))
' "$1" | tr '\n' ' ' | sed 's/ $//'
}

# Every frontend of the README's table is compared exactly (B22-B25), so an
# extra frontend fails this test too; the per-packet path's answers to them
# are tests/kernel/nodeport.sh's.

SNAP=$FIXTURES/cluster-snapshot.yaml
if [ ! -r "$SNAP" ]; then
	not_ok "fixtures present" "$SNAP not readable"
	finish
fi

for f in cluster-snapshot.yaml cluster-snapshot.json cluster-objects.yaml; do
	mode=snapshot
	[ "$f" = cluster-objects.yaml ] && mode=objects
	ferryd_reset
	ferryd_start "$FIXTURES/$f" || continue
	expect "B1 B3 B4 B7 B11 B22 B24 B25 fixture $f: ferryctl service list equals the README table ($mode)" \
		"$(service_list_json | compare_table "$mode")" equal
	"$FERRYCTL" --bpffs "$BPFFS" service list >"$LOGDIR/service-list-$f.txt" 2>&1

	expect_match "B10 fixture $f: kube-dns answers over UDP (dig @10.96.0.10)" \
		"$(in_client dig @10.96.0.10 +short +time=2 +tries=1 TXT whoami.test 2>&1)" '^"dns-[ab]"$'
	[ "$mode" = snapshot ] || continue

	expect "B14 fixture $f: shop/empty (endpoints: null, ports: null) refuses with ECONNREFUSED" \
		"$(field error "$(probe tcp 10.96.19.140 80)")" ECONNREFUSED
	[ "$f" = cluster-snapshot.yaml ] || continue

	expect_match "B4 fixture: kube-dns answers over TCP on the same port (dig +tcp)" \
		"$(in_client dig @10.96.0.10 +tcp +short +time=2 +tries=1 TXT whoami.test 2>&1)" '^"dns-[ab]"$'
	t=$(curl_tally 40 http://10.96.83.231/)
	note "curl x40: $t"
	expect "B11 fixture: shop/web :80 reaches .11 and .12, never the terminating .13 (x40)" \
		"$(names_of "$t")" "web-11 web-12"
	expect_match "B7 fixture: shop/web :9090 (listed before http in the slice) reaches port 9090" \
		"$(field reply "$(probe tcp --path /port 10.96.83.231 9090)")" '^web-1[12]:9090$'
	expect_match "B7 fixture: shop/web :80 (named targetPort) reaches port 8080" \
		"$(field reply "$(probe tcp --path /port 10.96.83.231 80)")" '^web-1[12]:8080$'
	expect "B3 B6 fixture: shop/api IPv4 ClusterIP :443 reaches 8443" \
		"$(field reply "$(probe tcp --path /port 10.96.243.168 443)")" api-21:8443
	expect "B3 B6 fixture: shop/api IPv6 ClusterIP :443 reaches 8443" \
		"$(field reply "$(probe tcp --path /port fd00:10:96::279f 443)")" api-21:8443
	expect "fixture: shop/edge ClusterIP :80 reaches 198.18.1.31:8080" \
		"$(field reply "$(probe tcp --path /port 10.96.102.20 80)")" edge-31:8080
	expect "B24 fixture: shop/edge's ipMode Proxy ingress 192.0.2.11 is not captured" \
		"$(field error "$(probe tcp 192.0.2.11 80)")" ENETUNREACH
	expect "B23 B24 fixture: shop/edge's LB IP 192.0.2.10 reaches its pod from the node" \
		"$(field reply "$(probe tcp --path /port 192.0.2.10 80)")" edge-31:8080
	expect "B23 B25 fixture: shop/edge's externalIP 192.0.2.50 reaches its pod from the node" \
		"$(field reply "$(probe tcp --path /port 192.0.2.50 80)")" edge-31:8080
done

finish
