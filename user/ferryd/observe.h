/* What ferryd tells the outside: Prometheus metrics (--metrics-addr) and
 * kube-proxy's health answers (--health-addr). The servers run on threads
 * of their own (metrics/httpd.h) and never touch the loop's data: the loop
 * publishes a copy of what they show (struct obs_view) before each wait and
 * after each apply, under a lock held only for the copy. */
#ifndef FERRY_FERRYD_OBSERVE_H
#define FERRY_FERRYD_OBSERVE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "datapath/nodeport.h"
#include "datapath/pinned.h"
#include "kube/watch.h"
#include "metrics/httpd.h"
#include "metrics/prom.h"
#include "source/kube_source.h"
#include "sync/engine.h"

struct agent;

/* The loop's state as last published. */
struct obs_view {
	bool kube;                       /* the API source (watch metrics, Node) */
	double due;                      /* kube_now() by which the loop said it
					  * would turn again (the end of its wait) */
	double unapplied_since;          /* health_unapplied_since, 0 = none */
	bool node_deleting;
	struct timespec last_update;     /* CLOCK_REALTIME of the last apply */
	struct sync_stats sync;
	uint64_t objects_skipped;
	struct histogram event_latency;
	struct histogram sync_duration;
	struct histogram programming;
	struct watch_stats watch[KUBE_COLLECTION__COUNT];
	uint64_t fields_ignored;         /* model_fields_ignored() */
	uint64_t hcnp_bind_errors;       /* healthCheckNodePorts not bound */
	bool packet_path;                /* north-south is served */
	size_t n_devs;                   /* the per-packet path's devices */
	struct np_device devs[NP_MAX_DEVICES];
};

struct agent_obs {
	struct httpd *metrics;
	struct httpd *health;
	/* The loop's own; published into view. */
	struct histogram event_latency;  /* s, from a watch event to the maps */
	struct histogram sync_duration;  /* s, one apply */
	struct histogram programming;    /* s, slice trigger time to the generation */
	double started;                  /* kube_now() at start */
	bool applied;                    /* the first state is in the maps */
	struct timespec last_update;     /* CLOCK_REALTIME of the last apply */
	double pending_since;            /* service ports unprogrammed since, 0 = none */
	double due;                      /* as last published */
	/* Set at start, read-only after: the handlers use them directly. */
	struct dp_maps maps;             /* descriptors, for the BPF counters */
	uint32_t capacity[DP_MAP__COUNT];
	double health_timeout;
	pthread_mutex_t lock;
	struct obs_view view;            /* under lock */
};

/* Start the servers whose address is not empty, after the datapath is
 * loaded. Returns 0, or -1 when one cannot listen (logged). */
int observe_start(struct agent *ag);
void observe_stop(struct agent *ag);

/* The loop is about to wait at most wait_ms: publish its state, and the
 * time by which it will be back (its heartbeat). */
void observe_turn(struct agent *ag, int wait_ms);
/* An apply took sync_s seconds; event_s is how long its oldest change
 * waited (< 0: none, e.g. a file reload). Publishes. */
void observe_applied(struct agent *ag, double sync_s, double event_s);
/* The generation that applies these EndpointSlice changes is published:
 * one observation each of the wall time since its last-change-trigger-time
 * (ns since the epoch), kube-proxy's network_programming_duration_seconds.
 * Published with the loop's next turn, which follows at once. */
void observe_programmed(struct agent *ag, const int64_t *trigger_ns, size_t n);
/* A copy of the published view, for the handlers. */
void observe_view(struct agent_obs *obs, struct obs_view *out);

/* health.c: the oldest change not yet in the maps (kube_now time), 0 when
 * there is none (loop side); and the answer to /healthz or /livez (server
 * side). */
double health_unapplied_since(const struct agent *ag);
int health_answer(struct agent_obs *obs, bool node_check, struct httpd_reply *reply);

/* metrics.c: the exposition text (server side). */
int metrics_answer(struct agent_obs *obs, struct httpd_reply *reply);

#endif
