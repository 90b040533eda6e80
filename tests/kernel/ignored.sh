#!/usr/bin/env bash
# Services ferry must leave alone: headless (clusterIP None or "") and
# ExternalName ones (B1), even with an EndpointSlice and, for ExternalName, a
# clusterIP a hand-written file may carry; Services labelled with
# service-proxy-name or headless (B2), live.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
pod i-1 198.18.60.1 fd00:198:18:60::1 --tcp 8080 --udp 8080

SRC=$WORK/services.yaml

# render LABELS: the Services; LABELS go on Service "labelled".
render() {
	cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: normal, namespace: ign}
spec:
  clusterIP: 10.96.60.20
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: headless-none, namespace: ign}
spec:
  clusterIP: None
  clusterIPs: [None]
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: headless-empty, namespace: ign}
spec:
  clusterIP: ""
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: extname, namespace: ign}
spec:
  type: ExternalName
  externalName: extname.example.test
  clusterIP: 10.96.60.10
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: labelled, namespace: ign, labels: {$1}}
spec:
  clusterIP: 10.96.60.30
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: hl-label, namespace: ign, labels: {service.kubernetes.io/headless: ""}}
spec:
  clusterIP: 10.96.60.31
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
EOF
	local svc
	for svc in normal headless-none headless-empty extname labelled hl-label; do
		cat <<EOF
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $svc-1, namespace: ign, labels: {kubernetes.io/service-name: $svc}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints: [{addresses: [198.18.60.1]}]
EOF
	done
}

render "service.kubernetes.io/service-proxy-name: other-proxy" | write_source "$SRC"
ferryd_start "$SRC" || finish

tcp() { probe tcp "$1" 80 | sed -n 's/^reply=\([^ ]*\) .*/\1/p; s/^error=\([^ ]*\) .*/\1/p'; }

expect "control: a plain ClusterIP Service answers" "$(tcp 10.96.60.20)" i-1
frontends=$(service_list_json | "$PYTHON" -c '
import json, sys
print(" ".join(sorted("%s:%d/%s" % (s["address"], s["port"], s["protocol"]) for s in json.load(sys.stdin))))')
expect "B1 B2 ferryctl lists only the plain Service (no headless, ExternalName or labelled one)" \
	"$frontends" "10.96.60.20:80/TCP"
expect "B1 ExternalName with a clusterIP in the file: that address is not translated" \
	"$(tcp 10.96.60.10)" ENETUNREACH
expect "B2 Service labelled service-proxy-name is not translated" "$(tcp 10.96.60.30)" ENETUNREACH
expect "B2 Service labelled service.kubernetes.io/headless is not translated" "$(tcp 10.96.60.31)" ENETUNREACH

if render "app: labelled" | update_source "$SRC"; then
	expect "B2 removing the service-proxy-name label live brings the Service up" "$(tcp 10.96.60.30)" i-1
else
	not_ok "B2 removing the service-proxy-name label live brings the Service up" "no new generation"
fi
if render "service.kubernetes.io/service-proxy-name: other-proxy" | update_source "$SRC"; then
	expect "B2 adding the service-proxy-name label live takes the Service down" "$(tcp 10.96.60.30)" ENETUNREACH
else
	not_ok "B2 adding the service-proxy-name label live takes the Service down" "no new generation"
fi

finish
