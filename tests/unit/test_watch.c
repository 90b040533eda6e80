/* Unit tests of the list+watch state machine (kube/watch.h), driven with
 * scripted answers of the API server: no curl, no socket. Each case names
 * what ../shared/spec/apiserver-protocol.md says of it. The times given to
 * the machine are made up; the tests never wait. */
#define _GNU_SOURCE /* asprintf */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "kube/watch.h"

#define EPS 1e-9
#define SEL "labelSelector=a%3Db"
#define MAX_SEEN 64

/* What the handler was told. */
struct seen {
	int list_begins, list_ends;
	int n;
	char what[MAX_SEEN][80];   /* "ADDED a/x 12": event, ns/name, resourceVersion */
};

static const char *const event_names[KUBE_EVENT__COUNT] = { "ADDED", "MODIFIED", "DELETED" };

static void on_begin(void *ctx, struct watch *w)
{
	(void)w;
	((struct seen *)ctx)->list_begins++;
}

static void on_end(void *ctx, struct watch *w)
{
	(void)w;
	((struct seen *)ctx)->list_ends++;
}

static const char *str_at(const cJSON *obj, const char *a, const char *b)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, a), b);

	return cJSON_IsString(v) ? v->valuestring : "?";
}

static void on_object(void *ctx, struct watch *w, enum kube_event ev, cJSON *obj)
{
	struct seen *s = ctx;

	(void)w;
	assert_true(s->n < MAX_SEEN);
	snprintf(s->what[s->n++], sizeof(s->what[0]), "%s %s/%s %s", event_names[ev],
		 str_at(obj, "metadata", "namespace"), str_at(obj, "metadata", "name"),
		 str_at(obj, "metadata", "resourceVersion"));
}

static const struct watch_handler handler = {
	.list_begin = on_begin,
	.object = on_object,
	.list_end = on_end,
};

struct fixture {
	struct watch w;
	struct seen seen;
	double now;
};

/* A watch on a server not tried yet (it may send streaming lists). */
static int setup_new(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(watch_init(&f->w, "services", "Service", "/api/v1/services", SEL, 4096,
				    &handler, &f->seen), 0);
	assert_int_equal(f->w.list_mode, WATCH_LIST_UNKNOWN);
	f->now = 1000.0;
	srandom(7);
	*state = f;
	return 0;
}

/* A watch on a server known to send no streaming lists: paged lists. */
static int setup(void **state)
{
	setup_new(state);
	((struct fixture *)*state)->w.list_mode = WATCH_LIST_PAGED;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	watch_free(&f->w);
	free(f);
	return 0;
}

/* --- the scripted server ------------------------------------------------- */

/* The request the machine sends now (it must be due), checked against the
 * expected path and query; "*" in want matches any run of characters up
 * to the next '&' (the random timeoutSeconds). */
static void expect_request(struct fixture *f, const char *want)
{
	char *path;
	const char *p, *q;

	assert_int_equal(f->w.phase, WATCH_WAITING);
	assert_true(f->w.wait_until <= f->now + EPS);
	path = watch_start(&f->w, f->now);
	assert_non_null(path);
	for (p = path, q = want; *q; q++) {
		if (*q == '*') {
			while (*p && *p != '&')
				p++;
			continue;
		}
		if (*p != *q)
			fail_msg("request %s, want %s", path, want);
		p++;
	}
	if (*p)
		fail_msg("request %s, want %s", path, want);
	free(path);
}

static void header(struct fixture *f, const char *line)
{
	watch_header(&f->w, line, strlen(line), f->now);
}

/* Body bytes in pieces of size bytes (0: at once); returns what the last
 * watch_data returned. */
static int data(struct fixture *f, long status, const char *body, size_t size)
{
	size_t len = strlen(body), off = 0;
	int rc = 0;

	if (!size)
		size = len ? len : 1;
	while (off < len && rc == 0) {
		size_t n = len - off < size ? len - off : size;

		rc = watch_data(&f->w, status, body + off, n, f->now);
		off += n;
	}
	return rc;
}

static void done(struct fixture *f, long status, enum watch_result res)
{
	watch_done(&f->w, status, res, res == WATCH_RESULT_OK ? NULL : "Connection reset", f->now);
	assert_int_equal(f->w.phase, WATCH_WAITING);
}

/* A whole answer: status line, headers (NULL-terminated), body. */
static void answer(struct fixture *f, long status, const char *const *headers, const char *body)
{
	char line[64];

	snprintf(line, sizeof(line), "HTTP/1.1 %ld X\r\n", status);
	header(f, line);
	for (; headers && *headers; headers++)
		header(f, *headers);
	header(f, "\r\n");
	assert_int_equal(data(f, status, body, 0), 0);
	done(f, status, WATCH_RESULT_OK);
}

/* "ns/name@rv" -> a list item (no kind, as the real server sends). */
static char *item(const char *spec)
{
	char ns[32], name[32], rv[16], *out;

	assert_int_equal(sscanf(spec, "%31[^/]/%31[^@]@%15s", ns, name, rv), 3);
	assert_true(asprintf(&out, "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\","
			     "\"resourceVersion\":\"%s\"},\"spec\":{}}", ns, name, rv) > 0);
	return out;
}

/* A ServiceList at rv with continue token cont ("" for the last page) and
 * the items given as "ns/name@rv", NULL-terminated. */
