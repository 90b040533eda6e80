#!/usr/bin/env bash
# Backend selection on the socket path (issue 16), through real connections
# from clients to pods: the annotation ferry.io/lb-algorithm per Service,
# --lb-algorithm for the rest.
#
#  - round-robin: an exact rotation over the set, TCP connects and UDP
#    datagrams from new unconnected sockets alike (one counter per service
#    port);
#  - maglev: the socket path's client is its network namespace (a pod), so
#    every connection of one namespace reaches one backend, while the
#    namespaces spread; ferryctl shows the table size;
#  - least-conn: its close hook (sock_release) is attached only once a
#    Service uses least-conn (every close in the cgroup would pay for it);
#    held connections spread evenly, new connections go to the backend that
#    lost its connections, counts (ferryctl) follow closes and return to
#    zero, also across a ferryd restart;
#  - random (default): spread within binomial bounds;
#  - an unknown value: a log line naming it, fields_ignored counted, the
#    Service served with the default;
#  - changing a live Service's algorithm keeps an established connection;
#  - --lb-algorithm gives the default, and the annotation still wins.
#
# Pods s-1..s-4 answer their name on TCP 8080 and UDP 8080.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
for i in 1 2 3 4; do
	pod "s-$i" "198.18.91.$i" "fd00:198:18:91::$i" --tcp 8080 --udp 8080
done
for i in 1 2 3 4 5 6; do
	add_pod "c-$i" "198.18.91.$((100 + i))" || { not_ok "$GROUP setup" "client namespace c-$i"; finish; }
done

SRC=$WORK/src
mkdir "$SRC"

