#!/usr/bin/env bash
# ferryd's lifetime (B33): the datapath is pinned and keeps serving when
# ferryd dies; a new ferryd of the same layout adopts the pinned maps and
# swaps its programs into the pinned links in place, applying what changed
# while it was down; a ferryd with other map sizes migrates to new maps;
# through all of it a client connecting in a loop sees no failure, a held
# TCP connection stays up and a UDP socket keeps its replies from the
# ClusterIP. `ferryd --cleanup` removes everything.
# shellcheck disable=SC2317 # functions run through wait_until
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
for i in 1 2 3; do pod "r-$i" "198.18.3.$i" "" --tcp 8080 --udp 53; done

SRC=$WORK/restart.yaml
# restart_yaml POD-NUMBER...: Service r (TCP 80, UDP 53) on these pods.
restart_yaml() {
	cat <<'Y'
apiVersion: v1
kind: Service
metadata: {name: r, namespace: restart}
spec:
  clusterIP: 10.96.50.10
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: r-1, namespace: restart, labels: {kubernetes.io/service-name: r}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: dns, port: 53, protocol: UDP}]
endpoints:
Y
	for i in "$@"; do echo "- addresses: [198.18.3.$i]"; done
}

# A new ferryd's first generation comes once its objects are loaded and
# verified: seconds here, over 10 s in an emulated guest. wait_generation
# ends at once when ferryd exits; this bound only stops a ferryd that hangs.
RESTARTED=120

attached_count() { bpftool cgroup show "$CG" 2>/dev/null | grep -c ferry_; }
map_id() { bpftool map show pinned "$BPFFS/$1" 2>/dev/null | sed -n 's/^\([0-9]*\):.*/\1/p'; }
link_ids() { for h in connect4 sendmsg4 recvmsg4; do bpftool link show pinned "$BPFFS/links/$h" | sed -n 's/^\([0-9]*\):.*prog \([0-9]*\).*/\1/p'; done | tr '\n' ' '; }
prog_ids() { for h in connect4 sendmsg4 recvmsg4; do bpftool link show pinned "$BPFFS/links/$h" | sed -n 's/.*prog \([0-9]*\).*/\1/p'; done | tr '\n' ' '; }
svc_ids() { service_list_json | "$PYTHON" -c 'import json,sys; print(" ".join("%s:%d/%s=%d" % (s["address"], s["port"], s["protocol"], s["id"]) for s in json.load(sys.stdin)))'; }

# start_load TAG: a client connecting in a loop through the ClusterIP (in
# batches of 20 conncount connects, one line "batch" after each, until
# $WORK/TAG-stop exists; bounded: 3000 batches, 300 s), a held TCP
# connection and an unconnected UDP socket; returns once the loop has
# answered a batch.
start_load() {
	mkdir -p "$WORK/$1-tcp" "$WORK/$1-udp"
	# shellcheck disable=SC2016 # expanded by the client's bash
	bg_client bash -c 'for ((i = 0; i < 3000 && SECONDS < 300; i++)); do
		[ -e "$1" ] && break; "$2" -n 20 -t 60 10.96.50.10 80; echo batch; done' \
		_ "$WORK/$1-stop" "$CONNCOUNT" >"$WORK/$1-loop.txt"
	LOOP_PID=$!
	bg_client "$PYTHON" "$PROBE" hold 10.96.50.10 80 --dir "$WORK/$1-tcp" --wait 60
	bg_client "$PYTHON" "$PROBE" hold --udp 10.96.50.10 53 --dir "$WORK/$1-udp" --wait 60
	wait_file "$WORK/$1-tcp/first" 10
	wait_file "$WORK/$1-udp/first" 10
	wait_until 30 grep -q '^batch$' "$WORK/$1-loop.txt"
}

# batches TAG: the batches the loop of TAG has finished.
batches() { grep -c '^batch$' "$WORK/$1-loop.txt"; }
more_batches() { [ "$(batches "$1")" -ge "$2" ]; }

