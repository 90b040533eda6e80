/* ICMP errors the per-packet path answers itself, back out of the device
 * the packet came in on:
 *   - port unreachable for a packet to a service with no backend: what
 *     kube-proxy's REJECT answers, so an external client fails at once;
 *   - "fragmentation needed" / "packet too big" for a packet the route to
 *     its backend (or back to its client) cannot carry and that may not be
 *     fragmented: what the node would answer were it the frontend, so the
 *     client's PMTU discovery works through a NodePort (the stack's own
 *     error would go to the SNAT address, the node itself).
 *
 *   int icmp_xdp_error(struct xdp_md *ctx, __u32 l3_off, int family, __u32 mtu)
 *	The packet becomes the reply; XDP_TX. XDP_DROP when the rate limit
 *	or RFC 1122 (below) holds it back, or it cannot be built.
 *   int icmp_tc_error(struct __sk_buff *skb, __u32 l3_off, int family, __u32 mtu)
 *	The same at tc: TC_ACT_REDIRECT (out of the device it came in on,
 *	skb->ifindex), or TC_ACT_SHOT.
 *
 * mtu 0: port unreachable, ICMP type 3 code 3 or ICMPv6 type 1 code 4;
 * else too big: ICMP type 3 code 4 with mtu as the next-hop MTU (RFC 1191)
 * or ICMPv6 type 2 code 0 with mtu (RFC 4443), built from the packet as it
 * arrived (untranslated: the client knows that one). l3_off: where the IP
 * header starts in the frame, ETH_HLEN to ICMP_L2_MAX (VLAN tags in XDP);
 * at tc it must be the skb's own L2 length (ETH_HLEN at ingress), since the
 * room is made there. family: AF_INET or AF_INET6. The caller has parsed a
 * TCP, UDP or SCTP header after the IP header (at least 8 bytes). Packet
 * pointers the caller holds are invalid afterwards. Counts
 * STAT_NP_ICMP_SENT (port unreachable) or STAT_NP_TOO_BIG, or
 * STAT_NP_ICMP_LIMITED (either held back).
 *
 * The reply: Ethernet addresses swapped (VLAN tags kept); a new IP header
 * from the address the client used (the frontend) to the client, TTL 64,
 * IPv4 TOS 0xc0 as Linux sends errors, the ICMPv6 checksum over the
 * pseudo-header. The quote is the original IP header (IPv4 with its
 * options) and up to 20 bytes after it (at least 8, RFC 792's minimum;
 * IPv6 likewise, not the up to 1,232 that RFC 4443 allows): the ports and
 * the sequence number for the client's stack to find its socket, and a
 * whole TCP header. The latter because at tc a CHECKSUM_PARTIAL skb
 * (from a veth whose peer offloads checksums) cannot be cut before its L4
 * checksum field: bpf_skb_change_tail refuses, and a TCP checksum lies 16
 * bytes in. Such a reply stays CHECKSUM_PARTIAL: a veth peer takes it
 * unchecked; a device that completed the checksum would write it into the
 * quote (a real NIC never hands over such skbs).
 *
 * Rate: ferry_config.icmp_per_sec replies per second and CPU, both kinds
 * together, a token bucket (ferry_icmp_bucket, per CPU, not pinned) holding
 * at most one second's worth; 0 sends none.
 *
 * No reply, as RFC 1122 3.2.2 says, to a frame sent to a link-layer
 * broadcast or multicast address or from a source that is no single host
 * (IPv4 0/8, 127/8, multicast, class E and broadcast; IPv6 ::, ::1,
 * multicast): else a forged source would aim the replies at a group.
 * Dropped and counted with the rate limit's (STAT_NP_ICMP_LIMITED), before
 * it takes a token.
 */
#ifndef FERRY_BPF_ICMP_H
#define FERRY_BPF_ICMP_H

#include <bpf/bpf_endian.h>

#include "lib/maps.h"
#include "lib/stats.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif
#ifndef TC_ACT_SHOT
#define TC_ACT_SHOT 2
#endif
#ifndef TC_ACT_REDIRECT
#define TC_ACT_REDIRECT 7
#endif

