/* Unit tests of the Maglev table builder (sync/maglev.h) against the paper
 * (Eisenbud et al., NSDI 2016, section 3.4) and issue 16: table sizes,
 * entries in range, exact round-robin balance, the same table on every node
 * (same identities in the same order, whatever the arrays' addresses,
 * padding or previous contents), the same table as a plain reading of the
 * paper's pseudo-code with the documented hashes, and minimal disruption:
 * removing (adding) one of n backends moves at most 1/n (1/(n+1)) of the
 * entries plus a few points (see EXTRA_POINTS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "sync/maglev.h"

enum family { V4, V6 };

/* Maglev at size ~100 n moves up to ~2.6 points (removal) and ~3.9
 * points (addition) of entries beyond the minimum at these n (the figures
 * print): the 1 point needs ~1000 n. The envelope asserted here
 * catches a builder that is not Maglev's (another size or order moves most
 * entries). */
#define EXTRA_POINTS 5.0

/* Backend i of a set: pod addresses 10.244.x.y (v4-mapped) or
 * fd00:10:244::x:y, ports 8080 or 443, increasing with i. */
static struct maglev_backend backend(enum family f, uint32_t i)
{
	struct maglev_backend b;

	memset(&b, 0, sizeof(b));
	if (f == V4) {
		b.addr[2] = htonl(0xffff);
		b.addr[3] = htonl(0x0af40000 + i);
		b.port = htons(8080);
	} else {
		b.addr[0] = htonl(0xfd000010);
		b.addr[1] = htonl(0x02440000);
		b.addr[3] = htonl(i);
		b.port = htons(443);
	}
	return b;
}

/* Backends 0, step, 2 step, ... (n of them), sorted as every node sorts. */
static struct maglev_backend *make_set(enum family f, uint32_t n, uint32_t step)
{
	struct maglev_backend *b = calloc(n ? n : 1, sizeof(*b));

	assert_non_null(b);
	for (uint32_t i = 0; i < n; i++)
		b[i] = backend(f, i * step);
	return b;
}

static uint16_t *build(const struct maglev_backend *b, uint32_t n, uint32_t size)
{
	uint16_t *t = malloc((size_t)size * sizeof(*t));

	assert_non_null(t);
	assert_int_equal(maglev_build(b, n, size, t), 0);
	return t;
}

static int is_prime(uint32_t m)
{
	if (m < 2)
		return 0;
	for (uint32_t d = 2; (uint64_t)d * d <= m; d++)
		if (m % d == 0)
			return 0;
	return 1;
}

static uint32_t next_prime(uint32_t m)
{
	while (!is_prime(m))
		m++;
	return m;
}

/* Sizes: 0 for no backends (or too many); else a prime >= n and
 * <= 2^17-1, and the first of the classes (smallest prime >= 700 << k,
 * k = 0..7, then 2^17-1) that is >= 100 n (1% balance), up to 1310
 * backends; the cap beyond. Never more than twice the tight rule (smallest
 * prime >= 100 n) from 8 backends on, and the usual replica counts keep
 * their size when one backend leaves or joins. */
