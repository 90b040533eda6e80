/* List+watch of one collection (../shared/spec/apiserver-protocol.md): a
 * list, then a watch from its resourceVersion with bookmarks and a random
 * 300-600 s timeout, again and again. The list is a streaming list
 * (client-go's WatchList: a watch that first sends the whole state) where
 * the server offers one, else a paged list; either way each object goes to
 * the handler as it arrives, so memory does not grow with the size of a
 * list. A watch that ends is resumed from the last resourceVersion seen;
 * 410 Expired means list again, and the list replaces everything the
 * handler holds of this collection. Failures wait (Retry-After, else
 * backoff) and retry; nothing here ever tells the handler that objects are
 * gone because the API server is unreachable.
 *
 * The state machine speaks no HTTP library: it says which request it wants
 * (watch_start), takes what the transport received (watch_header,
 * watch_data) and how the request ended (watch_done), each with the time.
 * kube/client.c drives it with curl; tests/unit/test_watch.c with scripted
 * answers. */
#ifndef FERRY_KUBE_WATCH_H
#define FERRY_KUBE_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/json_items.h"
#include "kube/backoff.h"
#include "kube/linebuf.h"

struct cJSON;
struct watch;

/* A stream that delivers no byte for this long is taken for dead (no
 * event, no bookmark: a healthy server sends a bookmark about once a
 * minute). ferryd's --watch-idle-timeout. */
#define WATCH_IDLE_TIMEOUT_S 90.0
/* A 403 will not heal by itself soon: someone has to fix the RBAC rules. */
#define WATCH_FORBIDDEN_RETRY_S 30.0
/* The start of an error answer kept for the log (a Status is short). */
#define WATCH_ERROR_BODY_MAX 4096

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
	WATCH_ERR_IDLE,           /* a stream silent past the idle deadline */
	WATCH_ERR__COUNT,
};

/* How the transport ended a request. */
enum watch_result {
	WATCH_RESULT_OK,          /* the whole answer arrived */
	WATCH_RESULT_TRANSPORT,   /* no connection, TLS, reset, cut, or watch_data refused */
	WATCH_RESULT_TIMEOUT,     /* the transport's own time limit (w->timeout) */
	WATCH_RESULT_IDLE,        /* dropped by the caller because watch_idle said so */
};

struct watch_stats {
	uint64_t lists;           /* lists completed */
	uint64_t streamed_lists;  /* of them, streaming lists */
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
	WATCH_LISTING,            /* a list page */
	WATCH_STREAMING,          /* a watch, a streaming list's included */
};

/* Whether the server sends streaming lists, learnt from the first try. */
enum watch_list_mode {
	WATCH_LIST_UNKNOWN,
	WATCH_LIST_STREAMING,     /* it sent the end of the initial state */
	WATCH_LIST_PAGED,         /* it refused (422, 400) or ignored the request */
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
	bool conn_dead;           /* a stream went idle: its connection is not to be reused */
	enum watch_list_mode list_mode;
	size_t max_line;

	/* the request under way */
	double started;
	double last_byte;         /* when its last byte (header or body) arrived */
	bool fresh_connect;       /* it must open a new connection */
	long timeout;             /* the transport's limit for it, seconds */
	double retry_after;       /* from the answer, seconds; -1 = none or unusable */
	char retry_after_text[40];/* the header's value as received, for the log */
	bool initial;             /* a streaming list, before the end of its initial state */
	uint64_t stream_events;
	bool stream_bad;          /* the answer could not be taken (bad data, memory) */
	bool stream_expired;      /* ERROR 410 */
	bool list_refused;        /* the server does not send streaming lists */
	struct linebuf lines;     /* a watch stream */
	struct json_items items;  /* a list page (200), split into its items */
	char body[WATCH_ERROR_BODY_MAX]; /* the start of an error answer */
	size_t body_len;

	struct backoff backoff;
	struct watch_stats stats;
};

/* selector is URL-encoded query text ("labelSelector=..."), "" for none. */
int watch_init(struct watch *w, const char *name, const char *kind, const char *path,
	       const char *selector, size_t max_line, const struct watch_handler *handler,
	       void *ctx);
void watch_free(struct watch *w);

/* The idle deadline of every watch stream, WATCH_IDLE_TIMEOUT_S unless set. */
void watch_set_idle_timeout(double seconds);
/* The wait after a 403, WATCH_FORBIDDEN_RETRY_S unless set. */
void watch_set_forbidden_retry(double seconds);

/* The next request (list page or watch), due now: its path and query,
 * malloc'd (the caller adds scheme, host, TLS and auth), and the phase it
 * starts; w->timeout is the time limit the transport must put on it.
 * NULL when out of memory. */
char *watch_start(struct watch *w, double now);
/* Forget the request under way (or the one that could not be sent) and
 * wait: the next one is due at when. */
void watch_retry_at(struct watch *w, double when);
/* One header line of the answer, as received (with or without CRLF). */
void watch_header(struct watch *w, const char *line, size_t len, double now);
/* Body bytes of an answer with this status. Returns 0, or -1 when the
 * transfer must stop (the machine has noted why; watch_done follows). */
int watch_data(struct watch *w, long status, const char *data, size_t len, double now);
/* The stream under way has been silent past the idle deadline: the caller
 * drops the request and calls watch_done with WATCH_RESULT_IDLE. */
bool watch_idle(const struct watch *w, double now);
/* When watch_idle turns true if nothing arrives; 0 when no deadline runs. */
double watch_idle_at(const struct watch *w);
/* The request ended: status 0 when no answer came, why the transport's
 * words for a failure (NULL otherwise). Sets the phase: WATCH_WAITING with
 * wait_until, now or later. */
void watch_done(struct watch *w, long status, enum watch_result res, const char *why,
		double now);

#endif
