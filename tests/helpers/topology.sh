# shellcheck shell=bash
# shellcheck disable=SC2153,SC2034 # NODE, TOPOLOGY, ...: tests/lib.sh's
# The north-south test topology (tests/kernel/nodeport*.sh, tests/bench/
# nodeport_rate.sh): source tests/lib.sh first, then this file.
#
#   client a (${P}a) 192.0.2.10  2001:db8::10  -+
#   client b (${P}b) 192.0.2.20  2001:db8::20  -+- LAN (${P}l): bridge br0,
#   node 2   (${P}m) 192.0.2.2   2001:db8::2   -+  no address of its own
#   node 1   ($NODE) 192.0.2.1   2001:db8::1   -+  (lan0 in node 1; n1 its peer)
#
# Node 1 runs ferryd (nsenter --net: bpffs and the cgroup mount stay in
# sight), with XDP on lan0. Pods are namespaces behind a node on routed
# veths (as Cilium and Calico wire them): pod address /32 and /128 on its
# eth0, the node's side (vK) holding the node's pod gateway 198.18.N.1 and
# fd00:198:18:N::1, a host route per pod. Node N's pods: 198.18.N.0/24,
# fd00:198:18:N::/64. Node 1 routes node 2's pod range via node 2; the
# clients route the LB, external and pod ranges via node 1 (as the
# network in front of a cluster does), so that "direct to the pod" exists
# as a baseline.
#
# What this machine needs for XDP on veths (issue 12), done here:
#   - XDP_TX back out lan0 needs an XDP program on its peer: a minimal
#     XDP_PASS program (compiled here with clang) on n1;
#   - XDP_REDIRECT into a pod's veth needs XDP or GRO on its peer: GRO on
#     every pod's eth0;
#   - native XDP loses the partial-checksum marking of frames it receives:
#     tx checksum offload off on every veth that sends towards lan0 (the
#     clients', node 2's and n1).
#
# Everything is made under lib.sh's run prefix $P and removed by its
# cleanup (the namespaces are listed in PODS; deleting a namespace removes
# its veths and their XDP programs); ferryd's datapath is removed from
# inside node 1 first (topo_cleanup), so that its devices are in sight.

TOPO_LAN=${P}l
TOPO_N2=${P}m
TOPO_CA=${P}a
TOPO_CB=${P}b
declare -A TOPO_POD_NODE=() TOPO_POD_IDX=() TOPO_POD_PID=()
TOPO_XDP_PASS=$WORK/xdp_pass.o
TOPO_NODE_NAME="node-1"

# Node and client addresses.
N1_V4=192.0.2.1 N1_V6=2001:db8::1
N2_V4=192.0.2.2 N2_V6=2001:db8::2
CA_V4=192.0.2.10 CA_V6=2001:db8::10
CB_V4=192.0.2.20 CB_V6=2001:db8::20

topo_cleanup() {
	set +e
	topo_ferryd2_cleanup
	ferryd_stop
	if [ "$FERRYD_USED" = 1 ] && [ -x "$FERRYD" ] && [ -e "/run/netns/$NODE" ]; then
		in_node "$FERRYD" --cleanup --bpffs "$BPFFS" ${CG:+--cgroup "$CG"} >>"$FERRYD_LOG" 2>&1 ||
			echo "# cleanup: ferryd --cleanup in $NODE failed, see $FERRYD_LOG"
	fi
}
trap 'topo_cleanup; cleanup' EXIT

topo_fail() {
	not_ok "$GROUP setup" "$1"
	finish
}

# in_ns NETNS CMD...: CMD in NETNS (outside ferry's cgroup).
in_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

# in_ext a|b CMD...: CMD on external client a or b.
in_ext() {
	local ns=$TOPO_CA
	[ "$1" = b ] && ns=$TOPO_CB
	shift
	in_ns "$ns" "$@"
}

topo_ns() {
	ip netns add "$1" || return 1
	PODS+=("$1")
	ip -n "$1" link set lo up
}

