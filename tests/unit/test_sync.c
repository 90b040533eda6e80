/* Unit tests of the sync engine (user/sync) on real BPF maps of the
 * datapath's layout, with desired states written by hand: the frontends of
 * one service port (ClusterIP, NodePort, LB IPs, externalIPs) sharing one
 * backend set (B22-B26, B30), conflicts between service ports, source
 * ranges, node addresses and the datapath's config, and adoption.
 * Creating maps needs CAP_BPF (tests run as root). */
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

#include "capture.h"
#include "datapath/backend_map.h"
#include "datapath/svc_map.h"
#include "ferry/maps.h"
#include "model/model.h"
#include "sync/engine.h"
#include "bpf_maps.h"
#include "desired_spec.h"

static struct dp_maps maps;
static struct sync_engine *eng;

/* Room for three Maglev tables of 701 entries (176 cells). */
static const struct dp_limits limits = { .max_services = 64, .max_backends = 256,
					 .max_maglev_entries = 3 * 176 * FERRY_MAGLEV_PER_CELL };

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

/* A new engine on the same maps, after what it published: what a
 * restarted ferryd does. */
static void restart(void)
{
	struct agent_state last;
	__u32 zero = 0;

	assert_int_equal(sync_publish(eng, 0, 0, 0), 0);
	assert_int_equal(bpf_map_lookup_elem(maps.fd[DP_MAP_STATE], &zero, &last), 0);
	sync_free(eng);
	eng = sync_new(&maps, &limits, &last);
	assert_non_null(eng);
	sync_adopt(eng);
}

static size_t map_count(enum dp_map m, size_t key_size)
{
	char key[64], prev[64];
	size_t n = 0;
	void *p = NULL;

	if (m == DP_MAP_BACKENDS)
		return (size_t)backend_map_count(maps.fd[m]);

	while (bpf_map_get_next_key(maps.fd[m], p, key) == 0) {
		memcpy(prev, key, key_size);
		p = prev;
		n++;
	}
	return n;
}

static size_t services(void)
{
	return map_count(DP_MAP_SERVICES, sizeof(struct svc_key)) +
	       map_count(DP_MAP_SERVICES4, sizeof(struct svc_key4));
}

static size_t ranges(void)
{
	return map_count(DP_MAP_SOURCE_RANGES, sizeof(struct source_range_key));
}

static struct svc_key key_of(const char *addr, uint16_t port, uint8_t proto, uint8_t scope)
{
	struct svc_key k = { .port = htons(port), .proto = proto, .scope = scope };
	struct ferry_ip a = ip(addr);

	memcpy(k.addr, a.w, sizeof(k.addr));
	return k;
}

/* The entry of addr:port/TCP (scope 0 or 1); false when absent. */
static bool entry(const char *addr, uint16_t port, uint8_t scope, struct svc_value *v)
{
	struct svc_key k = key_of(addr, port, IPPROTO_TCP, scope);
	struct svc_entry e;

	if (svc_map_lookup(&maps, &k, &e))
		return false;
	*v = e.v;
	return true;
}

/* The IPv4 backends inline in the entry (addr, port): how many, and
 * whether one is at baddr. */
static size_t inline_count(const char *addr, uint16_t port)
{
	struct svc_key k = key_of(addr, port, IPPROTO_TCP, 0);
	struct svc_entry e;
	size_t n = 0;

	assert_int_equal(svc_map_lookup(&maps, &k, &e), 0);
	while (n < FERRY_SVC_INLINE_V4 && e.in.v4_backend_id[n])
		n++;
	return n;
}

static bool inline_has(const char *addr, uint16_t port, const char *baddr)
{
	struct svc_key k = key_of(addr, port, IPPROTO_TCP, 0);
	struct ferry_ip want = ip(baddr);
	struct svc_entry e;

	assert_int_equal(svc_map_lookup(&maps, &k, &e), 0);
	for (size_t i = 0; i < FERRY_SVC_INLINE_V4 && e.in.v4_backend_id[i]; i++)
		if (e.in.v4[i].addr == want.w[3] && e.in.v4[i].port == htons(8080))
			return true;
	return false;
}

static bool vip_marker(const char *addr)
{
	struct svc_key k = key_of(addr, 0, 0, 0);
	struct svc_entry e;

	return svc_map_lookup(&maps, &k, &e) == 0 &&
	       e.v.flags == SVC_FLAG_VIP_MARKER;
}


/* Apply specs[0..n) as the whole desired state. Returns the map writes. */
static int64_t apply(const struct spec *specs, size_t n)
{
	struct desired_state st = spec_state(specs, n);
	int64_t writes;

	writes = sync_apply(eng, &st);
	state_free(&st);
	assert_true(writes >= 0);
	return writes;
}

