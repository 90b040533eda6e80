// SPDX-License-Identifier: GPL-2.0
/* Per-packet service translation at tc on the node's external devices:
 * reverse translation of replies on egress, and with --xdp=off everything
 * the XDP program does, on ingress (with XDP on, only the packets XDP
 * hands over because their neighbour is not resolved yet). lib/nodeport.h decides; this file
 * applies the plan with the skb helpers, which keep CHECKSUM_PARTIAL and
 * CHECKSUM_COMPLETE right (direct writes would not). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "lib/maps.h"
#include "lib/csum.h"
#include "lib/crc32c.h"
#include "lib/icmp.h"
#include "lib/nodeport.h"

#define TC_ACT_OK 0
/* Enough linear bytes for Ethernet, the longest IPv4 header and TCP's. */
#define TC_HEAD_LEN (ETH_HLEN + 60 + 20)

char LICENSE[] SEC("license") = "GPL";

/* Set by ferryd: XDP runs before tc ingress on the device, which then
 * handles only what XDP marked (NP_META_NEIGH). */
const volatile bool xdp_first = false;

/* Whether tc ingress has this packet to handle. */
static __always_inline bool tc_ingress_wanted(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *meta = (void *)(long)skb->data_meta;

	if (!xdp_first)
		return true;
	return meta + sizeof(__u32) <= data && *(__u32 *)meta == NP_META_NEIGH;
}

static __always_inline enum pkt_kind tc_parse(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 len = skb->len;

	if (data + TC_HEAD_LEN > data_end && data + len > data_end) {
		bpf_skb_pull_data(skb, len < TC_HEAD_LEN ? len : TC_HEAD_LEN);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	return pkt_parse(data, data_end, p);
}

/* SCTP's CRC32c covers the ports: computed again over the whole packet
 * (B32), unless the skb is GSO (SCTP GSO from a pod: up to 64 KB), whose
 * segmentation computes each segment's. Longer than lib/crc32c.h covers:
 * counted, dropped. A global
 * function: the verifier walks its long loop once, not once per path that
 * reaches it. It knows of its arguments only their masks: l4_off is at
 * most 14 + 60, and a longer l4_len than the mask is too long anyway (read
 * back from a volatile, so the compiler keeps the mask after the check). */
__noinline int ferry_sctp_crc_tc(struct __sk_buff *skb, __u32 l4_off, __u32 l4_len)
{
	volatile __u32 len = l4_len;
	int err;

	if (!skb)
		return -1;
	if (skb->gso_size)
		return 0;
	if (l4_len > 0x3fff)
		err = CRC32C_TOO_LONG;
	else
		err = crc32c_sctp_tc(skb, l4_off & 0x7f, len & 0x3fff);
	if (err == CRC32C_TOO_LONG)
		stat_inc(STAT_NP_SCTP_TOO_LONG);
	return err ? -1 : 0;
}

/* Addresses, ports, and every checksum they are in. */
static __always_inline int tc_rewrite(struct __sk_buff *skb, const struct pkt *p,
				      const struct np_plan *plan)
{
	const struct ct_value *n = &plan->ct;
	union { __u16 port[2]; __u32 word; } oldp = { .port = { p->sport, p->dport } };
	union { __u16 port[2]; __u32 word; } newp = { .port = { n->new_sport, n->new_dport } };
	__u64 flags = BPF_F_PSEUDO_HDR;
	__u32 v4[2];
	__u16 diff;

	if (p->v6) {
		/* new_saddr and new_daddr: 32 bytes in a row, as in the header. */
		diff = csum_fold(csum_diff_words(0, p->saddr, n->new_saddr, 8));
		if (bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, saddr),
					n->new_saddr, 32, 0))
			return -1;
		flags |= BPF_F_IPV6;  /* addresses outside skb->csum's L4 part */
	} else {
		v4[0] = n->new_saddr[3];
		v4[1] = n->new_daddr[3];
		diff = csum_fold(csum_diff_words(0, &p->saddr[3], &v4[0], 1) +
				 csum_diff_words(0, &p->daddr[3], &v4[1], 1));
		if (bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, saddr), v4, 8, 0) ||
		    bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), 0, diff, 0))
			return -1;
	}
	if (bpf_skb_store_bytes(skb, p->l4_off, &newp.word, 4, 0))
		return -1;
	if (p->proto == IPPROTO_SCTP)
		return ferry_sctp_crc_tc(skb, p->l4_off, p->tot_len - (p->l4_off - ETH_HLEN));
	if (p->udp_nocsum)  /* IPv4 UDP without checksum stays so */
		return 0;
	if (p->proto == IPPROTO_UDP)
		flags |= BPF_F_MARK_MANGLED_0;
	if (bpf_l4_csum_replace(skb, p->csum_off, 0, diff, flags))
		return -1;
	diff = csum_fold(csum_diff_words(0, &oldp.word, &newp.word, 1));
	return bpf_l4_csum_replace(skb, p->csum_off, 0, diff, flags & BPF_F_MARK_MANGLED_0);
}

