/* The file source's objects lent to the model store, one change at a time:
 * a load puts there the objects it decoded and deletes those it dropped, so
 * the flush recomputes only their Services. The store refers to the
 * source's objects (one copy of each), and follows those a load moved. An
 * identity defined more than once (in several files or documents) is
 * counted apart (src->dups); the store gets its last definition in file
 * order. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "source/file_priv.h"

/* The name pointer of the object the store holds under that identity (its
 * holder's: names are the objects' own copies), NULL when none. */
static const char *store_lent_name(struct file_source *src, char kind, const char *ns,
				   const char *name)
{
	const struct model_service *svc;
	const struct model_slice *slice;

	if (kind == 'S') {
		svc = store_service(src->store, ns, name);
		return svc ? svc->name : NULL;
	}
	slice = store_slice(src->store, ns, name);
	return slice ? slice->name : NULL;
}

static void store_lend(struct file_source *src, char kind, const void *obj)
{
	const struct model_service *svc = obj;
	const struct model_slice *slice = obj;
	int rc = kind == 'S' ? store_lend_service(src->store, svc)
			     : store_lend_slice(src->store, slice);

	if (rc < 0)
		log_error("source", "out of memory: %s %s/%s is not programmed",
			  kind == 'S' ? "Service" : "EndpointSlice", kind == 'S' ? svc->ns : slice->ns,
			  kind == 'S' ? svc->name : slice->name);
}

/* The entry of an identity defined more than once; created (with no holder)
 * when create. NULL when there is none, or out of memory. */
static struct file_dup *dup_get(struct file_source *src, char kind, const char *ns,
				const char *name, bool create)
{
	size_t len = file_key_len(ns, name);
	char *key = malloc(len);
	struct hmap_node *n;
	struct file_dup *d = NULL;

	if (!key)
		return NULL;
	file_key(key, kind, ns, name);
	n = src->dups.count ? hmap_get(&src->dups, key, len) : NULL;
	if (n)
		d = hmap_entry(n, struct file_dup, node);
	else if (create && (d = calloc(1, sizeof(*d) + len + 1))) { /* name NUL-ended */
		d->key_len = len;
		memcpy(d->key, key, len);
		hmap_put(&src->dups, &d->node, d->key, len);
	}
	free(key);
	return d;
}

static void dup_touch(struct file_source *src, struct file_dup *d)
{
	if (d->touched)
		return;
	d->touched = true;
	d->next_touched = src->touched;
	src->touched = d;
}

/* An object of the source is gone (it is freed next): the store lets go of
 * it at once, and a touched identity defined more than once gets its last
 * remaining definition in file_store_resolve. */
static void store_drop(struct file_source *src, char kind, const char *ns, const char *name)
{
	struct file_dup *d = src->dups.count ? dup_get(src, kind, ns, name, false) : NULL;

	if (d) {
		d->holders--;
		dup_touch(src, d);
	}
	if (store_lent_name(src, kind, ns, name) == name)
		store_delete(src->store, kind == 'S' ? STORE_SERVICE : STORE_SLICE, ns, name);
}

/* A new object of the source. */
static void store_add(struct file_source *src, char kind, const void *obj, const char *ns,
		      const char *name)
{
	struct file_dup *d = src->dups.count ? dup_get(src, kind, ns, name, false) : NULL;

	if (!d && !store_lent_name(src, kind, ns, name)) {
		store_lend(src, kind, obj);
		return;
	}
	if (!d && (d = dup_get(src, kind, ns, name, true)))
		d->holders = 1; /* the one the store has */
	if (!d) {
		log_error("source", "out of memory: %s/%s may not be the last definition", ns, name);
		store_lend(src, kind, obj);
		return;
	}
	d->holders++;
	dup_touch(src, d);
}

void file_store_drop(struct file_source *src, const struct model_objects *old,
		     const struct file_change *ch)
{
	for (size_t at = 0; file_change_next_dropped(ch, &at); at++) {
		size_t i = at - ch->n_old_svc;

		/* (one merge kept without a note is emptied: no name) */
		if (at < ch->n_old_svc && old->services[at].name)
			store_drop(src, 'S', old->services[at].ns, old->services[at].name);
		else if (at >= ch->n_old_svc && old->slices[i].name)
			store_drop(src, 'E', old->slices[i].ns, old->slices[i].name);
	}
}

/* The store follows an object a load moved (carried over, or kept): when
 * the identity has one definition, the store's is this one; one defined
 * more than once is resolved again (file_store_resolve). */
