/* Packet tests of bpf/lib/icmp.h and bpf/lib/crc32c.h through
 * BPF_PROG_TEST_RUN on tests/helpers/pktlib_test.bpf.c: crafted IPv4 and
 * IPv6 TCP, UDP and SCTP frames in, every byte of what comes out checked
 * against a reply or a CRC built here. This kernel has no SCTP module, so
 * PROG_TEST_RUN is the only receiver of the SCTP packets.
 *
 *   pktlib_test     prints "ok - NAME" / "not ok - NAME: REASON" lines;
 *                   exit 1 when a case failed (run by tests/kernel/pktlib.sh)
 *   pktlib_test attach tc|xdp|xdp-native|xdp-pass IFNAME
 *                   attaches the ICMP program to IFNAME (tc ingress, XDP in
 *                   generic or native mode; xdp-pass: an XDP_PASS program,
 *                   native, for a veth peer), prints "attached", and stays
 *                   until SIGTERM or SIGINT (at most 300 s): for the group's
 *                   cases with a real client on the other end of a veth
 *
 * It pins itself to one CPU: the ICMP rate limit is per CPU, and
 * PROG_TEST_RUN runs the program on the caller's CPU.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "ferry/maps.h"
#include "pktlib_test.skel.h"

#define ETH_HLEN 14
#define FRAME_MAX 16384
#define XDP_DROP 1
#define XDP_PASS 2
#define XDP_TX 3
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7
#define SCTP_LIMIT 9216           /* CRC32C_MAX_LEN in bpf/lib/crc32c.h */
#define ICMP_RATE_TEST 3          /* replies per second in the rate cases */

static struct pktlib_test *skel;
static int failures, passes;

static const uint8_t mac_node[6] = {0x02, 0, 0, 0, 0, 0x01};
static const uint8_t mac_client[6] = {0x02, 0, 0, 0, 0, 0x02};
static const char *v4_client = "192.0.2.10", *v4_frontend = "198.51.100.7";
static const char *v6_client = "2001:db8::10", *v6_frontend = "2001:db8:1::7";

