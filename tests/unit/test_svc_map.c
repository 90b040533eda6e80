/* Unit tests of user/datapath/svc_map.c on real BPF maps: ferry_services4
 * and ferry_services6 read and written as one map of svc_key. A batch of
 * both families, in runs longer than one packing, lands each key in its
 * family's map; a walk by next_key and one by lookup_batch, in batches of
 * any size, give every entry once with its value; delete goes to the
 * right map. Creating maps needs CAP_BPF (tests run as root). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <netinet/in.h>

#include "datapath/svc_map.h"
#include "bpf_maps.h"

#define N_KEYS 700  /* within bpf_maps.h's 1024 */

static struct dp_maps maps;

static int setup(void **state)
{
	(void)state;
	bpf_maps_create(&maps);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	bpf_maps_close(&maps);
	return 0;
}

/* Key i: IPv4 10.96.x.y in the first 300, IPv6 in the next 100, IPv4
 * again after; port and scope vary. Its entry's svc_id is i + 1. */
static struct svc_key key_at(uint32_t i)
{
	struct svc_key k = { .port = htons((uint16_t)(80 + i % 3)), .proto = IPPROTO_TCP,
			     .scope = (uint8_t)(i % 2) };

	if (i >= 300 && i < 400) {
		k.addr[0] = htonl(0xfd000010);
		k.addr[1] = htonl(0x00960000);
		k.addr[3] = htonl(i);
	} else {
		k.addr[2] = htonl(0xffff);
		k.addr[3] = htonl(0x0a600000 + i);
	}
	return k;
}

static void fill(void)
{
	struct svc_key *keys = calloc(N_KEYS, sizeof(*keys));
	struct svc_entry *values = calloc(N_KEYS, sizeof(*values));
	uint32_t count = N_KEYS;

	assert_non_null(keys);
	assert_non_null(values);
	for (uint32_t i = 0; i < N_KEYS; i++) {
		keys[i] = key_at(i);
		values[i].v.svc_id = i + 1;
	}
	assert_int_equal(svc_map_update_batch(&maps, keys, values, &count), 0);
	assert_int_equal(count, N_KEYS);
	free(keys);
	free(values);
}

/* Which key an entry is, from its svc_id, checked against the key. */
static uint32_t index_of(const struct svc_key *k, const struct svc_entry *e)
{
	struct svc_key want;

	assert_true(e->v.svc_id >= 1 && e->v.svc_id <= N_KEYS);
	want = key_at(e->v.svc_id - 1);
	assert_memory_equal(k, &want, sizeof(want));
	return e->v.svc_id - 1;
}

static void test_batch_splits_by_family(void **state)
{
	struct svc_key k = key_at(350);
	struct svc_key4 k4;
	struct svc_entry e;

	(void)state;
	fill();
	for (uint32_t i = 0; i < N_KEYS; i++) {
		k = key_at(i);
		assert_int_equal(svc_map_lookup(&maps, &k, &e), 0);
		assert_int_equal(index_of(&k, &e), i);
	}
	k = key_at(5);
	svc_key_pack4(&k, &k4);
	assert_int_equal(bpf_map_lookup_elem(maps.fd[DP_MAP_SERVICES4], &k4, &e), 0);
	assert_int_not_equal(bpf_map_lookup_elem(maps.fd[DP_MAP_SERVICES], &k, &e), 0);
	k = key_at(350);
	assert_int_equal(bpf_map_lookup_elem(maps.fd[DP_MAP_SERVICES], &k, &e), 0);
}

static void test_next_key_walks_both(void **state)
{
	struct svc_key cursor, next, *prev = NULL;
	bool seen[N_KEYS] = { false }, in_v4 = false;
	struct svc_entry e;
	size_t n = 0;

	(void)state;
	fill();
	while (svc_map_next_key(&maps, prev, &next) == 0) {
		uint32_t i;

		assert_int_equal(svc_map_lookup(&maps, &next, &e), 0);
		i = index_of(&next, &e);
		assert_false(seen[i]);
		seen[i] = true;
		/* IPv6 first, then IPv4. */
		assert_false(in_v4 && !svc_key_is_v4(&next));
		in_v4 = svc_key_is_v4(&next);
		cursor = next;
		prev = &cursor;
		n++;
	}
	assert_int_equal(n, N_KEYS);
}

/* Batches of 16, 50 and 64 entries (a hash map's batch takes whole
 * buckets): each entry once. */
static void test_lookup_batch_walks_both(void **state)
{
	const uint32_t sizes[] = { 16, 50, 64 };

	(void)state;
	fill();
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct svc_key keys[64];
		struct svc_entry values[64];
		bool seen[N_KEYS] = { false };
		uint32_t token = 0, *in = NULL, count;
		size_t n = 0, calls = 0;
		int err;

		do {
			count = sizes[s];
			err = svc_map_lookup_batch(&maps, in, &token, keys, values, &count);
			assert_true(err == 0 || err == -ENOENT);
			for (uint32_t j = 0; j < count; j++) {
				uint32_t i = index_of(&keys[j], &values[j]);

				assert_false(seen[i]);
				seen[i] = true;
				n++;
			}
			in = &token;
			assert_true(++calls < 4 * N_KEYS);
		} while (!err);
		assert_int_equal(n, N_KEYS);
	}
}

static void test_delete_by_family(void **state)
{
	struct svc_key v4 = key_at(0), v6 = key_at(300);
	struct svc_entry e;

	(void)state;
	fill();
	assert_int_equal(svc_map_delete(&maps, &v4), 0);
	assert_int_equal(svc_map_delete(&maps, &v6), 0);
	assert_int_equal(svc_map_lookup(&maps, &v4, &e), -ENOENT);
	assert_int_equal(svc_map_lookup(&maps, &v6, &e), -ENOENT);
	assert_int_equal(svc_map_delete(&maps, &v4), -ENOENT);
	v4 = key_at(1);
	assert_int_equal(svc_map_lookup(&maps, &v4, &e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_batch_splits_by_family, setup, teardown),
		cmocka_unit_test_setup_teardown(test_next_key_walks_both, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_batch_walks_both, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_by_family, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
