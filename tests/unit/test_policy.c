/* The node-dependent rules of the model: internalTrafficPolicy Local (B13,
 * B15, B11 on the Local set), topology hints (B31), their decoding, and the
 * store recomputing every Service when the node's zone changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "decode_yaml.h"
#include "model/model.h"
#include "model/store.h"

static const struct model_node node_a = { .name = "node-a", .zone = "zone-1" };

/* A Service "web" (TCP 80) with the policy given, then one slice of the
 * endpoint lines given, each a YAML flow mapping without its braces. */
static char *web_yaml(const char *policy, const char *const *endpoints)
{
	static char buf[4096];
	int n = snprintf(buf, sizeof(buf),
			 "{kind: Service, metadata: {name: web, namespace: p}, spec: {clusterIP: "
			 "10.96.7.1, %s ports: [{name: http, port: 80}]}}\n"
			 "---\n{kind: EndpointSlice, metadata: {name: web-1, namespace: p, labels:"
			 " {kubernetes.io/service-name: web}}, addressType: IPv4,"
			 " ports: [{name: http, port: 8080}], endpoints: [",
			 policy);

	for (size_t i = 0; endpoints[i]; i++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s{%s}", i ? ", " : "",
			      endpoints[i]);
	snprintf(buf + n, sizeof(buf) - (size_t)n, "]}\n");
	return buf;
}

/* The backends of the one service port as "a.b.c.d ..." (ports are 8080). */
static void compute_web(const char *policy, const char *const *endpoints,
			const struct model_node *node, char *out, size_t out_len,
			struct desired_svc *flags)
{
	struct model_objects objs = { 0 };
	struct desired_state st;
	char why[256], one[64];
	size_t n = 0;

	decode_yaml(&objs, web_yaml(policy, endpoints), DECODE_OK, why, sizeof(why));
	assert_int_equal(model_compute(&objs, 1, node, 64, &st), 0);
	assert_int_equal(st.n_svcs, 1);
	out[0] = '\0';
	for (size_t i = 0; i < st.svcs[0].n_backends; i++)
		n += (size_t)snprintf(out + n, out_len - n, "%s%s", i ? " " : "",
				      addr_format(&st.svcs[0].backends[i].addr, one));
	flags->fallback = st.svcs[0].fallback;
	flags->local = st.svcs[0].local;
	flags->zone_hints = st.svcs[0].zone_hints;
	desired_free(&st);
	model_objects_free(&objs);
}

#define LOCAL "internalTrafficPolicy: Local,"

static void test_b13_local_means_same_node_name_exactly(void **state)
{
	const char *eps[] = {
		"addresses: [198.18.7.1], nodeName: node-a",
		"addresses: [198.18.7.2], nodeName: node-b",
		"addresses: [198.18.7.3], nodeName: Node-a",
		"addresses: [198.18.7.4], nodeName: node-a.example",
		"addresses: [198.18.7.5]",
		"addresses: [198.18.7.6], nodeName: node-a",
		NULL,
	};
	struct desired_svc f;
	char got[512];

	(void)state;
	compute_web(LOCAL, eps, &node_a, got, sizeof(got), &f);
	assert_string_equal(got, "198.18.7.1 198.18.7.6");
	assert_true(f.local && !f.fallback && !f.zone_hints);
	compute_web("internalTrafficPolicy: Cluster,", eps, &node_a, got, sizeof(got), &f);
	assert_string_equal(got, "198.18.7.1 198.18.7.2 198.18.7.3 198.18.7.4 198.18.7.5 "
			    "198.18.7.6");
	assert_false(f.local);
}

/* No local endpoint: nothing to send to, so connections are refused, even
 * with ready endpoints elsewhere; an unknown node has no local endpoint. */
static void test_b15_local_without_local_endpoint_refuses(void **state)
{
	const char *eps[] = {
		"addresses: [198.18.7.2], nodeName: node-b",
		"addresses: [198.18.7.3], nodeName: node-c",
		NULL,
	};
	const char *empty_name[] = { "addresses: [198.18.7.9], nodeName: ''", NULL };
	struct desired_svc f;
	char got[512];

	(void)state;
	compute_web(LOCAL, eps, &node_a, got, sizeof(got), &f);
	assert_string_equal(got, "");
	assert_true(f.local && !f.fallback);
	compute_web(LOCAL, eps, NULL, got, sizeof(got), &f);
	assert_string_equal(got, "");
	compute_web(LOCAL, empty_name, &(struct model_node){ .name = "", .zone = "" }, got,
		    sizeof(got), &f);
	assert_string_equal(got, "");
}

/* B11 on the Local set alone: a ready remote endpoint does not stop the
 * fallback to local serving+terminating ones, and a ready local one wins. */
