/* The list+watch state machine (kube/watch.h) against a scripted API
 * server: each answer of the input goes through watch_start, watch_header,
 * watch_data and watch_done as the transport would hand it over, and the
 * objects to the decoder as the kube source does. Whatever the answers,
 * the machine must wait afterwards, and never longer than a Retry-After
 * is trusted (backoff.h).
 *
 * The header lines and body chunks are handed over as curl does, not
 * NUL-terminated (and here with nothing readable after them).
 *
 * Input: answers separated by a NUL byte, each "STATUS RESULT\n" (RESULT:
 * enum watch_result), the header lines as the transport gives them (the
 * status line, fields, the empty line), then the body. */
#include "fuzz.h"

#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "kube/watch.h"
#include "model/model.h"
#include "watch_object.h"

static int lists_begun, lists_ended;

/* The end of a page followed by one that cannot be read: the bytes the
 * transport hands over (not NUL-terminated) are copied against it, so that
 * reading one byte past them faults. */
static char *guard_end;
static size_t guard_size;

static const char *as_received(const char *data, size_t len)
{
	if (len > guard_size)
		return data;
	return memcpy(guard_end - len, data, len);
}

static void on_begin(void *ctx, struct watch *w)
{
	(void)ctx;
	(void)w;
	lists_begun++;
}

static void on_end(void *ctx, struct watch *w)
{
	(void)ctx;
	(void)w;
	lists_ended++;
}

static const struct watch_handler handler = {
	.list_begin = on_begin,
	.object = fuzz_watch_object,
	.list_end = on_end,
};

/* The headers of an answer, line by line; returns where the body starts. */
static const char *answer_headers(struct watch *w, const char *p, const char *end, double now)
{
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl + 1 : end;
		bool blank = eol - p <= 2 && (*p == '\n' || *p == '\r');

		watch_header(w, as_received(p, (size_t)(eol - p)), (size_t)(eol - p), now);
		p = eol;
		if (blank)
			break;
	}
	return p;
}

/* One answer [p, end) to the request under way. */
static void answer(struct watch *w, const char *p, const char *end, double *now)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	char *path = watch_start(w, *now), line[32], *rest;
	size_t chunk = 1, n = (size_t)((nl ? nl : end) - p);
	enum watch_result res;
	long status;

	if (!path || w->phase == WATCH_WAITING)
		abort();
	free(path);
	snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) ? n : sizeof(line) - 1), p);
	status = strtol(line, &rest, 10);
	res = (enum watch_result)(labs(strtol(rest, NULL, 10)) % 4);
	if (status < 0 || status > 999)
		status = 0;
	p = answer_headers(w, nl ? nl + 1 : end, end, *now);
	/* The body in chunks of growing size, as reads return them. */
	while (p < end && res == WATCH_RESULT_OK) {
		size_t n = chunk < (size_t)(end - p) ? chunk : (size_t)(end - p);

		if (watch_data(w, status, as_received(p, n), n, *now) < 0)
			res = WATCH_RESULT_TRANSPORT;
		p += n;
		chunk = chunk * 3 % 251 + 1;
	}
	*now += 0.5;
	if (res == WATCH_RESULT_IDLE && !watch_idle(w, *now + 1e6))
		res = WATCH_RESULT_TIMEOUT;
	watch_done(w, status, res, res == WATCH_RESULT_OK ? NULL : "fuzz", *now);
	if (w->phase != WATCH_WAITING || isnan(w->wait_until) || w->wait_until < *now ||
	    w->wait_until > *now + BACKOFF_RETRY_AFTER_MAX || lists_ended > lists_begun)
		abort();
	*now = w->wait_until;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *pages;

	(void)argc;
	(void)argv;
	log_set_level(LOG_DEBUG);
	guard_size = (size_t)sysconf(_SC_PAGESIZE);
	pages = mmap(NULL, 2 * guard_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		     -1, 0);
	if (pages == MAP_FAILED || mprotect(pages + guard_size, guard_size, PROT_NONE) < 0)
		abort();
	guard_end = pages + guard_size;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nul;
	double now = 1000.0;
	struct watch w;

	lists_begun = lists_ended = 0;
	if (watch_init(&w, "services", "Service", "/api/v1/services", "", 1 << 20, &handler,
		       NULL) < 0)
		abort();
	for (; p < end; p = nul + 1) {
		nul = memchr(p, '\0', (size_t)(end - p));
		if (!nul)
			nul = end;
		answer(&w, p, nul, &now);
	}
	watch_free(&w);
	return 0;
}
