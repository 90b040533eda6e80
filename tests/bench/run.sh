#!/usr/bin/env bash
# ferry's benchmark: connection cost through ferry's socket LB against no
# load balancer, kube-proxy's iptables layout (iptables-legacy and
# iptables-nft), kube-proxy's nftables layout and a minimal one-lookup
# connect4 program; connect() overhead; control-plane times; memory.
#
#   tests/bench/run.sh [--quick] [--docs|--no-docs] [--out DIR]
#                      [--sizes "N..."] [--ferry-sizes "N..."] [--rounds R]
#                      [--rate-rounds R]
#                      [--seconds S] [--slice MS] [--conc C] [--methods "a b ..."]
#                      [--profile|--no-profile] [--api|--no-api]
#                      [--memory|--no-memory] [--nodeport|--no-nodeport]
#                      [--xdp|--no-xdp] [--algorithms|--no-algorithms]
#                      [--only connect|cost|rate|algorithms|memory|nodeport|xdp]
#
# `make bench` runs the full set (45 minutes on a 2-core machine, the
# algorithms part included), `make bench-quick` the quick
# one (N = 100 and 1,000, short runs, about 3 minutes, and 2.5 more). Results go to results/<UTC timestamp>[-quick]/ as CSV (see
# tests/bench/report.py for the files); tests/bench/report.py then writes
# the summary, a Markdown report and a gnuplot PNG there and, for a full run
# (or with --docs), docs/benchmarks.md and docs/benchmarks.png.
#
# Topology (all in namespaces this run creates; nothing in the host's own):
#   switch netns: bridge br0, one veth per pod and per client.
#   pods: 11 netns, 198.18.0.1 .. 198.18.0.11/15, build/bench/httpd on 8080
#     and on 9000 .. 9031 (HTTP/1.0; a request of one byte gets that byte
#     back). Every state is `scripts/gen-cluster.py N 10 --pods 11`: each
#     service's 10 endpoints are 10 of these 11 pods, and the first endpoints
#     (what the minimal program uses) rotate over all of them; but the 32
#     target services (below) have port 9000 + k (k = their position) on
#     those pods as their endpoints' port, backends no other service shares,
#     as in a cluster where a pod backs one Service.
#   clients: one netns per method, 198.19.1.x/15, and one cgroup v2 each:
#     a  = no load balancer: straight to the 32 target services' own
#          backends (pod IP, port 9000 + k), each service's in turn: the
#          servers' work is the same as behind a load balancer (the 11
#          pods at port 8080, the floor until 2026-12-07, read 2-4 %
#          faster: fewer listeners for each server to accept from)
#     b  = ferry (ferryd attached to b's cgroup)
#     c1 = kube-proxy iptables layout, iptables-legacy-restore, DNAT in OUTPUT
#     c2 = the same file through iptables-nft-restore
#     d  = kube-proxy nftables layout (nft -f), table ip kube-proxy
#     e  = minimal connect4 program (tests/bench/minimal.sh) on e's cgroup
#     r  = no load balancer like (a), each service's backend picked at
#          random: the floor with a load balancer's random choice (a control)
#   Each load generator of b, c1, c2, d and e runs in its method's cgroup
#   and netns against 32 ClusterIPs spread evenly from the first service to
#   the last (port 80).
#
# Per N: every state is loaded once (timed: the cold programming time), then
# --rate-rounds rounds (5; quick: R) run the methods interleaved, so a
# ratio to (a) is taken within a round (traffic.csv: short HTTP
# connections, -c CONC): one loadgen moves itself from method to method in
# slices of --slice MS (default 100; a new random order each turn), each
# method getting S seconds a round, so that the machine's slow spells,
# which last seconds here, fall on every method alike (--slice 0: one
# loadgen run per method and round, in turn, as before); then as many
# rounds of a b e r with the 1-byte request/response (loadgen -1 -c 64,
# 3 s a method, traffic-byte.csv), the same way; then UDP connect() in a tight loop with no
# program, the minimal program and ferry (R rounds, interleaved); then the
# connect4 programs' own run time per call with run-time stats on (a
# BPF_ENABLE_STATS fd held for the part; R rounds; in each, short TCP
# connections, loadgen -1 -c 64 for 1 s, a new socket per connection, then
# the UDP loop, connect_bench, each under the
# minimal program and under ferry; the programs read by the ids attached to
# e's and b's cgroups; bpfstats.csv); one-change latencies and ferryd's
# memory. N in FERRY_SIZES runs (a), (b) and (r) only.
#
# `--only connect` runs just the connection parts, at --sizes (default: the
# mode's sizes, no FERRY_SIZES) with a b e r: one cold load of ferry, the
# HTTP and 1-byte rate rounds, the connect() loop and the bpf_stats run time
# per call, then the report (no docs). E.g. to judge a socket-LB change:
#   make BUILD=build-x bench-tools
#   BUILD=build-x tests/bench/run.sh --only connect --sizes "1000 10000"
# (about 3.5 minutes per N: 5 rate rounds, 3 of the rest; --quick: 1 s
# runs, 3 rounds). `--only cost` runs the bpf_stats part alone (with the
# check that every method translates), about 25 s per round and N: the
# run time of two builds' connect4 against each other, in turn
# (BUILD=build-a, then build-b, with --rounds 6 or more). `--only rate`
# runs the HTTP and 1-byte rate rounds alone.
# Figures: the "connect4 program run time per call" and "1-byte" tables of
# RESULTS/benchmarks.md, and RESULTS/goals.csv.
# Last, tests/bench/api_latency.sh (--no-api skips it): ferryd on the
# stand-in API server, the API event-to-datapath latency at 1,000 and 10,000
# services (quick: 1,000), into the same results folder; and
# tests/bench/memory.sh (--no-memory skips it): ferryd's peak and steady RSS
# on the file source (JSON and YAML) and on the stand-in's unpaged list, at
# 10,000 services x 10 endpoints (quick: 1,000). `--only memory` runs that
# step alone (about a minute) and prints its figures. Then
# tests/bench/nodeport_rate.sh (--no-nodeport skips it): the NodePort
# short-connection rate from an external namespace through a node (ferry
# with XDP, ferry with --xdp=off, kube-proxy's iptables NodePort layout,
# direct to the pods) at 100, 1,000 and 10,000 Services (quick: 100 and
# 1,000), into the same folder; `--only nodeport` runs it alone. Last,
# build/bench/xdp_ns (--no-xdp skips it): ns per packet through the XDP
# program with BPF_PROG_TEST_RUN against an empty XDP program, repeat 1 in a
# loop and repeat 1,000,000, established and new flows, in a namespace of
# its own (xdp.csv, xdp.md); `--only xdp` runs it alone (about 10 s).
#
# Last, the backend-selection algorithms (issue 16; --no-algorithms skips
# it; `--only algorithms` runs it alone, at --sizes): random, round-robin,
# maglev and least-conn compared in one run, at 1,000 and 10,000 services
# x 10 endpoints (quick: 1,000): per N, R rounds, in each
# ferryd started cold with --lb-algorithm set to each algorithm in turn
# (the order rotated every round, so none always follows another), and
# under each, with run-time stats on (a BPF_ENABLE_STATS fd held for the
# part: another run may reset kernel.bpf_stats_enabled), the connect4 and
# sock_release programs' run time per call (read by the ids attached to b's
# cgroup; sock_release is there under least-conn only) over short TCP connections (loadgen -1 -c BYTE_CONC for COST_SECS,
# a new socket each) and over the UDP connect() loop (connect_bench -n
# CB_ITERS), into algo_bpfstats.csv; ferryd's RSS, the cold start's sync
# time, the kernel memory of ferry_maglev (sized by --max-maglev-entries at
# 1,412 entries per Service: a table of 8 to 14 backends is 1,409 entries of
# 2 bytes in 353 whole cells of 8) and the Maglev entries in use (ferryctl
# service list -o json, maglev_table_size) into algo_memory.csv (the cold
# starts' times: algo_control.csv). Then R rounds of xdp_ns --algorithm NAME
# (the four interleaved) on the new-flow cases, into algo_xdp.csv (the
# algorithm only runs for a flow's first packet). About 5.5 minutes at 1,000
# and 10,000 with 3 rounds; report.py's summary and RESULTS/benchmarks.md
# carry the tables (ns per call and the ratio to random, ranges over the
# rounds).
#
# Everything this run makes carries the prefix fyb<pid> and is removed on
# exit, failure or signal: processes (by pid), ferryd's pins (ferryd
# --cleanup), the minimal program, cgroups, namespaces (which takes their
# iptables/nft rules along), temporary files. kernel.bpf_stats_enabled is
# never written: run-time stats are on while this run holds an fd for them.

set -u
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$REPO/build}
BENCH=$BUILD/bench
FERRYD=$BUILD/ferryd
FERRYCTL=$BUILD/ferryctl
GEN=$REPO/scripts/gen-cluster.py
RULES=$REPO/tests/bench/rules.py
MINIMAL=$REPO/tests/bench/minimal.sh
REPORT=$REPO/tests/bench/report.py
PYTHON=${PYTHON:-python3}

# --- options -------------------------------------------------------------------

QUICK=0
DOCS=
OUT=
unset SIZES FERRY_SIZES     # set, even empty, only by the options
ROUNDS=
RATE_ROUNDS=
SECS=
BYTE_SECS=
CONC=100
SLICE_MS=100
PROFILE=
METHODS_RUN=
API=1
MEMORY=1
NODEPORT=1
XDP=1
ALGOS=1
ONLY=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--docs) DOCS=1 ;;
	--no-docs) DOCS=0 ;;
	--out) OUT=$2; shift ;;
	--sizes) SIZES=$2; shift ;;
	--ferry-sizes) FERRY_SIZES=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--rate-rounds) RATE_ROUNDS=$2; shift ;;
	--seconds) SECS=$2 BYTE_SECS=$2; shift ;;
	--conc) CONC=$2; shift ;;
	--slice) SLICE_MS=$2; shift ;;
	--profile) PROFILE=1 ;;
	--no-profile) PROFILE=0 ;;
	--methods) METHODS_RUN=$2; shift ;;
	--api) API=1 ;;
	--no-api) API=0 ;;
	--memory) MEMORY=1 ;;
	--no-memory) MEMORY=0 ;;
	--nodeport) NODEPORT=1 ;;
	--no-nodeport) NODEPORT=0 ;;
	--xdp) XDP=1 ;;
	--no-xdp) XDP=0 ;;
	--algorithms) ALGOS=1 ;;
	--no-algorithms) ALGOS=0 ;;
	--only) ONLY=$2; shift ;;
	-h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown option $1 (--help)" >&2; exit 2 ;;
	esac
	shift
done
if [ "$ONLY" = cost ]; then
	METHODS_RUN=${METHODS_RUN:-b e}
fi
CONN_ONLY=0   # --only connect, cost or rate: the client parts at --sizes
case $ONLY in connect | cost | rate) CONN_ONLY=1 ;; esac
if [ "$CONN_ONLY" = 1 ]; then
	: "${FERRY_SIZES=}" "${DOCS:=0}" "${PROFILE:=0}"
	API=0 MEMORY=0 NODEPORT=0 XDP=0 ALGOS=0
