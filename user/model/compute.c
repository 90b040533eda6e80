/* model_compute: Services and EndpointSlices -> the service ports, their
 * frontends and the backends the maps must hold (B1-B11, B13-B16, B22-B28,
 * B31). */
#define _GNU_SOURCE /* asprintf */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "model/frontends.h"
#include "model/store.h"

/* An endpoint of a slice whose port matches the service port (B7). */
struct compute_cand {
	const struct model_endpoint *ep;
	uint16_t port;
};

struct compute_ctx {
	const struct model_node *node; /* NULL when unknown */
	const char *node_name;  /* "" when unknown: nothing is local */
	const char *zone;       /* "" when unknown: hints are ignored */
	size_t max_per_service;
	struct compute_cand *cands;
	size_t n_cands, cap_cands;
	const struct model_slice *const *slices; /* of the Service being computed */
	size_t n_slices;
	struct desired_state *out;
};

/* Sorted by (addr, port), then the copy to keep first: not terminating (B9),
 * then ready, then serving. */
static int compute_cand_cmp(const void *pa, const void *pb)
{
	const struct compute_cand *a = pa, *b = pb;
	int c = addr_compare(&a->ep->addr, &b->ep->addr);

	if (c)
		return c;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if (a->ep->terminating != b->ep->terminating)
		return a->ep->terminating ? 1 : -1;
	if (a->ep->ready != b->ep->ready)
		return a->ep->ready ? -1 : 1;
	return (int)b->ep->serving - (int)a->ep->serving;
}

static const struct model_port *compute_slice_port(const struct model_slice *slice,
						   const struct model_port *port)
{
	for (size_t i = 0; i < slice->n_ports; i++)
		if (slice->ports[i].proto == port->proto &&
		    strcmp(slice->ports[i].name, port->name) == 0)
			return &slice->ports[i];
	return NULL;
}

static int compute_add_cand(struct compute_ctx *ctx, const struct model_endpoint *ep,
			    uint16_t port)
{
	struct compute_cand *p;

	if (ctx->n_cands == ctx->cap_cands) {
		p = realloc(ctx->cands, (ctx->cap_cands ? ctx->cap_cands * 2 : 64) * sizeof(*p));
		if (!p)
			return -1;
		ctx->cands = p;
		ctx->cap_cands = ctx->cap_cands ? ctx->cap_cands * 2 : 64;
	}
	ctx->cands[ctx->n_cands++] = (struct compute_cand){ .ep = ep, .port = port };
	return 0;
}

/* All slices of the Service in that family are merged (B6, B7), sorted and
 * deduplicated by addr:port (B9). */
static int compute_candidates(struct compute_ctx *ctx, int family, const struct model_port *port)
{
	const struct model_slice *slice;
	const struct model_port *sp;
	size_t n = 0;

	ctx->n_cands = 0;
	for (size_t s = 0; s < ctx->n_slices; s++) {
		slice = ctx->slices[s];
		sp = slice->proxied && slice->family == family ? compute_slice_port(slice, port)
							       : NULL;
		for (size_t i = 0; sp && i < slice->n_endpoints; i++)
			if (compute_add_cand(ctx, &slice->endpoints[i], sp->port) < 0)
				return -1;
	}
	if (ctx->n_cands)
		qsort(ctx->cands, ctx->n_cands, sizeof(*ctx->cands), compute_cand_cmp);
	for (size_t i = 0; i < ctx->n_cands; i++)
		if (!n || ctx->cands[i].port != ctx->cands[n - 1].port ||
		    !addr_equal(&ctx->cands[i].ep->addr, &ctx->cands[n - 1].ep->addr))
			ctx->cands[n++] = ctx->cands[i];
	ctx->n_cands = n;
	return 0;
}

static bool compute_hinted(const struct model_endpoint *ep, const char *zone)
{
	for (size_t i = 0; i < ep->n_hint_zones; i++)
		if (strcmp(model_endpoint_zone(ep, i), zone) == 0)
			return true;
	return false;
}

/* B31: hints steer the Cluster set only when every ready endpoint carries
 * some (a half-hinted slice is mid-rollout) and one names this node's zone. */
static bool compute_use_hints(const struct compute_ctx *ctx)
{
	bool for_zone = false;

	if (!ctx->zone[0])
		return false;
	for (size_t i = 0; i < ctx->n_cands; i++) {
		const struct model_endpoint *ep = ctx->cands[i].ep;

		if (!ep->ready)
			continue;
		if (!ep->n_hint_zones)
			return false;
		for_zone = for_zone || compute_hinted(ep, ctx->zone);
	}
	return for_zone;
}

