#!/usr/bin/env bash
# The core north-south cases of tests/kernel/nodeport.sh (NodePort TCP and
# UDP over IPv4 and IPv6 to local and remote backends, externalTrafficPolicy
# Cluster and Local, no local endpoint, no endpoint) under --xdp=generic and
# --xdp=off: every mode gives the same answers as native XDP. Each mode is a
# run of nodeport.sh of its own (its own topology, names and cleanup), both
# at once; case names carry the mode. Node 1's addresses come from
# --node-ips here (from its Node object in nodeport.sh).
# shellcheck source=tests/helpers/nodeport_modes.sh
source "$(dirname "$0")/../helpers/nodeport_modes.sh"
core="NODEPORT_CORE=1 NODEPORT_NODE_IPS=1"
nodeport_modes nodeport_xdp_modes "generic NODEPORT_XDP=generic $core" "off NODEPORT_XDP=off $core"
