/* List+watch of one collection (../shared/spec/apiserver-protocol.md): a
 * paged list, then a watch from its resourceVersion with bookmarks and a
 * random 300-600 s timeout, again and again. A watch that ends is resumed
 * from the last resourceVersion seen; 410 Expired means list again, and the
 * list replaces everything the handler holds of this collection. Failures
 * wait (Retry-After, else backoff) and retry; nothing here ever tells the
 * handler that objects are gone because the API server is unreachable. */
#ifndef FERRY_KUBE_WATCH_H
#define FERRY_KUBE_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "kube/backoff.h"
#include "kube/linebuf.h"

struct cJSON;
struct watch;

enum kube_event {
	KUBE_ADDED,
	KUBE_MODIFIED,
	KUBE_DELETED,
	KUBE_EVENT__COUNT,
};

/* Why a request failed, for logs and counters. */
enum watch_error {
	WATCH_ERR_TRANSPORT,      /* no connection, TLS, reset */
	WATCH_ERR_UNAUTHORIZED,   /* 401 */
	WATCH_ERR_FORBIDDEN,      /* 403 */
	WATCH_ERR_THROTTLED,      /* 429 */
	WATCH_ERR_SERVER,         /* 5xx */
	WATCH_ERR_HTTP,           /* any other status */
	WATCH_ERR_BAD_DATA,       /* a line or body that is not what the protocol says */
	WATCH_ERR_SHORT,          /* a watch that ended within 1 s with no event */
	WATCH_ERR__COUNT,
};

struct watch_stats {
	uint64_t lists;           /* lists completed */
	uint64_t watches;         /* watch requests sent */
	uint64_t expired;         /* 410s: relists forced */
	uint64_t events[KUBE_EVENT__COUNT];
	uint64_t bookmarks;
	uint64_t errors[WATCH_ERR__COUNT];
};

struct watch_handler {
	/* A list from scratch starts: what list_end does not see again is gone. */
	void (*list_begin)(void *ctx, struct watch *w);
	/* One object, from a list page (KUBE_ADDED) or a watch event. List
	 * items carry no kind; the handler knows it from the watch. */
	void (*object)(void *ctx, struct watch *w, enum kube_event ev, struct cJSON *obj);
	/* The list is complete. */
	void (*list_end)(void *ctx, struct watch *w);
};

enum watch_phase {
	WATCH_WAITING,            /* until wait_until */
	WATCH_LISTING,
	WATCH_STREAMING,
};

struct watch {
	const char *name;         /* "services", for logs and counters */
	const char *kind;         /* "Service", of the objects */
	char *path;               /* "/api/v1/services" */
	char *selector;           /* "labelSelector=...", URL-encoded, or "" */
	const struct watch_handler *handler;
	void *ctx;

	enum watch_phase phase;
	double wait_until;
	bool relist;              /* the next request is a list from scratch */
	bool listed;              /* a list has completed since the last relist began */
	char *rv;                 /* the last resourceVersion seen */
	char *cont;               /* continue token of the list under way */
	bool reauth;              /* reread the token before the next request */
	size_t max_line;

	/* the request under way */
	void *easy;               /* CURL * */
	void *headers;            /* struct curl_slist * */
	double started;
	long retry_after;         /* from the response, -1 = none */
	uint64_t stream_events;
	bool stream_bad;          /* an event could not be taken: drop the stream */
	bool stream_expired;      /* ERROR 410 */
	struct linebuf lines;     /* a watch stream */
	char *body;               /* a list or an error response */
	size_t body_len, body_cap;

	struct backoff backoff;
	struct watch_stats stats;
};

/* selector is URL-encoded query text ("labelSelector=..."), "" for none. */
int watch_init(struct watch *w, const char *name, const char *kind, const char *path,
	       const char *selector, size_t max_line, const struct watch_handler *handler,
	       void *ctx);
void watch_free(struct watch *w);

/* The request to send now (list page or watch): a CURL easy handle set up
 * but for its URL (*path is the path and query, malloc'd), TLS and auth,
 * which the caller adds. NULL when out of memory. */
void *watch_request(struct watch *w, double now, char **path);
/* The request ended (curl's result code). Sets the phase: WATCH_WAITING with
 * wait_until, now or later. */
void watch_done(struct watch *w, int curl_result, double now);

#endif
