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
#   VM_SPLIT  guests per Debian kernel (default 2): each kernel's groups are
#             dealt over them, longest first (GROUP_SECONDS below), so that
#             the guests end together
#   VM_CPUS   each guest's CPUs (default 1 under TCG, 2 under KVM). Under
#             TCG a guest keeps about one host core busy, whatever its
#             vCPUs: 4 single-CPU guests (2 kernels x 2) share 2 cores.
#   VM_JOBS   guests at once (default: as many as memory allows, VM_MEM
#             + 512 MB each; under KVM also at most one per 2 cores)
#   VM_MEM    each guest's memory (default 3072 MB)
#   VM_TIMEOUT  each guest's bound (default 5400 s; each group has its own,
#             KERNEL_TIMEOUT, 900 s under TCG)
#   KERNELS_MD  the table to write (default docs/kernels.md; "" for none)
# Exit 1 when a group failed on any kernel.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

# The groups whose outcome depends on the kernel: the socket hooks (tcp,
# udp, refuse, endpoints with B21's reaper, inline, sockstate, udp_peer,
# affinity), the optional features and their fallbacks (features,
# tc_filters, nodeport_tc_filters), the per-packet path (nodeport,
# packets), the verifier and attach probes (probes), pinned state across a
# restart (restart), ferryctl status's feature report (status), and the backend
# selection algorithms (lb_algorithms: bpf_loop, atomics, the sock_release
# hook; lb_external: the same from outside, XDP metadata to tc). Not the API
# client's groups, the unit tests or the fuzzers, whose outcome does not
# depend on the kernel.
KERNEL_GROUPS="tcp udp refuse endpoints inline sockstate udp_peer affinity features tc_filters
nodeport_tc_filters nodeport packets probes restart status lb_algorithms lb_external"
read -r -d '' -a group_list <<<"${TEST_GROUPS:-$KERNEL_GROUPS}"
TEST_GROUPS=${group_list[*]}
KERNELS=${KERNELS:-host 6.1 6.12}
BUILD=${BUILD:-build}
MD=${KERNELS_MD-docs/kernels.md}
export VM_MEM=${VM_MEM:-3072} VM_TIMEOUT=${VM_TIMEOUT:-5400}
out=$BUILD/kernels
mkdir -p "$out"

# How long each group took in a TCG guest (seconds, 6.1 and 6.12 within
# 15%; four single-CPU guests on 2 loaded cores), to deal the groups over a
# kernel's guests longest first; a group not listed counts as 60.
declare -A GROUP_SECONDS=(
	[nodeport_tc_filters]=485 [lb_algorithms]=420 [lb_external]=395
	[sockstate]=380 [nodeport]=340 [features]=245 [restart]=240 [udp]=225
	[affinity]=210 [probes]=205 [endpoints]=165 [status]=150 [refuse]=140
	[inline]=130 [tcp]=100 [tc_filters]=90 [packets]=15
)

# The command a guest (or the host) runs: GROUPS, then, with FEATURES=1, the
# features ferryd finds. Under TCG a group's time limit is 3 times the
# host's (the tests' own waits are for conditions and are not scaled). In a
# guest the test logs are written to a tmpfs over $BUILD/test-logs and
# copied to $out/logs-K at the end: ferryd's debug log has some 1,600 lines
# per start, and a write over 9p is a round trip to QEMU that cost 10-25 s a
# start under TCG; guests side by side share the checkout, too.
# shellcheck disable=SC2016 # expanded in the guest
guest_cmd() {
	local k=$1 features=$2
	shift 2
	printf 'echo "# kernel $(uname -r) accel ${FERRY_VM_ACCEL:-host}"; '
	printf 'export BUILD=%q; ' "$BUILD"
	if [ "$k" != host ]; then
		printf 'mkdir -p %q %q && ' "$out/logs-$k" "$BUILD/test-logs"
		printf 'mount -t tmpfs tmpfs %q || exit 1; ' "$BUILD/test-logs"
	fi
	printf 'KERNEL_TIMEOUT=$([ "${FERRY_VM_ACCEL:-}" = tcg ] && echo 900 || echo 300) '
	printf 'tests/run.sh %s; ' "$*"
	[ "$features" != 1 ] || printf 'scripts/kernels/features.sh; '
	[ "$k" = host ] || printf 'cp -a %q/. %q' "$BUILD/test-logs" "$out/logs-$k"
}

