#include "ferryd/observe.h"

#include <string.h>

#include "common/log.h"
#include "ferryd/agent.h"

/* From a millisecond to a second: a change should land in a few ms. */
static const double latency_bounds[] = {
	0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5,
};

static int observe_metrics(void *ctx, const char *path, struct httpd_reply *reply)
{
	if (strcmp(path, "/metrics") != 0) {
		reply->status = 404;
		reply->body = strdup("not found: try /metrics\n");
		reply->len = reply->body ? strlen(reply->body) : 0;
		return reply->body ? 0 : -1;
	}
	return metrics_answer(ctx, reply);
}

static int observe_health(void *ctx, const char *path, struct httpd_reply *reply)
{
	if (strcmp(path, "/healthz") == 0)
		return health_answer(ctx, true, reply);
	if (strcmp(path, "/livez") == 0)
		return health_answer(ctx, false, reply);
	reply->status = 404;
	reply->body = strdup("not found: try /healthz or /livez\n");
	reply->len = reply->body ? strlen(reply->body) : 0;
	return reply->body ? 0 : -1;
}

int observe_start(struct agent *ag)
{
	struct agent_obs *obs = &ag->obs;
	const size_t n_bounds = sizeof(latency_bounds) / sizeof(latency_bounds[0]);

	histogram_init(&obs->event_latency, latency_bounds, n_bounds);
	histogram_init(&obs->sync_duration, latency_bounds, n_bounds);
	obs->started = kube_now();
	if (ag->opts.metrics_addr[0] &&
	    !(obs->metrics = httpd_start(ag->opts.metrics_addr, "metrics", observe_metrics, ag)))
		return -1;
	if (ag->opts.health_addr[0] &&
	    !(obs->health = httpd_start(ag->opts.health_addr, "health", observe_health, ag)))
		return -1;
	return 0;
}

void observe_stop(struct agent *ag)
{
	httpd_stop(ag->obs.metrics);
	httpd_stop(ag->obs.health);
	ag->obs.metrics = ag->obs.health = NULL;
}

int observe_fds(const struct agent *ag, int *fds)
{
	int n = 0;

	if (ag->obs.metrics)
		fds[n++] = httpd_fd(ag->obs.metrics);
	if (ag->obs.health)
		fds[n++] = httpd_fd(ag->obs.health);
	return n;
}

void observe_run(struct agent *ag)
{
	if (ag->obs.metrics)
		httpd_run(ag->obs.metrics);
	if (ag->obs.health)
		httpd_run(ag->obs.health);
}

void observe_applied(struct agent *ag, double sync_s, double event_s)
{
	struct agent_obs *obs = &ag->obs;
	const struct sync_stats *st = sync_stats(ag->eng);

	obs->applied = true;
	clock_gettime(CLOCK_REALTIME, &obs->last_update);
	histogram_observe(&obs->sync_duration, sync_s);
	if (event_s >= 0)
		histogram_observe(&obs->event_latency, event_s);
	if (!st->pending)
		obs->pending_since = 0;
	else if (!obs->pending_since)
		obs->pending_since = kube_now();
}