# svc_yaml NAME CLUSTERIP ALGORITHM POD...: Service NAME (TCP 80 and UDP 80
# to 8080) with annotation ferry.io/lb-algorithm ALGORITHM (none when ""),
# and its EndpointSlice with these pods.
svc_yaml() {
	local name=$1 ip=$2 algorithm=$3 p
	shift 3
	cat <<EOF
apiVersion: v1
kind: Service
metadata:
  name: $name
  namespace: lb
EOF
	[ -z "$algorithm" ] || echo "  annotations: {ferry.io/lb-algorithm: \"$algorithm\"}"
	cat <<EOF
spec:
  clusterIP: $ip
  ports:
  - {name: tcp, port: 80, protocol: TCP, targetPort: 8080}
  - {name: udp, port: 80, protocol: UDP, targetPort: 8080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-1, namespace: lb, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
ports: [{name: tcp, port: 8080, protocol: TCP}, {name: udp, port: 8080, protocol: UDP}]
endpoints:
EOF
	for p; do echo "- {addresses: [198.18.91.${p#s-}], conditions: {ready: true}}"; done
}

# sequence NETNS COUNT ADDR PORT: the pods COUNT TCP connections from a
# client in NETNS reached, in order, space separated.
sequence() {
	bash -c "$CLIENT_SH" "$CG" "$1" "$CONNCOUNT" -s -n "$2" -t 60 "$3" "$4" | tr '\n' ' ' |
		sed 's/ $//'
}

# within TALLY MIN MAX PODS: "yes" when each of PODS answered MIN..MAX
# times and nothing failed.
within() {
	local tally=$1 min=$2 max=$3 p n
	shift 3
	[[ $tally != *error* ]] || { echo "failures: $tally"; return; }
	for p; do
		n=$(sed -n "s/.*\\b$p=\\([0-9]*\\).*/\\1/p" <<<"$tally")
		[ -n "$n" ] && [ "$n" -ge "$min" ] && [ "$n" -le "$max" ] ||
			{ echo "$p=${n:-0} outside $min..$max in '$tally'"; return; }
	done
	echo yes
}

# algorithm_of ADDR PORT PROTO KEY: KEY (algorithm, maglev_table_size) of
# the service port at ADDR:PORT/PROTO in ferryctl's list.
algorithm_of() {
	service_list_json | "$PYTHON" -c '
import json, sys
for s in json.load(sys.stdin):
    if s["address"] == sys.argv[1] and s["port"] == int(sys.argv[2]) and s["protocol"] == sys.argv[3]:
        print(s.get(sys.argv[4], "absent"))' "$1" "$2" "$3" "$4"
}

svc_yaml rr 10.96.91.1 round-robin s-1 s-2 s-3 | write_source "$SRC/rr.yaml"
svc_yaml mg 10.96.91.2 maglev s-1 s-2 s-3 s-4 | write_source "$SRC/mg.yaml"
svc_yaml rnd 10.96.91.3 "" s-1 s-2 s-3 s-4 | write_source "$SRC/rnd.yaml"
svc_yaml bad 10.96.91.4 fastest s-1 s-2 s-3 s-4 | write_source "$SRC/bad.yaml"
svc_yaml live 10.96.91.5 round-robin s-1 s-2 | write_source "$SRC/live.yaml"
ferryd_start "$SRC" || finish

# --- round-robin
seq=$(sequence "$NODE" 30 10.96.91.1 80)
expect "round-robin: 30 TCP connections rotate exactly over the 3 pods" "$(rotation "$seq" 3)" exact
t=$(udp_tally 30 10.96.91.1 80)
expect "round-robin: 30 UDP datagrams (a new socket each) reach each pod 10 times" "$t" \
	"s-1=10 s-2=10 s-3=10"
expect "round-robin: ferryctl service list says so" "$(algorithm_of 10.96.91.1 80 TCP algorithm)" \
	round-robin

# --- maglev: one backend per client namespace; the namespaces spread.
declare -A MG=()
for c in c-1 c-2 c-3 c-4 c-5 c-6; do
	seq=$(sequence "${POD_NS[$c]}" 10 10.96.91.2 80)
	pods=$(tr ' ' '\n' <<<"$seq" | sort -u | tr '\n' ' ' | sed 's/ $//')
	MG[$c]=$pods
	expect_match "maglev: 10 connections from client $c reach one pod" "$pods" '^s-[1-4]$'
done
again=$(sequence "${POD_NS[c-1]}" 10 10.96.91.2 80 | tr ' ' '\n' | sort -u | tr '\n' ' ' | sed 's/ $//')
expect "maglev: client c-1 reaches the same pod again" "$again" "${MG[c-1]}"
n=$(printf '%s\n' "${MG[@]}" | sort -u | wc -l)
if [ "$n" -ge 2 ]; then
	ok "maglev: 6 client namespaces spread over $n pods"
else
	not_ok "maglev: 6 client namespaces spread over the pods" "all reached ${MG[c-1]}"
fi
expect "maglev: ferryctl service list says so" "$(algorithm_of 10.96.91.2 80 TCP algorithm)" maglev
expect "maglev: a set of 4 has a table of 701 entries (a prime)" \
	"$(algorithm_of 10.96.91.2 80 TCP maglev_table_size)" 701

# --- random: 400 connections over 4 pods; each count within 100 +- 5 sd
# (sd = sqrt(400 * 1/4 * 3/4) = 8.7).
t=$(conn_tally 400 10.96.91.3 80)
expect "random (default): 400 connections spread over the 4 pods within binomial bounds" \
	"$(within "$t" 57 143 s-1 s-2 s-3 s-4)" yes
expect "random: ferryctl service list says so" "$(algorithm_of 10.96.91.3 80 TCP algorithm)" random

# --- an unknown value keeps the default, named in the log and counted.
if grep -q 'Service lb/bad: annotation ferry.io/lb-algorithm: unknown value "fastest"' "$FERRYD_LOG"; then
	ok "unknown algorithm: the log names the Service and the value"
else
	not_ok "unknown algorithm: the log names the Service and the value" "no such line"
fi
ignored=$(status_get 'j["agent"]["fields_ignored"]')
if [ -n "$ignored" ] && [ "$ignored" -ge 1 ]; then
	ok "unknown algorithm: counted in fields_ignored ($ignored)"
else
	not_ok "unknown algorithm: counted in fields_ignored" "fields_ignored=$ignored"
fi
expect "unknown algorithm: the Service is served with the default" \
	"$(algorithm_of 10.96.91.4 80 TCP algorithm)/$(names_of "$(conn_tally 100 10.96.91.4 80)" | wc -w)" \
	"random/4"

# --- least-conn
release_attached() { bpftool cgroup show "$CG" 2>/dev/null | grep -c ferry_sock_release; }
expect "least-conn: no sock_release program in the cgroup while no Service uses least-conn" \
	"$(release_attached)" 0
expect_match "least-conn: ferryctl status says when sock_release will be attached" \
	"$("$FERRYCTL" --bpffs "$BPFFS" status | grep sock_release)" \
	'not attached \(attached when a Service uses least-conn\)'
svc_yaml lc 10.96.91.6 least-conn s-1 s-2 s-3 | update_source "$SRC/lc.yaml" ||
	not_ok "least-conn: Service lc is published" "still $(generation)"
expect "least-conn: sock_release is in the cgroup once lc is published" "$(release_attached)" 1
expect "least-conn: the log says why it was attached" \
	"$(grep -c 'sock_release attached to .*least-conn' "$FERRYD_LOG")" 1
# hold_open N: N more held TCP connections to lc, one after another (each
# established before the next); their pods go to LC_POD[1..]. Each is held
# until held_close or the group's end: its bound (--wait) outlasts the
# opening of all 30 (over 120 s under TCG: an interpreter's start each).
declare -A LC_POD=()
LC_N=0
hold_open() {
	local i d
	for ((i = 0; i < $1; i++)); do
		LC_N=$((LC_N + 1))
		d=$WORK/lc/$LC_N
		mkdir -p "$d"
		bg_client "$PYTHON" "$PROBE" hold 10.96.91.6 80 --dir "$d" --wait 900
		wait_held "$d" "${PIDS[-1]}"
		LC_POD[$LC_N]=$(cat "$d/first" 2>/dev/null)
	done
}

# live_counts: "s-1=N s-2=N s-3=N", ferryctl's live connections per pod of lc.
live_counts() {
	service_list_json | "$PYTHON" -c '
import json, sys
pods = {"198.18.91.%d" % i: "s-%d" % i for i in range(1, 5)}
for s in json.load(sys.stdin):
    if s["address"] == "10.96.91.6" and s["protocol"] == "TCP":
        print(" ".join("%s=%s" % (pods[b["address"]], b.get("live_connections", "?"))
                       for b in sorted(s["backends"], key=lambda b: b["address"])))'
}

held_tally() { printf '%s\n' "${LC_POD[@]}" | sort | uniq -c | awk '{print $2"="$1}' | tr '\n' ' ' | sed 's/ $//'; }

hold_open 30
expect "least-conn: 30 held connections, opened one by one, spread 10 on each pod" "$(held_tally)" \
	"s-1=10 s-2=10 s-3=10"
expect "least-conn: ferryctl shows 10 live connections on each backend" "$(live_counts)" \
	"s-1=10 s-2=10 s-3=10"
held_close LC_POD "$WORK/lc" s-2
wait_until 10 eval '[ "$(live_counts)" = "s-1=10 s-2=0 s-3=10" ]'
expect "least-conn: closing the 10 on s-2 takes its count to 0" "$(live_counts)" "s-1=10 s-2=0 s-3=10"
out=$("$FERRYCTL" --bpffs "$BPFFS" explain 10.96.91.6:80/tcp --netns "/run/netns/$NODE")
expect_match "least-conn: ferryctl explain names s-2's address as the pick" \
	"$(grep '^pick' <<<"$out")" '198\.18\.91\.2:8080'
seq=$(sequence "$NODE" 10 10.96.91.6 80)
expect "least-conn: the next 10 new connections all land on s-2" "$seq" \
	"s-2 s-2 s-2 s-2 s-2 s-2 s-2 s-2 s-2 s-2"
expect "least-conn: ferryctl service list says so" "$(algorithm_of 10.96.91.6 80 TCP algorithm)" \
	least-conn

# Counts live in pinned maps: a restarted ferryd adopts them with the
# connections still open, and closes still take them off.
gen=$(generation)
ferryd_stop
# sock_release's pin removed while no ferryd runs detaches it: the adopted
# least-conn set asks for it again, so the closes below are still counted.
rm -f "$BPFFS/links/sock_release"
ferryd_start "$SRC" || finish
# The first generation can be published before the programs are attached.
wait_until 10 eval '[ "$(release_attached)" = 1 ]'
expect "least-conn: a restart without sock_release's pin attaches it again for the adopted set" \
	"$(release_attached)" 1
expect "least-conn: after a ferryd restart the counts are the same" "$(live_counts)" \
	"s-1=10 s-2=0 s-3=10"
held_close LC_POD "$WORK/lc" s-1
held_close LC_POD "$WORK/lc" s-3
wait_until 10 eval '[ "$(live_counts)" = "s-1=0 s-2=0 s-3=0" ]'
expect "least-conn: every connection closed, every count is back to 0" "$(live_counts)" \
	"s-1=0 s-2=0 s-3=0"

# --- changing the algorithm of a live Service keeps established connections.
mkdir "$WORK/hold"
bg_client "$PYTHON" "$PROBE" hold 10.96.91.5 80 --dir "$WORK/hold" --wait 60
if wait_held "$WORK/hold" "${PIDS[-1]}" && [[ $(cat "$WORK/hold/first") =~ ^s-[12]$ ]]; then
	first=$(cat "$WORK/hold/first")
	svc_yaml live 10.96.91.5 maglev s-1 s-2 | update_source "$SRC/live.yaml" ||
		not_ok "live change: a new generation is published" "still $(generation)"
	expect "live change: round-robin to maglev is published" \
		"$(algorithm_of 10.96.91.5 80 TCP algorithm)" maglev
	touch "$WORK/hold/go"
	wait_file "$WORK/hold/second" 10
	expect "live change: the established connection still exchanges with its pod" \
		"$(cat "$WORK/hold/second" 2>/dev/null)" "$first"
else
	not_ok "live change: a held connection is established" \
		"$(cat "$WORK/hold/first" 2>/dev/null || echo 'no answer')"
fi

# --- --lb-algorithm: the default of Services without the annotation.
ferryd_reset
ferryd_start "$SRC" --lb-algorithm round-robin || finish
seq=$(sequence "$NODE" 20 10.96.91.3 80)
expect "--lb-algorithm round-robin: a Service without the annotation rotates over its 4 pods" \
	"$(rotation "$seq" 4)" exact
expect "--lb-algorithm round-robin: a Service's own annotation still wins (maglev)" \
	"$(algorithm_of 10.96.91.2 80 TCP algorithm)" maglev
"$FERRYD" --source "file:$SRC" --lb-algorithm fastest --cgroup "$CG" --bpffs "$BPFFS-x" \
	>"$WORK/bad-option.log" 2>&1
rc=$?
if [ "$rc" != 0 ] && grep -q "unknown algorithm 'fastest'" "$WORK/bad-option.log"; then
	ok "--lb-algorithm with an unknown name is refused, naming it"
else
	not_ok "--lb-algorithm with an unknown name is refused, naming it" \
		"rc=$rc: $(head -n 2 "$WORK/bad-option.log")"
fi

finish