static const struct spec web = {
	.id = "shop/web:http/TCP/v4",
	.frontends = { "C 10.96.0.1 80", "N 0.0.0.0 30080", "L 198.51.100.1 80",
		       "E 203.0.113.1 80" },
	.backends = { "10.0.0.1", "10.0.0.2" },
};

/* B22 B24 B25 B30: one entry per frontend, one svc_id and rev, one set
 * (inline in every entry: it is small, so no slots); each frontend's own
 * flags; a VIP marker for the ClusterIP only. */
static void test_frontends_share_one_set(void **state)
{
	struct svc_value c, np, lb, ext;

	(void)state;
	apply(&web, 1);
	assert_true(entry("10.96.0.1", 80, 0, &c));
	assert_true(entry("0.0.0.0", 30080, 0, &np));
	assert_true(entry("198.51.100.1", 80, 0, &lb));
	assert_true(entry("203.0.113.1", 80, 0, &ext));
	assert_int_equal(np.svc_id, c.svc_id);
	assert_int_equal(lb.svc_id, c.svc_id);
	assert_int_equal(ext.svc_id, c.svc_id);
	assert_int_equal(np.rev, c.rev);
	assert_int_equal(lb.rev, c.rev);
	assert_int_equal(ext.rev, c.rev);
	assert_int_equal(c.count, 2);
	assert_int_equal(lb.count, 2);
	assert_int_equal(c.flags, 0);
	assert_int_equal(np.flags, SVC_FLAG_EXTERNAL | SVC_FLAG_NODE_PORT);
	assert_int_equal(lb.flags, SVC_FLAG_EXTERNAL | SVC_FLAG_LOAD_BALANCER);
	assert_int_equal(ext.flags, SVC_FLAG_EXTERNAL);
	assert_true(vip_marker("10.96.0.1"));
	assert_false(vip_marker("198.51.100.1"));
	assert_false(vip_marker("203.0.113.1"));
	assert_false(vip_marker("0.0.0.0"));
	assert_int_equal(services(), 5);
	assert_int_equal(inline_count("203.0.113.1", 80), 2);
	assert_int_equal(map_count(DP_MAP_SLOTS, sizeof(struct slot_key)), 0);
	assert_int_equal(map_count(DP_MAP_BACKENDS, sizeof(__u32)), 2);
	assert_int_equal(sync_stats(eng)->services, 1);
	/* A frontend per address, and the ClusterIP's marker: all IPv4. */
	assert_int_equal(sync_stats(eng)->svc_entries4, 5);
	assert_int_equal(sync_stats(eng)->svc_entries6, 0);
	assert_int_equal(apply(&web, 1), 0);
}

/* The IPv6 NodePort is the wildcard ::. */
static void test_node_port_v6_wildcard(void **state)
{
	static const struct spec v6 = {
		.id = "shop/web:http/TCP/v6",
		.frontends = { "C fd00::1 80", "N :: 30080" },
		.backends = { "fd00:1::1" },
	};
	struct svc_value v;

	(void)state;
	apply(&v6, 1);
	assert_true(entry("::", 30080, 0, &v));
	assert_int_equal(v.flags, SVC_FLAG_EXTERNAL | SVC_FLAG_NODE_PORT);
	assert_false(vip_marker("::"));
	assert_true(vip_marker("fd00::1"));
	/* ferry_services6 holds them: the ClusterIP, the wildcard and the
	 * marker; metrics count them there, and none once they are gone. */
	assert_int_equal(sync_stats(eng)->svc_entries6, 3);
	assert_int_equal(sync_stats(eng)->svc_entries4, 0);
	assert_int_equal(map_count(DP_MAP_SERVICES, sizeof(struct svc_key)), 3);
	apply(NULL, 0);
	assert_int_equal(sync_stats(eng)->svc_entries6, 0);
	assert_int_equal(map_count(DP_MAP_SERVICES, sizeof(struct svc_key)), 0);
}

/* B16 B23: externalTrafficPolicy Local. The Cluster set's external
 * frontends carry EXT_LOCAL (the ClusterIP does not); the external set's
 * keys have scope 1, its own svc_id, and no VIP marker. */
