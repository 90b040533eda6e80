#!/usr/bin/env bash
# internalTrafficPolicy and topology hints, through real connections from
# the node's client to pods.
#
# internalTrafficPolicy: Local uses only the endpoints whose nodeName equals
# this node's name exactly (B13); with no local endpoint, TCP connect and
# UDP sendto fail with ECONNREFUSED and no packet reaches a remote pod (B15;
# ferry refuses at the socket where kube-proxy drops); with no ready local
# endpoint the local serving+terminating ones serve, never a ready remote
# one (B11, the Local set on its own); the policy follows live changes and
# an unknown value keeps the Service's last good version.
# Topology hints (B31): a Cluster Service uses only the endpoints hinted for
# this node's zone when every ready endpoint has hints and one names the
# zone; otherwise, with no zone known, and for Local Services, hints are
# ignored. The zone is --node-zone with the file source and the Node's
# topology.kubernetes.io/zone label with the API (where --node-zone is
# refused); a label change re-selects the backends. The first generation
# from the API waits for the Node (so it already follows the zone), at most
# 2 s when the Node cannot be read (B33).
#
# Pods: a-* run on this node (node-a), b-* on node-b, c-* on nodes whose
# names only resemble it (Node-A, node-a2, node). Each answers its name.
# shellcheck disable=SC2317,SC2119 # functions run through wait_until; no script arguments
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apilib.sh
source "$(dirname "$0")/../apilib.sh"

declare -A POD_IP=([a-1]=198.18.72.1 [a-2]=198.18.72.2 [b-1]=198.18.72.3 [b-2]=198.18.72.4
	[c-1]=198.18.72.5 [c-2]=198.18.72.6 [c-3]=198.18.72.7)
topology_up
for p in a-1 a-2 b-1 b-2 c-1 c-2 c-3; do pod "$p" "${POD_IP[$p]}" "" --tcp 8080 --udp 8080; done

SRC=$WORK/src
mkdir "$SRC"

# --- objects -----------------------------------------------------------------

# ep POD STATE NODE [ZONE...]: one endpoint (JSON) on node NODE; STATE is
# ready, notready, term (serving, terminating) or gone (terminating, not
# serving); ZONEs are its hints.forZones (none: no hints).
ep() {
	local pod=$1 state=$2 node=$3 cond hints='' z sep=''
	shift 3
	case $state in
	ready) cond='"ready": true' ;;
	notready) cond='"ready": false' ;;
	term) cond='"ready": false, "serving": true, "terminating": true' ;;
	gone) cond='"ready": false, "serving": false, "terminating": true' ;;
	esac
	if [ $# -gt 0 ]; then
		hints=', "hints": {"forZones": ['
		for z; do hints+="$sep{\"name\": \"$z\"}" && sep=', '; done
		hints+=']}'
	fi
	printf '{"addresses": ["%s"], "conditions": {%s}, "nodeName": "%s"%s}' \
		"${POD_IP[$pod]}" "$cond" "$node" "$hints"
}

# svc_docs NAME CLUSTERIP POLICY EP-JSON...: Service NAME (ports tcp 80 and
# udp 80; spec.internalTrafficPolicy POLICY, absent when "") and its
# EndpointSlice (ports 8080), as two JSON documents, one a line.
svc_docs() {
	local name=$1 ip=$2 policy=$3 itp='' eps='' e
	shift 3
	[ -n "$policy" ] && itp="\"internalTrafficPolicy\": \"$policy\", "
	for e; do eps+=${eps:+, }$e; done
	printf '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "%s", "namespace": "pol"}, "spec": {"clusterIP": "%s", %s"ports": [{"name": "tcp", "port": 80, "protocol": "TCP"}, {"name": "udp", "port": 80, "protocol": "UDP"}]}}\n' \
		"$name" "$ip" "$itp"
	printf '{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "%s-1", "namespace": "pol", "labels": {"kubernetes.io/service-name": "%s"}}, "addressType": "IPv4", "ports": [{"name": "tcp", "port": 8080, "protocol": "TCP"}, {"name": "udp", "port": 8080, "protocol": "UDP"}], "endpoints": [%s]}\n' \
		"$name" "$name" "$eps"
}

# svc_file NAME ...: svc_docs as a YAML file of two documents on stdout.
svc_file() { svc_docs "$@" | awk 'NR > 1 {print "---"} {print}'; }

