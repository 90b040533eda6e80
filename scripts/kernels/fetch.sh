#!/usr/bin/env bash
# Fetches a Debian kernel package for the kernel matrix into the cache, never
# into this machine's /boot: apt-get download (apt checks it against the
# signed archive index), its SHA256 compared again with apt-cache's record,
# then unpacked with dpkg-deb -x and its module index made (depmod, which the
# package's postinst would run). Prints the unpacked folder.
#
#   scripts/kernels/fetch.sh SERIES     SERIES: 6.1 or 6.12 (the newest
#                                       linux-image-*-amd64-unsigned apt has)
#   KERNEL_CACHE (default /var/cache/ferry-kernels) holds one folder per package.
# Without apt's package or the network, the newest package of the series
# already in the cache is used (a note on stderr says so).
set -euo pipefail

series=${1:?usage: fetch.sh 6.1|6.12}
cache=${KERNEL_CACHE:-/var/cache/ferry-kernels}

case $series in
6.1) pattern='^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' ;;
6.12) pattern='^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' ;;
*) echo "fetch.sh: unknown kernel series '$series' (6.1 or 6.12)" >&2; exit 2 ;;
esac

# cached: the newest package of the series already unpacked in the cache
# (what a machine without network uses), with a note saying so.
cached() {
	local d
	d=$(for d in "$cache"/*/.unpacked; do basename "$(dirname "$d")"; done 2>/dev/null |
		grep -E "$pattern" | sort -V | tail -n 1) || true
	[ -n "$d" ] || { echo "fetch.sh: $1, and the cache $cache has no $series kernel" >&2; exit 1; }
	echo "fetch.sh: $1; using the cached $d" >&2
	echo "$cache/$d"
	exit 0
}

pkg=$(apt-cache pkgnames linux-image- | grep -E "$pattern" | sort -V | tail -n 1)
[ -n "$pkg" ] || cached "apt has no package for $series (apt-get update?)"
dir=$cache/$pkg
if [ -f "$dir/.unpacked" ]; then
	echo "$dir"
	exit 0
fi

mkdir -p "$dir"
rm -rf "$dir/root" "$dir"/*.deb
# -o ...Sandbox: the cache belongs to root, not to apt's _apt user.
if ! (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2); then
	rm -rf "$dir"
	cached "apt-get download $pkg failed (no network?)"
fi
deb=$(ls "$dir"/*.deb)
want=$(apt-cache show "$pkg" | sed -n 's/^SHA256: //p' | head -n 1)
got=$(sha256sum "$deb" | cut -d' ' -f1)
if [ -z "$want" ] || [ "$want" != "$got" ]; then
	echo "fetch.sh: $deb: SHA256 $got, apt says '${want:-none}'" >&2
	exit 1
fi
dpkg-deb -x "$deb" "$dir/root"
ver=$(basename "$(ls -d "$dir"/root/lib/modules/*)")
[ -f "$dir/root/boot/vmlinuz-$ver" ] || { echo "fetch.sh: $pkg has no vmlinuz-$ver" >&2; exit 1; }
depmod -b "$dir/root" "$ver"
echo "$got  $(basename "$deb")" >"$dir/SHA256"
rm -f "$deb"
touch "$dir/.unpacked"
echo "$dir"