# check_load TAG WHAT: the three clients saw nothing of WHAT, and the loop,
# which connected before it, goes on connecting after it: 3 more batches
# (however long the machine takes; refused connects fail the first case).
check_load() {
	local answered errors b
	touch "$WORK/$1-tcp/go" "$WORK/$1-udp/go"
	b=$(batches "$1")
	wait_until 120 more_batches "$1" $((b + 3))
	local after=$(($(batches "$1") - b))
	touch "$WORK/$1-stop"
	wait "$LOOP_PID"
	wait_file "$WORK/$1-tcp/second" 10
	wait_file "$WORK/$1-udp/second" 10
	answered=$(awk '$2 ~ /^r-/ {s += $1} END {print s + 0}' "$WORK/$1-loop.txt")
	errors=$(grep 'error:' "$WORK/$1-loop.txt" | grep -v 'error:deadline' | sort | uniq -c | tr '\n' ' ')
	note "$1: $answered connections answered across $2 in $(batches "$1") batches"
	expect "B33 $1: zero failed connects in a loop across $2" "${errors:-none}" none
	if [ "$after" -ge 3 ]; then
		ok "$1: the loop, connecting before $2, kept connecting after it ($after batches of 20)"
	else
		not_ok "$1: the loop kept connecting after $2" "$after batches in 120 s"
	fi
	expect "B12 $1: a TCP connection held across $2 still exchanges data" \
		"$(cat "$WORK/$1-tcp/second" 2>/dev/null)" "$(cat "$WORK/$1-tcp/first")"
	expect_match "B20 $1: a UDP socket held across $2 still gets replies from the ClusterIP" \
		"$(cat "$WORK/$1-udp/second" 2>/dev/null)" '^r-[123] from=10\.96\.50\.10:53$'
}

restart_yaml 1 2 | write_source "$SRC"
ferryd_start "$SRC" || finish
gen=$(generation)
ids_before=$(svc_ids)
links_before=$(link_ids)
progs_before=$(prog_ids)
maps_before="$(map_id ferry_services4) $(map_id ferry_slots) $(map_id ferry_backends) $(map_id ferry_sk_revnat)"

"$FERRYD" --source "file:$SRC" --cgroup "$CG" --bpffs "$BPFFS" --metrics-addr "" --health-addr "" >"$WORK/second.log" 2>&1
expect "a second ferryd on the same pins refuses to start, saying why" \
	"$?:$(grep -c 'another ferryd is running on' "$WORK/second.log")" "1:1"

# --- kill -9, a change while down, a new ferryd that adopts --------------
start_load adopt
kill -9 "$FERRYD_PID"
wait "$FERRYD_PID" 2>/dev/null
FERRYD_PID=
expect_match "B33 adopt: TCP to the ClusterIP works while ferryd is dead" \
	"$(field reply "$(probe tcp 10.96.50.10 80)")" '^r-[12]$'
expect "adopt: ferryctl status works while ferryd is down and says so" \
	"$("$FERRYCTL" --bpffs "$BPFFS" status -o json | "$PYTHON" -c \
		'import json,sys; a=json.load(sys.stdin)["agent"]; print(a["ferryd_running"], a["services"])')" \
	"False 2"
restart_yaml 1 3 | write_source "$SRC"
"$FERRYD" --source "file:$SRC" --cgroup "$CG" --bpffs "$BPFFS" --metrics-addr "" --health-addr "" >>"$FERRYD_LOG" 2>&1 &
FERRYD_PID=$!
PIDS+=("$FERRYD_PID")
if wait_generation $((gen + 1)) "$RESTARTED"; then
	ok "adopt: the new ferryd publishes generation $((gen + 1)), after the old $gen"
else
	not_ok "adopt: the new ferryd publishes a generation after $gen" "generation $(generation)"
fi
expect "adopt: the pinned maps are adopted, not replaced (same map IDs)" \
	"$(map_id ferry_services4) $(map_id ferry_slots) $(map_id ferry_backends) $(map_id ferry_sk_revnat)" \
	"$maps_before"
