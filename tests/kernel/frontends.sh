#!/usr/bin/env bash
# The frontends of a service port as the maps hold them (B22-B26, B30):
# every address a service port answers on (its ClusterIP, its NodePort as
# the family's wildcard, its LB IPs, its externalIPs) is its own
# frontend entry (ferry_services4 or ferry_services6), all with one svc_id, revision and backend count,
# each with its own flags; externalTrafficPolicy Local adds a second set
# whose keys have scope 1 and hold the local endpoints only (B16, B23);
# loadBalancerSourceRanges are LPM entries keyed by the set's svc_id (B26);
# VIP markers (B17) exist for ClusterIPs only. ferry_node_addrs holds
# --node-ips, the first of each family marked SNAT. Two Services with one
# nodePort: the later one goes without that frontend only, and takes it
# over when the first is deleted. An added externalIP is one map write; a
# restarted ferryd adopts everything and writes nothing. From the node
# itself, the socket LB answers the NodePort on 127.0.0.1, ::1 and a node
# address, the LB IPs and the externalIPs (B22, B23, B25).
#
# ferryd runs in the node namespace (FERRYD_NETNS), as on a node: its
# loopback is the clients' loopback. The node addresses (192.0.2.1,
# 192.0.2.2, 2001:db8::1) are on no device: the per-packet path has nothing
# to attach to, and nothing but the socket LB is exercised; a connection it
# does not translate has no route.
# shellcheck disable=SC2317 # functions called through wait_until
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
pod w-1 198.18.90.1 fd00:198:18::90:1 --tcp 8080
pod w-2 198.18.90.2 fd00:198:18::90:2 --tcp 8080
pod w-3 198.18.90.3 fd00:198:18::90:3 --tcp 8080

SRC=$WORK/src
mkdir "$SRC"
MPORT=19690
MURL=http://127.0.0.1:$MPORT

# --- objects ---------------------------------------------------------------

# slice NAME SERVICE FAMILY ENDPOINT...: an EndpointSlice; ENDPOINT is
# ADDR@NODE.
slice() {
	local name=$1 svc=$2 fam=$3 e
	shift 3
	cat <<EOF
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name, namespace: fe, labels: {kubernetes.io/service-name: $svc}}
addressType: IPv$fam
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
EOF
	for e; do echo "- {addresses: [\"${e%@*}\"], conditions: {ready: true}, nodeName: ${e#*@}}"; done
}

# np EXTERNAL-IP...: Service np, NodePort 30090, dual-stack, on w-1 and w-2.
np() {
	local ips='"203.0.113.90", "2001:db8:113::90"' ip
	for ip; do ips+=", \"$ip\""; done
	cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: np, namespace: fe}
spec:
  type: NodePort
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  clusterIP: 10.96.90.1
  clusterIPs: [10.96.90.1, "fd00:10:96::90:1"]
  externalIPs: [$ips]
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080, nodePort: 30090}]
EOF
	slice np-4 np 4 198.18.90.1@node-a 198.18.90.2@node-a
	slice np-6 np 6 fd00:198:18::90:1@node-a fd00:198:18::90:2@node-a
}

# lb: Service lb, LoadBalancer with externalTrafficPolicy Local, source
# ranges, dual-stack; w-1 on this node, w-3 on node-b.
lb() {
	cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: fe}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  healthCheckNodePort: 30092
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  clusterIP: 10.96.90.2
  clusterIPs: [10.96.90.2, "fd00:10:96::90:2"]
  loadBalancerSourceRanges: [192.0.2.0/24, "2001:db8:1::/48"]
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080, nodePort: 30091}]
status:
  loadBalancer:
    ingress: [{ip: 198.51.100.90}, {ip: "2001:db8:51::90"}]
EOF
	slice lb-4 lb 4 198.18.90.1@node-a 198.18.90.3@node-b
	slice lb-6 lb 6 fd00:198:18::90:1@node-a fd00:198:18::90:3@node-b
}

