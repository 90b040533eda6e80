/* Unit tests of user/datapath/fast_map.c, ferry_fast4's writer, on real BPF
 * maps: an array of 64 fast entries as ferryd pins it, and a hash map of
 * svc_key4 -> svc_entry standing for ferry_services4 (rebuild). Through the
 * public API only (fast_map.h), reading the table back with
 * bpf_map_lookup_elem:
 *  - an eligible frontend is written at its home (ferry_fast_home), its
 *    seq even, its fields those of the ferry_services4 entry;
 *  - every ineligible one (protocol, scope, VIP marker, NodePort, LB IP,
 *    algorithm, affinity, no or 13 backends, two ports, a backend another
 *    port owns) writes nothing;
 *  - a changed set is rewritten in place with a higher even seq, the same
 *    set not at all; a frontend gone or become ineligible frees its entry;
 *  - a fifth frontend of one home is left out (counted), the four others
 *    stay, across the end of the table too; a freed entry takes it later;
 *  - a batch of entries at an odd address;
 *  - an adopted table is read back (used), its odd entry written whole and
 *    even by the next follow or rebuild, and no second entry is made;
 *  - rebuild against ferry_services4 removes an entry whose key is not
 *    there or is ineligible, mends a wrong one, adds a missing one, leaves
 *    a right one alone; keeps one of a key held twice or out of its
 *    probes; adds a frontend whose probes stale entries filled;
 *  - fast_map_check (B34) undoes an entry altered, left odd, zeroed or
 *    stray, counting each, and finds nothing the next time;
 *  - every flush is the three writes include/ferry/maps.h describes: the
 *    old content with the seq made odd, the new content still odd, the new
 *    content even (bpf_map_update_batch is interposed below to see them);
 *  - a map that is not a table of fast entries of a power of two is refused.
 * Creating maps needs CAP_BPF (tests run as root). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "datapath/fast_map.h"
#include "ferry/hash.h"
#include "ferry/maps.h"

#define SLOTS 64
#define MASK (SLOTS - 1)

static int fd = -1;          /* the table */
static int svc_fd = -1;      /* ferry_services4's stand-in */
static struct fast_map *fm;

/* The batch writes to the table, while rec.on: the writer's calls of
 * libbpf's bpf_map_update_batch resolve to the one below (the executable's
 * definition comes first), which records them and makes the syscall. */
#define REC_CALLS 16
#define REC_KEYS 16

static struct {
	bool on;
	int calls;
	struct {
		uint32_t n;
		uint32_t keys[REC_KEYS];
		struct fast_entry vals[REC_KEYS];
	} call[REC_CALLS];
} rec;

int bpf_map_update_batch(int map_fd, const void *keys, const void *values, __u32 *count,
			 const struct bpf_map_batch_opts *opts)
{
	union bpf_attr attr;
	long ret;

	if (rec.on && map_fd == fd && rec.calls < REC_CALLS) {
		uint32_t n = *count < REC_KEYS ? *count : REC_KEYS;

		rec.call[rec.calls].n = *count;
		memcpy(rec.call[rec.calls].keys, keys, n * sizeof(uint32_t));
		memcpy(rec.call[rec.calls].vals, values, n * sizeof(struct fast_entry));
		rec.calls++;
	}
	memset(&attr, 0, sizeof(attr));
	attr.batch.map_fd = (__u32)map_fd;
	attr.batch.keys = (__u64)(unsigned long)keys;
	attr.batch.values = (__u64)(unsigned long)values;
	attr.batch.count = *count;
	attr.batch.elem_flags = opts ? opts->elem_flags : 0;
	attr.batch.flags = opts ? opts->flags : 0;
	ret = syscall(__NR_bpf, BPF_MAP_UPDATE_BATCH, &attr, sizeof(attr));
	*count = attr.batch.count;
	return ret < 0 ? -1 : 0;
}

static int map_create(enum bpf_map_type type, uint32_t key, uint32_t value, uint32_t max)
{
	int m = bpf_map_create(type, NULL, key, value, max, NULL);

	assert_true(m >= 0);
	return m;
}

static int setup(void **state)
{
	(void)state;
	fd = map_create(BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(struct fast_entry), SLOTS);
	svc_fd = map_create(BPF_MAP_TYPE_HASH, sizeof(struct svc_key4), sizeof(struct svc_entry),
			    256);
	fm = NULL;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fast_map_free(fm);
	fm = NULL;
	close(fd);
	close(svc_fd);
	return 0;
}

/* 10.96.0.0 + n, port, proto, scope all. */
static struct svc_key4 key4(uint32_t n, uint16_t port, uint8_t proto)
{
	struct svc_key4 k = { .addr = htonl(0x0a600000u + n), .port = htons(port), .proto = proto };

	return k;
}

static uint32_t word_of(const struct svc_key4 *k)
{
	uint32_t w;

	memcpy(&w, &k->port, sizeof(w));
	return w;
}

static uint32_t home_of(const struct svc_key4 *k)
{
	return ferry_fast_home(k->addr, word_of(k), MASK);
}

/* Backend i of a set: 198.18.100.(base + i). */
static uint32_t backend_addr(uint32_t base, uint32_t i)
{
	return htonl(0xc6126400u + base + i);
}

/* An eligible entry: count backends 198.18.100.(base+i) on port, each the
 * revnat owner, random, no affinity. */