static char *list_body(const char *rv, const char *cont, ...)
{
	char *items = strdup(""), *out, *next, *it;
	const char *spec;
	va_list ap;

	va_start(ap, cont);
	while ((spec = va_arg(ap, const char *))) {
		it = item(spec);
		assert_true(asprintf(&next, "%s%s%s", items, *items ? "," : "", it) > 0);
		free(items);
		free(it);
		items = next;
	}
	va_end(ap);
	assert_true(asprintf(&out, "{\"kind\":\"ServiceList\",\"apiVersion\":\"v1\",\"metadata\":"
			     "{\"resourceVersion\":\"%s\"%s%s%s},\"items\":[%s]}", rv,
			     *cont ? ",\"continue\":\"" : "", cont, *cont ? "\"" : "", items) > 0);
	free(items);
	return out;
}

static void answer_list(struct fixture *f, char *body)
{
	answer(f, 200, NULL, body);
	free(body);
}

/* One watch event line: type and "ns/name@rv" (a Service with kind, as in
 * a watch). */
static char *event(const char *type, const char *spec)
{
	char *obj = item(spec), *out;

	assert_true(asprintf(&out, "{\"type\":\"%s\",\"object\":{\"kind\":\"Service\",%s}\n", type,
			     obj + 1) > 0);
	free(obj);
	return out;
}

static char *bookmark(const char *rv)
{
	char *out;

	assert_true(asprintf(&out, "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Service\","
			     "\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"%s\"},"
			     "\"spec\":{},\"status\":{\"loadBalancer\":{}}}}\n", rv) > 0);
	return out;
}

static char *status_line(int code, const char *reason)
{
	char *out;

	assert_true(asprintf(&out, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
			     "\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
			     "\"message\":\"too old resource version: 1 (5)\",\"reason\":\"%s\","
			     "\"code\":%d}}\n", reason, code) > 0);
	return out;
}

static const char *status_body(int code)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
		 "\"status\":\"Failure\",\"message\":\"injected %d\",\"code\":%d}", code, code);
	return buf;
}

/* Stream lines to an open watch (headers sent already), at once. */
static void stream(struct fixture *f, char *line)
{
	assert_int_equal(data(f, 200, line, 0), 0);
	free(line);
}

static void stream_open(struct fixture *f)
{
	header(f, "HTTP/1.1 200 OK\r\n");
	header(f, "Content-Type: application/json\r\n");
	header(f, "\r\n");
}

static void assert_seen(const struct fixture *f, int i, const char *want)
{
	assert_true(i < f->seen.n);
	assert_string_equal(f->seen.what[i], want);
}

#define LIST0 "/api/v1/services?" SEL "&limit=500&resourceVersion=0"
/* A relist: no resourceVersion, a consistent read. */
#define RELIST "/api/v1/services?" SEL "&limit=500"
#define WATCH_FROM(rv) "/api/v1/services?" SEL "&watch=1&resourceVersion=" rv \
	"&allowWatchBookmarks=true&timeoutSeconds=*"

/* The first list, one page: items a and b at resourceVersion 7. */
static void listed_at_7(struct fixture *f)
{
	expect_request(f, LIST0);
	answer_list(f, list_body("7", "", "ns/a@5", "ns/b@6", NULL));
}

/* A watch from rv, open and 2 s old (past the short-watch rule). */
static void watching(struct fixture *f, const char *want)
{
	expect_request(f, want);
	stream_open(f);
	f->now += 2;
}

/* --- list ------------------------------------------------------------------ */

/* "First list ?limit=500&resourceVersion=0": every item goes to the handler
 * as ADDED between list_begin and list_end; the list's resourceVersion is
 * where the watch starts. */
static void test_first_list(void **state)
{
	struct fixture *f = *state;

	assert_true(f->w.relist);
	listed_at_7(f);
	assert_int_equal(f->seen.list_begins, 1);
	assert_int_equal(f->seen.list_ends, 1);
	assert_int_equal(f->seen.n, 2);
	assert_seen(f, 0, "ADDED ns/a 5");
	assert_seen(f, 1, "ADDED ns/b 6");
	assert_string_equal(f->w.rv, "7");
	assert_true(f->w.listed);
	assert_false(f->w.relist);
	assert_int_equal(f->w.stats.lists, 1);
	/* The watch follows at once. */
	assert_true(f->w.wait_until == f->now);
}

/* "Further pages add &continue=<token>"; the list completes with the page
 * without one, and its resourceVersion (the same on every page) is kept. */
static void test_paging_with_continue(void **state)
{
	struct fixture *f = *state;

	expect_request(f, LIST0);
	answer_list(f, list_body("9", "tok/1+=", "ns/a@1", NULL));
	assert_int_equal(f->seen.list_ends, 0);
	assert_false(f->w.listed);
	/* The token is URL-encoded, and a continue page names no resourceVersion
	 * (the server refuses both together). */
	expect_request(f, "/api/v1/services?" SEL "&limit=500&continue=tok%2F1%2B%3D");
	answer_list(f, list_body("9", "tok2", "ns/b@2", NULL));
	expect_request(f, "/api/v1/services?" SEL "&limit=500&continue=tok2");
	answer_list(f, list_body("9", "", "ns/c@3", NULL));
	assert_int_equal(f->seen.list_begins, 1);
	assert_int_equal(f->seen.list_ends, 1);
	assert_int_equal(f->seen.n, 3);
	assert_seen(f, 2, "ADDED ns/c 3");
	assert_string_equal(f->w.rv, "9");
	assert_int_equal(f->w.stats.lists, 1);
	expect_request(f, WATCH_FROM("9"));
}

/* A list answer without items or resourceVersion is bad data: the list
 * starts over from scratch after a backoff. */
