#!/usr/bin/env bash
# CI's short run on the oldest kernel ferry supports (issue 15): Debian's 6.1
# under QEMU (scripts/kernels/vm.sh), the demo and the tcp, udp and refuse
# groups, so that a change that breaks 6.1 does not land. The full matrix is
# make test-kernels. Prints their output and ends with one line
# "N passed, N failed" (the demo counts as one case); exit 1 when a case
# failed or nothing ran. Run as root from the checkout after make all.
#
# A machine that cannot run the guest (QEMU not installed and not
# installable, no 6.1 kernel in the cache and none to download) says why in
# one line and counts it as one failed case: a CI that skips in silence
# passes changes it never tested. CI_KERNEL_OPTIONAL=1 makes it a skip
# ("0 passed, 0 failed", the reason still printed) for machines known to
# lack them.
#   CI_KERNEL (default 6.1), CI_GROUPS (default "tcp udp refuse"), BUILD,
#   KERNEL_CACHE (scripts/kernels/fetch.sh), VM_TIMEOUT (default 1200 s).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
kernel=${CI_KERNEL:-6.1}
groups=${CI_GROUPS:-tcp udp refuse}
export VM_TIMEOUT=${VM_TIMEOUT:-1200}

# not_run WHY: the kernel part could not run.
not_run() {
	echo "# ci.sh: the $kernel kernel part did not run: $1"
	if [ "${CI_KERNEL_OPTIONAL:-0}" = 1 ]; then
		echo "ok - $kernel kernel part # SKIP $1 (CI_KERNEL_OPTIONAL=1)"
		echo "0 passed, 0 failed"
		exit 0
	fi
	echo "not ok - $kernel kernel part: $1 (CI_KERNEL_OPTIONAL=1 makes it a skip)"
	echo "0 passed, 1 failed"
	exit 1
}

[ "$(id -u)" = 0 ] || not_run "not root (QEMU's 9p shares and the tests need it)"
scripts/install-deps.sh --kernels --check >/dev/null 2>&1 || scripts/install-deps.sh --kernels >&2 ||
	not_run "QEMU, busybox-static or kmod are missing and could not be installed (scripts/install-deps.sh --kernels; no network?)"
make -s BUILD="$BUILD" all "$BUILD/tests/conncount" >&2 || { echo "not ok - build"; echo "0 passed, 1 failed"; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
kdir=$(scripts/kernels/fetch.sh "$kernel" 2>"$out") || not_run "no $kernel kernel: $(tail -n 1 "$out")"
sed 's/^/# /' "$out"

# In the guest: the checkout under a tmpfs overlay (what the demo and the
# groups write, build/demo and test-logs, stays in the guest; failures print
# their logs), the demo, then the groups, with 3 times the host's group time
# limit under TCG.
# shellcheck disable=SC2016 # expanded in the guest
cmd='echo "# kernel $(uname -r) accel ${FERRY_VM_ACCEL}"
mkdir /tmp/co /tmp/co/u /tmp/co/w
mount -t overlay -o "lowerdir=$PWD,upperdir=/tmp/co/u,workdir=/tmp/co/w" overlay "$PWD" && cd "$PWD" || exit 1
if scripts/demo.sh >/tmp/demo.out 2>&1; then cat /tmp/demo.out; echo "ok - demo on $(uname -r)"
else cat /tmp/demo.out; echo "not ok - demo on $(uname -r)"; fi
KERNEL_TIMEOUT=$([ "$FERRY_VM_ACCEL" = tcg ] && echo 900 || echo 300) tests/run.sh '"$groups"
start=$SECONDS
scripts/kernels/vm.sh "$kdir" env BUILD="$BUILD" bash -c "$cmd" 2>&1 | tee "$out"
echo "# $kernel: $((SECONDS - start)) s"
demo=$(grep -c '^ok - demo on ' "$out")
read -r p f < <(sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' "$out" | tail -n 1)
p=$((${p:-0} + demo))
f=${f:-1}
[ "$demo" = 1 ] || f=$((f + 1))
echo "$p passed, $f failed"
[ "$f" = 0 ] && [ "$p" -gt 0 ]
