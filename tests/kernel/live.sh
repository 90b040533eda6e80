#!/usr/bin/env bash
# Live changes to the source file: ports added and removed (B4), a Service
# deleted, recreated with a new ClusterIP, and its type changed (B5). Each
# change is written atomically and checked once ferryd published it.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
pod l-1 198.18.50.1 fd00:198:18:50::1 --tcp 8080 --udp 8080

SRC=$WORK/services.yaml

# render SPEC-LINES [SLICE-PORTS]: Service "a" with the given spec lines
# (none: no Service "a"), its slice, and Service "b" that never changes.
render() {
	if [ -n "$1" ]; then
		cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: a, namespace: live}
spec:
$1
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-1, namespace: live, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
ports: ${2:-[]}
endpoints: [{addresses: [198.18.50.1]}]
---
EOF
	fi
	cat <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: b, namespace: live}
spec:
  clusterIP: 10.96.50.20
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: b-1, namespace: live, labels: {kubernetes.io/service-name: b}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints: [{addresses: [198.18.50.1]}]
EOF
}
TCP_PORT='{name: http, port: 80, protocol: TCP, targetPort: 8080}'
UDP_PORT='{name: dns, port: 80, protocol: UDP, targetPort: 8080}'
SLICE_BOTH='[{name: http, port: 8080, protocol: TCP}, {name: dns, port: 8080, protocol: UDP}]'

# apply NAME RENDER-ARGS...: rewrite the file, wait for its generation.
apply() {
	local name=$1
	shift
	if render "$@" | update_source "$SRC"; then
		ok "$name: a new generation is published"
	else
		not_ok "$name: a new generation is published" "generation $(generation) did not rise within 10 s"
	fi
}

tcp_reply() { field reply "$(probe tcp "$1" 80)"; }
tcp_error() { field error "$(probe tcp "$1" 80)"; }
udp_reply() { probe udp "$1" 80 | sed -n 's/^reply=\([^ ]*\) from=\([^ ]*\) .*/\1 \2/p'; }
udp_error() { field error "$(probe udp "$1" 80)"; }

render "  clusterIP: 10.96.50.10
  ports: [$TCP_PORT]" "$SLICE_BOTH" | write_source "$SRC"
ferryd_start "$SRC" || finish

expect "B4 start: TCP 80 answers" "$(tcp_reply 10.96.50.10)" l-1
expect "B4 start: UDP 80 (not defined yet) is refused" "$(udp_error 10.96.50.10)" ECONNREFUSED

apply "B4 add UDP port 80 beside TCP 80" "  clusterIP: 10.96.50.10
  ports: [$TCP_PORT, $UDP_PORT]" "$SLICE_BOTH"
expect "B4 UDP port added live answers, from ClusterIP:80" "$(udp_reply 10.96.50.10)" "l-1 10.96.50.10:80"
expect "B4 TCP port with the same number still answers" "$(tcp_reply 10.96.50.10)" l-1

apply "B4 remove TCP port 80" "  clusterIP: 10.96.50.10
  ports: [$UDP_PORT]" "$SLICE_BOTH"
expect "B4 TCP port removed live is refused" "$(tcp_error 10.96.50.10)" ECONNREFUSED
expect "B4 UDP port of the same number is independent and still answers" \
	"$(udp_reply 10.96.50.10)" "l-1 10.96.50.10:80"

apply "B5 delete Service a" ""
expect "B5 deleted Service: its ClusterIP is no longer translated (TCP)" "$(tcp_error 10.96.50.10)" ENETUNREACH
expect "B5 deleted Service: its ClusterIP is no longer translated (UDP)" "$(udp_error 10.96.50.10)" ENETUNREACH
expect "B5 deleted Service: ferryctl no longer lists it" "$(svc_backends 10.96.50.10 80 UDP)" absent
expect "B5 the other Service is untouched" "$(tcp_reply 10.96.50.20)" l-1

apply "B5 recreate Service a with a new ClusterIP" "  clusterIP: 10.96.50.11
  ports: [$TCP_PORT, $UDP_PORT]" "$SLICE_BOTH"
expect "B5 recreated Service answers on its new ClusterIP (TCP)" "$(tcp_reply 10.96.50.11)" l-1
expect "B5 recreated Service answers on its new ClusterIP (UDP)" "$(udp_reply 10.96.50.11)" "l-1 10.96.50.11:80"
expect "B5 the old ClusterIP stays untranslated" "$(tcp_error 10.96.50.10)" ENETUNREACH

apply "B5 change type to ExternalName" "  type: ExternalName
  externalName: a.example.test" "$SLICE_BOTH"
expect "B1 B5 ExternalName: the former ClusterIP is no longer translated" "$(tcp_error 10.96.50.11)" ENETUNREACH
expect "B1 B5 ExternalName: ferryctl no longer lists it" "$(svc_backends 10.96.50.11 80 TCP)" absent

apply "B5 change type back to ClusterIP" "  type: ClusterIP
  clusterIP: 10.96.50.11
  ports: [$TCP_PORT, $UDP_PORT]" "$SLICE_BOTH"
expect "B5 ClusterIP again: answers (TCP)" "$(tcp_reply 10.96.50.11)" l-1

# The UDP port goes in the same write, so that the maps change and a
# generation shows when the write was applied.
apply "B5 change type to NodePort, dropping the UDP port" "  type: NodePort
  clusterIP: 10.96.50.11
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080, nodePort: 30080}]" "$SLICE_BOTH"
expect "B5 NodePort: its ClusterIP still answers (TCP)" "$(tcp_reply 10.96.50.11)" l-1
expect "B4 B5 NodePort: the dropped UDP port is refused" "$(udp_error 10.96.50.11)" ECONNREFUSED

finish
