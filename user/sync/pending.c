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
	free(p);
}

static struct pending_svc *pending_copy(const struct desired_svc *d)
{
	struct pending_svc *p = calloc(1, sizeof(*p));
	size_t size = d->n_backends * sizeof(*d->backends);

	if (!p)
		return NULL;
	p->d = *d;
	p->d.id = strdup(d->id);
	p->d.backends = size ? malloc(size) : NULL;
	if (!p->d.id || (size && !p->d.backends)) {
		pending_free(p);
		return NULL;
	}
	if (size)
		memcpy(p->d.backends, d->backends, size);
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
		log_info("sync", "%s: programmed now that there is room", p->d.id);
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