static void test_ext_local_scopes(void **state)
{
	static const struct spec sets[] = {
		{ .id = "shop/edge:http/TCP/v4",
		  .frontends = { "C 10.96.0.2 80", "N 0.0.0.0 30081", "L 198.51.100.2 80" },
		  .backends = { "10.0.0.1", "10.0.1.1" }, .ext_local = true },
		{ .id = "shop/edge:http/TCP/v4/external",
		  .frontends = { "N 0.0.0.0 30081", "L 198.51.100.2 80" },
		  .backends = { "10.0.0.1" }, .external = true },
	};
	struct svc_value c, np, lb, np1, lb1;

	(void)state;
	apply(sets, 2);
	assert_true(entry("10.96.0.2", 80, 0, &c));
	assert_true(entry("0.0.0.0", 30081, 0, &np));
	assert_true(entry("198.51.100.2", 80, 0, &lb));
	assert_true(entry("0.0.0.0", 30081, 1, &np1));
	assert_true(entry("198.51.100.2", 80, 1, &lb1));
	assert_false(entry("10.96.0.2", 80, 1, &c));
	assert_int_equal(c.flags, 0);
	assert_int_equal(np.flags, SVC_FLAG_EXTERNAL | SVC_FLAG_NODE_PORT | SVC_FLAG_EXT_LOCAL);
	assert_int_equal(lb.flags,
			 SVC_FLAG_EXTERNAL | SVC_FLAG_LOAD_BALANCER | SVC_FLAG_EXT_LOCAL);
	assert_int_equal(np1.flags, np.flags);
	assert_int_equal(lb1.flags, lb.flags);
	assert_int_not_equal(np1.svc_id, np.svc_id);
	assert_int_equal(np1.svc_id, lb1.svc_id);
	assert_int_equal(np.count, 2);
	assert_int_equal(np1.count, 1);
	/* Two service ports, 5 frontends, one VIP marker. */
	assert_int_equal(services(), 6);
	assert_int_equal(sync_stats(eng)->services, 2);
}

/* A frontend added or removed without a backend change writes or deletes
 * only its key; the revision stays. */
static void test_frontend_change_writes_one_key(void **state)
{
	struct spec more = web;
	struct svc_value before, after;

	(void)state;
	apply(&web, 1);
	assert_true(entry("10.96.0.1", 80, 0, &before));
	more.frontends[4] = "E 203.0.113.2 80";
	assert_int_equal(apply(&more, 1), 1);
	assert_true(entry("203.0.113.2", 80, 0, &after));
	assert_int_equal(after.rev, before.rev);
	assert_int_equal(after.svc_id, before.svc_id);
	assert_false(vip_marker("203.0.113.2"));
	assert_int_equal(apply(&web, 1), 1);
	assert_false(entry("203.0.113.2", 80, 0, &after));
	assert_true(entry("10.96.0.1", 80, 0, &after));
	assert_int_equal(after.rev, before.rev);
}

/* Make-before-break: a backend change moves every frontend to the new
 * revision, each entry with the new set inline. */
static void test_backend_change_moves_every_frontend(void **state)
{
	struct spec changed = web;
	struct svc_value c, np, lb, ext;

	(void)state;
	apply(&web, 1);
	changed.backends[1] = "10.0.0.3";
	assert_true(apply(&changed, 1) > 0);
	assert_true(entry("10.96.0.1", 80, 0, &c));
	assert_true(entry("0.0.0.0", 30080, 0, &np));
	assert_true(entry("198.51.100.1", 80, 0, &lb));
	assert_true(entry("203.0.113.1", 80, 0, &ext));
	assert_int_equal(c.rev, 2);
	assert_int_equal(np.rev, 2);
	assert_int_equal(lb.rev, 2);
	assert_int_equal(ext.rev, 2);
	assert_true(inline_has("0.0.0.0", 30080, "10.0.0.3"));
	assert_false(inline_has("0.0.0.0", 30080, "10.0.0.2"));
	assert_int_equal(map_count(DP_MAP_SLOTS, sizeof(struct slot_key)), 0);
	assert_int_equal(map_count(DP_MAP_BACKENDS, sizeof(__u32)), 2);
}

/* 17 addresses from 10.0.2.1 on, port 8080. */
static const struct spec big = {
	.id = "shop/big:http/TCP/v4",
	.frontends = { "C 10.96.0.9 80", "N 0.0.0.0 30090" },
	.backends = { "10.0.2.1", "10.0.2.2", "10.0.2.3", "10.0.2.4", "10.0.2.5", "10.0.2.6",
		      "10.0.2.7", "10.0.2.8", "10.0.2.9", "10.0.2.10", "10.0.2.11",
		      "10.0.2.12", "10.0.2.13", "10.0.2.14", "10.0.2.15", "10.0.2.16",
		      "10.0.2.17" },
};

/* Only a set too large to ride inline (17 IPv4 backends) has slots, those
 * of its current revision; crossing the limit either way leaves none
 * behind, also after a restart adopted the set (B3). */
