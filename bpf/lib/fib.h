/* Forwarding decisions from the kernel's FIB. bpf_fib_lookup needs
 * forwarding enabled on the receiving device and fails until the next
 * hop's neighbour is known: the callers then let the stack forward. */
#ifndef FERRY_BPF_FIB_H
#define FERRY_BPF_FIB_H

#include "lib/pkt.h"

#define AF_INET 2
#define AF_INET6 10

/* The route from saddr to daddr for a packet that came in on ifindex,
 * looked up into f (its output: ifindex, smac, dmac, mtu_result); returns
 * BPF_FIB_LKUP_RET_*. No MTU check inside (tot_len 0): the caller compares
 * with mtu_result, so that a GRO-merged skb is not refused. */
static __always_inline int fib_route(void *ctx, __u32 ifindex, const struct pkt *p,
				     const __u32 saddr[4], const __u32 daddr[4],
				     struct bpf_fib_lookup *f)
{
	__builtin_memset(f, 0, sizeof(*f));
	f->ifindex = ifindex;
	f->l4_protocol = p->proto;
	if (p->v6) {
		f->family = AF_INET6;
		__builtin_memcpy(f->ipv6_src, saddr, 16);
		__builtin_memcpy(f->ipv6_dst, daddr, 16);
	} else {
		f->family = AF_INET;
		f->ipv4_src = saddr[3];
		f->ipv4_dst = daddr[3];
	}
	return bpf_fib_lookup(ctx, f, sizeof(*f), 0);
}

#endif
