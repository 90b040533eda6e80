/* The sync engine on in-memory maps (tests/unit/mem_maps.h): no BPF, no
 * root. What a reader of the maps relies on is the order of the writes of
 * every apply: a new set's backends, then its slots, then the service
 * entries that publish it, then the old set's removal; a frontend another
 * service port takes over is rewritten, never deleted first; what does not
 * fit waits and is retried when room is freed; freed IDs are not handed out
 * again at once; the close hook a least-conn set needs is asked for before
 * the set is written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "capture.h"
#include "ferry/maps.h"
#include "sync/engine.h"
#include "sync/mapio.h"
#include "desired_spec.h"
#include "mem_maps.h"

static struct mem_maps mem;
static struct sync_engine *eng;

static const struct dp_limits limits = { .max_services = 8, .max_backends = 64 };

/* An engine on empty in-memory maps; adopting them (nothing) takes it past
 * the first apply's staging, so every write goes one by one. */
static int setup(void **state)
{
	struct dp_maps maps;

	(void)state;
	memset(&maps, 0, sizeof(maps));
	mem_maps_init(&mem, 2 * limits.max_services);
	for (int i = 0; i < DP_MAP__COUNT; i++)
		maps.fd[i] = -1;
	eng = sync_new(&maps, &limits, NULL);
	assert_non_null(eng);
	sync_set_map_io(eng, &mem_io, &mem);
	sync_adopt(eng);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sync_free(eng);
	mem_maps_free(&mem);
	return 0;
}

static int64_t apply(const struct spec *specs, size_t n)
{
	struct desired_state st = spec_state(specs, n);
	int64_t writes = sync_apply(eng, &st);

	state_free(&st);
	return writes;
}

static const struct spec big = {
	.id = "shop/big:http/TCP/v4",
	.frontends = { "C 10.96.0.9 80", "N 0.0.0.0 30090" },
	.backends = { "10.0.2.1", "10.0.2.2", "10.0.2.3", "10.0.2.4", "10.0.2.5", "10.0.2.6",
		      "10.0.2.7", "10.0.2.8", "10.0.2.9", "10.0.2.10", "10.0.2.11",
		      "10.0.2.12", "10.0.2.13", "10.0.2.14", "10.0.2.15", "10.0.2.16",
		      "10.0.2.17" },
};

/* Every write of map op in the log after position from. */
static bool all_after(char op, enum dp_map map, long from)
{
	for (size_t i = 0; i < mem.n_log; i++)
		if (mem.log[i].op == op && mem.log[i].map == map && (long)i <= from)
			return false;
	return true;
}

/* B12 B35: a set of 17 (with slots) and its change: backends, slots,
 * service entries, then the old slots and backend go. */
static void test_order_large_set(void **state)
{
	struct spec changed = big;
	long last_backend, last_slot, first_service, last_service;

	(void)state;
	assert_true(apply(&big, 1) > 0);
	last_backend = mem_log_find(&mem, 'U', DP_MAP_BACKENDS, false);
	last_slot = mem_log_find(&mem, 'U', DP_MAP_SLOTS, false);
	first_service = mem_log_find(&mem, 'U', DP_MAP_SERVICES, true);
	assert_true(last_backend >= 0 && last_slot > last_backend);
	assert_true(first_service > last_slot);

	mem.n_log = 0;
	changed.backends[16] = "10.0.3.1";
	assert_true(apply(&changed, 1) > 0);
	last_backend = mem_log_find(&mem, 'U', DP_MAP_BACKENDS, false);
	last_slot = mem_log_find(&mem, 'U', DP_MAP_SLOTS, false);
	first_service = mem_log_find(&mem, 'U', DP_MAP_SERVICES, true);
	last_service = mem_log_find(&mem, 'U', DP_MAP_SERVICES, false);
	assert_true(last_backend >= 0 && last_slot > last_backend && first_service > last_slot);
	/* Both frontends moved before anything of the old set went. */
	assert_int_equal(last_service - first_service, 1);
	assert_true(all_after('D', DP_MAP_SLOTS, last_service));
	assert_true(all_after('D', DP_MAP_BACKENDS, last_service));
	assert_int_equal(mem.map[DP_MAP_SLOTS].n, 17);
	assert_int_equal(mem.map[DP_MAP_BACKENDS].n, 17);
}

/* A small set rides in the entries: new backend, entries, old backend. */
static void test_order_inline_set(void **state)
{
	struct spec small = { .id = "shop/web:http/TCP/v4",
			      .frontends = { "C 10.96.0.1 80", "L 198.51.100.1 80" },
			      .backends = { "10.0.0.1", "10.0.0.2" } };
	long new_backend, first_service, last_service;

	(void)state;
	apply(&small, 1);
	mem.n_log = 0;
	small.backends[1] = "10.0.0.3";
	assert_true(apply(&small, 1) > 0);
	new_backend = mem_log_find(&mem, 'U', DP_MAP_BACKENDS, true);
	first_service = mem_log_find(&mem, 'U', DP_MAP_SERVICES, true);
	last_service = mem_log_find(&mem, 'U', DP_MAP_SERVICES, false);
	assert_true(new_backend >= 0 && first_service > new_backend);
	assert_true(all_after('D', DP_MAP_BACKENDS, last_service));
	assert_int_equal(mem_log_find(&mem, 'U', DP_MAP_SLOTS, true), -1);
	assert_int_equal(mem.map[DP_MAP_BACKENDS].n, 2);
}

