/* Unit tests of the object store of the API source (model/store.h): puts,
 * deletes, relists and the incremental flush, against the B rules of
 * ../shared/spec/kube-proxy-behaviour.md. Objects are written as JSON (with
 * ' for ") and decoded with model_decode, as the watch does. */
#define _GNU_SOURCE /* asprintf */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <sys/wait.h>

#include "capture.h"
#include "model/model.h"
#include "model/store.h"

/* strdup and asprintf, defined here, take the place of libc's for the
 * library linked into this binary: strdup_fail_in > 0 makes the
 * strdup_fail_in-th call of either from now fail, as when memory runs out. */
static int strdup_fail_in;

char *strdup(const char *s)
{
	size_t len = strlen(s) + 1;
	char *p;

	if (strdup_fail_in > 0 && --strdup_fail_in == 0)
		return NULL;
	p = malloc(len);
	return p ? memcpy(p, s, len) : NULL;
}

int asprintf(char **out, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (strdup_fail_in > 0 && --strdup_fail_in == 0)
		return -1;
	va_start(ap, fmt);
	rc = vasprintf(out, fmt, ap);
	va_end(ap);
	return rc;
}

/* Decodes one object written as JSON with ' for ", appending it to objs. */
static void decode_json(struct model_objects *objs, const char *text)
{
	char *json = strdup(text), why[256] = "";
	cJSON *doc;

	assert_non_null(json);
	for (char *p = json; *p; p++)
		if (*p == '\'')
			*p = '"';
	doc = cJSON_Parse(json);
	if (!doc)
		fail_msg("not JSON: %s", json);
	if (model_decode(doc, objs, why, sizeof(why)) != DECODE_OK)
		fail_msg("not decoded: %s: %s", json, why);
	cJSON_Delete(doc);
	free(json);
}

/* Moves every object of objs into the store and frees objs. */
static void put_objects(struct model_store *st, struct model_objects *objs)
{
	for (size_t i = 0; i < objs->n_services; i++) {
		assert_int_equal(store_put_service(st, &objs->services[i]), 0);
		assert_null(objs->services[i].name); /* moved into the store */
	}
	for (size_t i = 0; i < objs->n_slices; i++) {
		assert_int_equal(store_put_slice(st, &objs->slices[i]), 0);
		assert_null(objs->slices[i].name);
	}
	model_objects_free(objs);
}

static void put_json(struct model_store *st, const char *text)
{
	struct model_objects objs = { 0 };

	decode_json(&objs, text);
	put_objects(st, &objs);
}

