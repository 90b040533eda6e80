#!/usr/bin/env bash
# ferryd's lifetime: the datapath is pinned and keeps serving when ferryd
# dies (B33); a new ferryd takes over in place (old programs detached, the
# generation counting on, open sockets keeping their reverse translation);
# `ferryd --cleanup` removes everything.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
pod r-1 198.18.3.1 "" --tcp 8080 --udp 53
pod r-2 198.18.3.2 "" --tcp 8080 --udp 53

SRC=$WORK/restart.yaml
write_source "$SRC" <<'Y'
apiVersion: v1
kind: Service
metadata: {name: r, namespace: restart}
spec:
  clusterIP: 10.96.50.10
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: r-1, namespace: restart, labels: {kubernetes.io/service-name: r}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: dns, port: 53, protocol: UDP}]
endpoints:
- addresses: [198.18.3.1]
- addresses: [198.18.3.2]
Y

attached_count() { bpftool cgroup show "$CG" 2>/dev/null | grep -c ferry_; }
sk_map_id() { bpftool map show pinned "$BPFFS/ferry_sk_revnat" 2>/dev/null | sed -n 's/^\([0-9]*\):.*/\1/p'; }

ferryd_start "$SRC" || finish
gen_before=$(generation)
sk_before=$(sk_map_id)

# An unconnected UDP socket that talks to the service across the restart.
mkdir "$WORK/udp-hold"
bg_client "$PYTHON" "$PROBE" hold --udp 10.96.50.10 53 --dir "$WORK/udp-hold" --wait 60
wait_file "$WORK/udp-hold/first" 10
expect_match "restart: UDP socket answered from the ClusterIP before the restart" \
	"$(cat "$WORK/udp-hold/first" 2>/dev/null)" '^r-[12] from=10\.96\.50\.10:53$'

kill -9 "$FERRYD_PID"
wait "$FERRYD_PID" 2>/dev/null
FERRYD_PID=
expect_match "B33 restart: TCP to the ClusterIP works while ferryd is dead (kill -9)" \
	"$(field reply "$(probe tcp 10.96.50.10 80)")" '^r-[12]$'
expect "restart: ferryctl status works while ferryd is down and says so" \
	"$("$FERRYCTL" --bpffs "$BPFFS" status -o json | "$PYTHON" -c \
		'import json,sys; a=json.load(sys.stdin)["agent"]; print(a["ferryd_running"], a["services"])')" \
	"False 2"

FERRYD_PID=
"$FERRYD" --source "file:$SRC" --cgroup "$CG" --bpffs "$BPFFS" >>"$FERRYD_LOG" 2>&1 &
FERRYD_PID=$!
PIDS+=("$FERRYD_PID")
if wait_generation $((gen_before + 1)) 10; then
	ok "restart: the new ferryd publishes generation $((gen_before + 1)), after the old $gen_before"
else
	not_ok "restart: the new ferryd publishes a generation after $gen_before" "generation $(generation)"
fi
expect "restart: the old programs are detached, the new ones attached (8 in the cgroup)" \
	"$(attached_count)" 8
expect_match "restart: TCP to the ClusterIP works under the new ferryd" \
	"$(field reply "$(probe tcp 10.96.50.10 80)")" '^r-[12]$'

expect "restart: the new ferryd adopts the pinned socket state (same map, id $sk_before)" \
	"$(sk_map_id)" "$sk_before"
touch "$WORK/udp-hold/go"
wait_file "$WORK/udp-hold/second" 10
expect_match "B20 restart: the UDP socket opened before the restart still exchanges with the ClusterIP" \
	"$(cat "$WORK/udp-hold/second" 2>/dev/null)" '^r-[12] from=10\.96\.50\.10:53$'

ferryd_stop
"$FERRYD" --cleanup --bpffs "$BPFFS" >>"$FERRYD_LOG" 2>&1
expect "cleanup: ferryd --cleanup detaches every program" "$(attached_count)" 0
expect "cleanup: ferryd --cleanup removes the pins" "$(ls -A "$BPFFS" 2>&1 | grep -c ferry_)" 0
expect "cleanup: the ClusterIP is no longer translated" \
	"$(field error "$(probe tcp 10.96.50.10 80)")" ENETUNREACH

finish
