#!/usr/bin/env bash
# The per-packet programs on the node's devices (issue 12, "The per-packet
# path"). ferryd runs inside the node namespace (FERRYD_NETNS), which has two
# veths carrying the node's addresses (192.0.2.1 and 2001:db8::1, given with
# --node-ips) besides br0 (the pods' bridge, no node address):
#  - by default the devices are those carrying a node address: XDP native
#    and a tcx egress link on each veth, nothing on br0 (bpftool net show
#    and ip -d link inside the namespace; ferryctl status says the mode);
#  - a restart adopts the pinned links: same link ids, new programs, and a
#    sampler reading the device's XDP program meanwhile never finds none;
#  - --xdp=generic attaches in skb mode; --xdp=off leaves no XDP and puts a
#    tcx ingress link in its place; native on a driver without native XDP
#    (a bridge) falls back to generic with a warning naming it;
#  - a device no longer in --devices loses its links; one deleted and
#    created again under its name gets them again without a restart;
#  - ferry_config and ferry_node_addrs hold the flags and the addresses;
#    ferry_ct's entries are counted in ferryctl status and /metrics;
#  - without --node-ips, the Node named --node-name gives the addresses
#    (file source: in the snapshot; API source: the stand-in's Node), and
#    the devices follow when they change;
#  - ferryd exits leaving them attached; ferryd --cleanup removes them;
#  - --devices naming a device that does not exist, or an unparsable
#    --xdp, --node-ips or --node-port-range: refused at start, named.
# shellcheck disable=SC2317,SC2119 # functions run through wait_until; no script arguments
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apilib.sh
source "$(dirname "$0")/../apilib.sh"

topology_up
FERRYD_NETNS=$NODE
for i in 1 2; do
	if ! { ip -n "$NODE" link add "np$i" type veth peer name "np${i}peer" &&
		ip -n "$NODE" link set "np$i" up && ip -n "$NODE" link set "np${i}peer" up; }; then
		not_ok "attach setup" "veth np$i"
		finish
	fi
done
ip -n "$NODE" addr add 192.0.2.1/24 dev np1
ip -n "$NODE" addr add 2001:db8::1/64 dev np2 nodad
NODE_IPS=192.0.2.1,2001:db8::1

SRC=$WORK/attach.yaml
write_source "$SRC" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: attach}
spec:
  clusterIP: 10.96.60.10
  ports: [{name: http, port: 80}]
EOF

