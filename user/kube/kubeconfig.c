/* kube_config_from_kubeconfig: the current context's cluster and user, as
 * kubectl reads them. Everything that can be checked is checked at load, so
 * that a bad kubeconfig is one precise error at startup rather than a TLS or
 * 401 failure later: the files named must be readable, the *-data fields
 * must decode to PEM, a tokenFile must hold a token. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "kube/kube_priv.h"
#include "source/yaml_doc.h"

/* One load: what errors name, and where relative paths start. */
struct kc_load {
	const char *path;        /* the kubeconfig as given */
	char *dir;               /* its folder, absolute */
	char subject[320];       /* "cluster \"c\"", "user \"u\"" or "": what errors are about */
	struct kube_config *cfg;
	char *err;
	size_t err_len;
};

/* "kubeconfig PATH: SUBJECT: why"; returns -1. */
static __attribute__((format(printf, 2, 3)))
int kc_error(struct kc_load *ld, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(ld->err, ld->err_len, "kubeconfig %s: %s%s%s", ld->path, ld->subject,
		 ld->subject[0] ? ": " : "", why);
	return -1;
}

/* The kubeconfig's folder as an absolute path, without resolving symlinks
 * (a kubeconfig mounted from a ConfigMap is a symlink into ..data/, and its
 * relative paths are relative to where it is mounted, as in kubectl). */
static char *kc_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *cwd, *dir;
	int n;

	if (slash == path)
		return strdup("/");
	if (path[0] == '/')
		return strndup(path, (size_t)(slash - path));
	cwd = getcwd(NULL, 0);
	if (!cwd)
		return NULL;
	n = slash ? asprintf(&dir, "%s/%.*s", cwd, (int)(slash - path), path)
		  : asprintf(&dir, "%s", cwd);
	free(cwd);
	return n < 0 ? NULL : dir;
}

/* A path of the kubeconfig, relative ones made relative to its folder. */
static char *kc_path(struct kc_load *ld, const char *path)
{
	char *full;

	if (path[0] == '/')
		return strdup(path);
	return asprintf(&full, "%s/%s", ld->dir, path) < 0 ? NULL : full;
}

/* *out is the string at key, NULL when absent, null or empty. */
static int kc_string(struct kc_load *ld, const cJSON *obj, const char *key, const char **out)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = NULL;
	if (!item || cJSON_IsNull(item))
		return 0;
	if (!cJSON_IsString(item))
		return kc_error(ld, "%s must be a string", key);
	*out = item->valuestring[0] ? item->valuestring : NULL;
	return 0;
}

static int kc_strdup(struct kc_load *ld, const char *s, char **out)
{
	*out = strdup(s);
	return *out ? 0 : kc_error(ld, "out of memory");
}

/* Reads the file and parses its first YAML document, which must be a
 * mapping. *docs is what to free. */
static const cJSON *kc_read(struct kc_load *ld, cJSON **docs)
{
	struct yaml_doc_error yerr = { 0 };
	char why[256];
	size_t len;
	char *buf = kube_read_file(ld->path, KUBECONFIG_MAX, &len, why, sizeof(why));
	const cJSON *root;

	*docs = NULL;
	if (!buf) {
		kc_error(ld, "%s", why);
		return NULL;
	}
	*docs = yaml_doc_parse(buf, len, 1, &yerr);
	free(buf);
	if (!*docs) {
		kc_error(ld, "line %zu: %s", yerr.line, yerr.msg);
		return NULL;
	}
	root = cJSON_GetArrayItem(*docs, 0);
	if (!root || cJSON_IsNull(root)) {
		kc_error(ld, "empty");
		return NULL;
	}
	if (!cJSON_IsObject(root)) {
		kc_error(ld, "not a kubeconfig (the top level is not a mapping)");
		return NULL;
	}
	return root;
}

/* The `field` mapping of the entry called name in root's list (contexts,
 * clusters, users: [{name: N, context: {...}}]); an entry whose mapping is
 * null gives an empty one. Errors say who asked for it (by). */
static int kc_named(struct kc_load *ld, const cJSON *root, const char *list, const char *field,
		    const char *name, const char *by, const cJSON **out)
{
	static const cJSON empty = { .type = cJSON_Object };
	const cJSON *entries = cJSON_GetObjectItemCaseSensitive(root, list), *entry, *n;

	if (entries && !cJSON_IsNull(entries) && !cJSON_IsArray(entries))
		return kc_error(ld, "%s is not a list", list);
	cJSON_ArrayForEach(entry, entries) {
		n = cJSON_GetObjectItemCaseSensitive(entry, "name");
		if (!cJSON_IsString(n) || strcmp(n->valuestring, name) != 0)
			continue;
		*out = cJSON_GetObjectItemCaseSensitive(entry, field);
		if (!*out || cJSON_IsNull(*out))
			*out = &empty;
		if (!cJSON_IsObject(*out))
			return kc_error(ld, "%s \"%s\" in %s: %s is not a mapping", by, name, list, field);
		return 0;
	}
	return kc_error(ld, "%s \"%s\" not found in %s", by, name, list);
}

