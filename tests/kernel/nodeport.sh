#!/usr/bin/env bash
# North-south: NodePort, LoadBalancer IPs and externalIPs served to clients
# outside the node by ferry's per-packet path (XDP and tc on node 1's lan0),
# and to the node itself by the socket LB, in the topology of
# tests/helpers/topology.sh: external clients a and b on a LAN with node 1
# (ferryd) and node 2; local pods behind node 1, remote pods behind node 2,
# each running podserver.py, whose GET /peer and UDP "peer?" answer
# "NAME ADDR": the pod, and the source address it saw.
#
# Core cases (every XDP mode; tests/kernel/nodeport_xdp_modes.sh runs them
# under --xdp=generic and --xdp=off): NodePort TCP and UDP, IPv4 and IPv6,
# to a local and a remote backend; externalTrafficPolicy Cluster (B23: the
# remote backend sees node 1's address, UDP replies come from the node
# address and the NodePort) and Local (B23: the client's address; B16: no
# local endpoint drops, the connect times out rather than being refused);
# a Service without endpoints refuses at once, over IPv4 and IPv6, TCP and
# UDP, even with a host process on the port (B14); path MTU: a client's
# datagram that may not be fragmented and does not fit the way to the pod
# (a local pod's veth of MTU 1300, a locked route of MTU 1300 to a remote
# pod) teaches the client's stack the MTU (fragmentation needed / packet
# too big reaching it, as if from the frontend), and a large TCP download
# from a remote pod through a route of MTU 1300 back to the client
# completes (the pod learns) instead of hanging.
# The rest (native mode here): LB IP with loadBalancerSourceRanges (B26),
# which LB addresses are captured (B24), externalIPs (B25),
# healthCheckNodePort (B28), NodePort from node 1 itself on 127.0.0.1, ::1
# and its addresses (B22, B23), session affinity shared by ClusterIP and
# NodePort (B30), kubernetes#81775: a client reusing its source port after
# a rolling update lands on a live backend, and packets of a TCP or UDP
# flow whose backend is gone reach a live one (B12); last, a deleted
# Service's NodePort stops (B22).
# Before ferryd starts, controls show the topology works without it (the
# pods reached directly) and that what ferry is credited with is ferry's
# (nothing answers the NodePorts; a host process answers the no-endpoint
# Service's port, which ferry must refuse).
#
# NODEPORT_XDP=native|generic|off (default native) picks ferryd's --xdp;
# NODEPORT_TCX=off gives --tcx off (tc programs as clsact filters, what a
# kernel before 6.6 gets: tests/kernel/tc_filters.sh);
# NODEPORT_CORE=1 runs the core cases only; NODEPORT_NODE_IPS=1 gives node
# 1's addresses with --node-ips instead of its Node object (in the source
# either way). Case names carry the mode.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/helpers/topology.sh
source "$REPO/tests/helpers/topology.sh"

MODE=${NODEPORT_XDP:-native}
CORE=${NODEPORT_CORE:-0}
T="[xdp=$MODE${NODEPORT_TCX:+ tcx=$NODEPORT_TCX}]"
SERVE=(--tcp 8080 --udp 8053)

topo_up
topo_pod l-1 1 2 "${SERVE[@]}"
topo_pod l-2 1 3 "${SERVE[@]}"
topo_pod r-1 2 2 "${SERVE[@]}"
topo_pod r-2 2 3 "${SERVE[@]}"
# Path MTU: m-1 behind node 1 on a veth of MTU 1300 (its own side keeps
# 1500, so that its TCP peers send 1500-byte segments); m-2 behind node 2,
# which node 1 reaches through a locked route of MTU 1300, serving a
# 300,000-byte file over HTTP.
topo_pod m-1 1 12 "${SERVE[@]}"
topo_pod m-2 2 12 --udp 8053
ip -n "$NODE" link set v12 mtu 1300 || topo_fail "MTU of m-1's veth"
{ mkdir "$WORK/www" && head -c 300000 /dev/zero >"$WORK/www/blob"; } || topo_fail "m-2's file"
in_ns "${POD_NS[m-2]}" "$PYTHON" -m http.server 8080 --bind :: --directory "$WORK/www" \
	>>"$LOGDIR/podserver.log" 2>&1 &
PIDS+=($!)
if [ "$CORE" != 1 ]; then
	topo_pod k-1 1 10 "${SERVE[@]}"
	topo_pod k-2 1 11 "${SERVE[@]}"
