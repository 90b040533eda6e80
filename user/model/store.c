/* The store's objects and groups: puts, deletes and relists. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/decode_priv.h"
#include "model/store_priv.h"

static size_t kind_index(enum store_kind kind)
{
	return kind == STORE_SERVICE ? 0 : 1;
}

/* "ns\0name" in the scratch buffer. */
static const char *store_key(struct model_store *st, const char *ns, const char *name,
			     size_t *len)
{
	size_t ns_len = strlen(ns), name_len = strlen(name);
	char *p;

	*len = ns_len + 1 + name_len;
	if (*len + 1 > st->cap_scratch) {
		p = realloc(st->scratch, *len + 1);
		if (!p)
			return NULL;
		st->scratch = p;
		st->cap_scratch = *len + 1;
	}
	memcpy(st->scratch, ns, ns_len + 1);
	memcpy(st->scratch + ns_len + 1, name, name_len + 1);
	return st->scratch;
}

struct model_store *store_new(size_t max_per_service)
{
	struct model_store *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	st->max_per_service = max_per_service;
	st->trigger_floor = INT64_MAX; /* nothing kept until a source asks */
	st->node_name = strdup("");
	st->zone = strdup("");
	if (!st->node_name || !st->zone || hmap_init(&st->objs, 1024) ||
	    hmap_init(&st->groups, 1024)) {
		store_free(st);
		return NULL;
	}
	return st;
}

void group_mark(struct model_store *st, struct store_group *grp)
{
	if (grp->dirty)
		return;
	grp->dirty = true;
	grp->next_dirty = st->dirty;
	st->dirty = grp;
}

void group_mark_all(struct model_store *st)
{
	for (struct hmap_node *n = hmap_first(&st->groups); n; n = hmap_next(&st->groups, n))
		group_mark(st, hmap_entry(n, struct store_group, node));
}

void store_set_max_per_service(struct model_store *st, size_t max_per_service)
{
	if (max_per_service == st->max_per_service)
		return;
	st->max_per_service = max_per_service;
	group_mark_all(st);
}

int store_set_node(struct model_store *st, const char *name, const char *zone)
{
	char *new_name, *new_zone;

	if (strcmp(name, st->node_name) == 0 && strcmp(zone, st->zone) == 0)
		return 0;
	new_name = strdup(name);
	new_zone = strdup(zone);
	if (!new_name || !new_zone) {
		free(new_name);
		free(new_zone);
		return -1;
	}
	free(st->node_name);
	free(st->zone);
	st->node_name = new_name;
	st->zone = new_zone;
	group_mark_all(st);
	return 0;
}

const char *store_node_zone(const struct model_store *st)
{
	return st->zone;
}

/* Services with external frontends depend on the node's addresses and
 * NodePort range (model_compute leaves some of them out). */
static void group_mark_external(struct model_store *st)
{
	for (struct hmap_node *n = hmap_first(&st->groups); n; n = hmap_next(&st->groups, n)) {
		struct store_group *grp = hmap_entry(n, struct store_group, node);

		if (grp->svc && grp->svc->ext)
			group_mark(st, grp);
	}
}

static int store_addr_cmp(const void *a, const void *b)
{
	return addr_compare(a, b);
}

static int store_node_addrs_put(struct model_store *st, const struct ferry_ip *addrs, size_t n)
{
	struct ferry_ip *copy = n ? malloc(n * sizeof(*copy)) : NULL;
	size_t kept = 0;

	if (n && !copy)
		return -1;
	if (n) {
		memcpy(copy, addrs, n * sizeof(*copy));
		qsort(copy, n, sizeof(*copy), store_addr_cmp);
	}
	for (size_t i = 0; i < n; i++)
		if (!kept || !addr_equal(&copy[i], &copy[kept - 1]))
			copy[kept++] = copy[i];
	if (kept == st->n_node_addrs &&
	    (!kept || memcmp(copy, st->node_addrs, kept * sizeof(*copy)) == 0)) {
		free(copy);
		return 0;
	}
	free(st->node_addrs);
	st->node_addrs = copy;
	st->n_node_addrs = kept;
	st->node_addrs_gen++;
	group_mark_external(st);
	return 0;
}

int store_set_node_addrs(struct model_store *st, const struct ferry_ip *addrs, size_t n)
{
	return st->node_addrs_fixed ? 0 : store_node_addrs_put(st, addrs, n);
}

