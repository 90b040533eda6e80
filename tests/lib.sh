# shellcheck shell=bash
# Helpers for ferry's kernel tests (tests/kernel/*.sh) and the demo.
#
# Topology: a "node" network namespace with a bridge br0 (198.18.0.1/15,
# fd00:198:18::1/48) and one namespace per pod, joined to br0 by a veth that
# is created inside the node namespace (nothing ever appears in the host's
# own namespace). The node namespace has no route but the pod subnets, so a
# service address that is not translated fails with ENETUNREACH and no
# packet leaves the machine.
#
# Clients run in a cgroup v2 child of their own (ferryd attaches to it) and
# in the node namespace: in_client CMD... . ferryd, ferryctl and bpftool run
# in the host namespace (`ip netns exec` would hide bpffs and cgroup2).
#
# Every name carries a per-run prefix ($P, "fy" + the test's pid); cleanup
# runs on every exit and removes everything this run made.
#
# Output: one line per case, "ok - NAME" or "not ok - NAME: REASON";
# comment lines start with "#". finish prints a summary comment and exits 1
# when a case failed or when none ran.

set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
FERRYD=$BUILD/ferryd
FERRYCTL=$BUILD/ferryctl
CONNCOUNT=$BUILD/tests/conncount
PODSERVER=$REPO/tests/helpers/podserver.py
PROBE=$REPO/tests/helpers/probe.py
PYTHON=${PYTHON:-python3}
FIXTURES=${FIXTURES:-$REPO/../shared/fixtures}

P=fy$$
NODE=${P}n
CGROOT=$(awk '$3=="cgroup2"{print $2; exit}' /proc/mounts)
CG=${CGROOT:+$CGROOT/$P-test}
BPFFS=/sys/fs/bpf/$P-test
GROUP=$(basename "$0" .sh)
LOGDIR=${LOGDIR:-$BUILD/test-logs/$GROUP}
WORK=$(mktemp -d "/tmp/$P.XXXXXX")
FERRYD_LOG=$LOGDIR/ferryd.log

PASS=0
FAIL=0
PIDS=()          # background processes this run started
PODS=()          # pod namespaces
TOPOLOGY=0
FERRYD_PID=
FERRYD_USED=0

mkdir -p "$LOGDIR"
: >"$FERRYD_LOG"

# --- reporting -------------------------------------------------------------

ok() { PASS=$((PASS + 1)); echo "ok - $1"; }

not_ok() {
	FAIL=$((FAIL + 1))
	echo "not ok - $1: $2"
}

note() { echo "# $*"; }

# expect NAME GOT WANT: ok when the strings are equal.
expect() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "got '$2', want '$3'"; fi
}

# expect_match NAME GOT REGEX: ok when GOT matches the extended regex.
expect_match() {
	if [[ $2 =~ $3 ]]; then ok "$1"; else not_ok "$1" "got '$2', want /$3/"; fi
}

# finish: a group that ran no case fails too (a setup that skipped them all
# must not read as a pass).
finish() {
	[ $((PASS + FAIL)) -gt 0 ] || not_ok "$GROUP" "the group ran no case"
	if [ "$FAIL" -gt 0 ] && [ -s "$FERRYD_LOG" ]; then
		note "ferryd log, last 25 lines without libbpf's ($FERRYD_LOG):"
		grep -v 'component=libbpf' "$FERRYD_LOG" | tail -n 25 | sed 's/^/#   /'
	fi
	note "group $GROUP: $PASS ok, $FAIL not ok"
	[ "$FAIL" -eq 0 ]
	exit $?
}

# --- optional kernel features ------------------------------------------------

# What the kernel's BTF shows when it has an optional feature (a line of
# `bpftool btf dump`), to check ferryd's word before a case is skipped.
declare -A FEATURE_BTF=([udp_reaper]="FUNC 'bpf_sock_destroy'" [tcx]="'BPF_TCX_INGRESS'")

# kernel_btf_has NAME: the running kernel's BTF has what feature NAME needs.
kernel_btf_has() {
	bpftool btf dump file /sys/kernel/btf/vmlinux 2>/dev/null | grep -qF -- "${FEATURE_BTF[$1]}"
}