static struct svc_entry set_of(uint32_t count, uint32_t base, uint16_t port)
{
	struct svc_entry e;

	memset(&e, 0, sizeof(e));
	e.v.svc_id = 7;
	e.v.rev = 3;
	e.v.count = count;
	e.v.algorithm = LB_RANDOM;
	for (uint32_t i = 0; i < count && i < FERRY_SVC_INLINE_V4; i++) {
		e.in.v4[i].addr = backend_addr(base, i);
		e.in.v4[i].port = htons(port);
		e.in.v4[i].flags = SLOT_FLAG_REVNAT_OWNER;
		e.in.v4_backend_id[i] = 100 + i;
	}
	return e;
}

static struct fast_entry read_at(uint32_t at)
{
	struct fast_entry e;

	assert_int_equal(bpf_map_lookup_elem(fd, &at, &e), 0);
	return e;
}

static void write_at(uint32_t at, const struct fast_entry *e)
{
	assert_int_equal(bpf_map_update_elem(fd, &at, e, BPF_ANY), 0);
}

/* The entries of the table holding key k, and the index of the first. */
static int holding(const struct svc_key4 *k, uint32_t *first)
{
	int n = 0;

	for (uint32_t at = 0; at < SLOTS; at++) {
		struct fast_entry e = read_at(at);

		if (e.port_word && e.addr == k->addr && e.port_word == word_of(k)) {
			if (!n && first)
				*first = at;
			n++;
		}
	}
	return n;
}

static int used_in_table(void)
{
	int n = 0;

	for (uint32_t at = 0; at < SLOTS; at++)
		n += read_at(at).port_word != 0;
	return n;
}

static bool table_all_zero(void)
{
	static const struct fast_entry zero;

	for (uint32_t at = 0; at < SLOTS; at++) {
		struct fast_entry e = read_at(at);

		if (memcmp(&e, &zero, sizeof(e)))
			return false;
	}
	return true;
}

/* The fast entry key k with set e must have, seq aside. */
static struct fast_entry want_of(const struct svc_key4 *k, const struct svc_entry *e)
{
	struct fast_entry f;

	memset(&f, 0, sizeof(f));
	f.addr = k->addr;
	f.port_word = word_of(k);
	f.count = (uint16_t)e->v.count;
	f.port = e->in.v4[0].port;
	for (uint32_t i = 0; i < e->v.count; i++)
		f.backend[i] = e->in.v4[i].addr;
	return f;
}

static void assert_content(const struct fast_entry *got, const struct fast_entry *want)
{
	struct fast_entry g = *got, w = *want;

	g.seq = w.seq = 0;
	assert_memory_equal(&g, &w, sizeof(g));
}

static void follow1(const struct svc_key4 *k, const struct svc_entry *e)
{
	assert_int_equal(fast_map_follow(fm, k, e, 1), 0);
}

/* Circular distance between two homes. */
static uint32_t apart(uint32_t a, uint32_t b)
{
	uint32_t d = (a - b) & MASK, e = (b - a) & MASK;

	return d < e ? d : e;
}

/* k's address moved up until its probes overlap none of prev[0..n-1]'s. */
static void pick_apart(struct svc_key4 *k, const struct svc_key4 *prev, int n)
{
	for (int tries = 0; tries < 100000; tries++) {
		bool ok = true;

		for (int i = 0; i < n && ok; i++)
			ok = apart(home_of(k), home_of(&prev[i])) >= FERRY_FAST_PROBES;
		if (ok)
			return;
		k->addr = htonl(ntohl(k->addr) + 1);
	}
	fail_msg("no key apart from %d others", n);
}

/* n eligible keys (TCP port 80) whose home is home, from 10.96.0.1 up. */
static void keys_of_home(uint32_t home, struct svc_key4 *out, int n)
{
	int found = 0;

	for (uint32_t a = 1; a < 100000 && found < n; a++) {
		struct svc_key4 k = key4(a, 80, IPPROTO_TCP);

		if (home_of(&k) == home)
			out[found++] = k;
	}
	assert_int_equal(found, n);
}

/* --- follow -------------------------------------------------------------- */

static void test_follow_writes_home(void **state)
{
	struct svc_key4 k = key4(10, 80, IPPROTO_TCP), u = key4(11, 53, IPPROTO_UDP);
	struct svc_entry e = set_of(3, 1, 8080), d = set_of(2, 20, 53);
	struct fast_entry got, want;
	uint32_t at;

	(void)state;
	fm = fast_map_open(fd, false);
	assert_non_null(fm);
	assert_int_equal(fast_map_counts(fm).used, 0);
	follow1(&k, &e);
	assert_int_equal(holding(&k, &at), 1);
	assert_int_equal(at, home_of(&k));
	got = read_at(at);
	assert_int_equal(got.seq % 2, 0);
	assert_true(got.seq > 0);
	assert_int_equal(got.addr, htonl(0x0a60000a));
	assert_int_equal(got.port_word, htons(80) | IPPROTO_TCP << 16);
	assert_int_equal(got.count, 3);
	assert_int_equal(got.port, htons(8080));
	for (uint32_t i = 0; i < FERRY_FAST_BACKENDS; i++)
		assert_int_equal(got.backend[i], i < 3 ? backend_addr(1, i) : 0);
	want = want_of(&k, &e);
	assert_content(&got, &want);

	/* UDP too. */
	follow1(&u, &d);
	assert_int_equal(holding(&u, &at), 1);
	assert_int_equal(at, home_of(&u) == home_of(&k) ? (home_of(&u) + 1) & MASK : home_of(&u));
	got = read_at(at);
	want = want_of(&u, &d);
	assert_int_equal(got.seq % 2, 0);
	assert_content(&got, &want);
	assert_int_equal(fast_map_counts(fm).used, 2);
	assert_int_equal(used_in_table(), 2);
	assert_int_equal(fast_map_count(fd), 2);
	assert_int_equal(fast_map_counts(fm).left_out, 0);
}