# xdp_on DEV: "driver ID", "generic ID" or "none", from bpftool in the node.
xdp_on() {
	in_node bpftool net show dev "$1" 2>/dev/null |
		awk -v d="$1" '$1 ~ "^"d"\\(" {print $2, $4; f=1} END {if (!f) print "none"}'
}
# ip_xdp DEV: the XDP program id ip -d link shows, or none.
ip_xdp() {
	in_node ip -d link show dev "$1" | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p' | grep . || echo none
}
# pins: the per-packet links pinned, sorted.
pins() { (cd "$BPFFS/links" 2>/dev/null && ls -d xdp-* tc-* 2>/dev/null) | sort | tr '\n' ' ' | sed 's/ $//'; }
link_id() { bpftool link show pinned "$BPFFS/links/$1" 2>/dev/null | sed -n 's/^\([0-9]*\):.*/\1/p'; }
prog_id() { bpftool link show pinned "$BPFFS/links/$1" 2>/dev/null | sed -n 's/.*prog \([0-9]*\).*/\1/p'; }
# status_packet: "DEV:HOOK:MODE ..." from ferryctl status in the node.
status_packet() {
	in_node "$FERRYCTL" --bpffs "$BPFFS" status -o json | "$PYTHON" -c '
import json, sys
print(" ".join("%s:%s:%s" % (l["device"], l["hook"], l.get("xdp_mode", "-"))
               for l in json.load(sys.stdin)["packet_path"] if l["attached"]))'
}
# config: ferry_config as "snat_v4 snat_v6 node-ports snat-ports icmp/s";
# node_addrs: ferry_node_addrs as "ADDR:FLAGS ..." sorted.
config() {
	bpftool -j map dump pinned "$BPFFS/ferry_config" | "$PYTHON" -c '
import ipaddress, json, sys
e = json.load(sys.stdin)[0]
raw = bytes(int(x, 16) for x in e["value"])
v = e["formatted"]["value"]
v4 = ipaddress.IPv6Address(raw[0:16]).ipv4_mapped or "-"
v6 = ipaddress.IPv6Address(raw[16:32]) if any(raw[16:32]) else "-"
print(v4, v6, "%d-%d" % (v["node_port_min"], v["node_port_max"]),
      "%d-%d" % (v["snat_port_min"], v["snat_port_max"]), v["icmp_per_sec"])'
}
node_addrs() {
	bpftool -j map dump pinned "$BPFFS/ferry_node_addrs" | "$PYTHON" -c '
import ipaddress, json, sys
out = []
for e in json.load(sys.stdin):
    a = ipaddress.IPv6Address(bytes(int(x, 16) for x in e["key"]))
    out.append("%s:%d" % (a.ipv4_mapped or a, e["formatted"]["value"]["flags"]))
print(" ".join(sorted(out)))'
}
ifindex() { in_node ip -o link show dev "$1" | cut -d: -f1; }
status_ifindex() {
	in_node "$FERRYCTL" --bpffs "$BPFFS" status -o json | "$PYTHON" -c '
import json, sys
print(" ".join("%s:%s" % (l["device"], l["ifindex"]) for l in json.load(sys.stdin)["packet_path"]
               if l["hook"] == "tc-egress"))'
}

# said: how often ferryd said where it serves north-south traffic (once
# per attach); said_more N: more than N times.
said() { grep -c 'north-south traffic' "$FERRYD_LOG"; }
said_more() { [ "$(said)" -gt "$1" ]; }

# start_attached ARGS...: ferryd on SRC, waiting until it says where it
# serves north-south traffic (a generation alone may be the last ferryd's).
start_attached() {
	local n
	n=$(said)
	ferryd_spawn "$SRC" "$@"
	wait_until 60 said_more "$n" ||
		{ not_ok "ferryd $* attaches within 60 s" "$(tail -n 3 "$FERRYD_LOG")"; finish; }
}

# metric NAME: one sample of ferryd's /metrics (inside the node), checked
# for the exposition format first.
MPORT=10249
metric() {
	in_node curl -sS --max-time 3 -o "$WORK/metrics.txt" "http://127.0.0.1:$MPORT/metrics" &&
		[ "$("$PYTHON" "$REPO/tests/helpers/prom.py" check "$WORK/metrics.txt")" = ok ] &&
		"$PYTHON" "$REPO/tests/helpers/prom.py" value "$WORK/metrics.txt" "$1"
}
# ct_fill N: N made-up flows written into ferry_ct (as the datapath would).
ct_fill() {
	local ksize vsize
	read -r ksize vsize < <(bpftool -j map show pinned "$BPFFS/ferry_ct" |
		"$PYTHON" -c 'import json,sys; j=json.load(sys.stdin); print(j["bytes_key"], j["bytes_value"])')
	for ((i = 1; i <= $1; i++)); do
		# shellcheck disable=SC2046 # one word per byte
		bpftool map update pinned "$BPFFS/ferry_ct" \
			key $("$PYTHON" -c 'import sys; print(" ".join([sys.argv[2]] + ["0"] * (int(sys.argv[1]) - 1)))' "$ksize" "$i") \
			value $("$PYTHON" -c 'import sys; print(" ".join(["0"] * int(sys.argv[1])))' "$vsize")
	done
}