fi
# A process on node 1 holding the no-endpoint Service's NodePort (TCP and
# UDP): a packet the datapath let through would reach it.
start_server "$NODE" host-leak --tcp 30090 --udp 30090

SRC=$WORK/src
mkdir "$SRC"

# --- objects -----------------------------------------------------------------

# service NAME IDX TYPE NP-TCP NP-UDP [SPEC [STATUS]]: dual-stack Service
# NAME (namespace np), ClusterIPs 10.96.12.IDX and fd00:10:96::12:IDX, ports
# http (TCP 80 -> 8080) and dns (UDP 53 -> 8053) with these nodePorts ("-":
# none). SPEC and STATUS are YAML lines added under spec: and status:,
# indented two spaces. With FAMS=4, IPv4 only (endpoints too).
service() {
	local name=$1 idx=$2 type=$3 npt=$4 npu=$5 spec=${6:-} status=${7:-}
	local ips="[10.96.12.$idx, \"fd00:10:96::12:$idx\"]" fams="[IPv4, IPv6]" policy=RequireDualStack
	[ "${FAMS:-4 6}" = 4 ] && ips="[10.96.12.$idx]" fams="[IPv4]" policy=SingleStack
	cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: np}
spec:
  type: $type
  clusterIP: 10.96.12.$idx
  clusterIPs: $ips
  ipFamilies: $fams
  ipFamilyPolicy: $policy
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: 8080$([ "$npt" = - ] || echo ", nodePort: $npt")}
  - {name: dns, port: 53, protocol: UDP, targetPort: 8053$([ "$npu" = - ] || echo ", nodePort: $npu")}
EOF
	[ -z "$spec" ] || printf '%s\n' "$spec"
	[ -z "$status" ] || printf 'status:\n%s\n' "$status"
}

