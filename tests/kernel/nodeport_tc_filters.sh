#!/usr/bin/env bash
# The core north-south cases of tests/kernel/nodeport.sh (NodePort TCP and
# UDP over IPv4 and IPv6 to local and remote backends, externalTrafficPolicy
# Cluster and Local, no local endpoint, no endpoint) with the tc programs as
# clsact filters (--tcx off: what a kernel before 6.6 gets), under XDP
# native (replies at a tc egress filter) and --xdp=off (new flows at a tc
# ingress filter too): the same answers as with tcx links. Each mode is a
# run of nodeport.sh of its own; case names carry the mode.
REPO=$(cd "$(dirname "$0")/../.." && pwd)
rc=0
child=
# A signal to this script alone (not its process group) reaches the run
# too, whose own trap cleans up.
trap '[ -z "$child" ] || { kill -TERM "$child" 2>/dev/null; wait "$child"; }; exit 130' INT TERM
for mode in native off; do
	LOGDIR=${BUILD:-$REPO/build}/test-logs/nodeport_tc_filters/$mode NODEPORT_XDP=$mode NODEPORT_TCX=off \
		NODEPORT_CORE=1 NODEPORT_NODE_IPS=1 bash "$REPO/tests/kernel/nodeport.sh" &
	child=$!
	wait "$child" || rc=1
	child=
done
exit $rc