# feature_why NAME: empty when ferryd uses feature NAME, else why not.
feature_why() {
	status_get "'' if j['features']['$1']['available'] else j['features']['$1']['why']" 2>/dev/null
}

feature_used() { [ -z "$(feature_why "$1")" ]; }

# needs_feature NAME CASE...: 0 when the running ferryd uses the optional
# feature NAME (ferryctl status "features"): the caller runs the CASEs.
# Otherwise 1, and each CASE is "ok - CASE # SKIP NAME not available on this
# kernel: WHY" when ferryd says the kernel lacks it and the kernel's BTF
# agrees; "not ok" when ferryd has it off for another reason or the BTF
# shows it there (a case must never pass unrun where the feature is).
needs_feature() {
	local name=$1 why bad='' c
	shift
	why=$(feature_why "$name")
	# ferryd may still be starting what the kernel has (the UDP reaper loads
	# after the first generation): wait for it before calling it missing.
	if [ -n "$why" ] && kernel_btf_has "$name"; then
		wait_until 30 feature_used "$name"
		why=$(feature_why "$name")
	fi
	[ -n "$why" ] || return 0
	if [[ $why != "the kernel lacks "* ]]; then
		bad="ferryd does not use $name: $why"
	elif kernel_btf_has "$name"; then
		bad="ferryd says $why, but the kernel's BTF has ${FEATURE_BTF[$name]}"
	fi
	for c in "$@"; do
		if [ -n "$bad" ]; then not_ok "$c" "$bad"; else ok "$c # SKIP $name not available on this kernel: $why"; fi
	done
	return 1
}

# --- waiting ---------------------------------------------------------------

# shellcheck source=tests/wait.sh
source "$REPO/tests/wait.sh"

wait_file() { wait_until "${2:-10}" test -s "$1"; }

# --- cleanup ---------------------------------------------------------------

# shellcheck source=tests/stop_pid.sh
source "$REPO/tests/stop_pid.sh"

