/* Flushing the store: the service ports of the touched groups, and the IDs
 * their last flush had that are gone now. */
#define _GNU_SOURCE /* asprintf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "model/decode_priv.h"
#include "model/store_priv.h"

/* The group's Service ports, appended to out. */
static int flush_compute(struct model_store *st, const struct store_group *grp,
			 struct desired_state *out)
{
	struct model_node node;
	size_t n = 0;
	void *p;

	if (!grp->svc)
		return 0;
	store_model_node(st, &node);
	for (const struct store_obj *o = grp->slices; o; o = o->next) {
		if (n == st->cap_vec) {
			p = realloc(st->vec, (st->cap_vec ? st->cap_vec * 2 : 16) * sizeof(*st->vec));
			if (!p)
				return -1;
			st->vec = p;
			st->cap_vec = st->cap_vec ? st->cap_vec * 2 : 16;
		}
		st->vec[n++] = o->slice;
	}
	return model_compute_service(grp->svc, st->vec, n, &node, st->max_per_service,
				     out);
}

/* The length of what every ID of grp's service ports starts with,
 * "namespace/name:" (model_compute's IDs: "ns/name:port/TCP/v4"), which the
 * group keeps only once: in its key. */
static size_t ids_prefix_len(const struct store_group *grp)
{
	size_t ns_len = strlen(grp->key);

	return ns_len + 1 + strlen(grp->key + ns_len + 1) + 1;
}

static bool ids_contain(const struct desired_svc *svcs, size_t n, size_t prefix,
			const char *tail)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(svcs[i].id + prefix, tail) == 0)
			return true;
	return false;
}

/* The IDs of svcs[0..n) without their prefix, back to back, each
 * NUL-terminated, for the group to keep (one block: a Service has one port
 * or a few); NULL when n is 0. */
static int flush_ids_pack(const struct store_group *grp, const struct desired_svc *svcs,
			  size_t n, char **out)
{
	size_t prefix = ids_prefix_len(grp), len = 0;
	char *p;

	*out = NULL;
	for (size_t i = 0; i < n; i++)
		len += strlen(svcs[i].id + prefix) + 1;
	if (!n)
		return 0;
	p = *out = malloc(len);
	if (!p)
		return -1;
	for (size_t i = 0; i < n; i++) {
		len = strlen(svcs[i].id + prefix) + 1;
		memcpy(p, svcs[i].id + prefix, len);
		p += len;
	}
	return 0;
}

/* The group's IDs that svcs[0..n) no longer has, written whole to removed
 * (which has room for every ID of the dirty groups). */
static int flush_removed(const struct store_group *grp, const struct desired_svc *svcs, size_t n,
			 struct desired_delta *delta)
{
	size_t prefix = ids_prefix_len(grp), ns_len = strlen(grp->key);
	const char *tail = grp->ids;

	for (size_t i = 0; i < grp->n_ids; i++, tail += strlen(tail) + 1) {
		if (ids_contain(svcs, n, prefix, tail))
			continue;
		if (asprintf(&delta->removed[delta->n_removed], "%s/%s:%s", grp->key,
			     grp->key + ns_len + 1, tail) < 0)
			return -1;
		delta->n_removed++;
	}
	return 0;
}

static size_t flush_removed_max(const struct model_store *st)
{
	size_t n = 0;

	for (const struct store_group *g = st->dirty; g; g = g->next_dirty)
		n += g->n_ids;
	return n;
}

/* The i-th dirty group's service ports; NULL when the flush has none at
 * all (headless Services only), where an offset from NULL is undefined. */
static struct desired_svc *group_svcs(const struct desired_delta *out, const size_t *start,
				      size_t i)
{
	return out->set.svcs ? &out->set.svcs[start[i]] : NULL;
}

/* The IDs each group will keep, new_ids[i] for the i-th dirty group, and
 * those it drops into out->removed; made for every group before any is
 * committed, so that memory running out leaves every group as it was (the
 * copies made are freed: new_ids here, out->removed by delta_free). */