# --- default devices, native XDP ------------------------------------------
start_attached --node-ips "$NODE_IPS" --metrics-addr "127.0.0.1:$MPORT"
expect "default devices: the veths carrying node addresses get XDP and tc egress links" \
	"$(pins)" "tc-egress-np1 tc-egress-np2 tc-ingress-np1 tc-ingress-np2 xdp-np1 xdp-np2"
expect_match "native: bpftool net show dev np1 (in the node) shows XDP in the driver" \
	"$(xdp_on np1)" '^driver [0-9]+$'
expect_match "native: np2 too" "$(xdp_on np2)" '^driver [0-9]+$'
expect "native: ip -d link shows the pinned link's program on np1" "$(ip_xdp np1)" "$(prog_id xdp-np1)"
expect "no node address: br0 and the veth peers have no XDP" \
	"$(xdp_on br0) $(xdp_on np1peer) $(xdp_on np2peer)" "none none none"
expect "ferryctl status: devices, hooks and XDP mode" "$(status_packet)" \
	"np1:tc-egress:- np2:tc-egress:- np1:tc-ingress:- np2:tc-ingress:- np1:xdp:native np2:xdp:native"
expect "ferryctl status: the tc egress links sit on the veths' ifindexes" "$(status_ifindex)" \
	"np1:$(ifindex np1) np2:$(ifindex np2)"
expect_match "the log says which path handles what" \
	"$(grep -c 'np[12]: new flows at XDP (native; tc ingress resolves neighbours), replies at tc egress' "$FERRYD_LOG")" '^2$'
expect "ferry_config: SNAT addresses (the node's), NodePort and SNAT port ranges, ICMP rate (defaults)" \
	"$(config)" "192.0.2.1 2001:db8::1 30000-32767 32768-60999 100"
cookie=$(in_node "$PYTHON" -c 'import socket, struct; print(struct.unpack("Q", socket.socket().getsockopt(socket.SOL_SOCKET, 71, 8))[0])')
expect "ferry_config: the node namespace's cookie, for NodePorts on its loopback (B22)" \
	"$(bpftool -j map dump pinned "$BPFFS/ferry_config" | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)[0]["formatted"]["value"]["node_netns_cookie"])')" "$cookie"
expect "ferry_node_addrs: the node's addresses, each its family's SNAT source" "$(node_addrs)" \
	"192.0.2.1:1 2001:db8::1:1"
ct_fill 3
expect "ferry_ct: 3 flow entries counted in ferryctl status and /metrics (ferry_ct_entries)" \
	"$(status_get --maps '[m["entries"] for m in j["maps"] if m["name"] == "ferry_ct"][0]') $(metric ferry_ct_entries)" "3 3"
expect "/metrics: both devices, XDP native; the path is up" \
	"$(metric 'ferry_packet_path_devices{device="np1",xdp="native"}') $(metric 'ferry_packet_path_devices{device="np2",xdp="native"}') $(metric ferry_packet_path_up)" \
	"1 1 1"
expect "/metrics: the per-packet counters" \
	"$(metric 'ferry_datapath_events_total{event="packet_flows_translated"}')" 0
expect "the log names the devices" \
	"$(grep -c 'served on 2 devices: np1 (XDP native), np2 (XDP native)' "$FERRYD_LOG")" 1

# --- restart: the links are adopted -----------------------------------------
links_before="$(link_id xdp-np1) $(link_id tc-egress-np1) $(link_id xdp-np2) $(link_id tc-egress-np2)"
progs_before="$(prog_id xdp-np1) $(prog_id tc-egress-np1)"
# The sampler reads np1's XDP program until told to stop (bounded: 20 s).
# shellcheck disable=SC2016 # expanded by the sampler's bash
in_node bash -c 'for ((i = 0; i < 4000; i++)); do
	[ -e "$1" ] && break
	ip -d link show dev np1 | grep -q "prog/xdp id" && echo on || echo off
	sleep 0.005