static void ok(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("ok - ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	passes++;
}

static void not_ok(const char *name, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("not ok - %s: ", name);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	failures++;
}

/* --- reference implementations ------------------------------------------ */

/* The Internet checksum's folded sum (RFC 1071) of buf, added to sum. */
static uint32_t sum16(const uint8_t *buf, size_t len, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)buf[i] << 8 | buf[i + 1];
	if (len & 1)
		sum += (uint32_t)buf[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint16_t pseudo6_sum(const uint8_t *ip6, uint32_t len, uint8_t nh, const uint8_t *l4)
{
	uint32_t sum = sum16(ip6 + 8, 32, 0);

	sum += (len >> 16) + (len & 0xffff) + nh;
	return fold(sum16(l4, len, sum));
}

/* Bitwise CRC32c (reflected 0x82f63b78), no table: the reference. */
static uint32_t crc32c_ref(const uint8_t *buf, size_t len)
{
	uint32_t crc = ~0u;
	size_t i;
	int k;

	for (i = 0; i < len; i++) {
		crc ^= buf[i];
		for (k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78 : crc >> 1;
	}
	return ~crc;
}

/* The SCTP checksum as the packet carries it: the CRC with the field as
 * zero, least significant byte first. */
static void sctp_csum_ref(uint8_t *sctp, size_t len)
{
	uint32_t crc;

	memset(sctp + 8, 0, 4);
	crc = crc32c_ref(sctp, len);
	sctp[8] = crc;
	sctp[9] = crc >> 8;
	sctp[10] = crc >> 16;
	sctp[11] = crc >> 24;
}

/* --- frames --------------------------------------------------------------- */

struct frame {
	uint8_t b[FRAME_MAX];
	size_t len;
	size_t l3, l4;     /* offsets */
	int v6;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static uint32_t rng = 12345;

static uint8_t rnd8(void)
{
	rng = rng * 1103515245 + 12345;
	return rng >> 16;
}

/* Ethernet, IPv4 (with 4 bytes of options when opts) or IPv6, then an L4
 * header of proto and l4_len bytes in all (header and random payload), from
 * the client to the frontend. L4 checksums are left as they are: nothing
 * checks them but the SCTP cases, which set their own. */
static void build(struct frame *f, int v6, uint8_t proto, size_t l4_len, int opts)
{
	uint8_t *ip, *l4;
	size_t i, ihl = opts ? 24 : 20;

	memset(f, 0, sizeof(*f));
	f->v6 = v6;
	memcpy(f->b, mac_node, 6);
	memcpy(f->b + 6, mac_client, 6);
	put16(f->b + 12, v6 ? 0x86dd : 0x0800);
	f->l3 = ETH_HLEN;
	ip = f->b + f->l3;
	if (v6) {
		ip[0] = 0x60;
		ip[1] = 0x0a;  /* traffic class and flow label: quoted as they are */
		ip[3] = 0x42;
		put16(ip + 4, l4_len);
		ip[6] = proto;
		ip[7] = 63;
		inet_pton(AF_INET6, v6_client, ip + 8);
		inet_pton(AF_INET6, v6_frontend, ip + 24);
		f->l4 = f->l3 + 40;
	} else {
		ip[0] = 0x40 | ihl / 4;
		put16(ip + 2, ihl + l4_len);
		put16(ip + 4, 0x1234);
		put16(ip + 6, 0x4000);
		ip[8] = 63;
		ip[9] = proto;
		inet_pton(AF_INET, v4_client, ip + 12);
		inet_pton(AF_INET, v4_frontend, ip + 16);
		if (opts)
			memcpy(ip + 20, "\x01\x01\x01\x00", 4); /* NOP NOP NOP EOL */
		put16(ip + 10, fold(sum16(ip, ihl, 0)));
		f->l4 = f->l3 + ihl;
	}
	l4 = f->b + f->l4;
	for (i = 0; i < l4_len; i++)
		l4[i] = rnd8();
	put16(l4, 40000);      /* source port */
	put16(l4 + 2, 30080);  /* destination port: the frontend's */
	if (proto == IPPROTO_UDP)
		put16(l4 + 4, l4_len);
	if (proto == IPPROTO_TCP)
		l4[12] = 5 << 4, l4[13] = 0x02; /* SYN */
	if (proto == IPPROTO_SCTP)
		sctp_csum_ref(l4, l4_len);
	f->len = f->l4 + l4_len;
}

/* An 802.1Q tag (VLAN 100) after the Ethernet addresses. */
static void tag_vlan(struct frame *f)
{
	memmove(f->b + 16, f->b + 12, f->len - 12);
	memcpy(f->b + 12, "\x81\x00\x00\x64", 4);
	f->l3 += 4;
	f->l4 += 4;
	f->len += 4;
}

/* The reply icmp.h must make of f, built here from the RFCs: port
 * unreachable, or too big for the MTU the ICMP programs are set to. */
static void expect_reply(const struct frame *f, struct frame *r)
{
	uint32_t mtu = skel->bss->pkt_icmp_mtu;
	const uint8_t *oip = f->b + f->l3;
	/* The quote: the IP header and up to 20 bytes of what its length
	 * says follows (never the Ethernet padding). */
	size_t l4 = f->v6 ? (size_t)(oip[4] << 8 | oip[5]) : (size_t)(oip[2] << 8 | oip[3]) - (f->l4 - f->l3);
	size_t q = f->l4 - f->l3 + (l4 < 20 ? l4 : 20);
	uint8_t *ip = r->b + f->l3, *icmp;

	memset(r, 0, sizeof(*r));
	r->l3 = f->l3;
	memcpy(r->b, f->b + 6, 6);
	memcpy(r->b + 6, f->b, 6);
	memcpy(r->b + 12, f->b + 12, f->l3 - 12);  /* tags and ethertype as they were */
	if (f->v6) {
		ip[0] = 0x60;
		put16(ip + 4, 8 + q);
		ip[6] = 58;
		ip[7] = 64;
		memcpy(ip + 8, oip + 24, 16);
		memcpy(ip + 24, oip + 8, 16);
		icmp = ip + 40;
		icmp[0] = mtu ? 2 : 1;  /* packet too big (RFC 4443 3.2), unreachable */
		icmp[1] = mtu ? 0 : 4;  /* port unreachable */
		put16(icmp + 4, mtu >> 16);
		put16(icmp + 6, mtu);
		memcpy(icmp + 8, oip, q);
		put16(icmp + 2, pseudo6_sum(ip, 8 + q, 58, icmp));
	} else {
		ip[0] = 0x45;
		ip[1] = 0xc0;
		put16(ip + 2, 28 + q);
		ip[8] = 64;
		ip[9] = 1;
		memcpy(ip + 12, oip + 16, 4);
		memcpy(ip + 16, oip + 12, 4);
		put16(ip + 10, fold(sum16(ip, 20, 0)));
		icmp = ip + 20;
		icmp[0] = 3;
		icmp[1] = mtu ? 4 : 3;  /* fragmentation needed (RFC 1191), port unreachable */
		put16(icmp + 6, mtu);   /* next-hop MTU */
		memcpy(icmp + 8, oip, q);
		put16(icmp + 2, fold(sum16(icmp, 8 + q, 0)));
	}
	r->len = icmp + 8 + q - r->b;
}

/* --- running -------------------------------------------------------------- */

/* One run of prog on in; the result into out. Returns the program's
 * verdict, or -errno. */
static int run(struct bpf_program *prog, const struct frame *in, struct frame *out)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in->b, .data_size_in = in->len,
		    .data_out = out->b, .data_size_out = sizeof(out->b), .repeat = 1);
	int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &o);

	if (err)
		return -errno;
	out->len = o.data_size_out;
	return o.retval;
}

static uint64_t stat_sum(enum stat_index idx)
{
	int n = libbpf_num_possible_cpus(), i;
	struct stat_value v[n];
	uint32_t key = idx;
	uint64_t sum = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.ferry_stats), &key, v))
		return 0;
	for (i = 0; i < n; i++)
		sum += v[i].count;
	return sum;
}