static void test_follow_twelve_is_the_limit(void **state)
{
	struct svc_key4 k = key4(12, 80, IPPROTO_TCP);
	struct svc_entry e = set_of(FERRY_FAST_BACKENDS, 1, 8080);
	struct fast_entry got, want;
	uint32_t at;

	(void)state;
	fm = fast_map_open(fd, false);
	assert_non_null(fm);
	follow1(&k, &e);
	assert_int_equal(holding(&k, &at), 1);
	got = read_at(at);
	want = want_of(&k, &e);
	assert_content(&got, &want);
	assert_int_equal(got.count, FERRY_FAST_BACKENDS);
}

/* Each case: the key and entry, ineligible for one reason. */
static void test_ineligible_writes_nothing(void **state)
{
	struct {
		const char *why;
		struct svc_key4 key;
		struct svc_entry e;
	} c[16];
	int n = 0;

	(void)state;
	fm = fast_map_open(fd, false);
	assert_non_null(fm);
#define CASE(WHY, KEY) (c[n].why = (WHY), c[n].key = (KEY), c[n].e = set_of(3, 1, 8080), &c[n++])
	CASE("SCTP", key4(1, 80, IPPROTO_SCTP));
	CASE("scope external", key4(2, 80, IPPROTO_TCP))->key.scope = SVC_SCOPE_EXTERNAL;
	{
		struct svc_key4 vip = key4(3, 0, 0);

		CASE("VIP marker", vip)->e.v.flags = SVC_FLAG_VIP_MARKER;
		c[n - 1].e.v.count = 0;
	}
	{
		struct svc_key4 np = { .addr = 0, .port = htons(30080), .proto = IPPROTO_TCP };

		CASE("NodePort", np)->e.v.flags = SVC_FLAG_EXTERNAL | SVC_FLAG_NODE_PORT;
	}
	CASE("LB IP", key4(5, 80, IPPROTO_TCP))->e.v.flags = SVC_FLAG_EXTERNAL | SVC_FLAG_LOAD_BALANCER;
	CASE("externalIP", key4(6, 80, IPPROTO_TCP))->e.v.flags = SVC_FLAG_EXTERNAL;
	CASE("round-robin", key4(7, 80, IPPROTO_TCP))->e.v.algorithm = LB_ROUND_ROBIN;
	CASE("maglev", key4(8, 80, IPPROTO_TCP))->e.v.algorithm = LB_MAGLEV;
	CASE("least-conn", key4(9, 80, IPPROTO_TCP))->e.v.algorithm = LB_LEAST_CONN;
	CASE("session affinity", key4(10, 80, IPPROTO_TCP))->e.v.affinity_timeout = 10800;
	CASE("no backend", key4(11, 80, IPPROTO_TCP))->e = set_of(0, 1, 8080);
	CASE("13 backends", key4(12, 80, IPPROTO_TCP))->e = set_of(FERRY_FAST_BACKENDS + 1, 1, 8080);
	CASE("two ports", key4(13, 80, IPPROTO_TCP))->e.in.v4[2].port = htons(8081);
	CASE("a backend another port owns", key4(14, 80, IPPROTO_TCP))->e.in.v4[1].flags = 0;
	CASE("17 backends (slots)", key4(15, 80, IPPROTO_TCP))->e = set_of(17, 1, 8080);
#undef CASE
	for (int i = 0; i < n; i++) {
		print_message("ineligible: %s\n", c[i].why);
		follow1(&c[i].key, &c[i].e);
		assert_true(table_all_zero());
		assert_int_equal(fast_map_counts(fm).used, 0);
	}
	/* All of them in one batch, too. */
	{
		struct svc_key4 keys[16];
		struct svc_entry es[16];

		for (int i = 0; i < n; i++) {
			keys[i] = c[i].key;
			es[i] = c[i].e;
		}
		assert_int_equal(fast_map_follow(fm, keys, es, (uint32_t)n), 0);
		assert_true(table_all_zero());
	}
	assert_int_equal(fast_map_counts(fm).left_out, 0);
}