# endpoints NAME POD...: NAME's two EndpointSlices (IPv4, IPv6) with these
# pods, ready, each with its nodeName.
endpoints() {
	local name=$1 fam p addr
	shift
	for fam in ${FAMS:-4 6}; do
		cat <<EOF
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-v$fam, namespace: np, labels: {kubernetes.io/service-name: $name}}
addressType: IPv$fam
ports: [{name: http, port: 8080, protocol: TCP}, {name: dns, port: 8053, protocol: UDP}]
endpoints:$([ $# -gt 0 ] || echo " []")
EOF
		for p; do
			if [ $fam = 4 ]; then addr=$(pod_v4 "$p"); else addr=\"$(pod_v6 "$p")\"; fi
			echo "- {addresses: [$addr], conditions: {ready: true}, nodeName: $(pod_node "$p")}"
		done
	done
}

# hc_yaml ETP: Service hc (LoadBalancer, IPv4 only: localEndpoints counts
# addresses, healthCheckNodePort 32100 while externalTrafficPolicy is
# Local) with l-1, l-2 and r-1.
hc_yaml() {
	local spec="  externalTrafficPolicy: $1"
	[ "$1" = Local ] && spec+=$'\n  healthCheckNodePort: 32100'
	FAMS=4 service hc 8 LoadBalancer 30085 30065 "$spec" "  loadBalancer: {ingress: [{ip: 198.51.100.11}]}"
	FAMS=4 endpoints hc l-1 l-2 r-1
}

# roll_yaml POD: Service roll (NodePort 30088) with one endpoint, POD.
roll_yaml() { service roll 11 NodePort 30088 30068; endpoints roll "$1"; }

node_yaml | write_source "$SRC/node.yaml"
{ service np-l 1 NodePort 30080 30053; endpoints np-l l-1; } | write_source "$SRC/np-l.yaml"
{ service np-r 2 NodePort 30081 30054; endpoints np-r r-1; } | write_source "$SRC/np-r.yaml"
{
	service etpl 3 NodePort 30082 30062 "  externalTrafficPolicy: Local"
	endpoints etpl l-2 r-2
} | write_source "$SRC/etpl.yaml"
{
	service etpl-none 4 NodePort 30083 30063 "  externalTrafficPolicy: Local"
	endpoints etpl-none r-1
} | write_source "$SRC/etpl-none.yaml"
{ service empty 7 NodePort 30090 30090; endpoints empty; } | write_source "$SRC/empty.yaml"
{ service np-m 13 NodePort 30092 30057; endpoints np-m m-1; } | write_source "$SRC/np-m.yaml"
{ service np-m2 14 NodePort 30093 30058; endpoints np-m2 m-2; } | write_source "$SRC/np-m2.yaml"
if [ "$CORE" != 1 ]; then
	{
		service lb 5 LoadBalancer 30084 30064 "  loadBalancerSourceRanges: [$CA_V4/32]" \
			"  loadBalancer: {ingress: [{ip: 198.51.100.10}]}"
		endpoints lb l-1
	} | write_source "$SRC/lb.yaml"
	{
		service ext 6 ClusterIP - - "  externalIPs: [203.0.113.10, not-an-ip]"
		endpoints ext l-2
	} | write_source "$SRC/ext.yaml"
	{
		FAMS=4 service lbmode 12 LoadBalancer 30089 30069 "  loadBalancerIP: 198.51.100.21" \
			"  loadBalancer: {ingress: [{ip: 198.51.100.20, ipMode: Proxy}, {hostname: lb.example}, {ip: 198.51.100.22, ipMode: VIP}]}"
		FAMS=4 endpoints lbmode l-2
	} | write_source "$SRC/lbmode.yaml"
	hc_yaml Local | write_source "$SRC/hc.yaml"
	{
		FAMS=4 service hc-none 9 LoadBalancer 30086 30066 $'  externalTrafficPolicy: Local\n  healthCheckNodePort: 32101' \
			"  loadBalancer: {ingress: [{ip: 198.51.100.12}]}"
		FAMS=4 endpoints hc-none r-2
	} | write_source "$SRC/hc-none.yaml"
	{
		service aff 10 NodePort 30087 30067 "  sessionAffinity: ClientIP"
		endpoints aff l-1 l-2 r-1 r-2
	} | write_source "$SRC/aff.yaml"
	roll_yaml k-1 | write_source "$SRC/roll.yaml"
fi

# --- clients -----------------------------------------------------------------

hostport() { if [[ $1 = *:* ]]; then echo "[$1]:$2"; else echo "$1:$2"; fi; }

# re TEXT: TEXT as a literal in an extended regex.
re() { sed 's/[][\.*^$+?(){}|]/\\&/g' <<<"$1"; }

# ext_get a|b ADDR PORT: GET /peer from an external client: "POD ADDR" (the
# pod and the source it saw), or curl-error:CODE.
ext_get() {
	in_ext "$1" curl -sS -g --connect-timeout 2 --max-time 3 "http://$(hostport "$2" "$3")/peer" 2>/dev/null ||
		echo "curl-error:$?"
}

# udp_peer OUTPUT: probe.py udp's line for a "peer?" datagram as
# "POD ADDR from ADDR:PORT" (the reply's source), or error=ERRNO.
udp_peer() { sed -n 's/^reply=\(.*\) from=\([^ ]*\) .*/\1 from \2/p; s/^error=\([^ ]*\) .*/error=\1/p' <<<"$1"; }

# ext_udp a|b ADDR PORT: one "peer?" datagram from an external client, on a
# new unconnected socket.
ext_udp() { udp_peer "$(in_ext "$1" "$PYTHON" "$PROBE" udp "$2" "$3" --msg 'peer?')"; }

# ext_probe a|b ARGS...: probe.py from an external client.
ext_probe() {
	local c=$1
	shift
	in_ext "$c" "$PYTHON" "$PROBE" "$@"
}

# ext_tally a|b COUNT ADDR PORT: COUNT connections from an external client,
# in conn_tally's format.
ext_tally() {
	in_ext "$1" "$CONNCOUNT" -n "$2" -t 10 "$3" "$4" | awk '{print $2"="$1}' | sort | tr '\n' ' ' | sed 's/ $//'
}

# ct_flow SRC DST: the per-packet path's flow SRC -> DST as ferryctl ct
# list shows it: "original snat to NEW-DST from NEW-SRC-ADDR; reply from
# R-SRC" (the reply entry matching the rewritten tuple), or what is missing.
ct_flow() {
	"$FERRYCTL" --bpffs "$BPFFS" ct list -o json 2>/dev/null | "$PYTHON" -c '
import json, sys
src, dst = sys.argv[1], sys.argv[2]
flows = json.load(sys.stdin)
o = next((f for f in flows if f["direction"] == "original" and f["source"] == src
          and f["destination"] == dst and f["protocol"] == "TCP"), None)
if o is None:
    print("no original entry for %s -> %s among %d" % (src, dst, len(flows))); sys.exit()
r = next((f for f in flows if f["direction"] == "reply" and f["source"] == o["new_destination"]
          and f["destination"] == o["new_source"]), None)
host = o["new_source"].rsplit(":", 1)[0].strip("[]")
print("original %sto %s from %s; %s" % ("snat " if o["snat"] else "", o["new_destination"], host,
      "reply from " + r["source"] if r else "no reply entry"))' "$1" "$2"
}

# counter NAME: a datapath counter from ferryctl status.
counter() { status_get "j['counters'].get('$1', 'missing')" 2>/dev/null; }

# expect_counter_up CASE NAME BEFORE: ok when counter NAME is above BEFORE.
expect_counter_up() {
	local now
	now=$(counter "$2")
	if [[ $now =~ ^[0-9]+$ && $3 =~ ^[0-9]+$ ]] && [ "$now" -gt "$3" ]; then
		ok "$1 ($2 +$((now - $3)))"
	else
		not_ok "$1" "$2 went from '$3' to '$now'"
	fi
}

# expect_fields CASE OUTPUT "KEY..." WANT: ok when the values of KEYs in a
# probe.py line, space separated, are WANT; else the line is shown.
expect_fields() {
	local k vals=()
	for k in $3; do vals+=("$(field "$k" "$2")"); done
	if [ "${vals[*]}" = "$4" ]; then ok "$1"; else not_ok "$1" "got '$2', want $3 = '$4'"; fi
}

ferryd_alive() {
	if kill -0 "$FERRYD_PID" 2>/dev/null; then
		ok "$T ferryd is still running"
	else
		not_ok "$T ferryd is still running" "pid $FERRYD_PID gone"
	fi
}

# pmtu_udp a|b ADDR PORT SIZE: a connected UDP socket that may not fragment
# (IP_PMTUDISC_DO) sends SIZE-byte datagrams to ADDR PORT, at most 5, each
# waited for a second, until its stack learns the path MTU: "mtu=N" (the
# socket's IP_MTU once a send or receive said EMSGSIZE), else what came
# instead: "reply=...", "error=...", "timeout".
pmtu_udp() {
	in_ext "$1" "$PYTHON" -c '
import errno, socket, sys
addr, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
v6 = ":" in addr
level = socket.IPPROTO_IPV6 if v6 else socket.IPPROTO_IP
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(level, 23 if v6 else 10, 2)  # IP(V6)_MTU_DISCOVER: IP(V6)_PMTUDISC_DO
s.connect((addr, port))
s.settimeout(1)
out = "timeout"
for _ in range(5):
    try:
        s.send(b"x" * size)
        out = "reply=" + s.recv(2048).decode(errors="replace")
        break
    except socket.timeout:
        continue
    except OSError as e:
        if e.errno == errno.EMSGSIZE:
            out = "mtu=%d" % s.getsockopt(level, 24 if v6 else 14)  # IP(V6)_MTU
        else:
            out = "error=" + errno.errorcode.get(e.errno, str(e.errno))
        break
print(out)' "$2" "$3" "$4"
}

# === controls: the topology without ferry ====================================

for fam in 4 6; do
	if [ $fam = 4 ]; then n1=$N1_V4 l1=$(pod_v4 l-1) r1=$(pod_v4 r-1) ca=$CA_V4
	else n1=$N1_V6 l1=$(pod_v6 l-1) r1=$(pod_v6 r-1) ca=$CA_V6; fi
	expect "$T topology: client a reaches local pod l-1 directly (IPv$fam), which sees a's address" \
		"$(ext_get a "$l1" 8080)" "l-1 $ca"
	expect "$T topology: client a reaches remote pod r-1 directly (IPv$fam) through node 1 and node 2" \
		"$(ext_get a "$r1" 8080)" "r-1 $ca"
	out=$(ext_probe a tcp "$n1" 30080 --timeout 2)
	expect_match "$T control: before ferryd, node 1 refuses NodePort 30080 (IPv$fam): nothing listens" \
		"$out" '^error=ECONNREFUSED stage=connect'
	expect_match "$T control: before ferryd, node 1's port 30090 (IPv$fam) reaches its host process" \
		"$(ext_probe a tcp "$n1" 30090 --timeout 2)" '^reply=host-leak '
done

args=(--node-name "$TOPO_NODE_NAME" --devices lan0 --xdp "$MODE" ${NODEPORT_TCX:+--tcx "$NODEPORT_TCX"})
[ "${NODEPORT_NODE_IPS:-0}" = 1 ] && args+=(--node-ips "$N1_V4,$N1_V6")
FERRYD_NETNS=$NODE ferryd_start "$SRC" "${args[@]}" || finish
case $MODE in native) want=driver ;; generic) want=generic ;; *) want=none ;; esac
expect "$T ferryd attaches XDP to lan0 in the mode asked (bpftool net)" "$(xdp_attached)" "$want"