static void test_slots_only_for_large_sets(void **state)
{
	struct spec small = big;
	struct svc_value v;

	(void)state;
	small.backends[16] = NULL;
	apply(&small, 1);
	assert_int_equal(map_count(DP_MAP_SLOTS, sizeof(struct slot_key)), 0);
	assert_int_equal(inline_count("10.96.0.9", 80), 16);

	apply(&big, 1);
	assert_true(entry("10.96.0.9", 80, 0, &v));
	assert_int_equal(v.count, 17);
	assert_int_equal(map_count(DP_MAP_SLOTS, sizeof(struct slot_key)), 17);
	assert_int_equal(sync_stats(eng)->slots, 17);
	assert_int_equal(inline_count("10.96.0.9", 80), 0);

	restart();
	assert_int_equal(sync_stats(eng)->slots, 17);
	assert_int_equal(apply(&big, 1), 0);
	small.backends[15] = "10.0.3.1"; /* sorted, as the model gives them */
	apply(&small, 1);
	assert_int_equal(map_count(DP_MAP_SLOTS, sizeof(struct slot_key)), 0);
	assert_int_equal(inline_count("0.0.0.0", 30090), 16);
	assert_true(inline_has("0.0.0.0", 30090, "10.0.3.1"));
	assert_int_equal(sync_stats(eng)->slots, 0);

	restart();
	assert_int_equal(apply(&small, 1), 0);
	apply(&big, 1);
	assert_int_equal(map_count(DP_MAP_SLOTS, sizeof(struct slot_key)), 17);
	assert_int_equal(map_count(DP_MAP_BACKENDS, sizeof(__u32)), 17);
	apply(NULL, 0);
	assert_int_equal(map_count(DP_MAP_SLOTS, sizeof(struct slot_key)), 0);
	assert_int_equal(map_count(DP_MAP_BACKENDS, sizeof(__u32)), 0);
}

/* Issue 14: adoption puts back what was deleted by hand. A VIP marker
 * (B17) is written again; a set of 17 that lost a slot is rewritten whole
 * and its old revision's slots all go, the last one too. */
static void test_adopt_repairs(void **state)
{
	struct svc_key marker = key_of("10.96.0.9", 0, 0, 0);
	struct slot_key slot = { .slot = 5 };
	struct spec changed = big;
	struct svc_value v;

	(void)state;
	apply(&big, 1);
	assert_true(entry("10.96.0.9", 80, 0, &v));
	slot.svc_id = v.svc_id;
	slot.rev = v.rev;
	assert_int_equal(bpf_map_delete_elem(maps.fd[DP_MAP_SLOTS], &slot), 0);
	marker.proto = 0;
	assert_int_equal(svc_map_delete(&maps, &marker), 0);

	restart();
	assert_true(vip_marker("10.96.0.9"));
	assert_true(apply(&big, 1) > 0);
	assert_int_equal(map_count(DP_MAP_SLOTS, sizeof(struct slot_key)), 17);
	changed.backends[16] = "10.0.4.1";
	apply(&changed, 1);
	assert_int_equal(map_count(DP_MAP_SLOTS, sizeof(struct slot_key)), 17);
	apply(NULL, 0);
	assert_int_equal(map_count(DP_MAP_SLOTS, sizeof(struct slot_key)), 0);
	assert_int_equal(services(), 0);
}

/* Issue 14: IDs freed before a restart are not handed out at once after
 * it; socket state may still name them. */
static void test_ids_resume_after_restart(void **state)
{
	struct spec two[] = { web, big };
	struct svc_value v;
	__u32 web_id;

	(void)state;
	apply(two, 2);
	assert_true(entry("10.96.0.1", 80, 0, &v));
	web_id = v.svc_id;
	apply(&big, 1);
	restart();
	apply(two, 2);
	assert_true(entry("10.96.0.1", 80, 0, &v));
	assert_int_not_equal(v.svc_id, web_id);
	assert_true(v.svc_id > web_id);
}

static const struct spec dup_a = {
	.id = "ns/a:http/TCP/v4",
	.frontends = { "C 10.96.1.1 80", "N 0.0.0.0 30100" },
	.backends = { "10.0.1.1" },
};
static const struct spec dup_b = {
	.id = "ns/b:http/TCP/v4",
	.frontends = { "C 10.96.1.2 80", "N 0.0.0.0 30100", "E 203.0.113.9 80" },
	.backends = { "10.0.1.2" },
};

/* Two Services with the same nodePort: the later one goes without that
 * frontend only, with a warning naming both; when the first goes, the
 * second takes the frontend over. */
