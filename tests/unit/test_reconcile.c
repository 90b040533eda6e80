/* Unit tests of sync_reconcile (user/sync/reconcile.c, B34) on real BPF
 * maps of the datapath's layout: after an apply, entries deleted, altered
 * or added by hand in ferry_services4 (a frontend, a VIP marker),
 * ferry_slots, ferry_backends, ferry_revnat, ferry_node_addrs,
 * ferry_source_ranges and ferry_config are put back to exactly what
 * the engine wrote, each counted by kind; a steady state (also with an
 * orphaned ferry_revnat entry) repairs nothing. Creating maps needs
 * CAP_BPF (tests run as root). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "datapath/backend_map.h"
#include "datapath/svc_map.h"
#include "ferry/maps.h"
#include "model/model.h"
#include "sync/engine.h"
#include "bpf_maps.h"

static struct dp_maps maps;
static struct sync_engine *eng;

static const struct dp_limits limits = { .max_services = 64, .max_backends = 256 };

static int setup(void **state)
{
	(void)state;
	bpf_maps_create(&maps);
	eng = sync_new(&maps, &limits, NULL);
	assert_non_null(eng);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sync_free(eng);
	bpf_maps_close(&maps);
	return 0;
}

static struct ferry_ip ip(const char *text)
{
	struct ferry_ip a;

	assert_true(addr_parse(text, &a) > 0);
	return a;
}

/* One TCP service port: a ClusterIP and a NodePort, n backends
 * 10.0.1.1..n:8080 (sorted, as the model gives them). */
static void svc_build(struct desired_svc *d, const char *id, const char *vip, size_t n)
{
	memset(d, 0, sizeof(*d));
	d->id = strdup(id);
	d->proto = IPPROTO_TCP;
	d->frontends = calloc(2, sizeof(*d->frontends));
	d->n_frontends = 2;
	d->frontends[0].addr = ip(vip);
	d->frontends[0].port = 80;
	d->frontends[0].kind = FRONTEND_CLUSTER_IP;
	d->frontends[1].addr = ip("0.0.0.0");
	d->frontends[1].port = (uint16_t)(30000 + n);
	d->frontends[1].kind = FRONTEND_NODE_PORT;
	d->backends = calloc(n + 1, sizeof(*d->backends));
	d->n_backends = n;
	for (size_t i = 0; i < n; i++) {
		char text[32];

		snprintf(text, sizeof(text), "10.0.%zu.%zu", n, i + 1);
		d->backends[i].addr = ip(text);
		d->backends[i].port = 8080;
	}
}

/* "small" (2 backends, inline) and "big" (17: slots), big with `drop`
 * backends fewer at its end. */
static void apply(size_t drop)
{
	struct desired_state st = { 0 };

	st.svcs = calloc(3, sizeof(*st.svcs));
	st.n_svcs = st.cap_svcs = 2;
	svc_build(&st.svcs[0], "shop/small:http/TCP/v4", "10.96.0.1", 2);
	st.svcs[0].source_ranges = calloc(1, sizeof(*st.svcs[0].source_ranges));
	st.svcs[0].n_source_ranges = 1;
	st.svcs[0].source_ranges[0].addr = ip("203.0.113.0");
	st.svcs[0].source_ranges[0].len = 96 + 24;
	svc_build(&st.svcs[1], "shop/big:http/TCP/v4", "10.96.0.9", 17);
	st.svcs[1].n_backends -= drop;
	desired_sort(&st);
	assert_true(sync_apply(eng, &st) >= 0);
	for (size_t i = 0; i < st.n_svcs; i++) {
		free(st.svcs[i].frontends);
		st.svcs[i].frontends = NULL;
	}
	desired_free(&st);
}

/* An order-independent digest of a map's entries, and their number; of
 * ferry_backends, its live elements. */
