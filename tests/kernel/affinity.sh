#!/usr/bin/env bash
# Session affinity (B30), through real connections from clients to pods.
#
# sessionAffinity: ClientIP keeps a client on the backend it used last for
# a service port while its last connection is less than
# sessionAffinityConfig.clientIP.timeoutSeconds old (default 10800); every
# connection restarts the timer. A client is a network namespace (as a pod
# IP is one for kube-proxy): the node's own client is one, and each client
# namespace made here is another, each with its own memory. TCP connects
# and UDP datagrams from new unconnected sockets both stick. Without
# affinity (absent or None) connections spread. A removed backend breaks the
# affinity: once the generation is published no new connection goes to it
# (B12) and the client sticks to a live one. The setting follows live
# changes; an invalid value (unknown sessionAffinity, timeoutSeconds out of
# 1..86400 or not an integer) keeps the Service's last good version. Each
# port and each family of a Service remembers on its own. ferryctl shows
# affinity_timeout per frontend and the affinity_kept counter.
#
# Pods s-1..s-8 answer their name on TCP 8080 and 8081 and UDP 8080.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
for i in 1 2 3 4 5 6 7 8; do
	pod "s-$i" "198.18.90.$i" "fd00:198:18:90::$i" --tcp 8080 --tcp 8081 --udp 8080
done
# Client namespaces c-1..c-4 on br0, with no server: other clients than the
# node's (lib.sh removes them with the pods' namespaces).
for i in 1 2 3 4; do
	add_pod "c-$i" "198.18.90.$((100 + i))" || { not_ok "$GROUP setup" "client namespace c-$i"; finish; }
done

SRC=$WORK/src
mkdir "$SRC"

# --- objects -----------------------------------------------------------------

# svc_yaml NAME CLUSTERIP AFFINITY TIMEOUT POD...: Service NAME (TCP 80 and
# UDP 80 to port 8080) and its EndpointSlice with these pods. AFFINITY is
# spec.sessionAffinity (absent when ""), TIMEOUT the YAML value of
# clientIP.timeoutSeconds (no sessionAffinityConfig when "").
svc_yaml() {
	local name=$1 ip=$2 affinity=$3 timeout=$4 p
	shift 4
	cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: aff}
spec:
  clusterIP: $ip
  ports:
  - {name: tcp, port: 80, protocol: TCP, targetPort: 8080}
  - {name: udp, port: 80, protocol: UDP, targetPort: 8080}
EOF
	[ -z "$affinity" ] || echo "  sessionAffinity: $affinity"
	[ -z "$timeout" ] || echo "  sessionAffinityConfig: {clientIP: {timeoutSeconds: $timeout}}"
	cat <<EOF
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-1, namespace: aff, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
ports: [{name: tcp, port: 8080, protocol: TCP}, {name: udp, port: 8080, protocol: UDP}]
endpoints:
EOF
	for p; do echo "- {addresses: [198.18.90.${p#s-}], conditions: {ready: true}}"; done
}

# duo_yaml: dual-stack Service "duo" with ClientIP affinity on two TCP ports
# (80 to 8080, 81 to 8081), every pod behind each family.
duo_yaml() {
	local fam i
	cat <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: duo, namespace: aff}
spec:
  clusterIP: 10.96.90.7
  clusterIPs: [10.96.90.7, "fd00:10:96::90:7"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: RequireDualStack
  sessionAffinity: ClientIP
  ports:
  - {name: a, port: 80, protocol: TCP, targetPort: 8080}
  - {name: b, port: 81, protocol: TCP, targetPort: 8081}
EOF
	for fam in 4 6; do
		cat <<EOF
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: duo-v$fam, namespace: aff, labels: {kubernetes.io/service-name: duo}}
addressType: IPv$fam
ports: [{name: a, port: 8080, protocol: TCP}, {name: b, port: 8081, protocol: TCP}]
endpoints:
EOF
		for i in 1 2 3 4 5 6 7 8; do
			if [ "$fam" = 4 ]; then
				echo "- {addresses: [198.18.90.$i], conditions: {ready: true}}"
			else
				echo "- {addresses: [\"fd00:198:18:90::$i\"], conditions: {ready: true}}"
			fi
		done
	done
}

ALL4="s-1 s-2 s-3 s-4"
ALL8="s-1 s-2 s-3 s-4 s-5 s-6 s-7 s-8"

