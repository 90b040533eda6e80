#include "metrics/httpd.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* A probe sends its request as soon as it connects, and the kubelet gives
 * up after 1 s by default: a connection quiet for longer than this is let
 * go, so idle or stalled clients cannot hold the slots for long. */
#define HTTPD_CONN_TIMEOUT_S 2
/* Room for many idle clients at once; two servers stay well under the
 * usual soft limit of 1024 descriptors, which the API client needs too. */
#define HTTPD_MAX_CONNS 256

struct httpd {
	struct MHD_Daemon *daemon;
	httpd_fn *fn;
	void *ctx;
	const char *what;
};

union httpd_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* Parses addr; *any says it binds every address of both families. */
static int httpd_parse(const char *addr, union httpd_addr *out, bool *any)
{
	const char *colon = strrchr(addr, ':');
	char host[64];
	size_t host_len;
	char *end;
	long port;

	memset(out, 0, sizeof(*out));
	if (!colon)
		return -1;
	port = strtol(colon + 1, &end, 10);
	host_len = (size_t)(colon - addr);
	if (colon[1] == '\0' || *end || port < 0 || port > 65535 || host_len >= sizeof(host))
		return -1;
	memcpy(host, addr, host_len);
	host[host_len] = '\0';
	*any = host_len == 0;
	if (*any || (host[0] == '[' && host_len > 2 && host[host_len - 1] == ']')) {
		if (!*any) {
			host[host_len - 1] = '\0';
			if (inet_pton(AF_INET6, host + 1, &out->in6.sin6_addr) != 1)
				return -1;
		}
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET, host, &out->in.sin_addr) != 1)
		return -1;
	out->in.sin_family = AF_INET;
	out->in.sin_port = htons((uint16_t)port);
	return 0;
}

int httpd_addr_valid(const char *addr)
{
	union httpd_addr a;
	bool any;

	return httpd_parse(addr, &a, &any) == 0;
}

static enum MHD_Result httpd_send(struct MHD_Connection *conn, struct httpd_reply *r)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!resp) {
		free(r->body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	ret = MHD_queue_response(conn, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result httpd_handle(void *cls, struct MHD_Connection *conn, const char *url,
				    const char *method, const char *version,
				    const char *upload, size_t *upload_size, void **req_ctx)
{
	static const char not_allowed[] = "only GET and HEAD\n";
	struct httpd *h = cls;
	struct httpd_reply r = { .status = 200, .content_type = "text/plain" };

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)req_ctx;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		r.status = MHD_HTTP_METHOD_NOT_ALLOWED;
		r.body = strdup(not_allowed);
		r.len = r.body ? strlen(r.body) : 0;
	} else if (h->fn(h->ctx, url, &r) < 0) {
		free(r.body);
		r = (struct httpd_reply){ .status = 500, .content_type = "text/plain" };
	}
	return httpd_send(conn, &r);
}

/* libmicrohttpd's messages, prefixed with the server they come from. */
static void httpd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_msg(LOG_WARN, "httpd", "%s: %s", (const char *)cls, msg);
}

/* The daemon's thread inherits the mask of the thread that starts it: with
 * every signal blocked, SIGTERM goes to the agent's signalfd, never to it. */
static struct MHD_Daemon *httpd_daemon(unsigned int flags, const union httpd_addr *a,
				       struct httpd *h)
{
	uint16_t port = ntohs(a->sa.sa_family == AF_INET6 ? a->in6.sin6_port : a->in.sin_port);
	struct MHD_Daemon *daemon;
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/* The logger first: libmicrohttpd prints what it says before it. */
	daemon = MHD_start_daemon(flags, port, NULL, NULL, httpd_handle, h,
				  MHD_OPTION_EXTERNAL_LOGGER, httpd_log, (void *)h->what,
				  MHD_OPTION_SOCK_ADDR, &a->sa,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTPD_CONN_TIMEOUT_S,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTPD_MAX_CONNS,
				  MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return daemon;
}

struct httpd *httpd_start(const char *addr, const char *what, httpd_fn *fn, void *ctx)
{
	struct httpd *h = calloc(1, sizeof(*h));
	union httpd_addr a;
	unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	bool any;

	if (!h || httpd_parse(addr, &a, &any) < 0) {
		log_error("httpd", "%s: bad address \"%s\" (want HOST:PORT, [V6]:PORT or :PORT)",
			  what, addr);
		free(h);
		return NULL;
	}
	if (a.sa.sa_family == AF_INET6)
		flags |= any ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
	h->fn = fn;
	h->ctx = ctx;
	h->what = what;
	h->daemon = httpd_daemon(flags, &a, h);
	if (!h->daemon) {
		log_error("httpd", "%s: cannot listen on %s (in use?)", what, addr);
		free(h);
		return NULL;
	}
	log_info("httpd", "%s on %s", what, addr);
	return h;
}

void httpd_stop(struct httpd *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->daemon);
	free(h);
}
