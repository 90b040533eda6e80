/* The kube_config basics: in-cluster configuration, API URLs, the files a
 * configuration names, freeing. The kubeconfig reader is kubeconfig.c, the
 * server URL server.c, tokens token.c, curl's TLS options tls.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "kube/kube_priv.h"

void kube_config_free(struct kube_config *cfg)
{
	char **strs[] = { &cfg->server, &cfg->host, &cfg->ca_file, &cfg->ca_pem,
			  &cfg->tls_server_name, &cfg->token, &cfg->token_file,
			  &cfg->cert_file, &cfg->key_file, &cfg->cert_pem, &cfg->key_pem,
			  &cfg->origin, &cfg->token_value };

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	curl_slist_free_all(cfg->connect_to);
	memset(cfg, 0, sizeof(*cfg));
}

/* Reads what an open file holds, refusing more than max bytes. */
static char *read_fd(int fd, size_t max, size_t *len, char *err, size_t err_len)
{
	size_t cap = 0, n = 0;
	char *buf = NULL, *bigger;
	ssize_t got;

	for (;;) {
		if (n == cap) {
			if (cap > max)
				break;
			cap = cap ? cap * 2 : 4096;
			bigger = realloc(buf, cap + 1);
			if (!bigger) {
				snprintf(err, err_len, "out of memory");
				goto fail;
			}
			buf = bigger;
		}
		got = read(fd, buf + n, cap - n);
		if (got == 0)
			break;
		if (got < 0 && errno != EINTR) {
			snprintf(err, err_len, "%s", strerror(errno));
			goto fail;
		}
		n += got > 0 ? (size_t)got : 0;
	}
	if (n > max) {
		snprintf(err, err_len, "larger than %zu bytes", max);
		goto fail;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	free(buf);
	return NULL;
}

char *kube_read_file(const char *path, size_t max, size_t *len, char *err, size_t err_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf;

	if (fd < 0) {
		snprintf(err, err_len, "%s", strerror(errno));
		return NULL;
	}
	buf = read_fd(fd, max, len, err, err_len);
	close(fd);
	return buf;
}

/* Opening the file is the only check that cannot lie: access(2) says yes to
 * root for a file a read would still refuse (e.g. under an LSM). */
int kube_check_file(const char *path, char *err, size_t err_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	int ret = 0;

	if (fd < 0) {
		snprintf(err, err_len, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, err_len, "%s", strerror(errno));
		ret = -1;
	} else if (!S_ISREG(st.st_mode)) {
		snprintf(err, err_len, "not a regular file");
		ret = -1;
	}
	close(fd);
	return ret;
}

/* The service's URL from its environment, an IPv6 address in brackets. */
static int in_cluster_server(struct kube_config *cfg, char *err, size_t err_len)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char url[512], why[256];

	if (!host || !*host) {
		snprintf(err, err_len, "KUBERNETES_SERVICE_HOST is not set (not running in a cluster?)");
		return -1;
	}
	if (!port || !*port) {
		snprintf(err, err_len, "KUBERNETES_SERVICE_PORT is not set (not running in a cluster?)");
		return -1;
	}
	snprintf(url, sizeof(url), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
		 host, port);
	if (kube_config_set_server(cfg, url, why, sizeof(why)) < 0) {
		snprintf(err, err_len, "in-cluster: KUBERNETES_SERVICE_HOST/PORT: %s", why);
		return -1;
	}
	return 0;
}

/* The token file must hold a token now; the CA must be readable. */
static int in_cluster_files(const char *sa_dir, struct kube_config *cfg, char *err, size_t err_len)
{
	char why[256];

	if (asprintf(&cfg->token_file, "%s/token", sa_dir) < 0 ||
	    asprintf(&cfg->ca_file, "%s/ca.crt", sa_dir) < 0) {
		cfg->token_file = cfg->ca_file = NULL;
		snprintf(err, err_len, "in-cluster: out of memory");
		return -1;
	}
	cfg->token_value = kube_token_read(cfg->token_file, why, sizeof(why));
	if (!cfg->token_value) {
		snprintf(err, err_len, "in-cluster: token %s: %s", cfg->token_file, why);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &cfg->token_read_at);
	if (kube_check_file(cfg->ca_file, why, sizeof(why)) < 0) {
		snprintf(err, err_len, "in-cluster: CA %s: %s", cfg->ca_file, why);
		return -1;
	}
	return 0;
}

int kube_config_in_cluster(const char *sa_dir, struct kube_config *cfg, char *err, size_t err_len)
{
	memset(cfg, 0, sizeof(*cfg));
	if (in_cluster_server(cfg, err, err_len) < 0 ||
	    in_cluster_files(sa_dir, cfg, err, err_len) < 0)
		goto fail;
	cfg->origin = strdup("in-cluster");
	if (!cfg->origin) {
		snprintf(err, err_len, "in-cluster: out of memory");
		goto fail;
	}
	return 0;
fail:
	kube_config_free(cfg);
	return -1;
}

/* With a tls_server_name, the URL names it instead of the server's host (and
 * CURLOPT_CONNECT_TO sends the connection to the real host: tls.c); scheme,
 * port and path prefix stay. connect_to is set exactly when the name differs
 * from the host, so the URL and the redirection always go together. */
char *kube_config_url(const struct kube_config *cfg, const char *path_and_query)
{
	const char *sep = path_and_query[0] == '/' ? "" : "/";
	const char *name = cfg->tls_server_name, *after, *prefix;
	int https = strncmp(cfg->server, "https://", 8) == 0;
	char *url;
	int n;

	if (!cfg->connect_to)
		n = asprintf(&url, "%s%s%s", cfg->server, sep, path_and_query);
	else {
		after = cfg->server + (https ? 8 : 7);
		prefix = strchr(after, '/');
		n = asprintf(&url, "%s://%s%s%s:%d%s%s%s", https ? "https" : "http",
			     strchr(name, ':') ? "[" : "", name, strchr(name, ':') ? "]" : "",
			     cfg->port, prefix ? prefix : "", sep, path_and_query);
	}
	return n < 0 ? NULL : url;
}
