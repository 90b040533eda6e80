#!/usr/bin/env bash
# connect() without socket state (issue 13): a TCP or UDP socket that
# reaches a backend through its ClusterIP gets no socket storage, and
# getpeername() (and a connected UDP socket's recvmsg()) finds the service
# in ferry_revnat (counted as reverse_translated_from_map); unconnected UDP
# keeps its own state.
# Whatever takes that shortcut must still show each socket what it
# connected to (B20): a backend shared by two Services, an externalIP
# frontend of the same port, a connection straight to a pod's address, a
# backend whose owner left, and a restart that adopts the maps.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
for i in 1 2 3 4; do
	pod "s-$i" "198.18.11.$i" "" --tcp 8080 --udp 8080
done

# svc NAME IP [EXTRA-SPEC-LINE]: a TCP Service on port 80 -> 8080.
svc() {
	cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: ss}
spec:
  clusterIP: $2
  ports: [{port: 80, protocol: TCP, targetPort: 8080}]
${3:-}
EOF
}

# slice NAME POD-NUMBERS...: the Service's endpoints, s-N at 198.18.11.N.
slice() {
	local name=$1
	shift
	cat <<EOF
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-1, namespace: ss, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
ports: [{port: 8080, protocol: TCP}]
endpoints:
EOF
	for n in "$@"; do
		echo "- {addresses: [198.18.11.$n], conditions: {ready: true}}"
	done
}

# state ONE-PODS TWO-PODS: solo on s-4 alone; one (with an externalIP) and
# two share what the arguments give them.
state() {
	svc solo 10.96.11.30
	slice solo 4
	svc one 10.96.11.10 "  externalIPs: [203.0.113.11]"
	# shellcheck disable=SC2086
	slice one $1
	svc two 10.96.11.20
	# shellcheck disable=SC2086
	slice two $2
	cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: ss}
