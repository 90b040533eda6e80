/* Internals of the watch, shared by its files. */
#ifndef FERRY_KUBE_WATCH_PRIV_H
#define FERRY_KUBE_WATCH_PRIV_H

#include <stddef.h>

#include "kube/watch.h"

/* watch.c: forget the request under way (buffers, stream state). */
void watch_reset_request(struct watch *w);

/* watch_event.c: a linebuf_fn taking one event of a watch stream. Returns
 * non-zero when the stream must be dropped (stream_bad or stream_expired
 * set). */
int watch_event_line(char *line, size_t len, void *ctx);
/* Record rv as the last resourceVersion seen. */
void watch_set_rv(struct watch *w, const char *rv);

#endif