static int set_icmp_rate(uint32_t per_sec)
{
	struct dp_config cfg = {.icmp_per_sec = per_sec};
	uint32_t zero = 0;

	return bpf_map_update_elem(bpf_map__fd(skel->maps.ferry_config), &zero, &cfg, 0);
}

/* A full bucket on every CPU: the next ICMP_RATE_TEST replies pass. */
static int reset_bucket(void)
{
	int n = libbpf_num_possible_cpus();
	uint64_t v[2 * n];
	uint32_t zero = 0;

	memset(v, 0, sizeof(v));
	return bpf_map_update_elem(bpf_map__fd(skel->maps.ferry_icmp_bucket), &zero, v, 0);
}

static const char *field_at(const struct frame *r, size_t off)
{
	size_t ip = r->l3, icmp = ip + (r->v6 ? 40 : 20);

	if (off < 12)
		return "Ethernet addresses";
	if (off < ip)
		return "VLAN tag or ethertype";
	if (r->v6)
		return off < ip + 8 ? "IPv6 header fields" : off < icmp ? "IPv6 addresses"
		       : off < icmp + 2 ? "ICMPv6 type/code" : off < icmp + 4 ? "ICMPv6 checksum"
		       : off < icmp + 8 ? "ICMPv6 unused or MTU" : "quote";
	return off == ip + 10 || off == ip + 11 ? "IPv4 checksum" : off < ip + 12 ? "IPv4 header fields"
	       : off < icmp ? "IPv4 addresses" : off < icmp + 2 ? "ICMP type/code"
	       : off < icmp + 4 ? "ICMP checksum" : off < icmp + 8 ? "ICMP unused or MTU" : "quote";
}

/* Checks the reply against the expected one byte by byte, and its
 * checksums on their own (a reply whose every byte matched a wrong
 * expectation would still fail here). */
static void check_reply(const char *name, const struct frame *in, const struct frame *out)
{
	struct frame want;
	const uint8_t *ip = out->b + in->l3, *icmp;
	size_t i;

	expect_reply(in, &want);
	want.v6 = in->v6;
	if (out->len != want.len) {
		not_ok(name, "reply is %zu bytes, want %zu", out->len, want.len);
		return;
	}
	for (i = 0; i < want.len; i++) {
		if (out->b[i] != want.b[i]) {
			not_ok(name, "%s: byte %zu is 0x%02x, want 0x%02x", field_at(&want, i), i,
			       out->b[i], want.b[i]);
			return;
		}
	}
	icmp = ip + (in->v6 ? 40 : 20);
	if (!in->v6 && fold(sum16(ip, 20, 0)) != 0) {
		not_ok(name, "IPv4 header checksum does not verify");
		return;
	}
	if (in->v6 ? pseudo6_sum(ip, out->len - (icmp - out->b), 58, icmp) != 0
		   : fold(sum16(icmp, out->len - (icmp - out->b), 0)) != 0) {
		not_ok(name, "ICMP checksum does not verify");
		return;
	}
	ok("%s", name);
}

static const char *proto_name(uint8_t p)
{
	return p == IPPROTO_TCP ? "TCP" : p == IPPROTO_UDP ? "UDP" : "SCTP";
}

/* B14: every family, protocol and hook gets its port unreachable. */
static void test_icmp_replies(void)
{
	static const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP};
	struct frame in, out;
	char name[160];
	int v6, p, tc, rc;

	for (tc = 0; tc < 2; tc++) {
		struct bpf_program *prog = tc ? skel->progs.pkt_icmp_tc : skel->progs.pkt_icmp_xdp;
		int want = tc ? TC_ACT_REDIRECT : XDP_TX;

		for (v6 = 0; v6 < 2; v6++) {
			for (p = 0; p < 3; p++) {
				uint64_t sent = stat_sum(STAT_NP_ICMP_SENT);

				build(&in, v6, protos[p], protos[p] == IPPROTO_UDP ? 8 + 100 : 200, 0);
				snprintf(name, sizeof(name), "B14 %s: %s %s to a frontend without backend -> "
					 "%s port unreachable, every field and checksum", tc ? "tc" : "XDP",
					 v6 ? "IPv6" : "IPv4", proto_name(protos[p]), v6 ? "ICMPv6" : "ICMP");
				rc = run(prog, &in, &out);
				if (rc != want) {
					not_ok(name, "verdict %d, want %d", rc, want);
					continue;
				}
				if (stat_sum(STAT_NP_ICMP_SENT) != sent + 1) {
					not_ok(name, "STAT_NP_ICMP_SENT did not count the reply");
					continue;
				}
				check_reply(name, &in, &out);
			}
		}
		/* IPv4 options: quoted whole, the reply's own header has none. */
		build(&in, 0, IPPROTO_TCP, 40, 1);
		snprintf(name, sizeof(name), "B14 %s: IPv4 TCP with IP options -> the quote holds "
			 "the 24-byte header and 20 bytes", tc ? "tc" : "XDP");
		rc = run(prog, &in, &out);
		if (rc != want)
			not_ok(name, "verdict %d, want %d", rc, want);
		else
			check_reply(name, &in, &out);
		/* The shortest packet the caller may pass: UDP header alone. */
		build(&in, 1, IPPROTO_UDP, 8, 0);
		snprintf(name, sizeof(name), "B14 %s: IPv6 UDP, header only (nothing to cut)",
			 tc ? "tc" : "XDP");
		rc = run(prog, &in, &out);
		if (rc != want)
			not_ok(name, "verdict %d, want %d", rc, want);
		else
			check_reply(name, &in, &out);
		/* XDP only: a VLAN tag stays where it was (tc never sees one). */
		if (!tc) {
			build(&in, 0, IPPROTO_TCP, 40, 0);
			tag_vlan(&in);
			snprintf(name, sizeof(name), "B14 XDP: VLAN-tagged IPv4 TCP -> the reply keeps "
				 "the tag (l3_off 18)");
			rc = run(prog, &in, &out);
			if (rc != want)
				not_ok(name, "verdict %d, want %d", rc, want);
			else
				check_reply(name, &in, &out);
		}
		/* Ethernet pads a short frame to 60 bytes: not part of the quote. */
		build(&in, 0, IPPROTO_UDP, 12, 0);
		in.len = 60;
		snprintf(name, sizeof(name), "B14 %s: IPv4 UDP in a padded 60-byte frame -> the quote "
			 "ends where the IP length says", tc ? "tc" : "XDP");
		rc = run(prog, &in, &out);
		if (rc != want)
			not_ok(name, "verdict %d, want %d", rc, want);
		else
			check_reply(name, &in, &out);
	}
}