static void test_list_not_a_list(void **state)
{
	struct fixture *f = *state;

	expect_request(f, LIST0);
	answer_list(f, list_body("3", "tok", "ns/a@1", NULL));
	expect_request(f, "/api/v1/services?" SEL "&limit=500&continue=tok");
	answer(f, 200, NULL, "{\"kind\":\"ServiceList\",\"metadata\":{}}");
	assert_int_equal(f->w.stats.errors[WATCH_ERR_BAD_DATA], 1);
	assert_true(f->w.wait_until > f->now);
	f->now = f->w.wait_until;
	expect_request(f, LIST0);
	assert_int_equal(f->seen.list_begins, 2);
}

/* --- watch ------------------------------------------------------------------ */

/* "?watch=1&resourceVersion=<last seen>&allowWatchBookmarks=true&
 * timeoutSeconds=<300..600 random>"; the transport's limit leaves the
 * server a minute past it. Events go to the handler and move the
 * resourceVersion; a stream that ends is watched again at once from it. */
static void test_list_then_watch(void **state)
{
	struct fixture *f = *state;
	long timeouts[2];

	listed_at_7(f);
	watching(f, WATCH_FROM("7"));
	assert_int_equal(f->w.phase, WATCH_STREAMING);
	assert_int_equal(f->w.stats.watches, 1);
	timeouts[0] = f->w.timeout;
	stream(f, event("ADDED", "ns/c@8"));
	stream(f, event("MODIFIED", "ns/a@9"));
	stream(f, event("DELETED", "ns/b@10"));
	assert_int_equal(f->seen.n, 5);
	assert_seen(f, 2, "ADDED ns/c 8");
	assert_seen(f, 3, "MODIFIED ns/a 9");
	assert_seen(f, 4, "DELETED ns/b 10");
	assert_string_equal(f->w.rv, "10");
	assert_int_equal(f->w.stats.events[KUBE_DELETED], 1);
	f->now += 300;
	done(f, 200, WATCH_RESULT_OK);
	assert_true(f->w.wait_until == f->now);
	assert_int_equal(f->seen.list_begins, 1);
	watching(f, WATCH_FROM("10"));
	timeouts[1] = f->w.timeout;
	for (int i = 0; i < 2; i++)
		assert_true(timeouts[i] >= 360 && timeouts[i] <= 660);
	assert_int_equal(f->w.stats.watches, 2);
}

/* "BOOKMARK: record the resourceVersion only": the handler sees nothing,
 * the next watch starts from it. */
static void test_bookmarks(void **state)
{
	struct fixture *f = *state;

	listed_at_7(f);
	watching(f, WATCH_FROM("7"));
	stream(f, bookmark("42"));
	assert_int_equal(f->seen.n, 2);
	assert_string_equal(f->w.rv, "42");
	assert_int_equal(f->w.stats.bookmarks, 1);
	done(f, 200, WATCH_RESULT_OK);
	watching(f, WATCH_FROM("42"));
}

/* "One read may hold several events and one event may span several
 * reads": the stream fed 1 and 7 bytes at a time, with CRLF line ends,
 * and three events in one read. */
static void test_events_in_fragments(void **state)
{
	struct fixture *f = *state;
	char *a = event("ADDED", "ns/c@8"), *b = event("MODIFIED", "ns/c@9"), *all;

	listed_at_7(f);
	watching(f, WATCH_FROM("7"));
	assert_int_equal(data(f, 200, a, 1), 0);
	assert_int_equal(data(f, 200, b, 7), 0);
	assert_int_equal(f->seen.n, 4);
	assert_seen(f, 3, "MODIFIED ns/c 9");
	free(a);
	free(b);
	a = event("DELETED", "ns/c@10");
	a[strlen(a) - 1] = '\0';
	b = bookmark("11");
	assert_true(asprintf(&all, "%s\r\n%s%s", a, b, "{\"type\":\"ADDED\",\"obj") > 0);
	assert_int_equal(data(f, 200, all, 0), 0);
	assert_int_equal(data(f, 200, "ect\":{\"metadata\":{\"name\":\"d\",\"namespace\":\"ns\","
			      "\"resourceVersion\":\"12\"}}}\n", 3), 0);
	assert_int_equal(f->seen.n, 6);
	assert_seen(f, 4, "DELETED ns/c 10");
	assert_seen(f, 5, "ADDED ns/d 12");
	assert_string_equal(f->w.rv, "12");
	free(a);
	free(b);
	free(all);
}

/* A stream cut (a reset, not the server's end) resumes from the last
 * resourceVersion at once: no list, no backoff. */
static void test_cut_stream_resumes(void **state)
{
	struct fixture *f = *state;

	listed_at_7(f);
	watching(f, WATCH_FROM("7"));
	stream(f, event("ADDED", "ns/c@8"));
	assert_int_equal(data(f, 200, "{\"type\":\"MODIFIED\",\"object\":{\"metadata\"", 0), 0);
	done(f, 200, WATCH_RESULT_TRANSPORT);
	assert_true(f->w.wait_until == f->now);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_TRANSPORT], 0);
	watching(f, WATCH_FROM("8"));
	assert_int_equal(f->seen.n, 3);
}

/* "Too old resourceVersion: 200, then one ERROR event whose object is a
 * Status with code 410 ... The client lists again and replaces its whole
 * state." The stream is dropped at the event, the relist starts at once
 * and begins with list_begin; reason Gone (old servers) likewise. The
 * relist names no resourceVersion: "client-go relists that way after 410
 * Expired, so it never goes back in time" (resourceVersion=0 may be
 * answered from an older watch cache, kubernetes#59848, B12). */
