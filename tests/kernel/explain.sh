#!/usr/bin/env bash
# ferryctl explain: for a frontend and a client, the backend set that
# applies and why, checked against what real clients reach.
#
# For a client on the node (--netns, --pid, --cgroup) explain follows the
# socket path: a ClusterIP (Cluster: every endpoint; internalTrafficPolicy
# Local: this node's only, B13, or refused without one, B15; topology hints
# for this node's zone, B31; the local serving+terminating fallback, B11),
# a Service without endpoints (refused, B14), an undefined port of a known
# ClusterIP (refused, B17), an address that is no service (untouched), a
# NodePort on a node address and on loopback from the node's own network
# namespace only (B22), an LB IP of an externalTrafficPolicy Local Service
# (the Cluster set from the node, B23), and session affinity (B30): "none
# yet" before a client's first connection, then the backend that
# connection actually reached, with its age, each client namespace on its
# own. Whether a cgroup is served: the test cgroup and its children are, a
# sibling cgroup is not.
# For a client outside the node (--source) explain follows the per-packet
# path: loadBalancerSourceRanges (B26: allowed, or dropped),
# externalTrafficPolicy Local (the local set, B16, B23; dropped without a
# local endpoint), Cluster (every endpoint), a ClusterIP (untouched from
# outside), affinity keyed by the client's address (none yet, then the
# backend its connection reached), and a known flow's backend.
# Wherever explain names a backend set, connections from that client reach
# exactly those pods; where it names one backend, every connection reaches
# it; where it says refused, connect() fails with ECONNREFUSED; where it
# says dropped, the connect times out.
#
# Topology: tests/helpers/topology.sh (external clients a and b on a LAN
# with node 1, which runs ferryd with XDP on lan0, and node 2). Pods a-*
# run behind node 1 (node-1), b-* behind node 2; c-1 is a client namespace
# behind node 1 with no server. --node-zone zone-a.
# shellcheck disable=SC2317 # functions called through wait_until
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/helpers/topology.sh
source "$REPO/tests/helpers/topology.sh"

topo_up
topo_pod a-1 1 2 --tcp 8080 --udp 8080
topo_pod a-2 1 3 --tcp 8080 --udp 8080
topo_pod b-1 2 2 --tcp 8080 --udp 8080
topo_pod b-2 2 3 --tcp 8080 --udp 8080
topo_pod c-1 1 20
declare -A POD_IP=() POD_IP6=()
for p in a-1 a-2 b-1 b-2; do POD_IP[$p]=$(pod_v4 "$p") POD_IP6[$p]=$(pod_v6 "$p"); done
C1_NS=/run/netns/${POD_NS[c-1]}
NODE_NS=/run/netns/$NODE
NODE_IP=$N1_V4

SRC=$WORK/src
mkdir "$SRC"

# --- objects -------------------------------------------------------------------

# svc NAME IDX [SPEC-LINES]: Service NAME (namespace ex), ClusterIP
# 10.96.74.IDX, port tcp 80 -> 8080 (nodePort $NP when set) and udp 80 ->
# 8080; SPEC-LINES go under spec: (type, policies). With ALG set, the
# annotation ferry.io/lb-algorithm: $ALG.
svc() {
	local ann=''
	[ -z "${ALG:-}" ] || ann=", annotations: {ferry.io/lb-algorithm: $ALG}"
	cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: ex$ann}
spec:
  clusterIP: 10.96.74.$2
  ports:
  - {name: tcp, port: 80, protocol: TCP, targetPort: 8080${NP:+, nodePort: $NP}}
  - {name: udp, port: 80, protocol: UDP, targetPort: 8080}
EOF
	[ -z "${3:-}" ] || printf '%s\n' "$3"
}