static void test_duplicate_node_port_full_apply(void **state)
{
	struct spec both[] = { dup_a, dup_b };
	struct svc_value a, b, np;
	struct capture cap;
	char log[4096];

	(void)state;
	capture_begin(&cap);
	apply(both, 2);
	capture_end(&cap, log, sizeof(log));
	assert_non_null(strstr(log, "ns/b:http/TCP/v4: frontend 0.0.0.0:30100/TCP is already "
				    "programmed for ns/a:http/TCP/v4; left out"));
	assert_true(entry("10.96.1.1", 80, 0, &a));
	assert_true(entry("10.96.1.2", 80, 0, &b));
	assert_true(entry("0.0.0.0", 30100, 0, &np));
	assert_true(entry("203.0.113.9", 80, 0, &np) && np.svc_id == b.svc_id);
	assert_true(entry("0.0.0.0", 30100, 0, &np));
	assert_int_equal(np.svc_id, a.svc_id);
	assert_int_equal(sync_stats(eng)->conflicts, 1);
	assert_int_equal(sync_stats(eng)->pending, 1);
	/* Applied again: nothing to write, still the first one's, and the
	 * conflict is not reported again while it lasts. */
	capture_begin(&cap);
	assert_int_equal(apply(both, 2), 0);
	capture_end(&cap, log, sizeof(log));
	assert_null(strstr(log, "already programmed"));
	assert_int_equal(sync_stats(eng)->conflicts, 1);
	apply(&dup_b, 1);
	assert_false(entry("10.96.1.1", 80, 0, &a));
	assert_true(entry("0.0.0.0", 30100, 0, &np));
	assert_int_equal(np.svc_id, b.svc_id);
	assert_int_equal(np.flags, SVC_FLAG_EXTERNAL | SVC_FLAG_NODE_PORT);
	assert_int_equal(sync_stats(eng)->pending, 0);
	/* a back: now a is the later one, a new conflict. */
	apply(both, 2);
	assert_true(entry("0.0.0.0", 30100, 0, &np));
	assert_int_equal(np.svc_id, b.svc_id);
	assert_int_equal(sync_stats(eng)->conflicts, 2);
}

/* The same through deltas (the API source): the waiting frontend is taken
 * over when the holder's removal frees it. */
static void test_duplicate_node_port_delta(void **state)
{
	struct spec both[] = { dup_a, dup_b };
	struct desired_delta delta = { 0 };
	struct svc_value b, np;
	char *removed = (char *)dup_a.id;

	(void)state;
	apply(both, 2);
	delta.removed = &removed;
	delta.n_removed = 1;
	assert_true(sync_apply_delta(eng, &delta) > 0);
	assert_true(entry("10.96.1.2", 80, 0, &b));
	assert_true(entry("0.0.0.0", 30100, 0, &np));
	assert_int_equal(np.svc_id, b.svc_id);
	assert_int_equal(np.rev, b.rev);
	assert_int_equal(sync_stats(eng)->pending, 0);
	assert_int_equal(services(), 4);
}

/* A frontend the holder drops while it stays (its Service changed its
 * nodePort) goes to the service port waiting for it. */
static void test_freed_frontend_taken_over(void **state)
{
	struct spec both[] = { dup_a, dup_b };
	struct spec a2 = dup_a;
	struct desired_delta delta = { 0 };
	struct svc_value b, np;

	(void)state;
	apply(both, 2);
	a2.frontends[1] = "N 0.0.0.0 30101";
	delta.set.svcs = calloc(1, sizeof(*delta.set.svcs));
	delta.set.n_svcs = delta.set.cap_svcs = 1;
	svc_build(&delta.set.svcs[0], &a2);
	assert_true(sync_apply_delta(eng, &delta) > 0);
	state_free(&delta.set);
	assert_true(entry("10.96.1.2", 80, 0, &b));
	assert_true(entry("0.0.0.0", 30100, 0, &np));
	assert_int_equal(np.svc_id, b.svc_id);
	assert_true(entry("0.0.0.0", 30101, 0, &np));
	assert_int_not_equal(np.svc_id, b.svc_id);
	assert_int_equal(sync_stats(eng)->pending, 0);
}

static bool range_admits(uint32_t svc_id, const char *addr)
{
	struct source_range_key k = { .prefixlen = 32 + 128, .svc_id = htonl(svc_id) };
	struct ferry_ip a = ip(addr);
	__u8 v;

	memcpy(k.addr, a.w, sizeof(k.addr));
	return bpf_map_lookup_elem(maps.fd[DP_MAP_SOURCE_RANGES], &k, &v) == 0;
}

