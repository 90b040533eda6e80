/* Nanoseconds per packet through ferry_xdp_nodeport (build/bpf/
 * nodeport_xdp.bpf.o) with BPF_PROG_TEST_RUN, against an empty XDP program
 * (return XDP_PASS) measured the same way in the same run, two ways:
 *
 *   repeat 1  the kernel-reported duration of one run, the call repeated in
 *             a loop (Katran's way): mean and median over the calls
 *   repeat M  one call running the program M times on the same frame (the
 *             kernel's average); the median over rounds
 *
 * Cases (the maps are the object's own, filled here; nothing is pinned):
 *   established  a NodePort flow already in ferry_ct, its backend on another
 *                node: DNAT + SNAT, FIB lookup, XDP_TX
 *   est-udp      the same over UDP (its entry's time refreshed every packet)
 *   new          a new flow to that NodePort (a new source port every call):
 *                frontend, backend choice, SNAT port claim, two ct entries,
 *                FIB lookup, XDP_TX; ferry_ct full (a node under churn):
 *                every new flow evicts two entries
 *   new-room     the same with room in ferry_ct (a node with room): nothing
 *                evicted
 *   est-local    an externalTrafficPolicy=Local flow already in ferry_ct,
 *                DNAT only, XDP_PASS; its backend is the node address and
 *                port itself, so the rewrite leaves the frame as it was:
 *                the one case repeat M can measure (repeat M feeds the
 *                program's own output back in; a flow's output is no longer
 *                that flow, and a new flow is new only once)
 *   new-local    a new flow of that Service (ferry_ct full)
 *   new-local-room  the same with room in ferry_ct
 *   est-sctp     an established SCTP NodePort flow like "established", in
 *                full 1,514-byte frames (1,480 bytes of SCTP): the CRC32c
 *                recomputed over every byte after the port rewrite
 *   no-backend   a NodePort without endpoints: the frame becomes an ICMP
 *                port unreachable, XDP_TX (the rate limit set out of reach)
 *   est-v6, new-v6  established and new over IPv6 (node 2001:db8::1,
 *                backends in 2001:db8:2::/64 behind the same neighbour)
 *
 * The object is loaded twice, each copy with maps of its own: the "churn"
 * copy's ferry_ct is filled by new flows before the clock starts (twice
 * its size), so that it stays full; the "room" copy's (the -room cases') is
 * emptied after each block of calls, which must not evict (checked).
 *
 * --algorithm gives the Cluster NodePorts' sets (16 backends) an algorithm
 * other than random: its cost is in the new-flow cases (an established
 * flow's backend is in ferry_ct). Maglev's table is 2,801 entries, the size
 * ferryd gives 15 to 28 backends; least-conn's counts grow with the new
 * flows (they never close here), which costs the same scan.
 *
 * With --base, a second object (a build before a change) is measured the
 * same way in the same run, its blocks right after the first's, each case
 * against the same floor; its rows say "(base)".
 *
 *   xdp_ns --obj OBJ --dev IFNAME [--base OBJ] [--calls N] [--rounds R]
 *          [--repeat M] [--cases NAME,...] [--md FILE] [--algorithm NAME]
 *
 * Run in a network namespace of the caller's with IFNAME (the ingress
 * device; the frames' ingress_ifindex) up, 192.0.2.1 and 2001:db8::1 on it,
 * forwarding on, and routes for 198.18.0.0/16 and 2001:db8:2::/64 through
 * permanent neighbours on IFNAME
 * (tests/bench/run.sh --only xdp sets it up). Prints CSV on stdout:
 *   case,method,calls,ns_mean,ns_p50,floor_mean,floor_p50,over_mean,over_p50,check
 * (repeat M: ns_mean = ns_p50 = the median over rounds); --md writes the
 * same as a Markdown table. Each case's floor is the empty program's calls
 * made right before each of its blocks (repeat 1: a block of N calls before
 * the case's N, in every round), so that both see the same load. check is
 * "ok" when the verdict and the counters show the path the case names, else
 * what was seen. --cases runs only the cases named (for a profile).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "datapath/features.h"
#include "ferry/maps.h"

#define XDP_PASS_V 2
#define XDP_TX_V 3
#define PORT_CLUSTER 30080     /* NodePort, externalTrafficPolicy Cluster */
#define PORT_LOCAL 30081       /* NodePort, externalTrafficPolicy Local */
#define PORT_SCTP 30082        /* NodePort, SCTP, externalTrafficPolicy Cluster */
#define PORT_EMPTY 30083       /* NodePort without endpoints */
#define SVC_ID_V6 6            /* the IPv6 NodePort's service port */
#define SVC_ID_UDP 7           /* the Cluster NodePort's UDP service port */
#define N_BACKENDS 16
#define MAGLEV_SIZE 2801       /* ferryd's table size for 15 to 28 backends */
#define FRAME_TCP 74           /* Ethernet, IPv4, TCP with 20 bytes of data */
#define FRAME_TCP6 94          /* Ethernet, IPv6, TCP with 20 bytes of data */
#define FRAME_MAX 1514         /* Ethernet, IPv4, 1,480 bytes of SCTP */