/* Too long for the route (lib/icmp.h's too-big reply): an IPv4 packet with
 * DF gets fragmentation needed with the next-hop MTU, an IPv6 one packet
 * too big with the MTU, each quoting the packet as it came; counted apart
 * from the port unreachables; held back by the same rate limit. */
static void test_icmp_too_big(int tc)
{
	static const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_UDP};
	struct bpf_program *prog = tc ? skel->progs.pkt_icmp_tc : skel->progs.pkt_icmp_xdp;
	int want = tc ? TC_ACT_REDIRECT : XDP_TX, drop = tc ? TC_ACT_SHOT : XDP_DROP;
	const char *hook = tc ? "tc" : "XDP";
	uint64_t sent, big, limited;
	struct frame in, out;
	char name[200];
	int v6, p, rc;

	skel->bss->pkt_icmp_mtu = 1280;
	if (set_icmp_rate(1000000) || reset_bucket())
		not_ok("too big: setup", "map update: %s", strerror(errno));
	for (v6 = 0; v6 < 2; v6++) {
		for (p = 0; p < 2; p++) {
			build(&in, v6, protos[p], 1400, 0);
			snprintf(name, sizeof(name), "%s: %s %s of %zu bytes, too long for an MTU of 1280 "
				 "-> %s with MTU 1280, every field and checksum; STAT_NP_TOO_BIG counted",
				 hook, v6 ? "IPv6" : "IPv4 (DF)", proto_name(protos[p]), in.len - in.l3,
				 v6 ? "ICMPv6 packet too big" : "ICMP fragmentation needed");
			sent = stat_sum(STAT_NP_ICMP_SENT);
			big = stat_sum(STAT_NP_TOO_BIG);
			rc = run(prog, &in, &out);
			if (rc != want)
				not_ok(name, "verdict %d, want %d", rc, want);
			else if (stat_sum(STAT_NP_TOO_BIG) != big + 1 || stat_sum(STAT_NP_ICMP_SENT) != sent)
				not_ok(name, "counters: too big +%llu, port unreachable +%llu, want +1 and +0",
				       (unsigned long long)(stat_sum(STAT_NP_TOO_BIG) - big),
				       (unsigned long long)(stat_sum(STAT_NP_ICMP_SENT) - sent));
			else
				check_reply(name, &in, &out);
		}
	}
	snprintf(name, sizeof(name), "%s: icmp_per_sec=0 holds back the too-big reply too, counted "
		 "as limited", hook);
	build(&in, 0, IPPROTO_TCP, 1400, 0);
	limited = stat_sum(STAT_NP_ICMP_LIMITED);
	if (set_icmp_rate(0) || reset_bucket())
		not_ok(name, "map update: %s", strerror(errno));
	else if ((rc = run(prog, &in, &out)) != drop)
		not_ok(name, "verdict %d, want %d", rc, drop);
	else if (stat_sum(STAT_NP_ICMP_LIMITED) != limited + 1)
		not_ok(name, "STAT_NP_ICMP_LIMITED did not count it");
	else
		ok("%s", name);
	set_icmp_rate(1000000);
	skel->bss->pkt_icmp_mtu = 0;
}

/* RFC 1122 3.2.2: no error to a link-layer group address or a source that
 * is no single host; dropped and counted (at a rate that would let every
 * reply pass), and before it takes a token (at one reply a second, the
 * valid packet after them all still gets its reply). */
