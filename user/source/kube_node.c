/* This node's Node object: its zone (topology hints, B31) and addresses
 * (NodePorts, B22), logged when they change. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "source/kube_priv.h"

#define LABEL_ZONE "topology.kubernetes.io/zone"
/* The cluster autoscaler's mark on a node it is about to remove; kube-proxy
 * then reports the node ineligible so that load balancers drain it. */
#define TAINT_TO_BE_DELETED "ToBeDeletedByClusterAutoscaler"

static bool node_has_taint(const cJSON *obj, const char *key)
{
	const cJSON *taints = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(obj, "spec"), "taints");
	const cJSON *t;

	cJSON_ArrayForEach(t, taints) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(t, "key");

		if (cJSON_IsString(k) && strcmp(k->valuestring, key) == 0)
			return true;
	}
	return false;
}

static void node_decode(const cJSON *obj, struct kube_node *out)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels");
	const cJSON *zone = cJSON_GetObjectItemCaseSensitive(labels, LABEL_ZONE);
	const cJSON *addrs = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(obj, "status"), "addresses");
	const cJSON *a;
	size_t len = 0;

	memset(out, 0, sizeof(*out));
	out->seen = true;
	out->autoscaler_taint = node_has_taint(obj, TAINT_TO_BE_DELETED);
	out->deleting = out->autoscaler_taint ||
			cJSON_IsString(cJSON_GetObjectItemCaseSensitive(md, "deletionTimestamp"));
	if (cJSON_IsString(zone))
		snprintf(out->zone, sizeof(out->zone), "%s", zone->valuestring);
	cJSON_ArrayForEach(a, addrs) {
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(a, "type");
		const cJSON *addr = cJSON_GetObjectItemCaseSensitive(a, "address");
		int n;

		if (!cJSON_IsString(type) || !cJSON_IsString(addr) || len >= sizeof(out->addresses))
			continue;
		n = snprintf(out->addresses + len, sizeof(out->addresses) - len, "%s%s=%s",
			     len ? " " : "", type->valuestring, addr->valuestring);
		len += n > 0 ? (size_t)n : 0;
	}
}

/* status.addresses as the model reads them (InternalIP, ExternalIP), for
 * the LB IPs and externalIPs equal to a node address. */
static void node_addrs(struct kube_source *ks, cJSON *obj)
{
	struct model_objects one = { 0 };
	char why[256] = "not a Node";

	/* List items come without kind and apiVersion. */
	if (!cJSON_GetObjectItemCaseSensitive(obj, "kind"))
		cJSON_AddStringToObject(obj, "kind", "Node");
	if (model_decode(obj, &one, why, sizeof(why)) != DECODE_OK || !one.n_nodes)
		log_warn("kube", "node %s: %s; its addresses stay as they were", ks->node_name,
			 why);
	else if (store_set_node_addrs(ks->store, one.nodes[0].addrs, one.nodes[0].n_addrs) < 0)
		log_error("kube", "node %s: out of memory taking its addresses", ks->node_name);
	model_objects_free(&one);
}

static void node_list_begin(void *ctx, struct watch *w)
{
	struct kube_source *ks = ctx;

	(void)w;
	ks->node.seen = false; /* until the list shows it again */
}

static void node_object(void *ctx, struct watch *w, enum kube_event ev, cJSON *obj)
{
	struct kube_source *ks = ctx;
	struct kube_node node = { 0 };

	(void)w;
	if (ev == KUBE_DELETED) {
		log_warn("kube", "node %s: deleted from the API", ks->node_name);
		ks->node.seen = false;
		ks->node.deleting = true;
		return;
	}
	node_decode(obj, &node);
	node_addrs(ks, obj);
	if (memcmp(&node, &ks->node, sizeof(node)) != 0)
		log_info("kube", "node %s: zone \"%s\", addresses %s%s", ks->node_name, node.zone,
			 node.addresses[0] ? node.addresses : "none",
			 !node.deleting ? "" : node.autoscaler_taint ?
			 "; being deleted (" TAINT_TO_BE_DELETED " taint)" : "; being deleted");
	/* Out of memory keeps the old zone; the Node's next event tries again. */
	if (store_set_node(ks->store, ks->node_name, node.zone) < 0)
		log_error("kube", "node %s: out of memory taking zone \"%s\"", ks->node_name,
			  node.zone);
	kube_source_touched(ks);
	ks->node = node;
	ks->node_known = true;
}

/* A Node seen before and missing from a relist was deleted while the watch
 * was down (its DELETED event is lost with the compacted history). */
static void node_list_end(void *ctx, struct watch *w)
{
	struct kube_source *ks = ctx;

	(void)w;
	if (ks->node.seen)
		return;
	if (ks->node_known && !ks->node.deleting) {
		log_warn("kube", "node %s: gone from the API (deleted while the watch was down)",
			 ks->node_name);
		ks->node.deleting = true;
	} else if (!ks->node_known) {
		log_warn("kube", "node %s: not found in the API (--node-name or NODE_NAME wrong?)",
			 ks->node_name);
	}
}

const struct watch_handler kube_node_handler = {
	.list_begin = node_list_begin,
	.object = node_object,
	.list_end = node_list_end,
};