/* A router's hop: TTL or hop limit (old) minus one. */
static __always_inline int tc_dec_ttl(struct __sk_buff *skb, bool v6, __u8 old)
{
	__u8 ttl = old - 1;

	if (v6)
		return bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, hop_limit),
					   &ttl, 1, 0);
	if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check),
				bpf_htons((__u16)old << 8), bpf_htons((__u16)ttl << 8), 2))
		return -1;
	return bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, ttl), &ttl, 1, 0);
}

/* One hop less, then out through the route's device: to the neighbour the
 * FIB knows, or resolved by bpf_redirect_neigh. */
static __always_inline int tc_send(struct __sk_buff *skb, const struct fib_out *f, bool v6,
				   __u8 ttl)
{
	if (tc_dec_ttl(skb, v6, ttl))
		return TC_ACT_SHOT;
	if (f->rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return bpf_redirect_neigh(f->ifindex, NULL, 0, 0);
	if (bpf_skb_store_bytes(skb, 0, f->dmac, 6, 0) ||
	    bpf_skb_store_bytes(skb, 6, f->smac, 6, 0))
		return TC_ACT_SHOT;
	return bpf_redirect(f->ifindex, 0);
}

/* Out through the route's device, with the neighbour's address when the
 * FIB has it, else resolved by bpf_redirect_neigh. What has no route or
 * hop left, or would not fit the route's MTU (IPv4 without DF), the stack
 * forwards. A GSO skb fits: its segments are what leaves. */
static __always_inline int tc_forward(struct __sk_buff *skb, const struct pkt *p,
				      const struct np_plan *plan)
{
	const struct fib_out *f = &plan->fib;
	bool fits = skb->gso_size || p->tot_len <= f->mtu;

	if (p->ttl <= 1 ||
	    !(f->rc == BPF_FIB_LKUP_RET_NO_NEIGH ||
	      (f->rc == BPF_FIB_LKUP_RET_SUCCESS && fits))) {
		stat_inc(STAT_NP_FIB_PASS);
		return TC_ACT_OK;
	}
	return tc_send(skb, f, p->v6, p->ttl);
}

/* Enough linear bytes for an ICMP error's headers and its quote's. */
#define TC_ICMP_HEAD_LEN (ETH_HLEN + 40 + 8 + 60 + 8)

/* An ICMP error translated (see nodeport_xdp.bpf.c): on egress a local
 * pod's error about a flow leaves as the stack routed it; on ingress it
 * goes out the device it came in on, or to the stack. */
static __always_inline int tc_icmp_out(struct __sk_buff *skb, const struct fib_out *f, bool v6,
				       __u8 ttl, bool egress)
{
	if (egress)
		return TC_ACT_OK;
	if (f->ifindex != skb->ifindex || ttl <= 1 ||
	    (f->rc != BPF_FIB_LKUP_RET_SUCCESS && f->rc != BPF_FIB_LKUP_RET_NO_NEIGH))
		return TC_ACT_OK;
	return tc_send(skb, f, v6, ttl);
}

static __always_inline void tc_pull_icmp(struct __sk_buff *skb)
{
	__u32 len = skb->len;

	bpf_skb_pull_data(skb, len < TC_ICMP_HEAD_LEN ? len : TC_ICMP_HEAD_LEN);
}

/* ICMP errors about translated flows, translated as their flow is, as at
 * XDP: IPv4 destination unreachable and time exceeded. Subprograms: off the
 * translation path's stack. */
static __noinline int tc_icmp4_error(struct __sk_buff *skb, __u32 l4_off, bool egress)
{
	void *data, *data_end;
	struct iphdr *ip, *in;
	struct icmphdr *ic;
	__u32 qs[4], qd[4], addrs[2], out[2], in_off, q_off;
	union { __u16 port[2]; __u32 word; } ports;
	__u16 in_check, *qports;
	struct fib_out route;
	struct ct_value *v;
	struct ct_key key;
	__u64 sum, sum_out;
	__u8 ttl;

	tc_pull_icmp(skb);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ip = data + ETH_HLEN;
	ic = data + (l4_off & 0x7f);
	in = (void *)(ic + 1);
	if ((void *)(ip + 1) > data_end || (void *)(in + 1) > data_end)
		return TC_ACT_OK;
	if ((ic->type != 3 && ic->type != 11) || in->version != 4 || in->ihl < 5)
		return TC_ACT_OK;
	qports = (void *)in + in->ihl * 4;
	if ((void *)qports + 8 > data_end)
		return TC_ACT_OK;
	addr_map_v4(qs, in->saddr);
	addr_map_v4(qd, in->daddr);
	v = np_icmp_flow(qs, qd, qports, in->protocol, &key);
	if (!v)
		return TC_ACT_OK;
	addrs[0] = v->new_daddr[3];
	addrs[1] = v->new_saddr[3];
	ports.port[0] = v->new_dport;
	ports.port[1] = v->new_sport;
	out[0] = ip->saddr == in->daddr ? v->new_saddr[3] : ip->saddr;
	out[1] = v->new_daddr[3];
	sum = csum_diff_words(0, &in->saddr, addrs, 2);
	in_check = csum_apply(in->check, csum_fold(sum));
	sum += (__u16)~in->check + (__u64)in_check;
	sum = csum_diff_words(sum, (__u32 *)qports, &ports.word, 1);
	sum_out = csum_diff_words(0, &ip->saddr, out, 2);
	in_off = (void *)in - data;
	q_off = (void *)qports - data;
	ttl = ip->ttl;

	if (bpf_skb_store_bytes(skb, (in_off & 0x7f) + offsetof(struct iphdr, saddr), addrs, 8, 0) ||
	    bpf_skb_store_bytes(skb, (in_off & 0x7f) + offsetof(struct iphdr, check), &in_check,
				2, 0) ||
	    bpf_skb_store_bytes(skb, q_off & 0xff, &ports.word, 4, 0) ||
	    bpf_l4_csum_replace(skb, (l4_off & 0x7f) + offsetof(struct icmphdr, checksum), 0,
				csum_fold(sum), 0) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, saddr), out, 8, 0) ||
	    bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), 0,
				csum_fold(sum_out), 0))
		return TC_ACT_SHOT;
	stat_inc(STAT_NP_REVNAT);
	addr_map_v4(qs, out[0]);
	addr_map_v4(qd, out[1]);
	fib_route(skb, skb->ifindex, false, IPPROTO_ICMP, qs, qd, &route);
	return tc_icmp_out(skb, &route, false, ttl, egress);
}