# slice NAME ENDPOINT...: NAME's EndpointSlice; ENDPOINT is POD:STATE[:ZONE]
# with STATE ready or term (serving, terminating) and ZONE its hint.
slice() {
	local name=$1 e pod state zone cond node hints
	shift
	cat <<EOF
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-1, namespace: ex, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
ports: [{name: tcp, port: 8080, protocol: TCP}, {name: udp, port: 8080, protocol: UDP}]
endpoints:$([ $# -gt 0 ] || echo " []")
EOF
	for e; do
		IFS=: read -r pod state zone <<<"$e"
		cond='ready: true'
		[ "$state" = term ] && cond='ready: false, serving: true, terminating: true'
		node=$(pod_node "$pod")
		hints=''
		[ -z "$zone" ] || hints=", hints: {forZones: [{name: $zone}]}"
		echo "- {addresses: [${POD_IP[$pod]}], conditions: {$cond}, nodeName: $node$hints}"
	done
}

{
	NP=30741 svc web 1 "  type: NodePort"
	slice web a-1:ready b-1:ready
	svc loc 2 "  internalTrafficPolicy: Local"
	slice loc a-1:ready b-1:ready b-2:ready
	svc noloc 3 "  internalTrafficPolicy: Local"
	slice noloc b-1:ready b-2:ready
	svc hint 4
	slice hint a-1:ready:zone-b b-1:ready:zone-a b-2:ready:zone-a
	svc drain 5 "  internalTrafficPolicy: Local"
	slice drain a-1:term a-2:term b-1:ready
	NP=30746 svc empty 6 "  type: NodePort"
	slice empty
	NP=30747 svc edge 7 $'  type: LoadBalancer\n  externalTrafficPolicy: Local\n  loadBalancerSourceRanges: ['"$CA_V4"$'/32]\nstatus:\n  loadBalancer: {ingress: [{ip: 198.51.100.74}]}'
	slice edge a-2:ready b-2:ready
	NP=30748 svc edge-none 8 $'  type: NodePort\n  externalTrafficPolicy: Local'
	slice edge-none b-1:ready
	NP=30749 svc aff 9 $'  type: NodePort\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}'
	slice aff a-1:ready a-2:ready b-1:ready b-2:ready
	ALG=round-robin svc rr 10
	slice rr a-1:ready a-2:ready b-1:ready b-2:ready
	ALG=maglev NP=30751 svc mg 11 "  type: NodePort"
	slice mg a-1:ready a-2:ready b-1:ready b-2:ready
	ALG=maglev NP=30752 svc mga 12 $'  type: NodePort\n  sessionAffinity: ClientIP'
	slice mga a-1:ready a-2:ready b-1:ready b-2:ready
} | write_source "$SRC/ex.yaml"
# short: affinity for 2 s; gone: affinity, its backends change later.
{ svc short 13 $'  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 2}}'
	slice short a-1:ready a-2:ready b-1:ready b-2:ready; } | write_source "$SRC/short.yaml"
# gone_yaml POD...: Service gone (affinity) with these endpoints.
gone_yaml() { svc gone 14 "  sessionAffinity: ClientIP"; slice gone "${@/%/:ready}"; }
gone_yaml a-1 a-2 b-1 b-2 | write_source "$SRC/gone.yaml"
# big: 20 endpoints (no pods: explain only), past the 16 a service entry
# holds inline, so its set is in ferry_slots.
{
	svc big 15
	slice big
	for i in $(seq 1 20); do echo "- {addresses: [198.18.9.$i], conditions: {ready: true}}"; done
} | sed 's/^endpoints: \[\]$/endpoints:/' | write_source "$SRC/big.yaml"
# six: IPv6 only, ClusterIP and NodePort 30756, on a-1 and b-1.
cat <<EOF | write_source "$SRC/six.yaml"
apiVersion: v1
kind: Service
metadata: {name: six, namespace: ex}
spec:
  type: NodePort
  clusterIP: "fd00:10:96::74:16"
  clusterIPs: ["fd00:10:96::74:16"]
  ipFamilies: [IPv6]
  ports: [{name: tcp, port: 80, protocol: TCP, targetPort: 8080, nodePort: 30756}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: six-1, namespace: ex, labels: {kubernetes.io/service-name: six}}
addressType: IPv6
ports: [{name: tcp, port: 8080, protocol: TCP}]
endpoints:
- {addresses: ["${POD_IP6[a-1]}"], conditions: {ready: true}, nodeName: node-1}
- {addresses: ["${POD_IP6[b-1]}"], conditions: {ready: true}, nodeName: node-2}
EOF

# --- explain, and what clients reach ------------------------------------------------

# xj EXPR ARGS...: a Python expression over `ferryctl explain ARGS -o json`
# (as j), printed; "error: ..." when it fails.
xj() {
	local expr=$1
	shift
	"$FERRYCTL" --bpffs "$BPFFS" explain "$@" -o json 2>&1 | "$PYTHON" -c '
import json, sys
text = sys.stdin.read()
try:
    j = json.loads(text)
except ValueError:
    print("error: " + " ".join(text.split()))
    sys.exit()
try:
    print(eval(sys.argv[1]))
except Exception as e:
    print("error: %r in %s" % (e, " ".join(text.split())))' "$expr"
}

# hp ADDR PORT: ADDR:PORT, an IPv6 address in brackets.
hp() { if [[ $1 = *:* ]]; then echo "[$1]:$2"; else echo "$1:$2"; fi; }

# pods_of ADDR...: the pods with these addresses, sorted ("?ADDR" for
# another address).
pods_of() {
	local addr p name
	for addr; do
		name="?$addr"
		for p in "${!POD_IP[@]}"; do
			[ "${POD_IP[$p]}" = "$addr" ] || [ "${POD_IP6[$p]}" = "$addr" ] && name=$p
		done
		echo "$name"
	done | sort | tr '\n' ' ' | sed 's/ $//'
}

# set_of ARGS...: "VERDICT: POD ..." for explain ARGS: the verdict and the
# pods of the backend set it names (the verdict alone without one).
set_of() {
	local v addrs
	v=$(xj 'j["verdict"]' "$@")
	addrs=$(xj '" ".join(b["address"] for b in j.get("backends", []))' "$@")
	# shellcheck disable=SC2086 # one word per address
	if [ -n "$addrs" ]; then echo "$v: $(pods_of $addrs)"; else echo "$v"; fi
}

# reached NETNS COUNT ADDR PORT: "translated: POD ..." with the pods COUNT
# TCP connections from a client in NETNS (and the test cgroup) reached,
# "refused" when every one was refused, else the tally.
reached() {
	local t
	t=$(bash -c "$CLIENT_SH" "$CG" "$1" "$CONNCOUNT" -n "$2" -t 60 "$3" "$4" |
		awk '{print $2"="$1}' | sort | tr '\n' ' ' | sed 's/ $//')
	case $t in
	"error:ECONNREFUSED=$2") echo refused ;;
	*error*) echo "$t" ;;
	*) echo "translated: $(names_of "$t")" ;;
	esac
}

