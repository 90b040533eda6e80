#!/usr/bin/env bash
# ferry's demo: three pods behind one Service, a client that only knows the
# ClusterIP, and ferryd translating the client's connect() to a pod.
#
# Makes (and removes on exit, also on failure): a "node" network namespace
# with a bridge, three pod namespaces running tests/helpers/podserver.py, a
# cgroup for the client, and ferryd's pins under /sys/fs/bpf/fy<pid>-test.
# Nothing is attached outside that cgroup; traffic stays in the namespaces.
#
# Run as root after `make all` (or just `make demo`).
LOGDIR=$(cd "$(dirname "$0")/.." && pwd)/build/demo
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../tests/lib.sh"

SERVICE_YAML=$REPO/deploy/examples/demo.yaml
VIP=10.96.100.10
REQUESTS=30
NODEPORT=30080
# The pods of deploy/examples/demo.yaml's EndpointSlice.
PODS_DEMO=("hello-1 198.18.100.1" "hello-2 198.18.100.2" "hello-3 198.18.100.3")

heading() { printf '\n== %s\n' "$*"; }
fail() {
	echo "demo failed: $*" >&2
	[ -s "$FERRYD_LOG" ] && grep -v component=libbpf "$FERRYD_LOG" | tail -n 15 >&2
	exit 1
}

demo_cleanup() {
	local rc=$?
	heading "Clean up"
	cleanup
	echo "  stopped ferryd and the pods; detached; removed the namespaces, the cgroup and $BPFFS"
	echo "  ferryd's log: ${FERRYD_LOG#"$REPO"/}"
	exit $rc
}
trap demo_cleanup EXIT

[ "$(id -u)" = 0 ] || fail "run as root (network namespaces, cgroups, BPF)"
for tool in "$FERRYD" "$FERRYCTL"; do
	[ -x "$tool" ] || fail "$tool is missing: run make all"
done
for tool in curl nsenter ip "$PYTHON"; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/install-deps.sh)"
done

echo "ferry demo: a Kubernetes Service load-balanced in connect(), before any packet exists"

heading "Pods"
topology_up
for p in "${PODS_DEMO[@]}"; do
	read -r name addr <<<"$p"
	pod "$name" "$addr" "" --tcp 8080
	printf '  %-8s %-14s HTTP :8080, answers with its name (netns %s)\n' "$name" "$addr" "${POD_NS[$name]}"
done
echo "  client: netns $NODE (bridge br0, 198.18.0.1/15; no route to 10.96.0.0/12), cgroup ${CG}"

heading "Service (${SERVICE_YAML#"$REPO"/})"
echo "  demo/hello  ClusterIP $VIP:80/TCP and NodePort $NODEPORT -> targetPort 8080 on the three pods"

heading "ferryd"
# In the node's network namespace, as a DaemonSet pod with hostNetwork: its
# loopback is the node's, where NodePorts answer (B22).
FERRYD_NETNS=$NODE
ferryd_start "$SERVICE_YAML" >/dev/null || fail "ferryd did not publish its first generation"
"$FERRYCTL" --bpffs "$BPFFS" status -o json | "$PYTHON" -c '
import json, sys
s = json.load(sys.stdin)
hooks = [p["hook"] for p in s.get("programs", []) if p.get("attached")]
print("  generation %s; %d programs attached to the client cgroup: %s"
      % (s["generation"], len(hooks), " ".join(hooks)))'

heading "ferryctl service list"
"$FERRYCTL" --bpffs "$BPFFS" service list | sed 's/^/  /'

heading "$REQUESTS requests: curl http://$VIP/ from the client"
answers=$(in_client bash -c '
	for ((i = 1; i <= $1; i++)); do
		curl -sS --max-time 2 "http://$2/" || echo "(curl failed: $?)"
	done' _ "$REQUESTS" "$VIP")
paste -d' ' <(seq -f '  #%02g' "$REQUESTS") <(printf '%s\n' "$answers") | pr -3 -t -w 72

heading "Tally"
printf '%s\n' "$answers" | sort | uniq -c | while read -r n name; do
	printf '  %-8s %3d  %s\n' "$name" "$n" "$(printf '#%.0s' $(seq "$n"))"
done

heading "The NodePort from the node: curl http://127.0.0.1:$NODEPORT/ x 6"
np_answers=$(in_client bash -c '
	for ((i = 1; i <= 6; i++)); do
		curl -sS --max-time 2 "http://127.0.0.1:$1/" || echo "(curl failed: $?)"
	done' _ "$NODEPORT")
echo "  $(printf '%s ' $np_answers)(no route_localnet, no iptables: the socket LB serves loopback NodePorts)"

heading "What the client sees"
out=$(probe tcp "$VIP" 80)
echo "  getpeername() = $(field peer "$out"), answered by $(field reply "$out"): the pod's address never shows"
out=$(in_node "$PYTHON" "$PROBE" tcp "$VIP" 80)
echo "  the same connect() outside the cgroup: $(field error "$out") (not ferry's client, not translated)"

ok=$(printf '%s\n' "$answers" | grep -c '^hello-[123]$')
[ "$ok" = "$REQUESTS" ] || fail "$((REQUESTS - ok)) of $REQUESTS requests got no answer from a pod"
ok=$(printf '%s\n' "$np_answers" | grep -c '^hello-[123]$')
[ "$ok" = 6 ] || fail "$((6 - ok)) of 6 NodePort requests got no answer from a pod"
