#!/usr/bin/env bash
# API event to datapath: how long one change written to the API server takes
# to reach ferry's maps, at N Services.
#
#   tests/bench/api_latency.sh [--quick] [--out DIR] [--sizes "N..."]
#                              [--samples M] [--endpoints E]
#
# tests/bench/run.sh runs it (full: N = 1,000 and 10,000, M = 200; --quick:
# N = 1,000, M = 50); alone it writes to results/<UTC timestamp>-api[-quick]/.
# Output in DIR: api-latency.json (what tests/bench/report.py reads),
# api-latency-N.csv (one row per change), logs/api-latency*.log.
#
# Per N: the stand-in API server (tests/apiserver/standin.py, HTTPS with a
# bearer token, as the kernel tests run it) gets N Services with one
# EndpointSlice of E endpoints each (scripts/gen-cluster.py's addresses:
# ClusterIPs in 10.96.0.0/12, endpoints in 198.18.0.0/15; nothing answers
# and no traffic is sent) and the Node; then ferryd --source k8s starts on a
# cgroup and a bpffs folder of this run, and the time from its start to
# generation 1 is the first-list time. A plain `curl -N` watch of the same
# EndpointSlices stamps each event's arrival. Then M single changes, one at a
# time (tests/bench/api_latency.py measure): one slice's endpoint set changed,
# then put back, over services spread along the list; each write waits for
# the previous one to be in the maps. Per change: the wall clock just before
# the control-API write was sent, when the write call returned, when the
# curl watch saw the event, and ferry_state's applied_unix_ns; and ferryd's
# own "event to maps" from its log line of that generation. Then a burst:
# every slice changed at once (one POST /objects of N writes, so 10,000
# events at N = 10,000): how many applies (generations) ferryd makes of it,
# the service ports each carried, and when the last one was published.
#
# Everything this run makes carries the prefix fyl<pid> and is removed on
# exit, failure or signal: the stand-in, ferryd and the stamping watch (by
# pid), ferryd's pins (ferryd --cleanup), the cgroup, the temporary folder.
# Only loopback is used; ferryd's metrics server listens on a free port of
# 127.0.0.1 (its histogram is read once at the end), its health server is
# off.

set -u
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$REPO/build}
FERRYD=$BUILD/ferryd
PYTHON=${PYTHON:-python3}
DRIVER=$REPO/tests/bench/api_latency.py

QUICK=0
OUT=
SIZES=
SAMPLES=
ENDPOINTS=4
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--out) OUT=$2; shift ;;
	--sizes) SIZES=$2; shift ;;
	--samples) SAMPLES=$2; shift ;;
	--endpoints) ENDPOINTS=$2; shift ;;
	-h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "api_latency.sh: unknown option $1 (--help)" >&2; exit 2 ;;
	esac
	shift
done
if [ "$QUICK" = 1 ]; then
	: "${SIZES:=1000}" "${SAMPLES:=50}"
else
	: "${SIZES:=1000 10000}" "${SAMPLES:=200}"
fi
WARMUP=2 # pairs of changes before the measured ones (not counted)

P=fyl$$
CGROOT=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
CG=${CGROOT:+$CGROOT/$P-api}
BPFFS=/sys/fs/bpf/$P-api
[ -n "$OUT" ] || OUT=$REPO/results/$(date -u +%Y%m%dT%H%M%SZ)-api$([ "$QUICK" = 1 ] && echo -quick)
LOGS=$OUT/logs
STAMP_PID=
BG_PID=
CG_MADE=0
T0=$SECONDS
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)

say() { printf '[api %3d s] %s\n' $((SECONDS - T0)) "$*" | tee -a "$LOGS/api-latency.log"; }
warn() { say "WARNING: $*" >&2; echo "api latency: $*" >>"$OUT/warnings.txt"; }

# shellcheck source=tests/stop_pid.sh
source "$REPO/tests/stop_pid.sh"
# shellcheck source=tests/wait.sh
source "$REPO/tests/wait.sh"
# shellcheck source=tests/bench/bench_lib.sh
source "$REPO/tests/bench/bench_lib.sh"

