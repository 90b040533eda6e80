#!/usr/bin/env bash
# Backend selection on the per-packet path (issue 16): NodePorts (B22), LB
# IPs (B24) and externalIPs (B25) served by XDP and tc on node 1's lan0 to
# external clients, in the north-south topology of tests/helpers/topology.sh
# (clients a and b; pods l-1..l-5 behind node 1, r-1..r-5 behind node 2,
# each answering its name on TCP 8080 and UDP 8053). Every connection is a
# real one from a client outside the node.
#
#  0. first (B23): the first new flow to a remote backend, while node 1
#     has no neighbour entry for node 2 yet, is answered. Under XDP
#     (native or generic) it is not today: the SNATed packet goes to the
#     stack (no neighbour) with node 1's own address as its source, the
#     stack drops it ("martian source 198.18.2.x from 192.0.2.1, on dev
#     lan0" with log_martians) and never asks for the neighbour, so every
#     such flow times out until other traffic resolves it (--xdp off
#     resolves it with bpf_redirect_neigh at tc). The cases below resolve
#     it first;
#  1. round-robin: new flows (a new source port each) through a NodePort
#     and through an LB IP rotate exactly over the set, TCP and UDP alike
#     (one counter per service port, shared by its frontends);
#  2. maglev: a flow is its 5-tuple, source address and port, destination
#     address and port, protocol (ferry_hash_flow): the same flows, picked
#     anew (their conntrack entries deleted), reach the same backends, and
#     different flows spread; under sessionAffinity ClientIP (B30) the
#     hash is the client address alone: every flow of a client reaches one
#     backend, the same again after the affinity and conntrack entries are
#     gone, while the clients spread;
#  3. two nodes, each running its own ferryd on the same source: their
#     Maglev tables are equal byte for byte, and the same flows to the LB IP
#     (the client's LB range routed to node 2 for the second round) reach
#     the same backends on either node, with and without affinity. An LB IP
#     or externalIP is the same flow on every node; a NodePort on node 1's
#     address and on node 2's are different flows (another destination);
#  4. minimal disruption: K=200 flows to a maglev Service of N=10 backends
#     (5 per node); one backend removed, the flows picked anew: those that
#     move, apart from the removed backend's, are at most (1/N + 1 point) of
#     K, the issue's bound (the figures go to a '#' line);
#  5. random (the default) stays within binomial bounds: 300 flows over 3
#     backends, each within 100 +- 5 sd;
#  6. least-conn: six long-lived TCP connections from client a, opened one
#     after another, spread two on each backend; when the two on one close
#     (FIN), its count (ferryctl) goes to 0 and the next two new flows land
#     there; every count is back to 0 once every connection closed.
# The rotation, identity and disruption cases fail when the Service's
# algorithm is not applied (all of them annotated random).
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/helpers/topology.sh
source "$REPO/tests/helpers/topology.sh"

SERVE=(--tcp 8080 --udp 8053)

topo_up
for i in 1 2 3 4 5; do
	topo_pod "l-$i" 1 $((i + 1)) "${SERVE[@]}"
	topo_pod "r-$i" 2 $((i + 1)) "${SERVE[@]}"
done
# Client a's further addresses: the affinity case's eight clients.
AFF_CLIENTS=()
for i in 11 12 13 14 15 16 17 18; do
	ip -n "$TOPO_CA" addr add "192.0.2.$i/24" dev lan0 || topo_fail "address 192.0.2.$i on client a"
	AFF_CLIENTS+=("192.0.2.$i")
done

SRC=$WORK/src
mkdir "$SRC"

# svc NAME IDX ALGORITHM NP-TCP NP-UDP LB-IP EXTRA POD...: Service NAME
# (namespace lbx, LoadBalancer, ClusterIP 10.96.16.IDX, ports http TCP 80 ->
# 8080 and dns UDP 53 -> 8053 with these nodePorts, ingress LB-IP) annotated
# ferry.io/lb-algorithm ALGORITHM (none when ""), EXTRA lines under spec:,
# and its EndpointSlice with these pods, ready, each with its nodeName.
svc() {
	local name=$1 idx=$2 alg=$3 npt=$4 npu=$5 lbip=$6 extra=$7 p
	shift 7
	cat <<EOF
apiVersion: v1
kind: Service
metadata:
  name: $name
  namespace: lbx
EOF
	[ -z "$alg" ] || echo "  annotations: {ferry.io/lb-algorithm: \"$alg\"}"
	cat <<EOF
spec:
  type: LoadBalancer
  clusterIP: 10.96.16.$idx
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: 8080, nodePort: $npt}
  - {name: dns, port: 53, protocol: UDP, targetPort: 8053, nodePort: $npu}
