/* Documents -> model objects: v1 Lists flattened, empty documents skipped,
 * other kinds ignored; documents that do not parse logged, invalid objects
 * kept aside with their identity for file_merge. A document's items come
 * before the document: they are held apart (pending) until its end. */
#define _GNU_SOURCE /* asprintf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "model/decode_priv.h"
#include "source/file_priv.h"

/* Sets inv's key to the identity of obj, NULL when it has none. Returns -1
 * when out of memory. */
static int file_objects_key(const cJSON *obj, struct file_invalid *inv)
{
	struct model_ref ref;

	if (!model_object_ref(obj, &ref))
		return 0;
	inv->key_len = file_key_len(ref.ns, ref.name);
	inv->key = malloc(inv->key_len);
	if (!inv->key)
		return -1;
	file_key(inv->key, ref.kind[0], ref.ns, ref.name);
	return 0;
}

static int file_objects_grow(struct file_read *rd)
{
	size_t cap = rd->cap_invalid ? rd->cap_invalid * 2 : 16;
	struct file_invalid *p;

	if (rd->n_invalid < rd->cap_invalid)
		return 0;
	p = realloc(rd->invalid, cap * sizeof(*p));
	if (!p)
		return -1;
	rd->invalid = p;
	rd->cap_invalid = cap;
	return 0;
}

/* Notes an object that does not decode. One without an identity could be
 * any object of before, so then, as when memory runs out, the read keeps
 * everything of before. */
static void file_objects_invalid(struct file_read *rd, const cJSON *obj, int doc, int item,
				 const char *why)
{
	struct file_invalid inv = { 0 };
	int rc = item ? asprintf(&inv.msg, "document %d item %d: %s", doc, item, why)
		      : asprintf(&inv.msg, "document %d: %s", doc, why);

	if (rc < 0)
		inv.msg = NULL;
	if (rc < 0 || file_objects_key(obj, &inv) < 0 || file_objects_grow(rd) < 0) {
		log_error("source", "file %s: out of memory", rd->path);
		free(inv.msg);
		free(inv.key);
		rd->keep_old = true;
		return;
	}
	rd->pending_keep_old |= !inv.key;
	rd->invalid[rd->n_invalid++] = inv;
}

/* Appends n elements of size sz from src to *dst (n_dst, cap_dst). */
static int file_objects_append(void **dst, size_t *n_dst, size_t *cap_dst, const void *src,
			       size_t n, size_t sz)
{
	void *p;

	if (!n)
		return 0;
	if (*n_dst + n > *cap_dst) {
		p = realloc(*dst, (*n_dst + n) * sz);
		if (!p)
			return -1;
		*dst = p;
		*cap_dst = *n_dst + n;
	}
	memcpy((char *)*dst + *n_dst * sz, src, n * sz);
	*n_dst += n;
	return 0;
}

int file_read_note(struct file_read *rd, const struct file_item *it)
{
	size_t cap = rd->cap_items ? rd->cap_items * 2 : 64;
	struct file_item *p;

	if (rd->n_items == rd->cap_items) {
		p = realloc(rd->items, cap * sizeof(*p));
		if (!p)
			return -1;
		rd->items = p;
		rd->cap_items = cap;
	}
	rd->items[rd->n_items++] = *it;
	return 0;
}

/* An object whose origin could not be noted (out of memory) is not taken,
 * and the read keeps everything of before, as when an object has no name. */
static void file_objects_unnoted(struct file_read *rd, const struct file_item *it)
{
	struct model_objects *p = &rd->pending;

	log_error("source", "file %s: out of memory", rd->path);
	if (it->kind == 'S')
		objects_free_service(&p->services[--p->n_services]);
	else
		objects_free_slice(&p->slices[--p->n_slices]);
	rd->pending_keep_old = true;
}

/* The hash of a parsed value (a YAML item or document, a JSON document):
 * its types, keys and values in order; *size counts its nodes and bytes. */