# node_doc ZONE: this node's Node, labelled with ZONE (no label when "").
node_doc() {
	local labels='{}'
	[ -n "$1" ] && labels="{\"topology.kubernetes.io/zone\": \"$1\"}"
	printf '{"kind": "Node", "apiVersion": "v1", "metadata": {"name": "node-a", "labels": %s}, "status": {"addresses": [{"type": "InternalIP", "address": "198.18.0.1"}]}}' "$labels"
}

# --- what a client and ferryctl see -------------------------------------------

# backends POD...: svc_backends' answer for active backends on these pods.
backends() {
	local p
	for p; do echo "${POD_IP[$p]}:8080:active"; done | sort | tr '\n' ' ' | sed 's/ $//'
}

# svc_flags ADDR PORT PROTO: "internal_local=B zone_hints=B" of one frontend
# in ferryctl's list (null when ferryctl lacks the key).
svc_flags() {
	service_list_json | "$PYTHON" -c '
import json, sys
addr, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for s in json.load(sys.stdin):
    if (s["address"], s["port"], s["protocol"]) == (addr, port, proto):
        print(" ".join("%s=%s" % (k, json.dumps(s.get(k))) for k in ("internal_local", "zone_hints")))
        break
else:
    print("absent")' "$@"
}

# ip_received POD...: "POD=N ..." with N the IPv4 packets each pod's
# namespace has received (Ip InReceives).
ip_received() {
	local p
	for p; do
		# shellcheck disable=SC2016 # awk's own fields
		echo "$p=$(nsenter --net="/run/netns/${POD_NS[$p]}" awk '$1 == "Ip:" && $2 ~ /^[0-9]+$/ {print $4}' /proc/net/snmp)"
	done | tr '\n' ' ' | sed 's/ $//'
}

# api_change WHAT JSON: one write through the API, then the same.
api_change() {
	local g
	g=$(generation)
	put "$2"
	wait_generation $((g + 1)) 5 || not_ok "$1: a new generation is published" "still $(generation)"
}

# === the file source, this node node-a in zone-a ===============================

# B13 / B15: near misses of "node-a" are not local.
svc_file loc 10.96.72.1 Local "$(ep a-1 ready node-a)" "$(ep a-2 ready node-a)" \
	"$(ep b-1 ready node-b)" "$(ep b-2 ready node-b)" \
	"$(ep c-1 ready Node-A)" "$(ep c-2 ready node-a2)" "$(ep c-3 ready node)" | write_source "$SRC/loc.yaml"
svc_file noloc 10.96.72.2 Local "$(ep b-1 ready node-b)" \
	"$(ep c-1 ready Node-A)" "$(ep c-2 ready node-a2)" "$(ep c-3 ready node)" | write_source "$SRC/noloc.yaml"
# B11: a-1 terminating, a-2 ready, on this node; b-1 ready elsewhere.
svc_file drain 10.96.72.3 Local "$(ep a-1 term node-a)" "$(ep a-2 ready node-a)" \
	"$(ep b-1 ready node-b)" | write_source "$SRC/drain.yaml"
# flip_file POLICY: one local endpoint, two remote ones.
flip_file() { svc_file flip 10.96.72.4 "$1" "$(ep a-1 ready node-a)" "$(ep b-1 ready node-b)" "$(ep b-2 ready node-b)"; }
flip_file Local | write_source "$SRC/flip.yaml"
# B31: b-1 and b-2 are hinted for zone-a; c-1 has no hints but is not ready.
svc_file hint 10.96.72.5 Cluster "$(ep a-1 ready node-a zone-b)" "$(ep a-2 ready node-a zone-c)" \
	"$(ep b-1 ready node-b zone-a)" "$(ep b-2 ready node-b zone-b zone-a)" \
	"$(ep c-1 notready node-b)" | write_source "$SRC/hint.yaml"
svc_file mixed 10.96.72.6 "" "$(ep a-1 ready node-a zone-b)" "$(ep a-2 ready node-a)" \
	"$(ep b-1 ready node-b zone-a)" "$(ep b-2 ready node-b zone-a)" | write_source "$SRC/mixed.yaml"
svc_file elsewhere 10.96.72.7 "" "$(ep a-1 ready node-a zone-b)" "$(ep a-2 ready node-a zone-c)" \
	"$(ep b-1 ready node-b zone-b)" "$(ep b-2 ready node-b zone-b zone-c)" | write_source "$SRC/elsewhere.yaml"
