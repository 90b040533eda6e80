/* What ferryd tells the outside: Prometheus metrics (--metrics-addr) and
 * kube-proxy's health answers (--health-addr), served from the agent's own
 * loop. */
#ifndef FERRY_FERRYD_OBSERVE_H
#define FERRY_FERRYD_OBSERVE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "metrics/httpd.h"
#include "metrics/prom.h"

struct agent;

struct agent_obs {
	struct httpd *metrics;
	struct httpd *health;
	struct histogram event_latency;  /* s, from a watch event to the maps */
	struct histogram sync_duration;  /* s, one apply */
	double started;                  /* kube_now() at start */
	bool applied;                    /* the first state is in the maps */
	struct timespec last_update;     /* CLOCK_REALTIME of the last apply */
	double pending_since;            /* service ports unprogrammed since, 0 = none */
};

/* Start the servers whose address is not empty. Returns 0, or -1 when one
 * cannot listen (logged). */
int observe_start(struct agent *ag);
void observe_stop(struct agent *ag);
/* The servers' descriptors to poll for readability, into fds (room for 2);
 * returns how many. */
int observe_fds(const struct agent *ag, int *fds);
/* Serve what is ready; call after every wait. */
void observe_run(struct agent *ag);

/* An apply took sync_s seconds; event_s is how long its oldest change
 * waited (< 0: none, e.g. a file reload). */
void observe_applied(struct agent *ag, double sync_s, double event_s);

/* health.c: the oldest change not yet in the maps (kube_now time), 0 when
 * there is none; and the answer to /healthz or /livez. */
double health_unapplied_since(const struct agent *ag);
int health_answer(struct agent *ag, bool node_check, struct httpd_reply *reply);

/* metrics.c: the exposition text. */
int metrics_answer(struct agent *ag, struct httpd_reply *reply);

#endif