/* IPv6: destination unreachable, packet too big, time exceeded. */
static __noinline int tc_icmp6_error(struct __sk_buff *skb, bool egress)
{
	void *data, *data_end;
	struct ipv6hdr *ip6, *in;
	struct icmp6hdr *ic;
	union { __u16 port[2]; __u32 word; } ports;
	struct fib_out route;
	struct ct_value *v;
	struct ct_key key;
	__u16 *qports;
	bool from_peer;
	__u64 sum;
	__u8 ttl;

	tc_pull_icmp(skb);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ip6 = data + ETH_HLEN;
	ic = (void *)(ip6 + 1);
	in = (void *)(ic + 1);
	qports = (void *)(in + 1);
	if ((void *)qports + 8 > data_end)
		return TC_ACT_OK;
	if (ic->icmp6_type < 1 || ic->icmp6_type > 3 || in->version != 6)
		return TC_ACT_OK;
	v = np_icmp_flow((__u32 *)&in->saddr, (__u32 *)&in->daddr, qports, in->nexthdr, &key);
	if (!v)
		return TC_ACT_OK;
	ports.port[0] = v->new_dport;
	ports.port[1] = v->new_sport;
	from_peer = addr_eq((__u32 *)&ip6->saddr, (__u32 *)&in->daddr);
	sum = from_peer ? csum_diff_words(0, (__u32 *)&ip6->saddr, v->new_saddr, 4) : 0;
	sum = csum_diff_words(sum, (__u32 *)&ip6->daddr, v->new_daddr, 4);
	sum = csum_diff_words(sum, (__u32 *)&in->saddr, v->new_daddr, 4);
	sum = csum_diff_words(sum, (__u32 *)&in->daddr, v->new_saddr, 4);
	sum = csum_diff_words(sum, (__u32 *)qports, &ports.word, 1);
	ttl = ip6->hop_limit;

	/* Offsets are fixed: Ethernet, IPv6, ICMPv6, the quoted IPv6 header. */
	if ((from_peer && bpf_skb_store_bytes(skb, ETH_HLEN + 8, v->new_saddr, 16, 0)) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + 24, v->new_daddr, 16, 0) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + 48 + 8, v->new_daddr, 16, 0) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + 48 + 24, v->new_saddr, 16, 0) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + 48 + 40, &ports.word, 4, 0) ||
	    bpf_l4_csum_replace(skb, ETH_HLEN + 40 + offsetof(struct icmp6hdr, icmp6_cksum), 0,
				csum_fold(sum), 0))
		return TC_ACT_SHOT;
	stat_inc(STAT_NP_REVNAT);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ip6 = data + ETH_HLEN;
	if ((void *)(ip6 + 1) > data_end)
		return TC_ACT_OK;
	fib_route(skb, skb->ifindex, true, IPPROTO_ICMPV6, (__u32 *)&ip6->saddr,
		  (__u32 *)&ip6->daddr, &route);
	return tc_icmp_out(skb, &route, true, ttl, egress);
}

