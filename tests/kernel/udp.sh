#!/usr/bin/env bash
# UDP through ClusterIPs: request/response on unconnected sockets with the
# reply coming from ClusterIP:port (python and dig), connected sockets with
# getpeername, v4-mapped IPv6 sockets, IPv6 ClusterIPs, one socket talking to
# two services (also two that share a pod, and more than the 8 a socket's
# state holds), and TCP and UDP on the same port number.
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
	in_client "$PYTHON" "$PROBE" udp --count "$n" "$@" | sed -n 's/^reply=\([^ ]*\) .*/\1/p' | sort -u | tr '\n' ' ' | sed 's/ $//'
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

# --- One unconnected socket, services that share a pod (issue 14) ----------
# A reply carries the pod's address only: the socket's state must say which
# service it answers for. sa spreads over dns-1 and dns-2, sb has dns-1
# alone; l1..l9 spread over both.
{
	udp_svc() {
		printf -- '---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: udp}\n' "$1"
		printf 'spec:\n  clusterIP: %s\n  ports: [{port: 53, protocol: UDP, targetPort: 53}]\n' "$2"
		printf -- '---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n'
		printf 'metadata: {name: %s, namespace: udp, labels: {kubernetes.io/service-name: %s}}\n' "$1" "$1"
		printf 'addressType: IPv4\nports: [{port: 53, protocol: UDP}]\nendpoints:\n'
		for a in "${@:3}"; do printf -- '- {addresses: [%s]}\n' "$a"; done
	}
	udp_svc sa 10.96.20.30 198.18.20.1 198.18.20.2
	udp_svc sb 10.96.20.31 198.18.20.1
	for i in 1 2 3 4 5 6 7 8 9; do udp_svc "l$i" "10.96.20.4$i" 198.18.20.1 198.18.20.2; done
} | update_source "$WORK/src/shared.yaml" || not_ok "shared: a new generation is published" "still $(generation)"

# Sent to sb (dns-1) then sa before either answers: sa takes dns-2, the pod
# the socket does not reach through another service, so each crossing
# reply shows its own service (x8 sockets).
crossing() {
	for _ in 1 2 3 4 5 6 7 8; do
		probe udp --crossing 10.96.20.31 53 10.96.20.30 53 | sort | tr '\n' ' '
		echo
	done | sort | uniq -c | sed 's/^ *//'
}
expect "B20 crossing replies of two services sharing dns-1 each show their own ClusterIP (x8)" \
	"$(crossing)" "8 reply=dns-1 from=10.96.20.31:53 reply=dns-2 from=10.96.20.30:53 "

# Past 8 services a socket forgets the one it used least recently: l1, sent
# to again before l9, keeps its entry and its backend (x8 sockets).
lru() {
	local e0 t
	e0=$(status_get 'j["counters"]["socket_state_evicted"]')
	for _ in 1 2 3 4 5 6 7 8; do
		t=$(probe udp 10.96.20.41 53 10.96.20.42 53 10.96.20.43 53 10.96.20.44 53 \
			10.96.20.45 53 10.96.20.46 53 10.96.20.47 53 10.96.20.48 53 10.96.20.41 53 \
			10.96.20.49 53 10.96.20.41 53 | sed -n '1p;9p;11p' | sed 's/ ms=.*//' | sort -u | wc -l)
		echo "$t"
	done | sort | uniq -c | sed 's/^ *//'
	echo "evicted $(($(status_get 'j["counters"]["socket_state_evicted"]') - e0))"
}
expect "B20 nine services on one socket: l1, used again, keeps its backend past the ninth; one eviction each (x8)" \
	"$(lru | tr '\n' ' ')" "8 1 evicted 8 "

finish