# topo_xdp_pass: the XDP_PASS program the peers of XDP devices need.
topo_xdp_pass() {
	printf '%s\n' \
		'/* XDP_PASS, for the peer of a veth whose XDP program sends frames back out. */' \
		'__attribute__((section("xdp"), used)) int xdp_pass(void *ctx) { return 2; }' \
		'char _license[] __attribute__((section("license"), used)) = "GPL";' |
		clang -target bpf -O2 -c -x c - -o "$TOPO_XDP_PASS"
}

# topo_lan_port NETNS PORT ADDR4 ADDR6: NETNS's lan0 on the LAN bridge (its
# peer PORT), with the two addresses.
topo_lan_port() {
	local ns=$1 port=$2
	ip -n "$TOPO_LAN" link add "$port" type veth peer name lan0 netns "$ns" &&
		ip -n "$TOPO_LAN" link set "$port" master br0 up &&
		ip -n "$ns" addr add "$3/24" dev lan0 &&
		ip -n "$ns" addr add "$4/64" dev lan0 nodad &&
		ip -n "$ns" link set lan0 up
}

topo_forwarding() {
	in_ns "$1" sysctl -q -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 >/dev/null
}

# topo_up: the namespaces, the LAN, the routes, the test cgroup.
topo_up() {
	local c
	need_root
	command -v ethtool >/dev/null || topo_fail "ethtool not found (scripts/install-deps.sh)"
	topo_xdp_pass || topo_fail "clang could not build the XDP_PASS program"
	ip netns add "$NODE" || topo_fail "ip netns add $NODE"
	TOPOLOGY=1
	ip -n "$NODE" link set lo up
	mkdir "$CG" || topo_fail "mkdir $CG"
	for c in "$TOPO_LAN" "$TOPO_N2" "$TOPO_CA" "$TOPO_CB"; do
		topo_ns "$c" || topo_fail "ip netns add $c"
	done
	ip -n "$TOPO_LAN" link add br0 type bridge &&
		ip -n "$TOPO_LAN" link set br0 type bridge nf_call_iptables 0 nf_call_ip6tables 0 2>/dev/null
	ip -n "$TOPO_LAN" link set br0 up || topo_fail "LAN bridge"
	topo_lan_port "$NODE" n1 "$N1_V4" "$N1_V6" &&
		topo_lan_port "$TOPO_N2" n2 "$N2_V4" "$N2_V6" &&
		topo_lan_port "$TOPO_CA" ca "$CA_V4" "$CA_V6" &&
		topo_lan_port "$TOPO_CB" cb "$CB_V4" "$CB_V6" || topo_fail "LAN ports"
	topo_forwarding "$NODE" && topo_forwarding "$TOPO_N2" || topo_fail "forwarding in the nodes"
	ip -n "$NODE" route add 198.18.2.0/24 via "$N2_V4" &&
		ip -n "$NODE" -6 route add fd00:198:18:2::/64 via "$N2_V6" &&
		ip -n "$TOPO_N2" route add 198.18.1.0/24 via "$N1_V4" &&
		ip -n "$TOPO_N2" -6 route add fd00:198:18:1::/64 via "$N1_V6" || topo_fail "node routes"
	for c in "$TOPO_CA" "$TOPO_CB"; do
		ip -n "$c" route add 198.51.100.0/24 via "$N1_V4" &&
			ip -n "$c" route add 203.0.113.0/24 via "$N1_V4" &&
			ip -n "$c" route add 198.18.0.0/15 via "$N1_V4" &&
			ip -n "$c" -6 route add fd00:198:18::/48 via "$N1_V6" || topo_fail "routes in $c"
	done
	# Native XDP on lan0: its peer n1 needs an XDP program (XDP_TX), and
	# whoever sends towards lan0 must checksum in software.
	ip -n "$TOPO_LAN" link set dev n1 xdpdrv obj "$TOPO_XDP_PASS" sec xdp ||
		topo_fail "XDP_PASS on n1"
	in_ns "$TOPO_LAN" ethtool -K n1 tx off >/dev/null &&
		in_ns "$TOPO_N2" ethtool -K lan0 tx off >/dev/null &&
		in_ext a ethtool -K lan0 tx off >/dev/null &&
		in_ext b ethtool -K lan0 tx off >/dev/null || topo_fail "ethtool -K tx off"
}

