#!/usr/bin/env bash
# ferryd's memory on big states: its peak RSS (VmHWM) and its steady RSS
# (VmRSS once the first generation is published and the programs attached,
# when two readings 50 ms apart agree), one fresh ferryd per case, read from
# /proc/PID/status.
#
#   tests/bench/memory.sh [--out DIR] [--sizes "N..."] [--endpoints E]
#                         [--cases "file-json file-yaml api"]
#
# tests/bench/run.sh runs it (`run.sh --only memory` runs only it); alone it
# writes to results/<UTC timestamp>-memory/. Default: N = 10,000, E = 10
# (about 1 minute). Cases, on scripts/gen-cluster.py's N x E state (distinct
# endpoint addresses):
#   file-json  --source file: the JSON List gen-cluster.py writes
#   file-yaml  the same List as YAML, as kubectl -o yaml prints it
#   api        --source k8s on the stand-in API server (tests/apiserver/
#              standin.py, HTTPS, a bearer token) holding the same objects;
#              its resourceVersion=0 lists (ferryd's first) answered in one
#              unpaged response (POST /config {"rv0_unpaged": true}) and no
#              WatchList; a stand-in without that switch pages them by 500.
# Each file case then changes one endpoint in the file (written beside it,
# renamed over it) and reads both figures again once ferryd has reloaded it
# (generation 2): the peak then covers a reload, old and new objects at once.
# Before that, build/bench/file_parse times the file source's read of the
# same file alone (parse and decode, best of 3 loads) and, for JSON, the
# split alone (json_items): their throughput.
# Output in DIR: memory-rss.csv and parse.csv (what tests/bench/report.py
# reads; one row per case), logs/memory-*.log.
#
# Everything this run makes carries the prefix fym<pid> and is removed on
# exit, failure or signal: ferryd and the stand-in (by pid), ferryd's pins
# (ferryd --cleanup), its cgroup (no process enters it: ferryd only attaches
# programs there), the temporary folder. Only loopback is used.

set -u
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$REPO/build}
FERRYD=$BUILD/ferryd
PYTHON=${PYTHON:-python3}
HELPER=$REPO/tests/bench/memory.py

OUT=
SIZES=10000
ENDPOINTS=10
CASES="file-json file-yaml api"
while [ $# -gt 0 ]; do
	case $1 in
	--out) OUT=$2; shift ;;
	--sizes) SIZES=$2; shift ;;
	--endpoints) ENDPOINTS=$2; shift ;;
	--cases) CASES=$2; shift ;;
	-h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "memory.sh: unknown option $1 (--help)" >&2; exit 2 ;;
	esac
	shift
done

P=fym$$
CGROOT=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
CG=${CGROOT:+$CGROOT/$P-mem}
BPFFS=/sys/fs/bpf/$P-mem
[ -n "$OUT" ] || OUT=$REPO/results/$(date -u +%Y%m%dT%H%M%SZ)-memory
LOGS=$OUT/logs
CSV=$OUT/memory-rss.csv
CG_MADE=0
T0=$SECONDS

say() { printf '[memory %3d s] %s\n' $((SECONDS - T0)) "$*" | tee -a "$LOGS/memory.log"; }
warn() { say "WARNING: $*" >&2; echo "memory: $*" >>"$OUT/warnings.txt"; }

# shellcheck source=tests/stop_pid.sh
source "$REPO/tests/stop_pid.sh"
# shellcheck source=tests/wait.sh
source "$REPO/tests/wait.sh"
# shellcheck source=tests/bench/bench_lib.sh
source "$REPO/tests/bench/bench_lib.sh"

cleanup() {
	set +eu
	trap - EXIT INT TERM
	ferryd_down "$LOGS/memory-cleanup.log"
	standin_down
	[ "$CG_MADE" = 1 ] && [ -d "$CG" ] && { rmdir "$CG" || echo "memory.sh: could not remove $CG" >&2; }
	[ -n "$WORK" ] && rm -rf "$WORK"
}

