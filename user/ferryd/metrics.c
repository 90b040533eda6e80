/* The Prometheus metrics: the watches, the applies, what the maps hold and
 * the datapath's own counters. Rendered on the metrics server's thread from
 * the view the loop published (observe.h); the BPF counters are read
 * directly, as they change with traffic, not with the loop. */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datapath/counters.h"
#include "datapath/features.h"
#include "ferryd/agent.h"

#ifndef FERRY_VERSION
#define FERRY_VERSION "unknown"
#endif

static const char *const collection_names[KUBE_COLLECTION__COUNT] = {
	[KUBE_SERVICES] = "services",
	[KUBE_SLICES] = "endpointslices",
	[KUBE_NODE] = "nodes",
};

static const char *const error_names[WATCH_ERR__COUNT] = {
	[WATCH_ERR_TRANSPORT] = "transport",
	[WATCH_ERR_UNAUTHORIZED] = "unauthorized",
	[WATCH_ERR_FORBIDDEN] = "forbidden",
	[WATCH_ERR_THROTTLED] = "throttled",
	[WATCH_ERR_SERVER] = "server_error",
	[WATCH_ERR_HTTP] = "http_error",
	[WATCH_ERR_BAD_DATA] = "bad_data",
	[WATCH_ERR_SHORT] = "short_watch",
	[WATCH_ERR_IDLE] = "idle",
};

static const char *const event_names[KUBE_EVENT__COUNT] = { "added", "modified", "deleted" };

/* One counter family with a sample per collection. */
static void metrics_per_collection(struct prom_buf *b, const char *name, const char *help,
				   const uint64_t values[KUBE_COLLECTION__COUNT])
{
	char labels[64];

	prom_family(b, name, "counter", help);
	for (int c = 0; c < KUBE_COLLECTION__COUNT; c++) {
		snprintf(labels, sizeof(labels), "collection=\"%s\"", collection_names[c]);
		prom_sample(b, name, labels, (double)values[c]);
	}
}

static void metrics_watch(struct prom_buf *b, const struct obs_view *v)
{
	uint64_t lists[KUBE_COLLECTION__COUNT], starts[KUBE_COLLECTION__COUNT];
	uint64_t relists[KUBE_COLLECTION__COUNT], streamed[KUBE_COLLECTION__COUNT];
	char labels[96];

	for (int c = 0; c < KUBE_COLLECTION__COUNT; c++) {
		const struct watch_stats *ws = &v->watch[c];

		lists[c] = ws->lists;
		streamed[c] = ws->streamed_lists;
		starts[c] = ws->watches;
		relists[c] = ws->expired;
	}
	metrics_per_collection(b, "ferry_watch_lists_total", "Lists completed.", lists);
	metrics_per_collection(b, "ferry_watch_streamed_lists_total",
			       "Lists completed as streaming lists (WatchList), not paged.", streamed);
	metrics_per_collection(b, "ferry_watch_starts_total", "Watch requests sent.", starts);
	metrics_per_collection(b, "ferry_watch_relists_total", "Lists forced by 410 Expired.",
			       relists);
	prom_family(b, "ferry_watch_errors_total", "counter", "Failed list or watch requests.");
	for (int c = 0; c < KUBE_COLLECTION__COUNT; c++)
		for (int e = 0; e < WATCH_ERR__COUNT; e++) {
			snprintf(labels, sizeof(labels), "collection=\"%s\",reason=\"%s\"",
				 collection_names[c], error_names[e]);
			prom_sample(b, "ferry_watch_errors_total", labels,
				    (double)v->watch[c].errors[e]);
		}
	prom_family(b, "ferry_watch_events_total", "counter", "Watch events received.");
	for (int c = 0; c < KUBE_COLLECTION__COUNT; c++) {
		const struct watch_stats *ws = &v->watch[c];

		for (int e = 0; e <= KUBE_EVENT__COUNT; e++) {
			snprintf(labels, sizeof(labels), "collection=\"%s\",type=\"%s\"",
				 collection_names[c], e < KUBE_EVENT__COUNT ? event_names[e] : "bookmark");
			prom_sample(b, "ferry_watch_events_total", labels,
				    (double)(e < KUBE_EVENT__COUNT ? ws->events[e] : ws->bookmarks));
		}
	}
}