#define ICMP_L2_MIN 14           /* Ethernet */
#define ICMP_L2_MAX 22           /* Ethernet and two VLAN tags */
#define ICMP_QUOTE_L4_MIN 8      /* bytes quoted after the IP header: at least */
#define ICMP_QUOTE_L4 20         /* and at most */
#define ICMP_QUOTE_MAX (60 + ICMP_QUOTE_L4) /* IPv4 header with options */
#define ICMP_V4_HEAD 28          /* new IPv4 + ICMP headers */
#define ICMP_V6_HEAD 48          /* new IPv6 + ICMPv6 headers */
#define ICMP_TTL 64
#define ICMP_NS_PER_SEC 1000000000ULL

struct icmp_bucket {
	__u64 last_ns;
	__u64 credit;    /* in 1e-9 replies: a reply costs ICMP_NS_PER_SEC */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct icmp_bucket);
} ferry_icmp_bucket SEC(".maps");

/* The reply's new headers, and the quote they checksum with. */
struct icmp_reply {
	union {
		struct {
			struct iphdr ip;
			struct icmphdr icmp;
		} v4;
		struct {
			struct ipv6hdr ip;
			struct icmp6hdr icmp;
		} v6;
	};
	__u8 quote[ICMP_QUOTE_MAX]; /* zero past the quote's length */
};

/* dmac: the frame's destination MAC; ip: the original IP header. */
static __always_inline bool icmp_may_reply(const __u8 *dmac, const __u8 *ip, int family)
{
	const __u8 *src = ip + (family == AF_INET ? 12 : 8);
	__u64 hi, lo;

	if (dmac[0] & 1)
		return false;
	if (family == AF_INET)
		return src[0] != 0 && src[0] != 127 && src[0] < 224;
	__builtin_memcpy(&hi, src, 8);
	__builtin_memcpy(&lo, src + 8, 8);
	return src[0] != 0xff && !(hi == 0 && (lo == 0 || lo == bpf_cpu_to_be64(1)));
}

/* Credit accrues continuously (elapsed ns x rate), so a steady flow of
 * misses gets exactly the rate; elapsed is capped at one second, which
 * bounds the burst and keeps the product in 64 bits. */
static __always_inline bool icmp_rate_allow(void)
{
	struct icmp_bucket *b;
	struct dp_config *cfg;
	__u32 zero = 0;
	__u64 now, elapsed, cap;

	cfg = bpf_map_lookup_elem(&ferry_config, &zero);
	b = bpf_map_lookup_elem(&ferry_icmp_bucket, &zero);
	if (!cfg || !b || !cfg->icmp_per_sec)
		return false;
	now = bpf_ktime_get_ns();
	elapsed = now - b->last_ns;
	if (elapsed > ICMP_NS_PER_SEC)
		elapsed = ICMP_NS_PER_SEC;
	cap = (__u64)cfg->icmp_per_sec * ICMP_NS_PER_SEC;
	b->credit += elapsed * cfg->icmp_per_sec;
	if (b->credit > cap)
		b->credit = cap;
	b->last_ns = now;
	if (b->credit < ICMP_NS_PER_SEC)
		return false;
	b->credit -= ICMP_NS_PER_SEC;
	return true;
}

static __always_inline __u16 icmp_csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The ones' complement sum of the ICMP header and the whole quote buffer
 * (its zero padding adds nothing). */
static __always_inline __u64 icmp_sum_body(struct icmp_reply *r, void *icmp)
{
	__u64 sum = (__u32)bpf_csum_diff(0, 0, (__be32 *)icmp, 8, 0);

	return sum + (__u32)bpf_csum_diff(0, 0, (__be32 *)r->quote, sizeof(r->quote), 0);
}

/* Fills r's headers from r->quote (the original packet's IP header and 8
 * bytes) of qlen bytes: port unreachable, or too big for mtu. Returns the
 * headers' length. */