EOF
	[ -z "$extra" ] || printf '%s\n' "$extra"
	cat <<EOF
status:
  loadBalancer: {ingress: [{ip: $lbip}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-v4, namespace: lbx, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}, {name: dns, port: 8053, protocol: UDP}]
endpoints:
EOF
	for p; do echo "- {addresses: [$(pod_v4 "$p")], conditions: {ready: true}, nodeName: $(pod_node "$p")}"; done
}

RR_LB=198.51.100.61 MG_LB=198.51.100.62 MG_EXT=203.0.113.62 MGA_LB=198.51.100.63 MG10_LB=198.51.100.64
ALL10=(l-1 l-2 l-3 l-4 l-5 r-1 r-2 r-3 r-4 r-5)
node_yaml | write_source "$SRC/node.yaml"
node_yaml "$TOPO_NODE2_NAME" "$N2_V4" "$N2_V6" | write_source "$SRC/node2.yaml"
svc rr 1 round-robin 30101 30201 $RR_LB "" l-1 l-2 r-1 | write_source "$SRC/rr.yaml"
svc mg 2 maglev 30102 30202 $MG_LB "  externalIPs: [$MG_EXT]" l-1 l-2 r-1 r-2 |
	write_source "$SRC/mg.yaml"
svc mga 3 maglev 30103 30203 $MGA_LB "  sessionAffinity: ClientIP" l-1 l-2 r-1 r-2 |
	write_source "$SRC/mga.yaml"
svc mg10 4 maglev 30104 30204 $MG10_LB "" "${ALL10[@]}" | write_source "$SRC/mg10.yaml"
svc rnd 5 "" 30105 30205 198.51.100.65 "" l-1 l-2 r-1 | write_source "$SRC/rnd.yaml"
svc far 6 "" 30106 30206 198.51.100.66 "" r-5 | write_source "$SRC/far.yaml"
LC_LB=198.51.100.67
svc lc 7 least-conn 30107 30207 $LC_LB "" l-1 l-2 r-1 | write_source "$SRC/lc.yaml"

# --- helpers ------------------------------------------------------------------

# ext_seq a|b COUNT ADDR PORT [CONNCOUNT-ARGS...]: the pods COUNT new TCP
# connections from the client reached, in order, space separated
# (failures as error:NAME). -b PORT: connection i from source port PORT+i;
# -B ADDR: from this source address.
ext_seq() {
	local c=$1 n=$2 addr=$3 port=$4
	shift 4
	in_ext "$c" "$CONNCOUNT" -s -n "$n" -t 60 "$@" "$addr" "$port" | tr '\n' ' ' | sed 's/ $//'
}

# udp_seq a|b COUNT ADDR PORT: the pods COUNT datagrams reached, each from a
# new socket (a new source port: a new flow), in order.
udp_seq() {
	in_ext "$1" "$PYTHON" "$PROBE" udp "$3" "$4" --count "$2" |
		sed -n 's/^reply=\([^ ]*\).*/\1/p; s/^error=\([^ ]*\).*/error:\1/p' | tr '\n' ' ' | sed 's/ $//'
}

# distinct SEQ: how many different answers SEQ has.
distinct() { tr ' ' '\n' <<<"$1" | sort -u | grep -c .; }

# tally SEQ: "POD=N ..." sorted by pod.
tally() { tr ' ' '\n' <<<"$1" | sort | uniq -c | awk '{print $2"="$1}' | tr '\n' ' ' | sed 's/ $//'; }

