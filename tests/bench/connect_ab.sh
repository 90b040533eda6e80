#!/usr/bin/env bash
# connect4's run time per call (bpf_stats), two ferry builds against each
# other and against the minimal program, measured in the same rounds: what
# a change to the socket LB gains or costs, beyond the spread of one run.
#
#   tests/bench/connect_ab.sh [--loads L] [--rounds R] [--iters N] [--out DIR]
#                             BUILD_A [BUILD_B]
#
# Three cgroups of this run's own: the minimal program (this checkout's
# build/bench/minimal.bpf.o), ferryd of BUILD_A and ferryd of BUILD_B (each
# a build folder holding ferryd, e.g. build of another worktree; without
# BUILD_B, A alone). One state for all: a TCP ClusterIP 10.96.99.2:80 and a
# UDP one 10.96.99.1:53, each on two loopback backends. The programs are
# loaded L times (default 3), fresh each time (ferryd and the minimal
# program started again): where the kernel places a program's JIT image
# moves its cost by several percent, so that two loads of one build differ
# by as much as two builds may (seen here: 0.93-1.03 over 16 rounds). Each
# load runs R rounds (default 6); in a round each workload runs under the
# three programs, A and B in turns first:
#   tcp   short TCP connections, a new socket each: loadgen -1 -c 64 for 1 s
#         to build/bench/httpd on 127.0.0.2-3:9000, in a network namespace
#         of this run's own (loopback only)
#   udp1  UDP, a new socket per connect(): connect_bench -s -n N
#   udp   the UDP connect() loop, one socket: connect_bench -n N
#   miss  the UDP connect() loop to an address of no service (127.0.0.9:53):
#         what the lookups cost every other connect() on the node
# Prints per workload the median ns per call and, for A and B, the median
# of their per-round ratios to the minimal program (with its range) and of
# B's to A's (and that median load by load); rows in DIR/ab.csv (default
# results/<UTC timestamp>-ab/). Everything carries the prefix fyab<pid>
# and is removed on exit, failure or signal. Needs root and
# `make bench-tools` in this checkout.
set -u
export LC_ALL=C
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/wait.sh
source "$REPO/tests/wait.sh"
BUILD=${BUILD:-$REPO/build}
LOADS=3 ROUNDS=6 ITERS=50000 OUT=
while [ $# -gt 0 ]; do
	case $1 in
	--loads) LOADS=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--iters) ITERS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-*) echo "connect_ab.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: connect_ab.sh [--loads L] [--rounds R] [--iters N] [--out DIR] BUILD_A [BUILD_B]" >&2
	exit 2
