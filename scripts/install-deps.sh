#!/usr/bin/env bash
# Installs the Debian packages ferry builds, tests and demos with.
# --check: only report (exit 1) when something is missing.
# --kernels: also the packages of the kernel matrix (make test-kernels:
# QEMU, a static busybox for the guests' initramfs, kmod for the kernel
# packages' module index and the guests' modprobe).
set -euo pipefail

kernels=0
[ "${1:-}" = --kernels ] && { kernels=1; shift; }

packages=(
	clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev pkg-config make gcc
	libcjson-dev libyaml-dev libcurl4-openssl-dev libcmocka-dev libmicrohttpd-dev
	iproute2 util-linux socat curl dnsutils python3 openssl ethtool
	iptables nftables gnuplot-nox
)
[ "$kernels" = 0 ] || packages+=(qemu-system-x86 busybox-static kmod)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${1:-}" = "--check" ]; then
	[ ${#missing[@]} -eq 0 ] && exit 0
	echo "missing packages: ${missing[*]}" >&2
	exit 1
fi
[ ${#missing[@]} -eq 0 ] && { echo "all dependencies installed"; exit 0; }
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
