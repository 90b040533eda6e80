#!/usr/bin/env bash
# Bad fields of a NodePort/LoadBalancer Service (issue 12, "Bad input"): a
# nodePort outside --node-port-range, an LB ingress IP that is one of the
# node's addresses, an unparsable loadBalancerSourceRanges entry. Each gets
# a log line naming the Service and the field, counts in ferryctl status'
# fields_ignored and ferry_fields_ignored_total, and leaves the rest of the
# Service served as kube-proxy would serve it (B22, B24, B26). A Service
# whose every range is unparsable admits nobody on its LB IP (fail closed).
#
# ferryd runs in the node namespace; its node address 192.0.2.1 is on no
# device, so only the socket LB serves, from the node itself.
# shellcheck disable=SC2317 # functions called through wait_until
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
pod b-1 198.18.91.1 "" --tcp 8080 --tcp 9090
FERRYD_NETNS=$NODE
MPORT=19691

bad_yaml() {
	cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: bad}
spec:
  type: LoadBalancer
  clusterIP: 10.96.91.1
  loadBalancerSourceRanges: ["203.0.113.0/24", "not-a-cidr"]
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30191}
  - {name: admin, port: 90, targetPort: 9090, nodePort: 40000}
status:
  loadBalancer:
    ingress: [{ip: 192.0.2.1}, {ip: 198.51.100.91}]
---
apiVersion: v1
kind: Service
metadata: {name: closed, namespace: bad}
spec:
  type: LoadBalancer
  clusterIP: 10.96.91.2
  loadBalancerSourceRanges: ["nonsense", "10.0.0.0/33"]
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30192}]
status:
  loadBalancer:
    ingress: [{ip: 198.51.100.92}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: lb-1, namespace: bad, labels: {kubernetes.io/service-name: lb}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: admin, port: 9090}]
endpoints:
- {addresses: [198.18.91.1], conditions: {ready: true}, nodeName: node-a}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: closed-1, namespace: bad, labels: {kubernetes.io/service-name: closed}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [198.18.91.1], conditions: {ready: true}, nodeName: node-a}
EOF
}

SRC=$WORK/bad.yaml
bad_yaml | write_source "$SRC"
ferryd_start "$SRC" --node-ips 192.0.2.1 --metrics-addr "127.0.0.1:$MPORT" || finish

logged() { grep -c -F "$1" "$FERRYD_LOG"; }
expect_match "nodePort outside the range: the log names the Service and the field" \
	"$(logged 'Service bad/lb: spec.ports[1].nodePort 40000 is outside the node-port range 30000-32767')" '^[1-9]'
expect_match "B24 an LB IP that is a node address: the log names the Service and the address" \
	"$(logged 'Service bad/lb: LoadBalancer ingress IP 192.0.2.1 is an address of this node')" '^[1-9]'
expect_match "B26 an unparsable source range: the log names the Service and the entry" \
	"$(grep -F 'bad/lb' "$FERRYD_LOG" | grep -c -F 'not-a-cidr')" '^[1-9]'
expect_match "B26 no range parses: the log says the LB IPs admit no source" \
	"$(grep -F 'bad/closed' "$FERRYD_LOG" | grep -c -i 'no source')" '^[1-9]'
expect_match "the bad fields are counted in ferryctl status (fields_ignored)" \
	"$(status_get 'j["agent"]["fields_ignored"]')" '^([4-9]|[1-9][0-9]+)$'
in_node curl -sS --max-time 3 -o "$WORK/metrics.txt" "http://127.0.0.1:$MPORT/metrics"
expect_match "and in ferry_fields_ignored_total" \
	"$("$PYTHON" "$REPO/tests/helpers/prom.py" value "$WORK/metrics.txt" ferry_fields_ignored_total)" \
	'^([4-9]|[1-9][0-9]+)$'

# What the maps hold: every good frontend, none of the bad ones.
frontends() {
	service_list_json | "$PYTHON" -c '
import json, sys
rows = []
for s in json.load(sys.stdin):
    for f in s["frontends"]:
        rows.append("%s:%d" % (f["address"], f["port"]))
print(" ".join(sorted(rows)))'
}
expect "B22 B24 the rest of the Service is programmed, the bad frontends left out" "$(frontends)" \
	"0.0.0.0:30191 0.0.0.0:30192 10.96.91.1:80 10.96.91.1:90 10.96.91.2:80 198.51.100.91:80 198.51.100.91:90 198.51.100.92:80"
ranges() {
	service_list_json | "$PYTHON" -c '
import json, sys
for s in json.load(sys.stdin):
    if s["address"] == sys.argv[1] and s["port"] == 80:
        print(" ".join(s["source_ranges"]))' "$1"
}
expect "B26 the parsable range stays" "$(ranges 10.96.91.1)" "203.0.113.0/24"
expect "B26 none parses: only the family's unspecified address, which no client has" \
	"$(ranges 10.96.91.2)" "0.0.0.0/32"

expect "the ClusterIP of the Service with bad fields answers" \
	"$(field reply "$(probe tcp --path /port 10.96.91.1 80)")" b-1:8080
expect "its second port's ClusterIP answers too (only its nodePort was bad)" \
	"$(field reply "$(probe tcp --path /port 10.96.91.1 90)")" b-1:9090
expect "B22 its good NodePort answers on 127.0.0.1" \
	"$(field reply "$(probe tcp --path /port 127.0.0.1 30191)")" b-1:8080
expect "B22 the nodePort outside the range is not served" \
	"$(field error "$(probe tcp 127.0.0.1 40000)")" ECONNREFUSED
if kill -0 "$FERRYD_PID" 2>/dev/null; then ok "ferryd runs on"; else not_ok "ferryd runs on" "it exited"; fi
finish
