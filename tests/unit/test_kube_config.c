/* Unit tests of user/kube: kubeconfig reading (contexts, relative paths,
 * *-data, tokens, errors), in-cluster configuration, --apiserver URLs, token
 * rereads and curl's TLS options. Kubeconfigs are written to a temporary
 * folder; nothing touches the network. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture.h"
#include "tmpdir.h"
#include "kube/config.h"
#include "kube/kube_priv.h"

#define KC_HEAD "apiVersion: v1\nkind: Config\n"
#define CA_PEM "-----BEGIN CERTIFICATE-----\nQ0EgY2VydA==\n-----END CERTIFICATE-----\n"
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nY2xpZW50\n-----END CERTIFICATE-----\n\x01\xff"
#define KEY_PEM "-----BEGIN EC PRIVATE KEY-----\nc2VjcmV0\n-----END EC PRIVATE KEY-----\n"

/* Writes tmpdir/name, making its folder when needed. */
static void write_file(const char *name, const char *content)
{
	char *path = tmp_path(name), dir[4096];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/%s", tmpdir, name);
	*strrchr(dir, '/') = '\0';
	mkdir(dir, 0755);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(content, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	free(path);
}

static void remove_file(const char *name)
{
	char *path = tmp_path(name);

	assert_int_equal(unlink(path), 0);
	free(path);
}



/* Standard base64 of len bytes, to write *-data fields. */
static char *b64(const char *data, size_t len)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = (const unsigned char *)data;
	char *out = malloc(len / 3 * 4 + 5), *o = out;

	assert_non_null(out);
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = p[i] << 16 | (i + 1 < len ? p[i + 1] << 8 : 0) |
			     (i + 2 < len ? p[i + 2] : 0);

		*o++ = abc[v >> 18 & 63];
		*o++ = abc[v >> 12 & 63];
		*o++ = i + 1 < len ? abc[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? abc[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* Loads tmpdir/name, which must succeed. */
static void load_ok(const char *name, struct kube_config *cfg)
{
	char *path = tmp_path(name), err[512] = "";

	if (kube_config_from_kubeconfig(path, cfg, err, sizeof(err)) < 0)
		fail_msg("load %s: %s", path, err);
	free(path);
}

/* Loads tmpdir/name, which must fail with an error holding each of the
 * substrings (NULL-terminated). */
static void load_fails(const char *name, ...)
{
	char *path = tmp_path(name), err[512] = "";
	struct kube_config cfg;
	const char *expect;
	va_list ap;

	assert_int_equal(kube_config_from_kubeconfig(path, &cfg, err, sizeof(err)), -1);
	va_start(ap, name);
	while ((expect = va_arg(ap, const char *)))
		if (!strstr(err, expect))
			fail_msg("error \"%s\" lacks \"%s\"", err, expect);
	va_end(ap);
	assert_null(cfg.server);
	free(path);
}

static void assert_bytes(const char *got, size_t got_len, const char *expect, size_t len)
{
	assert_non_null(got);
	assert_int_equal(got_len, len);
	assert_memory_equal(got, expect, len);
	assert_int_equal(got[len], '\0');
}

/* The one CONNECT_TO entry, "" when none. */
static const char *connect_to(const struct kube_config *cfg)
{
	const struct curl_slist *l = cfg->connect_to;

	if (!l)
		return "";
	assert_null(l->next);
	return l->data;
}

/* ---- kubeconfig ---- */

static const char three_contexts[] =
	KC_HEAD
	"current-context: b\n"
	"contexts:\n"
	"- {name: a, context: {cluster: ca, user: ua}}\n"
	"- name: b\n"
	"  context:\n"
	"    cluster: cb\n"
	"    user: ub\n"
	"    namespace: kube-system\n"
	"- {name: c, context: {cluster: ca, user: ub}}\n"
	"clusters:\n"
	"- {name: ca, cluster: {server: 'https://10.0.0.1:6443'}}\n"
	"- {name: cb, cluster: {server: 'https://10.0.0.2:6443'}}\n"
	"users:\n"
	"- {name: ua, user: {token: token-a}}\n"
	"- {name: ub, user: {token: token-b}}\n";

/* current-context picks the context, which picks its cluster and user. */
static void test_current_context_selected(void **state)
{
	struct kube_config cfg;
	char *origin;

	(void)state;
	write_file("config", three_contexts);
	load_ok("config", &cfg);
	assert_string_equal(cfg.server, "https://10.0.0.2:6443");
	assert_string_equal(cfg.host, "10.0.0.2");
	assert_int_equal(cfg.port, 6443);
	assert_string_equal(kube_token_get(&cfg, false), "token-b");
	assert_null(cfg.token_file);
	assert_null(cfg.ca_file);
	assert_null(cfg.ca_pem);
	assert_false(cfg.insecure);
	assert_true(asprintf(&origin, "kubeconfig %s/config, context b", tmpdir) > 0);
	assert_string_equal(cfg.origin, origin);
	free(origin);
	kube_config_free(&cfg);
	assert_null(cfg.server);
	kube_config_free(&cfg); /* a zeroed config frees fine */
}

static const char relative_paths[] =
	KC_HEAD
	"current-context: dev\n"
	"contexts: [{name: dev, context: {cluster: c, user: u}}]\n"
	"clusters:\n"
	"- name: c\n"
	"  cluster:\n"
	"    server: https://api.example:6443/\n"
	"    certificate-authority: ca.crt\n"
	"users:\n"
	"- name: u\n"
	"  user:\n"
	"    client-certificate: ../certs/c.crt\n"
	"    client-key: /KEYDIR/c.key\n";

/* Relative paths start at the kubeconfig's folder, also when the
 * kubeconfig's own path is relative; absolute ones stay. */
static void test_relative_paths(void **state)
{
	struct kube_config cfg;
	char *yaml, *key_dir = tmp_path("keys"), *expect, cwd[4096], err[512];
	const char *at;

	(void)state;
	write_file("kube/ca.crt", CA_PEM);
	write_file("certs/c.crt", CERT_PEM);
	write_file("keys/c.key", KEY_PEM);
	at = strstr(relative_paths, "/KEYDIR");
	assert_true(asprintf(&yaml, "%.*s%s%s", (int)(at - relative_paths), relative_paths,
			     key_dir, at + 7) > 0);
	write_file("kube/config", yaml);

	load_ok("kube/config", &cfg);
	assert_string_equal(cfg.server, "https://api.example:6443");
	assert_true(asprintf(&expect, "%s/kube/ca.crt", tmpdir) > 0);
	assert_string_equal(cfg.ca_file, expect);
	free(expect);
	assert_true(asprintf(&expect, "%s/kube/../certs/c.crt", tmpdir) > 0);
	assert_string_equal(cfg.cert_file, expect);
	free(expect);
	assert_true(asprintf(&expect, "%s/c.key", key_dir) > 0);
	assert_string_equal(cfg.key_file, expect);
	free(expect);
	assert_null(kube_token_get(&cfg, false));
	kube_config_free(&cfg);

	/* kubeconfig given as "kube/config" from tmpdir */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tmpdir), 0);
	assert_int_equal(kube_config_from_kubeconfig("kube/config", &cfg, err, sizeof(err)), 0);
	assert_true(asprintf(&expect, "%s/kube/ca.crt", tmpdir) > 0);
	assert_string_equal(cfg.ca_file, expect);
	free(expect);
	assert_string_equal(cfg.origin, "kubeconfig kube/config, context dev");
	kube_config_free(&cfg);
	assert_int_equal(chdir(cwd), 0);
	free(yaml);
	free(key_dir);
}

/* certificate-authority-data wins: the path is not even looked at. */
static void test_ca_data_beats_path(void **state)
{
	struct kube_config cfg;
	char *data = b64(CA_PEM, strlen(CA_PEM)), *yaml;

	(void)state;
	assert_true(asprintf(&yaml, KC_HEAD "current-context: dev\n"
			     "contexts: [{name: dev, context: {cluster: c}}]\n"
			     "clusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443\n"
			     "    certificate-authority: missing.crt\n"
			     "    certificate-authority-data: %s\n", data) > 0);
	write_file("config", yaml);
	load_ok("config", &cfg);
	assert_bytes(cfg.ca_pem, cfg.ca_pem_len, CA_PEM, strlen(CA_PEM));
	assert_null(cfg.ca_file);
	assert_null(kube_token_get(&cfg, false)); /* no user: anonymous */
	kube_config_free(&cfg);
	free(yaml);
	free(data);
}

/* client-certificate-data and client-key-data decode to the exact bytes,
 * also when the base64 is wrapped over several lines. */
static void test_client_cert_data(void **state)
{
	struct kube_config cfg;
	size_t cert_len = sizeof(CERT_PEM) - 1;
	char *cert = b64(CERT_PEM, cert_len), *key = b64(KEY_PEM, strlen(KEY_PEM)), *yaml;

	(void)state;
	assert_true(asprintf(&yaml, KC_HEAD "current-context: dev\n"
			     "contexts: [{name: dev, context: {cluster: c, user: u}}]\n"
			     "clusters: [{name: c, cluster: {server: 'https://10.0.0.1:6443'}}]\n"
			     "users:\n- name: u\n  user:\n"
			     "    client-certificate: gone.crt\n"
			     "    client-certificate-data: %s\n"
			     "    client-key-data: |\n      %.20s\n      %s\n",
			     cert, key, key + 20) > 0);
	write_file("config", yaml);
	load_ok("config", &cfg);
	assert_bytes(cfg.cert_pem, cfg.cert_pem_len, CERT_PEM, cert_len);
	assert_bytes(cfg.key_pem, cfg.key_pem_len, KEY_PEM, strlen(KEY_PEM));
	assert_null(cfg.cert_file);
	assert_null(cfg.key_file);
	kube_config_free(&cfg);
	free(yaml);
	free(cert);
	free(key);
}

static void write_user_config(const char *user)
{
	char *yaml;

	assert_true(asprintf(&yaml, KC_HEAD "current-context: dev\n"
			     "contexts: [{name: dev, context: {cluster: c, user: u}}]\n"
			     "clusters: [{name: c, cluster: {server: 'https://10.0.0.1:6443'}}]\n"
			     "users: [{name: u, user: %s}]\n", user) > 0);
	write_file("config", yaml);
	free(yaml);
}

/* A static token as is; a tokenFile read at load, stripped, and winning
 * over a static token (it is the one that rotates). */
static void test_token_vs_token_file(void **state)
{
	struct kube_config cfg;
	char *expect;

	(void)state;
	write_user_config("{token: abc.def}");
	load_ok("config", &cfg);
	assert_string_equal(kube_token_get(&cfg, true), "abc.def");
	assert_null(cfg.token_file);
	kube_config_free(&cfg);

	write_file("sa/token", "from-file\n");
	write_user_config("{tokenFile: sa/token}");
	load_ok("config", &cfg);
	assert_true(asprintf(&expect, "%s/sa/token", tmpdir) > 0);
	assert_string_equal(cfg.token_file, expect);
	free(expect);
	assert_null(cfg.token);
	assert_string_equal(cfg.token_value, "from-file");
	assert_string_equal(kube_token_get(&cfg, false), "from-file");
	kube_config_free(&cfg);

	write_user_config("{token: static, tokenFile: sa/token}");
	load_ok("config", &cfg);
	assert_string_equal(cfg.token, "static");
	assert_string_equal(kube_token_get(&cfg, false), "from-file");
	kube_config_free(&cfg);
}

/* insecure-skip-tls-verify: true, and tls-server-name kept. */
static void test_insecure_and_tls_server_name(void **state)
{
	struct kube_config cfg;

	(void)state;
	write_file("config", KC_HEAD "current-context: dev\n"
		   "contexts: [{name: dev, context: {cluster: c}}]\n"
		   "clusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443\n"
		   "    insecure-skip-tls-verify: true\n    tls-server-name: api.internal\n");
	load_ok("config", &cfg);
	assert_true(cfg.insecure);
	assert_string_equal(cfg.tls_server_name, "api.internal");
	assert_string_equal(connect_to(&cfg), "api.internal:6443:10.0.0.1:6443");
	kube_config_free(&cfg);
}

/* The URL names tls_server_name, port and path prefix kept; CONNECT_TO
 * goes to the real address, IPv6 in brackets. */
static void test_url_with_tls_server_name(void **state)
{
	struct kube_config cfg = { 0 };
	char err[256], *url;

	(void)state;
	assert_int_equal(kube_config_set_server(&cfg, "https://10.0.0.1:6443", err, sizeof(err)), 0);
	url = kube_config_url(&cfg, "/api/v1/services?watch=1");
	assert_string_equal(url, "https://10.0.0.1:6443/api/v1/services?watch=1");
	free(url);

	cfg.tls_server_name = strdup("kubernetes.default.svc");
	assert_int_equal(kube_config_set_server(&cfg, "https://10.0.0.1:6443", err, sizeof(err)), 0);
	url = kube_config_url(&cfg, "/api/v1/services?watch=1");
	assert_string_equal(url, "https://kubernetes.default.svc:6443/api/v1/services?watch=1");
	free(url);
	assert_string_equal(connect_to(&cfg), "kubernetes.default.svc:6443:10.0.0.1:6443");

	assert_int_equal(kube_config_set_server(&cfg, "[fd00::1]:8443", err, sizeof(err)), 0);
	url = kube_config_url(&cfg, "/api");
	assert_string_equal(url, "https://kubernetes.default.svc:8443/api");
	free(url);
	assert_string_equal(connect_to(&cfg), "kubernetes.default.svc:8443:[fd00::1]:8443");

	assert_int_equal(kube_config_set_server(&cfg, "http://h:80/k8s/c1/", err, sizeof(err)), 0);
	url = kube_config_url(&cfg, "api");
	assert_string_equal(url, "http://kubernetes.default.svc:80/k8s/c1/api");
	free(url);

	/* the name of the host itself: nothing to redirect */
	assert_int_equal(kube_config_set_server(&cfg, "https://KUBERNETES.default.svc:443", err,
						sizeof(err)), 0);
	assert_null(cfg.connect_to);
	url = kube_config_url(&cfg, "/api");
	assert_string_equal(url, "https://KUBERNETES.default.svc:443/api");
	free(url);
	kube_config_free(&cfg);

	cfg.tls_server_name = strdup("fd00::9");
	assert_int_equal(kube_config_set_server(&cfg, "[fd00::1]:6443", err, sizeof(err)), 0);
	url = kube_config_url(&cfg, "/api");
	assert_string_equal(url, "https://[fd00::9]:6443/api");
	free(url);
	assert_string_equal(connect_to(&cfg), "[fd00::9]:6443:[fd00::1]:6443");
	kube_config_free(&cfg);
}

/* Every mistake is one error naming the kubeconfig, the context, cluster
 * or user, and the field. */
static void test_kubeconfig_errors(void **state)
{
	char *missing, *path;

	(void)state;
	load_fails("none", "kubeconfig ", "/none: No such file or directory", NULL);
	write_file("config", "");
	load_fails("config", "/config: empty", NULL);
	write_file("config", "a: [b\n");
	load_fails("config", "/config: line ", NULL);
	write_file("config", "- a\n");
	load_fails("config", "not a kubeconfig", NULL);

	write_file("config", KC_HEAD "contexts: []\n");
	load_fails("config", "no current-context", NULL);
	write_file("config", KC_HEAD "current-context: dev\n"
		   "contexts: [{name: prod, context: {cluster: c}}]\n");
	load_fails("config", "/config: current-context \"dev\" not found in contexts", NULL);
	write_file("config", KC_HEAD "current-context: dev\ncontexts: {dev: {}}\n");
	load_fails("config", "contexts is not a list", NULL);
	write_file("config", KC_HEAD "current-context: dev\ncontexts: [{name: dev, context: {user: u}}]\n");
	load_fails("config", "context \"dev\": no cluster", NULL);
	write_file("config", KC_HEAD "current-context: dev\n"
		   "contexts: [{name: dev, context: {cluster: c, user: u}}]\n"
		   "clusters: [{name: other, cluster: {server: 'https://h:1'}}]\n");
	load_fails("config", "context \"dev\": cluster \"c\" not found in clusters", NULL);
	write_file("config", KC_HEAD "current-context: dev\n"
		   "contexts: [{name: dev, context: {cluster: c, user: u}}]\n"
		   "clusters: [{name: c, cluster: {server: 'https://h:1'}}]\n");
	load_fails("config", "context \"dev\": user \"u\" not found in users", NULL);

	write_file("config", KC_HEAD "current-context: dev\n"
		   "contexts: [{name: dev, context: {cluster: c}}]\n"
		   "clusters: [{name: c, cluster: {certificate-authority: x}}]\n");
	load_fails("config", "cluster \"c\": no server", NULL);
	write_file("config", KC_HEAD "current-context: dev\n"
		   "contexts: [{name: dev, context: {cluster: c}}]\n"
		   "clusters: [{name: c, cluster: {server: 'h:99999'}}]\n");
	load_fails("config", "cluster \"c\": server \"h:99999\": bad port", NULL);
	write_file("config", KC_HEAD "current-context: dev\n"
		   "contexts: [{name: dev, context: {cluster: c}}]\n"
		   "clusters: [{name: c, cluster: {server: 'https://h:1', "
		   "certificate-authority-data: 'LS0t!LS0t'}}]\n");
	load_fails("config", "cluster \"c\": certificate-authority-data: bad base64: character '!' at offset 4",
		   NULL);
	write_file("config", KC_HEAD "current-context: dev\n"
		   "contexts: [{name: dev, context: {cluster: c}}]\n"
		   "clusters: [{name: c, cluster: {server: 'https://h:1', "
		   "certificate-authority-data: 'aGVsbG8='}}]\n");
	load_fails("config", "certificate-authority-data: does not decode to PEM", NULL);
	write_file("config", KC_HEAD "current-context: dev\n"
		   "contexts: [{name: dev, context: {cluster: c}}]\n"
		   "clusters: [{name: c, cluster: {server: 'https://h:1', "
		   "insecure-skip-tls-verify: 'yes'}}]\n");
	load_fails("config", "insecure-skip-tls-verify must be true or false", NULL);

	write_user_config("{client-certificate: c.crt, client-key: c.key}");
	missing = tmp_path("c.crt");
	assert_true(asprintf(&path, "user \"u\": client-certificate %s: No such file or directory",
			     missing) > 0);
	load_fails("config", path, NULL);
	free(path);
	free(missing);
	write_file("c.crt", CERT_PEM);
	write_user_config("{client-certificate: c.crt}");
	load_fails("config", "user \"u\": client-certificate without client-key", NULL);
	write_user_config("{client-certificate-data: '%%%'}");
	load_fails("config", "user \"u\": client-certificate-data: bad base64: character '%'", NULL);
	write_user_config("{client-key-data: 'LS0tLS1CRUdJTiBY'}");
	load_fails("config", "user \"u\": client-key without client-certificate", NULL);
	write_user_config("{tokenFile: /nonexistent/token}");
	load_fails("config", "user \"u\": tokenFile /nonexistent/token: No such file", NULL);
	write_file("empty-token", " \n");
	write_user_config("{tokenFile: empty-token}");
	load_fails("config", "/empty-token: empty", NULL);
	write_user_config("{token: 12345}");
	load_fails("config", "user \"u\": token must be a string", NULL);
	write_user_config("{exec: {command: aws}}");
	load_fails("config", "user \"u\": exec credential plugins are not supported", NULL);
	write_user_config("{tokenFile: .}");
	load_fails("config", "tokenFile ", "/.: not a regular file", NULL);
}

/* ---- base64 ---- */

static void assert_b64(const char *in, const char *expect, size_t len)
{
	char err[128] = "";
	size_t got_len;
	char *got = kube_base64_decode(in, strlen(in), &got_len, err, sizeof(err));

	if (!got)
		fail_msg("decode \"%s\": %s", in, err);
	assert_bytes(got, got_len, expect, len);
	free(got);
}

static void assert_b64_fails(const char *in, const char *expect)
{
	char err[128] = "";
	size_t len;

	assert_null(kube_base64_decode(in, strlen(in), &len, err, sizeof(err)));
	if (!strstr(err, expect))
		fail_msg("decode \"%s\": error \"%s\" lacks \"%s\"", in, err, expect);
}

/* Padding, whitespace anywhere, the whole alphabet; anything else refused. */
static void test_base64(void **state)
{
	(void)state;
	assert_b64("", "", 0);
	assert_b64("Zg==", "f", 1);
	assert_b64("Zm8=", "fo", 2);
	assert_b64("Zm9v", "foo", 3);
	assert_b64(" Zm9v\nYmFy\r\n\tYQ = = \n", "foobara", 7);
	assert_b64("+/8A", "\xfb\xff\x00", 3);
	assert_b64_fails("Zm9", "not a multiple of 4");
	assert_b64_fails("Zg", "missing padding");
	assert_b64_fails("Z===", "misplaced '='");
	assert_b64_fails("Zg==Zg==", "data after '=' padding");
	assert_b64_fails("Zm9v-_==", "character '-' at offset 4");
	assert_b64_fails("Zm9v\x01", "byte 0x01 at offset 4");
}

/* ---- in-cluster ---- */

static void in_cluster_env(const char *host, const char *port)
{
	if (host)
		setenv("KUBERNETES_SERVICE_HOST", host, 1);
	else
		unsetenv("KUBERNETES_SERVICE_HOST");
	if (port)
		setenv("KUBERNETES_SERVICE_PORT", port, 1);
	else
		unsetenv("KUBERNETES_SERVICE_PORT");
}

static void in_cluster_fails(const char *expect)
{
	struct kube_config cfg;
	char err[512] = "";

	assert_int_equal(kube_config_in_cluster(tmpdir, &cfg, err, sizeof(err)), -1);
	if (!strstr(err, expect))
		fail_msg("error \"%s\" lacks \"%s\"", err, expect);
	assert_null(cfg.server);
}

static void test_in_cluster(void **state)
{
	struct kube_config cfg;
	char err[512] = "", *ca = tmp_path("ca.crt");

	(void)state;
	write_file("token", "sa-token\n");
	write_file("ca.crt", CA_PEM);
	in_cluster_env("10.96.0.1", "443");
	assert_int_equal(kube_config_in_cluster(tmpdir, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.server, "https://10.96.0.1:443");
	assert_string_equal(cfg.ca_file, ca);
	assert_string_equal(cfg.origin, "in-cluster");
	assert_string_equal(kube_token_get(&cfg, false), "sa-token");
	kube_config_free(&cfg);

	in_cluster_env("fd00:10:96::1", "6443");
	assert_int_equal(kube_config_in_cluster(tmpdir, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.server, "https://[fd00:10:96::1]:6443");
	assert_string_equal(cfg.host, "fd00:10:96::1");
	kube_config_free(&cfg);

	in_cluster_env(NULL, "443");
	in_cluster_fails("KUBERNETES_SERVICE_HOST is not set (not running in a cluster?)");
	in_cluster_env("10.96.0.1", NULL);
	in_cluster_fails("KUBERNETES_SERVICE_PORT is not set");
	in_cluster_env("10.96.0.1", "https");
	in_cluster_fails("in-cluster: KUBERNETES_SERVICE_HOST/PORT: server \"https://10.96.0.1:https\": bad port");
	in_cluster_env("10.96.0.1", "443");
	remove_file("ca.crt");
	in_cluster_fails("in-cluster: CA ");
	write_file("token", "\n");
	in_cluster_fails("in-cluster: token ");
	remove_file("token");
	in_cluster_fails("/token: No such file or directory");
	in_cluster_env(NULL, NULL);
	free(ca);
}

/* ---- --apiserver ---- */

static void assert_server(const char *url, const char *expect)
{
	struct kube_config cfg = { 0 };
	char err[512] = "";

	if (kube_config_set_server(&cfg, url, err, sizeof(err)) < 0)
		fail_msg("set_server %s: %s", url, err);
	assert_string_equal(cfg.server, expect);
	kube_config_free(&cfg);
}

static void assert_server_fails(const char *url, const char *expect)
{
	struct kube_config cfg = { 0 };
	char err[512] = "";

	assert_int_equal(kube_config_set_server(&cfg, url, err, sizeof(err)), -1);
	if (!strstr(err, expect))
		fail_msg("set_server %s: error \"%s\" lacks \"%s\"", url, err, expect);
	assert_null(cfg.server);
}

static void test_set_server_forms(void **state)
{
	struct kube_config cfg = { 0 };
	char err[256];

	(void)state;
	assert_server("https://10.0.0.1:6443", "https://10.0.0.1:6443");
	assert_server("http://127.0.0.1:8080", "http://127.0.0.1:8080");
	assert_server("api.example:6443", "https://api.example:6443");
	assert_server("[::1]:6443", "https://[::1]:6443");
	assert_server("https://[fd00::1]:443/", "https://[fd00::1]:443");
	assert_server("https://api.example", "https://api.example:443");
	assert_server("http://api.example", "http://api.example:80");
	assert_server("HTTPS://h:1/prefix/x//", "https://h:1/prefix/x");
	assert_server("[::1]", "https://[::1]:443");
	assert_server_fails("::1:6443", "an IPv6 address needs brackets");
	assert_server_fails("fd00::1", "an IPv6 address needs brackets");
	assert_server_fails("[fd00::1:6443", "bad IPv6 host");
	assert_server_fails("[fd00::1]6443", "bad IPv6 host");
	assert_server_fails("[zz::1]:6443", "bad IPv6 address");
	assert_server_fails("h:0", "server \"h:0\": bad port");
	assert_server_fails("h:65536", "bad port");
	assert_server_fails("h:", "bad port");
	assert_server_fails("h:x", "bad port");
	assert_server_fails("ftp://h:21", "unsupported scheme");
	assert_server_fails("https://", "bad host");
	assert_server_fails("", "bad host");
	assert_server_fails("https://h:1/api?x=1", "a query");
	assert_server_fails("https://user@h:1", "user info");
	assert_server_fails("https://h o:1", "spaces");

	/* a bad URL leaves the config as it was */
	assert_int_equal(kube_config_set_server(&cfg, "https://h:1", err, sizeof(err)), 0);
	assert_int_equal(kube_config_set_server(&cfg, "h:x", err, sizeof(err)), -1);
	assert_string_equal(cfg.server, "https://h:1");
	assert_string_equal(cfg.host, "h");
	assert_int_equal(cfg.port, 1);
	kube_config_free(&cfg);
}

/* ---- token rereads ---- */

static int count(const char *haystack, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* Read at load; reread after 60 s or when forced; a failed reread keeps the
 * last good token and is logged once per streak. */
static void test_token_rereads(void **state)
{
	struct kube_config cfg;
	struct capture c;
	char log[4096];

	(void)state;
	write_file("t", "one\n");
	write_user_config("{tokenFile: t}");
	load_ok("config", &cfg);
	assert_string_equal(kube_token_get(&cfg, false), "one");

	write_file("t", "two\r\n");
	assert_string_equal(kube_token_get(&cfg, false), "one"); /* within 60 s */
	assert_string_equal(kube_token_get(&cfg, true), "two");  /* after a 401 */

	write_file("t", "  three \n\n");
	cfg.token_read_at.tv_sec -= KUBE_TOKEN_REREAD_SEC - 1;
	assert_string_equal(kube_token_get(&cfg, false), "two");
	cfg.token_read_at.tv_sec -= KUBE_TOKEN_REREAD_SEC;
	assert_string_equal(kube_token_get(&cfg, false), "three");

	remove_file("t");
	capture_begin(&c);
	assert_string_equal(kube_token_get(&cfg, true), "three");
	assert_string_equal(kube_token_get(&cfg, true), "three");
	cfg.token_read_at.tv_sec -= KUBE_TOKEN_REREAD_SEC;
	assert_string_equal(kube_token_get(&cfg, false), "three");
	write_file("t", "");
	assert_string_equal(kube_token_get(&cfg, true), "three");
	write_file("t", "four");
	assert_string_equal(kube_token_get(&cfg, true), "four");
	remove_file("t");
	assert_string_equal(kube_token_get(&cfg, true), "four");
	capture_end(&c, log, sizeof(log));
	assert_int_equal(count(log, "level=warn"), 2); /* two streaks */
	assert_int_equal(count(log, "No such file or directory; keeping the last token read"), 2);
	assert_int_equal(count(log, "readable again"), 1);
	kube_config_free(&cfg);
}

/* ---- curl ---- */

static void assert_tls_applies(const struct kube_config *cfg)
{
	CURL *curl = curl_easy_init();
	char *url = kube_config_url(cfg, "/version");

	assert_non_null(curl);
	assert_int_equal(kube_config_apply_tls(cfg, curl), 0);
	assert_int_equal(curl_easy_setopt(curl, CURLOPT_URL, url), CURLE_OK);
	curl_easy_cleanup(curl);
	free(url);
}

/* Each mode sets its options on a real handle (nothing is sent). */
static void test_apply_tls(void **state)
{
	struct kube_config cfg;
	char *cert = b64(CERT_PEM, sizeof(CERT_PEM) - 1), *key = b64(KEY_PEM, strlen(KEY_PEM));
	char *user;
	char err[256];

	(void)state;
	write_file("ca.crt", CA_PEM);
	write_file("c.crt", CERT_PEM);
	write_file("c.key", KEY_PEM);
	write_file("token", "t\n");
	assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);

	write_user_config("{token: t}"); /* no CA: curl's bundle */
	load_ok("config", &cfg);
	assert_tls_applies(&cfg);
	kube_config_free(&cfg);

	write_user_config("{client-certificate: c.crt, client-key: c.key}");
	load_ok("config", &cfg);
	cfg.ca_file = tmp_path("ca.crt");
	assert_tls_applies(&cfg);
	cfg.insecure = true;
	assert_tls_applies(&cfg);
	kube_config_free(&cfg);

	assert_true(asprintf(&user, "{client-certificate-data: %s, client-key-data: %s}",
			     cert, key) > 0);
	write_user_config(user);
	load_ok("config", &cfg);
	cfg.ca_pem = strdup(CA_PEM);
	cfg.ca_pem_len = strlen(CA_PEM);
	assert_tls_applies(&cfg);
	cfg.tls_server_name = strdup("api.internal");
	assert_int_equal(kube_config_set_server(&cfg, "10.0.0.1:6443", err, sizeof(err)), 0);
	assert_non_null(cfg.connect_to);
	assert_tls_applies(&cfg);
	kube_config_free(&cfg);

	in_cluster_env("10.96.0.1", "443");
	assert_int_equal(kube_config_in_cluster(tmpdir, &cfg, err, sizeof(err)), 0);
	assert_tls_applies(&cfg);
	kube_config_free(&cfg);
	in_cluster_env(NULL, NULL);

	curl_global_cleanup();
	free(user);
	free(cert);
	free(key);
}

/* check_transport on tmpdir/config: its return, err and what it logged. */
static int check_transport(struct kube_config *cfg, bool allow_http, char *err, size_t err_len,
			   char *log, size_t log_len)
{
	struct capture c;
	int rc;

	err[0] = '\0';
	capture_begin(&c);
	rc = kube_config_check_transport(cfg, allow_http, err, err_len);
	capture_end(&c, log, log_len);
	return rc;
}

/* A plain http:// server is refused, saying why (the token would go in
 * clear), unless allowed, and then warned about once; the same for an
 * --apiserver http:// in place of an https server. insecure-skip-tls-verify
 * is warned about once. https with verification: nothing to say. */
static void test_check_transport(void **state)
{
	struct kube_config cfg;
	char err[512], log[4096], *path = tmp_path("config");

	(void)state;
	write_file("token", "t\n");
	write_file("config", KC_HEAD "current-context: dev\n"
		   "contexts: [{name: dev, context: {cluster: c, user: u}}]\n"
		   "clusters: [{name: c, cluster: {server: 'http://10.0.0.1:8080'}}]\n"
		   "users: [{name: u, user: {tokenFile: token}}]\n");
	load_ok("config", &cfg);
	assert_int_equal(check_transport(&cfg, false, err, sizeof(err), log, sizeof(log)), -1);
	assert_string_equal(log, ""); /* the caller logs err */
	if (!strstr(err, "server http://10.0.0.1:8080 is plain HTTP: the bearer token would be "
			 "sent in clear and the server is not authenticated; use https, or "
			 "--allow-insecure-http") || !strstr(err, path))
		fail_msg("error \"%s\"", err);
	assert_int_equal(check_transport(&cfg, true, err, sizeof(err), log, sizeof(log)), 0);
	assert_int_equal(count(log, "level=warn"), 1);
	assert_non_null(strstr(log, "server http://10.0.0.1:8080 is plain HTTP "
				    "(--allow-insecure-http): the bearer token goes out in clear"));
	assert_int_equal(kube_config_set_server(&cfg, "https://10.0.0.1:6443", err, sizeof(err)), 0);
	assert_int_equal(check_transport(&cfg, false, err, sizeof(err), log, sizeof(log)), 0);
	assert_string_equal(log, "");
	kube_config_free(&cfg);

	write_user_config("{tokenFile: token}");
	load_ok("config", &cfg);
	assert_int_equal(kube_config_set_server(&cfg, "http://10.0.0.1", err, sizeof(err)), 0);
	assert_int_equal(check_transport(&cfg, false, err, sizeof(err), log, sizeof(log)), -1);
	assert_non_null(strstr(err, "server http://10.0.0.1:80 is plain HTTP"));
	kube_config_free(&cfg);

	write_file("config", KC_HEAD "current-context: dev\n"
		   "contexts: [{name: dev, context: {cluster: c}}]\n"
		   "clusters: [{name: c, cluster: {server: 'https://10.0.0.1:6443', "
		   "insecure-skip-tls-verify: true}}]\n");
	load_ok("config", &cfg);
	assert_int_equal(check_transport(&cfg, false, err, sizeof(err), log, sizeof(log)), 0);
	assert_int_equal(count(log, "level=warn"), 1);
	assert_non_null(strstr(log, ", context dev: insecure-skip-tls-verify: the API server's "
				    "certificate is not verified"));
	kube_config_free(&cfg);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TMP_TEST(test_current_context_selected),
		TMP_TEST(test_relative_paths),
		TMP_TEST(test_ca_data_beats_path),
		TMP_TEST(test_client_cert_data),
		TMP_TEST(test_token_vs_token_file),
		TMP_TEST(test_insecure_and_tls_server_name),
		cmocka_unit_test(test_url_with_tls_server_name),
		TMP_TEST(test_kubeconfig_errors),
		cmocka_unit_test(test_base64),
		TMP_TEST(test_in_cluster),
		cmocka_unit_test(test_set_server_forms),
		TMP_TEST(test_token_rereads),
		TMP_TEST(test_apply_tls),
		TMP_TEST(test_check_transport),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