static __always_inline int icmp_build4(struct icmp_reply *r, __u32 qlen, __u32 mtu)
{
	const struct iphdr *orig = (const struct iphdr *)r->quote;
	struct iphdr *ip = &r->v4.ip;

	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0xc0;
	ip->tot_len = bpf_htons(ICMP_V4_HEAD + qlen);
	ip->ttl = ICMP_TTL;
	ip->protocol = IPPROTO_ICMP;
	ip->saddr = orig->daddr;
	ip->daddr = orig->saddr;
	ip->check = icmp_csum_fold((__u32)bpf_csum_diff(0, 0, (__be32 *)ip, sizeof(*ip), 0));
	r->v4.icmp.type = 3;  /* destination unreachable */
	r->v4.icmp.code = mtu ? 4 : 3;  /* fragmentation needed, port unreachable */
	r->v4.icmp.un.frag.mtu = bpf_htons(mtu);
	r->v4.icmp.checksum = icmp_csum_fold(icmp_sum_body(r, &r->v4.icmp));
	return ICMP_V4_HEAD;
}

static __always_inline int icmp_build6(struct icmp_reply *r, __u32 qlen, __u32 mtu)
{
	const struct ipv6hdr *orig = (const struct ipv6hdr *)r->quote;
	struct ipv6hdr *ip = &r->v6.ip;
	__u32 len = sizeof(struct icmp6hdr) + qlen;
	__u64 sum;

	ip->version = 6;
	ip->payload_len = bpf_htons(len);
	ip->nexthdr = IPPROTO_ICMPV6;
	ip->hop_limit = ICMP_TTL;
	ip->saddr = orig->daddr;
	ip->daddr = orig->saddr;
	if (mtu) {
		r->v6.icmp.icmp6_type = 2;  /* packet too big */
		r->v6.icmp.icmp6_dataun.un_data32[0] = bpf_htonl(mtu);
	} else {
		r->v6.icmp.icmp6_type = 1;  /* destination unreachable */
		r->v6.icmp.icmp6_code = 4;  /* port unreachable */
	}
	/* Pseudo-header: both addresses, the length, the next header. */
	sum = (__u32)bpf_csum_diff(0, 0, (__be32 *)&ip->saddr, 32, 0);
	sum += bpf_htonl(len) + bpf_htonl(IPPROTO_ICMPV6);
	sum += icmp_sum_body(r, &r->v6.icmp);
	r->v6.icmp.icmp6_cksum = icmp_csum_fold(sum);
	return ICMP_V6_HEAD;
}

/* The quote's length: the IP header at ip (its first 8 bytes loaded) and
 * what its length field says follows, at most ICMP_QUOTE_L4; 0 when less
 * than ICMP_QUOTE_L4_MIN follows. */
static __always_inline __u32 icmp_qlen(const __u8 *ip, int family)
{
	__u32 hlen = family == AF_INET ? (ip[0] & 0xf) * 4 : sizeof(struct ipv6hdr);
	__u32 len = family == AF_INET ? ((__u32)ip[2] << 8 | ip[3]) :
					 hlen + ((__u32)ip[4] << 8 | ip[5]);
	__u32 l4;

	if (hlen < sizeof(struct iphdr) || len < hlen + ICMP_QUOTE_L4_MIN)
		return 0;
	l4 = len - hlen;
	if (l4 > ICMP_QUOTE_L4)
		l4 = ICMP_QUOTE_L4;
	return hlen + l4;  /* so bounded, the verifier sees it fits r->quote */
}

