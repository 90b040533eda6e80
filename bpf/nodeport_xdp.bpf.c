// SPDX-License-Identifier: GPL-2.0
/* Per-packet service translation at XDP on the node's external devices:
 * NodePort, LoadBalancer IPs and externalIPs for traffic from outside.
 * lib/nodeport.h decides; this file applies the plan with direct writes
 * and incremental checksums (a translated frame keeps its size; only a
 * port unreachable reply, lib/icmp.h, is made of another size). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "lib/maps.h"
#include "lib/csum.h"
#include "lib/crc32c.h"
#include "lib/icmp.h"
#include "lib/nodeport.h"

char LICENSE[] SEC("license") = "GPL";

/* SCTP's CRC32c covers the ports: computed again over the whole packet
 * (B32). Longer than lib/crc32c.h covers: counted, dropped. A global
 * function: the verifier walks its long loop once, not once per path that
 * reaches it. It knows of its arguments only their masks: l4_off is at
 * most 14 + 60, and a longer l4_len than the mask is too long anyway (read
 * back from a volatile, so the compiler keeps the mask after the check). */
__noinline int ferry_sctp_crc_xdp(struct xdp_md *ctx, __u32 l4_off, __u32 l4_len)
{
	volatile __u32 len = l4_len;
	int err;

	if (!ctx)
		return -1;
	if (l4_len > 0x3fff)
		err = CRC32C_TOO_LONG;
	else
		err = crc32c_sctp_xdp(ctx, l4_off & 0x7f, len & 0x3fff);
	if (err == CRC32C_TOO_LONG)
		stat_inc(STAT_NP_SCTP_TOO_LONG);
	return err ? -1 : 0;
}

/* Addresses and ports as the plan says, and every checksum they are in.
 * Returns 0, or -1 when the frame is shorter than parsed (cannot happen). */
static __always_inline int xdp_rewrite(struct xdp_md *ctx, const struct pkt *p,
				       const struct np_plan *plan)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	union { __u16 port[2]; __u32 word; } ports = {
		.port = { plan->ct.new_sport, plan->ct.new_dport } };
	__u32 *l4 = data + (p->l4_off & 0xff);
	__u16 *check;
	__u64 sum;

	if (p->v6) {
		struct ipv6hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		/* Old and new: saddr then daddr, 8 words in a row. */
		sum = csum_diff_words(0, p->saddr, plan->ct.new_saddr, 8);
		__builtin_memcpy(&ip6->saddr, plan->ct.new_saddr, 16);
		__builtin_memcpy(&ip6->daddr, plan->ct.new_daddr, 16);
	} else {
		struct iphdr *ip = data + ETH_HLEN;

		if ((void *)(ip + 1) > data_end)
			return -1;
		sum = csum_diff_words(0, &p->saddr[3], &plan->ct.new_saddr[3], 1);
		sum = csum_diff_words(sum, &p->daddr[3], &plan->ct.new_daddr[3], 1);
		ip->check = csum_apply(ip->check, csum_fold(sum));
		ip->saddr = plan->ct.new_saddr[3];
		ip->daddr = plan->ct.new_daddr[3];
	}
	if ((void *)(l4 + 1) > data_end)
		return -1;
	sum = csum_diff_words(sum, l4, &ports.word, 1);
	*l4 = ports.word;
	if (p->proto == IPPROTO_SCTP)
		return ferry_sctp_crc_xdp(ctx, p->l4_off, p->tot_len - (p->l4_off - ETH_HLEN));
	if (p->udp_nocsum)  /* IPv4 UDP without checksum stays so */
		return 0;
	check = data + (p->csum_off & 0xff);
	if ((void *)(check + 1) > data_end)
		return -1;
	*check = csum_apply(*check, csum_fold(sum));
	if (!*check && p->proto == IPPROTO_UDP)
		*check = 0xffff;  /* 0 means "no checksum" in UDP */
	return 0;
}

/* Out through the route's device: a router's hop (TTL) and the next hop's
 * addresses. The stack forwards what the FIB cannot yet (no neighbour),
 * what would not fit the egress MTU, and what has no hop left. */
static __always_inline int xdp_forward(struct xdp_md *ctx, const struct pkt *p,
				       const struct np_plan *plan)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	const struct fib_out *f = &plan->fib;
	struct ethhdr *eth = data;

	if (f->rc != BPF_FIB_LKUP_RET_SUCCESS || p->tot_len > f->mtu || p->ttl <= 1) {
		stat_inc(STAT_NP_FIB_PASS);
		return XDP_PASS;
	}
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (p->v6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return XDP_DROP;
		ip6->hop_limit--;
	} else {
		struct iphdr *ip = (void *)(eth + 1);
		/* TTL is the high byte of its 16-bit word (protocol unchanged). */
		__u16 old = bpf_htons((__u16)p->ttl << 8);
		__u16 new = bpf_htons((__u16)(p->ttl - 1) << 8);

		if ((void *)(ip + 1) > data_end)
			return XDP_DROP;
		ip->ttl = p->ttl - 1;
		ip->check = csum_apply(ip->check, csum_fold((__u16)~old + (__u64)new));
	}
	__builtin_memcpy(eth->h_dest, f->dmac, 6);
	__builtin_memcpy(eth->h_source, f->smac, 6);
	if (f->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(f->ifindex, 0);
}

/* No backend (B14): port unreachable back out of the device, rate-limited.
 * A subprogram: its reply buffer is not on the translation path's stack. */
static __noinline int xdp_reject(struct xdp_md *ctx, bool v6)
{
	return icmp_xdp_port_unreach(ctx, ETH_HLEN, v6 ? AF_INET6 : AF_INET);
}

SEC("xdp")
int ferry_xdp_nodeport(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	enum np_verdict v;
	struct np_plan plan;
	struct pkt p;

	switch (pkt_parse(data, data_end, &p)) {
	case PKT_OTHER:
		return XDP_PASS;
	case PKT_UNSAFE:
		stat_inc(STAT_NP_PASSED);
		return XDP_PASS;
	case PKT_L4:
		break;
	}
	v = np_decide(ctx, ctx->ingress_ifindex, &p, &plan, false);
	switch (v) {
	case NP_PASS:
		return XDP_PASS;
	case NP_DROP:
		return XDP_DROP;
	case NP_REJECT:
		return xdp_reject(ctx, p.v6);
	case NP_XLATE_PASS:
	case NP_XLATE_FWD:
		break;
	}
	/* One rewrite site: the SCTP CRC loop is verified once. */
	if (xdp_rewrite(ctx, &p, &plan))
		return XDP_DROP;
	if (v == NP_XLATE_PASS)
		return XDP_PASS;
	return xdp_forward(ctx, &p, &plan);
}