static void test_error_410_in_stream(void **state)
{
	struct fixture *f = *state;
	const char *reasons[] = { "Expired", "Gone" };

	listed_at_7(f);
	for (int i = 0; i < 2; i++) {
		char *line = status_line(410, reasons[i]);

		watching(f, i ? WATCH_FROM("20") : WATCH_FROM("7"));
		assert_int_equal(data(f, 200, line, 0), -1);
		free(line);
		done(f, 200, WATCH_RESULT_TRANSPORT);
		assert_true(f->w.relist);
		assert_true(f->w.wait_until == f->now);
		assert_int_equal(f->w.stats.expired, (uint64_t)i + 1);
		expect_request(f, RELIST);
		assert_int_equal(f->seen.list_begins, i + 2);
		answer_list(f, list_body("20", "", "ns/a@5", NULL));
		assert_int_equal(f->seen.list_ends, i + 2);
		assert_false(f->w.relist);
	}
	assert_int_equal(f->w.stats.errors[WATCH_ERR_BAD_DATA], 0);
}

/* "An expired continue token answers 410: list again from the start." */
static void test_410_on_continue(void **state)
{
	struct fixture *f = *state;

	expect_request(f, LIST0);
	answer_list(f, list_body("9", "tok", "ns/a@1", NULL));
	expect_request(f, "/api/v1/services?" SEL "&limit=500&continue=tok");
	answer(f, 410, NULL, status_body(410));
	assert_true(f->w.wait_until == f->now);
	assert_int_equal(f->w.stats.expired, 1);
	assert_null(f->w.cont);
	expect_request(f, LIST0);
	assert_int_equal(f->seen.list_begins, 2);
	answer_list(f, list_body("12", "", "ns/a@1", "ns/b@11", NULL));
	assert_int_equal(f->seen.list_ends, 1);
	assert_string_equal(f->w.rv, "12");
}

/* A garbage line or an unknown event type drops the stream, counted as
 * bad data, and the watch resumes from the last resourceVersion (no
 * list) after a backoff. */
static void test_garbage_line(void **state)
{
	struct fixture *f = *state;

	listed_at_7(f);
	watching(f, WATCH_FROM("7"));
	stream(f, event("ADDED", "ns/c@8"));
	assert_int_equal(data(f, 200, "{\"type\":\"ADDED\",\"object\":{garbage\n", 0), -1);
	done(f, 200, WATCH_RESULT_TRANSPORT);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_BAD_DATA], 1);
	assert_true(f->w.wait_until > f->now);
	f->now = f->w.wait_until;
	watching(f, WATCH_FROM("8"));
	assert_int_equal(data(f, 200, "{\"type\":\"RENAMED\",\"object\":{}}\n", 0), -1);
	done(f, 200, WATCH_RESULT_TRANSPORT);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_BAD_DATA], 2);
	assert_int_equal(f->seen.list_begins, 1);
}

/* An event over max_line (--max-event-bytes) drops the stream, and a
 * list catches up: watching from the same resourceVersion would meet it
 * again. */
static void test_event_too_large(void **state)
{
	struct fixture *f = *state;
	char *big = malloc(5000);

	listed_at_7(f);
	watching(f, WATCH_FROM("7"));
	memset(big, 'x', 4999);
	big[4999] = '\0';
	assert_int_equal(data(f, 200, big, 1000), -1);
	free(big);
	done(f, 200, WATCH_RESULT_TRANSPORT);
	assert_true(f->w.relist);
	f->now = f->w.wait_until;
	expect_request(f, RELIST);
}

/* --- failures ---------------------------------------------------------------- */

/* "429 and 5xx without Retry-After: backoff, 0.8 s doubling, with jitter
 * (up to 20 % off)"; the watch retries from the same resourceVersion. */
static void test_backoff_on_5xx(void **state)
{
	struct fixture *f = *state;
	double d = 0.8;

	listed_at_7(f);
	for (int i = 0; i < 4; i++, d *= 2) {
		double wait;

		expect_request(f, WATCH_FROM("7"));
		answer(f, i % 2 ? 503 : 500, NULL, status_body(500));
		wait = f->w.wait_until - f->now;
		if (wait < 0.8 * d - EPS || wait > d + EPS)
			fail_msg("failure %d: wait %.3f s, want [%.3f, %.3f]", i, wait, 0.8 * d, d);
		f->now = f->w.wait_until;
	}
	assert_int_equal(f->w.stats.errors[WATCH_ERR_SERVER], 4);
	assert_int_equal(f->seen.list_begins, 1);
}

/* "429 and 5xx, with Retry-After: wait that long", on lists and watches. */
static void test_retry_after_seconds(void **state)
{
	struct fixture *f = *state;
	const char *const h5[] = { "Retry-After: 5\r\n", NULL };
	const char *const h2[] = { "retry-after:2\r\n", NULL };

	expect_request(f, LIST0);
	answer(f, 503, h5, status_body(503));
	assert_true(f->w.wait_until == f->now + 5);
	f->now += 5;
	expect_request(f, LIST0);
	answer(f, 429, h2, status_body(429));
	assert_true(f->w.wait_until == f->now + 2);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_THROTTLED], 1);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_SERVER], 1);
}

/* "401: read the token file again, then retry": reauth is asked for the
 * next request, which waits a backoff. */