static uint64_t file_tree_hash(const cJSON *v, uint64_t h, size_t *size)
{
	for (; v; v = v->next) {
		int type = v->type & 0xff;

		h = file_hash_more(h, &type, sizeof(type));
		if (v->string)
			h = file_hash_more(h, v->string, strlen(v->string) + 1);
		if (v->valuestring)
			h = file_hash_more(h, v->valuestring, strlen(v->valuestring) + 1);
		else if (cJSON_IsNumber(v))
			h = file_hash_more(h, &v->valuedouble, sizeof(v->valuedouble));
		if (v->child)
			h = file_hash_more(file_tree_hash(v->child, h, size), "]", 1);
		*size += 1 + (v->string ? strlen(v->string) : 0) +
			 (v->valuestring ? strlen(v->valuestring) : 0);
	}
	return h;
}

/* Into the pending objects; what a Service or slice came from is noted. An
 * object parsed the same as one of before (a YAML item, a document) is
 * carried over, not decoded. */
static void file_objects_one(struct file_read *rd, const struct file_doc *doc, size_t item,
			     const cJSON *obj)
{
	struct model_objects *p = &rd->pending;
	size_t n_svc = p->n_services, n_slice = p->n_slices;
	char why[512] = "not an object";
	struct file_item it = { .hash = doc->hash, .len = (uint32_t)doc->len, .in_pending = true };

	if (!it.len && cJSON_IsObject(obj)) {
		size_t size = 0;

		it.hash = file_tree_hash(obj->child, 0, &size);
		it.len = (uint32_t)size;
		if (it.len && file_objects_carry(it.hash, it.len, rd))
			return;
	}
	if (cJSON_IsObject(obj) && model_decode(obj, p, why, sizeof(why)) != DECODE_INVALID) {
		if (p->n_services > n_svc)
			it = (struct file_item){ .hash = it.hash, .len = it.len, .kind = 'S',
						 .in_pending = true, .index = n_svc };
		else if (p->n_slices > n_slice)
			it = (struct file_item){ .hash = it.hash, .len = it.len, .kind = 'E',
						 .in_pending = true, .index = n_slice };
		if (it.kind && file_read_note(rd, &it) < 0)
			file_objects_unnoted(rd, &it);
		return;
	}
	file_objects_invalid(rd, obj, doc->number, (int)item, why);
}

/* Room for one more element of size sz in *arr (doubling). */
static bool file_objects_room(void **arr, size_t n, size_t *cap, size_t sz)
{
	size_t new_cap = *cap ? *cap * 2 : 64;
	void *p;

	if (n < *cap)
		return true;
	p = realloc(*arr, new_cap * sz);
	if (!p)
		return false;
	*arr = p;
	*cap = new_cap;
	return true;
}

/* The old object of rec, copied to the end of pending. */
static bool file_objects_copy_old(struct file_read *rd, const struct file_rec *rec)
{
	struct model_objects *p = &rd->pending;
	const struct model_objects *old = rd->old;

	if (!rec->slice) {
		if (!old->services[rec->index].name ||
		    !file_objects_room((void **)&p->services, p->n_services, &p->cap_services,
				       sizeof(*p->services)))
			return false;
		p->services[p->n_services++] = old->services[rec->index];
		return true;
	}
	if (!old->slices[rec->index].name ||
	    !file_objects_room((void **)&p->slices, p->n_slices, &p->cap_slices,
			       sizeof(*p->slices)))
		return false;
	p->slices[p->n_slices++] = old->slices[rec->index];
	return true;
}

static bool file_rec_is(const struct file_rec *rec, uint64_t hash, size_t len)
{
	return rec->hash == hash && rec->len == len && !rec->used;
}

/* An index of the records by hash (open addressing, index + 1; 0 = empty),
 * for items that are not where they were. Returns -1 when out of memory. */
static int file_rec_index(struct file_read *rd)
{
	size_t size = 64;

	while (size < 2 * rd->n_old_recs)
		size *= 2;
	rd->rec_index = calloc(size, sizeof(*rd->rec_index));
	if (!rd->rec_index)
		return -1;
	rd->rec_mask = size - 1;
	for (size_t i = 0; i < rd->n_old_recs; i++) {
		size_t at = rd->old_recs[i].hash & rd->rec_mask;

		while (rd->rec_index[at])
			at = (at + 1) & rd->rec_mask;
		rd->rec_index[at] = i + 1;
	}
	return 0;
}