/* B25: a NodePort moves from a Service that goes to one that comes in the
 * same apply: its entry is rewritten, never deleted. */
static void test_takeover_without_gap(void **state)
{
	struct spec a = { .id = "ns/a:http/TCP/v4",
			  .frontends = { "C 10.96.1.1 80", "N 0.0.0.0 30100" },
			  .backends = { "10.0.1.1" } };
	struct spec b = { .id = "ns/b:http/TCP/v4",
			  .frontends = { "C 10.96.1.2 80", "N 0.0.0.0 30100" },
			  .backends = { "10.0.1.2" } };
	struct svc_key np = { .addr = { 0, 0, htonl(0xffff), 0 }, .port = htons(30100),
			      .proto = IPPROTO_TCP };
	struct svc_entry e;

	(void)state;
	apply(&a, 1);
	mem.n_log = 0;
	assert_true(apply(&b, 1) > 0);
	for (size_t i = 0; i < mem.n_log; i++)
		assert_false(mem.log[i].op == 'D' && mem.log[i].map == DP_MAP_SERVICES &&
			     memcmp(mem.log[i].key, &np, sizeof(np)) == 0);
	assert_int_equal(mem_lookup(&mem, DP_MAP_SERVICES, &np, &e), 0);
	assert_int_equal(e.in.v4[0].addr, ip("10.0.1.2").w[3]);
}

/* A service port that does not fit waits, and is programmed once an apply
 * frees room; the map-full error is counted. */
static void test_pending_retry(void **state)
{
	struct spec s[9];
	char ids[9][40], cips[9][40], log[4096];
	struct capture cap;

	(void)state;
	for (int i = 0; i < 9; i++) {
		snprintf(ids[i], sizeof(ids[i]), "ns/s%d:http/TCP/v4", i);
		snprintf(cips[i], sizeof(cips[i]), "C 10.96.2.%d 80", i + 1);
		s[i] = (struct spec){ .id = ids[i], .frontends = { cips[i] },
				      .backends = { "10.0.4.1" } };
	}
	capture_begin(&cap);
	assert_true(apply(s, 9) >= 0);
	capture_end(&cap, log, sizeof(log));
	assert_non_null(strstr(log, "ns/s8:http/TCP/v4: not programmed"));
	assert_int_equal(sync_stats(eng)->services, 8);
	assert_int_equal(sync_stats(eng)->pending, 1);
	assert_true(sync_stats(eng)->map_full_errors > 0);
	assert_true(apply(s + 1, 8) >= 0);
	assert_int_equal(sync_stats(eng)->services, 8);
	assert_int_equal(sync_stats(eng)->pending, 0);
}

/* Issue 14: an ID freed is not the next one handed out. */
static void test_ids_not_reused_at_once(void **state)
{
	struct spec one = { .id = "ns/one:http/TCP/v4", .frontends = { "C 10.96.3.1 80" },
			    .backends = { "10.0.5.1" } };
	struct spec two = { .id = "ns/two:http/TCP/v4", .frontends = { "C 10.96.3.2 80" },
			    .backends = { "10.0.5.2" } };
	struct svc_key k = { .addr = { 0, 0, htonl(0xffff), ip("10.96.3.2").w[3] },
			     .port = htons(80), .proto = IPPROTO_TCP };
	struct svc_entry e;
	uint32_t first;

	(void)state;
	apply(&one, 1);
	first = sync_stats(eng)->services;
	assert_int_equal(first, 1);
	apply(NULL, 0);
	apply(&two, 1);
	assert_int_equal(mem_lookup(&mem, DP_MAP_SERVICES, &k, &e), 0);
	assert_int_not_equal(e.v.svc_id, 1);
	assert_int_not_equal(e.in.v4_backend_id[0], 1);
}

static int hook_calls, hook_result;
static long hook_at; /* the write log's length when the hook ran */

static int release_hook(void *arg)
{
	(void)arg;
	hook_calls++;
	hook_at = (long)mem.n_log;
	return hook_result;
}

/* Issue 13: sock_release runs on every close in the cgroup, so ferryd
 * attaches it only for least-conn. The hook runs before the first
 * least-conn set's service entry is written, again after it failed (the set
 * is written all the same), never after it succeeded, never for others. */
static void test_least_conn_hook(void **state)
{
	struct spec a = { .id = "ns/a:http/TCP/v4", .frontends = { "C 10.96.4.1 80" },
			  .backends = { "10.0.4.1", "10.0.4.2" } };

	(void)state;
	hook_calls = 0;
	hook_result = -1;
	sync_set_least_conn_hook(eng, release_hook, NULL);
	assert_true(apply(&a, 1) > 0);
	assert_int_equal(hook_calls, 0);

	sync_set_lb_default(eng, LB_LEAST_CONN);
	mem.n_log = 0;
	assert_true(apply(&a, 1) > 0);
	assert_int_equal(hook_calls, 1);
	assert_true(mem_log_find(&mem, 'U', DP_MAP_SERVICES, true) >= hook_at);

	hook_result = 0;
	a.backends[1] = "10.0.4.3";
	mem.n_log = 0;
	assert_true(apply(&a, 1) > 0);
	assert_int_equal(hook_calls, 2);
	assert_true(mem_log_find(&mem, 'U', DP_MAP_SERVICES, true) >= hook_at);

	a.backends[1] = "10.0.4.4";
	assert_true(apply(&a, 1) > 0);
	assert_int_equal(hook_calls, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_large_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_inline_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_takeover_without_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ids_not_reused_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_least_conn_hook, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