done' _ "$WORK/stop-sampler" >"$WORK/samples" &
SAMPLER=$!
PIDS+=("$SAMPLER")
ferryd_stop
start_attached --node-ips "$NODE_IPS"
touch "$WORK/stop-sampler"
wait "$SAMPLER"
expect "restart: the same links (ids) stay pinned on both devices" \
	"$(link_id xdp-np1) $(link_id tc-egress-np1) $(link_id xdp-np2) $(link_id tc-egress-np2)" "$links_before"
if [ "$(prog_id xdp-np1) $(prog_id tc-egress-np1)" != "$progs_before" ]; then
	ok "restart: the new ferryd's programs were swapped into them"
else
	not_ok "restart: the new ferryd's programs were swapped into them" "still $progs_before"
fi
expect_match "restart: np1 never ran without an XDP program ($(grep -c on "$WORK/samples") samples)" \
	"$(sort -u "$WORK/samples" | tr '\n' ' ')" '^on $'

# --- a device deleted and created again -------------------------------------------
# Its links went with it; ferryd finds the new device under the name (it
# looks every few seconds) and attaches again, without a restart.
old_index=$(ifindex np2)
n=$(said)
if ! { ip -n "$NODE" link del np2 &&
	ip -n "$NODE" link add np2 type veth peer name np2peer &&
	ip -n "$NODE" link set np2 up && ip -n "$NODE" link set np2peer up &&
	ip -n "$NODE" addr add 2001:db8::1/64 dev np2 nodad; }; then
	not_ok "recreated: np2 deleted and created again" "ip failed"
fi
if wait_until 15 said_more "$n"; then
	expect_match "recreated: the new np2 ($old_index -> $(ifindex np2)) gets XDP again" "$(xdp_on np2)" '^driver [0-9]+$'
	expect "recreated: and its tc egress link" "$(status_ifindex)" "np1:$(ifindex np1) np2:$(ifindex np2)"
else
	not_ok "recreated: ferryd attaches to the new np2 within 15 s" "$(xdp_on np2) $(tail -n 2 "$FERRYD_LOG")"
fi

# --- generic, off, fallback --------------------------------------------------
ferryd_stop
start_attached --node-ips "$NODE_IPS" --xdp generic --node-port-range 31000-31999 \
	--snat-port-range 40000-40999 --icmp-rate 7 --max-ct 4096
expect "--max-ct sizes ferry_ct (the maps migrate; the links follow them)" \
	"$(status_get '[m["max_entries"] for m in j["maps"] if m["name"] == "ferry_ct"][0]') $(pins)" \
	"4096 tc-egress-np1 tc-egress-np2 tc-ingress-np1 tc-ingress-np2 xdp-np1 xdp-np2"
# uses_pinned LINK MAP...: whether the link's program uses these pinned
# maps (the socket-LB object's, not copies of its own).
uses_pinned() {
	local maps m id link=$1
	shift
	maps=" $(bpftool -j prog show id "$(prog_id "$link")" | "$PYTHON" -c 'import json,sys; print(" ".join(map(str, json.load(sys.stdin).get("map_ids", []))))') "
	for m in "$@"; do
		id=$(bpftool map show pinned "$BPFFS/$m" | sed -n 's/^\([0-9]*\):.*/\1/p')
		[[ $maps = *" $id "* ]] || return 1
	done
}
if uses_pinned xdp-np1 ferry_services4 ferry_services6 ferry_ct ferry_config && uses_pinned tc-egress-np1 ferry_ct; then
	ok "the XDP and tc programs use the pinned maps (after the migration too)"
else
	not_ok "the XDP and tc programs use the pinned maps (after the migration too)" \
		"$(bpftool prog show id "$(prog_id xdp-np1)")"
fi
expect "ferry_config follows --node-port-range, --snat-port-range and --icmp-rate" \
	"$(config)" "192.0.2.1 2001:db8::1 31000-31999 40000-40999 7"
