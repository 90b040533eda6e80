#!/usr/bin/env bash
# Runs one command on another kernel, virtme-style: QEMU boots the kernel of
# a package scripts/kernels/fetch.sh unpacked, with a small initramfs
# (busybox and the package's own virtio_pci, 9pnet_virtio, 9p and overlay
# modules) that mounts this machine's root read-only over 9p under a tmpfs
# overlay, the checkout read-write at its own path, proc, sysfs, cgroup2,
# bpffs, debugfs, and the package's modules at /lib/modules (modprobe
# works). No network device: tests use loopback and their own namespaces.
# No address space randomization (norandmaps): TCG keeps translated code by
# virtual and physical address, so a program whose libraries land where
# they did before reuses it; with randomization every start translated
# anew (starting python3, curl, bash, ip, nsenter and ferryctl took 29%
# less time with it off, interleaved in one guest under TCG).
# The command's output is printed as it runs; the exit status is the
# command's, 124 when the guest ran out of time, 125 when it did not boot.
#
#   scripts/kernels/vm.sh KERNEL_DIR COMMAND...     (run as root)
#   VM_MEM (MB, default 3072), VM_CPUS (2), VM_TIMEOUT (s, default 1800),
#   VM_ACCEL (auto|kvm|tcg; auto: KVM when /dev/kvm runs the guest, else TCG),
#   VM_REPO (the checkout shared read-write; default this one).
set -uo pipefail

kdir=${1:?usage: vm.sh KERNEL_DIR COMMAND...}
shift
[ $# -gt 0 ] || { echo "vm.sh: no command" >&2; exit 2; }
repo=${VM_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
mem=${VM_MEM:-3072}
cpus=${VM_CPUS:-2}
limit=${VM_TIMEOUT:-1800}
ver=$(basename "$(ls -d "$kdir"/root/lib/modules/*)")
vmlinuz=$kdir/root/boot/vmlinuz-$ver

# initramfs: built once per kernel package, kept next to it.
initramfs() {
	local out=$kdir/initramfs.cpio.gz tmp m
	[ -s "$out" ] && [ "$out" -nt "$0" ] && [ "$out" -nt "$(dirname "$0")/guest-init" ] &&
		[ "$out" -nt /bin/busybox ] && return 0
	tmp=$(mktemp -d)
	mkdir -p "$tmp"/{bin,mod,proc,sys,dev,lower,rw,newroot}
	cp /bin/busybox "$tmp/bin/busybox"
	for m in sh mount mkdir insmod switch_root cat echo sleep poweroff; do
		ln -s busybox "$tmp/bin/$m"
	done
	# modprobe --show-depends lists each module after what it needs.
	for m in virtio_pci 9pnet_virtio 9p overlay; do
		modprobe -d "$kdir/root" -S "$ver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
	done | awk '!seen[$0]++' | while read -r m; do
		case $m in
		*.xz) xz -dc "$m" >"$tmp/mod/$(basename "$m" .xz)" ;;
		*.zst) zstd -dqc "$m" >"$tmp/mod/$(basename "$m" .zst)" ;;
		*) cp "$m" "$tmp/mod/" ;;
		esac
		basename "${m%.xz}" .zst >>"$tmp/modules"
	done
	cp "$(dirname "$0")/guest-init" "$tmp/init"
	chmod 755 "$tmp/init"
	# Guests of one kernel may start together: each writes its own file and
	# renames it (atomic), the last one wins.
	(cd "$tmp" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$out.$$" &&
		mv "$out.$$" "$out"
	rm -rf "$tmp"
	[ -s "$out" ]
}

# accel: kvm only when /dev/kvm opens and is not the nested kvm_pvm, which
# fails on these kernels' decompressor (cmpxchg16b emulation).
accel() {
	case ${VM_ACCEL:-auto} in
	kvm | tcg) echo "$VM_ACCEL"; return ;;
	esac
	if [ -d /sys/module/kvm_pvm ] || ! { exec 9<>/dev/kvm; } 2>/dev/null; then
		echo tcg
	else
		exec 9>&-
		echo kvm
	fi
}