static void test_icmp_no_reply(int tc)
{
	static const struct {
		int v6;
		const char *src;      /* NULL: a normal source, to a group MAC */
		const char *dmac;
	} bad[] = {
		{0, "0.0.0.0", NULL}, {0, "127.0.0.1", NULL}, {0, "224.0.0.1", NULL},
		{0, "255.255.255.255", NULL}, {0, "240.0.0.1", NULL},
		{1, "::", NULL}, {1, "::1", NULL}, {1, "ff02::1", NULL},
		{0, NULL, "\xff\xff\xff\xff\xff\xff"}, {1, NULL, "\x33\x33\x00\x00\x00\x01"},
	};
	struct bpf_program *prog = tc ? skel->progs.pkt_icmp_tc : skel->progs.pkt_icmp_xdp;
	int want = tc ? TC_ACT_REDIRECT : XDP_TX, drop = tc ? TC_ACT_SHOT : XDP_DROP;
	struct frame in, out;
	char name[200];
	size_t i;
	int rc;

	struct frame bogus[sizeof(bad) / sizeof(bad[0])];

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		build(&bogus[i], bad[i].v6, IPPROTO_UDP, 20, 0);
		if (bad[i].src)
			inet_pton(bad[i].v6 ? AF_INET6 : AF_INET, bad[i].src,
				  bogus[i].b + bogus[i].l3 + (bad[i].v6 ? 8 : 12));
		else
			memcpy(bogus[i].b, bad[i].dmac, 6);
	}
	if (set_icmp_rate(1000000) || reset_bucket()) {
		not_ok("setup", "map update: %s", strerror(errno));
		return;
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t sent = stat_sum(STAT_NP_ICMP_SENT), limited = stat_sum(STAT_NP_ICMP_LIMITED);

		in = bogus[i];
		snprintf(name, sizeof(name), "RFC 1122 %s: no port unreachable %s %s: dropped, counted "
			 "with the limited ones", tc ? "tc" : "XDP", bad[i].src ? "from" : "to MAC",
			 bad[i].src ? bad[i].src : bad[i].v6 ? "33:33:00:00:00:01" : "ff:ff:ff:ff:ff:ff");
		rc = run(prog, &in, &out);
		if (rc != drop)
			not_ok(name, "verdict %d, want %d", rc, drop);
		else if (stat_sum(STAT_NP_ICMP_SENT) != sent || stat_sum(STAT_NP_ICMP_LIMITED) != limited + 1)
			not_ok(name, "counters: sent +%llu, limited +%llu, want +0 and +1",
			       (unsigned long long)(stat_sum(STAT_NP_ICMP_SENT) - sent),
			       (unsigned long long)(stat_sum(STAT_NP_ICMP_LIMITED) - limited));
		else
			ok("%s", name);
	}
	snprintf(name, sizeof(name), "RFC 1122 %s: those take no token: at icmp_per_sec=1, after "
		 "all of them, a valid packet gets its reply", tc ? "tc" : "XDP");
	if (set_icmp_rate(1) || reset_bucket()) {
		not_ok(name, "map update: %s", strerror(errno));
		return;
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		run(prog, &bogus[i], &out);
	build(&in, 0, IPPROTO_UDP, 20, 0);
	rc = run(prog, &in, &out);
	if (rc != want)
		not_ok(name, "verdict %d, want %d", rc, want);
	else
		check_reply(name, &in, &out);
	set_icmp_rate(1000000);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ICMP_RATE_TEST replies pass at once, the next one is held back (and
 * counted), and once the bucket has refilled a reply passes again. The
 * burst must run within one token's refill time (1/rate s) to be a fair
 * test; a burst that took longer (a busy machine) is tried again. */
static void test_icmp_rate(int tc)
{
	struct bpf_program *prog = tc ? skel->progs.pkt_icmp_tc : skel->progs.pkt_icmp_xdp;
	int want = tc ? TC_ACT_REDIRECT : XDP_TX, drop = tc ? TC_ACT_SHOT : XDP_DROP;
	const char *hook = tc ? "tc" : "XDP";
	struct frame in, out;
	char name[160];
	int try, i, rc = 0, verdicts[ICMP_RATE_TEST + 1];
	uint64_t sent, limited;
	double t0, t1;

	build(&in, 0, IPPROTO_UDP, 20, 0);
	snprintf(name, sizeof(name), "%s: icmp_per_sec=%d: %d replies pass, reply %d within the "
		 "second is suppressed and counted", hook, ICMP_RATE_TEST, ICMP_RATE_TEST,
		 ICMP_RATE_TEST + 1);
	for (try = 0; try < 5; try++) {
		if (set_icmp_rate(ICMP_RATE_TEST) || reset_bucket()) {
			not_ok(name, "map update: %s", strerror(errno));
			return;
		}
		sent = stat_sum(STAT_NP_ICMP_SENT);
		limited = stat_sum(STAT_NP_ICMP_LIMITED);
		t0 = now_s();
		for (i = 0; i <= ICMP_RATE_TEST; i++)
			verdicts[i] = run(prog, &in, &out);
		t1 = now_s();
		if (t1 - t0 < 0.5 / ICMP_RATE_TEST)
			break;
	}
	if (try == 5) {
		not_ok(name, "no burst of %d runs took under %.0f ms", ICMP_RATE_TEST + 1,
		       500.0 / ICMP_RATE_TEST);
		return;
	}
	for (i = 0; i < ICMP_RATE_TEST; i++) {
		if (verdicts[i] != want) {
			not_ok(name, "run %d: verdict %d, want %d", i + 1, verdicts[i], want);
			return;
		}
	}
	if (verdicts[ICMP_RATE_TEST] != drop)
		not_ok(name, "run %d: verdict %d, want %d (dropped)", ICMP_RATE_TEST + 1,
		       verdicts[ICMP_RATE_TEST], drop);
	else if (stat_sum(STAT_NP_ICMP_SENT) - sent != ICMP_RATE_TEST ||
		 stat_sum(STAT_NP_ICMP_LIMITED) - limited != 1)
		not_ok(name, "counters: sent +%llu, limited +%llu, want +%d and +1",
		       (unsigned long long)(stat_sum(STAT_NP_ICMP_SENT) - sent),
		       (unsigned long long)(stat_sum(STAT_NP_ICMP_LIMITED) - limited), ICMP_RATE_TEST);
	else
		ok("%s", name);

	/* Refill: wait (bounded, 3 s) for the next reply to pass. */
	snprintf(name, sizeof(name), "%s: after the limit, the bucket refills and a reply passes "
		 "again (within 3 s at %d/s)", hook, ICMP_RATE_TEST);
	for (t0 = now_s(); now_s() - t0 < 3; usleep(20000)) {
		rc = run(prog, &in, &out);
		if (rc == want)
			break;
	}
	if (rc == want)
		check_reply(name, &in, &out);
	else
		not_ok(name, "still verdict %d after 3 s", rc);

	snprintf(name, sizeof(name), "%s: icmp_per_sec=0 sends no reply", hook);
	limited = stat_sum(STAT_NP_ICMP_LIMITED);
	if (set_icmp_rate(0) || reset_bucket())
		not_ok(name, "map update: %s", strerror(errno));
	else if ((rc = run(prog, &in, &out)) != drop)
		not_ok(name, "verdict %d, want %d", rc, drop);
	else if (stat_sum(STAT_NP_ICMP_LIMITED) != limited + 1)
		not_ok(name, "STAT_NP_ICMP_LIMITED did not count it");
	else
		ok("%s", name);
	set_icmp_rate(1000000);
}

/* RFC 3720 B.4: the reference CRC itself. */
static void test_crc_vectors(void)
{
	static const uint8_t read_pdu[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	uint8_t b[32];
	int i, bad = 0;

	memset(b, 0, 32);
	bad |= crc32c_ref(b, 32) != 0x8a9136aa;
	memset(b, 0xff, 32);
	bad |= (crc32c_ref(b, 32) != 0x62a8ab43) << 1;
	for (i = 0; i < 32; i++)
		b[i] = i;
	bad |= (crc32c_ref(b, 32) != 0x46dd794e) << 2;
	for (i = 0; i < 32; i++)
		b[i] = 31 - i;
	bad |= (crc32c_ref(b, 32) != 0x113fdb5c) << 3;
	bad |= (crc32c_ref(read_pdu, 48) != 0xd9963a56) << 4;
	if (bad)
		not_ok("CRC32c reference matches RFC 3720 B.4's five vectors", "mask 0x%x failed", bad);
	else
		ok("CRC32c reference matches RFC 3720 B.4's five vectors");
}

/* The all-zero vector of RFC 3720 B.4 as an SCTP packet (its checksum
 * field is zero already): the BPF CRC must store aa 36 91 8a. */
static void test_crc_vector_bpf(int tc)
{
	struct bpf_program *prog = tc ? skel->progs.pkt_crc_tc : skel->progs.pkt_crc_xdp;
	static const uint8_t want[4] = {0xaa, 0x36, 0x91, 0x8a};
	struct frame in, out;
	char name[128];
	int rc;

	build(&in, 0, IPPROTO_SCTP, 32, 0);
	memset(in.b + in.l4, 0, 32);
	snprintf(name, sizeof(name), "%s: SCTP CRC32c of RFC 3720 B.4's 32 zero bytes is "
		 "aa 36 91 8a", tc ? "tc" : "XDP");
	skel->bss->pkt_new_dport = 0;
	rc = run(prog, &in, &out);
	if (rc != (tc ? TC_ACT_OK : XDP_PASS))
		not_ok(name, "verdict %d", rc);
	else if (memcmp(out.b + in.l4 + 8, want, 4))
		not_ok(name, "stored %02x %02x %02x %02x", out.b[in.l4 + 8], out.b[in.l4 + 9],
		       out.b[in.l4 + 10], out.b[in.l4 + 11]);
	else
		ok("%s", name);
}

/* B32: a DNAT's port rewrite, then the CRC over the whole packet. The
 * frame arrives with a valid CRC for the frontend's port; what leaves must
 * have the new port, a CRC equal to the reference's over the rewritten
 * packet, and every other byte unchanged. */
static void test_crc_size(int tc, int v6, size_t l4_len)
{
	struct bpf_program *prog = tc ? skel->progs.pkt_crc_tc : skel->progs.pkt_crc_xdp;
	struct frame in, want, out;
	char name[160];
	size_t i;
	int rc;

	build(&in, v6, IPPROTO_SCTP, l4_len, 0);
	want = in;
	put16(want.b + want.l4 + 2, 8080);
	sctp_csum_ref(want.b + want.l4, l4_len);
	snprintf(name, sizeof(name), "B32 %s: %s SCTP of %zu bytes, port rewritten -> CRC32c equals "
		 "the userspace CRC%s", tc ? "tc" : "XDP", v6 ? "IPv6" : "IPv4", l4_len,
		 l4_len == SCTP_LIMIT ? " (the limit)" : "");
	skel->bss->pkt_new_dport = 8080;
	rc = run(prog, &in, &out);
	if (rc != (tc ? TC_ACT_OK : XDP_PASS)) {
		not_ok(name, "verdict %d (%s)", rc, rc < 0 ? strerror(-rc) : "dropped");
		return;
	}
	if (out.len != want.len) {
		not_ok(name, "%zu bytes out, want %zu", out.len, want.len);
		return;
	}
	for (i = 0; i < want.len; i++) {
		if (out.b[i] != want.b[i]) {
			size_t off = i - want.l4;

			not_ok(name, "byte %zu (%s) is 0x%02x, want 0x%02x", i,
			       i >= want.l4 && off >= 8 && off < 12 ? "the CRC" : "not the CRC",
			       out.b[i], want.b[i]);
			return;
		}
	}
	ok("%s", name);
}

/* A packet whose IP length claims l4_len bytes of SCTP, the frame itself
 * holding only 200: PROG_TEST_RUN takes frames of one page at most, so the
 * length check is driven by what the header claims, as the callers pass
 * it. Above the limit: dropped and counted as too long; within it but
 * beyond the frame: dropped, not counted as too long. */
static void test_crc_claimed(int tc, int v6, size_t l4_len)
{
	struct bpf_program *prog = tc ? skel->progs.pkt_crc_tc : skel->progs.pkt_crc_xdp;
	uint64_t before = stat_sum(STAT_NP_SCTP_TOO_LONG);
	int too_long = l4_len > SCTP_LIMIT;
	struct frame in, out;
	char name[200];
	int rc;

	build(&in, v6, IPPROTO_SCTP, 200, 0);
	if (v6) {
		put16(in.b + in.l3 + 4, l4_len);
	} else {
		put16(in.b + in.l3 + 2, 20 + l4_len);
		put16(in.b + in.l3 + 10, 0);
		put16(in.b + in.l3 + 10, fold(sum16(in.b + in.l3, 20, 0)));
	}
	snprintf(name, sizeof(name), "B32 %s: %s SCTP claiming %zu bytes (%s) -> dropped, %s",
		 tc ? "tc" : "XDP", v6 ? "IPv6" : "IPv4", l4_len,
		 too_long ? "the limit + 1" : "past the frame's end",
		 too_long ? "STAT_NP_SCTP_TOO_LONG counted" : "not counted as too long");
	skel->bss->pkt_new_dport = 8080;
	rc = run(prog, &in, &out);
	if (rc != (tc ? TC_ACT_SHOT : XDP_DROP))
		not_ok(name, "verdict %d", rc);
	else if (stat_sum(STAT_NP_SCTP_TOO_LONG) != before + too_long)
		not_ok(name, "STAT_NP_SCTP_TOO_LONG went %llu -> %llu", (unsigned long long)before,
		       (unsigned long long)stat_sum(STAT_NP_SCTP_TOO_LONG));
	else
		ok("%s", name);
}

/* tc: a GSO skb (what SCTP GSO over a veth makes, up to 64 KB) is left to
 * segmentation, which computes each segment's CRC: passed, its CRC field
 * untouched, not counted as too long though it claims 20,000 bytes. */
static void test_crc_gso(void)
{
	const char *name = "B32 tc: a GSO SCTP skb claiming 20,000 bytes -> passed untouched "
			   "(segmentation computes each segment's CRC), not counted as too long";
	uint64_t before = stat_sum(STAT_NP_SCTP_TOO_LONG);
	struct __sk_buff ctx = {.gso_size = 1400, .gso_segs = 15};
	struct frame in, out;
	int err;

	build(&in, 0, IPPROTO_SCTP, 200, 0);
	put16(in.b + in.l3 + 2, 20 + 20000);
	put16(in.b + in.l3 + 10, 0);
	put16(in.b + in.l3 + 10, fold(sum16(in.b + in.l3, 20, 0)));
	skel->bss->pkt_new_dport = 0;
	{
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in.b, .data_size_in = in.len,
			    .data_out = out.b, .data_size_out = sizeof(out.b), .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .repeat = 1);

		err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.pkt_crc_tc), &o);
		if (err)
			not_ok(name, "PROG_TEST_RUN: %s", strerror(errno));
		else if (o.retval != TC_ACT_OK)
			not_ok(name, "verdict %u", o.retval);
		else if (o.data_size_out != in.len || memcmp(out.b, in.b, in.len))
			not_ok(name, "the frame changed");
		else if (stat_sum(STAT_NP_SCTP_TOO_LONG) != before)
			not_ok(name, "counted as too long");
		else
			ok("%s", name);
	}
}