/* One loaded copy of the object and its maps. */
struct inst {
	struct bpf_object *obj;
	int prog, services4, services6, slots, backends, node_addrs, config, stats, ct, maglev;
	unsigned ct_max;
	uint8_t algorithm;      /* the N_BACKENDS sets' (--algorithm) */
};

/* An object's two copies (see above). */
struct copies {
	struct inst churn, room;
};

struct bench {
	struct copies obj[2];      /* --obj, and --base if given */
	int nobj, empty, ifindex;
	uint8_t algorithm;         /* --algorithm: the Cluster NodePorts' */
	unsigned calls, rounds, repeat;
	unsigned long long flow;   /* new flows so far: each gets its own tuple */
};

/* --- the frame ------------------------------------------------------------ */

static uint16_t csum16(const uint8_t *p, size_t len, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* A frame of len bytes from client:sport to 192.0.2.1:dport: a TCP
 * segment (ACK with data), a UDP datagram, or an SCTP packet (a DATA chunk;
 * its CRC is not checked on the way in). */
static void frame(uint8_t *f, size_t len, uint8_t proto, uint32_t client, uint16_t sport,
		  uint16_t dport)
{
	uint8_t *ip = f + 14, *l4 = ip + 20;
	uint32_t dst = htonl(0xc0000201);  /* 192.0.2.1 */
	uint16_t c, l4_len = len - 34;
	uint8_t pseudo[12];

	memset(f, 0, len);
	memcpy(f, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00", 14);
	ip[0] = 0x45;
	c = htons(len - 14);
	memcpy(ip + 2, &c, 2);
	ip[6] = 0x40;
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, &client, 4);
	memcpy(ip + 16, &dst, 4);
	c = htons(csum16(ip, 20, 0));
	memcpy(ip + 10, &c, 2);
	sport = htons(sport);
	dport = htons(dport);
	memcpy(l4, &sport, 2);
	memcpy(l4 + 2, &dport, 2);
	if (proto == IPPROTO_SCTP) {
		memcpy(l4 + 4, "\x01\x02\x03\x04", 4);    /* verification tag */
		c = htons(l4_len - 12);
		memcpy(l4 + 14, &c, 2);                      /* DATA chunk, its length */
		memset(l4 + 28, 'x', l4_len - 28);
		return;
	}
	if (proto == IPPROTO_UDP) {
		c = htons(l4_len);
		memcpy(l4 + 4, &c, 2);
		memset(l4 + 8, 'x', l4_len - 8);
	} else {
		l4[12] = 5 << 4;
		l4[13] = 0x10;  /* ACK */
		l4[14] = 0xff;
		memset(l4 + 20, 'x', l4_len - 20);
	}
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0, pseudo[9] = proto, pseudo[10] = l4_len >> 8, pseudo[11] = l4_len;
	c = htons(csum16(l4, l4_len, 0xffff & ~csum16(pseudo, 12, 0)));
	memcpy(l4 + (proto == IPPROTO_UDP ? 6 : 16), &c, 2);
}

/* IPv6: a TCP segment (ACK with data) from [2001:db8:1::client]:sport to
 * [2001:db8::1]:dport. */
static void frame6(uint8_t *f, uint16_t client, uint16_t sport, uint16_t dport)
{
	uint8_t *ip = f + 14, *tcp = ip + 40, pseudo[40];
	uint16_t c, l4_len = FRAME_TCP6 - 54;

	memset(f, 0, FRAME_TCP6);
	memcpy(f, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x86\xdd", 14);
	ip[0] = 0x60;
	ip[5] = l4_len;
	ip[6] = IPPROTO_TCP;
	ip[7] = 64;
	memcpy(ip + 8, "\x20\x01\x0d\xb8\x00\x01", 6);
	ip[22] = client >> 8, ip[23] = client;
	memcpy(ip + 24, "\x20\x01\x0d\xb8", 4);
	ip[39] = 1;
	sport = htons(sport);
	dport = htons(dport);
	memcpy(tcp, &sport, 2);
	memcpy(tcp + 2, &dport, 2);
	tcp[12] = 5 << 4;
	tcp[13] = 0x10;  /* ACK */
	tcp[14] = 0xff;
	memset(tcp + 20, 'x', l4_len - 20);
	memcpy(pseudo, ip + 8, 32);
	memset(pseudo + 32, 0, 8);
	pseudo[35] = l4_len, pseudo[39] = IPPROTO_TCP;
	c = htons(csum16(tcp, l4_len, 0xffff & ~csum16(pseudo, 40, 0)));
	memcpy(tcp + 16, &c, 2);
}

/* The n-th new flow's frame: its own client address and source port. */
static void new_flow_frame(struct bench *b, uint8_t *f, int v6, uint16_t dport)
{
	unsigned long long n = b->flow++;

	if (v6)
		frame6(f, 1 + n / 50000, 10000 + n % 50000, dport);
	else
		frame(f, FRAME_TCP, IPPROTO_TCP, htonl(0xcb007100 + 1 + (uint32_t)(n / 50000)),
		      10000 + n % 50000, dport);
}

/* --- running ---------------------------------------------------------------- */

static int run(struct bench *b, int fd, uint8_t *f, size_t len, unsigned repeat, uint32_t *ns,
	       uint32_t *verdict)
{
	struct xdp_md ctx = {.data_end = len, .ingress_ifindex = b->ifindex};
	uint8_t out[FRAME_MAX + 256];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f, .data_size_in = len,
		    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = repeat);

	if (bpf_prog_test_run_opts(fd, &o))
		return -errno;
	*ns = o.duration;
	*verdict = o.retval;
	return 0;
}

static uint64_t stat_sum(const struct inst *in, enum stat_index idx)
{
	int n = libbpf_num_possible_cpus(), i;
	struct stat_value v[n];
	uint32_t key = idx;
	uint64_t sum = 0;

	if (bpf_map_lookup_elem(in->stats, &key, v))
		return 0;
	for (i = 0; i < n; i++)
		sum += v[i].count;
	return sum;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

struct figure {
	double mean, p50;
};

static struct figure summarise(uint32_t *ns, size_t n)
{
	struct figure f = {0, 0};
	size_t i;

	if (!n)
		return f;
	for (i = 0; i < n; i++)
		f.mean += ns[i];
	f.mean /= n;
	qsort(ns, n, sizeof(*ns), cmp_u32);
	f.p50 = n % 2 ? ns[n / 2] : (ns[n / 2 - 1] + ns[n / 2]) / 2.0;
	return f;
}

/* --- the cases ------------------------------------------------------------ */

enum bench_case {
	CASE_EST, CASE_EST_UDP, CASE_NEW, CASE_NEW_ROOM, CASE_EST_LOCAL, CASE_NEW_LOCAL, CASE_NEW_LOCAL_ROOM,
	CASE_EST_SCTP, CASE_NO_BACKEND, CASE_EST6, CASE_NEW6, CASE__COUNT
};

static const char *case_name[] = {"established", "est-udp", "new", "new-room", "est-local", "new-local",
				  "new-local-room", "est-sctp", "no-backend", "est-v6", "new-v6"};
static const uint16_t case_port[] = {PORT_CLUSTER, PORT_CLUSTER, PORT_CLUSTER, PORT_CLUSTER, PORT_LOCAL,
				     PORT_LOCAL, PORT_LOCAL, PORT_SCTP, PORT_EMPTY, PORT_CLUSTER,
				     PORT_CLUSTER};
static const uint32_t case_verdict[] = {XDP_TX_V, XDP_TX_V, XDP_TX_V, XDP_TX_V, XDP_PASS_V, XDP_PASS_V,
					XDP_PASS_V, XDP_TX_V, XDP_TX_V, XDP_TX_V, XDP_TX_V};
static const int case_new[] = {0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 1};
static const int case_room[] = {0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0};
static const int case_v6[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1};
static const size_t case_len[] = {FRAME_TCP, FRAME_TCP, FRAME_TCP, FRAME_TCP, FRAME_TCP, FRAME_TCP,
				  FRAME_TCP, FRAME_MAX, FRAME_TCP, FRAME_TCP6, FRAME_TCP6};

/* The established cases' one flow: client 203.0.113.200:40000, or
 * [2001:db8:1::c8]:40000. */
static void case_frame(struct bench *b, enum bench_case c, uint8_t *f)
{
	if (case_new[c])
		new_flow_frame(b, f, case_v6[c], case_port[c]);
	else if (case_v6[c])
		frame6(f, 0xc8, 40000, case_port[c]);
	else
		frame(f, case_len[c], c == CASE_EST_SCTP ? IPPROTO_SCTP :
				      c == CASE_EST_UDP ? IPPROTO_UDP : IPPROTO_TCP,
		      htonl(0xcb0071c8), 40000, case_port[c]);
}

static struct inst *case_inst(struct bench *b, int k, enum bench_case c)
{
	return case_room[c] ? &b->obj[k].room : &b->obj[k].churn;
}

struct result {
	uint32_t *ns;
	size_t n;
	char check[96];
};

/* What a case's runs must show: its verdict, and STAT_NP_XLATE (new flows
 * translated) grown by one per run of a new flow and not at all for an
 * established one. */
static void check(struct result *r, enum bench_case c, uint32_t verdict, uint64_t xlated,
		  uint64_t runs)
{
	if (r->check[0])
		return;
	if (verdict != case_verdict[c])
		snprintf(r->check, sizeof(r->check), "verdict %u, want %u", verdict, case_verdict[c]);
	else if (xlated != (case_new[c] ? runs : 0))
		snprintf(r->check, sizeof(r->check), "%llu new flows translated in %llu runs",
			 (unsigned long long)xlated, (unsigned long long)runs);
}

/* Empties a copy's ferry_ct; returns the entries it held, or -errno. */
static long ct_empty(const struct inst *in)
{
	static struct ct_key keys[4096];
	static struct ct_value values[4096];
	__u32 batch, count;
	long total = 0;
	int err;

	for (;;) {
		count = 4096;
		err = bpf_map_lookup_and_delete_batch(in->ct, NULL, &batch, keys, values, &count,
						      NULL);
		total += count;
		if (err)
			return errno == ENOENT ? total : -errno;
	}
}

/* A room case's table must not have evicted: it held two entries per run. */
static int check_room(struct result *r, const struct inst *in, uint64_t runs)
{
	long held = ct_empty(in);

	if (held < 0)
		return (int)held;
	if (!r->check[0] && (uint64_t)held != 2 * runs)
		snprintf(r->check, sizeof(r->check), "ferry_ct held %ld entries after %llu flows",
			 held, (unsigned long long)runs);
	return 0;
}

/* One block: calls runs of object k on frames from case_frame (c < 0: the
 * empty program on the established flow's frame), their durations into r. */
static int block(struct bench *b, int k, int c, struct result *r, uint32_t *verdict)
{
	uint8_t f[FRAME_MAX];
	uint32_t ns;
	unsigned i;
	int err;

	if (c < 0)
		frame(f, FRAME_TCP, IPPROTO_TCP, htonl(0xcb0071c8), 40000, PORT_CLUSTER);
	for (i = 0; i < b->calls; i++) {
		if (c >= 0)
			case_frame(b, c, f);
		err = run(b, c < 0 ? b->empty : case_inst(b, k, c)->prog, f,
			  c < 0 ? FRAME_TCP : case_len[c], 1, &ns, verdict);
		if (err)
			return err;
		r->ns[r->n++] = ns;
		if (c >= 0 && *verdict != case_verdict[c])
			break;
	}
	return 0;
}

/* One case's block of object k, checked. */
static int case_block(struct bench *b, int k, int c, struct result *r)
{
	struct inst *in = case_inst(b, k, c);
	uint64_t x0 = stat_sum(in, STAT_NP_XLATE);
	uint32_t verdict;
	int err;

	if ((err = block(b, k, c, r, &verdict)))
		return err;
	check(r, c, verdict, stat_sum(in, STAT_NP_XLATE) - x0, b->calls);
	return case_room[c] ? check_room(r, in, b->calls) : 0;
}

/* repeat 1, in a loop: rounds x cases x (a block of the empty program, then
 * the case's block of each object, the objects' order turning each round). */
static int loop_repeat1(struct bench *b, const int *want, struct result *floor,
			struct result res[][CASE__COUNT])
{
	uint32_t verdict;
	unsigned r;
	int c, i, k, err;

	for (r = 0; r < b->rounds; r++) {
		for (c = 0; c < CASE__COUNT; c++) {
			if (!want[c])
				continue;
			if ((err = block(b, 0, -1, &floor[c], &verdict)))
				return err;
			for (i = 0; i < b->nobj; i++) {
				k = (i + r) % b->nobj;
				if ((err = case_block(b, k, c, &res[k][c])))
					return err;
			}
		}
	}
	return 0;
}

/* repeat M: rounds x (empty, est-local of each object), one call each. */
static int loop_repeat(struct bench *b, struct result *floor, struct result *res)
{
	uint8_t f[FRAME_MAX];
	uint32_t ns, verdict;
	struct inst *in;
	uint64_t x0;
	unsigned r;
	int k, err;

	for (r = 0; r < b->rounds; r++) {
		frame(f, FRAME_TCP, IPPROTO_TCP, htonl(0xcb0071c8), 40000, PORT_CLUSTER);
		if ((err = run(b, b->empty, f, FRAME_TCP, b->repeat, &ns, &verdict)))
			return err;
		floor->ns[floor->n++] = ns;
		case_frame(b, CASE_EST_LOCAL, f);
		for (k = 0; k < b->nobj; k++) {
			in = &b->obj[k].churn;
			x0 = stat_sum(in, STAT_NP_XLATE);
			if ((err = run(b, in->prog, f, FRAME_TCP, b->repeat, &ns, &verdict)))
				return err;
			res[k].ns[res[k].n++] = ns;
			check(&res[k], CASE_EST_LOCAL, verdict, stat_sum(in, STAT_NP_XLATE) - x0,
			      b->repeat);
		}
	}
	return 0;
}

/* --- maps -------------------------------------------------------------------- */

static void v4(uint32_t a[4], uint32_t host)
{
	a[0] = 0;
	a[1] = 0;
	a[2] = htonl(0xffff);
	a[3] = htonl(host);
}

/* 2001:db8:net::host */
static void v6(uint32_t a[4], uint16_t net, uint16_t host)
{
	a[0] = htonl(0x20010db8);
	a[1] = htonl((uint32_t)net << 16);
	a[2] = 0;
	a[3] = htonl(host);
}

static int fill_backend(const struct inst *b, uint8_t proto, uint32_t svc_id, uint32_t slot, uint32_t id,
			uint32_t host, uint16_t port, bool small);

/* A NodePort wildcard entry (scope ALL) and, for Local, its external set:
 * backends id0 + i at host0 + i, port bport, inline in the entry when the
 * set is small enough (as ferryd writes it), else in ferry_slots. A set of
 * N_BACKENDS takes the run's --algorithm; Maglev's table is the one at cell
 * 0 (fill_maglev). */
static int fill_set(const struct inst *b, uint8_t proto, uint16_t port, uint32_t svc_id,
		    uint32_t flags, uint8_t scope, uint32_t count, uint32_t id0, uint32_t host0,
		    uint16_t bport)
{
	struct svc_key k = {.port = htons(port), .proto = proto, .scope = scope};
	struct svc_entry e = {.v = {.svc_id = svc_id, .rev = 1, .count = count, .flags = flags}};
	bool v6 = svc_id == SVC_ID_V6;
	bool small = count <= (v6 ? FERRY_SVC_INLINE_V6 : FERRY_SVC_INLINE_V4);
	uint32_t i;

	if (count == N_BACKENDS) {
		e.v.algorithm = b->algorithm;
		if (b->algorithm == LB_MAGLEV)
			e.v.maglev_size = MAGLEV_SIZE;
	}
	if (!v6)
		v4(k.addr, 0);  /* the IPv4 wildcard; IPv6's is :: */
	for (i = 0; i < count; i++) {
		if (fill_backend(b, proto, svc_id, i, id0 + i, host0 + i, bport, small))
			return -1;
		if (small && !v6) {
			e.in.v4[i] = (struct svc_inline_v4){.addr = htonl(host0 + i),
							    .port = htons(bport)};
			e.in.v4_backend_id[i] = id0 + i;
		}
	}
	if (small && v6 && count)
		return -1;  /* none here: its inline entries would need writing */
	if (!v6) {
		struct svc_key4 k4 = {.addr = k.addr[3], .port = k.port, .proto = k.proto,
				      .scope = k.scope};

		return bpf_map_update_elem(b->services4, &k4, &e, 0);
	}
	return bpf_map_update_elem(b->services6, &k, &e, 0);
}

/* A backend in ferry_backends and, for a set not inline, in ferry_slots. */
static int fill_backend(const struct inst *b, uint8_t proto, uint32_t svc_id, uint32_t slot, uint32_t id,
			uint32_t host, uint16_t port, bool small)
{
	struct slot_key sk = {.svc_id = svc_id, .rev = 1, .slot = slot};
	struct slot_value sv = {.backend_id = id, .port = htons(port)};
	struct backend_value bv = {.port = htons(port), .proto = proto, .svc_id = svc_id};

	if (svc_id == SVC_ID_V6) {
		v6(sv.addr, 2, host);
		v6(bv.addr, 2, host);
	} else {
		v4(sv.addr, host);
		v4(bv.addr, host);
	}
	if (!small && bpf_map_update_elem(b->slots, &sk, &sv, 0))
		return -1;
	return bpf_map_update_elem(b->backends, &id, &bv, 0);
}

/* The Maglev table of every N_BACKENDS set: entry i holds slot i % N_BACKENDS
 * (the cost of a pick does not depend on which slot an entry names). */
static int fill_maglev(const struct inst *b)
{
	struct maglev_cell cell;
	uint32_t i, j;

	for (i = 0; i * FERRY_MAGLEV_PER_CELL < MAGLEV_SIZE; i++) {
		for (j = 0; j < FERRY_MAGLEV_PER_CELL; j++)
			cell.slot[j] = (i * FERRY_MAGLEV_PER_CELL + j) % N_BACKENDS;
		if (bpf_map_update_elem(b->maglev, &i, &cell, 0))
			return -1;
	}
	return 0;
}

/* Node 192.0.2.1 and 2001:db8::1 (the SNAT addresses); a Cluster NodePort
 * with N_BACKENDS backends 198.18.1.x:8080 on other nodes, in TCP, UDP and
 * SCTP, and its IPv6 twin (2001:db8:2::x); a Local NodePort whose one local
 * backend is 192.0.2.1:30081 itself; a NodePort without endpoints. */
static int fill_maps(const struct inst *b)
{
	struct dp_config cfg = {.node_port_min = 30000, .node_port_max = 32767,
				.snat_port_min = 32768, .snat_port_max = 60999,
				.icmp_per_sec = 4000000000u};
	struct node_addr_key nk;
	struct node_addr_value nv = {.flags = NODE_ADDR_SNAT};
	uint32_t zero = 0;
	int err = 0;

	v4(cfg.snat_v4, 0xc0000201);
	v6(cfg.snat_v6, 0, 1);
	err |= bpf_map_update_elem(b->config, &zero, &cfg, 0);
	v4(nk.addr, 0xc0000201);
	err |= bpf_map_update_elem(b->node_addrs, &nk, &nv, 0);
	v6(nk.addr, 0, 1);
	err |= bpf_map_update_elem(b->node_addrs, &nk, &nv, 0);
	err |= fill_set(b, IPPROTO_TCP, PORT_CLUSTER, 1, SVC_FLAG_EXTERNAL | SVC_FLAG_NODE_PORT,
			SVC_SCOPE_ALL, N_BACKENDS, 100, 0xc6120100 + 10, 8080);
	err |= fill_set(b, IPPROTO_UDP, PORT_CLUSTER, SVC_ID_UDP, SVC_FLAG_EXTERNAL | SVC_FLAG_NODE_PORT,
			SVC_SCOPE_ALL, N_BACKENDS, 700, 0xc6120100 + 10, 8080);
	err |= fill_set(b, IPPROTO_TCP, PORT_LOCAL, 2,
			SVC_FLAG_EXTERNAL | SVC_FLAG_NODE_PORT | SVC_FLAG_EXT_LOCAL,
			SVC_SCOPE_ALL, 1, 200, 0xc6120100 + 99, 8080);
	err |= fill_set(b, IPPROTO_TCP, PORT_LOCAL, 3, SVC_FLAG_EXTERNAL | SVC_FLAG_NODE_PORT,
			SVC_SCOPE_EXTERNAL, 1, 300, 0xc0000201, PORT_LOCAL);
	err |= fill_set(b, IPPROTO_SCTP, PORT_SCTP, 4, SVC_FLAG_EXTERNAL | SVC_FLAG_NODE_PORT,
			SVC_SCOPE_ALL, N_BACKENDS, 400, 0xc6120100 + 10, 8080);
	err |= fill_set(b, IPPROTO_TCP, PORT_EMPTY, 5, SVC_FLAG_EXTERNAL | SVC_FLAG_NODE_PORT,
			SVC_SCOPE_ALL, 0, 0, 0, 0);
	err |= fill_set(b, IPPROTO_TCP, PORT_CLUSTER, SVC_ID_V6, SVC_FLAG_EXTERNAL | SVC_FLAG_NODE_PORT,
			SVC_SCOPE_ALL, N_BACKENDS, 600, 0x10, 8080);
	if (b->algorithm == LB_MAGLEV)
		err |= fill_maglev(b);
	return err ? -1 : 0;
}

static int map_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, name);

	if (!m) {
		fprintf(stderr, "xdp_ns: no map %s in the object\n", name);
		return -1;
	}
	return bpf_map__fd(m);
}