/* A record of that hash and length not yet taken, NULL when none. Items
 * mostly come in the order of before: the next records are looked at first,
 * the index (made at the first miss) only then. */
static struct file_rec *file_rec_find(struct file_read *rd, uint64_t hash, size_t len)
{
	enum { WINDOW = 8 };

	if (!rd->n_old_recs)
		return NULL;
	for (size_t i = rd->rec_cursor; i < rd->n_old_recs && i < rd->rec_cursor + WINDOW; i++) {
		if (file_rec_is(&rd->old_recs[i], hash, len)) {
			rd->rec_cursor = i + 1;
			return &rd->old_recs[i];
		}
	}
	if (!rd->rec_index && file_rec_index(rd) < 0)
		return NULL;
	for (size_t at = hash & rd->rec_mask; rd->rec_index[at]; at = (at + 1) & rd->rec_mask)
		if (file_rec_is(&rd->old_recs[rd->rec_index[at] - 1], hash, len))
			return &rd->old_recs[rd->rec_index[at] - 1];
	return NULL;
}

bool file_objects_carry(uint64_t hash, size_t len, void *ctx)
{
	struct file_read *rd = ctx;
	struct file_rec *rec = file_rec_find(rd, hash, len);
	struct file_item it = { .hash = hash, .len = len, .carried = true, .in_pending = true };

	if (!rec)
		return false;
	it.kind = rec->slice ? 'E' : 'S';
	it.old_index = rec->index;
	it.index = rec->slice ? rd->pending.n_slices : rd->pending.n_services;
	if (file_read_note(rd, &it) < 0)
		return false;
	if (!file_objects_copy_old(rd, rec)) {
		rd->n_items--;
		return false;
	}
	rec->used = true;
	return true;
}

/* The carried copies among items[from..] are zeroed (they stay old's). */
static void file_objects_uncarry_from(struct file_read *rd, size_t from)
{
	for (size_t i = from; i < rd->n_items; i++) {
		const struct file_item *it = &rd->items[i];
		struct model_objects *o = it->in_pending ? &rd->pending : &rd->objs;

		if (!it->carried)
			continue;
		if (it->kind == 'S')
			memset(&o->services[it->index], 0, sizeof(o->services[0]));
		else
			memset(&o->slices[it->index], 0, sizeof(o->slices[0]));
	}
}

void file_objects_uncarry(struct file_read *rd)
{
	file_objects_uncarry_from(rd, 0);
	rd->n_items = rd->pending_items = 0;
}

/* The pending objects are void (the document failed, or was not a List). */
static void file_objects_drop(struct file_read *rd)
{
	file_objects_uncarry_from(rd, rd->pending_items);
	rd->n_items = rd->pending_items;
	for (size_t i = rd->pending_invalid; i < rd->n_invalid; i++) {
		free(rd->invalid[i].key);
		free(rd->invalid[i].msg);
	}
	rd->n_invalid = rd->pending_invalid;
	rd->pending_keep_old = false;
	model_objects_free(&rd->pending);
}

/* The pending objects join the read's (moved: the first document's are
 * taken as they are). */
