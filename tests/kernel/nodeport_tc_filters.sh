#!/usr/bin/env bash
# The core north-south cases of tests/kernel/nodeport.sh (NodePort TCP and
# UDP over IPv4 and IPv6 to local and remote backends, externalTrafficPolicy
# Cluster and Local, no local endpoint, no endpoint) with the tc programs as
# clsact filters (--tcx off: what a kernel before 6.6 gets), under XDP
# native (replies at a tc egress filter) and --xdp=off (new flows at a tc
# ingress filter too): the same answers as with tcx links. Each mode is a
# run of nodeport.sh of its own, both at once; case names carry the mode.
# shellcheck source=tests/helpers/nodeport_modes.sh
source "$(dirname "$0")/../helpers/nodeport_modes.sh"
core="NODEPORT_TCX=off NODEPORT_CORE=1 NODEPORT_NODE_IPS=1"
nodeport_modes nodeport_tc_filters "native NODEPORT_XDP=native $core" "off NODEPORT_XDP=off $core"