/* B26: the LB IP of a port with source ranges is flagged, the NodePort and
 * externalIP are not; the LPM entries are keyed by svc_id and follow the
 * ranges; the model's "none parses" (one 0.0.0.0/32 prefix) admits no
 * client; the service port's removal removes them. */
static void test_source_ranges(void **state)
{
	struct spec s = web;
	struct svc_value lb, np, ext;

	(void)state;
	s.ranges[0] = "192.0.2.0/24";
	s.ranges[1] = "198.18.0.7/32";
	apply(&s, 1);
	assert_true(entry("198.51.100.1", 80, 0, &lb));
	assert_true(entry("0.0.0.0", 30080, 0, &np));
	assert_true(entry("203.0.113.1", 80, 0, &ext));
	assert_int_equal(lb.flags, SVC_FLAG_EXTERNAL | SVC_FLAG_LOAD_BALANCER |
				   SVC_FLAG_SOURCE_RANGES);
	assert_int_equal(np.flags & SVC_FLAG_SOURCE_RANGES, 0);
	assert_int_equal(ext.flags & SVC_FLAG_SOURCE_RANGES, 0);
	assert_int_equal(ranges(), 2);
	assert_true(range_admits(lb.svc_id, "192.0.2.77"));
	assert_true(range_admits(lb.svc_id, "198.18.0.7"));
	assert_false(range_admits(lb.svc_id, "198.18.0.8"));
	assert_false(range_admits(lb.svc_id + 1, "192.0.2.77"));

	s.ranges[1] = "198.18.0.0/16";
	assert_int_equal(apply(&s, 1), 2);
	assert_int_equal(ranges(), 2);
	assert_true(range_admits(lb.svc_id, "198.18.0.8"));

	s.ranges[0] = s.ranges[1] = NULL;
	apply(&s, 1);
	assert_true(entry("198.51.100.1", 80, 0, &lb));
	assert_int_equal(lb.flags, SVC_FLAG_EXTERNAL | SVC_FLAG_LOAD_BALANCER);
	assert_int_equal(ranges(), 0);

	s.ranges[0] = "0.0.0.0/32";
	apply(&s, 1);
	assert_true(entry("198.51.100.1", 80, 0, &lb));
	assert_int_equal(lb.flags & SVC_FLAG_SOURCE_RANGES, SVC_FLAG_SOURCE_RANGES);
	assert_false(range_admits(lb.svc_id, "192.0.2.77"));

	s.ranges[0] = "2001:db8::/32";
	apply(&s, 1);
	assert_true(range_admits(lb.svc_id, "2001:db8::5"));
	apply(NULL, 0);
	assert_int_equal(ranges(), 0);
	assert_int_equal(services(), 0);
}

static uint32_t node_flag(const char *addr)
{
	struct node_addr_key k;
	struct node_addr_value v;
	struct ferry_ip a = ip(addr);

	memcpy(k.addr, a.w, sizeof(k.addr));
	if (bpf_map_lookup_elem(maps.fd[DP_MAP_NODE_ADDRS], &k, &v))
		return 99;
	return v.flags;
}

static struct dp_config config_read(void)
{
	struct dp_config c;
	__u32 zero = 0;

	assert_int_equal(bpf_map_lookup_elem(maps.fd[DP_MAP_CONFIG], &zero, &c), 0);
	return c;
}

/* ferry_node_addrs is exactly the set given, the first of each family the
 * SNAT address, in the map and in ferry_config. */
