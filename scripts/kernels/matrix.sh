#!/usr/bin/env bash
# The kernel matrix (make test-kernels): the kernel test groups that exercise
# kernel features, on this machine's kernel and on Debian's kernels booted
# under QEMU (scripts/kernels/vm.sh), then docs/kernels.md from their logs
# (scripts/kernels/table.py). Run as root from the checkout, after make all
# and the test helpers (make test-kernels builds them).
#
#   KERNELS   what to run: host and Debian series (default "host 6.1 6.12")
#   TEST_GROUPS  the kernel groups (default: KERNEL_GROUPS below)
#   BUILD     the build folder (default build); logs go to $BUILD/kernels/
#   VM_JOBS   guests at once (default: as many as memory allows, VM_MEM
#             + 512 MB each; under KVM also at most one per 2 cores). Under
#             TCG a guest keeps about one host core busy, so the two Debian
#             kernels run side by side on 2 cores: a group took about as
#             long beside the other guest as alone (6.1's affinity 230 s,
#             endpoints 116 s, features 157 s side by side; 202, 106 and
#             162 s alone, on the same loaded machine).
#   VM_TIMEOUT  each guest's bound (default 5400 s; each group has its own,
#             KERNEL_TIMEOUT, 900 s under TCG)
#   KERNELS_MD  the table to write (default docs/kernels.md; "" for none)
# Exit 1 when a group failed on any kernel.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

# The groups whose outcome depends on the kernel: the socket hooks (tcp,
# udp, refuse, endpoints with B21's reaper, inline, sockstate, affinity),
# the optional features and their fallbacks (features, tc_filters,
# nodeport_tc_filters), the per-packet path (nodeport, packets), the
# verifier and attach probes (probes), pinned state across a restart
# (restart), ferryctl status's feature report (status), and the backend
# selection algorithms (lb_algorithms: bpf_loop, atomics, the sock_release
# hook; lb_external: the same from outside, XDP metadata to tc). Not the API
# client's groups, the unit tests or the fuzzers, whose outcome does not
# depend on the kernel.
KERNEL_GROUPS="tcp udp refuse endpoints inline sockstate affinity features tc_filters
nodeport_tc_filters nodeport packets probes restart status lb_algorithms lb_external"
read -r -d '' -a group_list <<<"${TEST_GROUPS:-$KERNEL_GROUPS}"
TEST_GROUPS=${group_list[*]}
KERNELS=${KERNELS:-host 6.1 6.12}
BUILD=${BUILD:-build}
MD=${KERNELS_MD-docs/kernels.md}
export VM_MEM=${VM_MEM:-3072} VM_TIMEOUT=${VM_TIMEOUT:-5400}
out=$BUILD/kernels
mkdir -p "$out"

# The command kernel K runs: its groups, then the features ferryd finds.
# Under TCG a group's time limit is 3 times the host's (the tests' own waits
# are for conditions and are not scaled). A guest's test logs go to
# $out/logs-K, bound over $BUILD/test-logs: guests side by side share the
# checkout, and each group truncates its ferryd.log there at its start.
# shellcheck disable=SC2016 # expanded in the guest
guest_cmd() {
	printf 'echo "# kernel $(uname -r) accel ${FERRY_VM_ACCEL:-host}"; '
	printf 'export BUILD=%q; ' "$BUILD"
	if [ "$1" != host ]; then
		printf 'mkdir -p %q %q && ' "$out/logs-$1" "$BUILD/test-logs"
		printf 'mount --bind %q %q || exit 1; ' "$out/logs-$1" "$BUILD/test-logs"
	fi
	printf 'KERNEL_TIMEOUT=$([ "${FERRY_VM_ACCEL:-}" = tcg ] && echo 900 || echo 300) '
	printf 'tests/run.sh %s; ' "$TEST_GROUPS"
	printf 'scripts/kernels/features.sh'
}

# run_kernel K: one kernel's log in $out/K.log, its seconds in $out/K.time.
run_kernel() {
	local k=$1 start=$SECONDS kdir rc
	if [ "$k" = host ]; then
		bash -c "$(guest_cmd host)" >"$out/host.log" 2>&1
		rc=$?
	else
		kdir=$(scripts/kernels/fetch.sh "$k") || return 1
		scripts/kernels/vm.sh "$kdir" bash -c "$(guest_cmd "$k")" >"$out/$k.log" 2>&1
		rc=$?
	fi
	echo "$((SECONDS - start))" >"$out/$k.time"
	echo "# $k: exit $rc after $((SECONDS - start)) s ($out/$k.log)"
}

jobs=${VM_JOBS:-}
if [ -z "$jobs" ]; then
	avail=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
	jobs=$((avail / (VM_MEM + 512)))
	if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] && [ "$jobs" -gt $(($(nproc) / 2)) ]; then
		jobs=$(($(nproc) / 2))
	fi
	[ "$jobs" -ge 1 ] || jobs=1
fi

logs=()
guests=0
for k in $KERNELS; do
	logs+=("$k=$out/$k.log")
	if [ "$k" = host ]; then
		run_kernel host # never beside a guest: it would be timed under their load
		continue
	fi
	[ "$guests" != 0 ] || guests_start=$SECONDS
	guests=$((guests + 1))
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
	run_kernel "$k" &
done
wait
guest_note=()
if [ "$guests" != 0 ]; then
	secs=$((SECONDS - guests_start))
	[ "$jobs" -le "$guests" ] || jobs=$guests
	echo "# $guests guest kernels in $secs s, $jobs at once"
	guest_note=(--note "The $guests Debian kernels ran in $((secs / 60)) min $((secs % 60)) s, $jobs guests at once ($(nproc) cores).")
fi

python3 scripts/kernels/table.py --groups "$TEST_GROUPS" ${MD:+--out "$MD"} "${guest_note[@]}" "${logs[@]}"
