#include "kube/linebuf.h"

#include <stdlib.h>
#include <string.h>

void linebuf_init(struct linebuf *lb, size_t max_line)
{
	memset(lb, 0, sizeof(*lb));
	lb->max_line = max_line;
}

void linebuf_reset(struct linebuf *lb)
{
	lb->len = 0;
	/* A megabyte object once must not pin a megabyte for good. */
	if (lb->cap > 1 << 20) {
		free(lb->buf);
		lb->buf = NULL;
		lb->cap = 0;
	}
}

void linebuf_free(struct linebuf *lb)
{
	free(lb->buf);
	memset(lb, 0, sizeof(*lb));
}

static int linebuf_reserve(struct linebuf *lb, size_t need)
{
	size_t cap = lb->cap ? lb->cap : 4096;
	char *p;

	if (need <= lb->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	p = realloc(lb->buf, cap);
	if (!p)
		return -1;
	lb->buf = p;
	lb->cap = cap;
	return 0;
}

/* Hands out the complete lines at the start of the buffer and keeps the
 * tail. Returns what fn returned when it stopped (the rest is dropped: the
 * caller gives up on the stream), or -2 for a line over max_line. */
static int linebuf_emit(struct linebuf *lb, size_t scan_from, linebuf_fn *fn, void *ctx)
{
	size_t start = 0;
	char *nl;
	int rc = 0;

	while (rc == 0 && (nl = memchr(lb->buf + scan_from, '\n', lb->len - scan_from))) {
		size_t end = (size_t)(nl - lb->buf), len = end - start;

		*nl = '\0';
		if (len && lb->buf[end - 1] == '\r')
			lb->buf[start + --len] = '\0';
		if (len > lb->max_line)
			rc = -2;
		else if (len)
			rc = fn(lb->buf + start, len, ctx);
		start = scan_from = end + 1;
	}
	if (rc) {
		lb->len = 0;
		return rc;
	}
	memmove(lb->buf, lb->buf + start, lb->len - start);
	lb->len -= start;
	return 0;
}

int linebuf_feed(struct linebuf *lb, const char *data, size_t n, linebuf_fn *fn, void *ctx)
{
	size_t scan_from = lb->len;
	int rc;

	if (linebuf_reserve(lb, lb->len + n + 1) < 0)
		return -1;
	memcpy(lb->buf + lb->len, data, n);
	lb->len += n;
	rc = linebuf_emit(lb, scan_from, fn, ctx);
	if (rc)
		return rc;
	/* An unfinished line may still end in the \r of a CRLF. */
	if (lb->len > lb->max_line + 1) {
		lb->len = 0;
		return -2;
	}
	return 0;
}