static uint64_t digest(enum dp_map m, size_t ks, size_t vs, size_t *n)
{
	unsigned char key[64], prev[64], value[512];
	uint64_t sum = 0;
	void *p = NULL;

	*n = 0;
	while (bpf_map_get_next_key(maps.fd[m], p, key) == 0) {
		uint64_t h = 1469598103934665603ULL;

		assert_int_equal(bpf_map_lookup_elem(maps.fd[m], key, value), 0);
		memcpy(prev, key, ks);
		p = prev;
		if (m == DP_MAP_BACKENDS && !((struct backend_value *)value)->svc_id)
			continue;
		for (size_t i = 0; i < ks + vs; i++)
			h = (h ^ (i < ks ? key[i] : value[i - ks])) * 1099511628211ULL;
		sum += h;
		(*n)++;
	}
	return sum;
}

#define SNAP_MAPS 5

struct snap {
	uint64_t sum[SNAP_MAPS];
	size_t n[SNAP_MAPS];
};

static void snap_take(struct snap *s)
{
	s->sum[0] = digest(DP_MAP_SERVICES, sizeof(struct svc_key), sizeof(struct svc_entry),
			   &s->n[0]);
	s->sum[4] = digest(DP_MAP_SERVICES4, sizeof(struct svc_key4), sizeof(struct svc_entry),
			   &s->n[4]);
	s->sum[1] = digest(DP_MAP_SLOTS, sizeof(struct slot_key), sizeof(struct slot_value),
			   &s->n[1]);
	s->sum[2] = digest(DP_MAP_BACKENDS, sizeof(__u32), sizeof(struct backend_value),
			   &s->n[2]);
	s->sum[3] = digest(DP_MAP_REVNAT, sizeof(struct revnat_key), sizeof(struct revnat_value),
			   &s->n[3]);
}

static void assert_same(const struct snap *a)
{
	struct snap b;

	snap_take(&b);
	for (int i = 0; i < SNAP_MAPS; i++) {
		assert_int_equal(b.n[i], a->n[i]);
		assert_true(b.sum[i] == a->sum[i]);
	}
}

static void reconcile(uint64_t missing, uint64_t altered, uint64_t unknown)
{
	struct sync_repairs r;

	assert_true(sync_reconcile(eng, &r) >= 0);
	assert_int_equal(r.missing, missing);
	assert_int_equal(r.altered, altered);
	assert_int_equal(r.unknown, unknown);
}

static struct svc_key svc_key_of(const char *addr, uint16_t port, uint8_t proto)
{
	struct svc_key k = { .port = htons(port), .proto = proto };
	struct ferry_ip a = ip(addr);

	memcpy(k.addr, a.w, sizeof(k.addr));
	return k;
}

/* A steady state repairs nothing, pass after pass; every entry is read. */
static void test_steady_state_repairs_nothing(void **state)
{
	struct sync_repairs r;
	struct snap s;

	(void)state;
	apply(0);
	snap_take(&s);
	assert_true(s.n[1] == 17 && s.n[2] == 19 && s.n[3] == 19);
	for (int i = 0; i < 3; i++) {
		/* and small's one source range */
		assert_int_equal(sync_reconcile(eng, &r),
				 (int64_t)(s.n[0] + s.n[4] + s.n[1] + s.n[2] + s.n[3] + 1));
		assert_true(r.missing == 0 && r.altered == 0 && r.unknown == 0);
	}
	assert_same(&s);
}

/* B34 ferry_services4: a frontend and a VIP marker deleted, a frontend's
 * inline backend wiped, a stray frontend added. */
static void test_services(void **state)
{
	struct svc_key fe = svc_key_of("10.96.0.1", 80, IPPROTO_TCP);
	struct svc_key np = svc_key_of("0.0.0.0", 30002, IPPROTO_TCP);
	struct svc_key marker = svc_key_of("10.96.0.9", 0, 0);
	struct svc_key stray = svc_key_of("10.96.7.7", 80, IPPROTO_TCP);
	struct svc_entry e;
	struct snap s;

	(void)state;
	apply(0);
	snap_take(&s);
	assert_int_equal(svc_map_delete(&maps, &fe), 0);
	assert_int_equal(svc_map_delete(&maps, &marker), 0);
	assert_int_equal(svc_map_lookup(&maps, &np, &e), 0);
	memset(&e.in.v4[1], 0, sizeof(e.in.v4[1]));
	assert_int_equal(svc_map_update(&maps, &np, &e, BPF_ANY), 0);
	assert_int_equal(svc_map_update(&maps, &stray, &e, BPF_ANY), 0);
	reconcile(2, 1, 1);
	assert_same(&s);
	reconcile(0, 0, 0);
}