static int flush_prepare(const struct model_store *st, struct desired_delta *out,
			 const size_t *start, char **new_ids)
{
	size_t i = 0;

	for (const struct store_group *grp = st->dirty; grp; grp = grp->next_dirty, i++) {
		const struct desired_svc *svcs = group_svcs(out, start, i);
		size_t n = start[i + 1] - start[i];

		if (flush_ids_pack(grp, svcs, n, &new_ids[i]) == 0 &&
		    flush_removed(grp, svcs, n, out) == 0)
			continue;
		for (size_t j = 0; j <= i; j++)
			free(new_ids[j]);
		return -1;
	}
	return 0;
}

int store_flush(struct model_store *st, struct desired_delta *out)
{
	struct store_group *grp, *next;
	size_t *start, i = 0, n_groups = 0;
	char **new_ids;

	memset(out, 0, sizeof(*out));
	for (grp = st->dirty; grp; grp = grp->next_dirty)
		n_groups++;
	start = calloc(n_groups + 1, sizeof(*start));
	new_ids = calloc(n_groups + 1, sizeof(*new_ids));
	out->removed = calloc(flush_removed_max(st) + 1, sizeof(*out->removed));
	if (!start || !new_ids || !out->removed)
		goto fail;
	/* Compute every group and copy the IDs it will keep or drop first: memory
	 * running out leaves the store as it was, and no group's ports go out
	 * without the group remembering them (it could never remove them). */
	for (grp = st->dirty; grp; grp = grp->next_dirty) {
		start[i++] = out->set.n_svcs;
		if (flush_compute(st, grp, &out->set) < 0)
			goto fail;
	}
	start[i] = out->set.n_svcs;
	if (flush_prepare(st, out, start, new_ids) < 0)
		goto fail;
	for (i = 0, grp = st->dirty; grp; grp = next, i++) {
		next = grp->next_dirty;
		free(grp->ids);
		grp->ids = new_ids[i];
		grp->n_ids = (uint32_t)(start[i + 1] - start[i]);
		grp->dirty = false;
		grp->next_dirty = NULL;
		group_release(st, grp);
	}
	st->dirty = NULL;
	free(start);
	free(new_ids);
	return 0;
fail:
	free(start);
	free(new_ids);
	delta_free(out);
	log_error("model", "out of memory computing the changed services");
	return -1;
}

int store_compute_all(struct model_store *st, struct desired_state *out)
{
	struct desired_delta delta;

	/* Every group is touched: the flush of all of them is the full state. */
	group_mark_all(st);
	if (store_flush(st, &delta) < 0)
		return -1;
	*out = delta.set;
	memset(&delta.set, 0, sizeof(delta.set));
	delta_free(&delta);
	desired_sort(out);
	return 0;
}

void delta_free(struct desired_delta *delta)
{
	desired_free(&delta->set);
	for (size_t i = 0; i < delta->n_removed; i++)
		free(delta->removed[i]);
	free(delta->removed);
	memset(delta, 0, sizeof(*delta));
}

void store_free(struct model_store *st)
{
	struct hmap_node *n, *next;

	if (!st)
		return;
	for (n = st->objs.buckets ? hmap_first(&st->objs) : NULL; n; n = next) {
		struct store_obj *obj = hmap_entry(n, struct store_obj, node);

		next = hmap_next(&st->objs, n);
		obj_clear(obj);
		free(obj);
	}
	for (n = st->groups.buckets ? hmap_first(&st->groups) : NULL; n; n = next) {
		next = hmap_next(&st->groups, n);
		group_free(hmap_entry(n, struct store_group, node));
	}
	hmap_free(&st->objs);
	hmap_free(&st->groups);
	free(st->vec);
	free(st->triggers);
	free(st->scratch);
	free(st->node_name);
	free(st->zone);
	free(st->node_addrs);
	free(st);
}
