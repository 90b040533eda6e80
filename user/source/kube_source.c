/* Watch events -> model store. An object that does not decode keeps its
 * last good version; one that goes is deleted; a relist replaces the whole
 * collection. */
#define _GNU_SOURCE /* asprintf */
#include "source/kube_source.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "source/kube_priv.h"

/* B2: the API server filters out what another proxy or nobody serves. */
#define SELECTOR_PROXIED "labelSelector=%21service.kubernetes.io%2Fservice-proxy-name" \
	"%2C%21service.kubernetes.io%2Fheadless"

static enum store_kind source_kind(const struct kube_source *ks, const struct watch *w)
{
	return w == &ks->watches[KUBE_SERVICES] ? STORE_SERVICE : STORE_SLICE;
}

void kube_source_touched(struct kube_source *ks)
{
	if (!ks->changed_since && store_dirty(ks->store))
		ks->changed_since = kube_now();
}

static void source_list_begin(void *ctx, struct watch *w)
{
	struct kube_source *ks = ctx;

	store_relist_begin(ks->store, source_kind(ks, w));
}

static void source_list_end(void *ctx, struct watch *w)
{
	struct kube_source *ks = ctx;
	enum store_kind kind = source_kind(ks, w);
	size_t gone = store_relist_end(ks->store, kind);

	log_info("kube", "%s: listed %zu at resourceVersion %s", w->name,
		 store_count(ks->store, kind), w->rv);
	if (gone)
		log_info("kube", "%s: %zu gone since the last list", w->name, gone);
	kube_source_touched(ks);
}

/* Decode obj and put it in the store; an invalid one is reported and its
 * last good version stays. */
static void source_put(struct kube_source *ks, struct watch *w, cJSON *obj)
{
	enum store_kind kind = source_kind(ks, w);
	struct model_objects one = { 0 };
	struct model_ref ref;
	char why[512];
	enum decode_result r;

	/* List items come without kind and apiVersion. */
	if (!cJSON_GetObjectItemCaseSensitive(obj, "kind"))
		cJSON_AddStringToObject(obj, "kind", w->kind);
	r = model_decode(obj, &one, why, sizeof(why));
	if (r == DECODE_INVALID) {
		ks->stats.objects_skipped++;
		log_warn("kube", "%s; its last good version stays", why);
		if (model_object_ref(obj, &ref))
			store_keep(ks->store, kind, ref.ns, ref.name);
	} else if (r == DECODE_OK && kind == STORE_SERVICE && one.n_services) {
		store_put_service(ks->store, &one.services[0]);
	} else if (r == DECODE_OK && kind == STORE_SLICE && one.n_slices) {
		store_put_slice(ks->store, &one.slices[0]);
	}
	model_objects_free(&one);
}

static void source_object(void *ctx, struct watch *w, enum kube_event ev, cJSON *obj)
{
	struct kube_source *ks = ctx;
	struct model_ref ref;

	if (ev != KUBE_DELETED)
		source_put(ks, w, obj);
	else if (model_object_ref(obj, &ref))
		store_delete(ks->store, source_kind(ks, w), ref.ns, ref.name);
	kube_source_touched(ks);
}

static const struct watch_handler source_handler = {
	.list_begin = source_list_begin,
	.object = source_object,
	.list_end = source_list_end,
};

static int source_watches(struct kube_source *ks, const char *node_name, size_t max_line)
{
	char *esc = curl_easy_escape(NULL, node_name, 0);
	char *node_sel = NULL;
	int rc = -1;

	if (esc && asprintf(&node_sel, "fieldSelector=metadata.name%%3D%s", esc) < 0)
		node_sel = NULL;
	if (node_sel &&
	    !watch_init(&ks->watches[KUBE_SERVICES], "services", "Service", "/api/v1/services",
			SELECTOR_PROXIED, max_line, &source_handler, ks) &&
	    !watch_init(&ks->watches[KUBE_SLICES], "endpointslices", "EndpointSlice",
			"/apis/discovery.k8s.io/v1/endpointslices", SELECTOR_PROXIED, max_line,
			&source_handler, ks) &&
	    !watch_init(&ks->watches[KUBE_NODE], "nodes", "Node", "/api/v1/nodes", node_sel,
			max_line, &kube_node_handler, ks))
		rc = 0;
	curl_free(esc);
	free(node_sel);
	return rc;
}

struct kube_source *kube_source_open(struct kube_config *cfg, const char *node_name,
				     size_t max_per_service, size_t max_event_bytes)
{
	struct kube_source *ks = calloc(1, sizeof(*ks));

	if (!ks)
		return NULL;
	ks->node_name = strdup(node_name);
	ks->store = store_new(max_per_service);
	ks->client = kube_client_new(cfg);
	if (!ks->node_name || !ks->store || !ks->client ||
	    store_set_node(ks->store, node_name, "") < 0 ||
	    source_watches(ks, node_name, max_event_bytes) < 0) {
		log_error("kube", "out of memory");
		kube_source_close(ks);
		return NULL;
	}
	for (int i = 0; i < KUBE_COLLECTION__COUNT; i++)
		kube_client_add(ks->client, &ks->watches[i]);
	log_info("kube", "API server %s (%s), node %s", cfg->server, cfg->origin, node_name);
	return ks;
}

void kube_source_close(struct kube_source *ks)
{
	if (!ks)
		return;
	kube_client_free(ks->client);
	for (int i = 0; i < KUBE_COLLECTION__COUNT; i++)
		watch_free(&ks->watches[i]);
	store_free(ks->store);
	free(ks->node_name);
	free(ks);
}

int kube_source_run(struct kube_source *ks, struct curl_waitfd *extra, unsigned n_extra,
		    int timeout_ms, int *ready)
{
	return kube_client_run(ks->client, extra, n_extra, timeout_ms, ready);
}

bool kube_source_synced(const struct kube_source *ks)
{
	const struct watch *svc = &ks->watches[KUBE_SERVICES], *sl = &ks->watches[KUBE_SLICES];

	return svc->listed && sl->listed && !svc->relist && !sl->relist;
}

bool kube_source_node_listed(const struct kube_source *ks)
{
	return ks->watches[KUBE_NODE].listed;
}

struct model_store *kube_source_store(struct kube_source *ks)
{
	return ks->store;
}

double kube_source_changed_since(const struct kube_source *ks)
{
	return ks->changed_since;
}

void kube_source_flushed(struct kube_source *ks)
{
	ks->changed_since = 0;
}

const struct kube_source_stats *kube_source_stats(const struct kube_source *ks)
{
	return &ks->stats;
}

const struct watch_stats *kube_source_watch_stats(const struct kube_source *ks,
						  enum kube_collection c)
{
	return &ks->watches[c].stats;
}

const struct kube_node *kube_source_node(const struct kube_source *ks)
{
	return &ks->node;
}