/* B34 ferry_slots (the set of 17): one deleted, one pointing elsewhere, a
 * stray slot of another revision. */
static void test_slots(void **state)
{
	struct slot_key k = { 0 }, prev, stray;
	struct slot_value v;
	struct snap s;

	(void)state;
	apply(0);
	snap_take(&s);
	assert_int_equal(bpf_map_get_next_key(maps.fd[DP_MAP_SLOTS], NULL, &k), 0);
	prev = k;
	assert_int_equal(bpf_map_get_next_key(maps.fd[DP_MAP_SLOTS], &prev, &k), 0);
	assert_int_equal(bpf_map_delete_elem(maps.fd[DP_MAP_SLOTS], &prev), 0);
	assert_int_equal(bpf_map_lookup_elem(maps.fd[DP_MAP_SLOTS], &k, &v), 0);
	v.addr[3] ^= htonl(0xff);
	assert_int_equal(bpf_map_update_elem(maps.fd[DP_MAP_SLOTS], &k, &v, BPF_ANY), 0);
	stray = k;
	stray.rev += 7;
	assert_int_equal(bpf_map_update_elem(maps.fd[DP_MAP_SLOTS], &stray, &v, BPF_ANY), 0);
	reconcile(1, 1, 1);
	assert_same(&s);
	reconcile(0, 0, 0);
}