bench_start memory.sh
mkdir "$CG" || { warn "mkdir $CG failed"; exit 1; }
CG_MADE=1
[ -s "$CSV" ] || echo "source,format,n,endpoints,input_bytes,peak_rss_kb,steady_rss_kb,attached_ms,paging,reload_peak_rss_kb,reload_rss_kb" >"$CSV"
[ -s "$OUT/parse.csv" ] || echo "format,n,endpoints,bytes,best_ms,mb_per_s,peak_rss_kb,split_mb_per_s" >"$OUT/parse.csv"

now_ns() { date +%s%N; }
kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2" | head -n 1; }
rss_of() { awk '$1 == "VmHWM:" {h = $2} $1 == "VmRSS:" {r = $2} END {print h, r}' "/proc/$1/status"; }
# rss_same PID: whether VmRSS is what it was at the last call.
RSS_LAST=
rss_same() {
	local now
	now=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$1/status") || return 1
	[ "$now" = "$RSS_LAST" ] && return 0
	RSS_LAST=$now
	return 1
}
limits() {
	local n=$(($1 + 16)) s=65536 b=262144
	[ "$n" -gt $s ] && s=$n
	[ $((n * ENDPOINTS)) -gt $b ] && b=$((n * ENDPOINTS))
	echo "--max-services $s --max-backends $b"
}

# steady_rss PID WHAT: "peak steady" once VmRSS holds still.
steady_rss() {
	RSS_LAST=
	wait_until 5 rss_same "$1" || warn "$2: RSS still moving after 5 s"
	rss_of "$1"
}

# measure CASE N FORMAT BYTES PAGING LOG CHANGE ARGS...: one ferryd on
# ARGS, its figures into the CSV; CHANGE (a file, or -) is then changed
# once and the figures read again after ferryd's reload.
measure() {
	local c=$1 n=$2 fmt=$3 bytes=$4 paging=$5 log=$6 change=$7 start first peak rss
	local peak2=- rss2=-
	shift 7
	: >"$log"
	FERRYD_USED=1
	start=$(now_ns)
	# shellcheck disable=SC2046 # the limits, one word each
	"$FERRYD" "$@" --cgroup "$CG" --bpffs "$BPFFS" --node-name node-a --metrics-addr "" \
		--health-addr "" $(limits "$n") 2>>"$log" &
	FERRYD_PID=$!
	if ! wait_until 300 eval "grep -q 'programs serving' '$log' || ! kill -0 $FERRYD_PID" ||
		! kill -0 "$FERRYD_PID" 2>/dev/null; then
		warn "$c N=$n: not attached: $(tail -n 2 "$log" | tr '\n' ' ')"
		ferryd_down "$LOGS/memory-cleanup.log"
		return 1
	fi
	first=$(awk -v a="$start" -v b="$(now_ns)" 'BEGIN {printf "%.0f", (b - a) / 1e6}')
	read -r peak rss <<<"$(steady_rss "$FERRYD_PID" "$c N=$n")"
	# What the steady figure is made of: heap and stacks, mapped libraries.
	grep -E '^Rss(Anon|File|Shmem):' "/proc/$FERRYD_PID/status" | tr -s ' \t\n' ' ' |
		sed 's/^/steady parts: /' >>"$log"
	if [ "$change" != - ]; then
		"$PYTHON" "$HELPER" change "$change" &&
			wait_until 300 eval "grep -q 'generation 2:' '$log' || ! kill -0 $FERRYD_PID" &&
			read -r peak2 rss2 <<<"$(steady_rss "$FERRYD_PID" "$c N=$n reload")" ||
			warn "$c N=$n: no reload after a change"
	fi
	ferryd_down "$LOGS/memory-cleanup.log"
	echo "${c%%-*},$fmt,$n,$ENDPOINTS,$bytes,$peak,$rss,$first,$paging,$peak2,$rss2" >>"$CSV"
	say "$c N=$n x $ENDPOINTS: peak RSS $((peak / 1024)) MB, steady $((rss / 1024)) MB" \
		"(attached ~$first ms after start)$([ "$peak2" = - ] ||
			echo "; after a reload: peak $((peak2 / 1024)) MB, steady $((rss2 / 1024)) MB")"
}

