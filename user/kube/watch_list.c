/* The answers that make up a list: a page of a paged list, split into its
 * items as the bytes arrive (common/json_items.h), each item parsed and
 * handed over at once; its envelope, at the end, gives the resourceVersion
 * and the continue token. Memory follows the largest item, not the page
 * (a watch cache answers resourceVersion=0 with every object at once). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kube/watch_priv.h"

static int watch_list_item(char *item, size_t len, void *ctx)
{
	struct watch *w = ctx;
	cJSON *obj = cJSON_ParseWithLength(item, len);

	if (!obj) {
		log_error("watch", "%s: a list item that is not JSON (%zu bytes at byte %zu: "
			  "\"%.60s%s\"); listing again", w->name, len,
			  json_items_offset(&w->items), item, len > 60 ? "..." : "");
		w->stream_bad = true;
		return 1;
	}
	if (cJSON_IsObject(obj))
		w->handler->object(w->ctx, w, KUBE_ADDED, obj);
	cJSON_Delete(obj);
	return 0;
}

int watch_list_data(struct watch *w, const char *data, size_t len)
{
	int rc = json_items_feed(&w->items, data, len, watch_list_item, w);

	if (rc == 0)
		return 0;
	if (rc == -1)
		log_error("watch", "%s: out of memory reading a list", w->name);
	else if (rc == -2)
		log_error("watch", "%s: a list item over %zu bytes (--max-event-bytes) at byte "
			  "%zu; listing again", w->name, w->max_line, json_items_offset(&w->items));
	else if (rc == -3)
		log_error("watch", "%s: a list answer that is not a JSON list (at byte %zu); "
			  "listing again", w->name, json_items_offset(&w->items));
	w->stream_bad = true;
	return -1;
}

void watch_list_complete(struct watch *w, bool streamed, double now)
{
	w->relist = false;
	w->listed = true;
	w->stats.lists++;
	w->stats.streamed_lists += streamed;
	w->handler->list_end(w->ctx, w);
	backoff_ok(&w->backoff, now);
}

int watch_list_page_end(struct watch *w, double now)
{
	size_t len = 0;
	const char *env = json_items_envelope(&w->items, &len);
	cJSON *doc = env ? cJSON_ParseWithLength(env, len) : NULL;
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items");
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
	const cJSON *rv = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");
	const cJSON *cont = cJSON_GetObjectItemCaseSensitive(md, "continue");

	if (!cJSON_IsArray(items) || !cJSON_IsString(rv) || !*rv->valuestring) {
		log_error("watch", "%s: a list answer without items or resourceVersion; listing "
			  "again", w->name);
		cJSON_Delete(doc);
		return -1;
	}
	free(w->cont);
	w->cont = NULL;
	/* Out of memory must not pass for the last page: later pages' objects
	 * would be deleted. */
	if (cJSON_IsString(cont) && *cont->valuestring && !(w->cont = strdup(cont->valuestring))) {
		log_error("watch", "%s: out of memory taking a continue token", w->name);
		cJSON_Delete(doc);
		return -1;
	}
	if (!w->cont) {
		watch_set_rv(w, rv->valuestring);
		watch_list_complete(w, false, now);
	}
	cJSON_Delete(doc);
	watch_retry_at(w, now);
	return 0;
}