static void test_401_rereads_token(void **state)
{
	struct fixture *f = *state;

	listed_at_7(f);
	expect_request(f, WATCH_FROM("7"));
	assert_false(f->w.reauth);
	answer(f, 401, NULL, status_body(401));
	assert_true(f->w.reauth);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_UNAUTHORIZED], 1);
	assert_true(f->w.wait_until > f->now && f->w.wait_until <= f->now + 0.8 + EPS);
}

/* "403: log clearly which permission is missing; keep retrying slowly":
 * every 30 s, not at the backoff's 0.8 s. */
static void test_403_slow_retry(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < 3; i++) {
		expect_request(f, LIST0);
		answer(f, 403, NULL, status_body(403));
		assert_true(f->w.wait_until >= f->now + 30 - EPS);
		assert_true(f->w.wait_until <= f->now + 30 + EPS);
		f->now = f->w.wait_until;
	}
	assert_int_equal(f->w.stats.errors[WATCH_ERR_FORBIDDEN], 3);
	assert_int_equal(f->seen.list_begins, 3);
}

/* No answer at all (connection refused, TLS): a transport error, backoff,
 * the same request again. */
static void test_transport_error(void **state)
{
	struct fixture *f = *state;

	listed_at_7(f);
	expect_request(f, WATCH_FROM("7"));
	done(f, 0, WATCH_RESULT_TRANSPORT);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_TRANSPORT], 1);
	assert_true(f->w.wait_until > f->now);
	f->now = f->w.wait_until;
	expect_request(f, WATCH_FROM("7"));
	done(f, 0, WATCH_RESULT_TIMEOUT);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_TRANSPORT], 2);
}

/* "A watch that ends within 1 s with no event counts as a failure": one
 * with an event, or one that lasted longer, does not. */
static void test_short_watch(void **state)
{
	struct fixture *f = *state;

	listed_at_7(f);
	expect_request(f, WATCH_FROM("7"));
	stream_open(f);
	f->now += 0.5;
	done(f, 200, WATCH_RESULT_OK);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_SHORT], 1);
	assert_true(f->w.wait_until > f->now);
	f->now = f->w.wait_until;

	expect_request(f, WATCH_FROM("7"));
	stream_open(f);
	stream(f, event("ADDED", "ns/c@8"));
	f->now += 0.5;
	done(f, 200, WATCH_RESULT_OK);
	assert_true(f->w.wait_until == f->now);

	expect_request(f, WATCH_FROM("8"));
	stream_open(f);
	f->now += 1.5;
	done(f, 200, WATCH_RESULT_OK);
	assert_true(f->w.wait_until == f->now);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_SHORT], 1);
}

/* After 2 minutes of health the backoff starts over at 0.8 s: a watch that
 * the server took and that ran that long counts, from its start. */
static void test_backoff_resets_after_health(void **state)
{
	struct fixture *f = *state;

	listed_at_7(f);
	for (int i = 0; i < 5; i++) {
		expect_request(f, WATCH_FROM("7"));
		answer(f, 500, NULL, status_body(500));
		f->now = f->w.wait_until;
	}
	watching(f, WATCH_FROM("7"));
	f->now += 200;
	done(f, 200, WATCH_RESULT_OK);
	expect_request(f, WATCH_FROM("7"));
	answer(f, 500, NULL, status_body(500));
	assert_true(f->w.wait_until - f->now <= 0.8 + EPS);
}

/* "A watch request can also be answered with a plain HTTP 410 status: same
 * meaning": a list again, at once, not the same watch retried forever. */
static void test_plain_410_on_watch(void **state)
{
	struct fixture *f = *state;

	listed_at_7(f);
	expect_request(f, WATCH_FROM("7"));
	answer(f, 410, NULL, status_body(410));
	assert_true(f->w.relist);
	assert_true(f->w.wait_until == f->now);
	assert_int_equal(f->w.stats.expired, 1);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_HTTP], 0);
	expect_request(f, RELIST);
	assert_int_equal(f->seen.list_begins, 2);
	answer_list(f, list_body("30", "", "ns/a@29", NULL));
	assert_int_equal(f->seen.list_ends, 2);
	expect_request(f, WATCH_FROM("30"));
}

/* Every relist is a consistent read, paged like the first list, whatever
 * forced it (an expired continue token while relisting, an event too
 * large); only a list when nothing was ever held asks for
 * resourceVersion=0. */
static void test_relist_is_consistent(void **state)
{
	struct fixture *f = *state;

	/* An expired continue token on the very first list: still nothing
	 * held, the watch cache may answer. */
	expect_request(f, LIST0);
	answer_list(f, list_body("9", "tok", "ns/a@1", NULL));
	expect_request(f, "/api/v1/services?" SEL "&limit=500&continue=tok");
	answer(f, 410, NULL, status_body(410));
	expect_request(f, LIST0);
	answer_list(f, list_body("9", "", "ns/a@1", NULL));
	/* The relist after a 410, and the one after its continue token expired. */
	expect_request(f, WATCH_FROM("9"));
	answer(f, 410, NULL, status_body(410));
	expect_request(f, RELIST);
	answer_list(f, list_body("40", "tok3", "ns/a@1", NULL));
	expect_request(f, "/api/v1/services?" SEL "&limit=500&continue=tok3");
	answer(f, 410, NULL, status_body(410));
	expect_request(f, RELIST);
	answer_list(f, list_body("41", "", "ns/a@1", NULL));
	expect_request(f, WATCH_FROM("41"));
}