static void metrics_map(struct prom_buf *b, const struct agent_obs *obs, enum dp_map map,
			uint64_t entries)
{
	uint32_t cap = obs->capacity[map];
	char labels[64];

	snprintf(labels, sizeof(labels), "map=\"%s\"", dp_map_names[map]);
	prom_sample(b, "ferry_map_fill_ratio", labels, cap ? (double)entries / cap : 0);
}

/* The flows in ferry_ct, read in batches: an LRU map keeps no count of its
 * own that userspace can read. -1 when it cannot be read. */
static void metrics_maps(struct prom_buf *b, const struct agent_obs *obs,
			 const struct obs_view *v)
{
	const struct sync_stats *st = &v->sync;
	long long ct = dp_map_count(obs->maps.fd[DP_MAP_CT]);

	prom_family(b, "ferry_service_ports", "gauge", "Service ports programmed.");
	prom_sample(b, "ferry_service_ports", NULL, (double)st->services);
	prom_family(b, "ferry_backends", "gauge", "Backends programmed, over all service ports.");
	prom_sample(b, "ferry_backends", NULL, (double)st->backends);
	prom_family(b, "ferry_service_ports_pending", "gauge",
		    "Service ports desired but not programmed (no room, or frontend taken).");
	prom_sample(b, "ferry_service_ports_pending", NULL, (double)st->pending);
	prom_family(b, "ferry_map_fill_ratio", "gauge", "Entries over capacity, per map.");
	metrics_map(b, obs, DP_MAP_SERVICES4, st->svc_entries4);
	metrics_map(b, obs, DP_MAP_SERVICES, st->svc_entries6);
	metrics_map(b, obs, DP_MAP_FAST4, st->fast_entries);
	metrics_map(b, obs, DP_MAP_SLOTS, st->slots);
	metrics_map(b, obs, DP_MAP_BACKENDS, st->backends);
	if (ct >= 0)
		metrics_map(b, obs, DP_MAP_CT, (uint64_t)ct);
	prom_family(b, "ferry_fast_left_out_total", "counter",
		    "ClusterIP ports ferry_fast4 had no free entry for near their home: their "
		    "connect() looks them up in ferry_services4.");
	prom_sample(b, "ferry_fast_left_out_total", NULL, (double)st->fast_left_out);
	prom_family(b, "ferry_ct_entries", "gauge",
		    "Per-packet flow entries (two per flow: original and reply direction).");
	if (ct >= 0)
		prom_sample(b, "ferry_ct_entries", NULL, (double)ct);
}

static void metrics_counter(struct prom_buf *b, const char *name, const char *help, uint64_t v)
{
	prom_family(b, name, "counter", help);
	prom_sample(b, name, NULL, (double)v);
}

