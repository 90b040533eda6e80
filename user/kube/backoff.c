#include "kube/backoff.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_FIRST 0.8
#define BACKOFF_MAX 30.0
#define BACKOFF_RESET_AFTER 120.0
/* Up to this fraction is taken off, so that the agents of a whole cluster do
 * not come back to a restarted API server in one wave. */
#define BACKOFF_JITTER 0.2

double kube_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void backoff_init(struct backoff *bo)
{
	bo->delay = 0;
	bo->ok_since = -1;
}

double backoff_next(struct backoff *bo, double now, double retry_after)
{
	if (bo->ok_since >= 0 && now - bo->ok_since >= BACKOFF_RESET_AFTER)
		bo->delay = 0;
	bo->ok_since = -1;
	if (retry_after >= 0)
		return retry_after < BACKOFF_RETRY_AFTER_MAX ? retry_after : BACKOFF_RETRY_AFTER_MAX;
	bo->delay = bo->delay ? bo->delay * 2 : BACKOFF_FIRST;
	if (bo->delay > BACKOFF_MAX)
		bo->delay = BACKOFF_MAX;
	return bo->delay * (1 - BACKOFF_JITTER * ((double)random() / RAND_MAX));
}

void backoff_ok(struct backoff *bo, double now)
{
	if (bo->ok_since < 0)
		bo->ok_since = now;
}

double backoff_retry_after(const char *value, time_t wall_now)
{
	const char *p = value + strspn(value, " \t");
	size_t len = strlen(p);
	time_t when;

	while (len && isspace((unsigned char)p[len - 1]))
		len--;
	if (len && strspn(p, "0123456789") == len)
		return strtod(p, NULL); /* ERANGE cannot happen: inf is fine too */
	/* curl_getdate reads the three forms RFC 9110 asks recipients to
	 * accept (IMF-fixdate, RFC 850, asctime); a pure function, no transfer. */
	when = len ? curl_getdate(p, NULL) : -1;
	if (when == -1 || when <= wall_now)
		return -1;
	return (double)(when - wall_now);
}