static void test_sizes(void **state)
{
	static const uint32_t usual[] = { 2, 3, 4, 5, 6, 10, 20, 50, 100, 200, 500, 1000 };
	uint32_t classes[9];

	(void)state;
	for (uint32_t k = 0; k < 8; k++)
		classes[k] = next_prime(700u << k);
	classes[8] = 131071;
	assert_true(is_prime(131071));
	assert_int_equal(maglev_table_size(0), 0);
	assert_int_equal(maglev_table_size(65536), 0);
	assert_int_equal(maglev_table_size(1), 701);
	assert_int_equal(maglev_table_size(2), 701);
	assert_int_equal(maglev_table_size(10), 1409);
	assert_int_equal(maglev_table_size(1311), 131071);
	assert_int_equal(maglev_table_size(65535), 131071);
	for (uint32_t n = 1; n <= 65535; n++) {
		uint32_t size = maglev_table_size(n), want = 131071;

		for (uint32_t k = 0; k < 9 && n <= 1310; k++)
			if (classes[k] >= 100 * n) {
				want = classes[k];
				break;
			}
		if (size != want || !is_prime(size) || size < n)
			fail_msg("n=%u: size %u, want %u", n, size, want);
		if (n >= 8 && n <= 1310 && size > 2 * next_prime(100 * n))
			fail_msg("n=%u: size %u > twice %u", n, size, next_prime(100 * n));
	}
	for (size_t i = 0; i < sizeof(usual) / sizeof(usual[0]); i++) {
		uint32_t n = usual[i];

		if (maglev_table_size(n - 1) != maglev_table_size(n) ||
		    maglev_table_size(n + 1) != maglev_table_size(n))
			fail_msg("n=%u: the size changes at n-1 or n+1", n);
	}
}

/* Bad arguments are refused before anything is written. */
static void test_rejects(void **state)
{
	struct maglev_backend *b = make_set(V4, 65536, 1);
	uint16_t *t = malloc(131101 * sizeof(*t));

	(void)state;
	assert_non_null(t);
	memset(t, 0xab, 131101 * sizeof(*t));
	assert_int_equal(maglev_build(b, 0, 701, t), -1);           /* no backends */
	assert_int_equal(maglev_build(b, 65536, 131071, t), -1);    /* too many */
	assert_int_equal(maglev_build(b, 10, 1000, t), -1);         /* not prime */
	assert_int_equal(maglev_build(b, 10, 1, t), -1);            /* not prime */
	assert_int_equal(maglev_build(b, 10, 7, t), -1);            /* < n */
	assert_int_equal(maglev_build(b, 10, 131101, t), -1);       /* prime, too big */
	for (uint32_t e = 0; e < 131101; e++)
		if (t[e] != 0xabab)
			fail_msg("entry %u written by a refused build", e);
	/* The smallest legal tables. */
	assert_int_equal(maglev_build(b, 1, 2, t), 0);
	assert_int_equal(t[0], 0);
	assert_int_equal(t[1], 0);
	assert_int_equal(maglev_build(b, 2, 2, t), 0);
	assert_int_equal(t[0] + t[1], 1);
	free(t);
	free(b);
}

/* Every entry names one of the n slots, and population is round-robin:
 * backend i holds exactly floor(size/n) entries, one more when
 * i < size % n. So shares differ by at most one entry. */
static void check_range_and_balance(enum family f, uint32_t n)
{
	struct maglev_backend *b = make_set(f, n, 7);
	uint32_t size = maglev_table_size(n);
	uint16_t *t = build(b, n, size);
	uint32_t *count = calloc(n, sizeof(*count));

	assert_non_null(count);
	for (uint32_t e = 0; e < size; e++) {
		if (t[e] >= n)
			fail_msg("n=%u: entry %u = %u", n, e, t[e]);
		count[t[e]]++;
	}
	for (uint32_t i = 0; i < n; i++)
		if (count[i] != size / n + (i < size % n))
			fail_msg("n=%u size=%u: backend %u holds %u, not %u", n, size, i, count[i],
				 size / n + (i < size % n));
	free(count);
	free(t);
	free(b);
}

static void test_range_and_balance(void **state)
{
	static const uint32_t ns[] = { 1, 2, 3, 5, 7, 8, 10, 50, 100, 256, 257, 1000, 1311, 65535 };

	(void)state;
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		check_range_and_balance(V4, ns[i]);
		check_range_and_balance(V6, ns[i]);
	}
}

/* The paper's population, read plainly: permutation[i][j] = (offset +
 * j * skip) % size, offset = h1 % size, skip = h2 % (size - 1) + 1, with
 * h1, h2 = fmix64(FNV-1a 64 over addr then port bytes) from the two bases
 * maglev.h documents. */