expect_match "generic: bpftool shows XDP in generic mode on np1" "$(xdp_on np1)" '^generic [0-9]+$'
expect "generic: ferryctl status says so" "$(status_packet)" \
	"np1:tc-egress:- np2:tc-egress:- np1:tc-ingress:- np2:tc-ingress:- np1:xdp:generic np2:xdp:generic"

ferryd_stop
start_attached --node-ips "$NODE_IPS" --xdp off
expect "off: no XDP on the devices" "$(xdp_on np1) $(xdp_on np2)" "none none"
expect "off: tcx ingress and egress links in XDP's place" "$(pins)" \
	"tc-egress-np1 tc-egress-np2 tc-ingress-np1 tc-ingress-np2"

ferryd_stop
start_attached --node-ips "$NODE_IPS" --devices np1,br0
expect "fallback: br0 (a bridge: no native XDP) gets generic, np1 native" \
	"$(xdp_on br0 | cut -d' ' -f1) $(xdp_on np1 | cut -d' ' -f1)" "generic driver"
expect "fallback: the warning names the device" \
	"$(grep -c 'br0: the driver has no native XDP; XDP runs in generic mode' "$FERRYD_LOG")" 1
expect "removed: np2, no longer in --devices, lost its links" "$(xdp_on np2) $(pins)" \
	"none tc-egress-br0 tc-egress-np1 tc-ingress-br0 tc-ingress-np1 xdp-br0 xdp-np1"

# --- the Node's addresses (file source: the Node named --node-name) --------------
# node_yaml ADDR: the Service, and Node node-a with that InternalIP.
node_yaml() {
	cat "$SRC.svc"
	cat <<EOF
---
apiVersion: v1
kind: Node
metadata: {name: node-a}
status:
  addresses: [{type: InternalIP, address: "$1"}, {type: Hostname, address: node-a}]
EOF
}
cp "$SRC" "$SRC.svc"
# node_moves CASE ADDR PINS: the Node's address becomes ADDR; within 10 s
# ferryd says where it serves, and the pinned links are PINS.
node_moves() {
	local n
	n=$(said)
	node_yaml "$2" | write_source "$SRC"
	if wait_until 10 said_more "$n"; then
		expect "$1" "$(pins)" "$3"
	else
		not_ok "$1: ferryd attaches within 10 s" "$(pins)"
	fi
}
ferryd_stop
write_source "$SRC" <"$SRC.svc"
start_attached
expect "Node: none in the source and no --node-ips: the last run's links removed, north-south not served" \
	"$(pins) $(grep -c 'north-south traffic not served: no device carries a node address (0 known' "$FERRYD_LOG")" " 1"
node_moves "Node: its address (2001:db8::1) appears: np2 gets the links" 2001:db8::1 "tc-egress-np2 tc-ingress-np2 xdp-np2"
node_moves "Node: its address moves to np1: the links follow" 192.0.2.1 "tc-egress-np1 tc-ingress-np1 xdp-np1"
expect "Node: np2 has no XDP left" "$(xdp_on np2)" none
expect "Node: ferry_config and ferry_node_addrs follow" "$(config) $(node_addrs)" \
	"192.0.2.1 - 30000-32767 32768-60999 100 192.0.2.1:1"
expect "Node: the log names its addresses" "$(grep -c 'msg="node addresses: 192.0.2.1"' "$FERRYD_LOG")" 1

# --- the Node's addresses (API source) ---------------------------------------------
# The stand-in API server runs in the host's namespace on 127.0.0.1; ferryd,
# in the node's, reaches it through a relay over a Unix socket (a file:
# both namespaces see it), so no device is added anywhere.
api_setup
api_start || finish
# bg_relay CMD...: in the background, its pid (socat's: nsenter execs) in PIDS.
bg_relay() {
	"$@" >/dev/null 2>>"$LOGDIR/socat.log" &
	PIDS+=($!)
}
bg_relay socat "UNIX-LISTEN:$WORK/api.sock,fork" "TCP:127.0.0.1:$API_PORT"
bg_relay nsenter --net="/run/netns/$NODE" \
	socat "TCP-LISTEN:$API_PORT,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$WORK/api.sock"