static void test_rewrite_in_place(void **state)
{
	struct svc_key4 k = key4(20, 80, IPPROTO_TCP);
	struct svc_entry a = set_of(3, 1, 8080), b = set_of(5, 40, 9090);
	struct fast_entry got, want;
	uint32_t at, at2, seq1;

	(void)state;
	fm = fast_map_open(fd, false);
	assert_non_null(fm);
	follow1(&k, &a);
	assert_int_equal(holding(&k, &at), 1);
	seq1 = read_at(at).seq;

	/* The same set again: nothing is written. */
	follow1(&k, &a);
	assert_int_equal(read_at(at).seq, seq1);

	/* Another set: in place, a higher even seq. */
	follow1(&k, &b);
	assert_int_equal(holding(&k, &at2), 1);
	assert_int_equal(at2, at);
	got = read_at(at);
	assert_true(got.seq > seq1);
	assert_int_equal(got.seq % 2, 0);
	want = want_of(&k, &b);
	assert_content(&got, &want);

	/* Fewer backends: the ones past the count are cleared. */
	b = set_of(2, 60, 9090);
	follow1(&k, &b);
	got = read_at(at);
	want = want_of(&k, &b);
	assert_content(&got, &want);
	assert_int_equal(got.seq % 2, 0);
	assert_int_equal(fast_map_counts(fm).used, 1);
}

static void test_gone_frees(void **state)
{
	struct svc_key4 k = key4(30, 80, IPPROTO_TCP), j = key4(31, 80, IPPROTO_TCP);
	struct svc_entry e = set_of(3, 1, 8080);
	struct fast_entry got;
	uint32_t at, seq1;

	(void)state;
	fm = fast_map_open(fd, false);
	assert_non_null(fm);
	follow1(&k, &e);
	follow1(&j, &e);
	assert_int_equal(holding(&k, &at), 1);
	seq1 = read_at(at).seq;
	assert_int_equal(fast_map_follow(fm, &k, NULL, 1), 0);
	assert_int_equal(holding(&k, NULL), 0);
	got = read_at(at);
	assert_int_equal(got.port_word, 0);
	assert_int_equal(got.seq % 2, 0);
	assert_true(got.seq > seq1);
	assert_int_equal(fast_map_counts(fm).used, 1);
	assert_int_equal(used_in_table(), 1);

	/* Deleting what the table does not hold writes nothing. */
	assert_int_equal(fast_map_follow(fm, &k, NULL, 1), 0);
	assert_int_equal(read_at(at).seq, got.seq);

	/* Become ineligible (session affinity turned on): freed as well. */
	e.v.affinity_timeout = 60;
	follow1(&j, &e);
	assert_int_equal(holding(&j, NULL), 0);
	assert_int_equal(fast_map_counts(fm).used, 0);
	assert_int_equal(used_in_table(), 0);
}

/* FERRY_FAST_PROBES keys of one home fill its probes; one more is left
 * out, counted, the others untouched; an entry freed takes it later. */
static void probes_full(uint32_t home)
{
	struct svc_key4 k[FERRY_FAST_PROBES + 1];
	struct svc_entry e = set_of(2, 1, 8080);
	struct fast_entry before[FERRY_FAST_PROBES];
	uint32_t at;

	fm = fast_map_open(fd, false);
	assert_non_null(fm);
	keys_of_home(home, k, FERRY_FAST_PROBES + 1);
	for (int i = 0; i < FERRY_FAST_PROBES; i++) {
		follow1(&k[i], &e);
		assert_int_equal(holding(&k[i], &at), 1);
		assert_int_equal(at, (home + (uint32_t)i) & MASK);
		before[i] = read_at(at);
	}
	assert_int_equal(fast_map_counts(fm).left_out, 0);
	follow1(&k[FERRY_FAST_PROBES], &e);
	assert_int_equal(holding(&k[FERRY_FAST_PROBES], NULL), 0);
	assert_int_equal(fast_map_counts(fm).left_out, 1);
	assert_int_equal(fast_map_counts(fm).used, FERRY_FAST_PROBES);
	for (int i = 0; i < FERRY_FAST_PROBES; i++) {
		struct fast_entry now = read_at((home + (uint32_t)i) & MASK);

		assert_memory_equal(&now, &before[i], sizeof(now));
	}
	assert_int_equal(used_in_table(), FERRY_FAST_PROBES);

	/* The second one goes. One past the hole is still found where it is
	 * (the probes do not stop at a free entry): a new set is written in
	 * place, not into the hole. */
	assert_int_equal(fast_map_follow(fm, &k[1], NULL, 1), 0);
	{
		struct svc_entry other = set_of(3, 50, 8080);
		struct fast_entry got, want = want_of(&k[3], &other);

		follow1(&k[3], &other);
		assert_int_equal(holding(&k[3], &at), 1);
		assert_int_equal(at, (home + 3) & MASK);
		got = read_at(at);
		assert_content(&got, &want);
	}
	/* The fifth, written again, takes the freed entry. */
	follow1(&k[FERRY_FAST_PROBES], &e);
	assert_int_equal(holding(&k[FERRY_FAST_PROBES], &at), 1);
	assert_int_equal(at, (home + 1) & MASK);
	assert_int_equal(fast_map_counts(fm).used, FERRY_FAST_PROBES);
	assert_int_equal(fast_map_counts(fm).left_out, 1);
}

static void test_probes_full(void **state)
{
	(void)state;
	probes_full(17);
}

static void test_probes_wrap(void **state)
{
	(void)state;
	probes_full(MASK - 1);
}

