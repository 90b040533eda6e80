/* /healthz and /livez, in kube-proxy's JSON so that cloud load balancers
 * and probes written for kube-proxy work unchanged.
 *
 * /livez says whether the agent's loop runs: 200 unless it is more than
 * --health-timeout late from its wait (a loop that waits at most a second
 * publishes a heartbeat before each wait; an apply or a blocked call holds
 * it). A full map, an API server that is down or a Node being deleted do
 * not fail it: a restart mends none of them, and each one relists the
 * whole cluster.
 *
 * /healthz (B29): 200 when every change received is in the maps or has
 * waited less than --health-timeout; 503 otherwise, while the loop is late
 * as /livez says (nothing received can reach the maps then), and while the
 * Node is being deleted (nodeEligible false). */
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

/* The status of one answer, from the view. */
static unsigned int health_status(const struct obs_view *v, double timeout, bool node_check)
{
	double now = kube_now();
	bool live = now - v->due <= timeout;
	bool applied = !v->unapplied_since || now - v->unapplied_since < timeout;

	if (!node_check)
		return live ? 200 : 503;
	return live && applied && !v->node_deleting ? 200 : 503;
}

int health_answer(struct agent_obs *obs, bool node_check, struct httpd_reply *reply)
{
	char updated[64], now_text[64];
	struct obs_view v;
	struct timespec now;
	int n;

	observe_view(obs, &v);
	clock_gettime(CLOCK_REALTIME, &now);
	health_time(updated, sizeof(updated), &v.last_update);
	health_time(now_text, sizeof(now_text), &now);
	if (node_check)
		n = asprintf(&reply->body, "{\"lastUpdated\": \"%s\",\"currentTime\": \"%s\", "
			     "\"nodeEligible\": %s}\n", updated, now_text,
			     v.node_deleting ? "false" : "true");
	else
		n = asprintf(&reply->body, "{\"lastUpdated\": \"%s\",\"currentTime\": \"%s\"}\n",
			     updated, now_text);
	if (n < 0) {
		reply->body = NULL;
		return -1;
	}
	reply->len = (size_t)n;
	reply->content_type = "application/json";
	reply->status = health_status(&v, obs->health_timeout, node_check);
	return 0;
}