static void put_jsonf(struct model_store *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void put_jsonf(struct model_store *st, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	assert_true(vasprintf(&text, fmt, ap) > 0);
	va_end(ap);
	put_json(st, text);
	free(text);
}

/* A Service: spec is the JSON of its spec. */
#define SVC(ns, name, spec) \
	"{'kind':'Service','metadata':{'namespace':'" ns "','name':'" name "'},'spec':" spec "}"
/* An EndpointSlice of service svc, family "IPv4"/"IPv6"/"FQDN". */
#define SLICE(ns, name, svc, family, ports, endpoints) \
	"{'kind':'EndpointSlice','metadata':{'namespace':'" ns "','name':'" name "'," \
	"'labels':{'kubernetes.io/service-name':'" svc "'}},'addressType':'" family "'," \
	"'ports':" ports ",'endpoints':" endpoints "}"
#define EP(addr) "{'addresses':['" addr "']}"
#define HTTP_PORT "[{'name':'http','port':8080}]"

/* shop/web: one port http/TCP 80 on 10.96.0.1. */
#define WEB_SVC SVC("shop", "web", "{'clusterIP':'10.96.0.1','ports':[{'name':'http','port':80}]}")

static const struct desired_svc *find_svc(const struct desired_state *s, const char *id)
{
	for (size_t i = 0; i < s->n_svcs; i++)
		if (strcmp(s->svcs[i].id, id) == 0)
			return &s->svcs[i];
	fail_msg("no service port %s", id);
	return NULL;
}

/* backends: "addr:port" separated by spaces, in order; "" for none. */
static void assert_backends(const struct desired_svc *s, const char *backends)
{
	char buf[4096] = "", one[64];

	for (size_t i = 0; i < s->n_backends; i++) {
		addr_format_port(&s->backends[i].addr, s->backends[i].port, one, sizeof(one));
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? " " : "", one);
	}
	assert_string_equal(buf, backends);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The IDs, sorted, separated by spaces, into buf. */
static const char *join_ids(char **ids, size_t n, char *buf, size_t len)
{
	char **sorted = calloc(n + 1, sizeof(*sorted));

	buf[0] = '\0';
	if (!sorted)
		return "(out of memory)";
	memcpy(sorted, ids, n * sizeof(*ids));
	qsort(sorted, n, sizeof(*sorted), str_cmp);
	for (size_t i = 0; i < n; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? " " : "", sorted[i]);
	free(sorted);
	return buf;
}

static void assert_id_list(char **ids, size_t n, const char *expect)
{
	char buf[8192];

	assert_string_equal(join_ids(ids, n, buf, sizeof(buf)), expect);
}

static const char *join_set_ids(const struct desired_state *s, char *buf, size_t len)
{
	char **ids = calloc(s->n_svcs + 1, sizeof(*ids));

	buf[0] = '\0';
	if (!ids)
		return "(out of memory)";
	for (size_t i = 0; i < s->n_svcs; i++)
		ids[i] = s->svcs[i].id;
	join_ids(ids, s->n_svcs, buf, len);
	free(ids);
	return buf;
}

static void assert_set_ids(const struct desired_state *s, const char *expect)
{
	char buf[8192];

	assert_string_equal(join_set_ids(s, buf, sizeof(buf)), expect);
}

/* Flushes and checks which IDs are set and removed. The caller frees d. */
static void flush_expect(struct model_store *st, struct desired_delta *d, const char *set,
			 const char *removed)
{
	assert_int_equal(store_flush(st, d), 0);
	assert_false(store_dirty(st));
	assert_set_ids(&d->set, set);
	assert_id_list(d->removed, d->n_removed, removed);
}

static void assert_empty_flush(struct model_store *st)
{
	struct desired_delta d;

	flush_expect(st, &d, "", "");
	delta_free(&d);
}

static void assert_same_state(const struct desired_state *a, const struct desired_state *b)
{
	assert_int_equal(a->n_svcs, b->n_svcs);
	assert_int_equal(a->truncated, b->truncated);
	for (size_t i = 0; i < a->n_svcs; i++) {
		const struct desired_svc *x = &a->svcs[i], *y = &b->svcs[i];

		assert_string_equal(x->id, y->id);
		assert_int_equal(x->n_frontends, y->n_frontends);
		for (size_t j = 0; j < x->n_frontends; j++) {
			assert_true(addr_equal(&x->frontends[j].addr, &y->frontends[j].addr));
			assert_int_equal(x->frontends[j].port, y->frontends[j].port);
			assert_int_equal(x->frontends[j].kind, y->frontends[j].kind);
		}
		assert_int_equal(x->proto, y->proto);
		assert_int_equal(x->fallback, y->fallback);
		assert_int_equal(x->n_backends, y->n_backends);
		for (size_t j = 0; j < x->n_backends; j++) {
			assert_true(addr_equal(&x->backends[j].addr, &y->backends[j].addr));
			assert_int_equal(x->backends[j].port, y->backends[j].port);
		}
	}
}

/* Objects for the equivalence tests: every rule model_compute applies. */
static const char *const mixed_objects[] = {
	WEB_SVC,
	SLICE("shop", "web-1", "web", "IPv4", HTTP_PORT,
	      "[" EP("10.0.0.3") "," EP("10.0.0.1") ",{'addresses':['10.0.0.9'],"
	      "'conditions':{'ready':false}}]"),
	/* B9: the same endpoint in two slices is one backend. */
	SLICE("shop", "web-2", "web", "IPv4", HTTP_PORT, "[" EP("10.0.0.1") "," EP("10.0.0.2") "]"),
	/* B6: FQDN and other-family slices are not used. */
	SLICE("shop", "web-fqdn", "web", "FQDN", HTTP_PORT, "[{'addresses':['a.example.com']}]"),
	SLICE("shop", "web-6", "web", "IPv6", HTTP_PORT, "[" EP("fd00::1") "]"),
	/* B2: a slice with the proxy label is not used. */
	"{'kind':'EndpointSlice','metadata':{'namespace':'shop','name':'web-x','labels':"
	"{'kubernetes.io/service-name':'web','service.kubernetes.io/service-proxy-name':'x'}},"
	"'addressType':'IPv4','ports':" HTTP_PORT ",'endpoints':[" EP("10.0.0.77") "]}",
	/* B3, B4: dual stack, TCP and UDP of the same number. */
	SVC("kube-system", "dns", "{'clusterIPs':['10.96.0.10','fd00::10'],'ports':["
	    "{'name':'dns','port':53,'protocol':'UDP'},{'name':'dns-tcp','port':53}]}"),
	SLICE("kube-system", "dns-4", "dns", "IPv4",
	      "[{'name':'dns','port':5353,'protocol':'UDP'},{'name':'dns-tcp','port':5354}]",
	      "[" EP("10.0.1.1") "," EP("10.0.1.2") "]"),
	SLICE("kube-system", "dns-6", "dns", "IPv6",
	      "[{'name':'dns','port':5353,'protocol':'UDP'}]", "[" EP("fd00::1:1") "]"),
	/* B11: only terminating endpoints. */
	SVC("shop", "cart", "{'clusterIP':'10.96.0.2','ports':[{'port':80}]}"),
	SLICE("shop", "cart-1", "cart", "IPv4", "[{'port':8080}]",
	      "[{'addresses':['10.0.2.1'],'conditions':{'ready':false,'serving':true,"
	      "'terminating':true}},{'addresses':['10.0.2.2'],'conditions':{'ready':false}}]"),
	/* More backends than max_per_service (4): truncated. */
	SVC("shop", "big", "{'clusterIP':'10.96.0.3','ports':[{'port':80}]}"),
	SLICE("shop", "big-1", "big", "IPv4", "[{'port':8080}]",
	      "[" EP("10.0.3.6") "," EP("10.0.3.5") "," EP("10.0.3.4") "," EP("10.0.3.3") ","
	      EP("10.0.3.2") "]"),
	/* B14: no slice at all. */
	SVC("shop", "empty", "{'clusterIP':'10.96.0.4','ports':[{'port':80}]}"),
	/* B1, B2: not programmed. */
	SVC("shop", "headless", "{'clusterIP':'None','ports':[{'port':80}]}"),
	SVC("shop", "ext", "{'type':'ExternalName','externalName':'x.example.com',"
	    "'ports':[{'port':80}]}"),
	"{'kind':'Service','metadata':{'namespace':'shop','name':'other-proxy','labels':"
	"{'service.kubernetes.io/service-proxy-name':'x'}},'spec':{'clusterIP':'10.96.0.5',"
	"'ports':[{'port':80}]}}",
	/* A slice without a Service, a slice of a same-named Service of another
	 * namespace, a slice without the service-name label. */
	SLICE("shop", "orphan-1", "orphan", "IPv4", "[{'port':1}]", "[" EP("10.0.4.1") "]"),
	SLICE("other", "web-1", "web", "IPv4", HTTP_PORT, "[" EP("10.0.5.1") "]"),
	"{'kind':'EndpointSlice','metadata':{'namespace':'shop','name':'nolabel'},"
	"'addressType':'IPv4','ports':[{'port':80}],'endpoints':[" EP("10.0.6.1") "]}",
};

#define N_MIXED (sizeof(mixed_objects) / sizeof(mixed_objects[0]))

/* n generated Services ns-<i%7>/svc-<i>, each with one slice of 3 endpoints. */
static void gen_objects(struct model_objects *objs, size_t n)
{
	char *text;

	for (size_t i = 0; i < n; i++) {
		assert_true(asprintf(&text, SVC("ns-%zu", "svc-%zu", "{'clusterIP':'10.97.%zu.%zu',"
				     "'ports':[{'name':'p','port':%zu}]}"), i % 7, i, i / 250,
				     i % 250 + 1, 1000 + i) > 0);
		decode_json(objs, text);
		free(text);
		assert_true(asprintf(&text, SLICE("ns-%zu", "svc-%zu-abc", "svc-%zu", "IPv4",
				     "[{'name':'p','port':9000}]", "[" EP("10.1.%zu.1") ","
				     EP("10.1.%zu.2") "," EP("10.1.%zu.3") "]"), i % 7, i, i,
				     i % 250, i % 250, i % 250) > 0);
		decode_json(objs, text);
		free(text);
	}
}

/* The store and model_compute agree on the same objects: the first
 * store_compute_all is the full desired state, sorted. */
static void test_compute_all_same_as_model_compute(void **state)
{
	struct model_objects objs = { 0 }, copy = { 0 };
	struct model_store *st = store_new(4);
	struct desired_state want, got;
	struct capture c;
	char log[8192];

	(void)state;
	assert_non_null(st);
	for (size_t i = 0; i < N_MIXED; i++) {
		decode_json(&objs, mixed_objects[i]);
		decode_json(&copy, mixed_objects[i]);
	}
	gen_objects(&objs, 300);
	gen_objects(&copy, 300);
	assert_int_equal(model_compute(&objs, 1, NULL, 4, &want), 0);
	put_objects(st, &copy);
	capture_begin(&c);
	assert_int_equal(store_compute_all(st, &got), 0);
	capture_end(&c, log, sizeof(log));
	/* The truncation warning is logged by the store as by model_compute. */
	assert_non_null(strstr(log, "level=warn component=model msg=\"shop/big:/TCP/v4 has 5 "
				    "backends, programmed the first 4 (--max-backends-per-service)\""));
	assert_false(store_dirty(st));
	assert_int_equal(got.n_svcs, 8 + 300);
	assert_same_state(&got, &want);
	for (size_t i = 1; i < got.n_svcs; i++)
		assert_true(strcmp(got.svcs[i - 1].id, got.svcs[i].id) < 0);
	/* A few spot checks that the rules were applied at all. */
	assert_backends(find_svc(&got, "shop/web:http/TCP/v4"),
			"10.0.0.1:8080 10.0.0.2:8080 10.0.0.3:8080");
	assert_backends(find_svc(&got, "kube-system/dns:dns/UDP/v6"), "[fd00::1:1]:5353");
	assert_backends(find_svc(&got, "kube-system/dns:dns-tcp/TCP/v6"), "");
	assert_true(find_svc(&got, "shop/cart:/TCP/v4")->fallback);
	assert_int_equal(got.truncated, 1);
	desired_free(&got);
	desired_free(&want);
	/* Nothing changed since: an empty delta. */
	assert_empty_flush(st);
	/* A second compute_all is the full state again, not a delta. */
	assert_int_equal(store_compute_all(st, &got), 0);
	assert_int_equal(got.n_svcs, 8 + 300);
	desired_free(&got);
	store_free(st);
	model_objects_free(&objs);
}

/* After changes (deletes, replaced objects, relabelled slices), the store
 * still agrees with model_compute over the objects it now holds. */
static void test_compute_all_after_changes(void **state)
{
	struct model_objects objs = { 0 };
	struct model_store *st = store_new(4);
	struct desired_state want, got;
	struct desired_delta d;

	(void)state;
	for (size_t i = 0; i < N_MIXED; i++) {
		struct model_objects one = { 0 };

		decode_json(&one, mixed_objects[i]);
		put_objects(st, &one);
	}
	assert_int_equal(store_compute_all(st, &got), 0);
	desired_free(&got);
	assert_true(store_delete(st, STORE_SLICE, "shop", "web-2"));
	assert_true(store_delete(st, STORE_SERVICE, "shop", "cart"));
	put_json(st, SVC("shop", "headless", "{'clusterIP':'10.96.0.6','ports':[{'port':81}]}"));
	put_json(st, SLICE("shop", "orphan-1", "empty", "IPv4", "[{'port':1}]", "[" EP("10.0.4.1") "]"));
	assert_int_equal(store_flush(st, &d), 0);
	delta_free(&d);
	/* The objects the store holds now. */
	for (size_t i = 0; i < N_MIXED; i++)
		if (!strstr(mixed_objects[i], "'web-2'") && !strstr(mixed_objects[i], "'cart'") &&
		    !strstr(mixed_objects[i], "'headless'") && !strstr(mixed_objects[i], "'orphan-1'"))
			decode_json(&objs, mixed_objects[i]);
	decode_json(&objs, SVC("shop", "headless", "{'clusterIP':'10.96.0.6','ports':[{'port':81}]}"));
	decode_json(&objs, SLICE("shop", "orphan-1", "empty", "IPv4", "[{'port':1}]",
				 "[" EP("10.0.4.1") "]"));
	assert_int_equal(model_compute(&objs, 1, NULL, 4, &want), 0);
	assert_int_equal(store_compute_all(st, &got), 0);
	assert_same_state(&got, &want);
	/* orphan-1 now names empty: unnamed port "" matches unnamed "" (B7). */
	assert_backends(find_svc(&got, "shop/empty:/TCP/v4"), "10.0.4.1:1");
	desired_free(&got);
	desired_free(&want);
	store_free(st);
	model_objects_free(&objs);
}

/* n Services ns/svc-<i>, each with ports http/TCP and dns/UDP and one slice. */
static void put_many(struct model_store *st, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		put_jsonf(st, SVC("ns", "svc-%zu", "{'clusterIP':'10.96.%zu.%zu','ports':["
			  "{'name':'http','port':80},{'name':'dns','port':53,'protocol':'UDP'}]}"),
			  i, i / 200, i % 200 + 1);
		put_jsonf(st, SLICE("ns", "svc-%zu-x1", "svc-%zu", "IPv4",
			  "[{'name':'http','port':8080},{'name':'dns','port':5353,'protocol':'UDP'}]",
			  "[" EP("10.2.%zu.%zu") "]"), i, i, i / 200, i % 200 + 1);
	}
}