/* A batch of 3, its entries at an odd address. */
static void test_batch_unaligned(void **state)
{
	struct svc_key4 keys[3] = { key4(40, 80, IPPROTO_TCP), key4(41, 80, IPPROTO_TCP),
				    key4(42, 53, IPPROTO_UDP) };
	struct svc_entry es[3] = { set_of(1, 1, 8080), set_of(3, 10, 8081), set_of(12, 20, 53) };
	char *buf = malloc(sizeof(es) + 1);
	uint32_t at;

	(void)state;
	assert_non_null(buf);
	memcpy(buf + 1, es, sizeof(es));
	fm = fast_map_open(fd, false);
	assert_non_null(fm);
	assert_int_equal(fast_map_follow(fm, keys, buf + 1, 3), 0);
	for (int i = 0; i < 3; i++) {
		struct fast_entry got, want = want_of(&keys[i], &es[i]);

		assert_int_equal(holding(&keys[i], &at), 1);
		got = read_at(at);
		assert_int_equal(got.seq % 2, 0);
		assert_content(&got, &want);
	}
	assert_int_equal(fast_map_counts(fm).used, 3);
	free(buf);
}

/* --- adoption ---------------------------------------------------------- */

/* The table an earlier ferryd left: k1 at its home (seq 4), k2 at its home
 * left odd (seq 7, its old backends), a free entry left odd elsewhere. */
static void leave_table(const struct svc_key4 *k1, const struct svc_entry *e1,
			const struct svc_key4 *k2, uint32_t *odd_free)
{
	struct fast_entry f1 = want_of(k1, e1), f2;
	struct svc_entry old2 = set_of(2, 90, 7070);

	f1.seq = 4;
	write_at(home_of(k1), &f1);
	f2 = want_of(k2, &old2);
	f2.seq = 7;
	write_at(home_of(k2), &f2);
	/* An entry freed by a write that stopped half way: zero, odd, out of
	 * both keys' probes. */
	*odd_free = 0;
	while (((*odd_free - home_of(k1)) & MASK) < FERRY_FAST_PROBES ||
	       ((*odd_free - home_of(k2)) & MASK) < FERRY_FAST_PROBES)
		(*odd_free)++;
	{
		struct fast_entry z = { .seq = 9 };

		write_at(*odd_free, &z);
	}
}

static void two_keys(struct svc_key4 *k1, struct svc_key4 *k2)
{
	*k1 = key4(50, 80, IPPROTO_TCP);
	*k2 = key4(51, 80, IPPROTO_TCP);
	pick_apart(k2, k1, 1);
}

static void test_open_adopts_follow(void **state)
{
	struct svc_key4 k1, k2;
	struct svc_entry e1 = set_of(3, 1, 8080), e2 = set_of(2, 30, 8080);
	struct fast_entry got, want;
	uint32_t at, odd_free;

	(void)state;
	two_keys(&k1, &k2);
	leave_table(&k1, &e1, &k2, &odd_free);
	fm = fast_map_open(fd, true);
	assert_non_null(fm);
	assert_int_equal(fast_map_counts(fm).used, 2);

	/* k1 again, unchanged: the adopted entry is it; nothing written. */
	follow1(&k1, &e1);
	assert_int_equal(holding(&k1, &at), 1);
	assert_int_equal(at, home_of(&k1));
	assert_int_equal(read_at(at).seq, 4);

	/* k2, left odd: written whole, even, in place. The entry left odd and
	 * free is written even too, by the same flush. */
	follow1(&k2, &e2);
	assert_int_equal(holding(&k2, &at), 1);
	assert_int_equal(at, home_of(&k2));
	got = read_at(at);
	want = want_of(&k2, &e2);
	assert_int_equal(got.seq % 2, 0);
	assert_true(got.seq > 7);
	assert_content(&got, &want);
	got = read_at(odd_free);
	assert_int_equal(got.port_word, 0);
	assert_int_equal(got.seq % 2, 0);
	assert_int_equal(fast_map_counts(fm).used, 2);
	assert_int_equal(used_in_table(), 2);
}

/* An odd entry whose content is already right: the next follow of the same
 * set must still make it even. */
static void test_open_adopts_odd_same(void **state)
{
	struct svc_key4 k = key4(60, 80, IPPROTO_TCP);
	struct svc_entry e = set_of(3, 1, 8080);
	struct fast_entry f = want_of(&k, &e), got;

	(void)state;
	f.seq = 11;
	write_at(home_of(&k), &f);
	fm = fast_map_open(fd, true);
	assert_non_null(fm);
	assert_int_equal(fast_map_counts(fm).used, 1);
	follow1(&k, &e);
	assert_int_equal(holding(&k, NULL), 1);
	got = read_at(home_of(&k));
	assert_int_equal(got.seq % 2, 0);
	assert_content(&got, &f);
}

/* Not adopted: the table is taken as new, whatever it holds. */
static void test_open_new_ignores(void **state)
{
	struct svc_key4 k = key4(61, 80, IPPROTO_TCP);
	struct svc_entry e = set_of(3, 1, 8080);
	struct fast_entry f = want_of(&k, &e);

	(void)state;
	f.seq = 2;
	write_at(home_of(&k), &f);
	fm = fast_map_open(fd, false);
	assert_non_null(fm);
	assert_int_equal(fast_map_counts(fm).used, 0);
}

static void svc_put(const struct svc_key4 *k, const struct svc_entry *e)
{
	assert_int_equal(bpf_map_update_elem(svc_fd, k, e, BPF_ANY), 0);
}

