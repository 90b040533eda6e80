/* The end of a request: a list page to take, a stream to resume, or a
 * failure to wait out. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kube/watch_priv.h"

/* A watch shorter than this that saw nothing is a failure (spec). */
#define SHORT_WATCH_S 1.0

static double forbidden_retry = WATCH_FORBIDDEN_RETRY_S;

void watch_set_forbidden_retry(double seconds)
{
	forbidden_retry = seconds;
}

/* The message of a Status body, or "" when the body is not one. */
static const char *watch_status_message(const struct watch *w, cJSON **doc)
{
	const cJSON *msg;

	*doc = w->body_len ? cJSON_ParseWithLength(w->body, w->body_len) : NULL;
	msg = cJSON_GetObjectItemCaseSensitive(*doc, "message");
	return cJSON_IsString(msg) ? msg->valuestring : "";
}

static enum watch_error watch_classify(long status)
{
	if (status == 401)
		return WATCH_ERR_UNAUTHORIZED;
	if (status == 403)
		return WATCH_ERR_FORBIDDEN;
	if (status == 429)
		return WATCH_ERR_THROTTLED;
	if (status >= 500)
		return WATCH_ERR_SERVER;
	return WATCH_ERR_HTTP;
}

/* What the log says of the answer's Retry-After, "" when it had none. */
static void watch_retry_note(const struct watch *w, char *buf, size_t len)
{
	const char *text = w->retry_after_text;

	if (!*text)
		*buf = '\0';
	else if (w->retry_after < 0)
		snprintf(buf, len, " (Retry-After '%s' not usable: neither seconds nor a date "
			 "to come; backoff)", text);
	else if (w->retry_after > BACKOFF_RETRY_AFTER_MAX)
		snprintf(buf, len, " (Retry-After: %s, capped at %.0f s)", text,
			 BACKOFF_RETRY_AFTER_MAX);
	else
		snprintf(buf, len, " (Retry-After: %s)", text);
}

static void watch_log_status(const struct watch *w, enum watch_error err, long status,
			     double wait)
{
	char note[128];
	cJSON *doc;
	const char *msg = watch_status_message(w, &doc);
	const char *verb = w->phase == WATCH_LISTING ? "list" : "watch";

	if (err == WATCH_ERR_FORBIDDEN)
		log_error("watch", "%s: 403 Forbidden: ferryd's account may not %s %s "
			  "(it needs get, list and watch on them): %s; retrying in %.1f s",
			  w->name, verb, w->name, msg, wait);
	else if (err == WATCH_ERR_UNAUTHORIZED)
		log_warn("watch", "%s: 401 Unauthorized: %s; reading the token again, retrying "
			 "in %.1f s", w->name, msg, wait);
	else {
		watch_retry_note(w, note, sizeof(note));
		log_warn("watch", "%s: %s answered %ld: %s; retrying in %.1f s%s", w->name, verb,
			 status, msg, wait, note);
	}
	cJSON_Delete(doc);
}

static void watch_fail(struct watch *w, enum watch_error err, long status, const char *why,
		       double now)
{
	double wait = backoff_next(&w->backoff, now, err == WATCH_ERR_THROTTLED ||
			err == WATCH_ERR_SERVER ? w->retry_after : -1);

	if (err == WATCH_ERR_FORBIDDEN && wait < forbidden_retry)
		wait = forbidden_retry;
	w->stats.errors[err]++;
	w->reauth |= err == WATCH_ERR_UNAUTHORIZED;
	if (err == WATCH_ERR_TRANSPORT)
		log_warn("watch", "%s: cannot reach the API server: %s; retrying in %.1f s",
			 w->name, why ? why : "no answer", wait);
	else if (err == WATCH_ERR_SHORT)
		log_warn("watch", "%s: the watch ended at once without an event; retrying in "
			 "%.1f s", w->name, wait);
	else if (err != WATCH_ERR_BAD_DATA)
		watch_log_status(w, err, status, wait);
	watch_retry_at(w, now + wait);
}

