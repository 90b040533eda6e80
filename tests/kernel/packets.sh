#!/usr/bin/env bash
# The per-packet datapath (XDP and tc) on crafted packets through
# BPF_PROG_TEST_RUN (tests/helpers/pkt_test.c): every rewrite and its
# checksums, the drops, and what goes to the stack untouched.
#
# A namespace of its own gives the FIB what a node would have: ext0 (the
# external device) with the node addresses and static neighbours for the
# client and node 2, node 2's pod ranges routed via node 2, this node's pod
# ranges on another device (a veth: this kernel has no dummy), forwarding on (bpf_fib_lookup needs it);
# routes of MTU 1400 (locked, so that forwarding honours them) to a pod range of node 2 and to a
# client, for the path MTU cases.

# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

PKT_TEST=$BUILD/tests/pkt_test
NS=${P}pk

need_root
if [ ! -x "$PKT_TEST" ]; then
	not_ok "$GROUP setup" "$PKT_TEST missing (make $PKT_TEST)"
	finish
fi
ip netns add "$NS" || { not_ok "$GROUP setup" "ip netns add $NS"; finish; }
PODS+=("$NS")  # removed by cleanup

in_ns() { ip netns exec "$NS" "$@"; }

in_ns sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 &&
	ip -n "$NS" link set lo up &&
	ip -n "$NS" link add ext0 address 02:00:00:00:01:01 type veth peer name ext1 &&
	ip -n "$NS" link add pods0 type veth peer name pods1 &&
	ip -n "$NS" link set ext0 up &&
	ip -n "$NS" link set ext1 up &&
	ip -n "$NS" link set pods0 up &&
	ip -n "$NS" link set pods1 up &&
	ip -n "$NS" addr add 192.0.2.1/24 dev ext0 &&
	ip -n "$NS" addr add 2001:db8::1/64 dev ext0 nodad &&
	ip -n "$NS" neigh add 192.0.2.2 lladdr 02:00:00:00:00:02 dev ext0 nud permanent &&
	ip -n "$NS" neigh add 192.0.2.100 lladdr 02:00:00:00:00:64 dev ext0 nud permanent &&
	ip -n "$NS" neigh add 2001:db8::2 lladdr 02:00:00:00:00:02 dev ext0 nud permanent &&
	ip -n "$NS" neigh add 2001:db8::100 lladdr 02:00:00:00:00:64 dev ext0 nud permanent &&
	ip -n "$NS" route add 10.2.0.0/16 via 192.0.2.2 dev ext0 &&
	ip -n "$NS" route add 2001:db8:2::/64 via 2001:db8::2 dev ext0 &&
	ip -n "$NS" route add 10.1.0.0/16 dev pods0 &&
	ip -n "$NS" route add 2001:db8:1::/64 dev pods0 &&
	ip -n "$NS" route add 10.2.9.0/24 via 192.0.2.2 dev ext0 mtu lock 1400 &&
	ip -n "$NS" route add 2001:db8:2:9::/64 via 2001:db8::2 dev ext0 mtu lock 1400 &&
	ip -n "$NS" neigh add 192.0.2.102 lladdr 02:00:00:00:00:66 dev ext0 nud permanent &&
	ip -n "$NS" route add 192.0.2.102/32 dev ext0 mtu lock 1400 ||
	{ not_ok "$GROUP setup" "namespace $NS"; finish; }

# pkt_test's lines are this group's cases; an exit without a failing case
# (a crash half-way) is one too.
while IFS= read -r line; do
	case $line in
	"ok - "*) ok "${line#ok - }" ;;
	"not ok - "*)
		line=${line#not ok - }
		not_ok "${line%%: *}" "${line#*: }"
		;;
	"pkt_test exit "*)
		rc=${line#pkt_test exit }
		[ "$rc" = 0 ] || [ "$FAIL" -gt 0 ] || not_ok "pkt_test" "exit $rc"
		;;
	*) note "$line" ;;
	esac
done < <(in_ns "$PKT_TEST" ext0 2>&1; echo "pkt_test exit $?")
finish
