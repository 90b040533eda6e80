/* The watch stream's line framer, checked against a plain reference: fed in
 * chunks of any size, it must hand out exactly the non-empty lines of the
 * input (one \r before the \n dropped), in order, and fail with -2 at the
 * first line longer than its limit.
 *
 * Input: byte 0 is the line limit (1-256), byte 1 the chunk sizes' seed,
 * the rest is the stream. */
#include "fuzz.h"

#include <string.h>

#include "kube/linebuf.h"

struct expect {
	const char *data, *end;   /* what is left of the input */
	size_t max_line;
	size_t lines;             /* lines handed out */
};

/* The next line the reference splits out: 1 with the line set, 0 at the
 * end (an unfinished tail the framer keeps), -2 for a line over the limit. */
static int expect_next(struct expect *ex, const char **line, size_t *len)
{
	const char *nl;

	for (;;) {
		nl = memchr(ex->data, '\n', (size_t)(ex->end - ex->data));
		if (!nl)
			return (size_t)(ex->end - ex->data) > ex->max_line + 1 ? -2 : 0;
		*line = ex->data;
		*len = (size_t)(nl - ex->data);
		ex->data = nl + 1;
		if (*len && (*line)[*len - 1] == '\r')
			(*len)--;
		if (*len > ex->max_line)
			return -2;
		if (*len)
			return 1;
	}
}

static int on_line(char *line, size_t len, void *ctx)
{
	struct expect *ex = ctx;
	const char *want;
	size_t want_len;

	if (expect_next(ex, &want, &want_len) != 1 || want_len != len ||
	    memcmp(want, line, len) != 0 || line[len] != '\0')
		abort();
	ex->lines++;
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct expect ex;
	struct linebuf lb;
	const char *stream, *line;
	size_t n, off = 0, len;
	unsigned seed;
	int rc = 0;

	if (size < 2)
		return 0;
	linebuf_init(&lb, (size_t)data[0] + 1);
	seed = data[1];
	stream = (const char *)data + 2;
	n = size - 2;
	ex = (struct expect){ .data = stream, .end = stream + n, .max_line = lb.max_line };
	while (off < n && rc == 0) {
		size_t chunk = seed % 64 + 1;

		seed = seed * 1103515245u + 12345u;
		if (chunk > n - off)
			chunk = n - off;
		/* The framer sees only the bytes fed so far: so must the reference. */
		ex.end = stream + off + chunk;
		rc = linebuf_feed(&lb, stream + off, chunk, on_line, &ex);
		off += chunk;
		if (lb.len > lb.cap || (rc == 0 && lb.len > lb.max_line + 1))
			abort();
	}
	/* All lines of the input came out, or it failed where the reference does. */
	ex.end = stream + off;
	if (expect_next(&ex, &line, &len) != (rc == 0 ? 0 : -2) || (rc != 0 && rc != -2))
		abort();
	linebuf_free(&lb);
	return 0;
}