/* The policy's candidate set (B13, B31), then B11 within it. local: this
 * node's endpoints only. */
static bool compute_usable(const struct compute_ctx *ctx, const struct desired_svc *dsvc,
			   bool local, const struct model_endpoint *ep, bool fallback)
{
	const char *node = model_endpoint_node(ep);

	if (local && (!node[0] || strcmp(node, ctx->node_name) != 0))
		return false;
	if (dsvc->zone_hints && !compute_hinted(ep, ctx->zone))
		return false;
	return fallback ? ep->serving && ep->terminating : ep->ready;
}

static size_t compute_count(const struct compute_ctx *ctx, const struct desired_svc *dsvc,
			    bool local, bool fallback)
{
	size_t n = 0;

	for (size_t i = 0; i < ctx->n_cands; i++)
		n += compute_usable(ctx, dsvc, local, ctx->cands[i].ep, fallback);
	return n;
}

/* Ready endpoints of the policy's set, or when none is ready its serving
 * and terminating ones (B11), cut to max_per_service with a warning naming
 * the service port. An empty Local set refuses (B15) or, the external set,
 * drops (B16). Hints steer the Cluster set only (B31). */
static int compute_backends(struct compute_ctx *ctx, struct desired_svc *dsvc)
{
	bool local = dsvc->local || dsvc->external;
	size_t n;

	dsvc->zone_hints = !local && compute_use_hints(ctx);
	n = compute_count(ctx, dsvc, local, false);
	if (n == 0) {
		n = compute_count(ctx, dsvc, local, true);
		dsvc->fallback = n > 0;
	}
	if (n > ctx->max_per_service) {
		log_warn("model", "%s has %zu backends, programmed the first %zu "
			 "(--max-backends-per-service)", dsvc->id, n, ctx->max_per_service);
		n = ctx->max_per_service;
		ctx->out->truncated++;
	}
	dsvc->backends = n ? calloc(n, sizeof(*dsvc->backends)) : NULL;
	if (n && !dsvc->backends)
		return -1;
	for (size_t i = 0; dsvc->n_backends < n; i++) {
		if (!compute_usable(ctx, dsvc, local, ctx->cands[i].ep, dsvc->fallback))
			continue;
		dsvc->backends[dsvc->n_backends].addr = ctx->cands[i].ep->addr;
		dsvc->backends[dsvc->n_backends++].port = ctx->cands[i].port;
	}
	return 0;
}

static struct desired_svc *compute_new_svc(struct compute_ctx *ctx)
{
	struct desired_state *out = ctx->out;
	struct desired_svc *p;

	if (out->n_svcs == out->cap_svcs) {
		p = realloc(out->svcs, (out->cap_svcs ? out->cap_svcs * 2 : 64) * sizeof(*p));
		if (!p)
			return NULL;
		out->svcs = p;
		out->cap_svcs = out->cap_svcs ? out->cap_svcs * 2 : 64;
	}
	p = &out->svcs[out->n_svcs++];
	memset(p, 0, sizeof(*p));
	return p;
}

static void desired_svc_release(struct desired_svc *d)
{
	free(d->id);
	free(d->frontends);
	free(d->source_ranges);
	free(d->backends);
}

/* Take back the last compute_new_svc: a service port with no frontend. */
static void compute_drop_last(struct compute_ctx *ctx)
{
	desired_svc_release(&ctx->out->svcs[--ctx->out->n_svcs]);
}

/* externalTrafficPolicy Local: the external frontends of the Cluster set
 * `at` again, as "<id>/external" with this node's endpoints (B16, B23) and
 * the healthCheckNodePort (B28). */
static int compute_external(struct compute_ctx *ctx, const struct model_service *svc,
			    const struct model_port *port, int family, size_t at)
{
	struct desired_svc *dsvc = compute_new_svc(ctx), *cluster = &ctx->out->svcs[at];
	size_t n_external, n_lb;

	if (!dsvc)
		return -1;
	dsvc->proto = cluster->proto;
	dsvc->external = dsvc->ext_local = true;
	dsvc->affinity_timeout = cluster->affinity_timeout;
	dsvc->lb_algorithm = cluster->lb_algorithm;
	dsvc->health_check_node_port = svc->ext->health_check_node_port;
	if (asprintf(&dsvc->id, "%s/external", cluster->id) < 0) {
		dsvc->id = NULL;
		return -1;
	}
	if (front_build(svc, port, family, NULL, ctx->node, dsvc, &n_external, &n_lb) < 0 ||
	    (n_lb && front_ranges(svc, family, dsvc) < 0))
		return -1;
	return compute_backends(ctx, dsvc);
}