/* "Retry-After ... never trust it beyond a cap": 86400 waits 60 s. */
static void test_retry_after_capped(void **state)
{
	struct fixture *f = *state;
	const char *const day[] = { "Retry-After: 86400\r\n", NULL };
	const char *const huge[] = { "Retry-After: 99999999999999999999999\r\n", NULL };

	expect_request(f, LIST0);
	answer(f, 503, day, status_body(503));
	assert_true(f->w.wait_until == f->now + 60);
	f->now = f->w.wait_until;
	expect_request(f, LIST0);
	answer(f, 429, huge, status_body(429));
	assert_true(f->w.wait_until == f->now + 60);
}

/* "Retry-After (seconds, or an HTTP-date)": a date 30 s ahead waits 30 s
 * (give or take the second the test may straddle); a date past, or text
 * that is neither, falls back to the backoff (0.8 s, jittered), never to
 * an immediate retry. */
static void test_retry_after_http_date(void **state)
{
	struct fixture *f = *state;
	char ahead[80], past[80];
	const char *const h_ahead[] = { ahead, NULL }, *const h_past[] = { past, NULL };
	const char *const h_junk[] = { "Retry-After: soon\r\n", NULL };
	time_t t = time(NULL);
	struct tm tm;
	double wait;

	strftime(ahead, sizeof(ahead), "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n",
		 gmtime_r(&(time_t){ t + 30 }, &tm));
	strftime(past, sizeof(past), "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n",
		 gmtime_r(&(time_t){ t - 30 }, &tm));
	expect_request(f, LIST0);
	answer(f, 503, h_ahead, status_body(503));
	wait = f->w.wait_until - f->now;
	if (wait < 29 - EPS || wait > 30 + EPS)
		fail_msg("an HTTP-date 30 s ahead: wait %.3f s", wait);
	f->now = f->w.wait_until;
	for (int i = 0; i < 2; i++) {
		expect_request(f, LIST0);
		answer(f, 503, i ? h_junk : h_past, status_body(503));
		wait = f->w.wait_until - f->now;
		if (wait < 0.5 || wait > 1.6 + EPS)
			fail_msg("%s: wait %.3f s, want the backoff", i ? "garbage" : "a date past",
				 wait);
		f->now = f->w.wait_until;
	}
}

/* "A stream that stays open but delivers nothing must be detected by the
 * client": no byte (no event, no bookmark) for the idle timeout, and the
 * stream is dropped, counted as idle, and watched again at once from the
 * last resourceVersion, on a new connection. Any byte, a bookmark or a
 * header, moves the deadline. */
static void test_idle_deadline(void **state)
{
	struct fixture *f = *state;
	double t0;

	watch_set_idle_timeout(5);
	listed_at_7(f);
	assert_true(watch_idle_at(&f->w) == 0); /* no deadline while waiting */
	expect_request(f, WATCH_FROM("7"));
	assert_false(f->w.fresh_connect);
	t0 = f->now;
	assert_true(watch_idle_at(&f->w) == t0 + 5);
	f->now += 4;
	stream_open(f);
	assert_true(watch_idle_at(&f->w) == t0 + 9);
	f->now += 4.9;
	assert_false(watch_idle(&f->w, f->now));
	stream(f, bookmark("12"));
	f->now += 4.9;
	assert_false(watch_idle(&f->w, f->now));
	stream(f, event("ADDED", "ns/c@13"));
	f->now += 5;
	assert_true(watch_idle(&f->w, f->now));
	done(f, 200, WATCH_RESULT_IDLE);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_IDLE], 1);
	assert_false(f->w.relist);
	assert_true(f->w.wait_until == f->now);
	expect_request(f, WATCH_FROM("13"));
	assert_true(f->w.fresh_connect);
	/* One idle stream does not make every later request open a connection. */
	stream_open(f);
	f->now += 2;
	done(f, 200, WATCH_RESULT_OK);
	expect_request(f, WATCH_FROM("13"));
	assert_false(f->w.fresh_connect);
	/* A list has no idle deadline (the transport's own limit bounds it). */
	f->now += 2;
	answer(f, 410, NULL, status_body(410));
	expect_request(f, RELIST);
	assert_true(watch_idle_at(&f->w) == 0);
	assert_false(watch_idle(&f->w, f->now + 1000));
	watch_set_idle_timeout(WATCH_IDLE_TIMEOUT_S);
}

/* --- lists as they stream in ---------------------------------------------- */

/* Each item of a list page reaches the handler as soon as its last byte
 * has come, before the page ends (memory follows an item, not the page);
 * the envelope, at the end, gives the resourceVersion. */
static void test_list_items_as_they_come(void **state)
{
	struct fixture *f = *state;
	char *body = list_body("7", "", "ns/a@5", "ns/b@6", NULL);
	char *second = strstr(body, "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"b\"");
	size_t split = (size_t)(second - body) + 20;

	expect_request(f, LIST0);
	stream_open(f);
	assert_int_equal(watch_data(&f->w, 200, body, split, f->now), 0);
	assert_int_equal(f->seen.n, 1);
	assert_seen(f, 0, "ADDED ns/a 5");
	for (size_t i = split; i < strlen(body); i++)
		assert_int_equal(watch_data(&f->w, 200, body + i, 1, f->now), 0);
	assert_int_equal(f->seen.n, 2);
	assert_int_equal(f->seen.list_ends, 0);
	done(f, 200, WATCH_RESULT_OK);
	assert_int_equal(f->seen.list_ends, 1);
	assert_string_equal(f->w.rv, "7");
	free(body);
}

/* "A list that breaks off mid-way is a transport error": what came stays
 * with the handler (nothing is deleted before a list completes), and the
 * list starts over from scratch after a backoff. */
