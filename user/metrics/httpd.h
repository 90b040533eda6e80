/* A small HTTP server for metrics and health answers (libmicrohttpd), on a
 * thread of its own: probes are answered while the agent's loop applies a
 * large change or is stuck. Handlers run on that thread, so they must read
 * only what is safe to share (ferryd's handlers read a published copy of
 * the agent's state, observe.h). */
#ifndef FERRY_METRICS_HTTPD_H
#define FERRY_METRICS_HTTPD_H

#include <stddef.h>

struct httpd;

struct httpd_reply {
	unsigned int status;
	const char *content_type;
	char *body;               /* malloc'd; the server frees it */
	size_t len;
};

/* Answer a GET of path. Return 0, or -1 when out of memory (500). */
typedef int httpd_fn(void *ctx, const char *path, struct httpd_reply *reply);

/* addr: "HOST:PORT", "[V6]:PORT" or ":PORT" (every address, both families);
 * what names the server in logs ("metrics"). The server's thread blocks
 * every signal. NULL on error, logged. */
struct httpd *httpd_start(const char *addr, const char *what, httpd_fn *fn, void *ctx);
/* Stops the thread (it finishes the request at hand) and closes the socket. */
void httpd_stop(struct httpd *h);

/* Whether addr parses ("HOST:PORT", "[V6]:PORT", ":PORT"). */
int httpd_addr_valid(const char *addr);

#endif