static void watch_list_done(struct watch *w, long status, enum watch_result res,
			    const char *why, double now)
{
	if (res == WATCH_RESULT_OK && status == 200 && !w->stream_bad) {
		if (watch_list_page_end(w, now) < 0) {
			free(w->cont);
			w->cont = NULL;
			watch_fail(w, WATCH_ERR_BAD_DATA, status, why, now);
		}
		return;
	}
	if (res == WATCH_RESULT_OK && status == 410) {
		/* The continue token outlived the server's history. */
		log_info("watch", "%s: list continuation expired (410): listing again from the "
			 "start", w->name);
		free(w->cont);
		w->cont = NULL;
		w->stats.expired++;
		watch_retry_at(w, now);
		return;
	}
	free(w->cont);
	w->cont = NULL;
	if (w->stream_bad)
		watch_fail(w, WATCH_ERR_BAD_DATA, status, why, now);
	else if (res != WATCH_RESULT_OK && (status == 0 || status == 200))
		watch_fail(w, WATCH_ERR_TRANSPORT, status, why, now);
	else
		watch_fail(w, watch_classify(status), status, why, now);
}

/* The deadline passed without a byte: the connection may be a black hole
 * (a load balancer failover, a NAT flush) that TCP has not noticed yet.
 * The stream resumes at once, on a new connection. */
static void watch_idle_done(struct watch *w, double now)
{
	w->stats.errors[WATCH_ERR_IDLE]++;
	w->conn_dead = true;
	log_warn("watch", "%s: no byte for %.1f s (--watch-idle-timeout): the stream is taken "
		 "for dead; watching again from resourceVersion %s on a new connection", w->name,
		 now - w->last_byte, w->rv ? w->rv : "(none yet)");
	watch_retry_at(w, now);
}

/* A streaming list that the server refused (422, or 400: it does not know
 * the parameters) or ignored: a paged list at once, and from now on. */
static bool watch_streaming_list_refused(struct watch *w, long status, enum watch_result res,
					 double now)
{
	cJSON *doc;

	if (!w->initial)
		return false;
	if (status == 422 || status == 400) {
		log_info("watch", "%s: the API server does not send streaming lists (%ld: %s): "
			 "paged lists from now on", w->name, status, watch_status_message(w, &doc));
		cJSON_Delete(doc);
	} else if (res == WATCH_RESULT_IDLE && status == 200 && !w->list_refused) {
		log_info("watch", "%s: the API server ignored sendInitialEvents (no end of the "
			 "initial state after %.1f s without a byte): paged lists from now on",
			 w->name, now - w->last_byte);
	} else if (!w->list_refused) {
		return false;
	}
	w->list_mode = WATCH_LIST_PAGED;
	watch_retry_at(w, now);
	return true;
}

/* A stream that ran and ended (timeout, cut) resumes from the last
 * resourceVersion at once; 410, as an ERROR event or as the answer's
 * status, lists again at once. A streaming list that breaks off before the
 * end of its initial state starts over, after a backoff. */
static void watch_stream_done(struct watch *w, long status, enum watch_result res,
			      const char *why, double now)
{
	if (watch_streaming_list_refused(w, status, res, now))
		return;
	if (res == WATCH_RESULT_IDLE) {
		watch_idle_done(w, now);
		return;
	}
	if (status == 410) {
		log_info("watch", "%s: watch from resourceVersion %s answered 410 (expired): "
			 "listing again", w->name, w->rv ? w->rv : "(none)");
		w->relist = true;
		w->stats.expired++;
		watch_retry_at(w, now);
		return;
	}
	if (status != 200) {
		watch_fail(w, status == 0 ? WATCH_ERR_TRANSPORT : watch_classify(status), status,
			   why, now);
		return;
	}
	if (w->stream_expired) {
		watch_retry_at(w, now);
		return;
	}
	if (w->stream_bad) {
		watch_fail(w, WATCH_ERR_BAD_DATA, status, why, now);
		return;
	}
	if (w->initial) {
		watch_fail(w, WATCH_ERR_TRANSPORT, status, why ? why : "the streaming list ended "
			   "before its initial state did", now);
		return;
	}
	if (now - w->started < SHORT_WATCH_S && w->stream_events == 0) {
		watch_fail(w, WATCH_ERR_SHORT, status, why, now);
		return;
	}
	if (res != WATCH_RESULT_OK)
		log_info("watch", "%s: stream ended (%s): watching again from resourceVersion %s",
			 w->name, why ? why : "cut", w->rv);
	else
		log_debug("watch", "%s: stream ended: watching again from resourceVersion %s",
			  w->name, w->rv);
	backoff_ok(&w->backoff, now);
	watch_retry_at(w, now);
}

void watch_done(struct watch *w, long status, enum watch_result res, const char *why,
		double now)
{
	if (w->phase == WATCH_LISTING)
		watch_list_done(w, status, res, why, now);
	else
		watch_stream_done(w, status, res, why, now);
}