fi
if [ "$ONLY" = algorithms ]; then
	# --sizes: the algorithm part's (no other part runs).
	ALGO_SIZES=${SIZES-1000 10000}
	SIZES='' FERRY_SIZES='' DOCS=${DOCS:-0} PROFILE=${PROFILE:-0}
	API=0 MEMORY=0 NODEPORT=0 XDP=0 ALGOS=1
fi
if [ "$QUICK" = 1 ]; then
	: "${SIZES=100 1000}" "${FERRY_SIZES=}" "${ROUNDS:=3}" "${SECS:=1}" "${DOCS:=0}" "${PROFILE:=0}"
	CB_ITERS=100000       # connect() iterations per connect_bench run
	COLD_REPS=3           # ferryd cold starts per N (median)
	CHANGE_PAIRS=2        # one-change tests: (replace, restore) pairs
	: "${BYTE_SECS:=1}"   # seconds per 1-byte loadgen run (--seconds: as HTTP)
	: "${RATE_ROUNDS:=$ROUNDS}"
	: "${ALGO_SIZES=1000}"
else
	: "${SIZES=100 1000 2000 5000 10000}" "${FERRY_SIZES=50000 100000}" "${ROUNDS:=3}" "${SECS:=3}" \
		"${DOCS:=1}" "${PROFILE:=1}"
	CB_ITERS=300000
	COLD_REPS=3
	CHANGE_PAIRS=3
	: "${BYTE_SECS:=3}"
	# The rates' spread here is 3-4 % a round at 3 s a method (sd at
	# N = 100; 2 % with HTTP at 100 ms slices): 5 rounds, so that the
	# median tells 0.97 from 0.99.
	: "${RATE_ROUNDS:=5}"
	: "${ALGO_SIZES=1000 10000}"
fi
[ "$CONN_ONLY" = 1 ] && COLD_REPS=1
ALGORITHMS=(random round-robin maglev least-conn)
MAGLEV_ENTRIES=1412   # a table of 8 to 14 backends: 1,409 entries in 353 cells of 4
FERRY_ARGS=           # ferryd's further options (--only algorithms)
FERRY_METHOD=ferry    # control.csv's method for ferryd's cold starts
CONTROL_CSV=control.csv   # the algorithms part's cold starts: algo_control.csv
BYTE_CONC=64          # 1-byte exchanges in flight (issue 13)
COST_SECS=1           # seconds of short TCP connections per bpf_stats reading
COST_LOADS=3          # bpf_stats readings per program, workload and round, the
                      # two programs' alternating (a drift in the machine's
                      # speed over a reading falls on both)
ENDPOINTS=10
NPODS=11
NTARGETS=32
OWN_PORT=9000    # the targets' backends: the pods' ports 9000 .. 9000 + NTARGETS - 1
METHODS_ALL=(a b c1 c2 d e r)
METHODS_FERRY=(a b r)
METHODS_BYTE=(a b e r)     # the 1-byte rate comparison (no rule sets)

# --- names and state -----------------------------------------------------------

P=fyb$$
CGROOT=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
SW=$P-sw
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
[ -n "$OUT" ] || OUT=$REPO/results/$STAMP$([ "$QUICK" = 1 ] && echo -quick)
LOGS=$OUT/logs
WORK=
BPFFS=/sys/fs/bpf/$P-ferry
MIN_PIN=/sys/fs/bpf/$P-min
PROF_BPFFS=/sys/fs/bpf/$P-prof
declare -A CG=() NSOF=() ADDR=()
PIDS=()
NETNS=()
CGROUPS=()
FERRYD_PID=
FERRYD_USED=0
API_PID=
MEM_PID=
NP_PID=
MIN_ATTACHED=0
STATS_HOLDER=
T0=$SECONDS

say() { printf '[%3d:%02d] %s\n' $(((SECONDS - T0) / 60)) $(((SECONDS - T0) % 60)) "$*" | tee -a "$LOGS/run.log"; }
warn() { say "WARNING: $*" >&2; echo "$*" >>"$OUT/warnings.txt"; }
die() {
	say "FATAL: $*"
	exit 1
}

# shellcheck source=tests/stop_pid.sh
source "$REPO/tests/stop_pid.sh"
# shellcheck source=tests/wait.sh
source "$REPO/tests/wait.sh"

