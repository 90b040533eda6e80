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
#   VM_JOBS   guests at once (default: 1 under TCG; under KVM as many as
#             memory (VM_MEM each) and cores (2 each) allow)
#   KERNELS_MD  the table to write (default docs/kernels.md; "" for none)
# Exit 1 when a group failed on any kernel.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

# The groups whose outcome depends on the kernel: the socket hooks (tcp,
# udp, refuse, endpoints with B21's reaper, inline, sockstate, affinity),
# the optional features and their fallbacks (features, tc_filters,
# nodeport_tc_filters), the per-packet path (nodeport, packets), the
# verifier and attach probes (probes) and pinned state across a restart
# (restart). Not the API client's groups, the unit tests or the fuzzers,
# whose outcome does not depend on the kernel.
KERNEL_GROUPS="tcp udp refuse endpoints inline sockstate affinity features tc_filters
nodeport_tc_filters nodeport packets probes restart"
read -r -d '' -a group_list <<<"${TEST_GROUPS:-$KERNEL_GROUPS}"
TEST_GROUPS=${group_list[*]}
KERNELS=${KERNELS:-host 6.1 6.12}
BUILD=${BUILD:-build}
MD=${KERNELS_MD-docs/kernels.md}
export VM_MEM=${VM_MEM:-3072}
out=$BUILD/kernels
mkdir -p "$out"

# The command each kernel runs: its groups, then the features ferryd finds.
# Under TCG a group's time limit is 3 times the host's (the tests' own waits
# are for conditions and are not scaled).
# shellcheck disable=SC2016 # expanded in the guest
guest_cmd() {
	printf 'echo "# kernel $(uname -r) accel ${FERRY_VM_ACCEL:-host}"; '
	printf 'export BUILD=%q; ' "$BUILD"
	printf 'KERNEL_TIMEOUT=$([ "${FERRY_VM_ACCEL:-}" = tcg ] && echo 900 || echo 300) '
	printf 'tests/run.sh %s; ' "$TEST_GROUPS"
	printf 'scripts/kernels/features.sh'
}

# run_kernel K: one kernel's log in $out/K.log, its seconds in $out/K.time.
run_kernel() {
	local k=$1 start=$SECONDS kdir rc
	if [ "$k" = host ]; then
		bash -c "$(guest_cmd)" >"$out/host.log" 2>&1
		rc=$?
	else
		kdir=$(scripts/kernels/fetch.sh "$k") || return 1
		scripts/kernels/vm.sh "$kdir" bash -c "$(guest_cmd)" >"$out/$k.log" 2>&1
		rc=$?
	fi
	echo "$((SECONDS - start))" >"$out/$k.time"
	echo "# $k: exit $rc after $((SECONDS - start)) s ($out/$k.log)"
}

jobs=${VM_JOBS:-}
if [ -z "$jobs" ]; then
	jobs=1
	if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then
		avail=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
		jobs=$((avail / (VM_MEM + 512)))
		[ "$jobs" -le $(($(nproc) / 2)) ] || jobs=$(($(nproc) / 2))
		[ "$jobs" -ge 1 ] || jobs=1
	fi
fi

logs=()
for k in $KERNELS; do
	logs+=("$k=$out/$k.log")
	if [ "$k" = host ]; then
		run_kernel host # never beside a guest: it would be timed under their load
		continue
	fi
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
	run_kernel "$k" &
done
wait

python3 scripts/kernels/table.py --groups "$TEST_GROUPS" ${MD:+--out "$MD"} "${logs[@]}"
