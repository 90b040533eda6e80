/* kube_config_set_server: the API server's URL, parsed once and written
 * back in one form ("https://host:port[/prefix]", IPv6 in brackets) so that
 * the rest of the code never parses it again. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "kube/kube_priv.h"

/* The parts of a server URL, pointing into it or into host[]. */
struct server_url {
	bool https;
	char host[256];     /* without brackets */
	int port;
	const char *prefix; /* "" or "/..." with no trailing slash */
	size_t prefix_len;
};

/* A DNS name or an IPv4 address: letters, digits, '-', '.', '_'. */
static bool server_host_ok(const char *host)
{
	if (!*host)
		return false;
	for (const char *p = host; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
			return false;
	return true;
}

/* 1-65535 in decimal, nothing else. */
static int server_port(const char *s, size_t len)
{
	int port = 0;

	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		port = port * 10 + (s[i] - '0');
	}
	return port >= 1 && port <= 65535 ? port : -1;
}

/* "[v6]" or "[v6]:port" */
static int server_authority_v6(const char *a, size_t len, struct server_url *u,
			       char *err, size_t err_len)
{
	const char *close = memchr(a, ']', len);
	unsigned char addr[16];
	size_t host_len;

	if (!close || (close + 1 < a + len && close[1] != ':')) {
		snprintf(err, err_len, "bad IPv6 host (expected [address]:port)");
		return -1;
	}
	host_len = (size_t)(close - a - 1);
	if (host_len >= sizeof(u->host)) {
		snprintf(err, err_len, "host too long");
		return -1;
	}
	memcpy(u->host, a + 1, host_len);
	u->host[host_len] = '\0';
	if (inet_pton(AF_INET6, u->host, addr) != 1) {
		snprintf(err, err_len, "bad IPv6 address in brackets");
		return -1;
	}
	if (close + 1 < a + len)
		u->port = server_port(close + 2, len - (size_t)(close + 2 - a));
	return 0;
}

/* "host" or "host:port"; a second ':' means an IPv6 address without brackets. */
static int server_authority(const char *a, size_t len, struct server_url *u,
			    char *err, size_t err_len)
{
	const char *colon = memchr(a, ':', len);
	size_t host_len = colon ? (size_t)(colon - a) : len;

	if (len && a[0] == '[')
		return server_authority_v6(a, len, u, err, err_len);
	if (colon && memchr(colon + 1, ':', len - host_len - 1)) {
		snprintf(err, err_len, "an IPv6 address needs brackets, e.g. [::1]:6443");
		return -1;
	}
	if (host_len >= sizeof(u->host)) {
		snprintf(err, err_len, "host too long");
		return -1;
	}
	memcpy(u->host, a, host_len);
	u->host[host_len] = '\0';
	if (!server_host_ok(u->host)) {
		snprintf(err, err_len, "bad host (letters, digits, '-', '.' and '_' only)");
		return -1;
	}
	if (colon)
		u->port = server_port(colon + 1, len - host_len - 1);
	return 0;
}

/* scheme://authority/prefix with the scheme optional (https). */
static int server_parse(const char *url, struct server_url *u, char *err, size_t err_len)
{
	const char *rest = url, *slash;

	memset(u, 0, sizeof(*u));
	u->https = true;
	if (strncasecmp(url, "https://", 8) == 0)
		rest = url + 8;
	else if (strncasecmp(url, "http://", 7) == 0) {
		rest = url + 7;
		u->https = false;
	} else if (strstr(url, "://")) {
		snprintf(err, err_len, "unsupported scheme (https or http)");
		return -1;
	}
	if (strpbrk(rest, "?#@ \t\r\n")) {
		snprintf(err, err_len, "a query, a fragment, user info or spaces are not allowed");
		return -1;
	}
	slash = strchr(rest, '/');
	if (server_authority(rest, slash ? (size_t)(slash - rest) : strlen(rest), u, err, err_len) < 0)
		return -1;
	if (u->port < 0) {
		snprintf(err, err_len, "bad port (expected 1-65535)");
		return -1;
	}
	if (!u->port)
		u->port = u->https ? 443 : 80;
	u->prefix = slash ? slash : "";
	u->prefix_len = strlen(u->prefix);
	while (u->prefix_len && u->prefix[u->prefix_len - 1] == '/')
		u->prefix_len--;
	return 0;
}

int kube_config_set_server(struct kube_config *cfg, const char *url, char *err, size_t err_len)
{
	struct server_url u;
	char why[256], *server = NULL, *host = NULL;
	bool v6;

	if (server_parse(url, &u, why, sizeof(why)) < 0) {
		snprintf(err, err_len, "server \"%s\": %s", url, why);
		return -1;
	}
	v6 = strchr(u.host, ':') != NULL;
	host = strdup(u.host);
	if (!host || asprintf(&server, "%s://%s%s%s:%d%.*s", u.https ? "https" : "http",
			      v6 ? "[" : "", u.host, v6 ? "]" : "", u.port,
			      (int)u.prefix_len, u.prefix) < 0) {
		free(host);
		snprintf(err, err_len, "server \"%s\": out of memory", url);
		return -1;
	}
	free(cfg->server);
	free(cfg->host);
	cfg->server = server;
	cfg->host = host;
	cfg->port = u.port;
	if (kube_connect_to_update(cfg) < 0) {
		snprintf(err, err_len, "server \"%s\": out of memory", url);
		return -1;
	}
	return 0;
}

int kube_config_check_transport(const struct kube_config *cfg, bool allow_http, char *err,
				size_t err_len)
{
	const char *origin = cfg->origin ? cfg->origin : "configuration";
	bool http = strncmp(cfg->server, "http://", 7) == 0;

	if (http && !allow_http) {
		snprintf(err, err_len, "%s: server %s is plain HTTP: the bearer token would be sent "
			 "in clear and the server is not authenticated; use https, or "
			 "--allow-insecure-http to accept that", origin, cfg->server);
		return -1;
	}
	if (http)
		log_warn("kube", "%s: server %s is plain HTTP (--allow-insecure-http): the bearer "
			 "token goes out in clear and the server is not authenticated",
			 origin, cfg->server);
	if (cfg->insecure && !http)
		log_warn("kube", "%s: insecure-skip-tls-verify: the API server's certificate is "
			 "not verified; whoever is on the path can pose as the server and take "
			 "the token", origin);
	return 0;
}