# size_down: everything one N started, in reverse order.
size_down() {
	[ -n "$BG_PID" ] && stop_pid "$BG_PID"
	BG_PID=
	[ -n "$STAMP_PID" ] && stop_pid "$STAMP_PID"
	STAMP_PID=
	ferryd_down "$LOGS/api-latency-cleanup.log"
	standin_down
}

cleanup() {
	set +eu
	trap - EXIT INT TERM
	size_down
	# No process ever enters the cgroup: ferryd only attaches programs to it.
	[ "$CG_MADE" = 1 ] && [ -d "$CG" ] && { rmdir "$CG" || echo "api_latency.sh: could not remove $CG" >&2; }
	[ -n "$WORK" ] && rm -rf "$WORK"
}

bench_start api_latency.sh
for c in curl openssl "$PYTHON" timeout; do
	command -v "$c" >/dev/null || { warn "$c not found"; exit 1; }
done
mkdir "$CG" || { warn "mkdir $CG failed"; exit 1; }
CG_MADE=1

now_ns() { date +%s%N; }
ms_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN {printf "%.3f", (b - a) / 1e6}'; }
py() { "$PYTHON" -c "$@"; }

# bg CMD...: CMD in the background, waited for: a signal's trap runs at
# once (bash runs traps only between foreground commands), and cleanup ends
# CMD by pid. Returns CMD's status.
bg() {
	local rc
	"$@" &
	BG_PID=$!
	wait "$BG_PID"
	rc=$?
	BG_PID=
	return $rc
}

free_port() { py 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }


# --- setup: certificates, token, kubeconfig ----------------------------------

API_DIR=$WORK/api
standin_certs "$API_DIR" || exit 1

kubeconfig() { "$REPO/tests/apiserver/mkkubeconfig.sh" "$API_DIR/kubeconfig" "$STANDIN_PORT"; }

# --- one N ------------------------------------------------------------------