# same_set CASE WANT ADDR PORT: explain's verdict and set for the node's
# client (set_of) and what 20 connections from it reach (reached) are both
# WANT (a set of two missed by all 20: 2^-19).
same_set() {
	expect "$1" "explain [$(set_of "$(hp "$3" "$4")" --netns "$NODE_NS" --cgroup "$CG")], reached [$(reached "$NODE" 20 "$3" "$4")]" \
		"explain [$2], reached [$2]"
}

node_yaml | write_source "$SRC/node.yaml"
FERRYD_NETNS=$NODE ferryd_start "$SRC" --node-name "$TOPO_NODE_NAME" --devices lan0 \
	--node-zone zone-a || finish
note "ferryctl service list:"
"$FERRYCTL" --bpffs "$BPFFS" service list | sed 's/^/#   /'

# === clients on the node: the socket path ======================================

LOCAL=(--netns "$NODE_NS" --cgroup "$CG")
same_set "Cluster: explain names both endpoints, and 20 connections reach exactly those" "translated: a-1 b-1" 10.96.74.1 80
expect "Cluster: traffic policy Cluster, no hints, no fallback" \
	"$(xj '"%s %s %s %s" % (j["frontend"]["kind"], j["traffic_policy"], j["zone_hints"], j["terminating_fallback"])' 10.96.74.1:80 "${LOCAL[@]}")" \
	"ClusterIP Cluster False False"
expect "Cluster, 2 backends, no affinity: the pick is random" \
	"$(xj '"%s %s" % (j["pick"]["why"], j["affinity"]["state"])' 10.96.74.1:80 "${LOCAL[@]}")" "random off"

same_set "B13 internalTrafficPolicy Local: explain names this node's endpoint only, and connections reach it only" "translated: a-1" 10.96.74.2 80
expect "B13 Local: policy Local, and the only backend is the pick" \
	"$(xj '"%s %s %s" % (j["traffic_policy"], j["pick"]["why"], j["pick"]["backend"]["address"])' 10.96.74.2:80 "${LOCAL[@]}")" \
	"Local the only backend ${POD_IP[a-1]}"