wait_until 5 in_node bash -c "exec 3<>/dev/tcp/127.0.0.1/$API_PORT" ||
	not_ok "API source: the relay into the node namespace listens" "$(tail -n 2 "$LOGDIR/socat.log")"
# api_node ADDR: Node node-a with that InternalIP.
api_node() {
	put_node=$(printf '{"kind":"Node","apiVersion":"v1","metadata":{"name":"node-a"},"status":{"addresses":[{"type":"InternalIP","address":"%s"}]}}' "$1")
	api_put "$put_node" >/dev/null || not_ok "API source: the Node is written" "$put_node"
}
api_node 2001:db8::1
ferryd_stop
n=$(said)
ferryd_k8s_spawn
if wait_until 20 said_more "$n"; then
	expect "API source: the device carrying the Node's address (np2) gets the links" \
		"$(pins)" "tc-egress-np2 tc-ingress-np2 xdp-np2"
else
	not_ok "API source: ferryd attaches within 20 s" "$(tail -n 3 "$FERRYD_LOG")"
fi
expect "API source: ferry_node_addrs holds the Node's address" "$(node_addrs)" "2001:db8::1:1"
n=$(said)
api_node 192.0.2.1
if wait_until 10 said_more "$n"; then
	expect "API source: the Node's address moves to np1: the links follow" "$(pins)" \
		"tc-egress-np1 tc-ingress-np1 xdp-np1"
else
	not_ok "API source: ferryd follows the Node within 10 s" "$(pins)"
fi
expect "API source: ferry_node_addrs follows it" "$(node_addrs)" "192.0.2.1:1"

# --- exit and cleanup ----------------------------------------------------------
ferryd_stop
expect_match "exit: ferryd gone, np1 keeps its XDP program" "$(xdp_on np1)" '^driver [0-9]+$'
egress=$(link_id tc-egress-np1)
"$FERRYD" --cleanup --bpffs "$BPFFS" >>"$FERRYD_LOG" 2>&1
expect "cleanup: no XDP left on np1 and br0" "$(xdp_on np1) $(xdp_on br0)" "none none"
expect "cleanup: the tcx links are gone too" \
	"$(bpftool link show id "$egress" >/dev/null 2>&1 && echo present || echo gone)" gone

# --- SNAT ports and the node's own ----------------------------------------------
# A fresh namespace's ephemeral ports are 32768-60999, the default SNAT range.
overlap_said() { tac "$FERRYD_LOG" | sed '/^=== ferryd/q' | grep -c "overlaps this node's ephemeral ports"; }
start_attached --node-ips 192.0.2.1
expect "the default --snat-port-range, inside the ephemeral ports, is warned about with its cure" \
	"$(overlap_said)" 1
ferryd_stop
start_attached --node-ips 192.0.2.1 --snat-port-range 61000-65535
expect "a --snat-port-range outside them is not" "$(overlap_said)" 0
ferryd_stop
"$FERRYD" --cleanup --bpffs "$BPFFS" >>"$FERRYD_LOG" 2>&1

# --- refusals --------------------------------------------------------------------
ferryd_spawn "$SRC" --devices np1,nosuch0
expect_refused "--devices naming a device that does not exist is refused" 5 &&
	expect "refusal names the device" "$(grep -c 'no device nosuch0 in this network namespace' "$FERRYD_LOG")" 1
ferryd_spawn "$SRC" --xdp fast
expect_refused "--xdp fast is refused" 5
ferryd_spawn "$SRC" --node-ips 192.0.2.1,not-an-ip
expect_refused "--node-ips with something not an address is refused" 5 &&
	expect "refusal names it" "$(grep -c "'not-an-ip' is not an IP address" "$FERRYD_LOG")" 1
ferryd_spawn "$SRC" --node-port-range 32000-31000
expect_refused "--node-port-range MIN > MAX is refused" 5

finish