svc_file lochint 10.96.72.8 Local "$(ep a-1 ready node-a zone-b)" "$(ep a-2 ready node-a zone-a)" \
	"$(ep b-1 ready node-b zone-a)" "$(ep b-2 ready node-b zone-a)" | write_source "$SRC/lochint.yaml"

ferryd_start "$SRC" --node-zone zone-a || finish

# --- B13: Local means nodeName == node-a exactly ---------------------------------
expect "B13 Local: 30 TCP connections reach this node's pods only, each of them" \
	"$(names_of "$(conn_tally 30 10.96.72.1 80)")" "a-1 a-2"
expect "B13 Local: 20 UDP datagrams (unconnected sockets) are answered by this node's pods only, each of them" \
	"$(names_of "$(udp_tally 20 10.96.72.1 80)")" "a-1 a-2"
expect "B13 ferryctl lists the local endpoints only (not Node-A, node-a2, node, node-b)" \
	"$(svc_backends 10.96.72.1 80 TCP)" "$(backends a-1 a-2)"
expect "B13 ferryctl marks the Service internal_local" "$(svc_flags 10.96.72.1 80 TCP)" \
	"internal_local=true zone_hints=false"
expect_match "B13 ferryctl's table marks the frontend (local)" \
	"$("$FERRYCTL" --bpffs "$BPFFS" service list | grep -F '10.96.72.1:80/TCP')" '10\.96\.72\.1:80/TCP \(local\) '

# --- B15: Local without a local endpoint ---------------------------------------
rx0=$(ip_received b-1 c-1 c-2 c-3)
expect "B15 no local endpoint (remote and near-miss nodeNames only): TCP connect refused (x10)" \
	"$(conn_tally 10 10.96.72.2 80)" "error:ECONNREFUSED=10"
expect "B15 no local endpoint: UDP sendto refused (x5)" "$(udp_tally 5 10.96.72.2 80)" "error:ECONNREFUSED=5"
expect "B15 no local endpoint: UDP connect refused" \
	"$(field error "$(probe udp --connect 10.96.72.2 80)")" ECONNREFUSED
expect "B15 no local endpoint: the remote pods received no packet" "$(ip_received b-1 c-1 c-2 c-3)" "$rx0"
expect "B15 ferryctl lists it internal_local, without backends" \
	"$(svc_flags 10.96.72.2 80 TCP) [$(svc_backends 10.96.72.2 80 TCP)]" "internal_local=true zone_hints=false []"

# --- B11 on the Local set: its own terminating fallback ------------------------
expect "B11 Local: the ready local endpoint serves, not the terminating one (x30)" \
	"$(conn_tally 30 10.96.72.3 80)" "a-2=30"
svc_file drain 10.96.72.3 Local "$(ep a-1 term node-a)" "$(ep a-2 gone node-a)" \
	"$(ep b-1 ready node-b)" | change "B11 a-2 terminating" "$SRC/drain.yaml"
expect "B11 Local: no ready local endpoint: the serving+terminating local one serves, not the ready remote one (x30)" \
	"$(conn_tally 30 10.96.72.3 80)" "a-1=30"
expect "B11 Local: UDP goes to the terminating local endpoint too (x10)" "$(udp_tally 10 10.96.72.3 80)" "a-1=10"
expect "B11 ferryctl shows the local fallback" "$(svc_backends 10.96.72.3 80 TCP)" \
	"${POD_IP[a-1]}:8080:terminating fallback"
svc_file drain 10.96.72.3 Local "$(ep a-1 gone node-a)" "$(ep a-2 gone node-a)" \
	"$(ep b-1 ready node-b)" | change "B11 a-1 not serving" "$SRC/drain.yaml"
expect "B11 B15 Local: no serving local endpoint: refused although a remote one is ready (x10)" \
	"$(conn_tally 10 10.96.72.3 80)" "error:ECONNREFUSED=10"

# --- the policy changed live ------------------------------------------------
expect "B13 flip, Local: this node's endpoint only (x30)" "$(conn_tally 30 10.96.72.4 80)" "a-1=30"
flip_file Cluster | change "flip to Cluster" "$SRC/flip.yaml"
expect "B13 flip, Local -> Cluster: every endpoint once published (x60)" \
	"$(names_of "$(conn_tally 60 10.96.72.4 80)")" "a-1 b-1 b-2"
expect "B13 flip, Cluster: ferryctl no longer marks it internal_local" "$(svc_flags 10.96.72.4 80 TCP)" \
	"internal_local=false zone_hints=false"