same_set "B15 Local without a local endpoint: explain says refused, and connect() is refused" "refused" 10.96.74.3 80
expect_match "B15 the reason names the missing local endpoint" \
	"$(xj 'j["reason"]' 10.96.74.3:80 "${LOCAL[@]}")" 'no endpoint on this node.*ECONNREFUSED \(B15\)'

same_set "B31 topology hints: explain names the zone-a endpoints, and connections reach exactly those" "translated: b-1 b-2" 10.96.74.4 80
expect "B31 explain says topology hints are in use" "$(xj 'j["zone_hints"]' 10.96.74.4:80 "${LOCAL[@]}")" True

same_set "B11 Local, no ready local endpoint: explain names the terminating local ones, and connections reach exactly those" "translated: a-1 a-2" 10.96.74.5 80
expect "B11 explain says terminating fallback" "$(xj 'j["terminating_fallback"]' 10.96.74.5:80 "${LOCAL[@]}")" True
expect_match "B11 the text says why" \
	"$("$FERRYCTL" --bpffs "$BPFFS" explain 10.96.74.5:80 "${LOCAL[@]}" | grep '^fallback')" 'terminating.*\(B11\)'

same_set "B14 no endpoints: explain says refused, and connect() is refused" "refused" 10.96.74.6 80
expect_match "B14 the reason" "$(xj 'j["reason"]' 10.96.74.6:80 "${LOCAL[@]}")" '^no endpoint: .*\(B14\)'

expect "B17 undefined port of a known ClusterIP: explain says refused, and connect() is refused" \
	"$(xj 'j["verdict"]' 10.96.74.1:81 "${LOCAL[@]}") $(reached "$NODE" 3 10.96.74.1 81)" "refused refused"
expect_match "B17 the text names the known ClusterIP" \
	"$("$FERRYCTL" --bpffs "$BPFFS" explain 10.96.74.1:81 "${LOCAL[@]}")" 'known ClusterIP.*\(B17\)'

t=$(reached "$NODE" 3 10.96.99.99 80)
expect "not a service: explain says untouched, and the connection goes to that address (no route here)" \
	"$(xj 'j["verdict"]' 10.96.99.99:80 "${LOCAL[@]}") $t" "untouched error:ENETUNREACH=3"

expect "UDP: explain of 10.96.74.2:80/udp names a-1" "$(set_of 10.96.74.2:80/udp "${LOCAL[@]}")" "translated: a-1"

# NodePort from the node: on a node address, and on loopback only from the
# node's own network namespace (ferryd's, B22).
same_set "B22 NodePort on a node address from the node: explain names the set, connections reach it" "translated: a-1 b-1" "$NODE_IP" 30741
expect "B22 NodePort on the node address: explain says NodePort" \
	"$(xj 'j["frontend"]["kind"]' "$NODE_IP:30741" "${LOCAL[@]}")" NodePort
same_set "B22 NodePort on 127.0.0.1 from the node's namespace: explain names the set, connections reach it" "translated: a-1 b-1" 127.0.0.1 30741
expect "B22 NodePort on 127.0.0.1 from a pod's namespace (c-1): explain says untouched" \
	"$(xj 'j["verdict"]' 127.0.0.1:30741 --netns "$C1_NS" --cgroup "$CG")" untouched

# B23: from the node, an externalTrafficPolicy Local LB IP uses the Cluster set.
same_set "B23 ETP Local LB IP from the node: explain names the Cluster set, connections reach exactly it" "translated: a-2 b-2" 198.51.100.74 80
expect "B23 from the node: the policy is Cluster, the frontend LoadBalancer" \
	"$(xj '"%s %s" % (j["frontend"]["kind"], j["traffic_policy"])' 198.51.100.74:80 "${LOCAL[@]}")" "LoadBalancer Cluster"

# --- cgroups ------------------------------------------------------------------------
OTHER_CG=$CGROOT/$P-other
trap 'rmdir "$OTHER_CG" 2>/dev/null; cleanup' EXIT
mkdir "$CG/sub" "$OTHER_CG" || { not_ok "$GROUP setup" "cgroups"; finish; }
expect "cgroup: the test cgroup is served" "$(xj 'j["cgroup_served"]' 10.96.74.1:80 --cgroup "$CG")" True
expect "cgroup: a child of it is served" "$(xj 'j["cgroup_served"]' 10.96.74.1:80 --cgroup "$CG/sub")" True
expect "cgroup: a sibling is not: untouched" \
	"$(xj '"%s %s" % (j["cgroup_served"], j["verdict"])' 10.96.74.1:80 --cgroup "$OTHER_CG")" "False untouched"