expect "adopt: the pinned links are kept (same link IDs)" "$(link_ids)" "$links_before"
if [ "$(prog_ids)" != "$progs_before" ]; then
	ok "adopt: the links run the new ferryd's programs (swapped with bpf_link_update)"
else
	not_ok "adopt: the links run the new ferryd's programs" "prog IDs unchanged: $progs_before"
fi
expect "adopt: 8 programs in the cgroup (sock_release waits for a least-conn Service), no leftovers" \
	"$(attached_count)" 8
expect "adopt: service IDs are kept" "$(svc_ids)" "$ids_before"
expect "adopt: the change made while ferryd was down is applied (r-2 out, r-3 in)" \
	"$(svc_backends 10.96.50.10 80 TCP)" "198.18.3.1:8080:active 198.18.3.3:8080:active"
check_load adopt "kill -9 and adoption"

# --- leftovers of a crash, and an entry deleted by someone else ------------
# While ferryd is down: a slot of a revision never published, a backend no
# slot names, a VIP marker for no service (what a ferryd killed mid-change
# leaves), and one live backend wiped from its service entry by hand (B34:
# the set of two rides inline there, it has no slots).
ferryd_stop
gen=$(generation)
le32() { printf '%02x %02x %02x %02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
# shellcheck disable=SC2046
{
	bpftool map update pinned "$BPFFS/ferry_slots" key hex $(le32 999) $(le32 7) $(le32 0) \
		value hex $(le32 12345) 1f 90 00 00 00 00 00 00 00 00 00 00 00 00 ff ff c6 12 03 09
	bpftool map update pinned "$BPFFS/ferry_backends" key hex $(le32 54321) value hex 00 00 00 00 00 00 00 00 00 00 ff ff c6 12 03 09 1f 90 06 00 $(le32 999)
	bpftool map update pinned "$BPFFS/ferry_services4" key hex 0a 60 63 63 00 00 00 00 value hex $(le32 0) $(le32 0) $(le32 0) $(le32 1) $(le32 0) $(le32 0) $(le32 0) $(le32 0) $(printf '00 %.0s' $(seq 192))
} >>"$FERRYD_LOG" 2>&1
# The ClusterIP's entry, its second inline backend zeroed: its address and
# port (8 bytes from offset 40, after the 32-byte svc_value and the first)
# and its ID (4 bytes from offset 164, after the 16 inline backends and the
# first ID).
svc_key_hex="0a 60 32 0a 00 50 06 00"
# shellcheck disable=SC2086
wiped=$(bpftool -j map lookup pinned "$BPFFS/ferry_services4" key hex $svc_key_hex | "$PYTHON" -c '
import json, sys
v = [int(b, 16) for b in json.load(sys.stdin)["value"]]
v[40:48] = [0] * 8
v[164:168] = [0] * 4
print(" ".join("%02x" % b for b in v))')
# shellcheck disable=SC2086
bpftool map update pinned "$BPFFS/ferry_services4" key hex $svc_key_hex value hex $wiped >>"$FERRYD_LOG" 2>&1
"$FERRYD" --source "file:$SRC" --cgroup "$CG" --bpffs "$BPFFS" --metrics-addr "" --health-addr "" >>"$FERRYD_LOG" 2>&1 &
FERRYD_PID=$!
PIDS+=("$FERRYD_PID")
wait_generation $((gen + 1)) "$RESTARTED"
# Stale: the three leftovers and the backend only the wiped entry named.
expect "adopt: the leftovers and the backend of the wiped one are removed, nothing else" \
	"$(grep -c 'adopted 2 service ports and 3 backends from the pinned maps; removed 4 stale entries' "$FERRYD_LOG")" 1
expect "adopt: the stray slot is gone" \
	"$(bpftool map lookup pinned "$BPFFS/ferry_slots" key hex $(le32 999) $(le32 7) $(le32 0) >/dev/null 2>&1 && echo present || echo gone)" gone
expect "B34 adopt: the backend wiped by hand is put back (both backends listed)" \
	"$(svc_backends 10.96.50.10 80 TCP)" "198.18.3.1:8080:active 198.18.3.3:8080:active"
expect "B34 adopt: connections reach both backends again (x40)" \
	"$(names_of "$(conn_tally 40 10.96.50.10 80)")" "r-1 r-3"

# --- other map sizes: a migration -----------------------------------------
gen=$(generation)
start_load migrate
ferryd_stop
"$FERRYD" --source "file:$SRC" --cgroup "$CG" --bpffs "$BPFFS" --metrics-addr "" --health-addr "" --max-services 1000 >>"$FERRYD_LOG" 2>&1 &
FERRYD_PID=$!
PIDS+=("$FERRYD_PID")
wait_generation $((gen + 1)) "$RESTARTED"
expect "migrate: the log says what differs" \
	"$(grep -c 'pinned maps under .* differ (ferry_services4: max_entries 131072, this ferryd.s 2000): migrating' "$FERRYD_LOG")" 1
if [ "$(map_id ferry_services4)" != "${maps_before%% *}" ]; then
	ok "migrate: new maps are pinned"
else
	not_ok "migrate: new maps are pinned" "ferry_services4 still map $(map_id ferry_services4)"
fi
expect "migrate: the socket state is adopted (same map)" "$(map_id ferry_sk_revnat)" "${maps_before##* }"
expect "migrate: the adopted socket state may hold peer entries, so the new ferry_peer_mark is set" \
	"$(peer_mark)" 1
expect "migrate: 8 programs in the cgroup, the old ones detached" "$(attached_count)" 8
check_load migrate "a migration to other map sizes"

# --- IDs are not handed out again (issue 14) -------------------------------
# An unconnected UDP socket keeps its backend while the (service ID,
# revision) its socket state holds is current, without asking whether the
# backend still serves. New maps after a migration must not give that pair
# to anyone again, or a backend removed while ferryd was down stays in use.
mkdir "$WORK/sticky"
bg_client "$PYTHON" "$PROBE" hold --udp 10.96.50.10 53 --dir "$WORK/sticky" --wait 60
wait_file "$WORK/sticky/first" 10
gone=$(awk '{print $1}' "$WORK/sticky/first" 2>/dev/null)
case $gone in r-1) left=3 ;; *) left=1 ;; esac
ferryd_stop
gen=$(generation)
restart_yaml "$left" | write_source "$SRC"
"$FERRYD" --source "file:$SRC" --cgroup "$CG" --bpffs "$BPFFS" --metrics-addr "" --health-addr "" --max-services 500 >>"$FERRYD_LOG" 2>&1 &
FERRYD_PID=$!
PIDS+=("$FERRYD_PID")
wait_generation $((gen + 1)) "$RESTARTED"
expect "migrate again: new maps (the log says so)" \
	"$(grep -c 'differ (ferry_services4: max_entries 2000, this ferryd.s 1000): migrating' "$FERRYD_LOG")" 1
touch "$WORK/sticky/go"
wait_file "$WORK/sticky/second" 10
expect "B12 migrate: a UDP socket stuck to $gone, removed meanwhile, moves to r-$left (no ID handed out again)" \
	"$(awk '{print $1}' "$WORK/sticky/second" 2>/dev/null)" "r-$left"

# --- cleanup ---------------------------------------------------------------
ferryd_stop
"$FERRYD" --cleanup --bpffs "$BPFFS" >>"$FERRYD_LOG" 2>&1
expect "cleanup: ferryd --cleanup detaches every program" "$(attached_count)" 0
expect "cleanup: ferryd --cleanup removes the pins" "$(ls -A "$BPFFS" 2>&1 | grep -c ferry_)" 0
expect "cleanup: the ClusterIP is no longer translated" \
	"$(field error "$(probe tcp 10.96.50.10 80)")" ENETUNREACH

finish