# === core: NodePort, ETP Cluster and Local, no endpoint ======================

for fam in 4 6; do
	if [ $fam = 4 ]; then n1=$N1_V4 ca=$CA_V4; else n1=$N1_V6 ca=$CA_V6; fi
	got=$(ext_get a "$n1" 30080)
	note "np-l TCP IPv$fam, local backend: the pod saw '$got'"
	expect_match "$T B22 NodePort TCP IPv$fam from outside reaches the local backend" "$got" '^l-1 '
	expect_match "$T B22 NodePort UDP IPv$fam reaches the local backend; the reply comes from the node address and NodePort" \
		"$(ext_udp a "$n1" 30053)" "^l-1 [^ ]+ from $(re "$(hostport "$n1" 30053)")\$"
	expect "$T B23 NodePort TCP IPv$fam, ETP Cluster, remote backend: r-1 sees node 1's address (SNAT)" \
		"$(ext_get a "$n1" 30081)" "r-1 $n1"
	expect "$T B23 NodePort UDP IPv$fam, ETP Cluster, remote backend: r-1 sees node 1's address; the reply comes from the NodePort" \
		"$(ext_udp a "$n1" 30054)" "r-1 $n1 from $(hostport "$n1" 30054)"
	port=$((41000 + fam))
	ext_probe a tcp "$n1" 30081 --bind-port $port >/dev/null
	expect "$T B23 ferryctl ct list (IPv$fam): the flow from a:$port to the NodePort, rewritten to r-1 from node 1, and its reply" \
		"$(ct_flow "$(hostport "$ca" $port)" "$(hostport "$n1" 30081)")" \
		"original snat to $(hostport "$(pod_v$fam r-1)" 8080) from $n1; reply from $(hostport "$(pod_v$fam r-1)" 8080)"
	expect "$T B23 30 new connections in a row (IPv$fam) to the remote backend all answered" \
		"$(ext_tally a 30 "$n1" 30081)" "r-1=30"
	expect "$T B23 ETP Local, TCP IPv$fam: only the local endpoint l-2, which sees the client's address" \
		"$(ext_get a "$n1" 30082)" "l-2 $ca"
	expect "$T B23 ETP Local, UDP IPv$fam: l-2 sees the client's address; the reply comes from the NodePort" \
		"$(ext_udp a "$n1" 30062)" "l-2 $ca from $(hostport "$n1" 30062)"
	expect "$T B23 ETP Local, 20 connections (IPv$fam): all to the local endpoint, none to remote r-2" \
		"$(ext_tally a 20 "$n1" 30082)" "l-2=20"

	c0=$(counter packet_dropped_no_local_endpoint)
	out=$(ext_probe a tcp "$n1" 30083 --timeout 2)
	note "etpl-none IPv$fam: $out"
	expect_match "$T B16 ETP Local without a local endpoint (IPv$fam): dropped, the connect times out (not refused)" \
		"$out" '^error=timeout stage=connect'
	expect_counter_up "$T B16 ETP Local without a local endpoint (IPv$fam): counted" packet_dropped_no_local_endpoint "$c0"

	# "At once": before the second SYN retransmission (3 s), where a
	# dropped SYN would hang for minutes. The client's TCP ignores a port
	# unreachable that comes back while connect() still holds its socket
	# (seen over IPv6 here; ip6tables' REJECT in node 1 gives the same
	# 1.0 s) and takes the first retransmission's; a loaded machine can
	# make that happen over IPv4 too.
	limit=2500
	c0=$(counter packet_icmp_unreachable_sent)
	out=$(ext_probe a tcp "$n1" 30090 --timeout 3)
	note "empty TCP IPv$fam: $out"
	if [[ $out =~ ^error=ECONNREFUSED\ stage=connect\ ms=([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -lt $limit ]; then
		ok "$T B14 no endpoint, TCP IPv$fam: ECONNREFUSED within $limit ms, though a host process listens on the port"
	else
		not_ok "$T B14 no endpoint, TCP IPv$fam: ECONNREFUSED within $limit ms, though a host process listens on the port" "got '$out'"
	fi
	out=$(ext_probe a udp "$n1" 30090 --connect --timeout 2)
	expect_match "$T B14 no endpoint, connected UDP IPv$fam: the client gets ECONNREFUSED (ICMP port unreachable)" \
		"$out" '^error=ECONNREFUSED '
	expect_counter_up "$T B14 no endpoint (IPv$fam): ICMP port unreachable counted" packet_icmp_unreachable_sent "$c0"
done

# === path MTU =================================================================

wait_until 10 in_ext b curl -sf -o /dev/null --max-time 2 "http://$(pod_v4 m-2):8080/blob" ||
	not_ok "$T path MTU setup" "m-2's HTTP server does not answer"
ip -n "$NODE" route add "$(pod_v4 m-2)/32" via "$N2_V4" mtu lock 1300 &&
	ip -n "$NODE" -6 route add "$(pod_v6 m-2)/128" via "$N2_V6" mtu lock 1300 &&
	ip -n "$NODE" route add "$CB_V4/32" dev lan0 mtu lock 1300 &&
	ip -n "$NODE" -6 route add "$CB_V6/128" dev lan0 mtu lock 1300 ||
	not_ok "$T path MTU setup" "routes of MTU 1300 in node 1"
for fam in 4 6; do
	if [ $fam = 4 ]; then n1=$N1_V4; else n1=$N1_V6; fi
	out=$(pmtu_udp a "$n1" 30057 1400)
	note "np-m UDP IPv$fam, 1,400 bytes with DF: $out"
	expect "$T path MTU, local backend, UDP IPv$fam: a datagram with DF too long for m-1's veth teaches client a the MTU (the stack's error, translated at tc egress)" \
		"$out" mtu=1300
	c0=$(counter packet_icmp_too_big_sent)
	out=$(pmtu_udp b "$n1" 30058 1400)
	note "np-m2 UDP IPv$fam, 1,400 bytes with DF: $out"
	expect "$T path MTU, remote backend, UDP IPv$fam: a datagram with DF too long for the route to m-2 teaches client b the MTU (answered by ferry for the frontend)" \
		"$out" mtu=1300
	expect_counter_up "$T path MTU, remote backend (IPv$fam): the answer is counted" packet_icmp_too_big_sent "$c0"
	out=$(in_ext b curl -sS -g --max-time 8 -o /dev/null -w '%{size_download}' "http://$(hostport "$n1" 30093)/blob" 2>&1)
	expect "$T path MTU, TCP IPv$fam: a 300,000-byte download from remote m-2 through a route of MTU 1300 back to client b completes (m-2 learns the MTU)" \
		"$out" 300000
done
ip -n "$NODE" route del "$(pod_v4 m-2)/32"
ip -n "$NODE" -6 route del "$(pod_v6 m-2)/128"
ip -n "$NODE" route del "$CB_V4/32"
ip -n "$NODE" -6 route del "$CB_V6/128"

if [ "$CORE" = 1 ]; then
	ferryd_alive
	finish
fi

# === LB IP and loadBalancerSourceRanges (B26), externalIPs (B25) =============

expect_match "$T B24 B26 LB IP 198.51.100.10 from client a, inside loadBalancerSourceRanges: answered" \
	"$(ext_get a 198.51.100.10 80)" '^l-1 '
expect_match "$T B24 LB IP, UDP from client a: the reply comes from the LB IP and port" \
	"$(ext_udp a 198.51.100.10 53)" '^l-1 [^ ]+ from 198\.51\.100\.10:53$'
c0=$(counter packet_dropped_source_range)
out=$(ext_probe b tcp 198.51.100.10 80 --timeout 2)
note "lb from client b: $out"
expect_match "$T B26 LB IP from client b, outside the source ranges: dropped (the connect times out)" \
	"$out" '^error=timeout stage=connect'
expect_counter_up "$T B26 the source-range drop is counted" packet_dropped_source_range "$c0"
expect_match "$T B26 the source ranges do not apply to the NodePort: client b reaches 30084" \
	"$(ext_get b "$N1_V4" 30084)" '^l-1 '
expect_match "$T B25 externalIP 203.0.113.10, TCP: answered by the endpoint (the invalid externalIP is ignored)" \
	"$(ext_get a 203.0.113.10 80)" '^l-2 '
expect_match "$T B25 externalIP, UDP: the reply comes from the externalIP and port" \
	"$(ext_udp a 203.0.113.10 53)" '^l-2 [^ ]+ from 203\.0\.113\.10:53$'

expect_match "$T B24 LB ingress IP with ipMode VIP: answered" "$(ext_get a 198.51.100.22 80)" '^l-2 '
for what in "198.51.100.20 an ingress IP with ipMode Proxy" "198.51.100.21 spec.loadBalancerIP"; do
	out=$(ext_probe a tcp "${what%% *}" 80 --timeout 2)
	note "lbmode ${what%% *}: $out"
	expect_match "$T B24 ${what#* } (${what%% *}) is not captured: no pod answers" "$out" '^error='
done

# === healthCheckNodePort (B28) ===============================================

# hc_get ADDR PORT: "STATUS CONTENT-TYPE namespace/name localEndpoints
# serviceProxyHealthy" of a GET on an arbitrary path, from client a.
hc_get() {
	in_ext a curl -sS -g -i --connect-timeout 2 --max-time 3 "http://$(hostport "$1" "$2")/any/path?x=1" 2>&1 |
		"$PYTHON" -c '
import json, sys
raw = sys.stdin.read()
head, _, body = raw.replace("\r\n", "\n").partition("\n\n")
lines = head.split("\n")
if not lines[0].startswith("HTTP/"):
    print("no-answer", lines[0][:80]); sys.exit()
ctype = next((l.split(":", 1)[1].strip() for l in lines[1:] if l.lower().startswith("content-type:")), "-")
try:
    j = json.loads(body)
    s = j["service"]
    print(lines[0].split()[1], ctype, s["namespace"] + "/" + s["name"], j["localEndpoints"], j["serviceProxyHealthy"])
except Exception as e:
    print(lines[0].split()[1], ctype, "bad-body", repr(body[:80]))'
}

expect "$T B28 healthCheckNodePort of hc (2 local endpoints): 200, JSON, localEndpoints 2" \
	"$(hc_get "$N1_V4" 32100)" "200 application/json np/hc 2 True"
expect "$T B28 healthCheckNodePort of hc-none (no local endpoint): 503, localEndpoints 0" \
	"$(hc_get "$N1_V4" 32101)" "503 application/json np/hc-none 0 True"
hc_yaml Cluster | write_source "$SRC/hc.yaml"
# shellcheck disable=SC2317 # run through wait_until
hc_closed() { [[ $(ext_probe a tcp "$N1_V4" 32100 --timeout 1) == error=ECONNREFUSED* ]]; }
if wait_until 10 hc_closed; then
	ok "$T B28 hc changed to externalTrafficPolicy Cluster: its health check port closes"
else
	not_ok "$T B28 hc changed to externalTrafficPolicy Cluster: its health check port closes" \
		"still '$(hc_get "$N1_V4" 32100)' after 10 s"
fi

# === from node 1 itself: the socket LB (B22, B23) ============================

for target in "127.0.0.1 30080" "::1 30080" "$N1_V4 30080" "$N1_V6 30080"; do
	read -r addr port <<<"$target"
	hp=$(hostport "$addr" "$port")
	expect_fields "$T B22 from node 1, NodePort on $addr: answered by l-1; getpeername shows $hp" \
		"$(probe tcp "$addr" "$port")" "reply peer" "l-1 $hp"
done
expect_fields "$T B22 from node 1, UDP NodePort on 127.0.0.1: l-1 answers, from 127.0.0.1:30053" \
	"$(probe udp 127.0.0.1 30053)" "reply from" "l-1 127.0.0.1:30053"
expect_match "$T B23 from node 1, the ETP Local NodePort without a local endpoint uses the Cluster set (r-1)" \
	"$(probe tcp 127.0.0.1 30083) / $(probe tcp "$N1_V4" 30083)" '^reply=r-1 .* / reply=r-1 ' 

# === session affinity across ClusterIP and NodePort (B30) ====================

first=$(field reply "$(probe tcp 10.96.12.10 80)")
t="$(conn_tally 5 10.96.12.10 80) $(conn_tally 5 127.0.0.1 30087) $(conn_tally 5 "$N1_V4" 30087)"
note "aff from node 1: first '$first', then ClusterIP, 127.0.0.1 and node address x5: $t"
expect "$T B30 from node 1: ClusterIP, then NodePort on 127.0.0.1 and on the node address reach the same backend" \
	"$t" "$first=5 $first=5 $first=5"
for c in a b; do
	t=$(ext_tally "$c" 20 "$N1_V4" 30087)
	note "aff from client $c: $t"
	expect_match "$T B30 from outside, client $c keeps one backend over 20 connections" "$t" '^[lr]-[12]=20$'
done

# === kubernetes#81775: source port reuse across a rolling update (B12) ======

PORT_REUSED=41234
out=$(ext_probe a tcp "$N1_V4" 30088 --bind-port $PORT_REUSED)
expect_match "$T B12 roll: client a, from port $PORT_REUSED, reaches k-1" "$out" '^reply=k-1 '
HOLD=$WORK/hold
mkdir "$HOLD"
in_ext a "$PYTHON" "$PROBE" hold "$N1_V4" 30088 --dir "$HOLD" --wait 30 --timeout 3 &
PIDS+=($!)
UHOLD=$WORK/uhold
mkdir "$UHOLD"
in_ext a "$PYTHON" "$PROBE" hold "$N1_V4" 30068 --udp --dir "$UHOLD" --wait 30 --timeout 3 &
PIDS+=($!)
wait_file "$HOLD/first" 10
wait_file "$UHOLD/first" 10
expect "$T B12 roll: a held connection is on k-1" "$(cat "$HOLD/first" 2>/dev/null)" k-1
expect "$T B12 roll: a UDP socket's flow is on k-1" "$(cat "$UHOLD/first" 2>/dev/null)" "k-1 from=$N1_V4:30068"
c0=$(counter packet_flow_backend_replaced)
# The rolling update: k-2 replaces k-1, and k-1's pod is deleted.
roll_yaml k-2 | change "$T roll: k-1 replaced by k-2" "$SRC/roll.yaml"
topo_pod_gone k-1
out=$(ext_probe a tcp "$N1_V4" 30088 --bind-port $PORT_REUSED --timeout 3)
note "roll, port $PORT_REUSED reused after the update: $out"
expect_match "$T B12 kubernetes#81775: client a reuses source port $PORT_REUSED after the update and reaches live k-2" \
	"$out" '^reply=k-2 '
touch "$HOLD/go" "$UHOLD/go"
wait_file "$HOLD/second" 10
wait_file "$UHOLD/second" 10
expect "$T B12 the UDP flow's next datagram goes to live k-2, and the reply still comes from the NodePort" \
	"$(cat "$UHOLD/second" 2>/dev/null)" "k-2 from=$N1_V4:30068"
got=$(cat "$HOLD/second" 2>/dev/null)
note "roll, the held connection after the update: '$got'"
expect "$T B12 the held connection's packets go to live k-2, which resets it (not to the deleted k-1: a hang)" \
	"$got" error=ECONNRESET
expect_counter_up "$T B12 the flows moved off the deleted backend are counted" packet_flow_backend_replaced "$c0"
lport=$(cat "$HOLD/lport" 2>/dev/null)
expect_match "$T B12 kubernetes#81775: a new connection from the held connection's port ${lport:-?} reaches k-2" \
	"$(ext_probe a tcp "$N1_V4" 30088 --bind-port "${lport:-1}" --timeout 3)" '^reply=k-2 '

# === B22: a deleted Service's NodePort stops ==================================

g=$(generation)
rm -f "$SRC/np-l.yaml"
if wait_generation $((${g:-0} + 1)) 10; then
	expect_match "$T B22 np-l deleted: its NodePort from outside is refused by node 1 (nothing listens)" \
		"$(ext_probe a tcp "$N1_V4" 30080 --timeout 2)" '^error=ECONNREFUSED stage=connect'
	expect_match "$T B22 np-l deleted: its NodePort on 127.0.0.1 from node 1 is refused" \
		"$(probe tcp 127.0.0.1 30080 --timeout 2)" '^error=ECONNREFUSED stage=connect'
else
	not_ok "$T B22 np-l deleted: a new generation is published" "still $(generation)"
fi

ferryd_alive
finish