rmdir "$CG/sub" "$OTHER_CG"
bg_client sleep 30
HOLD=${PIDS[-1]}
wait_until 5 eval "grep -qx $HOLD '$CG/cgroup.procs'"
expect "--pid: a process in the test cgroup and the node's namespace: served, the Local set" \
	"$(xj '"%s %s %s" % (j["cgroup_served"], j["verdict"], j["pick"]["backend"]["address"])' 10.96.74.2:80 --pid "$HOLD")" \
	"True translated ${POD_IP[a-1]}"
stop_pid "$HOLD"

# --- session affinity (B30) -----------------------------------------------------------
C1=(--netns "$C1_NS" --cgroup "$CG")
expect "B30 before c-1's first connection: affinity none yet, the pick random" \
	"$(xj '"%s %s %s" % (j["affinity"]["timeout"], j["affinity"]["state"], j["pick"]["why"])' 10.96.74.9:80 "${C1[@]}")" \
	"600 none yet random"
first=$(reached "${POD_NS[c-1]}" 1 10.96.74.9 80)
first=${first#translated: }
expect "B30 after c-1's connection to $first: explain remembers the backend it reached" \
	"$(pods_of "$(xj 'j["affinity"]["backend"]["address"]' 10.96.74.9:80 "${C1[@]}")") $(xj 'j["affinity"]["state"]' 10.96.74.9:80 "${C1[@]}")" \
	"$first remembered"
expect "B30 the pick is the remembered backend, and 10 more connections from c-1 reach it" \
	"$(pods_of "$(xj 'j["pick"]["backend"]["address"]' 10.96.74.9:80 "${C1[@]}")") $(reached "${POD_NS[c-1]}" 10 10.96.74.9 80)" \
	"$first translated: $first"
note "ferryctl explain 10.96.74.9:80 --netns c-1 --cgroup CG:"
"$FERRYCTL" --bpffs "$BPFFS" explain 10.96.74.9:80 "${C1[@]}" | sed 's/^/#   /'
age=$(xj 'j["affinity"]["age_seconds"]' 10.96.74.9:80 "${C1[@]}")
expect_match "B30 the remembered backend's age is that of the last connection (under 60 s: $age)" \
	"$age" '^[0-5]?[0-9]\.[0-9]+'
expect "B30 the node's namespace is another client: none yet" \
	"$(xj 'j["affinity"]["state"]' 10.96.74.9:80 "${LOCAL[@]}")" "none yet"
expect_match "B30 the text shows the timeout and the remembered backend" \
	"$("$FERRYCTL" --bpffs "$BPFFS" explain 10.96.74.9:80 "${C1[@]}" | grep '^affinity')" \
	"timeout 600 s: remembered ${POD_IP[$first]//./\\.}:8080 \\(backend [0-9]+\\), last used"

# The memory expires: timeoutSeconds 2. Whether it has is explain's
# reading of the age (the test may run slowly): remembered while the last
# connection is at most 2 s old, expired after.
short_state() {
	xj '"%s %s %s" % (j["affinity"]["state"].split(":")[0], j["affinity"]["age_seconds"] <= 2, j["affinity"]["backend"]["address"])' \
		10.96.74.13:80 "${C1[@]}"
}
first=$(reached "${POD_NS[c-1]}" 1 10.96.74.13 80)
first=${first#translated: }
expect_match "B30 timeout 2 s: after c-1's connection to $first explain remembers it while it is 2 s old at most, then says expired" \
	"$(short_state)" "^(remembered True|expired False) ${POD_IP[$first]:-none}\$"
short_expired() { [[ $(short_state) = "expired False "* ]]; }
if wait_until 10 short_expired; then
	ok "B30 timeout 2 s: once c-1 has been idle 2 s, explain says the memory expired"
else
	not_ok "B30 timeout 2 s: once c-1 has been idle 2 s, explain says the memory expired" "$(short_state)"
fi
expect "B30 expired: the pick is random again" "$(xj 'j["pick"]["why"]' 10.96.74.13:80 "${C1[@]}")" random
t=$(reached "${POD_NS[c-1]}" 1 10.96.74.13 80)
expect_match "B30 expired: c-1's next connection is remembered afresh (explain names where it went)" \
	"$(pods_of "$(xj 'j["affinity"]["backend"]["address"]' 10.96.74.13:80 "${C1[@]}")")" "^${t#translated: }\$"

# B12: the remembered backend leaves.
first=$(reached "${POD_NS[c-1]}" 1 10.96.74.14 80)
first=${first#translated: }
if [[ $first = [ab]-[12] ]]; then
	rest=()
	for p in a-1 a-2 b-1 b-2; do [ "$p" = "$first" ] || rest+=("$p"); done
	gone_yaml "${rest[@]}" | change "B12 removing $first" "$SRC/gone.yaml"
	expect "B12 c-1's remembered backend $first removed: explain says it left, the pick is open again" \
		"$(xj '"%s | %s" % (j["affinity"]["state"], j["pick"]["why"])' 10.96.74.14:80 "${C1[@]}")" \
		"its backend left: the next connection picks anew (B12) | random"
	t=$(reached "${POD_NS[c-1]}" 5 10.96.74.14 80)
	kept=$(pods_of "$(xj 'j["affinity"]["backend"]["address"]' 10.96.74.14:80 "${C1[@]}")")
	expect "B12 then c-1's 5 connections stick to one live backend (not $first), which explain remembers" \
		"$t, remembered $kept" "translated: ${t#translated: }, remembered ${t#translated: }"
	expect "B12 the backend c-1 sticks to now is not the removed $first" "$([ "$kept" != "$first" ] && echo live)" live
else
	not_ok "B12 c-1's first connection to gone" "$first"
fi

# A set in ferry_slots.
expect "a set of 20 backends (in ferry_slots, not inline): explain lists each of them" \
	"$(xj '" ".join(sorted(b["address"] for b in j["backends"]))' 10.96.74.15:80 "${LOCAL[@]}")" \
	"$(for i in $(seq 1 20); do echo "198.18.9.$i"; done | sort | tr '\n' ' ' | sed 's/ $//')"
expect_match "a set of 20: the text lists 16 and counts the rest" \
	"$("$FERRYCTL" --bpffs "$BPFFS" explain 10.96.74.15:80 "${LOCAL[@]}" | grep '^backends')" \
	'^backends +20 \(revision [0-9]+\): (198\.18\.9\.[0-9]+:8080, ){15}198\.18\.9\.[0-9]+:8080, and 4 more$'

# IPv6.
same_set "IPv6 ClusterIP from the node: explain names both endpoints, connections reach exactly those" \
	"translated: a-1 b-1" fd00:10:96::74:16 80

# === clients outside the node: the per-packet path =================================

# ext_reached a|b COUNT ADDR PORT: "translated: POD ..." with the pods COUNT
# TCP connections from external client a or b reached; "dropped" when the
# first connect timed out (after 5 s: a loaded machine may be slow to
# answer), "rejected" when it was refused, else the tally.
ext_reached() {
	local t out
	out=$(in_ext "$1" "$PYTHON" "$PROBE" tcp "$3" "$4" --timeout 2)
	case $out in
	"error=timeout stage=connect"*) echo dropped; return ;;
	"error=ECONNREFUSED"*) echo rejected; return ;;
	esac
	t=$(in_ext "$1" "$CONNCOUNT" -n "$2" -t 20 "$3" "$4" | awk '{print $2"="$1}' | sort |
		tr '\n' ' ' | sed 's/ $//')
	case $t in
	*error*) echo "$t" ;;
	*) echo "translated: $(names_of "$t")" ;;
	esac
}

