/* pkt_test: the per-packet datapath (bpf/nodeport_xdp.bpf.c and
 * bpf/nodeport_tc.bpf.c) run on crafted packets with BPF_PROG_TEST_RUN.
 *
 *   pkt_test IFNAME
 *
 * Run by tests/kernel/packets.sh inside a network namespace it prepared:
 * IFNAME (the "external device", MAC EXT_MAC) holds the node addresses
 * 192.0.2.1/24 and 2001:db8::1/64 with static neighbours for the client
 * (.100, ::100) and node 2 (.2, ::2); 10.2.0.0/16 and 2001:db8:2::/64 (pods
 * on node 2) route via node 2; 10.1.0.0/16 and 2001:db8:1::/64 (this
 * node's pods) route through another device; forwarding is on.
 *
 * The XDP object is loaded alone and its maps filled by hand; the tc object
 * reuses the XDP object's maps, as both reuse the socket LB's in ferryd.
 * Every case compares the whole output frame with one built in userspace,
 * whose checksums are computed from scratch. Prints "ok - NAME" or
 * "not ok - NAME: REASON" per case; exit 1 when one failed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "datapath/features.h"
#include "ferry/maps.h"
#include "nodeport_xdp.skel.h"
#include "nodeport_tc.skel.h"

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7
#define PKT_MAX 4096  /* the MTU cases: 1,514-byte frames, and a GRO-merged one */
#define SNAT_MIN 40000
#define SNAT_MAX 40099

static const __u8 EXT_MAC[6] = { 0x02, 0, 0, 0, 0x01, 0x01 };
static const __u8 NODE2_MAC[6] = { 0x02, 0, 0, 0, 0, 0x02 };
static const __u8 CLIENT_MAC[6] = { 0x02, 0, 0, 0, 0, 0x64 };

static struct ferry_nodeport_xdp *xdp;
static struct ferry_nodeport_tc *tc;
static int ifindex;
static int failures;

/* --- reporting ------------------------------------------------------------ */

static void ok(const char *name)
{
	printf("ok - %s\n", name);
}