/* B35: one changed EndpointSlice of one Service out of 1,000 gives a delta
 * with that Service's service ports only, and no removals. */
static void test_b35_one_changed_slice_touches_one_service(void **state)
{
	struct model_store *st = store_new(64);
	struct desired_state all;
	struct desired_delta d;

	(void)state;
	put_many(st, 1000);
	assert_int_equal(store_count(st, STORE_SERVICE), 1000);
	assert_int_equal(store_count(st, STORE_SLICE), 1000);
	assert_true(store_dirty(st));
	assert_int_equal(store_compute_all(st, &all), 0);
	assert_int_equal(all.n_svcs, 2000);
	desired_free(&all);
	assert_empty_flush(st);

	put_json(st, SLICE("ns", "svc-500-x1", "svc-500", "IPv4",
			   "[{'name':'http','port':8080},{'name':'dns','port':5353,'protocol':'UDP'}]",
			   "[" EP("10.2.2.101") "," EP("10.3.0.1") "]"));
	assert_true(store_dirty(st));
	flush_expect(st, &d, "ns/svc-500:dns/UDP/v4 ns/svc-500:http/TCP/v4", "");
	assert_backends(find_svc(&d.set, "ns/svc-500:http/TCP/v4"),
			"10.2.2.101:8080 10.3.0.1:8080");
	assert_backends(find_svc(&d.set, "ns/svc-500:dns/UDP/v4"),
			"10.2.2.101:5353 10.3.0.1:5353");
	delta_free(&d);
	assert_empty_flush(st);

	/* A second slice for another Service: again that one only. */
	put_json(st, SLICE("ns", "svc-7-x2", "svc-7", "IPv4", "[{'name':'http','port':8081}]",
			   "[" EP("10.4.0.1") "]"));
	flush_expect(st, &d, "ns/svc-7:dns/UDP/v4 ns/svc-7:http/TCP/v4", "");
	assert_backends(find_svc(&d.set, "ns/svc-7:http/TCP/v4"), "10.2.0.8:8080 10.4.0.1:8081");
	delta_free(&d);
	store_free(st);
}

/* A slice that arrives before its Service is held, and used once the
 * Service comes. */
static void test_slice_before_service(void **state)
{
	struct model_store *st = store_new(64);
	struct desired_delta d;

	(void)state;
	put_json(st, SLICE("shop", "web-1", "web", "IPv4", HTTP_PORT, "[" EP("10.0.0.1") "]"));
	assert_true(store_dirty(st));
	flush_expect(st, &d, "", "");
	delta_free(&d);
	assert_int_equal(store_count(st, STORE_SLICE), 1);
	assert_int_equal(store_count(st, STORE_SERVICE), 0);
	put_json(st, WEB_SVC);
	flush_expect(st, &d, "shop/web:http/TCP/v4", "");
	assert_backends(&d.set.svcs[0], "10.0.0.1:8080");
	delta_free(&d);
	store_free(st);
}

/* B6: a slice belongs to the Service its kubernetes.io/service-name label
 * names. Relabelled from a to b: both are in the delta, a loses the
 * backends, b gets them, nothing is removed. */
static void test_b6_slice_label_changes_service(void **state)
{
	struct model_store *st = store_new(64);
	struct desired_delta d;

	(void)state;
	put_json(st, SVC("shop", "a", "{'clusterIP':'10.96.0.1','ports':[{'name':'http','port':80}]}"));
	put_json(st, SVC("shop", "b", "{'clusterIP':'10.96.0.2','ports':[{'name':'http','port':80}]}"));
	put_json(st, SVC("shop", "c", "{'clusterIP':'10.96.0.3','ports':[{'name':'http','port':80}]}"));
	put_json(st, SLICE("shop", "s1", "a", "IPv4", HTTP_PORT, "[" EP("10.0.0.1") "]"));
	put_json(st, SLICE("shop", "s2", "a", "IPv4", HTTP_PORT, "[" EP("10.0.0.2") "]"));
	flush_expect(st, &d, "shop/a:http/TCP/v4 shop/b:http/TCP/v4 shop/c:http/TCP/v4", "");
	assert_backends(find_svc(&d.set, "shop/a:http/TCP/v4"), "10.0.0.1:8080 10.0.0.2:8080");
	delta_free(&d);

	put_json(st, SLICE("shop", "s1", "b", "IPv4", HTTP_PORT, "[" EP("10.0.0.1") "]"));
	assert_int_equal(store_count(st, STORE_SLICE), 2);
	flush_expect(st, &d, "shop/a:http/TCP/v4 shop/b:http/TCP/v4", "");
	assert_backends(find_svc(&d.set, "shop/a:http/TCP/v4"), "10.0.0.2:8080");
	assert_backends(find_svc(&d.set, "shop/b:http/TCP/v4"), "10.0.0.1:8080");
	delta_free(&d);

	/* The last slice of a moves too: a keeps its service port, with no
	 * backend (B14). */
	put_json(st, SLICE("shop", "s2", "b", "IPv4", HTTP_PORT, "[" EP("10.0.0.2") "]"));
	flush_expect(st, &d, "shop/a:http/TCP/v4 shop/b:http/TCP/v4", "");
	assert_backends(find_svc(&d.set, "shop/a:http/TCP/v4"), "");
	assert_backends(find_svc(&d.set, "shop/b:http/TCP/v4"), "10.0.0.1:8080 10.0.0.2:8080");
	delta_free(&d);

	/* To a Service that does not exist: b loses it, nothing else. */
	put_json(st, SLICE("shop", "s2", "nobody", "IPv4", HTTP_PORT, "[" EP("10.0.0.2") "]"));
	flush_expect(st, &d, "shop/b:http/TCP/v4", "");
	assert_backends(&d.set.svcs[0], "10.0.0.1:8080");
	delta_free(&d);
	store_free(st);
}

/* A deleted slice takes its backends away; the service port stays. */
static void test_slice_deleted(void **state)
{
	struct model_store *st = store_new(64);
	struct desired_delta d;

	(void)state;
	put_json(st, WEB_SVC);
	put_json(st, SLICE("shop", "web-1", "web", "IPv4", HTTP_PORT, "[" EP("10.0.0.1") "]"));
	put_json(st, SLICE("shop", "web-2", "web", "IPv4", HTTP_PORT, "[" EP("10.0.0.2") "]"));
	flush_expect(st, &d, "shop/web:http/TCP/v4", "");
	assert_backends(&d.set.svcs[0], "10.0.0.1:8080 10.0.0.2:8080");
	delta_free(&d);

	assert_true(store_delete(st, STORE_SLICE, "shop", "web-1"));
	assert_int_equal(store_count(st, STORE_SLICE), 1);
	flush_expect(st, &d, "shop/web:http/TCP/v4", "");
	assert_backends(&d.set.svcs[0], "10.0.0.2:8080");
	delta_free(&d);

	assert_true(store_delete(st, STORE_SLICE, "shop", "web-2"));
	assert_false(store_delete(st, STORE_SLICE, "shop", "web-2"));
	flush_expect(st, &d, "shop/web:http/TCP/v4", "");
	assert_backends(&d.set.svcs[0], ""); /* B14 */
	delta_free(&d);
	store_free(st);
}