/* One service port in the family of cluster IP `ip`: its Cluster set, and
 * with externalTrafficPolicy Local and external frontends, its external
 * set. */
static int compute_port(struct compute_ctx *ctx, const struct model_service *svc, size_t ip,
			const struct model_port *port)
{
	int family = svc->cluster_ip_family[ip];
	struct desired_svc *dsvc = compute_new_svc(ctx);
	size_t at = ctx->out->n_svcs - 1, n_external, n_lb;

	if (!dsvc)
		return -1;
	dsvc->proto = port->proto;
	dsvc->local = svc->internal_local;
	dsvc->affinity_timeout = svc->affinity_timeout;
	dsvc->lb_algorithm = svc->lb_algorithm;
	if (asprintf(&dsvc->id, "%s/%s:%s/%s/v%d", svc->ns, svc->name, port->name,
		     proto_name(port->proto), family) < 0) {
		dsvc->id = NULL;
		return -1;
	}
	/* SCTP never passes the socket hooks: its ClusterIP is left out, not
	 * listed as programmed (decode_svc.c says so in the log, B32). */
	if (front_build(svc, port, family,
			port->proto == IPPROTO_SCTP ? NULL : &svc->cluster_ips[ip], ctx->node,
			dsvc, &n_external, &n_lb) < 0 ||
	    (n_lb && front_ranges(svc, family, dsvc) < 0))
		return -1;
	if (!dsvc->n_frontends) {
		compute_drop_last(ctx);
		return 0;
	}
	dsvc->ext_local = n_external && svc->ext && svc->ext->ext_local;
	if (compute_candidates(ctx, family, port) < 0 || compute_backends(ctx, dsvc) < 0)
		return -1;
	return ctx->out->svcs[at].ext_local ? compute_external(ctx, svc, port, family, at) : 0;
}

/* B1 (headless, ExternalName), B2 (labels), B3 (one entry per cluster IP). */
static int compute_service(struct compute_ctx *ctx, const struct model_service *svc)
{
	if (!svc->proxied || svc->type == SVC_TYPE_EXTERNAL_NAME)
		return 0;
	front_check(svc, ctx->node);
	for (size_t ip = 0; ip < svc->n_cluster_ips; ip++)
		for (size_t p = 0; p < svc->n_ports; p++)
			if (compute_port(ctx, svc, ip, &svc->ports[p]) < 0)
				return -1;
	return 0;
}

static void compute_ctx_init(struct compute_ctx *ctx, const struct model_node *node,
			     size_t max_per_service, struct desired_state *out)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->node = node;
	ctx->node_name = node && node->name ? node->name : "";
	ctx->zone = node && node->zone ? node->zone : "";
	ctx->max_per_service = max_per_service;
	ctx->out = out;
}

int model_compute_service(const struct model_service *svc, const struct model_slice *const *slices,
			  size_t n_slices, const struct model_node *node, size_t max_per_service,
			  struct desired_state *out)
{
	struct compute_ctx ctx;
	int rc;

	compute_ctx_init(&ctx, node, max_per_service, out);
	ctx.slices = slices;
	ctx.n_slices = n_slices;
	rc = compute_service(&ctx, svc);

	free(ctx.cands);
	return rc;
}

static int compute_svc_cmp(const void *a, const void *b)
{
	return strcmp(((const struct desired_svc *)a)->id, ((const struct desired_svc *)b)->id);
}

void desired_sort(struct desired_state *state)
{
	if (state->n_svcs)
		qsort(state->svcs, state->n_svcs, sizeof(*state->svcs), compute_svc_cmp);
}

int model_compute(const struct model_objects *sets, size_t n_sets, const struct model_node *node,
		  size_t max_per_service, struct desired_state *out)
{
	return store_compute_sets(sets, n_sets, node, max_per_service, out);
}

void desired_free(struct desired_state *state)
{
	for (size_t i = 0; i < state->n_svcs; i++)
		desired_svc_release(&state->svcs[i]);
	free(state->svcs);
	memset(state, 0, sizeof(*state));
}