fi
declare -A FERRYD=([a]=$1/ferryd)
[ $# = 2 ] && FERRYD[b]=$2/ferryd
for f in "${FERRYD[@]}" "$BUILD/bench/loadgen" "$BUILD/bench/httpd" "$BUILD/bench/connect_bench" \
	"$BUILD/bench/minimal.bpf.o"; do
	[ -e "$f" ] || { echo "connect_ab.sh: $f missing (make bench-tools)" >&2; exit 1; }
done
CGROOT=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
[ -n "$CGROOT" ] || { echo "connect_ab.sh: no cgroup2 mount" >&2; exit 1; }
P=fyab$$
NS=$P
WORK=$(mktemp -d "/tmp/$P.XXXXXX")
OUT=${OUT:-$REPO/results/$(date -u +%Y%m%dT%H%M%SZ)-ab}
mkdir -p "$OUT" || { rm -rf "$WORK"; echo "connect_ab.sh: cannot make $OUT" >&2; exit 1; }
declare -A CG=([m]=$CGROOT/$P-m) PIN=([m]=/sys/fs/bpf/$P-m)
for k in "${!FERRYD[@]}"; do CG[$k]=$CGROOT/$P-$k PIN[$k]=/sys/fs/bpf/$P-$k; done
HTTPD_PID=""
FERRYD_PIDS=()
HOLDER_PID=""

# unload: ferryd stopped and its pins removed, the minimal program detached.
unload() {
	local p k
	for p in "${FERRYD_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${FERRYD_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	FERRYD_PIDS=()
	for k in "${!FERRYD[@]}"; do "${FERRYD[$k]}" --cleanup --bpffs "${PIN[$k]}" >/dev/null 2>&1; done
	BUILD=$BUILD "$REPO/tests/bench/minimal.sh" detach "${CG[m]}" "${PIN[m]}" >/dev/null 2>&1
}

cleanup() {
	local k
	unload
	[ -n "$HTTPD_PID" ] && kill "$HTTPD_PID" 2>/dev/null && wait "$HTTPD_PID" 2>/dev/null
	for k in "${!CG[@]}"; do rmdir "${CG[$k]}" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
	[ -n "$HOLDER_PID" ] && kill "$HOLDER_PID" 2>/dev/null && wait "$HOLDER_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "connect_ab.sh: $*" >&2; exit 1; }

cat >"$WORK/state.json" <<'EOF'
{"apiVersion": "v1", "kind": "List", "items": [
{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "t", "namespace": "ab"},
 "spec": {"clusterIP": "10.96.99.2", "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 9000}]}},
{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "t-1", "namespace": "ab",
 "labels": {"kubernetes.io/service-name": "t"}}, "addressType": "IPv4",
 "ports": [{"name": "http", "port": 9000, "protocol": "TCP"}],
 "endpoints": [{"addresses": ["127.0.0.2"], "conditions": {"ready": true}},
               {"addresses": ["127.0.0.3"], "conditions": {"ready": true}}]},
{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "u", "namespace": "ab"},
 "spec": {"clusterIP": "10.96.99.1", "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}]}},
{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "u-1", "namespace": "ab",
 "labels": {"kubernetes.io/service-name": "u"}}, "addressType": "IPv4",
 "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"}],
 "endpoints": [{"addresses": ["127.0.0.2"], "conditions": {"ready": true}},
               {"addresses": ["127.0.0.3"], "conditions": {"ready": true}}]}
]}
EOF

if ! { ip netns add "$NS" && ip -n "$NS" link set lo up; }; then
	fail "cannot make network namespace $NS"
fi
nsenter --net="/run/netns/$NS" "$BUILD/bench/httpd" -p 9000 -n ab >/dev/null 2>&1 &
HTTPD_PID=$!
for k in "${!CG[@]}"; do mkdir "${CG[$k]}" || fail "cannot make cgroup ${CG[$k]}"; done

# prog_id K: the connect4 program on K's cgroup, once it is attached.
prog_id() {
	local i id
	for ((i = 0; i < 100; i++)); do
		id=$(bpftool -j cgroup show "${CG[$1]}" 2>/dev/null | python3 -c '
import json, sys
print(" ".join(str(p["id"]) for p in json.load(sys.stdin) if p["attach_type"] == "cgroup_inet4_connect"))')
		[ -n "$id" ] && { echo "$id"; return 0; }
		sleep 0.1
	done
	return 1
}
# load: ferryd of each build and the minimal program, fresh; their
# connect4 programs' ids in ID.
declare -A ID
load() {
	local k
	for k in "${!FERRYD[@]}"; do
		"${FERRYD[$k]}" --source "file:$WORK/state.json" --cgroup "${CG[$k]}" --bpffs "${PIN[$k]}" \
			--node-name ab --metrics-addr "" --health-addr "" 2>"$WORK/ferryd-$k.log" &
		FERRYD_PIDS+=($!)
	done
	if ! { BUILD=$BUILD "$REPO/tests/bench/minimal.sh" attach "${CG[m]}" "${PIN[m]}" >/dev/null &&
		BUILD=$BUILD "$REPO/tests/bench/minimal.sh" fill "${PIN[m]}" "$WORK/state.json" >/dev/null; }; then
		fail "the minimal program could not be attached"
	fi
	for k in "${!CG[@]}"; do
		ID[$k]=$(prog_id "$k") ||
			fail "no connect4 program on ${CG[$k]} ($(tail -n 1 "$WORK/ferryd-$k.log" 2>/dev/null))"
	done
}

prog_run() { bpftool -j prog show id "$1" | python3 -c 'import json, sys; j = json.load(sys.stdin); print(j.get("run_cnt", 0), j.get("run_time_ns", 0))'; }

# run K WORKLOAD: ns per call of K's program over one run of WORKLOAD.
run() {
	local k=$1 w=$2 c0 t0 c1 t1 cmd
	case $w in
	tcp) cmd="nsenter --net=/run/netns/$NS $BUILD/bench/loadgen -1 -c 64 -n 100000000 -t 1 10.96.99.2:80" ;;
	udp1) cmd="$BUILD/bench/connect_bench -s -n $ITERS 10.96.99.1 53" ;;
	udp) cmd="$BUILD/bench/connect_bench -n $ITERS 10.96.99.1 53" ;;
	miss) cmd="$BUILD/bench/connect_bench -n $ITERS 127.0.0.9 53" ;;
	esac
	read -r c0 t0 < <(prog_run "${ID[$k]}")
	bash -c 'echo $$ >"$1/cgroup.procs" && exec $2' _ "${CG[$k]}" "$cmd" >/dev/null 2>&1
	read -r c1 t1 < <(prog_run "${ID[$k]}")
	[ $((c1 - c0)) -gt 0 ] || return 1
	awk -v c=$((c1 - c0)) -v t=$((t1 - t0)) 'BEGIN {printf "%.1f", t / c}'
}

