// SPDX-License-Identifier: GPL-2.0
/* Per-packet service translation at XDP on the node's external devices:
 * NodePort, LoadBalancer IPs and externalIPs for traffic from outside.
 * lib/nodeport.h decides; this file applies the plan with direct writes
 * and incremental checksums (a translated frame keeps its size; only an
 * ICMP error of its own, lib/icmp.h, is made of another size). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "lib/maps.h"
#include "lib/csum.h"
#include "lib/crc32c.h"
#include "lib/icmp.h"
#include "lib/nodeport.h"

#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8

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
 * what would not fit the route's MTU (IPv4 without DF, or merged by GRO:
 * see xdp_may_fragment), and what has no hop left. */
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

/* Set by ferryd: whether this kernel lets XDP call bpf_xdp_adjust_meta.
 * When it does not, the call is never reached (the verifier drops the
 * branch) and tc ingress takes every packet XDP passes. */
const volatile bool xdp_meta = true;

/* To tc ingress, untranslated (NP_META_NEIGH). Without room for the mark
 * (a driver that keeps no headroom) the stack gets it, as before. */
static __always_inline int xdp_to_tc(struct xdp_md *ctx)
{
	void *data, *meta;

	if (!xdp_meta || bpf_xdp_adjust_meta(ctx, -(int)sizeof(__u32)))
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	meta = (void *)(long)ctx->data_meta;
	if (meta + sizeof(__u32) > data)
		return XDP_PASS;
	*(__u32 *)meta = NP_META_NEIGH;
	return XDP_PASS;
}

/* No backend (B14): port unreachable (mtu 0); too big for the route:
 * fragmentation needed or packet too big with the route's MTU. Back out of
 * the device, rate-limited. A subprogram: its reply buffer is not on the
 * translation path's stack. */
static __noinline int xdp_reject(struct xdp_md *ctx, bool v6, __u32 mtu)
{
	return icmp_xdp_error(ctx, ETH_HLEN, v6 ? AF_INET6 : AF_INET, mtu);
}

/* A packet to forward is longer than its route's MTU. One that may not be
 * fragmented (IPv4 with DF, IPv6 always) is answered as the frontend would
 * (xdp_reject), so that the client's PMTU discovery learns the MTU: the
 * stack's answer to the translated packet would go to the SNAT address, a
 * black hole. True for what the stack forwards, rewritten: IPv4 without DF
 * (the stack fragments) and a packet longer than the receiving device's
 * MTU (merged by GRO, in generic mode: the stack segments it). A
 * subprogram: xdp_reject's stack is not added to its own. */
static __noinline bool xdp_may_fragment(struct xdp_md *ctx, bool v6)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	struct iphdr *ip = data + ETH_HLEN;
	__u32 len;

	if ((void *)(ip6 + 1) > data_end)
		return true;
	if (v6) {
		len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
	} else {
		if (!(ip->frag_off & bpf_htons(IP_DF)))
			return true;
		len = bpf_ntohs(ip->tot_len);
	}
	return bpf_check_mtu(ctx, 0, &len, 0, 0) != BPF_MTU_CHK_RET_SUCCESS;
}

/* Out the device an ICMP error came in on, as a router would send it; any
 * other route (a local pod's, an unknown neighbour) is the stack's. */
static __always_inline int xdp_icmp_out(struct xdp_md *ctx, const struct fib_out *f, bool v6)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	struct iphdr *ip = data + ETH_HLEN;
	__u16 old, new;

	if (f->rc != BPF_FIB_LKUP_RET_SUCCESS || f->ifindex != ctx->ingress_ifindex)
		return XDP_PASS;
	if ((void *)(ip6 + 1) > data_end)
		return XDP_PASS;
	if (v6) {
		if (ip6->hop_limit <= 1)
			return XDP_PASS;
		ip6->hop_limit--;
	} else {
		if (ip->ttl <= 1)
			return XDP_PASS;
		old = bpf_htons((__u16)ip->ttl << 8);
		new = bpf_htons((__u16)(ip->ttl - 1) << 8);
		ip->ttl--;
		ip->check = csum_apply(ip->check, csum_fold((__u16)~old + (__u64)new));
	}
	__builtin_memcpy(eth->h_dest, f->dmac, 6);
	__builtin_memcpy(eth->h_source, f->smac, 6);
	return XDP_TX;
}

/* ICMP errors about translated flows (a router's "fragmentation needed"
 * or "time exceeded", a remote backend's "port unreachable") are
 * translated as their flow is, as conntrack does for RELATED packets, so
 * PMTU discovery and UDP errors work through NodePorts: the destination
 * and the quote become what the flow's peer knows; the source stays (a
 * router) unless it is the quoted packet's destination itself. The quote's
 * L4 checksum is left alone (a quote's is never checked). Subprograms: off
 * the translation path's stack.
 *
 * IPv4: destination unreachable (fragmentation needed, port unreachable)
 * and time exceeded. */