static uint64_t ref_hash(uint64_t h, const struct maglev_backend *b)
{
	unsigned char id[18];

	memcpy(id, b->addr, 16);
	memcpy(id + 16, &b->port, 2);
	for (size_t i = 0; i < sizeof(id); i++)
		h = (h ^ id[i]) * 1099511628211ULL;
	h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdULL;
	h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 33);
}

static void ref_build(const struct maglev_backend *b, uint32_t n, uint32_t size, int32_t *entry)
{
	uint64_t *offset = calloc(n, sizeof(*offset)), *skip = calloc(n, sizeof(*skip));
	uint64_t *next = calloc(n, sizeof(*next));
	uint32_t filled = 0;

	assert_true(offset && skip && next);
	for (uint32_t i = 0; i < n; i++) {
		offset[i] = ref_hash(14695981039346656037ULL, &b[i]) % size;
		skip[i] = ref_hash(0x9e3779b97f4a7c15ULL, &b[i]) % (size - 1) + 1;
	}
	for (uint32_t e = 0; e < size; e++)
		entry[e] = -1;
	while (filled < size) {
		for (uint32_t i = 0; i < n && filled < size; i++) {
			uint64_t c = (offset[i] + next[i] * skip[i]) % size;

			while (entry[c] >= 0) {
				next[i]++;
				c = (offset[i] + next[i] * skip[i]) % size;
			}
			entry[c] = (int32_t)i;
			next[i]++;
			filled++;
		}
	}
	free(offset);
	free(skip);
	free(next);
}

static void check_against_ref(enum family f, uint32_t n, uint32_t size)
{
	struct maglev_backend *b = make_set(f, n, 3);
	int32_t *ref = malloc((size_t)size * sizeof(*ref));
	uint16_t *t = build(b, n, size);

	assert_non_null(ref);
	ref_build(b, n, size, ref);
	for (uint32_t e = 0; e < size; e++)
		if (t[e] != ref[e])
			fail_msg("n=%u size=%u: entry %u is %u, the paper's %d", n, size, e, t[e],
				 ref[e]);
	free(ref);
	free(t);
	free(b);
}

/* The builder makes the paper's choices exactly, also in the tables small
 * enough to be all tail, and in those that allocate (n > 256). */
