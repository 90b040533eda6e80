/* How long to wait before retrying the API server: what it asked for in
 * Retry-After, else 0.8 s doubling to 30 s with jitter, starting over once
 * things have gone well for 2 minutes. Times are CLOCK_MONOTONIC seconds. */
#ifndef FERRY_KUBE_BACKOFF_H
#define FERRY_KUBE_BACKOFF_H

struct backoff {
	double delay;      /* the last wait without Retry-After, 0 = none yet */
	double ok_since;   /* start of the current run of successes, < 0 = failing */
};

void backoff_init(struct backoff *bo);
/* A failure at now: the seconds to wait. retry_after < 0 = none given. */
double backoff_next(struct backoff *bo, double now, double retry_after);
/* A success at now. */
void backoff_ok(struct backoff *bo, double now);

double kube_now(void);

#endif
