#!/usr/bin/env bash
# Runs each fuzz target ($BUILD/fuzz/fuzz_*, from tests/fuzz/fuzz_*.c) for
# FUZZ_SECONDS (2 for make test; make fuzz passes 60) on its seed corpus
# ($BUILD/fuzz/seeds/TARGET, from seeds.py) and its regression inputs, then
# replays each regression input (tests/fuzz/regress/TARGET/*) on its own.
# One "ok - " line per target that ran its time without a crash, and one per
# regression input that runs clean. New inputs go to FUZZ_CORPUS/TARGET
# (default: this run's work folder, dropped at the end); crashes are saved
# in the group's log folder.
#
#   BUILD=build FUZZ_SECONDS=60 tests/fuzz/fuzz.sh [TARGET...]
#
# Root is not needed; lib.sh is used only for its reporting and cleanup.

# The targets run in the work folder: every path absolute.
[[ ${BUILD:-/} = /* ]] || BUILD=$PWD/$BUILD

# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

FUZZ_SECONDS=${FUZZ_SECONDS:-2}
FUZZ_CORPUS=${FUZZ_CORPUS:-$WORK/corpus}
REGRESS=$REPO/tests/fuzz/regress

# fuzz_stat LOG NAME: a -print_final_stats figure.
fuzz_stat() { sed -n "s/^stat::$2: *//p" "$1" | tail -n 1; }

# fuzz_report: the sanitizer's report in a libFuzzer output, as comments
# (the frames of the code under test, not libFuzzer's own).
fuzz_report() {
	grep -E 'ERROR|SUMMARY|runtime error|#[0-9]+ 0x' | grep -Ev 'fuzzer::|libc_start|in _start' |
		head -n 20 | sed 's/^/#   /'
}

# fuzz_run TARGET: the target for FUZZ_SECONDS.
fuzz_run() {
	local t=$1 bin=$BUILD/fuzz/$1 log=$LOGDIR/$1.log rc dirs=()
	mkdir -p "$FUZZ_CORPUS/$t"
	dirs=("$FUZZ_CORPUS/$t")
	[ -d "$BUILD/fuzz/seeds/$t" ] && dirs+=("$BUILD/fuzz/seeds/$t")
	[ -d "$REGRESS/$t" ] && dirs+=("$REGRESS/$t")
	# -close_fd_mask=2: the target's own logs go nowhere (libFuzzer and the
	# sanitizers keep a stderr of their own). The wrapping timeout only
	# bounds a hang that libFuzzer's own -timeout misses.
	(cd "$WORK" && TMPDIR=$WORK timeout -k 5 $((FUZZ_SECONDS + 120)) "$bin" \
		-max_total_time="$FUZZ_SECONDS" -timeout=25 -rss_limit_mb=2048 -close_fd_mask=2 \
		-print_final_stats=1 -artifact_prefix="$LOGDIR/$t-" "${dirs[@]}") >"$log" 2>&1
	rc=$?
	if [ "$rc" = 0 ]; then
		ok "$t ran $FUZZ_SECONDS s without a crash"
		note "$t: $(fuzz_stat "$log" number_of_executed_units) runs," \
			"$(fuzz_stat "$log" average_exec_per_sec)/s, $(find "$FUZZ_CORPUS/$t" -type f | wc -l) new inputs kept"
	else
		not_ok "$t ran $FUZZ_SECONDS s without a crash" "exit $rc, input saved as $(
			sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | tail -n 1); log $log"
		fuzz_report <"$log"
	fi
}

# fuzz_replay TARGET: each regression input of the target, once.
fuzz_replay() {
	local t=$1 input out rc
	for input in "$REGRESS/$t"/*; do
		[ -f "$input" ] || continue
		out=$(cd "$WORK" && TMPDIR=$WORK timeout -k 5 120 "$BUILD/fuzz/$t" \
			-close_fd_mask=2 "$input" 2>&1)
		rc=$?
		if [ "$rc" = 0 ]; then
			ok "$t replays regress/$t/$(basename "$input")"
		else
			not_ok "$t replays regress/$t/$(basename "$input")" "exit $rc"
			fuzz_report <<<"$out"
		fi
	done
}

targets=("$@")
if [ ${#targets[@]} = 0 ]; then
	for src in "$REPO"/tests/fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done
fi
for t in "${targets[@]}"; do
	if [ ! -x "$BUILD/fuzz/$t" ]; then
		not_ok "$t built" "$BUILD/fuzz/$t missing (make fuzz-tools)"
		continue
	fi
	fuzz_run "$t"
	fuzz_replay "$t"
done
finish