static void test_node_addrs_and_config(void **state)
{
	struct ferry_ip set1[] = { ip("192.0.2.1"), ip("2001:db8::1"), ip("192.0.2.2"),
				   ip("192.0.2.1") };
	struct ferry_ip set2[] = { ip("192.0.2.2"), ip("2001:db8::1") };
	struct dp_config want = { .node_port_min = 30000, .node_port_max = 32767,
				  .snat_port_min = 40000, .snat_port_max = 60000,
				  .icmp_per_sec = 10 }, got;
	struct ferry_ip v4 = ip("192.0.2.1"), v4b = ip("192.0.2.2"), v6 = ip("2001:db8::1");

	(void)state;
	assert_int_equal(sync_set_node_addrs(eng, set1, 4), 3);
	assert_int_equal(map_count(DP_MAP_NODE_ADDRS, sizeof(struct node_addr_key)), 3);
	assert_int_equal(node_flag("192.0.2.1"), NODE_ADDR_SNAT);
	assert_int_equal(node_flag("2001:db8::1"), NODE_ADDR_SNAT);
	assert_int_equal(node_flag("192.0.2.2"), 0);
	assert_int_equal(sync_set_config(eng, &want), 1);
	got = config_read();
	assert_memory_equal(got.snat_v4, v4.w, 16);
	assert_memory_equal(got.snat_v6, v6.w, 16);
	assert_int_equal(got.node_port_min, 30000);
	assert_int_equal(got.snat_port_max, 60000);
	assert_int_equal(got.icmp_per_sec, 10);
	assert_int_equal(sync_set_config(eng, &want), 0);
	assert_int_equal(sync_set_node_addrs(eng, set1, 4), 0);

	/* .1 leaves: .2 becomes the IPv4 SNAT address; one put, one delete,
	 * the config. */
	assert_int_equal(sync_set_node_addrs(eng, set2, 2), 3);
	assert_int_equal(node_flag("192.0.2.1"), 99);
	assert_int_equal(node_flag("192.0.2.2"), NODE_ADDR_SNAT);
	got = config_read();
	assert_memory_equal(got.snat_v4, v4b.w, 16);
	assert_memory_equal(got.snat_v6, v6.w, 16);

	assert_true(sync_set_node_addrs(eng, NULL, 0) > 0);
	assert_int_equal(map_count(DP_MAP_NODE_ADDRS, sizeof(struct node_addr_key)), 0);
	got = config_read();
	assert_int_equal(got.snat_v4[2] | got.snat_v4[3] | got.snat_v6[3], 0);
}

/* The Maglev table of v (size entries from its offset), each entry checked
 * to name a slot below count; its entries summed, to tell tables apart. */
static uint64_t maglev_sum(const struct svc_value *v)
{
	uint64_t sum = 0;

	for (__u32 i = 0; i < v->maglev_size; i++) {
		__u32 cell_index = v->maglev_offset + i / FERRY_MAGLEV_PER_CELL;
		struct maglev_cell cell;

		assert_int_equal(bpf_map_lookup_elem(maps.fd[DP_MAP_MAGLEV], &cell_index, &cell), 0);
		assert_true(cell.slot[i % FERRY_MAGLEV_PER_CELL] < v->count);
		sum += (i + 1) * (uint64_t)(cell.slot[i % FERRY_MAGLEV_PER_CELL] + 1);
	}
	return sum;
}

static struct spec maglev_spec(const char *id, const char *frontend)
{
	struct spec sp = { .id = id, .frontends = { frontend }, .backends = { "10.0.0.1", "10.0.0.2" } };

	return sp;
}

/* Apply specs with every set on Maglev. Returns the map writes. */
static int64_t apply_maglev(const struct spec *specs, size_t n)
{
	struct desired_state st = spec_state(specs, n);
	int64_t writes;

	for (size_t i = 0; i < n; i++)
		st.svcs[i].lb_algorithm = MODEL_LB_MAGLEV;
	writes = sync_apply(eng, &st);
	assert_true(writes >= 0);
	state_free(&st);
	return writes;
}

/* Issue 16: a Maglev set's table is written to a run of its own before the
 * entry that publishes it; a new revision gets a new run while the old
 * one is still read, and the old run is reused once the apply is over;
 * another algorithm has none; a removed service port frees its run and
 * takes its name along; a full array is an error that keeps the last
 * state; a restarted engine keeps the runs it adopts. */
