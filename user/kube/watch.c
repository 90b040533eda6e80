/* Building list and watch requests, and reading their answers. */
#define _GNU_SOURCE /* asprintf */
#include "kube/watch.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kube/watch_priv.h"

#define LIST_PAGE 500
/* A list page is held whole; this bounds a broken server. */
#define LIST_MAX_BYTES (1UL << 30)

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
	if (w->easy)
		curl_easy_cleanup(w->easy);
	curl_slist_free_all(w->headers);
	w->easy = NULL;
	w->headers = NULL;
	free(w->body);
	w->body = NULL;
	w->body_len = w->body_cap = 0;
	linebuf_reset(&w->lines);
	w->retry_after = -1;
	w->stream_events = 0;
	w->stream_bad = w->stream_expired = false;
}

static size_t watch_on_header(char *data, size_t size, size_t n, void *ud)
{
	struct watch *w = ud;
	size_t len = size * n;

	if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0)
		w->retry_after = strtol(data + 12, NULL, 10);
	return len;
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
 * kept whole. Returning less than len aborts the transfer. */
static size_t watch_on_data(char *data, size_t size, size_t n, void *ud)
{
	struct watch *w = ud;
	size_t len = size * n;
	long status = 0;
	int rc;

	curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &status);
	if (w->phase != WATCH_STREAMING || status != 200) {
		if (watch_keep_body(w, data, len) == 0)
			return len;
		log_error("watch", "%s: a response over %lu bytes or out of memory", w->name,
			  LIST_MAX_BYTES);
		return 0;
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
	return rc == 0 && !w->stream_bad && !w->stream_expired ? len : 0;
}

static char *watch_url_list(const struct watch *w)
{
	char *url, *cont = w->cont ? curl_easy_escape(NULL, w->cont, 0) : NULL;
	const char *sep = *w->selector ? "&" : "";
	int rc;

	if (cont)
		rc = asprintf(&url, "%s?%s%slimit=%d&continue=%s", w->path, w->selector, sep,
			      LIST_PAGE, cont);
	else
		rc = asprintf(&url, "%s?%s%slimit=%d&resourceVersion=0", w->path, w->selector, sep,
			      LIST_PAGE);
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

/* The path and query of the next request; sets the phase it starts. */
static char *watch_next_path(struct watch *w, long *timeout)
{
	if (w->relist || !w->rv) {
		if (!w->cont)
			w->handler->list_begin(w->ctx, w);
		w->phase = WATCH_LISTING;
		return watch_url_list(w);
	}
	/* Spread the agents' reconnects over time, as client-go does. */
	*timeout = 300 + random() % 301;
	w->phase = WATCH_STREAMING;
	w->stats.watches++;
	return watch_url_watch(w, *timeout);
}

void *watch_request(struct watch *w, double now, char **path)
{
	long timeout = 0;
	CURL *easy;

	watch_reset_request(w);
	*path = watch_next_path(w, &timeout);
	easy = *path ? curl_easy_init() : NULL;
	if (!easy) {
		free(*path);
		*path = NULL;
		return NULL;
	}
	w->easy = easy;
	w->started = now;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, w);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, watch_on_data);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, watch_on_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, w);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, 10L);
	/* A stream the server forgot to end still ends. */
	curl_easy_setopt(easy, CURLOPT_TIMEOUT, timeout ? timeout + 60 : 120L);
	return easy;
}