flip_file Local | change "flip back to Local" "$SRC/flip.yaml"
expect "B13 flip, Cluster -> Local: this node's endpoint only again (x30)" "$(conn_tally 30 10.96.72.4 80)" "a-1=30"

skipped0=$(status_get 'j["agent"]["objects_skipped"]')
flip_file Sideways | write_source "$SRC/flip.yaml"
if wait_status 5 "j['agent']['objects_skipped'] > $skipped0"; then
	ok "internalTrafficPolicy Sideways: the Service is counted in objects_skipped"
else
	not_ok "internalTrafficPolicy Sideways: the Service is counted in objects_skipped" "still $skipped0"
fi
expect_match "internalTrafficPolicy Sideways: the log names the field and keeps the last good version" \
	"$(grep -c 'internalTrafficPolicy.*keeping its last good version' "$FERRYD_LOG")" '^[1-9]'
expect "internalTrafficPolicy Sideways: the last good version (Local) stays (x30)" \
	"$(conn_tally 30 10.96.72.4 80)" "a-1=30"
flip_file Cluster | change "flip fixed to Cluster" "$SRC/flip.yaml"
expect "internalTrafficPolicy fixed to Cluster after Sideways: every endpoint (x60)" \
	"$(names_of "$(conn_tally 60 10.96.72.4 80)")" "a-1 b-1 b-2"

# --- B31: topology hints, zone-a -------------------------------------------------
expect "B31 every ready endpoint hinted, two for zone-a: only those get connections (x60)" \
	"$(names_of "$(conn_tally 60 10.96.72.5 80)")" "b-1 b-2"
expect "B31 every ready endpoint hinted: UDP datagrams to the zone-a ones only (x20)" \
	"$(names_of "$(udp_tally 20 10.96.72.5 80)")" "b-1 b-2"
expect "B31 ferryctl lists the zone-a endpoints, marked zone_hints" \
	"$(svc_flags 10.96.72.5 80 TCP) [$(svc_backends 10.96.72.5 80 TCP)]" \
	"internal_local=false zone_hints=true [$(backends b-1 b-2)]"
expect "B31 one ready endpoint without hints: hints ignored, all ready endpoints (x60)" \
	"$(names_of "$(conn_tally 60 10.96.72.6 80)")" "a-1 a-2 b-1 b-2"
expect "B31 one ready endpoint without hints: ferryctl does not mark zone_hints" \
	"$(svc_flags 10.96.72.6 80 TCP)" "internal_local=false zone_hints=false"
expect "B31 no endpoint hinted for zone-a: hints ignored, all ready endpoints (x60)" \
	"$(names_of "$(conn_tally 60 10.96.72.7 80)")" "a-1 a-2 b-1 b-2"
expect "B31 Local ignores hints: both local endpoints, whatever their zone (x30)" \
	"$(names_of "$(conn_tally 30 10.96.72.8 80)")" "a-1 a-2"
expect "B31 Local ignores hints: ferryctl marks internal_local, not zone_hints" \
	"$(svc_flags 10.96.72.8 80 TCP)" "internal_local=true zone_hints=false"

ferryd_reset
ferryd_start "$SRC" || finish
expect "B31 no --node-zone: hints ignored, all ready endpoints (x60)" \
	"$(names_of "$(conn_tally 60 10.96.72.5 80)")" "a-1 a-2 b-1 b-2"
expect "B31 no --node-zone: ferryctl does not mark zone_hints" "$(svc_flags 10.96.72.5 80 TCP)" \
	"internal_local=false zone_hints=false"
expect "B13 no --node-zone: Local still means this node's endpoints (x30)" \
	"$(names_of "$(conn_tally 30 10.96.72.1 80)")" "a-1 a-2"
ferryd_reset

# === the API: the zone from the Node object ======================================
api_setup
api_start || finish
put "$(node_doc zone-a)"
# kloc_docs POLICY: a local and a remote endpoint.
kloc_docs() { svc_docs kloc 10.96.73.2 "$1" "$(ep a-1 ready node-a)" "$(ep b-1 ready node-b)"; }
while read -r o; do put "$o"; done < <(
	svc_docs khint 10.96.73.1 "" "$(ep a-1 ready node-a zone-a)" "$(ep a-2 ready node-b zone-a)" \
		"$(ep b-1 ready node-a zone-b)" "$(ep b-2 ready node-b zone-b)"
	kloc_docs Cluster)

