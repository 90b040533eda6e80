#!/usr/bin/env bash
# TCP through a dual-stack ClusterIP: every backend is reached, connections
# spread evenly, getpeername() shows the service, IPv6 and v4-mapped IPv6
# sockets work, and processes outside ferry's cgroup are left alone.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
for i in 1 2 3; do
	pod "web-$i" "198.18.10.$i" "fd00:198:18:10::$i" --tcp 8080
done

SRC=$WORK/services.yaml
write_source "$SRC" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: tcp}
spec:
  type: ClusterIP
  clusterIP: 10.96.10.10
  clusterIPs: [10.96.10.10, "fd00:10:96::10"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: RequireDualStack
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-v4, namespace: tcp, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- {addresses: [198.18.10.1], conditions: {ready: true}}
- {addresses: [198.18.10.2], conditions: {ready: true}}
- {addresses: [198.18.10.3], conditions: {ready: true}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-v6, namespace: tcp, labels: {kubernetes.io/service-name: web}}
addressType: IPv6
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- {addresses: ["fd00:198:18:10::1"], conditions: {ready: true}}
- {addresses: ["fd00:198:18:10::2"], conditions: {ready: true}}
- {addresses: ["fd00:198:18:10::3"], conditions: {ready: true}}
EOF
ferryd_start "$SRC" || finish
ALL="web-1 web-2 web-3"

t=$(curl_tally 30 http://10.96.10.10/)
note "curl x30: $t"
expect "B18 TCP IPv4 ClusterIP reaches every backend (curl x30)" "$(names_of "$t")" "$ALL"

t=$(curl_tally 30 'http://[fd00:10:96::10]/')
note "curl x30: $t"
expect "B18 B3 TCP IPv6 ClusterIP reaches every backend (curl x30)" "$(names_of "$t")" "$ALL"

t=$(conn_tally 3000 10.96.10.10 80)
note "conncount x3000: $t"
if [ "$(names_of "$t")" = "$ALL" ] &&
	awk -v t="$t" 'BEGIN { n = split(t, kv, " "); for (i = 1; i <= n; i++) {
		split(kv[i], a, "="); if (a[2] < 900 || a[2] > 1100) exit 1 } }'; then
	ok "TCP 3000 connections over 3 backends land within 10% of even"
else
	not_ok "TCP 3000 connections over 3 backends land within 10% of even" "got $t, want each in 900..1100"
fi

t=$(conn_tally 60 ::ffff:10.96.10.10 80)
note "conncount x60: $t"
expect "B18 TCP v4-mapped IPv6 socket reaches every backend (x60)" "$(names_of "$t")" "$ALL"

out=$(probe tcp 10.96.10.10 80)
expect_match "B20 TCP getpeername returns ClusterIP:port (IPv4)" "$out" \
	'^reply=web-[123] peer=10\.96\.10\.10:80 '

out=$(probe tcp fd00:10:96::10 80)
expect_match "B20 TCP getpeername returns ClusterIP:port (IPv6)" "$out" \
	'^reply=web-[123] peer=\[fd00:10:96::10\]:80 '

out=$(probe tcp --family 6 10.96.10.10 80)
expect_match "B18 B20 TCP getpeername returns ClusterIP:port (v4-mapped IPv6)" "$out" \
	'^reply=web-[123] peer=\[::ffff:10\.96\.10\.10\]:80 '

out=$(in_node "$PYTHON" "$PROBE" tcp 10.96.10.10 80)
expect "scope: a process outside ferry's cgroup is not translated" "$(field error "$out")" ENETUNREACH

finish