# boot ACCEL IO: one guest; 0 when it ran the command (IO/rc written).
boot() {
	local acc=$1 io=$2 qemu_accel rc boot_limit=60
	if [ "$acc" = kvm ]; then
		qemu_accel=(-accel kvm -cpu host)
	else
		# shellcheck disable=SC2054 # one argument: tcg with its option
		qemu_accel=(-accel tcg,thread=multi -cpu max)
		boot_limit=300
	fi
	: >"$io/out"
	tail -n +1 -f "$io/out" &
	TAIL_PID=$!
	qemu-system-x86_64 "${qemu_accel[@]}" -machine q35 \
		-smp "$cpus" -m "$mem" -display none -monitor none -no-reboot \
		-serial "file:$io/console.log" -nic none \
		-kernel "$vmlinuz" -initrd "$kdir/initramfs.cpio.gz" \
		-append "console=ttyS0 quiet panic=-1 norandmaps ferry.accel=$acc ferry.repo=$repo ferry.mods=$kdir/root/lib/modules/$ver" \
		-virtfs local,path=/,mount_tag=root,security_model=none,readonly=on,multidevs=remap \
		-virtfs "local,path=$repo,mount_tag=repo,security_model=none,multidevs=remap" \
		-virtfs "local,path=$io,mount_tag=io,security_model=none,multidevs=remap" \
		</dev/null >>"$io/qemu.log" 2>&1 &
	QEMU_PID=$!
	# The guest marks IO/started before the command: a guest that does not
	# within the boot bound is stopped (a hung KVM boot falls back to TCG).
	rc=0
	wait_for "$QEMU_PID" "$boot_limit" test -f "$io/started" &&
		wait_for "$QEMU_PID" "$limit" false
	if kill -0 "$QEMU_PID" 2>/dev/null; then
		rc=124
		kill "$QEMU_PID"
		wait_for "$QEMU_PID" 10 false || kill -9 "$QEMU_PID"
	fi
	wait "$QEMU_PID" 2>/dev/null
	sleep 1 # tail's last read (it polls once a second)
	kill "$TAIL_PID" 2>/dev/null
	wait "$TAIL_PID" 2>/dev/null
	[ -f "$io/started" ] && [ "$rc" = 124 ] && echo "vm.sh: the guest ran out of time ($limit s)" >&2
	return "$rc"
}

# wait_for PID SECONDS CMD...: until CMD holds (0) or PID ended or the time
# is up (1 for both).
wait_for() {
	local pid=$1 end=$((SECONDS + $2))
	shift 2
	while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $end ]; do
		"$@" && return 0
		sleep 0.5
	done
	"$@"
}

[ -f "$vmlinuz" ] || { echo "vm.sh: no $vmlinuz (scripts/kernels/fetch.sh)" >&2; exit 2; }
initramfs || { echo "vm.sh: could not build the initramfs" >&2; exit 2; }
io=$(mktemp -d /tmp/ferry-vm.XXXXXX)
QEMU_PID='' TAIL_PID=''
# Ends only the guest and the tail this script started.
trap '[ -z "$QEMU_PID" ] || kill "$QEMU_PID" 2>/dev/null; [ -z "$TAIL_PID" ] || kill "$TAIL_PID" 2>/dev/null; rm -rf "$io"' EXIT
trap 'exit 130' INT TERM
printf '%q ' "$@" >"$io/cmd"
acc=$(accel)
boot "$acc" "$io"
qrc=$?
if [ ! -f "$io/started" ] && [ "$acc" = kvm ]; then
	echo "vm.sh: the guest did not boot under KVM; again under TCG" >&2
	acc=tcg
	boot "$acc" "$io"
	qrc=$?
fi
if [ ! -f "$io/rc" ]; then
	[ -f "$io/started" ] || { echo "vm.sh: the guest did not boot; console:" >&2; tail -n 20 "$io/console.log" "$io/qemu.log" >&2; exit 125; }
	[ "$qrc" = 124 ] && exit 124
	echo "vm.sh: the guest stopped before the command ended; console:" >&2
	tail -n 20 "$io/console.log" >&2
	exit 125
fi
exit "$(cat "$io/rc")"
