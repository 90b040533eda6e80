#!/usr/bin/env bash
# bpf/lib/icmp.h and bpf/lib/crc32c.h under BPF_PROG_TEST_RUN
# (build/tests/pktlib_test on tests/helpers/pktlib_test.bpf.c): crafted IPv4
# and IPv6 TCP, UDP and SCTP frames through test programs that call the
# helpers as the per-packet path does, at XDP and at tc.
#   - no backend (B14): the ICMP / ICMPv6 port unreachable, every byte
#     against a reply built in userspace, checksums verified on their own;
#     IPv4 options quoted; the per-CPU rate limit (N replies, the N+1th
#     suppressed and counted, the bucket refills; 0 sends none)
#   - SCTP (B32): the CRC32c after a port rewrite against a bitwise CRC in
#     userspace (itself checked on RFC 3720 B.4's vectors), from 12 bytes to
#     the largest frame PROG_TEST_RUN takes (one page); above the limit
#     dropped and counted (STAT_NP_SCTP_TOO_LONG).
# This kernel has no SCTP module: PROG_TEST_RUN is the only receiver of the
# SCTP packets. Nothing is attached anywhere; the maps are the test
# object's own and go with it.

# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

need_root
DRIVER=$BUILD/tests/pktlib_test
if [ ! -x "$DRIVER" ]; then
	not_ok "$GROUP setup" "$DRIVER missing (make BUILD=... \$BUILD/tests/pktlib_test)"
	finish
fi

# The driver prints the cases' lines in lib.sh's format; count them here.
timeout -k 5 60 "$DRIVER" >"$WORK/out" 2>"$WORK/err"
rc=$?
while IFS= read -r line; do
	case $line in
	'ok - '*) PASS=$((PASS + 1)) ;;
	'not ok - '*) FAIL=$((FAIL + 1)) ;;
	esac
	printf '%s\n' "$line"
done <"$WORK/out"
if [ "$rc" != 0 ] && [ "$FAIL" = 0 ]; then
	not_ok "pktlib_test" "exited $rc: $(tail -n 3 "$WORK/err" | tr '\n' ' ')"
fi
finish