static void file_objects_commit(struct file_read *rd)
{
	struct model_objects *o = &rd->objs, *p = &rd->pending;
	size_t at_svc = o->n_services, at_slice = o->n_slices;

	if (!o->n_services && !o->n_slices && !o->n_nodes) {
		model_objects_free(o);
		*o = *p;
	} else if (file_objects_append((void **)&o->services, &o->n_services, &o->cap_services,
				       p->services, p->n_services, sizeof(*p->services)) < 0 ||
		   file_objects_append((void **)&o->slices, &o->n_slices, &o->cap_slices,
				       p->slices, p->n_slices, sizeof(*p->slices)) < 0 ||
		   file_objects_append((void **)&o->nodes, &o->n_nodes, &o->cap_nodes,
				       p->nodes, p->n_nodes, sizeof(*p->nodes)) < 0) {
		log_error("source", "file %s: out of memory", rd->path);
		rd->keep_old = true;
		file_objects_drop(rd);
		return;
	} else {
		free(p->services);
		free(p->slices);
		free(p->nodes);
	}
	memset(p, 0, sizeof(*p));
	for (size_t i = rd->pending_items; i < rd->n_items; i++) {
		rd->items[i].index += rd->items[i].kind == 'S' ? at_svc : at_slice;
		rd->items[i].in_pending = false;
	}
	rd->pending_items = rd->n_items;
	rd->keep_old |= rd->pending_keep_old;
	rd->pending_keep_old = false;
	rd->pending_invalid = rd->n_invalid;
}

void file_objects_trim(struct model_objects *objs)
{
	void *p;

	if (objs->n_services && objs->n_services < objs->cap_services &&
	    (p = realloc(objs->services, objs->n_services * sizeof(*objs->services)))) {
		objs->services = p;
		objs->cap_services = objs->n_services;
	}
	if (objs->n_slices && objs->n_slices < objs->cap_slices &&
	    (p = realloc(objs->slices, objs->n_slices * sizeof(*objs->slices)))) {
		objs->slices = p;
		objs->cap_slices = objs->n_slices;
	}
	if (objs->n_nodes && objs->n_nodes < objs->cap_nodes &&
	    (p = realloc(objs->nodes, objs->n_nodes * sizeof(*objs->nodes)))) {
		objs->nodes = p;
		objs->cap_nodes = objs->n_nodes;
	}
}

static bool file_objects_is_list(const cJSON *doc)
{
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(doc, "kind");
	size_t len = cJSON_IsString(kind) ? strlen(kind->valuestring) : 0;

	return len >= 4 && strcmp(kind->valuestring + len - 4, "List") == 0 &&
	       cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "items"));
}

/* A document's end: a List's items (pending, or in it when it came whole)
 * are its objects, anything else is one object. */
static void file_objects_end(struct file_read *rd, const struct file_doc *doc)
{
	const cJSON *item;
	size_t n_item = 0;

	if (!doc->value) {
		log_error("source", "file %s document %d (line %zu): %s", rd->path, doc->number,
			  doc->line, doc->why);
		rd->n_failed++;
		rd->keep_old = true;
		file_objects_drop(rd);
		return;
	}
	if (!file_objects_is_list(doc->value)) {
		file_objects_drop(rd);
		if (!cJSON_IsNull(doc->value))
			file_objects_one(rd, doc, 0, doc->value);
	} else {
		cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(doc->value, "items"))
			file_objects_one(rd, doc, ++n_item, item);
	}
	file_objects_commit(rd);
}

void file_objects_doc(const struct file_doc *doc, void *ctx)
{
	struct file_read *rd = ctx;

	switch (doc->what) {
	case FILE_DOC_ITEM:
		file_objects_one(rd, doc, doc->item, doc->value);
		break;
	case FILE_DOC_END:
		file_objects_end(rd, doc);
		break;
	case FILE_DOC_RESTART:
		file_read_free(rd);
		rd->n_failed = 0;
		rd->keep_old = false;
		break;
	}
}

void file_read_free(struct file_read *rd)
{
	file_objects_uncarry(rd);
	free(rd->items);
	free(rd->rec_index);
	rd->items = NULL;
	rd->rec_index = NULL;
	rd->rec_cursor = 0;
	rd->cap_items = 0;
	for (size_t i = 0; i < rd->n_invalid; i++) {
		free(rd->invalid[i].key);
		free(rd->invalid[i].msg);
	}
	free(rd->invalid);
	model_objects_free(&rd->objs);
	model_objects_free(&rd->pending);
	rd->invalid = NULL;
	rd->n_invalid = rd->cap_invalid = rd->pending_invalid = 0;
	rd->pending_keep_old = false;
}
