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

/* Into the pending objects. */
static void file_objects_one(struct file_read *rd, int doc, size_t item, const cJSON *obj)
{
	char why[512] = "not an object";

	if (cJSON_IsObject(obj) &&
	    model_decode(obj, &rd->pending, why, sizeof(why)) != DECODE_INVALID)
		return;
	file_objects_invalid(rd, obj, doc, (int)item, why);
}

/* The pending objects are void (the document failed, or was not a List). */
static void file_objects_drop(struct file_read *rd)
{
	for (size_t i = rd->pending_invalid; i < rd->n_invalid; i++) {
		free(rd->invalid[i].key);
		free(rd->invalid[i].msg);
	}
	rd->n_invalid = rd->pending_invalid;
	rd->pending_keep_old = false;
	model_objects_free(&rd->pending);
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

/* The pending objects join the read's (moved: the first document's are
 * taken as they are). */
static void file_objects_commit(struct file_read *rd)
{
	struct model_objects *o = &rd->objs, *p = &rd->pending;

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
			file_objects_one(rd, doc->number, 0, doc->value);
	} else {
		cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(doc->value, "items"))
			file_objects_one(rd, doc->number, ++n_item, item);
	}
	file_objects_commit(rd);
}

void file_objects_doc(const struct file_doc *doc, void *ctx)
{
	struct file_read *rd = ctx;

	switch (doc->what) {
	case FILE_DOC_ITEM:
		file_objects_one(rd, doc->number, doc->item, doc->value);
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
