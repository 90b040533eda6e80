#!/usr/bin/env bash
# The test harness itself (no root, no kernel): a group that runs no case
# fails, both in lib.sh's finish and in run.sh's count, so that a setup that
# skips every case cannot read as a pass.

# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

# group BODY: a throwaway group sourcing lib.sh, running BODY then finish;
# prints its exit code, then its output.
group() {
	local script=$WORK/throwaway.sh out rc
	printf 'source %q\n%s\nfinish\n' "$REPO/tests/lib.sh" "$1" >"$script"
	out=$(LOGDIR=$WORK/logs bash "$script" 2>&1)
	rc=$?
	printf '%s\n%s\n' "$rc" "$out"
}

out=$(group ':')
expect "lib.sh: a group with no case exits non-zero" "$(head -n 1 <<<"$out")" 1
expect_match "lib.sh: a group with no case says so" "$out" $'\nnot ok - throwaway: the group ran no case'
out=$(group 'ok "one case"')
expect "lib.sh: a group with one passing case exits 0" "$(head -n 1 <<<"$out")" 0

# run.sh over a copy of the tree holding one silent group and one with a case.
tree=$WORK/tree
mkdir -p "$tree/tests/kernel" "$tree/build"
cp "$REPO/tests/run.sh" "$tree/tests/"
echo 'exit 0' >"$tree/tests/kernel/silent.sh"
echo 'echo "ok - one"' >"$tree/tests/kernel/one.sh"
out=$(BUILD=$tree/build bash "$tree/tests/run.sh" 2>&1)
rc=$?
expect "run.sh: a silent group counts as failed" "$(tail -n 1 <<<"$out")" "1 passed, 1 failed"
expect "run.sh: exits non-zero then" "$rc" 1
finish
