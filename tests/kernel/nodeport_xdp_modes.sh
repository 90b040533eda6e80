#!/usr/bin/env bash
# The core north-south cases of tests/kernel/nodeport.sh (NodePort TCP and
# UDP over IPv4 and IPv6 to local and remote backends, externalTrafficPolicy
# Cluster and Local, no local endpoint, no endpoint) under --xdp=generic and
# --xdp=off: every mode gives the same answers as native XDP. Each mode is a
# run of nodeport.sh of its own (its own topology, names and cleanup); case
# names carry the mode. Node 1's addresses come from --node-ips here (from
# its Node object in nodeport.sh).
REPO=$(cd "$(dirname "$0")/../.." && pwd)
rc=0
child=
# A signal to this script alone (not its process group) reaches the run
# too, whose own trap cleans up.
trap '[ -z "$child" ] || { kill -TERM "$child" 2>/dev/null; wait "$child"; }; exit 130' INT TERM
for mode in generic off; do
	LOGDIR=${BUILD:-$REPO/build}/test-logs/nodeport_xdp_modes/$mode NODEPORT_XDP=$mode NODEPORT_CORE=1 NODEPORT_NODE_IPS=1 \
		bash "$REPO/tests/kernel/nodeport.sh" &
	child=$!
	wait "$child" || rc=1
	child=
done
exit $rc