/* B5: a deleted Service's IDs are removed and nothing is set; recreated
 * with a new ClusterIP, it comes back with the slices still held. */
static void test_b5_service_deleted_and_recreated(void **state)
{
	struct model_store *st = store_new(64);
	struct desired_delta d;
	char vip[ADDR_STR_LEN];

	(void)state;
	put_json(st, SVC("shop", "web", "{'clusterIPs':['10.96.0.1','fd00::1'],'ports':["
			 "{'name':'http','port':80},{'name':'q','port':81,'protocol':'UDP'}]}"));
	put_json(st, SLICE("shop", "web-1", "web", "IPv4", HTTP_PORT, "[" EP("10.0.0.1") "]"));
	put_json(st, SVC("shop", "other", "{'clusterIP':'10.96.0.2','ports':[{'port':80}]}"));
	flush_expect(st, &d, "shop/other:/TCP/v4 shop/web:http/TCP/v4 shop/web:http/TCP/v6 "
		     "shop/web:q/UDP/v4 shop/web:q/UDP/v6", "");
	delta_free(&d);

	assert_true(store_delete(st, STORE_SERVICE, "shop", "web"));
	assert_true(store_dirty(st));
	assert_int_equal(store_count(st, STORE_SERVICE), 1);
	assert_int_equal(store_count(st, STORE_SLICE), 1);
	flush_expect(st, &d, "", "shop/web:http/TCP/v4 shop/web:http/TCP/v6 shop/web:q/UDP/v4 "
		     "shop/web:q/UDP/v6");
	delta_free(&d);
	assert_empty_flush(st);

	put_json(st, SVC("shop", "web", "{'clusterIP':'10.96.0.99','ports':[{'name':'http','port':80}]}"));
	flush_expect(st, &d, "shop/web:http/TCP/v4", "");
	assert_string_equal(addr_format(&d.set.svcs[0].frontends[0].addr, vip), "10.96.0.99");
	assert_backends(&d.set.svcs[0], "10.0.0.1:8080");
	delta_free(&d);

	/* Deleted before any flush saw it: nothing to remove, nothing set. */
	put_json(st, SVC("shop", "brief", "{'clusterIP':'10.96.0.3','ports':[{'port':80}]}"));
	assert_true(store_delete(st, STORE_SERVICE, "shop", "brief"));
	flush_expect(st, &d, "", "");
	delta_free(&d);
	store_free(st);
}

/* B4: a removed port's ID is removed, the other port is set; an added one
 * is set. */
static void test_b4_service_port_removed_and_added(void **state)
{
	struct model_store *st = store_new(64);
	struct desired_delta d;

	(void)state;
	put_json(st, SVC("shop", "web", "{'clusterIP':'10.96.0.1','ports':[{'name':'http','port':80},"
			 "{'name':'https','port':443}]}"));
	put_json(st, SLICE("shop", "web-1", "web", "IPv4",
			   "[{'name':'http','port':8080},{'name':'https','port':8443}]",
			   "[" EP("10.0.0.1") "]"));
	flush_expect(st, &d, "shop/web:http/TCP/v4 shop/web:https/TCP/v4", "");
	delta_free(&d);

	put_json(st, SVC("shop", "web", "{'clusterIP':'10.96.0.1','ports':[{'name':'https','port':443}]}"));
	flush_expect(st, &d, "shop/web:https/TCP/v4", "shop/web:http/TCP/v4");
	assert_backends(&d.set.svcs[0], "10.0.0.1:8443");
	delta_free(&d);

	/* Same name, other protocol: a different service port. */
	put_json(st, SVC("shop", "web", "{'clusterIP':'10.96.0.1','ports':[{'name':'https','port':443,"
			 "'protocol':'UDP'},{'name':'http','port':80}]}"));
	flush_expect(st, &d, "shop/web:http/TCP/v4 shop/web:https/UDP/v4", "shop/web:https/TCP/v4");
	assert_backends(find_svc(&d.set, "shop/web:http/TCP/v4"), "10.0.0.1:8080");
	assert_backends(find_svc(&d.set, "shop/web:https/UDP/v4"), "");
	delta_free(&d);
	store_free(st);
}

/* B1, B2, B5: a Service that becomes headless, ExternalName or labelled for
 * another proxy loses its IDs; back to normal, it returns. */
static void test_b1_b2_b5_service_stops_being_proxied(void **state)
{
	static const char *const gone[] = {
		SVC("shop", "web", "{'clusterIP':'None','ports':[{'name':'http','port':80}]}"),
		SVC("shop", "web", "{'type':'ExternalName','externalName':'x.example.com',"
		    "'clusterIP':'10.96.0.1','ports':[{'name':'http','port':80}]}"),
		"{'kind':'Service','metadata':{'namespace':'shop','name':'web','labels':"
		"{'service.kubernetes.io/service-proxy-name':'other'}},'spec':{'clusterIP':"
		"'10.96.0.1','ports':[{'name':'http','port':80}]}}",
		"{'kind':'Service','metadata':{'namespace':'shop','name':'web','labels':"
		"{'service.kubernetes.io/headless':''}},'spec':{'clusterIP':'10.96.0.1',"
		"'ports':[{'name':'http','port':80}]}}",
	};
	struct model_store *st = store_new(64);
	struct desired_delta d;

	(void)state;
	put_json(st, SLICE("shop", "web-1", "web", "IPv4", HTTP_PORT, "[" EP("10.0.0.1") "]"));
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
		put_json(st, WEB_SVC);
		flush_expect(st, &d, "shop/web:http/TCP/v4", "");
		assert_backends(&d.set.svcs[0], "10.0.0.1:8080");
		delta_free(&d);
		put_json(st, gone[i]);
		flush_expect(st, &d, "", "shop/web:http/TCP/v4");
		delta_free(&d);
		/* Still not proxied: nothing more to remove. */
		put_json(st, gone[i]);
		flush_expect(st, &d, "", "");
		delta_free(&d);
	}
	store_free(st);
}

/* B3: a dual-stack Service has one service port per family, each with the
 * slices of its family (B6); going single-stack removes the other family. */
static void test_b3_dual_stack(void **state)
{
	struct model_store *st = store_new(64);
	struct desired_delta d;
	char vip[ADDR_STR_LEN];

	(void)state;
	put_json(st, SVC("shop", "api", "{'clusterIP':'fd00::9','clusterIPs':['fd00::9','10.96.0.9'],"
			 "'ports':[{'name':'https','port':443}]}"));
	put_json(st, SLICE("shop", "api-6", "api", "IPv6", "[{'name':'https','port':8443}]",
			   "[" EP("fd00::21") "]"));
	put_json(st, SLICE("shop", "api-4", "api", "IPv4", "[{'name':'https','port':8443}]",
			   "[" EP("10.0.0.21") "]"));
	flush_expect(st, &d, "shop/api:https/TCP/v4 shop/api:https/TCP/v6", "");
	assert_string_equal(addr_format(&find_svc(&d.set, "shop/api:https/TCP/v4")->frontends[0].addr, vip),
			    "10.96.0.9");
	assert_backends(find_svc(&d.set, "shop/api:https/TCP/v4"), "10.0.0.21:8443");
	assert_string_equal(addr_format(&find_svc(&d.set, "shop/api:https/TCP/v6")->frontends[0].addr, vip),
			    "fd00::9");
	assert_backends(find_svc(&d.set, "shop/api:https/TCP/v6"), "[fd00::21]:8443");
	delta_free(&d);

	/* A change to the IPv6 slice: both families of that Service are
	 * recomputed (the Service is the unit), nothing removed. */
	put_json(st, SLICE("shop", "api-6", "api", "IPv6", "[{'name':'https','port':8443}]",
			   "[" EP("fd00::22") "]"));
	flush_expect(st, &d, "shop/api:https/TCP/v4 shop/api:https/TCP/v6", "");
	assert_backends(find_svc(&d.set, "shop/api:https/TCP/v6"), "[fd00::22]:8443");
	assert_backends(find_svc(&d.set, "shop/api:https/TCP/v4"), "10.0.0.21:8443");
	delta_free(&d);

	put_json(st, SVC("shop", "api", "{'clusterIP':'10.96.0.9','ports':[{'name':'https','port':443}]}"));
	flush_expect(st, &d, "shop/api:https/TCP/v4", "shop/api:https/TCP/v6");
	delta_free(&d);
	store_free(st);
}

