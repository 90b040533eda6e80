#!/usr/bin/env bash
# The benchmark's floor: build/bench/minimal.bpf.o (one hash lookup per
# connect) on a cgroup of the caller's.
#
#   minimal.sh attach CGROUP PINDIR   load the program, pin it as PINDIR/prog
#                                     and its map as PINDIR/min_svc, attach
#                                     it to CGROUP (connect4, multi)
#   minimal.sh fill PINDIR STATE.json min_svc := each service port's
#                                     ClusterIP:port -> its first endpoint
#                                     (one `bpftool batch file`)
#   minimal.sh detach CGROUP PINDIR   detach, then rm -rf PINDIR
#
# CGROUP must be a cgroup v2 folder below the root of the cgroup2 mount
# (never the root itself); PINDIR a new folder on bpffs (/sys/fs/bpf/...).
# Environment: BUILD (default REPO/build), BPFTOOL (default bpftool),
# PYTHON (default python3).
set -eu

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$REPO/build}
BPFTOOL=${BPFTOOL:-bpftool}
PYTHON=${PYTHON:-python3}
OBJ=$BUILD/bench/minimal.bpf.o

die() {
	echo "minimal.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: minimal.sh attach CGROUP PINDIR | fill PINDIR STATE.json | detach CGROUP PINDIR" >&2
	exit 2
}

# check_cgroup DIR: a folder of a cgroup2 mount, not the mount's root.
check_cgroup() {
	local cg mnt
	cg=$(realpath -e "$1" 2>/dev/null) || die "no cgroup $1"
	[ -f "$cg/cgroup.procs" ] || die "$cg is not a cgroup"
	while read -r _ mnt fstype _; do
		[ "$fstype" = cgroup2 ] || continue
		[ "$cg" != "$mnt" ] || die "refusing the root of the cgroup2 mount ($mnt)"
		case $cg in "$mnt"/*) return 0 ;; esac
	done </proc/mounts
	die "$cg is not under a cgroup2 mount"
}

# check_pindir DIR: a folder below a bpffs mount (not the mount itself).
check_pindir() {
	local d mnt
	d=$(realpath -m "$1")
	while read -r _ mnt fstype _; do
		[ "$fstype" = bpf ] || continue
		[ "$d" != "$mnt" ] || die "refusing the bpffs mount itself ($mnt) as PINDIR"
		case $d in "$mnt"/*) return 0 ;; esac
	done </proc/mounts
	die "$d is not on bpffs (mount -t bpf bpf /sys/fs/bpf)"
}

attach() {
	local cg=$1 pins=$2
	check_cgroup "$cg"
	check_pindir "$pins"
	[ -f "$OBJ" ] || die "$OBJ missing (make bench-tools)"
	[ ! -e "$pins" ] || die "$pins exists already"
	mkdir "$pins"
	if ! "$BPFTOOL" prog load "$OBJ" "$pins/prog" type cgroup/connect4 pinmaps "$pins" ||
		! "$BPFTOOL" cgroup attach "$cg" connect4 pinned "$pins/prog" multi; then
		rm -rf "$pins"
		die "could not load and attach $OBJ"
	fi
}

fill() {
	local pins=$1 state=$2 batch rc=0
	check_pindir "$pins"
	[ -e "$pins/min_svc" ] || die "$pins/min_svc missing (minimal.sh attach first)"
	[ -r "$state" ] || die "cannot read $state"
	batch=$(mktemp "${TMPDIR:-/tmp}/fyb-minimal.XXXXXX")
	if "$PYTHON" "$REPO/tests/bench/rules.py" minimal "$state" "$pins" >"$batch"; then
		# An empty batch is not an error: a state without endpoints.
		if [ -s "$batch" ] && [ "$(wc -w <"$batch")" -gt 0 ]; then
			"$BPFTOOL" batch file "$batch" >/dev/null || rc=$?
		fi
	else
		rc=$?
	fi
	rm -f "$batch"
	[ "$rc" = 0 ] || die "filling $pins/min_svc from $state failed"
}

detach() {
	local cg=$1 pins=$2 rc=0
	check_pindir "$pins"
	if [ -e "$pins/prog" ] && [ -d "$cg" ]; then
		"$BPFTOOL" cgroup detach "$cg" connect4 pinned "$pins/prog" || rc=1
	fi
	rm -rf "$pins"
	[ "$rc" = 0 ] || die "could not detach $pins/prog from $cg"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
attach) [ $# -eq 2 ] || usage; attach "$@" ;;
fill) [ $# -eq 2 ] || usage; fill "$@" ;;
detach) [ $# -eq 2 ] || usage; detach "$@" ;;
*) usage ;;
esac