int store_fix_node_addrs(struct model_store *st, const struct ferry_ip *addrs, size_t n)
{
	if (store_node_addrs_put(st, addrs, n) < 0)
		return -1;
	st->node_addrs_fixed = true;
	return 0;
}

const struct ferry_ip *store_node_addrs(const struct model_store *st, size_t *n,
					uint64_t *generation)
{
	*n = st->n_node_addrs;
	if (generation)
		*generation = st->node_addrs_gen;
	return st->node_addrs;
}

void store_set_node_port_range(struct model_store *st, uint16_t lo, uint16_t hi)
{
	if (lo == st->node_port_min && hi == st->node_port_max)
		return;
	st->node_port_min = lo;
	st->node_port_max = hi;
	group_mark_external(st);
}

void store_model_node(const struct model_store *st, struct model_node *node)
{
	*node = (struct model_node){
		.name = st->node_name,
		.zone = st->zone,
		.n_addrs = st->n_node_addrs,
		.addrs = st->node_addrs,
		.node_port_min = st->node_port_min,
		.node_port_max = st->node_port_max,
	};
}

static struct store_group *group_find(struct model_store *st, const char *ns, const char *name)
{
	size_t len;
	const char *key = store_key(st, ns, name, &len);
	struct hmap_node *n = key ? hmap_get(&st->groups, key, len) : NULL;

	return n ? hmap_entry(n, struct store_group, node) : NULL;
}

/* The bytes of a group or slice object with a key of len bytes: from
 * where the key starts (in the struct's tail padding), with the NUL that
 * ends the name. A store holds one per Service and slice: the malloc size
 * class matters. */
static size_t entry_size(size_t key_at, size_t struct_size, size_t len)
{
	return key_at + len + 1 > struct_size ? key_at + len + 1 : struct_size;
}

/* The group of that namespace/name, created empty when new. */
static struct store_group *group_get(struct model_store *st, const char *ns, const char *name)
{
	struct store_group *grp = group_find(st, ns, name);
	const char *key;
	size_t len;

	if (grp)
		return grp;
	key = store_key(st, ns, name, &len);
	grp = key ? calloc(1, entry_size(offsetof(struct store_group, key), sizeof(*grp), len))
		  : NULL;
	if (!grp)
		return NULL;
	memcpy(grp->key, key, len + 1);
	hmap_put(&st->groups, &grp->node, grp->key, len);
	return grp;
}

/* The name in a key ("ns\0name"). */
static char *key_name(char *key)
{
	return key + strlen(key) + 1;
}

void group_clear_svc(struct store_group *grp)
{
	if (grp->svc && !grp->svc_lent) {
		grp->svc->name = NULL; /* the group's key */
		objects_free_service(grp->svc);
		free(grp->svc);
	}
	grp->svc = NULL;
	grp->svc_lent = false;
}

void group_free(struct store_group *grp)
{
	group_clear_svc(grp);
	free(grp->ids);
	free(grp);
}

void group_release(struct model_store *st, struct store_group *grp)
{
	if (grp->svc || grp->slices || grp->n_ids || grp->dirty)
		return;
	hmap_remove(&st->groups, &grp->node);
	group_free(grp);
}