/* A relist replaces every object of one kind: what the list no longer holds
 * is deleted (and counted), kept objects stay, the other kind is left alone. */
static void test_relist(void **state)
{
	static const char *const names[] = { "a", "b", "c", "d" };
	struct model_store *st = store_new(64);
	struct desired_delta d;

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		put_jsonf(st, SVC("shop", "%s", "{'clusterIP':'10.96.0.%zu','ports':[{'name':'http',"
			  "'port':80},{'name':'q','port':81}]}"), names[i], i + 1);
		put_jsonf(st, SLICE("shop", "%s-1", "%s", "IPv4", HTTP_PORT, "[" EP("10.0.0.%zu") "]"),
			  names[i], names[i], i + 1);
	}
	assert_int_equal(store_compute_all(st, &d.set), 0);
	desired_free(&d.set);

	/* Services: a again, e new, b kept (it arrived invalid), c
	 * and d gone. */
	store_relist_begin(st, STORE_SERVICE);
	put_json(st, SVC("shop", "a", "{'clusterIP':'10.96.0.1','ports':[{'name':'http','port':80},"
			 "{'name':'q','port':81}]}"));
	put_json(st, SVC("shop", "e", "{'clusterIP':'10.96.0.5','ports':[{'name':'http','port':80}]}"));
	store_keep(st, STORE_SERVICE, "shop", "b");
	store_keep(st, STORE_SERVICE, "shop", "not-there"); /* harmless */
	assert_int_equal(store_relist_end(st, STORE_SERVICE), 2);
	assert_int_equal(store_count(st, STORE_SERVICE), 3);
	assert_int_equal(store_count(st, STORE_SLICE), 4); /* the other kind is untouched */
	flush_expect(st, &d, "shop/a:http/TCP/v4 shop/a:q/TCP/v4 shop/e:http/TCP/v4",
		     "shop/c:http/TCP/v4 shop/c:q/TCP/v4 shop/d:http/TCP/v4 shop/d:q/TCP/v4");
	delta_free(&d);

	/* The kept b is still there, with its backends. */
	assert_int_equal(store_compute_all(st, &d.set), 0);
	assert_set_ids(&d.set, "shop/a:http/TCP/v4 shop/a:q/TCP/v4 shop/b:http/TCP/v4 "
		       "shop/b:q/TCP/v4 shop/e:http/TCP/v4");
	assert_backends(find_svc(&d.set, "shop/b:http/TCP/v4"), "10.0.0.2:8080");
	desired_free(&d.set);

	/* Slices: only a-1 is listed: b loses its backends, nothing removed. The
	 * slices of c and d (whose Services are gone) go without a trace. */
	store_relist_begin(st, STORE_SLICE);
	put_json(st, SLICE("shop", "a-1", "a", "IPv4", HTTP_PORT, "[" EP("10.0.0.1") "]"));
	assert_int_equal(store_relist_end(st, STORE_SLICE), 3);
	assert_int_equal(store_count(st, STORE_SLICE), 1);
	assert_int_equal(store_count(st, STORE_SERVICE), 3);
	flush_expect(st, &d, "shop/a:http/TCP/v4 shop/a:q/TCP/v4 shop/b:http/TCP/v4 shop/b:q/TCP/v4",
		     "");
	assert_backends(find_svc(&d.set, "shop/b:http/TCP/v4"), "");
	assert_backends(find_svc(&d.set, "shop/a:http/TCP/v4"), "10.0.0.1:8080");
	delta_free(&d);

	/* A relist that lists everything again deletes nothing; an empty one
	 * deletes everything of its kind. */
	store_relist_begin(st, STORE_SLICE);
	put_json(st, SLICE("shop", "a-1", "a", "IPv4", HTTP_PORT, "[" EP("10.0.0.1") "]"));
	assert_int_equal(store_relist_end(st, STORE_SLICE), 0);
	flush_expect(st, &d, "shop/a:http/TCP/v4 shop/a:q/TCP/v4", "");
	delta_free(&d);
	store_relist_begin(st, STORE_SERVICE);
	assert_int_equal(store_relist_end(st, STORE_SERVICE), 3);
	assert_int_equal(store_count(st, STORE_SERVICE), 0);
	flush_expect(st, &d, "", "shop/a:http/TCP/v4 shop/a:q/TCP/v4 shop/b:http/TCP/v4 "
		     "shop/b:q/TCP/v4 shop/e:http/TCP/v4");
	delta_free(&d);
	store_free(st);
}

/* A relist over many objects, deleting most of them while the object table
 * is walked. */
static void test_relist_many(void **state)
{
	struct model_store *st = store_new(64);
	struct desired_delta d;

	(void)state;
	put_many(st, 1000);
	assert_int_equal(store_compute_all(st, &d.set), 0);
	desired_free(&d.set);
	store_relist_begin(st, STORE_SERVICE);
	for (size_t i = 0; i < 1000; i += 10) {
		char name[16];

		snprintf(name, sizeof(name), "svc-%zu", i);
		store_keep(st, STORE_SERVICE, "ns", name);
	}
	assert_int_equal(store_relist_end(st, STORE_SERVICE), 900);
	assert_int_equal(store_count(st, STORE_SERVICE), 100);
	assert_int_equal(store_flush(st, &d), 0);
	assert_int_equal(d.set.n_svcs, 0);
	assert_int_equal(d.n_removed, 1800);
	for (size_t i = 0; i < d.n_removed; i++) {
		size_t n = strtoul(d.removed[i] + strlen("ns/svc-"), NULL, 10);

		assert_true(n % 10 != 0);
	}
	delta_free(&d);
	store_free(st);
}

/* Deleting what the store does not hold: false, and nothing to flush. */
static void test_delete_unknown(void **state)
{
	struct model_store *st = store_new(64);
	struct desired_delta d;

	(void)state;
	assert_false(store_delete(st, STORE_SERVICE, "shop", "web"));
	assert_false(store_delete(st, STORE_SLICE, "shop", "web"));
	assert_false(store_dirty(st));
	assert_empty_flush(st);

	put_json(st, WEB_SVC);
	put_json(st, SLICE("shop", "web-1", "web", "IPv4", HTTP_PORT, "[" EP("10.0.0.1") "]"));
	flush_expect(st, &d, "shop/web:http/TCP/v4", "");
	delta_free(&d);
	/* Wrong kind, wrong namespace, wrong name: all unknown. */
	assert_false(store_delete(st, STORE_SLICE, "shop", "web"));
	assert_false(store_delete(st, STORE_SERVICE, "shop", "web-1"));
	assert_false(store_delete(st, STORE_SERVICE, "other", "web"));
	assert_false(store_delete(st, STORE_SERVICE, "shop", "we"));
	assert_false(store_delete(st, STORE_SERVICE, "sho", "pweb"));
	assert_false(store_dirty(st));
	assert_int_equal(store_count(st, STORE_SERVICE), 1);
	assert_int_equal(store_count(st, STORE_SLICE), 1);
	assert_empty_flush(st);
	store_free(st);
}

/* store_count per kind: a replaced object counts once. A flush with nothing
 * dirty gives an empty delta. */