static void test_same_as_paper(void **state)
{
	static const struct {
		uint32_t n, size;
	} cases[] = {
		{ 1, 2 }, { 2, 2 }, { 2, 3 }, { 3, 5 }, { 5, 31 }, { 7, 37 }, { 20, 41 },
		{ 1, 701 }, { 3, 701 }, { 7, 701 }, { 10, 1409 }, { 50, 5623 }, { 100, 11213 },
		{ 300, 44809 }, { 1000, 131071 }, { 40000, 65537 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_against_ref(V4, cases[i].n, cases[i].size);
		check_against_ref(V6, cases[i].n, cases[i].size);
	}
}

/* FNV-1a 64 of a table, to pin it. */
static uint64_t table_digest(const uint16_t *t, uint32_t size)
{
	uint64_t h = 14695981039346656037ULL;

	for (uint32_t e = 0; e < size; e++) {
		h = (h ^ (t[e] & 0xff)) * 1099511628211ULL;
		h = (h ^ (t[e] >> 8)) * 1099511628211ULL;
	}
	return h;
}

/* Two builds of the same input are byte-identical, whatever the table held
 * before; and the tables of this ferry are pinned: nodes running different
 * versions during an upgrade must still agree, so a change here is a
 * change of every Maglev flow's backend. */
static void test_deterministic(void **state)
{
	struct maglev_backend *b = make_set(V4, 10, 1);
	struct maglev_backend *b6 = make_set(V6, 10, 1);
	uint16_t *t1 = malloc(1409 * sizeof(*t1)), *t2 = malloc(1409 * sizeof(*t2));

	(void)state;
	assert_true(t1 && t2);
	memset(t1, 0, 1409 * sizeof(*t1));
	memset(t2, 0x5a, 1409 * sizeof(*t2));
	assert_int_equal(maglev_build(b, 10, 1409, t1), 0);
	assert_int_equal(maglev_build(b, 10, 1409, t2), 0);
	assert_memory_equal(t1, t2, 1409 * sizeof(*t1));
	assert_int_equal(table_digest(t1, 1409), 0x21dff6fa0c876245ULL);
	assert_int_equal(maglev_build(b6, 10, 1409, t2), 0);
	assert_int_equal(table_digest(t2, 1409), 0xaceb59e29fa120fdULL);
	free(t1);
	free(t2);
	free(b);
	free(b6);
}

/* Two copies of a set, in arrays of their own with different bytes in the
 * struct's padding, build the same table: only the identities count, not
 * where they are. Their order does count (round-robin order decides who
 * wins an entry), which is why every node sorts the set first: the same
 * set reversed maps entries to other identities. */
static void test_identity_order(void **state)
{
	uint32_t n = 10, size = maglev_table_size(n), same = 0;
	struct maglev_backend *a = make_set(V4, n, 5);
	struct maglev_backend *c = malloc(n * sizeof(*c)), *r = malloc(n * sizeof(*r));
	uint16_t *ta, *tc, *tr;

	(void)state;
	assert_true(c && r);
	memset(c, 0xff, n * sizeof(*c));
	for (uint32_t i = 0; i < n; i++) {
		memcpy(c[i].addr, a[i].addr, sizeof(a[i].addr));
		c[i].port = a[i].port;
		r[i] = a[n - 1 - i];
	}
	ta = build(a, n, size);
	tc = build(c, n, size);
	tr = build(r, n, size);
	assert_memory_equal(ta, tc, size * sizeof(*ta));
	for (uint32_t e = 0; e < size; e++)
		same += memcmp(&a[ta[e]], &r[tr[e]], sizeof(*a)) == 0;
	assert_true(same < size);
	free(ta);
	free(tc);
	free(tr);
	free(a);
	free(c);
	free(r);
}

/* Every identity byte counts: the v4-mapped address and an IPv6 address
 * with the same last 4 bytes, or the same address on another port, are
 * other backends with other permutations. */
static void test_identity_bytes(void **state)
{
	uint32_t size = 701;
	struct maglev_backend b[2][2];
	uint16_t t[3][701];

	(void)state;
	b[0][0] = backend(V4, 1);
	b[0][1] = backend(V4, 2);
	b[1][0] = b[0][0];
	b[1][1] = b[0][1];
	b[1][0].port = htons(8081);
	assert_int_equal(maglev_build(b[0], 2, size, t[0]), 0);
	assert_int_equal(maglev_build(b[1], 2, size, t[1]), 0);
	assert_memory_not_equal(t[0], t[1], sizeof(t[0]));
	b[1][0] = b[0][0];
	b[1][0].addr[2] = 0; /* ::10.244.0.1 instead of ::ffff:10.244.0.1 */
	assert_int_equal(maglev_build(b[1], 2, size, t[2]), 0);
	assert_memory_not_equal(t[0], t[2], sizeof(t[0]));
}

/* Entries whose backend changed between two tables of one size, and of
 * them those that did not point at `gone` (an identity of the old set
 * that left, or NULL). */
static void moved(const struct maglev_backend *ob, const uint16_t *ot,
		  const struct maglev_backend *nb, const uint16_t *nt, uint32_t size,
		  const struct maglev_backend *gone, uint32_t *total, uint32_t *extra)
{
	*total = *extra = 0;
	for (uint32_t e = 0; e < size; e++) {
		const struct maglev_backend *o = &ob[ot[e]], *nw = &nb[nt[e]];

		if (memcmp(o->addr, nw->addr, 16) == 0 && o->port == nw->port)
			continue;
		(*total)++;
		if (!gone || memcmp(o->addr, gone->addr, 16) != 0 || o->port != gone->port)
			(*extra)++;
	}
}

/* Remove each backend of n in turn: the table keeps its size, and the
 * entries that change are the removed backend's (about 1/n) and a few
 * points more (EXTRA_POINTS). Worst figures go to the test's output. */
static void check_remove(enum family f, uint32_t n)
{
	struct maglev_backend *b = make_set(f, n, 2), *s = malloc(n * sizeof(*s));
	uint32_t size = maglev_table_size(n), worst = 0, worst_extra = 0;
	uint16_t *t = build(b, n, size);

	assert_non_null(s);
	assert_int_equal(maglev_table_size(n - 1), size);
	for (uint32_t k = 0; k < n && n > 1; k++) {
		uint32_t total, extra;
		uint16_t *nt;

		memcpy(s, b, k * sizeof(*s));
		memcpy(s + k, b + k + 1, (n - 1 - k) * sizeof(*s));
		nt = build(s, n - 1, size);
		moved(b, t, s, nt, size, &b[k], &total, &extra);
		if (100.0 * total / size > 100.0 / n + EXTRA_POINTS)
			fail_msg("n=%u: removing %u moves %u of %u entries (%.2f%%)", n, k, total,
				 size, 100.0 * total / size);
		worst = total > worst ? total : worst;
		worst_extra = extra > worst_extra ? extra : worst_extra;
		free(nt);
	}
	print_message("remove one of %u (%s, size %u): worst moved %.2f%% (1/n = %.2f%%), "
		      "of which not the removed backend's %.2f%%\n", n, f == V4 ? "v4" : "v6",
		      size, 100.0 * worst / size, 100.0 / n, 100.0 * worst_extra / size);
	free(t);
	free(s);
	free(b);
}

/* Add one backend, at each place of the sorted order in turn (an odd
 * address after each of the set's even ones): the new backend's 1/(n+1)
 * moves, and at most EXTRA_POINTS more. */
static void check_add(enum family f, uint32_t n)
{
	struct maglev_backend *b = make_set(f, n, 2), *s = malloc((n + 1) * sizeof(*s));
	uint32_t size = maglev_table_size(n), worst = 0, worst_extra = 0;
	uint16_t *t = build(b, n, size);

	assert_non_null(s);
	assert_int_equal(maglev_table_size(n + 1), size);
	for (uint32_t k = 0; k < n; k++) {
		uint32_t total, extra, share = size / (n + 1) + 1;
		uint16_t *nt;

		memcpy(s, b, (k + 1) * sizeof(*s));
		s[k + 1] = backend(f, 2 * k + 1);
		memcpy(s + k + 2, b + k + 1, (n - 1 - k) * sizeof(*s));
		nt = build(s, n + 1, size);
		moved(b, t, s, nt, size, NULL, &total, &extra);
		if (100.0 * total / size > 100.0 / (n + 1) + EXTRA_POINTS)
			fail_msg("n=%u: adding after %u moves %u of %u entries (%.2f%%)", n, k,
				 total, size, 100.0 * total / size);
		worst = total > worst ? total : worst;
		extra = total > share ? total - share : 0;
		worst_extra = extra > worst_extra ? extra : worst_extra;
		free(nt);
	}
	print_message("add one to %u (%s, size %u): worst moved %.2f%% (1/(n+1) = %.2f%%), "
		      "beyond the new backend's share %.2f%%\n", n, f == V4 ? "v4" : "v6", size,
		      100.0 * worst / size, 100.0 / (n + 1), 100.0 * worst_extra / size);
	free(t);
	free(s);
	free(b);
}

static void test_disruption(void **state)
{
	static const uint32_t ns[] = { 3, 5, 10, 50, 100 };

	(void)state;
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		check_remove(V4, ns[i]);
		check_remove(V6, ns[i]);
		check_add(V4, ns[i]);
		check_add(V6, ns[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_range_and_balance),
		cmocka_unit_test(test_same_as_paper),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_identity_order),
		cmocka_unit_test(test_identity_bytes),
		cmocka_unit_test(test_disruption),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
