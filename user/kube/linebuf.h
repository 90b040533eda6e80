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
 * returning non-zero stops the feed. */
typedef int linebuf_fn(char *line, size_t len, void *ctx);

void linebuf_init(struct linebuf *lb, size_t max_line);
void linebuf_reset(struct linebuf *lb);
void linebuf_free(struct linebuf *lb);

/* Returns 0; what fn returned when it stopped the feed; -1 when out of
 * memory; -2 when a line exceeds max_line (the buffer is dropped: the
 * stream cannot be trusted past that point). */
int linebuf_feed(struct linebuf *lb, const char *data, size_t n, linebuf_fn *fn, void *ctx);

#endif