cleanup() {
	local pid ns cg i procs d
	set +eu
	trap - EXIT INT TERM
	[ -n "$FERRYD_PID" ] && stop_pid "$FERRYD_PID"
	for pid in "$API_PID" "$MEM_PID" "$NP_PID"; do
		[ -n "$pid" ] && kill "$pid" 2>/dev/null || continue
		# api_latency.sh's and memory.sh's own cleanups stop their processes
		# (5 s each at most).
		for ((i = 0; i < 400; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		stop_pid "$pid"
	done
	for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
	if [ "$FERRYD_USED" = 1 ]; then
		for d in "$BPFFS" "$PROF_BPFFS"; do
			[ -d "$d" ] || continue
			"$FERRYD" --cleanup --bpffs "$d" >>"$LOGS/ferryd-cleanup.log" 2>&1 ||
				echo "cleanup: ferryd --cleanup --bpffs $d failed (see $LOGS/ferryd-cleanup.log)" >&2
			[ -d "$d" ] && rmdir "$d" 2>/dev/null
		done
	fi
	if [ "$MIN_ATTACHED" = 1 ]; then
		"$MINIMAL" detach "${CG[e]}" "$MIN_PIN" >>"$LOGS/minimal.log" 2>&1 ||
			echo "cleanup: minimal.sh detach failed (see $LOGS/minimal.log)" >&2
	fi
	[ -d "$MIN_PIN" ] && { rm -f "$MIN_PIN"/* 2>/dev/null; rmdir "$MIN_PIN" 2>/dev/null; }
	for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	for cg in "${CGROUPS[@]}"; do
		[ -d "$cg" ] || continue
		# Only this run's processes ever entered these cgroups.
		for ((i = 0; i < 100; i++)); do
			mapfile -t procs <"$cg/cgroup.procs"
			[ ${#procs[@]} -gt 0 ] || break
			case $i in 0) kill "${procs[@]}" 2>/dev/null ;; 40) kill -9 "${procs[@]}" 2>/dev/null ;; esac
			sleep 0.05
		done
		rmdir "$cg" 2>/dev/null || echo "cleanup: could not remove $cg" >&2
	done
	[ -n "$WORK" ] && rm -rf "$WORK"
}

# --- preflight -------------------------------------------------------------------

[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (namespaces, cgroups, BPF)" >&2; exit 1; }
[ -n "$CGROOT" ] || { echo "run.sh: no cgroup2 mount in /proc/mounts" >&2; exit 1; }
mkdir -p "$LOGS" || exit 1
trap cleanup EXIT
trap 'exit 130' INT TERM

# memory_step: tests/bench/memory.sh into this run's folder, in the background
# so that cleanup can end it (by pid, SIGTERM: it cleans up after itself).
memory_step() {
	local args=(--out "$OUT")
	[ "$QUICK" = 1 ] && args+=(--sizes 1000)
	say "ferryd memory (tests/bench/memory.sh)"
	BUILD=$BUILD "$REPO/tests/bench/memory.sh" "${args[@]}" >>"$LOGS/run.log" 2>&1 &
	MEM_PID=$!
	wait "$MEM_PID" || warn "memory.sh failed (see $LOGS/memory.log)"
	MEM_PID=
	grep -E ' N=[0-9]+ x [0-9]+: ' "$LOGS/memory.log" 2>/dev/null | sed 's/^\[memory *[0-9]* s\] //' |
		while read -r line; do say "  $line"; done
}

# nodeport_step: tests/bench/nodeport_rate.sh into this run's folder, in the
# background so that cleanup can end it (by pid, SIGTERM: it cleans up
# after itself).
nodeport_step() {
	local args=(--out "$OUT")
	[ "$QUICK" = 1 ] && args+=(--quick)
	say "NodePort connection rate (tests/bench/nodeport_rate.sh)"
	BUILD=$BUILD "$REPO/tests/bench/nodeport_rate.sh" "${args[@]}" >>"$LOGS/run.log" 2>&1 &
	NP_PID=$!
	wait "$NP_PID" || warn "nodeport_rate.sh failed (see $LOGS/nodeport_rate/run.log)"
	NP_PID=
	[ -f "$OUT/nodeport.md" ] && while read -r line; do say "  $line"; done <"$OUT/nodeport.md"
}

# xdp_step: build/bench/xdp_ns (tests/bench/xdp_ns.c) in a namespace of
# this run: the ingress device (a veth) holds the node addresses 192.0.2.1
# and 2001:db8::1, and the backends' ranges 198.18.0.0/16 and
# 2001:db8:2::/64 are routed through a permanent neighbour on it, so the FIB
# answers as on a node whose backends are on another node.
xdp_step() {
	local ns=$P-xdp args=()
	[ "$QUICK" = 1 ] && args+=(--calls 5000 --rounds 3 --repeat 100000)
	say "XDP ns per packet (tests/bench/xdp_ns.c, BPF_PROG_TEST_RUN)"
	xdp_ns_up "$ns" || return 0
	if ! timeout -k 5 600 ip netns exec "$ns" "$BENCH/xdp_ns" --obj "$BUILD/bpf/nodeport_xdp.bpf.o" \
		--dev xb0 --md "$OUT/xdp.md" "${args[@]}" >"$OUT/xdp.csv" 2>>"$LOGS/xdp.log"; then
		warn "xdp_ns failed (see $LOGS/xdp.log)"
		return 0
	fi
	[ -f "$OUT/xdp.md" ] && while read -r line; do say "  $line"; done <"$OUT/xdp.md"
}

# xdp_ns_up NS: xdp_step's namespace (above), or a warning and 1.
xdp_ns_up() {
	local ns=$1
	if [ ! -x "$BENCH/xdp_ns" ] || [ ! -f "$BUILD/bpf/nodeport_xdp.bpf.o" ]; then
		warn "$BENCH/xdp_ns or $BUILD/bpf/nodeport_xdp.bpf.o missing: make bench-tools"
		return 1
	fi
	ip netns add "$ns" || { warn "ip netns add $ns failed"; return 1; }
	NETNS+=("$ns")
	if ! { ip -n "$ns" link set lo up && ip -n "$ns" link add xb0 type veth peer name xb1 &&
		ip -n "$ns" link set xb0 up && ip -n "$ns" link set xb1 up &&
		ip -n "$ns" addr add 192.0.2.1/24 dev xb0 &&
		ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.forwarding=1 net.ipv4.conf.xb0.forwarding=1 &&
		ip -n "$ns" neigh add 192.0.2.254 lladdr 02:00:00:00:00:fe dev xb0 nud permanent &&
		ip -n "$ns" route add 198.18.0.0/16 via 192.0.2.254 dev xb0 &&
		ip -n "$ns" addr add 2001:db8::1/64 dev xb0 nodad &&
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.forwarding=1 &&
		ip -n "$ns" neigh add 2001:db8::fe lladdr 02:00:00:00:00:fe dev xb0 nud permanent &&
		ip -n "$ns" route add 2001:db8:2::/64 via 2001:db8::fe dev xb0; } >>"$LOGS/xdp.log" 2>&1; then
		warn "the XDP bench namespace could not be set up (see $LOGS/xdp.log)"
		return 1
	fi
}

case $ONLY in
'') ;;
xdp)
	xdp_step
	say "done in $((SECONDS - T0)) s: $OUT"
	exit 0
	;;
nodeport)
	nodeport_step
	say "done in $((SECONDS - T0)) s: $OUT"
	exit 0
	;;
memory)
	memory_step
	"$PYTHON" "$REPORT" "$OUT" --no-docs || warn "report.py failed"
	say "done in $((SECONDS - T0)) s: $OUT"
	exit 0
	;;
connect | cost | rate | algorithms) ;; # the main path below, cut down
*) die "--only: connect, cost, rate, algorithms, memory, nodeport and xdp are the steps that run alone" ;;
esac
WORK=$(mktemp -d "/tmp/$P.XXXXXX")

for f in "$FERRYD" "$FERRYCTL" "$BENCH/httpd" "$BENCH/loadgen" "$BENCH/connect_bench"; do
	[ -x "$f" ] || die "$f missing: make bench-tools"
done
for f in "$MINIMAL" "$RULES" "$REPORT" "$GEN"; do
	[ -e "$f" ] || die "$f missing"
done
for c in iptables-legacy-restore iptables-nft-restore nft bpftool gnuplot nsenter timeout; do
	command -v "$c" >/dev/null || die "$c not found (scripts/install-deps.sh)"
done
if [ -n "$FERRY_SIZES" ]; then
	avail_kb=$(awk '$1 == "MemAvailable:" {print $2}' /proc/meminfo)
	if [ "${avail_kb:-0}" -lt $((4 * 1024 * 1024)) ]; then
		warn "only $((avail_kb / 1024)) MB available; skipping N = $FERRY_SIZES (needs 4 GB)"
		FERRY_SIZES=
	fi
fi

# A helper in Python: the generator, the pinned ferry_state map (the reader
# tests/lib.sh defines), one-change timing, JSON digests.
cat >"$WORK/bench.py" <<'PY'
import ipaddress, json, os, random, re, runpy, sys, time

REPO = os.environ["REPO"]
src = open(os.path.join(REPO, "tests/lib.sh")).read()
m = re.search(r"^FERRY_STATE_PY='\n(.*?)^'$", src, re.S | re.M)
if not m:
    sys.exit("bench.py: FERRY_STATE_PY not found in tests/lib.sh")
exec(m.group(1))
GENPY = os.path.join(REPO, "scripts/gen-cluster.py")


def gen(k, base, argv):
    """gen-cluster.py ARGS (N first), byte for byte but for the k target
    services (own_ports)."""
    g = runpy.run_path(GENPY)
    a = g["parse_args"](argv)
    obj = g["cluster"](a.services, a.endpoints, a.pods)
    sys.stdout.write(json.dumps(own_ports(obj, a.services, k, base)))


def own_ports(obj, n, k, base):
    """The k target services' endpoints: the same pods, on a port of each
    service's own (base + its position), so no other service shares their
    backends, as in a cluster where a pod backs one Service."""
    items = obj["items"]
    for pos, i in enumerate(targets(n, k)[1]):
        svc, sl = items[i], items[n + i]
        if sl["metadata"]["labels"]["kubernetes.io/service-name"] != svc["metadata"]["name"]:
            sys.exit("bench.py: gen-cluster.py's item order changed")
        svc["spec"]["ports"][0]["targetPort"] = base + pos
        sl["ports"][0]["port"] = base + pos
    return obj


def floors(state, k):
    """The floors' targets: the k target services' own backends (pod:port),
    service after service as loadgen's round-robin over their ClusterIPs
    takes them. Line 1, (a): each service's endpoints in turn; line 2, (r):
    4,096 picks, each a random endpoint of its service."""
    obj = json.load(open(state))
    n = len(obj["items"]) // 2
    per = []
    for i in targets(n, k)[1]:
        sl = obj["items"][n + i]
        per.append(["%s:%d" % (e["addresses"][0], sl["ports"][0]["port"])
                    for e in sl["endpoints"]])
    width = max(len(p) for p in per)
    print(" ".join(p[j % len(p)] for j in range(width) for p in per))
    rnd = random.Random(7)
    print(" ".join(rnd.choice(per[j % len(per)]) for j in range(4096)))


def targets(n, k):
    """k services spread evenly from the first to the last: their ClusterIPs."""
    g = runpy.run_path(GENPY)
    k = min(k, n)
    idx = sorted({round(j * (n - 1) / max(k - 1, 1)) for j in range(k)})
    return [str(g["SVC_NET"][i + 1]) for i in idx], idx


def wait_first(pin, seconds, start_ns, alive):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive():
            return "exited"
        if os.path.exists(pin):
            st = StateMap(pin)
            while time.monotonic() < deadline:
                if st.generation() >= 1:
                    return "%.3f" % ((st.applied_ns() - start_ns) / 1e6)
                time.sleep(0.002)
        time.sleep(0.002)
    return "timeout"


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def cold_start(pin, seconds, log, argv):
    """Start argv (ferryd) and time it to its first published generation.
    This process starts it once its own start-up (a Python interpreter and
    its imports, about 0.1 s of a core) is over, so that none of it competes
    with ferryd's. Prints: ms (or why not) and ferryd's pid, which outlives
    this process."""
    import subprocess
    with open(log, "ab") as out:
        start_ns = time.time_ns()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    print(wait_first(pin, seconds, start_ns, lambda: p.poll() is None), p.pid)


def changes(pin, path, tmp, n, m, pods, pairs, timeout, k):
    """pairs x (replace endpoint m-1 of one service by the pod it lacks,
    put it back), services spread over the list, none of the k targets;
    each rename timed to ferryd's next publish. Prints: index service kind
    publish_ms g0 g1."""
    g = runpy.run_path(GENPY)
    st = StateMap(pin)
    with open(path, "rb") as f:
        data = f.read()
    tset = set(targets(n, k)[1])
    svcs = [next(x for x in range(round((j + 0.5) * (n - 1) / pairs), n) if x not in tset)
            for j in range(pairs)]
    k = 0
    for i in svcs:
        orig = g["slice_"](i, m, pods)
        have = {e["addresses"][0] for e in orig["endpoints"]}
        spare = next(str(g["POD_NET"][1 + p]) for p in range(pods) if str(g["POD_NET"][1 + p]) not in have)
        repl = json.loads(json.dumps(orig))
        repl["endpoints"][m - 1]["addresses"] = [spare]
        a, b = json.dumps(orig).encode(), json.dumps(repl).encode()
        for kind, before, after in (("replace", a, b), ("restore", b, a)):
            k += 1
            if data.count(before) != 1:
                print(k, i, kind, "slice-not-found", 0, 0, flush=True)
                return 1
            data = data.replace(before, after)
            with open(tmp, "wb") as f:
                f.write(data)
            g0, t_pub = st.generation(), st.applied_ns()
            time.sleep(0.05)      # the write's own events settle first
            t0 = time.monotonic()
            os.rename(tmp, path)
            while st.applied_ns() == t_pub:
                if time.monotonic() - t0 > timeout:
                    print(k, i, kind, "timeout", g0, st.generation(), flush=True)
                    return 1
                time.sleep(0.0005)
            ms = (time.monotonic() - t0) * 1000
            print(k, i, kind, "%.3f" % ms, g0, st.generation(), flush=True)
            time.sleep(0.05)
    return 0


def probe(vip, port, target_port, pods):
    """A UDP Service for the connect() benchmark (the generated states have
    TCP ports only, and a socket LB refuses UDP to a TCP-only service)."""
    g = runpy.run_path(GENPY)
    eps = [{"addresses": [str(g["POD_NET"][1 + p])], "conditions": {"ready": True},
            "nodeName": "node-a"} for p in range(pods)]
    items = [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "connect-probe", "namespace": "bench"},
         "spec": {"type": "ClusterIP", "clusterIP": vip, "clusterIPs": [vip],
                  "ports": [{"name": "dns", "port": port, "protocol": "UDP",
                             "targetPort": target_port}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "connect-probe-1", "namespace": "bench",
                      "labels": {"kubernetes.io/service-name": "connect-probe"}},
         "addressType": "IPv4",
         "ports": [{"name": "dns", "port": target_port, "protocol": "UDP"}],
         "endpoints": eps},
    ]
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout)


def status(path):
    j = json.load(open(path))
    a = j.get("agent", {})
    mem = {mp["name"]: mp.get("memory_bytes", 0) for mp in j.get("maps", [])}
    ent = {mp["name"]: mp.get("entries", "") for mp in j.get("maps", [])}
    print(a.get("ferryd_rss_kb", ""), a.get("ferryd_peak_rss_kb", ""), a.get("services", ""),
          a.get("backends", ""), a.get("map_full_errors", ""),
          mem.get("ferry_services4", 0) + mem.get("ferry_services6", 0),
          mem.get("ferry_slots", 0), mem.get("ferry_backends", 0), sum(mem.values()),
          services_entries(ent), ent.get("ferry_slots", ""), ent.get("ferry_backends", ""))


def services_entries(ent):
    """Both frontend maps' entries, or "" when not counted."""
    counted = [ent[m] for m in ("ferry_services4", "ferry_services6") if ent.get(m, "") != ""]
    return sum(counted) if counted else ""


def algomem(status_path, list_path):
    """ferryd's RSS and peak (kB), ferry_maglev's kernel memory (bytes) and
    cells, and the Maglev entries its services use (maglev_table_size per
    service port, from `ferryctl service list -o json`; - without a list)."""
    j = json.load(open(status_path))
    a = j.get("agent", {})
    mg = next((m for m in j.get("maps", []) if m.get("name") == "ferry_maglev"), {})
    used, ports = "-", "-"
    if list_path != "-":
        sizes = {}
        todo = [json.load(open(list_path))]
        while todo:
            o = todo.pop()
            if isinstance(o, list):
                todo.extend(o)
            elif isinstance(o, dict):
                if "maglev_table_size" in o:
                    sizes[o.get("id")] = o["maglev_table_size"]
                todo.extend(v for v in o.values() if isinstance(v, (list, dict)))
        used, ports = sum(sizes.values()), len(sizes)
    print(a.get("ferryd_rss_kb", ""), a.get("ferryd_peak_rss_kb", ""), mg.get("memory_bytes", ""),
          mg.get("max_entries", ""), used, ports)


def genline(log, gen):
    """ferryd's line for generation GEN: writes sync_ms source_to_maps_ms."""
    pat = re.compile(r"generation %d: (\d+) service ports desired, (\d+) map writes; "
                     r"sync ([0-9.]+) ms, source to maps ([0-9.]+) ms" % gen)
    out = None
    for line in open(log, errors="replace"):
        mm = pat.search(line)
        if mm:
            out = mm
    if not out:
        return "- - -"
    return "%s %s %s" % (out.group(2), out.group(3), out.group(4))


def progstats(cg_json, attach):
    """The id of the program attached as ATTACH in `bpftool cgroup show -j`."""
    for p in json.loads(cg_json or "[]"):
        if p.get("attach_type") == attach:
            return p["id"]
    return ""


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "gen":
        gen(int(args[0]), int(args[1]), args[2:])
    elif cmd == "floors":
        floors(args[0], int(args[1]))
    elif cmd == "targets":
        vips, idx = targets(int(args[0]), int(args[1]))
        print(" ".join(vips))
        print(" ".join(map(str, idx)))
    elif cmd == "wait-first":
        print(wait_first(args[0], float(args[1]), int(args[2]),
                         lambda: pid_alive(int(args[3]))))
    elif cmd == "cold-start":
        cold_start(args[0], float(args[1]), args[2], args[3:])
    elif cmd == "changes":
        sys.exit(changes(args[0], args[1], args[2], int(args[3]), int(args[4]), int(args[5]),
                         int(args[6]), float(args[7]), int(args[8])))
    elif cmd == "probe":
        probe(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif cmd == "status":
        status(args[0])
    elif cmd == "algomem":
        algomem(args[0], args[1])
    elif cmd == "genline":
        print(genline(args[0], int(args[1])))
    elif cmd == "progid":
        print(progstats(sys.stdin.read(), args[0]))
    elif cmd == "progrun":
        j = json.load(sys.stdin)
        print(j.get("run_cnt", 0), j.get("run_time_ns", 0), j.get("bytes_xlated", 0),
              j.get("bytes_jited", 0), j.get("name", "?"))
PY
B() { REPO=$REPO "$PYTHON" "$WORK/bench.py" "$@"; }

# --- machine and configuration -------------------------------------------------

# source_version: the checked-out branch and commit, read from .git (no git
# command: the working tree may hold uncommitted changes, which this does not
# show). In a worktree .git is a file naming its folder, whose commondir
# holds the refs.
source_version() {
	local git=$REPO/.git common head ref commit=
	[ -f "$git" ] && git=$(sed -n 's/^gitdir: //p' "$git")
	common=$git
	[ -f "$git/commondir" ] && common=$(cd "$git" && cd "$(cat commondir)" && pwd)
	head=$(cat "$git/HEAD" 2>/dev/null) || { echo unknown; return; }
	ref=${head#ref: }
	if [ "$ref" != "$head" ]; then
		[ -f "$common/$ref" ] && commit=$(cut -c1-12 "$common/$ref")
		[ -n "$commit" ] || commit=$(awk -v r="$ref" '$2 == r {print substr($1, 1, 12)}' "$common/packed-refs" 2>/dev/null)
		echo "${ref#refs/heads/} ${commit:-?}"
	else
		echo "${head:0:12}"
	fi
}

describe_machine() {
	local f=$OUT/machine.txt
	{
		echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "kernel: $(uname -r) ($(uname -m))"
		echo "cpu: $(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
		echo "cores: $(nproc)"
		echo "hypervisor: $(lscpu 2>/dev/null | awk -F': *' '/^Hypervisor vendor/ {print $2}')"
		echo "memory: $(awk '$1 == "MemTotal:" {printf "%.1f GB", $2 / 1048576}' /proc/meminfo)"
		echo "os: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
		echo "clang: $(clang --version 2>/dev/null | head -n 1)"
		echo "gcc: $(gcc --version 2>/dev/null | head -n 1)"
		echo "libbpf: $(dpkg-query -W -f='${Version}' libbpf-dev 2>/dev/null || pkg-config --modversion libbpf)"
		echo "bpftool: $(bpftool version 2>/dev/null | head -n 1)"
		echo "iptables: $(iptables-legacy --version 2>/dev/null) / $(iptables-nft --version 2>/dev/null)"
		echo "nftables: $(nft --version 2>/dev/null)"
		echo "python: $(python3 --version 2>&1)"
		echo "ferry: $(source_version)"
	} >"$f"
	{
		echo "mode: $([ "$QUICK" = 1 ] && echo quick || echo full)"
		echo "sizes: $SIZES"
		echo "ferry_sizes: $FERRY_SIZES"
		echo "algorithm_sizes: $([ "$ALGOS" = 1 ] && echo "$ALGO_SIZES")"
		echo "rounds: $ROUNDS"
		echo "rate_rounds: $RATE_ROUNDS"
		if [ "$SLICE_MS" -gt 0 ]; then
			echo "loadgen: -c $CONC -t $SECS -s $SLICE_MS (interleaved in $SLICE_MS ms slices)"
		else
			echo "loadgen: -c $CONC -n 100000000 -t $SECS (time-bound runs)"
		fi
		echo "slice_ms: $SLICE_MS"
		echo "targets: $NTARGETS ClusterIPs spread over the service list, port 80; (a) and (r): those services' own backends (pod IP, port $OWN_PORT + k)"
		echo "endpoints: $ENDPOINTS per service, $NPODS pods (gen-cluster.py N $ENDPOINTS --pods $NPODS)"
		echo "connect_bench: -n $CB_ITERS"
		if [ "$SLICE_MS" -gt 0 ]; then
			echo "loadgen_byte: -1 -c $BYTE_CONC -t $BYTE_SECS -s $SLICE_MS (interleaved in $SLICE_MS ms slices)"
		else
			echo "loadgen_byte: -1 -c $BYTE_CONC -n 100000000 -t $BYTE_SECS (time-bound runs)"
		fi
		echo "connect_cost: loadgen -1 -c $BYTE_CONC -t $COST_SECS and connect_bench -n $CB_ITERS, $COST_LOADS loads each in turn, $ROUNDS rounds"
		echo "only: ${ONLY:-all}"
		echo "change_pairs: $CHANGE_PAIRS"
		echo "cold_reps: $COLD_REPS"
	} >"$OUT/config.txt"
}

# --- topology ------------------------------------------------------------------

in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }

# run_in METHOD CMD...: CMD in METHOD's cgroup and netns.
RUN_IN_SH='echo $$ >"$0/cgroup.procs" && exec nsenter --net="/run/netns/$1" "${@:2}"'
run_in() { local m=$1; shift; bash -c "$RUN_IN_SH" "${CG[$m]}" "${NSOF[$m]}" "$@"; }

add_ns() { ip netns add "$1" && NETNS+=("$1"); }

# attach_ns NS IFNAME ADDR/LEN: a veth from the switch's br0 into NS (eth0).
attach_ns() {
	local ns=$1 ifn=$2 addr=$3
	ip -n "$SW" link add "$ifn" type veth peer name eth0 netns "$ns" &&
		ip -n "$SW" link set "$ifn" master br0 up &&
		ip -n "$ns" link set lo up &&
		ip -n "$ns" addr add "$addr" dev eth0 &&
		ip -n "$ns" link set eth0 up
}

pod_ip() { echo "198.18.0.$1"; }

topology_up() {
	local i m ns
	add_ns "$SW" || die "ip netns add $SW"
	ip -n "$SW" link set lo up && ip -n "$SW" link add br0 type bridge &&
		ip -n "$SW" link set br0 up || die "bridge in $SW"
	# A plain switch: when br_netfilter is loaded, bridged frames would go
	# through the IP hooks (of this namespace, which has no rules) for every
	# method alike; that is not part of any of them.
	ip -n "$SW" link set br0 type bridge nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0 2>/dev/null
	in_ns "$SW" sysctl -q -w net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 \
		net.bridge.bridge-nf-call-arptables=0 >/dev/null 2>&1
	for ((i = 1; i <= NPODS; i++)); do
		ns=$P-p$i
		add_ns "$ns" && attach_ns "$ns" "p$i" "$(pod_ip "$i")/15" || die "pod namespace $ns"
		in_ns "$ns" sysctl -q -w net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096 >/dev/null
		# nsenter execs httpd: $! is the server itself (a function would leave
		# a subshell in between, and the server orphaned when it is killed).
		nsenter --net="/run/netns/$ns" "$BENCH/httpd" -p 8080 -p $OWN_PORT-$((OWN_PORT + NTARGETS - 1)) \
			-n "pod-$i" >>"$LOGS/httpd.log" 2>&1 &
		PIDS+=($!)
	done
	i=0
	for m in "${METHODS_ALL[@]}"; do
		i=$((i + 1))
		ns=$P-$m
		NSOF[$m]=$ns
		ADDR[$m]=198.19.1.$i
		add_ns "$ns" && attach_ns "$ns" "c$m" "${ADDR[$m]}/15" || die "client namespace $ns"
		in_ns "$ns" sysctl -q -w net.ipv4.ip_local_port_range="1024 65535" >/dev/null
		CG[$m]=$CGROOT/$P-$m
		mkdir "${CG[$m]}" || die "mkdir ${CG[$m]}"
		CGROUPS+=("${CG[$m]}")
	done
	# iptables and nftables translate after the route lookup: the service
	# range needs a route (on the bridge) in their namespaces. The socket LBs
	# translate before it; their namespaces have none, so an untranslated
	# connect fails at once (ENETUNREACH) instead of waiting on ARP.
	for m in c1 c2 d; do
		ip -n "${NSOF[$m]}" route add 10.96.0.0/12 dev eth0 || die "route in ${NSOF[$m]}"
	done
	# Their NAT keeps a conntrack entry per connection, 120 s in TIME_WAIT by
	# default: at the rates here the table (nf_conntrack_max, per namespace;
	# its hash buckets shared by all) fills over two N and drops SYNs. 60 s,
	# the servers' own TIME_WAIT, halves that and still lets NAT see every
	# tuple a server holds in TIME_WAIT (shorter, a reused source port through
	# another ClusterIP meets the server's TIME_WAIT with an unrelated ISN,
	# and the SYN waits a second for its retransmission).
	for m in c1 c2 d; do
		in_ns "${NSOF[$m]}" sysctl -q -w net.netfilter.nf_conntrack_tcp_timeout_time_wait=60 >/dev/null ||
			warn "cannot set conntrack's TIME_WAIT in ${NSOF[$m]}"
	done
	# Every pod listening?
	for ((i = 1; i <= NPODS; i++)); do
		local ok=0 t
		for ((t = 0; t < 100; t++)); do
			if [ "$(in_ns "$P-p$i" ss -Htln 2>/dev/null | wc -l)" = $((NTARGETS + 1)) ]; then ok=1; break; fi
			sleep 0.05
		done
		[ $ok = 1 ] || die "httpd in $P-p$i does not listen (see $LOGS/httpd.log)"
	done
}

# --- methods: loading states ---------------------------------------------------

# now_ns, ms_since NS
now_ns() { date +%s%N; }
ms_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN {printf "%.3f", (b - a) / 1e6}'; }

# control N METHOD WHAT MS
control() { echo "$1,$2,$3,$4" >>"$OUT/$CONTROL_CSV"; }

# ferry_limits N: the defaults, or room for N services (and the probe).
ferry_limits() {
	local n=$(($1 + 16)) s=65536 b=262144
	[ "$n" -gt $s ] && s=$n
	[ $((n * ENDPOINTS)) -gt $b ] && b=$((n * ENDPOINTS))
	echo "--max-services $s --max-backends $b"
}

# ferry_cold N: ferryd from cold (nothing pinned) on the source folder;
# records the time from its start to the first published generation and
# its own sync figures.
ferry_cold() {
	local n=$1 out lim w s t
	lim=$(ferry_limits "$n")
	FERRYD_USED=1
	echo "=== cold start, $(date -u +%H:%M:%S)" >>"$FERRY_LOG"
	# shellcheck disable=SC2086
	read -r out FERRYD_PID <<<"$(B cold-start "$BPFFS/ferry_state" 120 "$FERRY_LOG" \
		"$FERRYD" --source "file:$FERRY_SRC" --cgroup "${CG[b]}" --bpffs "$BPFFS" \
		--node-name node-a --metrics-addr "" --health-addr "" $lim $FERRY_ARGS)"
	if ! [[ $out =~ ^[0-9.]+$ ]]; then
		warn "N=$n: ferryd did not publish its first generation: $out; $(tail -n 2 "$FERRY_LOG" | tr '\n' ' ')"
		return 1
	fi
	control "$n" "$FERRY_METHOD" cold_start_to_published_ms "$out"
	read -r w s t <<<"$(B genline "$FERRY_LOG" 1)"
	control "$n" "$FERRY_METHOD" cold_sync_ms "$s"
	control "$n" "$FERRY_METHOD" cold_source_to_maps_ms "$t"
	control "$n" "$FERRY_METHOD" cold_map_writes "$w"
	say "  ferry: published in $out ms (ferryd: source to maps $t ms, sync $s ms, $w map writes)"
}

# ferry_down: stop ferryd and remove its datapath (detach, unpin).
ferry_down() {
	[ -n "$FERRYD_PID" ] && stop_pid "$FERRYD_PID"
	FERRYD_PID=
	"$FERRYD" --cleanup --bpffs "$BPFFS" >>"$LOGS/ferryd-cleanup.log" 2>&1 ||
		warn "ferryd --cleanup --bpffs $BPFFS failed"
}

# ferry_start N: the source folder (the state as generated, and the UDP
# probe), then COLD_REPS cold starts (all timed); the last one stays up.
ferry_start() {
	local n=$1 k
	FERRY_SRC=$WORK/ferry-$n
	FERRY_LOG=$LOGS/ferryd-$n.log
	mkdir -p "$FERRY_SRC" && cp "$WORK/probe.json" "$FERRY_SRC/probe.json" &&
		{ ln -f "$WORK/state-$n.json" "$FERRY_SRC/state.json" 2>/dev/null ||
			cp "$WORK/state-$n.json" "$FERRY_SRC/state.json"; } || return 1
	for ((k = 1; k <= COLD_REPS; k++)); do
		ferry_cold "$n" || return 1
		[ $k = "$COLD_REPS" ] || ferry_down
	done
}

ferry_stop() {
	ferry_down
	rm -rf "$WORK"/ferry-[0-9]* "$WORK/change.tmp"
}

# timed_load N METHOD WHAT CMD... < FILE: run CMD bounded, record its time.
timed_load() {
	local n=$1 m=$2 what=$3 start ms rc
	shift 3
	start=$(now_ns)
	timeout -k 5 600 "$@" >>"$LOGS/load-$m.log" 2>&1
	rc=$?
	ms=$(ms_since "$start")
	if [ $rc != 0 ]; then
		warn "N=$n: $what failed (exit $rc), see $LOGS/load-$m.log"
		return 1
	fi
	control "$n" "$m" "$what" "$ms"
	echo "$ms"
}

rules_unload() {
	printf '*nat\nCOMMIT\n' | timeout -k 5 300 nsenter --net="/run/netns/${NSOF[c1]}" iptables-legacy-restore
	printf '*nat\nCOMMIT\n' | timeout -k 5 300 nsenter --net="/run/netns/${NSOF[c2]}" iptables-nft-restore
	# iptables-nft-restore leaves the table ip nat it made: drop it too.
	timeout -k 5 300 nsenter --net="/run/netns/${NSOF[c2]}" nft flush ruleset
	timeout -k 5 300 nsenter --net="/run/netns/${NSOF[d]}" nft flush ruleset
}

# rules_load N: kube-proxy's layouts into c1, c2 (one iptables-restore
# file, two backends) and d (nft), each from empty.
rules_load() {
	local n=$1 state ms1 ms2 ms3
	state=$WORK/state-$n.json
	"$PYTHON" "$RULES" iptables "$state" >"$WORK/ipt.txt" || { warn "rules.py iptables failed"; return 1; }
	"$PYTHON" "$RULES" nft "$state" >"$WORK/nft.txt" || { warn "rules.py nft failed"; return 1; }
	rules_unload >>"$LOGS/load-unload.log" 2>&1
	ms1=$(timed_load "$n" c1 iptables_legacy_restore_ms \
		nsenter --net="/run/netns/${NSOF[c1]}" iptables-legacy-restore <"$WORK/ipt.txt")
	ms2=$(timed_load "$n" c2 iptables_nft_restore_ms \
		nsenter --net="/run/netns/${NSOF[c2]}" iptables-nft-restore <"$WORK/ipt.txt")
	ms3=$(timed_load "$n" d nft_f_ms nsenter --net="/run/netns/${NSOF[d]}" nft -f "$WORK/nft.txt")
	say "  iptables-legacy-restore ${ms1:-failed} ms, iptables-nft-restore ${ms2:-failed} ms, nft -f ${ms3:-failed} ms" \
		"($(wc -l <"$WORK/ipt.txt") / $(wc -l <"$WORK/nft.txt") lines)"
	rm -f "$WORK/ipt.txt" "$WORK/nft.txt"
}

minimal_fill() {
	local n=$1 ms
	ms=$(timed_load "$n" e minimal_fill_ms "$MINIMAL" fill "$MIN_PIN" "$WORK/state-$n.json") &&
		say "  minimal: filled in $ms ms"
	"$MINIMAL" fill "$MIN_PIN" "$WORK/probe.json" >>"$LOGS/minimal.log" 2>&1 ||
		warn "N=$n: minimal.sh fill of the UDP probe failed"
}

# --- measurements ----------------------------------------------------------------

# targets_of METHOD: loadgen's targets. The floors connect to the target
# services' own backends, so that the servers do the same work as behind a
# load balancer: (a) to each service's endpoints in turn, (r) to 4,096
# random picks, which loadgen's round-robin turns into a random choice per
# connection, as a load balancer makes it (bench.py floors).
targets_of() {
	if [ "$1" = a ]; then
		echo "$FLOOR_A"
	elif [ "$1" = r ]; then
		echo "$FLOOR_R"
	else
		for i in $VIPS; do printf '%s:80 ' "$i"; done
	fi
}

# cpu_ticks: busy and all ticks of the machine (/proc/stat; busy = user,
# nice, system, irq, softirq; all adds idle, iowait and steal).
cpu_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit}' /proc/stat; }

# loadgen_run METHOD CONC TOTAL SECONDS [LOADGEN OPTIONS...]: one loadgen
# line (or "").
loadgen_run() {
	local m=$1
	# shellcheck disable=SC2046
	timeout -k 5 $(($4 + 60)) bash -c "$RUN_IN_SH" "${CG[$m]}" "${NSOF[$m]}" \
		"$BENCH/loadgen" "${@:5}" -c "$2" -n "$3" -t "$4" $(targets_of "$m") 2>>"$LOGS/loadgen.log" | tail -n 1
}

kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2" | head -n 1; }

# check_methods N METHODS...: a short run through each, HTTP and 1-byte;
# all connections must succeed (catches a method that does not translate).
check_methods() {
	local n=$1 m out out1
	shift
	for m in "$@"; do
		out=$(loadgen_run "$m" 8 400 10)
		out1=$(loadgen_run "$m" 8 400 10 -1)
		if [ "$(kv conns "$out")" != 400 ] || [ "$(kv errors "$out")" != 0 ] ||
			[ "$(kv conns "$out1")" != 400 ] || [ "$(kv errors "$out1")" != 0 ]; then
			warn "N=$n: method $m check failed: HTTP '${out:-no output}', 1-byte '${out1:-no output}'"
			echo "$n,$m,fail" >>"$OUT/checks.csv"
		else
			echo "$n,$m,ok" >>"$OUT/checks.csv"
		fi
	done
}

# traffic N KIND METHODS...: RATE_ROUNDS rounds, the methods interleaved.
# KIND http: loadgen -c CONC, SECS a method and round, into traffic.csv;
# byte: loadgen -1 (a 1-byte request and answer) -c BYTE_CONC, BYTE_SECS,
# into traffic-byte.csv. One loadgen in slices (SLICE_MS > 0), or one run
# per method and round; either way one line per round and method.
traffic() {
	local n=$1 kind=$2 csv conc secs opt=() out
	shift 2
	case $kind in
	http) csv=$OUT/traffic.csv conc=$CONC secs=$SECS ;;
	byte) csv=$OUT/traffic-byte.csv conc=$BYTE_CONC secs=$BYTE_SECS opt=(-1) ;;
	esac
	if [ "$SLICE_MS" -gt 0 ]; then
		out=$(traffic_sliced "$conc" "$secs" "${opt[@]}" -- "$@")
	else
		out=$(traffic_runs "$conc" "$secs" "${opt[@]}" -- "$@")
	fi
	traffic_record "$n" "$kind" "$csv" "$out" "$@"
	traffic_conntrack "$n" "$@"
}

# rate_word METHOD LINE: "m=rate", and its errors.
rate_word() {
	printf ' %s=%.0f' "$1" "$(kv rate "$2")"
	[ "$(kv errors "$2")" = 0 ] || printf '(err %s)' "$(kv errors "$2")"
}

# traffic_record N KIND CSV LINES METHODS...: loadgen's "round=R method=M
# ..." lines as rows of CSV (traffic.csv's shape, the CPU ticks last), and
# a line a round on the console.
traffic_record() {
	local n=$1 kind=$2 csv=$3 out=$4 r m l line
	shift 4
	for ((r = 1; r <= RATE_ROUNDS; r++)); do
		line=
		for m in "$@"; do
			l=$(grep "^round=$r method=$m " <<<"$out")
			if [ -z "$l" ]; then
				warn "N=$n round $r method $m ($kind): loadgen printed nothing"
				continue
			fi
			echo "$n,$r,$m,$(kv conns "$l"),$(kv errors "$l"),$(kv seconds "$l"),$(kv rate "$l"),$(kv p50_us "$l"),$(kv p99_us "$l"),$(kv busy_ticks "$l"),$(kv all_ticks "$l")" >>"$csv"
			line+=$(rate_word "$m" "$l")
		done
		say "  round $r conn/s ($kind):$line"
	done
}

# traffic_sliced CONC SECS [-1] -- METHODS...: one loadgen for all rounds;
# it moves itself into each method's cgroup and netns in turn.
traffic_sliced() {
	local conc=$1 secs=$2 opt=() args=() m limit
	shift 2
	while [ "$1" != -- ]; do opt+=("$1"); shift; done
	shift
	for m in "$@"; do
		# shellcheck disable=SC2207
		args+=("@$m" "/run/netns/${NSOF[$m]}" "${CG[$m]}" $(targets_of "$m"))
	done
	limit=$((RATE_ROUNDS * $# * (secs + 3) + 60))
	timeout -k 5 "$limit" "$BENCH/loadgen" "${opt[@]}" -c "$conc" -t "$secs" \
		-s "$SLICE_MS" -r "$RATE_ROUNDS" "${args[@]}" 2>>"$LOGS/loadgen.log"
}

# traffic_runs CONC SECS [-1] -- METHODS...: a loadgen run per method and
# round, in turn (--slice 0), printed as the sliced loadgen prints them.
traffic_runs() {
	local conc=$1 secs=$2 opt=() r m out b0 a0 b1 a1
	shift 2
	while [ "$1" != -- ]; do opt+=("$1"); shift; done
	shift
	for ((r = 1; r <= RATE_ROUNDS; r++)); do
		for m in "$@"; do
			read -r b0 a0 <<<"$(cpu_ticks)"
			out=$(loadgen_run "$m" "$conc" 100000000 "$secs" "${opt[@]}")
			read -r b1 a1 <<<"$(cpu_ticks)"
			[ -n "$out" ] && echo "round=$r method=$m $out busy_ticks=$((b1 - b0)) all_ticks=$((a1 - a0))"
		done
	done
}

# traffic_conntrack N METHODS...: conntrack entries left in the
# iptables/nftables clients (TIME_WAIT lasts 120 s; a full table would drop
# SYNs).
traffic_conntrack() {
	local n=$1 m c mx
	shift
	for m in c1 c2 d; do
		[[ " $* " == *" $m "* ]] || continue
		c=$(in_ns "${NSOF[$m]}" cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null)
		mx=$(cat /proc/sys/net/netfilter/nf_conntrack_max 2>/dev/null)
		echo "N=$n $m conntrack ${c:-?} of ${mx:-?}" >>"$LOGS/conntrack.log"
		[ -n "$c" ] && [ -n "$mx" ] && [ "$c" -gt $((mx * 8 / 10)) ] &&
			warn "N=$n: conntrack in $m holds $c entries of $mx"
	done
}

# connect_overhead N PROGRAMS...: connect_bench R rounds, interleaved.
# none = client a's cgroup (nothing attached) to a pod IP; minimal and ferry
# = e's and b's cgroups to the probe's ClusterIP. The generated services are
# TCP only (and a UDP connect() to a TCP-only service is refused), so ferry's
# source also holds one UDP Service, the probe, with the same 10 pods, and the
# minimal program gets its entry too.
PROBE_VIP=10.111.255.254
PROBE_PORT=53
PROBE_TPORT=5353
connect_run() {
	local prog=$1 iters=$2
	shift 2
	case $prog in
	none) timeout -k 5 120 bash -c "$RUN_IN_SH" "${CG[a]}" "${NSOF[a]}" "$BENCH/connect_bench" "$@" -n "$iters" "$(pod_ip 1)" $PROBE_TPORT ;;
	minimal) timeout -k 5 120 bash -c "$RUN_IN_SH" "${CG[e]}" "${NSOF[e]}" "$BENCH/connect_bench" "$@" -n "$iters" $PROBE_VIP $PROBE_PORT ;;
	ferry) timeout -k 5 120 bash -c "$RUN_IN_SH" "${CG[b]}" "${NSOF[b]}" "$BENCH/connect_bench" "$@" -n "$iters" $PROBE_VIP $PROBE_PORT ;;
	esac 2>>"$LOGS/connect_bench.log" | tail -n 1
}

connect_overhead() {
	local n=$1 r p out line
	shift
	for ((r = 1; r <= ROUNDS; r++)); do
		line=
		for p in "$@"; do
			out=$(connect_run "$p" "$CB_ITERS")
			if [ -z "$(kv median_ns "$out")" ]; then
				warn "N=$n connect_bench $p: '${out:-no output}'"
				continue
			fi
			echo "$n,$r,$p,$(kv median_ns "$out"),$(kv p99_ns "$out"),$(kv iters "$out")" >>"$OUT/connect.csv"
			line+=" $p=$(kv median_ns "$out")"
		done
		say "  connect() round $r median ns:$line"
	done
}

# connect_cost N: the connect4 program's own run time per call, ferry's
# against the minimal program's, with run-time stats held on (stats_hold):
# R rounds, each with, in turn, short TCP connections (loadgen -1 -c
# BYTE_CONC for COST_SECS: a new socket per connection), UDP
# with a new socket per connect() (connect_bench -s -n CB_ITERS, workload
# udp1: a resolver's query) and the UDP connect() loop (connect_bench -n
# CB_ITERS: one socket connected again and again), each COST_LOADS times
# under the minimal program (client e) and under ferry (client b) in turn.
# Only the programs this run attached are read: by the id `bpftool cgroup
# show` gives for the client's own cgroup. Rows of bpfstats.csv: the
# program's run_cnt and run_time_ns over one load generator run (load: its
# number in the round); report.py pools a round's loads.
connect_cost() {
	local n=$1 r w p m l id c0 t0 c1 t1 xl ji name ns line
	declare -A ids=() calls=() time=()
	for p in minimal ferry; do
		case $p in minimal) m=e ;; ferry) m=b ;; esac
		ids[$p]=$(bpftool cgroup show "${CG[$m]}" -j 2>/dev/null | B progid cgroup_inet4_connect)
		[ -n "${ids[$p]}" ] || { warn "N=$n: no connect4 program on ${CG[$m]}"; return 0; }
	done
	stats_hold || return 0
	for ((r = 1; r <= ROUNDS; r++)); do
		line=
		for w in tcp udp1 udp; do
			calls=([minimal]=0 [ferry]=0) time=([minimal]=0 [ferry]=0)
			for ((l = 1; l <= COST_LOADS; l++)); do
				for p in minimal ferry; do
					case $p in minimal) m=e ;; ferry) m=b ;; esac
					id=${ids[$p]}
					read -r c0 t0 _ <<<"$(bpftool prog show id "$id" -j | B progrun)"
					case $w in
					tcp) loadgen_run "$m" "$BYTE_CONC" 100000000 "$COST_SECS" -1 >/dev/null ;;
					udp1) connect_run "$p" "$CB_ITERS" -s >/dev/null ;;
					udp) connect_run "$p" "$CB_ITERS" >/dev/null ;;
					esac
					read -r c1 t1 xl ji name <<<"$(bpftool prog show id "$id" -j | B progrun)"
					[ $((c1 - c0)) -gt 0 ] || { warn "N=$n round $r: $p ($w) did not run"; continue; }
					ns=$(awk -v c=$((c1 - c0)) -v t=$((t1 - t0)) 'BEGIN {printf "%.1f", t / c}')
					echo "$n,$r,$w,$p,$name,$((c1 - c0)),$((t1 - t0)),$ns,$xl,$ji,$l" >>"$OUT/bpfstats.csv"
					calls[$p]=$((calls[$p] + c1 - c0)) time[$p]=$((time[$p] + t1 - t0))
				done
			done
			for p in minimal ferry; do
				[ "${calls[$p]}" -gt 0 ] &&
					line+=" $w/$p=$(awk -v c="${calls[$p]}" -v t="${time[$p]}" 'BEGIN {printf "%.1f", t / c}')"
			done
		done
		say "  connect4 run time (bpf_stats) round $r, ns per call ($COST_LOADS loads each):$line"
	done
	stats_release
}

# --- backend-selection algorithms (--only algorithms) ------------------------------

# algo_progs: the ids of the connect4 and the sock_release programs attached
# to b's cgroup ("-" for one not attached).
algo_progs() {
	local j c s
	j=$(bpftool cgroup show "${CG[b]}" -j 2>/dev/null)
	c=$(B progid cgroup_inet4_connect <<<"$j")
	s=$(B progid cgroup_inet_sock_release <<<"$j")
	echo "${c:--} ${s:--}"
}

# algo_cost N ROUND ALGORITHM: under the running ferryd, each program's run
# time per call over short TCP connections, then over the UDP connect()
# loop (bpf_stats on; sock_release over TCP only); rows of algo_bpfstats.csv.
algo_cost() {
	local n=$1 r=$2 alg=$3 w k id out c0 t0 c1 t1 name ns line=
	local -a ids progs=(connect4 sock_release) before
	read -r -a ids <<<"$(algo_progs)"
	[ "${ids[0]}" != - ] || { warn "N=$n $alg: no connect4 program on ${CG[b]}"; return 0; }
	for w in tcp udp; do
		before=()
		for k in 0 1; do
			before[k]=-
			[ "${ids[k]}" = - ] || before[k]=$(bpftool prog show id "${ids[k]}" -j | B progrun)
		done
		case $w in
		tcp) out=$(loadgen_run b "$BYTE_CONC" 100000000 "$COST_SECS" -1) ;;
		udp) out=$(connect_run ferry "$CB_ITERS") ;;
		esac
		for k in 0 1; do
			id=${ids[k]}
			# The UDP loop closes one socket: no sock_release figure.
			if [ "$id" = - ] || { [ $k = 1 ] && [ "$w" = udp ]; }; then continue; fi
			read -r c0 t0 _ <<<"${before[k]}"
			read -r c1 t1 _ _ name <<<"$(bpftool prog show id "$id" -j | B progrun)"
			[ $((c1 - c0)) -gt 0 ] || { [ $k = 1 ] || warn "N=$n round $r: $alg ($w) did not run"; continue; }
			ns=$(awk -v c=$((c1 - c0)) -v t=$((t1 - t0)) 'BEGIN {printf "%.1f", t / c}')
			echo "$n,$r,$w,$alg,${progs[k]},$name,$((c1 - c0)),$((t1 - t0)),$ns,$(kv conns "$out"),$(kv errors "$out")" \
				>>"$OUT/algo_bpfstats.csv"
			line+=" $w/${progs[k]}=$ns"
		done
		[ "$w" = udp ] || [ "$(kv errors "$out")" = 0 ] || warn "N=$n round $r $alg: loadgen: $out"
	done
	say "    $alg ns per call:$line"
}

# algo_memory N ROUND ALGORITHM: ferryd's RSS, ferry_maglev's kernel memory
# and, for maglev, the table entries its services use.
algo_memory() {
	local n=$1 r=$2 alg=$3 st=$WORK/status.json ls=- rss peak mb cells used ports
	timeout -k 5 120 "$FERRYCTL" --bpffs "$BPFFS" status -o json --maps >"$st" 2>>"$LOGS/ferryctl.log" ||
		{ warn "N=$n: ferryctl status failed"; return 0; }
	if [ "$alg" = maglev ]; then
		ls=$WORK/services.json
		timeout -k 5 120 "$FERRYCTL" --bpffs "$BPFFS" service list -o json >"$ls" 2>>"$LOGS/ferryctl.log" ||
			{ warn "N=$n: ferryctl service list failed"; ls=-; }
	fi
	read -r rss peak mb cells used ports <<<"$(B algomem "$st" "$ls")"
	read -r _ s _ <<<"$(B genline "$FERRY_LOG" 1)"
	echo "$n,$r,$alg,$rss,$peak,$mb,$cells,$used,$ports,$s" >>"$OUT/algo_memory.csv"
	say "    $alg: ferryd RSS $((${rss:-0} / 1024)) MB (peak $((${peak:-0} / 1024)) MB), cold sync $s ms" \
		"$([ "$used" = - ] || echo "; Maglev: $used entries in $ports tables, ferry_maglev $mb bytes")"
}

# algo_run N: R rounds; in each, ferryd cold with each algorithm in turn (the
# order rotated by one every round), measured, then removed.
algo_run() {
	local n=$1 r i k alg
	FERRY_SRC=$WORK/ferry-$n
	mkdir -p "$FERRY_SRC" && cp "$WORK/probe.json" "$FERRY_SRC/probe.json" &&
		{ ln -f "$WORK/state-$n.json" "$FERRY_SRC/state.json" 2>/dev/null ||
			cp "$WORK/state-$n.json" "$FERRY_SRC/state.json"; } || return 1
	for ((r = 1; r <= ROUNDS; r++)); do
		say "  N = $n round $r"
		for ((i = 0; i < ${#ALGORITHMS[@]}; i++)); do
			k=$(((i + r - 1) % ${#ALGORITHMS[@]}))
			alg=${ALGORITHMS[k]}
			FERRY_LOG=$LOGS/ferryd-$n-$alg.log
			FERRY_METHOD=ferry-$alg CONTROL_CSV=algo_control.csv
			# Room for every Service's table (and the probe's), whichever the algorithm.
			FERRY_ARGS="--lb-algorithm $alg --max-maglev-entries $(((n + 2) * MAGLEV_ENTRIES))"
			if ferry_cold "$n"; then
				[ "$r" = 1 ] && check_methods "$n" b
				algo_memory "$n" "$r" "$alg"
				algo_cost "$n" "$r" "$alg"
			fi
			ferry_down
		done
	done
	FERRY_ARGS='' FERRY_METHOD=ferry CONTROL_CSV=control.csv
	rm -rf "$FERRY_SRC"
}

# algo_xdp: R rounds of xdp_ns on the new-flow cases, the algorithms
# interleaved (rotated like algo_run's), in xdp_step's namespace.
algo_xdp() {
	local ns=$P-xdpa r i alg args=(--calls 20000 --rounds 1)
	[ "$QUICK" = 1 ] && args=(--calls 5000 --rounds 1)
	xdp_ns_up "$ns" || return 0
	say "XDP ns per new flow per algorithm (xdp_ns --algorithm, BPF_PROG_TEST_RUN)"
	for ((r = 1; r <= ROUNDS; r++)); do
		for ((i = 0; i < ${#ALGORITHMS[@]}; i++)); do
			alg=${ALGORITHMS[(i + r - 1) % ${#ALGORITHMS[@]}]}
			if ! timeout -k 5 600 ip netns exec "$ns" "$BENCH/xdp_ns" --obj "$BUILD/bpf/nodeport_xdp.bpf.o" \
				--dev xb0 --cases new,new-room,new-v6 --algorithm "$alg" "${args[@]}" \
				>"$WORK/xdp-algo.csv" 2>>"$LOGS/xdp.log"; then
				warn "xdp_ns --algorithm $alg failed (see $LOGS/xdp.log)"
				continue
			fi
			grep -v '^case,' "$WORK/xdp-algo.csv" | sed "s/^/$r,$alg,/" >>"$OUT/algo_xdp.csv"
		done
		say "  round $r: $(awk -F, -v r="$r" '$1 == r && $3 == "new" && $4 == "repeat 1 loop" {printf "%s=%s ", $2, $11}' \
			"$OUT/algo_xdp.csv")(ns over the empty program, median)"
	done
}

# stats_hold: run-time stats on while a process of this run holds a
# BPF_ENABLE_STATS fd (tests/bench/hold_stats.py), not by the sysctl
# kernel.bpf_stats_enabled: another run on the machine may set that back to
# 0 in the middle of ours (seen: every round after the first lost).
# stats_release ends it (stats cost every program run on the machine).
# False, with a warning, when the kernel refuses.
stats_hold() {
	rm -f "$WORK/stats-held"
	"$PYTHON" "$REPO/tests/bench/hold_stats.py" >"$WORK/stats-held" &
	STATS_HOLDER=$!
	PIDS+=("$STATS_HOLDER")
	wait_until 10 grep -q . "$WORK/stats-held"
	grep -qx held "$WORK/stats-held" && return 0
	warn "BPF_ENABLE_STATS: $(cat "$WORK/stats-held"): no run-time figures"
	stats_release
	return 1
}

stats_release() {
	[ -n "$STATS_HOLDER" ] && stop_pid "$STATS_HOLDER"
	STATS_HOLDER=
}

# algorithms_step: algo_run at each of ALGO_SIZES, then algo_xdp, with
# run-time stats held on (stats_hold).
algorithms_step() {
	local n
	echo "n,round,workload,algorithm,program,prog_name,run_cnt,run_time_ns,ns_per_run,conns,errors" \
		>"$OUT/algo_bpfstats.csv"
	echo "n,round,algorithm,rss_kb,peak_rss_kb,maglev_bytes,maglev_cells,maglev_entries_used,maglev_tables,cold_sync_ms" \
		>"$OUT/algo_memory.csv"
	echo "round,algorithm,case,method,calls,ns_mean,ns_p50,floor_mean,floor_p50,over_mean,over_p50,check" \
		>"$OUT/algo_xdp.csv"
	echo "n,method,what,value" >"$OUT/algo_control.csv"
	stats_hold || return 0
	for n in $ALGO_SIZES; do
		say "algorithms, N = $n services x $ENDPOINTS endpoints: ${ALGORITHMS[*]}, $ROUNDS rounds"
		[ -f "$WORK/state-$n.json" ] ||
			B gen $NTARGETS $OWN_PORT "$n" $ENDPOINTS --pods $NPODS >"$WORK/state-$n.json" ||
			{ warn "gen-cluster.py $n failed"; continue; }
		{ read -r VIPS; read -r TARGET_IDX; } < <(B targets "$n" $NTARGETS)
		algo_run "$n" || warn "N=$n: the source folder could not be made"
		rm -f "$WORK/state-$n.json"
	done
	algo_xdp
	stats_release
}

# ferry_changes N: one endpoint replaced and put back, CHANGE_PAIRS times.
ferry_changes() {
	local n=$1 k svc kind ms g0 g1 w s t ok=0 tot=0
	while read -r k svc kind ms g0 g1; do
		tot=$((tot + 1))
		if ! [[ $ms =~ ^[0-9.]+$ ]] || [ "$g1" -le "$g0" ]; then
			warn "N=$n change $k ($kind svc-$svc): $ms generation $g0 -> $g1"
			continue
		fi
		read -r w s t <<<"$(B genline "$FERRY_LOG" "$g1")"
		echo "$n,$k,$svc,$kind,$s,$t,$ms,$w" >>"$OUT/change.csv"
		ok=$((ok + 1))
	done < <(B changes "$BPFFS/ferry_state" "$FERRY_SRC/state.json" "$WORK/change.tmp" "$n" \
		$ENDPOINTS $NPODS "$CHANGE_PAIRS" 60 $NTARGETS)
	say "  one change: $ok of $tot applied; sync ms: $(awk -F, -v n="$n" '$1 == n {printf "%s ", $5}' "$OUT/change.csv")" \
		"; rename to publish ms: $(awk -F, -v n="$n" '$1 == n {printf "%s ", $7}' "$OUT/change.csv")"
}

# run_ms CMD...: milliseconds CMD takes, median of 11 runs (output dropped).
run_ms() {
	local t i
	for i in $(seq 11); do
		t=$(now_ns)
		"$@" >/dev/null 2>&1
		ms_since "$t"
		echo
	done | sort -n | sed -n 6p
}

# status_time N: what polling the published generation costs, `ferryctl
# status` (no entry counts) beside `bpftool map lookup` of ferry_state, and
# `ferryctl status --maps` (reads every map's entries).
status_time() {
	local n=$1 st bt mt
	st=$(run_ms "$FERRYCTL" --bpffs "$BPFFS" status -o json)
	bt=$(run_ms bpftool map lookup pinned "$BPFFS/ferry_state" key 0 0 0 0)
	mt=$(run_ms "$FERRYCTL" --bpffs "$BPFFS" status -o json --maps)
	control "$n" ferry status_ms "$st"
	control "$n" ferry bpftool_state_lookup_ms "$bt"
	control "$n" ferry status_maps_ms "$mt"
	say "  ferryctl status: $st ms (bpftool map lookup ferry_state $bt ms); with --maps $mt ms"
}

ferry_memory() {
	local n=$1 when=$2 f=$WORK/status.json
	timeout -k 5 120 "$FERRYCTL" --bpffs "$BPFFS" status -o json --maps >"$f" 2>>"$LOGS/ferryctl.log" ||
		{ warn "N=$n: ferryctl status failed"; return 1; }
	read -r rss peak svcs backs full ms ml mb mt es el eb <<<"$(B status "$f")"
	: "${rss:=0}" "${peak:=0}" "${mt:=0}"
	echo "$n,$when,$rss,$peak,$svcs,$backs,$full,$ms,$ml,$mb,$mt,$es,$el,$eb" >>"$OUT/memory.csv"
	say "  ferryd ($when): RSS $((rss / 1024)) MB, peak $((peak / 1024)) MB; maps $(awk -v b="$mt" 'BEGIN {printf "%.1f", b / 1048576}') MB" \
		"($svcs service ports, $backs backends, map_full_errors $full)"
}

# --- profiles (full mode): where ferry's time goes --------------------------------

# perf_top DATA OUT: self time by symbol (kernel, BPF programs, ferryd), top 40.
perf_top() {
	perf report -i "$1" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
		grep -E '^ +[0-9]' | sed -e 's/[[:space:]]*-[[:space:]]*-[[:space:]]*$//' -e 's/[[:space:]]\+/ /g' |
		head -n 40 >"$2"
}

# profile_connect N: perf record -e cpu-clock of connect_bench under the
# minimal program and under ferry (the JITed programs show as bpf_prog_*).
profile_connect() {
	local n=$1 p cg ns
	command -v perf >/dev/null || return 0
	mkdir -p "$OUT/profile"
	for p in minimal ferry; do
		case $p in minimal) cg=${CG[e]} ns=${NSOF[e]} ;; ferry) cg=${CG[b]} ns=${NSOF[b]} ;; esac
		timeout -k 5 120 perf record -q -e cpu-clock -F 9999 -g -o "$WORK/perf-$p.data" -- \
			bash -c "$RUN_IN_SH" "$cg" "$ns" "$BENCH/connect_bench" -n $((CB_ITERS * 4)) \
			$PROBE_VIP $PROBE_PORT >>"$LOGS/profile.log" 2>&1
		perf_top "$WORK/perf-$p.data" "$OUT/profile/connect-$p-$n.txt"
		rm -f "$WORK/perf-$p.data"
	done
	say "  profile: connect() under perf, top of ferry's: $(head -n 4 "$OUT/profile/connect-ferry-$n.txt" | awk '{printf "%s %s; ", $1, $NF}')"
}

# profile_traffic N: perf record -a -e cpu-clock during one loadgen run
# of the minimal program (e) and of ferry (b): the whole machine, since a
# connection's cost is spread over the client, softirqs, the servers and
# deferred work (RCU callbacks, workers).
profile_traffic() {
	local n=$1 m out
	command -v perf >/dev/null || return 0
	mkdir -p "$OUT/profile"
	for m in a e b; do
		# shellcheck disable=SC2046 # the targets, one word each
		out=$(timeout -k 5 $((SECS + 60)) perf record -q -a -e cpu-clock -F 1999 -g -o "$WORK/perf-$m.data" -- \
			bash -c "$RUN_IN_SH" "${CG[$m]}" "${NSOF[$m]}" "$BENCH/loadgen" -c "$CONC" -n 100000000 \
			-t "$SECS" $(targets_of "$m") 2>>"$LOGS/profile.log" | tail -n 1)
		# Every symbol, with the sample count: report.py turns shares into
		# CPU time per connection and compares the two.
		{
			echo "# $m ($(SHORT_NAME "$m")) under perf record -a -F 1999 -e cpu-clock: $out"
			perf report -i "$WORK/perf-$m.data" -n --no-children --sort symbol --stdio -g none 2>/dev/null |
				grep -E '^# Samples|^ +[0-9]' |
				sed -e 's/[[:space:]]*-[[:space:]]*-[[:space:]]*$//' -e 's/[[:space:]]\+/ /g'
		} >"$OUT/profile/traffic-$m-$n.txt"
		rm -f "$WORK/perf-$m.data"
	done
	say "  profile: loadgen under perf -a, a, e and b: $OUT/profile/traffic-{a,e,b}-$n.txt"
}
SHORT_NAME() { case $1 in a) echo no LB ;; b) echo ferry ;; c1) echo iptables-legacy ;; c2) echo iptables-nft ;; d) echo nftables ;; e) echo minimal ;; esac; }

# profile_cold N: perf record -e cpu-clock of one more cold ferryd on the
# same source, with its own pin folder and a scratch cgroup of this run.
profile_cold() {
	local n=$1 cg=$CGROOT/$P-prof pid start out i
	command -v perf >/dev/null || { warn "perf not found: no profile"; return 0; }
	mkdir "$cg" && CGROUPS+=("$cg") || return 0
	mkdir -p "$OUT/profile"
	FERRYD_USED=1
	# shellcheck disable=SC2046
	perf record -q -e cpu-clock -F 4999 -g -o "$WORK/perf-cold.data" -- \
		"$FERRYD" --source "file:$FERRY_SRC" --cgroup "$cg" --bpffs "$PROF_BPFFS" \
		--node-name node-a --metrics-addr "" --health-addr "" $(ferry_limits "$n") 2>>"$LOGS/ferryd-profile.log" &
	pid=$!
	PIDS+=("$pid")
	start=$(now_ns)
	out=$(B wait-first "$PROF_BPFFS/ferry_state" 120 "$start" "$pid")
	# perf ends its workload (SIGTERM) when it is interrupted, then writes.
	kill -INT "$pid" 2>/dev/null
	for ((i = 0; i < 200; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	stop_pid "$pid"
	"$FERRYD" --cleanup --bpffs "$PROF_BPFFS" >>"$LOGS/ferryd-profile.log" 2>&1
	rmdir "$cg" 2>/dev/null
	perf_top "$WORK/perf-cold.data" "$OUT/profile/ferryd-cold-$n.txt"
	perf report -i "$WORK/perf-cold.data" --no-children --sort dso --stdio -g none 2>/dev/null |
		grep -E '^ +[0-9]' | sed -e 's/[[:space:]]*-[[:space:]]*-[[:space:]]*$//' -e 's/[[:space:]]\+/ /g' |
		head -n 12 >"$OUT/profile/ferryd-cold-$n-dso.txt"
	rm -f "$WORK/perf-cold.data"
	say "  profile: cold ferryd at N=$n under perf ($out ms); top: $(head -n 4 "$OUT/profile/ferryd-cold-$n.txt" | awk '{printf "%s %s; ", $1, $NF}')"
}

# --- main ------------------------------------------------------------------------

describe_machine
echo "n,round,method,conns,errors,seconds,rate,p50_us,p99_us,busy_ticks,all_ticks" >"$OUT/traffic.csv"
echo "clk_tck: $(getconf CLK_TCK)" >>"$OUT/machine.txt"
echo "n,round,program,median_ns,p99_ns,iters" >"$OUT/connect.csv"
echo "n,round,workload,program,prog_name,run_cnt,run_time_ns,ns_per_run,bytes_xlated,bytes_jited,load" >"$OUT/bpfstats.csv"
echo "n,round,method,conns,errors,seconds,rate,p50_us,p99_us,busy_ticks,all_ticks" >"$OUT/traffic-byte.csv"
echo "n,method,what,value" >"$OUT/control.csv"
echo "n,index,service,kind,sync_ms,source_to_maps_ms,publish_ms,map_writes" >"$OUT/change.csv"
echo "n,when,rss_kb,peak_rss_kb,service_ports,backends,map_full_errors,services_bytes,slots_bytes,backends_bytes,maps_total_bytes,services_entries,slots_entries,backends_entries" >"$OUT/memory.csv"
echo "n,method,check" >"$OUT/checks.csv"
say "ferry benchmark ($([ "$QUICK" = 1 ] && echo quick || echo full)${ONLY:+, only $ONLY}): N = ${SIZES:-none}${FERRY_SIZES:+; ferry only: $FERRY_SIZES}$([ "$ALGOS" = 1 ] && echo "; algorithms: $ALGO_SIZES"); $ROUNDS rounds of ${SECS} s, -c $CONC; results in $OUT"

say "topology: $NPODS pods with httpd, clients ${METHODS_ALL[*]}"
topology_up
MIN_ATTACHED=1
"$MINIMAL" attach "${CG[e]}" "$MIN_PIN" >>"$LOGS/minimal.log" 2>&1 || die "minimal.sh attach failed (see $LOGS/minimal.log)"

say "generating states (gen-cluster.py N $ENDPOINTS --pods $NPODS)"
B probe $PROBE_VIP $PROBE_PORT $PROBE_TPORT $ENDPOINTS >"$WORK/probe.json" || die "probe service"
for n in $SIZES $FERRY_SIZES; do
	B gen $NTARGETS $OWN_PORT "$n" $ENDPOINTS --pods $NPODS >"$WORK/state-$n.json" || die "gen-cluster.py $n failed"
done

if [ "$ONLY" = algorithms ]; then
	algorithms_step
	"$PYTHON" "$REPORT" "$OUT" --no-docs || warn "report.py failed"
	say "done in $((SECONDS - T0)) s: $OUT"
	exit 0
fi

# Profiles: the datapath at the largest N with every method, cold loads
# there and at the largest N overall.
PROFILE_N=
for n in $SIZES; do PROFILE_N=$n; done
PROFILE_COLD="$PROFILE_N"
for n in $FERRY_SIZES; do LAST=$n; done
[ -n "${LAST:-}" ] && PROFILE_COLD="$PROFILE_COLD $LAST"

for n in $SIZES $FERRY_SIZES; do
	ferry_only=0
	for f in $FERRY_SIZES; do [ "$f" = "$n" ] && ferry_only=1; done
	if [ "$CONN_ONLY" = 1 ]; then
		methods=("${METHODS_BYTE[@]}")
	elif [ $ferry_only = 1 ]; then
		methods=("${METHODS_FERRY[@]}")
	else
		methods=("${METHODS_ALL[@]}")
	fi
	if [ -n "$METHODS_RUN" ]; then
		# shellcheck disable=SC2206
		sel=($METHODS_RUN)
		all=("${methods[@]}")
		methods=()
		for m in "${all[@]}"; do [[ " ${sel[*]} " == *" $m "* ]] && methods+=("$m"); done
	fi
	bmethods=()
	for m in "${methods[@]}"; do [[ " ${METHODS_BYTE[*]} " == *" $m "* ]] && bmethods+=("$m"); done
	say "N = $n services x $ENDPOINTS endpoints: methods ${methods[*]}; 1-byte: ${bmethods[*]}"
	{ read -r VIPS; read -r TARGET_IDX; } < <(B targets "$n" $NTARGETS)
	{ read -r FLOOR_A; read -r FLOOR_R; } < <(B floors "$WORK/state-$n.json" $NTARGETS)
	echo "targets N=$n: services $TARGET_IDX" >>"$OUT/config.txt"
	ferry_start "$n" || { ferry_stop; continue; }
	if [ "$CONN_ONLY" = 0 ]; then
		ferry_memory "$n" loaded
		status_time "$n"
		if [ $ferry_only = 0 ]; then
			rules_load "$n"
		else
			rules_unload >>"$LOGS/load-unload.log" 2>&1
		fi
	fi
	minimal_fill "$n"
	check_methods "$n" "${methods[@]}"
	if [ "$ONLY" != cost ]; then
		traffic "$n" http "${methods[@]}"
		[ ${#bmethods[@]} -gt 0 ] && traffic "$n" byte "${bmethods[@]}"
		[ "$ONLY" = rate ] || connect_overhead "$n" none minimal ferry
	fi
	[ "$ONLY" = rate ] || connect_cost "$n"
	if [ "$CONN_ONLY" = 1 ]; then
		ferry_stop
		rm -f "$WORK/state-$n.json"
		continue
	fi
	ferry_changes "$n"
	ferry_memory "$n" after_changes
	if [ "$PROFILE" = 1 ] && [ "$n" = "$PROFILE_N" ]; then
		profile_connect "$n"
		profile_traffic "$n"
	fi
	if [ "$PROFILE" = 1 ] && [[ " $PROFILE_COLD " == *" $n "* ]]; then profile_cold "$n"; fi
	ferry_stop
	rm -f "$WORK/state-$n.json"
done
rules_unload >>"$LOGS/load-unload.log" 2>&1

# The API event-to-datapath latency: a script of its own, with its own
# stand-in, ferryd, cgroup and pins, all removed when it exits; each of its
# waits has a deadline. In the background so that cleanup can end it (by
# pid, SIGTERM: it cleans up after itself).
if [ "$API" = 1 ]; then
	say "API event to datapath (tests/bench/api_latency.sh)"
	api_args=(--out "$OUT")
	[ "$QUICK" = 1 ] && api_args+=(--quick)
	"$REPO/tests/bench/api_latency.sh" "${api_args[@]}" >>"$LOGS/run.log" 2>&1 &
	API_PID=$!
	wait "$API_PID" || warn "api_latency.sh failed (see $LOGS/api-latency.log)"
	API_PID=
	grep -E '^N=[0-9]+: [0-9]+ changes' "$LOGS/api-latency.log" 2>/dev/null |
		while read -r line; do say "  $line"; done
fi

[ "$MEMORY" = 1 ] && memory_step
[ "$NODEPORT" = 1 ] && nodeport_step
[ "$XDP" = 1 ] && xdp_step
[ "$ALGOS" = 1 ] && algorithms_step

say "measurements done; report"
report_args=("$OUT")
[ "$DOCS" = 1 ] || report_args+=(--no-docs)
"$PYTHON" "$REPORT" "${report_args[@]}" || warn "report.py failed"
say "done in $((SECONDS - T0)) s: $OUT"