# np2: Service np2 (IPv4), the same nodePort as np, on w-3.
np2() {
	cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: np2, namespace: fe}
spec:
  type: NodePort
  clusterIP: 10.96.90.3
  externalIPs: [203.0.113.92]
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080, nodePort: 30090}]
EOF
	slice np2-4 np2 4 198.18.90.3@node-b
}

# --- reading the maps ------------------------------------------------------

# dump MAP: bpftool's JSON dump of a pinned map.
dump() { bpftool -j map dump pinned "$BPFFS/$1"; }

# svc_rows: ferry_services4 and ferry_services6, one line per entry, sorted:
# "ADDR PORT PROTO SCOPE SVC_ID REV COUNT FLAGS" (FLAGS in hex).
svc_rows() {
	{ dump ferry_services4; echo; dump ferry_services6; } | "$PYTHON" -c '
import ipaddress, json, socket, struct, sys

def addr(a):
    if isinstance(a, int):  # svc_key4: the IPv4 address alone
        return str(ipaddress.IPv4Address(struct.pack("<I", a)))
    return str(ipaddress.IPv6Address(b"".join(struct.pack("<I", w) for w in a)))

for part in sys.stdin.read().split("\n\n"):
    for e in json.loads(part):
        k, v = e["formatted"]["key"], e["formatted"]["value"]["v"]
        print(addr(k["addr"]), socket.ntohs(k["port"]), k["proto"], k["scope"],
              v["svc_id"], v["rev"], v["count"], hex(v["flags"]))' | sort
}

# row ADDR PORT SCOPE: "SVC_ID REV COUNT FLAGS" of that TCP entry, or
# "absent".
row() {
	local r
	r=$(svc_rows | awk -v a="$1" -v p="$2" -v s="$3" '$1 == a && $2 == p && $3 == 6 && $4 == s {print $5, $6, $7, $8}')
	echo "${r:-absent}"
}

# same_set KEY...: "ID REV COUNT" shared by the entries KEY ("ADDR PORT
# SCOPE"), or what differs.
same_set() {
	local k sets=()
	for k; do
		# shellcheck disable=SC2086 # ADDR PORT SCOPE
		sets+=("$(row $k | cut -d' ' -f1-3)")
	done
	printf '%s\n' "${sets[@]}" | sort -u | tr '\n' ';' | sed 's/;$//'
}

# flags_of KEY...: the flags of each entry, in order.
flags_of() {
	local k out=()
	for k; do
		# shellcheck disable=SC2086
		out+=("$(row $k | cut -d' ' -f4)")
	done
	echo "${out[*]}"
}

# vip_markers: the addresses with a VIP marker, sorted.
vip_markers() { svc_rows | awk '$2 == 0 && $3 == 0 && $8 == "0x1" {print $1}' | sort | tr '\n' ' ' | sed 's/ $//'; }

# ranges: ferry_source_ranges as "SVC_ID:PREFIX" sorted.
ranges() {
	dump ferry_source_ranges | "$PYTHON" -c '
import ipaddress, json, socket, struct, sys
for e in json.load(sys.stdin):
    k = e["formatted"]["key"]
    raw = b"".join(struct.pack("<I", w) for w in k["addr"])
    ip, bits = ipaddress.IPv6Address(raw), k["prefixlen"] - 32
    if ip.ipv4_mapped is not None:
        ip, bits = ip.ipv4_mapped, bits - 96
    print("%d:%s/%d" % (socket.ntohl(k["svc_id"]), ip, bits))' | sort | tr '\n' ' ' | sed 's/ $//'
}

# node_addrs: ferry_node_addrs as "ADDR=FLAGS" sorted.
node_addrs() {
	dump ferry_node_addrs | "$PYTHON" -c '
import ipaddress, json, struct, sys
for e in json.load(sys.stdin):
    raw = b"".join(struct.pack("<I", w) for w in e["formatted"]["key"]["addr"])
    ip = ipaddress.IPv6Address(raw)
    print("%s=%d" % (ip.ipv4_mapped or ip, e["formatted"]["value"]["flags"]))' | sort | tr '\n' ' ' | sed 's/ $//'
}

