/* One read of a file merged with what the file held before, by identity
 * (kind, namespace, name): while a document of the file does not parse,
 * nothing that came from the file is deleted; an object that does not decode
 * keeps its last good version. */
#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"
#include "common/log.h"
#include "source/file_priv.h"

/* An identity the read has. */
struct merge_entry {
	struct hmap_node node;
	bool good;            /* in a good object (else only in invalid ones) */
	bool kept;            /* its last good version was kept */
};

struct merge {
	struct hmap map;
	struct merge_entry *entries;
	size_t n_entries;
	char *keys;           /* the good objects' keys, back to back */
	char *scratch;        /* the key looked up */
	size_t kept;
};

size_t file_key_len(const char *ns, const char *name)
{
	return 1 + strlen(ns) + 1 + strlen(name);
}

size_t file_key(char *buf, char kind, const char *ns, const char *name)
{
	size_t ns_len = strlen(ns) + 1, name_len = strlen(name);

	buf[0] = kind;
	memcpy(buf + 1, ns, ns_len);
	memcpy(buf + 1 + ns_len, name, name_len);
	return 1 + ns_len + name_len;
}

static struct merge_entry *merge_get(const struct merge *m, const char *key, size_t len)
{
	struct hmap_node *node = m->map.buckets ? hmap_get(&m->map, key, len) : NULL;

	return node ? hmap_entry(node, struct merge_entry, node) : NULL;
}

static void merge_put(struct merge *m, const char *key, size_t len, bool good)
{
	struct merge_entry *e = merge_get(m, key, len);

	if (e) {
		e->good |= good;
		return;
	}
	e = &m->entries[m->n_entries++];
	e->good = good;
	hmap_put(&m->map, &e->node, key, len);
}

/* A Node has no namespace; model_object_ref names it "default". */
#define MERGE_NODE_NS "default"

static size_t merge_n_objects(const struct model_objects *objs)
{
	return objs->n_services + objs->n_slices + objs->n_nodes;
}

/* The length of the key of objs' object i: Services, slices, then Nodes. */
static size_t merge_key_len(const struct model_objects *objs, size_t i)
{
	if (i < objs->n_services)
		return file_key_len(objs->services[i].ns, objs->services[i].name);
	i -= objs->n_services;
	if (i < objs->n_slices)
		return file_key_len(objs->slices[i].ns, objs->slices[i].name);
	i -= objs->n_slices;
	return file_key_len(MERGE_NODE_NS, objs->nodes[i].name);
}

static size_t merge_keys_total(const struct model_objects *objs)
{
	size_t len = 0;

	for (size_t i = 0; i < merge_n_objects(objs); i++)
		len += merge_key_len(objs, i);
	return len;
}

static size_t merge_keys_longest(const struct model_objects *objs)
{
	size_t len = 0;

	for (size_t i = 0; i < merge_n_objects(objs); i++)
		if (merge_key_len(objs, i) > len)
			len = merge_key_len(objs, i);
	return len;
}

/* A good object's identity, its key written at *p. */
static void merge_put_good(struct merge *m, char **p, char kind, const char *ns,
			   const char *name)
{
	size_t len = file_key(*p, kind, ns, name);

	merge_put(m, *p, len, true);
	*p += len;
}

/* Every identity of the read into the map. Returns -1 when out of memory. */
static int merge_index(struct merge *m, const struct file_read *rd)
{
	const struct model_objects *objs = &rd->objs;
	size_t n = merge_n_objects(objs) + rd->n_invalid;
	char *p;

	m->entries = calloc(n + 1, sizeof(*m->entries));
	m->keys = p = malloc(merge_keys_total(objs) + 1);
	if (!m->entries || !m->keys || hmap_init(&m->map, n) < 0)
		return -1;
	for (size_t i = 0; i < objs->n_services; i++)
		merge_put_good(m, &p, 'S', objs->services[i].ns, objs->services[i].name);
	for (size_t i = 0; i < objs->n_slices; i++)
		merge_put_good(m, &p, 'E', objs->slices[i].ns, objs->slices[i].name);
	for (size_t i = 0; i < objs->n_nodes; i++)
		merge_put_good(m, &p, 'N', MERGE_NODE_NS, objs->nodes[i].name);
	for (size_t i = 0; i < rd->n_invalid; i++)
		if (rd->invalid[i].key)
			merge_put(m, rd->invalid[i].key, rd->invalid[i].key_len, false);
	return 0;
}

/* Room for `more` elements of size elem after the n of *arr. */
static int merge_room(void **arr, size_t n, size_t *cap, size_t more, size_t elem)
{
	void *p;

	if (n + more <= *cap)
		return 0;
	p = realloc(*arr, (n + more) * elem);
	if (!p)
		return -1;
	*arr = p;
	*cap = n + more;
	return 0;
}