cleanup() {
	local pid ns i procs
	set +e
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
	ferryd_stop
	if [ "$FERRYD_USED" = 1 ] && [ -x "$FERRYD" ]; then
		"$FERRYD" --cleanup --bpffs "$BPFFS" ${CG:+--cgroup "$CG"} >>"$FERRYD_LOG" 2>&1 ||
			echo "# cleanup: ferryd --cleanup failed, see $FERRYD_LOG"
	fi
	[ -d "$BPFFS" ] && rmdir "$BPFFS" 2>/dev/null
	for ns in "${PODS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	[ "$TOPOLOGY" = 1 ] && ip netns del "$NODE" 2>/dev/null
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		# Only this run's clients ever entered this cgroup: end what is left.
		for ((i = 0; i < 100; i++)); do
			mapfile -t procs <"$CG/cgroup.procs"
			[ ${#procs[@]} -gt 0 ] || break
			case $i in 0) kill "${procs[@]}" 2>/dev/null ;; 40) kill -9 "${procs[@]}" 2>/dev/null ;; esac
			sleep 0.05
		done
		rmdir "$CG" || echo "# cleanup: could not remove $CG"
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- topology --------------------------------------------------------------

need_root() {
	if [ "$(id -u)" != 0 ]; then
		not_ok "$GROUP setup" "kernel tests need root"
		finish
	fi
	if [ -z "$CG" ]; then
		not_ok "$GROUP setup" "no cgroup2 mount in /proc/mounts"
		finish
	fi
}

# topology_up: the node namespace with br0, and the test cgroup.
topology_up() {
	need_root
	ip netns add "$NODE" || { not_ok "$GROUP setup" "ip netns add $NODE"; finish; }
	TOPOLOGY=1
	mkdir "$CG" || { not_ok "$GROUP setup" "mkdir $CG"; finish; }
	ip -n "$NODE" link set lo up &&
		ip -n "$NODE" link add br0 type bridge &&
		ip -n "$NODE" addr add 198.18.0.1/15 dev br0 &&
		ip -n "$NODE" addr add fd00:198:18::1/48 dev br0 nodad &&
		ip -n "$NODE" link set br0 up ||
		{ not_ok "$GROUP setup" "node namespace $NODE"; finish; }
}

# add_pod NAME V4 [V6]: a pod namespace (${P}pN, in PODS and POD_NS[NAME])
# joined to br0 by the veth vpN, addresses /15 and /48.
add_pod() {
	local name=$1 v4=$2 v6=${3:-} i=$((${#PODS[@]} + 1))
	local ns=${P}p$i
	ip netns add "$ns" || return 1
	PODS+=("$ns")
	POD_NS[$name]=$ns
	ip -n "$NODE" link add "vp$i" type veth peer name eth0 netns "$ns" &&
		ip -n "$NODE" link set "vp$i" master br0 up &&
		ip -n "$ns" link set lo up &&
		ip -n "$ns" addr add "$v4/15" dev eth0 &&
		{ [ -z "$v6" ] || ip -n "$ns" addr add "$v6/48" dev eth0 nodad; } &&
		ip -n "$ns" link set eth0 up
}
declare -A POD_NS=()

# pod NAME V4 V6 SERVER-ARGS...: add_pod, then start podserver.py in it
# (e.g. --tcp 8080 --udp 53) and wait until its sockets listen.
pod() {
	local name=$1 v4=$2 v6=$3
	shift 3
	add_pod "$name" "$v4" "$v6" || { not_ok "$GROUP setup" "pod $name"; finish; }
	start_server "${POD_NS[$name]}" "$name" "$@"
}

# start_server NETNS NAME SERVER-ARGS...
start_server() {
	local ns=$1 name=$2
	shift 2
	nsenter --net="/run/netns/$ns" "$PYTHON" "$PODSERVER" --name "$name" \
		--ready-file "$WORK/$name.ready" "$@" 2>>"$LOGDIR/podserver.log" &
	PIDS+=($!)
	wait_until 10 eval "[ -s '$WORK/$name.ready' ] || ! kill -0 $!"
	[ -s "$WORK/$name.ready" ] ||
		{ not_ok "$GROUP setup" "podserver $name not ready: $(tail -n 1 "$LOGDIR/podserver.log")"; finish; }
}

# in_client CMD...: run CMD in the test cgroup and the node namespace.
# bg_client CMD...: the same in the background; its pid (CMD's own: bash
# and nsenter exec) goes into PIDS.
CLIENT_SH='echo $$ >"$0/cgroup.procs" && exec nsenter --net="/run/netns/$1" "${@:2}"'
in_client() { bash -c "$CLIENT_SH" "$CG" "$NODE" "$@"; }
bg_client() {
	bash -c "$CLIENT_SH" "$CG" "$NODE" "$@" &
	PIDS+=($!)
}

# in_node CMD...: the node namespace, outside the test cgroup (no ferry).
in_node() { nsenter --net="/run/netns/$NODE" "$@"; }

# -S: probe.py needs only the standard library, and site's .pth files are
# a quarter of an interpreter's start (most of a probe's time under QEMU).
probe() { in_client "$PYTHON" -S "$PROBE" "$@"; }

# field KEY LINE: the value of KEY=value in a probe output line.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2" | head -n 1; }

# curl_tally COUNT URL: curl URL COUNT times from the client; prints the
# answers counted, sorted: "web-1=10 web-2=12 ..." (curl failures count as
# curl-error:CODE).
curl_tally() {
	local count=$1 url=$2
	in_client bash -c '
		n=$1; url=$2; shift 2
		for ((i = 0; i < n; i++)); do
			curl -sS -g --max-time 2 "$url" || { echo "curl-error:$?"; continue; }
		done' _ "$count" "$url" | sort | uniq -c | awk '{print $2"="$1}' | sort | tr '\n' ' ' | sed 's/ $//'
}

# conn_tally COUNT ADDR PORT: conncount from the client, in curl_tally's
# format ("web-1=1003 web-2=998 ..."; failures as error:ERRNO=N). With
# CONN_PATH=/port set, each asks for /port: "NAME:PORT" counts apart.
conn_tally() {
	in_client "$CONNCOUNT" -n "$1" -t 120 ${CONN_PATH:+-p "$CONN_PATH"} "$2" "$3" |
		awk '{print $2"="$1}' | sort | tr '\n' ' ' | sed 's/ $//'
}

# udp_tally COUNT ADDR PORT: COUNT datagrams from the client, each from a
# new unconnected socket (ferry keeps a socket on the backend it picked), in
# conn_tally's format (failures as error:ERRNO=N).
udp_tally() {
	in_client "$PYTHON" "$PROBE" udp "$2" "$3" --count "$1" |
		sed -n 's/^reply=\([^ ]*\).*/\1/p; s/^error=\([^ ]*\).*/error:\1/p' |
		sort | uniq -c | awk '{print $2"="$1}' | sort | tr '\n' ' ' | sed 's/ $//'
}

# wait_held DIR PID: until the held connection of probe.py hold --dir DIR
# (process PID) answered (DIR/first) or PID ended. A bound, not a wait: an
# interpreter's start alone took 5-8 s in a TCG guest on a loaded host.
wait_held() { wait_until 120 eval "[ -s '$1/first' ] || ! kill -0 $2"; }

# held_close HELD DIR POD: the held connections (probe.py hold, connection
# I in folder DIR/I) that HELD, the name of an associative array I -> pod,
# says reached POD exchange once more and close; each leaves HELD.
held_close() {
	local -n held=$1
	local i
	for i in "${!held[@]}"; do
		[ "${held[$i]}" = "$3" ] || continue
		touch "$2/$i/go"
		wait_file "$2/$i/second" 10
		unset "held[$i]"
	done
}

# rotation SEQ K: "exact" when SEQ (answers in order, space separated)
# repeats its first K answers, K different ones, to the end; else why not.
rotation() {
	local -a s
	read -r -a s <<<"$1"
	[ "${#s[@]}" -gt "$2" ] || { echo "only ${#s[@]} answers: $1"; return; }
	[[ $1 != *error* ]] || { echo "failures: $1"; return; }
	[ "$(printf '%s\n' "${s[@]:0:$2}" | sort -u | wc -l)" = "$2" ] ||
		{ echo "first $2 not distinct: ${s[*]:0:$2}"; return; }
	for ((i = $2; i < ${#s[@]}; i++)); do
		[ "${s[i]}" = "${s[i - $2]}" ] || { echo "answer $i is ${s[i]}, not ${s[i - $2]}: $1"; return; }
	done
	echo exact
}

# names_of TALLY: the answer names of a tally, sorted, space separated.
names_of() { tr ' ' '\n' <<<"$1" | sed -n 's/=.*//p' | sort | tr '\n' ' ' | sed 's/ $//'; }

# --- ferryd ----------------------------------------------------------------

# write_source FILE: stdin to FILE atomically (ferryd watches with inotify).
write_source() {
	cat >"$1.tmp" && mv -f "$1.tmp" "$1"
}

# generation [BPFFS]: the generation published under BPFFS (the test's).
generation() {
	"$FERRYCTL" --bpffs "${1:-$BPFFS}" status -o json 2>/dev/null |
		sed -n 's/.*"generation"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' | head -n 1
}

# gen_at_least MIN [BPFFS]
gen_at_least() {
	local g
	g=$(generation "${2:-$BPFFS}")
	[ -n "$g" ] && [ "$g" -ge "$1" ]
}

# wait_generation MIN [SECONDS]: until the published generation >= MIN.
wait_generation() {
	local min=$1 secs=${2:-10}
	local deadline=$((SECONDS + secs))
	until gen_at_least "$min"; do
		if [ -n "$FERRYD_PID" ] && ! kill -0 "$FERRYD_PID" 2>/dev/null; then
			note "ferryd exited"
			return 1
		fi
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.05
	done
}

# ferryd_spawn SOURCE [ARGS...]: start ferryd on SOURCE, without waiting for
# its first generation (large sources: wait with your own bound). SOURCE is
# a file or folder, or "k8s" for --source k8s (the API server: pass
# --kubeconfig or --apiserver in ARGS).
ferryd_spawn() {
	local src=$1
	shift
	if [ ! -x "$FERRYD" ] || [ ! -x "$FERRYCTL" ]; then
		not_ok "$GROUP ferryd starts" "build/ferryd or build/ferryctl missing (make all)"
		return 1
	fi
	[ "$src" = k8s ] || src=file:$src
	FERRYD_USED=1
	echo "=== ferryd --source $src $*" >>"$FERRYD_LOG"
	# No metrics or health server unless a test asks (ARGS come later and
	# win): the defaults would listen on the host's own addresses. With
	# FERRYD_NETNS set, ferryd runs in that namespace as in a node's (its
	# devices, its loopback NodePorts, B22); nsenter --net keeps bpffs and
	# the cgroup mount visible.
	${FERRYD_NETNS:+nsenter --net=/run/netns/$FERRYD_NETNS} \
	"$FERRYD" --source "$src" --cgroup "$CG" --bpffs "$BPFFS" \
		--node-name node-a --log-level debug --metrics-addr "" --health-addr "" \
		"$@" 2>>"$FERRYD_LOG" &
	FERRYD_PID=$!
}

# ferryd_start SOURCE [ARGS...]: start ferryd on SOURCE (file or folder, or
# k8s) and wait for the first generation.
ferryd_start() {
	ferryd_spawn "$@" || return 1
	# A bound, not a wait: wait_generation returns as soon as the
	# generation is there or ferryd exits (a TCG guest on a loaded host
	# took over 15 s to verify the programs).
	if ! wait_generation 1 120; then
		not_ok "$GROUP ferryd starts" "no generation >= 1 within 120 s; log: $(tail -n 3 "$FERRYD_LOG" | tr '\n' ' ')"
		return 1
	fi
}

ferryd_stop() {
	[ -n "$FERRYD_PID" ] || return 0
	stop_pid "$FERRYD_PID"
	FERRYD_PID=
}

# expect_refused WHAT SECONDS: one case, that the ferryd just spawned exits
# non-zero within SECONDS (a start it must refuse). One still running is
# stopped and its datapath removed. Returns 1 when it did not exit non-zero.
expect_refused() {
	local what=$1 secs=$2 pid=$FERRYD_PID rc
	if ! wait_until "$secs" eval "! kill -0 $pid"; then
		not_ok "$what" "still running after $secs s"
		ferryd_reset
		return 1
	fi
	wait "$pid"
	rc=$?
	FERRYD_PID=
	[ "$rc" -ne 0 ] || { not_ok "$what" "exit 0"; return 1; }
	ok "$what (exit $rc)"
}

# ferryd_reset: stop ferryd and remove its datapath, so that the next start
# begins from nothing (and its generation 1 is its own, not a leftover).
ferryd_reset() {
	ferryd_stop
	[ "$FERRYD_USED" = 1 ] || return 0
	"$FERRYD" --cleanup --bpffs "$BPFFS" --cgroup "$CG" >>"$FERRYD_LOG" 2>&1
}

# update_source FILE: stdin becomes FILE; waits until ferryd published a
# generation above the one before the write.
update_source() {
	local file=$1 g
	g=$(generation)
	write_source "$file"
	wait_generation $((${g:-0} + 1)) 10
}

# change CASE FILE: stdin becomes FILE; a case fails when no new generation
# is published.
change() { update_source "$2" || not_ok "$1: a new generation is published" "still $(generation)"; }

service_list_json() { "$FERRYCTL" --bpffs "$BPFFS" service list -o json; }

# svc_backends ADDR PORT PROTO: the backends ferryctl lists for one frontend,
# "ADDR:PORT:STATE ..." sorted, with " fallback" appended when the service
# runs on terminating endpoints; "absent" when it is not listed.
svc_backends() {
	service_list_json | "$PYTHON" -c '
import json, sys
addr, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for s in json.load(sys.stdin):
    if (s["address"], s["port"], s["protocol"]) == (addr, port, proto):
        out = sorted("%s:%d:%s" % (b["address"], b["port"], b["state"]) for b in s["backends"])
        print(" ".join(out) + (" fallback" if s.get("terminating_fallback") else ""))
        break
else:
    print("absent")' "$@"
}

# --- status ----------------------------------------------------------------

# peer_mark: ferry_peer_mark's "seen" (1 once a UDP socket kept a peer entry).
peer_mark() {
	bpftool -j map dump pinned "$BPFFS/ferry_peer_mark" |
		"$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)[0]["formatted"]["value"]["seen"])'
}

# status_get [--maps] EXPR: a Python expression over `ferryctl status -o json`
# (as j), printed; e.g. status_get 'j["agent"]["map_full_errors"]'. With
# --maps, j["maps"] has each hash map's "entries" too (reads every entry).
status_get() {
	local maps=
	[ "$1" != --maps ] || { maps=--maps; shift; }
	"$FERRYCTL" --bpffs "$BPFFS" status -o json ${maps:+--maps} 2>/dev/null |
		"$PYTHON" -c 'import json, sys; j = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

status_true() { [ "$(status_get "bool($1)" 2>/dev/null)" = True ]; }

# wait_status SECONDS EXPR: until the expression over the status JSON holds
# (for changes that publish no new generation, e.g. one refused for space).
wait_status() { wait_until "$1" status_true "$2"; }

# map_entries: "ferry_services4=N ferry_services6=N ferry_slots=N
# ferry_backends=N ferry_affinity=N", the maps the service ports fill.
map_entries() {
	status_get --maps '" ".join("%s=%s" % (m["name"], m["entries"]) for m in j["maps"] if m["name"] in ("ferry_services4", "ferry_services6", "ferry_slots", "ferry_backends", "ferry_affinity"))'
}

# FERRY_STATE_PY: Python source of StateMap(path), the pinned ferry_state map
# read with the raw bpf(2) syscall (struct agent_state): .generation(),
# .applied_ns() (changes on every publish) and .map_full_errors() cost one
# syscall (ferryctl status costs about a millisecond: a process and a few
# dozen syscalls). For drivers that poll the generation in a tight loop:
# prepend it to their script.
# shellcheck disable=SC2016,SC2034
FERRY_STATE_PY='
import ctypes, os, platform, struct, sys


class StateMap:
    NR_BPF = {"x86_64": 321, "aarch64": 280}[platform.machine()]

    def __init__(self, path):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.syscall.restype = ctypes.c_long
        self.path = ctypes.create_string_buffer(path.encode())
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("Q", attr, 0, ctypes.addressof(self.path))
        self.fd = self._bpf(7, attr)  # BPF_OBJ_GET
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "BPF_OBJ_GET " + path)
        self.key = ctypes.c_uint32(0)
        self.val = ctypes.create_string_buffer(4096)
        self.attr = ctypes.create_string_buffer(128)
        struct.pack_into("IIQQQ", self.attr, 0, self.fd, 0, ctypes.addressof(self.key),
                         ctypes.addressof(self.val), 0)

    def _bpf(self, cmd, attr):
        return self.libc.syscall(ctypes.c_long(self.NR_BPF), ctypes.c_int(cmd), attr,
                                 ctypes.c_uint(len(attr)))

    def _lookup(self):
        if self._bpf(1, self.attr) < 0:  # BPF_MAP_LOOKUP_ELEM
            raise OSError(ctypes.get_errno(), "BPF_MAP_LOOKUP_ELEM ferry_state")

    def generation(self):
        self._lookup()
        return struct.unpack_from("Q", self.val, 0)[0]

    def applied_ns(self):
        """CLOCK_REALTIME ns of the last publish (struct agent_state)."""
        self._lookup()
        return struct.unpack_from("Q", self.val, 8)[0]

    def map_full_errors(self):
        self._lookup()
        return struct.unpack_from("Q", self.val, 40)[0]
'

