#!/usr/bin/env bash
# bpf/lib/icmp.h and bpf/lib/crc32c.h under BPF_PROG_TEST_RUN
# (build/tests/pktlib_test on tests/helpers/pktlib_test.bpf.c): crafted IPv4
# and IPv6 TCP, UDP and SCTP frames through test programs that call the
# helpers as the per-packet path does, at XDP and at tc.
#   - no backend (B14): the ICMP / ICMPv6 port unreachable, every byte
#     against a reply built in userspace, checksums verified on their own;
#     IPv4 options quoted; the per-CPU rate limit (N replies, the N+1th
#     suppressed and counted, the bucket refills; 0 sends none)
#   - too long for the route: ICMP fragmentation needed (IPv4, next-hop
#     MTU) and ICMPv6 packet too big (MTU), every byte and checksum,
#     counted apart (STAT_NP_TOO_BIG), held back by the same rate limit
#   - SCTP (B32): the CRC32c after a port rewrite against a bitwise CRC in
#     userspace (itself checked on RFC 3720 B.4's vectors), from 12 bytes to
#     the largest frame PROG_TEST_RUN takes (one page); above the limit
#     dropped and counted (STAT_NP_SCTP_TOO_LONG).
#   - a real receiver: the ICMP program attached (tc ingress, XDP generic
#     and native) to a veth of two namespaces of this run, a listener behind it, and a
#     client whose own stack must turn the reply into ECONNREFUSED, with
#     checksum offload on (CHECKSUM_PARTIAL at tc) and off (the client's
#     stack verifies every checksum).
# This kernel has no SCTP module: PROG_TEST_RUN is the only receiver of the
# SCTP packets. The maps are the test object's own and go with it.

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

# --- a real receiver ---------------------------------------------------------
# Client a0 (192.0.2.10, 2001:db8::10) in $CL, server b0 (192.0.2.1,
# 2001:db8::1) in $SV with podserver.py on TCP and UDP 30080: without the
# program every probe is answered, so a refusal can only be the reply's.
CL=${P}c
SV=${P}s
PORT=30080

probe() { ip netns exec "$CL" "$PYTHON" "$PROBE" "$@" --timeout 3 2>&1 | head -n 1; }

veth_up() {
	ip netns add "$CL" && PODS+=("$CL") && ip netns add "$SV" && PODS+=("$SV") &&
		ip -n "$SV" link add b0 type veth peer name a0 netns "$CL" &&
		ip -n "$SV" link set lo up && ip -n "$CL" link set lo up &&
		ip -n "$SV" link set b0 up && ip -n "$CL" link set a0 up &&
		ip -n "$SV" addr add 192.0.2.1/24 dev b0 && ip -n "$CL" addr add 192.0.2.10/24 dev a0 &&
		ip -n "$SV" addr add 2001:db8::1/64 dev b0 nodad &&
		ip -n "$CL" addr add 2001:db8::10/64 dev a0 nodad
}

if ! veth_up >"$WORK/veth.log" 2>&1; then
	not_ok "real receiver setup" "$(tail -n 2 "$WORK/veth.log" | tr '\n' ' ')"
	finish
fi
ip netns exec "$SV" "$PYTHON" "$PODSERVER" --name srv --tcp $PORT --udp $PORT \
	--ready-file "$WORK/srv.ready" >"$WORK/srv.log" 2>&1 &
PIDS+=($!)
wait_file "$WORK/srv.ready" || { not_ok "real receiver setup" "podserver not ready"; finish; }
for a in 192.0.2.1 2001:db8::1; do
	expect_match "without the program: TCP to [$a]:$PORT is answered" "$(probe tcp $a $PORT)" '^reply=srv'
	expect_match "without the program: connected UDP to [$a]:$PORT is answered" \
		"$(probe udp $a $PORT --connect)" '^reply=srv'
done

# A TCP refusal may come with the SYN's retransmission (1 s): on one host
# the first reply can reach the client while connect() still holds the
# socket's lock, and the kernel drops it (TcpExtLockDroppedIcmps).
# attach NS HOOK DEV: the driver holding HOOK's program on DEV, in the
# background; its pid in APID once it says "attached".
attach() {
	local out=$WORK/attach-$2-$3
	ip netns exec "$1" "$DRIVER" attach "$2" "$3" >"$out" 2>&1 &
	APID=$!
	PIDS+=("$APID")
	wait_until 10 grep -q '^attached' "$out" && return 0
	not_ok "$2: attach to $3" "$(tail -n 2 "$out" | tr '\n' ' ')"
	stop_pid "$APID"
	return 1
}

# Native XDP_TX out of a veth needs an XDP program on its peer: a0 gets
# one that passes everything.
for hook in tc xdp xdp-native; do
	peer=
	if [ $hook = xdp-native ]; then
		attach "$CL" xdp-pass a0 || continue
		peer=$APID
	fi
	if ! attach "$SV" $hook b0; then
		[ -n "$peer" ] && stop_pid "$peer"
		continue
	fi
	apid=$APID
	case $hook in
	tc) name=tc ;;
	xdp) name="XDP (generic)" ;;
	*) name="XDP (native)" ;;
	esac
	for offload in on off; do
		if ! ip netns exec "$CL" ethtool -K a0 tx $offload rx $offload >/dev/null 2>&1; then
			not_ok "$name: client checksum offload $offload" "ethtool -K a0 tx $offload rx $offload failed"
			continue
		fi
		what="client checksum offload $offload"
		[ $offload = on ] && what="$what (CHECKSUM_PARTIAL)"
		for a in 192.0.2.1 2001:db8::1; do
			expect_match "B14 $name, $what: TCP to [$a]:$PORT refused by the port unreachable" \
				"$(probe tcp $a $PORT)" '^error=ECONNREFUSED'
			expect_match "B14 $name, $what: connected UDP to [$a]:$PORT gets ECONNREFUSED" \
				"$(probe udp $a $PORT --connect)" '^error=ECONNREFUSED'
		done
	done
	ip netns exec "$CL" ethtool -K a0 tx on rx on >/dev/null 2>&1
	stop_pid "$apid"
	[ -n "$peer" ] && stop_pid "$peer"
done
finish