# same_ext CASE WANT a|b ADDR PORT: explain's verdict and set for external
# client a or b and what 20 connections from it reach are both WANT.
same_ext() {
	local src=$CA_V4
	[ "$3" = b ] && src=$CB_V4
	expect "$1" "explain [$(set_of "$(hp "$4" "$5")" --source "$src")], reached [$(ext_reached "$3" 20 "$4" "$5")]" \
		"explain [$2], reached [$2]"
}

same_ext "B23 ETP Cluster NodePort from client a: explain names every endpoint, 20 connections reach exactly those" "translated: a-1 b-1" \
	a "$NODE_IP" 30741
expect "ETP Cluster from outside: the policy is Cluster, the frontend NodePort" \
	"$(xj '"%s %s" % (j["frontend"]["kind"], j["traffic_policy"])' "$NODE_IP:30741" --source "$CA_V4")" "NodePort Cluster"
same_ext "B26 B16 LB IP, client a inside loadBalancerSourceRanges, ETP Local: explain names the local endpoint, connections reach it only" "translated: a-2" \
	a 198.51.100.74 80
expect "B26 B16 client a: source allowed, policy Local, the only local backend is the pick" \
	"$(xj '"%s %s %s" % (j["source_allowed"], j["traffic_policy"], j["pick"]["backend"]["address"])' 198.51.100.74:80 --source "$CA_V4")" \
	"True Local ${POD_IP[a-2]}"
