/* Internals of the watch, shared by its files. */
#ifndef FERRY_KUBE_WATCH_PRIV_H
#define FERRY_KUBE_WATCH_PRIV_H

#include <stddef.h>

#include "kube/watch.h"

/* watch.c: forget the request under way (buffers, stream state). */
void watch_reset_request(struct watch *w);

/* watch_event.c: a linebuf_fn taking one event of a watch stream. Returns
 * non-zero when the stream must be dropped (stream_bad, stream_expired or
 * list_refused set). */
int watch_event_line(char *line, size_t len, void *ctx);
/* Record rv as the last resourceVersion seen. */
void watch_set_rv(struct watch *w, const char *rv);

/* watch_list.c: bytes of a list page (200), each item to the handler as
 * soon as it is complete. Returns 0, or -1 with stream_bad set. */
int watch_list_data(struct watch *w, const char *data, size_t len);
/* watch_list.c: the page is complete: its resourceVersion and continue
 * token from the envelope. Returns -1 when the answer was not a list. */
int watch_list_page_end(struct watch *w, double now);
/* watch_list.c: the list (paged or streaming) is complete at w->rv. */
void watch_list_complete(struct watch *w, bool streamed, double now);

#endif
