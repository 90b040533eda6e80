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
# own. Wherever explain names the backend set, connections from that client
# reach exactly those pods; where it names one backend, every connection
# reaches it; where it says refused, connect() fails with ECONNREFUSED.
# Whether a cgroup is served: the test cgroup and its children are, a
# sibling cgroup is not.
# For a client outside the node (--source) explain follows the per-packet
# path: loadBalancerSourceRanges (B26: allowed, or dropped), externalTraffic-
# Policy Local (the local set, B16, B23; dropped without a local endpoint),
# a ClusterIP (untouched from outside) and affinity keyed by the address.
# The node addresses are on no device (as in frontends.sh), so no packet
# takes the per-packet path here: those cases check explain against the
# Services' specs (tests/kernel/nodeport.sh checks the datapath itself).
#
# ferryd runs in the node namespace (FERRYD_NETNS) with --node-ips
# 192.0.2.1 and --node-zone zone-a. Pods a-* run on this node (node-a),
# b-* on node-b; c-1 is a client namespace with no server.
# shellcheck disable=SC2317 # functions called through wait_until
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

declare -A POD_IP=([a-1]=198.18.74.1 [a-2]=198.18.74.2 [b-1]=198.18.74.3 [b-2]=198.18.74.4)
topology_up
for p in a-1 a-2 b-1 b-2; do pod "$p" "${POD_IP[$p]}" "" --tcp 8080 --udp 8080; done
add_pod c-1 198.18.74.101 || { not_ok "$GROUP setup" "client namespace c-1"; finish; }
C1_NS=/run/netns/${POD_NS[c-1]}
NODE_NS=/run/netns/$NODE
NODE_IP=192.0.2.1

SRC=$WORK/src
mkdir "$SRC"

# --- objects -------------------------------------------------------------------

# svc NAME IDX [SPEC-LINES]: Service NAME (namespace ex), ClusterIP
# 10.96.74.IDX, port tcp 80 -> 8080 and udp 80 -> 8080; SPEC-LINES go
# under spec: (type, policies, nodePorts are given there).
svc() {
	cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: ex}
spec:
  clusterIP: 10.96.74.$2
  ports:
  - {name: tcp, port: 80, protocol: TCP, targetPort: 8080${NP:+, nodePort: $NP}}
  - {name: udp, port: 80, protocol: UDP, targetPort: 8080}
EOF
	[ -z "${3:-}" ] || printf '%s\n' "$3"
}

# slice NAME ENDPOINT...: NAME's EndpointSlice; ENDPOINT is POD:STATE[:ZONE]
# with STATE ready or term (serving, terminating) and ZONE its hint; a-*
# are on node-a, b-* on node-b.
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
		node=node-a
		[[ $pod = b-* ]] && node=node-b
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
	svc empty 6
	slice empty
	NP=30747 svc edge 7 $'  type: LoadBalancer\n  externalTrafficPolicy: Local\n  loadBalancerSourceRanges: [203.0.113.0/24]\nstatus:\n  loadBalancer: {ingress: [{ip: 198.51.100.74}]}'
	slice edge a-2:ready b-2:ready
	NP=30748 svc edge-none 8 $'  type: NodePort\n  externalTrafficPolicy: Local'
	slice edge-none b-1:ready
	NP=30749 svc aff 9 $'  type: NodePort\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}'
	slice aff a-1:ready a-2:ready b-1:ready b-2:ready
} | write_source "$SRC/ex.yaml"

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

# pods_of ADDR...: the pods with these addresses, sorted ("?ADDR" for
# another address).
pods_of() {
	local a p name
	for a; do
		name="?$a"
		for p in "${!POD_IP[@]}"; do [ "${POD_IP[$p]}" = "$a" ] && name=$p; done
		echo "$name"
	done | sort | tr '\n' ' ' | sed 's/ $//'
}