static void test_counts_and_empty_flush(void **state)
{
	struct model_store *st = store_new(64);
	struct desired_delta d;

	(void)state;
	assert_int_equal(store_count(st, STORE_SERVICE), 0);
	assert_int_equal(store_count(st, STORE_SLICE), 0);
	assert_false(store_dirty(st));
	assert_int_equal(store_flush(st, &d), 0);
	assert_int_equal(d.set.n_svcs, 0);
	assert_int_equal(d.n_removed, 0);
	assert_int_equal(d.set.truncated, 0);
	delta_free(&d);
	assert_int_equal(store_compute_all(st, &d.set), 0);
	assert_int_equal(d.set.n_svcs, 0);
	desired_free(&d.set);

	put_json(st, WEB_SVC);
	put_json(st, WEB_SVC);
	put_json(st, SVC("other", "web", "{'clusterIP':'10.96.0.2','ports':[{'port':80}]}"));
	put_json(st, SLICE("shop", "web-1", "web", "IPv4", HTTP_PORT, "[" EP("10.0.0.1") "]"));
	put_json(st, SLICE("shop", "web-1", "web", "IPv4", HTTP_PORT, "[" EP("10.0.0.2") "]"));
	put_json(st, SLICE("shop", "web-2", "web", "IPv4", HTTP_PORT, "[" EP("10.0.0.3") "]"));
	put_json(st, SLICE("shop", "web", "web", "IPv4", HTTP_PORT, "[]")); /* same name as the Service */
	assert_int_equal(store_count(st, STORE_SERVICE), 2);
	assert_int_equal(store_count(st, STORE_SLICE), 3);
	flush_expect(st, &d, "other/web:/TCP/v4 shop/web:http/TCP/v4", "");
	assert_backends(find_svc(&d.set, "shop/web:http/TCP/v4"), "10.0.0.2:8080 10.0.0.3:8080");
	delta_free(&d);
	assert_empty_flush(st);
	assert_empty_flush(st);

	/* The same object again, unchanged: recomputed, nothing removed. */
	put_json(st, WEB_SVC);
	flush_expect(st, &d, "shop/web:http/TCP/v4", "");
	delta_free(&d);
	assert_true(store_delete(st, STORE_SLICE, "shop", "web"));
	assert_int_equal(store_count(st, STORE_SLICE), 2);
	assert_int_equal(store_count(st, STORE_SERVICE), 2);
	assert_true(store_delete(st, STORE_SERVICE, "shop", "web"));
	assert_int_equal(store_count(st, STORE_SERVICE), 1);
	assert_int_equal(store_count(st, STORE_SLICE), 2);
	store_free(st);
}

/* Truncation to max_per_service in a flush: counted in the delta, warned
 * with the service port's ID. */
static void test_flush_truncation_logged(void **state)
{
	struct model_store *st = store_new(2);
	struct desired_delta d;
	struct capture c;
	char log[2048];

	(void)state;
	put_json(st, WEB_SVC);
	put_json(st, SLICE("shop", "web-1", "web", "IPv4", HTTP_PORT,
			   "[" EP("10.0.0.3") "," EP("10.0.0.1") "," EP("10.0.0.2") "]"));
	capture_begin(&c);
	assert_int_equal(store_flush(st, &d), 0);
	capture_end(&c, log, sizeof(log));
	assert_non_null(strstr(log, "level=warn component=model msg=\"shop/web:http/TCP/v4 has 3 "
				    "backends, programmed the first 2 (--max-backends-per-service)\""));
	assert_int_equal(d.set.truncated, 1);
	assert_backends(&d.set.svcs[0], "10.0.0.1:8080 10.0.0.2:8080");
	delta_free(&d);
	store_free(st);
}

/* Two Services of the same name in two namespaces are two Services: their
 * slices do not mix, deleting one leaves the other (B6: a slice belongs to
 * the Service of its namespace). */
static void test_same_name_in_two_namespaces(void **state)
{
	static const char *const ns_pairs[][2] = {
		{ "a", "b" }, { "team-1", "xeam-1" }, { "dev", "rev" }, { "shop", "other" },
	};
	char id_a[64], id_b[64], *text;
	struct model_store *st;
	struct desired_delta d;
	struct desired_state all;

	(void)state;
	for (size_t i = 0; i < sizeof(ns_pairs) / sizeof(ns_pairs[0]); i++) {
		const char *a = ns_pairs[i][0], *b = ns_pairs[i][1];

		st = store_new(64);
		snprintf(id_a, sizeof(id_a), "%s/web:http/TCP/v4", a);
		snprintf(id_b, sizeof(id_b), "%s/web:http/TCP/v4", b);
		put_jsonf(st, SVC("%s", "web", "{'clusterIP':'10.96.0.1','ports':[{'name':'http',"
			  "'port':80}]}"), a);
		put_jsonf(st, SVC("%s", "web", "{'clusterIP':'10.96.0.2','ports':[{'name':'http',"
			  "'port':80}]}"), b);
		put_jsonf(st, SLICE("%s", "web-1", "web", "IPv4", HTTP_PORT, "[" EP("10.0.0.1") "]"), a);
		put_jsonf(st, SLICE("%s", "web-1", "web", "IPv4", HTTP_PORT, "[" EP("10.0.0.2") "]"), b);
		assert_int_equal(store_compute_all(st, &all), 0);
		assert_true(asprintf(&text, "%s %s", strcmp(id_a, id_b) < 0 ? id_a : id_b,
				     strcmp(id_a, id_b) < 0 ? id_b : id_a) > 0);
		assert_set_ids(&all, text);
		free(text);
		assert_backends(find_svc(&all, id_a), "10.0.0.1:8080");
		assert_backends(find_svc(&all, id_b), "10.0.0.2:8080");
		desired_free(&all);

		assert_true(store_delete(st, STORE_SERVICE, a, "web"));
		flush_expect(st, &d, "", id_a);
		delta_free(&d);
		assert_int_equal(store_compute_all(st, &all), 0);
		assert_set_ids(&all, id_b);
		assert_backends(&all.svcs[0], "10.0.0.2:8080");
		desired_free(&all);
		store_free(st);
	}
}

/* The same, with both Services deleted in turn. Run in a child process:
 * a memory error in the store must fail this test, not end the whole run.
 * Returns 0, or the number of the first check that failed. */
static int both_deleted_child(void)
{
	struct model_store *st = store_new(64);
	struct desired_delta d[3];
	char buf[1024];
	int bad = 0;
	bool deleted_a;

	put_json(st, SVC("a", "web", "{'clusterIP':'10.96.0.1','ports':[{'port':80}]}"));
	put_json(st, SVC("b", "web", "{'clusterIP':'10.96.0.2','ports':[{'port':80}]}"));
	store_flush(st, &d[0]);
	store_delete(st, STORE_SERVICE, "b", "web");
	store_flush(st, &d[1]);
	deleted_a = store_delete(st, STORE_SERVICE, "a", "web");
	store_flush(st, &d[2]);
	if (store_count(st, STORE_SERVICE) != 0)
		bad = bad ? bad : 1;
	store_free(st);
	if (!deleted_a)
		bad = bad ? bad : 2;
	if (strcmp(join_set_ids(&d[0].set, buf, sizeof(buf)), "a/web:/TCP/v4 b/web:/TCP/v4"))
		bad = bad ? bad : 3;
	if (strcmp(join_ids(d[1].removed, d[1].n_removed, buf, sizeof(buf)), "b/web:/TCP/v4") ||
	    d[1].set.n_svcs)
		bad = bad ? bad : 4;
	if (strcmp(join_ids(d[2].removed, d[2].n_removed, buf, sizeof(buf)), "a/web:/TCP/v4") ||
	    d[2].set.n_svcs)
		bad = bad ? bad : 5;
	for (size_t i = 0; i < 3; i++)
		delta_free(&d[i]);
	return bad;
}

