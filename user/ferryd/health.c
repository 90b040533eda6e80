/* /healthz and /livez, answered as kube-proxy answers them, so that cloud
 * load balancers and probes written for kube-proxy work unchanged: 200 when
 * every change received is in the maps or has waited less than
 * --health-timeout, 503 otherwise; /healthz also 503 while the Node is
 * being deleted (nodeEligible false). */
#define _GNU_SOURCE /* asprintf */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ferryd/agent.h"

double health_unapplied_since(const struct agent *ag)
{
	const struct agent_obs *obs = &ag->obs;
	double oldest = ag->kube ? kube_source_changed_since(ag->kube) : 0;

	/* Until the first state is programmed, everything is waiting. */
	if (!obs->applied)
		return obs->started;
	if (obs->pending_since && (!oldest || obs->pending_since < oldest))
		oldest = obs->pending_since;
	return oldest;
}

/* RFC 3339 in UTC, as Go's time.Time marshals; Go's zero time before the
 * first update. */
static void health_time(char *out, size_t len, const struct timespec *ts)
{
	struct tm tm;
	size_t n;

	if (!ts->tv_sec) {
		snprintf(out, len, "0001-01-01T00:00:00Z");
		return;
	}
	gmtime_r(&ts->tv_sec, &tm);
	n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, len - n, ".%09uZ", (unsigned)(ts->tv_nsec % 1000000000));
}

int health_answer(struct agent *ag, bool node_check, struct httpd_reply *reply)
{
	double since = health_unapplied_since(ag);
	bool healthy = !since || kube_now() - since < ag->opts.health_timeout;
	bool eligible = !ag->kube || !kube_source_node(ag->kube)->deleting;
	char updated[64], now_text[64];
	struct timespec now;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	health_time(updated, sizeof(updated), &ag->obs.last_update);
	health_time(now_text, sizeof(now_text), &now);
	if (node_check)
		n = asprintf(&reply->body, "{\"lastUpdated\": \"%s\",\"currentTime\": \"%s\", "
			     "\"nodeEligible\": %s}\n", updated, now_text,
			     eligible ? "true" : "false");
	else
		n = asprintf(&reply->body, "{\"lastUpdated\": \"%s\",\"currentTime\": \"%s\"}\n",
			     updated, now_text);
	if (n < 0) {
		reply->body = NULL;
		return -1;
	}
	reply->len = (size_t)n;
	reply->content_type = "application/json";
	reply->status = healthy && (!node_check || eligible) ? 200 : 503;
	return 0;
}
