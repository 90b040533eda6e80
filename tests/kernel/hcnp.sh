#!/usr/bin/env bash
# healthCheckNodePort (B28): ferryd (file source, --node-name node-a, run
# inside the node namespace) serves kube-proxy's answer on the
# healthCheckNodePort of a LoadBalancer Service with externalTrafficPolicy
# Local, on the node's addresses in both families:
#  - any path: 200, application/json, {"service":{..},"localEndpoints":N,
#    "serviceProxyHealthy":true} with N the distinct local ready endpoint
#    addresses over the Service's ports and families (a remote one does not
#    count);
#  - no local endpoint, or only terminating ones (the B11 fallback): 503
#    with 0;
#  - the policy changed to Cluster: the port closes;
#  - a port another listener holds: an error in the log naming the
#    Service, ferry_health_check_bind_errors_total counts it, ferryd alive
#    and the other Service's port still answering; once the holder is gone
#    the port is bound on a retry (as kube-proxy retries at each sync).
# shellcheck disable=SC2317 # functions run through wait_until
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
FERRYD_NETNS=$NODE
HC=32100
TAKEN=32101
MPORT=10249

# lb_yaml POLICY LOCAL-V4-STATE...: Service hc/lb (LoadBalancer, dual-stack,
# ports 80 and 443) with that externalTrafficPolicy; the v4 slice has one
# endpoint on node-a per state given (ready or terminating) plus one on
# node-b, the v6 slice one ready endpoint on node-a (same for both ports).
lb_yaml() {
	local policy=$1 i=0 state
	shift
	cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: hc}
spec:
  type: LoadBalancer
  clusterIP: 10.96.70.10
  clusterIPs: [10.96.70.10, "fd00:10:96::70"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: RequireDualStack
  externalTrafficPolicy: $policy
  healthCheckNodePort: $HC
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30080}
  - {name: https, port: 443, targetPort: 8443, nodePort: 30443}
status:
  loadBalancer:
    ingress: [{ip: 198.51.100.70}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: lb-v4, namespace: hc, labels: {kubernetes.io/service-name: lb}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: https, port: 8443}]
endpoints:
- addresses: [198.18.70.9]
  nodeName: node-b
EOF
	for state in "$@"; do
		i=$((i + 1))
		echo "- addresses: [198.18.70.$i]"
		echo "  nodeName: node-a"
		[ "$state" = ready ] ||
			echo "  conditions: {ready: false, serving: true, terminating: true}"
	done
	cat <<'EOF'
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: lb-v6, namespace: hc, labels: {kubernetes.io/service-name: lb}}
addressType: IPv6
ports: [{name: http, port: 8080}, {name: https, port: 8443}]
endpoints:
- addresses: ["fd00:198:18:70::1"]
  nodeName: node-a
EOF
}

# taken_yaml: Service hc/taken, Local, whose healthCheckNodePort is held.
taken_yaml() {
	cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: taken, namespace: hc}
spec:
  type: LoadBalancer
  clusterIP: 10.96.70.20
  externalTrafficPolicy: Local
  healthCheckNodePort: $TAKEN
  ports: [{name: http, port: 80, nodePort: 30081}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: taken-1, namespace: hc, labels: {kubernetes.io/service-name: taken}}
addressType: IPv4
ports: [{name: http, port: 80}]
endpoints:
- addresses: [198.18.70.20]
  nodeName: node-a
EOF
}

# hc URL: "CODE CONTENT-TYPE BODY" from inside the node (000 when nothing
# answers).
hc() {
	local out=$WORK/hc.$BASHPID
	: >"$out"
	printf '%s %s\n' "$(in_node curl -sS -g --max-time 3 -o "$out" -w '%{http_code} %{content_type}' "$1" 2>/dev/null)" \
		"$(tr -d '\n' <"$out")"
}
code_of() { hc "$1" | cut -d' ' -f1; }
code_is() { [ "$(code_of "$1")" = "$2" ]; }
json() { printf '{"service":{"namespace":"hc","name":"%s"},"localEndpoints":%d,"serviceProxyHealthy":true}' "$1" "$2"; }

V4="http://198.18.0.1:$HC"
V6="http://[fd00:198:18::1]:$HC"

SRC=$WORK/hc.yaml
lb_yaml Local ready ready | write_source "$SRC"
# The node's addresses (br0's) give the per-packet path its device: the
# listeners open only while it serves one.
ferryd_start "$SRC" --metrics-addr "127.0.0.1:$MPORT" --node-ips 198.18.0.1,fd00:198:18::1 || finish