note "ferryctl explain 198.51.100.74:80 --source $CA_V4:"
"$FERRYCTL" --bpffs "$BPFFS" explain 198.51.100.74:80 --source "$CA_V4" | sed 's/^/#   /'
same_ext "B26 LB IP, client b outside loadBalancerSourceRanges: explain says dropped, the connect times out" "dropped" \
	b 198.51.100.74 80
expect_match "B26 the text says why" \
	"$("$FERRYCTL" --bpffs "$BPFFS" explain 198.51.100.74:80 --source "$CB_V4" | grep '^verdict')" \
	'dropped: the source is outside loadBalancerSourceRanges \(B26\)'
same_ext "B16 ETP Local NodePort without a local endpoint: explain says dropped, the connect times out" "dropped" \
	a "$NODE_IP" 30748
same_set "B23 the same NodePort from the node: explain names the Cluster set (b-1), connections reach it" \
	"translated: b-1" "$NODE_IP" 30748
same_ext "B14 NodePort without endpoints: explain says rejected, the connect is refused" "rejected" a "$NODE_IP" 30746
same_ext "IPv6 NodePort from client a: explain names both endpoints, connections reach exactly those" \
	"translated: a-1 b-1" a "$N1_V6" 30756
expect "a ClusterIP from outside: untouched" "$(xj 'j["verdict"]' 10.96.74.1:80 --source "$CA_V4")" untouched

# B30 from outside: the client is its address.
expect "B30 client a before its first connection to the affinity NodePort: none yet" \
	"$(xj '"%s %s" % (j["affinity"]["state"], j["pick"]["why"])' "$NODE_IP:30749" --source "$CA_V4")" "none yet random"