# topo_pod NAME NODE(1|2) IDX SERVER-ARGS...: pod NAME behind node NODE,
# addresses 198.18.NODE.IDX and fd00:198:18:NODE::IDX (IDX 2..254), running
# podserver.py with SERVER-ARGS (e.g. --tcp 8080 --udp 8053).
topo_pod() {
	local name=$1 node=$2 idx=$3 ns=${P}p$((${#TOPO_POD_IDX[@]} + 1)) nodens=$NODE
	shift 3
	[ "$node" = 2 ] && nodens=$TOPO_N2
	topo_ns "$ns" || topo_fail "ip netns add $ns"
	POD_NS[$name]=$ns
	TOPO_POD_NODE[$name]=$node
	TOPO_POD_IDX[$name]=$idx
	ip -n "$nodens" link add "v$idx" type veth peer name eth0 netns "$ns" &&
		ip -n "$nodens" addr add "198.18.$node.1/32" dev "v$idx" &&
		ip -n "$nodens" addr add "fd00:198:18:$node::1/128" dev "v$idx" nodad &&
		ip -n "$nodens" link set "v$idx" up &&
		ip -n "$ns" addr add "198.18.$node.$idx/32" dev eth0 &&
		ip -n "$ns" addr add "fd00:198:18:$node::$idx/128" dev eth0 nodad &&
		ip -n "$ns" link set eth0 up &&
		in_ns "$ns" ethtool -K eth0 gro on >/dev/null &&
		ip -n "$ns" route add "198.18.$node.1" dev eth0 &&
		ip -n "$ns" route add default via "198.18.$node.1" dev eth0 &&
		ip -n "$ns" -6 route add "fd00:198:18:$node::1" dev eth0 &&
		ip -n "$ns" -6 route add default via "fd00:198:18:$node::1" dev eth0 &&
		ip -n "$nodens" route add "198.18.$node.$idx/32" dev "v$idx" &&
		ip -n "$nodens" -6 route add "fd00:198:18:$node::$idx/128" dev "v$idx" ||
		topo_fail "pod $name"
	[ $# -eq 0 ] && return 0
	start_server "$ns" "$name" "$@"
	TOPO_POD_PID[$name]=${PIDS[-1]}
}

pod_v4() { echo "198.18.${TOPO_POD_NODE[$1]}.${TOPO_POD_IDX[$1]}"; }
pod_v6() { echo "fd00:198:18:${TOPO_POD_NODE[$1]}::${TOPO_POD_IDX[$1]}"; }
pod_node() { echo "node-${TOPO_POD_NODE[$1]}"; }

# topo_pod_gone NAME: the pod is gone at once (a node losing it, or the
# end of a rolling update): its veth goes first, so that nothing it sends
# as its server stops (FIN, RST) reaches anyone, and nothing answers on its
# address any more.
topo_pod_gone() {
	local name=$1 nodens=$NODE
	[ "${TOPO_POD_NODE[$name]}" = 2 ] && nodens=$TOPO_N2
	ip -n "$nodens" link del "v${TOPO_POD_IDX[$name]}"
	[ -z "${TOPO_POD_PID[$name]:-}" ] || stop_pid "${TOPO_POD_PID[$name]}"
}

# node_yaml [NAME V4 V6]: a Node object as kubectl prints it, node 1's by
# default; ferryd reads its addresses (--node-name NAME).
node_yaml() {
	local name=${1:-$TOPO_NODE_NAME} v4=${2:-$N1_V4} v6=${3:-$N1_V6}
	cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $name
  labels: {kubernetes.io/hostname: $name}
status:
  addresses:
  - {type: InternalIP, address: $v4}
  - {type: InternalIP, address: "$v6"}
  - {type: Hostname, address: $name}
EOF
}

# topo_ferryd_reset: ferryd stopped and its datapath removed (from inside
# node 1, where its devices are).
topo_ferryd_reset() {
	ferryd_stop
	[ "$FERRYD_USED" = 1 ] || return 0
	in_node "$FERRYD" --cleanup --bpffs "$BPFFS" --cgroup "$CG" >>"$FERRYD_LOG" 2>&1
}

# xdp_attached: the XDP mode of the program on node 1's lan0, as bpftool
# names it ("driver", "generic"), or "none".
xdp_attached() {
	local mode
	mode=$(in_node bpftool net show dev lan0 2>/dev/null | sed -n 's/^lan0([0-9]*) \([a-z]*\) id .*/\1/p' | head -n 1)
	echo "${mode:-none}"
}

# --- node 2's own ferryd (tests that compare two nodes fed the same state:
# tests/kernel/lb_external.sh). Its cgroup, pin folder and log are apart
# from node 1's; XDP on node 2's lan0.
TOPO_NODE2_NAME="node-2"
CG2=${CG:+$CG-n2}
BPFFS2=$BPFFS-n2
FERRYD2_LOG=$LOGDIR/ferryd-node2.log
FERRYD2_PID=
FERRYD2_USED=0

# topo_ferryd2_start SOURCE XDP-MODE [ARGS...]: ferryd in node 2 on SOURCE
# (node 2's Node in it), XDP in XDP-MODE on node 2's lan0; waits for
# its generation 1. Native XDP there needs what node 1's has (topo_up):
# an XDP program on lan0's peer n2, and software checksums from whoever
# sends towards it (node 1's lan0 and n2 besides the clients).
topo_ferryd2_start() {
	local src=$1 mode=$2
	shift 2
	if [ "$mode" = native ]; then
		ip -n "$TOPO_LAN" link set dev n2 xdpdrv obj "$TOPO_XDP_PASS" sec xdp &&
			in_ns "$TOPO_LAN" ethtool -K n2 tx off >/dev/null &&
			in_node ethtool -K lan0 tx off >/dev/null ||
			{ not_ok "$GROUP node 2's ferryd starts" "XDP_PASS on n2, tx off"; return 1; }
	fi
	mkdir -p "$CG2" || { not_ok "$GROUP node 2's ferryd starts" "mkdir $CG2"; return 1; }
	[ "$FERRYD2_USED" = 1 ] || : >"$FERRYD2_LOG"
	FERRYD2_USED=1
	echo "=== (in $TOPO_N2) ferryd --source file:$src --xdp $mode $*" >>"$FERRYD2_LOG"
	# nsenter itself, not in_ns: $! must be ferryd's pid (nsenter execs it),
	# not a subshell's that stop_pid would end without it.
	nsenter --net="/run/netns/$TOPO_N2" "$FERRYD" --source "file:$src" --cgroup "$CG2" --bpffs "$BPFFS2" \
		--node-name "$TOPO_NODE2_NAME" --devices lan0 --xdp "$mode" \
		--log-level debug --metrics-addr "" --health-addr "" "$@" 2>>"$FERRYD2_LOG" &
	FERRYD2_PID=$!
	if ! wait_until 120 gen_at_least 1 "$BPFFS2"; then
		not_ok "$GROUP node 2's ferryd starts (--xdp $mode)" \
			"no generation >= 1 within 120 s; log: $(grep -v component=libbpf "$FERRYD2_LOG" | tail -n 3 | tr '\n' ' ')"
		return 1
	fi
}

# topo_ferryd2_cleanup: node 2's ferryd stopped, its datapath removed from
# inside node 2, its pin folder and cgroup gone.
topo_ferryd2_cleanup() {
	if [ -n "$FERRYD2_PID" ]; then
		stop_pid "$FERRYD2_PID"
		FERRYD2_PID=
	fi
	[ "$FERRYD2_USED" = 1 ] || return 0
	FERRYD2_USED=0
	if [ -e "/run/netns/$TOPO_N2" ]; then
		in_ns "$TOPO_N2" "$FERRYD" --cleanup --bpffs "$BPFFS2" --cgroup "$CG2" >>"$FERRYD2_LOG" 2>&1 ||
			echo "# cleanup: ferryd --cleanup in $TOPO_N2 failed, see $FERRYD2_LOG"
	fi
	[ -d "$BPFFS2" ] && rmdir "$BPFFS2" 2>/dev/null
	[ -d "$CG2" ] && { rmdir "$CG2" || echo "# cleanup: could not remove $CG2"; }
}
