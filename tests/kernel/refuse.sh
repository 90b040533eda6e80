#!/usr/bin/env bash
# Refusals: a service port with no usable endpoint (B14) and a port the
# Service does not define on a known ClusterIP (B17) fail at once with
# ECONNREFUSED: TCP connect, UDP connect and UDP sendto; IPv4, IPv6 and
# v4-mapped IPv6; and the same from a ferryd without the optional kernel
# features (--udp-reaper off --tcx off).
#
# The node itself holds every ClusterIP of this test and a "node-trap"
# server listens on each port tried, so nothing here is refused by the
# kernel: an ECONNREFUSED can only come from ferry, and traffic that leaked
# to the virtual address would be answered by node-trap.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
pod web-1 198.18.30.1 fd00:198:18:30::1 --tcp 8080 --udp 8080

for vip in 10.96.30.10/32 10.96.30.20/32 10.96.30.30/32; do
	ip -n "$NODE" addr add "$vip" dev lo
done
for vip in fd00:10:96::30/128 fd00:10:96::31/128; do
	ip -n "$NODE" addr add "$vip" dev lo nodad
done
start_server "$NODE" node-trap --tcp 80 --tcp 81 --tcp 53 --udp 80 --udp 81 --udp 53

SRC=$WORK/services.yaml
write_source "$SRC" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: known, namespace: refuse}
spec:
  clusterIP: 10.96.30.10
  clusterIPs: [10.96.30.10, "fd00:10:96::30"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: RequireDualStack
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 8080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: known-v4, namespace: refuse, labels: {kubernetes.io/service-name: known}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}, {name: dns, port: 8080, protocol: UDP}]
endpoints: [{addresses: [198.18.30.1]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: known-v6, namespace: refuse, labels: {kubernetes.io/service-name: known}}
addressType: IPv6
ports: [{name: http, port: 8080, protocol: TCP}, {name: dns, port: 8080, protocol: UDP}]
endpoints: [{addresses: ["fd00:198:18:30::1"]}]
---
# No EndpointSlice at all.
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: refuse}
spec:
  clusterIP: 10.96.30.20
  clusterIPs: [10.96.30.20, "fd00:10:96::31"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: RequireDualStack
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 8080}
---
# Its only endpoint is neither ready nor serving.
apiVersion: v1
kind: Service
metadata: {name: unready, namespace: refuse}
spec:
  clusterIP: 10.96.30.30
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 8080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: unready-1, namespace: refuse, labels: {kubernetes.io/service-name: unready}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}, {name: dns, port: 8080, protocol: UDP}]
endpoints: [{addresses: [198.18.30.1], conditions: {ready: false}}]
EOF
ferryd_start "$SRC" || finish

out=$(in_node "$PYTHON" "$PROBE" tcp 10.96.30.20 80)
expect "control: untranslated traffic to a ClusterIP would reach node-trap" "$(field reply "$out")" node-trap

# refused NAME STAGE PROBE-ARGS...: ECONNREFUSED at STAGE within a second.
refused() {
	local name=$1 stage=$2 out
	shift 2
	out=$(probe "$@")
	expect_match "$name" "$out" "^error=ECONNREFUSED stage=$stage ms=[0-9]{1,3}\$"
}

for f in "IPv4|10.96.30.20|10.96.30.10|" "IPv6|fd00:10:96::31|fd00:10:96::30|" \
	"v4-mapped IPv6|10.96.30.20|10.96.30.10|--family 6"; do
	IFS='|' read -r label empty known opt <<<"$f"
	# $opt is empty or "--family 6": split on purpose.
	# shellcheck disable=SC2086
	{
		out=$(probe tcp $opt "$known" 80)
		expect "control: defined TCP port answers ($label)" "$(field reply "$out")" web-1
		out=$(probe udp $opt "$known" 53)
		expect "control: defined UDP port answers ($label)" "$(field reply "$out")" web-1

		refused "B14 TCP connect to a port without endpoints: ECONNREFUSED ($label)" connect tcp $opt "$empty" 80
		refused "B14 UDP connect to a port without endpoints: ECONNREFUSED ($label)" connect udp --connect $opt "$empty" 53
		refused "B14 UDP sendto a port without endpoints: ECONNREFUSED ($label)" sendto udp $opt "$empty" 53

		refused "B17 TCP connect to an undefined port: ECONNREFUSED ($label)" connect tcp $opt "$known" 81
		refused "B17 B4 TCP connect to a port defined only for UDP: ECONNREFUSED ($label)" connect tcp $opt "$known" 53
		refused "B17 UDP connect to an undefined port: ECONNREFUSED ($label)" connect udp --connect $opt "$known" 81
		refused "B17 UDP sendto an undefined port: ECONNREFUSED ($label)" sendto udp $opt "$known" 81
		refused "B17 B4 UDP sendto a port defined only for TCP: ECONNREFUSED ($label)" sendto udp $opt "$known" 80
	}
done

refused "B10 B14 TCP connect, only endpoint not ready (serving absent): ECONNREFUSED" connect tcp 10.96.30.30 80
refused "B10 B14 UDP sendto, only endpoint not ready (serving absent): ECONNREFUSED" sendto udp 10.96.30.30 53

# The refusals are the core (bpf_set_retval, the 5.18 floor): a ferryd
# without the optional features (what a 6.1 kernel gives) refuses the same.
ferryd_reset
ferryd_start "$SRC" --udp-reaper off --tcx off || finish
expect "optional features off: ferryctl status says the UDP reaper is off" \
	"$(status_get 'j["features"]["udp_reaper"]["available"]')" False
expect "optional features off: defined UDP port answers" "$(field reply "$(probe udp 10.96.30.10 53)")" web-1
refused "B14 optional features off: TCP connect to a port without endpoints: ECONNREFUSED" connect tcp 10.96.30.20 80
refused "B14 optional features off: UDP connect to a port without endpoints: ECONNREFUSED" connect udp --connect 10.96.30.20 53
refused "B17 optional features off: UDP sendto an undefined port: ECONNREFUSED" sendto udp 10.96.30.10 81

finish