static void metrics_agent(struct prom_buf *b, const struct obs_view *v)
{
	const struct sync_stats *st = &v->sync;
	const struct timespec *t = &v->last_update;

	prom_family(b, "ferry_build_info", "gauge", "ferry's version; always 1.");
	prom_sample(b, "ferry_build_info", "version=\"" FERRY_VERSION "\"", 1);
	prom_family(b, "ferry_generation", "gauge", "Applies that changed the maps.");
	prom_sample(b, "ferry_generation", NULL, (double)st->generation);
	prom_family(b, "ferry_last_sync_timestamp_seconds", "gauge",
		    "When the maps last took a change (Unix time); 0 before the first.");
	prom_sample(b, "ferry_last_sync_timestamp_seconds", NULL,
		    (double)t->tv_sec + (double)t->tv_nsec / 1e9);
	prom_family(b, "ferry_sync_duration_seconds", "histogram", "One apply to the maps.");
	prom_histogram(b, "ferry_sync_duration_seconds", NULL, &v->sync_duration);
	prom_family(b, "ferry_event_to_datapath_seconds", "histogram",
		    "From a watch event's arrival to the maps holding it.");
	prom_histogram(b, "ferry_event_to_datapath_seconds", NULL, &v->event_latency);
	prom_family(b, "ferry_network_programming_duration_seconds", "histogram",
		    "From an EndpointSlice's last-change-trigger-time to the generation that "
		    "applies it (kube-proxy's network_programming_duration_seconds).");
	prom_histogram(b, "ferry_network_programming_duration_seconds", NULL, &v->programming);
	metrics_counter(b, "ferry_map_full_errors_total",
			"Service ports not (re)programmed for lack of room.", st->map_full_errors);
	metrics_counter(b, "ferry_frontend_conflicts_total",
			"Service ports whose frontend another one holds.", st->conflicts);
	metrics_counter(b, "ferry_objects_skipped_total",
			"Objects with invalid fields (their last good version stays).",
			v->objects_skipped);
	prom_family(b, "ferry_datapath_repairs_total", "counter",
		    "What someone else removed or changed in the datapath and ferryd put back "
		    "(B34; checked every --resync-period).");
	for (int k = 0; k < REPAIR__COUNT; k++) {
		char labels[48];

		snprintf(labels, sizeof(labels), "kind=\"%s\"", agent_repair_names[k]);
		prom_sample(b, "ferry_datapath_repairs_total", labels,
			    (double)agent_repairs((enum agent_repair)k));
	}
	metrics_counter(b, "ferry_fields_ignored_total",
			"Bad fields left out of objects otherwise served (a nodePort out of range, "
			"an unparsable source range, ...).", v->fields_ignored);
}

static void metrics_packet_path(struct prom_buf *b, const struct obs_view *v)
{
	char labels[96];

	metrics_counter(b, "ferry_health_check_bind_errors_total",
			"Attempts to listen on a healthCheckNodePort that failed (each is retried every 5 s).", v->hcnp_bind_errors);
	prom_family(b, "ferry_packet_path_devices", "gauge",
		    "Devices with the per-packet programs, by XDP mode (off: tc ingress).");
	for (size_t i = 0; i < v->n_devs; i++) {
		snprintf(labels, sizeof(labels), "device=\"%s\",xdp=\"%s\"", v->devs[i].name,
			 nodeport_mode_name(v->devs[i].xdp));
		prom_sample(b, "ferry_packet_path_devices", labels, 1);
	}
	prom_family(b, "ferry_packet_path_up", "gauge",
		    "1 when north-south traffic is served (the per-packet path is attached).");
	prom_sample(b, "ferry_packet_path_up", NULL, v->packet_path);
}

/* The optional kernel features this ferryd uses (features.h). */
static void metrics_features(struct prom_buf *b)
{
	char labels[64];

	prom_family(b, "ferry_feature_available", "gauge",
		    "1 when ferryd uses this optional feature; 0 when the kernel lacks it or it "
		    "is turned off (the log says what is missing).");
	for (int f = 0; f < FEATURE__COUNT; f++) {
		snprintf(labels, sizeof(labels), "feature=\"%s\"", feature_names[f]);
		prom_sample(b, "ferry_feature_available", labels,
			    features_used((enum feature)f) ? 1 : 0);
	}
}

static void metrics_datapath(struct prom_buf *b, const struct agent_obs *obs)
{
	uint64_t sums[STAT__COUNT];
	char labels[64];

	dp_counters_read(&obs->maps, sums);
	prom_family(b, "ferry_datapath_events_total", "counter",
		    "The BPF programs' counters, summed over CPUs.");
	for (int i = 0; i < STAT__COUNT; i++) {
		snprintf(labels, sizeof(labels), "event=\"%s\"", dp_stat_names[i]);
		prom_sample(b, "ferry_datapath_events_total", labels, (double)sums[i]);
	}
}

int metrics_answer(struct agent_obs *obs, struct httpd_reply *reply)
{
	struct prom_buf b = { 0 };
	struct obs_view v;

	observe_view(obs, &v);
	metrics_agent(&b, &v);
	metrics_maps(&b, obs, &v);
	metrics_datapath(&b, obs);
	metrics_packet_path(&b, &v);
	metrics_features(&b);
	if (v.kube)
		metrics_watch(&b, &v);
	if (b.failed) {
		prom_free(&b);
		return -1;
	}
	reply->body = b.text;
	reply->len = b.len;
	reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
	return 0;
}
