/* The pending set: a full apply would try every desired service port
 * again, a delta only names what changed, so what did not fit is kept here
 * and tried again when room is freed. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sync/state.h"

struct pending_svc {
	struct hmap_node node;
	struct desired_svc d;    /* a copy: the delta it came with is freed */
};

static void pending_free(struct pending_svc *p)
{
	free(p->d.id);
	free(p->d.backends);
	free(p->d.frontends);
	free(p->d.source_ranges);
	free(p);
}

/* *to = a copy of n elements of size at from; false when out of memory. */
static bool copy_array(void *to, const void *from, size_t n, size_t size)
{
	void *copy = n ? malloc(n * size) : NULL;

	*(void **)to = copy;
	if (n && !copy)
		return false;
	if (n)
		memcpy(copy, from, n * size);
	return true;
}

static struct pending_svc *pending_copy(const struct desired_svc *d)
{
	struct pending_svc *p = calloc(1, sizeof(*p));
	bool ok;

	if (!p)
		return NULL;
	p->d = *d;
	p->d.id = strdup(d->id);
	ok = copy_array(&p->d.backends, d->backends, d->n_backends, sizeof(*d->backends));
	ok &= copy_array(&p->d.frontends, d->frontends, d->n_frontends, sizeof(*d->frontends));
	ok &= copy_array(&p->d.source_ranges, d->source_ranges, d->n_source_ranges,
			 sizeof(*d->source_ranges));
	if (!p->d.id || !ok) {
		pending_free(p);
		return NULL;
	}
	return p;
}

void pending_add(struct sync_engine *eng, const struct desired_svc *d)
{
	struct pending_svc *p = pending_copy(d);

	pending_drop(eng, d->id);
	if (!p) {
		log_error("sync", "%s: out of memory; it is tried again at the next full apply",
			  d->id);
		return;
	}
	hmap_put(&eng->pending, &p->node, p->d.id, strlen(p->d.id));
}

void pending_drop(struct sync_engine *eng, const char *id)
{
	struct hmap_node *n = hmap_get(&eng->pending, id, strlen(id));

	if (!n)
		return;
	hmap_remove(&eng->pending, n);
	pending_free(hmap_entry(n, struct pending_svc, node));
}

void pending_retry(struct sync_engine *eng, svc_apply_fn *apply)
{
	struct hmap_node *n, *next;

	for (n = hmap_first(&eng->pending); n; n = next) {
		struct pending_svc *p = hmap_entry(n, struct pending_svc, node);

		next = hmap_next(&eng->pending, n);
		if (apply(eng, &p->d) != 0)
			continue;
		log_info("sync", "%s: programmed now that there is room (or its frontend is free)",
			 p->d.id);
		conflict_forget(eng, p->d.id);
		hmap_remove(&eng->pending, n);
		pending_free(p);
	}
}

size_t pending_count(const struct sync_engine *eng)
{
	return eng->pending.count;
}

void pending_clear(struct sync_engine *eng)
{
	struct hmap_node *n, *next;

	for (n = eng->pending.buckets ? hmap_first(&eng->pending) : NULL; n; n = next) {
		next = hmap_next(&eng->pending, n);
		hmap_remove(&eng->pending, n);
		pending_free(hmap_entry(n, struct pending_svc, node));
	}
}
