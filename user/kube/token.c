/* Bearer tokens. A service account token rotates (the kubelet rewrites the
 * file well before expiry), so a token file is read again once a minute and
 * after a 401; a failed reread keeps the last good token, which is likely
 * still valid for a while, rather than sending none. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kube/kube_priv.h"

static bool token_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int kube_token_trim(char *buf, size_t len, char *err, size_t err_len)
{
	size_t start = 0;

	while (len && token_space(buf[len - 1]))
		len--;
	while (start < len && token_space(buf[start]))
		start++;
	if (start == len) {
		snprintf(err, err_len, "empty");
		return -1;
	}
	for (size_t i = start; i < len; i++) {
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
			snprintf(err, err_len, "control character in the token");
			return -1;
		}
	}
	memmove(buf, buf + start, len - start);
	buf[len - start] = '\0';
	return 0;
}

char *kube_token_read(const char *path, char *err, size_t err_len)
{
	size_t len;
	char *buf = kube_read_file(path, KUBE_TOKEN_MAX, &len, err, err_len);

	if (buf && kube_token_trim(buf, len, err, err_len) < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static bool token_stale(const struct kube_config *cfg)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - cfg->token_read_at.tv_sec > KUBE_TOKEN_REREAD_SEC ||
	       (now.tv_sec - cfg->token_read_at.tv_sec == KUBE_TOKEN_REREAD_SEC &&
		now.tv_nsec >= cfg->token_read_at.tv_nsec);
}

/* Reads the token file again. A failure is stamped like a success: the next
 * try is in a minute or after the next 401, not at every request. */
static void token_reread(struct kube_config *cfg)
{
	char why[256];
	char *value = kube_token_read(cfg->token_file, why, sizeof(why));

	clock_gettime(CLOCK_MONOTONIC, &cfg->token_read_at);
	if (!value) {
		if (!cfg->token_failing)
			log_warn("kube", "token file %s: %s; %s", cfg->token_file, why,
				 cfg->token_value ? "keeping the last token read" : "no token to send");
		cfg->token_failing = true;
		return;
	}
	if (cfg->token_failing)
		log_info("kube", "token file %s: readable again", cfg->token_file);
	cfg->token_failing = false;
	free(cfg->token_value);
	cfg->token_value = value;
}

const char *kube_token_get(struct kube_config *cfg, bool force)
{
	if (!cfg->token_file)
		return cfg->token;
	if (force || !cfg->token_value || token_stale(cfg))
		token_reread(cfg);
	return cfg->token_value;
}
