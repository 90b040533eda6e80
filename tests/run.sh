#!/usr/bin/env bash
# Runs ferry's tests: every cmocka unit binary build/tests/test_*, the same
# built with ASan and UBSan (build/asan/tests/test_*), the stand-in API
# server's conformance test (tests/apiserver/conformance.sh), every kernel
# test group tests/kernel/*.sh and the fuzz targets (tests/fuzz/fuzz.sh),
# prints each group's output, and ends with one line "N passed, N failed".
# Exit 1 when a case failed, when a group ran no case or when nothing ran.
#
#   tests/run.sh            everything (kernel groups need root)
#   tests/run.sh NAME...    only these groups: test_model, asan_test_model,
#                           tcp, udp, fuzz, ...
#
# Build first: make all build/tests/... (`make test` does both).
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
[[ $BUILD = /* ]] || BUILD=$PWD/$BUILD
export BUILD
UNIT_TIMEOUT=${UNIT_TIMEOUT:-120}
KERNEL_TIMEOUT=${KERNEL_TIMEOUT:-300}

passed=0
failed=0
ran=0

wanted() {
	[ $# -ge 2 ] || return 0
	local name=$1 w
	shift
	for w in "$@"; do [ "$w" = "$name" ] && return 0; done
	return 1
}

# count_unit OUTPUT RC: cmocka's "[  PASSED  ] N test(s)." and
# "[  FAILED  ] N test(s), listed below:" lines.
count_unit() {
	local out=$1 rc=$2 p f
	p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' <<<"$out" | awk '{s += $1} END {print s + 0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' <<<"$out" | awk '{s += $1} END {print s + 0}')
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "not ok - exited $rc without a cmocka failure count (crash, sanitizer or timeout)"
		f=1
	elif [ $((p + f)) = 0 ]; then
		echo "not ok - the group ran no case"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	echo "-- $p passed, $f failed"
}

# count_kernel OUTPUT RC: "ok - " and "not ok - " lines.
count_kernel() {
	local out=$1 rc=$2 p f
	p=$(grep -c '^ok - ' <<<"$out")
	f=$(grep -c '^not ok - ' <<<"$out")
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "not ok - exited $rc without a failing case (setup error or timeout)"
		f=1
	elif [ $((p + f)) = 0 ]; then
		echo "not ok - the group ran no case"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	echo "-- $p passed, $f failed"
}

# The unit tests, then the same built with ASan and UBSan (groups asan_NAME;
# a sanitizer's report ends the binary with an error).
for bin in "$BUILD"/tests/test_* "$BUILD"/asan/tests/test_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	[[ $bin = "$BUILD"/asan/* ]] && name=asan_$name
	wanted "$name" "$@" || continue
	echo "== unit: $name"
	out=$(CMOCKA_MESSAGE_OUTPUT=stdout UBSAN_OPTIONS=print_stacktrace=1 \
		timeout -k 5 "$UNIT_TIMEOUT" "$bin" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	count_unit "$out" "$rc"
	ran=$((ran + 1))
	echo
done

# Kernel groups, and the fuzz targets for a few seconds each (group fuzz).
for script in tests/apiserver/conformance.sh tests/kernel/*.sh tests/fuzz/fuzz.sh; do
	[ -f "$script" ] || continue
	name=$(basename "$script" .sh)
	wanted "$name" "$@" || continue
	echo "== group: $name"
	start=$SECONDS
	# On timeout the group gets SIGTERM; its trap still cleans up.
	out=$(timeout -k 20 "$KERNEL_TIMEOUT" bash "$script" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	count_kernel "$out" "$rc"
	echo "-- $((SECONDS - start)) s"
	ran=$((ran + 1))
	echo
done

[ "$ran" -gt 0 ] || echo "no test group ran (build first: make test)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ $((passed + failed)) -gt 0 ]