ferryd_k8s_spawn --node-zone zone-a || finish
expect_refused "--node-zone with --source k8s: ferryd refuses to start" 10 &&
	expect_match "--node-zone with --source k8s: the message says where the zone comes from" \
		"$(tail -n 1 "$FERRYD_LOG")" 'node-zone.*topology\.kubernetes\.io/zone'

# The first apply waits for the Node (at most 2 s), so generation 1 already
# follows its zone: a restart never briefly spreads a hinted Service.
ferryd_k8s_start || finish
expect "B31 API: generation 1 already restricts the hinted Service to the Node's zone" \
	"$(svc_flags 10.96.73.1 80 TCP)" "internal_local=false zone_hints=true"
expect "B31 API, Node in zone-a: the zone-a endpoints only (x60)" \
	"$(names_of "$(conn_tally 60 10.96.73.1 80)")" "a-1 a-2"
api_change "Node zone-a -> zone-b" "$(node_doc zone-b)"
expect "B31 API, Node relabelled zone-b: the zone-b endpoints only (x60)" \
	"$(names_of "$(conn_tally 60 10.96.73.1 80)")" "b-1 b-2"
api_change "Node zone label removed" "$(node_doc "")"
expect "B31 API, Node without a zone label: hints ignored (x60)" \
	"$(names_of "$(conn_tally 60 10.96.73.1 80)")" "a-1 a-2 b-1 b-2"
expect "B31 API, Node without a zone label: ferryctl does not mark zone_hints" \
	"$(svc_flags 10.96.73.1 80 TCP)" "internal_local=false zone_hints=false"
api_change "Node zone-a again" "$(node_doc zone-a)"
expect "B31 API, Node back in zone-a: the zone-a endpoints only (x60)" \
	"$(names_of "$(conn_tally 60 10.96.73.1 80)")" "a-1 a-2"

expect "B13 API, Cluster: both endpoints (x40)" "$(names_of "$(conn_tally 40 10.96.73.2 80)")" "a-1 b-1"
api_change "Service kloc -> Local" "$(kloc_docs Local | head -n 1)"
expect "B13 API, internalTrafficPolicy changed to Local: this node's endpoint only (x30)" \
	"$(conn_tally 30 10.96.73.2 80)" "a-1=30"
expect "B13 API, Local: ferryctl marks internal_local" "$(svc_flags 10.96.73.2 80 TCP)" \
	"internal_local=true zone_hints=false"
api_change "Service kloc -> Cluster" "$(kloc_docs Cluster | head -n 1)"
expect "B13 API, internalTrafficPolicy back to Cluster: both endpoints (x40)" \
	"$(names_of "$(conn_tally 40 10.96.73.2 80)")" "a-1 b-1"

# A Node that cannot be read holds nothing back for long: with the Node
# list refused (503, Retry-After 4 s) the first generation comes after the
# 2 s bound, without the zone, and the hints follow once the Node is read.
ferryd_reset
api_ctl POST /inject '{"code":503,"count":1,"retry_after":4,"match":"/api/v1/nodes"}' >/dev/null
t0=$(date +%s%N)
ferryd_k8s_start || finish
t1=$(date +%s%N)
expect_match "B33 Node list refused: ferryd programs without the zone and says so" \
	"$(grep -c 'node not listed 2 s after Services and EndpointSlices' "$FERRYD_LOG")" '^[1-9]'
waited_ms=$(( (t1 - t0) / 1000000 ))
if [ "$waited_ms" -ge 2000 ]; then
	ok "B33 Node list refused: generation 1 waited for the Node first (${waited_ms} ms)"
else
	not_ok "B33 Node list refused: generation 1 waited for the Node first" "${waited_ms} ms, want >= 2000"
fi
expect "B31 Node list refused: generation 1 ignores the hints" "$(svc_flags 10.96.73.1 80 TCP)" \
	"internal_local=false zone_hints=false"
khint_zoned() { [ "$(svc_flags 10.96.73.1 80 TCP)" = "internal_local=false zone_hints=true" ]; }
if wait_until 10 khint_zoned; then
	ok "B31 Node list refused: once the Node is read, its zone restricts the hinted Service"
else
	not_ok "B31 Node list refused: once the Node is read, its zone restricts the hinted Service" \
		"$(svc_flags 10.96.73.1 80 TCP)"
fi

expect_alive "policy"
finish
