/* Packet parsing for the per-packet path, shared by XDP and tc: both hand
 * over [data, data_end) starting at the Ethernet header. What the path
 * cannot translate safely (fragments, IPv6 extension headers) is reported
 * as such, so the caller passes it to the stack untouched. */
#ifndef FERRY_BPF_PKT_H
#define FERRY_BPF_PKT_H

#include <bpf/bpf_endian.h>

#include "lib/sockaddr.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_HLEN 14
#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_DEST 60
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif
#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04

enum pkt_kind {
	PKT_OTHER,      /* not IP, or not TCP/UDP/SCTP: untouched, uncounted */
	PKT_UNSAFE,     /* a fragment or an extension header: to the stack, counted */
	PKT_L4,         /* TCP, UDP or SCTP with its ports */
	PKT_ICMP,       /* ICMP or ICMPv6 (l4_off, v6 set): maybe an error about a flow */
};

/* Addresses in the maps' 16-byte form (IPv4 v4-mapped); ports network
 * order; offsets from the Ethernet header. */
struct pkt {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u16 l4_off;
	__u16 csum_off;   /* L4 checksum field; 0 for SCTP (CRC32c, not ones' complement) */
	__u16 tot_len;    /* IP datagram length (header included) */
	__u8 proto;
	__u8 v6;
	__u8 ttl;         /* TTL or hop limit */
	__u8 udp_nocsum;  /* IPv4 UDP without a checksum: it stays 0 */
	__u16 sample;     /* the L4 checksum's first bytes as they came: varies
			   * from packet to packet, a free sampler */
	__u8 tcp_flags;   /* TCP's flags byte (FIN 0x01, SYN 0x02, RST 0x04); 0 otherwise */
};

/* The L4 header: ports, and where the checksum lies. */
static __always_inline enum pkt_kind pkt_parse_l4(void *data, void *data_end, struct pkt *p)
{
	void *l4 = data + p->l4_off;
	__u16 *ports = l4;

	switch (p->proto) {
	case IPPROTO_TCP:
		if (l4 + sizeof(struct tcphdr) > data_end)
			return PKT_OTHER;
		p->csum_off = p->l4_off + offsetof(struct tcphdr, check);
		p->sample = ((struct tcphdr *)l4)->check;
		p->tcp_flags = ((__u8 *)l4)[13];
		break;
	case IPPROTO_UDP:
		if (l4 + sizeof(struct udphdr) > data_end)
			return PKT_OTHER;
		p->csum_off = p->l4_off + offsetof(struct udphdr, check);
		p->udp_nocsum = !p->v6 && ((struct udphdr *)l4)->check == 0;
		p->sample = ((struct udphdr *)l4)->check;
		break;
	case IPPROTO_SCTP:
		if (l4 + 12 > data_end)  /* common header: ports, tag, CRC32c */
			return PKT_OTHER;
		p->csum_off = 0;
		p->sample = ports[4];  /* the CRC32c's first bytes */
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return PKT_ICMP;
	default:
		return PKT_OTHER;
	}
	/* An IP length short of the L4 header: malformed, not ours. */
	if (p->tot_len < p->l4_off - ETH_HLEN + 8)
		return PKT_OTHER;
	p->sport = ports[0];
	p->dport = ports[1];
	return PKT_L4;
}

static __always_inline enum pkt_kind pkt_parse_v4(void *data, void *data_end, struct pkt *p)
{
	struct iphdr *ip = data + ETH_HLEN;

	if ((void *)(ip + 1) > data_end || ip->ihl < 5)
		return PKT_OTHER;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return PKT_UNSAFE;
	addr_map_v4(p->saddr, ip->saddr);
	addr_map_v4(p->daddr, ip->daddr);
	p->proto = ip->protocol;
	p->ttl = ip->ttl;
	p->tot_len = bpf_ntohs(ip->tot_len);
	p->l4_off = ETH_HLEN + ip->ihl * 4;   /* IP options: skipped, kept */
	p->v6 = 0;
	return pkt_parse_l4(data, data_end, p);
}

static __always_inline enum pkt_kind pkt_parse_v6(void *data, void *data_end, struct pkt *p)
{
	struct ipv6hdr *ip6 = data + ETH_HLEN;

	if ((void *)(ip6 + 1) > data_end)
		return PKT_OTHER;
	switch (ip6->nexthdr) {
	case NEXTHDR_HOP:
	case NEXTHDR_ROUTING:
	case NEXTHDR_FRAGMENT:
	case NEXTHDR_AUTH:
	case NEXTHDR_DEST:
		return PKT_UNSAFE;
	}
	__builtin_memcpy(p->saddr, &ip6->saddr, 16);
	__builtin_memcpy(p->daddr, &ip6->daddr, 16);
	p->proto = ip6->nexthdr;
	p->ttl = ip6->hop_limit;
	p->tot_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
	p->l4_off = ETH_HLEN + sizeof(*ip6);
	p->v6 = 1;
	return pkt_parse_l4(data, data_end, p);
}

static __always_inline enum pkt_kind pkt_parse(void *data, void *data_end, struct pkt *p)
{
	struct ethhdr *eth = data;

	p->udp_nocsum = 0;
	p->tcp_flags = 0;
	if ((void *)(eth + 1) > data_end)
		return PKT_OTHER;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return pkt_parse_v4(data, data_end, p);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return pkt_parse_v6(data, data_end, p);
	return PKT_OTHER;
}

#endif