static void obj_unlink(struct model_store *st, struct store_obj *obj)
{
	struct store_group *grp = obj->group;
	struct store_obj **pp;

	if (!grp)
		return;
	/* A group holds few slices (one per 100 endpoints at most, by default). */
	for (pp = &grp->slices; *pp && *pp != obj; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = obj->next;
	obj->next = NULL;
	obj->group = NULL;
	group_mark(st, grp);
}

static void obj_link(struct model_store *st, struct store_obj *obj, struct store_group *grp)
{
	obj->group = grp;
	obj->next = grp->slices;
	grp->slices = obj;
	group_mark(st, grp);
}

void obj_clear(struct store_obj *obj)
{
	if (obj->slice && !obj->lent) {
		obj->slice->name = NULL; /* its key */
		obj->slice->service_name = NULL; /* its group's key */
		objects_free_slice(obj->slice);
		free(obj->slice);
	}
	obj->slice = NULL;
	obj->lent = false;
}

static struct store_obj *obj_find(struct model_store *st, const char *ns, const char *name)
{
	size_t len;
	const char *key = store_key(st, ns, name, &len);
	struct hmap_node *n = key ? hmap_get(&st->objs, key, len) : NULL;

	return n ? hmap_entry(n, struct store_obj, node) : NULL;
}

/* The slice object of that identity, created empty when new. */
static struct store_obj *obj_get(struct model_store *st, const char *ns, const char *name)
{
	struct store_obj *obj = obj_find(st, ns, name);
	size_t len;
	const char *key;

	if (obj)
		return obj;
	key = store_key(st, ns, name, &len);
	obj = key ? calloc(1, entry_size(offsetof(struct store_obj, key), sizeof(*obj), len))
		  : NULL;
	if (!obj)
		return NULL;
	memcpy(obj->key, key, len + 1);
	hmap_put(&st->objs, &obj->node, obj->key, len);
	st->count[kind_index(STORE_SLICE)]++;
	return obj;
}

static void obj_free(struct model_store *st, struct store_obj *obj)
{
	struct store_group *grp = obj->group;

	obj_unlink(st, obj);
	hmap_remove(&st->objs, &obj->node);
	st->count[kind_index(STORE_SLICE)]--;
	obj_clear(obj);
	free(obj);
	if (grp)
		group_release(st, grp);
}

/* What the store keeps of a decoded object: a copy taking its contents
 * (owned), or the lender's object itself. NULL when out of memory. */
static void *obj_hold(const void *o, size_t size, bool lent)
{
	void *copy;

	if (lent)
		return (void *)o;
	copy = malloc(size);
	if (copy)
		memcpy(copy, o, size);
	return copy;
}

/* Puts a Service (taken, or lent), replacing the one of its name. */
static int put_service(struct model_store *st, const struct model_service *svc, bool lent)
{
	struct store_group *grp = group_get(st, svc->ns, svc->name);
	struct model_service *held = grp ? obj_hold(svc, sizeof(*svc), lent) : NULL;

	if (!held) {
		if (grp)
			group_release(st, grp);
		return -1;
	}
	if (!lent) { /* its name is the group's (one copy of each name) */
		free(held->name);
		held->name = key_name(grp->key);
	}
	if (!grp->svc)
		st->count[kind_index(STORE_SERVICE)]++;
	group_clear_svc(grp);
	grp->svc = held;
	grp->svc_lent = lent;
	grp->svc_seen = true;
	group_mark(st, grp);
	return 0;
}

int store_put_service(struct model_store *st, struct model_service *svc)
{
	int rc = put_service(st, svc, false);

	if (rc < 0)
		objects_free_service(svc);
	memset(svc, 0, sizeof(*svc));
	return rc;
}

int store_lend_service(struct model_store *st, const struct model_service *svc)
{
	return put_service(st, svc, true);
}

void store_set_trigger_floor(struct model_store *st, int64_t ns)
{
	st->trigger_floor = ns;
}

/* Out of memory loses the measurement only, never the change. */
static void store_trigger(struct model_store *st, int64_t ns, int64_t old_ns)
{
	int64_t *p;
	size_t cap;

	if (ns <= st->trigger_floor || ns <= old_ns)
		return;
	if (st->n_triggers == st->cap_triggers) {
		cap = st->cap_triggers ? st->cap_triggers * 2 : 16;
		p = realloc(st->triggers, cap * sizeof(*p));
		if (!p)
			return;
		st->triggers = p;
		st->cap_triggers = cap;
	}
	st->triggers[st->n_triggers++] = ns;
}

int64_t *store_take_triggers(struct model_store *st, size_t *n)
{
	int64_t *taken = st->triggers;

	*n = st->n_triggers;
	st->triggers = NULL;
	st->n_triggers = st->cap_triggers = 0;
	return taken;
}

static int put_slice(struct model_store *st, const struct model_slice *slice, bool lent)
{
	struct store_obj *obj = obj_get(st, slice->ns, slice->name);
	struct store_group *grp = obj ? group_get(st, slice->ns, slice->service_name) : NULL;
	struct model_slice *held = grp ? obj_hold(slice, sizeof(*slice), lent) : NULL;
	struct store_group *old;

	if (!held) {
		if (obj && !obj->slice)
			obj_free(st, obj);
		if (grp)
			group_release(st, grp);
		return -1;
	}
	old = obj->group;
	store_trigger(st, slice->trigger_ns, obj->slice ? obj->slice->trigger_ns : 0);
	obj_unlink(st, obj);
	obj_clear(obj);
	if (!lent) { /* names are the keys' (the group outlives its slices) */
		free(held->name); /* and service_name with it */
		held->name = key_name(obj->key);
		held->service_name = key_name(grp->key);
	}
	obj->slice = held;
	obj->lent = lent;
	obj->seen = true;
	obj_link(st, obj, grp);
	if (old && old != grp)
		group_release(st, old);
	return 0;
}

int store_put_slice(struct model_store *st, struct model_slice *slice)
{
	int rc = put_slice(st, slice, false);

	if (rc < 0)
		objects_free_slice(slice);
	memset(slice, 0, sizeof(*slice));
	return rc;
}

int store_lend_slice(struct model_store *st, const struct model_slice *slice)
{
	return put_slice(st, slice, true);
}

bool store_relend_service(struct model_store *st, const struct model_service *svc)
{
	struct store_group *grp = group_find(st, svc->ns, svc->name);

	if (!grp || !grp->svc_lent)
		return false;
	grp->svc = (struct model_service *)svc;
	return true;
}

bool store_relend_slice(struct model_store *st, const struct model_slice *slice)
{
	struct store_obj *obj = obj_find(st, slice->ns, slice->name);

	if (!obj || !obj->lent)
		return false;
	obj->slice = (struct model_slice *)slice;
	return true;
}

const struct model_service *store_service(struct model_store *st, const char *ns,
					  const char *name)
{
	struct store_group *grp = group_find(st, ns, name);

	return grp ? grp->svc : NULL;
}

const struct model_slice *store_slice(struct model_store *st, const char *ns, const char *name)
{
	struct store_obj *obj = obj_find(st, ns, name);

	return obj ? obj->slice : NULL;
}

static bool delete_service(struct model_store *st, const char *ns, const char *name)
{
	struct store_group *grp = group_find(st, ns, name);

	if (!grp || !grp->svc)
		return false;
	group_clear_svc(grp);
	st->count[kind_index(STORE_SERVICE)]--;
	group_mark(st, grp);
	return true;
}

bool store_delete(struct model_store *st, enum store_kind kind, const char *ns, const char *name)
{
	struct store_obj *obj;

	if (kind == STORE_SERVICE)
		return delete_service(st, ns, name);
	obj = obj_find(st, ns, name);
	if (obj)
		obj_free(st, obj);
	return obj != NULL;
}

void store_relist_begin(struct model_store *st, enum store_kind kind)
{
	struct hmap *map = kind == STORE_SERVICE ? &st->groups : &st->objs;

	for (struct hmap_node *n = hmap_first(map); n; n = hmap_next(map, n)) {
		if (kind == STORE_SERVICE)
			hmap_entry(n, struct store_group, node)->svc_seen = false;
		else
			hmap_entry(n, struct store_obj, node)->seen = false;
	}
}

void store_keep(struct model_store *st, enum store_kind kind, const char *ns, const char *name)
{
	struct store_group *grp;
	struct store_obj *obj;

	if (kind == STORE_SERVICE && (grp = group_find(st, ns, name)))
		grp->svc_seen = true;
	else if (kind == STORE_SLICE && (obj = obj_find(st, ns, name)))
		obj->seen = true;
}

/* The Services no relisted object kept are deleted (their groups stay
 * until flushed). */
static size_t relist_end_services(struct model_store *st)
{
	size_t gone = 0;

	for (struct hmap_node *n = hmap_first(&st->groups); n; n = hmap_next(&st->groups, n)) {
		struct store_group *grp = hmap_entry(n, struct store_group, node);

		if (grp->svc && !grp->svc_seen) {
			group_clear_svc(grp);
			st->count[kind_index(STORE_SERVICE)]--;
			group_mark(st, grp);
			gone++;
		}
	}
	return gone;
}

size_t store_relist_end(struct model_store *st, enum store_kind kind)
{
	struct hmap_node *n, *next;
	size_t gone = 0;

	if (kind == STORE_SERVICE)
		return relist_end_services(st);
	for (n = hmap_first(&st->objs); n; n = next) {
		struct store_obj *obj = hmap_entry(n, struct store_obj, node);

		next = hmap_next(&st->objs, n);
		if (!obj->seen) {
			obj_free(st, obj);
			gone++;
		}
	}
	return gone;
}

size_t store_count(const struct model_store *st, enum store_kind kind)
{
	return st->count[kind_index(kind)];
}

bool store_dirty(const struct model_store *st)
{
	return st->dirty != NULL;
}