/* The object's xdp_meta (bpf/nodeport_xdp.bpf.c), as ferryd sets it:
 * whether this kernel lets XDP call bpf_xdp_adjust_meta. An object
 * without it (an older build, --base) is left as it is. */
static void set_xdp_meta(struct bpf_object *obj)
{
	struct bpf_map *rodata = bpf_object__find_map_by_name(obj, ".rodata");
	struct btf *btf = bpf_object__btf(obj);
	const struct btf_type *sec;
	const struct btf_var_secinfo *v;
	const void *init;
	size_t size;
	char *data;
	int id;

	id = btf ? btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC) : -1;
	init = rodata ? bpf_map__initial_value(rodata, &size) : NULL;
	if (id < 0 || !init || !(data = malloc(size)))
		return;
	memcpy(data, init, size);
	sec = btf__type_by_id(btf, id);
	v = btf_var_secinfos(sec);
	for (int i = 0; i < btf_vlen(sec); i++, v++) {
		const struct btf_type *var = btf__type_by_id(btf, v->type);

		if (strcmp(btf__name_by_offset(btf, var->name_off), "xdp_meta") == 0 &&
		    v->offset < size)
			data[v->offset] = features_xdp_meta();
	}
	bpf_map__set_initial_value(rodata, data, size);
	free(data);
}

