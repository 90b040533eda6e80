#include "ferryd/observe.h"

#include <string.h>

#include "common/log.h"
#include "datapath/counters.h"
#include "ferryd/agent.h"
#include "ferryd/hcnp.h"
#include "model/model.h"

/* From 0.1 ms to 5 s: a single change lands in well under a millisecond. */
static const double latency_bounds[] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1,
	2, 5,
};

/* kube-proxy's network_programming_duration_seconds buckets: 0, 0.25 s,
 * 0.5 s, 1-59 s by 1, 60-115 s by 5, 120-300 s by 30. */
static size_t programming_bounds(double *bounds)
{
	size_t n = 0;

	bounds[n++] = 0;
	bounds[n++] = 0.25;
	bounds[n++] = 0.5;
	for (int s = 1; s < 60; s++)
		bounds[n++] = s;
	for (int s = 60; s < 120; s += 5)
		bounds[n++] = s;
	for (int s = 120; s <= 300; s += 30)
		bounds[n++] = s;
	return n;
}

static int observe_not_found(struct httpd_reply *reply, const char *text)
{
	reply->status = 404;
	reply->body = strdup(text);
	reply->len = reply->body ? strlen(reply->body) : 0;
	return reply->body ? 0 : -1;
}

/* The handlers get the agent_obs only: what they read is the published view
 * and what was fixed at start. */
static int observe_metrics(void *ctx, const char *path, struct httpd_reply *reply)
{
	if (strcmp(path, "/metrics") != 0)
		return observe_not_found(reply, "not found: try /metrics\n");
	return metrics_answer(ctx, reply);
}

static int observe_health(void *ctx, const char *path, struct httpd_reply *reply)
{
	if (strcmp(path, "/healthz") == 0)
		return health_answer(ctx, true, reply);
	if (strcmp(path, "/livez") == 0)
		return health_answer(ctx, false, reply);
	return observe_not_found(reply, "not found: try /healthz or /livez\n");
}

/* The loop's state into the view, then under the lock for the copy only. */
static void observe_publish(struct agent *ag)
{
	struct agent_obs *obs = &ag->obs;
	struct obs_view v = {
		.kube = ag->kube != NULL,
		.due = obs->due,
		.unapplied_since = health_unapplied_since(ag),
		.last_update = obs->last_update,
		.sync = *sync_stats(ag->eng),
		.event_latency = obs->event_latency,
		.sync_duration = obs->sync_duration,
		.programming = obs->programming,
		.fields_ignored = model_fields_ignored(),
		.hcnp_bind_errors = ag->hcnp ? hcnp_bind_errors(ag->hcnp) : 0,
		.packet_path = ag->np.n_devs > 0,
		.n_devs = ag->np.n_devs,
	};

	memcpy(v.devs, ag->np.devs, sizeof(v.devs));
	if (ag->kube) {
		v.node_deleting = kube_source_node(ag->kube)->deleting;
		v.objects_skipped = kube_source_stats(ag->kube)->objects_skipped;
		for (int c = 0; c < KUBE_COLLECTION__COUNT; c++)
			v.watch[c] = *kube_source_watch_stats(ag->kube, (enum kube_collection)c);
	} else {
		v.objects_skipped = file_source_stats(ag->file)->objects_skipped;
	}
	pthread_mutex_lock(&obs->lock);
	obs->view = v;
	pthread_mutex_unlock(&obs->lock);
}

void observe_view(struct agent_obs *obs, struct obs_view *out)
{
	pthread_mutex_lock(&obs->lock);
	*out = obs->view;
	pthread_mutex_unlock(&obs->lock);
}

int observe_start(struct agent *ag)
{
	struct agent_obs *obs = &ag->obs;
	const size_t n_bounds = sizeof(latency_bounds) / sizeof(latency_bounds[0]);
	double bounds[HISTOGRAM_MAX_BUCKETS];

	histogram_init(&obs->event_latency, latency_bounds, n_bounds);
	histogram_init(&obs->sync_duration, latency_bounds, n_bounds);
	histogram_init(&obs->programming, bounds, programming_bounds(bounds));
	obs->started = obs->due = kube_now();
	obs->maps = ag->dp.maps;
	for (int m = 0; m < DP_MAP__COUNT; m++)
		obs->capacity[m] = dp_map_capacity(&ag->dp.maps, (enum dp_map)m);
	/* ferry_backends spans the backend_id space; the sync engine holds at
	 * most this many in it. */
	obs->capacity[DP_MAP_BACKENDS] = dp_limits_backends_held(&ag->opts.limits);
	obs->health_timeout = ag->opts.health_timeout;
	pthread_mutex_init(&obs->lock, NULL);
	observe_publish(ag);
	if (ag->opts.metrics_addr[0] &&
	    !(obs->metrics = httpd_start(ag->opts.metrics_addr, "metrics", observe_metrics, obs)))
		return -1;
	if (ag->opts.health_addr[0] &&
	    !(obs->health = httpd_start(ag->opts.health_addr, "health", observe_health, obs)))
		return -1;
	return 0;
}

void observe_stop(struct agent *ag)
{
	httpd_stop(ag->obs.metrics);
	httpd_stop(ag->obs.health);
	ag->obs.metrics = ag->obs.health = NULL;
}

void observe_turn(struct agent *ag, int wait_ms)
{
	ag->obs.due = kube_now() + wait_ms / 1e3;
	observe_publish(ag);
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
	observe_publish(ag);
}

void observe_programmed(struct agent *ag, const int64_t *trigger_ns, size_t n)
{
	struct timespec now;
	int64_t now_ns;

	if (!n)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	for (size_t i = 0; i < n; i++)
		histogram_observe(&ag->obs.programming, (double)(now_ns - trigger_ns[i]) / 1e9);
}