static void test_b11_local_set_falls_back_on_its_own(void **state)
{
	const char *eps[] = {
		"addresses: [198.18.7.1], nodeName: node-a,"
		" conditions: {ready: false, serving: true, terminating: true}",
		"addresses: [198.18.7.2], nodeName: node-b",
		"addresses: [198.18.7.3], nodeName: node-a,"
		" conditions: {ready: false, serving: false, terminating: true}",
		NULL,
	};
	const char *with_ready[] = {
		eps[0], eps[1], "addresses: [198.18.7.4], nodeName: node-a", NULL,
	};
	struct desired_svc f;
	char got[512];

	(void)state;
	compute_web(LOCAL, eps, &node_a, got, sizeof(got), &f);
	assert_string_equal(got, "198.18.7.1");
	assert_true(f.local && f.fallback);
	compute_web("", eps, &node_a, got, sizeof(got), &f);
	assert_string_equal(got, "198.18.7.2");
	assert_false(f.fallback);
	compute_web(LOCAL, with_ready, &node_a, got, sizeof(got), &f);
	assert_string_equal(got, "198.18.7.4");
	assert_false(f.fallback);
}

#define HINT(z) "hints: {forZones: [{name: " z "}]}"

static void test_b31_hints_for_this_zone(void **state)
{
	const char *eps[] = {
		"addresses: [198.18.7.1], " HINT("zone-1"),
		"addresses: [198.18.7.2], " HINT("zone-2"),
		"addresses: [198.18.7.3], hints: {forZones: [{name: zone-2}, {name: zone-1}]}",
		/* Not ready: needs no hints and is never used. */
		"addresses: [198.18.7.4], conditions: {ready: false}",
		NULL,
	};
	struct desired_svc f;
	char got[512];

	(void)state;
	compute_web("", eps, &node_a, got, sizeof(got), &f);
	assert_string_equal(got, "198.18.7.1 198.18.7.3");
	assert_true(f.zone_hints && !f.local);
	compute_web("", eps, &(struct model_node){ .name = "n", .zone = "zone-2" }, got,
		    sizeof(got), &f);
	assert_string_equal(got, "198.18.7.2 198.18.7.3");
}

/* Hints are all or nothing: ignored when one ready endpoint has none (or an
 * empty list), when none names this zone, when the zone is unknown, and
 * under the Local policy. */
static void test_b31_hints_ignored(void **state)
{
	const char *one_unhinted[] = {
		"addresses: [198.18.7.1], " HINT("zone-1"),
		"addresses: [198.18.7.2]",
		NULL,
	};
	const char *empty_list[] = {
		"addresses: [198.18.7.1], " HINT("zone-1"),
		"addresses: [198.18.7.2], hints: {forZones: []}",
		NULL,
	};
	const char *other_zones[] = {
		"addresses: [198.18.7.1], " HINT("zone-2"),
		"addresses: [198.18.7.2], " HINT("zone-3"),
		NULL,
	};
	const char *local[] = {
		"addresses: [198.18.7.1], nodeName: node-a, " HINT("zone-2"),
		"addresses: [198.18.7.2], nodeName: node-b, " HINT("zone-1"),
		NULL,
	};
	struct desired_svc f;
	char got[512];

	(void)state;
	compute_web("", one_unhinted, &node_a, got, sizeof(got), &f);
	assert_string_equal(got, "198.18.7.1 198.18.7.2");
	assert_false(f.zone_hints);
	compute_web("", empty_list, &node_a, got, sizeof(got), &f);
	assert_string_equal(got, "198.18.7.1 198.18.7.2");
	compute_web("", other_zones, &node_a, got, sizeof(got), &f);
	assert_string_equal(got, "198.18.7.1 198.18.7.2");
	compute_web("", other_zones, &(struct model_node){ .name = "node-a", .zone = "" }, got,
		    sizeof(got), &f);
	assert_string_equal(got, "198.18.7.1 198.18.7.2");
	compute_web(LOCAL, local, &node_a, got, sizeof(got), &f);
	assert_string_equal(got, "198.18.7.1");
	assert_true(f.local && !f.zone_hints);
}