static void test_list_broken_off(void **state)
{
	struct fixture *f = *state;
	char *body = list_body("7", "", "ns/a@5", "ns/b@6", NULL);

	expect_request(f, LIST0);
	stream_open(f);
	assert_int_equal(watch_data(&f->w, 200, body, strlen(body) - 30, f->now), 0);
	done(f, 200, WATCH_RESULT_TRANSPORT);
	assert_int_equal(f->seen.n, 1);
	assert_int_equal(f->seen.list_ends, 0);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_TRANSPORT], 1);
	assert_true(f->w.wait_until > f->now);
	f->now = f->w.wait_until;
	expect_request(f, LIST0);
	assert_int_equal(f->seen.list_begins, 2);
	/* A body that ends without closing is no list either. */
	assert_int_equal(data(f, 200, body, 0) + (int)(body[strlen(body) - 1] = '\0'), 0);
	done(f, 200, WATCH_RESULT_OK);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_BAD_DATA], 1);
	assert_int_equal(f->seen.list_ends, 0);
	free(body);
}

/* A list item over --max-event-bytes, or an answer that is not a JSON
 * list, stops the transfer: bad data, a list from scratch. */
static void test_list_bad_items(void **state)
{
	struct fixture *f = *state;
	char *big = malloc(6000);

	memset(big, ' ', 5999);
	big[5999] = '\0';
	memcpy(big, "{\"metadata\":{},\"items\":[{\"a\":\"", 30);
	expect_request(f, LIST0);
	assert_int_equal(data(f, 200, big, 100), -1);
	done(f, 200, WATCH_RESULT_TRANSPORT);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_BAD_DATA], 1);
	f->now = f->w.wait_until;
	expect_request(f, LIST0);
	assert_int_equal(data(f, 200, "{\"items\":[{\"a\":1}]]", 0), -1);
	done(f, 200, WATCH_RESULT_TRANSPORT);
	f->now = f->w.wait_until;
	expect_request(f, LIST0);
	assert_int_equal(data(f, 200, "{\"items\":[{\"a\":tru}]}", 0), -1);
	done(f, 200, WATCH_RESULT_TRANSPORT);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_BAD_DATA], 3);
	/* The item before the stray bracket was whole: it went through. */
	assert_int_equal(f->seen.n, 1);
	assert_int_equal(f->seen.list_ends, 0);
	free(big);
}

/* An error answer is kept to its first 4 KiB for the log, however long. */
static void test_error_body_bounded(void **state)
{
	struct fixture *f = *state;
	char *big = malloc(1 << 20);

	memset(big, 'x', (1 << 20) - 1);
	big[(1 << 20) - 1] = '\0';
	expect_request(f, LIST0);
	assert_int_equal(data(f, 503, big, 65536), 0);
	assert_int_equal(f->w.body_len, WATCH_ERROR_BODY_MAX - 1);
	done(f, 503, WATCH_RESULT_OK);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_SERVER], 1);
	free(big);
}

/* --- streaming lists (WatchList) -------------------------------------------- */

#define STREAMING_LIST "/api/v1/services?" SEL "&watch=1&sendInitialEvents=true" \
	"&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=*"

static char *initial_end(const char *rv)
{
	char *out;

	assert_true(asprintf(&out, "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Service\","
			     "\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"%s\","
			     "\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}},"
			     "\"spec\":{}}}\n", rv) > 0);
	return out;
}

/* "Streaming list: ?watch=1&sendInitialEvents=true&resourceVersionMatch=
 * NotOlderThan&allowWatchBookmarks=true (with resourceVersion empty ...):
 * ADDED for every object, then a BOOKMARK whose metadata carries the
 * annotation k8s.io/initial-events-end: "true", then ordinary watch
 * events." The ADDED events are the list (their resourceVersions, in no
 * order, are not where the watch goes on from); the marker ends it. */
static void test_streaming_list(void **state)
{
	struct fixture *f = *state;

	expect_request(f, STREAMING_LIST);
	assert_int_equal(f->w.phase, WATCH_STREAMING);
	assert_int_equal(f->seen.list_begins, 1);
	stream_open(f);
	stream(f, event("ADDED", "ns/b@9"));
	stream(f, event("ADDED", "ns/a@5"));
	assert_int_equal(f->seen.n, 2);
	assert_null(f->w.rv);
	assert_int_equal(f->seen.list_ends, 0);
	stream(f, initial_end("12"));
	assert_int_equal(f->seen.list_ends, 1);
	assert_string_equal(f->w.rv, "12");
	assert_true(f->w.listed);
	assert_false(f->w.relist);
	assert_int_equal(f->w.list_mode, WATCH_LIST_STREAMING);
	assert_int_equal(f->w.stats.lists, 1);
	assert_int_equal(f->w.stats.streamed_lists, 1);
	assert_int_equal(f->w.stats.events[KUBE_ADDED], 0);
	/* Then an ordinary watch, resumed as one. */
	stream(f, event("MODIFIED", "ns/a@13"));
	stream(f, bookmark("14"));
	assert_string_equal(f->w.rv, "14");
	f->now += 300;
	done(f, 200, WATCH_RESULT_OK);
	watching(f, WATCH_FROM("14"));
	/* A relist after 410 is a streaming list again. */
	answer(f, 410, NULL, status_body(410));
	expect_request(f, STREAMING_LIST);
	assert_int_equal(f->seen.list_begins, 2);
	stream_open(f);
	stream(f, event("ADDED", "ns/a@13"));
	stream(f, initial_end("20"));
	assert_int_equal(f->seen.list_ends, 2);
	assert_int_equal(f->w.stats.streamed_lists, 2);
}