wait_until 5 code_is "$V4/healthz" 200
expect "B28 Local with local endpoints: 200, JSON, N = 3 distinct local addresses (2 IPv4 + 1 IPv6, over 2 ports; node-b's left out)" \
	"$(hc "$V4/any/path?x=1")" "200 application/json $(json lb 3)"
expect "B28 the same on the node's IPv6 address" "$(hc "$V6/")" "200 application/json $(json lb 3)"

lb_yaml Local | change "no local v4 endpoint" "$SRC"
expect "B28 one local address left (IPv6): N = 1" "$(hc "$V4/")" "200 application/json $(json lb 1)"

lb_yaml Local | sed '/name: lb-v6/,$ s/nodeName: node-a/nodeName: node-b/' | change "no local endpoint" "$SRC"
expect "B28 no local endpoint at all: 503, N = 0" "$(hc "$V4/")" "503 application/json $(json lb 0)"

lb_yaml Local terminating | sed '/name: lb-v6/,$ s/nodeName: node-a/nodeName: node-b/' | change "no local ready endpoint" "$SRC"
expect "B28 only a terminating local endpoint (fallback): 503, N = 0" "$(hc "$V4/")" \
	"503 application/json $(json lb 0)"

lb_yaml Local ready | change "a local endpoint again" "$SRC"
expect "B28 a ready local endpoint again: 200" "$(code_of "$V4/")" 200

lb_yaml Cluster ready | change "policy Cluster" "$SRC"
if wait_until 5 code_is "$V4/" 000; then
	ok "B28 policy changed to Cluster: the healthCheckNodePort closes"
else
	not_ok "B28 policy changed to Cluster: the healthCheckNodePort closes" "$(hc "$V4/")"
fi
expect_match "the log says it closed" "$(grep -c 'hc/lb: healthCheckNodePort 32100 closed' "$FERRYD_LOG")" '^[1-9]'

# --- a port already taken ----------------------------------------------------------
start_server "$NODE" holder --tcp "$TAKEN"
HOLDER=${PIDS[-1]}
{ lb_yaml Local ready; taken_yaml; } | change "a Service on a taken port" "$SRC"
expect "B28 the port that could be bound answers" "$(code_of "$V4/")" 200
expect_match "a port it cannot bind: an error in the log naming the Service" \
	"$(grep 'level=error' "$FERRYD_LOG" | grep -c "healthCheckNodePort of Service hc/taken: cannot listen on :$TAKEN")" '^[1-9]'
in_node curl -sS --max-time 3 -o "$WORK/metrics.txt" "http://127.0.0.1:$MPORT/metrics"
expect_match "a port it cannot bind: ferry_health_check_bind_errors_total counts it" \
	"$("$PYTHON" "$REPO/tests/helpers/prom.py" value "$WORK/metrics.txt" ferry_health_check_bind_errors_total)" '^[1-9][0-9]*$'
if kill -0 "$FERRYD_PID" 2>/dev/null; then ok "a port it cannot bind: ferryd runs on"; else not_ok "a port it cannot bind: ferryd runs on" "it exited"; fi
lb_yaml Local ready ready | change "after the failure, a change is applied" "$SRC"
expect "after the failure, changes still reach the listener" "$(hc "$V4/")" "200 application/json $(json lb 3)"
{ lb_yaml Local ready ready; taken_yaml; } | change "the taken Service again" "$SRC"
# The holder (say, the kube-proxy ferry replaces) goes: the port is taken
# on a retry, without any change to the Service.
stop_pid "$HOLDER"
if wait_until 15 code_is "http://198.18.0.1:$TAKEN/" 200; then
	expect "the holder gone, the port is bound on a retry and answers" \
		"$(hc "http://198.18.0.1:$TAKEN/")" "200 application/json $(json taken 1)"
else
	not_ok "the holder gone, the port is bound on a retry within 15 s" "$(hc "http://198.18.0.1:$TAKEN/")"
fi

# --- no device served ---------------------------------------------------------------
# An address no device of the node carries: nothing from outside is
# translated here, so no load balancer may be told this node is healthy.
ferryd_stop
ferryd_start "$SRC" --node-ips 192.0.2.199 || finish
expect "B28 without a device to serve, the healthCheckNodePort is not answered" "$(code_of "$V4/")" 000
said_idle() { tac "$FERRYD_LOG" | sed '/^=== ferryd/q' | grep -q 'healthCheckNodePorts are not answered'; }
if wait_until 5 said_idle; then
	ok "the log says why"
else
	not_ok "the log says why" "no 'healthCheckNodePorts are not answered' in the log"
fi

finish