static void test_decode_policy_and_hints(void **state)
{
	struct model_objects objs = { 0 };
	const char *eps[] = { "addresses: [198.18.7.1], " HINT("a"),
		"addresses: [198.18.7.2], nodeName: node-b, "
		"hints: {forZones: [{name: zone-x}, {name: ''}, {name: zone-y}]}",
		"addresses: [198.18.7.3], nodeName: node-b", NULL };
	const struct model_endpoint *ep;
	char why[256];

	(void)state;
	decode_yaml(&objs, web_yaml(LOCAL, eps), DECODE_OK, why, sizeof(why));
	assert_true(objs.services[0].internal_local);
	assert_int_equal(objs.slices[0].endpoints[0].n_hint_zones, 1);
	ep = objs.slices[0].endpoints;
	assert_string_equal(model_endpoint_node(&ep[0]), "");
	assert_string_equal(model_endpoint_zone(&ep[0], 0), "a");
	/* The node name and the zones share one string: each reads back. */
	assert_int_equal(ep[1].n_hint_zones, 3);
	assert_string_equal(model_endpoint_node(&ep[1]), "node-b");
	assert_string_equal(model_endpoint_zone(&ep[1], 0), "zone-x");
	assert_string_equal(model_endpoint_zone(&ep[1], 1), "");
	assert_string_equal(model_endpoint_zone(&ep[1], 2), "zone-y");
	assert_int_equal(ep[2].n_hint_zones, 0);
	assert_string_equal(model_endpoint_node(&ep[2]), "node-b");
	model_objects_free(&objs);

	decode_yaml(&objs, "{kind: Service, metadata: {name: s}, spec: {clusterIP: 10.96.0.1,"
		   " internalTrafficPolicy: Nearby, ports: [{port: 80}]}}\n",
		   DECODE_INVALID, why, sizeof(why));
	assert_non_null(strstr(why, "spec.internalTrafficPolicy: unknown policy \"Nearby\""));
	decode_yaml(&objs, "{kind: EndpointSlice, metadata: {name: e}, addressType: IPv4,"
		   " endpoints: [{addresses: [10.0.0.1], hints: {forZones: zone-1}}]}\n",
		   DECODE_INVALID, why, sizeof(why));
	assert_non_null(strstr(why, "endpoints[0].hints.forZones: not a list"));
	/* The API server allows 8 zones; a ninth is refused, not truncated. */
	decode_yaml(&objs, "{kind: EndpointSlice, metadata: {name: e}, addressType: IPv4,"
		   " endpoints: [{addresses: [10.0.0.1], hints: {forZones: [{name: a}, {name: b},"
		   " {name: c}, {name: d}, {name: e}, {name: f}, {name: g}, {name: h},"
		   " {name: i}]}}]}\n", DECODE_INVALID, why, sizeof(why));
	assert_non_null(strstr(why, "endpoints[0].hints.forZones: more than 8 zones"));
	decode_yaml(&objs, "{kind: EndpointSlice, metadata: {name: e}, addressType: IPv4,"
		   " endpoints: [{addresses: [10.0.0.1], hints: {forZones: [{name: a}, {}]}}]}\n",
		   DECODE_INVALID, why, sizeof(why));
	assert_non_null(strstr(why, "endpoints[0].hints.forZones[1].name: missing"));
	assert_int_equal(objs.n_services + objs.n_slices, 0);
	model_objects_free(&objs);
}

/* The store: a zone change recomputes every Service (hints depend on it);
 * setting the same node again touches nothing. */
static void test_store_zone_change_touches_every_service(void **state)
{
	const char *eps[] = {
		"addresses: [198.18.7.1], " HINT("zone-1"),
		"addresses: [198.18.7.2], " HINT("zone-2"),
		NULL,
	};
	struct model_store *st = store_new(64);
	struct model_objects objs = { 0 };
	struct desired_delta delta;
	char why[256];

	(void)state;
	assert_non_null(st);
	decode_yaml(&objs, web_yaml("", eps), DECODE_OK, why, sizeof(why));
	assert_int_equal(store_put_service(st, &objs.services[0]), 0);
	assert_int_equal(store_put_slice(st, &objs.slices[0]), 0);
	model_objects_free(&objs);
	assert_int_equal(store_set_node(st, "node-a", "zone-1"), 0);
	assert_int_equal(store_flush(st, &delta), 0);
	assert_int_equal(delta.set.n_svcs, 1);
	assert_int_equal(delta.set.svcs[0].n_backends, 1);
	assert_true(delta.set.svcs[0].zone_hints);
	delta_free(&delta);

	assert_int_equal(store_set_node(st, "node-a", "zone-1"), 0);
	assert_false(store_dirty(st));
	assert_int_equal(store_set_node(st, "node-a", "zone-3"), 0);
	assert_true(store_dirty(st));
	assert_int_equal(store_flush(st, &delta), 0);
	assert_int_equal(delta.set.n_svcs, 1);
	assert_int_equal(delta.set.svcs[0].n_backends, 2);
	assert_false(delta.set.svcs[0].zone_hints);
	delta_free(&delta);
	store_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b13_local_means_same_node_name_exactly),
		cmocka_unit_test(test_b15_local_without_local_endpoint_refuses),
		cmocka_unit_test(test_b11_local_set_falls_back_on_its_own),
		cmocka_unit_test(test_b31_hints_for_this_zone),
		cmocka_unit_test(test_b31_hints_ignored),
		cmocka_unit_test(test_decode_policy_and_hints),
		cmocka_unit_test(test_store_zone_change_touches_every_service),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