spec:
  clusterIP: 10.96.11.40
  ports: [{port: 53, protocol: UDP, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-1, namespace: ss, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
ports: [{port: 8080, protocol: UDP}]
endpoints:
- {addresses: [198.18.11.1], conditions: {ready: true}}
EOF
}

SRC=$WORK/services.yaml
state "1 2" "2 3" | write_source "$SRC"
ferryd_start "$SRC" || finish

from_map() { status_get 'j["counters"].get("reverse_translated_from_map", "missing")'; }

# peers N ADDR: N TCP connections to ADDR:80, each "reply=NAME peer=..." as
# probe prints it, reduced to "NAME@PEER", sorted and counted.
peers() {
	local n=$1 addr=$2 out
	probe tcp --count "$n" "$addr" 80 | while read -r out; do
		echo "$(field reply "$out")@$(field peer "$out")"
	done | sort | uniq -c | awk '{ printf "%s%s=%s", sep, $2, $1; sep = " " }'
}

# only_peer TALLY PEER: every connection of TALLY showed PEER.
only_peer() { [ -n "$1" ] && ! tr ' ' '\n' <<<"$1" | grep -qv "@$2="; }

# expect_peer CASE N ADDR PEER [BACKEND]: every one of N connections to
# ADDR:80 shows PEER (and BACKEND answered at least one of them).
expect_peer() {
	local t
	t=$(peers "$2" "$3")
	note "$3 x$2: $t"
	if only_peer "$t" "$4" && { [ -z "${5:-}" ] || grep -q "$5@" <<<"$t"; }; then
		ok "$1"
	else
		not_ok "$1" "got $t"
	fi
}

c0=$(from_map)
t=$(peers 5 10.96.11.30)
note "solo x5: $t"
expect "B20 a backend of one Service: getpeername shows the ClusterIP" "$t" "s-4@10.96.11.30:80=5"
expect "no socket state: the 5 getpeername() answers came from ferry_revnat" \
	"$(($(from_map) - c0))" 5

expect_peer "B20 s-2 shared by two Services: connections through one show one's ClusterIP" \
	20 10.96.11.10 10.96.11.10:80
expect_peer "B20 s-2 shared by two Services: connections through two show two's ClusterIP" \
	20 10.96.11.20 10.96.11.20:80
expect_peer "B20 an externalIP of the same port: getpeername shows the externalIP, not the ClusterIP" \
	10 203.0.113.11 203.0.113.11:80

c0=$(from_map)
out=$(probe tcp 198.18.11.4 8080)
expect "a connection straight to a backend's address keeps that address as its peer" \
	"$(field reply "$out")@$(field peer "$out")" "s-4@198.18.11.4:8080"
expect "... answered from its own socket state, not ferry_revnat" "$(($(from_map) - c0))" 0

# UDP: a connected socket through the ClusterIP is answered from
# ferry_revnat twice per exchange (getpeername, recvfrom); unconnected
# sockets, and sockets that talk to the pod's own address, never are:
# their replies must show what they sent to (B20).
udp_seen() { echo "reply=$(field reply "$1") from=$(field from "$1") peer=$(field peer "$1")"; }
c0=$(from_map)
out=$(probe udp --connect 10.96.11.40 53)
expect "B20 connected UDP through the ClusterIP: replies and getpeername show the ClusterIP" \
	"$(udp_seen "$out")" "reply=s-1 from=10.96.11.40:53 peer=10.96.11.40:53"
expect "... without socket state: both answers came from ferry_revnat" "$(($(from_map) - c0))" 2
c0=$(from_map)
out=$(probe udp 10.96.11.40 53)
expect "B20 unconnected UDP to the ClusterIP: the reply shows the ClusterIP" \
	"$(udp_seen "$out")" "reply=s-1 from=10.96.11.40:53 peer=-"
out=$(probe udp 198.18.11.1 8080)
expect "unconnected UDP straight to the pod: the reply shows the pod's address" \
	"$(udp_seen "$out")" "reply=s-1 from=198.18.11.1:8080 peer=-"
out=$(probe udp --connect 198.18.11.1 8080)
expect "connected UDP straight to the pod: replies and getpeername show the pod's address" \
	"$(udp_seen "$out")" "reply=s-1 from=198.18.11.1:8080 peer=198.18.11.1:8080"
expect "... none of the three answered from ferry_revnat" "$(($(from_map) - c0))" 0

# A connection that outlives its backend's membership (a readiness flap, a
# pod draining) still shows the ClusterIP: the entry stays as an orphan.
mkdir "$WORK/hold"
bg_client "$PYTHON" "$PROBE" hold 10.96.11.30 80 --dir "$WORK/hold" --wait 30
wait_file "$WORK/hold/first" 10
expect "held connection through solo reaches s-4" "$(cat "$WORK/hold/first" 2>/dev/null)" s-4
change "s-4 leaves solo" "$SRC" < <(state "1 2" "2 3" | sed 's/198.18.11.4\]/198.18.11.3]/')
touch "$WORK/hold/go"
wait_file "$WORK/hold/peer" 10
expect "B20 after s-4 left solo, the connection opened before still shows the ClusterIP" \
	"$(cat "$WORK/hold/second" 2>/dev/null) $(cat "$WORK/hold/peer" 2>/dev/null)" "s-4 10.96.11.30:80"
change "s-4 back in solo" "$SRC" < <(state "1 2" "2 3")

# one lets s-2 go: two's sockets on s-2 must still see two, whoever owned it.
change "owner leaves" "$SRC" < <(state "1" "2 3")
expect_peer "B20 after one lets s-2 go, connections through two to s-2 still show two" \
	20 10.96.11.20 10.96.11.20:80 s-2
# two's next set takes the unowned s-2 over: its connections there need no
# socket state any more.
change "takeover" "$SRC" < <(state "1" "2")
c0=$(from_map)
t=$(peers 5 10.96.11.20)
note "two x5 on s-2 alone: $t"
expect "B20 two alone on s-2 shows two" "$t" "s-2@10.96.11.20:80=5"
expect "... and its set, written again, took s-2's entry over (5 answers from ferry_revnat)" \
	"$(($(from_map) - c0))" 5

# A restart adopts ferry_revnat: still one entry per owned backend, and
# getpeername still answered from it.
entries() { status_get --maps '[m["entries"] for m in j["maps"] if m["name"] == "ferry_revnat"][0]'; }
expect "ferry_revnat holds TCP s-1, s-2, s-3 (an orphan: two let it go), s-4, and UDP s-1" "$(entries)" 5
g=$(generation)
ferryd_stop
ferryd_spawn "$SRC"
new_pid() { [ "$(status_get 'j["agent"]["ferryd_pid"]' 2>/dev/null)" = "$FERRYD_PID" ]; }
wait_until 120 new_pid ||
	not_ok "restart: the new ferryd publishes" "pid $(status_get 'j["agent"]["ferryd_pid"]')"
expect "restart: ferry_revnat adopted as it was" "$(entries)" 5
c0=$(from_map)
t=$(peers 5 10.96.11.30)
expect "restart: solo still shows its ClusterIP" "$t" "s-4@10.96.11.30:80=5"
expect "restart: ... from ferry_revnat" "$(($(from_map) - c0))" 5
note "generation before the restart $g, after $(generation)"

finish