# set_of ARGS...: "VERDICT: POD ..." for explain ARGS: the verdict and the
# pods of the backend set it names.
set_of() {
	local v addrs
	v=$(xj 'j["verdict"]' "$@")
	# shellcheck disable=SC2046 # one word per address
	addrs=$(xj '" ".join(b["address"] for b in j.get("backends", []))' "$@")
	# shellcheck disable=SC2086 # one word per address
	echo "$v: $(pods_of $addrs)"
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

# same_set CASE ADDR PORT: explain's verdict and set for the node's client
# equal what 30 connections from it reach.
same_set() {
	local got want
	got=$(set_of "$2:$3" --netns "$NODE_NS" --cgroup "$CG")
	want=$(reached "$NODE" 30 "$2" "$3")
	[ "$want" != refused ] || want="refused: "
	expect "$1" "$got" "$want"
}

FERRYD_NETNS=$NODE ferryd_start "$SRC" --node-ips "$NODE_IP" --node-zone zone-a || finish
note "ferryctl service list:"
"$FERRYCTL" --bpffs "$BPFFS" service list | sed 's/^/#   /'

# === clients on the node: the socket path ======================================

LOCAL=(--netns "$NODE_NS" --cgroup "$CG")
same_set "Cluster: explain names both endpoints, and 30 connections reach exactly those" 10.96.74.1 80
expect "Cluster: traffic policy Cluster, no hints, no fallback" \
	"$(xj '"%s %s %s %s" % (j["frontend"]["kind"], j["traffic_policy"], j["zone_hints"], j["terminating_fallback"])' 10.96.74.1:80 "${LOCAL[@]}")" \
	"ClusterIP Cluster False False"
expect "Cluster, 2 backends, no affinity: the pick is random" \
	"$(xj '"%s %s" % (j["pick"]["why"], j["affinity"]["state"])' 10.96.74.1:80 "${LOCAL[@]}")" "random off"

same_set "B13 internalTrafficPolicy Local: explain names this node's endpoint only, and connections reach it only" 10.96.74.2 80
expect "B13 Local: policy Local, and the only backend is the pick" \
	"$(xj '"%s %s %s" % (j["traffic_policy"], j["pick"]["why"], j["pick"]["backend"]["address"])' 10.96.74.2:80 "${LOCAL[@]}")" \
	"Local the only backend ${POD_IP[a-1]}"

same_set "B15 Local without a local endpoint: explain says refused, and connect() is refused" 10.96.74.3 80
expect_match "B15 the reason names the missing local endpoint" \
	"$(xj 'j["reason"]' 10.96.74.3:80 "${LOCAL[@]}")" 'no endpoint on this node.*ECONNREFUSED \(B15\)'

same_set "B31 topology hints: explain names the zone-a endpoints, and connections reach exactly those" 10.96.74.4 80
expect "B31 explain says topology hints are in use" "$(xj 'j["zone_hints"]' 10.96.74.4:80 "${LOCAL[@]}")" True

same_set "B11 Local, no ready local endpoint: explain names the terminating local ones, and connections reach exactly those" 10.96.74.5 80
expect "B11 explain says terminating fallback" "$(xj 'j["terminating_fallback"]' 10.96.74.5:80 "${LOCAL[@]}")" True
expect_match "B11 the text says why" \
	"$("$FERRYCTL" --bpffs "$BPFFS" explain 10.96.74.5:80 "${LOCAL[@]}" | grep '^fallback')" 'terminating.*\(B11\)'

same_set "B14 no endpoints: explain says refused, and connect() is refused" 10.96.74.6 80
expect_match "B14 the reason" "$(xj 'j["reason"]' 10.96.74.6:80 "${LOCAL[@]}")" '^no endpoint: .*\(B14\)'

expect "B17 undefined port of a known ClusterIP: explain says refused, and connect() is refused" \
	"$(xj 'j["verdict"]' 10.96.74.1:81 "${LOCAL[@]}") $(reached "$NODE" 3 10.96.74.1 81)" "refused refused"
expect_match "B17 the text names the known ClusterIP" \
	"$("$FERRYCTL" --bpffs "$BPFFS" explain 10.96.74.1:81 "${LOCAL[@]}")" 'known ClusterIP.*\(B17\)'

t=$(reached "$NODE" 3 10.96.99.99 80)
expect "not a service: explain says untouched, and the connection goes to that address (no route here)" \
	"$(xj 'j["verdict"]' 10.96.99.99:80 "${LOCAL[@]}") $t" "untouched error:ENETUNREACH=3"

same_set "UDP: explain of the UDP port names the same set for the Local Service" 10.96.74.2 80
expect "UDP: explain of 10.96.74.2:80/udp names a-1" "$(set_of 10.96.74.2:80/udp "${LOCAL[@]}")" "translated: a-1"

# NodePort from the node: on a node address, and on loopback only from the
# node's own network namespace (ferryd's, B22).
same_set "B22 NodePort on a node address from the node: explain names the set, connections reach it" "$NODE_IP" 30741
expect "B22 NodePort on the node address: explain says NodePort" \
	"$(xj 'j["frontend"]["kind"]' "$NODE_IP:30741" "${LOCAL[@]}")" NodePort
same_set "B22 NodePort on 127.0.0.1 from the node's namespace: explain names the set, connections reach it" 127.0.0.1 30741
expect "B22 NodePort on 127.0.0.1 from a pod's namespace (c-1): explain says untouched" \
	"$(xj 'j["verdict"]' 127.0.0.1:30741 --netns "$C1_NS" --cgroup "$CG")" untouched

# B23: from the node, an externalTrafficPolicy Local LB IP uses the Cluster set.
same_set "B23 ETP Local LB IP from the node: explain names the Cluster set, connections reach exactly it" 198.51.100.74 80
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
expect "B30 an external client is its address, with no memory yet" \
	"$(xj 'j["affinity"]["state"]' "$NODE_IP:30749" --source 203.0.113.9)" "none yet"

# === clients outside the node: the per-packet path =================================

expect "B26 LB IP, source inside loadBalancerSourceRanges, ETP Local: the local set (a-2), the only backend" \
	"$(set_of 198.51.100.74:80 --source 203.0.113.5) $(xj 'j["pick"]["backend"]["address"]' 198.51.100.74:80 --source 203.0.113.5)" \
	"translated: a-2 ${POD_IP[a-2]}"
note "ferryctl explain 198.51.100.74:80 --source 203.0.113.5:40000:"
"$FERRYCTL" --bpffs "$BPFFS" explain 198.51.100.74:80 --source 203.0.113.5:40000 | sed 's/^/#   /'
expect "B16 B23 the external policy is Local" "$(xj 'j["traffic_policy"]' 198.51.100.74:80 --source 203.0.113.5)" Local
expect "B26 LB IP, source outside loadBalancerSourceRanges: dropped" \
	"$(xj '"%s %s" % (j["source_allowed"], j["verdict"])' 198.51.100.74:80 --source 198.18.74.101)" "False dropped"
expect "B16 NodePort of an ETP Local Service without a local endpoint: dropped" \
	"$(xj 'j["verdict"]' "$NODE_IP:30748" --source 203.0.113.5)" dropped
expect "B23 the same NodePort from the node: the Cluster set (b-1)" \
	"$(set_of "$NODE_IP:30748" "${LOCAL[@]}")" "translated: b-1"
expect "ETP Cluster NodePort from outside: every endpoint" \
	"$(set_of "$NODE_IP:30741" --source 203.0.113.5) $(xj 'j["traffic_policy"]' "$NODE_IP:30741" --source 203.0.113.5)" \
	"translated: a-1 b-1 Cluster"
expect "a ClusterIP from outside: untouched" "$(xj 'j["verdict"]' 10.96.74.1:80 --source 203.0.113.5)" untouched
expect "B14 no endpoints, from outside (no such frontend: the ClusterIP only): untouched" \
	"$(xj 'j["verdict"]' 10.96.74.6:80 --source 203.0.113.5)" untouched

# --- bad input --------------------------------------------------------------------------
"$FERRYCTL" --bpffs "$BPFFS" explain 10.96.74.1 --source 203.0.113.5 >/dev/null 2>"$WORK/err"
expect "a frontend without a port: exit 2 and a message" "$? $(head -c 40 "$WORK/err")" \
	"2 ferryctl: explain: want ADDRESS:PORT[/tc"
"$FERRYCTL" --bpffs "$BPFFS" explain 10.96.74.1:80 --netns /nonexistent >/dev/null 2>"$WORK/err"
expect_match "a netns path that does not exist: exit 1 and a message naming it" "$? $(cat "$WORK/err")" \
	'^1 ferryctl: network namespace /nonexistent: No such file'

if kill -0 "$FERRYD_PID" 2>/dev/null; then ok "ferryd is still running"; else not_ok "ferryd is still running" "gone"; fi
finish
