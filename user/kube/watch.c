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
/* A list page is held whole; this bounds a broken server. */
#define LIST_MAX_BYTES (1UL << 30)
/* The transport's limit on a list request, and how long a watch may
 * outlive the timeoutSeconds it asked for (a server that forgot to end it). */
#define LIST_TIMEOUT_S 120L
#define WATCH_TIMEOUT_SLACK_S 60L

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
	memset(w, 0, sizeof(*w));
}

void watch_reset_request(struct watch *w)
{
	free(w->body);
	w->body = NULL;
	w->body_len = w->body_cap = 0;
	linebuf_reset(&w->lines);
	w->retry_after = -1;
	w->retry_after_text[0] = '\0';
	w->stream_events = 0;
	w->stream_bad = w->stream_expired = w->body_refused = false;
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
	long status;

	w->last_byte = now;
	/* A watch the server took is health from now on, however long it runs
	 * (the backoff starts over after 2 minutes of it). */
	if (len > 5 && strncmp(line, "HTTP/", 5) == 0 && sscanf(line, "HTTP/%*s %ld", &status) == 1 &&
	    status == 200 && w->phase == WATCH_STREAMING)
		backoff_ok(&w->backoff, now);
	if (len > 12 && strncasecmp(line, "Retry-After:", 12) == 0)
		watch_retry_after(w, line + 12, len - 12);
}

static int watch_keep_body(struct watch *w, const char *data, size_t len)
{
	size_t cap = w->body_cap ? w->body_cap : 65536;
	char *p;

	if (w->body_len + len + 1 > LIST_MAX_BYTES)
		return -1;
	while (cap < w->body_len + len + 1)
		cap *= 2;
	if (cap != w->body_cap) {
		p = realloc(w->body, cap);
		if (!p)
			return -1;
		w->body = p;
		w->body_cap = cap;
	}
	memcpy(w->body + w->body_len, data, len);
	w->body_len += len;
	w->body[w->body_len] = '\0';
	return 0;
}

/* A watch stream is taken line by line as it arrives; anything else is
 * kept whole. */
int watch_data(struct watch *w, long status, const char *data, size_t len, double now)
{
	int rc;

	w->last_byte = now;
	if (w->phase != WATCH_STREAMING || status != 200) {
		if (watch_keep_body(w, data, len) == 0)
			return 0;
		log_error("watch", "%s: a response over %lu bytes or out of memory", w->name,
			  LIST_MAX_BYTES);
		w->body_refused = true;
		return -1;
	}
	rc = linebuf_feed(&w->lines, data, len, watch_event_line, w);
	if (rc == -2) {
		/* Watching again from the same resourceVersion would meet the
		 * same event: a list (whole pages, not capped by it) catches up. */
		log_error("watch", "%s: an event over %zu bytes (--max-event-bytes); "
			  "dropping the stream and listing again", w->name, w->max_line);
		w->stream_bad = true;
		w->relist = true;
	} else if (rc == -1) {
		log_error("watch", "%s: out of memory reading an event", w->name);
		w->stream_bad = true;
	}
	return rc == 0 && !w->stream_bad && !w->stream_expired ? 0 : -1;
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

char *watch_start(struct watch *w, double now)
{
	long timeout;

	watch_reset_request(w);
	w->started = w->last_byte = now;
	w->fresh_connect = w->conn_dead;
	w->conn_dead = false;
	if (w->relist || !w->rv) {
		if (!w->cont)
			w->handler->list_begin(w->ctx, w);
		w->phase = WATCH_LISTING;
		w->timeout = LIST_TIMEOUT_S;
		return watch_url_list(w);
	}
	/* Spread the agents' reconnects over time, as client-go does. */
	timeout = 300 + random() % 301;
	w->phase = WATCH_STREAMING;
	w->timeout = timeout + WATCH_TIMEOUT_SLACK_S;
	w->stats.watches++;
	return watch_url_watch(w, timeout);
}

void watch_retry_at(struct watch *w, double when)
{
	watch_reset_request(w);
	w->phase = WATCH_WAITING;
	w->wait_until = when;
}

double watch_idle_at(const struct watch *w)
{
	return w->phase == WATCH_STREAMING ? w->last_byte + idle_timeout : 0;
}

bool watch_idle(const struct watch *w, double now)
{
	return w->phase == WATCH_STREAMING && now >= watch_idle_at(w);
}