# shards K: its groups dealt over VM_SPLIT lists, longest first, each to the
# list with the fewest seconds yet; one line per list ("SECONDS GROUP..."),
# the least busy first (it also runs features.sh).
shards() {
	local n=${VM_SPLIT:-2} g i best
	local -a list=() secs=()
	[ "$1" != host ] || n=1
	for ((i = 0; i < n; i++)); do list[i]='' secs[i]=0; done
	while read -r _ g; do
		best=0
		for ((i = 1; i < n; i++)); do [ "${secs[i]}" -ge "${secs[best]}" ] || best=$i; done
		list[best]+=" $g"
		secs[best]=$((secs[best] + ${GROUP_SECONDS[$g]:-60}))
	done < <(for g in $TEST_GROUPS; do echo "${GROUP_SECONDS[$g]:-60} $g"; done | sort -rn)
	for ((i = 0; i < n; i++)); do [ -z "${list[i]}" ] || echo "${secs[i]}${list[i]}"; done | sort -n
}

# run_shard K I GROUPS...: one guest (the host for K=host), its log in
# $out/K.I.log, its start and end (epoch seconds) in $out/K.I.span; list 0
# also runs features.sh.
run_shard() {
	local k=$1 i=$2 start kdir rc
	shift 2
	start=$(date +%s)
	if [ "$k" = host ]; then
		bash -c "$(guest_cmd host 1 "$@")" >"$out/host.$i.log" 2>&1
		rc=$?
	else
		kdir=$(scripts/kernels/fetch.sh "$k") || return 1
		scripts/kernels/vm.sh "$kdir" bash -c "$(guest_cmd "$k" "$([ "$i" = 0 ] && echo 1)" "$@")" \
			>"$out/$k.$i.log" 2>&1
		rc=$?
	fi
	echo "$start $(date +%s)" >"$out/$k.$i.span"
	echo "# $k ($*): exit $rc after $(($(date +%s) - start)) s ($out/$k.$i.log)"
}

# join K: its lists' logs in $out/K.log, and in $out/K.time the seconds from
# its first guest's start to its last one's end.
join() {
	local k=$1
	cat "$out/$k".[0-9]*.log >"$out/$k.log"
	cat "$out/$k".[0-9]*.span | awk 'NR == 1 || $1 < s {s = $1} $2 > e {e = $2} END {print e - s}' >"$out/$k.time"
}

if [ -z "${VM_CPUS:-}" ]; then
	if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then VM_CPUS=2; else VM_CPUS=1; fi
fi
export VM_CPUS
jobs=${VM_JOBS:-}
if [ -z "$jobs" ]; then
	avail=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
	jobs=$((avail / (VM_MEM + 512)))
	if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] && [ "$jobs" -gt $(($(nproc) / 2)) ]; then
		jobs=$(($(nproc) / 2))
	fi
	[ "$jobs" -ge 1 ] || jobs=1
fi

# Every kernel's lists, busiest first, so that the longest start first.
logs=()
guests=0
declare -a queue=()
for k in $KERNELS; do
	logs+=("$k=$out/$k.log")
	rm -f "$out/$k".[0-9]*.log "$out/$k".[0-9]*.span
	i=0
	while read -r secs groups; do
		queue+=("$secs $k $i $groups")
		i=$((i + 1))
	done < <(shards "$k")
done
for line in "${queue[@]}"; do
	read -r _ k i groups <<<"$line"
	if [ "$k" = host ]; then
		# shellcheck disable=SC2086 # the list's groups, one word each
		run_shard host "$i" $groups # never beside a guest: it would be timed under their load
		join host
	fi
done
while read -r _ k i groups; do
	[ "$k" != host ] || continue
	[ "$guests" != 0 ] || guests_start=$SECONDS
	guests=$((guests + 1))
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
	# shellcheck disable=SC2086 # the list's groups, one word each
	run_shard "$k" "$i" $groups </dev/null &
done < <(printf '%s\n' "${queue[@]}" | sort -rn)
wait
for k in $KERNELS; do [ "$k" = host ] || join "$k"; done
guest_note=()
if [ "$guests" != 0 ]; then
	secs=$((SECONDS - guests_start))
	[ "$jobs" -le "$guests" ] || jobs=$guests
	echo "# $guests guests in $secs s, $jobs at once"
	guest_note=(--note "The Debian kernels ran in $((secs / 60)) min $((secs % 60)) s: $guests guests of $VM_CPUS CPU each, $jobs at once ($(nproc) cores), each kernel's groups dealt over ${VM_SPLIT:-2}.")
fi

python3 scripts/kernels/table.py --groups "$TEST_GROUPS" ${MD:+--out "$MD"} "${guest_note[@]}" "${logs[@]}"