# shellcheck disable=SC2086 # pod lists
{
	svc_yaml aff 10.96.90.1 ClientIP 10800 $ALL8 | write_source "$SRC/aff.yaml"
	svc_yaml plain 10.96.90.2 "" "" $ALL4 | write_source "$SRC/plain.yaml"
	svc_yaml short 10.96.90.3 ClientIP 1 $ALL8 | write_source "$SRC/short.yaml"
	svc_yaml rm 10.96.90.4 ClientIP "" $ALL4 | write_source "$SRC/rm.yaml"
	svc_yaml flip 10.96.90.5 ClientIP "" $ALL4 | write_source "$SRC/flip.yaml"
	svc_yaml keep 10.96.90.6 ClientIP 600 $ALL4 | write_source "$SRC/keep.yaml"
}
duo_yaml | write_source "$SRC/duo.yaml"

# --- what clients and ferryctl see -------------------------------------------

# tally_in NETNS COUNT ADDR PORT: conn_tally from a client in NETNS (and in
# the test cgroup).
tally_in() {
	bash -c "$CLIENT_SH" "$CG" "$1" "$CONNCOUNT" -n "$2" -t 60 "$3" "$4" |
		awk '{print $2"="$1}' | sort | tr '\n' ' ' | sed 's/ $//'
}

# spaced_tally COUNT GAP ADDR PORT: COUNT connections from the node's
# client, GAP seconds apart, in conn_tally's format. The gaps are what is
# tested (the client keeps connecting within the timeout), not a wait.
spaced_tally() {
	# shellcheck disable=SC2016 # expanded by the client's bash
	in_client bash -c 'for ((i = 0; i < $1; i++)); do [ "$i" = 0 ] || sleep "$2"; "${@:3}"; done' \
		_ "$1" "$2" "$CONNCOUNT" -n 1 -t 5 "$3" "$4" |
		awk '{n[$2] += $1} END {for (k in n) print k"="n[k]}' | sort | tr '\n' ' ' | sed 's/ $//'
}

# pod_of TALLY: the pod when every answer of the tally came from one pod.
pod_of() { [[ $1 =~ ^(s-[1-8])=[0-9]+$ ]] && echo "${BASH_REMATCH[1]}"; }

# expect_one CASE TALLY COUNT: ok when all COUNT answers came from one pod.
expect_one() { expect_match "$1" "$2" "^s-[1-8]=$3\$"; }

# expect_spread CASE TALLY MIN: ok when at least MIN pods answered, and
# nothing failed.
expect_spread() {
	local names
	names=$(names_of "$2")
	if [[ $names != *error* ]] && [ "$(wc -w <<<"$names")" -ge "$3" ]; then
		ok "$1"
	else
		not_ok "$1" "got '$2', want >= $3 pods"
	fi
}

# expect_not_all_same CASE POD...: ok when the pods (one per pick; "" for
# a pick that failed) are at least two different ones.
expect_not_all_same() {
	local what=$1
	shift
	if [ "$(printf '%s\n' "$@" | grep -v '^$' | sort -u | wc -l)" -ge 2 ]; then
		ok "$what"
	else
		not_ok "$what" "every pick was '$*'"
	fi
}

# svc_field ADDR PORT PROTO KEY: KEY of one frontend in ferryctl's list, as
# JSON (null when ferryctl lacks it, "absent" without the frontend).
svc_field() {
	service_list_json | "$PYTHON" -c '
import json, sys
addr, port, proto, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
for s in json.load(sys.stdin):
    if (s["address"], s["port"], s["protocol"]) == (addr, port, proto):
        print(json.dumps(s.get(key)))
        break
else:
    print("absent")' "$@"
}

kept() { status_get 'j["counters"].get("affinity_kept", "missing")'; }

skipped() { status_get 'j["agent"]["objects_skipped"]'; }

# logged_since LINES REGEX: the ferryd log, after its first LINES lines,
# has a line matching REGEX.
# shellcheck disable=SC2317 # run through wait_until
logged_since() { tail -n "+$(($1 + 1))" "$FERRYD_LOG" | grep -q -E "$2"; }

ferryd_start "$SRC" || finish

# === 1. ClientIP, timeout 10800: one client sticks ===========================
kept0=$(kept)
t=$(conn_tally 30 10.96.90.1 80)
note "aff, node client, TCP x30: $t"
expect_one "B30 ClientIP: 30 TCP connects from one client reach one backend" "$t" 30
A_NODE=$(pod_of "$t")
t=$(udp_tally 20 10.96.90.1 80)
note "aff, node client, UDP x20: $t"
expect_one "B30 ClientIP: 20 UDP datagrams, each from a new unconnected socket, reach one backend" "$t" 20
expect "B30 ferryctl shows affinity_timeout 10800 (TCP and UDP port)" \
	"$(svc_field 10.96.90.1 80 TCP affinity_timeout) $(svc_field 10.96.90.1 80 UDP affinity_timeout)" "10800 10800"