/* Room in objs for every object of old, and a scratch buffer for any of
 * their keys. Returns -1 when out of memory. */
static int merge_reserve(struct merge *m, struct model_objects *objs,
			 const struct model_objects *old)
{
	m->scratch = malloc(merge_keys_longest(old) + 1);
	if (!m->scratch ||
	    merge_room((void **)&objs->services, objs->n_services, &objs->cap_services,
		       old->n_services, sizeof(*objs->services)) < 0 ||
	    merge_room((void **)&objs->slices, objs->n_slices, &objs->cap_slices,
		       old->n_slices, sizeof(*objs->slices)) < 0 ||
	    merge_room((void **)&objs->nodes, objs->n_nodes, &objs->cap_nodes,
		       old->n_nodes, sizeof(*objs->nodes)) < 0)
		return -1;
	return 0;
}

/* Whether the object of before with this identity stays. */
static bool merge_keeps(struct merge *m, bool keep_old, char kind, const char *ns,
			const char *name)
{
	size_t len = file_key(m->scratch, kind, ns, name);
	struct merge_entry *e = merge_get(m, m->scratch, len);

	if (e ? e->good : !keep_old)
		return false;
	if (e)
		e->kept = true;
	m->kept++;
	return true;
}

/* A kept object keeps its item's hash (file_load's records): the same
 * bytes next time are not decoded again. Out of memory loses only that. */
static void merge_note(struct file_read *rd, char kind, size_t old_index, size_t index)
{
	struct file_item it = { .kind = kind, .kept = true, .old_index = old_index,
				.index = index };

	file_read_note(rd, &it);
}

static void merge_walk(struct merge *m, struct file_read *rd, struct model_objects *old)
{
	struct model_objects *objs = &rd->objs;

	for (size_t i = 0; i < old->n_services; i++) {
		struct model_service *svc = &old->services[i];

		if (!merge_keeps(m, rd->keep_old, 'S', svc->ns, svc->name))
			continue;
		merge_note(rd, 'S', i, objs->n_services);
		objs->services[objs->n_services++] = *svc;
		memset(svc, 0, sizeof(*svc));
	}
	for (size_t i = 0; i < old->n_slices; i++) {
		struct model_slice *slice = &old->slices[i];

		if (!merge_keeps(m, rd->keep_old, 'E', slice->ns, slice->name))
			continue;
		merge_note(rd, 'E', i, objs->n_slices);
		objs->slices[objs->n_slices++] = *slice;
		memset(slice, 0, sizeof(*slice));
	}
	for (size_t i = 0; i < old->n_nodes; i++) {
		struct model_node *node = &old->nodes[i];

		if (!merge_keeps(m, rd->keep_old, 'N', MERGE_NODE_NS, node->name))
			continue;
		objs->nodes[objs->n_nodes++] = *node;
		memset(node, 0, sizeof(*node));
	}
}

/* What became of an invalid object. */
static const char *merge_fate(const struct merge *m, const struct file_invalid *inv)
{
	const struct merge_entry *e;

	if (!inv->key)
		return "skipped, and with no name to match it by, nothing that came from this "
		       "file is deleted until it is fixed";
	e = merge_get(m, inv->key, inv->key_len);
	return e && e->kept ? "keeping its last good version" : "skipped";
}

static void merge_log(const struct merge *m, const struct file_read *rd)
{
	for (size_t i = 0; i < rd->n_invalid; i++)
		log_warn("source", "file %s %s; %s", rd->path, rd->invalid[i].msg,
			 merge_fate(m, &rd->invalid[i]));
	if (rd->n_failed)
		log_warn("source", "file %s: %zu document%s not parse: nothing that came from "
			 "this file is deleted until %s (objects kept from before: %zu)",
			 rd->path, rd->n_failed, rd->n_failed == 1 ? " does" : "s do",
			 rd->n_failed == 1 ? "it does" : "they do", m->kept);
}

int file_merge(struct file_read *rd, struct model_objects *old)
{
	struct merge m = { 0 };
	int rc = 0;

	if ((rd->keep_old || rd->n_invalid) && merge_n_objects(old)) {
		rc = merge_index(&m, rd) < 0 || merge_reserve(&m, &rd->objs, old) < 0 ? -1 : 0;
		if (rc == 0)
			merge_walk(&m, rd, old);
	}
	if (rc == 0)
		merge_log(&m, rd);
	hmap_free(&m.map);
	free(m.entries);
	free(m.keys);
	free(m.scratch);
	return rc;
}