static void test_rebuild(void **state)
{
	struct svc_key4 right = key4(70, 80, IPPROTO_TCP), wrong = key4(71, 80, IPPROTO_TCP),
			missing = key4(72, 53, IPPROTO_UDP), gone = key4(73, 80, IPPROTO_TCP),
			inel = key4(74, 80, IPPROTO_TCP), odd = key4(75, 80, IPPROTO_TCP),
			vip = key4(70, 0, 0);
	struct svc_entry e_right = set_of(3, 1, 8080), e_wrong = set_of(2, 10, 8080),
			 e_missing = set_of(4, 20, 53), e_inel = set_of(3, 30, 8080),
			 e_odd = set_of(1, 40, 8080), e_vip;
	struct svc_key4 all[6] = { right, wrong, missing, gone, inel, odd };
	struct fast_entry f, got, want;
	uint32_t homes[6], at, seq_right;

	(void)state;
	/* Probes that do not overlap: each key sits at its home. */
	for (int i = 1; i < 6; i++)
		pick_apart(&all[i], all, i);
	right = all[0]; wrong = all[1]; missing = all[2]; gone = all[3]; inel = all[4]; odd = all[5];
	for (int i = 0; i < 6; i++)
		homes[i] = home_of(&all[i]);
	for (int i = 0; i < 6; i++)
		for (int j = 0; j < i; j++)
			assert_true(apart(homes[i], homes[j]) >= FERRY_FAST_PROBES);

	/* ferry_services4: right, wrong, missing, inel (now with affinity),
	 * odd, and a VIP marker. */
	memset(&e_vip, 0, sizeof(e_vip));
	e_vip.v.flags = SVC_FLAG_VIP_MARKER;
	e_inel.v.affinity_timeout = 10800;
	svc_put(&right, &e_right);
	svc_put(&wrong, &e_wrong);
	svc_put(&missing, &e_missing);
	svc_put(&inel, &e_inel);
	svc_put(&odd, &e_odd);
	svc_put(&vip, &e_vip);

	/* The table an earlier ferryd left. */
	f = want_of(&right, &e_right);
	f.seq = 6;
	write_at(home_of(&right), &f);
	{
		struct svc_entry stale = set_of(2, 50, 8080);

		f = want_of(&wrong, &stale);
		f.seq = 8;
		write_at(home_of(&wrong), &f);
	}
	f = want_of(&gone, &e_right);
	f.seq = 2;
	write_at(home_of(&gone), &f);
	{
		struct svc_entry was = set_of(3, 30, 8080);

		f = want_of(&inel, &was);
		f.seq = 2;
		write_at(home_of(&inel), &f);
	}
	f = want_of(&odd, &e_odd);
	f.seq = 5;
	write_at(home_of(&odd), &f);

	fm = fast_map_open(fd, true);
	assert_non_null(fm);
	assert_int_equal(fast_map_counts(fm).used, 5);
	seq_right = read_at(home_of(&right)).seq;
	assert_int_equal(fast_map_rebuild(fm, svc_fd), 0);

	/* right: untouched. */
	assert_int_equal(holding(&right, &at), 1);
	assert_int_equal(read_at(at).seq, seq_right);
	/* wrong: mended in place, even. */
	assert_int_equal(holding(&wrong, &at), 1);
	assert_int_equal(at, home_of(&wrong));
	got = read_at(at);
	want = want_of(&wrong, &e_wrong);
	assert_int_equal(got.seq % 2, 0);
	assert_true(got.seq > 8);
	assert_content(&got, &want);
	/* missing: added at its home. */
	assert_int_equal(holding(&missing, &at), 1);
	assert_int_equal(at, home_of(&missing));
	got = read_at(at);
	want = want_of(&missing, &e_missing);
	assert_int_equal(got.seq % 2, 0);
	assert_content(&got, &want);
	/* gone (no ferry_services4 entry) and inel (ineligible now): freed. */
	assert_int_equal(holding(&gone, NULL), 0);
	assert_int_equal(holding(&inel, NULL), 0);
	assert_int_equal(read_at(home_of(&gone)).seq % 2, 0);
	/* odd: even again, its content kept. */
	assert_int_equal(holding(&odd, &at), 1);
	got = read_at(at);
	want = want_of(&odd, &e_odd);
	assert_int_equal(got.seq % 2, 0);
	assert_content(&got, &want);

	assert_int_equal(fast_map_counts(fm).used, 4);
	assert_int_equal(used_in_table(), 4);
	assert_int_equal(fast_map_count(fd), 4);
	/* Every seq in the table even. */
	for (uint32_t i = 0; i < SLOTS; i++)
		assert_int_equal(read_at(i).seq % 2, 0);

	/* A second rebuild finds nothing to do. */
	{
		struct fast_entry snap[SLOTS];

		for (uint32_t i = 0; i < SLOTS; i++)
			snap[i] = read_at(i);
		assert_int_equal(fast_map_rebuild(fm, svc_fd), 0);
		for (uint32_t i = 0; i < SLOTS; i++) {
			struct fast_entry now = read_at(i);

			assert_memory_equal(&now, &snap[i], sizeof(now));
		}
	}
}

/* A key the table holds twice, and one out of its probes: one entry each
 * is left, within the probes. */
