/* Desired service ports written by hand, for the sync engine's unit tests
 * (test_sync on BPF maps, test_engine on in-memory ones). Include it after
 * cmocka.h: it asserts. */
#ifndef FERRY_TEST_DESIRED_SPEC_H
#define FERRY_TEST_DESIRED_SPEC_H

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "model/model.h"

static struct ferry_ip ip(const char *text)
{
	struct ferry_ip a;

	assert_true(addr_parse(text, &a) > 0);
	return a;
}

/* Desired service ports written by hand. */
struct spec {
	const char *id;
	const char *frontends[8]; /* "KIND ADDR PORT": C (ClusterIP), N, L, E */
	const char *backends[20]; /* addresses, port 8080 */
	const char *ranges[4];    /* "ADDR/LEN" as written (IPv4 without the 96) */
	bool external, ext_local;
};

static void svc_build(struct desired_svc *d, const struct spec *s)
{
	static const char kinds[] = "CNLE";
	size_t n;

	memset(d, 0, sizeof(*d));
	d->id = strdup(s->id);
	d->proto = IPPROTO_TCP;
	d->external = s->external;
	d->ext_local = s->ext_local;
	for (n = 0; n < 8 && s->frontends[n]; n++)
		;
	d->frontends = calloc(n + 1, sizeof(*d->frontends));
	d->n_frontends = n;
	for (size_t i = 0; i < n; i++) {
		char kind, addr[64];
		unsigned port;

		assert_int_equal(sscanf(s->frontends[i], "%c %63s %u", &kind, addr, &port), 3);
		d->frontends[i].addr = ip(addr);
		d->frontends[i].port = (uint16_t)port;
		d->frontends[i].kind = (uint8_t)(strchr(kinds, kind) - kinds);
	}
	for (n = 0; n < 20 && s->backends[n]; n++)
		;
	d->backends = calloc(n + 1, sizeof(*d->backends));
	d->n_backends = n;
	for (size_t i = 0; i < n; i++) {
		d->backends[i].addr = ip(s->backends[i]);
		d->backends[i].port = 8080;
	}
	for (n = 0; n < 4 && s->ranges[n]; n++)
		;
	d->source_ranges = calloc(n + 1, sizeof(*d->source_ranges));
	d->n_source_ranges = n;
	for (size_t i = 0; i < n; i++) {
		char addr[64];
		unsigned len;

		assert_int_equal(sscanf(s->ranges[i], "%63[^/]/%u", addr, &len), 2);
		d->source_ranges[i].addr = ip(addr);
		d->source_ranges[i].len = (uint8_t)(len + (addr_is_v4(&d->source_ranges[i].addr)
							   ? 96 : 0));
	}
}

/* desired_free, also of what svc_build adds (whether desired_free frees
 * them or not). */
static void state_free(struct desired_state *st)
{
	for (size_t i = 0; i < st->n_svcs; i++) {
		free(st->svcs[i].frontends);
		free(st->svcs[i].source_ranges);
		st->svcs[i].frontends = NULL;
		st->svcs[i].source_ranges = NULL;
	}
	desired_free(st);
}

/* specs[0..n) as a desired state, sorted as model_compute leaves it. */
static struct desired_state spec_state(const struct spec *specs, size_t n)
{
	struct desired_state st = { 0 };

	st.svcs = calloc(n + 1, sizeof(*st.svcs));
	st.n_svcs = st.cap_svcs = n;
	for (size_t i = 0; i < n; i++)
		svc_build(&st.svcs[i], &specs[i]);
	desired_sort(&st);
	return st;
}

#endif