# snapshot: every map the sync engine writes, canonical.
snapshot() {
	local m
	for m in ferry_services4 ferry_services6 ferry_slots ferry_backends ferry_source_ranges; do
		echo "$m: $(dump $m | "$PYTHON" -c 'import json, sys; print(sorted(json.dumps(e["formatted"], sort_keys=True) for e in json.load(sys.stdin)))')"
	done
}

# writes_of GEN: the map writes ferryd logged for generation GEN ("none"
# when it logged none).
writes_of() {
	local w
	w=$(grep -o "generation $1: [0-9]* service ports desired, [0-9]* map writes" "$FERRYD_LOG" |
		tail -n 1 | sed 's/.* \([0-9]*\) map writes/\1/')
	echo "${w:-none}"
}

metric() {
	in_node curl -sS --max-time 5 "$MURL/metrics" 2>/dev/null |
		awk -v m="$1" '$1 == m {print $2; exit}'
}

# --- start -------------------------------------------------------------------

{ np; lb; } | write_source "$SRC/fe.yaml"
FERRYD_NETNS=$NODE ferryd_start "$SRC" --node-ips 192.0.2.1,2001:db8::1,192.0.2.2 \
	--max-backends 256 --metrics-addr "127.0.0.1:$MPORT" || finish
note "ferryctl service list:"
"$FERRYCTL" --bpffs "$BPFFS" service list | sed 's/^/#   /'

# --- one entry per frontend, one set ------------------------------------------

NP4=("10.96.90.1 80 0" "0.0.0.0 30090 0" "203.0.113.90 80 0")
NP6=("fd00:10:96::90:1 80 0" ":: 30090 0" "2001:db8:113::90 80 0")
expect_match "B22 B25 B30 np IPv4: ClusterIP, NodePort 0.0.0.0:30090 and externalIP are three entries of one svc_id, revision and count" \
	"$(same_set "${NP4[@]}")" '^[0-9]+ [0-9]+ 2$'
expect "B22 np IPv4: flags: ClusterIP none, NodePort EXTERNAL|NODE_PORT, externalIP EXTERNAL" \
	"$(flags_of "${NP4[@]}")" "0x0 0x30 0x10"
expect_match "B22 B25 np IPv6: ClusterIP, NodePort [::]:30090 and externalIP share one set" \
	"$(same_set "${NP6[@]}")" '^[0-9]+ [0-9]+ 2$'
expect "B22 np IPv6: the NodePort is the wildcard ::" "$(flags_of "${NP6[@]}")" "0x0 0x30 0x10"

LB4=("10.96.90.2 80 0" "0.0.0.0 30091 0" "198.51.100.90 80 0")
LB4X=("0.0.0.0 30091 1" "198.51.100.90 80 1")
expect_match "B23 B24 lb IPv4 Cluster set: ClusterIP, NodePort and LB IP share one set (both endpoints)" \
	"$(same_set "${LB4[@]}")" '^[0-9]+ [0-9]+ 2$'
expect "B24 B26 lb IPv4 Cluster set flags: NodePort EXT_LOCAL, LB IP LOAD_BALANCER|SOURCE_RANGES|EXT_LOCAL" \
	"$(flags_of "${LB4[@]}")" "0x0 0xb0 0x1d0"
expect_match "B16 lb IPv4 external set: scope-1 NodePort and LB IP, one set of the local endpoint only" \
	"$(same_set "${LB4X[@]}")" '^[0-9]+ [0-9]+ 1$'
expect "B16 lb IPv4 external set: same flags; no scope-1 ClusterIP" \
	"$(flags_of "${LB4X[@]}") $(row 10.96.90.2 80 1)" "0xb0 0x1d0 absent"