/* A file the config names: made absolute and checked readable. */
static int kc_file(struct kc_load *ld, const cJSON *obj, const char *key, char **out)
{
	const char *value;
	char why[256];

	*out = NULL;
	if (kc_string(ld, obj, key, &value) < 0)
		return -1;
	if (!value)
		return 0;
	*out = kc_path(ld, value);
	if (!*out)
		return kc_error(ld, "out of memory");
	if (kube_check_file(*out, why, sizeof(why)) < 0)
		return kc_error(ld, "%s %s: %s", key, *out, why);
	return 0;
}

/* A *-data field: base64 of PEM. Checking for PEM catches data encoded
 * twice or not at all, which curl would refuse with a vaguer message. */
static int kc_data(struct kc_load *ld, const cJSON *obj, const char *key, char **out, size_t *len)
{
	const char *value;
	char why[256];

	*out = NULL;
	*len = 0;
	if (kc_string(ld, obj, key, &value) < 0)
		return -1;
	if (!value)
		return 0;
	*out = kube_base64_decode(value, strlen(value), len, why, sizeof(why));
	if (!*out)
		return kc_error(ld, "%s: %s", key, why);
	if (!memmem(*out, *len, "-----BEGIN ", 11))
		return kc_error(ld, "%s: does not decode to PEM (no \"-----BEGIN\" line)", key);
	return 0;
}

/* A YAML bool; absent or null is false. */
static int kc_bool(struct kc_load *ld, const cJSON *obj, const char *key, bool *out)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = cJSON_IsTrue(item);
	if (item && !cJSON_IsNull(item) && !cJSON_IsBool(item))
		return kc_error(ld, "%s must be true or false", key);
	return 0;
}

/* The server last: its connect_to (tls.c) needs tls_server_name. */
static int kc_cluster(struct kc_load *ld, const cJSON *cluster)
{
	struct kube_config *cfg = ld->cfg;
	const char *server, *name;
	char why[512];

	if (kc_string(ld, cluster, "server", &server) < 0)
		return -1;
	if (!server)
		return kc_error(ld, "no server");
	if (kc_string(ld, cluster, "tls-server-name", &name) < 0 ||
	    (name && kc_strdup(ld, name, &cfg->tls_server_name) < 0) ||
	    kc_bool(ld, cluster, "insecure-skip-tls-verify", &cfg->insecure) < 0 ||
	    kc_data(ld, cluster, "certificate-authority-data", &cfg->ca_pem, &cfg->ca_pem_len) < 0)
		return -1;
	if (!cfg->ca_pem && kc_file(ld, cluster, "certificate-authority", &cfg->ca_file) < 0)
		return -1;
	if (kube_config_set_server(cfg, server, why, sizeof(why)) < 0)
		return kc_error(ld, "%s", why);
	return 0;
}

/* token and tokenFile; the file is read now, so that it is known good. */
static int kc_token(struct kc_load *ld, const cJSON *user)
{
	struct kube_config *cfg = ld->cfg;
	const char *token;
	char why[256];

	if (kc_string(ld, user, "token", &token) < 0 ||
	    (token && kc_strdup(ld, token, &cfg->token) < 0))
		return -1;
	if (cfg->token && kube_token_trim(cfg->token, strlen(cfg->token), why, sizeof(why)) < 0)
		return kc_error(ld, "token: %s", why);
	if (kc_file(ld, user, "tokenFile", &cfg->token_file) < 0)
		return -1;
	if (!cfg->token_file)
		return 0;
	cfg->token_value = kube_token_read(cfg->token_file, why, sizeof(why));
	if (!cfg->token_value)
		return kc_error(ld, "tokenFile %s: %s", cfg->token_file, why);
	clock_gettime(CLOCK_MONOTONIC, &cfg->token_read_at);
	return 0;
}