static void store_follow(struct file_source *src, char kind, const void *obj, const char *ns,
			 const char *name)
{
	struct file_dup *d = src->dups.count ? dup_get(src, kind, ns, name, false) : NULL;

	if (d)
		dup_touch(src, d);
	else if (kind == 'S')
		store_relend_service(src->store, obj);
	else
		store_relend_slice(src->store, obj);
}

void file_store_add(struct file_source *src, const struct model_objects *objs,
		    const struct file_read *rd, const struct file_change *ch)
{
	for (size_t i = 0; !ch->in_place && i < objs->n_services; i++)
		if (!file_change_is_fresh(ch, i) && objs->services[i].name)
			store_follow(src, 'S', &objs->services[i], objs->services[i].ns,
				     objs->services[i].name);
	for (size_t i = 0; !ch->in_place && i < objs->n_slices; i++)
		if (!file_change_is_fresh(ch, objs->n_services + i) && objs->slices[i].name)
			store_follow(src, 'E', &objs->slices[i], objs->slices[i].ns,
				     objs->slices[i].name);
	for (size_t i = 0; i < ch->n_fresh; i++) {
		const struct file_item *it = &rd->items[ch->fresh[i]];

		if (it->kind == 'S')
			store_add(src, 'S', &objs->services[it->index], objs->services[it->index].ns,
				  objs->services[it->index].name);
		else
			store_add(src, 'E', &objs->slices[it->index], objs->slices[it->index].ns,
				  objs->slices[it->index].name);
	}
}

void file_store_drop_all(struct file_source *src, const struct model_objects *objs)
{
	for (size_t i = 0; i < objs->n_services; i++)
		if (objs->services[i].name)
			store_drop(src, 'S', objs->services[i].ns, objs->services[i].name);
	for (size_t i = 0; i < objs->n_slices; i++)
		if (objs->slices[i].name)
			store_drop(src, 'E', objs->slices[i].ns, objs->slices[i].name);
}

/* A touched identity's holder, counted; the last one found wins. */
static void resolve_see(struct file_source *src, char kind, const void *obj, const char *ns,
			const char *name)
{
	struct file_dup *d = dup_get(src, kind, ns, name, false);

	if (d && d->touched) {
		d->holders++;
		d->last = obj;
	}
}

/* Every object of every file, in order, counted by the touched entries. */
static void resolve_walk(struct file_source *src)
{
	for (struct file_dup *d = src->touched; d; d = d->next_touched) {
		d->holders = 0;
		d->last = NULL;
	}
	for (size_t c = 0; c < src->n_cache; c++) {
		const struct model_objects *o = &src->cache[c].objs;

		for (size_t i = 0; i < o->n_services; i++)
			resolve_see(src, 'S', &o->services[i], o->services[i].ns, o->services[i].name);
		for (size_t i = 0; i < o->n_slices; i++)
			resolve_see(src, 'E', &o->slices[i], o->slices[i].ns, o->slices[i].name);
	}
}

/* The store gets the last definition of d (none: the identity goes). */
static void resolve_one(struct file_source *src, struct file_dup *d)
{
	char kind = d->key[0];
	const char *ns = d->key + 1, *name = ns + strlen(ns) + 1;
	const void *held = kind == 'S' ? (const void *)store_service(src->store, ns, name)
				       : (const void *)store_slice(src->store, ns, name);

	/* (held is compared, never read: it may be an object a load moved) */
	if (!d->last)
		store_delete(src->store, kind == 'S' ? STORE_SERVICE : STORE_SLICE, ns, name);
	else if (held != d->last)
		store_lend(src, kind, d->last);
	if (d->holders > 1 && kind == 'S')
		log_warn("source", "Service %s/%s is defined more than once: the last one is used",
			 ns, name);
}

void file_store_resolve(struct file_source *src)
{
	struct file_dup *d, *next;

	if (!src->touched)
		return;
	resolve_walk(src);
	for (d = src->touched; d; d = next) {
		next = d->next_touched;
		resolve_one(src, d);
		d->touched = false;
		d->next_touched = NULL;
		if (d->holders <= 1) {
			hmap_remove(&src->dups, &d->node);
			free(d);
		}
	}
	src->touched = NULL;
}

void file_store_free(struct file_source *src)
{
	struct hmap_node *n, *next;

	store_free(src->store);
	src->store = NULL;
	for (n = src->dups.buckets ? hmap_first(&src->dups) : NULL; n; n = next) {
		next = hmap_next(&src->dups, n);
		free(hmap_entry(n, struct file_dup, node));
	}
	hmap_free(&src->dups);
	src->touched = NULL;
}