first=$(ext_reached a 1 "$NODE_IP" 30749)
first=${first#translated: }
expect "B30 after client a's connection to $first: explain remembers the backend it reached, and 10 more reach it" \
	"$(pods_of "$(xj 'j["pick"]["backend"]["address"]' "$NODE_IP:30749" --source "$CA_V4")") $(ext_reached a 10 "$NODE_IP" 30749)" \
	"$first translated: $first"
expect "B30 client b is another client: none yet" \
	"$(xj 'j["affinity"]["state"]' "$NODE_IP:30749" --source "$CB_V4")" "none yet"

# A known flow keeps its backend: the flow from a fixed source port.
out=$(in_ext a "$PYTHON" "$PROBE" tcp "$NODE_IP" 30741 --bind-port 40741)
flow_pod=$(field reply "$out")
expect "a known flow (client a, source port 40741): explain names the backend it reached" \
	"$(pods_of "$(xj 'j["existing_flow"].rsplit(":", 1)[0]' "$NODE_IP:30741" --source "$CA_V4:40741")")" "$flow_pod"

# === algorithms (issue 16): the backend explain says the next connection takes =====

# pick_pod ARGS...: the pod explain names as the pick, "" when none.
pick_pod() {
	local addr
	addr=$(xj 'j["pick"]["backend"]["address"] if j["pick"]["backend"] else ""' "$@")
	[ -z "$addr" ] || pods_of "$addr"
}

expect "round-robin: explain says so and shows the counter" \
	"$(xj '"%s %s" % (j["algorithm"], type(j["rr_next"]).__name__)' 10.96.74.10:80 "${LOCAL[@]}")" "round-robin int"
said='' went=''
for i in 1 2 3 4 5; do
	said+=" $(pick_pod 10.96.74.10:80 "${LOCAL[@]}")"
	went+=" $(reached "$NODE" 1 10.96.74.10 80 | sed 's/^translated: //')"
done
note "round-robin: explain said$said; the connections went to$went"
expect "round-robin: five times, the backend explain names is where the next connection lands" "$went" "$said"
expect "round-robin: the five connections went round the four backends" \
	"$(tr ' ' '\n' <<<"$went" | sed -n '2,5p' | sort -u | tr '\n' ' ')" "a-1 a-2 b-1 b-2 "

mg_c1=$(pick_pod 10.96.74.11:80 "${C1[@]}")
expect "maglev on the node: explain names c-1's backend (the hash of its namespace), and 10 connections from c-1 reach it" \
	"${mg_c1:-none} $(reached "${POD_NS[c-1]}" 10 10.96.74.11 80)" "${mg_c1:-none} translated: ${mg_c1:-none}"
mg_node=$(pick_pod 10.96.74.11:80 "${LOCAL[@]}")
expect "maglev on the node: explain names the node namespace's backend, and 10 connections reach it" \
	"${mg_node:-none} $(reached "$NODE" 10 10.96.74.11 80)" "${mg_node:-none} translated: ${mg_node:-none}"
expect_match "maglev: the text shows the hash, the table entry and the slot" \
	"$("$FERRYCTL" --bpffs "$BPFFS" explain 10.96.74.11:80 "${C1[@]}" | grep '^algorithm')" \
	'maglev: hash of the client.s network namespace 0x[0-9a-f]{8} -> table entry [0-9]+ of [0-9]+ -> slot [0-3]$'
said='' went=''
for port in 41001 41002 41003 41004 41005 41006; do
	said+=" $(pick_pod "$NODE_IP:30751" --source "$CA_V4:$port")"
	went+=" $(field reply "$(in_ext a "$PYTHON" "$PROBE" tcp "$NODE_IP" 30751 --bind-port "$port")")"
done
note "maglev from outside: explain said$said; the flows went to$went"
note "ferryctl explain $NODE_IP:30751 --source $CA_V4:41007:"
"$FERRYCTL" --bpffs "$BPFFS" explain "$NODE_IP:30751" --source "$CA_V4:41007" | sed 's/^/#   /'
expect "maglev from outside: for six flows of client a, explain names the backend each flow reaches" "$went" "$said"
expect "maglev from outside without a source port: not determined, and explain says what it needs" \
	"$(xj 'j["pick"]["backend"]' "$NODE_IP:30751" --source "$CA_V4")" None
mg_a=$(pick_pod "$NODE_IP:30752" --source "$CA_V4")
expect "maglev with affinity from outside: explain names client a's backend (the hash of its address), 10 connections reach it" \
	"${mg_a:-none} $(ext_reached a 10 "$NODE_IP" 30752)" "${mg_a:-none} translated: ${mg_a:-none}"

# === names: the service port, this node and its zone ===========================
expect_match "explain names the service port (ferry_svc_names)" \
	"$(xj 'j["service"]' 10.96.74.1:80 "${LOCAL[@]}")" '^ex/web'
expect "explain shows this node's zone" "$(xj 'j["node_zone"]' 10.96.74.4:80 "${LOCAL[@]}")" zone-a
expect_match "the Local policy line names this node" \
	"$("$FERRYCTL" --bpffs "$BPFFS" explain 10.96.74.2:80 "${LOCAL[@]}" | grep '^policy')" \
	"the endpoints on $TOPO_NODE_NAME only"

# --- bad input --------------------------------------------------------------------------
"$FERRYCTL" --bpffs "$BPFFS" explain 10.96.74.1 --source "$CA_V4" >/dev/null 2>"$WORK/err"
expect "a frontend without a port: exit 2 and a message" "$? $(head -c 40 "$WORK/err")" \
	"2 ferryctl: explain: want ADDRESS:PORT[/tc"
"$FERRYCTL" --bpffs "$BPFFS" explain 10.96.74.1:80 --netns /nonexistent >/dev/null 2>"$WORK/err"
expect_match "a netns path that does not exist: exit 1 and a message naming it" "$? $(cat "$WORK/err")" \
	'^1 ferryctl: network namespace /nonexistent: No such file'

"$FERRYCTL" --bpffs "$BPFFS" explain 10.96.74.1:80 --cgroup "$CG/nonexistent" >/dev/null 2>"$WORK/err"
expect_match "a cgroup that does not exist: exit 1 and a message naming it" "$? $(cat "$WORK/err")" \
	"^1 ferryctl: explain: cgroup $CG/nonexistent: No such file"

if kill -0 "$FERRYD_PID" 2>/dev/null; then ok "ferryd is still running"; else not_ok "ferryd is still running" "gone"; fi
finish
