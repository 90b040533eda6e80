/* Documents -> model objects: v1 Lists flattened, empty documents skipped,
 * other kinds ignored; documents that do not parse logged, invalid objects
 * kept aside with their identity for file_merge. */
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
	rd->keep_old |= !inv.key;
	rd->invalid[rd->n_invalid++] = inv;
}

static void file_objects_one(struct file_read *rd, int doc, int item, const cJSON *obj)
{
	char why[512] = "not an object";

	if (cJSON_IsObject(obj) && model_decode(obj, &rd->objs, why, sizeof(why)) != DECODE_INVALID)
		return;
	file_objects_invalid(rd, obj, doc, item, why);
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
}

static bool file_objects_is_list(const cJSON *doc)
{
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(doc, "kind");
	size_t len = cJSON_IsString(kind) ? strlen(kind->valuestring) : 0;

	return len >= 4 && strcmp(kind->valuestring + len - 4, "List") == 0 &&
	       cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "items"));
}

void file_objects_doc(const struct file_doc *doc, void *ctx)
{
	struct file_read *rd = ctx;
	const cJSON *item;
	int n_item = 0;

	if (!doc->value) {
		log_error("source", "file %s document %d (line %zu): %s", rd->path, doc->number,
			  doc->line, doc->why);
		rd->n_failed++;
		rd->keep_old = true;
		return;
	}
	if (cJSON_IsNull(doc->value))
		return;
	if (!file_objects_is_list(doc->value)) {
		file_objects_one(rd, doc->number, 0, doc->value);
		return;
	}
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(doc->value, "items"))
		file_objects_one(rd, doc->number, ++n_item, item);
}

void file_read_free(struct file_read *rd)
{
	for (size_t i = 0; i < rd->n_invalid; i++) {
		free(rd->invalid[i].key);
		free(rd->invalid[i].msg);
	}
	free(rd->invalid);
	model_objects_free(&rd->objs);
	rd->invalid = NULL;
	rd->n_invalid = rd->cap_invalid = 0;
}
