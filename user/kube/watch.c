/* Building list and watch requests, and taking their answers' bytes. */
#define _GNU_SOURCE /* asprintf */
#include "kube/watch.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "kube/watch_priv.h"

#define LIST_PAGE 500
/* A list's envelope (kind, metadata with the continue token) is small. */
#define LIST_ENVELOPE_MAX (64 * 1024)
/* The transport's limit on a list request, and how long a watch may
 * outlive the timeoutSeconds it asked for (a server that forgot to end it). */
#define LIST_TIMEOUT_S 120L
#define WATCH_TIMEOUT_SLACK_S 60L
/* A streaming list's initial state comes at once, its end marker right
 * after it: a server that sends nothing for this long before the marker
 * is not sending one (it ignored sendInitialEvents). */
#define STREAMING_LIST_QUIET_S 10.0

static double idle_timeout = WATCH_IDLE_TIMEOUT_S;

void watch_set_idle_timeout(double seconds)
{
	idle_timeout = seconds;
}

int watch_init(struct watch *w, const char *name, const char *kind, const char *path,
	       const char *selector, size_t max_line, const struct watch_handler *handler,
	       void *ctx)
{
	memset(w, 0, sizeof(*w));
	w->name = name;
	w->kind = kind;
	w->handler = handler;
	w->ctx = ctx;
	w->max_line = max_line;
	w->relist = true;
	w->phase = WATCH_WAITING;
	w->path = strdup(path);
	w->selector = strdup(selector);
	linebuf_init(&w->lines, max_line);
	json_items_init(&w->items, max_line, LIST_ENVELOPE_MAX);
	backoff_init(&w->backoff);
	w->retry_after = -1;
	return w->path && w->selector ? 0 : -1;
}

void watch_free(struct watch *w)
{
	watch_reset_request(w);
	free(w->path);
	free(w->selector);
	free(w->rv);
	free(w->cont);
	linebuf_free(&w->lines);
	json_items_free(&w->items);
	memset(w, 0, sizeof(*w));
}

void watch_reset_request(struct watch *w)
{
	w->body_len = 0;
	w->body[0] = '\0';
	linebuf_reset(&w->lines);
	json_items_free(&w->items); /* a large item once must not pin its buffer */
	w->retry_after = -1;
	w->retry_after_text[0] = '\0';
	w->stream_events = 0;
	w->initial = w->stream_bad = w->stream_expired = w->list_refused = false;
}

/* The value of a Retry-After header line, whitespace and CRLF trimmed. */
static void watch_retry_after(struct watch *w, const char *value, size_t len)
{
	while (len && (*value == ' ' || *value == '\t'))
		value++, len--;
	while (len && (value[len - 1] == '\r' || value[len - 1] == '\n' ||
		       value[len - 1] == ' ' || value[len - 1] == '\t'))
		len--;
	if (len >= sizeof(w->retry_after_text))
		len = sizeof(w->retry_after_text) - 1;
	memcpy(w->retry_after_text, value, len);
	w->retry_after_text[len] = '\0';
	w->retry_after = backoff_retry_after(w->retry_after_text, time(NULL));
}

void watch_header(struct watch *w, const char *line, size_t len, double now)
{
	char head[32]; /* the status line's start: the line is not NUL-terminated */
	long status;

	w->last_byte = now;
	snprintf(head, sizeof(head), "%.*s", (int)(len < sizeof(head) ? len : sizeof(head) - 1),
		 line);
	/* A watch the server took is health from now on, however long it runs
	 * (the backoff starts over after 2 minutes of it). */
	if (len > 5 && strncmp(line, "HTTP/", 5) == 0 && sscanf(head, "HTTP/%*s %ld", &status) == 1 &&
	    status == 200 && w->phase == WATCH_STREAMING)
		backoff_ok(&w->backoff, now);
	if (len > 12 && strncasecmp(line, "Retry-After:", 12) == 0)
		watch_retry_after(w, line + 12, len - 12);
}

/* An error answer: its start is kept for the log, the rest dropped. */
static void watch_keep_error(struct watch *w, const char *data, size_t len)
{
	size_t room = sizeof(w->body) - 1 - w->body_len;

	if (len > room)
		len = room;
	memcpy(w->body + w->body_len, data, len);
	w->body_len += len;
	w->body[w->body_len] = '\0';
}