expect_match "B30 ferryctl's table marks the frontend (affinity 10800s)" \
	"$("$FERRYCTL" --bpffs "$BPFFS" service list | grep -F '10.96.90.1:80/TCP')" '10\.96\.90\.1:80/TCP \(affinity 10800s\) '
kept1=$(kept)
if [[ $kept0 =~ ^[0-9]+$ && $kept1 =~ ^[0-9]+$ ]] && [ $((kept1 - kept0)) -ge 48 ]; then
	ok "B30 affinity_kept counts the connections sent to the remembered backend (+$((kept1 - kept0)))"
else
	not_ok "B30 affinity_kept counts the connections sent to the remembered backend" \
		"from '$kept0' to '$kept1', want +48 at least (29 TCP, 19 UDP)"
fi
expect "B30 sessionAffinityConfig absent: the default timeout 10800" \
	"$(svc_field 10.96.90.4 80 TCP affinity_timeout)" 10800

# === 2. each client namespace is a client of its own =========================
seen=("$A_NODE")
tallies=""
all_one=1
for i in 1 2 3 4; do
	t=$(tally_in "${POD_NS[c-$i]}" 20 10.96.90.1 80)
	note "aff, client c-$i, TCP x20: $t"
	[[ $t =~ ^s-[1-8]=20$ ]] || all_one=0
	seen+=("$(pod_of "$t")")
	tallies+=" c-$i:[$t]"
done
if [ "$all_one" = 1 ]; then
	ok "B30 four other client namespaces: each one's 20 connects reach one backend"
else
	not_ok "B30 four other client namespaces: each one's 20 connects reach one backend" "$tallies"
fi
# Five clients choosing at random among 8 pods all pick one: (1/8)^4.
expect_not_all_same "B30 clients are remembered apart: the five clients are not all on one backend" "${seen[@]}"
t=$(conn_tally 10 10.96.90.1 80)
expect "B30 the node's client is still on its own backend after the others connected" "$t" "$A_NODE=10"

# === 3. control: no affinity spreads =========================================
kept0=$(kept)
t=$(conn_tally 60 10.96.90.2 80)
note "plain, TCP x60: $t"
expect_spread "B30 control: without sessionAffinity 60 connects reach at least 3 of 4 backends" "$t" 3
expect "B30 control: ferryctl shows affinity_timeout 0" "$(svc_field 10.96.90.2 80 TCP affinity_timeout)" 0
expect "B30 control: connections without affinity are not counted affinity_kept" "$(kept)" "$kept0"

# === 4. the timeout, 1 s (the least the API allows) ===========================
t=$(spaced_tally 9 0.25 10.96.90.3 80)
note "short, a connect every 0.25 s for 2 s: $t"
expect_one "B30 timeout 1 s: a connect every 0.25 s for 2 s keeps one backend (the timer restarts)" "$t" 9
seen=("$(pod_of "$t")")
tallies=""
all_one=1
for cycle in 1 2 3 4 5; do
	# The idle time is what is tested: longer than timeoutSeconds (1 s), so
	# the client's memory has expired and the next pick is random.
	sleep 1.5
	t=$(conn_tally 3 10.96.90.3 80)
	[[ $t =~ ^s-[1-8]=3$ ]] || all_one=0
	seen+=("$(pod_of "$t")")
	tallies+=" $cycle:[$t]"
done
note "short, after each 1.5 s idle, x3:$tallies"
if [ "$all_one" = 1 ]; then
	ok "B30 timeout 1 s: after each idle cycle the client sticks again (3 connects, one backend)"
else
	not_ok "B30 timeout 1 s: after each idle cycle the client sticks again (3 connects, one backend)" "$tallies"
fi
# Six picks among 8 pods all equal by chance: (1/8)^5.
expect_not_all_same "B30 timeout 1 s: after idling 1.5 s the pick is random again (not one backend over 5 idle cycles)" \
	"${seen[@]}"