/* The client certificate and its key, each from its data or its file. */
static int kc_client_cert(struct kc_load *ld, const cJSON *user)
{
	struct kube_config *cfg = ld->cfg;
	bool has_cert, has_key;

	if (kc_data(ld, user, "client-certificate-data", &cfg->cert_pem, &cfg->cert_pem_len) < 0 ||
	    kc_data(ld, user, "client-key-data", &cfg->key_pem, &cfg->key_pem_len) < 0)
		return -1;
	if (!cfg->cert_pem && kc_file(ld, user, "client-certificate", &cfg->cert_file) < 0)
		return -1;
	if (!cfg->key_pem && kc_file(ld, user, "client-key", &cfg->key_file) < 0)
		return -1;
	has_cert = cfg->cert_pem || cfg->cert_file;
	has_key = cfg->key_pem || cfg->key_file;
	if (has_cert && !has_key)
		return kc_error(ld, "client-certificate without client-key");
	if (has_key && !has_cert)
		return kc_error(ld, "client-key without client-certificate");
	return 0;
}

/* Credentials ferry cannot use: an error when the user has nothing else,
 * rather than requests that fail with 401 later. */
static int kc_unsupported(struct kc_load *ld, const cJSON *user)
{
	const struct kube_config *cfg = ld->cfg;
	const char *use = "use token, tokenFile or client-certificate and client-key";

	if (cfg->token || cfg->token_file || cfg->cert_pem || cfg->cert_file)
		return 0;
	if (cJSON_GetObjectItemCaseSensitive(user, "exec"))
		return kc_error(ld, "exec credential plugins are not supported (%s)", use);
	if (cJSON_GetObjectItemCaseSensitive(user, "auth-provider"))
		return kc_error(ld, "auth-provider is not supported (%s)", use);
	if (cJSON_GetObjectItemCaseSensitive(user, "username"))
		return kc_error(ld, "username/password is not supported (%s)", use);
	return 0;
}

static int kc_user(struct kc_load *ld, const cJSON *user)
{
	if (kc_token(ld, user) < 0 || kc_client_cert(ld, user) < 0)
		return -1;
	return kc_unsupported(ld, user);
}

/* The context's cluster and user, found before either is read so that a
 * missing one is reported first. A context without a user is anonymous. */
static int kc_context(struct kc_load *ld, const cJSON *root, const char *name)
{
	const char *cluster_name, *user_name;
	const cJSON *ctx, *cluster, *user = NULL;

	if (kc_named(ld, root, "contexts", "context", name, "current-context", &ctx) < 0)
		return -1;
	snprintf(ld->subject, sizeof(ld->subject), "context \"%s\"", name);
	if (kc_string(ld, ctx, "cluster", &cluster_name) < 0 ||
	    kc_string(ld, ctx, "user", &user_name) < 0)
		return -1;
	if (!cluster_name)
		return kc_error(ld, "no cluster");
	if (kc_named(ld, root, "clusters", "cluster", cluster_name, "cluster", &cluster) < 0 ||
	    (user_name && kc_named(ld, root, "users", "user", user_name, "user", &user) < 0))
		return -1;
	snprintf(ld->subject, sizeof(ld->subject), "cluster \"%s\"", cluster_name);
	if (kc_cluster(ld, cluster) < 0)
		return -1;
	if (!user)
		return 0;
	snprintf(ld->subject, sizeof(ld->subject), "user \"%s\"", user_name);
	return kc_user(ld, user);
}

static int kc_load(struct kc_load *ld, const cJSON *root)
{
	const char *name;

	if (kc_string(ld, root, "current-context", &name) < 0)
		return -1;
	if (!name)
		return kc_error(ld, "no current-context (kubectl config use-context NAME sets one)");
	if (kc_context(ld, root, name) < 0)
		return -1;
	if (asprintf(&ld->cfg->origin, "kubeconfig %s, context %s", ld->path, name) < 0) {
		ld->cfg->origin = NULL;
		ld->subject[0] = '\0';
		return kc_error(ld, "out of memory");
	}
	return 0;
}

int kube_config_from_kubeconfig(const char *path, struct kube_config *cfg, char *err, size_t err_len)
{
	struct kc_load ld = { .path = path, .cfg = cfg, .err = err, .err_len = err_len };
	const cJSON *root;
	cJSON *docs = NULL;
	int ret = -1;

	memset(cfg, 0, sizeof(*cfg));
	ld.dir = kc_dir(path);
	if (!ld.dir)
		return kc_error(&ld, "cannot tell its folder: %s", strerror(errno));
	root = kc_read(&ld, &docs);
	if (root)
		ret = kc_load(&ld, root);
	cJSON_Delete(docs);
	free(ld.dir);
	if (ret < 0)
		kube_config_free(cfg);
	return ret;
}