static void test_same_name_in_two_namespaces_both_deleted(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(both_deleted_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("the store crashed: signal %d", WTERMSIG(status));
	if (WEXITSTATUS(status))
		fail_msg("check %d failed (1: count, 2: delete a, 3: first set, 4: b removed, "
			 "5: a removed)", WEXITSTATUS(status));
}

/* The service ports that the deltas so far leave in the maps, as the sync
 * engine applies them: set adds or replaces, removed deletes. */
struct alive {
	char *ids[16];
	size_t n;
};

static void alive_apply(struct alive *a, const struct desired_delta *d)
{
	size_t j;

	for (size_t i = 0; i < d->n_removed; i++)
		for (j = 0; j < a->n; j++)
			if (strcmp(a->ids[j], d->removed[i]) == 0) {
				free(a->ids[j]);
				a->ids[j] = a->ids[--a->n];
				break;
			}
	for (size_t i = 0; i < d->set.n_svcs; i++) {
		for (j = 0; j < a->n && strcmp(a->ids[j], d->set.svcs[i].id) != 0; j++)
			;
		if (j == a->n) {
			assert_true(a->n < 16);
			a->ids[a->n++] = strdup(d->set.svcs[i].id);
		}
	}
}

/* A flush whose memory runs out (the k-th strdup or asprintf: a service
 * port's ID, a copy of a removed one, for every k) leaves the store as it was, and the next flush sends the
 * change: no group's new ports go out without the group remembering them,
 * so that deleting the Services removes every port the maps got. */
static void test_flush_out_of_memory_all_or_nothing(void **state)
{
	const char *both = "kube-system/dns:dns-tcp/TCP/v4 shop/web:https/TCP/v4";
	struct desired_delta d;
	bool hit = true;
	int k, rc;

	(void)state;
	for (k = 1; hit && k < 100; k++) {
		struct model_store *st = store_new(64);
		struct alive alive = { .n = 0 };

		put_json(st, WEB_SVC);
		put_json(st, SLICE("shop", "web-1", "web", "IPv4", HTTP_PORT, "[" EP("10.0.0.1") "]"));
		put_json(st, SVC("kube-system", "dns", "{'clusterIP':'10.96.0.10','ports':["
				 "{'name':'dns','port':53,'protocol':'UDP'}]}"));
		assert_int_equal(store_flush(st, &d), 0);
		alive_apply(&alive, &d);
		delta_free(&d);

		/* Both Services change their port; the k-th strdup or asprintf fails. */
		put_json(st, SVC("shop", "web", "{'clusterIP':'10.96.0.1','ports':["
				 "{'name':'https','port':443}]}"));
		put_json(st, SVC("kube-system", "dns", "{'clusterIP':'10.96.0.10','ports':["
				 "{'name':'dns-tcp','port':53}]}"));
		strdup_fail_in = k;
		rc = store_flush(st, &d);
		hit = strdup_fail_in == 0;
		strdup_fail_in = 0;
		if (rc < 0) {
			assert_true(hit);
			assert_true(store_dirty(st));
			assert_int_equal(d.set.n_svcs, 0);
			assert_int_equal(d.n_removed, 0);
			assert_int_equal(store_flush(st, &d), 0);
		}
		alive_apply(&alive, &d);
		delta_free(&d);
		assert_id_list(alive.ids, alive.n, both);

		assert_true(store_delete(st, STORE_SERVICE, "shop", "web"));
		assert_true(store_delete(st, STORE_SERVICE, "kube-system", "dns"));
		assert_int_equal(store_flush(st, &d), 0);
		alive_apply(&alive, &d);
		delta_free(&d);
		if (alive.n)
			fail_msg("strdup %d failing: after deleting both Services the maps still hold %s",
				 k, alive.ids[0]);
		store_free(st);
	}
	assert_true(k > 2); /* some strdup of the flush did fail */
}

/* shop/lb: a LoadBalancer with nodePort 30080, LB IP 198.51.100.1 and the
 * externalTrafficPolicy given. */
#define LB_SVC(policy)                                                                     \
	"{'kind':'Service','metadata':{'namespace':'shop','name':'lb'},'spec':{"           \
	"'type':'LoadBalancer','clusterIP':'10.96.0.2','externalTrafficPolicy':'" policy "',"  \
	"'ports':[{'name':'http','port':80,'nodePort':30080}]},"                            \
	"'status':{'loadBalancer':{'ingress':[{'ip':'198.51.100.1'}]}}}"
#define LB_SLICE SLICE("shop", "lb-1", "lb", "IPv4", HTTP_PORT, "[" EP("10.0.0.1") "]")

/* The frontends of s as "addr:port ...". */
static void assert_frontends(const struct desired_svc *s, const char *expect)
{
	char buf[1024] = "", one[64];

	for (size_t i = 0; i < s->n_frontends; i++) {
		addr_format_port(&s->frontends[i].addr, s->frontends[i].port, one, sizeof(one));
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? " " : "", one);
	}
	assert_string_equal(buf, expect);
}

/* B16, B22: the external set of externalTrafficPolicy Local comes and goes
 * with the policy and the type; when it goes, its ID is in the delta's
 * removed, and the Cluster set loses its NodePort and LB IP with the type. */
static void test_b16_b22_policy_and_type_changes_remove_external_set(void **state)
{
	struct model_store *st = store_new(64);
	struct desired_delta d;

	(void)state;
	put_json(st, LB_SVC("Local"));
	put_json(st, LB_SLICE);
	flush_expect(st, &d, "shop/lb:http/TCP/v4 shop/lb:http/TCP/v4/external", "");
	assert_frontends(find_svc(&d.set, "shop/lb:http/TCP/v4/external"),
			 "0.0.0.0:30080 198.51.100.1:80");
	delta_free(&d);

	put_json(st, LB_SVC("Cluster"));
	flush_expect(st, &d, "shop/lb:http/TCP/v4", "shop/lb:http/TCP/v4/external");
	assert_false(d.set.svcs[0].ext_local);
	assert_frontends(&d.set.svcs[0], "10.96.0.2:80 0.0.0.0:30080 198.51.100.1:80");
	delta_free(&d);

	put_json(st, LB_SVC("Local"));
	flush_expect(st, &d, "shop/lb:http/TCP/v4 shop/lb:http/TCP/v4/external", "");
	delta_free(&d);

	/* Type ClusterIP: no external frontend, so no external set. */
	put_json(st, SVC("shop", "lb", "{'clusterIP':'10.96.0.2','externalTrafficPolicy':'Local',"
			 "'ports':[{'name':'http','port':80,'nodePort':30080}]}"));
	flush_expect(st, &d, "shop/lb:http/TCP/v4", "shop/lb:http/TCP/v4/external");
	assert_frontends(&d.set.svcs[0], "10.96.0.2:80");
	delta_free(&d);

	assert_true(store_delete(st, STORE_SERVICE, "shop", "lb"));
	flush_expect(st, &d, "", "shop/lb:http/TCP/v4");
	delta_free(&d);
	store_free(st);
}

/* The node's addresses and NodePort range recompute the Services with
 * external frontends only: an LB IP equal to a node address is left out
 * (warned once per change), and comes back when the node loses it.
 * store_fix_node_addrs (--node-ips) wins over the Node's; the generation
 * tells ferryd that the addresses changed. */
static void test_node_addrs_and_range_recompute_external_services(void **state)
{
	struct model_store *st = store_new(64);
	struct ferry_ip addrs[2];
	struct desired_delta d;
	struct capture c;
	uint64_t gen0, gen;
	size_t n;
	char log[4096];

	(void)state;
	addr_parse("198.51.100.1", &addrs[0]);
	addr_parse("192.0.2.1", &addrs[1]);
	put_json(st, WEB_SVC);
	put_json(st, LB_SVC("Cluster"));
	put_json(st, LB_SLICE);
	flush_expect(st, &d, "shop/lb:http/TCP/v4 shop/web:http/TCP/v4", "");
	delta_free(&d);
	store_node_addrs(st, &n, &gen0);
	assert_int_equal(n, 0);

	capture_begin(&c);
	assert_int_equal(store_set_node_addrs(st, addrs, 2), 0);
	flush_expect(st, &d, "shop/lb:http/TCP/v4", "");
	assert_frontends(&d.set.svcs[0], "10.96.0.2:80 0.0.0.0:30080");
	delta_free(&d);
	/* An endpoint change recomputes it: the same problem is not logged again. */
	put_json(st, SLICE("shop", "lb-1", "lb", "IPv4", HTTP_PORT, "[" EP("10.0.0.9") "]"));
	flush_expect(st, &d, "shop/lb:http/TCP/v4", "");
	delta_free(&d);
	capture_end(&c, log, sizeof(log));
	assert_non_null(strstr(log, "Service shop/lb: LoadBalancer ingress IP 198.51.100.1 is an "
				    "address of this node: left out"));
	assert_null(strstr(strstr(log, "198.51.100.1 is an address") + 1, "198.51.100.1 is an"));
	assert_int_equal(store_node_addrs(st, &n, &gen)[1].w[3], addrs[0].w[3]); /* sorted */
	assert_int_equal(n, 2);
	assert_true(gen != gen0);

	/* The same addresses again: nothing to recompute. */
	assert_int_equal(store_set_node_addrs(st, &addrs[1], 1), 0);
	assert_int_equal(store_set_node_addrs(st, addrs, 2), 0);
	flush_expect(st, &d, "shop/lb:http/TCP/v4", "");
	delta_free(&d);
	assert_int_equal(store_set_node_addrs(st, addrs, 2), 0);
	assert_false(store_dirty(st));

	/* --node-ips: the Node's addresses no longer count. */
	assert_int_equal(store_fix_node_addrs(st, &addrs[1], 1), 0);
	flush_expect(st, &d, "shop/lb:http/TCP/v4", "");
	assert_frontends(&d.set.svcs[0], "10.96.0.2:80 0.0.0.0:30080 198.51.100.1:80");
	delta_free(&d);
	assert_int_equal(store_set_node_addrs(st, addrs, 2), 0);
	assert_false(store_dirty(st));
	store_node_addrs(st, &n, NULL);
	assert_int_equal(n, 1);

	/* A NodePort range without 30080. */
	store_set_node_port_range(st, 31000, 31999);
	flush_expect(st, &d, "shop/lb:http/TCP/v4", "");
	assert_frontends(&d.set.svcs[0], "10.96.0.2:80 198.51.100.1:80");
	delta_free(&d);
	store_set_node_port_range(st, 31000, 31999);
	assert_false(store_dirty(st));
	store_free(st);
}