/* The longest IPv4 SCTP frame a hook's PROG_TEST_RUN takes and (XDP) the
 * program sees linear: found by trying, from 4,096 bytes down. */
static size_t max_test_frame(int tc)
{
	struct bpf_program *prog = tc ? skel->progs.pkt_crc_tc : skel->progs.pkt_crc_xdp;
	struct frame in, out;
	size_t len;

	skel->bss->pkt_new_dport = 0;
	for (len = 4096; len > 1500; len -= 2) {
		build(&in, 0, IPPROTO_SCTP, len - ETH_HLEN - 20, 0);
		if (run(prog, &in, &out) == (tc ? TC_ACT_OK : XDP_PASS))
			return len;
	}
	return 0;
}

static void test_crc(void)
{
	static const size_t sizes[] = {12, 16, 17, 19, 20, 23, 28, 100, 1001, 1460, 1480};
	size_t i, max;
	int tc, v6;

	test_crc_vectors();
	test_crc_gso();
	for (tc = 0; tc < 2; tc++) {
		test_crc_vector_bpf(tc);
		max = max_test_frame(tc);
		if (!max) {
			not_ok(tc ? "tc: the longest test frame" : "XDP: the longest test frame",
			       "no SCTP frame between 1,500 and 4,096 bytes passed");
			continue;
		}
		printf("# %s: PROG_TEST_RUN frames stop at %zu bytes: the largest SCTP packets "
		       "tested; the limit (%d) is checked by the claimed length\n",
		       tc ? "tc" : "XDP", max, SCTP_LIMIT);
		for (v6 = 0; v6 < 2; v6++) {
			for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
				test_crc_size(tc, v6, sizes[i]);
			test_crc_size(tc, v6, max - ETH_HLEN - (v6 ? 40 : 20));
			test_crc_claimed(tc, v6, SCTP_LIMIT + 1);
			test_crc_claimed(tc, v6, SCTP_LIMIT);
		}
	}
}

