#define _GNU_SOURCE /* asprintf */
#include "ferryd/hcnp.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "metrics/httpd.h"

/* A port that could not be bound is tried again this often: it may be
 * held by the kube-proxy ferry replaces, until that one is gone. */
#define HCNP_RETRY_S 5

/* One external set with a healthCheckNodePort. */
struct hcnp_set {
	char *id;
	uint16_t port;
	bool fallback;
	size_t n_addrs;
	struct ferry_ip *addrs;
};

/* One Service's server. Its thread reads svc and local only. */
struct hcnp_listener {
	char svc[256];          /* namespace/name */
	char what[300];         /* names the server in httpd's logs */
	uint16_t port;
	atomic_int local;       /* N */
	struct httpd *httpd;    /* NULL: the port could not be bound */
	time_t retry_at;        /* CLOCK_MONOTONIC s of the next try, when NULL */
	bool wanted;
};

struct hcnp {
	size_t n_sets;
	struct hcnp_set *sets;
	size_t n_lis;
	struct hcnp_listener **lis;
	uint64_t bind_errors;
	bool serving;             /* the per-packet path serves a device */
	bool said_idle;           /* logged that ports wait for a device */
};

struct hcnp *hcnp_new(void)
{
	return calloc(1, sizeof(struct hcnp));
}

static void set_free(struct hcnp_set *s)
{
	free(s->id);
	free(s->addrs);
}

static void listener_close(struct hcnp_listener *l)
{
	if (l->httpd)
		log_info("hcnp", "%s: healthCheckNodePort %u closed", l->svc, l->port);
	httpd_stop(l->httpd);
	free(l);
}

void hcnp_free(struct hcnp *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_sets; i++)
		set_free(&h->sets[i]);
	for (size_t i = 0; i < h->n_lis; i++)
		listener_close(h->lis[i]);
	free(h->sets);
	free(h->lis);
	free(h);
}

/* The Service of a service-port id: "ns/name" before the ':'. */
static size_t svc_len(const char *id)
{
	return strcspn(id, ":");
}

static void drop_set(struct hcnp *h, const char *id)
{
	for (size_t i = 0; i < h->n_sets; i++)
		if (strcmp(h->sets[i].id, id) == 0) {
			set_free(&h->sets[i]);
			h->sets[i] = h->sets[--h->n_sets];
			return;
		}
}

static int add_set(struct hcnp *h, const struct desired_svc *d)
{
	struct hcnp_set *sets, s = { .port = d->health_check_node_port, .fallback = d->fallback };

	if (!d->external || !d->health_check_node_port)
		return 0;
	sets = realloc(h->sets, (h->n_sets + 1) * sizeof(*sets));
	if (!sets)
		return -1;
	h->sets = sets;
	s.id = strdup(d->id);
	s.addrs = calloc(d->n_backends ? d->n_backends : 1, sizeof(*s.addrs));
	if (!s.id || !s.addrs) {
		set_free(&s);
		return -1;
	}
	for (size_t i = 0; i < d->n_backends; i++)
		s.addrs[i] = d->backends[i].addr;
	s.n_addrs = d->n_backends;
	h->sets[h->n_sets++] = s;
	return 0;
}

/* N for the Service of sets[first]: distinct addresses of its sets that
 * are not a terminating fallback. */
static int count_local(const struct hcnp *h, size_t first)
{
	const char *svc = h->sets[first].id;
	size_t len = svc_len(svc), n = 0;

	for (size_t i = first; i < h->n_sets; i++) {
		const struct hcnp_set *s = &h->sets[i];

		if (svc_len(s->id) != len || strncmp(s->id, svc, len) || s->fallback)
			continue;
		for (size_t a = 0; a < s->n_addrs; a++) {
			bool dup = false;

			/* An address counted in an earlier set or earlier in this one. */
			for (size_t j = first; j <= i && !dup; j++) {
				const struct hcnp_set *t = &h->sets[j];
				size_t end = j == i ? a : t->n_addrs;

				if (t->fallback || svc_len(t->id) != len || strncmp(t->id, svc, len))
					continue;
				for (size_t b = 0; b < end && !dup; b++)
					dup = addr_equal(&t->addrs[b], &s->addrs[a]);
			}
			n += !dup;
		}
	}
	return (int)n;
}

static int hcnp_answer(void *ctx, const char *path, struct httpd_reply *reply)
{
	struct hcnp_listener *l = ctx;
	int local = atomic_load(&l->local);
	size_t ns = strcspn(l->svc, "/");
	int n;

	(void)path;
	n = asprintf(&reply->body, "{\"service\":{\"namespace\":\"%.*s\",\"name\":\"%s\"},"
		     "\"localEndpoints\":%d,\"serviceProxyHealthy\":true}\n",
		     (int)ns, l->svc, l->svc + ns + 1, local);
	if (n < 0) {
		reply->body = NULL;
		return -1;
	}
	reply->len = (size_t)n;
	reply->content_type = "application/json";
	reply->status = local > 0 ? 200 : 503;
	return 0;
}

