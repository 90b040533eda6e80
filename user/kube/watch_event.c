/* The events of a watch stream, one JSON object per line. A streaming
 * list's stream first sends the whole state as ADDED events, then a
 * BOOKMARK annotated k8s.io/initial-events-end: those events are the list. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kube/watch_priv.h"

void watch_set_rv(struct watch *w, const char *rv)
{
	char *copy;

	if (!rv || !*rv || (w->rv && strcmp(w->rv, rv) == 0))
		return;
	copy = strdup(rv);
	if (!copy)
		return; /* the older one stays: a rewatch repeats some events */
	free(w->rv);
	w->rv = copy;
}

static const char *watch_object_rv(const cJSON *obj)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *rv = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");

	return cJSON_IsString(rv) ? rv->valuestring : NULL;
}

static int watch_bad_line(struct watch *w, const char *why, const char *line, size_t len)
{
	log_error("watch", "%s: %s (%zu bytes: \"%.60s%s\"); watching again from "
		  "resourceVersion %s", w->name, why, len, line, len > 60 ? "..." : "",
		  w->rv ? w->rv : "?");
	w->stream_bad = true;
	return 1;
}

/* An ERROR event carries a Status; 410 means the resourceVersion is gone
 * from the server's history and only a new list can catch up. */
static int watch_error_event(struct watch *w, const cJSON *status)
{
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(status, "code");
	const cJSON *reason = cJSON_GetObjectItemCaseSensitive(status, "reason");
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(status, "message");

	if (cJSON_IsNumber(code) && code->valueint == 410) {
		log_info("watch", "%s: resourceVersion %s expired (%s): listing again", w->name,
			 w->rv ? w->rv : "?", cJSON_IsString(reason) ? reason->valuestring : "410");
		w->stream_expired = true;
		w->relist = true;
		w->stats.expired++;
		return 1;
	}
	log_warn("watch", "%s: the API server sent an error event: %d %s: %s", w->name,
		 cJSON_IsNumber(code) ? code->valueint : 0,
		 cJSON_IsString(reason) ? reason->valuestring : "",
		 cJSON_IsString(msg) ? msg->valuestring : "");
	w->stream_bad = true;
	return 1;
}

/* A server that ignores sendInitialEvents streams an ordinary watch: the
 * state as ADDED (a watch from no resourceVersion), then changes and
 * bookmarks, without the end marker. Such an event is not taken: a paged
 * list follows, from scratch. */
static int watch_list_ignored(struct watch *w, const char *what)
{
	log_info("watch", "%s: the API server ignored sendInitialEvents (%s before the end of the "
		 "initial state): paged lists from now on", w->name, what);
	w->list_mode = WATCH_LIST_PAGED;
	w->list_refused = true;
	return 1;
}

static bool watch_initial_end(const cJSON *obj)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *ann = cJSON_GetObjectItemCaseSensitive(md, "annotations");
	const cJSON *end = cJSON_GetObjectItemCaseSensitive(ann, "k8s.io/initial-events-end");

	return cJSON_IsString(end) && strcmp(end->valuestring, "true") == 0;
}

static int watch_bookmark(struct watch *w, const cJSON *obj)
{
	const char *rv = watch_object_rv(obj);

	if (w->initial && !watch_initial_end(obj))
		return watch_list_ignored(w, "a bookmark without k8s.io/initial-events-end");
	if (!w->initial) {
		watch_set_rv(w, rv);
		w->stats.bookmarks++;
		return 0;
	}
	if (!rv || !*rv) {
		log_error("watch", "%s: the end of a streaming list without a resourceVersion; "
			  "listing again", w->name);
		w->stream_bad = true;
		return 0;
	}
	if (w->list_mode != WATCH_LIST_STREAMING)
		log_info("watch", "%s: the API server sends streaming lists (WatchList): lists "
			 "arrive as watch events", w->name);
	w->list_mode = WATCH_LIST_STREAMING;
	w->initial = false;
	watch_set_rv(w, rv);
	watch_list_complete(w, true, w->last_byte);
	return 0;
}

static int watch_event_type(const char *type, enum kube_event *ev)
{
	static const char *const names[KUBE_EVENT__COUNT] = { "ADDED", "MODIFIED", "DELETED" };

	for (int i = 0; i < KUBE_EVENT__COUNT; i++)
		if (strcmp(type, names[i]) == 0) {
			*ev = (enum kube_event)i;
			return 0;
		}
	return -1;
}

static int watch_event(struct watch *w, const char *type, cJSON *obj)
{
	enum kube_event ev;

	if (strcmp(type, "ERROR") == 0)
		return watch_error_event(w, obj);
	if (strcmp(type, "BOOKMARK") == 0)
		return watch_bookmark(w, obj);
	if (watch_event_type(type, &ev) < 0)
		return -1;
	if (w->initial && ev != KUBE_ADDED)
		return watch_list_ignored(w, type);
	w->handler->object(w->ctx, w, ev, obj);
	w->stream_events++;
	/* The initial state's objects come in no order of resourceVersion:
	 * only its end says where the watch goes on from. */
	if (w->initial)
		return 0;
	watch_set_rv(w, watch_object_rv(obj));
	w->stats.events[ev]++;
	return 0;
}

int watch_event_line(char *line, size_t len, void *ctx)
{
	struct watch *w = ctx;
	cJSON *ev = cJSON_ParseWithLength(line, len);
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
	cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
	int rc;

	if (!ev)
		rc = watch_bad_line(w, "an event that is not JSON", line, len);
	else if (!cJSON_IsString(type) || !cJSON_IsObject(obj))
		rc = watch_bad_line(w, "an event without type or object", line, len);
	else if (watch_event(w, type->valuestring, obj) < 0)
		rc = watch_bad_line(w, "an event of unknown type", line, len);
	else
		rc = w->stream_bad || w->stream_expired || w->list_refused;
	cJSON_Delete(ev);
	return rc;
}
