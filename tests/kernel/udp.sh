#!/usr/bin/env bash
# UDP through ClusterIPs: request/response on unconnected sockets with the
# reply coming from ClusterIP:port (python and dig), connected sockets with
# getpeername, v4-mapped IPv6 sockets, IPv6 ClusterIPs, one socket talking to
# two services, and TCP and UDP on the same port number.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
pod dns-1 198.18.20.1 fd00:198:18:20::1 --udp 53 --tcp 53
pod dns-2 198.18.20.2 fd00:198:18:20::2 --udp 53 --tcp 53
pod echo-1 198.18.20.11 fd00:198:18:20::11 --udp 5353

mkdir "$WORK/src"
write_source "$WORK/src/dns.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: udp}
spec:
  clusterIP: 10.96.20.10
  clusterIPs: [10.96.20.10, "fd00:10:96::20"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: PreferDualStack
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-v4, namespace: udp, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
endpoints:
- {addresses: [198.18.20.1]}
- {addresses: [198.18.20.2]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-v6, namespace: udp, labels: {kubernetes.io/service-name: dns}}
addressType: IPv6
ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
endpoints:
- {addresses: ["fd00:198:18:20::1"]}
- {addresses: ["fd00:198:18:20::2"]}
EOF
write_source "$WORK/src/echo.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: udp}
spec:
  clusterIP: 10.96.20.20
  ports: [{name: echo, port: 7000, protocol: UDP, targetPort: 5353}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: echo-1, namespace: udp, labels: {kubernetes.io/service-name: echo}}
addressType: IPv4
ports: [{name: echo, port: 5353, protocol: UDP}]
endpoints:
- {addresses: [198.18.20.11]}
EOF
ferryd_start "$WORK/src" || finish

# udp_names COUNT ARGS...: COUNT probes (each a new socket), the names that
# answered with the expected source; any other line is printed as is.
udp_names() {
	local n=$1
	shift
	in_client bash -c 'n=$1; shift; for ((i = 0; i < n; i++)); do "$@"; done' _ "$n" \
		"$PYTHON" "$PROBE" udp "$@" | sed -n 's/^reply=\([^ ]*\) .*/\1/p' | sort -u | tr '\n' ' ' | sed 's/ $//'
}

out=$(probe udp 10.96.20.10 53)
expect_match "B20 UDP unconnected IPv4: reply comes from ClusterIP:port" "$out" \
	'^reply=dns-[12] from=10\.96\.20\.10:53 peer=- '
expect "B20 UDP unconnected IPv4 reaches every backend (x20)" "$(udp_names 20 10.96.20.10 53)" "dns-1 dns-2"

out=$(probe udp --connect 10.96.20.10 53)
expect_match "B20 UDP connected IPv4: getpeername and reply source are ClusterIP:port" "$out" \
	'^reply=dns-[12] from=10\.96\.20\.10:53 peer=10\.96\.20\.10:53 '

out=$(probe udp --family 6 10.96.20.10 53)
expect_match "B18 B20 UDP unconnected v4-mapped IPv6: reply from ClusterIP:port" "$out" \
	'^reply=dns-[12] from=\[::ffff:10\.96\.20\.10\]:53 peer=- '

out=$(probe udp --family 6 --connect 10.96.20.10 53)
expect_match "B18 B20 UDP connected v4-mapped IPv6: getpeername and reply source" "$out" \
	'^reply=dns-[12] from=\[::ffff:10\.96\.20\.10\]:53 peer=\[::ffff:10\.96\.20\.10\]:53 '

out=$(probe udp fd00:10:96::20 53)
expect_match "B18 B20 UDP unconnected IPv6 ClusterIP: reply from ClusterIP:port" "$out" \
	'^reply=dns-[12] from=\[fd00:10:96::20\]:53 peer=- '
expect "B18 UDP unconnected IPv6 ClusterIP reaches every backend (x20)" \
	"$(udp_names 20 fd00:10:96::20 53)" "dns-1 dns-2"

out=$(probe udp --connect fd00:10:96::20 53)
expect_match "B18 B20 UDP connected IPv6 ClusterIP: getpeername and reply source" "$out" \
	'^reply=dns-[12] from=\[fd00:10:96::20\]:53 peer=\[fd00:10:96::20\]:53 '

# One socket, three exchanges, two services: each reply carries the address
# its request went to.
out=$(probe udp 10.96.20.10 53 10.96.20.20 7000 10.96.20.10 53 | tr '\n' '|')
expect_match "B20 one unconnected UDP socket, two services: each reply from its own ClusterIP" "$out" \
	'^reply=dns-[12] from=10\.96\.20\.10:53 [^|]*\|reply=echo-1 from=10\.96\.20\.20:7000 [^|]*\|reply=dns-[12] from=10\.96\.20\.10:53 [^|]*\|$'

out=$(probe udp --family 6 10.96.20.20 7000 fd00:10:96::20 53 | tr '\n' '|')
expect_match "B20 one dual-stack UDP socket, v4-mapped and IPv6 services" "$out" \
	'^reply=echo-1 from=\[::ffff:10\.96\.20\.20\]:7000 [^|]*\|reply=dns-[12] from=\[fd00:10:96::20\]:53 [^|]*\|$'

# dig drops answers whose source is not the server it asked ("reply from
# unexpected source"), so an answer at all shows the reverse translation.
dig_q() { in_client dig "$@" +short +time=2 +tries=1 TXT whoami.test 2>&1 | tr '\n' ' ' | sed 's/ $//'; }
expect_match "B20 dig @ClusterIP (UDP) gets an answer" "$(dig_q @10.96.20.10)" '^"dns-[12]"$'
expect_match "B4 dig +tcp @ClusterIP (TCP on the same port 53)" "$(dig_q @10.96.20.10 +tcp)" '^"dns-[12]"$'
expect_match "B20 dig @IPv6 ClusterIP (UDP) gets an answer" "$(dig_q @fd00:10:96::20)" '^"dns-[12]"$'
expect_match "B4 dig +tcp @IPv6 ClusterIP" "$(dig_q @fd00:10:96::20 +tcp)" '^"dns-[12]"$'

out=$(probe udp 10.96.20.20 5353)
expect "B17 UDP to the backend's targetPort on the ClusterIP is refused" "$(field error "$out")" ECONNREFUSED

finish