# map_clear PINS MAP: every entry of the pinned map PINS/MAP deleted (this
# test's own pins only): the flows it held are picked anew.
map_clear() {
	local pin=$1/$2 batch=$WORK/batch
	bpftool -j map dump pinned "$pin" | "$PYTHON" -c '
import json, sys
for e in json.load(sys.stdin):
    print("map delete pinned %s key hex %s" % (sys.argv[1], " ".join(b[2:] for b in e["key"])))' \
		"$pin" >"$batch" || return 1
	[ ! -s "$batch" ] || bpftool batch file "$batch" >/dev/null
}

# forget PINS: the flows' conntrack and affinity entries under PINS gone.
forget() { map_clear "$1" ferry_ct && map_clear "$1" ferry_affinity; }

# maglev_table PINS ADDR PORT PROTO: "CELLS SHA256" of the Maglev table the
# service port at ADDR:PORT/PROTO publishes under PINS (its run of cells in
# ferry_maglev, from the entry's maglev_offset, read with the bpf syscall:
# the bytes the datapath reads; where the run lies differs between nodes),
# or why there is none.
maglev_table() {
	local pins=$1 ids
	ids=$("$FERRYCTL" --bpffs "$pins" service list -o json | "$PYTHON" -c '
import json, sys
for s in json.load(sys.stdin):
    if s["protocol"] == sys.argv[3] and any((f["address"], f["port"]) == (sys.argv[1], int(sys.argv[2]))
                                            for f in s["frontends"]):
        print(s.get("maglev_table_size", 0), s.get("maglev_offset", 0))' "$2" "$3" "$4")
	[ -n "$ids" ] || { echo "no service port $2:$3/$4"; return; }
	[ "${ids%% *}" != 0 ] || { echo "no table for $2:$3/$4"; return; }
	"$PYTHON" -c '
import ctypes, hashlib, platform, struct, sys
NR_BPF = {"x86_64": 321, "aarch64": 280}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def bpf(cmd, attr):
    return libc.syscall(ctypes.c_long(NR_BPF), ctypes.c_int(cmd), attr, ctypes.c_uint(len(attr)))
path = ctypes.create_string_buffer(sys.argv[1].encode())
attr = ctypes.create_string_buffer(128)
struct.pack_into("Q", attr, 0, ctypes.addressof(path))
fd = bpf(7, attr)  # BPF_OBJ_GET
size, offset = int(sys.argv[2]), int(sys.argv[3])
key, val = ctypes.c_uint32(0), ctypes.create_string_buffer(8)
raw = b""
for i in range((size + 3) // 4):
    key.value = offset + i
    struct.pack_into("IIQQQ", attr, 0, fd, 0, ctypes.addressof(key), ctypes.addressof(val), 0)
    if bpf(1, attr) < 0:  # BPF_MAP_LOOKUP_ELEM
        sys.exit("lookup of cell %d failed" % (offset + i))
    raw += val.raw
print((size + 3) // 4, hashlib.sha256(raw).hexdigest())' "$pins/ferry_maglev" ${ids}
}

# same SEQ: SEQ when it has no failure, else "failures: SEQ" (an identity
# case must not pass on equal failures).
same() { if [[ $1 == *error* ]]; then echo "failures: $1"; else echo "$1"; fi; }

# neigh_ready NETNS ADDR: NETNS's lan0 knows ADDR's link address, after a
# datagram from NETNS to ADDR (discard port) made it ask.
neigh_ready() {
	in_ns "$1" "$PYTHON" -c 'import socket, sys
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", (sys.argv[1], 9))' "$2"
	wait_until 5 eval "ip -n '$1' neigh show '$2' | grep -q lladdr"
}

# via_node 1|2: client a's LB and external ranges routed to that node.
via_node() {
	local gw=$N1_V4
	[ "$1" = 2 ] && gw=$N2_V4
	ip -n "$TOPO_CA" route replace 198.51.100.0/24 via "$gw" &&
		ip -n "$TOPO_CA" route replace 203.0.113.0/24 via "$gw"
}

FERRYD_NETNS=$NODE ferryd_start "$SRC" --node-name "$TOPO_NODE_NAME" --devices lan0 --xdp native || finish

# === 0. a remote backend with node 1's neighbour cache cold =====================

# Before anything else has gone from node 1 to node 2: node 1 has no
# neighbour entry for node 2 yet, and the first SNATed flow must make it.
note "node 1's neighbour entry for node 2 before: '$(ip -n "$NODE" neigh show "$N2_V4")'"
expect "B23 the first flow to a remote backend (node 1 has no neighbour entry for node 2 yet) is answered" \
	"$(ext_seq a 1 "$N1_V4" 30106)" r-5
# The cases below need the neighbours either way.
neigh_ready "$NODE" "$N2_V4" && neigh_ready "$TOPO_N2" "$N1_V4" ||
	not_ok "$GROUP setup" "neighbour entries between node 1 and node 2"
topo_ferryd2_start "$SRC" native || finish

# === 1. round-robin ============================================================

seq=$(ext_seq a 12 "$N1_V4" 30101)
expect "issue 16 B22 round-robin: 12 new TCP connections from client a to the NodePort rotate exactly over the 3 pods (local and remote)" \
	"$(rotation "$seq" 3)" exact
seq=$(ext_seq b 12 $RR_LB 80)
expect "issue 16 B24 round-robin: 12 new TCP connections from client b to the LB IP rotate exactly over the 3 pods" \
	"$(rotation "$seq" 3)" exact
seq=$(udp_seq a 12 $RR_LB 53)
expect "issue 16 B24 round-robin: 12 UDP flows (a new socket each) to the LB IP rotate exactly over the 3 pods" \
	"$(rotation "$seq" 3)" exact

# === 2. maglev: a flow's backend is its hash's ================================

# 30 flows (source ports 42000..42029; 30 is no multiple of 4, so a shared
# counter would not repeat itself either).
K=30
MG_SEQ=$(ext_seq a $K $MG_LB 80 -b 42000)
note "maglev: flows a:42000..42029 -> $MG_LB:80: $(tally "$MG_SEQ")"
forget "$BPFFS" || not_ok "maglev: the flows' conntrack entries deleted" "bpftool failed"
expect "issue 16 B24 maglev: the same 30 flows to the LB IP, picked anew (conntrack entries deleted), reach the same pods" \
	"$(same "$(ext_seq a $K $MG_LB 80 -b 42000)")" "$(same "$MG_SEQ")"
n=$(distinct "$MG_SEQ")
if [[ $MG_SEQ != *error* ]] && [ "$n" -ge 3 ]; then
	ok "issue 16 maglev: 30 different flows spread over $n of the 4 pods"
else
	not_ok "issue 16 maglev: 30 different flows spread over at least 3 of the 4 pods" "$MG_SEQ"
fi
EXT_SEQ=$(ext_seq a $K $MG_EXT 80 -b 42000)
forget "$BPFFS"
expect "issue 16 B25 maglev: the same 30 flows to the externalIP, picked anew, reach the same pods" \
	"$(same "$(ext_seq a $K $MG_EXT 80 -b 42000)")" "$(same "$EXT_SEQ")"
NP_SEQ=$(ext_seq a $K "$N1_V4" 30102 -b 42000)
forget "$BPFFS"
expect "issue 16 B22 maglev: the same 30 flows to node 1's NodePort, picked anew, reach the same pods" \
	"$(same "$(ext_seq a $K "$N1_V4" 30102 -b 42000)")" "$(same "$NP_SEQ")"

# Affinity (B30): 5 flows from each of 8 client addresses.
declare -A AFF=()
bad=
for c in "${AFF_CLIENTS[@]}"; do
	AFF[$c]=$(ext_seq a 5 $MGA_LB 80 -B "$c")
	[ "$(distinct "${AFF[$c]}")" = 1 ] && [[ ${AFF[$c]} != *error* ]] || bad+=" $c: ${AFF[$c]};"
done
aff_first=$(for c in "${AFF_CLIENTS[@]}"; do echo "${AFF[$c]%% *}"; done | tr '\n' ' ' | sed 's/ $//')
note "maglev with affinity: clients 192.0.2.11..18 -> $aff_first"
expect "issue 16 B30 maglev with sessionAffinity ClientIP: every flow of each of 8 clients reaches one pod" "${bad:-none}" none
forget "$BPFFS"
again=$(for c in "${AFF_CLIENTS[@]}"; do ext_seq a 1 $MGA_LB 80 -B "$c"; echo; done | tr '\n' ' ' | sed 's/ $//')
expect "issue 16 B30 maglev with affinity: with the affinity and conntrack entries gone, each client reaches its pod again" \
	"$(same "$again")" "$(same "$aff_first")"
n=$(distinct "$aff_first")
if [ "$n" -ge 2 ]; then
	ok "issue 16 B30 maglev with affinity: the 8 clients spread over $n pods"
else
	not_ok "issue 16 B30 maglev with affinity: the 8 clients spread over the pods" "all on $aff_first"
fi

# === 3. two nodes, one ferryd each, the same state =============================

for target in "$MG_LB 80 TCP" "$MGA_LB 80 TCP" "$MG10_LB 80 TCP" "$MG_LB 53 UDP"; do
	read -r addr port proto <<<"$target"
	t1=$(maglev_table "$BPFFS" "$addr" "$port" "$proto")
	t2=$(maglev_table "$BPFFS2" "$addr" "$port" "$proto")
	note "maglev table of $addr:$port/$proto: node 1 '$t1', node 2 '$t2'"
	if [[ $t1 =~ ^[0-9]+\ [0-9a-f]{64}$ ]] && [ "$t1" = "$t2" ]; then
		ok "issue 16 maglev: node 1's and node 2's tables of $addr:$port/$proto are equal byte for byte (${t1%% *} cells)"
	else
		not_ok "issue 16 maglev: node 1's and node 2's tables of $addr:$port/$proto are equal byte for byte" \
			"node 1 '$t1', node 2 '$t2'"
	fi
done
via_node 2 || not_ok "two nodes: client a's LB range routed to node 2" "ip route replace"
expect "issue 16 B24 maglev: the same 30 flows to the LB IP sent to node 2 reach the pods node 1 chose" \
	"$(same "$(ext_seq a $K $MG_LB 80 -b 42000)")" "$(same "$MG_SEQ")"
expect "issue 16 B25 maglev: the same 30 flows to the externalIP sent to node 2 reach the pods node 1 chose" \
	"$(same "$(ext_seq a $K $MG_EXT 80 -b 42000)")" "$(same "$EXT_SEQ")"
again=$(for c in "${AFF_CLIENTS[@]}"; do ext_seq a 1 $MGA_LB 80 -B "$c"; echo; done | tr '\n' ' ' | sed 's/ $//')
expect "issue 16 B30 maglev with affinity: through node 2, each of the 8 clients reaches the pod node 1 chose" \
	"$(same "$again")" "$(same "$aff_first")"
via_node 1 || not_ok "two nodes: client a's LB range routed back to node 1" "ip route replace"
topo_ferryd2_cleanup

# === 4. minimal disruption on a backend removal ================================

K=200 N=10
BEFORE=$(ext_seq b $K $MG10_LB 80 -b 43000)
note "disruption: $K flows over $N pods: $(tally "$BEFORE")"
GONE=l-3
svc mg10 4 maglev 30104 30204 $MG10_LB "" l-1 l-2 l-4 l-5 r-1 r-2 r-3 r-4 r-5 |
	change "disruption: $GONE removed" "$SRC/mg10.yaml"
forget "$BPFFS"
AFTER=$(ext_seq b $K $MG10_LB 80 -b 43000)
read -r -a before <<<"$BEFORE"
read -r -a after <<<"$AFTER"
gone=0 moved=0 bad=
for ((i = 0; i < K; i++)); do
	[[ ${before[i]:-} =~ ^[lr]-[1-5]$ && ${after[i]:-} =~ ^[lr]-[1-5]$ ]] || bad+=" flow $i: ${before[i]:-none} -> ${after[i]:-none};"
	[ "${after[i]:-}" != "$GONE" ] || bad+=" flow $i still on $GONE;"
	if [ "${before[i]:-}" = "$GONE" ]; then
		gone=$((gone + 1))
	elif [ "${before[i]:-}" != "${after[i]:-}" ]; then
		moved=$((moved + 1))
	fi
done
# The bound: (1/N + 1 point) of K flows, in integer arithmetic.
limit=$((K * (100 / N + 1) / 100))
note "disruption: $gone of $K flows were on the removed $GONE; of the other $((K - gone)), $moved moved ($((moved * 1000 / K / 10)).$((moved * 1000 / K % 10))% of $K; bound $limit = 1/$N + 1 point)"
expect "issue 16 maglev disruption: after $GONE's removal every one of the $K flows reaches a live pod, none $GONE" "${bad:-yes}" yes
if [ "$moved" -le "$limit" ] && [ "$gone" -gt 0 ]; then
	ok "issue 16 maglev disruption: removing 1 of $N backends moves $moved of the $((K - gone)) flows not on it (at most $limit: 1/N + 1 point of $K)"
else
	not_ok "issue 16 maglev disruption: removing 1 of $N backends moves at most $limit flows not on it" \
		"$moved moved, $gone were on $GONE"
fi

# === 5. random: binomial bounds ================================================

# 300 flows over 3 pods: each 100 +- 5 sd (sd = sqrt(300 * 1/3 * 2/3) = 8.2).
seq=$(ext_seq a 300 "$N1_V4" 30105)
t=$(tally "$seq")
note "random: $t"
bad=
for p in l-1 l-2 r-1; do
	n=$(tr ' ' '\n' <<<"$seq" | grep -cx -- "$p")
	[ "$n" -ge 59 ] && [ "$n" -le 141 ] || bad+=" $p=$n"
done
[[ $seq != *error* ]] || bad+=" failures"
expect "issue 16 B22 random (the default): 300 flows to the NodePort spread over the 3 pods within 100 +- 5 sd" \
	"${bad:-yes}" yes


# === 6. least-conn: live flows counted from the first packet to FIN ===========

# lc_live: "l-1=N l-2=N r-1=N", ferryctl's live connections per pod of lc.
lc_live() {
	"$FERRYCTL" --bpffs "$BPFFS" service list -o json | "$PYTHON" -c '
import json, sys
pods = {sys.argv[i]: sys.argv[i + 1] for i in range(2, len(sys.argv), 2)}
for s in json.load(sys.stdin):
    if s["protocol"] == "TCP" and any(f["address"] == sys.argv[1] for f in s["frontends"]):
        print(" ".join("%s=%s" % (pods[b["address"]], b.get("live_connections", "?"))
                       for b in sorted(s["backends"], key=lambda b: pods[b["address"]])))' \
		$LC_LB "$(pod_v4 l-1)" l-1 "$(pod_v4 l-2)" l-2 "$(pod_v4 r-1)" r-1
}

declare -A LC_HELD=()
for i in 1 2 3 4 5 6; do
	mkdir -p "$WORK/lc/$i"
	nsenter --net="/run/netns/$TOPO_CA" "$PYTHON" "$PROBE" hold $LC_LB 80 --dir "$WORK/lc/$i" \
		--wait 120 &
	PIDS+=($!)
	wait_held "$WORK/lc/$i" $!
	LC_HELD[$i]=$(cat "$WORK/lc/$i/first" 2>/dev/null)
done
expect "issue 16 least-conn: 6 long-lived connections from client a, one after another, spread 2 on each pod" \
	"$(printf '%s\n' "${LC_HELD[@]}" | sort | uniq -c | awk '{print $2"="$1}' | tr '\n' ' ' | sed 's/ $//')" \
	"l-1=2 l-2=2 r-1=2"
expect "issue 16 least-conn: ferryctl counts 2 live flows on each backend" "$(lc_live)" "l-1=2 l-2=2 r-1=2"
held_close LC_HELD "$WORK/lc" l-1
wait_until 10 eval '[ "$(lc_live)" = "l-1=0 l-2=2 r-1=2" ]'
expect "issue 16 least-conn: the 2 on l-1 closed (FIN), its count goes to 0" "$(lc_live)" "l-1=0 l-2=2 r-1=2"
expect "issue 16 least-conn: the next 2 new flows both land on l-1" "$(ext_seq a 2 $LC_LB 80)" "l-1 l-1"
held_close LC_HELD "$WORK/lc" l-2
held_close LC_HELD "$WORK/lc" r-1
wait_until 10 eval '[ "$(lc_live)" = "l-1=0 l-2=0 r-1=0" ]'
expect "issue 16 least-conn: every connection closed, every count is back to 0" "$(lc_live)" \
	"l-1=0 l-2=0 r-1=0"

finish
