#!/usr/bin/env bash
# Hairpin (B19): a pod that reaches its own Service lands on itself when it
# is the endpoint, over TCP and UDP, IPv4 and IPv6, and still sees the
# service address as its peer (B20); with a second endpoint its connections
# spread over itself and the other pod. The client runs inside the pod's
# own network namespace, in ferry's cgroup, as a pod's process would.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
pod h-1 198.18.95.1 fd00:198:18:95::1 --tcp 8080 --udp 8053
pod h-2 198.18.95.2 fd00:198:18:95::2 --tcp 8080 --udp 8053

# self_yaml ENDPOINT-POD...: Service "self" (dual-stack, TCP 80 and UDP 53)
# with these pods as endpoints.
self_yaml() {
	local p
	cat <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: self, namespace: hp}
spec:
  clusterIP: 10.96.95.10
  clusterIPs: [10.96.95.10, "fd00:10:96::95"]
  ipFamilies: [IPv4, IPv6]
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 8053}
EOF
	for fam in 4 6; do
		cat <<EOF
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: self-v$fam, namespace: hp, labels: {kubernetes.io/service-name: self}}
addressType: IPv$fam
ports: [{name: http, port: 8080, protocol: TCP}, {name: dns, port: 8053, protocol: UDP}]
endpoints:
EOF
		for p; do
			if [ "$fam" = 4 ]; then
				echo "- {addresses: [198.18.95.${p#h-}]}"
			else
				echo "- {addresses: ['fd00:198:18:95::${p#h-}']}"
			fi
		done
	done
}

# in_pod POD CMD...: CMD in POD's network namespace and in ferry's cgroup.
in_pod() {
	local ns=${POD_NS[$1]}
	shift
	bash -c "$CLIENT_SH" "$CG" "$ns" "$@"
}

# pod_tally POD COUNT ADDR PORT: conncount from inside POD, in conn_tally's
# format.
pod_tally() {
	in_pod "$1" "$CONNCOUNT" -n "$2" -t 60 "$3" "$4" | awk '{print $2"="$1}' | sort | tr '\n' ' ' |
		sed 's/ $//'
}

SRC=$WORK/self.yaml
self_yaml h-1 | write_source "$SRC"
ferryd_start "$SRC" || finish

for vip in 10.96.95.10 fd00:10:96::95; do
	out=$(in_pod h-1 "$PYTHON" "$PROBE" tcp "$vip" 80)
	expect_match "B19 TCP from h-1 to its own Service ($vip) reaches h-1" "$out" '^reply=h-1 '
	expect "B20 TCP hairpin: getpeername shows the service ($vip)" "$(field peer "$out")" \
		"$( [[ $vip = *:* ]] && echo "[$vip]:80" || echo "$vip:80")"
	out=$(in_pod h-1 "$PYTHON" "$PROBE" udp "$vip" 53)
	expect_match "B19 UDP from h-1 to its own Service ($vip) reaches h-1" "$out" '^reply=h-1 '
	expect "B20 UDP hairpin: the reply comes from the service ($vip)" "$(field from "$out")" \
		"$( [[ $vip = *:* ]] && echo "[$vip]:53" || echo "$vip:53")"
	out=$(in_pod h-1 "$PYTHON" "$PROBE" udp "$vip" 53 --connect)
	expect_match "B19 connected UDP hairpin ($vip) reaches h-1" "$out" '^reply=h-1 '
done
expect "B19 20 TCP connections from h-1 to its own Service all reach h-1" \
	"$(pod_tally h-1 20 10.96.95.10 80)" "h-1=20"

self_yaml h-1 h-2 | update_source "$SRC" || not_ok "second endpoint: a new generation is published" "still $(generation)"
expect "B19 with h-2 as well: connections from h-1 reach itself and h-2 (x40)" \
	"$(names_of "$(pod_tally h-1 40 10.96.95.10 80)")" "h-1 h-2"
expect "B19 the same from h-2 over IPv6 (x40)" \
	"$(names_of "$(pod_tally h-2 40 fd00:10:96::95 80)")" "h-1 h-2"

finish
