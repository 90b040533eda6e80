/* Unit tests of the hash map (user/common/hmap.c): puts, gets, removes and
 * walks over keys of every length, and the per-process key of its hash: two
 * processes place the same keys in different orders (an unkeyed hash would
 * let anyone compute names that all land in one bucket). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/hmap.h"

struct entry {
	struct hmap_node node;
	size_t len;
	char key[48];
};

/* Key i: "S<ns>\0<name>" as the store builds them, lengths 0 to 40, all
 * different: eight short ones (0 to 7 bytes, prefixes of the others). */
static size_t make_key(size_t i, char *out)
{
	size_t len = (size_t)snprintf(out, 48, "Sns-%zu", i % 7) + 1;

	len += (size_t)snprintf(out + len, 48 - len, "svc-%zu-%.*s", i, (int)(i % 23),
				"abcdefghijklmnopqrstuvw");
	return i % 97 == 0 && i < 97 * 8 ? i / 97 : len;
}

static struct entry *make_entries(size_t n)
{
	struct entry *e = calloc(n, sizeof(*e));

	assert_non_null(e);
	for (size_t i = 0; i < n; i++)
		e[i].len = make_key(i, e[i].key);
	return e;
}

static struct entry *get(const struct hmap *m, const struct entry *like)
{
	struct hmap_node *n = hmap_get(m, like->key, like->len);

	return n ? hmap_entry(n, struct entry, node) : NULL;
}

static size_t walk_count(const struct hmap *m)
{
	size_t count = 0;

	for (struct hmap_node *n = hmap_first(m); n; n = hmap_next(m, n))
		count++;
	return count;
}

static void test_put_get_remove_walk(void **state)
{
	enum { N = 5000 };
	struct entry *e = make_entries(N);
	bool *in = calloc(N, sizeof(*in));
	struct hmap m;
	size_t count = 0;

	(void)state;
	assert_non_null(in);
	assert_int_equal(hmap_init(&m, 4), 0);
	for (size_t i = 0; i < N; i++) {
		assert_null(get(&m, &e[i]));
		hmap_put(&m, &e[i].node, e[i].key, e[i].len);
		in[i] = true;
		count++;
	}
	assert_int_equal(m.count, count);
	assert_true(2 * m.n_buckets >= count); /* it grew */
	assert_int_equal(walk_count(&m), count);
	for (size_t i = 0; i < N; i++)
		if (in[i])
			assert_ptr_equal(get(&m, &e[i]), &e[i]);

	/* Remove every other one while walking. */
	for (struct hmap_node *n = hmap_first(&m), *next; n; n = next) {
		struct entry *x = hmap_entry(n, struct entry, node);

		next = hmap_next(&m, n);
		if ((size_t)(x - e) % 2 == 0) {
			hmap_remove(&m, n);
			in[x - e] = false;
			count--;
		}
	}
	assert_int_equal(m.count, count);
	assert_int_equal(walk_count(&m), count);
	for (size_t i = 0; i < N; i++)
		assert_ptr_equal(get(&m, &e[i]), in[i] ? &e[i] : NULL);
	hmap_free(&m);
	free(in);
	free(e);
}

/* The same key with different bytes after an embedded NUL, and a prefix,
 * are different keys. */
static void test_binary_keys(void **state)
{
	struct entry a = { .len = 5 }, b = { .len = 5 }, c = { .len = 4 };
	struct hmap m;

	(void)state;
	memcpy(a.key, "ab\0cd", 5);
	memcpy(b.key, "ab\0ce", 5);
	memcpy(c.key, "ab\0c", 4);
	assert_int_equal(hmap_init(&m, 0), 0);
	hmap_put(&m, &a.node, a.key, a.len);
	assert_null(get(&m, &b));
	assert_null(get(&m, &c));
	hmap_put(&m, &b.node, b.key, b.len);
	hmap_put(&m, &c.node, c.key, c.len);
	assert_ptr_equal(get(&m, &a), &a);
	assert_ptr_equal(get(&m, &b), &b);
	assert_ptr_equal(get(&m, &c), &c);
	hmap_free(&m);
}

/* This process's walk order of the keys 0..ORDER_KEYS-1, indices joined. */
#define ORDER_KEYS 64

static void print_order(FILE *to)
{
	struct entry *e = make_entries(ORDER_KEYS);
	struct hmap m;

	assert_int_equal(hmap_init(&m, ORDER_KEYS), 0);
	for (size_t i = 1; i < ORDER_KEYS; i++) /* key 0 is empty */
		hmap_put(&m, &e[i].node, e[i].key, e[i].len);
	for (struct hmap_node *n = hmap_first(&m); n; n = hmap_next(&m, n))
		fprintf(to, "%zu ", (size_t)(hmap_entry(n, struct entry, node) - e));
	hmap_free(&m);
	free(e);
}

static void child_order(char *out, size_t len)
{
	char self[4096], cmd[4200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	FILE *p;

	assert_true(n > 0);
	self[n] = '\0';
	snprintf(cmd, sizeof(cmd), "'%s' --order", self);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = (ssize_t)fread(out, 1, len - 1, p);
	out[n] = '\0';
	assert_int_equal(pclose(p), 0);
}

/* Two processes walk the same keys in different orders: the bucket of a
 * key depends on a key of the process. Within one process the order is
 * the same for the same inserts. */
static void test_order_differs_between_processes(void **state)
{
	char a[1024], b[1024], here1[1024], here2[1024];
	FILE *f;

	(void)state;
	child_order(a, sizeof(a));
	child_order(b, sizeof(b));
	assert_true(strlen(a) > ORDER_KEYS); /* 63 numbers */
	if (strcmp(a, b) == 0)
		fail_msg("two processes walk the keys in the same order: %s", a);
	for (int i = 0; i < 2; i++) {
		f = fmemopen(i ? here2 : here1, sizeof(here1), "w");
		assert_non_null(f);
		print_order(f);
		fclose(f);
	}
	assert_string_equal(here1, here2);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_remove_walk),
		cmocka_unit_test(test_binary_keys),
		cmocka_unit_test(test_order_differs_between_processes),
	};

	if (argc == 2 && strcmp(argv[1], "--order") == 0) {
		print_order(stdout);
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
