/* Framing of a watch stream: one JSON event per line, however the bytes
 * arrive (several events in one read, one event over many reads). */
#ifndef FERRY_KUBE_LINEBUF_H
#define FERRY_KUBE_LINEBUF_H

#include <stdbool.h>
#include <stddef.h>

struct linebuf {
	char *buf;
	size_t len, cap;
	size_t max_line;     /* a longer line is an error, not a reason to grow */
};

/* Called with each complete line, without its newline and NUL-terminated;
 * returning non-zero stops the feed and drops what is left in the buffer. */
typedef int linebuf_fn(char *line, size_t len, void *ctx);

void linebuf_init(struct linebuf *lb, size_t max_line);
void linebuf_reset(struct linebuf *lb);
void linebuf_free(struct linebuf *lb);

/* Returns 0; what fn returned when it stopped the feed; -1 when out of
 * memory; -2 as soon as a line is known to exceed max_line (complete, or
 * unfinished and over max_line + 1, the room for a CRLF's \r): the buffer
 * is dropped, the stream cannot be trusted past that point. */
int linebuf_feed(struct linebuf *lb, const char *data, size_t n, linebuf_fn *fn, void *ctx);

#endif