static __always_inline int icmp_xdp_error(struct xdp_md *ctx, __u32 l3_off, int family, __u32 mtu)
{
	__u8 l2[ICMP_L2_MAX], mac[6];
	struct icmp_reply r;
	__u32 qlen, hlen;
	__u64 len;

	if (l3_off < ICMP_L2_MIN || l3_off > ICMP_L2_MAX)
		return XDP_DROP;
	__builtin_memset(&r, 0, sizeof(r));
	if (bpf_xdp_load_bytes(ctx, l3_off, r.quote, 8) < 0)
		return XDP_DROP;
	qlen = icmp_qlen(r.quote, family);
	if (!qlen || qlen > ICMP_QUOTE_MAX || bpf_xdp_load_bytes(ctx, l3_off, r.quote, qlen) < 0)
		return XDP_DROP;
	if (bpf_xdp_load_bytes(ctx, 0, l2, l3_off) < 0)
		return XDP_DROP;
	if (!icmp_may_reply(l2, r.quote, family) || !icmp_rate_allow()) {
		stat_inc(STAT_NP_ICMP_LIMITED);
		return XDP_DROP;
	}
	hlen = family == AF_INET ? icmp_build4(&r, qlen, mtu) : icmp_build6(&r, qlen, mtu);

	/* Cut the packet after the quote, make room before the original IP
	 * header (which stays in place as the quote's start), move L2 up. */
	len = bpf_xdp_get_buff_len(ctx);
	if (len > l3_off + qlen &&
	    bpf_xdp_adjust_tail(ctx, (int)(l3_off + qlen) - (int)len) < 0)
		return XDP_DROP;
	if (bpf_xdp_adjust_head(ctx, -(int)hlen) < 0)
		return XDP_DROP;
	__builtin_memcpy(mac, l2, 6);
	__builtin_memcpy(l2, l2 + 6, 6);
	__builtin_memcpy(l2 + 6, mac, 6);
	if (bpf_xdp_store_bytes(ctx, 0, l2, l3_off) < 0 ||
	    bpf_xdp_store_bytes(ctx, l3_off, &r, hlen) < 0)
		return XDP_DROP;
	stat_inc(mtu ? STAT_NP_TOO_BIG : STAT_NP_ICMP_SENT);
	return XDP_TX;
}

/* Every write goes through bpf_skb_store_bytes with BPF_F_RECOMPUTE_CSUM
 * and the helpers that resize keep skb->csum too, so a CHECKSUM_COMPLETE
 * skb stays consistent for whoever receives it next. */
static __always_inline int icmp_tc_error(struct __sk_buff *skb, __u32 l3_off, int family, __u32 mtu)
{
	__u8 mac[12], swapped[12];
	struct icmp_reply r;
	__u32 qlen, hlen;

	if (l3_off < ICMP_L2_MIN || l3_off > ICMP_L2_MAX)
		return TC_ACT_SHOT;
	__builtin_memset(&r, 0, sizeof(r));
	if (bpf_skb_load_bytes(skb, l3_off, r.quote, 8) < 0)
		return TC_ACT_SHOT;
	qlen = icmp_qlen(r.quote, family);
	if (!qlen || qlen > ICMP_QUOTE_MAX || bpf_skb_load_bytes(skb, l3_off, r.quote, qlen) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_load_bytes(skb, 0, mac, sizeof(mac)) < 0)
		return TC_ACT_SHOT;
	if (!icmp_may_reply(mac, r.quote, family) || !icmp_rate_allow()) {
		stat_inc(STAT_NP_ICMP_LIMITED);
		return TC_ACT_SHOT;
	}
	hlen = family == AF_INET ? icmp_build4(&r, qlen, mtu) : icmp_build6(&r, qlen, mtu);

	if (skb->len > l3_off + qlen && bpf_skb_change_tail(skb, l3_off + qlen, 0) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_adjust_room(skb, hlen, BPF_ADJ_ROOM_MAC, 0) < 0)
		return TC_ACT_SHOT;
	__builtin_memcpy(swapped, mac + 6, 6);
	__builtin_memcpy(swapped + 6, mac, 6);
	if (bpf_skb_store_bytes(skb, 0, swapped, sizeof(swapped), BPF_F_RECOMPUTE_CSUM) < 0 ||
	    bpf_skb_store_bytes(skb, l3_off, &r, hlen, BPF_F_RECOMPUTE_CSUM) < 0)
		return TC_ACT_SHOT;
	stat_inc(mtu ? STAT_NP_TOO_BIG : STAT_NP_ICMP_SENT);
	return bpf_redirect(skb->ifindex, 0);
}

#endif
