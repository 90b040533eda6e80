#!/usr/bin/env bash
# A connected UDP socket shows the frontend it connected through (B20), also
# when the same socket was used before: after unconnected datagrams to
# another frontend of its backend, and after connecting through one
# frontend and then another. Its connect() through a ClusterIP looks at no
# socket state unless it was connected (issue 13): only the entry its own
# connect() wrote may stand for its peer (bpf/lib/revnat.h). Connected
# again, it looks only once some UDP socket kept a peer entry (through a
# frontend other than its backend's ClusterIP): ferry_peer_mark says so.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
pod u-1 198.18.12.1 "" --udp 8053

# One UDP Service on one pod: its ClusterIP owns the pod's ferry_revnat
# entry; its externalIP (a frontend of the same port) does not.
write_source "$WORK/services.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: u, namespace: up}
spec:
  clusterIP: 10.96.12.10
  externalIPs: [203.0.113.12]
  ports: [{port: 53, protocol: UDP, targetPort: 8053}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: u-1, namespace: up, labels: {kubernetes.io/service-name: u}}
addressType: IPv4
ports: [{port: 8053, protocol: UDP}]
endpoints:
- {addresses: [198.18.12.1], conditions: {ready: true}}
EOF
ferryd_start "$WORK/services.yaml" || finish

# steps OP:ADDR ...: one UDP socket; per step one exchange, printed as
# "OP reply=NAME from=ADDR:PORT peer=ADDR:PORT" (peer "-" unconnected).
# OP: sendto (unconnected) or connect (connect() then send). Port 53.
STEPS=$(
	cat <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for step in sys.argv[1:]:
    op, _, addr = step.partition(":")
    if op == "connect":
        s.connect((addr, 53))
        s.send(b"hello")
        peer = "%s:%d" % s.getpeername()
    else:
        s.sendto(b"hello", (addr, 53))
        peer = "-"
    data, src = s.recvfrom(512)
    print("%s reply=%s from=%s:%d peer=%s" % (op, data.decode().split()[0], src[0], src[1], peer))
PY
)
steps() { in_client "$PYTHON" -c "$STEPS" "$@" 2>&1 | tr '\n' ';'; }

out=$(steps connect:10.96.12.10 connect:10.96.12.10)
note "$out"
expect "B20 connected through the ClusterIP twice: both show the ClusterIP" \
	"$(sed 's/ reply=u-1//g' <<<"$out")" \
	"connect from=10.96.12.10:53 peer=10.96.12.10:53;connect from=10.96.12.10:53 peer=10.96.12.10:53;"
expect "no socket kept a peer entry: ferry_peer_mark is clear" "$(peer_mark)" 0

out=$(steps sendto:203.0.113.12 connect:10.96.12.10)
note "$out"
expect "B20 unconnected to the externalIP: the reply shows the externalIP" \
	"$(grep -o 'sendto [^;]*' <<<"$out")" "sendto reply=u-1 from=203.0.113.12:53 peer=-"
expect "B20 the same socket then connected through the ClusterIP: reply and getpeername show the ClusterIP" \
	"$(grep -o 'connect [^;]*' <<<"$out")" "connect reply=u-1 from=10.96.12.10:53 peer=10.96.12.10:53"

out=$(steps connect:203.0.113.12 connect:10.96.12.10 connect:203.0.113.12)
note "$out"
expect "B20 connected through the externalIP, then the ClusterIP, then the externalIP again: each shows its own" \
	"$(sed 's/ reply=u-1//g' <<<"$out")" \
	"connect from=203.0.113.12:53 peer=203.0.113.12:53;connect from=10.96.12.10:53 peer=10.96.12.10:53;connect from=203.0.113.12:53 peer=203.0.113.12:53;"
expect "a socket connected through the externalIP kept a peer entry: ferry_peer_mark is set" \
	"$(peer_mark)" 1

out=$(steps connect:10.96.12.10 sendto:203.0.113.12 connect:10.96.12.10)
note "$out"
expect "B20 connected through the ClusterIP, then unconnected datagrams to the externalIP, then connected again: the ClusterIP" \
	"$(sed -n 's/.*;\(connect [^;]*\);$/\1/p' <<<"$out")" "connect reply=u-1 from=10.96.12.10:53 peer=10.96.12.10:53"

finish
