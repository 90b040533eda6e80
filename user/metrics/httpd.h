/* A small HTTP server for metrics and health answers (libmicrohttpd),
 * driven by the agent's own loop: no thread, so handlers read the agent's
 * state without locks. Poll httpd_fd for readability, then httpd_run. */
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
 * what names the server in logs ("metrics"). NULL on error, logged. */
struct httpd *httpd_start(const char *addr, const char *what, httpd_fn *fn, void *ctx);
void httpd_stop(struct httpd *h);
/* An epoll descriptor that is readable when httpd_run has work. */
int httpd_fd(const struct httpd *h);
/* Serve what is ready, and expire idle connections. */
void httpd_run(struct httpd *h);

/* Whether addr parses ("HOST:PORT", "[V6]:PORT", ":PORT"). */
int httpd_addr_valid(const char *addr);

#endif