static void test_rebuild_duplicates(void **state)
{
	struct svc_key4 k = key4(80, 80, IPPROTO_TCP), far = key4(81, 80, IPPROTO_TCP);
	struct svc_entry e = set_of(3, 1, 8080);
	struct fast_entry f;
	uint32_t at;

	(void)state;
	while (apart(home_of(&far), home_of(&k)) < 2 * FERRY_FAST_PROBES + 2)
		far.addr = htonl(ntohl(far.addr) + 1);
	svc_put(&k, &e);
	svc_put(&far, &e);
	f = want_of(&k, &e);
	f.seq = 2;
	write_at(home_of(&k), &f);
	write_at((home_of(&k) + 2) & MASK, &f);
	f = want_of(&far, &e);
	write_at((home_of(&far) + FERRY_FAST_PROBES + 1) & MASK, &f);
	fm = fast_map_open(fd, true);
	assert_non_null(fm);
	assert_int_equal(fast_map_rebuild(fm, svc_fd), 0);
	assert_int_equal(holding(&k, &at), 1);
	assert_int_equal(at, home_of(&k));
	assert_int_equal(holding(&far, &at), 1);
	assert_int_equal(at, home_of(&far));
	assert_int_equal(fast_map_counts(fm).used, 2);
	assert_int_equal(used_in_table(), 2);
}

/* --- the three writes -------------------------------------------------- */

/* Recorded call i wrote n entries; entry j is at, with seq and content c
 * (NULL: all zero). */
static void assert_call(int i, uint32_t j, uint32_t at, uint32_t seq, const struct fast_entry *c)
{
	static const struct fast_entry zero;
	const struct fast_entry *got = &rec.call[i].vals[j];

	assert_int_equal(rec.call[i].keys[j], at);
	assert_int_equal(got->seq, seq);
	assert_content(got, c ? c : &zero);
}

static void test_three_writes(void **state)
{
	struct svc_key4 k = key4(90, 80, IPPROTO_TCP), j = key4(91, 80, IPPROTO_TCP);
	struct svc_entry a = set_of(3, 1, 8080), b = set_of(2, 20, 9090);
	struct fast_entry fa, fb, fj;
	struct svc_key4 keys[2];
	struct svc_entry es[2];
	uint32_t at, atj, s;

	(void)state;
	pick_apart(&j, &k, 1);
	fa = want_of(&k, &a);
	fb = want_of(&k, &b);
	fj = want_of(&j, &a);
	fm = fast_map_open(fd, false);
	assert_non_null(fm);
	at = home_of(&k);
	atj = home_of(&j);

	/* New: zero with the seq odd, the new content odd, then even. */
	memset(&rec, 0, sizeof(rec));
	rec.on = true;
	follow1(&k, &a);
	rec.on = false;
	assert_int_equal(rec.calls, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rec.call[i].n, 1);
	s = rec.call[0].vals[0].seq;
	assert_int_equal(s % 2, 1);
	assert_call(0, 0, at, s, NULL);
	assert_call(1, 0, at, s, &fa);
	assert_call(2, 0, at, s + 1, &fa);

	/* Rewritten: the old content made odd first. */
	memset(&rec, 0, sizeof(rec));
	rec.on = true;
	follow1(&k, &b);
	rec.on = false;
	assert_int_equal(rec.calls, 3);
	assert_call(0, 0, at, s + 2, &fa);
	assert_call(1, 0, at, s + 2, &fb);
	assert_call(2, 0, at, s + 3, &fb);

	/* The same set: no write at all. */
	memset(&rec, 0, sizeof(rec));
	rec.on = true;
	follow1(&k, &b);
	rec.on = false;
	assert_int_equal(rec.calls, 0);

	/* A batch of two, one deleted (k becomes ineligible) and one new (j):
	 * three calls of two entries each. */
	keys[0] = k;
	keys[1] = j;
	es[0] = b;
	es[0].v.algorithm = LB_ROUND_ROBIN;
	es[1] = a;
	memset(&rec, 0, sizeof(rec));
	rec.on = true;
	assert_int_equal(fast_map_follow(fm, keys, es, 2), 0);
	rec.on = false;
	assert_int_equal(rec.calls, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rec.call[i].n, 2);
	assert_call(0, 0, at, s + 4, &fb);
	assert_call(1, 0, at, s + 4, NULL);
	assert_call(2, 0, at, s + 5, NULL);
	{
		uint32_t sj = rec.call[0].vals[1].seq;

		assert_int_equal(sj % 2, 1);
		assert_call(0, 1, atj, sj, NULL);
		assert_call(1, 1, atj, sj, &fj);
		assert_call(2, 1, atj, sj + 1, &fj);
	}
	/* What the kernel holds is the last write. */
	{
		struct fast_entry got = read_at(at);

		assert_int_equal(got.seq, s + 5);
		assert_int_equal(got.port_word, 0);
	}
}

/* Stale entries (keys ferry_services4 no longer has) filling the probes of
 * a frontend it does have: rebuild frees them, and the frontend must then
 * be in the table: the table is a function of ferry_services4 ("nothing
 * else writes it", fast_map.h), not of the order rebuild walks in. */