/* B34 ferry_backends: one deleted, one's port changed, a stray ID. */
static void test_backends(void **state)
{
	__u32 id, prev, stray = 1000;
	struct backend_value v;
	struct snap s;

	(void)state;
	apply(0);
	snap_take(&s);
	assert_int_equal(backend_map_next_id(maps.fd[DP_MAP_BACKENDS], NULL, &id), 0);
	prev = id;
	assert_int_equal(backend_map_next_id(maps.fd[DP_MAP_BACKENDS], &prev, &id), 0);
	assert_int_equal(backend_map_delete(maps.fd[DP_MAP_BACKENDS], prev), 0);
	assert_int_equal(backend_map_lookup(maps.fd[DP_MAP_BACKENDS], id, &v), 0);
	v.port = htons(9999);
	assert_int_equal(bpf_map_update_elem(maps.fd[DP_MAP_BACKENDS], &id, &v, BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(maps.fd[DP_MAP_BACKENDS], &stray, &v, BPF_ANY), 0);
	reconcile(1, 1, 1);
	assert_same(&s);
	reconcile(0, 0, 0);
}

static struct revnat_key rn_key_of(const char *addr)
{
	struct revnat_key k = { .port = htons(8080), .proto = IPPROTO_TCP };
	struct ferry_ip a = ip(addr);

	memcpy(k.addr, a.w, sizeof(k.addr));
	return k;
}

/* B34 ferry_revnat: an owner's entry deleted, one naming another service
 * port, a stray one; an orphan (a backend that left, kept for its
 * connections) is neither compared nor removed, even altered. */
static void test_revnat(void **state)
{
	struct revnat_key gone = rn_key_of("10.0.2.1"), altered = rn_key_of("10.0.2.2");
	struct revnat_key stray = rn_key_of("10.0.9.9"), orphan = rn_key_of("10.0.17.17");
	struct revnat_value v, ov;
	struct snap s;

	(void)state;
	apply(0);
	apply(1); /* 10.0.17.17 leaves big: its entry is an orphan now */
	snap_take(&s);
	assert_int_equal(s.n[3], 19);
	reconcile(0, 0, 0);
	assert_int_equal(bpf_map_lookup_elem(maps.fd[DP_MAP_REVNAT], &gone, &v), 0);
	assert_int_equal(bpf_map_delete_elem(maps.fd[DP_MAP_REVNAT], &gone), 0);
	v.svc_port = htons(81);
	assert_int_equal(bpf_map_update_elem(maps.fd[DP_MAP_REVNAT], &altered, &v, BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(maps.fd[DP_MAP_REVNAT], &stray, &v, BPF_ANY), 0);
	reconcile(1, 1, 1);
	assert_same(&s);
	assert_int_equal(bpf_map_lookup_elem(maps.fd[DP_MAP_REVNAT], &orphan, &ov), 0);
	ov.svc_port = htons(82);
	assert_int_equal(bpf_map_update_elem(maps.fd[DP_MAP_REVNAT], &orphan, &ov, BPF_ANY), 0);
	reconcile(0, 0, 0);
	assert_int_equal(bpf_map_lookup_elem(maps.fd[DP_MAP_REVNAT], &orphan, &ov), 0);
}

/* B34 ferry_node_addrs (one deleted, one's SNAT flag cleared, a stray
 * one), ferry_config (altered) and ferry_source_ranges (an LPM trie: a
 * range deleted, a stray one). */
static void test_node_config_ranges(void **state)
{
	struct ferry_ip addrs[3] = { ip("192.0.2.1"), ip("2001:db8::1"), ip("192.0.2.2") };
	struct dp_config cfg = { .node_port_min = 30000, .node_port_max = 32767 }, seen, want;
	struct node_addr_key k1, k2, stray;
	struct node_addr_value v = { 0 };
	struct source_range_key rk = { 0 }, rstray;
	uint8_t one = 1;
	size_t n;
	uint64_t sum;
	uint32_t zero = 0;

	(void)state;
	apply(0);
	assert_true(sync_set_node_addrs(eng, addrs, 3) >= 0);
	assert_true(sync_set_config(eng, &cfg) >= 0);
	reconcile(0, 0, 0);
	sum = digest(DP_MAP_NODE_ADDRS, sizeof(k1), sizeof(v), &n);
	assert_int_equal(n, 3);
	assert_int_equal(bpf_map_lookup_elem(maps.fd[DP_MAP_CONFIG], &zero, &want), 0);
	memcpy(k1.addr, addrs[2].w, sizeof(k1.addr));
	memcpy(k2.addr, addrs[0].w, sizeof(k2.addr));
	stray = k1;
	stray.addr[3] ^= htonl(0xff);
	assert_int_equal(bpf_map_delete_elem(maps.fd[DP_MAP_NODE_ADDRS], &k1), 0);
	assert_int_equal(bpf_map_update_elem(maps.fd[DP_MAP_NODE_ADDRS], &k2, &v, BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(maps.fd[DP_MAP_NODE_ADDRS], &stray, &v, BPF_ANY), 0);
	seen = want;
	seen.node_port_max = 1;
	assert_int_equal(bpf_map_update_elem(maps.fd[DP_MAP_CONFIG], &zero, &seen, BPF_ANY), 0);
	assert_int_equal(bpf_map_get_next_key(maps.fd[DP_MAP_SOURCE_RANGES], NULL, &rk), 0);
	rstray = rk;
	rstray.addr[3] ^= htonl(0xff00);
	assert_int_equal(bpf_map_delete_elem(maps.fd[DP_MAP_SOURCE_RANGES], &rk), 0);
	assert_int_equal(bpf_map_update_elem(maps.fd[DP_MAP_SOURCE_RANGES], &rstray, &one,
					     BPF_ANY), 0);
	reconcile(2, 2, 2);
	assert_true(digest(DP_MAP_NODE_ADDRS, sizeof(k1), sizeof(v), &n) == sum);
	assert_int_equal(n, 3);
	assert_int_equal(bpf_map_lookup_elem(maps.fd[DP_MAP_CONFIG], &zero, &seen), 0);
	assert_memory_equal(&seen, &want, sizeof(seen));
	assert_int_equal(bpf_map_lookup_elem(maps.fd[DP_MAP_SOURCE_RANGES], &rk, &one), 0);
	assert_int_not_equal(bpf_map_lookup_elem(maps.fd[DP_MAP_SOURCE_RANGES], &rstray, &one), 0);
	reconcile(0, 0, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_steady_state_repairs_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_services, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revnat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_config_ranges, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