static __always_inline int tc_icmp_error(struct __sk_buff *skb, const struct pkt *p, bool egress)
{
	return p->v6 ? tc_icmp6_error(skb, egress) : tc_icmp4_error(skb, p->l4_off, egress);
}

/* No backend (B14): port unreachable (mtu 0); too big for the route:
 * fragmentation needed or packet too big with the route's MTU. Back out of
 * the device, rate-limited. A subprogram: its reply buffer is not on the
 * translation path's stack. */
static __noinline int tc_reject(struct __sk_buff *skb, bool v6, __u32 mtu)
{
	return icmp_tc_error(skb, ETH_HLEN, v6 ? AF_INET6 : AF_INET, mtu);
}

/* Too long for the route to forward and not to be fragmented (IPv4 with
 * DF, IPv6 always): answered as the frontend would, so that the client's
 * PMTU discovery learns the MTU (the stack's answer to the translated
 * packet would go to the SNAT address). A GSO skb's segments are what
 * leaves: not judged by its length. */
static __always_inline bool tc_too_big(struct __sk_buff *skb, const struct pkt *p,
				       const struct fib_out *f)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;

	if (skb->gso_size || f->rc != BPF_FIB_LKUP_RET_SUCCESS || p->tot_len <= f->mtu)
		return false;
	if (p->v6)
		return true;
	return (void *)(ip + 1) <= data_end && (ip->frag_off & bpf_htons(IP_DF));
}

/* A VLAN-tagged frame (the kernel took the tag out before tc): the VLAN's
 * own device serves it, not this one's program; passed, counted, as XDP
 * does. VLAN 0 (a priority tag only) is this device's. */
static __always_inline bool tc_vlan(struct __sk_buff *skb)
{
	if (!skb->vlan_present || !(skb->vlan_tci & 0x0fff))
		return false;
	stat_inc(STAT_NP_PASSED);
	return true;
}

SEC("tc")
int ferry_tc_ingress(struct __sk_buff *skb)
{
	enum np_verdict v;
	struct np_plan plan;
	struct pkt p;

	if (!tc_ingress_wanted(skb) || tc_vlan(skb))
		return TC_ACT_OK;
	switch (tc_parse(skb, &p)) {
	case PKT_OTHER:
		return TC_ACT_OK;
	case PKT_ICMP:
		return tc_icmp_error(skb, &p, false);
	case PKT_UNSAFE:
		stat_inc(STAT_NP_PASSED);
		return TC_ACT_OK;
	case PKT_L4:
		break;
	}
	v = np_decide(skb, skb->ifindex, &p, &plan, false);
	switch (v) {
	case NP_PASS:
		return TC_ACT_OK;
	case NP_DROP:
		return TC_ACT_SHOT;
	case NP_REJECT:
		return tc_reject(skb, p.v6, 0);
	case NP_XLATE_PASS:
		break;
	case NP_XLATE_FWD:
		if (tc_too_big(skb, &p, &plan.fib))
			return tc_reject(skb, p.v6, plan.fib.mtu);
		break;
	}
	/* One rewrite site: the SCTP CRC loop is verified once. */
	if (tc_rewrite(skb, &p, &plan))
		return TC_ACT_SHOT;
	if (v == NP_XLATE_PASS)
		return TC_ACT_OK;
	return tc_forward(skb, &p, &plan);
}

/* Replies of local backends (flows not SNATed) on their way out: shown as
 * the frontend the client used. */
SEC("tc")
int ferry_tc_egress(struct __sk_buff *skb)
{
	struct np_plan plan;
	struct pkt p;

	switch (tc_parse(skb, &p)) {
	case PKT_ICMP:
		return tc_icmp_error(skb, &p, true);
	case PKT_L4:
		break;
	default:
		return TC_ACT_OK;
	}
	if (np_decide(skb, skb->ifindex, &p, &plan, true) != NP_XLATE_PASS)
		return TC_ACT_OK;
	return tc_rewrite(skb, &p, &plan) ? TC_ACT_SHOT : TC_ACT_OK;
}
