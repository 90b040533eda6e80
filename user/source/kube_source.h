/* The Kubernetes API source: Services and EndpointSlices (without the
 * service-proxy-name and headless labels, B2) and this node's Node, listed
 * and watched, kept in a model store that the agent flushes into the sync
 * engine. */
#ifndef FERRY_KUBE_SOURCE_H
#define FERRY_KUBE_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/watch.h"
#include "model/store.h"

enum kube_collection {
	KUBE_SERVICES,
	KUBE_SLICES,
	KUBE_NODE,
	KUBE_COLLECTION__COUNT,
};

struct kube_source_stats {
	uint64_t objects_skipped;  /* objects that model_decode found invalid */
};

/* What the Node object says of this node. */
struct kube_node {
	bool seen;                 /* the Node exists in the API */
	bool deleting;             /* it has a deletionTimestamp, is gone, or is
				    * tainted ToBeDeletedByClusterAutoscaler */
	bool autoscaler_taint;     /* the taint, for the log */
	char zone[128];            /* topology.kubernetes.io/zone, "" when none */
	char addresses[512];       /* "InternalIP=10.0.0.1 Hostname=n1", for logs */
};

/* cfg is borrowed. max_event_bytes caps one watch event. */
struct kube_source *kube_source_open(struct kube_config *cfg, const char *node_name,
				     size_t max_per_service, size_t max_event_bytes);
void kube_source_close(struct kube_source *ks);

/* kube_client_run for the source's watches (see there). */
int kube_source_run(struct kube_source *ks, struct curl_waitfd *extra, unsigned n_extra,
		    int timeout_ms, int *ready);

/* Services and EndpointSlices have been listed in full and no relist is
 * under way: the store can be programmed. */
bool kube_source_synced(const struct kube_source *ks);
/* This node's Node has been listed (found or not): its zone is known. */
bool kube_source_node_listed(const struct kube_source *ks);
struct model_store *kube_source_store(struct kube_source *ks);
/* When (kube_now) the oldest change the store holds unflushed arrived;
 * 0 when none. kube_source_flushed resets it. */
double kube_source_changed_since(const struct kube_source *ks);
void kube_source_flushed(struct kube_source *ks);

const struct kube_source_stats *kube_source_stats(const struct kube_source *ks);
const struct watch_stats *kube_source_watch_stats(const struct kube_source *ks,
						  enum kube_collection c);
const struct kube_node *kube_source_node(const struct kube_source *ks);

#endif