/* One copy of the object (the program's own maps, filled). */
static int load_inst(struct inst *in, const char *path, uint8_t algorithm)
{
	struct bpf_program *p;
	struct bpf_map *ct;

	in->obj = bpf_object__open_file(path, NULL);
	if (in->obj)
		set_xdp_meta(in->obj);
	if (!in->obj || bpf_object__load(in->obj)) {
		fprintf(stderr, "xdp_ns: cannot load %s\n", path);
		return -1;
	}
	p = bpf_object__find_program_by_name(in->obj, "ferry_xdp_nodeport");
	if (!p) {
		fprintf(stderr, "xdp_ns: no program ferry_xdp_nodeport in %s\n", path);
		return -1;
	}
	in->prog = bpf_program__fd(p);
	in->services4 = map_fd(in->obj, "ferry_services4");
	in->services6 = map_fd(in->obj, "ferry_services6");
	in->slots = map_fd(in->obj, "ferry_slots");
	in->backends = map_fd(in->obj, "ferry_backends");
	in->node_addrs = map_fd(in->obj, "ferry_node_addrs");
	in->config = map_fd(in->obj, "ferry_config");
	in->stats = map_fd(in->obj, "ferry_stats");
	in->ct = map_fd(in->obj, "ferry_ct");
	in->maglev = map_fd(in->obj, "ferry_maglev");
	in->algorithm = algorithm;
	if (in->services4 < 0 || in->services6 < 0 || in->slots < 0 || in->backends < 0 ||
	    in->node_addrs < 0 || in->config < 0 || in->stats < 0 || in->ct < 0 || in->maglev < 0)
		return -1;
	ct = bpf_object__find_map_by_name(in->obj, "ferry_ct");
	in->ct_max = bpf_map__max_entries(ct);
	return fill_maps(in);
}