static struct hcnp_listener *find_listener(const struct hcnp *h, const char *svc, size_t len)
{
	for (size_t i = 0; i < h->n_lis; i++)
		if (strlen(h->lis[i]->svc) == len && strncmp(h->lis[i]->svc, svc, len) == 0)
			return h->lis[i];
	return NULL;
}

static time_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Listen; a failure (logged by httpd_start, naming the Service) counts. */
static void listen_on(struct hcnp *h, struct hcnp_listener *l)
{
	char addr[16];

	snprintf(addr, sizeof(addr), ":%u", l->port);
	l->httpd = httpd_start(addr, l->what, hcnp_answer, l);
	if (!l->httpd) {
		h->bind_errors++;
		l->retry_at = now_s() + HCNP_RETRY_S;
	}
}

static int open_listener(struct hcnp *h, const char *svc, size_t len, uint16_t port, int local)
{
	struct hcnp_listener *l = calloc(1, sizeof(*l)), **lis;

	lis = l ? realloc(h->lis, (h->n_lis + 1) * sizeof(*lis)) : NULL;
	if (!lis) {
		free(l);
		return -1;
	}
	h->lis = lis;
	h->lis[h->n_lis++] = l;
	snprintf(l->svc, sizeof(l->svc), "%.*s", (int)len, svc);
	snprintf(l->what, sizeof(l->what), "healthCheckNodePort of Service %s", l->svc);
	l->port = port;
	l->wanted = true;
	atomic_store(&l->local, local);
	listen_on(h, l);
	return 0;
}

static void close_listener_of(struct hcnp *h, struct hcnp_listener *l)
{
	for (size_t i = 0; i < h->n_lis; i++)
		if (h->lis[i] == l) {
			h->lis[i] = h->lis[--h->n_lis];
			break;
		}
	listener_close(l);
}

/* Listeners follow the sets: one per Service, on its port, N updated. */
static void reconcile(struct hcnp *h)
{
	for (size_t i = 0; i < h->n_lis; i++)
		h->lis[i]->wanted = false;
	if (!h->serving && h->n_sets && !h->said_idle)
		log_warn("hcnp", "healthCheckNodePorts are not answered: this node does not serve "
			 "traffic from outside (no device)");
	h->said_idle = !h->serving && h->n_sets;
	for (size_t i = 0; h->serving && i < h->n_sets; i++) {
		const char *id = h->sets[i].id;
		size_t len = svc_len(id);
		struct hcnp_listener *l = find_listener(h, id, len);
		int local = count_local(h, i);

		if (l && l->wanted)
			continue; /* an earlier set of this Service did it */
		if (l && l->port == h->sets[i].port) {
			atomic_store(&l->local, local);
			l->wanted = true;
			continue;
		}
		if (l)
			close_listener_of(h, l); /* its port changed: free it first */
		if (open_listener(h, id, len, h->sets[i].port, local))
			log_error("hcnp", "out of memory for the healthCheckNodePort of %.*s",
				  (int)len, id);
	}
	for (size_t i = h->n_lis; i-- > 0;)
		if (!h->lis[i]->wanted)
			close_listener_of(h, h->lis[i]);
}

void hcnp_apply(struct hcnp *h, const struct desired_state *st)
{
	for (size_t i = 0; i < h->n_sets; i++)
		set_free(&h->sets[i]);
	h->n_sets = 0;
	for (size_t i = 0; i < st->n_svcs; i++)
		if (add_set(h, &st->svcs[i]))
			log_error("hcnp", "out of memory for %s", st->svcs[i].id);
	reconcile(h);
}

void hcnp_apply_delta(struct hcnp *h, const struct desired_delta *delta)
{
	for (size_t i = 0; i < delta->n_removed; i++)
		drop_set(h, delta->removed[i]);
	for (size_t i = 0; i < delta->set.n_svcs; i++) {
		drop_set(h, delta->set.svcs[i].id);
		if (add_set(h, &delta->set.svcs[i]))
			log_error("hcnp", "out of memory for %s", delta->set.svcs[i].id);
	}
	reconcile(h);
}

void hcnp_retry(struct hcnp *h)
{
	time_t now = now_s();

	for (size_t i = 0; i < h->n_lis; i++)
		if (!h->lis[i]->httpd && now >= h->lis[i]->retry_at)
			listen_on(h, h->lis[i]);
}

void hcnp_set_serving(struct hcnp *h, bool serving)
{
	if (serving == h->serving)
		return;
	h->serving = serving;
	reconcile(h);
}

uint64_t hcnp_bind_errors(const struct hcnp *h)
{
	return h->bind_errors;
}