/* "A server that does not support it answers 422": a paged list at once
 * (no backoff, no error), and for this server from then on; 400 (a server
 * that does not know the parameters) likewise. */
static void test_streaming_list_refused(void **state)
{
	struct fixture *f = *state;

	expect_request(f, STREAMING_LIST);
	answer(f, 422, NULL, status_body(422));
	assert_int_equal(f->w.list_mode, WATCH_LIST_PAGED);
	assert_true(f->w.wait_until == f->now);
	for (int e = 0; e < WATCH_ERR__COUNT; e++)
		assert_int_equal(f->w.stats.errors[e], 0);
	expect_request(f, LIST0);
	assert_int_equal(f->seen.list_begins, 2);
	answer_list(f, list_body("7", "", "ns/a@5", NULL));
	expect_request(f, WATCH_FROM("7"));
	answer(f, 410, NULL, status_body(410));
	expect_request(f, RELIST);

	teardown(state);
	setup_new(state);
	f = *state;
	expect_request(f, STREAMING_LIST);
	answer(f, 400, NULL, status_body(400));
	assert_int_equal(f->w.list_mode, WATCH_LIST_PAGED);
	expect_request(f, LIST0);
}

/* Any other failure of a streaming list is an ordinary one: backoff, and
 * the streaming list is tried again. */
static void test_streaming_list_503(void **state)
{
	struct fixture *f = *state;

	expect_request(f, STREAMING_LIST);
	answer(f, 503, NULL, status_body(503));
	assert_int_equal(f->w.list_mode, WATCH_LIST_UNKNOWN);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_SERVER], 1);
	assert_true(f->w.wait_until > f->now);
	f->now = f->w.wait_until;
	expect_request(f, STREAMING_LIST);
}

/* "... or ignores the parameter": the server streams an ordinary watch
 * from no resourceVersion (ADDED for everything, then changes and
 * bookmarks) and never the end marker. Noticed at the first bookmark
 * without the annotation, or the first event other than ADDED (neither
 * taken), or when nothing has come for 10 s (the marker comes right after
 * the initial state): a paged list from scratch follows at once, and
 * paged lists from then on. None is counted as an error. */
static void test_streaming_list_ignored(void **state)
{
	struct fixture *f = *state;
	char *line;

	for (int how = 0; how < 3; how++) {
		if (how) {
			teardown(state);
			setup_new(state);
			f = *state;
		}
		expect_request(f, STREAMING_LIST);
		stream_open(f);
		stream(f, event("ADDED", "ns/a@5"));
		if (how == 0) {
			line = bookmark("9");
			assert_int_equal(data(f, 200, line, 0), -1);
			free(line);
			done(f, 200, WATCH_RESULT_TRANSPORT);
		} else if (how == 1) {
			line = event("MODIFIED", "ns/a@8");
			assert_int_equal(data(f, 200, line, 0), -1);
			free(line);
			done(f, 200, WATCH_RESULT_TRANSPORT);
		} else {
			assert_true(watch_idle_at(&f->w) == f->now + 10);
			f->now += 10;
			assert_true(watch_idle(&f->w, f->now));
			done(f, 200, WATCH_RESULT_IDLE);
		}
		assert_int_equal(f->seen.n, 1);
		assert_int_equal(f->w.list_mode, WATCH_LIST_PAGED);
		assert_true(f->w.wait_until == f->now);
		for (int e = 0; e < WATCH_ERR__COUNT; e++)
			assert_int_equal(f->w.stats.errors[e], 0);
		assert_null(f->w.rv);
		expect_request(f, LIST0);
		assert_int_equal(f->seen.list_begins, 2);
	}
}

/* A streaming list cut before its end marker starts over (a list from
 * scratch) after a backoff, as a streaming list: the server did send one. */
static void test_streaming_list_cut(void **state)
{
	struct fixture *f = *state;

	expect_request(f, STREAMING_LIST);
	stream_open(f);
	stream(f, event("ADDED", "ns/a@5"));
	f->now += 2;
	done(f, 200, WATCH_RESULT_TRANSPORT);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_TRANSPORT], 1);
	assert_int_equal(f->seen.list_ends, 0);
	assert_true(f->w.relist);
	assert_true(f->w.wait_until > f->now);
	f->now = f->w.wait_until;
	expect_request(f, STREAMING_LIST);
	assert_int_equal(f->seen.list_begins, 2);
	/* Ended cleanly without the marker: the same. */
	stream_open(f);
	f->now += 2;
	done(f, 200, WATCH_RESULT_OK);
	assert_int_equal(f->w.stats.errors[WATCH_ERR_TRANSPORT], 2);
	assert_int_equal(f->w.list_mode, WATCH_LIST_UNKNOWN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paging_with_continue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_not_a_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_then_watch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bookmarks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_in_fragments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_stream_resumes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_410_in_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_410_on_continue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff_on_5xx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_after_seconds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_401_rereads_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_403_slow_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transport_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_watch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff_resets_after_health, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_410_on_watch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relist_is_consistent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_after_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_after_http_date, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_items_as_they_come, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_broken_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_bad_items, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_body_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streaming_list, setup_new, teardown),
		cmocka_unit_test_setup_teardown(test_streaming_list_refused, setup_new, teardown),
		cmocka_unit_test_setup_teardown(test_streaming_list_503, setup_new, teardown),
		cmocka_unit_test_setup_teardown(test_streaming_list_ignored, setup_new, teardown),
		cmocka_unit_test_setup_teardown(test_streaming_list_cut, setup_new, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