static int load(struct bench *b, const char *const *paths)
{
	static const struct bpf_insn pass[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS_V},
		{.code = BPF_JMP | BPF_EXIT},
	};

	int k;

	for (k = 0; k < b->nobj; k++)
		if (load_inst(&b->obj[k].churn, paths[k], b->algorithm) ||
		    load_inst(&b->obj[k].room, paths[k], b->algorithm))
			return -1;
	b->empty = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_empty", "GPL", pass, 2, NULL);
	if (b->empty < 0) {
		fprintf(stderr, "xdp_ns: the empty program: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* --- output ------------------------------------------------------------------ */

static void emit(FILE *csv, FILE *md, const char *cname, const char *method, size_t calls,
		 struct figure v, struct figure fl, const char *chk)
{
	fprintf(csv, "%s,%s,%zu,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%s\n", cname, method, calls, v.mean,
		v.p50, fl.mean, fl.p50, v.mean - fl.mean, v.p50 - fl.p50, chk);
	if (md)
		fprintf(md, "| %s | %s | %zu | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %s |\n",
			cname, method, calls, v.mean, v.p50, fl.mean, fl.p50, v.mean - fl.mean,
			v.p50 - fl.p50, chk);
}

/* One CPU: the runs' durations are not mixed with migrations. */
static void pin_cpu(void)
{
	cpu_set_t set;
	int cpu;

	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &set); cpu++)
		;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void usage(void)
{
	fprintf(stderr, "usage: xdp_ns --obj OBJ --dev IFNAME [--calls N] [--rounds R] "
		"[--repeat M] [--cases NAME,...] [--base OBJ] [--md FILE]\n"
		"       [--algorithm random|round-robin|maglev|least-conn]\n");
	exit(2);
}

/* Every figure of a run: the empty program's and each case's of each
 * object, both ways. */
struct results {
	struct result floor1[CASE__COUNT], floorm, res[2][CASE__COUNT], resm[2];
};

/* Before the clock, for object k: its churn copy's ferry_ct full (as many
 * new flows as it has places: two entries each), then the established flows
 * made; its room copy's next hop cached by one new flow, and its table
 * emptied. */
static int prepare(struct bench *b, int k)
{
	struct copies *o = &b->obj[k];
	uint8_t f[FRAME_MAX];
	uint32_t ns, verdict;
	unsigned i;
	long held;
	int c, err = 0;

	for (i = 0; i < o->churn.ct_max && !err; i++) {
		case_frame(b, CASE_NEW, f);
		err = run(b, o->churn.prog, f, FRAME_TCP, 1, &ns, &verdict);
	}
	for (c = 0; c < CASE__COUNT && !err; c++) {
		if (!case_new[c]) {
			case_frame(b, c, f);
			err = run(b, o->churn.prog, f, case_len[c], 1, &ns, &verdict);
		}
	}
	if (!err) {
		case_frame(b, CASE_NEW_ROOM, f);
		err = run(b, o->room.prog, f, FRAME_TCP, 1, &ns, &verdict);
	}
	if (err)
		return err;
	held = ct_empty(&o->room);
	return held < 0 ? (int)held : 0;
}

static int measure(struct bench *b, const int *want, struct results *r)
{
	size_t n = (size_t)b->calls * b->rounds;
	int c, k, err = 0;

	r->floorm.ns = calloc(b->rounds, sizeof(uint32_t));
	if (!r->floorm.ns)
		return -ENOMEM;
	for (c = 0; c < CASE__COUNT; c++)
		if (!(r->floor1[c].ns = calloc(n, sizeof(uint32_t))))
			return -ENOMEM;
	for (k = 0; k < b->nobj; k++) {
		if (!(r->resm[k].ns = calloc(b->rounds, sizeof(uint32_t))))
			return -ENOMEM;
		for (c = 0; c < CASE__COUNT; c++)
			if (!(r->res[k][c].ns = calloc(n, sizeof(uint32_t))))
				return -ENOMEM;
	}
	for (k = 0; k < b->nobj && !err; k++)
		err = prepare(b, k);
	if (!err)
		err = loop_repeat1(b, want, r->floor1, r->res);
	if (!err && want[CASE_EST_LOCAL])
		err = loop_repeat(b, &r->floorm, r->resm);
	return err;
}

/* A case's row for object k: "(base)" after the name of --base's. averaged:
 * each figure is already an average (repeat M): their median only. */
static void emit_case(FILE *md, int k, int c, const char *method, bool averaged,
		      struct result *res, struct figure fl)
{
	struct figure v = summarise(res->ns, res->n);
	char name[48];

	if (averaged)
		v.mean = v.p50;
	snprintf(name, sizeof(name), "%s%s", case_name[c], k ? " (base)" : "");
	emit(stdout, md, name, method, res->n, v, fl, res->check[0] ? res->check : "ok");
}

/* CSV on stdout, and the same as a Markdown table into md (if any). */
static void report(const struct bench *b, const int *want, struct results *r, FILE *md)
{
	struct figure fl;
	char method[32];
	int c, k;

	if (md)
		fprintf(md, "| case | method | calls | ns mean | ns p50 | empty mean | empty p50 "
			"| above the floor (mean) | above the floor (p50) | check |\n"
			"|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
	printf("case,method,calls,ns_mean,ns_p50,floor_mean,floor_p50,over_mean,over_p50,check\n");
	for (c = 0; c < CASE__COUNT; c++) {
		if (!want[c])
			continue;
		fl = summarise(r->floor1[c].ns, r->floor1[c].n);
		for (k = 0; k < b->nobj; k++)
			emit_case(md, k, c, "repeat 1 loop", false, &r->res[k][c], fl);
	}
	if (!want[CASE_EST_LOCAL])
		return;
	/* repeat M: each call's figure is already an average; their median. */
	fl = summarise(r->floorm.ns, r->floorm.n);
	fl.mean = fl.p50;
	snprintf(method, sizeof(method), "repeat %u", b->repeat);
	for (k = 0; k < b->nobj; k++)
		emit_case(md, k, CASE_EST_LOCAL, method, true, &r->resm[k], fl);
}

/* --algorithm: a name as in ferry.io/lb-algorithm. */
static int parse_algorithm(const char *name, uint8_t *out)
{
	static const char *const names[LB_ALGORITHM__COUNT] = {
		[LB_RANDOM] = "random", [LB_ROUND_ROBIN] = "round-robin",
		[LB_MAGLEV] = "maglev", [LB_LEAST_CONN] = "least-conn",
	};
	uint8_t a;

	for (a = 0; a < LB_ALGORITHM__COUNT; a++)
		if (!strcmp(name, names[a])) {
			*out = a;
			return 0;
		}
	fprintf(stderr, "xdp_ns: no algorithm %s\n", name);
	return -1;
}

/* --cases: a comma-separated list of case names; without it, every case. */
static int parse_cases(char *list, int *want)
{
	char *name, *save = NULL;
	int c;

	for (c = 0; c < CASE__COUNT; c++)
		want[c] = !list;
	for (name = list ? strtok_r(list, ",", &save) : NULL; name;
	     name = strtok_r(NULL, ",", &save)) {
		for (c = 0; c < CASE__COUNT && strcmp(name, case_name[c]); c++)
			;
		if (c == CASE__COUNT) {
			fprintf(stderr, "xdp_ns: no case %s\n", name);
			return -1;
		}
		want[c] = 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"obj", 1, 0, 'o'}, {"dev", 1, 0, 'd'}, {"calls", 1, 0, 'c'},
		{"rounds", 1, 0, 'r'}, {"repeat", 1, 0, 'm'}, {"md", 1, 0, 'w'},
		{"cases", 1, 0, 'k'}, {"base", 1, 0, 'b'}, {"algorithm", 1, 0, 'a'},
		{0, 0, 0, 0},
	};
	struct bench b = {.calls = 20000, .rounds = 5, .repeat = 1000000};
	const char *paths[2] = {NULL, NULL}, *dev = NULL, *md_path = NULL;
	char *cases = NULL;
	int want[CASE__COUNT];
	static struct results r;
	FILE *md = NULL;
	int o, err;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'o': paths[0] = optarg; break;
		case 'b': paths[1] = optarg; break;
		case 'd': dev = optarg; break;
		case 'c': b.calls = strtoul(optarg, NULL, 10); break;
		case 'r': b.rounds = strtoul(optarg, NULL, 10); break;
		case 'm': b.repeat = strtoul(optarg, NULL, 10); break;
		case 'w': md_path = optarg; break;
		case 'k': cases = optarg; break;
		case 'a': if (parse_algorithm(optarg, &b.algorithm)) usage(); break;
		default: usage();
		}
	}
	if (!paths[0] || !dev || !b.calls || !b.rounds || !b.repeat || parse_cases(cases, want))
		usage();
	b.ifindex = if_nametoindex(dev);
	if (!b.ifindex) {
		fprintf(stderr, "xdp_ns: no device %s\n", dev);
		return 1;
	}
	pin_cpu();
	libbpf_set_print(NULL);
	b.nobj = paths[1] ? 2 : 1;
	if (load(&b, paths))
		return 1;
	err = measure(&b, want, &r);
	if (err) {
		fprintf(stderr, "xdp_ns: %s\n", strerror(-err));
		return 1;
	}
	if (md_path && !(md = fopen(md_path, "w"))) {
		fprintf(stderr, "xdp_ns: %s: %s\n", md_path, strerror(errno));
		return 1;
	}
	report(&b, want, &r, md);
	if (md)
		fclose(md);
	for (o = 0; o < b.nobj; o++) {
		bpf_object__close(b.obj[o].churn.obj);
		bpf_object__close(b.obj[o].room.obj);
	}
	return 0;
}