static void test_maglev_tables(void **state)
{
	struct spec a = maglev_spec("shop/a:http/TCP/v4", "C 10.96.0.1 80");
	struct spec b = maglev_spec("shop/b:http/TCP/v4", "C 10.96.0.2 80");
	struct spec c = maglev_spec("shop/c:http/TCP/v4", "C 10.96.0.3 80");
	struct spec d = maglev_spec("shop/d:http/TCP/v4", "C 10.96.0.4 80");
	struct spec both[2], four[4];
	struct desired_state st;
	struct svc_value v, w;
	struct svc_name name;
	uint64_t sum;

	(void)state;
	apply_maglev(&a, 1);
	assert_true(entry("10.96.0.1", 80, 0, &v));
	assert_int_equal(v.algorithm, LB_MAGLEV);
	assert_int_equal(v.maglev_size, 701);
	assert_int_equal(v.maglev_offset, 0);
	sum = maglev_sum(&v);
	assert_int_equal(bpf_map_lookup_elem(maps.fd[DP_MAP_SVC_NAMES], &v.svc_id, &name), 0);
	assert_string_equal(name.id, "shop/a:http/TCP/v4");

	a.backends[1] = "10.0.0.3";
	apply_maglev(&a, 1);
	assert_true(entry("10.96.0.1", 80, 0, &w));
	assert_int_equal(w.rev, v.rev + 1);
	assert_int_equal(w.maglev_offset, 176);  /* the old run was still read */
	assert_true(maglev_sum(&w) != sum);
	a.backends[1] = "10.0.0.2";
	apply_maglev(&a, 1);
	assert_true(entry("10.96.0.1", 80, 0, &v));
	assert_int_equal(v.maglev_offset, 0);    /* the first run is free again */
	assert_true(maglev_sum(&v) == sum);      /* the same set, the same table */

	/* Room for three tables (limits): the fourth set stays unprogrammed. */
	both[0] = a;
	both[1] = b;
	apply_maglev(both, 2);
	four[0] = a;
	four[1] = b;
	four[2] = c;
	four[3] = d;
	apply_maglev(four, 4);
	assert_true(entry("10.96.0.3", 80, 0, &v));
	assert_false(entry("10.96.0.4", 80, 0, &v));
	assert_true(sync_stats(eng)->map_full_errors > 0);

	restart();
	assert_int_equal(apply_maglev(four, 3), 0);
	assert_true(entry("10.96.0.2", 80, 0, &v));
	assert_true(entry("10.96.0.3", 80, 0, &w));
	assert_true(v.maglev_offset != w.maglev_offset);
	maglev_sum(&v);
	maglev_sum(&w);

	apply_maglev(&a, 1);
	st = spec_state(&a, 1);
	st.svcs[0].lb_algorithm = MODEL_LB_ROUND_ROBIN;
	assert_true(sync_apply(eng, &st) >= 0);
	state_free(&st);
	assert_true(entry("10.96.0.1", 80, 0, &v));
	assert_int_equal(v.algorithm, LB_ROUND_ROBIN);
	assert_int_equal(v.maglev_size, 0);
	apply(NULL, 0);
	assert_int_equal(map_count(DP_MAP_SVC_NAMES, sizeof(__u32)), 0);
}

/* A restarted engine groups the pinned frontends by svc_id, adopts the
 * source ranges and node addresses, removes what nothing reaches, and its
 * first apply of the same state writes nothing. */
static void test_adopt_writes_nothing(void **state)
{
	struct spec s[] = {
		web,
		{ .id = "shop/edge:http/TCP/v4",
		  .frontends = { "C 10.96.0.2 80", "N 0.0.0.0 30081", "L 198.51.100.2 80" },
		  .backends = { "10.0.0.1", "10.0.1.1" }, .ext_local = true,
		  .ranges = { "192.0.2.0/24" } },
		{ .id = "shop/edge:http/TCP/v4/external",
		  .frontends = { "N 0.0.0.0 30081", "L 198.51.100.2 80" },
		  .backends = { "10.0.0.1" }, .external = true, .ranges = { "192.0.2.0/24" } },
	};
	struct ferry_ip addrs[] = { ip("192.0.2.1"), ip("192.0.2.2"), ip("2001:db8::1") };
	struct dp_config cfg = { .node_port_min = 30000, .node_port_max = 32767 };
	struct source_range_key stray = { .prefixlen = 32 + 128, .svc_id = htonl(999) };
	__u8 one = 1;
	size_t before;

	(void)state;
	apply(s, 3);
	sync_set_node_addrs(eng, addrs, 3);
	sync_set_config(eng, &cfg);
	assert_int_equal(bpf_map_update_elem(maps.fd[DP_MAP_SOURCE_RANGES], &stray, &one, 0), 0);
	before = services();
	assert_int_equal(ranges(), 3);

	restart();
	assert_int_equal(ranges(), 2);
	assert_int_equal(sync_stats(eng)->services, 3);
	assert_int_equal(sync_set_node_addrs(eng, addrs, 3), 0);
	assert_int_equal(sync_set_config(eng, &cfg), 0);
	assert_int_equal(apply(s, 3), 0);
	assert_int_equal(services(), before);

	/* The adopted state is the engine's own: a change writes only it. */
	s[0].frontends[4] = "E 203.0.113.2 80";
	assert_int_equal(apply(s, 3), 1);
	apply(NULL, 0);
	assert_int_equal(services(), 0);
	assert_int_equal(ranges(), 0);
	assert_int_equal(map_count(DP_MAP_SLOTS, sizeof(struct slot_key)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_frontends_share_one_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_port_v6_wildcard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ext_local_scopes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frontend_change_writes_one_key, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_backend_change_moves_every_frontend, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_slots_only_for_large_sets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt_repairs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ids_resume_after_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_node_port_full_apply, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_node_port_delta, setup, teardown),
		cmocka_unit_test_setup_teardown(test_freed_frontend_taken_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_addrs_and_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maglev_tables, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
