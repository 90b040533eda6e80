#include "kube/backoff.h"

#include <stdlib.h>
#include <time.h>

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
		return retry_after;
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