static void test_rebuild_stale_full_probes(void **state)
{
	struct svc_key4 k[FERRY_FAST_PROBES + 1];
	struct svc_entry e = set_of(1, 1, 8080);
	struct fast_entry f, want;
	uint32_t at;

	(void)state;
	keys_of_home(10, k, FERRY_FAST_PROBES + 1);
	svc_put(&k[FERRY_FAST_PROBES], &e);
	for (int i = 0; i < FERRY_FAST_PROBES; i++) {
		struct svc_entry stale = set_of(1, 90, 8080);

		f = want_of(&k[i], &stale);
		f.seq = 2;
		write_at(10 + (uint32_t)i, &f);
	}
	fm = fast_map_open(fd, true);
	assert_non_null(fm);
	assert_int_equal(fast_map_rebuild(fm, svc_fd), 0);
	for (int i = 0; i < FERRY_FAST_PROBES; i++)
		assert_int_equal(holding(&k[i], NULL), 0);
	assert_int_equal(holding(&k[FERRY_FAST_PROBES], &at), 1);
	f = read_at(at);
	want = want_of(&k[FERRY_FAST_PROBES], &e);
	assert_content(&f, &want);
	assert_int_equal(fast_map_counts(fm).used, 1);
	assert_int_equal(fast_map_counts(fm).left_out, 0);
}

/* --- check (B34) -------------------------------------------------------- */

/* What someone else did to the table is undone: an entry altered (even,
 * other backends), one left odd with its content, one zeroed, a stray one
 * written where the table has none. Each is counted once; the table is
 * then what the follows wrote, every seq even; a second check finds
 * nothing. */
static void test_check_repairs(void **state)
{
	struct svc_key4 k[4] = { key4(100, 80, IPPROTO_TCP), key4(101, 80, IPPROTO_TCP),
				 key4(102, 53, IPPROTO_UDP), key4(103, 80, IPPROTO_TCP) };
	struct svc_entry e[3] = { set_of(3, 1, 8080), set_of(2, 10, 8080), set_of(1, 20, 53) };
	struct fast_repairs r;
	struct fast_entry f, snap[SLOTS];
	uint32_t at[3], stray;

	(void)state;
	for (int i = 1; i < 4; i++)
		pick_apart(&k[i], k, i);
	fm = fast_map_open(fd, false);
	assert_non_null(fm);
	for (int i = 0; i < 3; i++) {
		follow1(&k[i], &e[i]);
		assert_int_equal(holding(&k[i], &at[i]), 1);
	}
	for (uint32_t i = 0; i < SLOTS; i++)
		snap[i] = read_at(i);

	/* Nothing changed: nothing repaired, every entry read. */
	assert_int_equal(fast_map_check(fm, &r), SLOTS);
	assert_int_equal(r.missing + r.altered + r.unknown, 0);

	f = snap[at[0]];
	f.seq += 2;
	f.backend[1] = htonl(0xc6124d09);
	write_at(at[0], &f);
	f = snap[at[1]];
	f.seq += 1;
	write_at(at[1], &f);
	memset(&f, 0, sizeof(f));
	write_at(at[2], &f);
	stray = home_of(&k[3]);
	{
		struct svc_entry x = set_of(1, 99, 8080);

		f = want_of(&k[3], &x);
		f.seq = 2;
		write_at(stray, &f);
	}
	assert_int_equal(fast_map_check(fm, &r), SLOTS);
	assert_int_equal(r.altered, 2);
	assert_int_equal(r.missing, 1);
	assert_int_equal(r.unknown, 1);
	for (int i = 0; i < 3; i++) {
		struct fast_entry want = want_of(&k[i], &e[i]);

		f = read_at(at[i]);
		assert_int_equal(f.seq % 2, 0);
		assert_content(&f, &want);
		assert_int_equal(holding(&k[i], NULL), 1);
	}
	assert_int_equal(holding(&k[3], NULL), 0);
	assert_int_equal(read_at(stray).seq % 2, 0);
	assert_int_equal(used_in_table(), 3);
	assert_int_equal(fast_map_counts(fm).used, 3);

	/* Put back: the next check finds nothing, and the follows go on from
	 * there (a changed set is written in place). */
	assert_int_equal(fast_map_check(fm, &r), SLOTS);
	assert_int_equal(r.missing + r.altered + r.unknown, 0);
	e[0] = set_of(4, 40, 8080);
	follow1(&k[0], &e[0]);
	{
		struct fast_entry want = want_of(&k[0], &e[0]);
		uint32_t now;

		assert_int_equal(holding(&k[0], &now), 1);
		assert_int_equal(now, at[0]);
		f = read_at(now);
		assert_int_equal(f.seq % 2, 0);
		assert_content(&f, &want);
	}
}

/* --- refused tables ------------------------------------------------------ */

static void test_open_refuses(void **state)
{
	int bad_size = map_create(BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(struct fast_entry), 48);
	int bad_value = map_create(BPF_MAP_TYPE_ARRAY, sizeof(__u32), 32, 64);

	(void)state;
	assert_null(fast_map_open(bad_size, false));
	assert_null(fast_map_open(bad_value, false));
	assert_null(fast_map_open(bad_size, true));
	close(bad_size);
	close(bad_value);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_follow_writes_home, setup, teardown),
		cmocka_unit_test_setup_teardown(test_follow_twelve_is_the_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ineligible_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rewrite_in_place, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone_frees, setup, teardown),
		cmocka_unit_test_setup_teardown(test_probes_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_probes_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_unaligned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_adopts_follow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_adopts_odd_same, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_new_ignores, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild_stale_full_probes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_three_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_repairs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
