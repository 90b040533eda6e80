/* curl's TLS options from a kube_config.
 *
 * tls-server-name: curl has no option for the name to send in SNI and to
 * verify the certificate against; it always uses the URL's host. So the URL
 * names tls_server_name (kube_config_url) and CURLOPT_CONNECT_TO
 * "NAME:PORT:HOST:PORT" sends the connection to the real host and port. The
 * one other effect is the Host header, which the API server ignores. curl
 * does not copy the CONNECT_TO list: it lives in cfg (connect_to), rebuilt
 * whenever the server changes, so a handle must not outlive cfg. */
#include <stdio.h>
#include <strings.h>
#include <string.h>

#include <curl/curl.h>

#include "common/log.h"
#include "kube/kube_priv.h"

int kube_connect_to_update(struct kube_config *cfg)
{
	const char *name = cfg->tls_server_name;
	char entry[600];
	bool v6 = cfg->host && strchr(cfg->host, ':');

	curl_slist_free_all(cfg->connect_to);
	cfg->connect_to = NULL;
	if (!name || !*name || !cfg->host || strcasecmp(name, cfg->host) == 0)
		return 0;
	snprintf(entry, sizeof(entry), "%s%s%s:%d:%s%s%s:%d", strchr(name, ':') ? "[" : "",
		 name, strchr(name, ':') ? "]" : "", cfg->port, v6 ? "[" : "", cfg->host,
		 v6 ? "]" : "", cfg->port);
	cfg->connect_to = curl_slist_append(NULL, entry);
	return cfg->connect_to ? 0 : -1;
}

/* Logs a failed option; returns -1 for it, 0 otherwise. */
static int tls_check(CURLcode rc, const char *option)
{
	if (rc == CURLE_OK)
		return 0;
	log_error("kube", "curl option %s: %s", option, curl_easy_strerror(rc));
	return -1;
}

/* A blob curl copies: cfg may change after the handle is set up. */
static CURLcode tls_blob(CURL *curl, CURLoption option, const char *data, size_t len)
{
	struct curl_blob blob = { .data = (void *)data, .len = len, .flags = CURL_BLOB_COPY };

	return curl_easy_setopt(curl, option, &blob);
}

/* Whom to trust: no verification at all, the CA given, or curl's default
 * bundle when the config names none. The CA given is the only one trusted,
 * as with kubectl: curl would also trust every CA of its default folder
 * (CAPATH, /etc/ssl/certs on Debian), whichever CAINFO says. And curl keeps a
 * CA file it parsed for 24 h by default, so a rotated ca.crt (the service
 * account's projected CA, a renewed kubeconfig CA) would be ignored until
 * then: each new connection reads the file again (they are few: connections
 * are kept). */
static int tls_verify(const struct kube_config *cfg, CURL *curl)
{
	long on = cfg->insecure ? 0L : 1L;

	if (tls_check(curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, on), "SSL_VERIFYPEER") ||
	    tls_check(curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, on * 2), "SSL_VERIFYHOST"))
		return -1;
	if (cfg->insecure || (!cfg->ca_pem && !cfg->ca_file))
		return 0;
	if (tls_check(curl_easy_setopt(curl, CURLOPT_CAPATH, NULL), "CAPATH"))
		return -1;
	if (cfg->ca_pem)
		return tls_check(tls_blob(curl, CURLOPT_CAINFO_BLOB, cfg->ca_pem, cfg->ca_pem_len),
				 "CAINFO_BLOB");
	if (tls_check(curl_easy_setopt(curl, CURLOPT_CA_CACHE_TIMEOUT, 0L), "CA_CACHE_TIMEOUT"))
		return -1;
	return tls_check(curl_easy_setopt(curl, CURLOPT_CAINFO, cfg->ca_file), "CAINFO");
}

/* The client certificate and key, each from its data or its path. */
static int tls_client(const struct kube_config *cfg, CURL *curl)
{
	int ret = 0;

	if (cfg->cert_pem)
		ret |= tls_check(tls_blob(curl, CURLOPT_SSLCERT_BLOB, cfg->cert_pem,
					  cfg->cert_pem_len), "SSLCERT_BLOB");
	else if (cfg->cert_file)
		ret |= tls_check(curl_easy_setopt(curl, CURLOPT_SSLCERT, cfg->cert_file), "SSLCERT");
	if (cfg->key_pem)
		ret |= tls_check(tls_blob(curl, CURLOPT_SSLKEY_BLOB, cfg->key_pem, cfg->key_pem_len),
				 "SSLKEY_BLOB");
	else if (cfg->key_file)
		ret |= tls_check(curl_easy_setopt(curl, CURLOPT_SSLKEY, cfg->key_file), "SSLKEY");
	if (cfg->cert_pem || cfg->cert_file)
		ret |= tls_check(curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM"), "SSLCERTTYPE");
	if (cfg->key_pem || cfg->key_file)
		ret |= tls_check(curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM"), "SSLKEYTYPE");
	return ret ? -1 : 0;
}

int kube_config_apply_tls(const struct kube_config *cfg, void *curl_easy)
{
	CURL *curl = curl_easy;

	if (tls_verify(cfg, curl) < 0 || tls_client(cfg, curl) < 0)
		return -1;
	return tls_check(curl_easy_setopt(curl, CURLOPT_CONNECT_TO, cfg->connect_to), "CONNECT_TO");
}
