/* How to reach and authenticate to the Kubernetes API server: from a
 * kubeconfig, or in-cluster from the service account, with the server URL
 * replaceable (--apiserver: without kube-proxy the `kubernetes` ClusterIP
 * does not answer until ferry runs). ../shared/spec/apiserver-protocol.md,
 * "Authentication". */
#ifndef FERRY_KUBE_CONFIG_H
#define FERRY_KUBE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* The usual place of the service account's token and CA in a pod. */
#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* Seconds after which kube_token_get reads a token file again. */
#define KUBE_TOKEN_REREAD_SEC 60

struct kube_config {
	char *server;            /* "https://host:port[/prefix]", no trailing slash;
				  * IPv6 host in brackets; always with a port */
	char *host;              /* server's host, without brackets */
	int port;                /* server's port */
	char *ca_file;           /* NULL when none, or when ca_pem is set */
	char *ca_pem; size_t ca_pem_len;     /* certificate-authority-data decoded; wins over ca_file */
	bool insecure;           /* insecure-skip-tls-verify */
	char *tls_server_name;   /* NULL when none */
	char *token;             /* a static token, NULL when none */
	char *token_file;        /* NULL when none; reread by kube_token_get; wins over token */
	char *cert_file, *key_file;              /* client certificate and key paths */
	char *cert_pem, *key_pem; size_t cert_pem_len, key_pem_len; /* *-data decoded; win over the paths */
	char *origin;            /* for logs: "kubeconfig /path, context NAME" or "in-cluster" */
	/* token state, for kube_token_get */
	char *token_value; struct timespec token_read_at; /* CLOCK_MONOTONIC */
	bool token_failing;      /* the last reread failed (logged once per streak) */
	/* struct curl_slist * for CURLOPT_CONNECT_TO when tls_server_name is
	 * set (kube_config_apply_tls); curl does not copy it. */
	void *connect_to;
};

/* kubeconfig at path: current-context -> contexts[].context.{cluster,user};
 * clusters[].cluster.{server, certificate-authority, certificate-authority-data,
 * insecure-skip-tls-verify, tls-server-name}; users[].user.{token, tokenFile,
 * client-certificate, client-certificate-data, client-key, client-key-data}.
 * Relative paths are relative to the kubeconfig's folder; the files named
 * must be readable now, and a tokenFile is read now. A context without a user
 * is anonymous. cfg is overwritten. Returns 0, or -1 with err saying exactly
 * what is missing or wrong (file, context, field). */
int kube_config_from_kubeconfig(const char *path, struct kube_config *cfg, char *err, size_t err_len);

/* In-cluster: KUBERNETES_SERVICE_HOST/PORT (IPv6 host gets brackets), token
 * file sa_dir/token (read now), CA sa_dir/ca.crt (sa_dir is normally
 * KUBE_SA_DIR; a parameter so tests can use a temp dir). cfg is overwritten.
 * Returns 0, or -1 with err. */
int kube_config_in_cluster(const char *sa_dir, struct kube_config *cfg, char *err, size_t err_len);

/* Replace the server URL (ferryd --apiserver URL). Accepts "https://h:p",
 * "http://h:p" (refused at start by kube_config_check_transport unless
 * allowed), "h:p" (https implied), IPv6
 * "[::1]:6443"; without a port, 443 (80 for http); a path prefix is kept.
 * Curl handles set up with the old server must be set up again (connect_to).
 * Returns 0 or -1 with err (a bad URL leaves cfg unchanged). */
int kube_config_set_server(struct kube_config *cfg, const char *url, char *err, size_t err_len);

/* What the configuration would expose, checked once at start: a plain
 * http:// server gets the bearer token in clear and is not authenticated, so
 * it is refused (-1, err says why) unless allow_http (--allow-insecure-http),
 * and then logged as a warning; insecure-skip-tls-verify is logged as a
 * warning. Returns 0 otherwise. */
int kube_config_check_transport(const struct kube_config *cfg, bool allow_http, char *err,
				size_t err_len);

/* The bearer token to send (NULL when the config has none, e.g. client
 * certificates only). A token file is read again when force is true (after a
 * 401) or when the last read is at least KUBE_TOKEN_REREAD_SEC old; when a
 * reread fails (missing, empty) the last good value stays and the failure is
 * logged once per failure streak. Whitespace around the token is stripped.
 * The pointer is valid until the next call. */
const char *kube_token_get(struct kube_config *cfg, bool force);

/* Apply the TLS part of cfg to a curl easy handle (CURL *): CA, verification
 * off when insecure, client certificate and key, and tls_server_name by
 * CURLOPT_CONNECT_TO (the handle must not outlive cfg; see tls.c). Use with
 * the URLs of kube_config_url. Returns 0 or -1 (curl error logged). */
int kube_config_apply_tls(const struct kube_config *cfg, void *curl_easy);

/* The URL for an API path ("/api/v1/services?..."): server + path, with the
 * host replaced by tls_server_name when one is set (see tls.c). Malloc'd;
 * NULL when out of memory. */
char *kube_config_url(const struct kube_config *cfg, const char *path_and_query);

/* Frees what cfg holds and zeroes it; a zeroed cfg is fine. */
void kube_config_free(struct kube_config *cfg);

#endif
