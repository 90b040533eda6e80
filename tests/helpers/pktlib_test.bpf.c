// SPDX-License-Identifier: GPL-2.0
/* Test programs for bpf/lib/icmp.h and bpf/lib/crc32c.h, run by
 * tests/helpers/pktlib_test.c through BPF_PROG_TEST_RUN: each parses a
 * crafted Ethernet frame as little as the helpers need and calls them the
 * way the per-packet path does. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lib/icmp.h"
#include "lib/crc32c.h"

#define TC_ACT_OK 0
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86dd
#define ETH_P_8021Q 0x8100
#define PARSE_LEN (ETH_HLEN + 4 + 40)

char LICENSE[] SEC("license") = "GPL";

/* Set by the driver: the destination port the SCTP programs write before
 * recomputing the CRC (0: leave it), as a DNAT would. */
volatile __u16 pkt_new_dport;
/* Set by the driver: the ICMP programs answer port unreachable (0) or too
 * big for this MTU. */
volatile __u32 pkt_icmp_mtu;

struct parsed {
	__u32 l3_off;
	__u32 l4_off;
	__u32 l4_len;
	int family;
	__u8 proto;
};

/* hdr: the frame's first bytes (zero past its end); one VLAN tag. */
static __always_inline int parse(const __u8 *hdr, struct parsed *p)
{
	__u16 proto = ((__u16)hdr[12] << 8) | hdr[13];
	const __u8 *ip = hdr + ETH_HLEN;

	p->l3_off = ETH_HLEN;
	if (proto == ETH_P_8021Q) {
		proto = ((__u16)hdr[16] << 8) | hdr[17];
		ip += 4;
		p->l3_off += 4;
	}
	if (proto == ETH_P_IP) {
		p->family = AF_INET;
		p->proto = ip[9];
		p->l4_off = p->l3_off + (ip[0] & 0xf) * 4;
		p->l4_len = (((__u32)ip[2] << 8) | ip[3]) - (ip[0] & 0xf) * 4;
	} else if (proto == ETH_P_IPV6) {
		p->family = AF_INET6;
		p->proto = ip[6];
		p->l4_off = p->l3_off + 40;
		p->l4_len = ((__u32)ip[4] << 8) | ip[5];
	} else {
		return -1;
	}
	return 0;
}

static __always_inline int parse_xdp(struct xdp_md *ctx, struct parsed *p)
{
	__u8 hdr[PARSE_LEN] = {};
	__u64 len = bpf_xdp_get_buff_len(ctx);

	if (len < ETH_HLEN + 20)
		return -1;
	if (len > PARSE_LEN)
		len = PARSE_LEN;
	if (bpf_xdp_load_bytes(ctx, 0, hdr, len) < 0)
		return -1;
	return parse(hdr, p);
}

static __always_inline int parse_tc(struct __sk_buff *skb, struct parsed *p)
{
	__u8 hdr[PARSE_LEN] = {};
	__u32 len = skb->len;

	if (len < ETH_HLEN + 20)
		return -1;
	if (len > PARSE_LEN)
		len = PARSE_LEN;
	if (bpf_skb_load_bytes(skb, 0, hdr, len) < 0)
		return -1;
	return parse(hdr, p);
}

static __always_inline bool served_proto(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

SEC("xdp")
int pkt_icmp_xdp(struct xdp_md *ctx)
{
	struct parsed p;

	if (parse_xdp(ctx, &p) < 0 || !served_proto(p.proto))
		return XDP_PASS;
	return icmp_xdp_error(ctx, p.l3_off, p.family, pkt_icmp_mtu);
}

SEC("tc")
int pkt_icmp_tc(struct __sk_buff *skb)
{
	struct parsed p;

	/* At tc ingress the kernel has taken VLAN tags out of the frame. */
	if (parse_tc(skb, &p) < 0 || !served_proto(p.proto) || p.l3_off != ETH_HLEN)
		return TC_ACT_OK;
	return icmp_tc_error(skb, ETH_HLEN, p.family, pkt_icmp_mtu);
}

/* For the veth peer of a native XDP_TX: a veth transmits XDP frames only
 * to a peer that has an XDP program. */
SEC("xdp")
int pkt_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

static __always_inline int crc_verdict(int err, int ok, int drop)
{
	if (err == CRC32C_TOO_LONG)
		stat_inc(STAT_NP_SCTP_TOO_LONG);
	return err ? drop : ok;
}

SEC("xdp")
int pkt_crc_xdp(struct xdp_md *ctx)
{
	__u16 port = bpf_htons(pkt_new_dport);
	struct parsed p;

	if (parse_xdp(ctx, &p) < 0 || p.proto != IPPROTO_SCTP)
		return XDP_PASS;
	if (pkt_new_dport && bpf_xdp_store_bytes(ctx, p.l4_off + 2, &port, 2) < 0)
		return XDP_ABORTED;
	return crc_verdict(crc32c_sctp_xdp(ctx, p.l4_off, p.l4_len), XDP_PASS, XDP_DROP);
}

SEC("tc")
int pkt_crc_tc(struct __sk_buff *skb)
{
	__u16 port = bpf_htons(pkt_new_dport);
	struct parsed p;

	if (parse_tc(skb, &p) < 0 || p.proto != IPPROTO_SCTP)
		return TC_ACT_OK;
	if (pkt_new_dport && bpf_skb_store_bytes(skb, p.l4_off + 2, &port, 2, 0) < 0)
		return TC_ACT_SHOT;
	return crc_verdict(crc32c_sctp_tc(skb, p.l4_off, p.l4_len), TC_ACT_OK, TC_ACT_SHOT);
}
