/* Internals of user/kube, shared by its files. Helpers that fail write the
 * reason alone in err (e.g. "No such file or directory"): the caller says
 * which file or field. */
#ifndef FERRY_KUBE_PRIV_H
#define FERRY_KUBE_PRIV_H

#include <stddef.h>

#include "kube/config.h"

#define KUBE_TOKEN_MAX (64 * 1024)
#define KUBECONFIG_MAX (16 * 1024 * 1024)

/* config.c: the whole file, NUL-terminated (not counted in *len), or NULL
 * with err. Refuses a file larger than max. */
char *kube_read_file(const char *path, size_t max, size_t *len, char *err, size_t err_len);

/* config.c: 0 when path is a regular file this process can open for reading,
 * or -1 with err. */
int kube_check_file(const char *path, char *err, size_t err_len);

/* token.c: strips whitespace around the token in buf (len bytes) in place;
 * refuses an empty one and one with control characters, which would break
 * the header it goes in. */
int kube_token_trim(char *buf, size_t len, char *err, size_t err_len);

/* token.c: the token in the file at path, whitespace around it stripped;
 * malloc'd, or NULL with err (also when empty). */
char *kube_token_read(const char *path, char *err, size_t err_len);

/* base64.c: standard base64 (RFC 4648 alphabet, with padding), whitespace
 * skipped, anything else refused. Malloc'd and NUL-terminated (not counted
 * in *out_len), or NULL with err. */
char *kube_base64_decode(const char *in, size_t in_len, size_t *out_len, char *err, size_t err_len);

/* tls.c: rebuilds cfg->connect_to from host, port and tls_server_name.
 * Returns 0 or -1 (out of memory). */
int kube_connect_to_update(struct kube_config *cfg);

#endif