static int pin_cpu(void)
{
	cpu_set_t set;
	int cpu;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -1;
	for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &set); cpu++)
		;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static void on_signal(int sig)
{
	(void)sig;
}

/* The ICMP program on a device until a signal: the netns holding the
 * device goes with the test, and takes the attachment along if this
 * process is killed first. */
static int attach(const char *hook, const char *dev)
{
	int ifindex = if_nametoindex(dev), xdp = !strncmp(hook, "xdp", 3), err;
	__u32 mode = strcmp(hook, "xdp") ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
	LIBBPF_OPTS(bpf_tc_hook, tch, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, tco, .handle = 1, .priority = 1);
	struct sigaction sa = {.sa_handler = on_signal};

	if (!ifindex || (strcmp(hook, "tc") && strcmp(hook, "xdp") && strcmp(hook, "xdp-native") &&
			 strcmp(hook, "xdp-pass"))) {
		fprintf(stderr, "pktlib_test: attach tc|xdp|xdp-native|xdp-pass IFNAME\n");
		return 2;
	}
	skel = pktlib_test__open_and_load();
	if (!skel || set_icmp_rate(1000000)) {
		fprintf(stderr, "pktlib_test: load: %s\n", strerror(errno));
		return 1;
	}
	if (xdp) {
		struct bpf_program *p = strcmp(hook, "xdp-pass") ? skel->progs.pkt_icmp_xdp
								  : skel->progs.pkt_pass;

		err = bpf_xdp_attach(ifindex, bpf_program__fd(p), mode, NULL);
	} else {
		err = bpf_tc_hook_create(&tch);
		tco.prog_fd = bpf_program__fd(skel->progs.pkt_icmp_tc);
		if (!err || err == -EEXIST)
			err = bpf_tc_attach(&tch, &tco);
	}
	if (err) {
		fprintf(stderr, "pktlib_test: attach to %s: %s\n", dev, strerror(-err));
		return 1;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	alarm(300);
	printf("attached\n");
	fflush(stdout);
	pause();
	if (xdp)
		bpf_xdp_detach(ifindex, mode, NULL);
	else
		bpf_tc_hook_destroy(&tch);
	pktlib_test__destroy(skel);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "attach"))
		return attach(argv[2], argv[3]);
	if (pin_cpu()) {
		not_ok("setup", "sched_setaffinity: %s", strerror(errno));
		return 1;
	}
	skel = pktlib_test__open_and_load();
	if (!skel) {
		not_ok("setup", "pktlib_test.bpf.o does not load: %s", strerror(errno));
		return 1;
	}
	if (set_icmp_rate(1000000)) {
		not_ok("setup", "ferry_config: %s", strerror(errno));
		return 1;
	}
	test_icmp_replies();
	test_icmp_rate(0);
	test_icmp_rate(1);
	test_icmp_no_reply(0);
	test_icmp_no_reply(1);
	test_icmp_too_big(0);
	test_icmp_too_big(1);
	test_crc();
	pktlib_test__destroy(skel);
	printf("# %d ok, %d not ok\n", passes, failures);
	return failures ? 1 : 0;
}