/* A watch stream is taken line by line as it arrives. */
static int watch_stream_data(struct watch *w, const char *data, size_t len)
{
	int rc = linebuf_feed(&w->lines, data, len, watch_event_line, w);

	if (rc == -2) {
		/* Watching again from the same resourceVersion would meet the
		 * same event: a list (not capped by it) catches up. */
		log_error("watch", "%s: an event over %zu bytes (--max-event-bytes); "
			  "dropping the stream and listing again", w->name, w->max_line);
		w->stream_bad = true;
		w->relist = true;
	} else if (rc == -1) {
		log_error("watch", "%s: out of memory reading an event", w->name);
		w->stream_bad = true;
	}
	return rc == 0 && !w->stream_bad && !w->stream_expired && !w->list_refused ? 0 : -1;
}

int watch_data(struct watch *w, long status, const char *data, size_t len, double now)
{
	w->last_byte = now;
	if (status != 200) {
		watch_keep_error(w, data, len);
		return 0;
	}
	if (w->phase == WATCH_LISTING)
		return watch_list_data(w, data, len);
	return watch_stream_data(w, data, len);
}

/* The first list asks for resourceVersion=0: the watch cache answers it,
 * sparing etcd when every node of the cluster lists at once (a rollout).
 * Its state may be older than the newest, which is harmless when nothing
 * was held before. A relist (after 410 Expired) must not go back in time
 * from what was held (kubernetes#59848: removed endpoints would come back,
 * B12): no resourceVersion, a consistent read, paged, as client-go does. */
static char *watch_url_list(const struct watch *w)
{
	char *url, *cont = w->cont ? curl_easy_escape(NULL, w->cont, 0) : NULL;
	const char *sep = *w->selector ? "&" : "";
	int rc;

	if (cont)
		rc = asprintf(&url, "%s?%s%slimit=%d&continue=%s", w->path, w->selector, sep,
			      LIST_PAGE, cont);
	else
		rc = asprintf(&url, "%s?%s%slimit=%d%s", w->path, w->selector, sep, LIST_PAGE,
			      w->rv ? "" : "&resourceVersion=0");
	curl_free(cont);
	return rc < 0 ? NULL : url;
}

static char *watch_url_watch(const struct watch *w, long timeout)
{
	char *url, *rv = curl_easy_escape(NULL, w->rv, 0);
	const char *sep = *w->selector ? "&" : "";
	int rc = -1;

	if (rv)
		rc = asprintf(&url, "%s?%s%swatch=1&resourceVersion=%s&allowWatchBookmarks=true"
			      "&timeoutSeconds=%ld", w->path, w->selector, sep, rv, timeout);
	curl_free(rv);
	return rc < 0 ? NULL : url;
}

/* A streaming list: no resourceVersion, the newest state (consistent, as
 * a relist must be), then the watch goes on from it. */
static char *watch_url_streaming_list(const struct watch *w, long timeout)
{
	const char *sep = *w->selector ? "&" : "";
	char *url;

	if (asprintf(&url, "%s?%s%swatch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
		     "&allowWatchBookmarks=true&timeoutSeconds=%ld", w->path, w->selector, sep,
		     timeout) < 0)
		return NULL;
	return url;
}

static char *watch_start_stream(struct watch *w, bool initial)
{
	/* Spread the agents' reconnects over time, as client-go does. */
	long timeout = 300 + random() % 301;

	w->phase = WATCH_STREAMING;
	w->initial = initial;
	w->timeout = timeout + WATCH_TIMEOUT_SLACK_S;
	w->stats.watches++;
	return initial ? watch_url_streaming_list(w, timeout) : watch_url_watch(w, timeout);
}

char *watch_start(struct watch *w, double now)
{
	watch_reset_request(w);
	w->started = w->last_byte = now;
	w->fresh_connect = w->conn_dead;
	w->conn_dead = false;
	if (!w->relist && w->rv)
		return watch_start_stream(w, false);
	if (!w->cont)
		w->handler->list_begin(w->ctx, w);
	if (!w->cont && w->list_mode != WATCH_LIST_PAGED)
		return watch_start_stream(w, true);
	w->phase = WATCH_LISTING;
	w->timeout = LIST_TIMEOUT_S;
	return watch_url_list(w);
}

void watch_retry_at(struct watch *w, double when)
{
	watch_reset_request(w);
	w->phase = WATCH_WAITING;
	w->wait_until = when;
}

double watch_idle_at(const struct watch *w)
{
	double limit = idle_timeout;

	if (w->phase != WATCH_STREAMING)
		return 0;
	if (w->initial && limit > STREAMING_LIST_QUIET_S)
		limit = STREAMING_LIST_QUIET_S;
	return w->last_byte + limit;
}

bool watch_idle(const struct watch *w, double now)
{
	return w->phase == WATCH_STREAMING && now >= watch_idle_at(w);
}
