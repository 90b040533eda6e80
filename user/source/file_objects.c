/* Documents -> model objects: v1 Lists flattened, empty documents skipped,
 * other kinds ignored, invalid objects logged and counted. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "source/file_priv.h"

static void file_objects_one(const char *path, int doc, int item, const cJSON *obj,
			     struct model_objects *out, uint64_t *skipped)
{
	char why[512] = "not an object";

	if (cJSON_IsObject(obj) && model_decode(obj, out, why, sizeof(why)) != DECODE_INVALID)
		return;
	if (item)
		log_warn("source", "%s: document %d, item %d: %s", path, doc, item, why);
	else
		log_warn("source", "%s: document %d: %s", path, doc, why);
	(*skipped)++;
}

/* The arrays grow by doubling; the cache keeps them, so give the slack back. */
static void file_objects_trim(struct model_objects *objs)
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

void file_objects_decode(const char *path, const cJSON *docs, struct model_objects *out,
			 uint64_t *skipped)
{
	const cJSON *doc, *item;
	int n_doc = 0, n_item;

	cJSON_ArrayForEach(doc, docs) {
		n_doc++;
		if (cJSON_IsNull(doc))
			continue;
		if (!file_objects_is_list(doc)) {
			file_objects_one(path, n_doc, 0, doc, out, skipped);
			continue;
		}
		n_item = 0;
		cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(doc, "items"))
			file_objects_one(path, n_doc, ++n_item, item, out, skipped);
	}
	file_objects_trim(out);
}