# parse_speed CASE N FORMAT FILE: the file source's read of FILE alone
# (build/bench/file_parse, best of 3 loads) into parse.csv.
parse_speed() {
	local out
	[ -x "$BUILD/bench/file_parse" ] || { warn "$BUILD/bench/file_parse missing (make bench-tools)"; return 1; }
	out=$("$BUILD/bench/file_parse" "$4" 3) || { warn "$1 N=$2: file_parse failed"; return 1; }
	echo "$3,$2,$ENDPOINTS,$(kv bytes "$out"),$(kv best_ms "$out"),$(kv mb_per_s "$out"),$(kv peak_rss_kb "$out"),$(kv split_mb_per_s "$out")" >>"$OUT/parse.csv"
	say "$1 N=$2 x $ENDPOINTS: the file source reads it at $(kv mb_per_s "$out") MB/s ($(kv best_ms "$out") ms, best of 3)$([ "$3" = json ] &&
		echo "; json_items splits it at $(kv split_mb_per_s "$out") MB/s")"
}

file_case() {
	local c=$1 n=$2 fmt=${1#file-} f=$WORK/state-$2.${1#file-}
	"$PYTHON" "$HELPER" state "$n" "$ENDPOINTS" "$fmt" "$f" || { warn "$c N=$n: state"; return 1; }
	parse_speed "$c" "$n" "$fmt" "$f"
	measure "$c" "$n" "$fmt" "$(stat -c %s "$f")" - "$LOGS/memory-ferryd-$c-$n.log" "$f" \
		--source "file:$f"
	rm -f "$f"
}

# api_case N: the stand-in with the N x E objects, one ferryd listing them.
api_case() {
	local n=$1 dir=$WORK/api slog=$LOGS/memory-standin-$1.log paging=500
	standin_certs "$dir" || return 1
	"$PYTHON" "$HELPER" objects "$n" "$ENDPOINTS" "$WORK/objects.json" || { warn "api N=$n: objects"; return 1; }
	standin_up "$dir" "$n" "$slog" || return 1
	standin_ctl POST /objects -H 'Content-Type: application/json' \
		--data-binary @"$WORK/objects.json" >>"$slog" 2>&1 ||
		{ warn "api N=$n: POST /objects failed"; return 1; }
	rm -f "$WORK/objects.json"
	# resourceVersion=0 lists (ferryd's first) in one piece, limit or not, as
	# the watch cache of the 1.36 server library answers them, and no
	# streaming list (WatchList) to take instead; a stand-in without the
	# switch pages them by 500.
	standin_ctl POST /config -H 'Content-Type: application/json' --data '{"rv0_unpaged": true}' >>"$slog" 2>&1 && paging=unpaged
	standin_ctl POST /config -H 'Content-Type: application/json' --data '{"watch_list": "off"}' >>"$slog" 2>&1
	"$REPO/tests/apiserver/mkkubeconfig.sh" "$dir/kubeconfig" "$STANDIN_PORT" >>"$slog" 2>&1 ||
		{ warn "mkkubeconfig.sh failed"; return 1; }
	measure api "$n" json - "$paging" "$LOGS/memory-ferryd-api-$n.log" - --source k8s \
		--kubeconfig "$dir/kubeconfig"
	standin_down
}

say "ferryd memory: N = $SIZES x $ENDPOINTS, cases $CASES; results in $OUT"
fails=0
for n in $SIZES; do
	for c in $CASES; do
		case $c in
		file-json | file-yaml) file_case "$c" "$n" ;;
		api) api_case "$n" ;;
		*) warn "unknown case $c"; false ;;
		esac || fails=$((fails + 1))
	done
done
say "done in $((SECONDS - T0)) s: $CSV"
[ "$fails" = 0 ]