LB_ID=$(row 198.51.100.90 80 0 | cut -d' ' -f1)
LBX_ID=$(row 198.51.100.90 80 1 | cut -d' ' -f1)
if [ "$LB_ID" != "$LBX_ID" ]; then
	ok "B16 the external set has its own svc_id ($LBX_ID, Cluster set $LB_ID)"
else
	not_ok "B16 the external set has its own svc_id" "both $LB_ID"
fi
expect_match "B23 lb IPv6: both sets (NodePort ::, LB IP), scope 0 and 1" \
	"$(row :: 30091 0) / $(row 2001:db8:51::90 80 0) / $(row :: 30091 1) / $(row 2001:db8:51::90 80 1)" \
	'^[0-9]+ [0-9]+ 2 0xb0 / [0-9]+ [0-9]+ 2 0x1d0 / [0-9]+ [0-9]+ 1 0xb0 / [0-9]+ [0-9]+ 1 0x1d0$'
expect "B17 VIP markers for the ClusterIPs only (not LB IPs, externalIPs, the NodePort wildcard)" \
	"$(vip_markers)" "10.96.90.1 10.96.90.2 fd00:10:96::90:1 fd00:10:96::90:2"
expect "frontends: 16 frontend entries + 4 VIP markers in ferry_services4 and ferry_services6" \
	"$(svc_rows | wc -l)" 20

LB6_ID=$(row 2001:db8:51::90 80 0 | cut -d' ' -f1)
LB6X_ID=$(row 2001:db8:51::90 80 1 | cut -d' ' -f1)
expect "B26 ferry_source_ranges: each lb set's own family's prefixes under its svc_id, nothing for np" \
	"$(ranges)" "$(printf '%s\n' "$LB_ID:192.0.2.0/24" "$LBX_ID:192.0.2.0/24" \
		"$LB6_ID:2001:db8:1::/48" "$LB6X_ID:2001:db8:1::/48" | sort | tr '\n' ' ' | sed 's/ $//')"

expect "node addresses: ferry_node_addrs is --node-ips, the first of each family the SNAT address" \
	"$(node_addrs)" "192.0.2.1=1 192.0.2.2=0 2001:db8::1=1"

# --- ferryctl ---------------------------------------------------------------

list=$("$FERRYCTL" --bpffs "$BPFFS" service list)
expect_match "ferryctl: the NodePort is listed as 0.0.0.0:30090 and [::]:30090 with its kind" \
	"$(grep -c -e '0\.0\.0\.0:30090/TCP NodePort' -e '\[::\]:30090/TCP NodePort' <<<"$list")" '^2$'
expect_match "ferryctl: the LB IP with its kind, ext-local mark and source ranges" \
	"$(grep -F '198.51.100.90:80/TCP' <<<"$list" | head -n 1)" \
	'198\.51\.100\.90:80/TCP LoadBalancer \(ext-local\) \(source ranges 192\.0\.2\.0/24\)'
expect_match "ferryctl: the external set's frontends are marked" \
	"$(grep -F '198.51.100.90:80/TCP' <<<"$list" | tail -n 1)" 'LoadBalancer \(external: local endpoints\)'
expect_match "ferryctl: the externalIP with its kind" "$list" '203\.0\.113\.90:80/TCP ExternalIP'
expect "ferryctl -o json: np IPv4 is one service port listing its three frontends and two backends" \
	"$(service_list_json | "$PYTHON" -c '
import json, sys
for s in json.load(sys.stdin):
    if s["address"] == "10.96.90.1":
        print(" ".join("%s:%s:%d" % (f["kind"], f["address"], f["port"]) for f in s["frontends"]),
              len(s["backends"]))')" "ClusterIP:10.96.90.1:80 NodePort:0.0.0.0:30090 ExternalIP:203.0.113.90:80 2"

# --- from the node itself (socket LB) -----------------------------------------