# run_size N: the measurement at N services; writes $WORK/size-N.json.
run_size() {
	local n=$1
	local slog=$LOGS/api-latency-standin-$n.log flog=$LOGS/api-latency-ferryd-$n.log
	local start first load_ms rv mport t_load out
	: >"$slog"
	: >"$flog"
	"$PYTHON" "$DRIVER" objects "$n" "$ENDPOINTS" >"$WORK/objects.json" || { warn "N=$n: objects"; return 1; }
	standin_up "$API_DIR" "$n" "$slog" || return 1
	kubeconfig
	t_load=$(now_ns)
	out=$(standin_ctl POST /objects -H 'Content-Type: application/json' --data-binary @"$WORK/objects.json") ||
		{ warn "N=$n: POST /objects failed: ${out:0:200}"; return 1; }
	load_ms=$(ms_since "$t_load")
	rm -f "$WORK/objects.json"
	say "N=$n: $((2 * n + 1)) objects written to the stand-in in $load_ms ms ($out)"

	mport=$(free_port)
	FERRYD_USED=1
	start=$(now_ns)
	"$FERRYD" --source k8s --kubeconfig "$API_DIR/kubeconfig" --cgroup "$CG" --bpffs "$BPFFS" \
		--node-name node-a --log-level info --metrics-addr "127.0.0.1:$mport" --health-addr "" \
		2>>"$flog" &
	FERRYD_PID=$!
	bg "$PYTHON" "$DRIVER" first "$BPFFS/ferry_state" "$start" "$FERRYD_PID" 120 >"$WORK/first"
	first=$(cat "$WORK/first")
	if ! [[ $first =~ ^[0-9.]+$ ]]; then
		warn "N=$n: ferryd did not publish generation 1: $first; $(tail -n 2 "$flog" | tr '\n' ' ')"
		return 1
	fi
	say "N=$n: ferryd start to generation 1 (first list programmed): $first ms; $(grep -o 'first list programmed: .*' "$flog" | tr -d '"')"

	# The stamping watch starts at the current revision: it gets every
	# change from the first warm-up write on, however late it connects.
	rv=$(standin_ctl GET /state | py 'import json, sys; print(json.load(sys.stdin)["revision"])') ||
		{ warn "N=$n: GET /state failed"; return 1; }
	"$PYTHON" "$DRIVER" stamp \
		"https://127.0.0.1:$STANDIN_PORT/apis/discovery.k8s.io/v1/namespaces/bench/endpointslices?watch=1&resourceVersion=$rv&timeoutSeconds=3600" \
		"$API_DIR/pki/ca.crt" "$API_DIR/auth-header" "$WORK/arrivals-$n.txt" 2>>"$slog" &
	STAMP_PID=$!

	say "N=$n: $SAMPLES changes, one at a time (load average $(cut -d' ' -f1-3 /proc/loadavg))"
	bg timeout -k 5 900 "$PYTHON" "$DRIVER" measure --pin "$BPFFS/ferry_state" --cport "$STANDIN_CPORT" \
		--arrivals "$WORK/arrivals-$n.txt" --log "$flog" --n "$n" --endpoints "$ENDPOINTS" \
		--samples "$SAMPLES" --warmup $WARMUP --burst "$n" --metrics-port "$mport" --first-ms "$first" \
		--load-ms "$load_ms" --csv "$OUT/api-latency-$n.csv" --json "$WORK/size-$n.json" \
		>"$WORK/measure.out" 2>&1
	local rc=$?
	tee -a "$LOGS/api-latency.log" <"$WORK/measure.out"
	cp "$WORK/arrivals-$n.txt" "$LOGS/api-latency-watch-$n.txt" 2>/dev/null
	if [ "$rc" != 0 ] || [ ! -s "$WORK/size-$n.json" ]; then
		warn "N=$n: the measurement failed (exit $rc; see $LOGS/api-latency.log)"
		return 1
	fi
}

# --- main ---------------------------------------------------------------------

say "API event to datapath ($([ "$QUICK" = 1 ] && echo quick || echo full)): N = $SIZES, $SAMPLES changes each, $ENDPOINTS endpoints per slice; results in $OUT"
parts=()
fails=0
for n in $SIZES; do
	if run_size "$n"; then
		parts+=("$WORK/size-$n.json")
	else
		fails=$((fails + 1))
	fi
	size_down
done

py '
import json, os, sys
repo, quick, sizes, samples, e, date, out = sys.argv[1:8]
def version():
    try:
        head = open(os.path.join(repo, ".git/HEAD")).read().strip()
    except OSError:
        return "unknown"
    if not head.startswith("ref: "):
        return head[:12]
    ref = head[5:]
    try:
        c = open(os.path.join(repo, ".git", ref)).read().strip()
    except OSError:
        c = next((l.split()[0] for l in open(os.path.join(repo, ".git/packed-refs"))
                  if l.rstrip().endswith(" " + ref)), "?") if os.path.exists(os.path.join(repo, ".git/packed-refs")) else "?"
    return "%s %s" % (ref.split("/")[-1], c[:12])
import platform
json.dump({"mode": "quick" if quick == "1" else "full", "date": date,
           "sizes_asked": [int(x) for x in sizes.split()], "samples": int(samples), "endpoints": int(e),
           "kernel": platform.release(), "cores": os.cpu_count(), "ferry": version(),
           "python": platform.python_version()}, open(out, "w"), indent=1)
' "$REPO" "$QUICK" "$SIZES" "$SAMPLES" "$ENDPOINTS" "$DATE" "$WORK/config.json"
"$PYTHON" "$DRIVER" summary "$OUT/api-latency.json" "$WORK/config.json" "${parts[@]}" ||
	{ warn "api-latency.json not written"; exit 1; }
say "done in $((SECONDS - T0)) s: $OUT/api-latency.json"
[ "$fails" = 0 ]