/* An EndpointSlice of shop/web with a last-change-trigger-time. */
#define TRIGGER_SLICE(name, time, addr) \
	"{'kind':'EndpointSlice','metadata':{'namespace':'shop','name':'" name "'," \
	"'labels':{'kubernetes.io/service-name':'web'},'annotations':{" \
	"'endpoints.kubernetes.io/last-change-trigger-time':'" time "'}}," \
	"'addressType':'IPv4','ports':" HTTP_PORT ",'endpoints':[" EP(addr) "]}"
#define T0_NS (1796540689LL * 1000000000) /* 2026-12-06T07:04:49Z */

/* The trigger times taken, as "seconds after T0" separated by spaces. */
static void assert_triggers(struct model_store *st, const char *want)
{
	char buf[256] = "";
	size_t n;
	int64_t *t = store_take_triggers(st, &n);

	for (size_t i = 0; i < n; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%lld", i ? " " : "",
			 (long long)(t[i] - T0_NS) / 1000000000);
	free(t);
	assert_string_equal(buf, want);
}

/* The SLI's trigger times: one per slice change after the floor (ferryd's
 * start, as kube-proxy's), none for a slice without the annotation, for a
 * relist that brings the same slice again, or for a delete; a slice that
 * changes twice before a flush counts twice, as in kube-proxy. */
static void test_slice_trigger_times(void **state)
{
	struct model_store *st = store_new(64);
	struct desired_delta d;

	(void)state;
	assert_non_null(st);
	/* Nothing is kept until a floor is set (a source that takes no times). */
	put_json(st, TRIGGER_SLICE("web-9", "2026-12-06T07:04:50Z", "10.0.0.9"));
	assert_triggers(st, "");
	assert_true(store_delete(st, STORE_SLICE, "shop", "web-9"));
	store_set_trigger_floor(st, T0_NS);
	put_json(st, WEB_SVC);
	put_json(st, TRIGGER_SLICE("web-1", "2026-12-06T07:04:48Z", "10.0.0.1")); /* before */
	put_json(st, TRIGGER_SLICE("web-2", "2026-12-06T07:04:49Z", "10.0.0.2")); /* at the floor */
	put_json(st, SLICE("shop", "web-3", "web", "IPv4", HTTP_PORT, "[" EP("10.0.0.3") "]"));
	assert_triggers(st, "");
	put_json(st, TRIGGER_SLICE("web-1", "2026-12-06T07:04:50Z", "10.0.0.4"));
	put_json(st, TRIGGER_SLICE("web-2", "2026-12-06T07:04:51Z", "10.0.0.5"));
	put_json(st, TRIGGER_SLICE("web-1", "2026-12-06T07:04:53Z", "10.0.0.6"));
	assert_int_equal(store_flush(st, &d), 0);
	delta_free(&d);
	assert_triggers(st, "1 2 4");
	assert_triggers(st, ""); /* taken once */

	/* A relist brings the same slices again: nothing; one changed meanwhile
	 * counts once. */
	store_relist_begin(st, STORE_SLICE);
	put_json(st, TRIGGER_SLICE("web-1", "2026-12-06T07:04:53Z", "10.0.0.6"));
	put_json(st, TRIGGER_SLICE("web-2", "2026-12-06T07:04:55Z", "10.0.0.7"));
	assert_int_equal(store_relist_end(st, STORE_SLICE), 1); /* web-3 */
	assert_triggers(st, "6");

	/* A delete is not measured; the slice created again is. An unparsable
	 * time or an older one than the slice held is not. */
	assert_true(store_delete(st, STORE_SLICE, "shop", "web-1"));
	assert_triggers(st, "");
	put_json(st, TRIGGER_SLICE("web-1", "2026-12-06T07:04:56Z", "10.0.0.6"));
	put_json(st, TRIGGER_SLICE("web-2", "not a time", "10.0.0.8"));
	put_json(st, TRIGGER_SLICE("web-1", "2026-12-06T07:04:52Z", "10.0.0.9"));
	assert_triggers(st, "7");
	store_free(st);
}

/* model_compute's contract through the store (store_compute_sets): the
 * same state from the same sets (objects split over two sets, a Service
 * defined again in the later one: it wins, with a warning), for a node
 * with a name and a zone; the sets' objects stay the caller's. */
static void test_compute_sets_same_as_model_compute(void **state)
{
	static const struct model_node node = { .name = "node-a", .zone = "z1" };
	struct model_objects sets[2] = { 0 };
	struct desired_state want, got;
	struct capture c;
	char log[8192];

	(void)state;
	for (size_t i = 0; i < N_MIXED; i++)
		decode_json(&sets[i % 2], mixed_objects[i]);
	gen_objects(&sets[0], 50);
	decode_json(&sets[1], SVC("shop", "cart", "{'clusterIP':'10.96.0.42','ports':[{'port':81}]}"));
	assert_int_equal(model_compute(sets, 2, &node, 4, &want), 0);
	capture_begin(&c);
	assert_int_equal(store_compute_sets(sets, 2, &node, 4, &got), 0);
	capture_end(&c, log, sizeof(log));
	assert_non_null(strstr(log, "Service shop/cart is defined more than once: the last one is "
				    "used"));
	assert_same_state(&got, &want);
	assert_int_equal(find_svc(&got, "shop/cart:/TCP/v4")->frontends[0].port, 81);
	desired_free(&got);
	desired_free(&want);
	model_objects_free(&sets[0]);
	model_objects_free(&sets[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compute_all_same_as_model_compute),
		cmocka_unit_test(test_compute_sets_same_as_model_compute),
		cmocka_unit_test(test_compute_all_after_changes),
		cmocka_unit_test(test_b35_one_changed_slice_touches_one_service),
		cmocka_unit_test(test_slice_before_service),
		cmocka_unit_test(test_b6_slice_label_changes_service),
		cmocka_unit_test(test_slice_deleted),
		cmocka_unit_test(test_b5_service_deleted_and_recreated),
		cmocka_unit_test(test_b4_service_port_removed_and_added),
		cmocka_unit_test(test_b1_b2_b5_service_stops_being_proxied),
		cmocka_unit_test(test_b3_dual_stack),
		cmocka_unit_test(test_relist),
		cmocka_unit_test(test_relist_many),
		cmocka_unit_test(test_delete_unknown),
		cmocka_unit_test(test_counts_and_empty_flush),
		cmocka_unit_test(test_flush_truncation_logged),
		cmocka_unit_test(test_same_name_in_two_namespaces),
		cmocka_unit_test(test_same_name_in_two_namespaces_both_deleted),
		cmocka_unit_test(test_flush_out_of_memory_all_or_nothing),
		cmocka_unit_test(test_b16_b22_policy_and_type_changes_remove_external_set),
		cmocka_unit_test(test_node_addrs_and_range_recompute_external_services),
		cmocka_unit_test(test_slice_trigger_times),
	};

	/* e.g. FERRY_TEST_SKIP='test_same_name*' to leave some out. */
	if (getenv("FERRY_TEST_SKIP"))
		cmocka_set_skip_filter(getenv("FERRY_TEST_SKIP"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