# served NAME URL WANT...: curl URL 6 times from the node; every answer is
# one of the WANT pods.
served() {
	local name=$1 url=$2 got
	shift 2
	got=$(curl_tally 6 "$url")
	if [ -n "$got" ] && ! names_of "$got" | tr ' ' '\n' | grep -qvxF -f <(printf '%s\n' "$@"); then
		ok "$name ($got)"
	else
		not_ok "$name" "got '$got', want only $*"
	fi
}
# served_all NAME URL WANT...: curl URL 20 times from the node; the answers
# are exactly the WANT pods (each of two has 2^-20 odds of never coming).
served_all() {
	local name=$1 url=$2 got want
	shift 2
	got=$(curl_tally 20 "$url")
	want=$(printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//')
	if [ "$(names_of "$got")" = "$want" ]; then
		ok "$name ($got)"
	else
		not_ok "$name" "got '$got', want $want"
	fi
}
served "B22 from the node: NodePort on 127.0.0.1 reaches np's backends" http://127.0.0.1:30090/ w-1 w-2
served "B22 from the node: NodePort on ::1 reaches np's backends" "http://[::1]:30090/" w-1 w-2
# A pod's loopback is its own: the same connect() from pod w-3's namespace
# (in the cgroup too) reaches no NodePort, only what listens there.
expect "B22 from a pod: its own 127.0.0.1:30090 is not a NodePort" \
	"$(field error "$(bash -c "$CLIENT_SH" "$CG" "${POD_NS[w-3]}" "$PYTHON" "$PROBE" tcp 127.0.0.1 30090)")" \
	ECONNREFUSED
served "B22 from the node: NodePort on the node address 192.0.2.1 reaches np's backends" \
	http://192.0.2.1:30090/ w-1 w-2
served "B25 from the node: the externalIP reaches np's backends" http://203.0.113.90/ w-1 w-2
served_all "B23 B24 from the node: the LB IP uses the Cluster set (w-3 on node-b too)" \
	http://198.51.100.90/ w-1 w-3
served_all "B23 from the node: the ETP Local NodePort on 127.0.0.1 uses the Cluster set" \
	http://127.0.0.1:30091/ w-1 w-3
served_all "B23 from the node: the ETP Local NodePort on the node address uses the Cluster set" \
	http://192.0.2.1:30091/ w-1 w-3

# --- a frontend added: one write ----------------------------------------------

before=$(row 10.96.90.1 80 0)
g=$(generation)
{ np 203.0.113.91; lb; } | update_source "$SRC/fe.yaml" ||
	not_ok "adding an externalIP publishes a generation" "still $(generation)"
expect "B35 an externalIP added: one map write (generation $((g + 1)))" "$(writes_of $((g + 1)))" 1
expect "B25 the added externalIP has np's svc_id, revision and count; the ClusterIP is unchanged" \
	"$(row 203.0.113.91 80 0) | $(row 10.96.90.1 80 0)" "${before% *} 0x10 | $before"
served "B25 from the node: the added externalIP reaches np's backends" http://203.0.113.91/ w-1 w-2
g=$(generation)
{ np; lb; } | update_source "$SRC/fe.yaml" ||
	not_ok "removing the externalIP publishes a generation" "still $(generation)"
expect "B35 the externalIP removed: one map write, the entry is gone" \
	"$(writes_of $((g + 1))) $(row 203.0.113.91 80 0)" "1 absent"

# --- the same nodePort twice ----------------------------------------------------

NP_ID=$(row 10.96.90.1 80 0 | cut -d' ' -f1)
conflicts0=$(metric ferry_frontend_conflicts_total)
{ np; lb; np2; } | update_source "$SRC/fe.yaml" ||
	not_ok "adding np2 publishes a generation" "still $(generation)"
NP2_ID=$(row 10.96.90.3 80 0 | cut -d' ' -f1)
expect_match "np2's ClusterIP and externalIP are programmed" \
	"$(row 10.96.90.3 80 0) / $(row 203.0.113.92 80 0)" '^[0-9]+ [0-9]+ 1 0x0 / [0-9]+ [0-9]+ 1 0x10$'
expect "duplicate nodePort: 0.0.0.0:30090 stays np's" "$(row 0.0.0.0 30090 0 | cut -d' ' -f1)" "$NP_ID"
if grep -q "fe/np2:http/TCP/v4: frontend 0.0.0.0:30090/TCP is already programmed for fe/np:http/TCP/v4" "$FERRYD_LOG"; then
	ok "duplicate nodePort: a warning names both Services"
else
	not_ok "duplicate nodePort: a warning names both Services" "$(grep -F 30090 "$FERRYD_LOG" | tail -n 2 | tr '\n' ' ')"
fi
conflicts1=$(metric ferry_frontend_conflicts_total)
if [ -n "$conflicts1" ] && [ "${conflicts1%.*}" -gt "${conflicts0%.*}" ]; then
	ok "duplicate nodePort: ferry_frontend_conflicts_total rises ($conflicts0 -> $conflicts1)"
else
	not_ok "duplicate nodePort: ferry_frontend_conflicts_total rises" "'$conflicts0' -> '$conflicts1'"
fi
served "duplicate nodePort: 192.0.2.1:30090 still reaches np" http://192.0.2.1:30090/ w-1 w-2
{ np 203.0.113.93; lb; np2; } | update_source "$SRC/fe.yaml" ||
	not_ok "another change publishes a generation" "still $(generation)"
expect "duplicate nodePort: reported once while it lasts (an unrelated change: still one warning, same count)" \
	"$(grep -c 'fe/np2:http/TCP/v4: frontend 0.0.0.0:30090/TCP is already programmed' "$FERRYD_LOG") $(metric ferry_frontend_conflicts_total)" \
	"1 $conflicts1"
served "np2's externalIP works" http://203.0.113.92/ w-3

{ lb; np2; } | update_source "$SRC/fe.yaml" ||
	not_ok "deleting np publishes a generation" "still $(generation)"
expect "duplicate nodePort: np deleted, np2 takes 0.0.0.0:30090 over (its svc_id)" \
	"$(row 0.0.0.0 30090 0 | cut -d' ' -f1) $(row 10.96.90.1 80 0)" "$NP2_ID absent"
served "B22 duplicate nodePort: 192.0.2.1:30090 now reaches np2" http://192.0.2.1:30090/ w-3
expect "np's IPv6 NodePort [::]:30090 is gone with it" "$(row :: 30090 0)" absent

# --- restart: adoption writes nothing ----------------------------------------------

{ np; lb; } | update_source "$SRC/fe.yaml" ||
	not_ok "np back publishes a generation" "still $(generation)"
snap=$(snapshot)
g=$(generation)
ferryd_stop
FERRYD_NETNS=$NODE ferryd_start "$SRC" --node-ips 192.0.2.1,2001:db8::1,192.0.2.2 \
	--max-backends 256 --metrics-addr "127.0.0.1:$MPORT" || finish
wait_generation $((g + 1)) 10 || not_ok "restart: the new ferryd publishes a generation" "still $(generation)"
expect "restart: the adopting ferryd's first apply writes nothing (no map writes logged for generation $((g + 1)))" \
	"$(writes_of $((g + 1)))" none
expect "restart: ferry_services4/6, slots, backends and source ranges are exactly as before" \
	"$(snapshot)" "$snap"
expect_match "restart: the log counts every frontend adopted" \
	"$(grep -o 'adopted [0-9]* service ports and [0-9]* backends.*' "$FERRYD_LOG" | tail -n 1)" \
	'adopted 6 service ports and 10 backends from the pinned maps; removed 0 stale entries \(16 frontends'
served "restart: 192.0.2.1:30090 still reaches np" http://192.0.2.1:30090/ w-1 w-2

finish