# === 5. the sticky backend removed (B12) =====================================
t=$(conn_tally 10 10.96.90.4 80)
expect_one "B30 rm: the node's client sticks before the removal (x10)" "$t" 10
X=$(pod_of "$t")
if [ -n "$X" ]; then
	# shellcheck disable=SC2086 # pod list
	svc_yaml rm 10.96.90.4 ClientIP "" ${ALL4/$X/} | change "B12 removing $X" "$SRC/rm.yaml"
	t=$(conn_tally 20 10.96.90.4 80)
	note "rm, after removing $X, x20: $t"
	expect_one "B12 B30 sticky backend $X removed: 20 connects go to one live backend" "$t" 20
	Y=$(pod_of "$t")
	if [ -n "$Y" ] && [ "$Y" != "$X" ]; then
		ok "B12 B30 sticky backend removed: no connection goes to the removed $X once published"
	else
		not_ok "B12 B30 sticky backend removed: no connection goes to the removed $X once published" "got '$t'"
	fi
	expect "B30 rm: the client stays on its new backend" "$(conn_tally 10 10.96.90.4 80)" "$Y=10"
fi

# === 6. toggled live =========================================================
t=$(conn_tally 20 10.96.90.5 80)
expect_one "B30 flip, ClientIP: one backend (x20)" "$t" 20
# shellcheck disable=SC2086 # pod list
svc_yaml flip 10.96.90.5 None "" $ALL4 | change "flip to None" "$SRC/flip.yaml"
t=$(conn_tally 60 10.96.90.5 80)
note "flip, None, x60: $t"
expect_spread "B30 flip, ClientIP -> None: 60 connects reach at least 3 of 4 backends once published" "$t" 3
expect "B30 flip, None: ferryctl shows affinity_timeout 0" "$(svc_field 10.96.90.5 80 TCP affinity_timeout)" 0
# shellcheck disable=SC2086 # pod list
svc_yaml flip 10.96.90.5 ClientIP 30 $ALL4 | change "flip to ClientIP" "$SRC/flip.yaml"
t=$(conn_tally 20 10.96.90.5 80)
note "flip, ClientIP again, x20: $t"
expect_one "B30 flip, None -> ClientIP: one backend again once published (x20)" "$t" 20
expect "B30 flip, ClientIP: ferryctl shows the new timeout 30" "$(svc_field 10.96.90.5 80 TCP affinity_timeout)" 30

# === 7. invalid values keep the last good version ============================
t=$(conn_tally 20 10.96.90.6 80)
expect_one "B30 keep, ClientIP 600 s: one backend (x20)" "$t" 20
KEEP=$(pod_of "$t")

# bad_value WHAT FIELD AFFINITY TIMEOUT: keep.yaml with this invalid value:
# counted in objects_skipped, the log names FIELD, and the last good
# version (ClientIP, 600 s) stays: still on $KEEP.
bad_value() {
	local what=$1 field=$2 s0 lines
	s0=$(skipped)
	lines=$(wc -l <"$FERRYD_LOG")
	# shellcheck disable=SC2086 # pod list
	svc_yaml keep 10.96.90.6 "$3" "$4" $ALL4 | write_source "$SRC/keep.yaml"
	if wait_status 5 "j['agent']['objects_skipped'] > $s0"; then
		ok "B30 $what: the Service is counted in objects_skipped"
	else
		not_ok "B30 $what: the Service is counted in objects_skipped" "still $s0"
	fi
	if wait_until 5 logged_since "$lines" "$field.*keeping its last good version"; then
		ok "B30 $what: the log names $field and keeps the last good version"
	else
		not_ok "B30 $what: the log names $field and keeps the last good version" \
			"$(tail -n "+$((lines + 1))" "$FERRYD_LOG" | grep -v component=libbpf | tail -n 2 | tr '\n' ' ')"
	fi
	expect "B30 $what: still on $KEEP (x20), ferryctl still shows 600" \
		"$(conn_tally 20 10.96.90.6 80) $(svc_field 10.96.90.6 80 TCP affinity_timeout)" "$KEEP=20 600"
}
if [ -n "$KEEP" ]; then
	bad_value "sessionAffinity: Sticky" sessionAffinity Sticky ""
	bad_value "timeoutSeconds: 0" timeoutSeconds ClientIP 0
	bad_value "timeoutSeconds: 90000" timeoutSeconds ClientIP 90000
	bad_value "timeoutSeconds: \"ten\"" timeoutSeconds ClientIP '"ten"'
fi

# === 8. each port and each family remembers on its own =======================
for target in "10.96.90.7 80" "10.96.90.7 81" "fd00:10:96::90:7 80" "fd00:10:96::90:7 81"; do
	# shellcheck disable=SC2086 # ADDR PORT
	t=$(conn_tally 20 $target)
	note "duo $target, x20: $t"
	expect_one "B30 two ports, two families: ${target/ /, port } sticks to one backend (x20)" "$t" 20
done

if kill -0 "$FERRYD_PID" 2>/dev/null; then
	ok "ferryd is still running"
else
	not_ok "ferryd is still running" "pid $FERRYD_PID gone"
fi
finish