# Run-time stats on for as long as the holder lives (hold_stats.py says why
# not kernel.bpf_stats_enabled).
python3 "$REPO/tests/bench/hold_stats.py" >"$WORK/stats-held" &
HOLDER_PID=$!
wait_until 10 test -s "$WORK/stats-held"
grep -qx held "$WORK/stats-held" || fail "BPF_ENABLE_STATS: $(cat "$WORK/stats-held")"
echo "load,round,workload,program,ns_per_call" >"$OUT/ab.csv"
order=(a b)
[ -n "${FERRYD[b]:-}" ] || order=(a)
for ((l = 1; l <= LOADS; l++)); do
	load
	for ((r = 1; r <= ROUNDS; r++)); do
		for w in tcp udp1 udp miss; do
			for k in m "${order[@]}"; do
				ns=$(run "$k" "$w") || fail "load $l round $r: the $k program did not run ($w)"
				echo "$l,$r,$w,$k,$ns" >>"$OUT/ab.csv"
			done
		done
		[ ${#order[@]} = 2 ] && order=("${order[1]}" "${order[0]}")
	done
	unload
done

echo "connect_ab.sh: $LOADS loads x $ROUNDS rounds, rows in $OUT/ab.csv"
python3 - "$OUT/ab.csv" <<'PY'
import csv, statistics as st, sys
from collections import defaultdict
ns = defaultdict(dict)
for row in csv.DictReader(open(sys.argv[1])):
    ns[(row["workload"], int(row["load"]), int(row["round"]))][row["program"]] = \
        float(row["ns_per_call"])
def spread(xs):
    return "%.3f [%.2f-%.2f]" % (st.median(xs), min(xs), max(xs))
for w in ("tcp", "udp1", "udp", "miss"):
    rounds = [v for (wl, _, _), v in sorted(ns.items()) if wl == w]
    line = "%-4s minimal %.1f ns" % (w, st.median(r["m"] for r in rounds))
    for k in ("a", "b"):
        if k in rounds[0]:
            line += " | %s %.1f ns, / minimal %s" % (k.upper(), st.median(r[k] for r in rounds),
                                                      spread([r[k] / r["m"] for r in rounds]))
    if "b" in rounds[0]:
        line += " | B / A %s" % spread([r["b"] / r["a"] for r in rounds])
        loads = sorted({l for (wl, l, _) in ns if wl == w})
        line += ", by load %s" % " ".join(
            "%.3f" % st.median(v["b"] / v["a"] for (wl, l2, _), v in ns.items() if wl == w and l2 == l)
            for l in loads)
    print(line)
PY
