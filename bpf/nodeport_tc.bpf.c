// SPDX-License-Identifier: GPL-2.0
/* Per-packet service translation at tc on the node's external devices:
 * reverse translation of replies on egress, and with --xdp=off everything
 * the XDP program does, on ingress. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "lib/maps.h"

#define TC_ACT_OK 0

char LICENSE[] SEC("license") = "GPL";

SEC("tc")
int ferry_tc_ingress(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("tc")
int ferry_tc_egress(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}