static void not_ok(const char *name, const char *fmt, ...)
{
	va_list ap;

	failures++;
	printf("not ok - %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* --- addresses and maps ----------------------------------------------------- */

/* The maps' form: 16 bytes, IPv4 v4-mapped. */
static void addr16(const char *s, __u32 out[4])
{
	struct in_addr a4;

	memset(out, 0, 16);
	if (inet_pton(AF_INET, s, &a4) == 1) {
		out[2] = htonl(0xffff);
		out[3] = a4.s_addr;
	} else if (inet_pton(AF_INET6, s, out) != 1) {
		fprintf(stderr, "pkt_test: bad address %s\n", s);
		exit(2);
	}
}

static int map_fd(struct bpf_map *m)
{
	return bpf_map__fd(m);
}

static void must(int err, const char *what)
{
	if (err) {
		fprintf(stderr, "pkt_test: %s: %s\n", what, strerror(-err < 0 ? err : -err));
		exit(2);
	}
}

struct be {
	__u32 id;
	const char *addr;
	__u16 port;
};

/* A frontend (addr NULL: the family's NodePort wildcard) and, under rev,
 * its backend set. */
static void add_svc(const char *addr, bool v6, __u16 port, __u8 proto, __u8 scope, __u32 svc_id,
		    __u32 rev, __u32 flags, __u32 affinity, const struct be *bes, int n)
{
	struct svc_key k = { .port = htons(port), .proto = proto, .scope = scope };
	struct svc_entry v = { .v = { .svc_id = svc_id, .rev = rev, .count = n, .flags = flags,
				      .affinity_timeout = affinity } };
	/* As ferryd writes it: a small set inline, a larger one in the slots. */
	bool in = n <= (v6 ? FERRY_SVC_INLINE_V6 : FERRY_SVC_INLINE_V4);

	if (addr)
		addr16(addr, k.addr);
	else if (!v6)
		k.addr[2] = htonl(0xffff);
	for (int i = 0; i < n; i++) {
		struct slot_key sk = { .svc_id = svc_id, .rev = rev, .slot = i };
		struct slot_value sv = { .backend_id = bes[i].id, .port = htons(bes[i].port) };
		struct backend_value bv = { .port = htons(bes[i].port), .proto = proto,
					    .svc_id = svc_id };

		addr16(bes[i].addr, sv.addr);
		addr16(bes[i].addr, bv.addr);
		if (in && v6) {
			v.in.v6[i] = sv;
		} else if (in) {
			v.in.v4[i].addr = sv.addr[3];
			v.in.v4[i].port = sv.port;
			v.in.v4_backend_id[i] = sv.backend_id;
		} else {
			must(bpf_map_update_elem(map_fd(xdp->maps.ferry_slots), &sk, &sv, BPF_ANY),
			     "slot");
		}
		must(bpf_map_update_elem(map_fd(xdp->maps.ferry_backends), &bes[i].id, &bv, BPF_ANY),
		     "backend");
	}
	if (v6) {
		must(bpf_map_update_elem(map_fd(xdp->maps.ferry_services6), &k, &v, BPF_ANY),
		     "service");
	} else {
		struct svc_key4 k4 = { .addr = k.addr[3], .port = k.port, .proto = k.proto,
				       .scope = k.scope };

		must(bpf_map_update_elem(map_fd(xdp->maps.ferry_services4), &k4, &v, BPF_ANY),
		     "service");
	}
}

static void add_node_addr(const char *addr)
{
	struct node_addr_key k;
	struct node_addr_value v = { .flags = NODE_ADDR_SNAT };

	addr16(addr, k.addr);
	must(bpf_map_update_elem(map_fd(xdp->maps.ferry_node_addrs), &k, &v, BPF_ANY), "node addr");
}

static void add_source_range(__u32 svc_id, const char *addr, int bits)
{
	struct source_range_key k = { .svc_id = htonl(svc_id) };
	__u8 v = 1;

	addr16(addr, k.addr);
	k.prefixlen = 32 + (strchr(addr, ':') ? bits : 96 + bits);
	must(bpf_map_update_elem(map_fd(xdp->maps.ferry_source_ranges), &k, &v, BPF_ANY),
	     "source range");
}

static void set_config(__u16 snat_min, __u16 snat_max)
{
	struct dp_config c = { .node_port_min = 30000, .node_port_max = 32767,
			       .snat_port_min = snat_min, .snat_port_max = snat_max,
			       .icmp_per_sec = 100 };
	__u32 zero = 0;

	addr16("192.0.2.1", c.snat_v4);
	addr16("2001:db8::1", c.snat_v6);
	must(bpf_map_update_elem(map_fd(xdp->maps.ferry_config), &zero, &c, BPF_ANY), "config");
}

static __u64 stat(__u32 index)
{
	int ncpu = libbpf_num_possible_cpus();
	struct stat_value v[ncpu];
	__u64 sum = 0;

	if (bpf_map_lookup_elem(map_fd(xdp->maps.ferry_stats), &index, v))
		return 0;
	for (int i = 0; i < ncpu; i++)
		sum += v[i].count;
	return sum;
}

/* --- packets ---------------------------------------------------------------- */

/* A flow's tuple as text; proto IPPROTO_TCP, _UDP or _SCTP. */
struct tuple {
	const char *src;
	const char *dst;
	__u16 sport;
	__u16 dport;
};

/* What a crafted frame looks like besides its tuple. */
struct shape {
	__u8 proto;
	int optlen;        /* IPv4 options, bytes (multiple of 4) */
	__u16 frag_off;    /* IPv4 flags and offset, host order */
	bool udp_nocsum;   /* IPv4 UDP sent without a checksum */
	__u8 tcp_flags;    /* 0: SYN */
	size_t pad;        /* payload bytes past PAYLOAD (a pattern) */
};

static const char PAYLOAD[] = "ferry packet test, odd";  /* 23 bytes: an odd length */

static bool is_v6(const char *addr)
{
	return strchr(addr, ':') != NULL;
}

static __u32 sum16(const void *buf, size_t len, __u32 sum)
{
	const __u8 *p = buf;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (p[i] << 8) | p[i + 1];
	if (len & 1)
		sum += p[len - 1] << 8;
	return sum;
}

static __u16 fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

/* Offsets of a frame built here (no extension headers). */
struct layout {
	bool v6;
	size_t l3, l4, end;
	__u8 proto;
};

static struct layout layout_of(const __u8 *f, size_t len)
{
	struct layout l = { .l3 = ETH_HLEN, .end = len };

	l.v6 = (f[ETH_HLEN] >> 4) == 6;
	if (l.v6) {
		l.l4 = ETH_HLEN + 40;
		l.proto = f[ETH_HLEN + 6];
	} else {
		l.l4 = ETH_HLEN + (f[ETH_HLEN] & 0xf) * 4;
		l.proto = f[ETH_HLEN + 9];
	}
	return l;
}

/* SCTP's CRC32c (RFC 9260 appendix A), bit by bit: the checksum field
 * taken as zero, the result stored least significant byte first. */
static void put_crc32c(__u8 *sctp, size_t len)
{
	__u32 crc = ~0U;

	memset(sctp + 8, 0, 4);
	for (size_t i = 0; i < len; i++) {
		crc ^= sctp[i];
		for (int b = 0; b < 8; b++)
			crc = (crc >> 1) ^ (0x82f63b78 & -(crc & 1));
	}
	crc = ~crc;
	for (int i = 0; i < 4; i++)
		sctp[8 + i] = crc >> (8 * i);
}

static size_t csum_field(__u8 proto)
{
	return proto == IPPROTO_TCP ? 16 : 6;
}

/* Every checksum from scratch: IPv4 header, TCP/UDP over the pseudo
 * header (an IPv4 UDP checksum of 0 stays 0 when keep_zero). */
static void fix_checksums(__u8 *f, size_t len, bool keep_zero)
{
	struct layout l = layout_of(f, len);
	size_t l4len = l.end - l.l4, off = l.l4 + csum_field(l.proto);
	__u32 sum;
	__u16 c;

	if (!l.v6) {
		f[l.l3 + 10] = f[l.l3 + 11] = 0;
		c = ~fold(sum16(f + l.l3, l.l4 - l.l3, 0));
		f[l.l3 + 10] = c >> 8;
		f[l.l3 + 11] = c & 0xff;
	}
	if (l.proto == IPPROTO_SCTP) {
		put_crc32c(f + l.l4, l4len);
		return;
	}
	if (l.proto != IPPROTO_TCP && l.proto != IPPROTO_UDP)
		return;
	if (l.proto == IPPROTO_UDP && !l.v6 && keep_zero && !f[off] && !f[off + 1])
		return;
	f[off] = f[off + 1] = 0;
	if (l.v6)
		sum = sum16(f + l.l3 + 8, 32, 0);
	else
		sum = sum16(f + l.l3 + 12, 8, 0);
	sum += l.proto + (__u32)l4len;
	c = ~fold(sum16(f + l.l4, l4len, sum));
	if (c == 0 && l.proto == IPPROTO_UDP)
		c = 0xffff;
	f[off] = c >> 8;
	f[off + 1] = c & 0xff;
}

static void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put_addr(__u8 *p, const char *s)
{
	if (inet_pton(is_v6(s) ? AF_INET6 : AF_INET, s, p) != 1) {
		fprintf(stderr, "pkt_test: bad address %s\n", s);
		exit(2);
	}
}

/* A frame from smac to EXT_MAC carrying t, with valid checksums. */
static size_t build(__u8 *f, const struct tuple *t, const struct shape *s, const __u8 *smac)
{
	bool v6 = is_v6(t->src);
	size_t l3 = ETH_HLEN, l4 = l3 + (v6 ? 40 : 20 + s->optlen);
	size_t l4hdr = s->proto == IPPROTO_TCP ? 20 : s->proto == IPPROTO_UDP ? 8 : 12;
	size_t len = l4 + l4hdr + sizeof(PAYLOAD) - 1 + s->pad;

	memset(f, 0, PKT_MAX);
	memcpy(f, EXT_MAC, 6);
	memcpy(f + 6, smac, 6);
	put16(f + 12, v6 ? ETH_P_IPV6 : ETH_P_IP);
	if (v6) {
		f[l3] = 0x60;
		put16(f + l3 + 4, len - l4);
		f[l3 + 6] = s->proto;
		f[l3 + 7] = 64;
		put_addr(f + l3 + 8, t->src);
		put_addr(f + l3 + 24, t->dst);
	} else {
		f[l3] = 0x40 | ((20 + s->optlen) / 4);
		put16(f + l3 + 2, len - l3);
		put16(f + l3 + 4, 0x1234);
		put16(f + l3 + 6, s->frag_off);
		f[l3 + 8] = 64;
		f[l3 + 9] = s->proto;
		put_addr(f + l3 + 12, t->src);
		put_addr(f + l3 + 16, t->dst);
		for (int i = 0; i < s->optlen; i++)   /* NOPs, then End of Options */
			f[l3 + 20 + i] = i == s->optlen - 1 ? 0 : 1;
	}
	put16(f + l4, t->sport);
	put16(f + l4 + 2, t->dport);
	if (s->proto == IPPROTO_TCP) {
		put16(f + l4 + 4, 0x0102);      /* sequence number */
		f[l4 + 12] = 5 << 4;
		f[l4 + 13] = s->tcp_flags ? s->tcp_flags : 0x02;  /* SYN */
		put16(f + l4 + 14, 64240);
	} else if (s->proto == IPPROTO_UDP) {
		put16(f + l4 + 4, len - l4);
	} else {
		put16(f + l4 + 4, 0xbeef);      /* SCTP verification tag */
	}
	memcpy(f + l4 + l4hdr, PAYLOAD, sizeof(PAYLOAD) - 1);
	for (size_t i = 0; i < s->pad; i++)
		f[l4 + l4hdr + sizeof(PAYLOAD) - 1 + i] = i * 7;
	fix_checksums(f, len, false);
	if (s->udp_nocsum)
		f[l4 + 6] = f[l4 + 7] = 0;
	return len;
}

/* The frame f rewritten to tuple t (checksums recomputed); when fwd, as
 * forwarded out to dmac (TTL or hop limit one less). */
static void rewrite(__u8 *f, size_t len, const struct tuple *t, const __u8 *dmac)
{
	struct layout l = layout_of(f, len);
	bool nocsum = !l.v6 && l.proto == IPPROTO_UDP && !f[l.l4 + 6] && !f[l.l4 + 7];

	put_addr(f + l.l3 + (l.v6 ? 8 : 12), t->src);
	put_addr(f + l.l3 + (l.v6 ? 24 : 16), t->dst);
	put16(f + l.l4, t->sport);
	put16(f + l.l4 + 2, t->dport);
	if (dmac) {
		memcpy(f, dmac, 6);
		memcpy(f + 6, EXT_MAC, 6);
		f[l.l3 + (l.v6 ? 7 : 8)]--;
	}
	fix_checksums(f, len, nocsum);
}

/* The port unreachable (mtu 0, B14) or the too-big reply (fragmentation
 * needed, packet too big: mtu) lib/icmp.h makes of frame f: back to the
 * sender's MAC, from the address it used, quoting the first q bytes of the
 * IP packet. Returns its length. */
static size_t icmp_reply(const __u8 *f, size_t len, size_t q, __u32 mtu, __u8 *out)
{
	struct layout l = layout_of(f, len);
	size_t h = l.v6 ? 48 : 28;
	__u8 *ip = out + ETH_HLEN;
	__u32 sum;

	memset(out, 0, PKT_MAX);
	memcpy(out, f + 6, 6);
	memcpy(out + 6, f, 6);
	memcpy(out + 12, f + 12, 2);
	memcpy(ip + h, f + l.l3, q);
	if (l.v6) {
		ip[0] = 0x60;
		put16(ip + 4, 8 + q);
		ip[6] = IPPROTO_ICMPV6;
		ip[7] = 64;
		memcpy(ip + 8, f + l.l3 + 24, 16);
		memcpy(ip + 24, f + l.l3 + 8, 16);
		ip[40] = mtu ? 2 : 1;  /* packet too big, destination unreachable */
		ip[41] = mtu ? 0 : 4;  /* port unreachable */
		put16(ip + 44, mtu >> 16);
		put16(ip + 46, mtu & 0xffff);
		sum = sum16(ip + 8, 32, IPPROTO_ICMPV6 + 8 + q);
		put16(ip + 42, ~fold(sum16(ip + 40, 8 + q, sum)));
	} else {
		ip[0] = 0x45;
		ip[1] = 0xc0;
		put16(ip + 2, 28 + q);
		ip[8] = 64;
		ip[9] = IPPROTO_ICMP;
		memcpy(ip + 12, f + l.l3 + 16, 4);
		memcpy(ip + 16, f + l.l3 + 12, 4);
		put16(ip + 10, ~fold(sum16(ip, 20, 0)));
		ip[20] = 3;            /* destination unreachable */
		ip[21] = mtu ? 4 : 3;  /* fragmentation needed, port unreachable */
		put16(ip + 26, mtu);   /* the next-hop MTU */
		put16(ip + 22, ~fold(sum16(ip + 20, 8 + q, 0)));
	}
	return ETH_HLEN + h + q;
}

static __u16 get16(const __u8 *p)
{
	return (p[0] << 8) | p[1];
}

/* --- running ---------------------------------------------------------------- */

struct run {
	__u32 retval;
	__u8 out[PKT_MAX];
	__u32 len;
};

static void run_xdp(const __u8 *in, size_t len, struct run *r)
{
	struct xdp_md ctx = { .data_end = len, .ingress_ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len, .data_out = r->out,
		    .data_size_out = sizeof(r->out), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .repeat = 1);

	must(bpf_prog_test_run_opts(bpf_program__fd(xdp->progs.ferry_xdp_nodeport), &o),
	     "test run xdp");
	r->retval = o.retval;
	r->len = o.data_size_out;
}

/* When set, the skb of the next tc runs is GSO with this segment size. */
static __u32 tc_gso_size;

static void run_tc(struct bpf_program *prog, const __u8 *in, size_t len, struct run *r)
{
	struct __sk_buff ctx = { .ifindex = ifindex, .gso_size = tc_gso_size,
				 .gso_segs = tc_gso_size ? 15 : 0 };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len, .data_out = r->out,
		    .data_size_out = sizeof(r->out), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .repeat = 1);

	must(bpf_prog_test_run_opts(bpf_program__fd(prog), &o), "test run tc");
	r->retval = o.retval;
	r->len = o.data_size_out;
}

/* The output equals want: same verdict, same bytes. */
static bool expect_frame(const char *name, const struct run *r, __u32 retval, const __u8 *want,
			 size_t len)
{
	if (r->retval != retval) {
		not_ok(name, "verdict %u, want %u", r->retval, retval);
		return false;
	}
	if (r->len != len) {
		not_ok(name, "length %u, want %zu", r->len, len);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (r->out[i] != want[i]) {
			not_ok(name, "byte %zu is 0x%02x, want 0x%02x", i, r->out[i], want[i]);
			return false;
		}
	}
	ok(name);
	return true;
}

static void expect_u64(const char *name, __u64 got, __u64 want)
{
	if (got == want)
		ok(name);
	else
		not_ok(name, "got %llu, want %llu", (unsigned long long)got, (unsigned long long)want);
}

/* The entry of a flow's packets as they arrive; 0 when present. */
static int ct_get(const struct tuple *t, __u8 proto, struct ct_value *v)
{
	struct ct_key k = { .sport = htons(t->sport), .dport = htons(t->dport), .proto = proto };

	addr16(t->src, k.saddr);
	addr16(t->dst, k.daddr);
	return bpf_map_lookup_elem(map_fd(xdp->maps.ferry_ct), &k, v);
}

/* Makes the entry of t look seconds older (instead of waiting). */
static void ct_age(const struct tuple *t, __u8 proto, __u64 seconds)
{
	struct ct_key k = { .sport = htons(t->sport), .dport = htons(t->dport), .proto = proto };
	struct ct_value v;

	addr16(t->src, k.saddr);
	addr16(t->dst, k.daddr);
	must(bpf_map_lookup_elem(map_fd(xdp->maps.ferry_ct), &k, &v), "ct entry to age");
	v.last_seen_ns -= seconds * 1000000000ULL;
	must(bpf_map_update_elem(map_fd(xdp->maps.ferry_ct), &k, &v, BPF_EXIST), "aging a ct entry");
}

enum hook { HOOK_XDP, HOOK_TC_INGRESS, HOOK_TC_EGRESS };

static void run_hook(enum hook h, const __u8 *f, size_t len, struct run *r)
{
	if (h == HOOK_XDP)
		run_xdp(f, len, r);
	else if (h == HOOK_TC_INGRESS)
		run_tc(tc->progs.ferry_tc_ingress, f, len, r);
	else
		run_tc(tc->progs.ferry_tc_egress, f, len, r);
}

/* in to a service without backend: answered with port unreachable, which
 * quotes the IP header and at least the 8 bytes after it (RFC 792), at
 * most the whole packet. */
static void check_icmp(enum hook h, const char *name, const struct tuple *in,
		       const struct shape *s, __u32 verdict)
{
	__u8 f[PKT_MAX], w[PKT_MAX];
	size_t len = build(f, in, s, CLIENT_MAC);
	struct layout l = layout_of(f, len);
	size_t hdr = ETH_HLEN + (l.v6 ? 48 : 28), q;
	struct run r;

	run_hook(h, f, len, &r);
	q = r.len > hdr ? r.len - hdr : 0;
	if (r.retval == verdict && (q < l.l4 - l.l3 + 8 || q > len - l.l3)) {
		not_ok(name, "quotes %zu bytes of a %zu-byte packet", q, len - l.l3);
		return;
	}
	expect_frame(name, &r, verdict, w, icmp_reply(f, len, q, 0, w));
}

/* Sends in (shaped s, from smac) through the hook and checks the verdict
 * and the frame: in rewritten to want and, with dmac, forwarded to dmac.
 * want.sport 0: the source port is the SNAT port the datapath chose, which
 * must lie in the configured range. Returns the source port seen, 0 when
 * the case failed. */
static __u16 check(enum hook h, const char *name, const struct tuple *in, const struct shape *s,
		   const __u8 *smac, __u32 verdict, struct tuple want, const __u8 *dmac)
{
	__u8 f[PKT_MAX], w[PKT_MAX];
	size_t len = build(f, in, s, smac);
	struct run r;

	memcpy(w, f, len);
	run_hook(h, f, len, &r);
	if (!want.sport && r.len == len) {
		want.sport = get16(r.out + layout_of(r.out, r.len).l4);
		if (want.sport < SNAT_MIN || want.sport > SNAT_MAX) {
			not_ok(name, "SNAT port %u outside %u-%u (verdict %u)", want.sport, SNAT_MIN,
			       SNAT_MAX, r.retval);
			return 0;
		}
	}
	rewrite(w, len, &want, dmac);
	return expect_frame(name, &r, verdict, w, len) ? want.sport : 0;
}

static const struct shape TCP = { .proto = IPPROTO_TCP };
static const struct shape UDP = { .proto = IPPROTO_UDP };

/* --- the services ------------------------------------------------------------- */

enum {
	F_NP = SVC_FLAG_EXTERNAL | SVC_FLAG_NODE_PORT,
};

static void setup(void)
{
	const struct be local1[] = { { 101, "10.1.0.5", 8080 } };
	const struct be remote2[] = { { 201, "10.2.0.7", 8080 } };
	const struct be remote3[] = { { 301, "10.2.0.8", 5353 } };
	const struct be local4[] = { { 401, "2001:db8:1::5", 8080 } };
	const struct be remote5[] = { { 501, "2001:db8:2::7", 53 } };
	const struct be remote6[] = { { 601, "10.2.0.9", 8080 } };
	const struct be cluster7[] = { { 701, "10.2.0.10", 8080 } };
	const struct be local8[] = { { 801, "10.1.0.11", 8080 } };
	const struct be cluster9[] = { { 901, "10.2.0.12", 8080 } };
	const struct be remote12[] = { { 1201, "10.2.0.20", 8080 } };
	const struct be aff13[] = { { 1301, "10.2.0.30", 8080 }, { 1302, "10.2.0.31", 8080 } };
	const struct be cip14[] = { { 1401, "10.1.0.40", 8080 } };
	const struct be remote15[] = { { 1501, "10.2.0.50", 8080 } };
	const struct be remote16[] = { { 1601, "2001:db8:2::9", 8080 } };
	const struct be remote19[] = { { 1901, "10.2.0.60", 3868 } };
	const struct be local20[] = { { 2001, "2001:db8:1::60", 3868 } };
	const struct be mtu21[] = { { 2101, "10.2.9.7", 8080 } };
	const struct be mtu22[] = { { 2201, "10.2.9.8", 5353 } };
	const struct be mtu23[] = { { 2301, "2001:db8:2:9::7", 8080 } };
	struct be big24[17], big25[9];
	struct affinity_key ak = { .svc_id = 13 };
	struct affinity_value av = { .backend_id = 1302 };
	struct timespec ts;

	add_node_addr("192.0.2.1");
	add_node_addr("2001:db8::1");
	set_config(SNAT_MIN, SNAT_MAX);
	add_svc(NULL, false, 30080, IPPROTO_TCP, SVC_SCOPE_ALL, 1, 1, F_NP, 0, local1, 1);
	add_svc(NULL, false, 30081, IPPROTO_TCP, SVC_SCOPE_ALL, 2, 1, F_NP, 0, remote2, 1);
	add_svc(NULL, false, 30082, IPPROTO_UDP, SVC_SCOPE_ALL, 3, 1, F_NP, 0, remote3, 1);
	add_svc(NULL, true, 30080, IPPROTO_TCP, SVC_SCOPE_ALL, 4, 1, F_NP, 0, local4, 1);
	add_svc(NULL, true, 30083, IPPROTO_UDP, SVC_SCOPE_ALL, 5, 1, F_NP, 0, remote5, 1);
	/* One service port: an LB IP with source ranges and its NodePort. */
	add_svc("198.51.100.10", false, 80, IPPROTO_TCP, SVC_SCOPE_ALL, 6, 1,
		SVC_FLAG_EXTERNAL | SVC_FLAG_LOAD_BALANCER | SVC_FLAG_SOURCE_RANGES, 0, remote6, 1);
	add_svc(NULL, false, 30086, IPPROTO_TCP, SVC_SCOPE_ALL, 6, 1, F_NP, 0, remote6, 1);
	add_source_range(6, "192.0.2.100", 32);
	/* externalTrafficPolicy=Local: the Cluster set, and the local one. */
	add_svc(NULL, false, 30087, IPPROTO_TCP, SVC_SCOPE_ALL, 7, 1, F_NP | SVC_FLAG_EXT_LOCAL, 0,
		cluster7, 1);
	add_svc(NULL, false, 30087, IPPROTO_TCP, SVC_SCOPE_EXTERNAL, 8, 1, F_NP, 0, local8, 1);
	add_svc(NULL, false, 30089, IPPROTO_TCP, SVC_SCOPE_ALL, 9, 1, F_NP | SVC_FLAG_EXT_LOCAL, 0,
		cluster9, 1);
	add_svc(NULL, false, 30089, IPPROTO_TCP, SVC_SCOPE_EXTERNAL, 10, 1, F_NP, 0, NULL, 0);
	add_svc(NULL, false, 30090, IPPROTO_TCP, SVC_SCOPE_ALL, 11, 1, F_NP, 0, NULL, 0);
	add_svc(NULL, false, 30090, IPPROTO_UDP, SVC_SCOPE_ALL, 17, 1, F_NP, 0, NULL, 0);
	add_svc(NULL, true, 30090, IPPROTO_TCP, SVC_SCOPE_ALL, 18, 1, F_NP, 0, NULL, 0);
	add_svc(NULL, false, 30095, IPPROTO_SCTP, SVC_SCOPE_ALL, 19, 1, F_NP, 0, remote19, 1);
	add_svc(NULL, true, 30095, IPPROTO_SCTP, SVC_SCOPE_ALL, 20, 1, F_NP, 0, local20, 1);
	add_svc(NULL, false, 30091, IPPROTO_TCP, SVC_SCOPE_ALL, 12, 1, F_NP, 0, remote12, 1);
	add_svc(NULL, false, 30092, IPPROTO_TCP, SVC_SCOPE_ALL, 13, 1, F_NP, 100, aff13, 2);
	add_svc("10.96.0.10", false, 80, IPPROTO_TCP, SVC_SCOPE_ALL, 14, 1, 0, 0, cip14, 1);
	add_svc(NULL, false, 30093, IPPROTO_TCP, SVC_SCOPE_ALL, 15, 1, F_NP, 0, remote15, 1);
	add_svc(NULL, true, 30094, IPPROTO_TCP, SVC_SCOPE_ALL, 16, 1, F_NP, 0, remote16, 1);
	/* Behind routes of MTU 1400. */
	add_svc(NULL, false, 30096, IPPROTO_TCP, SVC_SCOPE_ALL, 21, 1, F_NP, 0, mtu21, 1);
	add_svc(NULL, false, 30096, IPPROTO_UDP, SVC_SCOPE_ALL, 22, 1, F_NP, 0, mtu22, 1);
	add_svc(NULL, true, 30096, IPPROTO_TCP, SVC_SCOPE_ALL, 23, 1, F_NP, 0, mtu23, 1);
	/* Sets too large to ride inline (17 IPv4, 9 IPv6 backends), read from
	 * ferry_slots: distinct IDs, one address, so the pick is known. */
	for (int i = 0; i < 17; i++)
		big24[i] = (struct be){ 2401 + i, "10.2.0.70", 8080 };
	for (int i = 0; i < 9; i++)
		big25[i] = (struct be){ 2501 + i, "2001:db8:2::70", 8080 };
	add_svc(NULL, false, 30097, IPPROTO_TCP, SVC_SCOPE_ALL, 24, 1, F_NP, 0, big24, 17);
	add_svc(NULL, true, 30097, IPPROTO_TCP, SVC_SCOPE_ALL, 25, 1, F_NP, 0, big25, 9);
	/* The client's remembered backend for service 13 (B30): the second. */
	addr16("192.0.2.100", ak.client_addr);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	av.last_used_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	must(bpf_map_update_elem(map_fd(xdp->maps.ferry_affinity), &ak, &av, BPF_ANY), "affinity");
}

/* --- the cases ---------------------------------------------------------------- */

static const char CLIENT[] = "192.0.2.100";
static const char NODE[] = "192.0.2.1";
static const char CLIENT6[] = "2001:db8::100";
static const char NODE6[] = "2001:db8::1";

static void nodeport_v4(void)
{
	struct tuple in = { CLIENT, NODE, 40001, 30080 };
	struct tuple reply = { "10.1.0.5", CLIENT, 8080, 40001 };
	__u16 port;

	check(HOOK_XDP, "B22 NodePort TCP/IPv4, local backend: DNAT only, to the stack", &in, &TCP,
	      CLIENT_MAC, XDP_PASS, (struct tuple){ CLIENT, "10.1.0.5", 40001, 8080 }, NULL);
	check(HOOK_TC_EGRESS, "tc egress: a local backend's TCP/IPv4 reply shown as the NodePort",
	      &reply, &TCP, CLIENT_MAC, TC_ACT_OK, (struct tuple){ NODE, CLIENT, 30080, 40001 },
	      NULL);

	in = (struct tuple){ CLIENT, NODE, 40002, 30081 };
	port = check(HOOK_XDP, "B23 NodePort TCP/IPv4, remote backend: DNAT+SNAT, XDP_TX to node 2",
		     &in, &TCP, CLIENT_MAC, XDP_TX, (struct tuple){ NODE, "10.2.0.7", 0, 8080 },
		     NODE2_MAC);
	if (!port)
		return;
	check(HOOK_XDP, "established flow keeps its backend and SNAT port", &in, &TCP, CLIENT_MAC,
	      XDP_TX, (struct tuple){ NODE, "10.2.0.7", port, 8080 }, NODE2_MAC);
	reply = (struct tuple){ "10.2.0.7", NODE, 8080, port };
	check(HOOK_XDP, "B23 reply from the remote backend: reverse NAT, XDP_TX to the client", &reply,
	      &TCP, NODE2_MAC, XDP_TX, (struct tuple){ NODE, CLIENT, 30081, 40002 }, CLIENT_MAC);

	in.sport = 40003;
	check(HOOK_XDP, "IPv4 options kept, DNAT+SNAT checksums right", &in,
	      &(struct shape){ .proto = IPPROTO_TCP, .optlen = 8 }, CLIENT_MAC, XDP_TX,
	      (struct tuple){ NODE, "10.2.0.7", 0, 8080 }, NODE2_MAC);
}

static void udp_v4(void)
{
	struct tuple in = { CLIENT, NODE, 40004, 30082 };
	struct tuple reply;
	__u16 port;

	port = check(HOOK_XDP, "NodePort UDP/IPv4, remote backend: DNAT+SNAT, checksum", &in, &UDP,
		     CLIENT_MAC, XDP_TX, (struct tuple){ NODE, "10.2.0.8", 0, 5353 }, NODE2_MAC);
	reply = (struct tuple){ "10.2.0.8", NODE, 5353, port };
	if (port)
		check(HOOK_XDP, "UDP/IPv4 reply: reverse NAT", &reply, &UDP, NODE2_MAC, XDP_TX,
		      (struct tuple){ NODE, CLIENT, 30082, 40004 }, CLIENT_MAC);
	in.sport = 40005;
	check(HOOK_XDP, "UDP/IPv4 checksum 0 stays 0 through DNAT+SNAT", &in,
	      &(struct shape){ .proto = IPPROTO_UDP, .udp_nocsum = true }, CLIENT_MAC, XDP_TX,
	      (struct tuple){ NODE, "10.2.0.8", 0, 5353 }, NODE2_MAC);
}

static void nodeport_v6(void)
{
	struct tuple in = { CLIENT6, NODE6, 40006, 30080 };
	struct tuple reply = { "2001:db8:1::5", CLIENT6, 8080, 40006 };
	__u16 port;

	check(HOOK_XDP, "B22 NodePort TCP/IPv6, local backend: DNAT only, to the stack", &in, &TCP,
	      CLIENT_MAC, XDP_PASS, (struct tuple){ CLIENT6, "2001:db8:1::5", 40006, 8080 }, NULL);
	check(HOOK_TC_EGRESS, "tc egress: a local backend's TCP/IPv6 reply shown as the NodePort",
	      &reply, &TCP, CLIENT_MAC, TC_ACT_OK, (struct tuple){ NODE6, CLIENT6, 30080, 40006 },
	      NULL);
	in = (struct tuple){ CLIENT6, NODE6, 40007, 30083 };
	port = check(HOOK_XDP, "B23 NodePort UDP/IPv6, remote backend: DNAT+SNAT, XDP_TX", &in, &UDP,
		     CLIENT_MAC, XDP_TX, (struct tuple){ NODE6, "2001:db8:2::7", 0, 53 }, NODE2_MAC);
	reply = (struct tuple){ "2001:db8:2::7", NODE6, 53, port };
	if (port)
		check(HOOK_XDP, "UDP/IPv6 reply: reverse NAT, XDP_TX to the client", &reply, &UDP,
		      NODE2_MAC, XDP_TX, (struct tuple){ NODE6, CLIENT6, 30083, 40007 }, CLIENT_MAC);
}

/* B3: a set too large for its entry is picked from ferry_slots. */
static void large_sets(void)
{
	struct tuple in = { CLIENT, NODE, 40060, 30097 };

	check(HOOK_XDP, "B3 NodePort TCP/IPv4 to a set of 17 (from ferry_slots): DNAT+SNAT, XDP_TX",
	      &in, &TCP, CLIENT_MAC, XDP_TX, (struct tuple){ NODE, "10.2.0.70", 0, 8080 },
	      NODE2_MAC);
	in = (struct tuple){ CLIENT6, NODE6, 40061, 30097 };
	check(HOOK_XDP, "B3 NodePort TCP/IPv6 to a set of 9 (from ferry_slots): DNAT+SNAT, XDP_TX",
	      &in, &TCP, CLIENT_MAC, XDP_TX, (struct tuple){ NODE6, "2001:db8:2::70", 0, 8080 },
	      NODE2_MAC);
}

static void source_ranges(void)
{
	struct tuple in = { CLIENT, "198.51.100.10", 40008, 80 };
	__u64 denied = stat(STAT_NP_SOURCE_DENIED);

	check(HOOK_XDP, "B26 LB IP: a source inside loadBalancerSourceRanges is served", &in, &TCP,
	      CLIENT_MAC, XDP_TX, (struct tuple){ NODE, "10.2.0.9", 0, 8080 }, NODE2_MAC);
	in.src = "192.0.2.101";
	check(HOOK_XDP, "B26 LB IP: a source outside loadBalancerSourceRanges is dropped", &in, &TCP,
	      CLIENT_MAC, XDP_DROP, in, NULL);
	expect_u64("B26 the drop is counted (STAT_NP_SOURCE_DENIED)", stat(STAT_NP_SOURCE_DENIED),
		   denied + 1);
	in = (struct tuple){ "192.0.2.101", NODE, 40009, 30086 };
	check(HOOK_XDP, "B26 the same service's NodePort ignores the source ranges", &in, &TCP,
	      CLIENT_MAC, XDP_TX, (struct tuple){ NODE, "10.2.0.9", 0, 8080 }, NODE2_MAC);
}

static void etp_local(void)
{
	struct tuple in = { CLIENT, NODE, 40010, 30087 };
	__u64 no_local = stat(STAT_NP_NO_LOCAL);

	check(HOOK_XDP, "B23 externalTrafficPolicy=Local: the local set, client address kept", &in,
	      &TCP, CLIENT_MAC, XDP_PASS, (struct tuple){ CLIENT, "10.1.0.11", 40010, 8080 }, NULL);
	in.dport = 30089;
	check(HOOK_XDP, "B16 externalTrafficPolicy=Local without a local endpoint: dropped", &in,
	      &TCP, CLIENT_MAC, XDP_DROP, in, NULL);
	expect_u64("B16 the drop is counted (STAT_NP_NO_LOCAL)", stat(STAT_NP_NO_LOCAL),
		   no_local + 1);
}

static void not_translated(void)
{
	struct tuple in = { CLIENT, NODE, 40011, 30090 };
	__u64 passed = stat(STAT_NP_PASSED);

	__u64 sent = stat(STAT_NP_ICMP_SENT);

	check_icmp(HOOK_XDP, "B14 no backend, TCP/IPv4: ICMP port unreachable back, XDP_TX", &in,
		   &TCP, XDP_TX);
	check_icmp(HOOK_XDP, "B14 no backend, UDP/IPv4 with options: ICMP port unreachable", &in,
		   &(struct shape){ .proto = IPPROTO_UDP, .optlen = 4 }, XDP_TX);
	check_icmp(HOOK_XDP, "B14 no backend, TCP/IPv6: ICMPv6 port unreachable back, XDP_TX",
		   &(struct tuple){ CLIENT6, "2001:db8::1", 40011, 30090 }, &TCP, XDP_TX);
	check_icmp(HOOK_TC_INGRESS, "B14 no backend at tc ingress: ICMP port unreachable, redirect",
		   &in, &UDP, TC_ACT_REDIRECT);
	expect_u64("B14 the replies are counted (STAT_NP_ICMP_SENT)", stat(STAT_NP_ICMP_SENT),
		   sent + 4);
	in.dport = 22;
	check(HOOK_XDP, "a port that is no NodePort goes to the stack untouched", &in, &TCP,
	      CLIENT_MAC, XDP_PASS, in, NULL);
	in = (struct tuple){ CLIENT, "10.96.0.10", 40012, 80 };
	check(HOOK_XDP, "a ClusterIP is not served from outside: untouched", &in, &TCP, CLIENT_MAC,
	      XDP_PASS, in, NULL);
	in = (struct tuple){ CLIENT, NODE, 40013, 30080 };
	check(HOOK_XDP, "an IPv4 fragment of a NodePort flow goes to the stack untouched", &in,
	      &(struct shape){ .proto = IPPROTO_UDP, .frag_off = 0x2000 }, CLIENT_MAC, XDP_PASS, in,
	      NULL);
	expect_u64("the fragment is counted (STAT_NP_PASSED)", stat(STAT_NP_PASSED), passed + 1);
}

/* kubernetes#81775: a client reusing its source port after its backend
 * left must reach a live backend, not the dead one. */
static void backend_gone(void)
{
	const struct be next[] = { { 1202, "10.2.0.21", 8080 } };
	struct tuple in = { CLIENT, NODE, 5555, 30091 };
	__u64 gone = stat(STAT_NP_BACKEND_GONE);
	__u32 dead = 1201;
	struct ct_value v;
	__u16 port;

	port = check(HOOK_XDP, "B12 flow to backend A (before the rolling update)", &in, &TCP,
		     CLIENT_MAC, XDP_TX, (struct tuple){ NODE, "10.2.0.20", 0, 8080 }, NODE2_MAC);
	/* The update: A leaves (its ferry_backends element emptied, as ferryd
	 * does), B arrives under a new revision. */
	bpf_map_update_elem(map_fd(xdp->maps.ferry_backends), &dead, &(struct backend_value){ 0 },
			    BPF_ANY);
	add_svc(NULL, false, 30091, IPPROTO_TCP, SVC_SCOPE_ALL, 12, 2, F_NP, 0, next, 1);
	check(HOOK_XDP, "B12 kubernetes#81775: the same client port lands on live backend B", &in,
	      &TCP, CLIENT_MAC, XDP_TX, (struct tuple){ NODE, "10.2.0.21", 0, 8080 }, NODE2_MAC);
	expect_u64("B12 the move is counted (STAT_NP_BACKEND_GONE)", stat(STAT_NP_BACKEND_GONE),
		   gone + 1);
	if (ct_get(&(struct tuple){ "10.2.0.20", NODE, 8080, port }, IPPROTO_TCP, &v))
		ok("B12 the dead backend's reply entry is gone");
	else
		not_ok("B12 the dead backend's reply entry is gone", "still in ferry_ct");
}

/* B30: the client's remembered backend wins over a random pick. */
static void affinity(void)
{
	char name[96];
	int kept = 0;

	for (int i = 0; i < 8; i++) {
		struct tuple in = { CLIENT, NODE, 41000 + i, 30092 };

		snprintf(name, sizeof(name), "B30 affinity: connection %d goes to the remembered backend",
			 i);
		if (check(HOOK_XDP, name, &in, &TCP, CLIENT_MAC, XDP_TX,
			  (struct tuple){ NODE, "10.2.0.31", 0, 8080 }, NODE2_MAC))
			kept++;
	}
	expect_u64("B30 affinity: all 8 connections kept", kept, 8);
}

static void snat_exhausted(void)
{
	struct tuple in = { CLIENT, NODE, 6001, 30093 };
	__u64 exhausted = stat(STAT_NP_SNAT_EXHAUSTED);

	set_config(SNAT_MIN, SNAT_MIN);  /* one port */
	check(HOOK_XDP, "SNAT with one free port: the first flow takes it", &in, &TCP, CLIENT_MAC,
	      XDP_TX, (struct tuple){ NODE, "10.2.0.50", SNAT_MIN, 8080 }, NODE2_MAC);
	in.sport = 6002;
	check(HOOK_XDP, "SNAT exhausted: a second flow to the same backend is dropped", &in, &TCP,
	      CLIENT_MAC, XDP_DROP, in, NULL);
	expect_u64("SNAT exhaustion is counted (STAT_NP_SNAT_EXHAUSTED)",
		   stat(STAT_NP_SNAT_EXHAUSTED), exhausted + 1);
}

/* A SNAT port held by a flow that ended is taken back by a new flow: TCP 60 s
 * after FIN or RST, UDP after 120 s idle (entries aged by hand). Follows
 * snat_exhausted: flow 6001 holds the only port. */
static void snat_reclaim(void)
{
	const struct shape fin = { .proto = IPPROTO_TCP, .tcp_flags = 0x11 };  /* FIN ACK */
	const struct tuple port_reply = { "10.2.0.50", NODE, 8080, SNAT_MIN };
	struct tuple a = { CLIENT, NODE, 6001, 30093 }, b = { CLIENT, NODE, 6002, 30093 };
	struct ct_value v;

	check(HOOK_XDP, "TCP FIN of a SNATed flow is translated", &a, &fin, CLIENT_MAC, XDP_TX,
	      (struct tuple){ NODE, "10.2.0.50", SNAT_MIN, 8080 }, NODE2_MAC);
	if (!ct_get(&port_reply, IPPROTO_TCP, &v) && (v.flags & CT_FLAG_CLOSED))
		ok("the FIN marks the flow's reply entry closed");
	else
		not_ok("the FIN marks the flow's reply entry closed", "flags 0x%x", v.flags);
	check(HOOK_XDP, "a port closed less than 60 s ago is not taken", &b, &TCP, CLIENT_MAC,
	      XDP_DROP, b, NULL);
	ct_age(&port_reply, IPPROTO_TCP, 61);
	check(HOOK_XDP, "a TCP port closed 60 s ago is taken back by a new flow", &b, &TCP,
	      CLIENT_MAC, XDP_TX, (struct tuple){ NODE, "10.2.0.50", SNAT_MIN, 8080 }, NODE2_MAC);
	if (ct_get(&a, IPPROTO_TCP, &v))
		ok("the old flow's original entry went with its port");
	else
		not_ok("the old flow's original entry went with its port", "still in ferry_ct");

	/* Flow b closes, then its client reuses the tuple (SYN): open again. */
	check(HOOK_XDP, "TCP FIN of the new flow", &b, &fin, CLIENT_MAC, XDP_TX,
	      (struct tuple){ NODE, "10.2.0.50", SNAT_MIN, 8080 }, NODE2_MAC);
	check(HOOK_XDP, "a SYN reusing the closed flow's tuple keeps its port", &b, &TCP, CLIENT_MAC,
	      XDP_TX, (struct tuple){ NODE, "10.2.0.50", SNAT_MIN, 8080 }, NODE2_MAC);
	ct_age(&port_reply, IPPROTO_TCP, 61);
	a.sport = 6003;
	check(HOOK_XDP, "a reopened flow's port is not taken back", &a, &TCP, CLIENT_MAC, XDP_DROP,
	      a, NULL);

	/* UDP: idleness frees the port. */
	set_config(40500, 40500);
	a = (struct tuple){ CLIENT, NODE, 7001, 30082 };
	b = (struct tuple){ CLIENT, NODE, 7002, 30082 };
	check(HOOK_XDP, "UDP, one SNAT port: the first flow takes it", &a, &UDP, CLIENT_MAC, XDP_TX,
	      (struct tuple){ NODE, "10.2.0.8", 40500, 5353 }, NODE2_MAC);
	check(HOOK_XDP, "UDP: a port idle for less than 120 s is not taken", &b, &UDP, CLIENT_MAC,
	      XDP_DROP, b, NULL);
	ct_age(&(struct tuple){ "10.2.0.8", NODE, 5353, 40500 }, IPPROTO_UDP, 121);
	check(HOOK_XDP, "UDP: a port idle for 120 s is taken back by a new flow", &b, &UDP,
	      CLIENT_MAC, XDP_TX, (struct tuple){ NODE, "10.2.0.8", 40500, 5353 }, NODE2_MAC);
	set_config(SNAT_MIN, SNAT_MAX);
}

/* Empties the per-CPU slots in front of ferry_nexthop (fib.h's
 * ferry_nexthop_front), so the next packet reads ferry_nexthop itself. */
static void clear_nexthop_front(void)
{
	struct bpf_map *m = xdp->maps.ferry_nexthop_front;
	size_t size = bpf_map__value_size(m) * (size_t)libbpf_num_possible_cpus();
	void *zeros = calloc(1, size);

	must(zeros ? 0 : -ENOMEM, "memory");
	for (__u32 slot = 0; slot < bpf_map__max_entries(m); slot++)
		must(bpf_map_update_elem(map_fd(m), &slot, zeros, BPF_ANY), "nexthop front");
	free(zeros);
}

/* Writes the next hop ferry_nexthop holds for packets to dst from ifindex
 * (key and value as bpf/lib/fib.h's struct nexthop_key and _value). */
static void set_nexthop(const char *dst, const __u8 *dmac, __u64 expires_ns)
{
	struct { __u32 addr[4]; __u32 ifindex; } k = { .ifindex = ifindex };
	struct { __u64 expires_ns; __s32 rc; __u32 ifindex, mtu; __u8 smac[6], dmac[6]; } v = {
		.expires_ns = expires_ns, .rc = BPF_FIB_LKUP_RET_SUCCESS, .ifindex = ifindex,
		.mtu = 1500 };

	addr16(dst, k.addr);
	memcpy(v.smac, EXT_MAC, 6);
	memcpy(v.dmac, dmac, 6);
	must(bpf_map_update_elem(map_fd(xdp->maps.ferry_nexthop), &k, &v, BPF_ANY), "nexthop");
	clear_nexthop_front();
}

static __u8 nh_dmac[6];

/* The next hop cached for dst, fresh for about a second from now. */
static bool get_nexthop(const char *dst, struct timespec *now)
{
	struct { __u32 addr[4]; __u32 ifindex; } k = { .ifindex = ifindex };
	struct { __u64 expires_ns; __s32 rc; __u32 ifindex, mtu; __u8 smac[6], dmac[6]; } v;
	__u64 t;

	addr16(dst, k.addr);
	if (bpf_map_lookup_elem(map_fd(xdp->maps.ferry_nexthop), &k, &v))
		return false;
	clock_gettime(CLOCK_MONOTONIC_COARSE, now);
	t = now->tv_sec * 1000000000ULL + now->tv_nsec;
	memcpy(nh_dmac, v.dmac, 6);
	return v.rc == BPF_FIB_LKUP_RET_SUCCESS && v.expires_ns > t &&
	       v.expires_ns <= t + 1100000000ULL;
}

/* Known flows take their route from ferry_nexthop while it is fresh
 * (bpf_ktime_get_coarse_ns), from the FIB after. */
static void nexthop_cache(void)
{
	static const __u8 OTHER_MAC[6] = { 0x02, 0, 0, 0, 0, 0x99 };
	struct tuple in = { CLIENT, NODE, 40040, 30081 };
	struct timespec ts;
	__u16 port;

	port = check(HOOK_XDP, "a new flow's route comes from the FIB", &in, &TCP, CLIENT_MAC, XDP_TX,
		     (struct tuple){ NODE, "10.2.0.7", 0, 8080 }, NODE2_MAC);
	if (!port)
		return;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	set_nexthop("10.2.0.7", OTHER_MAC, (ts.tv_sec + 10) * 1000000000ULL);
	check(HOOK_XDP, "a known flow takes a fresh cached next hop", &in, &TCP, CLIENT_MAC, XDP_TX,
	      (struct tuple){ NODE, "10.2.0.7", port, 8080 }, OTHER_MAC);
	set_nexthop("10.2.0.7", OTHER_MAC, 1);
	check(HOOK_XDP, "an expired cached next hop is looked up again in the FIB", &in, &TCP,
	      CLIENT_MAC, XDP_TX, (struct tuple){ NODE, "10.2.0.7", port, 8080 }, NODE2_MAC);
	if (get_nexthop("10.2.0.7", &ts) && !memcmp(nh_dmac, NODE2_MAC, 6))
		ok("the FIB's answer is cached again, for a second");
	else
		not_ok("the FIB's answer is cached again, for a second", "no fresh entry to node 2");
}

/* An ICMP error frame from src (MAC smac) to dst: type, code, its 4 bytes
 * after the checksum (an MTU), quoting qlen bytes of the IP packet q. */
static size_t build_icmp_err(__u8 *f, const char *src, const char *dst, const __u8 *smac,
			     __u8 type, __u8 code, __u32 rest, const __u8 *q, size_t qlen)
{
	bool v6 = is_v6(src);
	size_t l3 = ETH_HLEN, l4 = l3 + (v6 ? 40 : 20), len = l4 + 8 + qlen;
	__u32 sum;

	memset(f, 0, PKT_MAX);
	memcpy(f, EXT_MAC, 6);
	memcpy(f + 6, smac, 6);
	put16(f + 12, v6 ? ETH_P_IPV6 : ETH_P_IP);
	if (v6) {
		f[l3] = 0x60;
		put16(f + l3 + 4, len - l4);
		f[l3 + 6] = IPPROTO_ICMPV6;
		f[l3 + 7] = 64;
		put_addr(f + l3 + 8, src);
		put_addr(f + l3 + 24, dst);
	} else {
		f[l3] = 0x45;
		put16(f + l3 + 2, len - l3);
		f[l3 + 8] = 64;
		f[l3 + 9] = IPPROTO_ICMP;
		put_addr(f + l3 + 12, src);
		put_addr(f + l3 + 16, dst);
		put16(f + l3 + 10, ~fold(sum16(f + l3, 20, 0)));
	}
	f[l4] = type;
	f[l4 + 1] = code;
	put16(f + l4 + 4, rest >> 16);
	put16(f + l4 + 6, rest & 0xffff);
	memcpy(f + l4 + 8, q, qlen);
	sum = v6 ? sum16(f + l3 + 8, 32, IPPROTO_ICMPV6 + (__u32)(len - l4)) : 0;
	put16(f + l4 + 2, ~fold(sum16(f + l4, len - l4, sum)));
	return len;
}

/* The quote of frame f (its IP header and 8 bytes), rewritten to tuple t
 * with its IP header checksum, its L4 bytes (a UDP checksum) untouched.
 * Returns its length. */
static size_t quote_of(const __u8 *f, size_t len, const struct tuple *t, __u8 *q)
{
	struct layout l = layout_of(f, len);
	size_t qlen = l.l4 - l.l3 + 8;

	memcpy(q, f + l.l3, qlen);
	if (!t)
		return qlen;
	put_addr(q + (l.v6 ? 8 : 12), t->src);
	put_addr(q + (l.v6 ? 24 : 16), t->dst);
	put16(q + l.l4 - l.l3, t->sport);
	put16(q + l.l4 - l.l3 + 2, t->dport);
	if (!l.v6) {
		q[10] = q[11] = 0;
		put16(q + 10, ~fold(sum16(q, l.l4 - l.l3, 0)));
	}
	return qlen;
}

/* An ICMP error from src to dst about the packet sent as tuple sent (a
 * flow's translated packet) comes out of hook h from out_src to out_dst
 * about that packet as its peer knows it (tuple known); forwarded to dmac,
 * or to the stack (dmac NULL). */
static void check_icmp_err(enum hook h, const char *name, const char *src, const char *dst,
			   __u8 type,
			   __u8 code, const struct tuple *sent, __u8 proto, const char *out_src,
			   const char *out_dst, const struct tuple *known, const __u8 *dmac)
{
	__u8 pf[PKT_MAX], q[PKT_MAX], f[PKT_MAX], w[PKT_MAX];
	size_t plen = build(pf, sent, &(struct shape){ .proto = proto }, NODE2_MAC);
	size_t qlen = quote_of(pf, plen, NULL, q);
	size_t len = build_icmp_err(f, src, dst, NODE2_MAC, type, code, 1400, q, qlen);
	struct run r;

	quote_of(pf, plen, known, q);
	build_icmp_err(w, out_src, out_dst, NODE2_MAC, type, code, 1400, q, qlen);
	if (dmac) {
		memcpy(w, dmac, 6);
		memcpy(w + 6, EXT_MAC, 6);
		if (is_v6(src)) {
			w[ETH_HLEN + 7]--;
		} else {
			w[ETH_HLEN + 8]--;
			w[ETH_HLEN + 10] = w[ETH_HLEN + 11] = 0;
			put16(w + ETH_HLEN + 10, ~fold(sum16(w + ETH_HLEN, 20, 0)));
		}
	}
	run_hook(h, f, len, &r);
	if (h == HOOK_XDP)
		expect_frame(name, &r, dmac ? XDP_TX : XDP_PASS, w, len);
	else
		expect_frame(name, &r, dmac ? TC_ACT_REDIRECT : TC_ACT_OK, w, len);
}

/* ICMP errors about translated flows are translated as their flow is
 * (PMTU discovery, a remote backend's port unreachable). */
static void icmp_errors(void)
{
	struct tuple in = { CLIENT, NODE, 40050, 30081 };
	__u16 port;

	/* A download from a local backend: the client's side says too big. */
	check(HOOK_XDP, "ICMP: a flow to a local backend", &(struct tuple){ CLIENT, NODE, 40052, 30080 },
	      &TCP, CLIENT_MAC, XDP_PASS, (struct tuple){ CLIENT, "10.1.0.5", 40052, 8080 }, NULL);
	check_icmp_err(HOOK_XDP, "ICMP fragmentation needed about a local backend's reply goes to the pod",
		       "192.0.2.254", NODE, 3, 4, &(struct tuple){ NODE, CLIENT, 30080, 40052 },
		       IPPROTO_TCP, "192.0.2.254", "10.1.0.5",
		       &(struct tuple){ "10.1.0.5", CLIENT, 8080, 40052 }, NULL);
	/* A flow to a remote backend (SNAT): the path to node 2 says too big. */
	port = check(HOOK_XDP, "ICMP: a flow to a remote backend", &in, &TCP, CLIENT_MAC, XDP_TX,
		     (struct tuple){ NODE, "10.2.0.7", 0, 8080 }, NODE2_MAC);
	if (!port)
		return;
	check_icmp_err(HOOK_XDP, "ICMP fragmentation needed on the way to node 2 goes back to the client",
		       "192.0.2.2", NODE, 3, 4, &(struct tuple){ NODE, "10.2.0.7", port, 8080 },
		       IPPROTO_TCP, "192.0.2.2", CLIENT, &in, CLIENT_MAC);
	check_icmp_err(HOOK_XDP, "ICMP port unreachable from the remote backend comes from the frontend",
		       "10.2.0.7", NODE, 3, 3, &(struct tuple){ NODE, "10.2.0.7", port, 8080 },
		       IPPROTO_TCP, NODE, CLIENT, &in, CLIENT_MAC);
	check_icmp_err(HOOK_XDP, "an ICMP error about no known flow goes to the stack untouched",
		       "192.0.2.2", NODE, 3, 4, &(struct tuple){ NODE, "10.2.0.7", port + 1, 8081 },
		       IPPROTO_TCP, "192.0.2.2", NODE, &(struct tuple){ NODE, "10.2.0.7", port + 1, 8081 },
		       NULL);
	/* IPv6 UDP to a remote backend: packet too big. */
	in = (struct tuple){ CLIENT6, NODE6, 40051, 30083 };
	port = check(HOOK_XDP, "ICMPv6: a UDP flow to a remote backend", &in, &UDP, CLIENT_MAC, XDP_TX,
		     (struct tuple){ NODE6, "2001:db8:2::7", 0, 53 }, NODE2_MAC);
	if (port)
		check_icmp_err(HOOK_XDP, "ICMPv6 packet too big on the way to node 2 goes back to the client",
			       "2001:db8::2", NODE6, 2, 0,
			       &(struct tuple){ NODE6, "2001:db8:2::7", port, 53 }, IPPROTO_UDP,
			       "2001:db8::2", CLIENT6, &in, CLIENT_MAC);

	/* tc: a local pod's own error leaves through egress; ingress as XDP. */
	check(HOOK_TC_INGRESS, "tc ICMP: a flow to a local backend",
	      &(struct tuple){ CLIENT, NODE, 40053, 30080 }, &TCP, CLIENT_MAC, TC_ACT_OK,
	      (struct tuple){ CLIENT, "10.1.0.5", 40053, 8080 }, NULL);
	check_icmp_err(HOOK_TC_EGRESS, "tc egress: a local pod's port unreachable comes from the frontend",
		       "10.1.0.5", CLIENT, 3, 3, &(struct tuple){ CLIENT, "10.1.0.5", 40053, 8080 },
		       IPPROTO_TCP, NODE, CLIENT, &(struct tuple){ CLIENT, NODE, 40053, 30080 }, NULL);
	/* The node's own error about a packet to a local pod (its veth's MTU
	 * is smaller): the client must find its socket in the quote. */
	check_icmp_err(HOOK_TC_EGRESS, "tc egress: the node's fragmentation needed about a local "
		       "backend's flow quotes what the client sent", NODE, CLIENT, 3, 4,
		       &(struct tuple){ CLIENT, "10.1.0.5", 40053, 8080 }, IPPROTO_TCP, NODE, CLIENT,
		       &(struct tuple){ CLIENT, NODE, 40053, 30080 }, NULL);
	check_icmp_err(HOOK_TC_EGRESS, "tc egress: the node's ICMPv6 packet too big about a local "
		       "backend's flow quotes what the client sent", NODE6, CLIENT6, 2, 0,
		       &(struct tuple){ CLIENT6, "2001:db8:1::5", 40006, 8080 }, IPPROTO_TCP, NODE6,
		       CLIENT6, &(struct tuple){ CLIENT6, NODE6, 40006, 30080 }, NULL);
	in = (struct tuple){ CLIENT, NODE, 40054, 30081 };
	port = check(HOOK_TC_INGRESS, "tc ICMP: a flow to a remote backend", &in, &TCP, CLIENT_MAC,
		     TC_ACT_REDIRECT, (struct tuple){ NODE, "10.2.0.7", 0, 8080 }, NODE2_MAC);
	if (port)
		check_icmp_err(HOOK_TC_INGRESS,
			       "tc ingress: fragmentation needed on the way to node 2 goes to the client",
			       "192.0.2.2", NODE, 3, 4, &(struct tuple){ NODE, "10.2.0.7", port, 8080 },
			       IPPROTO_TCP, "192.0.2.2", CLIENT, &in, CLIENT_MAC);
	in = (struct tuple){ CLIENT6, NODE6, 40055, 30094 };
	port = check(HOOK_TC_INGRESS, "tc ICMPv6: a flow to a remote backend", &in, &TCP, CLIENT_MAC,
		     TC_ACT_REDIRECT, (struct tuple){ NODE6, "2001:db8:2::9", 0, 8080 }, NODE2_MAC);
	if (port)
		check_icmp_err(HOOK_TC_INGRESS,
			       "tc ingress: ICMPv6 packet too big on the way to node 2 goes to the client",
			       "2001:db8::2", NODE6, 2, 0,
			       &(struct tuple){ NODE6, "2001:db8:2::9", port, 8080 }, IPPROTO_TCP,
			       "2001:db8::2", CLIENT6, &in, CLIENT_MAC);
}

/* B32: SCTP's CRC32c covers the ports; every rewrite recomputes it. */
static void sctp(void)
{
	static const struct shape SCTP = { .proto = IPPROTO_SCTP };
	struct tuple in = { CLIENT, NODE, 40030, 30095 };
	struct tuple reply;
	__u16 port;

	port = check(HOOK_XDP, "B32 NodePort SCTP/IPv4, remote backend: DNAT+SNAT, CRC32c", &in,
		     &SCTP, CLIENT_MAC, XDP_TX, (struct tuple){ NODE, "10.2.0.60", 0, 3868 },
		     NODE2_MAC);
	reply = (struct tuple){ "10.2.0.60", NODE, 3868, port };
	if (port)
		check(HOOK_XDP, "B32 SCTP/IPv4 reply: reverse NAT, CRC32c", &reply, &SCTP, NODE2_MAC,
		      XDP_TX, (struct tuple){ NODE, CLIENT, 30095, 40030 }, CLIENT_MAC);
	in = (struct tuple){ CLIENT6, NODE6, 40031, 30095 };
	check(HOOK_XDP, "B32 NodePort SCTP/IPv6, local backend: DNAT, CRC32c", &in, &SCTP,
	      CLIENT_MAC, XDP_PASS, (struct tuple){ CLIENT6, "2001:db8:1::60", 40031, 3868 }, NULL);
	reply = (struct tuple){ "2001:db8:1::60", CLIENT6, 3868, 40031 };
	check(HOOK_TC_EGRESS, "B32 tc egress: SCTP/IPv6 reply of a local backend, CRC32c", &reply,
	      &SCTP, CLIENT_MAC, TC_ACT_OK, (struct tuple){ NODE6, CLIENT6, 30095, 40031 }, NULL);
	in = (struct tuple){ CLIENT, NODE, 40032, 30095 };
	check(HOOK_TC_INGRESS, "B32 tc ingress: SCTP/IPv4 remote, DNAT+SNAT, CRC32c", &in, &SCTP,
	      CLIENT_MAC, TC_ACT_REDIRECT, (struct tuple){ NODE, "10.2.0.60", 0, 3868 }, NODE2_MAC);
}

/* A packet too long for its route's MTU (packets.sh: 10.2.9.0/24 and
 * 2001:db8:2:9::/64 via node 2 with "mtu lock 1400"; client 192.0.2.102
 * behind a route of MTU 1400) and not to be fragmented (IPv4 DF, IPv6) is
 * answered with fragmentation needed / packet too big and the route's MTU,
 * built from the packet as it came (the client's PMTU discovery must find
 * its socket); the stack's own answer would go to the SNAT address. */
static void check_too_big(enum hook h, const char *name, const struct tuple *in,
			  const struct shape *s, const __u8 *smac, __u32 verdict)
{
	__u8 f[PKT_MAX], w[PKT_MAX];
	size_t len = build(f, in, s, smac);
	struct layout l = layout_of(f, len);
	__u64 big = stat(STAT_NP_TOO_BIG);
	char counted[256];
	struct run r;

	snprintf(counted, sizeof(counted), "%s: counted (STAT_NP_TOO_BIG)", name);
	run_hook(h, f, len, &r);
	if (expect_frame(name, &r, verdict, w, icmp_reply(f, len, l.l4 - l.l3 + 20, 1400, w)))
		expect_u64(counted, stat(STAT_NP_TOO_BIG), big + 1);
}

static void path_mtu(void)
{
	static const __u8 CLIENT2_MAC[6] = { 0x02, 0, 0, 0, 0, 0x66 };
	const struct shape big_df = { .proto = IPPROTO_TCP, .frag_off = 0x4000, .tcp_flags = 0x10,
				      .pad = 1450 - 20 - 20 - 22 };
	const struct shape fits_df = { .proto = IPPROTO_TCP, .frag_off = 0x4000, .tcp_flags = 0x10,
				       .pad = 1400 - 20 - 20 - 22 };
	const struct shape big_udp = { .proto = IPPROTO_UDP, .pad = 1450 - 20 - 8 - 22 };
	const struct shape big6 = { .proto = IPPROTO_TCP, .tcp_flags = 0x10,
				    .pad = 1450 - 40 - 20 - 22 };
	struct tuple in = { CLIENT, NODE, 40060, 30096 };
	__u64 pass = stat(STAT_NP_FIB_PASS);
	__u16 port;

	port = check(HOOK_XDP, "MTU: a TCP flow to a backend behind a route of MTU 1400", &in, &TCP,
		     CLIENT_MAC, XDP_TX, (struct tuple){ NODE, "10.2.9.7", 0, 8080 }, NODE2_MAC);
	if (!port)
		return;
	check_too_big(HOOK_XDP, "MTU: its 1,450-byte IPv4 segment with DF -> ICMP fragmentation "
		      "needed, MTU 1400, from the NodePort to the client, XDP_TX", &in, &big_df,
		      CLIENT_MAC, XDP_TX);
	check(HOOK_XDP, "MTU: a 1,400-byte segment fits the route: translated, XDP_TX", &in,
	      &fits_df, CLIENT_MAC, XDP_TX, (struct tuple){ NODE, "10.2.9.7", port, 8080 },
	      NODE2_MAC);
	check(HOOK_XDP, "MTU: a 3,000-byte segment with DF, longer than the receiving device's MTU "
	      "(merged by GRO, as generic XDP gets one): translated, to the stack to segment", &in,
	      &(struct shape){ .proto = IPPROTO_TCP, .frag_off = 0x4000, .tcp_flags = 0x10,
			       .pad = 3000 - 20 - 20 - 22 },
	      CLIENT_MAC, XDP_PASS, (struct tuple){ NODE, "10.2.9.7", port, 8080 }, NULL);
	in = (struct tuple){ CLIENT, NODE, 40061, 30096 };
	pass = stat(STAT_NP_FIB_PASS);
	check(HOOK_XDP, "MTU: a 1,450-byte UDP/IPv4 datagram without DF: translated, to the stack "
	      "to fragment", &in, &big_udp, CLIENT_MAC, XDP_PASS,
	      (struct tuple){ NODE, "10.2.9.8", 0, 5353 }, NULL);
	expect_u64("MTU: the datagram without DF is counted (STAT_NP_FIB_PASS)",
		   stat(STAT_NP_FIB_PASS), pass + 1);
	in = (struct tuple){ CLIENT6, NODE6, 40062, 30096 };
	check_too_big(HOOK_XDP, "MTU: a 1,450-byte IPv6 packet to a backend behind a route of MTU "
		      "1400 -> ICMPv6 packet too big, MTU 1400, XDP_TX", &in, &big6, CLIENT_MAC,
		      XDP_TX);
	/* tc asks the FIB itself (the cache is shared here, not in ferryd). */
	set_nexthop("10.2.9.7", NODE2_MAC, 1);
	set_nexthop("2001:db8:2:9::7", NODE2_MAC, 1);
	in = (struct tuple){ CLIENT, NODE, 40063, 30096 };
	check_too_big(HOOK_TC_INGRESS, "MTU: tc ingress: the route's MTU (not the device's) -> "
		      "ICMP fragmentation needed, MTU 1400, redirected back", &in, &big_df, CLIENT_MAC,
		      TC_ACT_REDIRECT);
	in = (struct tuple){ CLIENT6, NODE6, 40064, 30096 };
	check_too_big(HOOK_TC_INGRESS, "MTU: tc ingress: IPv6 -> ICMPv6 packet too big, MTU 1400",
		      &in, &big6, CLIENT_MAC, TC_ACT_REDIRECT);

	/* A reply too long for the route back to its client: the backend
	 * learns, from the address it talks to (the SNAT address). */
	in = (struct tuple){ "192.0.2.102", NODE, 40065, 30081 };
	port = check(HOOK_XDP, "MTU: a flow from a client behind a route of MTU 1400", &in, &TCP,
		     CLIENT2_MAC, XDP_TX, (struct tuple){ NODE, "10.2.0.7", 0, 8080 }, NODE2_MAC);
	if (port)
		check_too_big(HOOK_XDP, "MTU: the backend's 1,450-byte reply with DF -> fragmentation "
			      "needed back to the backend, from the SNAT address", &(struct tuple){
			      "10.2.0.7", NODE, 8080, port }, &big_df, NODE2_MAC, XDP_TX);
}

/* A VLAN-tagged frame: passed untranslated and counted (pkt.h parses
 * untagged frames; the VLAN's own device serves it). */
static void vlan(void)
{
	struct tuple in = { CLIENT, NODE, 40070, 30081 };
	__u64 passed = stat(STAT_NP_PASSED);
	__u8 f[PKT_MAX];
	size_t len = build(f, &in, &TCP, CLIENT_MAC);
	struct run r;

	memmove(f + 16, f + 12, len - 12);
	memcpy(f + 12, "\x81\x00\x00\x64", 4);  /* 802.1Q, VLAN 100 */
	len += 4;
	run_xdp(f, len, &r);
	if (expect_frame("an 802.1Q-tagged NodePort frame goes to the stack untouched", &r, XDP_PASS,
			 f, len))
		expect_u64("the tagged frame is counted (STAT_NP_PASSED)", stat(STAT_NP_PASSED),
			   passed + 1);
}

/* B32: a GSO SCTP skb (SCTP GSO from a pod, up to 64 KB: longer than the
 * CRC loop covers) is translated and its CRC left to segmentation, which
 * computes each segment's; not dropped as too long. After sctp(): the IPv6
 * flow to the local backend. */
static void sctp_gso(void)
{
	static const struct shape SCTP = { .proto = IPPROTO_SCTP };
	const char *name = "B32 tc egress: a GSO SCTP/IPv6 reply claiming 20,000 bytes: translated, "
			   "CRC left to segmentation, not dropped";
	struct tuple reply = { "2001:db8:1::60", CLIENT6, 3868, 40031 };
	__u64 too_long = stat(STAT_NP_SCTP_TOO_LONG);
	__u8 f[PKT_MAX], w[PKT_MAX];
	size_t len = build(f, &reply, &SCTP, CLIENT_MAC);
	struct run r;

	put16(f + ETH_HLEN + 4, 20000);
	memcpy(w, f, len);
	put_addr(w + ETH_HLEN + 8, NODE6);
	put16(w + ETH_HLEN + 40, 30095);
	tc_gso_size = 1400;
	run_tc(tc->progs.ferry_tc_egress, f, len, &r);
	tc_gso_size = 0;
	if (expect_frame(name, &r, TC_ACT_OK, w, len))
		expect_u64("B32 the GSO SCTP skb is not counted as too long (STAT_NP_SCTP_TOO_LONG)",
			   stat(STAT_NP_SCTP_TOO_LONG), too_long);
}

/* --xdp=off: tc ingress does what XDP does, with the same decision. */
static void tc_ingress(void)
{
	struct tuple in = { CLIENT, NODE, 40020, 30081 };
	struct tuple reply;
	__u16 port;

	port = check(HOOK_TC_INGRESS, "tc ingress: NodePort TCP/IPv4 remote, DNAT+SNAT, redirect",
		     &in, &TCP, CLIENT_MAC, TC_ACT_REDIRECT,
		     (struct tuple){ NODE, "10.2.0.7", 0, 8080 }, NODE2_MAC);
	reply = (struct tuple){ "10.2.0.7", NODE, 8080, port };
	if (port)
		check(HOOK_TC_INGRESS, "tc ingress: the reply reverse-translated, redirected to the client",
		      &reply, &TCP, NODE2_MAC, TC_ACT_REDIRECT,
		      (struct tuple){ NODE, CLIENT, 30081, 40020 }, CLIENT_MAC);
	in = (struct tuple){ CLIENT, NODE, 40021, 30080 };
	check(HOOK_TC_INGRESS, "tc ingress: NodePort TCP/IPv4 local, DNAT only, to the stack", &in,
	      &TCP, CLIENT_MAC, TC_ACT_OK, (struct tuple){ CLIENT, "10.1.0.5", 40021, 8080 }, NULL);
	in = (struct tuple){ CLIENT, NODE, 40022, 30082 };
	check(HOOK_TC_INGRESS, "tc ingress: UDP/IPv4 checksum 0 stays 0", &in,
	      &(struct shape){ .proto = IPPROTO_UDP, .udp_nocsum = true }, CLIENT_MAC,
	      TC_ACT_REDIRECT, (struct tuple){ NODE, "10.2.0.8", 0, 5353 }, NODE2_MAC);
	in = (struct tuple){ CLIENT6, NODE6, 40023, 30094 };
	port = check(HOOK_TC_INGRESS, "tc ingress: NodePort TCP/IPv6 remote, DNAT+SNAT, redirect",
		     &in, &TCP, CLIENT_MAC, TC_ACT_REDIRECT,
		     (struct tuple){ NODE6, "2001:db8:2::9", 0, 8080 }, NODE2_MAC);
	reply = (struct tuple){ "2001:db8:2::9", NODE6, 8080, port };
	if (port)
		check(HOOK_TC_INGRESS, "tc ingress: the TCP/IPv6 reply reverse-translated", &reply, &TCP,
		      NODE2_MAC, TC_ACT_REDIRECT, (struct tuple){ NODE6, CLIENT6, 30094, 40023 },
		      CLIENT_MAC);
	in = (struct tuple){ CLIENT, NODE, 40024, 30089 };
	check(HOOK_TC_INGRESS, "tc ingress: B16 externalTrafficPolicy=Local without local endpoint",
	      &in, &TCP, CLIENT_MAC, TC_ACT_SHOT, in, NULL);
}

/* --- setup -------------------------------------------------------------------- */

/* The tc object's maps are the XDP object's, as both are the socket LB's
 * in ferryd. */
static void load(void)
{
	struct bpf_map *m;

	xdp = ferry_nodeport_xdp__open();
	if (!xdp) {
		fprintf(stderr, "pkt_test: opening the XDP object failed\n");
		exit(2);
	}
	/* As ferryd does (features_xdp_meta). */
	xdp->rodata->xdp_meta = features_xdp_meta();
	must(ferry_nodeport_xdp__load(xdp), "loading the XDP object");
	tc = ferry_nodeport_tc__open();
	if (!tc) {
		fprintf(stderr, "pkt_test: opening the tc object failed\n");
		exit(2);
	}
	/* The shared maps only: each object keeps its own .rodata. */
	bpf_object__for_each_map(m, tc->obj) {
		struct bpf_map *same = bpf_object__find_map_by_name(xdp->obj, bpf_map__name(m));

		if (same && !bpf_map__is_internal(m))
			must(bpf_map__reuse_fd(m, bpf_map__fd(same)), bpf_map__name(m));
	}
	must(ferry_nodeport_tc__load(tc), "loading the tc object");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: pkt_test IFNAME\n");
		return 2;
	}
	ifindex = if_nametoindex(argv[1]);
	if (!ifindex) {
		fprintf(stderr, "pkt_test: no device %s\n", argv[1]);
		return 2;
	}
	load();
	ok("the XDP and tc programs pass the verifier");
	setup();
	nodeport_v4();
	udp_v4();
	nodeport_v6();
	large_sets();
	source_ranges();
	etp_local();
	not_translated();
	backend_gone();
	affinity();
	snat_exhausted();
	snat_reclaim();
	nexthop_cache();
	icmp_errors();
	sctp();
	sctp_gso();
	path_mtu();
	vlan();
	tc_ingress();
	ferry_nodeport_tc__destroy(tc);
	ferry_nodeport_xdp__destroy(xdp);
	return failures ? 1 : 0;
}