static __noinline int xdp_icmp4_error(struct xdp_md *ctx, __u32 l4_off)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	struct icmphdr *ic = data + (l4_off & 0x7f);
	struct iphdr *in = (void *)(ic + 1);
	__u32 qs[4], qd[4], in_s, in_d, out_s, out_d;
	union { __u16 port[2]; __u32 word; } ports;
	__u16 in_check, *qports;
	struct fib_out route;
	struct ct_value *v;
	struct ct_key key;
	__u64 sum;

	if ((void *)(ip + 1) > data_end || (void *)(in + 1) > data_end)
		return XDP_PASS;
	if ((ic->type != 3 && ic->type != 11) || in->version != 4 || in->ihl < 5)
		return XDP_PASS;
	qports = (void *)in + in->ihl * 4;
	if ((void *)qports + 8 > data_end)
		return XDP_PASS;
	addr_map_v4(qs, in->saddr);
	addr_map_v4(qd, in->daddr);
	v = np_icmp_flow(qs, qd, qports, in->protocol, &key);
	if (!v)
		return XDP_PASS;
	in_s = v->new_daddr[3];
	in_d = v->new_saddr[3];
	ports.port[0] = v->new_dport;
	ports.port[1] = v->new_sport;
	out_d = v->new_daddr[3];
	out_s = ip->saddr == in->daddr ? v->new_saddr[3] : ip->saddr;

	/* The quote's header checksum, then the ICMP checksum over the quote,
	 * then the outer header's. */
	sum = csum_diff_words(0, &in->saddr, &in_s, 1);
	sum = csum_diff_words(sum, &in->daddr, &in_d, 1);
	in_check = csum_apply(in->check, csum_fold(sum));
	sum += (__u16)~in->check + (__u64)in_check;
	sum = csum_diff_words(sum, (__u32 *)qports, &ports.word, 1);
	ic->checksum = csum_apply(ic->checksum, csum_fold(sum));
	in->saddr = in_s;
	in->daddr = in_d;
	in->check = in_check;
	*(__u32 *)qports = ports.word;
	sum = csum_diff_words(0, &ip->saddr, &out_s, 1);
	sum = csum_diff_words(sum, &ip->daddr, &out_d, 1);
	ip->check = csum_apply(ip->check, csum_fold(sum));
	ip->saddr = out_s;
	ip->daddr = out_d;
	stat_inc(STAT_NP_REVNAT);

	addr_map_v4(qs, out_s);
	fib_route(ctx, ctx->ingress_ifindex, false, IPPROTO_ICMP, qs, v->new_daddr, &route);
	return xdp_icmp_out(ctx, &route, false);
}

/* IPv6: destination unreachable, packet too big, time exceeded. The
 * ICMPv6 checksum covers the outer addresses too. */
static __noinline int xdp_icmp6_error(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	struct icmp6hdr *ic = (void *)(ip6 + 1);
	struct ipv6hdr *in = (void *)(ic + 1);
	union { __u16 port[2]; __u32 word; } ports;
	__u32 *out_s = (__u32 *)&ip6->saddr;
	struct fib_out route;
	struct ct_value *v;
	struct ct_key key;
	__u16 *qports;
	bool from_peer;
	__u64 sum;

	qports = (void *)(in + 1);
	if ((void *)qports + 8 > data_end)
		return XDP_PASS;
	if (ic->icmp6_type < 1 || ic->icmp6_type > 3 || in->version != 6)
		return XDP_PASS;
	v = np_icmp_flow((__u32 *)&in->saddr, (__u32 *)&in->daddr, qports, in->nexthdr, &key);
	if (!v)
		return XDP_PASS;
	ports.port[0] = v->new_dport;
	ports.port[1] = v->new_sport;
	from_peer = addr_eq(out_s, (__u32 *)&in->daddr);

	/* Outer addresses (the pseudo-header), the quote's, its ports. */
	sum = from_peer ? csum_diff_words(0, out_s, v->new_saddr, 4) : 0;
	sum = csum_diff_words(sum, (__u32 *)&ip6->daddr, v->new_daddr, 4);
	sum = csum_diff_words(sum, (__u32 *)&in->saddr, v->new_daddr, 4);
	sum = csum_diff_words(sum, (__u32 *)&in->daddr, v->new_saddr, 4);
	sum = csum_diff_words(sum, (__u32 *)qports, &ports.word, 1);
	ic->icmp6_cksum = csum_apply(ic->icmp6_cksum, csum_fold(sum));
	if (from_peer)
		__builtin_memcpy(out_s, v->new_saddr, 16);
	__builtin_memcpy(&ip6->daddr, v->new_daddr, 16);
	__builtin_memcpy(&in->saddr, v->new_daddr, 16);
	__builtin_memcpy(&in->daddr, v->new_saddr, 16);
	*(__u32 *)qports = ports.word;
	stat_inc(STAT_NP_REVNAT);

	fib_route(ctx, ctx->ingress_ifindex, true, IPPROTO_ICMPV6, out_s, v->new_daddr, &route);
	return xdp_icmp_out(ctx, &route, true);
}

/* A VLAN-tagged frame: pkt.h parses untagged frames only, and the VLAN's
 * own device is the one that serves it. Passed untranslated, counted. */
static __always_inline void xdp_count_vlan(void *data, void *data_end)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) <= data_end &&
	    (eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD)))
		stat_inc(STAT_NP_PASSED);
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
		xdp_count_vlan(data, data_end);
		return XDP_PASS;
	case PKT_UNSAFE:
		stat_inc(STAT_NP_PASSED);
		return XDP_PASS;
	case PKT_ICMP:
		return p.v6 ? xdp_icmp6_error(ctx) : xdp_icmp4_error(ctx, p.l4_off);
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
		return xdp_reject(ctx, p.v6, 0);
	case NP_XLATE_PASS:
		break;
	case NP_XLATE_FWD:
		if (plan.fib.rc == BPF_FIB_LKUP_RET_SUCCESS && p.tot_len > plan.fib.mtu &&
		    !xdp_may_fragment(ctx, p.v6))
			return xdp_reject(ctx, p.v6, plan.fib.mtu);
		if (plan.fib.rc == BPF_FIB_LKUP_RET_NO_NEIGH && p.ttl > 1)
			return xdp_to_tc(ctx);
		break;
	}
	/* One rewrite site: the SCTP CRC loop is verified once. */
	if (xdp_rewrite(ctx, &p, &plan))
		return XDP_DROP;
	if (v == NP_XLATE_PASS)
		return XDP_PASS;
	return xdp_forward(ctx, &p, &plan);
}
