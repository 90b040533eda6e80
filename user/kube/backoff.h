/* How long to wait before retrying the API server: what it asked for in
 * Retry-After (at most 60 s), else 0.8 s doubling to 30 s with jitter,
 * starting over once things have gone well for 2 minutes. Times are
 * CLOCK_MONOTONIC seconds. */
#ifndef FERRY_KUBE_BACKOFF_H
#define FERRY_KUBE_BACKOFF_H

#include <time.h>

/* A Retry-After is never trusted beyond this: "Retry-After: 86400" must not
 * park a collection for a day. */
#define BACKOFF_RETRY_AFTER_MAX 60.0

struct backoff {
	double delay;      /* the last wait without Retry-After, 0 = none yet */
	double ok_since;   /* start of the current run of successes, < 0 = failing */
};

void backoff_init(struct backoff *bo);
/* A failure at now: the seconds to wait. retry_after < 0 = none given;
 * above BACKOFF_RETRY_AFTER_MAX it is capped. */
double backoff_next(struct backoff *bo, double now, double retry_after);
/* A success at now. */
void backoff_ok(struct backoff *bo, double now);

/* The seconds a Retry-After value asks for (RFC 9110: delta-seconds, or
 * an HTTP-date, which wall_now, the wall clock, turns into a delay), or -1
 * when it is not usable: not a number nor a date, or a date already past
 * (the clocks disagree: retrying at once could loop). Not capped. */
double backoff_retry_after(const char *value, time_t wall_now);

double kube_now(void);

#endif
